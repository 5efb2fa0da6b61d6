//! One `COPY … FROM STDIN` for a whole run, fed while the run goes on: a thread of its own
//! owns the run's transaction and sends each buffer full of rows as it comes ([`CopyStream`]),
//! so that making the rows and the server's COPY overlap; the rows sent are kept in a spool
//! (an unlinked temporary file) so that rows the server refuses can be set aside and the rest
//! sent again, in the same transaction.
//!
//! The COPY runs under a savepoint. The server names a refused row (a value not of its
//! column's type, a broken constraint: [`rejects::refused`]) only when the COPY ends; then the
//! work since the savepoint is rolled back, the row set aside ([`Aside`]), the rows before it
//! (which the server took) sent again as one COPY, a new savepoint made, and the rows after it
//! sent again about 1 MiB per COPY, so that a further refusal costs only its own segment and
//! the rows since the last refusal. Up to [`MAX_ASIDE`] rows are set aside; one more fails the
//! run, as does any other error (a lost connection): nothing is committed then.

use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};

use postgres::Transaction;

use super::rejects::{self, MAX_ASIDE};

/// Buffers of rows on their way to the COPY thread at most.
const IN_FLIGHT: usize = 3;

/// How many bytes are handed to the connection at once. The connection writes to the server
/// only while the thread is inside a call of the client: data handed over in larger pieces
/// waits in its buffers, unsent, while the thread waits for the next buffer of rows.
const PIECE: usize = 64 * 1024;

/// About how many bytes of rows one COPY sends when rows are sent again after a refusal.
const SEGMENT: usize = 1024 * 1024;

/// A row the server refused, set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aside {
    /// Its number among the rows of the run, from 1.
    pub row: u64,
    /// The row as sent (COPY text), without its `\n`.
    pub bytes: Vec<u8>,
    /// Why the server refused it ([`rejects::refused`]).
    pub reason: String,
}

/// Why the rows could not all be copied (the transaction is rolled back).
#[derive(Debug)]
pub enum StreamError {
    /// The server or the connection failed (not a refusal of a row's value).
    Db(postgres::Error),
    /// The server failed at a row (an exception raised by a trigger, say): the row, its
    /// `reason` the server's message.
    AtRow(Aside),
    /// A row was refused, and the spool could not be written (or read) to send the others
    /// again.
    Spool(io::Error),
    /// The rows could not be sent.
    Send(io::Error),
    /// More than [`MAX_ASIDE`] rows refused; the last one refused, not set aside.
    TooMany(Aside),
    /// The COPY thread panicked.
    Panicked,
    /// The run was given up: nothing more came (the COPY is not ended).
    Abandoned,
}

impl From<postgres::Error> for StreamError {
    fn from(e: postgres::Error) -> Self {
        StreamError::Db(e)
    }
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> Self {
        StreamError::Spool(e)
    }
}

/// What the stream did, with the transaction handed back (to be committed).
pub struct Streamed<'s> {
    /// The run's transaction, every row but those set aside copied in it.
    pub tx: Transaction<'s>,
    /// Rows copied.
    pub copied: u64,
    /// The rows set aside, in order.
    pub aside: Vec<Aside>,
}

/// The COPY of a run, on its own thread: fed with [`send`](Self::send), ended with
/// [`finish`](Self::finish).
pub struct CopyStream<'s> {
    full: Option<mpsc::SyncSender<Vec<u8>>>,
    empty: mpsc::Receiver<Vec<u8>>,
    thread: ScopedJoinHandle<'s, Result<Streamed<'s>, StreamError>>,
}

impl<'s> CopyStream<'s> {
    /// Starts `copy` (`COPY … FROM STDIN`, text format) in `tx` on a thread of `scope`; the
    /// spool goes into `spool_dir`.
    pub fn start(
        scope: &'s Scope<'s, '_>,
        tx: Transaction<'s>,
        copy: String,
        spool_dir: PathBuf,
    ) -> Self {
        let (full, full_receiver) = mpsc::sync_channel(IN_FLIGHT);
        let (empty_sender, empty) = mpsc::channel();
        let thread =
            scope.spawn(move || stream(tx, &copy, &spool_dir, full_receiver, empty_sender));
        Self {
            full: Some(full),
            empty,
            thread,
        }
    }

    /// Sends the rows in `rows` (whole rows, each ending in `\n`), leaving it empty. `Err`
    /// when the thread stopped (its error comes from [`finish`](Self::finish)).
    pub fn send(&mut self, rows: &mut Vec<u8>) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(rows.capacity()));
        let full = std::mem::replace(rows, next);
        let sent = self.full.as_ref().map(|sender| sender.send(full));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(io::Error::other("the COPY to the database stopped")),
        }
    }

    /// Ends the input and waits for the COPY: the transaction back, or why it failed.
    pub fn finish(mut self) -> Result<Streamed<'s>, StreamError> {
        // An empty buffer says that the input is whole.
        if let Some(full) = self.full.take() {
            let _ = full.send(Vec::new());
        }
        self.thread.join().unwrap_or(Err(StreamError::Panicked))
    }

    /// Gives the run up (nothing is committed): the COPY is not ended; the error of the COPY
    /// thread, when it failed of its own.
    pub fn abandon(mut self) -> Option<StreamError> {
        self.full = None;
        match self.thread.join() {
            Ok(Ok(_)) | Ok(Err(StreamError::Abandoned)) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(StreamError::Panicked),
        }
    }
}

/// The COPY thread: every buffer from `full` spooled and sent (each handed back to `empty`)
/// up to an empty one, then the rows refused set aside and the rest sent again. Without the
/// empty buffer (the run given up) the COPY is not ended.
fn stream<'s>(
    mut tx: Transaction<'s>,
    copy: &str,
    spool_dir: &Path,
    full: mpsc::Receiver<Vec<u8>>,
    empty: mpsc::Sender<Vec<u8>>,
) -> Result<Streamed<'s>, StreamError> {
    let next = || full.recv().map_err(|_| StreamError::Abandoned);
    let mut buffer = next()?;
    // No rows, no COPY: the table's columns are not looked at.
    if buffer.is_empty() {
        return Ok(Streamed {
            tx,
            copied: 0,
            aside: Vec::new(),
        });
    }
    // A spool that cannot be written fails the run only if a row is refused.
    let mut spool = Spool::new(spool_dir);
    tx.batch_execute("SAVEPOINT flatstore_copy")?;
    let mut writer = tx.copy_in(copy)?;
    while !buffer.is_empty() {
        if let Ok(kept) = &mut spool
            && let Err(e) = kept.append(&buffer)
        {
            spool = Err(e);
        }
        for part in buffer.chunks(PIECE) {
            writer.write_all(part).map_err(write_failed)?;
        }
        // The pairing thread may have stopped already.
        let _ = empty.send(buffer);
        buffer = next()?;
    }
    let first = writer.finish();
    let (copied, aside) = match first {
        Ok(copied) => (copied, Vec::new()),
        Err(e) => match spool {
            Ok(spool) => set_aside(&mut tx, copy, &spool, e)?,
            Err(lost) if rejects::refused(&e).is_some() => return Err(StreamError::Spool(lost)),
            Err(_) => return Err(e.into()),
        },
    };
    tx.batch_execute("RELEASE SAVEPOINT flatstore_copy")?;
    Ok(Streamed { tx, copied, aside })
}

/// A failed COPY write: the database error inside it when there is one.
fn write_failed(e: io::Error) -> StreamError {
    match e
        .into_inner()
        .map(|inner| inner.downcast::<postgres::Error>())
    {
        Some(Ok(e)) => StreamError::Db(*e),
        Some(Err(inner)) => StreamError::Send(io::Error::other(inner)),
        None => StreamError::Send(io::Error::other("writing the COPY data failed")),
    }
}

/// After the COPY of every row of `spool` failed with `error`: each row the server refuses
/// set aside, the others copied (see the module documentation). Returns the rows copied and
/// those set aside.
fn set_aside(
    tx: &mut Transaction<'_>,
    copy: &str,
    spool: &Spool,
    mut error: postgres::Error,
) -> Result<(u64, Vec<Aside>), StreamError> {
    let index = spool.index()?;
    let total = index.rows;
    let mut aside: Vec<Aside> = Vec::new();
    // The first row since the savepoint, and the first row of the COPY that failed.
    let (mut start, mut began) = (1, 1);
    loop {
        let Some((copy_row, reason)) = rejects::refused(&error) else {
            return Err(failed_at(error, spool, &index, began, &aside));
        };
        let row = spool_row(began, copy_row, &aside);
        if row > total || aside.iter().any(|a| a.row == row) {
            return Err(error.into());
        }
        let bytes = spool.row(&index, row)?;
        let refused = Aside { row, bytes, reason };
        if aside.len() == MAX_ASIDE {
            return Err(StreamError::TooMany(refused));
        }
        let at = aside.partition_point(|a| a.row < row);
        aside.insert(at, refused);
        tx.batch_execute("ROLLBACK TO SAVEPOINT flatstore_copy")?;
        // The rows before it, which the server took: one COPY.
        if let Err(e) = copy_rows(tx, copy, spool, &index, start..row, &aside) {
            (began, error) = (start, refusal(e)?);
            continue;
        }
        tx.batch_execute("RELEASE SAVEPOINT flatstore_copy; SAVEPOINT flatstore_copy")?;
        start = row + 1;
        // The rows after it, a segment at a time.
        let mut failed = None;
        for segment in index.segments_from(start) {
            if let Err(e) = copy_rows(tx, copy, spool, &index, segment.clone(), &aside) {
                failed = Some((segment.start, refusal(e)?));
                break;
            }
        }
        match failed {
            Some((segment_start, e)) => (began, error) = (segment_start, e),
            None => return Ok((total - aside.len() as u64, aside)),
        }
    }
}

/// The error `error` that is no refusal, of a COPY of the rows from `began` on without those
/// of `aside`: with the row it arose at, when it names one.
fn failed_at(
    error: postgres::Error,
    spool: &Spool,
    index: &SpoolIndex,
    began: u64,
    aside: &[Aside],
) -> StreamError {
    let Some(copy_row) = rejects::copy_row(&error) else {
        return error.into();
    };
    let row = spool_row(began, copy_row, aside);
    match spool.row(index, row) {
        Ok(bytes) if row <= index.rows => {
            let reason = error
                .as_db_error()
                .map_or_else(|| error.to_string(), |db| db.message().to_owned());
            StreamError::AtRow(Aside { row, bytes, reason })
        }
        _ => error.into(),
    }
}

/// The database error of a failed [`copy_rows`], for [`set_aside`] to look at.
fn refusal(e: StreamError) -> Result<postgres::Error, StreamError> {
    match e {
        StreamError::Db(e) => Ok(e),
        other => Err(other),
    }
}

/// The run's row (from 1) that was row `copy_row` (from 1) of a COPY of the rows from
/// `began` on without those of `aside` (in order).
fn spool_row(began: u64, copy_row: u64, aside: &[Aside]) -> u64 {
    let mut row = began + copy_row - 1;
    for skipped in aside.iter().filter(|a| a.row >= began) {
        if skipped.row <= row {
            row += 1;
        }
    }
    row
}

/// One COPY of the rows `rows` of `spool` but those of `aside`.
fn copy_rows(
    tx: &mut Transaction<'_>,
    copy: &str,
    spool: &Spool,
    index: &SpoolIndex,
    rows: std::ops::Range<u64>,
    aside: &[Aside],
) -> Result<(), StreamError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut writer = tx.copy_in(copy)?;
    let mut failed = None;
    spool.for_rows(index, rows, |row, bytes| {
        if aside.binary_search_by_key(&row, |a| a.row).is_err()
            && let Err(e) = writer.write_all(bytes)
        {
            failed = Some(e);
            return false;
        }
        true
    })?;
    if let Some(e) = failed {
        return Err(write_failed(e));
    }
    writer.finish()?;
    Ok(())
}

/// The rows sent, in an unlinked file: in the page cache, gone with the process.
struct Spool {
    file: File,
    len: u64,
}

/// Where the rows of a spool are: every `SEGMENT` or so, the offset and number of a row.
struct SpoolIndex {
    /// (offset, row from 1) of the first row of each segment, in order.
    starts: Vec<(u64, u64)>,
    /// Rows in all.
    rows: u64,
}

impl SpoolIndex {
    /// The rows from `first` to the end, as ranges of about a segment each.
    fn segments_from(&self, first: u64) -> impl Iterator<Item = std::ops::Range<u64>> + '_ {
        let ends = self
            .starts
            .iter()
            .skip(1)
            .map(|&(_, row)| row)
            .chain(std::iter::once(self.rows + 1));
        self.starts
            .iter()
            .zip(ends)
            .map(move |(&(_, start), end)| start.max(first)..end)
            .filter(|range| !range.is_empty())
    }
}

impl Spool {
    /// A new spool in `dir`, its name removed at once.
    fn new(dir: &Path) -> io::Result<Spool> {
        let mut attempt = 0u32;
        loop {
            let path = dir.join(format!(
                ".flatstore-copy-{}-{attempt}.spool",
                std::process::id()
            ));
            match File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    std::fs::remove_file(&path)?;
                    return Ok(Spool { file, len: 0 });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, self.len)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Reads the spool from `offset` in pieces of `SEGMENT` bytes cut after a whole row,
    /// handing each with its offset to `each` while it says to go on.
    fn pieces(&self, mut offset: u64, mut each: impl FnMut(u64, &[u8]) -> bool) -> io::Result<()> {
        let mut buffer = vec![0; SEGMENT];
        let mut kept = 0;
        while offset + (kept as u64) < self.len {
            let want = (buffer.len() - kept).min((self.len - offset) as usize - kept);
            self.file
                .read_exact_at(&mut buffer[kept..kept + want], offset + kept as u64)?;
            let filled = kept + want;
            let whole = match memchr::memrchr(b'\n', &buffer[..filled]) {
                Some(last) => last + 1,
                // A row longer than the buffer: read on with a larger one.
                None if filled == buffer.len() => {
                    kept = filled;
                    buffer.resize(buffer.len() * 2, 0);
                    continue;
                }
                None => filled,
            };
            if !each(offset, &buffer[..whole]) {
                return Ok(());
            }
            buffer.copy_within(whole..filled, 0);
            kept = filled - whole;
            offset += whole as u64;
        }
        Ok(())
    }

    /// Where its rows are.
    fn index(&self) -> io::Result<SpoolIndex> {
        let mut index = SpoolIndex {
            starts: Vec::new(),
            rows: 0,
        };
        self.pieces(0, |offset, piece| {
            index.starts.push((offset, index.rows + 1));
            index.rows += memchr::memchr_iter(b'\n', piece).count() as u64;
            true
        })?;
        Ok(index)
    }

    /// Hands each row of `rows` (with its `\n`) and its number to `each` while it says to go on.
    fn for_rows(
        &self,
        index: &SpoolIndex,
        rows: std::ops::Range<u64>,
        mut each: impl FnMut(u64, &[u8]) -> bool,
    ) -> io::Result<()> {
        let at = index
            .starts
            .partition_point(|&(_, first)| first <= rows.start)
            .saturating_sub(1);
        let Some(&(offset, mut row)) = index.starts.get(at) else {
            return Ok(());
        };
        self.pieces(offset, |_, piece| {
            for bytes in piece.split_inclusive(|&b| b == b'\n') {
                if row >= rows.end {
                    return false;
                }
                if row >= rows.start && !each(row, bytes) {
                    return false;
                }
                row += 1;
            }
            row < rows.end
        })
    }

    /// Row `row`, without its `\n`.
    fn row(&self, index: &SpoolIndex, row: u64) -> io::Result<Vec<u8>> {
        let mut found = Vec::new();
        self.for_rows(index, row..row + 1, |_, bytes| {
            found = bytes.strip_suffix(b"\n").unwrap_or(bytes).to_vec();
            false
        })?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aside(rows: &[u64]) -> Vec<Aside> {
        rows.iter()
            .map(|&row| Aside {
                row,
                bytes: Vec::new(),
                reason: String::new(),
            })
            .collect()
    }

    #[test]
    fn copy_rows_are_the_runs_rows_past_those_set_aside() {
        assert_eq!(spool_row(1, 1, &[]), 1);
        assert_eq!(spool_row(1, 3, &aside(&[2])), 4);
        assert_eq!(spool_row(1, 1, &aside(&[2])), 1);
        // Rows set aside before the COPY began do not count.
        assert_eq!(spool_row(5, 1, &aside(&[2])), 5);
        assert_eq!(spool_row(5, 2, &aside(&[2, 6, 7])), 8);
        assert_eq!(spool_row(3, 1, &aside(&[3])), 4);
    }

    #[test]
    fn a_spool_gives_its_rows_back_by_number_across_pieces() {
        let dir = std::env::temp_dir();
        let mut spool = Spool::new(&dir).expect("spool");
        let mut expected = Vec::new();
        let mut buffer = Vec::new();
        for i in 1..=200_000u64 {
            let row = format!("{i}\t{}\n", "x".repeat((i % 37) as usize));
            buffer.extend_from_slice(row.as_bytes());
            expected.push(row);
            if buffer.len() > 100_000 {
                spool.append(&buffer).expect("append");
                buffer.clear();
            }
        }
        // One row longer than a piece.
        let long = format!("200001\t{}\n", "y".repeat(3 * SEGMENT));
        buffer.extend_from_slice(long.as_bytes());
        expected.push(long);
        spool.append(&buffer).expect("append");
        let index = spool.index().expect("index");
        assert_eq!(index.rows, 200_001);
        assert!(index.starts.len() > 3, "{} pieces", index.starts.len());
        for row in [1, 2, 37, 99_999, 100_000, 200_000, 200_001] {
            let got = spool.row(&index, row).expect("row");
            assert_eq!(
                got,
                expected[row as usize - 1].trim_end_matches('\n').as_bytes()
            );
        }
        let mut seen = Vec::new();
        spool
            .for_rows(&index, 150_000..150_010, |row, bytes| {
                seen.push((row, bytes.to_vec()));
                true
            })
            .expect("rows");
        assert_eq!(seen.len(), 10);
        assert_eq!(seen[0].1, expected[149_999].as_bytes());
        let segments: Vec<_> = index.segments_from(150_000).collect();
        assert_eq!(segments.first().map(|r| r.start), Some(150_000));
        assert_eq!(segments.last().map(|r| r.end), Some(200_002));
        assert!(segments.windows(2).all(|w| w[0].end == w[1].start));
    }
}
