//! The main table on two threads: its files merged by time and decoded on the calling thread,
//! in batches to a pairing thread that pairs their records and writes what comes out.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;

use super::reading::FileRecords;
use super::{
    CdrWriter, Complaint, FileRead, LineReader, RecordFile, RunError, Table, TimeWindow, opened,
};
use crate::cdr::layout::Layout;
use crate::cdr::merge::MergeOrder;
use crate::cdr::pairing::{Pairer, PreparedKeys};
use crate::cdr::time::Timestamp;
use crate::line::fields::Lines;

/// How many records the reading thread hands to the pairing thread at once.
const BATCH: usize = 1024;
/// How many records' memory the pairer reads at once before pairing them (`Pairer::warm`).
const WARMED: usize = 32;
/// How many batches are on their way to the pairing thread at most: enough for either thread
/// to go on through a burst of work of the other (a sweep of the ended calls, a file's first
/// read); 8 batches of 1024 records hold about 2 MB whatever the input.
const BATCHES_IN_FLIGHT: usize = 8;

/// Records merged by time, decoded, on their way from the reading thread to the pairing thread,
/// with the complaints met while reading them: the pairing thread hands each complaint to the
/// writer before the record it is noted at, so they come in the order one thread doing both
/// would give. The records lie one after the other in a few buffers, reused from batch to batch.
struct Batch<E> {
    /// The records' fields.
    lines: Lines,
    /// Each record's time.
    times: Vec<Timestamp>,
    /// Each record's call key and side, prepared for the pairer.
    prepared: PreparedKeys,
    /// Complaints, each with the index of the record it is handed over before (the number of
    /// records for after the last).
    notes: Vec<(usize, Complaint<E>)>,
}

impl<E> Default for Batch<E> {
    fn default() -> Self {
        Self {
            lines: Lines::default(),
            times: Vec::new(),
            prepared: PreparedKeys::default(),
            notes: Vec::new(),
        }
    }
}

impl<E> Batch<E> {
    /// Notes `notes` (emptied) before record `at`.
    fn note(&mut self, at: usize, notes: &mut Vec<Complaint<E>>) {
        self.notes.extend(notes.drain(..).map(|note| (at, note)));
    }

    fn clear(&mut self) {
        self.lines.clear();
        self.times.clear();
        self.prepared.clear();
        self.notes.clear();
    }
}

/// Pairs the records of `main`'s files, merged by time, into `out`; returns what each file
/// was read up to, in the order given (those that could not be opened left out).
pub(super) fn pair_main<R, W, A>(
    main: Table<A>,
    window: TimeWindow,
    pairer: &mut Pairer,
    out: &mut W,
) -> Result<Vec<FileRead<R>>, RunError<W::Error>>
where
    R: LineReader,
    W: CdrWriter<ReadError = R::Error>,
    A: IntoIterator<Item = Result<RecordFile<R>, R::Error>>,
{
    let layout = &main.layout;
    let mut files: Vec<FileRecords<'_, R>> = main
        .files
        .into_iter()
        .filter_map(|file| opened(file, out))
        .map(|file| FileRecords::new(file, layout, window, true))
        .collect();
    let (full_sender, full) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
    let (empty, empty_receiver) = mpsc::channel();
    let (reading, pairing) = std::thread::scope(|scope| {
        // Each end of a channel is dropped when its thread stops, by returning or by a panic,
        // so that the other thread stops waiting on it.
        let pairing = scope.spawn(move || pair_merged(layout, pairer, out, full, empty));
        let reading = panic::catch_unwind(AssertUnwindSafe(|| {
            read_merged(&mut files, full_sender, &empty_receiver)
        }));
        (reading, pairing.join())
    });
    if let Err(panic) = reading {
        return Err(panicked("reading", panic));
    }
    match pairing {
        Ok(paired) => paired.map_err(RunError::Write)?,
        Err(panic) => return Err(panicked("pairing", panic)),
    }
    Ok(files.into_iter().map(FileRecords::read).collect())
}

/// The error of a thread that panicked with `panic`.
fn panicked<E>(thread: &'static str, panic: Box<dyn Any + Send>) -> RunError<E> {
    let message = match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(panic) => match panic.downcast::<&str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "a panic".to_owned(),
        },
    };
    RunError::Panicked { thread, message }
}

/// Reads `files` merged by time into batches sent to `full` (taking empty ones back from
/// `empty`), until they are read or the pairing thread stops taking them.
fn read_merged<R: LineReader>(
    files: &mut [FileRecords<'_, R>],
    full: mpsc::SyncSender<Batch<R::Error>>,
    empty: &mpsc::Receiver<Batch<R::Error>>,
) {
    let mut notes = Vec::new();
    let mut batch = Batch::default();
    let mut order = MergeOrder::with_capacity(files.len());
    for (index, file) in files.iter_mut().enumerate() {
        if file.advance(&mut notes) {
            order.push(file.time.instant(), index);
        }
    }
    batch.note(0, &mut notes);
    while let Some(index) = order.first() {
        // The file reads on to its next record before this one is paired, as the merge
        // always did (so complaints come in the same order).
        let file = &mut files[index];
        let at = batch.times.len();
        batch.lines.push(&file.fields);
        batch.prepared.push(file.record().as_ref());
        batch.times.push(file.time);
        if file.advance(&mut notes) {
            order.replace_first(file.time.instant());
        } else {
            order.pop();
        }
        batch.note(at, &mut notes);
        if batch.times.len() == BATCH {
            let next = empty.try_recv().unwrap_or_default();
            if full.send(std::mem::replace(&mut batch, next)).is_err() {
                return;
            }
        }
    }
    if !batch.times.is_empty() || !batch.notes.is_empty() {
        let _ = full.send(batch);
    }
}

/// Pairs the records of the batches from `full` (handing each back to `empty`), writing what
/// comes out; stops at the first write error.
fn pair_merged<W: CdrWriter>(
    layout: &Layout,
    pairer: &mut Pairer,
    out: &mut W,
    full: mpsc::Receiver<Batch<W::ReadError>>,
    empty: mpsc::Sender<Batch<W::ReadError>>,
) -> Result<(), W::Error> {
    for mut batch in full {
        let mut notes = batch.notes.drain(..).peekable();
        for (group, times) in batch.times.chunks(WARMED).enumerate() {
            let first = group * WARMED;
            pairer.warm(&batch.prepared, first..first + times.len());
            for (at, time) in (first..).zip(times) {
                while let Some((_, note)) = notes.next_if(|(before, _)| *before <= at) {
                    out.complaint(note);
                }
                if let Some(Ok(record)) = layout.view_line_at(&batch.lines, at, *time) {
                    pairer.push_prepared_to(&record, &batch.prepared, at, out);
                }
                out.check()?;
            }
        }
        for (_, note) in notes {
            out.complaint(note);
        }
        batch.clear();
        // The reading thread may have stopped already.
        let _ = empty.send(batch);
    }
    Ok(())
}
