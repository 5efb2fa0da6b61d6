//! CSV text (RFC 4180) for the commands that write records.

/// Every byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte of a word.
const HIGHS: u64 = 0x8080_8080_8080_8080;
/// The byte that pads a short last word: not one that needs quotes, nor below [`QUOTE_BELOW`].
const PAD: u8 = b'A';
/// Every byte that makes a field need quotes (`,` 0x2C, `"` 0x22, CR, LF) is below this.
const QUOTE_BELOW: u64 = 0x2D;

/// Append `value` as one CSV field: quoted when it holds `,`, `"`, CR or LF, with `"` doubled.
pub fn csv_field(out: &mut Vec<u8>, value: &[u8]) {
    if !needs_quotes(value) {
        out.extend_from_slice(value);
        return;
    }
    out.push(b'"');
    for (i, part) in value.split(|&b| b == b'"').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(part);
    }
    out.push(b'"');
}

/// Whether `value` holds `,`, `"`, CR or LF. Short values are looked at byte by byte; longer
/// ones eight bytes at a time, most of them cleared by one test per word (no byte below 0x2D),
/// and only those with such a byte are looked at again byte by byte.
fn needs_quotes(value: &[u8]) -> bool {
    if value.len() < 16 {
        return value
            .iter()
            .any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
    }
    let mut words = value.chunks_exact(8);
    let mut low = 0;
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        low |= bytes_below(u64::from_le_bytes(bytes));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut bytes = [PAD; 8];
        bytes[..rest.len()].copy_from_slice(rest);
        low |= bytes_below(u64::from_le_bytes(bytes));
    }
    low != 0
        && value
            .iter()
            .any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
}

/// Not zero when some byte of `word` is below [`QUOTE_BELOW`] (and zero when none is).
fn bytes_below(word: u64) -> u64 {
    word.wrapping_sub(ONES * QUOTE_BELOW) & !word & HIGHS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        csv_field(&mut out, value);
        out
    }

    #[test]
    fn only_fields_with_a_comma_quote_or_line_end_are_quoted() {
        assert_eq!(field(b""), b"");
        assert_eq!(field(b"Busy Here"), b"Busy Here");
        assert_eq!(
            field(b"0123456789abcdef@pc33.example.com"),
            b"0123456789abcdef@pc33.example.com"
        );
        assert_eq!(field("é!#$%&'()*+-".as_bytes()), "é!#$%&'()*+-".as_bytes());
        assert_eq!(field(b"a,b"), b"\"a,b\"");
        assert_eq!(field(b"0123456789\"x"), b"\"0123456789\"\"x\"");
        assert_eq!(field(b"01234567\r"), b"\"01234567\r\"");
        assert_eq!(field(b"\n"), b"\"\n\"");
    }

    #[test]
    fn the_word_test_agrees_with_a_byte_by_byte_test() {
        for byte in 0..=255u8 {
            for length in 1..20 {
                for at in 0..length {
                    let mut value = vec![b'x'; length];
                    value[at] = byte;
                    assert_eq!(
                        needs_quotes(&value),
                        matches!(byte, b',' | b'"' | b'\r' | b'\n'),
                        "{byte} at {at} of {length}"
                    );
                }
            }
        }
    }
}
