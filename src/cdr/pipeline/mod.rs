//! The accounting run, from files to CDRs: [`run`].
//!
//! The caller opens the files (it knows how: gzip, standard input, where earlier runs stopped)
//! and gives each as a [`LineReader`]; the run reads them, decodes their records and pairs them,
//! handing every CDR and every complaint to a [`CdrWriter`] in the order they come:
//!
//! 1. the missed-calls table's files, one after the other on the calling thread: each record
//!    is a `failed` CDR (`missed`);
//! 2. the main table's files, all at once: each decoded, its time read, merged by time with
//!    the others and its call key prepared, on the calling thread (`reading`, `batches`); in
//!    batches to a second thread that pairs them ([`Pairer`]) and writes what comes out;
//! 3. the end of the input ([`Ending`]): every call still open emitted, or only the calls
//!    that ended, the open ones carried in the pairer to a later run.
//!
//! Neither thread waits forever on the other: a thread that panics ends the run with
//! [`RunError::Panicked`], its writer given nothing more.

mod batches;
mod missed;
mod reading;

#[cfg(test)]
mod tests;

use std::path::Path;

use super::layout::Layout;
use super::pairing::{Emit, Pairer};
use super::time::Timestamp;

/// One file's lines, from where the run reads it on.
pub trait LineReader {
    /// Why a line could not be read (handed to the pairing thread, so `Send`).
    type Error: Send;

    /// The file's path, to name it in complaints.
    fn path(&self) -> &Path;

    /// Reads the next line into `line` (cleared first, without its `\n`): `Ok(Some(true))` for
    /// a whole line, `Ok(Some(false))` for a last line without a newline (torn), `Ok(None)` at
    /// the end.
    fn next_line(&mut self, line: &mut Vec<u8>) -> Result<Option<bool>, Self::Error>;

    /// The content bytes consumed so far: after a whole line, where it ends.
    fn position(&self) -> u64;
}

/// A file of a run, open where its reading starts.
pub struct RecordFile<R> {
    /// Its lines.
    pub reader: R,
    /// How many lines of it were read before (by earlier runs), to number lines in complaints.
    pub lines_before: u64,
}

/// What a file was read up to: its reader, and where the last whole line read ends.
pub struct FileRead<R> {
    /// The file's reader, handed back.
    pub reader: R,
    /// Where the last whole line read ends (what a later run skips).
    pub end: u64,
}

/// A complaint met while reading, handed to the writer in its turn.
#[derive(Debug)]
pub enum Complaint<E> {
    /// A problem in the records (a torn last line, a line that is no call record).
    Problem(String),
    /// A file could not be read on.
    Unreadable(E),
}

/// Where a run hands what it makes, in order: CDRs and the pairer's problems ([`Emit`]), and
/// the complaints met while reading. Takes them on the pairing thread (hence `Send`).
pub trait CdrWriter: Emit + Send {
    /// A reader's error ([`LineReader::Error`]).
    type ReadError;
    /// Why a write failed.
    type Error: Send;

    /// A complaint about the input.
    fn complaint(&mut self, complaint: Complaint<Self::ReadError>);

    /// The first write that failed, if one did since the last call: the run stops at it.
    fn check(&mut self) -> Result<(), Self::Error>;
}

/// Which records are accounted, by their time: `since ≤ time < until`, in nanoseconds since
/// the epoch; unbounded where `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeWindow {
    /// The first time accounted.
    pub since: Option<i128>,
    /// The first time no longer accounted.
    pub until: Option<i128>,
}

impl TimeWindow {
    /// Whether `time` is accounted.
    pub fn contains(&self, time: &Timestamp) -> bool {
        let at = time.epoch_nanos();
        self.since.is_none_or(|since| at >= since) && self.until.is_none_or(|until| at < until)
    }

    /// Whether it leaves any record out.
    pub fn is_set(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }
}

/// How a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The input is whole: every call still open is emitted (`unterminated`, `unmatched_bye`).
    EmitOpenCalls,
    /// The input goes on in a later run: the calls that ended are emitted, the open ones stay
    /// in the pairer, to be saved (`state::save`).
    CarryOpenCalls,
}

/// A table of a run: its layout and its files, in the order they are read (a file that could
/// not be opened is an `Err`, handed to the writer as [`Complaint::Unreadable`]).
pub struct Table<I> {
    /// Which column holds what.
    pub layout: Layout,
    /// Its files.
    pub files: I,
}

/// What a run reads.
pub struct Sources<M, A> {
    /// The missed-calls table (each record a `failed` CDR), when it has files. Its files are
    /// opened one by one as they are read.
    pub missed: Option<Table<M>>,
    /// The table of answered calls (INVITEs and BYEs, paired). Its files are all opened first.
    pub main: Table<A>,
}

/// How a run reads and ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Only records whose time is in it are accounted.
    pub window: TimeWindow,
    /// What becomes of the calls open at the end.
    pub ending: Ending,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E> {
    /// Writing failed ([`CdrWriter::check`]).
    #[error("{0}")]
    Write(E),
    /// The reading or the pairing thread panicked.
    #[error("the {thread} thread failed: {message}")]
    Panicked {
        /// `reading` or `pairing`.
        thread: &'static str,
        /// The panic's message.
        message: String,
    },
}

/// Runs the accounting of `sources` into `out` with `pairer` (new, or restored from an earlier
/// run's state): the missed-calls table first, then the main table paired on a second thread,
/// then the [`Ending`]. Returns what each file that was read was read up to, the missed-calls
/// table's first, each table's in the order given. Afterwards `pairer` holds the run's
/// [`Counts`](super::pairing::Counts) (and, for [`Ending::CarryOpenCalls`], the open calls).
///
/// On an error nothing more is written; what was written stays (the caller commits nothing).
pub fn run<R, W, M, A>(
    sources: Sources<M, A>,
    options: RunOptions,
    pairer: &mut Pairer,
    out: &mut W,
) -> Result<Vec<FileRead<R>>, RunError<W::Error>>
where
    R: LineReader,
    W: CdrWriter<ReadError = R::Error>,
    M: IntoIterator<Item = Result<RecordFile<R>, R::Error>>,
    A: IntoIterator<Item = Result<RecordFile<R>, R::Error>>,
{
    let mut read = Vec::new();
    if let Some(missed) = sources.missed {
        missed::failed_calls(missed, &sources.main.layout, options.window, out, &mut read)?;
    }
    read.extend(batches::pair_main(
        sources.main,
        options.window,
        pairer,
        out,
    )?);
    match options.ending {
        Ending::EmitOpenCalls => pairer.finish_in_place(out),
        Ending::CarryOpenCalls => pairer.settle_to(out),
    }
    out.check().map_err(RunError::Write)?;
    Ok(read)
}

/// Opens `file`, or hands its error to `out`.
fn opened<R: LineReader, W: CdrWriter<ReadError = R::Error>>(
    file: Result<RecordFile<R>, R::Error>,
    out: &mut W,
) -> Option<RecordFile<R>> {
    file.map_err(|e| out.complaint(Complaint::Unreadable(e)))
        .ok()
}
