//! `flatstore stats`: a directory's tables at a glance.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use serde::Serialize;

use crate::content;
use crate::exit::Status;
use crate::listing::{self, ListedFile};
use crate::output;
use crate::progress::Progress;
use crate::time;

/// DIR's tables at a glance: files, writers, size, records, times.
///
/// Per table: files (and how many are live, how many sealed by their writers), writers (the process numbers N in the file
/// names), size on disk, records (lines, gzip files decompressed), and the oldest and newest
/// file modification times.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The log directory.
    dir: PathBuf,
    /// One JSON object on standard output instead of the table for people.
    #[arg(long)]
    json: bool,
}

/// One table's figures.
#[derive(Debug)]
struct TableStats {
    table: String,
    files: usize,
    live: usize,
    sealed: usize,
    writers: Vec<u64>,
    size: u64,
    records: u64,
    oldest: SystemTime,
    newest: SystemTime,
}

/// Lines ending in `\n` in `file`; what stops the count early goes to `status`.
fn count_records(file: &ListedFile, progress: &Progress, status: &mut Status) -> u64 {
    let mut records = 0;
    match content::open(file, progress) {
        Ok(mut content) => {
            let counted = content.for_each_chunk(|chunk| {
                records += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
                Ok::<(), Infallible>(())
            });
            let Ok(()) = content::reported(counted, status);
        }
        Err(e) => status.file_error(&e),
    }
    records
}

fn table_stats(files: &[ListedFile], progress: &Progress, status: &mut Status) -> TableStats {
    let mut writers: Vec<u64> = files
        .iter()
        .filter_map(|f| f.name.as_ref().map(|name| name.number))
        .collect();
    writers.sort_unstable();
    writers.dedup();
    TableStats {
        table: String::from_utf8_lossy(files[0].table().unwrap_or_default()).into_owned(),
        files: files.len(),
        live: files.iter().filter(|f| f.is_live()).count(),
        sealed: files.iter().filter(|f| f.is_sealed()).count(),
        writers,
        size: files.iter().map(|f| f.size).sum(),
        records: files
            .iter()
            .map(|f| count_records(f, progress, status))
            .sum(),
        oldest: files
            .iter()
            .map(|f| f.modified)
            .min()
            .unwrap_or(SystemTime::UNIX_EPOCH),
        newest: files
            .iter()
            .map(|f| f.modified)
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

/// Exit status 0, 1 when a file is corrupt or binary (its records are counted up to there),
/// 2 when the directory or a file cannot be read.
pub fn run(args: &Args) -> ExitCode {
    let mut status = Status::default();
    let listing = match listing::discover(&args.dir, None) {
        Ok(listing) => listing,
        Err(e) => {
            status.file_error(&e);
            return status.exit_code();
        }
    };
    for error in &listing.errors {
        status.file_error(error);
    }
    let progress = Progress::new("stats", listing.files.iter().map(|f| f.size).sum(), false);
    let tables: Vec<TableStats> = listing
        .files
        .chunk_by(|a, b| a.table() == b.table())
        .map(|files| table_stats(files, &progress, &mut status))
        .collect();
    progress.finish();
    let report = if args.json {
        json_report(&args.dir, &tables)
    } else {
        text_report(&tables)
    };
    output::print_report(&report, &mut status);
    status.exit_code()
}

fn writer_list(writers: &[u64]) -> String {
    let list: Vec<String> = writers.iter().map(u64::to_string).collect();
    list.join(",")
}

fn text_report(tables: &[TableStats]) -> String {
    let width = tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = format!(
        "{:<width$} {:>6} {:>5} {:>6} {:>12} {:>12}  {:<20}  {:<20}  WRITERS (N)\n",
        "TABLE", "FILES", "LIVE", "SEALED", "SIZE", "RECORDS", "OLDEST", "NEWEST"
    );
    for t in tables {
        let _ = writeln!(
            out,
            "{:<width$} {:>6} {:>5} {:>6} {:>12} {:>12}  {:<20}  {:<20}  {}",
            t.table,
            t.files,
            t.live,
            t.sealed,
            t.size,
            t.records,
            time::file_time(t.oldest),
            time::file_time(t.newest),
            writer_list(&t.writers),
        );
    }
    out
}

/// `stats --json`: one object, keys in this order (docs/cli.md).
#[derive(Serialize)]
struct StatsReport<'a> {
    dir: String,
    tables: Vec<StatsTableReport<'a>>,
}

#[derive(Serialize)]
struct StatsTableReport<'a> {
    table: &'a str,
    files: usize,
    live_files: usize,
    sealed_files: usize,
    writers: &'a [u64],
    size: u64,
    records: u64,
    oldest: String,
    newest: String,
}

fn json_report(dir: &Path, tables: &[TableStats]) -> String {
    output::json_report(&StatsReport {
        dir: dir.to_string_lossy().into_owned(),
        tables: tables
            .iter()
            .map(|t| StatsTableReport {
                table: &t.table,
                files: t.files,
                live_files: t.live,
                sealed_files: t.sealed,
                writers: &t.writers,
                size: t.size,
                records: t.records,
                oldest: time::file_time(t.oldest),
                newest: time::file_time(t.newest),
            })
            .collect(),
    })
}
