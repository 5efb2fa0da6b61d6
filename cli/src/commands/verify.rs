//! `flatstore verify`: what every file of a table holds, and what is wrong with it.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flatstore::columns;
use flatstore::line::decode::escape_at;
use flatstore::line::fields::field_count;

use serde::Serialize;

use crate::content::{self, Stop};
use crate::exit::{FileError, PROBLEMS, Status, records};
use crate::inputs::{self, Named};
use crate::lines::{self, Line};
use crate::listing::{self, ListedFile};
use crate::output;
use crate::progress::Progress;

/// Check every file of DIR (of TABLE only), or the files given: counts, columns, torn lines,
/// escapes.
///
/// Per table and file, live files included: records, bytes, column counts, records whose
/// column count differs from the table's most common one, a torn last line, records holding a
/// `%` or `\` that starts no escape (counted, kept as written, no problem), and whether the file is live (a writer may still append to it),
/// sealed by its writer (complete) or rotated. Per table, the column names in its
/// TABLE.columns sidecar, which must be well formed and as many as the records' most common
/// column count. Files given one by one are grouped by the table their names say (with the
/// TABLE.columns beside them); files under other names, and standard input, are one group
/// with no table.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// DIR, or DIR TABLE: every table's files in the log directory (TABLE's only). Or FILE…:
    /// these files, - for standard input. A first argument that is a directory means DIR, or
    /// DIR TABLE.
    #[arg(value_name = "DIR [TABLE] | FILE", required = true)]
    inputs: Vec<PathBuf>,
    /// One JSON object on standard output instead of the table for people.
    #[arg(long)]
    json: bool,
}

/// How many records of a file had one column count, and the first of them.
#[derive(Debug)]
struct Columns {
    columns: usize,
    lines: u64,
    first_line: u64,
}

/// What one file holds.
#[derive(Debug, Default)]
struct FileCheck {
    /// Content bytes read (decompressed), the torn line included.
    bytes: u64,
    /// Lines ending in `\n`.
    records: u64,
    /// Column counts of the records, in order of first appearance.
    columns: Vec<Columns>,
    /// The last line has no `\n`.
    torn: bool,
    /// Records with a `%` or `\` that starts no escape (kept as written by every reader: a
    /// count, not a problem).
    undecodable: u64,
    /// Why the file could not be read to its end.
    error: Option<FileError>,
}

impl FileCheck {
    fn add(&mut self, line: Line<'_>) {
        self.bytes += line.bytes.len() as u64 + u64::from(line.terminated);
        if !line.terminated {
            self.torn = true;
            return;
        }
        self.records += 1;
        let (columns, undecodable) = scan(line.bytes);
        self.undecodable += u64::from(undecodable);
        match self.columns.iter_mut().find(|c| c.columns == columns) {
            Some(c) => c.lines += 1,
            None => self.columns.push(Columns {
                columns,
                lines: 1,
                first_line: line.number,
            }),
        }
    }

    /// Records whose column count is not `majority`.
    fn other_columns(&self, majority: Option<usize>) -> u64 {
        let matching = self
            .columns
            .iter()
            .filter(|c| Some(c.columns) == majority)
            .map(|c| c.lines)
            .sum::<u64>();
        self.records - matching
    }
}

/// The column count of a record, and whether it holds an undecodable escape.
fn scan(line: &[u8]) -> (usize, bool) {
    let columns = field_count(line);
    let undecodable =
        memchr::memchr2_iter(b'%', b'\\', line).any(|at| escape_at(line, at).is_none());
    (columns, undecodable)
}

fn check_file(file: &ListedFile, progress: &Progress) -> FileCheck {
    let mut check = FileCheck::default();
    let read = content::open(file, progress)
        .map_err(Stop::Read)
        .and_then(|mut content| {
            lines::for_each_line(&mut content, |line| {
                check.add(line);
                Ok::<(), Infallible>(())
            })
        });
    match read {
        Ok(()) => {}
        Err(Stop::Read(e)) => check.error = Some(e),
        Err(Stop::Sink(never)) => match never {},
    }
    check
}

/// A table's `<table>.columns` sidecar and what it holds.
#[derive(Debug)]
struct Sidecar {
    table: Vec<u8>,
    path: PathBuf,
    /// The names; `Ok(None)` when the file went away after it was listed.
    names: Result<Option<Vec<String>>, FileError>,
}

impl Sidecar {
    fn read(table: &[u8], path: &Path) -> Sidecar {
        Sidecar {
            table: table.to_vec(),
            path: path.to_owned(),
            names: columns::read(path).map_err(FileError::from),
        }
    }
}

/// One table's files and what they hold.
#[derive(Debug)]
struct TableCheck<'a> {
    /// `None` for files given under names that are no table's logs.
    table: Option<String>,
    files: Vec<(&'a ListedFile, FileCheck)>,
    /// The column count of most records.
    majority: Option<usize>,
    /// The table's sidecar and its names, when it has a well-formed one.
    sidecar: Option<(&'a Path, &'a [String])>,
}

impl<'a> TableCheck<'a> {
    /// Check `files`, all of one table and at least one; its sidecar is among `sidecars`
    /// when it has one.
    fn new(
        files: &'a [ListedFile],
        sidecars: &'a [Sidecar],
        progress: &Progress,
    ) -> TableCheck<'a> {
        let files: Vec<(&ListedFile, FileCheck)> =
            files.iter().map(|f| (f, check_file(f, progress))).collect();
        let mut totals: Vec<(usize, u64)> = Vec::new();
        for c in files.iter().flat_map(|(_, check)| &check.columns) {
            match totals.iter_mut().find(|(columns, _)| *columns == c.columns) {
                Some((_, lines)) => *lines += c.lines,
                None => totals.push((c.columns, c.lines)),
            }
        }
        let majority = totals
            .iter()
            .max_by_key(|(columns, lines)| (*lines, std::cmp::Reverse(*columns)))
            .map(|(columns, _)| *columns);
        let table = files[0].0.table();
        let sidecar = sidecars
            .iter()
            .find(|s| Some(s.table.as_slice()) == table)
            .and_then(|s| match &s.names {
                Ok(Some(names)) => Some((s.path.as_path(), names.as_slice())),
                _ => None,
            });
        TableCheck {
            table: table.map(|t| String::from_utf8_lossy(t).into_owned()),
            files,
            majority,
            sidecar,
        }
    }

    fn sum(&self, of: impl Fn(&FileCheck) -> u64) -> u64 {
        self.files.iter().map(|(_, check)| of(check)).sum()
    }

    /// One sentence per problem, naming the file.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (file, check) in &self.files {
            let name = file.path.display();
            if let Some(e) = &check.error {
                problems.push(e.to_string());
            }
            for c in &check.columns {
                if let Some(majority) = self.majority.filter(|m| *m != c.columns) {
                    problems.push(format!(
                        "{name}: {} with {} columns instead of {majority} (first: line {})",
                        records(c.lines),
                        c.columns,
                        c.first_line
                    ));
                }
            }
            if check.torn {
                problems.push(format!(
                    "{name}: the last line is torn (no newline at its end)"
                ));
            }
        }
        if let (Some((path, names)), Some(majority)) = (self.sidecar, self.majority)
            && names.len() != majority
        {
            problems.push(format!(
                "{}: {} column names, but most records have {majority} columns (export leaves \
                 out records of another count)",
                path.display(),
                names.len()
            ));
        }
        problems
    }
}

/// Exit status 0 when nothing is wrong, 1 when a problem was found, 2 when the directory or a
/// file could not be read.
pub fn run(args: &Args) -> ExitCode {
    let mut status = Status::default();
    let (dir, table, listing) = match inputs::named(&args.inputs) {
        Named::Table { dir, table } => {
            match listing::discover(dir, table.as_deref().map(str::as_bytes)) {
                Ok(listing) => (Some(dir), table, listing),
                Err(e) => {
                    status.file_error(&e);
                    return status.exit_code();
                }
            }
        }
        Named::Files(paths) => {
            let listing = inputs::given(paths);
            // A path given that is not there is said on standard error too, as a missing DIR
            // is (the report lists it among the problems).
            for error in &listing.errors {
                eprintln!("flatstore: {error}");
            }
            (None, None, listing)
        }
    };
    let sidecars: Vec<Sidecar> = listing
        .sidecars
        .iter()
        .map(|(table, path)| Sidecar::read(table, path))
        .collect();
    let progress = Progress::new("verify", listing.files.iter().map(|f| f.size).sum(), false);
    let tables: Vec<TableCheck<'_>> = listing
        .files
        .chunk_by(|a, b| a.table() == b.table())
        .map(|files| TableCheck::new(files, &sidecars, &progress))
        .collect();
    progress.finish();
    let sidecar_errors: Vec<&FileError> = sidecars
        .iter()
        .filter_map(|s| s.names.as_ref().err())
        .collect();
    let mut problems: Vec<String> = listing.errors.iter().map(ToString::to_string).collect();
    problems.extend(tables.iter().flat_map(TableCheck::problems));
    problems.extend(sidecar_errors.iter().map(ToString::to_string));
    // A seal pending its sync is in progress while its writer holds it; one nobody holds was
    // left by a writer killed before it finished (`flatstore seal` finishes it).
    for path in &listing.pending_seals {
        match flatstore::writer_holds(path) {
            Ok(true) => {}
            Ok(false) if !path.exists() => {}
            Ok(false) => {
                let records = lines_in(path);
                problems.push(format!(
                    "{}: {records} record(s) sealed by a writer that was gone before it synced \
                     them: `flatstore seal` gives the file its sealed name",
                    path.display()
                ));
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    for (path, log) in &listing.torn_aside {
        let records = lines_in(path);
        problems.push(format!(
            "{}: {records} torn record(s) that a writer moved out of {log} (cut short by a crash)",
            path.display()
        ));
    }
    for error in listing
        .errors
        .iter()
        .chain(
            tables
                .iter()
                .flat_map(|t| t.files.iter().filter_map(|(_, c)| c.error.as_ref())),
        )
        .chain(sidecar_errors.iter().copied())
    {
        status.raise(error.exit_status());
    }
    if !problems.is_empty() {
        status.raise(PROBLEMS);
    }
    if let (Some(dir), Some(table)) = (dir, &table)
        && tables.is_empty()
        && listing.errors.is_empty()
        && sidecars.is_empty()
    {
        problems.push(format!("{}: no file of table {table:?}", dir.display()));
        status.raise(PROBLEMS);
    }
    let report = if args.json {
        json_report(dir, &tables, &listing.ignored, &problems)
    } else {
        text_report(&tables, &listing.ignored, &problems)
    };
    output::print_report(&report, &mut status);
    status.exit_code()
}

fn column_list(check: &FileCheck) -> String {
    let mut columns: Vec<&Columns> = check.columns.iter().collect();
    columns.sort_by_key(|c| std::cmp::Reverse(c.lines));
    let list: Vec<String> = columns.iter().map(|c| c.columns.to_string()).collect();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(",")
    }
}

fn text_report(tables: &[TableCheck<'_>], ignored: &[String], problems: &[String]) -> String {
    let mut out = String::new();
    for t in tables {
        let majority = t.majority.map_or("no".into(), |m| m.to_string());
        let table = match &t.table {
            Some(table) => format!("table {table}"),
            None => "files named as no table's log".into(),
        };
        let _ = writeln!(
            out,
            "{table}: {} files, {} records, {} bytes, {majority} columns",
            t.files.len(),
            t.sum(|c| c.records),
            t.sum(|c| c.bytes),
        );
        if let Some((path, names)) = t.sidecar {
            let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            let _ = writeln!(
                out,
                "  column names from {}: {}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                names.join(",")
            );
        }
        let width = t
            .files
            .iter()
            .map(|(f, _)| f.file_name.len())
            .max()
            .unwrap_or(0)
            .max(4);
        let _ = writeln!(
            out,
            "  {:<width$} {:>10} {:>12} {:>8} {:>6} {:>5} {:>11}  STATE",
            "FILE", "RECORDS", "BYTES", "COLUMNS", "OTHER", "TORN", "UNDECODABLE"
        );
        for (file, check) in &t.files {
            let state = if check.error.is_some() {
                "error (see below)"
            } else if file.is_live() {
                "live (a writer may still append)"
            } else if file.is_sealed() {
                "sealed"
            } else if file.name.is_some() {
                "rotated"
            } else {
                "-"
            };
            let _ = writeln!(
                out,
                "  {:<width$} {:>10} {:>12} {:>8} {:>6} {:>5} {:>11}  {state}",
                file.file_name,
                check.records,
                check.bytes,
                column_list(check),
                check.other_columns(t.majority),
                if check.torn { "yes" } else { "no" },
                check.undecodable,
            );
        }
    }
    if !ignored.is_empty() {
        let _ = writeln!(
            out,
            "not flatstore logs, left alone: {}",
            ignored.join(", ")
        );
    }
    if problems.is_empty() {
        let _ = writeln!(out, "no problems");
    } else {
        let _ = writeln!(out, "{} problems:", problems.len());
        for p in problems {
            let _ = writeln!(out, "  {p}");
        }
    }
    out
}

/// `verify --json`: one object, keys in this order (docs/cli.md lists them).
#[derive(Serialize)]
struct VerifyReport<'a> {
    /// `null` for files given one by one.
    dir: Option<String>,
    tables: Vec<VerifyTableReport<'a>>,
    ignored: &'a [String],
    problems: &'a [String],
}

#[derive(Serialize)]
struct VerifyTableReport<'a> {
    table: Option<&'a str>,
    /// The column count of most records.
    columns: Option<usize>,
    records: u64,
    bytes: u64,
    files: Vec<FileReport<'a>>,
    column_names: Option<&'a [String]>,
}

#[derive(Serialize)]
struct FileReport<'a> {
    file: &'a str,
    live: bool,
    sealed: bool,
    size: u64,
    bytes: u64,
    records: u64,
    columns: ColumnCounts<'a>,
    other_columns: u64,
    torn: bool,
    undecodable: u64,
    error: Option<String>,
}

/// `{"<column count>": records}`, in order of first appearance.
struct ColumnCounts<'a>(&'a [Columns]);

impl Serialize for ColumnCounts<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|c| (c.columns.to_string(), c.lines)))
    }
}

fn json_report(
    dir: Option<&Path>,
    tables: &[TableCheck<'_>],
    ignored: &[String],
    problems: &[String],
) -> String {
    output::json_report(&VerifyReport {
        dir: dir.map(|dir| dir.to_string_lossy().into_owned()),
        tables: tables
            .iter()
            .map(|t| VerifyTableReport {
                table: t.table.as_deref(),
                columns: t.majority,
                records: t.sum(|c| c.records),
                bytes: t.sum(|c| c.bytes),
                files: t
                    .files
                    .iter()
                    .map(|(file, check)| FileReport {
                        file: &file.file_name,
                        live: file.is_live(),
                        sealed: file.is_sealed(),
                        size: file.size,
                        bytes: check.bytes,
                        records: check.records,
                        columns: ColumnCounts(&check.columns),
                        other_columns: check.other_columns(t.majority),
                        torn: check.torn,
                        undecodable: check.undecodable,
                        error: check.error.as_ref().map(ToString::to_string),
                    })
                    .collect(),
                column_names: t.sidecar.map(|(_, names)| names),
            })
            .collect(),
        ignored,
        problems,
    })
}

/// The lines of the small side file at `path` (a `.torn` or `.pending` file), 0 when it cannot
/// be read.
fn lines_in(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_and_escapes_of_a_record() {
        assert_eq!(scan(b""), (1, false));
        assert_eq!(scan(b"INVITE|200|a%7Cb|\\x00"), (4, false));
        assert_eq!(scan(b"100% sure|x"), (2, true));
        assert_eq!(scan(b"a\\b"), (1, true));
        assert_eq!(scan(b"a%7"), (1, true));
    }
}
