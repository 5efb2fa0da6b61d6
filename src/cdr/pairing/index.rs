//! The index of the pairer's open calls: for each call, 32 bits of its key's fast hash and its
//! slot, in one open-addressing table (linear probing, deletion by backward shift), at most
//! half full. A lookup looks at calls only when those 32 bits match, so it touches the calls'
//! table about once.

/// An empty bucket (no slot is `u32::MAX`).
const EMPTY: u64 = u64::MAX;

/// Slots by the fast hash of their call's key.
#[derive(Clone, Debug, Default)]
pub(super) struct CallIndex {
    /// Each bucket: the hash's low 32 bits, then the slot; a power of two in length (or
    /// empty).
    buckets: Vec<u64>,
    len: usize,
}

impl CallIndex {
    /// The first slot with a key of this `hash` for which `is_it` says yes.
    pub(super) fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.buckets.len().checked_sub(1)?;
        let tag = tag(hash);
        let mut at = tag as usize & mask;
        loop {
            let bucket = self.buckets[at];
            if bucket == EMPTY {
                return None;
            }
            if (bucket >> 32) as u32 == tag && is_it(bucket as u32) {
                return Some(bucket as u32);
            }
            at = (at + 1) & mask;
        }
    }

    /// Reads the bucket where a lookup of `hash` starts, so that it is in the cache when
    /// [`find`](Self::find) comes to it: a hint for speed, changing nothing. Returns it, for
    /// the caller to fold into a [`std::hint::black_box`].
    pub(super) fn touch(&self, hash: u64) -> u64 {
        let mask = self.buckets.len().wrapping_sub(1);
        self.buckets
            .get(tag(hash) as usize & mask)
            .copied()
            .unwrap_or(EMPTY)
    }

    /// Adds `slot`, whose key has this `hash`.
    pub(super) fn insert(&mut self, hash: u64, slot: u32) {
        if (self.len + 1) * 2 > self.buckets.len() {
            self.grow();
        }
        self.place(u64::from(tag(hash)) << 32 | u64::from(slot));
        self.len += 1;
    }

    /// Removes `slot`, whose key has this `hash` (nothing if it is not there).
    pub(super) fn remove(&mut self, hash: u64, slot: u32) {
        let Some(mask) = self.buckets.len().checked_sub(1) else {
            return;
        };
        let wanted = u64::from(tag(hash)) << 32 | u64::from(slot);
        let mut hole = tag(hash) as usize & mask;
        loop {
            match self.buckets[hole] {
                EMPTY => return,
                bucket if bucket == wanted => break,
                _ => hole = (hole + 1) & mask,
            }
        }
        self.len -= 1;
        // Move back the later buckets of the run that may take the hole.
        let mut at = hole;
        loop {
            at = (at + 1) & mask;
            let bucket = self.buckets[at];
            if bucket == EMPTY {
                break;
            }
            let home = (bucket >> 32) as usize & mask;
            if at.wrapping_sub(home) & mask >= at.wrapping_sub(hole) & mask {
                self.buckets[hole] = bucket;
                hole = at;
            }
        }
        self.buckets[hole] = EMPTY;
    }

    /// Puts `bucket` in the first empty bucket from its home (there is one: at most half full).
    fn place(&mut self, bucket: u64) {
        let mask = self.buckets.len() - 1;
        let mut at = (bucket >> 32) as usize & mask;
        while self.buckets[at] != EMPTY {
            at = (at + 1) & mask;
        }
        self.buckets[at] = bucket;
    }

    /// Twice the buckets (16 at first), every slot placed again.
    fn grow(&mut self) {
        let size = (self.buckets.len() * 2).max(16);
        let buckets = std::mem::replace(&mut self.buckets, vec![EMPTY; size]);
        for bucket in buckets.into_iter().filter(|&bucket| bucket != EMPTY) {
            self.place(bucket);
        }
    }
}

/// The bits of a key's hash the index keeps (and places by).
fn tag(hash: u64) -> u32 {
    hash as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn slots_are_found_by_hash_and_key_through_inserts_and_removals() {
        let mut index = CallIndex::default();
        let mut model: HashSet<(u64, u32)> = HashSet::new();
        // Few distinct hashes, so that runs are long and many slots share one.
        let hash = |slot: u32| u64::from(slot % 37).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for round in 0..30u32 {
            for slot in round * 40..round * 40 + 60 {
                if model.insert((hash(slot), slot)) {
                    index.insert(hash(slot), slot);
                }
            }
            for slot in (round * 40..round * 40 + 60).step_by(3) {
                if model.remove(&(hash(slot), slot)) {
                    index.remove(hash(slot), slot);
                }
            }
            for slot in 0..1_300 {
                let found = index.find(hash(slot), |other| other == slot);
                assert_eq!(
                    found.is_some(),
                    model.contains(&(hash(slot), slot)),
                    "{slot}"
                );
            }
            assert_eq!(index.len, model.len());
        }
    }
}
