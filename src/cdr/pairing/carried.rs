//! What a pairer carries from one run to the next: every side of every open call, in full,
//! and the ended calls still remembered; and a pairer restored from them (see `state`).

use super::keys::KeyParts;
use super::slots::{Call, Side, Stage, call_cdr};
use super::waiting::Waiting;
use super::{Pairer, PairingOptions};
use crate::cdr::CallStatus;
use crate::cdr::hash::ContentId;
use crate::cdr::parts::push_part;
use crate::cdr::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CarriedSide {
    pub(crate) is_invite: bool,
    pub(crate) callid: Vec<u8>,
    pub(crate) from_tag: Vec<u8>,
    pub(crate) to_tag: Vec<u8>,
    pub(crate) time: Timestamp,
    /// Empty for a BYE.
    pub(crate) sip_code: Vec<u8>,
    /// Empty for a BYE.
    pub(crate) sip_reason: Vec<u8>,
    pub(crate) extras: Vec<Vec<u8>>,
}

/// An ended call remembered, as a state file carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct CarriedEnd {
    /// The whole seconds of its end.
    pub(crate) end_seconds: i64,
    /// The hash of its key.
    pub(crate) call: ContentId,
}

impl Pairer {
    /// Every side of every open call, in key order, the INVITE before the BYE.
    pub(crate) fn carried_sides(&self) -> Vec<CarriedSide> {
        let mut calls: Vec<&Call> = self
            .calls
            .iter()
            .filter(|call| call.stage != Stage::Free)
            .collect();
        calls.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        let mut sides = Vec::with_capacity(calls.len());
        for call in calls {
            let key = call.key();
            let (invite, bye) = (call.invite(&self.ended), call.bye(&self.ended));
            match call.stage {
                Stage::Answered => sides.push(carried_side(key, invite, true)),
                Stage::ByeFirst => sides.push(carried_side(key, bye, false)),
                Stage::Ended => sides.extend([
                    carried_side(key, invite, true),
                    carried_side(key, bye, false),
                ]),
                Stage::Free => {}
            }
        }
        sides
    }

    /// Every ended call still remembered, by end then hash.
    pub(crate) fn carried_ends(&self) -> Vec<CarriedEnd> {
        let mut ends: Vec<CarriedEnd> = self
            .closed
            .iter()
            .filter(|&(_, end_seconds)| self.remembers_end(end_seconds))
            .map(|(call, end_seconds)| CarriedEnd { end_seconds, call })
            .collect();
        ends.sort_unstable();
        ends
    }

    /// A pairer carrying what [`carried_sides`](Self::carried_sides),
    /// [`carried_ends`](Self::carried_ends) and [`newest`](Self::newest) gave. A call with two
    /// INVITE sides or two BYE sides is refused (`Err` holds its Call-ID).
    pub(crate) fn restored(
        options: PairingOptions,
        newest: Option<Timestamp>,
        sides: Vec<CarriedSide>,
        ends: Vec<CarriedEnd>,
    ) -> Result<Self, Vec<u8>> {
        let mut pairer = Self::new(options);
        pairer.newest = newest;
        for carried in sides {
            let key = KeyParts::new(&carried.callid, &carried.from_tag, &carried.to_tag);
            pairer.side.clear();
            for part in [carried.sip_code.as_slice(), carried.sip_reason.as_slice()]
                .into_iter()
                .chain(carried.extras.iter().map(Vec::as_slice))
            {
                push_part(&mut pairer.side, part);
            }
            let hash = key.fast_hash();
            let side = (carried.time, key.from_is_first);
            let found = pairer
                .find(&key, hash)
                .map(|slot| (slot, pairer.calls[slot as usize].stage));
            match (found, carried.is_invite) {
                (None, is_invite) => {
                    let stage = if is_invite {
                        Stage::Answered
                    } else {
                        Stage::ByeFirst
                    };
                    let id = key.content_id(&mut pairer.key);
                    pairer.open_slot(hash, id, stage, side);
                }
                (Some((slot, Stage::Answered)), false) | (Some((slot, Stage::ByeFirst)), true) => {
                    pairer.put_side(slot, carried.is_invite, side);
                    pairer.set_ended(slot);
                }
                _ => return Err(carried.callid),
            }
        }
        for (slot, call) in pairer.calls.iter().enumerate() {
            let since = match call.stage {
                Stage::Answered => call.invite_time,
                Stage::ByeFirst => call.bye_time,
                Stage::Free | Stage::Ended => continue,
            };
            pairer.waiting.push_back(Waiting {
                since,
                slot: slot as u32,
                generation: call.generation,
            });
        }
        pairer
            .waiting
            .make_contiguous()
            .sort_unstable_by_key(|waiting| waiting.since);
        for end in ends {
            pairer.remember(end);
        }
        Ok(pairer)
    }
}

pub(crate) fn carried_side(key: &[u8], side: Side<'_>, is_invite: bool) -> CarriedSide {
    let cdr = call_cdr(key, side, CallStatus::Answered, None, None);
    CarriedSide {
        is_invite,
        callid: cdr.callid.to_vec(),
        from_tag: cdr.from_tag.to_vec(),
        to_tag: cdr.to_tag.to_vec(),
        time: side.time,
        sip_code: cdr.sip_code.to_vec(),
        sip_reason: cdr.sip_reason.to_vec(),
        extras: cdr.extras.map(<[u8]>::to_vec).collect(),
    }
}
