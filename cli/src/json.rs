//! JSON text for the records `export` and `cdr` write.
//!
//! Written by hand, not through serde_json, for speed: export's hot loop appends each value
//! straight into a reused row buffer, copying a value that needs no escape as it lies (one
//! vectorised scan, one copy), with no intermediate value or allocation per record; and the
//! byte rule below is ours. The reports (`verify --json`, `stats --json`) are small and go
//! through serde_json (`output::json_report`).
//!
//! The byte rule: a value that is valid UTF-8 is a JSON string; any other value is the object
//! `{"base64":"…"}` holding its exact bytes in standard base64 (RFC 4648, padded), so nothing
//! is lost or guessed.

const HEX: &[u8; 16] = b"0123456789abcdef";
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Append `s` as a JSON string, quotes included.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_utf8(out, s.as_bytes());
}

/// Append `bytes`, which the caller knows to be UTF-8 (ASCII, say), as a JSON string. Bytes
/// that are not UTF-8 would come out as they are: use [`write_bytes`] for those.
pub fn write_utf8(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    // Most values need no escape: one pass without early exit (vectorised), one copy.
    let plain = !bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short == 0 {
            out.extend_from_slice(b"\\u00");
            out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Append `bytes` by the byte rule: a string where they are UTF-8, `{"base64":"…"}` otherwise.
pub fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(_) => write_utf8(out, bytes),
        Err(_) => {
            out.extend_from_slice(b"{\"base64\":\"");
            for group in bytes.chunks(3) {
                let n = group
                    .iter()
                    .enumerate()
                    .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
                for i in 0..4 {
                    out.push(if i <= group.len() {
                        BASE64[(n >> (18 - 6 * i) & 63) as usize]
                    } else {
                        b'='
                    });
                }
            }
            out.extend_from_slice(b"\"}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(value: &[u8]) -> String {
        let mut out = Vec::new();
        write_bytes(&mut out, value);
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    fn string(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("a\"b\\c\nd\te\u{1}é"), r#""a\"b\\c\nd\te\u0001é""#);
        assert_eq!(string(""), r#""""#);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_base64() {
        assert_eq!(bytes(b"caf\xc3\xa9"), r#""café""#);
        // RFC 4648 test vectors, made non-UTF-8 by a leading 0xff.
        assert_eq!(bytes(b"\xff"), r#"{"base64":"/w=="}"#);
        assert_eq!(bytes(b"\xfff"), r#"{"base64":"/2Y="}"#);
        assert_eq!(bytes(b"\xfffo"), r#"{"base64":"/2Zv"}"#);
        assert_eq!(bytes(b"\xfffoob"), r#"{"base64":"/2Zvb2I="}"#);
        assert_eq!(bytes(b"\xe9t\xe9"), r#"{"base64":"6XTp"}"#);
    }
}
