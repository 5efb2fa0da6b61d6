//! Call detail records (CDRs): billable calls made from Kamailio's accounting records.
//!
//! Kamailio's acc module writes one record per transaction: the answered INVITE that starts a
//! call, the BYE that ends it, and (in a missed-calls table) the INVITEs that failed. Turning
//! them into one CDR per call is pure work on decoded fields, done here in steps:
//!
//! - `layout`: which column of a table holds what; a line seen as a [`CallRecord`].
//! - `merge`: several per-process files merged into one stream ascending by time.
//! - `pairing`: the stream paired into CDRs ([`Pairer`]), with open calls carried along; its
//!   own folder of one-job modules (slots, waiting sides, ended calls, carried state, keys).
//! - `pipeline`: the accounting run ([`run`]): files read, merged, decoded and paired on two
//!   threads, handed to a [`CdrWriter`].
//! - [`state`]: the pairer's carried state saved to and restored from bytes between runs.
//! - `time`: record times and durations, exact and with their written precision.
//! - [`hash`]: a stable 128-bit content hash for naming files and calls; [`identity`]: a file
//!   known by its content.
//!
//! This module ([`Cdr`]) is the record produced, and the text of its fields. The parts are
//! private; what a caller needs is re-exported here.

pub mod hash;
pub mod identity;
mod layout;
mod merge;
mod pairing;
mod parts;
mod pipeline;
pub mod state;
mod time;

#[cfg(test)]
mod end_to_end;

use std::borrow::Cow;

pub use layout::{CallRecord, Layout, LayoutError, ROLE_NAMES, RecordError};
pub use pairing::{
    Counts, DEFAULT_MAX_AGE_SECONDS, ENDED_MEMORY_SECONDS, Emit, FailedInvites, Paired, Pairer,
    PairingOptions, Problem,
};
pub use pipeline::{
    CdrWriter, Complaint, Ending, FileRead, LineReader, RecordFile, RunError, RunOptions, Sources,
    Table, TimeWindow, run,
};
pub use time::{Duration, IsoWriter, MAX_ISO_LENGTH, Timestamp};

/// The fixed CDR columns, in output order; a table's extra columns follow them.
pub const CDR_FIELDS: [&str; 9] = [
    "callid",
    "from_tag",
    "to_tag",
    "start",
    "end",
    "duration",
    "sip_code",
    "sip_reason",
    "status",
];

/// How a call ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallStatus {
    /// Answered (2xx INVITE) and hung up (BYE): start, end and duration are all known.
    Answered,
    /// Not answered: a missed-calls record, or a non-2xx INVITE of the main table when the
    /// caller asks for those. Start is the record's time, end is empty, duration is 0.
    Failed,
    /// Answered, but no BYE came within the maximum age (or before the end of the input):
    /// start is known, end and duration are empty.
    Unterminated,
    /// A BYE whose INVITE never came within the maximum age (or before the end of the input):
    /// end is the BYE's time, start and duration are empty.
    UnmatchedBye,
}

impl CallStatus {
    /// The status as written in a CDR: `answered`, `failed`, `unterminated`, `unmatched_bye`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Failed => "failed",
            Self::Unterminated => "unterminated",
            Self::UnmatchedBye => "unmatched_bye",
        }
    }
}

/// One call detail record. Its fields are in [`CDR_FIELDS`] order, then the extras.
///
/// The tags are the caller's view: `from_tag` is the INVITE's From tag (for an unmatched BYE,
/// which has no INVITE, the BYE's own From tag). The extras are the values of the INVITE that
/// defines the call (a failed record's own; an unmatched BYE's own), in the order of the
/// extra columns of the [`Layout`] of the table that record came from. A BYE's extras are
/// otherwise not used. A call carried over from an earlier run keeps the extras it had then,
/// so if the table's columns changed between runs their count can differ from the header's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cdr {
    /// The Call-ID.
    pub callid: Vec<u8>,
    /// The caller's tag.
    pub from_tag: Vec<u8>,
    /// The callee's tag.
    pub to_tag: Vec<u8>,
    /// When the call was answered (the earliest answered INVITE), or failed; `None` for an
    /// unmatched BYE.
    pub start: Option<Timestamp>,
    /// When the first BYE was sent; `None` unless answered or an unmatched BYE.
    pub end: Option<Timestamp>,
    /// `end - start` when answered, 0 when failed, `None` otherwise.
    pub duration: Option<Duration>,
    /// The INVITE's final status code as written (empty for an unmatched BYE).
    pub sip_code: Vec<u8>,
    /// The INVITE's final reason phrase as written (empty for an unmatched BYE).
    pub sip_reason: Vec<u8>,
    /// How the call ended up.
    pub status: CallStatus,
    /// The extra columns' values (see the type's documentation for whose).
    pub extras: Vec<Vec<u8>>,
}

impl Cdr {
    /// The `failed` CDR of one record (a missed-calls record, or a non-2xx INVITE): its own
    /// tags, code, reason and extras, started at its time, no end, duration 0.
    pub fn failed(record: &CallRecord<'_>) -> Self {
        CdrView::failed(record).to_cdr()
    }

    /// The CDR borrowed, e.g. to be written the way the pairer's CDRs are.
    pub fn view(&self) -> CdrView<'_> {
        CdrView {
            callid: &self.callid,
            from_tag: &self.from_tag,
            to_tag: &self.to_tag,
            start: self.start,
            end: self.end,
            duration: self.duration,
            sip_code: &self.sip_code,
            sip_reason: &self.sip_reason,
            status: self.status,
            extras: Extras(ExtraValues::Owned(self.extras.iter())),
        }
    }

    /// The column names of CDRs made from a table with this `layout`: [`CDR_FIELDS`], then the
    /// layout's extra names.
    pub fn header(layout: &Layout) -> Vec<&[u8]> {
        CDR_FIELDS
            .iter()
            .map(|name| name.as_bytes())
            .chain(layout.extra_names())
            .collect()
    }

    /// The field values as text, in [`header`](Self::header) order: times as ISO-8601 UTC, the
    /// duration in seconds, an absent value as empty text, the other fields as found.
    pub fn fields(&self) -> Vec<Cow<'_, [u8]>> {
        let text = |value: Option<String>| Cow::Owned(value.unwrap_or_default().into_bytes());
        let fixed = [
            Cow::Borrowed(self.callid.as_slice()),
            Cow::Borrowed(self.from_tag.as_slice()),
            Cow::Borrowed(self.to_tag.as_slice()),
            text(self.start.map(|start| start.to_string())),
            text(self.end.map(|end| end.to_string())),
            text(self.duration.map(|duration| duration.to_string())),
            Cow::Borrowed(self.sip_code.as_slice()),
            Cow::Borrowed(self.sip_reason.as_slice()),
            Cow::Borrowed(self.status.as_str().as_bytes()),
        ];
        fixed
            .into_iter()
            .chain(
                self.extras
                    .iter()
                    .map(|extra| Cow::Borrowed(extra.as_slice())),
            )
            .collect()
    }
}

/// A [`Cdr`] borrowed from where its values are kept (the pairer's open call, a record's
/// fields): the same fields, with no copy made. The pairer hands its CDRs out this way (see
/// [`pairing::Emit`]); [`to_cdr`](Self::to_cdr) makes the owned record.
#[derive(Clone, Debug)]
pub struct CdrView<'a> {
    /// The Call-ID.
    pub callid: &'a [u8],
    /// The caller's tag.
    pub from_tag: &'a [u8],
    /// The callee's tag.
    pub to_tag: &'a [u8],
    /// As [`Cdr::start`].
    pub start: Option<Timestamp>,
    /// As [`Cdr::end`].
    pub end: Option<Timestamp>,
    /// As [`Cdr::duration`].
    pub duration: Option<Duration>,
    /// As [`Cdr::sip_code`].
    pub sip_code: &'a [u8],
    /// As [`Cdr::sip_reason`].
    pub sip_reason: &'a [u8],
    /// How the call ended up.
    pub status: CallStatus,
    /// The extra columns' values, as [`Cdr::extras`].
    pub extras: Extras<'a>,
}

impl<'a> CdrView<'a> {
    /// [`Cdr::failed`], borrowed from the record.
    pub fn failed(record: &CallRecord<'a>) -> Self {
        Self {
            callid: record.callid(),
            from_tag: record.from_tag(),
            to_tag: record.to_tag(),
            start: Some(record.time()),
            end: None,
            duration: Some(Duration::ZERO),
            sip_code: record.sip_code(),
            sip_reason: record.sip_reason(),
            status: CallStatus::Failed,
            extras: Extras(ExtraValues::Record(record.extras())),
        }
    }

    /// The `answered` CDR of a record that is a whole call `length` long (see
    /// [`CallRecord::call_length`]): its own tags, code, reason and extras, started at its
    /// time, ended `length` later.
    pub fn whole_call(record: &CallRecord<'a>, length: Duration) -> Self {
        Self {
            end: Some(record.time().plus(&length)),
            duration: Some(length),
            status: CallStatus::Answered,
            ..Self::failed(record)
        }
    }

    /// The owned CDR.
    pub fn to_cdr(&self) -> Cdr {
        Cdr {
            callid: self.callid.to_vec(),
            from_tag: self.from_tag.to_vec(),
            to_tag: self.to_tag.to_vec(),
            start: self.start,
            end: self.end,
            duration: self.duration,
            sip_code: self.sip_code.to_vec(),
            sip_reason: self.sip_reason.to_vec(),
            status: self.status,
            extras: self.extras.clone().map(<[u8]>::to_vec).collect(),
        }
    }
}

/// The extra columns' values of a [`CdrView`], in order.
#[derive(Clone, Debug)]
pub struct Extras<'a>(ExtraValues<'a>);

#[derive(Clone, Debug)]
enum ExtraValues<'a> {
    Record(layout::RecordExtras<'a>),
    Parts(parts::Parts<'a>),
    Owned(std::slice::Iter<'a, Vec<u8>>),
}

impl<'a> Extras<'a> {
    /// The values kept as length-prefixed parts (see `parts`).
    fn from_parts(parts: parts::Parts<'a>) -> Self {
        Self(ExtraValues::Parts(parts))
    }
}

impl<'a> Iterator for Extras<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match &mut self.0 {
            ExtraValues::Record(values) => values.next(),
            ExtraValues::Parts(values) => values.next(),
            ExtraValues::Owned(values) => values.next().map(Vec::as_slice),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_record_gives_its_own_values_with_duration_zero_and_no_end() {
        let layout = match Layout::kamailio_default(8) {
            Ok(layout) => layout,
            Err(error) => panic!("{error}"),
        };
        let line: Vec<Vec<u8>> = [
            "INVITE",
            "ft",
            "tt",
            "cid",
            "486",
            "Busy Here",
            "2026-11-23 10:00:00.120",
            "alice",
        ]
        .map(|field| field.as_bytes().to_vec())
        .to_vec();
        let cdr = match layout.view(&line) {
            Ok(record) => Cdr::failed(&record),
            Err(error) => panic!("{error}"),
        };
        assert_eq!(
            Cdr::header(&layout),
            [
                &b"callid"[..],
                b"from_tag",
                b"to_tag",
                b"start",
                b"end",
                b"duration",
                b"sip_code",
                b"sip_reason",
                b"status",
                b"extra8"
            ]
        );
        assert_eq!(
            cdr.fields(),
            [
                &b"cid"[..],
                b"ft",
                b"tt",
                b"2026-11-23T10:00:00.120Z",
                b"",
                b"0",
                b"486",
                b"Busy Here",
                b"failed",
                b"alice"
            ]
        );
    }
}
