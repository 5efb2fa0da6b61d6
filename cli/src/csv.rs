//! CSV text (RFC 4180) for the commands that write records.

/// Append `value` as one CSV field: quoted when it holds `,`, `"`, CR or LF, with `"` doubled.
pub fn csv_field(out: &mut Vec<u8>, value: &[u8]) {
    // One pass without early exit (vectorised): most values need no quotes.
    let quote = value.iter().fold(false, |any, &b| {
        any | (b == b',') | (b == b'"') | (b == b'\r') | (b == b'\n')
    });
    if !quote {
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
