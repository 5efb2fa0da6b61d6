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

/// Why a value given by the host cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    /// The type tag is none of the host's types.
    #[error("unknown type {0}")]
    UnknownType(i32),
    /// A NUL-terminated string value is a NULL pointer.
    #[error("NULL string")]
    NullString,
    /// A counted string or blob has a NULL pointer and a positive length.
    #[error("NULL pointer with length {0}")]
    NullPointer(i32),
    /// A counted string or blob has a negative length.
    #[error("negative length {0}")]
    NegativeLength(i32),
}

/// A value that cannot be written, and its position in the record (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("value {index}: {problem}; record not written")]
pub struct BadValue {
    /// Position of the value in the record.
    pub index: usize,
    /// What is wrong with it.
    pub problem: ValueProblem,
}
