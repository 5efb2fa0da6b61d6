//! One file read record by record: each line decoded into fields reused from line to line, its
//! time read once, lines that are no call record (or outside the window) passed over with a
//! complaint.

use super::{Complaint, FileRead, LineReader, RecordFile, TimeWindow};
use crate::cdr::layout::{CallRecord, Layout};
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
}

impl<'l, R: LineReader> FileRecords<'l, R> {
    pub(super) fn new(file: RecordFile<R>, layout: &'l Layout, window: TimeWindow) -> Self {
        Self {
            end: file.reader.position(),
            reader: file.reader,
            layout,
            line: Vec::new(),
            fields: Fields::new(),
            time: Timestamp::EPOCH,
            number: file.lines_before,
            window,
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
                    notes.push(Complaint::Problem(format!(
                        "{}: the last line is torn (no newline at its end): not read",
                        self.reader.path().display()
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
                    return true;
                }
                Err(e) => notes.push(Complaint::Problem(format!(
                    "{} line {}: {e}; not accounted",
                    self.reader.path().display(),
                    self.number
                ))),
            }
        }
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
