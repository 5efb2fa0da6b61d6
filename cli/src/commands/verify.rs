//! `flatstore verify`: what every file of a table holds, and what is wrong with it.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flatstore::line::decode::escape_at;
use flatstore::line::encode::DELIMITER;

use crate::content::{self, Stop};
use crate::exit::{PROBLEMS, Status, records};
use crate::json;
use crate::lines::{self, Line};
use crate::listing::{self, FileError, ListedFile};
use crate::output;
use crate::progress::Progress;
use crate::schema;

/// Check every file of DIR (of TABLE only): counts, columns, torn lines, escapes.
///
/// Per table and file, live files included: records, bytes, column counts, records whose
/// column count differs from the table's most common one, a torn last line, records with an
/// undecodable escape, and whether the file is live (a writer may still append to it),
/// sealed by its writer (complete) or rotated. Per table, the column names in its
/// TABLE.columns sidecar, which must be well formed and as many as the records' most common
/// column count.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The log directory.
    dir: PathBuf,
    /// Only this table.
    #[arg(value_parser = listing::table_name)]
    table: Option<String>,
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
    /// Records with a `%` or `\` that starts no escape, and the first of them.
    undecodable: u64,
    first_undecodable: u64,
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
        if undecodable {
            if self.undecodable == 0 {
                self.first_undecodable = line.number;
            }
            self.undecodable += 1;
        }
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
    let columns = 1 + line.iter().filter(|&&b| b == DELIMITER).count();
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
            names: schema::read(path),
        }
    }
}

/// One table's files and what they hold.
#[derive(Debug)]
struct TableCheck<'a> {
    table: String,
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
        let table = &files[0].0.name.table;
        let sidecar = sidecars
            .iter()
            .find(|s| s.table == *table)
            .and_then(|s| match &s.names {
                Ok(Some(names)) => Some((s.path.as_path(), names.as_slice())),
                _ => None,
            });
        TableCheck {
            table: String::from_utf8_lossy(table).into_owned(),
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
            if check.undecodable > 0 {
                problems.push(format!(
                    "{name}: {} with an undecodable escape (first: line {})",
                    records(check.undecodable),
                    check.first_undecodable
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
    let listing = match listing::discover(&args.dir, args.table.as_deref().map(str::as_bytes)) {
        Ok(listing) => listing,
        Err(e) => {
            status.file_error(&e);
            return status.exit_code();
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
        .chunk_by(|a, b| a.name.table == b.name.table)
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
    for (path, log) in &listing.torn_aside {
        let records = std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
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
    if let Some(table) = &args.table
        && tables.is_empty()
        && listing.errors.is_empty()
        && sidecars.is_empty()
    {
        problems.push(format!(
            "{}: no file of table {table:?}",
            args.dir.display()
        ));
        status.raise(PROBLEMS);
    }
    let report = if args.json {
        json_report(&args.dir, &tables, &listing.ignored, &problems)
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
        let _ = writeln!(
            out,
            "table {}: {} files, {} records, {} bytes, {majority} columns",
            t.table,
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
            } else {
                "rotated"
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

fn json_report(
    dir: &std::path::Path,
    tables: &[TableCheck<'_>],
    ignored: &[String],
    problems: &[String],
) -> String {
    let strings = |items: &mut dyn Iterator<Item = &String>| {
        let items: Vec<String> = items.map(|s| json::string(s)).collect();
        format!("[{}]", items.join(","))
    };
    let tables: Vec<String> = tables
        .iter()
        .map(|t| {
            let files: Vec<String> = t
                .files
                .iter()
                .map(|(file, check)| {
                    let columns: Vec<String> = check
                        .columns
                        .iter()
                        .map(|c| format!("\"{}\":{}", c.columns, c.lines))
                        .collect();
                    format!(
                        "{{\"file\":{},\"live\":{},\"sealed\":{},\"size\":{},\"bytes\":{},\
                         \"records\":{},\"columns\":{{{}}},\"other_columns\":{},\"torn\":{},\
                         \"undecodable\":{},\"error\":{}}}",
                        json::string(&file.file_name),
                        file.is_live(),
                        file.is_sealed(),
                        file.size,
                        check.bytes,
                        check.records,
                        columns.join(","),
                        check.other_columns(t.majority),
                        check.torn,
                        check.undecodable,
                        check
                            .error
                            .as_ref()
                            .map_or("null".into(), |e| json::string(&e.to_string())),
                    )
                })
                .collect();
            let names = t
                .sidecar
                .map_or("null".into(), |(_, names)| strings(&mut names.iter()));
            format!(
                "{{\"table\":{},\"columns\":{},\"records\":{},\"bytes\":{},\"files\":[{}],\
                 \"column_names\":{names}}}",
                json::string(&t.table),
                t.majority.map_or("null".into(), |m| m.to_string()),
                t.sum(|c| c.records),
                t.sum(|c| c.bytes),
                files.join(",")
            )
        })
        .collect();
    format!(
        "{{\"dir\":{},\"tables\":[{}],\"ignored\":{},\"problems\":{}}}\n",
        json::string(&dir.to_string_lossy()),
        tables.join(","),
        strings(&mut ignored.iter()),
        strings(&mut problems.iter()),
    )
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
