//! A stable 128-bit content hash (FNV-1a, 128-bit variant) for naming file contents and calls.
//!
//! The value depends only on the bytes hashed, never on the Rust version, the platform or the
//! process, so it can be written to a state file and compared in a later run. It is not a
//! cryptographic hash: it tells contents apart, it does not resist someone crafting collisions.

use std::fmt;

/// FNV-1a 128-bit offset basis.
const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
/// FNV 128-bit prime, 2^88 + 2^8 + 0x3b.
const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

/// The 128-bit hash of some content, as 16 big-endian bytes; displayed as 32 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentId(pub [u8; 16]);

impl ContentId {
    /// Reads the 32 hex digits that [`Display`](fmt::Display) writes (either case); `None` for
    /// anything else.
    pub fn from_hex(text: &[u8]) -> Option<Self> {
        if text.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            let digits = std::str::from_utf8(pair).ok()?;
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            *byte = u8::from_str_radix(digits, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// Incremental FNV-1a-128: feeding the bytes in any number of [`update`](Self::update) calls
/// gives the same [`finish`](Self::finish) as feeding them at once.
#[derive(Clone, Debug)]
pub struct ContentHasher {
    state: u128,
}

impl Default for ContentHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl ContentHasher {
    /// A hasher that has seen no bytes yet.
    pub fn new() -> Self {
        Self {
            state: OFFSET_BASIS,
        }
    }

    /// Adds `bytes` to the content hashed so far.
    pub fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.state = (self.state ^ u128::from(byte)).wrapping_mul(PRIME);
        }
    }

    /// The hash of all the bytes added so far; the hasher can go on being updated.
    pub fn finish(&self) -> ContentId {
        ContentId(self.state.to_be_bytes())
    }
}

/// The hash of `bytes` in one call.
pub fn content_id(bytes: &[u8]) -> ContentId {
    let mut hasher = ContentHasher::new();
    hasher.update(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_fnv1a_128_values() {
        assert_eq!(
            content_id(b"").to_string(),
            "6c62272e07bb014262b821756295c58d"
        );
        assert_eq!(
            content_id(b"a").to_string(),
            "d228cb696f1a8caf78912b704e4a8964"
        );
        assert_eq!(
            content_id(b"foobar").to_string(),
            "343e1662793c64bf6f0d3597ba446f18"
        );
    }

    #[test]
    fn incremental_updates_equal_one_update() {
        let mut hasher = ContentHasher::new();
        hasher.update(b"foo");
        hasher.update(b"");
        hasher.update(b"bar");
        assert_eq!(hasher.finish(), content_id(b"foobar"));
    }

    #[test]
    fn hex_text_round_trips_and_rejects_garbage() {
        let id = content_id(b"acc_1.log");
        assert_eq!(ContentId::from_hex(id.to_string().as_bytes()), Some(id));
        assert_eq!(
            ContentId::from_hex(id.to_string().to_uppercase().as_bytes()),
            Some(id)
        );
        assert_eq!(ContentId::from_hex(b"6c62"), None);
        assert_eq!(ContentId::from_hex(&[b'g'; 32]), None);
        assert_eq!(
            ContentId::from_hex(b"+c62272e07bb014262b821756295c58d"),
            None
        );
    }
}
