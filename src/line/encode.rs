//! Values to the bytes of one line. Pure: no I/O, no allocation beyond the caller's buffer.
//!
//! The line is the fields in the caller's order joined by `|` and ended by `\n`. Numbers are
//! byte-identical to glibc `printf`; text is escaped so that a value can never add a column or
//! split a record (see [`Escape`]).

use std::io::Write as _;

use crate::line::value::Value;

/// The field delimiter.
pub const DELIMITER: u8 = b'|';

/// How text and binary values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Escape {
    /// Text: `|` → `%7C`, `\n` → `%0A`, `\r` → `%0D` (Kamailio's `encode_delimiter=1`, plus the
    /// line breaks). Binary: bytes outside printable ASCII, `\` and `|` → `\xHH`.
    #[default]
    Delimiter,
    /// As [`Escape::Delimiter`], and also `%` and `\` in text (`%25`, `%5C`) and `%` in binary
    /// (`\x25`), so that every field decodes back to the exact bytes.
    Strict,
    /// Text is written raw, as the C modules do with `encode_delimiter=0`: a `|` or a line break
    /// inside a value then corrupts the record. Binary is still escaped as in
    /// [`Escape::Delimiter`].
    None,
    /// Text and binary alike: bytes outside printable ASCII, `\` and `|` → `\xHH` (uppercase),
    /// as OpenSIPS's stock `db_flatstore` writes them (`Busy \x7C Here`). One record per line
    /// and a stable column count, like [`Escape::Delimiter`]; the OpenSIPS module's default.
    Hex,
}

/// Everything that decides how a record is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineFormat {
    /// Escaping of text and binary values.
    pub escape: Escape,
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Per-byte "must be escaped" tables, one per field kind and escape mode.
struct EscapeTable([bool; 256]);

impl EscapeTable {
    const fn new(special: &[u8], escape_non_printable: bool) -> Self {
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            table[b] = escape_non_printable && !(b >= 0x20 && b <= 0x7e);
            b += 1;
        }
        let mut i = 0;
        while i < special.len() {
            table[special[i] as usize] = true;
            i += 1;
        }
        EscapeTable(table)
    }
}

static TEXT_DELIMITER: EscapeTable = EscapeTable::new(b"|\n\r", false);
static TEXT_STRICT: EscapeTable = EscapeTable::new(b"|\n\r%\\", false);
static BLOB_DELIMITER: EscapeTable = EscapeTable::new(b"|\\", true);
static BLOB_STRICT: EscapeTable = EscapeTable::new(b"|\\%", true);

/// Longest `%f` rendering of a double: sign, 309 integer digits, point, 6 decimals.
const MAX_DOUBLE_LEN: usize = 1 + 309 + 1 + 6;

/// A reusable buffer holding one formatted record.
///
/// Its storage stays initialised at the largest size seen, so formatting a field is a
/// bounds-checked copy, never a reallocation or a fill, once the buffer has warmed up.
#[derive(Debug, Default, Clone)]
pub struct LineBuf {
    storage: Vec<u8>,
    len: usize,
}

impl LineBuf {
    /// An empty buffer.
    pub fn new() -> LineBuf {
        LineBuf::default()
    }

    /// The formatted bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.storage[..self.len]
    }

    /// Forget the contents, keep the storage.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// An empty buffer with `room` bytes of storage ready, for one that collects many records.
    pub(crate) fn with_room(room: usize) -> LineBuf {
        LineBuf {
            storage: vec![0; room],
            len: 0,
        }
    }

    /// Number of bytes held (without the bounds check of the slice's `len`).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Append `bytes` as they are (tests fill buffers by hand).
    #[cfg(test)]
    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.room(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Keep the first `len` bytes only.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Drop the first `n` bytes (all, if fewer are held) and keep the rest.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.storage.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Give back the storage beyond `room` bytes (never below the contents).
    pub(crate) fn shrink_to(&mut self, room: usize) {
        let keep = room.max(self.len);
        if self.storage.len() > keep {
            self.storage.truncate(keep);
            self.storage.shrink_to_fit();
        }
    }

    /// At least `need` writable bytes after the contents.
    #[inline]
    fn room(&mut self, need: usize) -> &mut [u8] {
        if self.storage.len() < self.len + need {
            self.grow(need);
        }
        &mut self.storage[self.len..]
    }

    /// Make the storage hold `need` bytes after the contents: rare once warmed up, so kept out
    /// of the formatting code.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, need: usize) {
        let grown = (self.len + need).max(2 * self.storage.len()).max(256);
        self.storage.resize(grown, 0);
    }

    #[inline]
    fn push(&mut self, byte: u8) {
        self.room(1)[0] = byte;
        self.len += 1;
    }
}

/// The formatted bytes, as a slice (as a `Vec` is one).
impl std::ops::Deref for LineBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl LineFormat {
    /// Append one whole record, `\n` included, to `out`.
    ///
    /// Values are taken in order; the first `Err` stops the record and `out` is restored to the
    /// length it had on entry, so a refused record leaves no trace.
    pub fn encode_record<'a, I, E>(&self, values: I, out: &mut LineBuf) -> Result<(), E>
    where
        I: IntoIterator<Item = Result<Value<'a>, E>>,
    {
        match self.escape {
            Escape::Delimiter => encode_fields::<DelimiterText, _, _>(values, out),
            Escape::Strict => encode_fields::<StrictText, _, _>(values, out),
            Escape::None => encode_fields::<RawText, _, _>(values, out),
            Escape::Hex => encode_fields::<HexText, _, _>(values, out),
        }
    }
}

/// How text and blobs are written in one escape mode. The mode is chosen once per record, so
/// that the field loop holds the text code of that mode only.
trait TextMode {
    /// Escapes of blobs in this mode.
    const BLOB: &'static EscapeTable;

    /// Append text and a `|` after it.
    fn put_text(out: &mut LineBuf, bytes: &[u8]);
}

/// [`Escape::Delimiter`].
struct DelimiterText;

impl TextMode for DelimiterText {
    const BLOB: &'static EscapeTable = &BLOB_DELIMITER;

    #[inline(always)]
    fn put_text(out: &mut LineBuf, bytes: &[u8]) {
        put_text_field::<DelimiterCandidates>(out, bytes, &TEXT_DELIMITER);
    }
}

/// [`Escape::Strict`].
struct StrictText;

impl TextMode for StrictText {
    const BLOB: &'static EscapeTable = &BLOB_STRICT;

    #[inline(always)]
    fn put_text(out: &mut LineBuf, bytes: &[u8]) {
        put_text_field::<StrictCandidates>(out, bytes, &TEXT_STRICT);
    }
}

/// [`Escape::None`].
struct RawText;

impl TextMode for RawText {
    const BLOB: &'static EscapeTable = &BLOB_DELIMITER;

    #[inline(always)]
    fn put_text(out: &mut LineBuf, bytes: &[u8]) {
        put_field(out, bytes.len(), |d| {
            d[..bytes.len()].copy_from_slice(bytes);
            bytes.len()
        });
    }
}

/// [`Escape::Hex`].
struct HexText;

impl TextMode for HexText {
    const BLOB: &'static EscapeTable = &BLOB_DELIMITER;

    #[inline(always)]
    fn put_text(out: &mut LineBuf, bytes: &[u8]) {
        put_blob_field(out, bytes, &BLOB_DELIMITER);
    }
}

/// [`LineFormat::encode_record`] in escape mode `M`.
fn encode_fields<'a, M: TextMode, I, E>(values: I, out: &mut LineBuf) -> Result<(), E>
where
    I: IntoIterator<Item = Result<Value<'a>, E>>,
{
    let start = out.len;
    for value in values {
        match value {
            Ok(value) => write_field::<M>(value, out),
            Err(e) => {
                out.len = start;
                return Err(e);
            }
        }
    }
    // Every field ends in a delimiter: the last one becomes the end of the line.
    if out.len > start {
        out.storage[out.len - 1] = b'\n';
    } else {
        out.push(b'\n');
    }
    Ok(())
}

/// Append one field to `out`, and a `|` after it. Inlined into the record loop, so that the
/// match on the value's kind joins the one that made the value; the rare kinds (doubles, blobs)
/// are calls.
#[inline(always)]
fn write_field<M: TextMode>(value: Value<'_>, out: &mut LineBuf) {
    match value {
        Value::Null => out.push(DELIMITER),
        Value::Int(v) => put_field(out, 20, |d| write_signed(i64::from(v), d)),
        Value::UInt(v) | Value::Bitmap(v) => {
            put_field(out, 20, |d| write_unsigned(u64::from(v), d))
        }
        Value::BigInt(v) => put_field(out, 20, |d| write_signed(v, d)),
        Value::UBigInt(v) => put_field(out, 20, |d| write_unsigned(v, d)),
        // The C modules print `(unsigned int)` of the time_t: keep their truncation.
        Value::DateTime(t) => put_field(out, 20, |d| write_unsigned(u64::from(t as u32), d)),
        Value::Double(v) => put_double_field(out, v),
        Value::Str(bytes) => M::put_text(out, bytes),
        Value::Blob(bytes) => put_blob_field(out, bytes, M::BLOB),
    }
}

/// [`write_field`] of a blob, escaped as `table` says.
#[inline(never)]
fn put_blob_field(out: &mut LineBuf, bytes: &[u8], table: &EscapeTable) {
    put_field(out, 4 * bytes.len(), |d| {
        write_escaped_bytes(bytes, d, table, b'x')
    })
}

/// [`write_field`] of a double.
#[inline(never)]
fn put_double_field(out: &mut LineBuf, v: f64) {
    put_field(out, MAX_DOUBLE_LEN, |d| write_double(v, d))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `word` equal to `byte`. Bytes above a true match may be
/// flagged too (borrow), so only the lowest flag is exact.
#[inline]
fn byte_mask(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Room for `need` bytes and a delimiter: `write` the value, then the delimiter after it.
#[inline(always)]
fn put_field(out: &mut LineBuf, need: usize, write: impl FnOnce(&mut [u8]) -> usize) {
    let written = write(out.room(need + 1));
    end_field(out, written);
}

/// [`put_field`] of text escaped as `table` says. Not through a closure: the compiler keeps
/// one for text out of line, and text is most of a record.
#[inline(always)]
fn put_text_field<C: Candidates>(out: &mut LineBuf, bytes: &[u8], table: &EscapeTable) {
    let written = write_text::<C>(bytes, out.room(3 * bytes.len() + 8 + 1), table);
    end_field(out, written);
}

/// The `written` bytes after the contents are a field: the delimiter after them, and all of it
/// into the contents. There is room for the delimiter.
#[inline(always)]
fn end_field(out: &mut LineBuf, written: usize) {
    out.storage[out.len + written] = DELIMITER;
    out.len += written + 1;
}

/// The bytes that text escaping looks at in one mode, found a word or a block at a time.
/// Flags are candidates: the byte table of the mode decides.
trait Candidates {
    /// The high bit of at least every candidate byte of a little-endian word (bytes above a
    /// candidate may be flagged too, see [`byte_mask`]).
    fn in_word(word: u64) -> u64;
    /// Whether `byte` is a candidate: comparisons without branches, so that a block of bytes
    /// is tested with vector instructions.
    fn is(byte: u8) -> bool;
}

/// Bytes below `0x0E` (NUL to CR, candidates for `\n` and `\r`) and `|`, for
/// [`Escape::Delimiter`].
struct DelimiterCandidates;

impl Candidates for DelimiterCandidates {
    #[inline]
    fn in_word(word: u64) -> u64 {
        (word.wrapping_sub(ONES * 0x0E) & !word & HIGHS) | byte_mask(word, b'|')
    }

    #[inline]
    fn is(byte: u8) -> bool {
        (byte < 0x0E) | (byte == b'|')
    }
}

/// [`DelimiterCandidates`] plus `%` and `\`, for [`Escape::Strict`].
struct StrictCandidates;

impl Candidates for StrictCandidates {
    #[inline]
    fn in_word(word: u64) -> u64 {
        DelimiterCandidates::in_word(word) | byte_mask(word, b'%') | byte_mask(word, b'\\')
    }

    #[inline]
    fn is(byte: u8) -> bool {
        DelimiterCandidates::is(byte) | (byte == b'%') | (byte == b'\\')
    }
}

/// Whether any byte of `block` is a candidate of `C`.
#[inline]
fn any_candidate<C: Candidates>(block: &[u8; 16]) -> bool {
    block.iter().fold(false, |any, &b| any | C::is(b))
}

/// Text with `%HH` escapes. Text without candidates (see [`Candidates`]) is copied in blocks
/// of 16 bytes, or as two words or one when it is shorter; from the first block or word that
/// holds a candidate on, `table` decides byte by byte (a candidate it does not mark is copied
/// as it is). `dst` has room for the escaped text plus 8 bytes. Returns bytes written.
#[inline(always)]
fn write_text<C: Candidates>(src: &[u8], dst: &mut [u8], table: &EscapeTable) -> usize {
    let len = src.len();
    if let Some(last) = src.last_chunk::<16>() {
        let mut done = 0;
        for (s, d) in src
            .as_chunks::<16>()
            .0
            .iter()
            .zip(dst.as_chunks_mut::<16>().0)
        {
            if any_candidate::<C>(s) {
                return done + write_escaped_bytes(&src[done..], &mut dst[done..], table, b'%');
            }
            *d = *s;
            done += 16;
        }
        // The last 0..15 bytes within the block that ends the text, whose first bytes were
        // copied unchanged already: rewriting them costs less than a shorter tail.
        if any_candidate::<C>(last) {
            return done + write_escaped_bytes(&src[done..], &mut dst[done..], table, b'%');
        }
        dst[len - 16..len].copy_from_slice(last);
        return len;
    }
    if let (Some(first), Some(last)) = (src.first_chunk::<8>(), src.last_chunk::<8>()) {
        // 8 to 15 bytes: two overlapping words.
        if C::in_word(u64::from_le_bytes(*first)) | C::in_word(u64::from_le_bytes(*last)) != 0 {
            return write_escaped_bytes(src, dst, table, b'%');
        }
        dst[..8].copy_from_slice(first);
        dst[len - 8..len].copy_from_slice(last);
        return len;
    }
    // Shorter than a word: one zero-padded word, written whole (`dst` has the room).
    let word = short_word(src);
    let in_text = (1u64 << (8 * len)) - 1;
    if C::in_word(word) & in_text == 0 {
        dst[..8].copy_from_slice(&word.to_le_bytes());
        return len;
    }
    write_escaped_bytes(src, dst, table, b'%')
}

/// The 0..7 bytes of `src` as a little-endian word padded with zeros, from two overlapping
/// loads rather than a loop over the bytes.
#[inline]
fn short_word(src: &[u8]) -> u64 {
    let len = src.len();
    if let (Some(head), Some(tail)) = (src.first_chunk::<4>(), src.last_chunk::<4>()) {
        let head = u64::from(u32::from_le_bytes(*head));
        let tail = u64::from(u32::from_le_bytes(*tail));
        // The overlap holds the same bytes in both.
        return head | tail << (8 * (len - 4));
    }
    match src {
        [] => 0,
        [first, ..] => {
            u64::from(*first)
                | u64::from(src[len / 2]) << (8 * (len / 2))
                | u64::from(src[len - 1]) << (8 * (len - 1))
        }
    }
}

/// Copy `src`, replacing each byte marked in `table` by `%HH` (style `%`) or `\xHH` (style
/// `x`). Returns bytes written. Not inlined: text reaches it only when it holds a byte that may
/// need escaping.
#[inline(never)]
fn write_escaped_bytes(src: &[u8], dst: &mut [u8], table: &EscapeTable, style: u8) -> usize {
    let mut o = 0;
    for &b in src {
        if table.0[usize::from(b)] {
            o += write_escape(b, style, &mut dst[o..]);
        } else {
            dst[o] = b;
            o += 1;
        }
    }
    o
}

#[inline]
fn write_escape(b: u8, style: u8, dst: &mut [u8]) -> usize {
    let hi = HEX_UPPER[usize::from(b >> 4)];
    let lo = HEX_UPPER[usize::from(b & 0xf)];
    if style == b'%' {
        dst[..3].copy_from_slice(&[b'%', hi, lo]);
        3
    } else {
        dst[..4].copy_from_slice(&[b'\\', b'x', hi, lo]);
        4
    }
}

/// "00" to "99".
static DIGIT_PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// `10^i`, except `0` at index 0 so that zero counts one digit.
static POWERS_OF_TEN: [u64; 20] = {
    let mut t = [0u64; 20];
    let mut i = 1;
    let mut p = 10u64;
    while i < 20 {
        t[i] = p;
        p = p.wrapping_mul(10);
        i += 1;
    }
    t
};

/// Decimal digits of `v`: from its bit length (`log10(2) ~ 1233/4096`), corrected by one
/// comparison.
#[inline]
fn decimal_digits(v: u64) -> usize {
    let approx = (((64 - (v | 1).leading_zeros()) * 1233) >> 12) as usize;
    approx + 1 - usize::from(v < POWERS_OF_TEN[approx])
}

/// `%llu`: digits written right to left, two at a time. Returns bytes written.
#[inline]
fn write_unsigned(mut v: u64, dst: &mut [u8]) -> usize {
    let len = decimal_digits(v);
    let mut at = len;
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        at -= 2;
        dst[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        dst[..2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        dst[0] = b'0' + v as u8;
    }
    len
}

/// `%lld`. Returns bytes written.
#[inline]
fn write_signed(v: i64, dst: &mut [u8]) -> usize {
    if v < 0 {
        dst[0] = b'-';
        1 + write_unsigned(v.unsigned_abs(), &mut dst[1..])
    } else {
        write_unsigned(v.unsigned_abs(), dst)
    }
}

/// C `%f`: six decimals, correctly rounded (ties to even on the exact binary value, as glibc
/// does), and glibc's spellings of the non-finite values, sign included. Returns bytes written.
fn write_double(v: f64, dst: &mut [u8]) -> usize {
    let word: &[u8] = if v.is_nan() {
        if v.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        }
    } else if v.is_infinite() {
        if v < 0.0 { b"-inf" } else { b"inf" }
    } else {
        let room = dst.len();
        let mut cursor = &mut dst[..];
        // MAX_DOUBLE_LEN bytes are always enough for `{:.6}` of a finite f64.
        let _ = write!(cursor, "{v:.6}");
        return room - cursor.len();
    };
    dst[..word.len()].copy_from_slice(word);
    word.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::value::{BadValue, ValueProblem};

    fn line(format: LineFormat, values: &[Value<'_>]) -> Vec<u8> {
        let mut out = LineBuf::new();
        format
            .encode_record(values.iter().copied().map(Ok::<_, BadValue>), &mut out)
            .expect("valid values");
        out.as_bytes().to_vec()
    }

    fn default_line(values: &[Value<'_>]) -> String {
        String::from_utf8(line(LineFormat::default(), values)).expect("ascii")
    }

    #[test]
    fn golden_numbers_match_printf() {
        let cases: &[(Value<'_>, &str)] = &[
            (Value::Int(0), "0"),
            (Value::Int(-1), "-1"),
            (Value::Int(i32::MIN), "-2147483648"),
            (Value::Int(i32::MAX), "2147483647"),
            (Value::UInt(u32::MAX), "4294967295"),
            (Value::BigInt(i64::MIN), "-9223372036854775808"),
            (Value::UBigInt(u64::MAX), "18446744073709551615"),
            (Value::Bitmap(0xffff_ffff), "4294967295"),
            (Value::Double(0.0), "0.000000"),
            (Value::Double(-0.0), "-0.000000"),
            (Value::Double(1.5), "1.500000"),
            (Value::Double(0.0000005), "0.000000"),
            (Value::Double(2.5e-6), "0.000003"),
            (Value::Double(1e20), "100000000000000000000.000000"),
            (Value::Double(f64::NAN), "nan"),
            (Value::Double(-f64::NAN), "-nan"),
            (Value::Double(f64::INFINITY), "inf"),
            (Value::Double(f64::NEG_INFINITY), "-inf"),
            (Value::DateTime(1_700_000_000), "1700000000"),
            (Value::DateTime(-1), "4294967295"),
            (Value::DateTime(1 << 32), "0"),
        ];
        for (value, expected) in cases {
            assert_eq!(
                default_line(&[*value]),
                format!("{expected}\n"),
                "{value:?}"
            );
        }
    }

    /// OpenSIPS's stock module: text and blobs alike, `\xHH` uppercase for bytes outside printable
    /// ASCII, `\` and `|`; `%` stays; one line per record whatever the value holds.
    #[test]
    fn hex_escapes_text_as_opensips_stock_module_does() {
        let hex = LineFormat {
            escape: Escape::Hex,
        };
        let text = line(
            hex,
            &[
                Value::Str(b"Busy | Here"),
                Value::Str(b"a\\b\nc\rd%e\x7f\xc3\xa9"),
                Value::Blob(b"A|\\\x00\xff %"),
                Value::Null,
                Value::Int(486),
            ],
        );
        assert_eq!(
            String::from_utf8(text).expect("ascii"),
            "Busy \\x7C Here|a\\x5Cb\\x0Ac\\x0Dd%e\\x7F\\xC3\\xA9|A\\x7C\\x5C\\x00\\xFF %||486\n"
        );
    }

    #[test]
    fn golden_text_and_blob() {
        assert_eq!(
            default_line(&[Value::Str(b"a|b\nc\rd%e\\f")]),
            "a%7Cb%0Ac%0Dd%e\\f\n"
        );
        assert_eq!(
            default_line(&[Value::Blob(b"A|\\\x00\xff %")]),
            "A\\x7C\\x5C\\x00\\xFF %\n"
        );
        let strict = LineFormat {
            escape: Escape::Strict,
        };
        assert_eq!(
            line(strict, &[Value::Str(b"5%|\\"), Value::Blob(b"%")]),
            b"5%25%7C%5C|\\x25\n"
        );
        let none = LineFormat {
            escape: Escape::None,
        };
        assert_eq!(line(none, &[Value::Str(b"a|b")]), b"a|b\n");
    }

    #[test]
    fn word_at_a_time_scan_finds_every_special_byte() {
        let all = b"0123456789abcdefghijklmnopqrstuvwxyzABCD";
        for len in 0..=all.len() {
            let mut text = all[..len].to_vec();
            let mut want = text.clone();
            want.push(b'\n');
            assert_eq!(line(LineFormat::default(), &[Value::Str(&text)]), want);
            for at in 0..len {
                for special in [b'|', b'\n', b'\r'] {
                    let saved = text[at];
                    text[at] = special;
                    let mut want = text[..at].to_vec();
                    want.extend_from_slice(format!("%{special:02X}").as_bytes());
                    want.extend_from_slice(&text[at + 1..]);
                    want.push(b'\n');
                    assert_eq!(line(LineFormat::default(), &[Value::Str(&text)]), want);
                    text[at] = saved;
                }
            }
        }
    }

    #[test]
    fn digit_count_is_exact_at_every_power_of_ten() {
        let mut p = 1u64;
        for digits in 1..=20 {
            assert_eq!(decimal_digits(p), digits, "{p}");
            if digits > 1 {
                assert_eq!(decimal_digits(p - 1), digits - 1, "{}", p - 1);
            }
            p = p.saturating_mul(10);
        }
        assert_eq!(decimal_digits(0), 1);
        assert_eq!(decimal_digits(u64::MAX), 20);
    }

    #[test]
    fn fields_join_with_delimiter_and_null_is_empty() {
        assert_eq!(
            default_line(&[Value::Int(1), Value::Null, Value::Str(b"x"), Value::Null]),
            "1||x|\n"
        );
        assert_eq!(default_line(&[]), "\n");
    }

    #[test]
    fn a_refused_value_leaves_the_buffer_as_it_was() {
        let mut out = LineBuf::new();
        LineFormat::default()
            .encode_record([Ok::<_, BadValue>(Value::Str(b"kept"))], &mut out)
            .expect("valid");
        let values = vec![
            Ok(Value::Int(1)),
            Err(BadValue {
                index: 1,
                problem: ValueProblem::UnknownType(99),
            }),
        ];
        let err = LineFormat::default()
            .encode_record(values, &mut out)
            .expect_err("refused");
        assert_eq!(err.index, 1);
        assert_eq!(out.as_bytes(), b"kept\n");
    }
}
