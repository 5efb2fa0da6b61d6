//! The pairer's memory of ended calls: the content hash of each call's key and the whole
//! seconds of its end, in one open-addressing table (linear probing, deletion by backward
//! shift, so no tombstones), at most three quarters full. 24 bytes a slot: at 1,000 calls a
//! second, 300 s of ended calls (and the quarter more kept between sweeps) fit 2^19 slots,
//! 12 MiB.
//!
//! And the pairer's ended calls: a call with both sides waits for the stream to pass its times
//! (`settle`), then its CDR is made and the call remembered by its hash for the memory window.

use super::carried::CarriedEnd;
use super::slots::{Stage, call_cdr};
use super::{ENDED_MEMORY_SECONDS, Emit, Pairer, RecordSide};
use crate::cdr::CallStatus;
use crate::cdr::hash::ContentId;

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

impl Pairer {
    /// Makes the CDRs of all `Ended` calls, in key order.
    pub(super) fn settle<E: Emit + ?Sized>(&mut self, out: &mut E) {
        if self.settling.is_empty() {
            return;
        }
        let mut settling = std::mem::take(&mut self.settling);
        let calls = &self.calls;
        settling.sort_unstable_by(|a, b| calls[a.0 as usize].key().cmp(calls[b.0 as usize].key()));
        for &(slot, generation) in &settling {
            let call = &self.calls[slot as usize];
            if call.generation == generation && call.stage == Stage::Ended {
                self.close(slot, out);
            }
        }
        settling.clear();
        self.settling = settling;
        // Every ended call had its entry: none is left, nor are their other sides.
        self.ended.clear();
    }

    /// How long (seconds of record time) ended calls are remembered after their end.
    pub(super) fn ended_window(&self) -> u64 {
        self.options.max_age_seconds.min(ENDED_MEMORY_SECONDS)
    }

    /// Whether an ended call that ended at `end_seconds` is still remembered.
    pub(super) fn remembers_end(&self, end_seconds: i64) -> bool {
        self.newest.is_some_and(|newest| {
            remembers(newest.epoch_seconds(), end_seconds, self.ended_window())
        })
    }

    pub(super) fn remembers_closed(&self, id: &ContentId) -> bool {
        self.closed
            .get(id)
            .is_some_and(|end_seconds| self.remembers_end(end_seconds))
    }

    /// A lone call gets its other side, the record's (its INVITE if `is_invite`): its CDR now
    /// if the stream is already past both times, else at the next advance (a side with the
    /// same time may still come).
    pub(super) fn end<E: Emit + ?Sized>(
        &mut self,
        slot: u32,
        is_invite: bool,
        side: RecordSide,
        out: &mut E,
    ) {
        let call = &self.calls[slot as usize];
        let (invite, bye_time) = if is_invite {
            (self.record_side(side), call.bye_time)
        } else {
            (call.invite(&self.ended), side.0)
        };
        let last = invite.time.epoch_nanos().max(bye_time.epoch_nanos());
        if self
            .newest
            .is_some_and(|newest| last < newest.epoch_nanos())
        {
            out.cdr(&call_cdr(
                call.key(),
                invite,
                CallStatus::Answered,
                Some(invite.time),
                Some(bye_time),
            ));
            let end = CarriedEnd {
                end_seconds: bye_time.epoch_seconds(),
                call: call.id,
            };
            self.remove(slot);
            self.remember(end);
        } else {
            self.put_side(slot, is_invite, side);
            self.set_ended(slot);
        }
    }

    /// The call in `slot`, which has both sides now, ends: its CDR is made at the next advance.
    pub(super) fn set_ended(&mut self, slot: u32) {
        let call = &mut self.calls[slot as usize];
        let was_lone = call.is_lone();
        call.stage = Stage::Ended;
        self.settling.push((slot, call.generation));
        if was_lone {
            self.lone -= 1;
            self.compact_waiting();
        }
    }

    /// Emits an ended call's CDR, forgets the call and remembers that it ended.
    pub(super) fn close<E: Emit + ?Sized>(&mut self, slot: u32, out: &mut E) {
        let call = &self.calls[slot as usize];
        let invite = call.invite(&self.ended);
        out.cdr(&call_cdr(
            call.key(),
            invite,
            CallStatus::Answered,
            Some(invite.time),
            Some(call.bye_time),
        ));
        let end = CarriedEnd {
            end_seconds: call.bye_time.epoch_seconds(),
            call: call.id,
        };
        self.remove(slot);
        self.remember(end);
    }

    /// Forgets the ended calls past remembering when the newest time's whole seconds are
    /// `now`; at most once every quarter of the memory window.
    pub(super) fn forget_old_ends(&mut self, now: i64) {
        if now >= self.next_purge {
            let window = self.ended_window();
            self.closed
                .retain(|end_seconds| remembers(now, end_seconds, window));
            let step = i64::try_from((window / 4).max(1)).unwrap_or(i64::MAX);
            self.next_purge = now.saturating_add(step);
        }
    }

    pub(super) fn remember(&mut self, end: CarriedEnd) {
        self.closed.insert(end.call, end.end_seconds);
    }
}

/// Whether a call that ended at `end_seconds` is remembered when the newest time's whole
/// seconds are `now`, for a memory of `window` seconds.
pub(super) fn remembers(now: i64, end_seconds: i64, window: u64) -> bool {
    i128::from(now) - i128::from(end_seconds) <= i128::from(window)
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
