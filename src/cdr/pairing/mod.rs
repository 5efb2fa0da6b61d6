//! Pairing: the merged stream of a main table's call records becomes CDRs.
//!
//! A call is its Call-ID plus the unordered pair of its tags, so the callee's BYE (From and To
//! tags swapped) pairs as well as the caller's. The earliest answered (2xx) INVITE starts the
//! call, the earliest BYE ends it; either may come first. A side still waiting for the other
//! once the stream is more than the maximum age past it is emitted alone (`unterminated` or
//! `unmatched_bye`), and so is everything still open at [`Pairer::finish`]. Ended calls are
//! remembered, compactly, for a short window of record time after their end so that another
//! BYE for them is counted ([`Counts::extra_byes`]) rather than taken for a new call. Such a
//! BYE is normal SIP: the other party's BYE crossing the first (both hung up at once), or a
//! retransmission; neither is a problem.
//!
//! That window is [`ENDED_MEMORY_SECONDS`] (or the maximum age, if shorter), not the maximum
//! age, so that memory is bounded by the calls open at once and the call rate times the window,
//! not by the input: with a day's maximum age, remembering every ended call for a day would
//! make memory grow with a day of traffic. An extra BYE is a retransmission, or the other
//! party's BYE crossing the first, and a re-INVITE logged after the BYE is one whose 2xx
//! crossed the BYE: all come within seconds of the end (a non-INVITE transaction gives up
//! after SIP's timer F, 32 s; an INVITE's retransmissions stop after timer B, also 32 s), so
//! five minutes leave a wide margin (also for clocks of several proxies that differ). Should an
//! extra BYE still come after the window, the call is forgotten and the BYE is taken for
//! a BYE of a call not seen yet: it waits for an INVITE like any lone BYE and, none coming,
//! is emitted as `unmatched_bye` once the maximum age has passed (or at the end of a run
//! without a state). Nothing vanishes, and the call's `answered` CDR is not made twice: it was
//! made once, and a lone BYE makes only an `unmatched_bye`. A re-INVITE logged after the
//! window would likewise wait alone and become `unterminated`.
//!
//! The window is counted from the newest record time seen, in this run or in the earlier runs
//! whose state was carried. Within a run the files are merged by time, so a record is not read
//! later than the window after the records around it (unless its own file goes back in time
//! by more than that). Across incremental runs it can be:
//! a writer's file sealed long after the others brings, in a later run, records older than
//! what earlier runs read. Its records of calls that ended more than the window before the
//! newest time are then checked against calls no longer remembered: an extra BYE is a lone
//! BYE (`unmatched_bye`), a re-INVITE a lone INVITE (`unterminated`), and should such a file
//! hold both a re-INVITE and an extra BYE of one forgotten call, they pair into a second
//! `answered` CDR for it. (With calls remembered for the whole maximum age this would take a
//! file read a day late; it is the price of memory bounded by the traffic of the window.)
//!
//! The result does not depend on the order of records that have the same time (as a merge of
//! several files orders them by file): among sides of one call with the same time the smaller
//! content wins, and an ended call's CDR is only made once the stream has passed both of its
//! times. Ageing and forgetting happen when the stream's newest time advances, before the
//! record that advanced it is paired.
//!
//! The work per record is a fixed amount whatever the number of open calls: the record's key is
//! built in a reused buffer and hashed once; open calls live in one table of slots found
//! through an index by that hash; lone sides wait in a queue in time order, from which calls
//! that stopped waiting are dropped lazily; CDRs are handed out borrowed ([`Emit`]). A caller
//! that reads the records on another thread can prepare their keys there ([`PreparedKeys`]),
//! and have the pairer read the memory of a few dozen records at once before pairing them
//! ([`Pairer::warm`]), so that their cache misses overlap.

mod ahead;
mod carried;
mod ended;
mod index;
mod keys;
mod slots;
mod waiting;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::VecDeque;

use self::ended::EndedCalls;
use self::index::CallIndex;
use self::keys::{Ahead, fill_side};
use self::slots::{Call, NO_SLOT, Side, Stage};
use self::waiting::Waiting;
use super::layout::CallRecord;
use super::time::Timestamp;
use super::{Cdr, CdrView};

pub(crate) use self::carried::{CarriedEnd, CarriedSide};
pub(crate) use self::keys::{PreparedKeys, answer_class};

/// The default maximum age, in seconds: one day.
pub const DEFAULT_MAX_AGE_SECONDS: u64 = 86_400;

/// How long (seconds of record time) an ended call is remembered after its end, to count a
/// later BYE for it as an extra BYE of the call, when the maximum age is longer: five minutes, well past
/// the 32 s after which SIP stops retransmitting (see the module documentation).
pub const ENDED_MEMORY_SECONDS: u64 = 300;

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
    /// emitted alone. An ended call is forgotten once the newest time is this far past its end,
    /// or [`ENDED_MEMORY_SECONDS`] if that is shorter.
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
pub enum Paired {
    /// A finished call detail record.
    Cdr(Cdr),
    /// A record that made no CDR, and why.
    Problem(Problem),
}

/// Where the pairer hands what it makes, in order: [`Pairer::push_to`] and
/// [`Pairer::finish_to`] call it. A `Vec<Paired>` collects owned CDRs; a writer can take each
/// CDR as it is borrowed, with no copy made.
pub trait Emit {
    /// A finished call detail record, borrowed for the call only.
    fn cdr(&mut self, cdr: &CdrView<'_>);
    /// A record that made no CDR, and why.
    fn problem(&mut self, problem: Problem);
}

impl Emit for Vec<Paired> {
    fn cdr(&mut self, cdr: &CdrView<'_>) {
        self.push(Paired::Cdr(cdr.to_cdr()));
    }

    fn problem(&mut self, problem: Problem) {
        self.push(Paired::Problem(problem));
    }
}

/// A record the pairer refused; the caller reports it. Pairing goes on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
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
    /// BYEs of a call that already had one, while it is open or remembered as ended: the other
    /// party's BYE crossing the first (both hung up at once; From and To tags swapped), or the
    /// same BYE logged again (a retransmission). Normal SIP: the call's one CDR is unaffected.
    pub extra_byes: u64,
}

/// Pairs a main table's call records, in time order, into CDRs.
///
/// Feed it records with [`push_to`](Self::push_to), which hands what they make (CDRs, borrowed,
/// and problems) to an [`Emit`] as it is made (a `Vec<Paired>` collects them owned), then call
/// [`finish_to`](Self::finish_to) at the end of the input, or save it with
/// [`state::save`](super::state::save) to go on in a later run. Records of the missed-calls
/// table are not pushed: each becomes [`Cdr::failed`] directly, and does not move the time.
///
/// Memory: the open calls (about 250 bytes each, measured in the source) and, to tell extra
/// BYEs, 24 to 48 bytes per call ended within the last [`ENDED_MEMORY_SECONDS`] of record
/// time (a 128-bit hash of its key and its end, in a table at most three quarters full; a
/// quarter more calls are kept, as they are swept out every quarter of that window): at 1,000
/// calls a second, 12 MiB. That hash is not made
/// to resist crafted collisions: a call whose Call-ID and tags were crafted to collide with a
/// call ended within that window would have its INVITE counted as a re-INVITE and its BYE
/// counted as an extra BYE.
#[derive(Debug)]
pub struct Pairer {
    options: PairingOptions,
    /// The open calls' slots; the free ones are chained from `free`.
    calls: Vec<Call>,
    free: u32,
    /// The slots of the open calls by the fast hash of their key.
    index: CallIndex,
    /// Slots in use.
    live: usize,
    /// Slots holding a lone side.
    lone: usize,
    /// The time each lone side ages from, in time order; entries of calls that stopped
    /// waiting stay until they reach the front or the queue is compacted.
    waiting: VecDeque<Waiting>,
    /// Every `Ended` call (slot, generation), whose CDR is made at the next advance.
    settling: Vec<(u32, u32)>,
    /// The parts of the ended calls' other sides, emptied when they are settled. (Offsets are
    /// 32 bits: 4 GiB of records with one same time would be needed to overflow them.)
    ended: Vec<u8>,
    /// Ended calls by the hash of their key: the whole seconds of their end. Some may be past
    /// remembering; they are dropped every quarter of the memory window.
    closed: EndedCalls,
    /// When (whole seconds of the newest time) to next drop the ended calls past remembering.
    next_purge: i64,
    newest: Option<Timestamp>,
    counts: Counts,
    /// The key of the record being paired, as kept, when it is needed.
    key: Vec<u8>,
    /// The side of the record being paired (its parts), when it is needed.
    side: Vec<u8>,
    /// Lone sides ageing out now.
    aged: Vec<(Timestamp, u32)>,
}

/// The record being paired, as a side: its time and whether its From tag is its key's first
/// tag (its parts are the pairer's `side`).
type RecordSide = (Timestamp, bool);

impl Pairer {
    /// A pairer that has seen nothing.
    pub fn new(options: PairingOptions) -> Self {
        Self {
            options,
            calls: Vec::new(),
            free: NO_SLOT,
            index: CallIndex::default(),
            live: 0,
            lone: 0,
            waiting: VecDeque::new(),
            settling: Vec::new(),
            ended: Vec::new(),
            closed: EndedCalls::default(),
            next_purge: i64::MIN,
            newest: None,
            counts: Counts::default(),
            key: Vec::new(),
            side: Vec::new(),
            aged: Vec::new(),
        }
    }

    /// Pairs one record of the main table, handing what it produces to `out` as it is made:
    /// CDRs of calls that ended or aged, a `failed` CDR, or a problem. INVITEs and BYEs take
    /// part; other methods are only counted (their time still advances the newest time).
    ///
    /// A call's `answered` CDR comes out with the first record whose time is past both the
    /// call's start and end (or at [`finish_to`](Self::finish_to)), so that a same-time record
    /// read after the BYE still counts.
    pub fn push_to<E: Emit + ?Sized>(&mut self, record: &CallRecord<'_>, out: &mut E) {
        self.push_ahead_to(record, None, out);
    }

    /// [`push_to`](Self::push_to) of a record prepared ahead: entry `index` of `prepared`
    /// must have been [`PreparedKeys::push`]ed for this same record (on the thread that reads
    /// the records, say). The result is the same as [`push_to`](Self::push_to)'s.
    pub(crate) fn push_prepared_to<E: Emit + ?Sized>(
        &mut self,
        record: &CallRecord<'_>,
        prepared: &PreparedKeys,
        index: usize,
        out: &mut E,
    ) {
        self.push_ahead_to(record, prepared.get(index), out);
    }

    fn push_ahead_to<E: Emit + ?Sized>(
        &mut self,
        record: &CallRecord<'_>,
        ahead: Option<Ahead<'_>>,
        out: &mut E,
    ) {
        self.advance(record.time(), out);
        match record.method() {
            b"INVITE" => self.invite(record, ahead, out),
            b"BYE" => self.bye(record, ahead, out),
            _ => self.counts.other_methods += 1,
        }
    }

    /// Ends the input: every call still open is emitted (ended calls as `answered`, lone
    /// INVITEs as `unterminated`, lone BYEs as `unmatched_bye`), whatever their age, handed
    /// to `out` as it is made.
    pub fn finish_to<E: Emit + ?Sized>(mut self, out: &mut E) {
        self.settle(out);
        let mut aged = std::mem::take(&mut self.aged);
        aged.extend(
            self.waiting
                .iter()
                .filter(|waiting| waiting.is_current(&self.calls))
                .map(|waiting| (waiting.since, waiting.slot)),
        );
        self.waiting.clear();
        self.emit_lone(aged, out);
    }

    /// [`finish_to`](Self::finish_to) in place: what is left is a pairer that has seen nothing
    /// but keeps this one's [`counts`](Self::counts), for the caller to report them.
    pub(crate) fn finish_in_place<E: Emit + ?Sized>(&mut self, out: &mut E) {
        let mut fresh = Pairer::new(self.options);
        fresh.counts = self.counts;
        std::mem::replace(self, fresh).finish_to(out);
    }

    /// Ends a run of an input that goes on later (a state is saved next): the CDRs of the calls
    /// whose BYE was read are made now rather than at the next record, so a run emits every call
    /// that ended in it; the calls still open are kept.
    pub(crate) fn settle_to<E: Emit + ?Sized>(&mut self, out: &mut E) {
        self.settle(out);
    }

    /// The options it pairs with.
    pub fn options(&self) -> PairingOptions {
        self.options
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
        self.live
    }

    /// When `time` is past the newest time: emits the ended calls, makes `time` the newest,
    /// emits the lone sides now more than the maximum age old, forgets old ended calls.
    fn advance<E: Emit + ?Sized>(&mut self, time: Timestamp, out: &mut E) {
        if self
            .newest
            .is_some_and(|newest| time.instant() <= newest.instant())
        {
            return;
        }
        self.settle(out);
        self.newest = Some(time);
        // Past the maximum age: newest - since > max age, i.e. since < newest - max age.
        let limit = time.epoch_nanos() - i128::from(self.options.max_age_seconds) * 1_000_000_000;
        if self
            .waiting
            .front()
            .is_some_and(|waiting| waiting.since.epoch_nanos() < limit)
        {
            let mut aged = std::mem::take(&mut self.aged);
            while let Some(&waiting) = self.waiting.front()
                && waiting.since.epoch_nanos() < limit
            {
                self.waiting.pop_front();
                if waiting.is_current(&self.calls) {
                    aged.push((waiting.since, waiting.slot));
                }
            }
            self.emit_lone(aged, out);
        }
        self.forget_old_ends(time.epoch_seconds());
    }

    fn invite<E: Emit + ?Sized>(
        &mut self,
        record: &CallRecord<'_>,
        ahead: Option<Ahead<'_>>,
        out: &mut E,
    ) {
        if let Some(length) = record.call_length() {
            out.cdr(&CdrView::whole_call(record, length));
            return;
        }
        match answer_class(record.sip_code()) {
            Some(b'2') => self.answered_invite(record, ahead, out),
            Some(_) => match self.options.failed_invites {
                FailedInvites::MakeCdrs => out.cdr(&CdrView::failed(record)),
                FailedInvites::Ignore => self.counts.ignored_failed_invites += 1,
            },
            None => out.problem(Problem::UnreadableSipCode {
                callid: record.callid().to_vec(),
                sip_code: record.sip_code().to_vec(),
                time: record.time(),
            }),
        }
    }

    fn answered_invite<E: Emit + ?Sized>(
        &mut self,
        record: &CallRecord<'_>,
        ahead: Option<Ahead<'_>>,
        out: &mut E,
    ) {
        let (hash, from_is_first) = self.take_key(record, ahead);
        let new: RecordSide = (record.time(), from_is_first);
        let Some(slot) = self.find_kept(hash) else {
            let id = self.kept_id(ahead);
            if self.remembers_closed(&id) {
                self.counts.reinvites += 1;
            } else {
                fill_side(&mut self.side, record, true, ahead);
                self.open(hash, id, Stage::Answered, new);
            }
            return;
        };
        let call = &self.calls[slot as usize];
        let current = call.invite(&self.ended);
        let (stage, current_time) = (call.stage, current.time);
        if stage == Stage::ByeFirst {
            fill_side(&mut self.side, record, true, ahead);
            self.end(slot, true, new, out);
            return;
        }
        self.counts.reinvites += 1;
        if is_earlier(&mut self.side, record, true, ahead, new, current) {
            fill_side(&mut self.side, record, true, ahead);
            self.put_side(slot, true, new);
            if stage == Stage::Answered && new.0 != current_time {
                self.wait(slot);
            }
        }
    }

    fn bye<E: Emit + ?Sized>(
        &mut self,
        record: &CallRecord<'_>,
        ahead: Option<Ahead<'_>>,
        out: &mut E,
    ) {
        let (hash, from_is_first) = self.take_key(record, ahead);
        let new: RecordSide = (record.time(), from_is_first);
        let Some(slot) = self.find_kept(hash) else {
            let id = self.kept_id(ahead);
            if self.remembers_closed(&id) {
                self.counts.extra_byes += 1;
            } else {
                fill_side(&mut self.side, record, false, ahead);
                self.open(hash, id, Stage::ByeFirst, new);
            }
            return;
        };
        let call = &self.calls[slot as usize];
        let stage = call.stage;
        if stage == Stage::Answered {
            fill_side(&mut self.side, record, false, ahead);
            self.end(slot, false, new, out);
            return;
        }
        let current = call.bye(&self.ended);
        let earlier = is_earlier(&mut self.side, record, false, ahead, new, current);
        // Of two BYEs the earliest stays; the other is counted.
        self.counts.extra_byes += 1;
        let current_time = current.time;
        if earlier {
            fill_side(&mut self.side, record, false, ahead);
            self.put_side(slot, false, new);
            if stage == Stage::ByeFirst && new.0 != current_time {
                self.wait(slot);
            }
        }
    }
}

/// Whether the record's side (`new`, its parts put in `side` if they are needed) comes before
/// `current`: by time, then tag order, then content.
fn is_earlier(
    side: &mut Vec<u8>,
    record: &CallRecord<'_>,
    is_invite: bool,
    ahead: Option<Ahead<'_>>,
    (time, from_is_first): RecordSide,
    current: Side<'_>,
) -> bool {
    match (time, from_is_first).cmp(&(current.time, current.from_is_first)) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => {
            fill_side(side, record, is_invite, ahead);
            side.as_slice() < current.parts
        }
    }
}
