//! The inverse of [`super::encode`] for one field: its escapes back to the bytes they name
//! (the line is split into fields by [`super::fields`]).
//!
//! **Only the escapes a writer produces are decoded**; every other byte sequence is kept as
//! written (`50%ACME` stays `50%ACME`):
//!
//! - `%7C`, `%0A`, `%0D` (`|`, line feed, carriage return: every text escape mode but `none`);
//! - `%25`, `%5C` (`%`, `\`: text with `escape=strict`). They are decoded whatever the mode
//!   (the line does not say which one wrote it), so with the default `escape=delimiter` a
//!   literal `%25` typed into a value reads as `%`, as a literal `%7C` reads as `|`;
//! - `\xHH`, any byte (blobs in every mode; text with `escape=hex`, OpenSIPS's form, which
//!   writes `\xHH` for non-printables, `\` and `|` and nothing more). A new `%HH` form would
//!   go in `PERCENT_ESCAPED`.
//!
//! The hex digits are taken in either case (the writer's are uppercase). Exact for lines
//! written with `escape=strict`, where every `%` and `\` in a field starts one of these.

/// The bytes a writer escapes as `%HH`.
const PERCENT_ESCAPED: &[u8] = b"|\n\r%\\";

/// An escape that does not decode: a `%` that starts none of the `%HH` escapes above, or a `\`
/// that does not start `\xHH`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable escape at byte {offset} of the field")]
pub struct DecodeError {
    /// Offset of the `%` or `\` inside the field.
    pub offset: usize,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn hex_pair(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [hi, lo, ..] => Some(hex(*hi)? << 4 | hex(*lo)?),
        _ => None,
    }
}

/// The byte named by the escape that starts at `field[at]`, and the escape's length: `%HH` is
/// 3 bytes, `\xHH` 4. `None` when no escape a writer produces starts there (also when `at`
/// is out of range): `%AC` is no escape.
pub fn escape_at(field: &[u8], at: usize) -> Option<(u8, usize)> {
    match field.get(at)? {
        b'%' => hex_pair(&field[at + 1..])
            .filter(|byte| PERCENT_ESCAPED.contains(byte))
            .map(|byte| (byte, 3)),
        b'\\' if field.get(at + 1) == Some(&b'x') => Some((hex_pair(&field[at + 2..])?, 4)),
        _ => None,
    }
}

/// Decode `field` into `out`; `bad(offset)` decides what happens at a `%` or `\` that starts
/// no escape: stop with its error, or go on (the byte is then kept as it is).
fn decode_into<E>(
    field: &[u8],
    out: &mut Vec<u8>,
    mut bad: impl FnMut(usize) -> Result<(), E>,
) -> Result<(), E> {
    let mut i = 0;
    while let Some(pos) = field[i..].iter().position(|&b| b == b'%' || b == b'\\') {
        let at = i + pos;
        out.extend_from_slice(&field[i..at]);
        match escape_at(field, at) {
            Some((byte, len)) => {
                out.push(byte);
                i = at + len;
            }
            None => {
                bad(at)?;
                out.push(field[at]);
                i = at + 1;
            }
        }
    }
    out.extend_from_slice(&field[i..]);
    Ok(())
}

/// Append the decoded bytes of one field to `out`: each escape becomes the byte it names. On
/// error `out` holds the bytes decoded before the bad escape.
pub fn decode_field(field: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    decode_into(field, out, |offset| Err(DecodeError { offset }))
}

/// As [`decode_field`], but a `%` or `\` that starts no escape is kept as it is (with
/// `escape=delimiter` that is how a literal `100%` or `50%ACME` is written), so it never
/// fails.
pub fn decode_field_lenient(field: &[u8], out: &mut Vec<u8>) {
    let Ok(()) = decode_into(field, out, |_| Ok::<(), std::convert::Infallible>(()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::encode::{Escape, LineBuf, LineFormat};
    use crate::line::fields::split_fields;
    use crate::line::value::Value;
    use proptest::prelude::*;

    fn encode(escape: Escape, values: &[Value<'_>]) -> Vec<u8> {
        let mut out = LineBuf::new();
        LineFormat { escape }
            .encode_record(
                values
                    .iter()
                    .copied()
                    .map(Ok::<_, crate::line::value::BadValue>),
                &mut out,
            )
            .expect("valid");
        out.as_bytes().to_vec()
    }

    proptest! {
        /// Any bytes, as text or blob, in strict mode: one line, one column per value, and the
        /// exact bytes back.
        #[test]
        fn strict_round_trips_any_bytes(fields in prop::collection::vec(
            (any::<bool>(), prop::collection::vec(any::<u8>(), 0..64)), 0..8)) {
            let values: Vec<Value<'_>> = fields
                .iter()
                .map(|(blob, b)| if *blob { Value::Blob(b) } else { Value::Str(b) })
                .collect();
            let line = encode(Escape::Strict, &values);
            prop_assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            prop_assert!(!line.contains(&b'\r'));
            let body = &line[..line.len() - 1];
            let raw: Vec<&[u8]> = split_fields(body).collect();
            prop_assert_eq!(raw.len(), values.len().max(1));
            for ((_, original), raw) in fields.iter().zip(raw) {
                let mut decoded = Vec::new();
                decode_field(raw, &mut decoded).expect("decodes");
                prop_assert_eq!(&decoded, original);
            }
        }

        /// The default escaping never adds a column or splits a record, whatever the bytes.
        #[test]
        fn delimiter_mode_keeps_columns(fields in prop::collection::vec(
            prop::collection::vec(any::<u8>(), 0..64), 1..8)) {
            let values: Vec<Value<'_>> = fields.iter().map(|b| Value::Str(b)).collect();
            let line = encode(Escape::Delimiter, &values);
            prop_assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            prop_assert!(!line.contains(&b'\r'));
            prop_assert_eq!(split_fields(&line[..line.len() - 1]).count(), values.len());
        }
    }

    #[test]
    fn bad_escapes_are_reported_with_offset() {
        let mut out = Vec::new();
        assert_eq!(
            decode_field(b"ab%4", &mut out),
            Err(DecodeError { offset: 2 })
        );
        out.clear();
        assert_eq!(
            decode_field(b"\\q", &mut out),
            Err(DecodeError { offset: 0 })
        );
        out.clear();
        decode_field(b"a%7Cb\\x0Ac%25", &mut out).expect("valid");
        assert_eq!(out, b"a|b\nc%");
    }

    #[test]
    fn lenient_decoding_keeps_what_is_no_escape() {
        let mut out = Vec::new();
        decode_field_lenient(b"100% %41\\q\\x4a%4", &mut out);
        assert_eq!(out, b"100% %41\\qJ%4");
        assert_eq!(escape_at(b"a%7C", 1), Some((b'|', 3)));
        assert_eq!(escape_at(b"\\x7c", 0), Some((b'|', 4)));
        assert_eq!(escape_at(b"%7", 0), None);
        assert_eq!(escape_at(b"%7", 5), None);
    }

    /// The poison value: only what a writer escapes is decoded.
    #[test]
    fn only_the_writers_escapes_are_decoded() {
        for (field, want) in [
            (&b"50%ACME"[..], &b"50%ACME"[..]),
            (b"%7C%7c%0A%0d%25%5C", b"||\n\r%\\"),
            (b"%41%20%00%FF%3B", b"%41%20%00%FF%3B"),
            (b"\\xAC\\x00\\x5c", b"\xAC\x00\\"),
        ] {
            let mut out = Vec::new();
            decode_field_lenient(field, &mut out);
            assert_eq!(out, want, "{}", field.escape_ascii());
        }
        let mut out = Vec::new();
        assert_eq!(
            decode_field(b"50%ACME", &mut out),
            Err(DecodeError { offset: 2 })
        );
    }
}
