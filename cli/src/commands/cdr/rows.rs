//! The text of CDRs in one row format: CSV, JSON Lines, or `COPY … FROM STDIN` rows.

use flatstore::cdr::{Cdr, CdrView, IsoWriter, Layout, Timestamp};

use super::Format;
use crate::csv::csv_field;
use crate::db::copy::escape;
use crate::json;

/// A row format, with what it needs to write a row.
enum RowFormat {
    /// RFC 4180, CRLF line ends, a header line of the column names.
    Csv { names: Vec<String> },
    /// One JSON object per line: each column's `"name":`, with the `,` before it from the
    /// second on.
    Jsonl { keys: Vec<Vec<u8>> },
    /// `COPY … FROM STDIN`'s text format (an empty value is NULL), each row led by `lead`
    /// (the `source` value, escaped, and a tab), with exactly `columns` values after it.
    Copy { lead: Vec<u8>, columns: usize },
}

/// CDRs as rows of text.
pub(super) struct CdrRows {
    format: RowFormat,
    iso: IsoWriter,
}

/// The column names of a table's CDRs.
fn column_names(layout: &Layout) -> Vec<String> {
    Cdr::header(layout)
        .into_iter()
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect()
}

impl CdrRows {
    /// Rows in `format` of CDRs made from a table with this `layout`.
    pub(super) fn new(format: Format, layout: &Layout) -> CdrRows {
        let names = column_names(layout);
        let format = match format {
            Format::Csv => RowFormat::Csv { names },
            Format::Jsonl => RowFormat::Jsonl {
                keys: names
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
                    .collect(),
            },
        };
        CdrRows {
            format,
            iso: IsoWriter::new(),
        }
    }

    /// Rows for `COPY … FROM STDIN` (text format), `source` first; an empty value is NULL.
    pub(super) fn copy(layout: &Layout, source: &str) -> CdrRows {
        let mut lead = Vec::new();
        escape(source.as_bytes(), &mut lead);
        lead.push(b'\t');
        CdrRows {
            format: RowFormat::Copy {
                lead,
                columns: column_names(layout).len(),
            },
            iso: IsoWriter::new(),
        }
    }

    /// The header line (CSV's column names; nothing in the other formats).
    pub(super) fn header(&self) -> Vec<u8> {
        let mut header = Vec::new();
        if let RowFormat::Csv { names } = &self.format {
            for (i, name) in names.iter().enumerate() {
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
    pub(super) fn write(&mut self, cdr: &CdrView<'_>, out: &mut Vec<u8>) {
        match &self.format {
            RowFormat::Csv { .. } => csv_row(&mut self.iso, cdr, out),
            RowFormat::Jsonl { keys } => jsonl_row(&mut self.iso, keys, cdr, out),
            RowFormat::Copy { lead, columns } => copy_row(&mut self.iso, lead, *columns, cdr, out),
        }
    }
}

fn csv_row(iso: &mut IsoWriter, cdr: &CdrView<'_>, out: &mut Vec<u8>) {
    for value in [cdr.callid, cdr.from_tag, cdr.to_tag] {
        csv_field(out, value);
        out.push(b',');
    }
    if let Some(start) = cdr.start {
        iso.write(&start, out);
    }
    out.push(b',');
    if let Some(end) = cdr.end {
        iso.write(&end, out);
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

fn jsonl_row(iso: &mut IsoWriter, keys: &[Vec<u8>], cdr: &CdrView<'_>, out: &mut Vec<u8>) {
    let mut keys = keys.iter();
    let mut key =
        |out: &mut Vec<u8>| -> bool { keys.next().map(|key| out.extend_from_slice(key)).is_some() };
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
    // Values without a column (a call carried from a run with more extra columns) are left
    // out.
    for extra in cdr.extras.clone() {
        if !key(out) {
            break;
        }
        json::write_bytes(out, extra);
    }
    out.extend_from_slice(b"}\n");
}

fn copy_row(
    iso: &mut IsoWriter,
    lead: &[u8],
    columns: usize,
    cdr: &CdrView<'_>,
    out: &mut Vec<u8>,
) {
    fn value(out: &mut Vec<u8>, value: &[u8]) {
        out.push(b'\t');
        escape_or_null(out, value);
    }
    out.extend_from_slice(lead);
    escape_or_null(out, cdr.callid);
    for v in [cdr.from_tag, cdr.to_tag] {
        value(out, v);
    }
    for time in [cdr.start, cdr.end] {
        out.push(b'\t');
        match time {
            Some(time) => iso.write(&time, out),
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
    for _ in 9..columns {
        value(out, extras.next().unwrap_or_default());
    }
    out.push(b'\n');
}

/// `value` in COPY's text format, NULL when empty.
fn escape_or_null(out: &mut Vec<u8>, value: &[u8]) {
    if value.is_empty() {
        out.extend_from_slice(b"\\N");
    } else {
        escape(value, out);
    }
}
