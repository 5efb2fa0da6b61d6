//! Column roles: which field of a table's line is the method, the tags, the Call-ID, the answer
//! and the time, which fields are extras, and the call-record view of one line.

use crate::line::decode::{decode_field_lenient, split_fields};
use crate::line::encode::DELIMITER;

use super::CDR_FIELDS;
use super::time::{TimeError, Timestamp};

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
        })
    }

    /// The layout of a table whose columns have these `names`, in table order (from the schema
    /// sidecar or the user). Every name in [`ROLE_NAMES`] must be present; every other column
    /// is an extra keeping its name and its place. Names are compared exactly (case matters);
    /// an empty name, a repeated name, or an extra named like a CDR field is an error.
    pub fn from_names<N: AsRef<[u8]>>(names: &[N]) -> Result<Self, LayoutError> {
        let mut role_columns = [None; ROLE_NAMES.len()];
        let mut extra_columns = Vec::new();
        let mut extra_names = Vec::new();
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

    /// The time of a line (its decoded `fields`), e.g. to order lines before viewing them.
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
        self.time_in(FieldsRef::Decoded(fields.slices()))
    }

    /// [`view`](Self::view) of a line decoded into [`Fields`].
    pub fn view_fields<'r>(&'r self, fields: &'r Fields) -> Result<CallRecord<'r>, RecordError> {
        let fields = FieldsRef::Decoded(fields.slices());
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
        let fields = FieldsRef::Decoded(fields.slices());
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
        let fields = FieldsRef::Decoded(lines.line(index)?);
        Some(self.check_width(fields).map(|()| self.record(fields, time)))
    }

    fn time_in(&self, fields: FieldsRef<'_>) -> Result<Timestamp, RecordError> {
        self.check_width(fields)?;
        let text = fields.get(self.role_columns[Role::Time as usize]);
        Timestamp::parse(text).map_err(|source| RecordError::Time {
            text: text.to_vec(),
            source,
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

/// One line's fields, split at `|` and decoded, in one buffer that is reused from line to line:
/// no allocation per field or per line once the buffer has grown to the longest line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    /// The decoded fields, each followed by one separator byte.
    bytes: Vec<u8>,
    /// Where each field ends in `bytes`; the next one starts one byte later.
    ends: Vec<usize>,
}

impl Fields {
    /// No fields yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the fields with those of `line` (without its `\n`): split at every `|`, each
    /// decoded as [`decode_field_lenient`] decodes it (so `a||b` is three fields, the middle
    /// one empty, and an empty line is one empty field).
    pub fn decode_line(&mut self, line: &[u8]) {
        self.bytes.clear();
        if needs_decoding(line) {
            self.decode_escaped(line);
        } else {
            // Nothing to decode: the line itself, cut at its delimiters.
            self.bytes.extend_from_slice(line);
            self.cut();
        }
    }

    /// [`decode_line`](Self::decode_line) of the line in `line`, taking its buffer instead of
    /// copying it when the line needs no decoding (`line` then gets the fields' old buffer,
    /// its content unspecified).
    pub fn decode_owned(&mut self, line: &mut Vec<u8>) {
        if needs_decoding(line) {
            self.bytes.clear();
            self.decode_escaped(line);
        } else {
            std::mem::swap(&mut self.bytes, line);
            self.cut();
        }
    }

    /// The ends of the fields of the undecoded line in `bytes`.
    fn cut(&mut self) {
        self.ends.clear();
        push_delimiters(&mut self.ends, &self.bytes);
        self.ends.push(self.bytes.len());
    }

    /// Decodes the fields of `line` after what `bytes` holds (nothing).
    fn decode_escaped(&mut self, line: &[u8]) {
        self.ends.clear();
        for field in split_fields(line) {
            decode_field_lenient(field, &mut self.bytes);
            self.ends.push(self.bytes.len());
            self.bytes.push(DELIMITER);
        }
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no fields (only before the first line is decoded).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The field at `index` (from 0), if there is one.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.slices().get(index)
    }

    fn slices(&self) -> Decoded<'_> {
        Decoded {
            bytes: &self.bytes,
            ends: &self.ends,
        }
    }

    /// The fields in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        (0..self.len()).map(|index| self.get(index).unwrap_or_default())
    }
}

/// Whether some field of `line` has an escape to decode (a `%` or a `\`).
fn needs_decoding(line: &[u8]) -> bool {
    memchr::memchr2(b'%', b'\\', line).is_some()
}

/// One in every byte of a word.
const EVERY_BYTE: u64 = 0x0101_0101_0101_0101;

/// Pushes the position of every delimiter of `line` to `ends`, in order, eight bytes at a time.
fn push_delimiters(ends: &mut Vec<usize>, line: &[u8]) {
    let delimiters = EVERY_BYTE * u64::from(DELIMITER);
    let mut words = line.chunks_exact(8);
    let mut at = 0;
    let mut push = |word: u64, at: usize| {
        let mut found = zero_bytes(word ^ delimiters);
        while found != 0 {
            ends.push(at + found.trailing_zeros() as usize / 8);
            found &= found - 1;
        }
    };
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        push(u64::from_le_bytes(bytes), at);
        at += 8;
    }
    let rest = words.remainder().len();
    if rest == 0 {
        return;
    }
    // The last eight bytes of the line, shifted so that only those not looked at yet remain,
    // zeros above them (a zero is not a delimiter); a line shorter than a word byte by byte.
    let last = match line.len().checked_sub(8) {
        Some(start) => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&line[start..]);
            u64::from_le_bytes(bytes) >> (8 * (8 - rest))
        }
        None => line
            .iter()
            .rev()
            .fold(0, |word, &byte| word << 8 | u64::from(byte)),
    };
    push(last, at);
}

/// The high bit of each byte of `word` that is zero, exactly (no carry crosses bytes).
fn zero_bytes(word: u64) -> u64 {
    const LOW_SEVEN: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((word & LOW_SEVEN).wrapping_add(LOW_SEVEN)) | word | LOW_SEVEN)
}

/// Several lines' fields, decoded (as [`Fields`] decodes them), one line after the other in a
/// few buffers reused from batch to batch: a batch of records handed from one thread to another
/// in one piece, read in the order it was written.
#[derive(Clone, Debug, Default)]
pub struct Lines {
    /// Every line's decoded fields (each as in [`Fields`]), one line after the other.
    bytes: Vec<u8>,
    /// Every line's field ends, each relative to the start of its line.
    ends: Vec<usize>,
    /// Where each line starts in `bytes` and in `ends`.
    starts: Vec<(usize, usize)>,
}

impl Lines {
    /// No lines.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a copy of the line decoded in `fields`.
    pub fn push(&mut self, fields: &Fields) {
        self.starts.push((self.bytes.len(), self.ends.len()));
        self.bytes.extend_from_slice(&fields.bytes);
        self.ends.extend_from_slice(&fields.ends);
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Forgets every line, keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.starts.clear();
    }

    /// The line at `index`.
    fn line(&self, index: usize) -> Option<Decoded<'_>> {
        let &(bytes, ends) = self.starts.get(index)?;
        let (bytes_end, ends_end) = self
            .starts
            .get(index + 1)
            .copied()
            .unwrap_or((self.bytes.len(), self.ends.len()));
        Some(Decoded {
            bytes: self.bytes.get(bytes..bytes_end)?,
            ends: self.ends.get(ends..ends_end)?,
        })
    }
}

/// One line's decoded fields, borrowed: as [`Fields`] keeps them.
#[derive(Clone, Copy, Debug)]
struct Decoded<'r> {
    bytes: &'r [u8],
    ends: &'r [usize],
}

impl<'r> Decoded<'r> {
    fn get(self, index: usize) -> Option<&'r [u8]> {
        let end = *self.ends.get(index)?;
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1] + 1,
        };
        self.bytes.get(start..end)
    }
}

/// The fields of one line, however they are kept.
#[derive(Clone, Copy, Debug)]
enum FieldsRef<'r> {
    Vecs(&'r [Vec<u8>]),
    Decoded(Decoded<'r>),
}

impl<'r> FieldsRef<'r> {
    fn len(self) -> usize {
        match self {
            Self::Vecs(fields) => fields.len(),
            Self::Decoded(fields) => fields.ends.len(),
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
mod tests {
    use super::*;

    fn line(fields: &[&str]) -> Vec<Vec<u8>> {
        fields
            .iter()
            .map(|field| field.as_bytes().to_vec())
            .collect()
    }

    #[test]
    fn the_default_layout_is_kamailios_order_then_numbered_extras() -> Result<(), LayoutError> {
        let layout = Layout::kamailio_default(9)?;
        assert_eq!(
            layout.extra_names().collect::<Vec<_>>(),
            [b"extra8", b"extra9"]
        );
        let fields = line(&[
            "INVITE",
            "ft",
            "tt",
            "cid",
            "200",
            "OK",
            "1700000000",
            "alice",
            "bob",
        ]);
        let record = match layout.view(&fields) {
            Ok(record) => record,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(record.method(), b"INVITE");
        assert_eq!(record.from_tag(), b"ft");
        assert_eq!(record.to_tag(), b"tt");
        assert_eq!(record.callid(), b"cid");
        assert_eq!(record.sip_code(), b"200");
        assert_eq!(record.sip_reason(), b"OK");
        assert_eq!(record.time().to_string(), "2023-11-14T22:13:20Z");
        assert_eq!(record.extras().collect::<Vec<_>>(), [&b"alice"[..], b"bob"]);
        assert_eq!(
            Layout::kamailio_default(6),
            Err(LayoutError::TooFewColumns { found: 6 })
        );
        assert_eq!(Layout::kamailio_default(7)?.extra_names().len(), 0);
        Ok(())
    }

    #[test]
    fn named_columns_find_roles_anywhere_and_keep_extras_in_order() -> Result<(), LayoutError> {
        let names = [
            "src_user",
            "time",
            "callid",
            "method",
            "to_tag",
            "dst_user",
            "from_tag",
            "sip_reason",
            "sip_code",
        ];
        let layout = Layout::from_names(&names)?;
        assert_eq!(layout.width(), 9);
        assert_eq!(
            layout.extra_names().collect::<Vec<_>>(),
            [&b"src_user"[..], b"dst_user"]
        );
        let fields = line(&[
            "alice",
            "1700000000.5",
            "cid",
            "BYE",
            "tt",
            "bob",
            "ft",
            "OK",
            "200",
        ]);
        let record = match layout.view(&fields) {
            Ok(record) => record,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(
            [
                record.method(),
                record.from_tag(),
                record.to_tag(),
                record.callid()
            ],
            [&b"BYE"[..], b"ft", b"tt", b"cid"]
        );
        assert_eq!(
            [record.sip_code(), record.sip_reason()],
            [&b"200"[..], b"OK"]
        );
        assert_eq!(record.time().fraction_digits(), 1);
        assert_eq!(record.extras().collect::<Vec<_>>(), [&b"alice"[..], b"bob"]);
        Ok(())
    }

    #[test]
    fn named_columns_must_hold_every_role_once() {
        let error = Layout::from_names(&["method", "callid", "time", "src_user"]);
        assert_eq!(
            error,
            Err(LayoutError::MissingRoles {
                missing: vec!["from_tag", "to_tag", "sip_code", "sip_reason"]
            })
        );
        assert_eq!(
            error.map_err(|error| error.to_string()),
            Err("no column named from_tag, to_tag, sip_code, sip_reason".to_owned())
        );
        let mut names = ROLE_NAMES.to_vec();
        names.push("time");
        assert_eq!(
            Layout::from_names(&names),
            Err(LayoutError::Duplicate {
                name: b"time".to_vec()
            })
        );
        names[7] = "";
        assert_eq!(
            Layout::from_names(&names),
            Err(LayoutError::Unnamed { position: 8 })
        );
        names[7] = "duration";
        assert_eq!(
            Layout::from_names(&names),
            Err(LayoutError::ClashesWithCdrField {
                name: b"duration".to_vec()
            })
        );
    }

    #[test]
    fn lines_of_the_wrong_width_or_with_an_unreadable_time_are_errors() -> Result<(), LayoutError> {
        let layout = Layout::kamailio_default(7)?;
        let short = line(&["INVITE", "ft", "tt", "cid", "200", "OK"]);
        assert_eq!(
            layout.view(&short).err(),
            Some(RecordError::FieldCount {
                expected: 7,
                found: 6
            })
        );
        let bad_time = line(&["INVITE", "ft", "tt", "cid", "200", "OK", "yesterday"]);
        let error = layout.view(&bad_time).err();
        assert_eq!(
            error,
            Some(RecordError::Time {
                text: b"yesterday".to_vec(),
                source: TimeError::Malformed
            })
        );
        assert_eq!(layout.time(&bad_time).err(), error);
        Ok(())
    }

    #[test]
    fn decoded_fields_are_the_fields_of_the_line_and_view_as_its_record() -> Result<(), LayoutError>
    {
        let mut fields = Fields::new();
        assert!(fields.is_empty());
        for (line, want) in [
            (&b""[..], vec![&b""[..]]),
            (b"a||b", vec![b"a", b"", b"b"]),
            (b"a%7Cb|100%|x\\x41", vec![b"a|b", b"100%", b"xA"]),
            (b"|", vec![b"", b""]),
        ] {
            fields.decode_line(line);
            let got: Vec<&[u8]> = fields.iter().collect();
            assert_eq!(got, want, "{}", line.escape_ascii());
            assert_eq!(fields.get(want.len()), None);
        }
        let layout = Layout::kamailio_default(8)?;
        fields.decode_line(b"BYE|ft|tt|c%7Cid|200|OK|1700000000.5|x%25");
        let record = match layout.view_fields(&fields) {
            Ok(record) => record,
            Err(error) => panic!("{error}"),
        };
        assert_eq!([record.method(), record.callid()], [&b"BYE"[..], b"c|id"]);
        assert_eq!(record.extras().collect::<Vec<_>>(), [b"x%"]);
        assert_eq!(layout.fields_time(&fields).ok(), Some(record.time()));
        let time = record.time();
        let at = layout.view_fields_at(&fields, time).map(|r| r.time());
        assert_eq!(at.ok(), Some(time));
        fields.decode_line(b"BYE|ft|tt|cid|200|OK");
        assert_eq!(
            layout.view_fields_at(&fields, time).err(),
            Some(RecordError::FieldCount {
                expected: 8,
                found: 6
            })
        );
        Ok(())
    }

    #[test]
    fn lines_kept_together_view_as_each_line_alone() -> Result<(), LayoutError> {
        let layout = Layout::kamailio_default(8)?;
        let texts: [&[u8]; 4] = [
            b"BYE|ft|tt|c%7Cid|200|OK|1700000000.5|x%25",
            b"INVITE|a||cid|200|OK|1700000001|",
            b"BYE|ft|tt|cid|200|OK",
            b"INVITE|b|c|d|486|Busy Here|1700000002|extra",
        ];
        let (mut lines, mut fields) = (Lines::new(), Fields::new());
        assert!(lines.is_empty());
        for text in texts {
            fields.decode_line(text);
            lines.push(&fields);
        }
        assert_eq!(lines.len(), texts.len());
        let time = Timestamp::EPOCH;
        for (index, text) in texts.iter().enumerate() {
            fields.decode_line(text);
            let alone = layout.view_fields_at(&fields, time);
            let together = layout.view_line_at(&lines, index, time);
            match (alone, together) {
                (Ok(alone), Some(Ok(together))) => {
                    let all = |r: &CallRecord<'_>| {
                        let mut all = vec![r.method(), r.from_tag(), r.to_tag(), r.callid()];
                        all.extend([r.sip_code(), r.sip_reason()]);
                        all.extend(r.extras());
                        all.into_iter().map(<[u8]>::to_vec).collect::<Vec<_>>()
                    };
                    assert_eq!(all(&alone), all(&together));
                }
                (Err(alone), Some(Err(together))) => assert_eq!(alone, together),
                _ => panic!("line {index} views differently"),
            }
        }
        assert!(layout.view_line_at(&lines, texts.len(), time).is_none());
        lines.clear();
        assert!(lines.is_empty());
        Ok(())
    }

    proptest::proptest! {
        /// Decoded in one buffer, the fields are those of split_fields and decode_field_lenient.
        #[test]
        fn decoded_fields_are_split_and_decoded_as_the_line_module_does(
            line in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b'|'),
                    proptest::strategy::Just(b'%'),
                    proptest::strategy::Just(b'\\'),
                    proptest::strategy::Just(b'x'),
                    proptest::strategy::Just(b'7'),
                    proptest::strategy::Just(b'C'),
                    0u8..=255,
                ],
                0..40,
            )
        ) {
            let mut fields = Fields::new();
            fields.decode_line(&line);
            let mut owned = Fields::new();
            let mut taken = line.clone();
            owned.decode_owned(&mut taken);
            proptest::prop_assert_eq!(&owned, &fields);
            let want: Vec<Vec<u8>> = split_fields(&line)
                .map(|field| {
                    let mut value = Vec::new();
                    decode_field_lenient(field, &mut value);
                    value
                })
                .collect();
            let got: Vec<Vec<u8>> = fields.iter().map(<[u8]>::to_vec).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
