//! Pairing: the merged stream of a main table's call records becomes CDRs.
//!
//! A call is its Call-ID plus the unordered pair of its tags, so the callee's BYE (From and To
//! tags swapped) pairs as well as the caller's. The earliest answered (2xx) INVITE starts the
//! call, the earliest BYE ends it; either may come first. A side still waiting for the other
//! once the stream is more than the maximum age past it is emitted alone (`unterminated` or
//! `unmatched_bye`), and so is everything still open at [`Pairer::finish`]. Ended calls are
//! remembered, compactly, for a short window of record time after their end so that another
//! BYE for them is reported as a duplicate rather than taken for a new call.
//!
//! That window is [`ENDED_MEMORY_SECONDS`] (or the maximum age, if shorter), not the maximum
//! age, so that memory is bounded by the calls open at once and the call rate times the window,
//! not by the input: with a day's maximum age, remembering every ended call for a day would
//! make memory grow with a day of traffic. A duplicate BYE is a retransmission, or the other
//! party's BYE crossing the first, and a re-INVITE logged after the BYE is one whose 2xx
//! crossed the BYE: all come within seconds of the end (a non-INVITE transaction gives up
//! after SIP's timer F, 32 s; an INVITE's retransmissions stop after timer B, also 32 s), so
//! five minutes leave a wide margin (also for clocks of several proxies that differ). Should a
//! duplicate BYE still come after the window, the call is forgotten and the BYE is taken for
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
//! newest time are then checked against calls no longer remembered: a duplicate BYE is a lone
//! BYE (`unmatched_bye`), a re-INVITE a lone INVITE (`unterminated`), and should such a file
//! hold both a re-INVITE and a duplicate BYE of one forgotten call, they pair into a second
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

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::hash::Hasher as _;

use super::ended::EndedCalls;
use super::hash::{ContentId, FastHasher, content_id};
use super::index::CallIndex;
use super::layout::CallRecord;
use super::parts::{Parts, push_part};
use super::time::{Duration, Timestamp};
use super::{Cdr, CdrView, Extras, Status};

/// The default maximum age, in seconds: one day.
pub const DEFAULT_MAX_AGE_SECONDS: u64 = 86_400;

/// How long (seconds of record time) an ended call is remembered after its end, to report a
/// later BYE for it as a duplicate, when the maximum age is longer: five minutes, well past
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
pub enum Output {
    /// A finished call detail record.
    Cdr(Cdr),
    /// A record that made no CDR, and why.
    Problem(Problem),
}

/// Where the pairer hands what it makes, in order: [`Pairer::push_to`] and
/// [`Pairer::finish_to`] call it. A `Vec<Output>` collects owned CDRs; a writer can take each
/// CDR as it is borrowed, with no copy made.
pub trait Emit {
    /// A finished call detail record, borrowed for the call only.
    fn cdr(&mut self, cdr: &CdrView<'_>);
    /// A record that made no CDR, and why.
    fn problem(&mut self, problem: Problem);
}

impl Emit for Vec<Output> {
    fn cdr(&mut self, cdr: &CdrView<'_>) {
        self.push(Output::Cdr(cdr.to_cdr()));
    }

    fn problem(&mut self, problem: Problem) {
        self.push(Output::Problem(problem));
    }
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

/// One side of a call: an answered INVITE or a BYE, borrowed from where it is kept.
///
/// Sides compare by time, then whether the record's From tag is the first tag of the call's
/// key, then content: that is how the earliest one is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Side<'a> {
    time: Timestamp,
    /// Whether the record's From tag is the first tag of its key (see [`push_key`]).
    from_is_first: bool,
    /// Length-prefixed parts: status code, reason phrase (both empty for a BYE), then extras.
    parts: &'a [u8],
}

/// No slot: the end of a chain of slots.
const NO_SLOT: u32 = u32::MAX;
/// How many waiting entries beyond twice the lone sides the queue may hold before the entries
/// of calls that stopped waiting are dropped from its middle.
const WAITING_SLACK: usize = 1024;

/// What a slot of the table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
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
struct Call {
    /// The key (see [`push_key`]), then the parts of the side seen first.
    bytes: Box<[u8]>,
    invite_time: Timestamp,
    bye_time: Timestamp,
    /// The content hash of the key, the name the call is remembered by once it ended.
    id: ContentId,
    /// The fast hash of the key: the call's entry in the index.
    hash: u64,
    /// In a free slot, the next free slot.
    next: u32,
    /// How many times the slot was freed, so that waiting entries of earlier calls in it are
    /// known as stale.
    generation: u32,
    key_length: u32,
    /// An ended call's other side: where its parts start in the pairer's `ended` bytes.
    other_start: u32,
    /// How many bytes its parts take there.
    other_length: u32,
    stage: Stage,
    invite_from_is_first: bool,
    bye_from_is_first: bool,
    /// Whether `bytes` holds the INVITE's parts (else the BYE's).
    holds_invite: bool,
}

impl Call {
    fn free(next: u32) -> Self {
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

    fn key(&self) -> &[u8] {
        &self.bytes[..self.key_length as usize]
    }

    /// The parts of the INVITE (`is_invite`) or the BYE, the other side's from `ended`.
    fn parts<'a>(&'a self, is_invite: bool, ended: &'a [u8]) -> &'a [u8] {
        if is_invite == self.holds_invite {
            &self.bytes[self.key_length as usize..]
        } else {
            let start = self.other_start as usize;
            ended
                .get(start..start + self.other_length as usize)
                .unwrap_or_default()
        }
    }

    fn invite<'a>(&'a self, ended: &'a [u8]) -> Side<'a> {
        Side {
            time: self.invite_time,
            from_is_first: self.invite_from_is_first,
            parts: self.parts(true, ended),
        }
    }

    fn bye<'a>(&'a self, ended: &'a [u8]) -> Side<'a> {
        Side {
            time: self.bye_time,
            from_is_first: self.bye_from_is_first,
            parts: self.parts(false, ended),
        }
    }

    /// Whether it is a lone side (answered, or a BYE first).
    fn is_lone(&self) -> bool {
        matches!(self.stage, Stage::Answered | Stage::ByeFirst)
    }
}

/// A lone side waiting since `since`: the call in `slot`, if the slot still holds that call
/// (`generation`) and it still waits since then.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    since: Timestamp,
    slot: u32,
    generation: u32,
}

impl Waiting {
    fn is_current(&self, calls: &[Call]) -> bool {
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

/// Pairs a main table's call records, in time order, into CDRs.
///
/// Feed it records with [`push`](Self::push) (each gives zero or more [`Output`]s), then call
/// [`finish`](Self::finish) at the end of the input, or save it with
/// [`state::save`](super::state::save) to go on in a later run. Records of the missed-calls
/// table are not pushed: each becomes [`Cdr::failed`] directly, and does not move the time.
/// [`push_to`](Self::push_to) and [`finish_to`](Self::finish_to) do the same, handing CDRs out
/// borrowed.
///
/// Memory: the open calls (about 250 bytes each, measured in the source) and, for duplicate-BYE
/// detection, 24 to 48 bytes per call ended within the last [`ENDED_MEMORY_SECONDS`] of record
/// time (a 128-bit hash of its key and its end, in a table at most three quarters full; a
/// quarter more calls are kept, as they are swept out every quarter of that window): at 1,000
/// calls a second, 12 MiB. That hash is not made
/// to resist crafted collisions: a call whose Call-ID and tags were crafted to collide with a
/// call ended within that window would have its INVITE counted as a re-INVITE and its BYE
/// reported as a duplicate.
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

    /// Pairs one record of the main table, appending what it produces to `out`: CDRs of calls
    /// that ended or aged, a `failed` CDR, or a problem. INVITEs and BYEs take part; other
    /// methods are only counted (their time still advances the newest time).
    ///
    /// A call's `answered` CDR comes out with the first record whose time is past both the
    /// call's start and end (or at [`finish`](Self::finish)), so that a same-time record read
    /// after the BYE still counts.
    pub fn push(&mut self, record: &CallRecord<'_>, out: &mut Vec<Output>) {
        self.push_to(record, out);
    }

    /// [`push`](Self::push), handing what it makes to `out` as it is made.
    pub fn push_to<E: Emit + ?Sized>(&mut self, record: &CallRecord<'_>, out: &mut E) {
        self.push_ahead_to(record, None, out);
    }

    /// [`push_to`](Self::push_to) of a record prepared ahead: entry `index` of `prepared`
    /// must have been [`PreparedKeys::push`]ed for this same record (on the thread that reads
    /// the records, say). The result is the same as [`push_to`](Self::push_to)'s.
    pub fn push_prepared_to<E: Emit + ?Sized>(
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

    /// Reads, many records at once, the memory that pairing the records of `prepared` in
    /// `range` will read first (the index buckets, the open calls and their keys, the ended
    /// calls' slots), so that their cache misses overlap instead of coming one record at a
    /// time. A hint for speed: it changes nothing, and pairing gives the same results without
    /// it. Worth it before pairing a few dozen prepared records.
    pub fn warm(&self, prepared: &PreparedKeys, range: std::ops::Range<usize>) {
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

    /// Ends the input: every call still open is emitted (ended calls as `answered`, lone
    /// INVITEs as `unterminated`, lone BYEs as `unmatched_bye`), whatever their age.
    pub fn finish(self, out: &mut Vec<Output>) {
        self.finish_to(out);
    }

    /// [`finish`](Self::finish), handing what it makes to `out` as it is made.
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

    /// Ends a run of an input that goes on later (a state is saved next): the CDRs of the calls
    /// whose BYE was read are made now rather than at the next record, so a run emits every call
    /// that ended in it; the calls still open are kept.
    pub fn settle_to<E: Emit + ?Sized>(&mut self, out: &mut E) {
        self.settle(out);
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
        let now = time.epoch_seconds();
        if now >= self.next_purge {
            let window = self.ended_window();
            self.closed
                .retain(|end_seconds| remembers(now, end_seconds, window));
            let step = i64::try_from((window / 4).max(1)).unwrap_or(i64::MAX);
            self.next_purge = now.saturating_add(step);
        }
    }

    /// Emits the lone sides in `aged` (slot and the time they waited since), in the order of
    /// that time then key, and closes their calls.
    fn emit_lone<E: Emit + ?Sized>(&mut self, mut aged: Vec<(Timestamp, u32)>, out: &mut E) {
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
                        Status::Unterminated,
                        Some(invite.time),
                        None,
                    )
                }
                Stage::ByeFirst => {
                    let bye = call.bye(&self.ended);
                    call_cdr(call.key(), bye, Status::UnmatchedBye, None, Some(bye.time))
                }
                Stage::Free | Stage::Ended => continue,
            };
            out.cdr(&cdr);
            self.remove(slot);
        }
        aged.clear();
        self.aged = aged;
    }

    /// Makes the CDRs of all `Ended` calls, in key order.
    fn settle<E: Emit + ?Sized>(&mut self, out: &mut E) {
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
    fn ended_window(&self) -> u64 {
        self.options.max_age_seconds.min(ENDED_MEMORY_SECONDS)
    }

    /// Whether an ended call that ended at `end_seconds` is still remembered.
    fn remembers_end(&self, end_seconds: i64) -> bool {
        self.newest.is_some_and(|newest| {
            remembers(newest.epoch_seconds(), end_seconds, self.ended_window())
        })
    }

    fn remembers_closed(&self, id: &ContentId) -> bool {
        self.closed
            .get(id)
            .is_some_and(|end_seconds| self.remembers_end(end_seconds))
    }

    fn invite<E: Emit + ?Sized>(
        &mut self,
        record: &CallRecord<'_>,
        ahead: Option<Ahead<'_>>,
        out: &mut E,
    ) {
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
                out.problem(Problem::DuplicateBye {
                    callid: record.callid().to_vec(),
                    from_tag: record.from_tag().to_vec(),
                    to_tag: record.to_tag().to_vec(),
                    time: new.0,
                });
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
        // Of two BYEs the earliest stays; the other is the duplicate.
        let (later_time, later_from_is_first) = if earlier {
            (current.time, current.from_is_first)
        } else {
            new
        };
        out.problem(duplicate_bye(call.key(), later_from_is_first, later_time));
        let current_time = current.time;
        if earlier {
            fill_side(&mut self.side, record, false, ahead);
            self.put_side(slot, false, new);
            if stage == Stage::ByeFirst && new.0 != current_time {
                self.wait(slot);
            }
        }
    }

    /// The record being paired as a side (its parts are in `self.side` once filled).
    fn record_side(&self, (time, from_is_first): RecordSide) -> Side<'_> {
        Side {
            time,
            from_is_first,
            parts: &self.side,
        }
    }

    /// Puts the record's key, as kept, in `self.key`; returns its fast hash and whether the
    /// From tag is its first tag.
    fn take_key(&mut self, record: &CallRecord<'_>, ahead: Option<Ahead<'_>>) -> (u64, bool) {
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
    fn kept_id(&self, ahead: Option<Ahead<'_>>) -> ContentId {
        ahead
            .and_then(|ahead| ahead.id)
            .unwrap_or_else(|| content_id(&self.key))
    }

    /// The slot of the open call with the key in `self.key`, whose fast hash is `hash`.
    /// (Kept keys are equal exactly when their parts are: each part is length-prefixed.)
    fn find_kept(&self, hash: u64) -> Option<u32> {
        self.index.find(hash, |slot| {
            self.calls
                .get(slot as usize)
                .is_some_and(|call| call.hash == hash && call.key() == self.key.as_slice())
        })
    }

    /// The slot of the open call with this key, whose fast hash is `hash`.
    fn find(&self, key: &KeyParts<'_>, hash: u64) -> Option<u32> {
        self.index.find(hash, |slot| {
            self.calls
                .get(slot as usize)
                .is_some_and(|call| call.hash == hash && key.is(call.key()))
        })
    }

    /// Opens a call with the key in `self.key` (its fast hash `hash`, its content hash `id`)
    /// and one side, the record's (its parts in `self.side`), waiting for the other.
    fn open(&mut self, hash: u64, id: ContentId, stage: Stage, side: RecordSide) {
        let slot = self.open_slot(hash, id, stage, side);
        self.wait(slot);
    }

    /// [`open`](Self::open), without its waiting entry.
    fn open_slot(&mut self, hash: u64, id: ContentId, stage: Stage, side: RecordSide) -> u32 {
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
    fn put_side(&mut self, slot: u32, is_invite: bool, (time, from_is_first): RecordSide) {
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

    /// Queues the lone side of the call in `slot`, in time order.
    fn wait(&mut self, slot: u32) {
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
    fn compact_waiting(&mut self) {
        if self.waiting.len() > 2 * self.lone + WAITING_SLACK {
            let calls = &self.calls;
            self.waiting.retain(|waiting| waiting.is_current(calls));
        }
    }

    /// A lone call gets its other side, the record's (its INVITE if `is_invite`): its CDR now
    /// if the stream is already past both times, else at the next advance (a side with the
    /// same time may still come).
    fn end<E: Emit + ?Sized>(&mut self, slot: u32, is_invite: bool, side: RecordSide, out: &mut E) {
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
                Status::Answered,
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
    fn set_ended(&mut self, slot: u32) {
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
    fn close<E: Emit + ?Sized>(&mut self, slot: u32, out: &mut E) {
        let call = &self.calls[slot as usize];
        let invite = call.invite(&self.ended);
        out.cdr(&call_cdr(
            call.key(),
            invite,
            Status::Answered,
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

    /// Frees the slot of an open call.
    fn remove(&mut self, slot: u32) {
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

    fn remember(&mut self, end: CarriedEnd) {
        self.closed.insert(end.call, end.end_seconds);
    }

    /// Every side of every open call, in key order, the INVITE before the BYE.
    pub(super) fn carried_sides(&self) -> Vec<CarriedSide> {
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
    pub(super) fn carried_ends(&self) -> Vec<CarriedEnd> {
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
    pub(super) fn restored(
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

/// Whether a call that ended at `end_seconds` is remembered when the newest time's whole
/// seconds are `now`, for a memory of `window` seconds.
fn remembers(now: i64, end_seconds: i64, window: u64) -> bool {
    i128::from(now) - i128::from(end_seconds) <= i128::from(window)
}

/// The first digit of a three-digit status code, `None` if it is not one.
fn answer_class(sip_code: &[u8]) -> Option<u8> {
    match sip_code {
        [class @ b'1'..=b'6', b'0'..=b'9', b'0'..=b'9'] => Some(*class),
        _ => None,
    }
}

/// A call's identity as a record gives it: its Call-ID and its two tags in byte order. Kept
/// (see [`KeyParts::push`]) each length-prefixed, so that different calls never have the same
/// bytes.
#[derive(Clone, Copy, Debug)]
struct KeyParts<'a> {
    callid: &'a [u8],
    first: &'a [u8],
    second: &'a [u8],
    /// Whether the From tag is the first tag.
    from_is_first: bool,
}

impl<'a> KeyParts<'a> {
    fn new(callid: &'a [u8], from_tag: &'a [u8], to_tag: &'a [u8]) -> Self {
        let from_is_first = from_tag <= to_tag;
        let (first, second) = if from_is_first {
            (from_tag, to_tag)
        } else {
            (to_tag, from_tag)
        };
        Self {
            callid,
            first,
            second,
            from_is_first,
        }
    }

    fn of(record: &CallRecord<'a>) -> Self {
        Self::new(record.callid(), record.from_tag(), record.to_tag())
    }

    fn parts(&self) -> [&'a [u8]; 3] {
        [self.callid, self.first, self.second]
    }

    /// The fast hash the pairer's index finds the call by.
    fn fast_hash(&self) -> u64 {
        let mut hasher = FastHasher::default();
        for part in self.parts() {
            hasher.write(part);
        }
        hasher.finish()
    }

    /// The content hash of the kept bytes, the name of the call once it ended; `bytes` is
    /// left holding them.
    fn content_id(&self, bytes: &mut Vec<u8>) -> ContentId {
        bytes.clear();
        self.push(bytes);
        content_id(bytes)
    }

    /// Whether kept key bytes are this key.
    fn is(&self, key: &[u8]) -> bool {
        let (callid, first, second) = key_parts(key);
        callid == self.callid && first == self.first && second == self.second
    }

    /// Appends the key as kept.
    fn push(&self, bytes: &mut Vec<u8>) {
        for part in self.parts() {
            push_part(bytes, part);
        }
    }
}

/// Records prepared for pairing ahead, one entry per record, in order (on the thread that
/// reads the records, say, so that the pairing thread does less): each INVITE's or BYE's call
/// key hashed and kept as the pairer keeps it, with its side's parts; and for answered INVITEs
/// (the records that open calls, as a rule) the key's content hash. The pairer works out the
/// content hash itself when another record opens a call. Reused from batch to batch.
#[derive(Clone, Debug, Default)]
pub struct PreparedKeys {
    /// Each entry's kept key, then its side's parts.
    bytes: Vec<u8>,
    keys: Vec<Option<PreparedKey>>,
}

/// One record prepared: see [`PreparedKeys`].
#[derive(Clone, Copy, Debug)]
struct PreparedKey {
    hash: u64,
    id: Option<ContentId>,
    from_is_first: bool,
    /// Where the kept key starts in the bytes; its side's parts follow it.
    start: usize,
    key_length: usize,
    side_length: usize,
}

/// A prepared record as pairing uses it.
#[derive(Clone, Copy, Debug)]
struct Ahead<'a> {
    hash: u64,
    id: Option<ContentId>,
    from_is_first: bool,
    /// The key as kept (see [`KeyParts::push`]).
    key: &'a [u8],
    /// The side's parts (see [`fill_side`]).
    side: &'a [u8],
}

impl PreparedKeys {
    /// None prepared.
    pub fn new() -> Self {
        Self::default()
    }

    /// Prepares the next record: `None` for a line that is no call record.
    pub fn push(&mut self, record: Option<&CallRecord<'_>>) {
        let prepared = record.and_then(|record| {
            let is_invite = match record.method() {
                b"INVITE" if answer_class(record.sip_code()) == Some(b'2') => true,
                b"BYE" => false,
                _ => return None,
            };
            let key = KeyParts::of(record);
            let start = self.bytes.len();
            key.push(&mut self.bytes);
            let key_length = self.bytes.len() - start;
            let id = is_invite.then(|| content_id(&self.bytes[start..]));
            append_side(&mut self.bytes, record, is_invite);
            Some(PreparedKey {
                hash: key.fast_hash(),
                id,
                from_is_first: key.from_is_first,
                start,
                key_length,
                side_length: self.bytes.len() - start - key_length,
            })
        });
        self.keys.push(prepared);
    }

    /// How many records were prepared.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Forgets every record, keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.keys.clear();
    }

    fn get(&self, index: usize) -> Option<Ahead<'_>> {
        let key = (*self.keys.get(index)?)?;
        let key_end = key.start + key.key_length;
        Some(Ahead {
            hash: key.hash,
            id: key.id,
            from_is_first: key.from_is_first,
            key: self.bytes.get(key.start..key_end)?,
            side: self.bytes.get(key_end..key_end + key.side_length)?,
        })
    }
}

/// Fills `side` with a record's side: an INVITE's status code and reason (none for a BYE),
/// then the extras, each length-prefixed; copied from `ahead` when the record was prepared.
fn fill_side(
    side: &mut Vec<u8>,
    record: &CallRecord<'_>,
    is_invite: bool,
    ahead: Option<Ahead<'_>>,
) {
    side.clear();
    match ahead {
        Some(ahead) => side.extend_from_slice(ahead.side),
        None => append_side(side, record, is_invite),
    }
}

/// Appends a record's side to `bytes` (see [`fill_side`]).
fn append_side(bytes: &mut Vec<u8>, record: &CallRecord<'_>, is_invite: bool) {
    let answer = if is_invite {
        [record.sip_code(), record.sip_reason()]
    } else {
        [&[][..], &[][..]]
    };
    for part in answer.into_iter().chain(record.extras()) {
        push_part(bytes, part);
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

/// A key's Call-ID, first tag and second tag.
fn key_parts(key: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let mut parts = Parts(key);
    let mut next = || parts.next().unwrap_or_default();
    (next(), next(), next())
}

/// The (From tag, To tag) of a side's record, from its call's key.
fn tags(key: &[u8], from_is_first: bool) -> (&[u8], &[u8]) {
    let (_, first, second) = key_parts(key);
    if from_is_first {
        (first, second)
    } else {
        (second, first)
    }
}

fn duplicate_bye(key: &[u8], from_is_first: bool, time: Timestamp) -> Problem {
    let (from_tag, to_tag) = tags(key, from_is_first);
    Problem::DuplicateBye {
        callid: key_parts(key).0.to_vec(),
        from_tag: from_tag.to_vec(),
        to_tag: to_tag.to_vec(),
        time,
    }
}

/// A CDR with the tags, answer and extras of `side`.
fn call_cdr<'a>(
    key: &'a [u8],
    side: Side<'a>,
    status: Status,
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

fn carried_side(key: &[u8], side: Side<'_>, is_invite: bool) -> CarriedSide {
    let cdr = call_cdr(key, side, Status::Answered, None, None);
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
    fn records_prepared_ahead_pair_exactly_as_records_pushed_alone() {
        let long = "c".repeat(200);
        let lines = [
            "INVITE|a|b|cid|200|OK|1700000000|alice".to_owned(),
            "BYE|b|a|lone|200|OK|1700000001|".to_owned(),
            format!("INVITE|zz|aa|{long}|200|OK|1700000002|long"),
            "INVITE|a|b|cid|200|OK|1700000003|reinvite".to_owned(),
            "INVITE|b|a|cid|200|OK|1700000003|same-time".to_owned(),
            "BYE|a|b|cid|200|OK|1700000010|".to_owned(),
            "BYE|b|a|cid|200|OK|1700000011|duplicate".to_owned(),
            "BYE|a|b|cid|200|OK|1700000011|duplicate-too".to_owned(),
            "INVITE|x|y|lone|200|OK|1700000012|late".to_owned(),
            format!("BYE|aa|zz|{long}|200|OK|1700000013|"),
            "INVITE|a|b|cid|486|Busy|1700000014|failed".to_owned(),
            "INVITE|a|b|cid|2xx|OK|1700000014|unreadable".to_owned(),
            "ACK|a|b|cid|200|OK|1700000014|".to_owned(),
            "INVITE|a|b|cid|200|OK|1700000015|remembered".to_owned(),
        ];
        let (mut plain, mut ahead) = (Run::day(), Run::day());
        let mut prepared = PreparedKeys::new();
        let fields: Vec<Vec<Vec<u8>>> = lines
            .iter()
            .map(|line| line.split('|').map(|f| f.as_bytes().to_vec()).collect())
            .collect();
        for line in &fields {
            prepared.push(ahead.layout.view(line).ok().as_ref());
        }
        assert_eq!(prepared.len(), lines.len());
        ahead.pairer.warm(&prepared, 0..lines.len());
        for (index, (line, fields)) in lines.iter().zip(&fields).enumerate() {
            plain.push(line);
            let Ok(record) = ahead.layout.view(fields) else {
                panic!("{line}")
            };
            if let Some(ready) = prepared.get(index) {
                let key = KeyParts::of(&record);
                assert_eq!(ready.hash, key.fast_hash());
                let mut kept = Vec::new();
                key.push(&mut kept);
                assert_eq!(ready.key, kept.as_slice());
                if let Some(id) = ready.id {
                    assert_eq!(id, content_id(ready.key), "{line}");
                }
            }
            ahead
                .pairer
                .push_prepared_to(&record, &prepared, index, &mut ahead.out);
        }
        assert_eq!(ahead.pairer.counts(), plain.pairer.counts());
        assert_eq!(ahead.taken(), plain.taken());
        assert_eq!(ahead.finished(), plain.finished());
        prepared.clear();
        assert!(prepared.is_empty());
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
    fn an_open_call_and_its_waiting_entry_stay_small() {
        if cfg!(target_pointer_width = "64") {
            assert_eq!(std::mem::size_of::<Call>(), 96);
            assert_eq!(std::mem::size_of::<Waiting>(), 24);
        }
    }

    #[test]
    fn calls_that_stopped_waiting_do_not_pile_up_in_the_queue() {
        // A day's maximum age: no lone side ages, so only compaction keeps the queue short.
        let mut run = Run::day();
        for call in 0..20_000u64 {
            run.push(&format!(
                "INVITE|a|b|c{call}|200|OK|{}|",
                1_700_000_000 + call
            ));
            if call >= 10 {
                run.push(&format!(
                    "BYE|b|a|c{}|200|OK|{}|",
                    call - 10,
                    1_700_000_000 + call
                ));
            }
            let pairer = &run.pairer;
            assert!(pairer.lone <= 11, "{}", pairer.lone);
            assert!(pairer.waiting.len() <= 2 * pairer.lone + WAITING_SLACK);
        }
        assert_eq!(run.taken().len(), 19_989);
        assert!(run.pairer.calls.len() <= 12, "slots are reused");
        assert_eq!(run.finished().len(), 11);
    }

    #[test]
    fn ended_calls_are_remembered_for_a_short_window_only() {
        // One call a second for an hour, each ended a second after its start: with a day's
        // maximum age, only the last ENDED_MEMORY_SECONDS of ended calls are remembered (plus
        // at most a quarter of that between sweeps), not the hour's 3,600.
        let mut run = Run::day();
        let window = ENDED_MEMORY_SECONDS as usize;
        for call in 0..3_600u64 {
            let start = 1_700_000_000 + call;
            run.push(&format!("INVITE|a|b|c{call}|200|OK|{start}|"));
            run.push(&format!("BYE|b|a|c{call}|200|OK|{}|", start + 1));
            assert!(run.pairer.closed.len() <= window + window / 4 + 2);
        }
        assert_eq!(run.pairer.carried_ends().len(), window);
        assert_eq!(run.taken().len(), 3_599);
        assert_eq!(run.pairer.open_calls(), 1);
    }

    #[test]
    fn a_duplicate_bye_past_the_window_is_a_lone_bye_never_a_second_cdr() {
        let mut run = Run::day();
        run.push("INVITE|a|b|cid|200|OK|1700000000|");
        run.push("BYE|a|b|cid|200|OK|1700000010|");
        run.push("BYE|b|a|cid|200|OK|1700000310|within");
        assert_eq!(
            run.taken(),
            [
                "cid,a,b,2023-11-14T22:13:20Z,2023-11-14T22:13:30Z,10,200,OK,answered,",
                "duplicate BYE at 2023-11-14T22:18:30Z for call \"cid\" (from tag \"b\", to tag \"a\"): the call already ended",
            ]
        );
        run.push("BYE|b|a|cid|200|OK|1700000311|past");
        assert_eq!(run.taken(), Vec::<String>::new(), "it waits for an INVITE");
        assert_eq!(
            run.finished(),
            ["cid,b,a,,2023-11-14T22:18:31Z,,,,unmatched_bye,past"]
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
