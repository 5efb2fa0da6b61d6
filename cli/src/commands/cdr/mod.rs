//! `flatstore cdr`: a table's records as billable call detail records (CDRs).
//!
//! The command chooses the files, their layouts and the destination; the run itself (reading,
//! merging, pairing) is the library's [`flatstore::cdr::run`].
//!
//! - `files`: which files, opened, their layouts, each read on from where committed runs
//!   stopped;
//! - `rows`: CDRs as text (CSV, JSON Lines, `COPY` rows);
//! - `destination`: standard output, a file, the journal or the database, begun and
//!   committed; the writer that takes the run's CDRs and complaints;
//! - `database`: the --db connection, its CDR table and the state table;
//! - `refused`: the CDRs the server refused, set aside and named by their records;
//! - `fault`: faults the tests inject (debug builds only).

mod database;
mod destination;
mod fault;
mod files;
mod refused;
mod rows;

use std::path::PathBuf;
use std::process::ExitCode;

use flatstore::cdr::{
    self, Counts, Ending, FailedInvites, PairingOptions, RunOptions, Sources, Table, TimeWindow,
};

use self::database::CdrDatabase;
use self::destination::{Begun, Destination, RowWriter};
use self::files::{layout, open_all, run_files};
use self::refused::Origins;
use self::rows::CdrRows;
use crate::error::CliError;
use crate::exit::Status;
use crate::listing::{self, Selection};
use crate::progress::Progress;

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
/// run killed at any moment commits nothing, and two runs at once wait for each other. A CDR
/// with a value the server refuses for its column is set aside in flatstore_rejects instead
/// (named on standard error by its record's file, line and Call-ID; exit status 1).
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
    /// Ended calls are remembered (to count a second BYE, crossed or retransmitted, rather than
    /// take it for a new call) for 300 seconds, or this if shorter; a BYE later than that is a
    /// lone BYE (unmatched_bye).
    #[arg(long, value_name = "SECONDS", default_value_t = flatstore::cdr::DEFAULT_MAX_AGE_SECONDS)]
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

/// How calls are paired: failed INVITEs are the missed-calls table's records when it has
/// files, else TABLE's.
fn pairing_options(args: &Args, has_missed: bool) -> PairingOptions {
    let mut options = PairingOptions::new(if has_missed {
        FailedInvites::Ignore
    } else {
        FailedInvites::MakeCdrs
    });
    options.max_age_seconds = args.max_call_age;
    options
}

fn account(args: &Args, status: &mut Status) -> Result<(), CliError> {
    let Some(files) = run_files(args, status)? else {
        return Ok(());
    };
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
    if main_layout.unknown && (args.state.is_some() || args.db.is_some()) {
        // A run before the first record (a cron job on a fresh proxy) fixes no layout: no
        // header, no table, no state that later records would contradict.
        eprintln!(
            "flatstore: table {:?}: no column names (no {0}.columns, no --columns) and no \
             record yet: nothing accounted, nothing committed",
            files.table
        );
        return Ok(());
    }
    let main_layout = main_layout.layout;
    let missed_layout = if files.missed.is_empty() {
        None
    } else {
        Some(
            layout(
                files.missed_sidecar.as_deref(),
                &args.missed,
                &[],
                &mut missed_open,
            )?
            .layout,
        )
    };
    let options = pairing_options(args, files.has_missed);
    let mut database = match &args.db {
        Some(url) => Some(CdrDatabase::open(url, args, &main_layout)?),
        None => None,
    };
    let rows = match &database {
        Some(database) => CdrRows::copy(&main_layout, &database.table().source),
        None => CdrRows::new(args.format, &main_layout),
    };
    // Where a CDR the server refuses came from is looked up in the files (--db only).
    let origins = Origins::new(
        (&files.main, main_layout.clone()),
        missed_layout
            .clone()
            .map(|layout| (&files.missed[..], layout)),
    );
    // With --db the rows are copied on a thread of this scope.
    std::thread::scope(|scope| {
        let Begun {
            destination,
            first,
            mut pairer,
            earlier,
        } = Destination::begin(args, database.as_mut(), options, &rows, scope)?;
        let ending = if destination.carries_open_calls() {
            // The next run goes on from the state: the calls that ended here are emitted now.
            Ending::CarryOpenCalls
        } else {
            // Without a state, the run is the whole input: every call still open is emitted.
            Ending::EmitOpenCalls
        };
        let mut writer = RowWriter::new(rows, destination, first, std::mem::take(status));
        let sources = Sources {
            missed: missed_layout.map(|layout| Table {
                layout,
                files: missed_open
                    .into_iter()
                    .filter_map(|open| earlier.unread_part(open)),
            }),
            main: Table {
                layout: main_layout,
                files: main_open
                    .into_iter()
                    .filter_map(|open| earlier.unread_part(open)),
            },
        };
        let window = TimeWindow::from(args.selection.records);
        let read = cdr::run(
            sources,
            RunOptions { window, ending },
            &mut pairer,
            &mut writer,
        );
        let (destination, rows, problems) = writer.into_parts();
        *status = problems;
        let read = match read {
            Ok(read) => read,
            Err(e) => return Err(destination.abandon(e.into(), &origins)),
        };
        progress.finish();
        let mut ledger = earlier.own;
        for file in read {
            ledger.record(&file.reader.prefix, file.end);
        }
        summarize(pairer.counts());
        destination.commit(&rows, &pairer, &ledger, &origins, status)
    })
}

/// Says on standard error what was counted rather than paired and would otherwise go unseen:
/// extra BYEs (normal SIP, not a problem: the exit status stays).
fn summarize(counts: Counts) {
    if counts.extra_byes > 0 {
        let n = counts.extra_byes;
        eprintln!(
            "flatstore: {n} extra BYE{} of calls that already had one (both parties hanging up \
             at once, or a retransmission): counted, the calls' CDRs unaffected",
            if n == 1 { "" } else { "s" }
        );
    }
}
