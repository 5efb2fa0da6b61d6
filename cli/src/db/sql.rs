//! SQL text built from names an operator gives: identifiers always quoted, column types
//! checked to be type names and nothing else; and the tables found, and completed, by name.

use crate::db::connect::Database;
use crate::db::ledger;
use crate::error::CliError;

/// `name` as a quoted SQL identifier (`"name"`, a `"` doubled): taken exactly as written,
/// case and all.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table, optionally in a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// The schema; `None`: the first schema of the search path.
    pub schema: Option<String>,
    /// The table.
    pub name: String,
}

impl TableName {
    /// `--into`'s value: `table` or `schema.table`, each part exactly as written (quoted).
    pub fn parse(value: &str) -> Result<TableName, CliError> {
        let (schema, name) = match value.split_once('.') {
            Some((schema, name)) => (Some(schema.to_owned()), name.to_owned()),
            None => (None, value.to_owned()),
        };
        if name.is_empty() || schema.as_deref().is_some_and(str::is_empty) || name.contains('.') {
            return Err(CliError::NotAnSqlTable {
                value: value.to_owned(),
            });
        }
        if value.contains('\0') {
            return Err(CliError::NulByte {
                value: value.to_owned(),
            });
        }
        Ok(TableName { schema, name })
    }

    /// A table named exactly `name`, in the first schema of the search path.
    pub fn plain(name: &str) -> TableName {
        TableName {
            schema: None,
            name: name.to_owned(),
        }
    }

    /// The table in SQL, quoted.
    pub fn sql(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", ident(schema), ident(&self.name)),
            None => ident(&self.name),
        }
    }
}

/// `schema.table` of the table `sql` (a quoted name, see [`TableName::sql`]) when it exists.
pub fn resolve(
    client: &mut impl postgres::GenericClient,
    sql: &str,
) -> Result<Option<String>, postgres::Error> {
    let row = client.query_opt(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
        &[&sql],
    )?;
    Ok(row.map(|row| row.get(0)))
}

/// `CREATE TABLE IF NOT EXISTS` of `target` with `source text NOT NULL` first, then `columns`
/// (name, SQL type).
pub fn create_table<'a>(
    target: &TableName,
    columns: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} (source text NOT NULL",
        target.sql()
    );
    for (name, ty) in columns {
        sql.push_str(&format!(", {} {ty}", ident(name)));
    }
    sql.push(')');
    sql
}

/// Makes sure the existing table `target` (`schema.table` as resolved: `table`) has a column
/// for each of `columns` (name, SQL type). With `add` (--create), the missing ones are added
/// (`ALTER TABLE … ADD COLUMN IF NOT EXISTS`, under the schema lock) and named on standard
/// error; without, they are an error naming them. So a table made before the records had
/// their extra columns (a run before the first call, extras added to the proxy's config)
/// follows the records, and is never stuck refusing every run.
pub fn ensure_columns(
    client: &mut postgres::Client,
    database: &Database,
    target: &TableName,
    table: &str,
    columns: &[(&str, &str)],
    add: bool,
) -> Result<(), CliError> {
    let in_db = database.in_db();
    let present: Vec<String> = client
        .query(
            "SELECT attname::text FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
            &[&target.sql()],
        )
        .map_err(&in_db)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let missing: Vec<&(&str, &str)> = columns
        .iter()
        .filter(|(name, _)| !present.iter().any(|p| p == name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = missing.iter().map(|(name, _)| ident(name)).collect();
    if !add {
        return Err(CliError::MissingSqlColumns {
            database: database.described().to_owned(),
            table: table.to_owned(),
            columns: names,
        });
    }
    let additions: Vec<String> = missing
        .iter()
        .map(|(name, ty)| format!("ADD COLUMN IF NOT EXISTS {} {ty}", ident(name)))
        .collect();
    let alter = format!("ALTER TABLE {} {}", target.sql(), additions.join(", "));
    ledger::create(client, &[&alter]).map_err(&in_db)?;
    eprintln!(
        "flatstore: {table}: column{} {} added (--create): the records have {} since the table \
         was made",
        if names.len() == 1 { "" } else { "s" },
        names.join(", "),
        if names.len() == 1 { "it" } else { "them" },
    );
    Ok(())
}

/// `Err` unless `ty` reads as a type name: letters, digits, `_`, spaces, and the brackets,
/// commas and dots of `numeric(10,2)`, `varchar(64)`, `text[]` or `pg_catalog.int8`. The
/// server decides whether it is a type; this keeps anything but a type out of the statement.
pub fn check_type(ty: &str) -> Result<(), CliError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || " _(),[].".contains(c);
    if ty.trim().is_empty() || !ty.chars().all(allowed) {
        return Err(CliError::NotAnSqlType { ty: ty.to_owned() });
    }
    Ok(())
}

/// `--types name=type,...` (given once or more): pairs in order. Commas inside brackets belong
/// to the type (`amount=numeric(10,2)`).
pub fn parse_types(values: &[String]) -> Result<Vec<(String, String)>, CliError> {
    let mut pairs = Vec::new();
    for value in values {
        let mut depth = 0i32;
        let mut start = 0;
        let mut items = Vec::new();
        for (i, c) in value.char_indices() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&value[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&value[start..]);
        for item in items {
            let Some((name, ty)) = item.split_once('=') else {
                return Err(CliError::NotNameEqualsType {
                    item: item.to_owned(),
                });
            };
            let (name, ty) = (name.trim(), ty.trim());
            if name.is_empty() {
                return Err(CliError::NoColumnName {
                    item: item.to_owned(),
                });
            }
            check_type(ty)?;
            if pairs.iter().any(|(n, _): &(String, String)| n == name) {
                return Err(CliError::GivenTwice {
                    name: name.to_owned(),
                });
            }
            pairs.push((name.to_owned(), ty.to_owned()));
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_exactly_as_written() {
        assert_eq!(ident("acc"), "\"acc\"");
        assert_eq!(ident("Sip \"Code\""), "\"Sip \"\"Code\"\"\"");
        assert_eq!(TableName::parse("acc").expect("plain").sql(), "\"acc\"");
        assert_eq!(
            TableName::parse("billing.Acc").expect("qualified").sql(),
            "\"billing\".\"Acc\""
        );
        for bad in ["", ".acc", "billing.", "a.b.c"] {
            assert!(TableName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn types_split_at_the_commas_between_them() {
        let types = parse_types(&[
            "sip_code=int, amount=numeric(10,2)".into(),
            "tags=text[]".into(),
        ])
        .expect("types");
        assert_eq!(
            types,
            [
                ("sip_code".into(), "int".into()),
                ("amount".into(), "numeric(10,2)".into()),
                ("tags".into(), "text[]".into()),
            ]
        );
        for bad in [
            "sip_code",
            "=int",
            "a=int,a=text",
            "a=int; DROP TABLE acc",
            "a='x'",
            "a=",
        ] {
            assert!(parse_types(&[bad.into()]).is_err(), "{bad:?}");
        }
    }
}
