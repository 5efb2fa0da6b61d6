//! A stable 128-bit content hash (FNV-1a, 128-bit variant) for naming file contents and calls,
//! and a fast 64-bit hash for the pairer's in-memory tables.
//!
//! The content hash depends only on the bytes hashed, never on the Rust version, the platform
//! or the process, so it can be written to a state file and compared in a later run. Neither
//! hash is cryptographic: they tell contents apart, they do not resist someone crafting
//! collisions (crafted collisions of the fast hash only make lookups slower, never wrong).

use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a 128-bit offset basis.
const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
/// FNV 128-bit prime, 2^88 + 2^8 + 0x3b.
#[cfg(test)]
const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
/// Its low part, 2^8 + 0x3b (the rest is 2^88).
const PRIME_LOW: u128 = 0x13b;

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
        // The state times PRIME = 2^88 + 0x13b, in 64-bit halves: the high half of
        // `state << 88` is the low half shifted by 24, and its low half is zero.
        let (mut high, mut low) = ((self.state >> 64) as u64, self.state as u64);
        for &byte in bytes {
            low ^= u64::from(byte);
            let product = u128::from(low) * PRIME_LOW;
            high = high
                .wrapping_mul(PRIME_LOW as u64)
                .wrapping_add((product >> 64) as u64)
                .wrapping_add(low << 24);
            low = product as u64;
        }
        self.state = u128::from(high) << 64 | u128::from(low);
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

/// The multiplier of the fast hash (the one of rustc's FxHash: 2^64 / the golden ratio, odd).
const FAST_MULTIPLIER: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// A fast, non-cryptographic 64-bit [`Hasher`] in the style of rustc's FxHash: each 8-byte
/// word is mixed in with a rotation, an XOR and a multiplication; [`finish`](Hasher::finish)
/// folds the high bits down so that the low bits (which hash tables use) depend on every word.
/// Not stable across versions of this code: for in-memory tables only, never for a state file.
#[derive(Clone, Copy, Debug, Default)]
pub struct FastHasher {
    state: u64,
}

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(FAST_MULTIPLIER);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(word);
            self.add(u64::from_le_bytes(eight));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut eight = [0u8; 8];
            eight[..rest.len()].copy_from_slice(rest);
            // The length tells `ab` from `ab\0`.
            self.add(u64::from_le_bytes(eight) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        let mixed = self.state ^ (self.state >> 29);
        mixed.wrapping_mul(FAST_MULTIPLIER) ^ (mixed >> 32)
    }
}

/// Makes [`FastHasher`]s, for `HashMap::with_hasher`.
pub type BuildFastHasher = BuildHasherDefault<FastHasher>;

/// The fast hash of `bytes` in one call (as a [`FastHasher`] fed them with `write`).
pub fn fast_hash(bytes: &[u8]) -> u64 {
    let mut hasher = FastHasher::default();
    hasher.write(bytes);
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
    fn the_split_multiplication_is_fnv_1a() {
        let mut reference = OFFSET_BASIS;
        let mut hasher = ContentHasher::new();
        for byte in (0..=255u8).chain((0..=255u8).rev()).cycle().take(5_000) {
            reference = (reference ^ u128::from(byte)).wrapping_mul(PRIME);
            hasher.update(&[byte]);
            assert_eq!(hasher.finish(), ContentId(reference.to_be_bytes()));
        }
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

    #[test]
    fn the_fast_hash_tells_apart_lengths_words_and_orders() {
        let hashes = [
            fast_hash(b""),
            fast_hash(b"\0"),
            fast_hash(b"ab"),
            fast_hash(b"ab\0"),
            fast_hash(b"ba"),
            fast_hash(b"01234567"),
            fast_hash(b"012345670"),
            fast_hash(b"0123456789abcdef"),
            fast_hash(b"89abcdef01234567"),
        ];
        let mut distinct = hashes.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), hashes.len(), "{hashes:x?}");
        assert_eq!(fast_hash(b"callid"), fast_hash(b"callid"));
        // The low bits (a hash table's index) differ for keys that differ in one high byte.
        let low = |bytes: &[u8]| fast_hash(bytes) & 0xffff;
        assert_ne!(low(b"call-0000000001"), low(b"call-0000000002"));
    }
}
