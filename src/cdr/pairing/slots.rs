//! The open calls' table: one slot per call seen in part, found through the index by the
//! fast hash of its key; freed slots are chained for reuse. A call's CDR is made from its slot.

use super::keys::{KeyParts, key_parts, tags};
use super::{Pairer, RecordSide};
use crate::cdr::hash::ContentId;
use crate::cdr::parts::Parts;
use crate::cdr::time::{Duration, Timestamp};
use crate::cdr::{CallStatus, CdrView, Extras};

/// One side of a call: an answered INVITE or a BYE, borrowed from where it is kept.
///
/// Sides compare by time, then whether the record's From tag is the first tag of the call's
/// key, then content: that is how the earliest one is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Side<'a> {
    pub(super) time: Timestamp,
    /// Whether the record's From tag is the first tag of its key (see [`push_key`]).
    pub(super) from_is_first: bool,
    /// Length-prefixed parts: status code, reason phrase (both empty for a BYE), then extras.
    pub(super) parts: &'a [u8],
}

/// No slot: the end of a chain of slots.
pub(super) const NO_SLOT: u32 = u32::MAX;

/// What a slot of the table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// Nothing: the slot is on the free list.
    Free,
    /// Answered, waiting for its BYE.
    Answered,
    /// A BYE waiting for its INVITE.
    ByeFirst,
    /// Both sides seen; its CDR is made once the stream passes both times.
    Ended,
}

/// A call seen in part: one slot of the pairer's table, one heap block (`bytes`).
///
/// The block holds the key and the side seen first; an ended call's other side is kept in the
/// pairer's `ended` bytes until its CDR is made at the next advance, so ending a call allocates
/// nothing. Measured with `size_of` (x86_64, Rust 1.95; a unit test keeps it so): 96 bytes.
/// Adding the heap block (a 43-byte Call-ID and two 9-byte tags make a 64-byte key, plus 7
/// bytes for `200` and `OK`: 80 bytes allocated), an index entry (16 bytes) and a waiting
/// entry (24 bytes), with the tables' slack, one open call takes about 250 bytes: 100,000 open
/// calls take about 25 MiB.
#[derive(Clone, Debug)]
pub(super) struct Call {
    /// The key (see [`push_key`]), then the parts of the side seen first.
    pub(super) bytes: Box<[u8]>,
    pub(super) invite_time: Timestamp,
    pub(super) bye_time: Timestamp,
    /// The content hash of the key, the name the call is remembered by once it ended.
    pub(super) id: ContentId,
    /// The fast hash of the key: the call's entry in the index.
    pub(super) hash: u64,
    /// In a free slot, the next free slot.
    pub(super) next: u32,
    /// How many times the slot was freed, so that waiting entries of earlier calls in it are
    /// known as stale.
    pub(super) generation: u32,
    pub(super) key_length: u32,
    /// An ended call's other side: where its parts start in the pairer's `ended` bytes.
    pub(super) other_start: u32,
    /// How many bytes its parts take there.
    pub(super) other_length: u32,
    pub(super) stage: Stage,
    pub(super) invite_from_is_first: bool,
    pub(super) bye_from_is_first: bool,
    /// Whether `bytes` holds the INVITE's parts (else the BYE's).
    pub(super) holds_invite: bool,
}

impl Call {
    pub(super) fn free(next: u32) -> Self {
        Self {
            bytes: Box::default(),
            invite_time: Timestamp::EPOCH,
            bye_time: Timestamp::EPOCH,
            id: ContentId([0; 16]),
            hash: 0,
            next,
            generation: 0,
            key_length: 0,
            other_start: 0,
            other_length: 0,
            stage: Stage::Free,
            invite_from_is_first: false,
            bye_from_is_first: false,
            holds_invite: false,
        }
    }

    pub(super) fn key(&self) -> &[u8] {
        &self.bytes[..self.key_length as usize]
    }

    /// The parts of the INVITE (`is_invite`) or the BYE, the other side's from `ended`.
    pub(super) fn parts<'a>(&'a self, is_invite: bool, ended: &'a [u8]) -> &'a [u8] {
        if is_invite == self.holds_invite {
            &self.bytes[self.key_length as usize..]
        } else {
            let start = self.other_start as usize;
            ended
                .get(start..start + self.other_length as usize)
                .unwrap_or_default()
        }
    }

    pub(super) fn invite<'a>(&'a self, ended: &'a [u8]) -> Side<'a> {
        Side {
            time: self.invite_time,
            from_is_first: self.invite_from_is_first,
            parts: self.parts(true, ended),
        }
    }

    pub(super) fn bye<'a>(&'a self, ended: &'a [u8]) -> Side<'a> {
        Side {
            time: self.bye_time,
            from_is_first: self.bye_from_is_first,
            parts: self.parts(false, ended),
        }
    }

    /// Whether it is a lone side (answered, or a BYE first).
    pub(super) fn is_lone(&self) -> bool {
        matches!(self.stage, Stage::Answered | Stage::ByeFirst)
    }
}

impl Pairer {
    /// The record being paired as a side (its parts are in `self.side` once filled).
    pub(super) fn record_side(&self, (time, from_is_first): RecordSide) -> Side<'_> {
        Side {
            time,
            from_is_first,
            parts: &self.side,
        }
    }

    /// The slot of the open call with the key in `self.key`, whose fast hash is `hash`.
    /// (Kept keys are equal exactly when their parts are: each part is length-prefixed.)
    pub(super) fn find_kept(&self, hash: u64) -> Option<u32> {
        self.index.find(hash, |slot| {
            self.calls
                .get(slot as usize)
                .is_some_and(|call| call.hash == hash && call.key() == self.key.as_slice())
        })
    }

    /// The slot of the open call with this key, whose fast hash is `hash`.
    pub(super) fn find(&self, key: &KeyParts<'_>, hash: u64) -> Option<u32> {
        self.index.find(hash, |slot| {
            self.calls
                .get(slot as usize)
                .is_some_and(|call| call.hash == hash && key.is(call.key()))
        })
    }

    /// [`open`](Self::open), without its waiting entry.
    pub(super) fn open_slot(
        &mut self,
        hash: u64,
        id: ContentId,
        stage: Stage,
        side: RecordSide,
    ) -> u32 {
        let slot = match self.free {
            NO_SLOT => {
                // A slot number fits 32 bits: 4 billion open calls would need 1 TB.
                self.calls.push(Call::free(NO_SLOT));
                (self.calls.len() - 1) as u32
            }
            free => {
                self.free = self.calls[free as usize].next;
                free
            }
        };
        self.index.insert(hash, slot);
        let mut bytes = Vec::with_capacity(self.key.len() + self.side.len());
        bytes.extend_from_slice(&self.key);
        let key_length = bytes.len();
        bytes.extend_from_slice(&self.side);
        let call = &mut self.calls[slot as usize];
        call.bytes = bytes.into_boxed_slice();
        call.id = id;
        call.hash = hash;
        call.next = NO_SLOT;
        call.key_length = key_length as u32;
        call.stage = stage;
        call.holds_invite = stage == Stage::Answered;
        if call.holds_invite {
            (call.invite_time, call.invite_from_is_first) = side;
        } else {
            (call.bye_time, call.bye_from_is_first) = side;
        }
        self.live += 1;
        self.lone += 1;
        slot
    }

    /// Gives the call in `slot` the record's side (its INVITE if `is_invite`, else its BYE)
    /// in place of the one it has, or as its other side.
    pub(super) fn put_side(
        &mut self,
        slot: u32,
        is_invite: bool,
        (time, from_is_first): RecordSide,
    ) {
        let call = &mut self.calls[slot as usize];
        if is_invite == call.holds_invite {
            let key = call.key();
            let mut bytes = Vec::with_capacity(key.len() + self.side.len());
            bytes.extend_from_slice(key);
            bytes.extend_from_slice(&self.side);
            call.bytes = bytes.into_boxed_slice();
        } else {
            call.other_start = self.ended.len() as u32;
            call.other_length = self.side.len() as u32;
            self.ended.extend_from_slice(&self.side);
        }
        if is_invite {
            (call.invite_time, call.invite_from_is_first) = (time, from_is_first);
        } else {
            (call.bye_time, call.bye_from_is_first) = (time, from_is_first);
        }
    }

    /// Frees the slot of an open call.
    pub(super) fn remove(&mut self, slot: u32) {
        let call = &self.calls[slot as usize];
        let (hash, was_lone) = (call.hash, call.is_lone());
        self.index.remove(hash, slot);
        let call = &mut self.calls[slot as usize];
        call.bytes = Box::default();
        call.stage = Stage::Free;
        call.generation = call.generation.wrapping_add(1);
        call.next = self.free;
        self.free = slot;
        self.live -= 1;
        if was_lone {
            self.lone -= 1;
            self.compact_waiting();
        }
    }
}

/// A CDR with the tags, answer and extras of `side`.
pub(super) fn call_cdr<'a>(
    key: &'a [u8],
    side: Side<'a>,
    status: CallStatus,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
) -> CdrView<'a> {
    let (from_tag, to_tag) = tags(key, side.from_is_first);
    let mut parts = Parts(side.parts);
    let sip_code = parts.next().unwrap_or_default();
    let sip_reason = parts.next().unwrap_or_default();
    CdrView {
        callid: key_parts(key).0,
        from_tag,
        to_tag,
        start,
        end,
        duration: start
            .zip(end)
            .map(|(start, end)| Duration::between(&start, &end)),
        sip_code,
        sip_reason,
        status,
        extras: Extras::from_parts(parts),
    }
}
