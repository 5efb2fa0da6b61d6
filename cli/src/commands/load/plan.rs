//! What a load goes into: the SQL table found (or with --create made), the ledger made when
//! missing, and the table's columns as the rows are sent to them.

use postgres::Client;
use postgres::types::Type;

use super::Args;
use crate::db::connect::{Database, reason};
use crate::db::copy::{Column, Rows};
use crate::db::ledger::{self, CREATE_LEDGER};
use crate::db::sql::{self, TableName, ident};
use crate::error::CliError;
use crate::exit::usage;

/// The SQL type `--create` gives column `name`: its --types entry where given, `time` as
/// timestamptz, text otherwise.
fn column_type<'a>(name: &str, types: &'a [(String, String)]) -> &'a str {
    match types.iter().find(|(n, _)| n == name) {
        Some((_, ty)) => ty.as_str(),
        None if name == "time" => "timestamptz",
        None => "text",
    }
}

/// `CREATE TABLE IF NOT EXISTS` for `names`: `source text NOT NULL` first, then each name
/// with its [`column_type`].
fn create_table(target: &TableName, names: &[String], types: &[(String, String)]) -> String {
    sql::create_table(
        target,
        names
            .iter()
            .map(|name| (name.as_str(), column_type(name, types))),
    )
}

/// What a run loads into, and how.
pub(super) struct LoadPlan {
    /// The SQL table as schema.table: the ledger's `tbl`, and for reports.
    pub(super) table: String,
    /// `COPY … FROM STDIN` of the table's `source` and record columns.
    pub(super) copy: String,
    pub(super) rows: Rows,
    pub(super) names_from: String,
    pub(super) source: String,
}

/// Create the ledger (and with --create the table) when missing, find the table and its
/// column types. Errors are the run's (exit status 2).
pub(super) fn prepare(
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
    let in_db = db.in_db();
    // `schema.table` of a table that exists, else `None`.
    let resolve = |client: &mut Client, sql: &str| sql::resolve(client, sql).map_err(&in_db);
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
        ledger::create(client, &statements).map_err(&in_db)?;
    }
    let Some(table) = resolve(client, &target.sql())? else {
        return Err(CliError::NoSqlTable {
            database: db.described().to_owned(),
            table: target.sql(),
        });
    };
    // A table made before the records had all their columns gets them with --create.
    if args.create {
        let typed: Vec<(&str, &str)> = names
            .iter()
            .map(|name| (name.as_str(), column_type(name, &types)))
            .collect();
        sql::ensure_columns(client, db, &target, &table, &typed, true)?;
    }
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
