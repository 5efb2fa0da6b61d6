//! What refuses a value given on the command line, or stops a command: one enum, each variant
//! with the message the user reads (clap shows a refused value's; a command prints its own
//! after `flatstore: `). What went wrong with one file among many is [`crate::exit::FileError`].

use std::io;
use std::path::PathBuf;

use flatstore::cdr::state::StateError;
use flatstore::cdr::{LayoutError, RunError};
use flatstore::columns;

use crate::db::tls::TlsError;
use crate::exit::FileError;

/// What refuses a value or stops a command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Not a time of `--modified-since`/`--modified-until`.
    #[error(
        "{value:?} is not a time: give 2026-11-23, 2026-11-23T10:00:00, \
         2026-11-23T10:00:00+01:00 or @SECONDS (UTC unless an offset is given)"
    )]
    NotATime {
        /// As given.
        value: String,
    },
    /// Not a time of `--since`/`--until`.
    #[error(
        "{value:?} is not a time: give 2026-11-23, 2026-11-23T10:00:00, \
         2026-11-23 10:00:00.250, 2026-11-23T10:00:00+01:00 or @SECONDS[.fff] (UTC unless \
         an offset is given)"
    )]
    NotARecordTime {
        /// As given.
        value: String,
    },
    /// Not a number of seconds.
    #[error("{value:?}: not seconds")]
    NotSeconds {
        /// As given.
        value: String,
    },
    /// Not a table name a writer would accept.
    #[error("{0}")]
    TableName(flatstore::Error),
    /// A TLS setting refused (its message names the setting: `sslmode`, a certificate file).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Not an SQL table name.
    #[error("{value:?} is no table name: give TABLE or SCHEMA.TABLE")]
    NotAnSqlTable {
        /// As given.
        value: String,
    },
    /// A NUL byte, which no SQL name holds.
    #[error("{value:?}: a NUL byte")]
    NulByte {
        /// As given.
        value: String,
    },
    /// Not an SQL type name.
    #[error("{ty:?} is no SQL type name")]
    NotAnSqlType {
        /// As given.
        ty: String,
    },
    /// A `--types` item without `=`.
    #[error("{item:?}: give NAME=TYPE")]
    NotNameEqualsType {
        /// As given.
        item: String,
    },
    /// A `--types` item without a column name.
    #[error("{item:?}: the column name is empty")]
    NoColumnName {
        /// As given.
        item: String,
    },
    /// A column given twice.
    #[error("{name:?} is given twice")]
    GivenTwice {
        /// The column.
        name: String,
    },
    /// `--since`/`--until` with column names none of which is the time column.
    #[error(transparent)]
    NoTimeColumn(#[from] NoTimeColumn),
    /// A table's `<table>.columns` cannot be read, or is malformed.
    #[error(transparent)]
    Columns(#[from] columns::ReadError),
    /// `load` without column names.
    #[error(
        "no file given is named as a table's log, and no --columns: the loader needs the \
         column names"
    )]
    NoColumnNames,
    /// `load` without column names: the table has no `<table>.columns`.
    #[error(
        "{}: no such file, and no --columns: the loader needs the column names (write them \
         with header=1, or give --columns)",
        path.display()
    )]
    NoColumnsFile {
        /// The missing `<table>.columns`.
        path: PathBuf,
    },
    /// `load`'s column names include `source`, the column it fills itself.
    #[error("{names_from} names a column \"source\": the loader fills that column with --source")]
    SourceColumn {
        /// Where the names came from.
        names_from: String,
    },
    /// This host's name, for `--source`, is unknown.
    #[error("this host's name (for --source): {0}; give --source")]
    HostName(whoami::Error),
    /// The system user's name, the database user by default, is unknown.
    #[error("the system user's name: {0}")]
    UserName(whoami::Error),
    /// `--db` is no PostgreSQL URL.
    #[error("give a URL postgresql://USER@HOST[:PORT]/DBNAME")]
    NotAUrl,
    /// `--db` does not parse (the message names the option at fault, never a value).
    #[error(transparent)]
    Url(postgres::Error),
    /// The password file cannot be read.
    #[error("{}: {source}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// What is wrong with the value of an option.
    #[error("{option}: {source}")]
    Option {
        /// The option, e.g. `--db`.
        option: &'static str,
        /// What is wrong.
        source: Box<CliError>,
    },
    /// The database refused or failed.
    #[error("{database}: {reason}")]
    Database {
        /// `user@host:port/dbname`.
        database: String,
        /// What the server or the connection said.
        reason: String,
    },
    /// The database has no such table.
    #[error("{database}: no table {table}: create it, or give --create")]
    NoSqlTable {
        /// `user@host:port/dbname`.
        database: String,
        /// The table, quoted.
        table: String,
    },
    /// The table lacks columns the records have (extra columns added to the log since the
    /// table was made).
    #[error(
        "{database}: table {table} has no column {}: add them, or give --create to have them \
         added as text",
        .columns.join(", ")
    )]
    MissingSqlColumns {
        /// `user@host:port/dbname`.
        database: String,
        /// `schema.table`.
        table: String,
        /// The missing columns, quoted as SQL names.
        columns: Vec<String>,
    },
    /// The database refused to read the table's columns.
    #[error("{database}: table {table}: {reason}")]
    SqlTable {
        /// `user@host:port/dbname`.
        database: String,
        /// `schema.table`.
        table: String,
        /// What the server said.
        reason: String,
    },
    /// The connection was lost and could not be made again.
    #[error(
        "{source}: the connection was lost and cannot be made again; {} not tried",
        more_files(*untried)
    )]
    Reconnect {
        /// Why it could not be made.
        source: Box<CliError>,
        /// The files left.
        untried: usize,
    },
    /// Not a directory.
    #[error("{}: not a directory", dir.display())]
    NotADirectory {
        /// As given.
        dir: PathBuf,
    },
    /// `rotate` of a directory no writer ever opened.
    #[error(
        "{}: no flatstore writer has ever opened this directory (it has no {}): a typo? \
         Nothing was rotated. (--unopened-ok accepts a directory with no writers yet.)",
        dir.display(),
        flatstore::names::CONTROL_FILE
    )]
    NeverOpened {
        /// The directory.
        dir: PathBuf,
    },
    /// A file could not be listed, opened or read.
    #[error(transparent)]
    File(#[from] FileError),
    /// Writing or reading failed (the message names no file: standard output, or a file the
    /// message of its own names).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A file could not be written, synced or renamed.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A state an earlier run saved cannot be restored.
    #[error("{whose}: {source}")]
    State {
        /// Where it was kept: the file, or `flatstore_cdr_state` (of --source X).
        whose: String,
        /// What is wrong with it.
        source: StateError,
    },
    /// A table's column names make no layout.
    #[error("the columns of table {table:?} ({whose}): {source}")]
    Layout {
        /// The table.
        table: String,
        /// Where the names came from.
        whose: String,
        /// What is wrong with them.
        source: LayoutError,
    },
    /// `cdr --db` with an extra column named `source`, the column it fills itself.
    #[error("an extra column is named \"source\": --db fills that column with --source")]
    ExtraSourceColumn,
    /// `cdr` with a file given that cannot be examined: the run stops before it begins.
    #[error("a file given cannot be examined: nothing accounted")]
    GivenFileUnexaminable,
    /// The accounting run failed.
    #[error(transparent)]
    Run(#[from] RunError<io::Error>),
    /// The library failed.
    #[error(transparent)]
    Library(#[from] flatstore::Error),
}

/// "1 more file", "2 more files".
fn more_files(n: usize) -> String {
    match n {
        1 => "1 more file".to_owned(),
        n => format!("{n} more files"),
    }
}

/// `--since`/`--until` with column names none of which is the time column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--since/--until: no column named {column:?} among the column names from {names_from}")]
pub struct NoTimeColumn {
    /// The time column's name.
    pub column: &'static str,
    /// Where the names came from.
    pub names_from: String,
}
