//! Column roles: which field of a table's line is the method, the tags, the Call-ID, the answer
//! and the time, which fields are extras, and the call-record view of one line.

use crate::line::fields::{Fields, FieldsView, Lines};

use super::CDR_FIELDS;
use super::time::{Duration, TimeError, Timestamp};
use finer::FinerTime;

mod finer;

/// The role columns, in Kamailio's default order (the acc module's first seven columns).
pub const ROLE_NAMES: [&str; 7] = [
    "method",
    "from_tag",
    "to_tag",
    "callid",
    "sip_code",
    "sip_reason",
    "time",
];

/// The columns of a whole call's length, by name: OpenSIPS's acc in CDR mode
/// (`do_accounting("db", "cdr")`) writes one line per call with its length in whole seconds
/// (`duration`, rounded up) and in milliseconds (`ms_duration`). Optional; neither is an extra.
pub const LENGTH_NAMES: [&str; 2] = ["duration", "ms_duration"];

/// A role, as the index of its name in [`ROLE_NAMES`].
#[derive(Clone, Copy)]
enum Role {
    Method,
    FromTag,
    ToTag,
    CallId,
    SipCode,
    SipReason,
    Time,
}

/// Why a layout could not be made from a table's columns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// Without names, the table must have at least Kamailio's seven default columns.
    #[error(
        "the table has {found} columns; without column names it needs at least 7 \
         (method, from_tag, to_tag, callid, sip_code, sip_reason, time)"
    )]
    TooFewColumns {
        /// How many columns the table has.
        found: usize,
    },
    /// With names, every role name must be there.
    #[error("no column named {}", .missing.join(", "))]
    MissingRoles {
        /// The role names not found, in [`ROLE_NAMES`] order.
        missing: Vec<&'static str>,
    },
    /// A column name is empty.
    #[error("column {position} has no name")]
    Unnamed {
        /// Its position, from 1.
        position: usize,
    },
    /// Two columns have the same name.
    #[error("more than one column is named \"{}\"", .name.escape_ascii())]
    Duplicate {
        /// The name.
        name: Vec<u8>,
    },
    /// An extra column is named like a CDR field, so the CDR would have two such columns.
    #[error(
        "extra column \"{}\" has the name of a CDR field; rename it (e.g. with --columns)",
        .name.escape_ascii()
    )]
    ClashesWithCdrField {
        /// The name.
        name: Vec<u8>,
    },
}

/// Why one line of a table could not be viewed as a call record. The line is skipped and the
/// error is the problem to report: nothing about it is guessed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The line does not have the layout's number of fields.
    #[error("the line has {found} fields where the table has {expected} columns")]
    FieldCount {
        /// The layout's width.
        expected: usize,
        /// The line's field count.
        found: usize,
    },
    /// The `time` field cannot be read.
    #[error("time \"{}\" cannot be read: {source}", .text.escape_ascii())]
    Time {
        /// The field as found.
        text: Vec<u8>,
        /// Why not.
        source: TimeError,
    },
}

/// Where each role and each extra column is in one table's lines. Made once per table, then
/// applied to each of its lines with [`view`](Self::view).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    width: usize,
    role_columns: [usize; ROLE_NAMES.len()],
    extra_columns: Vec<usize>,
    extra_names: Vec<Vec<u8>>,
    /// The columns named in [`LENGTH_NAMES`], when the table has them.
    length_columns: [Option<usize>; LENGTH_NAMES.len()],
    /// Where the records carry a finer time than `time`, when the names say so.
    finer_time: Option<FinerTime>,
}

impl Layout {
    /// Kamailio's default layout for a table of `width` columns: the seven roles in
    /// [`ROLE_NAMES`] order, then extras named `extra8`, `extra9`, ... by their position from 1.
    pub fn kamailio_default(width: usize) -> Result<Self, LayoutError> {
        if width < ROLE_NAMES.len() {
            return Err(LayoutError::TooFewColumns { found: width });
        }
        let extra_columns: Vec<usize> = (ROLE_NAMES.len()..width).collect();
        Ok(Self {
            width,
            role_columns: std::array::from_fn(|role| role),
            extra_names: extra_columns
                .iter()
                .map(|column| format!("extra{}", column + 1).into_bytes())
                .collect(),
            extra_columns,
            length_columns: [None; LENGTH_NAMES.len()],
            finer_time: None,
        })
    }

    /// The layout of a table whose columns have these `names`, in table order (from the schema
    /// sidecar or the user). Every name in [`ROLE_NAMES`] must be present; every other column
    /// is an extra keeping its name and its place, except the call-length columns
    /// `LENGTH_NAMES` (see [`CallRecord::call_length`]). Names are compared exactly (case matters);
    /// an empty name, a repeated name, or an extra named like a CDR field is an error.
    ///
    /// Extras named in `FINER_TIME_NAMES` (`time_exten`, `time_hires`, `time_attr`: Kamailio's
    /// acc with `time_mode` 1 or 2) carry a finer time than `time`: a record's time is taken
    /// from them when they read as a finer form of the same instant, else from `time` (see
    /// [`time`](Self::time)).
    pub fn from_names<N: AsRef<[u8]>>(names: &[N]) -> Result<Self, LayoutError> {
        let mut role_columns = [None; ROLE_NAMES.len()];
        let mut extra_columns = Vec::new();
        let mut extra_names = Vec::new();
        let mut length_columns = [None; LENGTH_NAMES.len()];
        for (column, name) in names.iter().map(AsRef::as_ref).enumerate() {
            if name.is_empty() {
                return Err(LayoutError::Unnamed {
                    position: column + 1,
                });
            }
            if names[..column]
                .iter()
                .any(|earlier| earlier.as_ref() == name)
            {
                return Err(LayoutError::Duplicate {
                    name: name.to_vec(),
                });
            }
            if let Some(length) = LENGTH_NAMES.iter().position(|l| l.as_bytes() == name) {
                length_columns[length] = Some(column);
                continue;
            }
            match ROLE_NAMES.iter().position(|role| role.as_bytes() == name) {
                Some(role) => role_columns[role] = Some(column),
                None if CDR_FIELDS.iter().any(|field| field.as_bytes() == name) => {
                    return Err(LayoutError::ClashesWithCdrField {
                        name: name.to_vec(),
                    });
                }
                None => {
                    extra_columns.push(column);
                    extra_names.push(name.to_vec());
                }
            }
        }
        let missing: Vec<&'static str> = ROLE_NAMES
            .iter()
            .zip(&role_columns)
            .filter(|(_, column)| column.is_none())
            .map(|(name, _)| *name)
            .collect();
        if !missing.is_empty() {
            return Err(LayoutError::MissingRoles { missing });
        }
        Ok(Self {
            width: names.len(),
            // Every role has its column: `missing` is empty.
            role_columns: role_columns.map(|column| column.unwrap_or_default()),
            extra_columns,
            extra_names,
            length_columns,
            finer_time: FinerTime::from_names(names),
        })
    }

    /// How many fields each line of the table has.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The names of the extra columns, in table order.
    pub fn extra_names(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.extra_names.iter().map(Vec::as_slice)
    }

    /// The time of a line (its decoded `fields`), e.g. to order lines before viewing them: its
    /// `time` column, or the finer time the layout's other columns carry (acc's `time_mode` 1
    /// or 2) when they read as epoch seconds with a fraction, or as seconds and microseconds,
    /// of the same instant as `time` at `time`'s precision. When they do not (empty, a date, a
    /// value of another second), the line's time is its `time`: nothing is guessed, and a line
    /// `time` alone reads is never refused for them.
    pub fn time(&self, fields: &[Vec<u8>]) -> Result<Timestamp, RecordError> {
        self.time_in(FieldsRef::Vecs(fields))
    }

    /// The line's decoded `fields` seen as a call record: its width must be the layout's and
    /// its time readable.
    pub fn view<'r>(&'r self, fields: &'r [Vec<u8>]) -> Result<CallRecord<'r>, RecordError> {
        let fields = FieldsRef::Vecs(fields);
        let time = self.time_in(fields)?;
        Ok(self.record(fields, time))
    }

    /// [`time`](Self::time) of a line decoded into [`Fields`].
    pub fn fields_time(&self, fields: &Fields) -> Result<Timestamp, RecordError> {
        self.time_in(FieldsRef::Decoded(fields.view()))
    }

    /// The Call-ID of a line decoded into [`Fields`], whatever its width, when it reaches the
    /// Call-ID column: to name a line that is no call record in messages.
    pub fn fields_callid<'f>(&self, fields: &'f Fields) -> Option<&'f [u8]> {
        fields.get(self.role_columns[Role::CallId as usize])
    }

    /// [`view`](Self::view) of a line decoded into [`Fields`].
    pub fn view_fields<'r>(&'r self, fields: &'r Fields) -> Result<CallRecord<'r>, RecordError> {
        let fields = FieldsRef::Decoded(fields.view());
        let time = self.time_in(fields)?;
        Ok(self.record(fields, time))
    }

    /// The view of a line whose time [`fields_time`](Self::fields_time) already read as `time`,
    /// without reading it again: only the width is checked. (Given another time, the record
    /// has that time.)
    pub fn view_fields_at<'r>(
        &'r self,
        fields: &'r Fields,
        time: Timestamp,
    ) -> Result<CallRecord<'r>, RecordError> {
        let fields = FieldsRef::Decoded(fields.view());
        self.check_width(fields)?;
        Ok(self.record(fields, time))
    }

    /// [`view_fields_at`](Self::view_fields_at) of the line at `index` of `lines`, whose time
    /// is `time`; `None` past the last line.
    pub fn view_line_at<'r>(
        &'r self,
        lines: &'r Lines,
        index: usize,
        time: Timestamp,
    ) -> Option<Result<CallRecord<'r>, RecordError>> {
        let fields = FieldsRef::Decoded(lines.get(index)?);
        Some(self.check_width(fields).map(|()| self.record(fields, time)))
    }

    // Inlined into each caller, as it was before the finer time: `fields_time` is the hot path.
    #[inline(always)]
    fn time_in(&self, fields: FieldsRef<'_>) -> Result<Timestamp, RecordError> {
        self.check_width(fields)?;
        let text = fields.get(self.role_columns[Role::Time as usize]);
        let time = Timestamp::parse(text).map_err(|source| RecordError::Time {
            text: text.to_vec(),
            source,
        })?;
        Ok(match self.finer_time {
            None => time,
            Some(finer) => finer.refine(fields, time),
        })
    }

    fn record<'r>(&'r self, fields: FieldsRef<'r>, time: Timestamp) -> CallRecord<'r> {
        CallRecord {
            layout: self,
            fields,
            time,
        }
    }

    fn check_width(&self, fields: FieldsRef<'_>) -> Result<(), RecordError> {
        let found = fields.len();
        if found == self.width {
            Ok(())
        } else {
            Err(RecordError::FieldCount {
                expected: self.width,
                found,
            })
        }
    }
}

/// The fields of one line, however they are kept.
#[derive(Clone, Copy, Debug)]
enum FieldsRef<'r> {
    Vecs(&'r [Vec<u8>]),
    Decoded(FieldsView<'r>),
}

impl<'r> FieldsRef<'r> {
    fn len(self) -> usize {
        match self {
            Self::Vecs(fields) => fields.len(),
            Self::Decoded(fields) => fields.len(),
        }
    }

    /// The field at `index`; empty past the end (a record's columns are all within its width).
    fn get(self, index: usize) -> &'r [u8] {
        match self {
            Self::Vecs(fields) => fields.get(index).map(Vec::as_slice),
            Self::Decoded(fields) => fields.get(index),
        }
        .unwrap_or_default()
    }
}

/// One line of a table, seen through its [`Layout`]: its role fields by name, its time read,
/// its extras in table order. It borrows the line; nothing is copied.
#[derive(Clone, Copy, Debug)]
pub struct CallRecord<'r> {
    layout: &'r Layout,
    /// Exactly `layout.width()` fields, so every column of the layout indexes into it.
    fields: FieldsRef<'r>,
    time: Timestamp,
}

impl<'r> CallRecord<'r> {
    fn role(&self, role: Role) -> &'r [u8] {
        self.fields.get(self.layout.role_columns[role as usize])
    }

    /// The SIP method (`INVITE`, `BYE`, ...).
    pub fn method(&self) -> &'r [u8] {
        self.role(Role::Method)
    }

    /// The From tag.
    pub fn from_tag(&self) -> &'r [u8] {
        self.role(Role::FromTag)
    }

    /// The To tag.
    pub fn to_tag(&self) -> &'r [u8] {
        self.role(Role::ToTag)
    }

    /// The Call-ID.
    pub fn callid(&self) -> &'r [u8] {
        self.role(Role::CallId)
    }

    /// The reply's status code, as written (e.g. `200`).
    pub fn sip_code(&self) -> &'r [u8] {
        self.role(Role::SipCode)
    }

    /// The reply's reason phrase, as written (e.g. `OK`).
    pub fn sip_reason(&self) -> &'r [u8] {
        self.role(Role::SipReason)
    }

    /// The record's time.
    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// The length of the whole call this record is, or `None` when it is one request of a call:
    /// the one place deciding that a record is a whole call. It is one when its table has a
    /// column named in `LENGTH_NAMES` and the record is an answered (2xx) INVITE whose
    /// length there is a positive integer: `ms_duration` (milliseconds) when the table has it,
    /// else `duration` (seconds). OpenSIPS's acc writes such a line per call in CDR mode, its
    /// `time` the answer; its per-request records (with a `do_accounting` context) have the
    /// same columns at `0`, so they stay requests, as does a call shorter than 1 ms.
    pub fn call_length(&self) -> Option<Duration> {
        let [seconds, milliseconds] = self.layout.length_columns;
        if seconds.is_none() && milliseconds.is_none() {
            return None;
        }
        if self.method() != b"INVITE" || self.sip_code().first() != Some(&b'2') {
            return None;
        }
        let positive = |column: usize| {
            let text = self.fields.get(column);
            let digits = !text.is_empty() && text.iter().all(u8::is_ascii_digit);
            std::str::from_utf8(text)
                .ok()
                .filter(|_| digits)
                .and_then(|text| text.parse::<u64>().ok())
                .filter(|&value| value > 0)
        };
        match milliseconds {
            Some(column) => positive(column).map(Duration::from_millis),
            None => positive(seconds?).map(Duration::from_seconds),
        }
    }

    /// The extra columns' values, in the order of [`Layout::extra_names`].
    pub fn extras(&self) -> RecordExtras<'r> {
        RecordExtras {
            fields: self.fields,
            columns: self.layout.extra_columns.iter(),
        }
    }
}

/// The extra columns' values of one record, in table order (see [`CallRecord::extras`]).
#[derive(Clone, Debug)]
pub struct RecordExtras<'r> {
    fields: FieldsRef<'r>,
    columns: std::slice::Iter<'r, usize>,
}

impl<'r> Iterator for RecordExtras<'r> {
    type Item = &'r [u8];

    fn next(&mut self) -> Option<&'r [u8]> {
        self.columns.next().map(|&column| self.fields.get(column))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.columns.size_hint()
    }
}

impl ExactSizeIterator for RecordExtras<'_> {}

#[cfg(test)]
mod tests;
