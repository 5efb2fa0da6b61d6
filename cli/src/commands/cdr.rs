//! `flatstore cdr`: a table's records as billable call detail records (CDRs).

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flatstore::cdr::layout::LayoutError;
use flatstore::cdr::merge::merge_by_time;
use flatstore::cdr::pairing::{FailedInvites, Output, PairingOptions};
use flatstore::cdr::state::{self, OutputMark};
use flatstore::cdr::{Cdr, Layout, Pairer, Timestamp};
use flatstore::line::decode::{decode_field_lenient, split_fields};

use crate::commit::{self, Journal};
use crate::consumed::{self, Ledger};
use crate::content::{self, Content};
use crate::csv::csv_field;
use crate::exit::{Status, usage};
use crate::inputs::{self, Source};
use crate::json;
use crate::listing::{self, ListedFile, STDIN, Selection};
use crate::progress::Progress;
use crate::schema;
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
    /// Seconds after which a call still open (an INVITE with no BYE, a BYE with no INVITE) is
    /// emitted as unterminated or unmatched_bye, counted back from the newest record time.
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
        if let Err(what) = schema::check_names(names) {
            usage(format!("--columns: {what}"));
        }
        return Layout::from_names(names).map_err(|e| problem(e, "--columns"));
    }
    if let Some(sidecar) = sidecar
        && let Some(names) = schema::read(sidecar).map_err(|e| e.to_string())?
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

/// One file being read for the merge: its records with their times, from where earlier runs
/// stopped; what it read is kept for the ledger.
struct Records<'a> {
    file: &'a ListedFile,
    content: Content<'a>,
    layout: &'a Layout,
    line: Vec<u8>,
    number: u64,
    problems: &'a RefCell<Status>,
    /// Where the last whole line read ends.
    end: &'a RefCell<Vec<(Vec<u8>, u64)>>,
    index: usize,
    /// Only records whose time is in it are accounted.
    window: Window,
}

impl Iterator for Records<'_> {
    type Item = (Timestamp, Vec<Vec<u8>>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.content.next_line(&mut self.line) {
                Ok(Some(true)) => {}
                Ok(Some(false)) => {
                    self.problems.borrow_mut().problem(format_args!(
                        "{}: the last line is torn (no newline at its end): not read",
                        self.file.path.display()
                    ));
                    return None;
                }
                Ok(None) => return None,
                Err(e) => {
                    self.problems.borrow_mut().file_error(&e);
                    return None;
                }
            }
            self.number += 1;
            self.end.borrow_mut()[self.index].1 = self.content.position();
            let fields: Vec<Vec<u8>> = split_fields(&self.line)
                .map(|field| {
                    let mut value = Vec::with_capacity(field.len());
                    decode_field_lenient(field, &mut value);
                    value
                })
                .collect();
            match self.layout.view(&fields) {
                Ok(record) if !self.window.contains(&record.time()) => {}
                Ok(record) => return Some((record.time(), fields)),
                Err(e) => self.problems.borrow_mut().problem(format_args!(
                    "{} line {}: {e}; not accounted",
                    self.file.path.display(),
                    self.number
                )),
            }
        }
    }
}

/// The records of an open file for the run: skip what the ledger says earlier runs read.
fn open_records<'a>(
    open: Open<'a>,
    layout: &'a Layout,
    ledger: &Ledger,
    window: Window,
    problems: &'a RefCell<Status>,
    ends: &'a RefCell<Vec<(Vec<u8>, u64)>>,
) -> Option<Records<'a>> {
    let Open { file, mut content } = open;
    let opened = consumed::prefix(&mut content).and_then(|prefix| {
        content.unread(prefix.clone());
        let skip = ledger.already_read(&prefix);
        let mut line = Vec::new();
        let mut number = 0;
        while content.position() < skip && content.next_line(&mut line)? == Some(true) {
            number += 1;
        }
        Ok((prefix, content, number))
    });
    match opened {
        Ok((prefix, content, number)) => {
            let mut ends_now = ends.borrow_mut();
            let index = ends_now.len();
            ends_now.push((prefix, content.position()));
            Some(Records {
                file,
                content,
                layout,
                line: Vec::new(),
                number,
                problems,
                end: ends,
                index,
                window,
            })
        }
        Err(e) => {
            problems.borrow_mut().file_error(&e);
            None
        }
    }
}

/// Where the CDRs go.
enum Sink {
    /// Standard output, or a file replaced at the end (no state).
    Plain(BufWriter<File>, Option<PathBuf>),
    /// The journal of incremental runs, with its row buffer.
    Journal(Journal, Vec<u8>),
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(out, _) => out.write_all(bytes),
            Sink::Journal(journal, buffer) => {
                buffer.extend_from_slice(bytes);
                if buffer.len() >= 256 * 1024 {
                    journal.append(buffer)?;
                    buffer.clear();
                }
                Ok(())
            }
        }
    }
}

/// The text of CDRs in the chosen format.
struct Rows {
    format: Format,
    names: Vec<String>,
    row: Vec<u8>,
}

impl Rows {
    fn new(format: Format, layout: &Layout) -> Rows {
        let names = Cdr::header(layout)
            .into_iter()
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect();
        Rows {
            format,
            names,
            row: Vec::new(),
        }
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

    fn row(&mut self, cdr: &Cdr) -> &[u8] {
        self.row.clear();
        let fields = cdr.fields();
        match self.format {
            Format::Csv => {
                for (i, value) in fields.iter().enumerate() {
                    if i > 0 {
                        self.row.push(b',');
                    }
                    csv_field(&mut self.row, value);
                }
                self.row.extend_from_slice(b"\r\n");
            }
            Format::Jsonl => {
                self.row.push(b'{');
                for (i, (name, value)) in self.names.iter().zip(fields.iter()).enumerate() {
                    if i > 0 {
                        self.row.push(b',');
                    }
                    json::write_str(&mut self.row, name);
                    self.row.push(b':');
                    match (name.as_str(), value.is_empty()) {
                        ("start" | "end" | "duration", true) => self.row.extend_from_slice(b"null"),
                        ("duration", false) => self.row.extend_from_slice(value),
                        _ => json::write_bytes(&mut self.row, value),
                    }
                }
                self.row.extend_from_slice(b"}\n");
            }
        }
        &self.row
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
    if args.state.is_some() {
        if args.inputs.iter().any(|p| p.as_os_str() == STDIN) {
            usage(
                "--state: standard input (-) is not a file a later run can know again; give \
                 files or DIR",
            )
        }
        if args.selection.records.is_set() {
            usage(
                "--state reads every new record exactly once; --since/--until would leave \
                 records out of it for good",
            )
        }
    }
    match inputs::source(&args.inputs) {
        Source::Table { dir, table } => {
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
        Source::Files(paths) => {
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

    let (mut pairer, mut ledger, mark) = match &args.state {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => {
                let restored = state::restore(&bytes, options)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                (
                    restored.pairer,
                    Ledger::new(restored.files),
                    restored.output,
                )
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                (Pairer::new(options), Ledger::default(), None)
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        },
        None => (Pairer::new(options), Ledger::default(), None),
    };

    let mut rows = Rows::new(args.format, &main_layout);
    let mut sink = match (&args.state, &args.output) {
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
            Sink::Journal(journal, Vec::new())
        }
        (_, Some(path)) => {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(".tmp");
            let temporary = path.with_file_name(name);
            let file =
                File::create(&temporary).map_err(|e| format!("{}: {e}", temporary.display()))?;
            let mut out = BufWriter::with_capacity(256 * 1024, file);
            out.write_all(&rows.header()).map_err(|e| e.to_string())?;
            Sink::Plain(out, Some(path.clone()))
        }
        (_, None) => {
            let fd = io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| e.to_string())?;
            let mut out = BufWriter::with_capacity(256 * 1024, File::from(fd));
            out.write_all(&rows.header()).map_err(|e| e.to_string())?;
            Sink::Plain(out, None)
        }
    };

    let problems = RefCell::new(std::mem::take(status));
    let ends = RefCell::new(Vec::new());
    let mut outputs = Vec::new();
    let mut write_outputs = |outputs: &mut Vec<Output>, sink: &mut Sink| -> io::Result<()> {
        for output in outputs.drain(..) {
            match output {
                Output::Cdr(cdr) => sink.write(rows.row(&cdr))?,
                Output::Problem(problem) => problems.borrow_mut().problem(problem),
            }
        }
        Ok(())
    };

    // Failed calls: each missed-calls record is one CDR.
    if let Some(missed_layout) = &missed_layout {
        for open in missed_open {
            let Some(records) =
                open_records(open, missed_layout, &ledger, window, &problems, &ends)
            else {
                continue;
            };
            for (_, fields) in records {
                if let Ok(record) = missed_layout.view(&fields) {
                    let cdr = failed_cdr(&record, missed_layout, &main_layout);
                    outputs.push(Output::Cdr(cdr));
                }
                write_outputs(&mut outputs, &mut sink).map_err(|e| e.to_string())?;
            }
        }
    }

    // Answered calls: every file of the table at once, merged by time.
    let sources: Vec<Records<'_>> = main_open
        .into_iter()
        .filter_map(|open| open_records(open, &main_layout, &ledger, window, &problems, &ends))
        .collect();
    for (_, fields) in merge_by_time(sources, |(time, _): &(Timestamp, _)| time.epoch_nanos()) {
        if let Ok(record) = main_layout.view(&fields) {
            pairer.push(&record, &mut outputs);
        }
        write_outputs(&mut outputs, &mut sink).map_err(|e| e.to_string())?;
    }
    progress.finish();
    for (prefix, end) in ends.into_inner() {
        ledger.record(&prefix, end);
    }
    // Without a state, the run is the whole input: every call still open is emitted.
    let carried = match &args.state {
        None => {
            pairer.finish(&mut outputs);
            write_outputs(&mut outputs, &mut sink).map_err(|e| e.to_string())?;
            None
        }
        Some(path) => Some((pairer, path)),
    };
    *status = problems.into_inner();
    match (sink, carried) {
        (Sink::Plain(mut out, None), _) => {
            if let Err(e) = out.flush() {
                status.output_failed(&e);
            }
        }
        (Sink::Plain(out, Some(path)), _) => {
            let file = out.into_inner().map_err(|e| e.to_string())?;
            file.sync_all().map_err(|e| e.to_string())?;
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(".tmp");
            std::fs::rename(path.with_file_name(name), &path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        (Sink::Journal(mut journal, buffer), Some((pairer, state_path))) => {
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
        (Sink::Journal(..), None) => unreachable!("a journal is kept only with a state"),
    }
    Ok(())
}
