//! The state of `flatstore cdr --db` runs, kept in the database next to the CDRs, so that a
//! run's CDRs and the state it leaves commit in one transaction.
//!
//! ```sql
//! CREATE TABLE flatstore_cdr_state (
//!     tbl        text,        -- the SQL table of the CDRs, schema.table
//!     source     text,        -- the --source of the runs
//!     state      bytea,       -- flatstore::cdr::state::save: the files read, the calls open
//!                             --   (STORAGE EXTERNAL: stored uncompressed)
//!     updated_at timestamptz,
//!     PRIMARY KEY (tbl, source))
//! ```
//!
//! A run is one transaction: it takes a transaction-level advisory lock of the SQL table (two
//! runs into one table wait for each other), reads its state row, reads and pairs what no
//! committed run read, copies the CDRs, writes the state row, and commits. A run killed at any
//! moment commits nothing; the server rolls it back when the connection drops.

use postgres::GenericClient;

use super::ledger::lock_key;

/// The state table, created when missing (in the first schema of the search path). Its
/// `state` is stored uncompressed (`STORAGE EXTERNAL`): a state is megabytes (the calls ended
/// in the last minutes are remembered), and the server's compression of it, at the end of
/// every run, took longer than storing it whole (0.2 s against none for 10 MB).
pub const CREATE_STATE: &str = "CREATE TABLE IF NOT EXISTS flatstore_cdr_state (
    tbl text NOT NULL,
    source text NOT NULL,
    state bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tbl, source));
ALTER TABLE flatstore_cdr_state ALTER COLUMN state SET STORAGE EXTERNAL";

/// Wait for, and take until the end of the transaction, the lock of the CDR table `table`
/// (schema.table).
pub fn lock(tx: &mut impl GenericClient, table: &str) -> Result<(), postgres::Error> {
    let key = lock_key(&[b"flatstore cdr", table.as_bytes()]);
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])?;
    Ok(())
}

/// The state the last committed run into `table` under `source` left; `None` before the first.
pub fn read(
    tx: &mut impl GenericClient,
    table: &str,
    source: &str,
) -> Result<Option<Vec<u8>>, postgres::Error> {
    let row = tx.query_opt(
        "SELECT state FROM flatstore_cdr_state WHERE tbl = $1 AND source = $2",
        &[&table, &source],
    )?;
    Ok(row.map(|row| row.get(0)))
}

/// The states of the runs into `table` under other sources than `source`, with their source.
pub fn others(
    tx: &mut impl GenericClient,
    table: &str,
    source: &str,
) -> Result<Vec<(String, Vec<u8>)>, postgres::Error> {
    let rows = tx.query(
        "SELECT source, state FROM flatstore_cdr_state WHERE tbl = $1 AND source <> $2",
        &[&table, &source],
    )?;
    Ok(rows
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// Write the state of this run (part of its transaction).
pub fn write(
    tx: &mut impl GenericClient,
    table: &str,
    source: &str,
    state: &[u8],
) -> Result<(), postgres::Error> {
    tx.execute(
        "INSERT INTO flatstore_cdr_state (tbl, source, state) VALUES ($1, $2, $3) \
         ON CONFLICT (tbl, source) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
        &[&table, &source, &state],
    )?;
    Ok(())
}
