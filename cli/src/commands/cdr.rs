//! `flatstore cdr`: a table's records as billable call detail records (CDRs).

use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;

use flatstore::cdr::layout::LayoutError;
use flatstore::cdr::merge::MergeOrder;
use flatstore::cdr::pairing::{Emit, FailedInvites, PairingOptions, PreparedKeys, Problem};
use flatstore::cdr::state::{self, OutputMark};
use flatstore::cdr::{CallRecord, Cdr, CdrView, IsoWriter, Layout, Pairer, Timestamp};
use flatstore::columns;
use flatstore::line::fields::{Fields, Lines, split_fields};

use crate::commit::{self, Journal};
use crate::consumed::{self, ConsumedFiles};
use crate::content::{self, Content};
use crate::csv::csv_field;
use crate::db::cdrstate::{self, CREATE_STATE};
use crate::db::connect::{Database, reason};
use crate::db::copy::escape;
use crate::db::ledger;
use crate::db::sql::{self, TableName, ident};
use crate::exit::{FileError, Status, usage};
use crate::inputs;
use crate::json;
use crate::listing::{self, ListedFile, STDIN, Selection};
use crate::progress::Progress;
use crate::window::Window;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// RFC 4180 with a header line: CRLF line ends; a field holding `,`, `"`, CR or LF is
    /// quoted, `"` doubled.
    Csv,
    /// One JSON object per CDR; `duration` a number, an empty start, end or duration null,
    /// values that are not UTF-8 as {"base64":"…"}.
    Jsonl,
}

/// TABLE's records as call detail records: each answered call's INVITE and BYE paired on the
/// Call-ID and the unordered pair of tags, each record of the missed-calls table a failed
/// call.
///
/// Columns: callid, from_tag, to_tag, start, end, duration, sip_code, sip_reason, status
/// (answered, failed, unterminated, unmatched_bye), then the table's extra columns (the
/// INVITE's values). Records are read from all files of both tables merged by their time.
/// Without --state every call still open at the end is emitted (unterminated or
/// unmatched_bye). With --state and --output, a run reads only what no committed run read
/// (files are known by content: renamed or gzipped since, they are not read again), carries
/// open calls to the next run, and appends its CDRs to --output; a run killed at any moment
/// and run again leaves every CDR in the output exactly once.
///
/// With --db the CDRs go into a PostgreSQL table instead, each exactly once: a run is one
/// transaction that reads the state of the last committed run from the table
/// flatstore_cdr_state (in the same database), copies its CDRs and writes the new state, so a
/// run killed at any moment commits nothing, and two runs at once wait for each other.
///
/// With files given (FILE…, - for standard input) instead of a directory, those named as the
/// --missed table's logs (missed_calls_5.log.1) are its records, all others TABLE's; column
/// names come from --columns, else the TABLE.columns beside the first file named as a
/// table's log. --state works with files (they are known by content), not with -.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// DIR, or DIR TABLE: the table of answered calls (default acc, Kamailio's) in the log
    /// directory, with the --missed table. Or FILE…: these files, - for standard input. A first
    /// argument that is a directory means DIR, or DIR TABLE.
    #[arg(value_name = "DIR [TABLE] | FILE", required = true)]
    inputs: Vec<PathBuf>,
    /// The missed-calls table; used when it has files.
    #[arg(long, value_name = "TABLE", value_parser = listing::table_name,
          default_value = "missed_calls")]
    missed: String,
    /// Names of TABLE's columns, in order (the roles method, from_tag, to_tag, callid,
    /// sip_code, sip_reason, time by name; the rest are extras). Default: DIR/TABLE.columns,
    /// else Kamailio's default acc layout (those seven, then extra8, extra9, ...).
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    columns: Vec<String>,
    /// The output format.
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// Write the CDRs to FILE (with --state: append to it) instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Incremental runs: what earlier runs read and the calls still open (needs --output; not
    /// with - nor with --since/--until).
    #[arg(long, value_name = "FILE", requires = "output")]
    state: Option<PathBuf>,
    /// Load the CDRs into PostgreSQL, incrementally and exactly once, the state kept in the
    /// database: `postgresql://USER@HOST[:PORT]/DBNAME`, as for `load`.
    #[arg(long, value_name = "URL", conflicts_with_all = ["output", "state", "format"])]
    db: Option<String>,
    /// The SQL table of the CDRs: NAME or SCHEMA.NAME, taken exactly as written (quoted).
    #[arg(long, value_name = "SQLTABLE", requires = "db", default_value = "cdr")]
    into: String,
    /// Which proxy the files come from, written in every CDR's `source` column; each source
    /// has its own state. Default: this host's name.
    #[arg(long, value_name = "NAME", requires = "db")]
    source: Option<String>,
    /// Create the SQL table when it does not exist: source, callid, from_tag, to_tag text,
    /// start, end timestamptz, duration numeric, sip_code, sip_reason, status and the extra
    /// columns text.
    #[arg(long, requires = "db")]
    create: bool,
    /// Seconds after which a call still open (an INVITE with no BYE, a BYE with no INVITE) is
    /// emitted as unterminated or unmatched_bye, counted back from the newest record time.
    /// Ended calls are remembered (to report a second BYE as a duplicate) for 300 seconds, or
    /// this if shorter; a BYE later than that is a lone BYE (unmatched_bye).
    #[arg(long, value_name = "SECONDS", default_value_t = flatstore::cdr::pairing::DEFAULT_MAX_AGE_SECONDS)]
    max_call_age: u64,
    #[command(flatten)]
    selection: Selection,
}

/// Read buffers per open file: every file of a run is open at once for the merge.
const FILE_BUFFER: usize = 64 * 1024;

/// Exit status 0 clean, 1 problems in the records (named on standard error; the rest is
/// processed), 2 usage or I/O errors (nothing is committed then).
pub fn run(args: &Args) -> ExitCode {
    let mut status = Status::default();
    match account(args, &mut status) {
        Ok(()) => status.exit_code(),
        Err(message) => {
            status.io_error(message);
            status.exit_code()
        }
    }
}

/// The default table of answered calls, Kamailio's.
const DEFAULT_TABLE: &str = "acc";

/// The files of `table` that the selection reads; none when the table has no file at all.
fn table_files(
    dir: &Path,
    table: &str,
    selection: &Selection,
    status: &mut Status,
) -> Result<Vec<ListedFile>, String> {
    let listing = listing::discover(dir, Some(table.as_bytes())).map_err(|e| e.to_string())?;
    for error in &listing.errors {
        status.file_error(error);
    }
    Ok(listing
        .files
        .into_iter()
        .filter(|f| selection.wants(f))
        .collect())
}

/// A file of the run, open. Each is opened once (standard input cannot be opened twice):
/// what is looked at before its records are read is put back ([`Content::unread`]).
struct Open<'a> {
    file: &'a ListedFile,
    content: Content<'a>,
}

/// Open `files`; those that cannot be opened are reported to `status` and left out.
fn open_all<'a>(
    files: &'a [ListedFile],
    progress: &'a Progress,
    status: &mut Status,
) -> Vec<Open<'a>> {
    files
        .iter()
        .filter_map(
            |file| match content::open_buffered(file, progress, FILE_BUFFER) {
                Ok(content) => Some(Open { file, content }),
                Err(e) => {
                    status.file_error(&e);
                    None
                }
            },
        )
        .collect()
}

/// A table's layout: from `names` when given, else its sidecar (when there is one), else
/// Kamailio's default for the width of its first record (7 columns when it has none).
fn layout(
    sidecar: Option<&Path>,
    table: &str,
    names: &[String],
    files: &mut [Open<'_>],
) -> Result<Layout, String> {
    let problem =
        |e: LayoutError, whose: &str| format!("the columns of table {table:?} ({whose}): {e}");
    if !names.is_empty() {
        if let Err(what) = columns::check_names(names) {
            usage(format!("--columns: {what}"));
        }
        return Layout::from_names(names).map_err(|e| problem(e, "--columns"));
    }
    if let Some(sidecar) = sidecar
        && let Some(names) = columns::read(sidecar).map_err(|e| e.to_string())?
    {
        return Layout::from_names(&names).map_err(|e| problem(e, &sidecar.display().to_string()));
    }
    let mut width = 7;
    let mut line = Vec::new();
    for open in files {
        let whole = open
            .content
            .next_line(&mut line)
            .map_err(|e| e.to_string())?;
        let Some(whole) = whole else { continue };
        let mut consumed = std::mem::take(&mut line);
        if whole {
            width = split_fields(&consumed).count();
            consumed.push(b'\n');
        }
        open.content.unread(consumed);
        if whole {
            break;
        }
    }
    Layout::kamailio_default(width).map_err(|e| problem(e, "Kamailio's default layout"))
}

/// One file being read for the merge, from where earlier runs stopped: its current record,
/// decoded into buffers reused from line to line, with its time read once.
struct Source<'a> {
    file: &'a ListedFile,
    content: Content<'a>,
    layout: &'a Layout,
    line: Vec<u8>,
    fields: Fields,
    /// The current record's time (once [`Source::advance`] found one).
    time: Timestamp,
    /// The current line's number in the file.
    number: u64,
    /// The file's first bytes, which name it in the ledger.
    prefix: Vec<u8>,
    /// Where the last whole line read ends.
    end: u64,
    /// Only records whose time is in it are accounted (--since/--until).
    window: Window,
}

/// A complaint met while reading a file, kept to be printed on standard error in its turn
/// (see [`Batch`]).
enum Note {
    /// A problem in the records (exit status at least 1).
    Problem(String),
    /// The file could not be read on.
    File(FileError),
}

impl Note {
    fn report(self, status: &mut Status) {
        match self {
            Note::Problem(message) => status.problem(message),
            Note::File(error) => status.file_error(&error),
        }
    }
}

impl Source<'_> {
    /// Reads on to the next line that is a call record in the window (noting in `notes` those
    /// that are not call records); false at the end of the file, a torn last line or a read
    /// error (noted).
    fn advance(&mut self, notes: &mut Vec<Note>) -> bool {
        loop {
            match self.content.next_line(&mut self.line) {
                Ok(Some(true)) => {}
                Ok(Some(false)) => {
                    notes.push(Note::Problem(format!(
                        "{}: the last line is torn (no newline at its end): not read",
                        self.file.path.display()
                    )));
                    return false;
                }
                Ok(None) => return false,
                Err(e) => {
                    notes.push(Note::File(e));
                    return false;
                }
            }
            self.number += 1;
            self.end = self.content.position();
            self.fields.decode_owned(&mut self.line);
            match self.layout.fields_time(&self.fields) {
                Ok(time) if self.window.is_set() && !self.window.contains(&time) => {}
                Ok(time) => {
                    self.time = time;
                    return true;
                }
                Err(e) => notes.push(Note::Problem(format!(
                    "{} line {}: {e}; not accounted",
                    self.file.path.display(),
                    self.number
                ))),
            }
        }
    }

    /// [`advance`](Self::advance), reporting to `status` at once.
    fn advance_reported(&mut self, notes: &mut Vec<Note>, status: &mut Status) -> bool {
        let more = self.advance(notes);
        for note in notes.drain(..) {
            note.report(status);
        }
        more
    }

    /// The current record (after [`Source::advance`] returned true).
    fn record(&self) -> Option<CallRecord<'_>> {
        self.layout.view_fields_at(&self.fields, self.time).ok()
    }
}

/// How many records the reading thread hands to the pairing thread at once.
const BATCH: usize = 1024;
/// How many records' memory the pairer reads at once before pairing them ([`Pairer::warm`]).
const WARMED: usize = 32;
/// How many batches are on their way to the pairing thread at most: enough for either thread
/// to go on through a burst of work of the other (a sweep of the ended calls, a file's first
/// read); 8 batches of 1024 records hold about 2 MB whatever the input.
const BATCHES_IN_FLIGHT: usize = 8;

/// Records merged by time, decoded, on their way from the reading thread to the pairing thread,
/// with the complaints met while reading them: the pairing thread prints each complaint before
/// the record it is noted at, so standard error reads as if one thread did both. The records
/// lie one after the other in a few buffers, reused from batch to batch.
#[derive(Default)]
struct Batch {
    /// The records' fields.
    lines: Lines,
    /// Each record's time.
    times: Vec<Timestamp>,
    /// Each record's call key and side, prepared for the pairer.
    prepared: PreparedKeys,
    /// Complaints, each with the index of the record it is printed before (the number of
    /// records for after the last).
    notes: Vec<(usize, Note)>,
}

impl Batch {
    /// Notes `notes` (emptied) before record `at`.
    fn note(&mut self, at: usize, notes: &mut Vec<Note>) {
        self.notes.extend(notes.drain(..).map(|note| (at, note)));
    }

    fn clear(&mut self) {
        self.lines.clear();
        self.times.clear();
        self.prepared.clear();
        self.notes.clear();
    }
}

/// Reads `sources` merged by time into batches sent to `full` (taking empty ones back from
/// `empty`), until they are read or the pairing thread stops taking them.
fn read_merged(
    sources: &mut [Source<'_>],
    full: &mpsc::SyncSender<Batch>,
    empty: &mpsc::Receiver<Batch>,
) {
    let mut notes = Vec::new();
    let mut batch = Batch::default();
    let mut order = MergeOrder::with_capacity(sources.len());
    for (index, source) in sources.iter_mut().enumerate() {
        if source.advance(&mut notes) {
            order.push(source.time.instant(), index);
        }
    }
    batch.note(0, &mut notes);
    while let Some(index) = order.first() {
        // The source reads on to its next record before this one is paired, as the merge
        // always did (so problems are reported in the same order).
        let source = &mut sources[index];
        let at = batch.times.len();
        batch.lines.push(&source.fields);
        batch.prepared.push(source.record().as_ref());
        batch.times.push(source.time);
        if source.advance(&mut notes) {
            order.replace_first(source.time.instant());
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
fn pair_merged(
    layout: &Layout,
    pairer: &mut Pairer,
    writer: &mut Writer<'_>,
    full: &mpsc::Receiver<Batch>,
    empty: &mpsc::Sender<Batch>,
) -> Result<(), String> {
    for mut batch in full {
        let mut notes = batch.notes.drain(..).peekable();
        for (group, times) in batch.times.chunks(WARMED).enumerate() {
            let first = group * WARMED;
            pairer.warm(&batch.prepared, first..first + times.len());
            for (at, time) in (first..).zip(times) {
                while let Some((_, note)) = notes.next_if(|(before, _)| *before <= at) {
                    note.report(&mut writer.status);
                }
                if let Some(Ok(record)) = layout.view_line_at(&batch.lines, at, *time) {
                    pairer.push_prepared_to(&record, &batch.prepared, at, writer);
                }
                writer.check()?;
            }
        }
        for (_, note) in notes {
            note.report(&mut writer.status);
        }
        batch.clear();
        // The reading thread may have stopped already.
        let _ = empty.send(batch);
    }
    Ok(())
}

/// What earlier runs read: this run's state's files, and with --db those of the runs under
/// other sources into the same SQL table (with their source).
#[derive(Default)]
struct Known {
    own: ConsumedFiles,
    foreign: Vec<(String, ConsumedFiles)>,
}

/// An open file's records for the run: skip what the ledger says earlier runs read; a file
/// read before under another source (--db) is not read again.
fn open_source<'a>(
    open: Open<'a>,
    layout: &'a Layout,
    known: &Known,
    window: Window,
    problems: &mut Status,
) -> Option<Source<'a>> {
    let Open { file, mut content } = open;
    let ledger = &known.own;
    let opened = consumed::prefix(&mut content).and_then(|prefix| {
        content.unread(prefix.clone());
        let skip = ledger.already_read(&prefix);
        if skip == 0
            && let Some((source, _)) = known
                .foreign
                .iter()
                .find(|(_, other)| other.already_read(&prefix) > 0)
        {
            eprintln!(
                "flatstore: {}: read before into the same SQL table under --source {source}: \
                 not read again (give each proxy's files one --source, whichever host \
                 loads them)",
                file.path.display()
            );
            return Ok(None);
        }
        let mut line = Vec::new();
        let mut number = 0;
        while content.position() < skip && content.next_line(&mut line)? == Some(true) {
            number += 1;
        }
        Ok(Some((prefix, content, number)))
    });
    match opened {
        Ok(None) => None,
        Ok(Some((prefix, content, number))) => Some(Source {
            file,
            end: content.position(),
            content,
            layout,
            line: Vec::new(),
            fields: Fields::new(),
            time: Timestamp::EPOCH,
            number,
            prefix,
            window,
        }),
        Err(e) => {
            problems.file_error(&e);
            None
        }
    }
}

/// How many bytes of rows are gathered before they are written (or appended to the journal).
const OUTPUT_BUFFER: usize = 1024 * 1024;

/// Where the CDRs go.
enum Target<'t> {
    /// Standard output, or a file replaced at the end (no state).
    Plain(File, Option<PathBuf>),
    /// The journal of incremental runs.
    Journal(Journal),
    /// With --db: the run's transaction, a `COPY … FROM STDIN` (`statement`) per buffer full
    /// of rows; `copied` rows so far.
    Copy {
        tx: postgres::Transaction<'t>,
        statement: String,
        copied: u64,
    },
}

/// The CDRs' text on its way to the target.
struct Sink<'t> {
    target: Target<'t>,
    buffer: Vec<u8>,
}

impl<'t> Sink<'t> {
    fn new(target: Target<'t>) -> Sink<'t> {
        Sink {
            target,
            buffer: Vec::with_capacity(OUTPUT_BUFFER + 64 * 1024),
        }
    }

    /// Writes the rows gathered so far, if there are enough of them.
    fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buffer.len() >= OUTPUT_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the rows gathered so far.
    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        match &mut self.target {
            Target::Plain(file, _) => file.write_all(&self.buffer)?,
            Target::Journal(journal) => journal.append(&self.buffer)?,
            Target::Copy {
                tx,
                statement,
                copied,
            } => {
                let mut copy = tx.copy_in(statement.as_str()).map_err(io::Error::other)?;
                copy.write_all(&self.buffer)?;
                *copied += copy.finish().map_err(io::Error::other)?;
            }
        }
        self.buffer.clear();
        Ok(())
    }
}

/// The text of CDRs in the chosen format.
struct Rows {
    format: Format,
    names: Vec<String>,
    /// For JSON Lines: each column's `"name":`, with the `,` before it from the second on.
    keys: Vec<Vec<u8>>,
    iso: IsoWriter,
    /// With --db: rows of `COPY … FROM STDIN`'s text format, led by this (the `source` value,
    /// escaped, and a tab), instead of `format`.
    copy: Option<Vec<u8>>,
}

impl Rows {
    fn new(format: Format, layout: &Layout) -> Rows {
        let names: Vec<String> = Cdr::header(layout)
            .into_iter()
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect();
        let keys = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut key = Vec::new();
                if i > 0 {
                    key.push(b',');
                }
                json::write_str(&mut key, name);
                key.push(b':');
                key
            })
            .collect();
        Rows {
            format,
            names,
            keys,
            iso: IsoWriter::new(),
            copy: None,
        }
    }

    /// Rows for `COPY … FROM STDIN` (text format), `source` first; an empty value is NULL.
    fn copy(layout: &Layout, source: &str) -> Rows {
        let mut rows = Rows::new(Format::Csv, layout);
        let mut lead = Vec::new();
        escape(source.as_bytes(), &mut lead);
        lead.push(b'\t');
        rows.copy = Some(lead);
        rows
    }

    /// Appends the COPY row of `cdr` to `out`.
    fn write_copy(&mut self, cdr: &CdrView<'_>, out: &mut Vec<u8>) {
        fn value(out: &mut Vec<u8>, value: &[u8]) {
            out.push(b'\t');
            escape_or_null(out, value);
        }
        out.extend_from_slice(self.copy.as_deref().unwrap_or_default());
        escape_or_null(out, cdr.callid);
        for v in [cdr.from_tag, cdr.to_tag] {
            value(out, v);
        }
        for time in [cdr.start, cdr.end] {
            out.push(b'\t');
            match time {
                Some(time) => self.iso.write(&time, out),
                None => out.extend_from_slice(b"\\N"),
            }
        }
        out.push(b'\t');
        match cdr.duration {
            Some(duration) => duration.write_seconds(out),
            None => out.extend_from_slice(b"\\N"),
        }
        for v in [cdr.sip_code, cdr.sip_reason, cdr.status.as_str().as_bytes()] {
            value(out, v);
        }
        // As many extras as the table has columns: a call carried from a run with more extra
        // columns loses the rest, one with fewer gets NULLs.
        let mut extras = cdr.extras.clone();
        for _ in 9..self.names.len() {
            value(out, extras.next().unwrap_or_default());
        }
        out.push(b'\n');
    }

    fn header(&self) -> Vec<u8> {
        let mut header = Vec::new();
        if self.format == Format::Csv {
            for (i, name) in self.names.iter().enumerate() {
                if i > 0 {
                    header.push(b',');
                }
                csv_field(&mut header, name.as_bytes());
            }
            header.extend_from_slice(b"\r\n");
        }
        header
    }

    /// Appends the row of `cdr` to `out`. Times, durations and statuses are ASCII without a
    /// `,`, `"` or control character, so they are written as they are, unquoted in CSV and
    /// unescaped in JSON.
    fn write(&mut self, cdr: &CdrView<'_>, out: &mut Vec<u8>) {
        if self.copy.is_some() {
            return self.write_copy(cdr, out);
        }
        match self.format {
            Format::Csv => {
                for value in [cdr.callid, cdr.from_tag, cdr.to_tag] {
                    csv_field(out, value);
                    out.push(b',');
                }
                if let Some(start) = cdr.start {
                    self.iso.write(&start, out);
                }
                out.push(b',');
                if let Some(end) = cdr.end {
                    self.iso.write(&end, out);
                }
                out.push(b',');
                if let Some(duration) = cdr.duration {
                    duration.write_seconds(out);
                }
                out.push(b',');
                csv_field(out, cdr.sip_code);
                out.push(b',');
                csv_field(out, cdr.sip_reason);
                out.push(b',');
                out.extend_from_slice(cdr.status.as_str().as_bytes());
                for extra in cdr.extras.clone() {
                    out.push(b',');
                    csv_field(out, extra);
                }
                out.extend_from_slice(b"\r\n");
            }
            Format::Jsonl => {
                let mut keys = self.keys.iter();
                let mut key = |out: &mut Vec<u8>| -> bool {
                    keys.next().map(|key| out.extend_from_slice(key)).is_some()
                };
                let iso = &mut self.iso;
                let mut time = |out: &mut Vec<u8>, time: Option<Timestamp>| match time {
                    Some(time) => {
                        out.push(b'"');
                        iso.write(&time, out);
                        out.push(b'"');
                    }
                    None => out.extend_from_slice(b"null"),
                };
                out.push(b'{');
                for value in [cdr.callid, cdr.from_tag, cdr.to_tag] {
                    key(out);
                    json::write_bytes(out, value);
                }
                key(out);
                time(out, cdr.start);
                key(out);
                time(out, cdr.end);
                key(out);
                match cdr.duration {
                    Some(duration) => duration.write_seconds(out),
                    None => out.extend_from_slice(b"null"),
                }
                for value in [cdr.sip_code, cdr.sip_reason, cdr.status.as_str().as_bytes()] {
                    key(out);
                    json::write_bytes(out, value);
                }
                // Values without a column (a call carried from a run with more extra columns)
                // are left out.
                for extra in cdr.extras.clone() {
                    if !key(out) {
                        break;
                    }
                    json::write_bytes(out, extra);
                }
                out.extend_from_slice(b"}\n");
            }
        }
    }
}

/// `value` in COPY's text format, NULL when empty.
fn escape_or_null(out: &mut Vec<u8>, value: &[u8]) {
    if value.is_empty() {
        out.extend_from_slice(b"\\N");
    } else {
        escape(value, out);
    }
}

/// Takes what the pairer makes: rows to the sink, problems to standard error.
struct Writer<'t> {
    rows: Rows,
    sink: Sink<'t>,
    status: Status,
    /// The first write that failed; nothing more is written after it.
    failed: Option<io::Error>,
}

impl Writer<'_> {
    /// The first write error, if one happened.
    fn check(&mut self) -> Result<(), String> {
        match self.failed.take() {
            Some(e) => Err(e.to_string()),
            None => Ok(()),
        }
    }
}

impl Emit for Writer<'_> {
    fn cdr(&mut self, cdr: &CdrView<'_>) {
        if self.failed.is_some() {
            return;
        }
        self.rows.write(cdr, &mut self.sink.buffer);
        if let Err(e) = self.sink.flush_if_full() {
            self.failed = Some(e);
        }
    }

    fn problem(&mut self, problem: Problem) {
        self.status.problem(problem);
    }
}

/// A missed-calls record's CDR with its extras in the main table's order, matched by name
/// (empty where the missed-calls table has no such column).
fn failed_cdr(record: &flatstore::cdr::CallRecord<'_>, missed: &Layout, main: &Layout) -> Cdr {
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

/// What `application_name` the server shows for a run.
const APPLICATION: &str = "flatstore cdr";

/// The database of `--db`, connected.
fn connect(url: &str) -> Result<(postgres::Client, Database), String> {
    let database = Database::from_url(url, APPLICATION, |warning| {
        eprintln!("flatstore: WARNING: {warning}")
    })
    .map_err(|e| format!("--db: {e}"))?;
    let client = database
        .connect()
        .map_err(|e| format!("{}: {}", database.described(), reason(&e)))?;
    Ok((client, database))
}

/// Where a --db run's CDRs go.
struct Plan {
    /// The SQL table, schema.table: the state's key, and for reports.
    table: String,
    /// `COPY … FROM STDIN` of its columns.
    copy: String,
    source: String,
}

/// The SQL types of the CDR columns that `--create` makes (the extras are text).
fn cdr_type(column: usize) -> &'static str {
    match column {
        3 | 4 => "timestamptz",
        5 => "numeric",
        _ => "text",
    }
}

/// Create the state table (and with --create the CDR table) when missing, and find the CDR
/// table. Errors are the run's (exit status 2).
fn prepare(
    client: &mut postgres::Client,
    database: &Database,
    args: &Args,
    layout: &Layout,
) -> Result<Plan, String> {
    let target = TableName::parse(&args.into).unwrap_or_else(|e| usage(format!("--into: {e}")));
    let source = match &args.source {
        Some(source) if source.is_empty() => usage("--source: empty"),
        Some(source) => source.clone(),
        None => whoami::hostname()
            .map_err(|e| format!("this host's name (for --source): {e}; give --source"))?,
    };
    let names: Vec<String> = Cdr::header(layout)
        .into_iter()
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    if names.iter().any(|n| n == "source") {
        return Err(
            "an extra column is named \"source\": --db fills that column with --source".into(),
        );
    }
    let in_db = |e: postgres::Error| format!("{}: {}", database.described(), reason(&e));
    let mut statements = Vec::new();
    if sql::resolve(client, "flatstore_cdr_state")
        .map_err(in_db)?
        .is_none()
    {
        statements.push(CREATE_STATE.to_owned());
    }
    if args.create
        && sql::resolve(client, &target.sql())
            .map_err(in_db)?
            .is_none()
    {
        statements.push(sql::create_table(
            &target,
            names
                .iter()
                .enumerate()
                .map(|(i, name)| (name.as_str(), cdr_type(i))),
        ));
    }
    if !statements.is_empty() {
        let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
        ledger::create(client, &statements).map_err(in_db)?;
    }
    let Some(table) = sql::resolve(client, &target.sql()).map_err(in_db)? else {
        return Err(format!(
            "{}: no table {}: create it, or give --create",
            database.described(),
            target.sql()
        ));
    };
    let columns = std::iter::once("source".to_owned())
        .chain(names)
        .map(|n| ident(&n))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Plan {
        table,
        copy: format!("COPY {} ({columns}) FROM STDIN", target.sql()),
        source,
    })
}

/// The files of a run: answered calls' and missed calls', with each table's sidecar.
struct RunFiles {
    table: String,
    main: Vec<ListedFile>,
    main_sidecar: Option<PathBuf>,
    missed: Vec<ListedFile>,
    missed_sidecar: Option<PathBuf>,
    /// The missed-calls table has files: failed INVITEs are its records, not TABLE's.
    has_missed: bool,
}

fn run_files(args: &Args, status: &mut Status) -> Result<RunFiles, String> {
    if args.state.is_some() || args.db.is_some() {
        if args.inputs.iter().any(|p| p.as_os_str() == STDIN) {
            usage(
                "--state, --db: standard input (-) is not a file a later run can know again; \
                 give files or DIR",
            )
        }
        if args.selection.records.is_set() {
            usage(
                "--state, --db: a run reads every new record exactly once; --since/--until \
                 would leave records out of it for good",
            )
        }
    }
    match inputs::named(&args.inputs) {
        inputs::Named::Table { dir, table } => {
            let table = table.unwrap_or_else(|| DEFAULT_TABLE.into());
            let main = table_files(dir, &table, &args.selection, status)?;
            let has_missed = !listing::discover(dir, Some(args.missed.as_bytes()))
                .map_err(|e| e.to_string())?
                .files
                .is_empty();
            let missed = if has_missed && args.missed != table {
                table_files(dir, &args.missed, &args.selection, status)?
            } else {
                Vec::new()
            };
            Ok(RunFiles {
                main_sidecar: Some(flatstore::names::sidecar(dir, table.as_bytes())),
                missed_sidecar: Some(flatstore::names::sidecar(dir, args.missed.as_bytes())),
                table,
                main,
                missed,
                has_missed,
            })
        }
        inputs::Named::Files(paths) => {
            inputs::refuse_directory_options(&args.selection);
            let listing = inputs::given(paths);
            for error in &listing.errors {
                status.file_error(error);
            }
            // A mistyped name in an accounting run stops it: nothing is written or committed.
            if !listing.errors.is_empty() {
                return Err("a file given cannot be examined: nothing accounted".into());
            }
            let (missed, main): (Vec<ListedFile>, Vec<ListedFile>) = listing
                .files
                .into_iter()
                .partition(|f| f.table() == Some(args.missed.as_bytes()));
            let sidecar = |files: &[ListedFile]| {
                files
                    .iter()
                    .find_map(|f| f.table().map(|table| inputs::sidecar_beside(f, table)))
            };
            let table = main
                .iter()
                .find_map(ListedFile::table)
                .map_or(DEFAULT_TABLE.into(), |t| {
                    String::from_utf8_lossy(t).into_owned()
                });
            Ok(RunFiles {
                table,
                main_sidecar: sidecar(&main),
                missed_sidecar: sidecar(&missed),
                has_missed: !missed.is_empty(),
                main,
                missed,
            })
        }
    }
}

fn account(args: &Args, status: &mut Status) -> Result<(), String> {
    let files = run_files(args, status)?;
    let total = files.main.iter().chain(&files.missed).map(|f| f.size).sum();
    let progress = Progress::new("cdr", total, true);
    let mut main_open = open_all(&files.main, &progress, status);
    let mut missed_open = open_all(&files.missed, &progress, status);
    let main_layout = layout(
        files.main_sidecar.as_deref(),
        &files.table,
        &args.columns,
        &mut main_open,
    )?;
    let missed_layout = if files.missed.is_empty() {
        None
    } else {
        Some(layout(
            files.missed_sidecar.as_deref(),
            &args.missed,
            &[],
            &mut missed_open,
        )?)
    };
    let has_missed = files.has_missed;
    let window = args.selection.records;
    let mut options = PairingOptions::new(if has_missed {
        FailedInvites::Ignore
    } else {
        FailedInvites::MakeCdrs
    });
    options.max_age_seconds = args.max_call_age;

    // With --db: the run's transaction, under the lock of the SQL table; the state and the
    // files read as the last committed run left them.
    let (mut client, database) = match &args.db {
        Some(url) => {
            let (client, database) = connect(url)?;
            (Some(client), Some(database))
        }
        None => (None, None),
    };
    let plan = match (&mut client, &database) {
        (Some(client), Some(database)) => Some(prepare(client, database, args, &main_layout)?),
        _ => None,
    };
    let described = database.as_ref().map_or("", Database::described);
    let in_db = |e: postgres::Error| format!("{described}: {}", reason(&e));
    let mut tx = match (&mut client, &plan) {
        (Some(client), Some(plan)) => {
            let mut tx = client.transaction().map_err(in_db)?;
            cdrstate::lock(&mut tx, &plan.table).map_err(in_db)?;
            let saved = cdrstate::read(&mut tx, &plan.table, &plan.source).map_err(in_db)?;
            let others = cdrstate::others(&mut tx, &plan.table, &plan.source).map_err(in_db)?;
            Some((tx, saved, others))
        }
        _ => None,
    };
    let mut known = Known::default();
    let restored = match (&args.state, &mut tx) {
        (_, Some((_, saved, others))) => {
            for (source, bytes) in others.drain(..) {
                let restored = state::restore(&bytes, options)
                    .map_err(|e| format!("flatstore_cdr_state of --source {source}: {e}"))?;
                known
                    .foreign
                    .push((source, ConsumedFiles::new(restored.files)));
            }
            match saved.take() {
                Some(bytes) => Some(
                    state::restore(&bytes, options)
                        .map_err(|e| format!("flatstore_cdr_state: {e}"))?,
                ),
                None => None,
            }
        }
        (Some(path), None) => match std::fs::read(path) {
            Ok(bytes) => Some(
                state::restore(&bytes, options).map_err(|e| format!("{}: {e}", path.display()))?,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        },
        (None, None) => None,
    };
    let (mut pairer, mut ledger, mark) = match restored {
        Some(restored) => (
            restored.pairer,
            ConsumedFiles::new(restored.files),
            restored.output,
        ),
        None => (Pairer::new(options), ConsumedFiles::default(), None),
    };
    let mut tx = tx.map(|(tx, ..)| tx);

    let rows = match &plan {
        Some(plan) => Rows::copy(&main_layout, &plan.source),
        None => Rows::new(args.format, &main_layout),
    };
    let sink = match (&args.state, &args.output) {
        _ if tx.is_some() => {
            let plan = plan.as_ref().expect("a plan with --db");
            Sink::new(Target::Copy {
                tx: tx.take().expect("a transaction with --db"),
                statement: plan.copy.clone(),
                copied: 0,
            })
        }

        (Some(state_path), Some(path)) => {
            let (journal, empty) = Journal::open(path, mark).map_err(|e| e.to_string())?;
            let mut journal = journal;
            if empty {
                let mark = journal.sync().map_err(|e| e.to_string())?;
                // A new journal is committed before anything is appended to it, so that what
                // a killed run appends is always cut by the next.
                commit::replace(
                    state_path,
                    &state::save_marked(&pairer, ledger.files(), Some(mark)),
                )
                .map_err(|e| format!("{}: {e}", state_path.display()))?;
                journal.append(&rows.header()).map_err(|e| e.to_string())?;
            }
            Sink::new(Target::Journal(journal))
        }
        (_, Some(path)) => {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(".tmp");
            let temporary = path.with_file_name(name);
            let file =
                File::create(&temporary).map_err(|e| format!("{}: {e}", temporary.display()))?;
            let mut sink = Sink::new(Target::Plain(file, Some(path.clone())));
            sink.buffer.extend_from_slice(&rows.header());
            sink
        }
        (_, None) => {
            let fd = io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| e.to_string())?;
            let mut sink = Sink::new(Target::Plain(File::from(fd), None));
            sink.buffer.extend_from_slice(&rows.header());
            sink
        }
    };

    known.own = std::mem::take(&mut ledger);
    let mut writer = Writer {
        rows,
        sink,
        status: std::mem::take(status),
        failed: None,
    };
    // What each file was read up to, in the order opened, for the ledger.
    let mut ends: Vec<(Vec<u8>, u64)> = Vec::new();

    // Failed calls: each missed-calls record is one CDR.
    let mut notes = Vec::new();
    if let Some(missed_layout) = &missed_layout {
        let same_extras = missed_layout.extra_names().eq(main_layout.extra_names());
        for open in missed_open {
            let Some(mut source) =
                open_source(open, missed_layout, &known, window, &mut writer.status)
            else {
                continue;
            };
            while source.advance_reported(&mut notes, &mut writer.status) {
                if let Some(record) = source.record() {
                    if same_extras {
                        writer.cdr(&CdrView::failed(&record));
                    } else {
                        writer.cdr(&failed_cdr(&record, missed_layout, &main_layout).view());
                    }
                }
                writer.check()?;
            }
            ends.push((std::mem::take(&mut source.prefix), source.end));
        }
    }

    // Answered calls: every file of the table at once, merged by time and decoded on this
    // thread, paired and written on another.
    let mut sources: Vec<Source<'_>> = main_open
        .into_iter()
        .filter_map(|open| open_source(open, &main_layout, &known, window, &mut writer.status))
        .collect();
    let (full_sender, full) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
    let (empty, empty_receiver) = mpsc::channel();
    let paired = std::thread::scope(|scope| {
        let pairing = scope.spawn(|| {
            let paired = pair_merged(&main_layout, &mut pairer, &mut writer, &full, &empty);
            drop(full);
            paired
        });
        read_merged(&mut sources, &full_sender, &empty_receiver);
        drop(full_sender);
        pairing.join()
    });
    match paired {
        Ok(paired) => paired?,
        Err(panic) => std::panic::resume_unwind(panic),
    }
    progress.finish();
    ends.extend(
        sources
            .iter_mut()
            .map(|source| (std::mem::take(&mut source.prefix), source.end)),
    );
    drop(sources);
    let mut ledger = std::mem::take(&mut known.own);
    for (prefix, end) in ends {
        ledger.record(&prefix, end);
    }
    // Without a state, the run is the whole input: every call still open is emitted.
    let carried = if args.state.is_none() && args.db.is_none() {
        pairer.finish_to(&mut writer);
        writer.check()?;
        None
    } else {
        // The next run goes on from the state: the calls that ended here are emitted now.
        pairer.settle_to(&mut writer);
        writer.check()?;
        Some(pairer)
    };
    let Writer {
        sink: Sink { target, buffer },
        status: problems,
        ..
    } = writer;
    *status = problems;
    match (target, carried) {
        (Target::Plain(mut out, None), _) => {
            if let Err(e) = out.write_all(&buffer) {
                status.output_failed(&e);
            }
        }
        (Target::Plain(mut file, Some(path)), _) => {
            file.write_all(&buffer).map_err(|e| e.to_string())?;
            file.sync_all().map_err(|e| e.to_string())?;
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(".tmp");
            std::fs::rename(path.with_file_name(name), &path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        (Target::Journal(mut journal), Some(pairer)) => {
            let state_path = args
                .state
                .as_ref()
                .expect("a journal is kept only with a state");
            journal.append(&buffer).map_err(|e| e.to_string())?;
            let mark: OutputMark = journal
                .sync()
                .map_err(|e| format!("{}: {e}", journal.path().display()))?;
            commit::replace(
                state_path,
                &state::save_marked(&pairer, ledger.files(), Some(mark)),
            )
            .map_err(|e| format!("{}: {e}", state_path.display()))?;
        }
        (
            Target::Copy {
                mut tx,
                statement,
                mut copied,
            },
            Some(pairer),
        ) => {
            let Some(plan) = &plan else {
                unreachable!("a COPY only with --db")
            };
            if !buffer.is_empty() {
                let mut copy = tx.copy_in(statement.as_str()).map_err(in_db)?;
                copy.write_all(&buffer).map_err(|e| e.to_string())?;
                copied += copy.finish().map_err(in_db)?;
            }
            cdrstate::write(
                &mut tx,
                &plan.table,
                &plan.source,
                &state::save(&pairer, ledger.files()),
            )
            .map_err(in_db)?;
            tx.commit().map_err(in_db)?;
            if let Err(e) = writeln!(io::stdout(), "{copied} CDRs loaded into {}", plan.table) {
                status.output_failed(&e);
            }
        }
        (_, None) => unreachable!("a journal or a COPY only with a state"),
    }
    Ok(())
}
