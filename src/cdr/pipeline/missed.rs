//! The missed-calls table: each of its records a `failed` CDR, its extras in the main table's
//! order; its files read one after the other.

use super::reading::FileRecords;
use super::{CdrWriter, FileRead, LineReader, RecordFile, RunError, Table, TimeWindow, opened};
use crate::cdr::layout::{CallRecord, Layout};
use crate::cdr::{Cdr, CdrView};

/// Writes the `failed` CDR of every record of `missed`'s files to `out`, appending to `read`
/// what each file was read up to.
pub(super) fn failed_calls<R, W, M>(
    missed: Table<M>,
    main: &Layout,
    window: TimeWindow,
    out: &mut W,
    read: &mut Vec<FileRead<R>>,
) -> Result<(), RunError<W::Error>>
where
    R: LineReader,
    W: CdrWriter<ReadError = R::Error>,
    M: IntoIterator<Item = Result<RecordFile<R>, R::Error>>,
{
    let layout = &missed.layout;
    let same_extras = layout.extra_names().eq(main.extra_names());
    let mut notes = Vec::new();
    for file in missed.files {
        let Some(file) = opened(file, out) else {
            continue;
        };
        let mut records = FileRecords::new(file, layout, window, false);
        loop {
            let more = records.advance(&mut notes);
            for note in notes.drain(..) {
                out.complaint(note);
            }
            if !more {
                break;
            }
            if let Some(record) = records.record() {
                if same_extras {
                    out.cdr(&CdrView::failed(&record));
                } else {
                    out.cdr(&failed_cdr(&record, layout, main).view());
                }
            }
            out.check().map_err(RunError::Write)?;
        }
        read.push(records.read());
    }
    Ok(())
}

/// A missed-calls record's CDR with its extras in the main table's order, matched by name
/// (empty where the missed-calls table has no such column).
fn failed_cdr(record: &CallRecord<'_>, missed: &Layout, main: &Layout) -> Cdr {
    let mut cdr = Cdr::failed(record);
    let found: Vec<&[u8]> = missed.extra_names().collect();
    let values = std::mem::take(&mut cdr.extras);
    cdr.extras = main
        .extra_names()
        .map(|name| {
            found
                .iter()
                .position(|n| *n == name)
                .and_then(|i| values.get(i).cloned())
                .unwrap_or_default()
        })
        .collect();
    cdr
}
