//! `flatstore load`: a table's records into a PostgreSQL table, every record exactly once,
//! whatever happens between and during runs.
//!
//! Each file is one transaction: the advisory lock of the file, its ledger row, its new rows
//! streamed with `COPY … FROM STDIN`, its ledger row written, commit (see [`crate::db::ledger`]).
//! A record with a value the server refuses (its column type, a constraint) is set aside in
//! `flatstore_rejects` and the file sent again without it ([`crate::db::rejects`]). A file that
//! fails (a record of another column count, more than [`crate::db::rejects::MAX_ASIDE`] records refused, a
//! lost connection) is rolled back whole and named on standard error; the other files are
//! still loaded.

mod file;
mod plan;

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flatstore::cdr::TimeWindow;
use flatstore::columns;

use self::file::{LoadOutcome, load_setting_aside, report};
use self::plan::prepare;
use crate::db::{self, connect::Database, copy};
use crate::error::CliError;
use crate::exit::{Status, records, usage};
use crate::inputs::{self, Named};
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
    if TimeWindow::from(args.selection.records).is_set() {
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
    let source = db::source(args.source.as_deref())?;
    let db = Database::from_db_option(&args.db, APPLICATION)?;
    let connect = |db: &Database| db.connect().map_err(db.in_db());
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
