//! The inverse of [`crate::format`]: a line back to its fields' bytes.
//!
//! Exact for lines written with `escape=strict`, where every `%` and `\` in a field starts an
//! escape. With the default `escape=delimiter` a literal `%7C` typed into a value decodes as
//! `|`: the line format cannot tell the two apart.

use crate::format::DELIMITER;

/// An escape that does not decode: `%` or `\x` not followed by two hex digits, or a `\` not
/// followed by `x`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable escape at byte {offset} of the field")]
pub struct DecodeError {
    /// Offset of the `%` or `\` inside the field.
    pub offset: usize,
}

/// The raw (still escaped) fields of one line; `line` excludes its `\n`.
pub fn split_fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == DELIMITER)
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

/// Append the decoded bytes of one field to `out`: `%HH` and `\xHH` become the byte they
/// name. On error `out` holds the bytes decoded before the bad escape.
pub fn decode_field(field: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let mut i = 0;
    while let Some(pos) = field[i..].iter().position(|&b| b == b'%' || b == b'\\') {
        let at = i + pos;
        out.extend_from_slice(&field[i..at]);
        let (byte, len) = match field[at] {
            b'%' => (hex_pair(&field[at + 1..]), 3),
            _ if field.get(at + 1) == Some(&b'x') => (hex_pair(&field[at + 2..]), 4),
            _ => (None, 0),
        };
        out.push(byte.ok_or(DecodeError { offset: at })?);
        i = at + len;
    }
    out.extend_from_slice(&field[i..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Escape, LineBuf, LineFormat};
    use crate::value::Value;
    use proptest::prelude::*;

    fn encode(escape: Escape, values: &[Value<'_>]) -> Vec<u8> {
        let mut out = LineBuf::new();
        LineFormat { escape }
            .encode_record(
                values.iter().copied().map(Ok::<_, crate::value::BadValue>),
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
}
