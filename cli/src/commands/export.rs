//! `flatstore export`: a table's records as CSV or JSON Lines, escapes decoded, for billing
//! tools.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use flatstore::cdr::TimeWindow;
use flatstore::columns;
use flatstore::line::decode::decode_field_lenient;
use flatstore::line::fields::split_fields;

use crate::content::{self, Content};
use crate::csv::csv_field;
use crate::exit::{FileError, IO_ERROR, Status, records, usage};
use crate::inputs::{self, Chosen};
use crate::json;
use crate::lines;
use crate::listing::Selection;
use crate::output::{self, BufferedStdout};
use crate::time;
use crate::window::{self, Picker};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// RFC 4180: CRLF line ends; a field holding `,`, `"`, CR or LF is quoted, `"` doubled.
    Csv,
    /// One JSON array per record, an object when there are column names; values that are
    /// not UTF-8 as {"base64":"…"}.
    Jsonl,
}

/// TABLE's records (or those of the files given) as CSV or JSON Lines, escapes decoded.
///
/// The files `cat` reads, in the same order. Every escape is decoded (%HH, \xHH); a % or \
/// that starts no escape is kept as it is. Only whole lines are records: a torn last line is
/// not exported. --since/--until keep the records whose time (the column named time, else
/// the 7th column) is in the window.
///
/// Column names come from --columns, else from DIR/TABLE.columns when it exists (the sidecar
/// that writers with header=1 keep: one line, the names encoded and separated as record
/// values are; with files given, the TABLE.columns beside the first file named as a table's
/// log), exactly as if given with --columns. A sidecar that cannot be read or is malformed
/// (empty, not one line, a name empty, given twice or not UTF-8) stops the export before
/// anything is written, with exit status 2; --columns overrides it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// DIR TABLE: the table's files in the log directory. Or FILE…: these files, - for
    /// standard input. A first argument that is a directory means DIR TABLE.
    #[arg(value_name = "DIR TABLE | FILE", required = true)]
    inputs: Vec<PathBuf>,
    /// The output format.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Names of the columns, in order: CSV gets a header line, JSON Lines objects instead of
    /// arrays. Records with another number of columns are not exported (and reported).
    /// Default: the names in DIR/TABLE.columns, when it exists.
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    columns: Vec<String>,
    /// DATETIME columns (column names, or positions from 1) written as ISO-8601 UTC,
    /// 2026-11-23T10:00:00Z. Values that are not a decimal number are written as they are.
    #[arg(long = "iso-time", value_name = "COLUMN,…", value_delimiter = ',')]
    iso_time: Vec<String>,
    #[command(flatten)]
    selection: Selection,
}

/// The names records are exported under, and where they were given.
#[derive(Debug)]
struct Names {
    /// In column order; empty when none were given.
    names: Vec<String>,
    /// `--columns`, or the sidecar's path: for reports.
    source: String,
}

/// The names from --columns (a bad list is a usage error), else from TABLE's sidecar when it
/// exists, else none. `Err` when the sidecar cannot be read or is malformed.
fn column_names(args: &Args, chosen: &Chosen) -> Result<Names, FileError> {
    if !args.columns.is_empty() {
        if let Err(what) = columns::check_names(&args.columns) {
            usage(format!("--columns: {what}"));
        }
        return Ok(Names {
            names: args.columns.clone(),
            source: "--columns".into(),
        });
    }
    let Some(path) = &chosen.sidecar else {
        return Ok(Names {
            names: Vec::new(),
            source: "no column names".into(),
        });
    };
    Ok(Names {
        names: columns::read(path)?.unwrap_or_default(),
        source: path.display().to_string(),
    })
}

/// Which columns `--iso-time` names, as a mask over column positions.
fn iso_columns(names: &[String], iso_time: &[String]) -> Vec<bool> {
    let mut mask = Vec::new();
    for column in iso_time {
        let index = match names.iter().position(|name| name == column) {
            Some(index) => index,
            None => match column.parse::<usize>() {
                Ok(position) if position >= 1 && (names.is_empty() || position <= names.len()) => {
                    position - 1
                }
                _ => usage(format!(
                    "--iso-time {column:?}: no such column (give a column name or a position \
                     from 1)"
                )),
            },
        };
        if mask.len() <= index {
            mask.resize(index + 1, false);
        }
        mask[index] = true;
    }
    mask
}

/// The last DATETIME rendered: accounting records come in time order, so most are the same
/// second as the one before.
#[derive(Debug, Default)]
struct IsoTimes {
    last: Option<(u64, String)>,
}

impl IsoTimes {
    /// `value` (decimal seconds since the epoch) as ISO-8601 UTC; `None` when it is not one.
    fn render(&mut self, value: &[u8]) -> Option<&str> {
        // Digits only: `parse` would also take a sign.
        if !value.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let secs: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
        if self.last.as_ref().is_none_or(|(last, _)| *last != secs) {
            let text = time::iso8601(i64::try_from(secs).ok()?)?;
            self.last = Some((secs, text));
        }
        self.last.as_ref().map(|(_, text)| text.as_str())
    }
}

/// Turns records into output rows.
#[derive(Debug)]
struct Exporter {
    format: ExportFormat,
    /// JSON object keys, `"name":` each; empty without names.
    keys: Vec<Vec<u8>>,
    /// The column count the names require.
    expected: Option<usize>,
    /// Where the names were given, for reports.
    names_from: String,
    iso: Vec<bool>,
    times: IsoTimes,
    /// One decoded field, and the row being built: reused for every record.
    field: Vec<u8>,
    row: Vec<u8>,
}

impl Exporter {
    fn new(args: &Args, names: &Names) -> Exporter {
        let keys = match args.format {
            ExportFormat::Jsonl => names
                .names
                .iter()
                .map(|name| {
                    let mut key = Vec::new();
                    json::write_str(&mut key, name);
                    key.push(b':');
                    key
                })
                .collect(),
            ExportFormat::Csv => Vec::new(),
        };
        Exporter {
            format: args.format,
            keys,
            expected: (!names.names.is_empty()).then_some(names.names.len()),
            names_from: names.source.clone(),
            iso: iso_columns(&names.names, &args.iso_time),
            times: IsoTimes::default(),
            field: Vec::new(),
            row: Vec::new(),
        }
    }

    /// What comes before the first record: the CSV header, when there are names.
    fn header(&self, names: &Names) -> Vec<u8> {
        let mut header = Vec::new();
        if self.format == ExportFormat::Csv && !names.names.is_empty() {
            for (i, name) in names.names.iter().enumerate() {
                if i > 0 {
                    header.push(b',');
                }
                csv_field(&mut header, name.as_bytes());
            }
            header.extend_from_slice(b"\r\n");
        }
        header
    }

    /// The output row of one record (`line` without its `\n`), or `Err(columns)` when its
    /// column count is not the one the names require.
    fn record(&mut self, line: &[u8]) -> Result<&[u8], usize> {
        let Exporter {
            format,
            keys,
            expected,
            names_from: _,
            iso,
            times,
            field,
            row,
        } = self;
        row.clear();
        if *format == ExportFormat::Jsonl {
            row.push(if keys.is_empty() { b'[' } else { b'{' });
        }

        // Most records hold no escape, and no byte that CSV must quote or JSON escape: their
        // fields are copied as they lie.
        let escaped = memchr::memchr2(b'%', b'\\', line).is_some();
        let known = if escaped || std::str::from_utf8(line).is_err() {
            ValueShape::Nothing
        } else if clean(*format, line) {
            ValueShape::Clean
        } else {
            ValueShape::Utf8
        };
        let mut columns = 0;
        for raw in split_fields(line) {
            if columns > 0 {
                row.push(b',');
            }
            if let Some(key) = keys.get(columns) {
                row.extend_from_slice(key);
            }
            let value: &[u8] = if escaped {
                field.clear();
                decode_field_lenient(raw, field);
                field
            } else {
                raw
            };
            match iso
                .get(columns)
                .copied()
                .unwrap_or(false)
                .then(|| times.render(value))
                .flatten()
            {
                Some(time) => write_value(row, *format, time.as_bytes(), ValueShape::Clean),
                None => write_value(row, *format, value, known),
            }
            columns += 1;
        }
        if expected.is_some_and(|expected| expected != columns) {
            return Err(columns);
        }
        row.extend_from_slice(match (*format, keys.is_empty()) {
            (ExportFormat::Csv, _) => b"\r\n",
            (ExportFormat::Jsonl, true) => b"]\n",
            (ExportFormat::Jsonl, false) => b"}\n",
        });
        Ok(row)
    }
}

/// What is known of a value before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueShape {
    /// Needs no quotes in CSV, no escape in JSON.
    Clean,
    /// UTF-8.
    Utf8,
    /// Any bytes.
    Nothing,
}

/// `line` holds no byte that `format` must quote or escape, given that it is UTF-8 and holds
/// no `\\`. One pass without early exit (vectorised).
fn clean(format: ExportFormat, line: &[u8]) -> bool {
    !line.iter().fold(false, |any, &b| {
        any | match format {
            ExportFormat::Csv => (b == b',') | (b == b'"') | (b == b'\r'),
            ExportFormat::Jsonl => (b < 0x20) | (b == b'"'),
        }
    })
}

fn write_value(row: &mut Vec<u8>, format: ExportFormat, value: &[u8], known: ValueShape) {
    match (format, known) {
        (ExportFormat::Csv, ValueShape::Clean) => row.extend_from_slice(value),
        (ExportFormat::Csv, _) => csv_field(row, value),
        (ExportFormat::Jsonl, ValueShape::Clean) => {
            row.push(b'"');
            row.extend_from_slice(value);
            row.push(b'"');
        }
        (ExportFormat::Jsonl, ValueShape::Utf8) => json::write_utf8(row, value),
        (ExportFormat::Jsonl, ValueShape::Nothing) => json::write_bytes(row, value),
    }
}

/// Exit status 0 when every record was exported, 1 when a file is corrupt or binary, a record
/// has the wrong column count or a last line is torn (everything else is still exported),
/// 2 on usage and I/O errors, and when TABLE.columns is needed but cannot be read or is
/// malformed (then nothing is exported: records under no names or wrong ones are no export).
pub fn run(args: &Args) -> ExitCode {
    let mut status = Status::default();
    let Some(chosen) = inputs::choose(&args.inputs, &args.selection, &mut status) else {
        return status.exit_code();
    };
    let names = match column_names(args, &chosen) {
        Ok(names) => names,
        Err(e) => {
            eprintln!("flatstore: {e}");
            return ExitCode::from(IO_ERROR);
        }
    };
    let window = TimeWindow::from(args.selection.records);
    let mut picker =
        window
            .is_set()
            .then(|| match window::time_column(&names.names, &names.source) {
                Ok(column) => Picker::new(window, column),
                Err(message) => usage(message),
            });
    let mut exporter = Exporter::new(args, &names);
    let header = exporter.header(&names);
    output::write_files(
        "export",
        &chosen.files,
        &header,
        &mut status,
        |content, out, status| export_file(&mut exporter, picker.as_mut(), content, out, status),
    )
}

fn export_file(
    exporter: &mut Exporter,
    mut picker: Option<&mut Picker>,
    content: &mut Content<'_>,
    out: &mut BufferedStdout,
    status: &mut Status,
) -> io::Result<()> {
    let mut torn = false;
    let mut skipped = 0u64;
    let mut first_skipped = 0;
    let read = lines::for_each_line(content, |line| {
        if !line.terminated {
            torn = true;
            return Ok(());
        }
        match exporter.record(line.bytes) {
            // The window is looked at only for a record of the right shape: one of another
            // shape is reported as such.
            Ok(_)
                if picker
                    .as_mut()
                    .is_some_and(|picker| !picker.wants(line.bytes, line.number)) =>
            {
                Ok(())
            }
            Ok(row) => out.write_all(row),
            Err(_) => {
                if skipped == 0 {
                    first_skipped = line.number;
                }
                skipped += 1;
                Ok(())
            }
        }
    });
    content::reported(read, status)?;
    if let Some(picker) = picker {
        picker.report(content.path(), status);
    }
    let path = content.path().display();
    if skipped > 0 {
        status.problem(format_args!(
            "{path}: {} not exported: the column count is not the {} of {} \
             (first: line {first_skipped})",
            records(skipped),
            exporter.expected.unwrap_or_default(),
            exporter.names_from
        ));
    }
    if torn {
        status.problem(format_args!(
            "{path}: the last line is torn (no newline at its end): not exported"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let mut out = Vec::new();
        for value in [&b"plain"[..], b"a,b", b"say \"hi\"", b"two\r\nlines", b""] {
            csv_field(&mut out, value);
            out.push(b';');
        }
        assert_eq!(
            out,
            b"plain;\"a,b\";\"say \"\"hi\"\"\";\"two\r\nlines\";;".as_slice()
        );
    }

    #[test]
    fn iso_times_only_for_decimal_seconds() {
        let mut times = IsoTimes::default();
        assert_eq!(times.render(b"1795392000"), Some("2026-11-23T00:00:00Z"));
        assert_eq!(times.render(b"1795392000"), Some("2026-11-23T00:00:00Z"));
        assert_eq!(times.render(b"0"), Some("1970-01-01T00:00:00Z"));
        assert_eq!(times.render(b""), None);
        assert_eq!(times.render(b"-5"), None);
        assert_eq!(times.render(b"12:00"), None);
        assert_eq!(times.render(b"99999999999999999999"), None);
    }
}
