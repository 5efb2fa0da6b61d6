//! One file loaded in one transaction: its identity and ledger row, its new records sent with
//! `COPY`, the ledger row written, commit; or why it was not loaded, reported.

use std::io::{self, Write as _};

use flatstore::cdr::identity::Identity;
use postgres::error::SqlState;
use postgres::{Client, Transaction};

use super::plan::LoadPlan;
use crate::consumed;
use crate::content::{self, Stop};
use crate::db::connect::reason;
use crate::db::ledger::{self, Loaded};
use crate::db::rejects::{self, MAX_ASIDE, Reject};
use crate::exit::{FileError, Status};
use crate::lines;
use crate::listing::ListedFile;
use crate::progress::Progress;

/// Bytes of COPY data gathered before they are sent.
const CHUNK: usize = 64 * 1024;

/// What became of a file.
pub(super) enum LoadOutcome {
    /// Rows committed.
    Loaded(u64),
    /// Nothing new in it.
    Nothing,
    /// Nothing new, and loaded before under another `--source` (this one).
    LoadedUnder(String),
}

/// Why a file was not loaded (its transaction rolled back).
pub(super) enum Failed {
    /// The file could not be read, or not to its end.
    Read(FileError),
    /// A record of another column count.
    Columns { line: u64, count: usize },
    /// The database refused, or the connection failed.
    Db(postgres::Error),
    /// The file is shorter than what was loaded of it before.
    Shorter { loaded: u64 },
    /// Sending the rows failed for another reason than the database's.
    Write(String),
    /// The ledger row changed under this loader: another loader loaded the file meanwhile.
    Raced,
}

impl From<FileError> for Failed {
    fn from(e: FileError) -> Failed {
        Failed::Read(e)
    }
}

impl From<postgres::Error> for Failed {
    fn from(e: postgres::Error) -> Failed {
        Failed::Db(e)
    }
}

/// A failed COPY write: the database error inside it when there is one.
fn write_failed(e: io::Error) -> Failed {
    let text = e.to_string();
    match e
        .into_inner()
        .map(|inner| inner.downcast::<postgres::Error>())
    {
        Some(Ok(e)) => Failed::Db(*e),
        _ => Failed::Write(text),
    }
}

/// The file is gone since it was listed: renamed (logrotate, a seal) or compressed and
/// removed. The next run finds it under its new name, and the ledger knows it there.
fn vanished(e: &FileError) -> bool {
    matches!(e, FileError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
}

/// Load what is new in `file` in one transaction, but the lines of `aside` (in order), which
/// go to the rejects table instead (their records filled in).
fn load_file(
    client: &mut Client,
    plan: &mut LoadPlan,
    file: &ListedFile,
    progress: &Progress,
    status: &mut Status,
    aside: &mut [Reject],
) -> Result<LoadOutcome, (Failed, u64)> {
    // Its identity, from its first bytes (read apart: they do not count as progress).
    let quiet = Progress::new("load", 0, false);
    let mut head = match content::open(file, &quiet) {
        Ok(head) => head,
        Err(e) if vanished(&e) => return Ok(LoadOutcome::Nothing),
        Err(e) => return Err((e.into(), 0)),
    };
    let gzip = head.is_gzip();
    let prefix = consumed::prefix(&mut head).map_err(|e| (e.into(), 0))?;
    drop(head);
    let identity = Identity::of(&prefix);
    let Some(first_line) = identity.first_line() else {
        if !file.is_live() && file.size > 0 {
            status.problem(format_args!(
                "{}: the last line is torn (no newline at its end): not loaded",
                file.path.display()
            ));
        }
        return Ok(LoadOutcome::Nothing);
    };

    let mut tx = client.transaction().map_err(|e| (e.into(), 0))?;
    ledger::lock(&mut tx, &plan.table, first_line).map_err(|e| (e.into(), 0))?;
    let previous = ledger::find(&mut tx, &plan.table, &identity).map_err(|e| (e.into(), 0))?;
    let skip = previous.as_ref().map_or(0, |p| p.consumed);
    let unchanged = |previous: &Option<ledger::Entry>| match previous {
        Some(p) if p.source != plan.source => LoadOutcome::LoadedUnder(p.source.clone()),
        _ => LoadOutcome::Nothing,
    };
    if previous.is_some() && !gzip && skip >= file.size {
        return Ok(unchanged(&previous));
    }

    // Past what is loaded, to the first new line.
    let mut content = match content::open(file, progress) {
        Ok(content) => content,
        Err(e) if vanished(&e) => return Ok(LoadOutcome::Nothing),
        Err(e) => return Err((e.into(), 0)),
    };
    let mut line = Vec::new();
    let mut skipped = 0;
    while content.position() < skip {
        match content
            .next_line(&mut line)
            .map_err(|e| (e.into(), skipped))?
        {
            Some(true) => skipped += 1,
            _ => break,
        }
    }
    if content.position() != skip {
        return Err((Failed::Shorter { loaded: skip }, skipped));
    }
    let first = match content
        .next_line(&mut line)
        .map_err(|e| (e.into(), skipped))?
    {
        Some(true) => line,
        torn => {
            if torn.is_some() && !file.is_live() {
                status.problem(format_args!(
                    "{}: the last line is torn (no newline at its end): not loaded",
                    file.path.display()
                ));
            }
            return Ok(unchanged(&previous));
        }
    };

    let fail = |failed: Failed| (failed, skipped);
    let mut buf = Vec::with_capacity(CHUNK + 64 * 1024);
    let mut loaded = 0u64;
    if !rejects::set_aside(aside, skipped + 1, &first) {
        plan.rows.push(&first, &mut buf).map_err(|count| {
            fail(Failed::Columns {
                line: skipped + 1,
                count,
            })
        })?;
        loaded += 1;
    }
    let mut end = skip + first.len() as u64 + 1;
    let mut torn = false;
    let mut writer = tx.copy_in(&plan.copy).map_err(|e| fail(e.into()))?;
    let rows = &mut plan.rows;
    let read = lines::for_each_line(&mut content, |line| {
        if !line.terminated {
            torn = true;
            return Ok(());
        }
        end += line.bytes.len() as u64 + 1;
        if rejects::set_aside(aside, skipped + 1 + line.number, line.bytes) {
            return Ok(());
        }
        rows.push(line.bytes, &mut buf)
            .map_err(|count| Failed::Columns {
                line: skipped + 1 + line.number,
                count,
            })?;
        loaded += 1;
        if buf.len() >= CHUNK {
            writer.write_all(&buf).map_err(write_failed)?;
            buf.clear();
        }
        Ok(())
    });
    match read {
        Ok(()) => {}
        Err(Stop::Read(e)) => return Err(fail(e.into())),
        Err(Stop::Sink(failed)) => return Err(fail(failed)),
    }
    writer.write_all(&buf).map_err(|e| fail(write_failed(e)))?;
    let copied = writer.finish().map_err(|e| fail(e.into()))?;
    debug_assert_eq!(copied, loaded);
    let name = file.file_name.as_str();
    if !aside.is_empty() {
        rejects::insert(&mut tx, &plan.table, &plan.source, name, aside)
            .map_err(|e| fail(e.into()))?;
    }
    let recorded = ledger::record(
        &mut tx,
        &identity,
        previous.as_ref(),
        &Loaded {
            table: &plan.table,
            end,
            records: loaded,
            source: &plan.source,
            file: name,
        },
    );
    match recorded {
        Ok(true) => {}
        Ok(false) => return Err(fail(Failed::Raced)),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(fail(Failed::Raced));
        }
        Err(e) => return Err(fail(e.into())),
    }
    commit(tx).map_err(|e| fail(e.into()))?;
    if torn && !file.is_live() {
        status.problem(format_args!(
            "{}: the last line is torn (no newline at its end): not loaded",
            file.path.display()
        ));
    }
    Ok(LoadOutcome::Loaded(loaded))
}

/// [`load_file`], and again without each record whose value the server refuses (up to
/// [`MAX_ASIDE`]), which is kept in the rejects table, created when first needed, and named
/// on standard error.
pub(super) fn load_setting_aside(
    client: &mut Client,
    plan: &mut LoadPlan,
    file: &ListedFile,
    progress: &Progress,
    status: &mut Status,
) -> Result<LoadOutcome, (Failed, u64)> {
    let mut aside: Vec<Reject> = Vec::new();
    loop {
        match load_file(client, plan, file, progress, status, &mut aside) {
            Err((Failed::Db(e), skipped)) if aside.len() < MAX_ASIDE && !client.is_closed() => {
                let Some((row, reason)) = rejects::refused(&e) else {
                    return Err((Failed::Db(e), skipped));
                };
                let line = rejects::file_line(skipped + 1, row, &aside);
                if aside.iter().any(|reject| reject.line == line) {
                    return Err((Failed::Db(e), skipped));
                }
                if aside.is_empty() {
                    ledger::create(client, &[rejects::CREATE_REJECTS])
                        .map_err(|e| (Failed::Db(e), skipped))?;
                }
                let at = aside.partition_point(|reject| reject.line < line);
                let record = Vec::new();
                aside.insert(
                    at,
                    Reject {
                        line,
                        reason,
                        record,
                    },
                );
            }
            done => {
                if done.is_ok() {
                    for reject in &aside {
                        status.problem(format_args!(
                            "{} line {}: {}: set aside in flatstore_rejects (the rest of the \
                             file is loaded)",
                            file.path.display(),
                            reject.line,
                            reject.reason
                        ));
                    }
                }
                return done;
            }
        }
    }
}

fn commit(tx: Transaction<'_>) -> Result<(), postgres::Error> {
    tx.commit()
}

/// Report a file that was not loaded.
pub(super) fn report(
    status: &mut Status,
    plan: &LoadPlan,
    file: &ListedFile,
    failed: &Failed,
    skipped: u64,
) {
    let path = file.path.display();
    let lines_from = if skipped > 0 {
        format!(
            " (COPY's lines count from line {} of the file: the lines before were loaded by an \
             earlier run)",
            skipped + 1
        )
    } else {
        String::new()
    };
    match failed {
        Failed::Read(e) => {
            eprintln!("flatstore: {e}: the file is not loaded (rolled back)");
            status.raise(e.exit_status());
        }
        Failed::Columns { line, count } => status.problem(format_args!(
            "{path} line {line}: {count} columns, not the {} of {}: the file is not loaded \
             (rolled back)",
            plan.rows.width(),
            plan.names_from
        )),
        Failed::Db(e) => status.problem(format_args!(
            "{path}: {}{lines_from}: the file is not loaded (rolled back)",
            reason(e)
        )),
        Failed::Write(what) => status.problem(format_args!(
            "{path}: sending its rows: {what}: the file is not loaded (rolled back)"
        )),
        Failed::Shorter { loaded } => status.problem(format_args!(
            "{path}: shorter than the {loaded} bytes of it loaded before: not loaded (a log \
             file only grows; was it replaced?)"
        )),
        Failed::Raced => status.problem(format_args!(
            "{path}: loaded by another loader at the same moment: this load is rolled back"
        )),
    }
}
