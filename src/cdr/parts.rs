//! Length-prefixed parts: several byte strings in one buffer, each with its length in front
//! (LEB128), so they can be read back in order and different lists never have the same bytes.

/// Appends `part` with its length in front (LEB128), so parts can be read back with [`Parts`].
pub(super) fn push_part(bytes: &mut Vec<u8>, part: &[u8]) {
    let mut length = part.len();
    if length < 0x80 {
        // The usual case: one length byte.
        bytes.reserve(1 + length);
        bytes.push(length as u8);
        bytes.extend_from_slice(part);
        return;
    }
    while length >= 0x80 {
        bytes.push((length & 0x7f) as u8 | 0x80);
        length >>= 7;
    }
    bytes.push(length as u8);
    bytes.extend_from_slice(part);
}

/// The parts of bytes written by [`push_part`], in order.
#[derive(Clone, Debug)]
pub(super) struct Parts<'b>(pub(super) &'b [u8]);

impl<'b> Iterator for Parts<'b> {
    type Item = &'b [u8];

    fn next(&mut self) -> Option<&'b [u8]> {
        let mut length = 0usize;
        let mut shift = 0;
        loop {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            length |= usize::from(byte & 0x7f).checked_shl(shift)?;
            shift += 7;
            if byte < 0x80 {
                break;
            }
        }
        let (part, rest) = self.0.split_at_checked(length)?;
        self.0 = rest;
        Some(part)
    }
}
