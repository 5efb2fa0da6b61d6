//! Pairing: the merged stream of a main table's call records becomes CDRs.
//!
//! A call is its Call-ID plus the unordered pair of its tags, so the callee's BYE (From and To
//! tags swapped) pairs as well as the caller's. The earliest answered (2xx) INVITE starts the
//! call, the earliest BYE ends it; either may come first. A side still waiting for the other
//! once the stream is more than the maximum age past it is emitted alone (`unterminated` or
//! `unmatched_bye`), and so is everything still open at [`Pairer::finish`]. Ended calls are
//! remembered, compactly, for the maximum age after their end so that another BYE for them is
//! reported as a duplicate rather than taken for a new call.
//!
//! The result does not depend on the order of records that have the same time (as a merge of
//! several files orders them by file): among sides of one call with the same time the smaller
//! content wins, and an ended call's CDR is only made once the stream has passed both of its
//! times. Ageing and forgetting happen when the stream's newest time advances, before the
//! record that advanced it is paired.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use super::hash::{ContentId, content_id};
use super::layout::CallRecord;
use super::time::{Duration, Timestamp};
use super::{Cdr, Status};

/// The default maximum age, in seconds: one day.
pub const DEFAULT_MAX_AGE_SECONDS: u64 = 86_400;

/// What to do with an INVITE of the main table whose status code is not 2xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailedInvites {
    /// Make each a `failed` CDR (when there is no missed-calls table).
    MakeCdrs,
    /// Ignore them, counting them (when a missed-calls table has them too).
    Ignore,
}

/// How the pairer behaves; the caller gives the same options to each run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairingOptions {
    /// How far (in seconds) the newest record time must be past a lone side before it is
    /// emitted alone, and past an ended call's end before it is forgotten.
    pub max_age_seconds: u64,
    /// What non-2xx INVITEs become.
    pub failed_invites: FailedInvites,
}

impl PairingOptions {
    /// The options with the default maximum age and the given handling of failed INVITEs.
    pub fn new(failed_invites: FailedInvites) -> Self {
        Self {
            max_age_seconds: DEFAULT_MAX_AGE_SECONDS,
            failed_invites,
        }
    }
}

/// Something the pairer hands back while pairing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A finished call detail record.
    Cdr(Cdr),
    /// A record that made no CDR, and why.
    Problem(Problem),
}

/// A record the pairer refused; the caller reports it. Pairing goes on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A BYE for a call that already has one (the call's CDR is unaffected).
    #[error(
        "duplicate BYE at {time} for call \"{}\" (from tag \"{}\", to tag \"{}\"): the call already ended",
        .callid.escape_ascii(), .from_tag.escape_ascii(), .to_tag.escape_ascii()
    )]
    DuplicateBye {
        /// The BYE's Call-ID.
        callid: Vec<u8>,
        /// The BYE's From tag.
        from_tag: Vec<u8>,
        /// The BYE's To tag.
        to_tag: Vec<u8>,
        /// The BYE's time.
        time: Timestamp,
    },
    /// An INVITE whose status code is not three digits, so whether it was answered is unknown.
    #[error(
        "INVITE at {time} for call \"{}\" has status code \"{}\", which is not a 3-digit code",
        .callid.escape_ascii(), .sip_code.escape_ascii()
    )]
    UnreadableSipCode {
        /// The INVITE's Call-ID.
        callid: Vec<u8>,
        /// The status code as found.
        sip_code: Vec<u8>,
        /// The INVITE's time.
        time: Timestamp,
    },
}

/// Records that made neither a CDR nor a problem, counted since the pairer was made or restored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records of other methods than INVITE and BYE (ACK, CANCEL, MESSAGE, ...).
    pub other_methods: u64,
    /// Answered INVITEs that did not open a call: re-INVITEs, and INVITEs of a remembered ended
    /// call. (When an earlier INVITE displaces the one that opened the call, it is the displaced
    /// one that counts.)
    pub reinvites: u64,
    /// Non-2xx INVITEs ignored as [`FailedInvites::Ignore`] asks.
    pub ignored_failed_invites: u64,
}

/// A call's identity: its Call-ID and its two tags in byte order, each length-prefixed (see
/// [`push_part`]), so that different calls never have the same bytes.
type CallKey = Arc<[u8]>;

/// One side of an open call: an answered INVITE or a BYE.
///
/// Sides compare by time, then content, which is how the earliest one is chosen.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Side {
    time: Timestamp,
    /// Whether the record's From tag is the first tag of its [`CallKey`].
    from_is_first: bool,
    /// Length-prefixed parts: status code, reason phrase (both empty for a BYE), then extras.
    parts: Box<[u8]>,
}

/// A call seen in part.
///
/// Measured with `size_of` (x86_64, Rust 1.95): `Side` 40 bytes, `OpenCall` 80, a map entry
/// `(CallKey, OpenCall)` 96, a waiting entry `(Timestamp, CallKey)` 32; a remembered ended
/// call 24 in the map plus 24 in the queue. Adding the key's heap block (16 + about 70 bytes
/// for a 40-byte Call-ID and two 12-byte tags), the parts' (about 40 bytes with 30 bytes of
/// extras) and the map's and B-tree's slack, one open call takes about 350 bytes: 100,000
/// open calls take about 35 MiB.
#[derive(Clone, Debug)]
enum OpenCall {
    /// Answered, waiting for its BYE.
    Answered(Side),
    /// A BYE waiting for its INVITE.
    ByeFirst(Side),
    /// Both sides seen; its CDR is made once the stream passes both times.
    Ended { invite: Side, bye: Side },
}

/// Pairs a main table's call records, in time order, into CDRs.
///
/// Feed it records with [`push`](Self::push) (each gives zero or more [`Output`]s), then call
/// [`finish`](Self::finish) at the end of the input, or save it with
/// [`state::save`](super::state::save) to go on in a later run. Records of the missed-calls
/// table are not pushed: each becomes [`Cdr::failed`] directly, and does not move the time.
///
/// Memory: the open calls (about 350 bytes each, measured in the source) and, for duplicate-BYE
/// detection, about 60 bytes per call ended within the maximum age (a 128-bit hash of its key
/// and its end). That hash is not made to resist crafted collisions: a call whose Call-ID and
/// tags were crafted to collide with a call ended within the maximum age would have its
/// INVITE counted as a re-INVITE and its BYE reported as a duplicate.
#[derive(Debug)]
pub struct Pairer {
    options: PairingOptions,
    open: HashMap<CallKey, OpenCall>,
    /// The time each lone side ages from, for every `Answered` and `ByeFirst` call.
    waiting: BTreeSet<(Timestamp, CallKey)>,
    /// Every `Ended` call, whose CDR is made at the next advance of the newest time.
    settling: Vec<CallKey>,
    /// Ended calls by the hash of their key: the whole seconds of their end.
    closed: HashMap<ContentId, i64>,
    /// The same, in the order they ended, to forget them.
    closed_order: VecDeque<(i64, ContentId)>,
    newest: Option<Timestamp>,
    counts: Counts,
}

/// One side of an open call, in full, as a state file carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct CarriedSide {
    pub(super) is_invite: bool,
    pub(super) callid: Vec<u8>,
    pub(super) from_tag: Vec<u8>,
    pub(super) to_tag: Vec<u8>,
    pub(super) time: Timestamp,
    /// Empty for a BYE.
    pub(super) sip_code: Vec<u8>,
    /// Empty for a BYE.
    pub(super) sip_reason: Vec<u8>,
    pub(super) extras: Vec<Vec<u8>>,
}

/// An ended call remembered, as a state file carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct CarriedEnd {
    /// The whole seconds of its end.
    pub(super) end_seconds: i64,
    /// The hash of its key.
    pub(super) call: ContentId,
}

impl Pairer {
    /// A pairer that has seen nothing.
    pub fn new(options: PairingOptions) -> Self {
        Self {
            options,
            open: HashMap::new(),
            waiting: BTreeSet::new(),
            settling: Vec::new(),
            closed: HashMap::new(),
            closed_order: VecDeque::new(),
            newest: None,
            counts: Counts::default(),
        }
    }

    /// Pairs one record of the main table, appending what it produces to `out`: CDRs of calls
    /// that ended or aged, a `failed` CDR, or a problem. INVITEs and BYEs take part; other
    /// methods are only counted (their time still advances the newest time).
    ///
    /// A call's `answered` CDR comes out with the first record whose time is past both the
    /// call's start and end (or at [`finish`](Self::finish)), so that a same-time record read
    /// after the BYE still counts.
    pub fn push(&mut self, record: &CallRecord<'_>, out: &mut Vec<Output>) {
        self.advance(record.time(), out);
        match record.method() {
            b"INVITE" => self.invite(record, out),
            b"BYE" => self.bye(record, out),
            _ => self.counts.other_methods += 1,
        }
    }

    /// Ends the input: every call still open is emitted (ended calls as `answered`, lone
    /// INVITEs as `unterminated`, lone BYEs as `unmatched_bye`), whatever their age.
    pub fn finish(mut self, out: &mut Vec<Output>) {
        self.settle(out);
        while let Some((_, key)) = self.waiting.pop_first() {
            if let Some(call) = self.open.remove(&key) {
                out.push(Output::Cdr(open_call_cdr(&key, call)));
            }
        }
    }

    /// What was counted rather than paired (see [`Counts`]).
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The newest record time seen, if any record was.
    pub fn newest(&self) -> Option<Timestamp> {
        self.newest
    }

    /// How many calls are open (seen in part, or ended and not yet emitted).
    pub fn open_calls(&self) -> usize {
        self.open.len()
    }

    /// When `time` is past the newest time: emits the ended calls, makes `time` the newest,
    /// emits the lone sides now more than the maximum age old, forgets old ended calls.
    fn advance(&mut self, time: Timestamp, out: &mut Vec<Output>) {
        if self
            .newest
            .is_some_and(|newest| time.epoch_nanos() <= newest.epoch_nanos())
        {
            return;
        }
        self.settle(out);
        self.newest = Some(time);
        while let Some((since, _)) = self.waiting.first()
            && self.is_past_max_age(since)
        {
            let Some((_, key)) = self.waiting.pop_first() else {
                break;
            };
            if let Some(call) = self.open.remove(&key) {
                out.push(Output::Cdr(open_call_cdr(&key, call)));
            }
        }
        while let Some(&(end_seconds, call)) = self.closed_order.front()
            && !self.remembers_end(end_seconds)
        {
            self.closed_order.pop_front();
            if self.closed.get(&call) == Some(&end_seconds) {
                self.closed.remove(&call);
            }
        }
    }

    /// Makes the CDRs of all `Ended` calls, in key order.
    fn settle(&mut self, out: &mut Vec<Output>) {
        let mut settling = std::mem::take(&mut self.settling);
        settling.sort_unstable();
        for key in settling {
            if let Some(OpenCall::Ended { invite, bye }) = self.open.remove(&key) {
                self.close(&key, &invite, &bye, out);
            }
        }
    }

    fn is_past_max_age(&self, since: &Timestamp) -> bool {
        self.newest.is_some_and(|newest| {
            Duration::between(since, &newest).as_nanos()
                > i128::from(self.options.max_age_seconds) * 1_000_000_000
        })
    }

    /// Whether an ended call that ended at `end_seconds` is still remembered.
    fn remembers_end(&self, end_seconds: i64) -> bool {
        self.newest.is_some_and(|newest| {
            i128::from(newest.epoch_seconds()) - i128::from(end_seconds)
                <= i128::from(self.options.max_age_seconds)
        })
    }

    fn remembers_closed(&self, key: &[u8]) -> bool {
        self.closed
            .get(&content_id(key))
            .is_some_and(|&end_seconds| self.remembers_end(end_seconds))
    }

    fn invite(&mut self, record: &CallRecord<'_>, out: &mut Vec<Output>) {
        match answer_class(record.sip_code()) {
            Some(b'2') => self.answered_invite(record, out),
            Some(_) => match self.options.failed_invites {
                FailedInvites::MakeCdrs => out.push(Output::Cdr(Cdr::failed(record))),
                FailedInvites::Ignore => self.counts.ignored_failed_invites += 1,
            },
            None => out.push(Output::Problem(Problem::UnreadableSipCode {
                callid: record.callid().to_vec(),
                sip_code: record.sip_code().to_vec(),
                time: record.time(),
            })),
        }
    }

    fn answered_invite(&mut self, record: &CallRecord<'_>, out: &mut Vec<Output>) {
        let key = call_key(record);
        let invite = Side::of(record, true);
        match self.open.remove_entry(key.as_slice()) {
            None if self.remembers_closed(&key) => self.counts.reinvites += 1,
            None => self.wait(key.into(), OpenCall::Answered, invite),
            Some((key, OpenCall::Answered(current))) => {
                self.counts.reinvites += 1;
                let earliest = self.earliest_waiting(&key, current, invite).0;
                self.open.insert(key, OpenCall::Answered(earliest));
            }
            Some((key, OpenCall::ByeFirst(bye))) => {
                self.waiting.remove(&(bye.time, key.clone()));
                self.end(key, invite, bye, out);
            }
            Some((
                key,
                OpenCall::Ended {
                    invite: current,
                    bye,
                },
            )) => {
                self.counts.reinvites += 1;
                let invite = current.min(invite);
                self.open.insert(key, OpenCall::Ended { invite, bye });
            }
        }
    }

    fn bye(&mut self, record: &CallRecord<'_>, out: &mut Vec<Output>) {
        let key = call_key(record);
        let bye = Side::of(record, false);
        match self.open.remove_entry(key.as_slice()) {
            None if self.remembers_closed(&key) => {
                out.push(Output::Problem(Problem::DuplicateBye {
                    callid: record.callid().to_vec(),
                    from_tag: record.from_tag().to_vec(),
                    to_tag: record.to_tag().to_vec(),
                    time: record.time(),
                }));
            }
            None => self.wait(key.into(), OpenCall::ByeFirst, bye),
            Some((key, OpenCall::Answered(invite))) => {
                self.waiting.remove(&(invite.time, key.clone()));
                self.end(key, invite, bye, out);
            }
            Some((key, OpenCall::ByeFirst(current))) => {
                let (earliest, duplicate) = self.earliest_waiting(&key, current, bye);
                out.push(Output::Problem(duplicate_bye(&key, &duplicate)));
                self.open.insert(key, OpenCall::ByeFirst(earliest));
            }
            Some((
                key,
                OpenCall::Ended {
                    invite,
                    bye: current,
                },
            )) => {
                let (earliest, duplicate) = sorted(current, bye);
                out.push(Output::Problem(duplicate_bye(&key, &duplicate)));
                self.open.insert(
                    key,
                    OpenCall::Ended {
                        invite,
                        bye: earliest,
                    },
                );
            }
        }
    }

    /// Opens a call with one side, waiting for the other.
    fn wait(&mut self, key: CallKey, call: fn(Side) -> OpenCall, side: Side) {
        self.waiting.insert((side.time, key.clone()));
        self.open.insert(key, call(side));
    }

    /// The earlier of a waiting call's side and a new one (and the other), keeping the call's
    /// waiting entry on the earlier one's time.
    fn earliest_waiting(&mut self, key: &CallKey, current: Side, new: Side) -> (Side, Side) {
        if new < current {
            self.waiting.remove(&(current.time, key.clone()));
            self.waiting.insert((new.time, key.clone()));
        }
        sorted(current, new)
    }

    /// A call has both sides: its CDR now if the stream is already past both times, else at
    /// the next advance (a side with the same time may still come).
    fn end(&mut self, key: CallKey, invite: Side, bye: Side, out: &mut Vec<Output>) {
        let last = invite.time.epoch_nanos().max(bye.time.epoch_nanos());
        if self
            .newest
            .is_some_and(|newest| last < newest.epoch_nanos())
        {
            self.close(&key, &invite, &bye, out);
        } else {
            self.settling.push(key.clone());
            self.open.insert(key, OpenCall::Ended { invite, bye });
        }
    }

    /// Emits an ended call's CDR and remembers the call.
    fn close(&mut self, key: &[u8], invite: &Side, bye: &Side, out: &mut Vec<Output>) {
        out.push(Output::Cdr(call_cdr(
            key,
            invite,
            Status::Answered,
            Some(invite.time),
            Some(bye.time),
        )));
        self.remember(CarriedEnd {
            end_seconds: bye.time.epoch_seconds(),
            call: content_id(key),
        });
    }

    fn remember(&mut self, end: CarriedEnd) {
        self.closed.insert(end.call, end.end_seconds);
        self.closed_order.push_back((end.end_seconds, end.call));
    }

    /// Every side of every open call, in key order, the INVITE before the BYE.
    pub(super) fn carried_sides(&self) -> Vec<CarriedSide> {
        let mut calls: Vec<(&CallKey, &OpenCall)> = self.open.iter().collect();
        calls.sort_unstable_by_key(|&(key, _)| key);
        let mut sides = Vec::with_capacity(calls.len());
        for (key, call) in calls {
            let carry = |side: &Side, is_invite| carried_side(key, side, is_invite);
            match call {
                OpenCall::Answered(invite) => sides.push(carry(invite, true)),
                OpenCall::ByeFirst(bye) => sides.push(carry(bye, false)),
                OpenCall::Ended { invite, bye } => {
                    sides.extend([carry(invite, true), carry(bye, false)]);
                }
            }
        }
        sides
    }

    /// Every ended call still remembered, by end then hash.
    pub(super) fn carried_ends(&self) -> Vec<CarriedEnd> {
        let mut ends: Vec<CarriedEnd> = self
            .closed
            .iter()
            .filter(|&(_, &end_seconds)| self.remembers_end(end_seconds))
            .map(|(&call, &end_seconds)| CarriedEnd { end_seconds, call })
            .collect();
        ends.sort_unstable();
        ends
    }

    /// A pairer carrying what [`carried_sides`](Self::carried_sides),
    /// [`carried_ends`](Self::carried_ends) and [`newest`](Self::newest) gave. A call with two
    /// INVITE sides or two BYE sides is refused (`Err` holds its Call-ID).
    pub(super) fn restored(
        options: PairingOptions,
        newest: Option<Timestamp>,
        sides: Vec<CarriedSide>,
        ends: Vec<CarriedEnd>,
    ) -> Result<Self, Vec<u8>> {
        let mut pairer = Self::new(options);
        pairer.newest = newest;
        for carried in sides {
            let key = key_of(&carried.callid, &carried.from_tag, &carried.to_tag);
            let side = Side::new(
                carried.time,
                &carried.from_tag,
                &carried.to_tag,
                [carried.sip_code.as_slice(), carried.sip_reason.as_slice()]
                    .into_iter()
                    .chain(carried.extras.iter().map(Vec::as_slice)),
            );
            let call = match (pairer.open.remove_entry(key.as_slice()), carried.is_invite) {
                (None, true) => OpenCall::Answered(side),
                (None, false) => OpenCall::ByeFirst(side),
                (Some((_, OpenCall::Answered(invite))), false) => {
                    OpenCall::Ended { invite, bye: side }
                }
                (Some((_, OpenCall::ByeFirst(bye))), true) => OpenCall::Ended { invite: side, bye },
                _ => return Err(carried.callid),
            };
            pairer.open.insert(key.into(), call);
        }
        for (key, call) in &pairer.open {
            match call {
                OpenCall::Answered(side) | OpenCall::ByeFirst(side) => {
                    pairer.waiting.insert((side.time, key.clone()));
                }
                OpenCall::Ended { .. } => pairer.settling.push(key.clone()),
            }
        }
        for end in ends {
            pairer.remember(end);
        }
        Ok(pairer)
    }
}

impl Side {
    /// The side a record gives: an INVITE keeps its status code and reason, a BYE does not.
    fn of(record: &CallRecord<'_>, is_invite: bool) -> Self {
        let answer = if is_invite {
            [record.sip_code(), record.sip_reason()]
        } else {
            [&[][..], &[][..]]
        };
        Self::new(
            record.time(),
            record.from_tag(),
            record.to_tag(),
            answer.into_iter().chain(record.extras()),
        )
    }

    fn new<'a>(
        time: Timestamp,
        from_tag: &[u8],
        to_tag: &[u8],
        parts: impl Iterator<Item = &'a [u8]>,
    ) -> Self {
        let mut bytes = Vec::new();
        for part in parts {
            push_part(&mut bytes, part);
        }
        Self {
            time,
            from_is_first: from_tag <= to_tag,
            parts: bytes.into_boxed_slice(),
        }
    }

    /// The status code, the reason phrase (both empty for a BYE) and the extras.
    fn answer_and_extras(&self) -> (&[u8], &[u8], Parts<'_>) {
        let mut parts = Parts(&self.parts);
        let sip_code = parts.next().unwrap_or_default();
        let sip_reason = parts.next().unwrap_or_default();
        (sip_code, sip_reason, parts)
    }

    /// The record's (From tag, To tag), from its call's key.
    fn tags<'k>(&self, key: &'k [u8]) -> (&'k [u8], &'k [u8]) {
        let (_, first, second) = key_parts(key);
        if self.from_is_first {
            (first, second)
        } else {
            (second, first)
        }
    }
}

/// `(smaller, larger)`.
fn sorted(one: Side, other: Side) -> (Side, Side) {
    if other < one {
        (other, one)
    } else {
        (one, other)
    }
}

/// The first digit of a three-digit status code, `None` if it is not one.
fn answer_class(sip_code: &[u8]) -> Option<u8> {
    match sip_code {
        [class @ b'1'..=b'6', b'0'..=b'9', b'0'..=b'9'] => Some(*class),
        _ => None,
    }
}

fn call_key(record: &CallRecord<'_>) -> Vec<u8> {
    key_of(record.callid(), record.from_tag(), record.to_tag())
}

fn key_of(callid: &[u8], from_tag: &[u8], to_tag: &[u8]) -> Vec<u8> {
    let (first, second) = if from_tag <= to_tag {
        (from_tag, to_tag)
    } else {
        (to_tag, from_tag)
    };
    let mut key = Vec::with_capacity(callid.len() + first.len() + second.len() + 3);
    for part in [callid, first, second] {
        push_part(&mut key, part);
    }
    key
}

/// A key's Call-ID, first tag and second tag.
fn key_parts(key: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let mut parts = Parts(key);
    let mut next = || parts.next().unwrap_or_default();
    (next(), next(), next())
}

fn duplicate_bye(key: &[u8], bye: &Side) -> Problem {
    let (from_tag, to_tag) = bye.tags(key);
    Problem::DuplicateBye {
        callid: key_parts(key).0.to_vec(),
        from_tag: from_tag.to_vec(),
        to_tag: to_tag.to_vec(),
        time: bye.time,
    }
}

/// The CDR of an open call emitted as it is: a lone side alone, an ended call answered.
fn open_call_cdr(key: &[u8], call: OpenCall) -> Cdr {
    match call {
        OpenCall::Answered(invite) => {
            call_cdr(key, &invite, Status::Unterminated, Some(invite.time), None)
        }
        OpenCall::ByeFirst(bye) => call_cdr(key, &bye, Status::UnmatchedBye, None, Some(bye.time)),
        OpenCall::Ended { invite, bye } => call_cdr(
            key,
            &invite,
            Status::Answered,
            Some(invite.time),
            Some(bye.time),
        ),
    }
}

/// A CDR with the tags, answer and extras of `side`.
fn call_cdr(
    key: &[u8],
    side: &Side,
    status: Status,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
) -> Cdr {
    let (from_tag, to_tag) = side.tags(key);
    let (sip_code, sip_reason, extras) = side.answer_and_extras();
    Cdr {
        callid: key_parts(key).0.to_vec(),
        from_tag: from_tag.to_vec(),
        to_tag: to_tag.to_vec(),
        start,
        end,
        duration: start
            .zip(end)
            .map(|(start, end)| Duration::between(&start, &end)),
        sip_code: sip_code.to_vec(),
        sip_reason: sip_reason.to_vec(),
        status,
        extras: extras.map(<[u8]>::to_vec).collect(),
    }
}

fn carried_side(key: &[u8], side: &Side, is_invite: bool) -> CarriedSide {
    let (from_tag, to_tag) = side.tags(key);
    let (sip_code, sip_reason, extras) = side.answer_and_extras();
    CarriedSide {
        is_invite,
        callid: key_parts(key).0.to_vec(),
        from_tag: from_tag.to_vec(),
        to_tag: to_tag.to_vec(),
        time: side.time,
        sip_code: sip_code.to_vec(),
        sip_reason: sip_reason.to_vec(),
        extras: extras.map(<[u8]>::to_vec).collect(),
    }
}

/// Appends `part` with its length in front (LEB128), so parts can be read back with [`Parts`].
fn push_part(bytes: &mut Vec<u8>, part: &[u8]) {
    let mut length = part.len();
    while length >= 0x80 {
        bytes.push((length & 0x7f) as u8 | 0x80);
        length >>= 7;
    }
    bytes.push(length as u8);
    bytes.extend_from_slice(part);
}

/// The parts of bytes written by [`push_part`], in order.
struct Parts<'b>(&'b [u8]);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdr::layout::Layout;

    /// A pairer fed default-layout lines with one extra column (`extra8`).
    struct Run {
        layout: Layout,
        pairer: Pairer,
        out: Vec<Output>,
    }

    impl Run {
        fn new(failed_invites: FailedInvites, max_age_seconds: u64) -> Self {
            let layout = match Layout::kamailio_default(8) {
                Ok(layout) => layout,
                Err(error) => panic!("{error}"),
            };
            let options = PairingOptions {
                max_age_seconds,
                failed_invites,
            };
            Self {
                layout,
                pairer: Pairer::new(options),
                out: Vec::new(),
            }
        }

        fn day() -> Self {
            Self::new(FailedInvites::Ignore, DEFAULT_MAX_AGE_SECONDS)
        }

        /// Pushes `method|from_tag|to_tag|callid|sip_code|sip_reason|time|extra8`.
        fn push(&mut self, line: &str) {
            let fields: Vec<Vec<u8>> = line.split('|').map(|f| f.as_bytes().to_vec()).collect();
            match self.layout.view(&fields) {
                Ok(record) => self.pairer.push(&record, &mut self.out),
                Err(error) => panic!("{line}: {error}"),
            }
        }

        /// What came out so far, as CSV-like rows and problem messages.
        fn taken(&mut self) -> Vec<String> {
            rows(std::mem::take(&mut self.out))
        }

        fn finished(mut self) -> Vec<String> {
            self.pairer.finish(&mut self.out);
            rows(self.out)
        }
    }

    fn rows(out: Vec<Output>) -> Vec<String> {
        out.into_iter()
            .map(|output| match output {
                Output::Cdr(cdr) => cdr
                    .fields()
                    .iter()
                    .map(|field| String::from_utf8_lossy(field).into_owned())
                    .collect::<Vec<_>>()
                    .join(","),
                Output::Problem(problem) => problem.to_string(),
            })
            .collect()
    }

    #[test]
    fn an_invite_and_its_bye_make_one_answered_cdr() {
        let mut run = Run::day();
        run.push("INVITE|a|b|cid|200|OK|1700000000|alice");
        run.push("BYE|a|b|cid|200|OK|1700000065|bye-extra");
        assert_eq!(
            run.taken(),
            Vec::<String>::new(),
            "made once the stream passes the BYE"
        );
        run.push("ACK|a|b|other|200|OK|1700000066|");
        assert_eq!(
            run.taken(),
            ["cid,a,b,2023-11-14T22:13:20Z,2023-11-14T22:14:25Z,65,200,OK,answered,alice"]
        );
        assert_eq!(run.pairer.counts().other_methods, 1);
        assert_eq!(run.finished(), Vec::<String>::new());
    }

    #[test]
    fn the_callees_bye_with_swapped_tags_pairs_and_the_callers_tags_stay() {
        let mut run = Run::day();
        run.push("INVITE|caller|callee|cid|200|OK|1700000000.120|x");
        run.push("BYE|callee|caller|cid|200|OK|1700000065.5|y");
        assert_eq!(
            run.finished(),
            [
                "cid,caller,callee,2023-11-14T22:13:20.120Z,2023-11-14T22:14:25.5Z,65.380,200,OK,answered,x"
            ]
        );
    }

    #[test]
    fn a_reinvite_does_not_restart_the_call() {
        let mut run = Run::day();
        run.push("INVITE|zz|aa|cid|200|OK|1700000000|first");
        run.push("INVITE|aa|zz|cid|200|OK|1700000030|reinvite");
        run.push("BYE|zz|aa|cid|200|OK|1700000060|");
        assert_eq!(run.pairer.counts().reinvites, 1);
        assert_eq!(
            run.finished(),
            ["cid,zz,aa,2023-11-14T22:13:20Z,2023-11-14T22:14:20Z,60,200,OK,answered,first"]
        );
    }

    #[test]
    fn an_earlier_invite_read_later_becomes_the_start() {
        let mut run = Run::day();
        run.push("INVITE|b|a|cid|200|OK|1700000010|reinvite");
        run.push("INVITE|a|b|cid|202|Accepted|1700000000|first");
        run.push("BYE|a|b|cid|200|OK|1700000060|");
        assert_eq!(
            run.finished(),
            ["cid,a,b,2023-11-14T22:13:20Z,2023-11-14T22:14:20Z,60,202,Accepted,answered,first"]
        );
    }

    #[test]
    fn an_earlier_invite_read_later_also_ages_from_its_time() {
        let mut run = Run::new(FailedInvites::Ignore, 100);
        run.push("INVITE|a|b|cid|200|OK|1700000050|reinvite");
        run.push("INVITE|a|b|cid|200|OK|1700000000|first");
        run.push("ACK|x|y|z|200|OK|1700000100.5|");
        assert_eq!(
            run.taken(),
            ["cid,a,b,2023-11-14T22:13:20Z,,,200,OK,unterminated,first"]
        );
    }

    #[test]
    fn calls_ended_at_the_same_time_come_out_in_call_order() {
        let mut run = Run::day();
        for callid in ["c", "a", "b"] {
            run.push(&format!("INVITE|x|y|{callid}|200|OK|1700000000|"));
        }
        for callid in ["b", "c", "a"] {
            run.push(&format!("BYE|x|y|{callid}|200|OK|1700000001|"));
        }
        let callids: Vec<String> = run
            .finished()
            .iter()
            .filter_map(|row| row.split(',').next().map(str::to_owned))
            .collect();
        assert_eq!(callids, ["a", "b", "c"]);
    }

    #[test]
    fn a_bye_read_before_its_invite_waits_for_it() {
        let mut run = Run::day();
        run.push("BYE|b|a|cid|200|OK|1700000060|bye");
        run.push("INVITE|a|b|cid|200|OK|1700000000|invite");
        assert_eq!(
            run.finished(),
            ["cid,a,b,2023-11-14T22:13:20Z,2023-11-14T22:14:20Z,60,200,OK,answered,invite"]
        );
    }

    #[test]
    fn a_second_bye_is_reported_not_a_second_cdr() {
        let mut run = Run::day();
        run.push("INVITE|a|b|cid|200|OK|1700000000|");
        run.push("BYE|a|b|cid|200|OK|1700000060|");
        run.push("BYE|b|a|cid|200|OK|1700000060|");
        run.push("BYE|b|a|cid|200|OK|1700000070|");
        assert_eq!(
            run.finished(),
            [
                "duplicate BYE at 2023-11-14T22:14:20Z for call \"cid\" (from tag \"a\", to tag \"b\"): the call already ended",
                "cid,a,b,2023-11-14T22:13:20Z,2023-11-14T22:14:20Z,60,200,OK,answered,",
                "duplicate BYE at 2023-11-14T22:14:30Z for call \"cid\" (from tag \"b\", to tag \"a\"): the call already ended",
            ]
        );
    }

    #[test]
    fn lone_sides_age_out_only_past_the_maximum_age() {
        let mut run = Run::new(FailedInvites::Ignore, 100);
        run.push("INVITE|a|b|open|200|OK|1700000000|invite-extra");
        run.push("BYE|c|d|orphan|200|OK|1700000000.5|bye-extra");
        run.push("ACK|x|y|z|200|OK|1700000100|");
        assert_eq!(
            run.taken(),
            Vec::<String>::new(),
            "exactly the maximum age is not past it"
        );
        run.push("ACK|x|y|z|200|OK|1700000100.001|");
        assert_eq!(
            run.taken(),
            ["open,a,b,2023-11-14T22:13:20Z,,,200,OK,unterminated,invite-extra"]
        );
        run.push("ACK|x|y|z|200|OK|1700000100.5|");
        assert_eq!(run.taken(), Vec::<String>::new());
        run.push("ACK|x|y|z|200|OK|1700000100.501|");
        assert_eq!(
            run.taken(),
            ["orphan,c,d,,2023-11-14T22:13:20.5Z,,,,unmatched_bye,bye-extra"]
        );
        run.push("BYE|b|a|open|200|OK|1700000102|late");
        assert_eq!(
            run.finished(),
            ["open,b,a,,2023-11-14T22:15:02Z,,,,unmatched_bye,late"],
            "an aged INVITE is gone: its late BYE is alone"
        );
    }

    #[test]
    fn finish_emits_everything_open_whatever_its_age() {
        let mut run = Run::day();
        run.push("INVITE|a|b|open|200|OK|1700000000|");
        run.push("BYE|c|d|orphan|200|OK|1700000001|");
        run.push("INVITE|e|f|ended|200|OK|1700000001|");
        run.push("BYE|e|f|ended|200|OK|1700000002|");
        assert_eq!(run.pairer.open_calls(), 3);
        assert_eq!(
            run.finished(),
            [
                "ended,e,f,2023-11-14T22:13:21Z,2023-11-14T22:13:22Z,1,200,OK,answered,",
                "open,a,b,2023-11-14T22:13:20Z,,,200,OK,unterminated,",
                "orphan,c,d,,2023-11-14T22:13:21Z,,,,unmatched_bye,",
            ]
        );
    }

    #[test]
    fn ended_calls_are_forgotten_past_the_maximum_age() {
        let mut run = Run::new(FailedInvites::Ignore, 100);
        run.push("INVITE|a|b|cid|200|OK|1700000000|");
        run.push("BYE|a|b|cid|200|OK|1700000010|");
        run.push("BYE|a|b|cid|200|OK|1700000110|");
        assert_eq!(
            run.taken().len(),
            2,
            "the CDR, then a duplicate within the maximum age"
        );
        run.push("BYE|a|b|cid|200|OK|1700000111|");
        assert_eq!(
            run.finished(),
            ["cid,a,b,,2023-11-14T22:15:11Z,,,,unmatched_bye,"],
            "past it, the call is forgotten and the BYE is alone"
        );
    }

    #[test]
    fn failed_invites_become_failed_cdrs_or_are_counted_as_asked() {
        let lines = [
            "INVITE|a|b|busy|486|Busy Here|1700000000|x",
            "INVITE|a|b|odd|2000|OK|1700000000|",
        ];
        let mut run = Run::new(FailedInvites::MakeCdrs, 100);
        lines.iter().for_each(|line| run.push(line));
        assert_eq!(
            run.finished(),
            [
                "busy,a,b,2023-11-14T22:13:20Z,,0,486,Busy Here,failed,x",
                "INVITE at 2023-11-14T22:13:20Z for call \"odd\" has status code \"2000\", which is not a 3-digit code",
            ]
        );
        let mut run = Run::new(FailedInvites::Ignore, 100);
        lines.iter().for_each(|line| run.push(line));
        assert_eq!(run.pairer.counts().ignored_failed_invites, 1);
        assert_eq!(run.finished().len(), 1);
    }

    #[test]
    fn same_time_invites_give_the_same_cdr_in_either_order() {
        let invites = [
            "INVITE|b|a|cid|200|OK|1700000000|from-callee",
            "INVITE|a|b|cid|200|OK|1700000000|from-caller",
        ];
        let bye = "BYE|a|b|cid|200|OK|1700000000|";
        let mut runs = Vec::new();
        for lines in [[invites[0], bye, invites[1]], [invites[1], bye, invites[0]]] {
            let mut run = Run::day();
            lines.iter().for_each(|line| run.push(line));
            runs.push(run.finished());
        }
        assert_eq!(runs[0], runs[1]);
        // Which one is arbitrary (the smaller side: here the one whose From tag is the
        // greater tag), but it is the same whatever the order.
        assert_eq!(
            runs[0],
            ["cid,b,a,2023-11-14T22:13:20Z,2023-11-14T22:13:20Z,0,200,OK,answered,from-callee"]
        );
    }

    #[test]
    fn parts_read_back_as_written() {
        let long = vec![7u8; 300];
        let mut bytes = Vec::new();
        for part in [&b""[..], b"x", &long] {
            push_part(&mut bytes, part);
        }
        assert_eq!(Parts(&bytes).collect::<Vec<_>>(), [&b""[..], b"x", &long]);
    }
}
