//! `cdr --db`: the PostgreSQL table the CDRs go into, and the state of the runs kept beside it
//! (flatstore_cdr_state).

use flatstore::cdr::{Cdr, Layout};

use super::Args;
use crate::db;
use crate::db::cdrstate::{self, CREATE_STATE};
use crate::db::connect::Database;
use crate::db::sql::{self, TableName, ident};
use crate::db::{ledger, rejects};
use crate::error::CliError;
use crate::exit::usage;

/// What `application_name` the server shows for a run.
const APPLICATION: &str = "flatstore cdr";

/// The database of `--db`, connected, and its CDR table.
pub(super) struct CdrDatabase {
    client: postgres::Client,
    table: CdrTable,
}

/// Where a --db run's CDRs go.
pub(super) struct CdrTable {
    database: Database,
    /// The SQL table, schema.table: the state's key, and for reports.
    pub(super) name: String,
    /// `COPY … FROM STDIN` of its columns.
    pub(super) copy: String,
    /// The `source` column's value (--source).
    pub(super) source: String,
}

/// What the runs into the table committed last, read inside the run's transaction.
pub(super) struct CommittedStates {
    /// This source's state; `None` before its first run.
    pub(super) own: Option<Vec<u8>>,
    /// The other sources' states, with their source.
    pub(super) others: Vec<(String, Vec<u8>)>,
}

impl CdrDatabase {
    /// Connects to `url`, creates the state table (and with --create the CDR table) when
    /// missing, and finds the CDR table. Errors are the run's (exit status 2).
    pub(super) fn open(url: &str, args: &Args, layout: &Layout) -> Result<Self, CliError> {
        let database = Database::from_db_option(url, APPLICATION)?;
        let mut client = database.connect().map_err(database.in_db())?;
        let table = prepare(&mut client, database, args, layout)?;
        Ok(Self { client, table })
    }

    /// The table the CDRs go into.
    pub(super) fn table(&self) -> &CdrTable {
        &self.table
    }

    /// The run's transaction, under the lock of the SQL table, with the states as the last
    /// committed runs left them.
    pub(super) fn begin(
        &mut self,
    ) -> Result<(postgres::Transaction<'_>, &CdrTable, CommittedStates), CliError> {
        let table = &self.table;
        let in_db = table.in_db();
        let mut tx = self.client.transaction().map_err(&in_db)?;
        cdrstate::lock(&mut tx, &table.name).map_err(&in_db)?;
        let own = cdrstate::read(&mut tx, &table.name, &table.source).map_err(&in_db)?;
        let others = cdrstate::others(&mut tx, &table.name, &table.source).map_err(&in_db)?;
        Ok((tx, table, CommittedStates { own, others }))
    }
}

impl CdrTable {
    /// A database error as the run reports it.
    pub(super) fn in_db(&self) -> impl Fn(postgres::Error) -> CliError + '_ {
        self.database.in_db()
    }

    /// An error of the run's about the database, for `reason`.
    pub(super) fn error(&self, reason: String) -> CliError {
        CliError::Database {
            database: self.database.described().to_owned(),
            reason,
        }
    }

    /// Creates `flatstore_rejects` when missing, on a connection of its own (the run's is in
    /// its transaction, which holds the CDR table's lock till its end).
    pub(super) fn create_rejects(&self) -> Result<(), CliError> {
        let in_db = self.in_db();
        let mut client = self.database.connect().map_err(&in_db)?;
        ledger::create(&mut client, &[rejects::CREATE_REJECTS]).map_err(&in_db)
    }
}

/// The SQL types of the CDR columns that `--create` makes (the extras are text).
fn cdr_type(column: usize) -> &'static str {
    match column {
        3 | 4 => "timestamptz",
        5 => "numeric",
        _ => "text",
    }
}

/// Create the state table (and with --create the CDR table) when missing, and find the CDR
/// table.
fn prepare(
    client: &mut postgres::Client,
    database: Database,
    args: &Args,
    layout: &Layout,
) -> Result<CdrTable, CliError> {
    let target = TableName::parse(&args.into).unwrap_or_else(|e| usage(format!("--into: {e}")));
    let source = db::source(args.source.as_deref())?;
    let names: Vec<String> = Cdr::header(layout)
        .into_iter()
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    if names.iter().any(|n| n == "source") {
        return Err(CliError::ExtraSourceColumn);
    }
    let in_db = database.in_db();
    let mut statements = Vec::new();
    if sql::resolve(client, "flatstore_cdr_state")
        .map_err(&in_db)?
        .is_none()
    {
        statements.push(CREATE_STATE.to_owned());
    }
    if args.create
        && sql::resolve(client, &target.sql())
            .map_err(&in_db)?
            .is_none()
    {
        statements.push(sql::create_table(
            &target,
            names
                .iter()
                .enumerate()
                .map(|(i, name)| (name.as_str(), cdr_type(i))),
        ));
    }
    if !statements.is_empty() {
        let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
        ledger::create(client, &statements).map_err(&in_db)?;
    }
    let Some(name) = sql::resolve(client, &target.sql()).map_err(&in_db)? else {
        return Err(CliError::NoSqlTable {
            database: database.described().to_owned(),
            table: target.sql(),
        });
    };
    // The table takes the database: the borrow of it for errors ends here.
    drop(in_db);
    let typed: Vec<(&str, &str)> = std::iter::once(("source", "text"))
        .chain(
            names
                .iter()
                .enumerate()
                .map(|(i, name)| (name.as_str(), cdr_type(i))),
        )
        .collect();
    sql::ensure_columns(client, &database, &target, &name, &typed, args.create)?;
    let columns = std::iter::once("source".to_owned())
        .chain(names)
        .map(|n| ident(&n))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(CdrTable {
        database,
        name,
        copy: format!("COPY {} ({columns}) FROM STDIN", target.sql()),
        source,
    })
}
