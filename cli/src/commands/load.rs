//! `flatstore load`: a table's records into a PostgreSQL table, every record exactly once,
//! whatever happens between and during runs.
//!
//! Each file is one transaction: the advisory lock of the file, its ledger row, its new rows
//! streamed with `COPY … FROM STDIN`, its ledger row written, commit (see [`crate::db::ledger`]).
//! A record with a value the server refuses (its column type, a constraint) is set aside in
//! `flatstore_rejects` and the file sent again without it ([`crate::db::rejects`]). A file that
//! fails (a record of another column count, more than [`MAX_ASIDE`] records refused, a lost
//! connection) is rolled back whole and named on standard error; the other files are still
//! loaded.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flatstore::cdr::identity::Identity;
use flatstore::columns;
use postgres::error::SqlState;
use postgres::types::Type;
use postgres::{Client, Transaction};

use crate::consumed;
use crate::content::{self, Stop};
use crate::db::connect::{Database, reason};
use crate::db::copy::{self, Column, Rows};
use crate::db::ledger::{self, CREATE_LEDGER, Loaded};
use crate::db::rejects::{self, Reject};
use crate::db::sql::{self, TableName, ident};
use crate::error::CliError;
use crate::exit::{FileError, Status, records, usage};
use crate::inputs::{self, Named};
use crate::lines;
use crate::listing::{ListedFile, STDIN, Selection};
use crate::progress::Progress;

/// TABLE's records into a PostgreSQL table, each file exactly once.
///
/// Every row gets the loader's --source in a first column `source`, then the record's columns
/// by name (from --columns, else DIR/TABLE.columns). Fields are decoded as export decodes
/// them; an empty field is NULL; epoch seconds in a timestamptz (or timestamp) column become
/// times. Each file is one transaction with its row in the ledger table flatstore_ledger (in
/// the same database), which knows files by content: a file loaded before is not loaded again,
/// renamed or gzipped since; a live file loaded with --live is loaded on from where the last
/// run stopped. Killed at any moment, run twice at once, or run from two hosts on one
/// directory, the loaders leave every record in the table once.
///
/// Files may be given instead of DIR TABLE (FILE…, not -: a file is read twice, and known
/// again by content in later runs): all of one table by their names (acc_5.log.1), else give
/// --into; column names from --columns, else the TABLE.columns beside the first file named as
/// a table's log. Whole files are loaded: --since/--until (record times) are refused.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// DIR TABLE: the table's files in the log directory. Or FILE…: these files. A first
    /// argument that is a directory means DIR TABLE.
    #[arg(value_name = "DIR TABLE | FILE", required = true)]
    inputs: Vec<PathBuf>,
    /// The database: `postgresql://USER@HOST[:PORT]/DBNAME`, the host a name, an address or a
    /// socket directory (%2Fvar%2Frun%2Fpostgresql, or ?host=/var/run/postgresql). The
    /// password: in the URL, else PGPASSWORD, else ~/.pgpass (or PGPASSFILE), as libpq.
    #[arg(long, value_name = "URL")]
    db: String,
    /// Which proxy the files come from, written in every row's `source` column. Default: this
    /// host's name.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// The SQL table: NAME or SCHEMA.NAME, taken exactly as written (quoted). Default: TABLE
    /// (with files, the table their names say).
    #[arg(long, value_name = "SQLTABLE")]
    into: Option<String>,
    /// Create the SQL table when it does not exist: `source text NOT NULL`, then a column per
    /// name, text unless --types says otherwise, and `time` (Kamailio's acc) timestamptz.
    #[arg(long)]
    create: bool,
    /// Column types for --create: NAME=TYPE,... (sip_code=int,amount=numeric(10,2)).
    #[arg(long, value_name = "NAME=TYPE,…", requires = "create")]
    types: Vec<String>,
    /// Names of the columns, in order. Default: the names in DIR/TABLE.columns (the sidecar
    /// writers with header=1 keep; with files, the one beside the first named as a table's
    /// log).
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    columns: Vec<String>,
    #[command(flatten)]
    selection: Selection,
}

/// What `application_name` the server shows for a loader.
const APPLICATION: &str = "flatstore load";
/// Bytes of COPY data gathered before they are sent.
const CHUNK: usize = 64 * 1024;

/// What a run loads: the files, the table they are of (when known), where its column names
/// are.
struct Given {
    files: Vec<ListedFile>,
    table: Option<String>,
    sidecar: Option<PathBuf>,
}

/// The files `args` name: TABLE's selected files in DIR, or the files given. `None` when DIR
/// cannot be read or has no file of TABLE (reported).
fn given(args: &Args, status: &mut Status) -> Option<Given> {
    if args.selection.records.is_set() {
        usage(
            "--since/--until select records by their time; load loads whole files, each \
             exactly once (--modified-since/--modified-until choose a directory's files)",
        )
    }
    let named = match inputs::named(&args.inputs) {
        // Without a TABLE, `choose` says that one is needed.
        Named::Table { table, .. } => table,
        Named::Files(paths) => {
            if paths.iter().any(|p| p.as_os_str() == STDIN) {
                usage(
                    "- (standard input): load reads a file twice and knows it again by its \
                     content in later runs; give files or DIR TABLE",
                )
            }
            None
        }
    };
    let chosen = inputs::choose(&args.inputs, &args.selection, status)?;
    let table = named.or_else(|| the_only_table(&chosen.files));
    Some(Given {
        files: chosen.files,
        table,
        sidecar: chosen.sidecar,
    })
}

/// The table the files given are logs of (`None` when no name says); files of several
/// tables are a usage error.
fn the_only_table(files: &[ListedFile]) -> Option<String> {
    let mut tables: Vec<&[u8]> = Vec::new();
    for table in files.iter().filter_map(ListedFile::table) {
        if !tables.contains(&table) {
            tables.push(table);
        }
    }
    if tables.len() > 1 {
        let names: Vec<_> = tables.iter().map(|t| String::from_utf8_lossy(t)).collect();
        usage(format_args!(
            "files of several tables ({}): load one table at a time",
            names.join(", ")
        ))
    }
    tables
        .first()
        .map(|t| String::from_utf8_lossy(t).into_owned())
}

/// The column names, and where they were given (for reports).
fn column_names(args: &Args, sidecar: Option<&Path>) -> Result<(Vec<String>, String), CliError> {
    let (names, from) = if args.columns.is_empty() {
        let Some(path) = sidecar else {
            return Err(CliError::NoColumnNames);
        };
        match columns::read(path)? {
            Some(names) => (names, path.display().to_string()),
            None => {
                return Err(CliError::NoColumnsFile {
                    path: path.to_owned(),
                });
            }
        }
    } else {
        if let Err(what) = columns::check_names(&args.columns) {
            usage(format!("--columns: {what}"));
        }
        (args.columns.clone(), "--columns".to_owned())
    };
    if names.iter().any(|n| n == "source") {
        return Err(CliError::SourceColumn { names_from: from });
    }
    Ok((names, from))
}

/// `CREATE TABLE IF NOT EXISTS` for `names`: `source text NOT NULL` first; `types` where
/// given, `time` as timestamptz, text otherwise.
fn create_table(target: &TableName, names: &[String], types: &[(String, String)]) -> String {
    sql::create_table(
        target,
        names.iter().map(|name| {
            let ty = match types.iter().find(|(n, _)| n == name) {
                Some((_, ty)) => ty.as_str(),
                None if name == "time" => "timestamptz",
                None => "text",
            };
            (name.as_str(), ty)
        }),
    )
}

/// What a run loads into, and how.
struct LoadPlan {
    /// The SQL table as schema.table: the ledger's `tbl`, and for reports.
    table: String,
    /// `COPY … FROM STDIN` of the table's `source` and record columns.
    copy: String,
    rows: Rows,
    names_from: String,
    source: String,
}

/// Create the ledger (and with --create the table) when missing, find the table and its
/// column types. Errors are the run's (exit status 2).
fn prepare(
    client: &mut Client,
    db: &Database,
    args: &Args,
    table: Option<&str>,
    names: &[String],
    names_from: String,
    source: String,
) -> Result<LoadPlan, CliError> {
    let target = match &args.into {
        Some(into) => TableName::parse(into).unwrap_or_else(|e| usage(format!("--into: {e}"))),
        None => match table {
            Some(table) => TableName::plain(table),
            None => usage("no file given is named as a table's log: give --into SQLTABLE"),
        },
    };
    let types = sql::parse_types(&args.types).unwrap_or_else(|e| usage(format!("--types: {e}")));
    if let Some((name, _)) = types.iter().find(|(n, _)| !names.contains(n)) {
        usage(format!(
            "--types: {name:?} is not one of the columns ({names_from})"
        ));
    }
    let in_db = |e: postgres::Error| CliError::Database {
        database: db.described().to_owned(),
        reason: reason(&e),
    };
    // `schema.table` of a table that exists, else `None`.
    let resolve = |client: &mut Client, sql: &str| sql::resolve(client, sql).map_err(in_db);
    // Made only when missing (CREATE … IF NOT EXISTS needs the right to create even when the
    // table is there: a fleet's loader role has none).
    let mut statements = Vec::new();
    if resolve(client, "flatstore_ledger")?.is_none() {
        statements.push(CREATE_LEDGER.to_owned());
    }
    if args.create && resolve(client, &target.sql())?.is_none() {
        statements.push(create_table(&target, names, &types));
    }
    if !statements.is_empty() {
        let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
        ledger::create(client, &statements).map_err(in_db)?;
    }
    let Some(table) = resolve(client, &target.sql())? else {
        return Err(CliError::NoSqlTable {
            database: db.described().to_owned(),
            table: target.sql(),
        });
    };
    let columns = std::iter::once("source".to_owned())
        .chain(names.iter().cloned())
        .map(|n| ident(&n))
        .collect::<Vec<_>>()
        .join(", ");
    let select = client
        .prepare(&format!("SELECT {columns} FROM {} LIMIT 0", target.sql()))
        .map_err(|e| CliError::SqlTable {
            database: db.described().to_owned(),
            table: table.clone(),
            reason: reason(&e),
        })?;
    let kinds = select.columns()[1..]
        .iter()
        .map(|c| match *c.type_() {
            Type::TIMESTAMPTZ => Column::Time { zone: true },
            Type::TIMESTAMP => Column::Time { zone: false },
            _ => Column::Plain,
        })
        .collect();
    Ok(LoadPlan {
        copy: format!("COPY {} ({columns}) FROM STDIN", target.sql()),
        table,
        rows: Rows::new(source.as_bytes(), kinds),
        names_from,
        source,
    })
}

/// What became of a file.
enum LoadOutcome {
    /// Rows committed.
    Loaded(u64),
    /// Nothing new in it.
    Nothing,
    /// Nothing new, and loaded before under another `--source` (this one).
    LoadedUnder(String),
}

/// Why a file was not loaded (its transaction rolled back).
enum Failed {
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

/// At most this many records of a file are set aside; at the next the file is not loaded.
const MAX_ASIDE: usize = 100;

/// [`load_file`], and again without each record whose value the server refuses (up to
/// [`MAX_ASIDE`]), which is kept in the rejects table, created when first needed, and named
/// on standard error.
fn load_setting_aside(
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
fn report(status: &mut Status, plan: &LoadPlan, file: &ListedFile, failed: &Failed, skipped: u64) {
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

/// Exit status 0 when every selected file is in the table, 1 when a file was not loaded (or
/// not all of it: a torn last line) or is not a flatstore log, 2 on usage errors, when the
/// database cannot be reached or prepared, and when a file cannot be read.
pub fn run(args: &Args) -> ExitCode {
    let mut status = Status::default();
    if let Err(message) = load(args, &mut status) {
        status.io_error(message);
    }
    status.exit_code()
}

fn load(args: &Args, status: &mut Status) -> Result<(), CliError> {
    let Some(Given {
        files,
        table,
        sidecar,
    }) = given(args, status)
    else {
        return Ok(());
    };
    let (names, names_from) = column_names(args, sidecar.as_deref())?;
    let source = match &args.source {
        Some(source) if source.is_empty() => usage("--source: empty"),
        Some(source) => source.clone(),
        None => whoami::hostname().map_err(CliError::HostName)?,
    };
    let db = Database::from_url(&args.db, APPLICATION, |warning| {
        eprintln!("flatstore: WARNING: {warning}")
    })
    .map_err(|e| CliError::Option {
        option: "--db",
        source: Box::new(e),
    })?;
    let connect = |db: &Database| {
        db.connect().map_err(|e| CliError::Database {
            database: db.described().to_owned(),
            reason: reason(&e),
        })
    };
    let mut client = connect(&db)?;
    let mut plan = prepare(
        &mut client,
        &db,
        args,
        table.as_deref(),
        &names,
        names_from,
        source,
    )?;

    let progress = Progress::new("load", files.iter().map(|f| f.size).sum(), false);
    let mut out = io::stdout().lock();
    let mut others: Vec<String> = Vec::new();
    for (i, file) in files.iter().enumerate() {
        copy::take_stored_as_hex();
        match load_setting_aside(&mut client, &mut plan, file, &progress, status) {
            Ok(LoadOutcome::Loaded(n)) => {
                if let Err(e) = writeln!(out, "{}: {} loaded", file.file_name, records(n)) {
                    status.output_failed(&e);
                }
                if let Some(note) = copy::stored_as_hex_note(&file.path.display()) {
                    eprintln!("flatstore: {note}");
                }
            }
            Ok(LoadOutcome::Nothing) => {}
            Ok(LoadOutcome::LoadedUnder(source)) => {
                if !others.contains(&source) {
                    others.push(source);
                }
            }
            Err((failed, skipped)) => {
                report(status, &plan, file, &failed, skipped);
                if client.is_closed() {
                    client = connect(&db).map_err(|e| CliError::Reconnect {
                        source: Box::new(e),
                        untried: files.len() - i - 1,
                    })?;
                }
            }
        }
    }
    progress.finish();
    if let Err(e) = out.flush() {
        status.output_failed(&e);
    }
    if !others.is_empty() {
        eprintln!(
            "flatstore: some files were loaded into {} before under another --source ({}): \
             not loaded again. Give each proxy's files one --source, whichever host loads them.",
            plan.table,
            others.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_tables_have_source_first_and_time_as_timestamptz() {
        let names: Vec<String> = ["method", "sip_code", "time", "Src User"]
            .map(String::from)
            .to_vec();
        let sql = create_table(
            &TableName::parse("billing.acc").expect("name"),
            &names,
            &[("sip_code".into(), "int".into())],
        );
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS \"billing\".\"acc\" (source text NOT NULL, \
             \"method\" text, \"sip_code\" int, \"time\" timestamptz, \"Src User\" text)"
        );
    }
}
