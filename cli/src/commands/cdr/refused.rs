//! `cdr --db`: the CDRs the server refused (a value not of its column's type, a broken
//! constraint), set aside in `flatstore_rejects` in the run's transaction
//! ([`crate::db::stream`] finds them), each named on standard error by the file, line and
//! Call-ID of the record that made it.
//!
//! A CDR's record is found again in the run's files when one is refused: the INVITE that
//! started the call (an `unmatched_bye`'s BYE) with the CDR's Call-ID and tags, the first in
//! the order of the files. Nothing is kept per CDR while the run goes on; the files are read
//! again only when a CDR was refused. A record not found (its file gone, or standard input)
//! leaves the file empty and the line 0.

use std::collections::HashMap;
use std::path::PathBuf;

use flatstore::cdr::Layout;
use flatstore::line::fields::Fields;

use super::database::CdrTable;
use crate::content;
use crate::db::connect::reason;
use crate::db::copy::escape_uncounted;
use crate::db::rejects::MAX_ASIDE;
use crate::db::rejects::{self, Reject};
use crate::db::stream::{Aside, StreamError};
use crate::error::CliError;
use crate::exit::Status;
use crate::listing::ListedFile;
use crate::progress::Progress;

/// The run's tables, to find the record of a CDR in: each table's files with its layout.
pub(super) struct Origins<'a> {
    tables: Vec<(&'a [ListedFile], Layout)>,
}

/// Where a CDR's record is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    path: PathBuf,
    file_name: String,
    line: u64,
}

/// What a row says of its CDR: the COPY text of its Call-ID and tags, and whether it is an
/// `unmatched_bye` (made of a BYE).
struct Wanted<'r> {
    callid: &'r [u8],
    tags: [&'r [u8]; 2],
    bye: bool,
}

/// The columns of a CDR row: `source`, callid, from_tag, to_tag, start, end, duration,
/// sip_code, sip_reason, status, the extras.
fn wanted(row: &[u8]) -> Wanted<'_> {
    let mut fields = row.split(|&b| b == b'\t');
    let mut next = || fields.next().unwrap_or_default();
    next();
    let (callid, from, to) = (next(), next(), next());
    let status = row.split(|&b| b == b'\t').nth(9).unwrap_or_default();
    Wanted {
        callid,
        tags: [from, to],
        bye: status == b"unmatched_bye",
    }
}

/// `value` as a CDR row has it: COPY text, `\N` when empty.
fn as_copied(value: &[u8], out: &mut Vec<u8>) {
    out.clear();
    if value.is_empty() {
        out.extend_from_slice(b"\\N");
    } else {
        escape_uncounted(value, out);
    }
}

impl<'a> Origins<'a> {
    /// The main table's `main` files with their layout, and the missed-calls table's.
    pub(super) fn new(
        main: (&'a [ListedFile], Layout),
        missed: Option<(&'a [ListedFile], Layout)>,
    ) -> Self {
        Self {
            tables: std::iter::once(main).chain(missed).collect(),
        }
    }

    /// The record of each CDR row of `rows`, when found.
    fn find(&self, rows: &[&[u8]]) -> Vec<Option<Origin>> {
        let wanted: Vec<Wanted<'_>> = rows.iter().map(|row| wanted(row)).collect();
        let mut by_callid: HashMap<&[u8], Vec<usize>> = HashMap::new();
        for (i, want) in wanted.iter().enumerate() {
            by_callid.entry(want.callid).or_default().push(i);
        }
        let mut found: Vec<Option<Origin>> = vec![None; rows.len()];
        let mut left = rows.len();
        let quiet = Progress::new("cdr", 0, false);
        let (mut line, mut fields) = (Vec::new(), Fields::new());
        let (mut callid, mut from, mut to) = (Vec::new(), Vec::new(), Vec::new());
        for (files, layout) in &self.tables {
            for file in files.iter().filter(|f| !f.is_stdin()) {
                if left == 0 {
                    return found;
                }
                let Ok(mut content) = content::open(file, &quiet) else {
                    continue;
                };
                let mut number = 0;
                while let Ok(Some(_)) = content.next_line(&mut line) {
                    number += 1;
                    fields.decode_line(&line);
                    let Ok(record) = layout.view_fields(&fields) else {
                        continue;
                    };
                    as_copied(record.callid(), &mut callid);
                    let Some(candidates) = by_callid.get(callid.as_slice()) else {
                        continue;
                    };
                    as_copied(record.from_tag(), &mut from);
                    as_copied(record.to_tag(), &mut to);
                    let bye = match record.method() {
                        b"BYE" => true,
                        b"INVITE" => false,
                        _ => continue,
                    };
                    for &i in candidates {
                        let want = &wanted[i];
                        let tags = want.tags == [from.as_slice(), to.as_slice()]
                            || want.tags == [to.as_slice(), from.as_slice()];
                        if found[i].is_none() && want.bye == bye && tags {
                            found[i] = Some(Origin {
                                path: file.path.clone(),
                                file_name: file.file_name.clone(),
                                line: number,
                            });
                            left -= 1;
                        }
                    }
                }
            }
        }
        found
    }
}

/// How a refused CDR is named: its record's file and line, and its Call-ID.
fn named(aside: &Aside, origin: Option<&Origin>) -> String {
    let callid = String::from_utf8_lossy(wanted(&aside.bytes).callid).into_owned();
    match origin {
        Some(origin) => format!(
            "{} line {}: call \"{callid}\"",
            origin.path.display(),
            origin.line
        ),
        None => format!("call \"{callid}\" (its record not found in the run's files)"),
    }
}

/// Keeps the CDRs of `aside` in `flatstore_rejects` (created when missing, on a connection of
/// its own) in the run's transaction `tx`, and names each on standard error (raising `status`),
/// then their count.
pub(super) fn keep(
    tx: &mut postgres::Transaction<'_>,
    table: &CdrTable,
    aside: &[Aside],
    origins: &Origins<'_>,
    status: &mut Status,
) -> Result<(), CliError> {
    table.create_rejects()?;
    let rows: Vec<&[u8]> = aside.iter().map(|a| a.bytes.as_slice()).collect();
    let found = origins.find(&rows);
    for (aside, origin) in aside.iter().zip(&found) {
        let (file, line) = origin
            .as_ref()
            .map_or((String::new(), 0), |o| (o.file_name.clone(), o.line));
        let reject = Reject {
            line,
            reason: aside.reason.clone(),
            record: aside.bytes.clone(),
        };
        rejects::insert(tx, &table.name, &table.source, &file, &[reject]).map_err(table.in_db())?;
        status.problem(format_args!(
            "{}: {}: the CDR is set aside in flatstore_rejects (the run's other CDRs are \
             loaded)",
            named(aside, origin.as_ref()),
            aside.reason
        ));
    }
    let n = aside.len();
    eprintln!(
        "flatstore: {}: {n} CDR{} refused by the server, set aside in flatstore_rejects",
        table.name,
        if n == 1 { "" } else { "s" }
    );
    Ok(())
}

/// The error of a COPY that failed: nothing is committed.
pub(super) fn failed(table: &CdrTable, error: StreamError, origins: &Origins<'_>) -> CliError {
    let reason = match error {
        StreamError::Db(e) => format!("{}: nothing is committed", reason(&e)),
        StreamError::AtRow(row) => {
            let found = origins.find(&[row.bytes.as_slice()]);
            format!(
                "{}: {}: nothing is committed",
                named(&row, found[0].as_ref()),
                row.reason
            )
        }
        StreamError::Spool(e) => format!(
            "the server refused a CDR, and the rows sent could not be kept to send the others \
             again (the spool, in the system's temporary directory): {e}: nothing is committed"
        ),
        StreamError::Send(e) => format!("sending the CDRs: {e}: nothing is committed"),
        StreamError::TooMany(last) => {
            let found = origins.find(&[last.bytes.as_slice()]);
            format!(
                "more than {MAX_ASIDE} CDRs refused by the server, the last {}: {}: nothing \
                 is committed",
                named(&last, found[0].as_ref()),
                last.reason
            )
        }
        StreamError::Panicked => "the COPY thread failed".to_owned(),
        StreamError::Abandoned => "the run was given up".to_owned(),
    };
    table.error(reason)
}
