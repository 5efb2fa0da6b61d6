//! Records the server refused (a value that is not of its column's type, a constraint the
//! row breaks), set aside so that the rest of their file loads: `load` sends the file again
//! without them and keeps each, with its raw line, in `flatstore_rejects`, in the same
//! transaction as the file's rows and ledger row (so exactly once as they are). `cdr --db`
//! keeps the CDRs the server refused the same way, in its run's transaction (see
//! [`super::stream`]): `record` is then the CDR's row as sent (COPY text), `file` and `line`
//! those of the record that made it (its INVITE; a lone BYE's own), or empty and 0 when that
//! record is not found again.
//!
//! ```sql
//! CREATE TABLE flatstore_rejects (
//!     tbl         text,        -- the SQL table the record was for, schema.table
//!     source      text,        -- the loader's --source
//!     file        text,        -- the file's name
//!     line        bigint,      -- the record's line in the file, from 1
//!     record      bytea,       -- the line as written (without its \n), exactly
//!     reason      text,        -- the server's message
//!     rejected_at timestamptz)
//! ```

use postgres::GenericClient;

/// At most this many records are set aside in one transaction (a file's for `load`, a run's
/// for `cdr --db`); at the next the transaction is rolled back whole: so many refusals mean a
/// table of the wrong types, not a bad value.
pub const MAX_ASIDE: usize = 100;

/// The rejects table, created the first time a record is set aside (in the first schema of
/// the search path, as the ledger).
pub const CREATE_REJECTS: &str = "CREATE TABLE IF NOT EXISTS flatstore_rejects (
    tbl text NOT NULL,
    source text NOT NULL,
    file text NOT NULL,
    line bigint NOT NULL,
    record bytea NOT NULL,
    reason text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now())";

/// A record set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Its line in the file, from 1.
    pub line: u64,
    /// Why the server refused it.
    pub reason: String,
    /// The line as written, once read again.
    pub record: Vec<u8>,
}

/// The row of the COPY (from 1) whose value the server refused, and why, when `e` is such a
/// refusal: a data exception (SQLSTATE class 22: a value not of its type, out of range, …) or
/// a broken constraint (class 23) during `COPY … FROM STDIN`.
pub fn refused(e: &postgres::Error) -> Option<(u64, String)> {
    let db = e.as_db_error()?;
    if !matches!(&db.code().code()[..2], "22" | "23") {
        return None;
    }
    let (row, column) = copy_place(db)?;
    let reason = match column {
        Some(column) => format!("{} ({column})", db.message()),
        None => db.message().to_owned(),
    };
    Some((row, reason))
}

/// The row of the COPY (from 1) that the error `e` arose at, whatever the error (a refusal, an
/// exception raised by a trigger).
pub fn copy_row(e: &postgres::Error) -> Option<u64> {
    copy_place(e.as_db_error()?).map(|(row, _)| row)
}

/// The row of the COPY and the rest of the place (`column time: "x"`) in `db`'s context:
/// "COPY acc, line 3, column time: "x"", on a line of its own (after a trigger's, say).
fn copy_place(db: &postgres::error::DbError) -> Option<(u64, Option<&str>)> {
    let place = db
        .where_()?
        .lines()
        .find_map(|line| line.strip_prefix("COPY "))?;
    let (_, after) = place.split_once(", line ")?;
    let digits = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    let row = after[..digits].parse().ok()?;
    Some((row, after[digits..].strip_prefix(", ")))
}

/// The line in the file of the COPY's row `row` (from 1), when the rows began with the file's
/// line `first` and the lines of `aside` (in order) sent no row.
pub fn file_line(first: u64, row: u64, aside: &[Reject]) -> u64 {
    let mut line = first + row - 1;
    for reject in aside {
        if reject.line <= line {
            line += 1;
        }
    }
    line
}

/// Whether the file's line `number` is one of `aside`; if so `line` is kept as its record.
pub fn set_aside(aside: &mut [Reject], number: u64, line: &[u8]) -> bool {
    match aside.iter_mut().find(|reject| reject.line == number) {
        Some(reject) => {
            reject.record = line.to_vec();
            true
        }
        None => false,
    }
}

/// Keep `rejects` of the file `file` (for the SQL table `table`, loaded under `source`).
pub fn insert(
    tx: &mut impl GenericClient,
    table: &str,
    source: &str,
    file: &str,
    rejects: &[Reject],
) -> Result<(), postgres::Error> {
    let insert = tx.prepare(
        "INSERT INTO flatstore_rejects (tbl, source, file, line, record, reason) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )?;
    for reject in rejects {
        let line = i64::try_from(reject.line).unwrap_or(i64::MAX);
        tx.execute(
            &insert,
            &[
                &table,
                &source,
                &file,
                &line,
                &reject.record,
                &reject.reason,
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_after_lines_set_aside_are_the_lines_after_them() {
        let aside = |lines: &[u64]| -> Vec<Reject> {
            lines
                .iter()
                .map(|&line| Reject {
                    line,
                    reason: String::new(),
                    record: Vec::new(),
                })
                .collect()
        };
        assert_eq!(file_line(1, 1, &[]), 1);
        assert_eq!(file_line(11, 3, &[]), 13);
        assert_eq!(file_line(1, 3, &aside(&[2])), 4);
        assert_eq!(file_line(1, 1, &aside(&[2])), 1);
        assert_eq!(file_line(1, 2, &aside(&[2, 3, 7])), 4);
        assert_eq!(file_line(5, 1, &aside(&[5])), 6);
    }
}
