//! The pairer's memory of ended calls: the content hash of each call's key and the whole
//! seconds of its end, in one open-addressing table (linear probing, deletion by backward
//! shift, so no tombstones), at most three quarters full. 24 bytes a slot: at 1,000 calls a
//! second, 300 s of ended calls (and the quarter more kept between sweeps) fit 2^19 slots,
//! 12 MiB.

use super::hash::ContentId;

/// A slot's end when it is empty (no call ends that early: year 0 is about -6.2e10).
const EMPTY: i64 = i64::MIN;

#[derive(Clone, Copy, Debug)]
struct Slot {
    call: ContentId,
    end_seconds: i64,
}

impl Slot {
    const EMPTY: Slot = Slot {
        call: ContentId([0; 16]),
        end_seconds: EMPTY,
    };

    fn is_empty(&self) -> bool {
        self.end_seconds == EMPTY
    }
}

/// Ended calls by the hash of their key, with the whole seconds of their end.
#[derive(Clone, Debug, Default)]
pub(super) struct EndedCalls {
    /// A power of two in length (or empty).
    slots: Vec<Slot>,
    len: usize,
}

impl EndedCalls {
    /// How many calls are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The end of `call`, if it is remembered.
    pub(super) fn get(&self, call: &ContentId) -> Option<i64> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut at = home(call) & mask;
        loop {
            let slot = &self.slots[at];
            if slot.is_empty() {
                return None;
            }
            if slot.call == *call {
                return Some(slot.end_seconds);
            }
            at = (at + 1) & mask;
        }
    }

    /// Reads the slot where a lookup of `call` starts, so that it is in the cache when
    /// [`get`](Self::get) or [`insert`](Self::insert) come to it: a hint for speed, changing
    /// nothing. Returns a word of it, for the caller to fold into a [`std::hint::black_box`].
    pub(super) fn touch(&self, call: &ContentId) -> i64 {
        let mask = self.slots.len().wrapping_sub(1);
        self.slots
            .get(home(call) & mask)
            .map_or(0, |slot| slot.end_seconds)
    }

    /// Remembers that `call` ended at `end_seconds` (in place of an earlier end).
    pub(super) fn insert(&mut self, call: ContentId, end_seconds: i64) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut at = home(&call) & mask;
        loop {
            let slot = &mut self.slots[at];
            if slot.is_empty() {
                self.len += 1;
                *slot = Slot { call, end_seconds };
                return;
            }
            if slot.call == call {
                slot.end_seconds = end_seconds;
                return;
            }
            at = (at + 1) & mask;
        }
    }

    /// Forgets every call whose end `keep` refuses, in one pass over the table.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(i64) -> bool) {
        let Some(mask) = self.slots.len().checked_sub(1) else {
            return;
        };
        // Start after an empty slot: no run of full slots crosses it, so the shifts below
        // never move a slot to before where the pass began.
        let Some(start) = self.slots.iter().position(Slot::is_empty) else {
            return;
        };
        let mut at = (start + 1) & mask;
        while at != start {
            let slot = self.slots[at];
            if !slot.is_empty() && !keep(slot.end_seconds) {
                self.remove_at(at, mask);
                // A later slot may have moved here: look at it again.
                continue;
            }
            at = (at + 1) & mask;
        }
    }

    /// Every remembered call and its end, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (ContentId, i64)> + '_ {
        self.slots
            .iter()
            .filter(|slot| !slot.is_empty())
            .map(|slot| (slot.call, slot.end_seconds))
    }

    /// Empties the slot at `hole`, moving back the later slots of its run that may be there.
    fn remove_at(&mut self, mut hole: usize, mask: usize) {
        self.len -= 1;
        let mut at = hole;
        loop {
            at = (at + 1) & mask;
            let slot = self.slots[at];
            if slot.is_empty() {
                break;
            }
            // A slot may move back to the hole when the hole lies between its home and it.
            let from_home = at.wrapping_sub(home(&slot.call)) & mask;
            if from_home >= at.wrapping_sub(hole) & mask {
                self.slots[hole] = slot;
                hole = at;
            }
        }
        self.slots[hole] = Slot::EMPTY;
    }

    /// Twice the slots (16 at first), every call placed again.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(16);
        let slots = std::mem::replace(&mut self.slots, vec![Slot::EMPTY; size]);
        self.len = 0;
        for slot in slots.into_iter().filter(|slot| !slot.is_empty()) {
            self.insert(slot.call, slot.end_seconds);
        }
    }
}

/// Where a call's probe starts: the content hash is already well mixed, its first bytes do.
fn home(call: &ContentId) -> usize {
    let mut first = [0u8; 8];
    first.copy_from_slice(&call.0[..8]);
    u64::from_le_bytes(first) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdr::hash::content_id;
    use std::collections::HashMap;

    #[test]
    fn it_behaves_as_a_map_through_inserts_updates_and_sweeps() {
        let mut ended = EndedCalls::default();
        let mut model = HashMap::new();
        let id = |n: u64| content_id(&n.to_le_bytes());
        for round in 0..40u64 {
            for n in 0..500u64 {
                let call = id((round * 300 + n) % 3_000);
                let end = (round * 1_000 + n) as i64;
                ended.insert(call, end);
                model.insert(call, end);
            }
            let horizon = (round * 1_000) as i64 - 1_500;
            ended.retain(|end| end >= horizon);
            model.retain(|_, end| *end >= horizon);
            assert_eq!(ended.len(), model.len());
            for n in 0..3_000 {
                assert_eq!(ended.get(&id(n)), model.get(&id(n)).copied(), "{round} {n}");
            }
            let mut all: Vec<_> = ended.iter().collect();
            all.sort_unstable();
            let mut want: Vec<_> = model.iter().map(|(&call, &end)| (call, end)).collect();
            want.sort_unstable();
            assert_eq!(all, want);
            assert!(ended.slots.len() <= 4_096, "{}", ended.slots.len());
        }
    }

    #[test]
    fn colliding_homes_are_found_and_removed() {
        // Calls whose first eight bytes are equal share their home slot.
        let call = |last: u8| {
            let mut bytes = [7u8; 16];
            bytes[15] = last;
            ContentId(bytes)
        };
        let mut ended = EndedCalls::default();
        for last in 0..10 {
            ended.insert(call(last), i64::from(last));
        }
        ended.retain(|end| end % 3 != 0);
        for last in 0..10u8 {
            let want = (last % 3 != 0).then_some(i64::from(last));
            assert_eq!(ended.get(&call(last)), want);
        }
        assert_eq!(ended.len(), 6);
    }
}
