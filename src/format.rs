//! Values to the bytes of one line. Pure: no I/O, no allocation beyond the caller's buffer.
//!
//! The line is the fields in the caller's order joined by `|` and ended by `\n`. Numbers are
//! byte-identical to glibc `printf`; text is escaped so that a value can never add a column or
//! split a record (see [`Escape`]).

use std::io::Write as _;

use crate::error::Result;
use crate::value::Value;

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

impl LineFormat {
    /// Append one whole record, `\n` included, to `out`.
    ///
    /// Values are taken in order; the first `Err` stops the record and `out` is restored to the
    /// length it had on entry, so a refused record leaves no trace.
    pub fn encode_record<'a, I>(&self, values: I, out: &mut Vec<u8>) -> Result<()>
    where
        I: IntoIterator<Item = Result<Value<'a>>>,
    {
        let start = out.len();
        for (index, value) in values.into_iter().enumerate() {
            match value {
                Ok(value) => {
                    if index > 0 {
                        out.push(DELIMITER);
                    }
                    self.encode_value(&value, out);
                }
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
        out.push(b'\n');
        Ok(())
    }

    /// Append the bytes of one field (no delimiter) to `out`.
    pub fn encode_value(&self, value: &Value<'_>, out: &mut Vec<u8>) {
        match *value {
            Value::Null => {}
            Value::Int(v) => push_signed(i64::from(v), out),
            Value::UInt(v) | Value::Bitmap(v) => push_unsigned(u64::from(v), out),
            Value::BigInt(v) => push_signed(v, out),
            Value::UBigInt(v) => push_unsigned(v, out),
            // The C modules print `(unsigned int)` of the time_t: keep their truncation.
            Value::DateTime(t) => push_unsigned(u64::from(t as u32), out),
            Value::Double(v) => push_double(v, out),
            Value::Str(bytes) => match self.escape {
                Escape::Delimiter => push_escaped(bytes, &TEXT_DELIMITER, b'%', out),
                Escape::Strict => push_escaped(bytes, &TEXT_STRICT, b'%', out),
                Escape::None => out.extend_from_slice(bytes),
            },
            Value::Blob(bytes) => match self.escape {
                Escape::Strict => push_escaped(bytes, &BLOB_STRICT, b'x', out),
                Escape::Delimiter | Escape::None => push_escaped(bytes, &BLOB_DELIMITER, b'x', out),
            },
        }
    }
}

/// Copy `bytes`, replacing each byte marked in `table` by `%HH` (style `%`) or `\xHH` (style `x`).
fn push_escaped(mut bytes: &[u8], table: &EscapeTable, style: u8, out: &mut Vec<u8>) {
    while let Some(pos) = bytes.iter().position(|&b| table.0[usize::from(b)]) {
        out.extend_from_slice(&bytes[..pos]);
        let b = bytes[pos];
        let hex = [
            HEX_UPPER[usize::from(b >> 4)],
            HEX_UPPER[usize::from(b & 0xf)],
        ];
        if style == b'%' {
            out.extend_from_slice(&[b'%', hex[0], hex[1]]);
        } else {
            out.extend_from_slice(&[b'\\', b'x', hex[0], hex[1]]);
        }
        bytes = &bytes[pos + 1..];
    }
    out.extend_from_slice(bytes);
}

fn push_unsigned(mut v: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn push_signed(v: i64, out: &mut Vec<u8>) {
    if v < 0 {
        out.push(b'-');
    }
    push_unsigned(v.unsigned_abs(), out);
}

/// C `%f`: six decimals, correctly rounded (ties to even on the exact binary value, as glibc
/// does), and glibc's spellings of the non-finite values, sign included.
fn push_double(v: f64, out: &mut Vec<u8>) {
    if v.is_nan() {
        out.extend_from_slice(if v.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
    } else if v.is_infinite() {
        out.extend_from_slice(if v < 0.0 { b"-inf" } else { b"inf" });
    } else {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{v:.6}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn line(format: LineFormat, values: &[Value<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        format
            .encode_record(values.iter().copied().map(Ok), &mut out)
            .expect("valid values");
        out
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
    fn fields_join_with_delimiter_and_null_is_empty() {
        assert_eq!(
            default_line(&[Value::Int(1), Value::Null, Value::Str(b"x"), Value::Null]),
            "1||x|\n"
        );
        assert_eq!(default_line(&[]), "\n");
    }

    #[test]
    fn a_refused_value_leaves_the_buffer_as_it_was() {
        let mut out = b"kept".to_vec();
        let values = vec![
            Ok(Value::Int(1)),
            Err(Error::BadValue {
                index: 1,
                reason: "unknown type 99".into(),
            }),
        ];
        let err = LineFormat::default()
            .encode_record(values, &mut out)
            .expect_err("refused");
        assert!(matches!(err, Error::BadValue { index: 1, .. }));
        assert_eq!(out, b"kept");
    }
}
