//! Lone sides waiting for their other side, in time order: the queue the ageing reads from
//! its front. Entries of calls that stopped waiting are dropped lazily.

use super::slots::{Call, Stage, call_cdr};
use super::{Emit, Pairer, RecordSide};
use crate::cdr::CallStatus;
use crate::cdr::hash::ContentId;
use crate::cdr::time::Timestamp;

/// How many waiting entries beyond twice the lone sides the queue may hold before the entries
/// of calls that stopped waiting are dropped from its middle.
pub(super) const WAITING_SLACK: usize = 1024;

/// A lone side waiting since `since`: the call in `slot`, if the slot still holds that call
/// (`generation`) and it still waits since then.
#[derive(Clone, Copy, Debug)]
pub(super) struct Waiting {
    pub(super) since: Timestamp,
    pub(super) slot: u32,
    pub(super) generation: u32,
}

impl Waiting {
    pub(super) fn is_current(&self, calls: &[Call]) -> bool {
        calls.get(self.slot as usize).is_some_and(|call| {
            call.generation == self.generation
                && match call.stage {
                    Stage::Answered => call.invite_time == self.since,
                    Stage::ByeFirst => call.bye_time == self.since,
                    Stage::Free | Stage::Ended => false,
                }
        })
    }
}

impl Pairer {
    /// Opens a call with the key in `self.key` (its fast hash `hash`, its content hash `id`)
    /// and one side, the record's (its parts in `self.side`), waiting for the other.
    pub(super) fn open(&mut self, hash: u64, id: ContentId, stage: Stage, side: RecordSide) {
        let slot = self.open_slot(hash, id, stage, side);
        self.wait(slot);
    }

    /// Queues the lone side of the call in `slot`, in time order.
    pub(super) fn wait(&mut self, slot: u32) {
        let call = &self.calls[slot as usize];
        let since = match call.stage {
            Stage::Answered => call.invite_time,
            Stage::ByeFirst => call.bye_time,
            Stage::Free | Stage::Ended => return,
        };
        let waiting = Waiting {
            since,
            slot,
            generation: call.generation,
        };
        if self.waiting.back().is_none_or(|last| last.since <= since) {
            self.waiting.push_back(waiting);
        } else {
            let at = self.waiting.partition_point(|other| other.since <= since);
            self.waiting.insert(at, waiting);
        }
        self.compact_waiting();
    }

    /// Drops the entries of calls that stopped waiting once they outnumber the lone sides by
    /// more than [`WAITING_SLACK`]: the queue stays within twice the lone sides (plus the
    /// slack), at an amortised constant cost per entry.
    pub(super) fn compact_waiting(&mut self) {
        if self.waiting.len() > 2 * self.lone + WAITING_SLACK {
            let calls = &self.calls;
            self.waiting.retain(|waiting| waiting.is_current(calls));
        }
    }

    /// Emits the lone sides in `aged` (slot and the time they waited since), in the order of
    /// that time then key, and closes their calls.
    pub(super) fn emit_lone<E: Emit + ?Sized>(
        &mut self,
        mut aged: Vec<(Timestamp, u32)>,
        out: &mut E,
    ) {
        let calls = &self.calls;
        aged.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| calls[a.1 as usize].key().cmp(calls[b.1 as usize].key()))
        });
        for &(_, slot) in &aged {
            let call = &self.calls[slot as usize];
            let cdr = match call.stage {
                Stage::Answered => {
                    let invite = call.invite(&self.ended);
                    call_cdr(
                        call.key(),
                        invite,
                        CallStatus::Unterminated,
                        Some(invite.time),
                        None,
                    )
                }
                Stage::ByeFirst => {
                    let bye = call.bye(&self.ended);
                    call_cdr(
                        call.key(),
                        bye,
                        CallStatus::UnmatchedBye,
                        None,
                        Some(bye.time),
                    )
                }
                Stage::Free | Stage::Ended => continue,
            };
            out.cdr(&cdr);
            self.remove(slot);
        }
        aged.clear();
        self.aged = aged;
    }
}
