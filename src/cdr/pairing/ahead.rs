//! Records prepared ahead as the pairer uses them: their key taken as prepared, and the
//! memory that pairing them reads first warmed many records at once.

use super::Pairer;
use super::keys::{Ahead, KeyParts, PreparedKey, PreparedKeys};
use crate::cdr::hash::{ContentId, content_id};
use crate::cdr::layout::CallRecord;

impl Pairer {
    /// Reads, many records at once, the memory that pairing the records of `prepared` in
    /// `range` will read first (the index buckets, the open calls and their keys, the ended
    /// calls' slots), so that their cache misses overlap instead of coming one record at a
    /// time. A hint for speed: it changes nothing, and pairing gives the same results without
    /// it. Worth it before pairing a few dozen prepared records.
    pub(crate) fn warm(&self, prepared: &PreparedKeys, range: std::ops::Range<usize>) {
        let keys = prepared
            .keys
            .get(range)
            .unwrap_or_default()
            .iter()
            .flatten();
        let mut seen = 0u64;
        // Each pass only loads what the one before brought into the cache, so that the
        // loads of one pass are independent of each other and are waited for together.
        for key in keys.clone() {
            seen ^= self.index.touch(key.hash);
            if let Some(id) = &key.id {
                seen ^= self.closed.touch(id) as u64;
            }
        }
        let found = |key: &PreparedKey| {
            self.index
                .find(key.hash, |_| true)
                .and_then(|slot| self.calls.get(slot as usize))
        };
        for key in keys.clone() {
            seen ^= found(key).map_or(0, |call| call.hash);
        }
        for key in keys {
            if let Some(call) = found(key) {
                seen ^= u64::from(call.bytes.first().copied().unwrap_or_default());
                seen ^= self.closed.touch(&call.id) as u64;
            }
        }
        std::hint::black_box(seen);
    }

    /// Puts the record's key, as kept, in `self.key`; returns its fast hash and whether the
    /// From tag is its first tag.
    pub(super) fn take_key(
        &mut self,
        record: &CallRecord<'_>,
        ahead: Option<Ahead<'_>>,
    ) -> (u64, bool) {
        self.key.clear();
        match ahead {
            Some(ahead) => {
                self.key.extend_from_slice(ahead.key);
                (ahead.hash, ahead.from_is_first)
            }
            None => {
                let key = KeyParts::of(record);
                key.push(&mut self.key);
                (key.fast_hash(), key.from_is_first)
            }
        }
    }

    /// The content hash of the key in `self.key` (see [`take_key`](Self::take_key)).
    pub(super) fn kept_id(&self, ahead: Option<Ahead<'_>>) -> ContentId {
        ahead
            .and_then(|ahead| ahead.id)
            .unwrap_or_else(|| content_id(&self.key))
    }
}
