//! One file read record by record: each line decoded into fields reused from line to line, its
//! time read once, lines that are no call record (or outside the window) passed over with a
//! complaint, which names the file, the line and (when the line has one) the Call-ID.

use super::{Complaint, FileRead, LineReader, RecordFile, TimeWindow};
use crate::cdr::layout::{CallRecord, Layout};
use crate::cdr::pairing::answer_class;
use crate::cdr::time::Timestamp;
use crate::line::fields::Fields;

/// A file being read for the run, at its current record.
pub(super) struct FileRecords<'l, R> {
    reader: R,
    layout: &'l Layout,
    line: Vec<u8>,
    /// The current record's fields.
    pub(super) fields: Fields,
    /// The current record's time (once [`advance`](Self::advance) found one).
    pub(super) time: Timestamp,
    /// The current line's number in the file.
    number: u64,
    /// Where the last whole line read ends.
    end: u64,
    window: TimeWindow,
    /// Whether an INVITE whose status code is not three digits is passed over with a
    /// complaint (the main table's: whether such a call was answered is unknown).
    checks_codes: bool,
}

impl<'l, R: LineReader> FileRecords<'l, R> {
    /// The records of `file` in `window`; `checks_codes` for the main table's (INVITEs must have
    /// a 3-digit status code).
    pub(super) fn new(
        file: RecordFile<R>,
        layout: &'l Layout,
        window: TimeWindow,
        checks_codes: bool,
    ) -> Self {
        Self {
            end: file.reader.position(),
            reader: file.reader,
            layout,
            line: Vec::new(),
            fields: Fields::new(),
            time: Timestamp::EPOCH,
            number: file.lines_before,
            window,
            checks_codes,
        }
    }

    /// Reads on to the next line that is a call record in the window (noting in `notes` those
    /// that are not call records); false at the end of the file, a torn last line or a read
    /// error (noted).
    pub(super) fn advance(&mut self, notes: &mut Vec<Complaint<R::Error>>) -> bool {
        loop {
            match self.reader.next_line(&mut self.line) {
                Ok(Some(true)) => {}
                Ok(Some(false)) => {
                    self.number += 1;
                    self.fields.decode_owned(&mut self.line);
                    notes.push(Complaint::Problem(format!(
                        "{}: the last line is torn (no newline at its end): not read",
                        self.place()
                    )));
                    return false;
                }
                Ok(None) => return false,
                Err(e) => {
                    notes.push(Complaint::Unreadable(e));
                    return false;
                }
            }
            self.number += 1;
            self.end = self.reader.position();
            self.fields.decode_owned(&mut self.line);
            match self.layout.fields_time(&self.fields) {
                Ok(time) if self.window.is_set() && !self.window.contains(&time) => {}
                Ok(time) => {
                    self.time = time;
                    match self.unreadable_code() {
                        Some(code) => notes.push(Complaint::Problem(format!(
                            "{}: INVITE with status code \"{}\", which is not a 3-digit code \
                             (answered or not is unknown); not accounted",
                            self.place(),
                            code.escape_ascii()
                        ))),
                        None => return true,
                    }
                }
                Err(e) => notes.push(Complaint::Problem(format!(
                    "{}: {e}; not accounted",
                    self.place()
                ))),
            }
        }
    }

    /// The status code of the current record when it is an INVITE whose code is not three
    /// digits and codes are checked.
    fn unreadable_code(&self) -> Option<&[u8]> {
        if !self.checks_codes {
            return None;
        }
        let record = self.record()?;
        (record.method() == b"INVITE" && answer_class(record.sip_code()).is_none())
            .then(|| record.sip_code())
    }

    /// The current line, for messages: `FILE line N`, and `(Call-ID "…")` when it has one.
    fn place(&self) -> String {
        let mut place = format!("{} line {}", self.reader.path().display(), self.number);
        if let Some(callid) = self.layout.fields_callid(&self.fields) {
            place.push_str(&format!(" (Call-ID \"{}\")", callid.escape_ascii()));
        }
        place
    }

    /// The current record (after [`advance`](Self::advance) returned true).
    pub(super) fn record(&self) -> Option<CallRecord<'_>> {
        self.layout.view_fields_at(&self.fields, self.time).ok()
    }

    /// What the file was read up to.
    pub(super) fn read(self) -> FileRead<R> {
        FileRead {
            reader: self.reader,
            end: self.end,
        }
    }
}
