//! One field of a record, already checked and borrowed from the caller.

/// A field value as the host gave it, independent of the host's C type layout.
///
/// Byte payloads borrow the caller's memory for the duration of one insert; nothing is copied
/// until the line is formatted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// SQL NULL: written as an empty field.
    Null,
    /// `int`, written as `%d`.
    Int(i32),
    /// `unsigned int`, written as `%u`.
    UInt(u32),
    /// `long long`, written as `%lld`.
    BigInt(i64),
    /// `unsigned long long`, written as `%llu`.
    UBigInt(u64),
    /// `double`, written as C `%f`.
    Double(f64),
    /// Text (`DB_STRING`, `DB_STR`), escaped so it never adds a column or a line.
    Str(&'a [u8]),
    /// Binary data, written with `\xHH` escapes for anything outside printable ASCII.
    Blob(&'a [u8]),
    /// Seconds since the epoch (`time_t`), written as `%u` of `(unsigned int)` the value,
    /// as the C modules do.
    DateTime(i64),
    /// A bit field, written as `%u`.
    Bitmap(u32),
}
