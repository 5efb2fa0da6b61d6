//! The ledger: which files are in which SQL table, and how much of each, kept in the same
//! database as the rows, so that a file's rows and its ledger row commit in one transaction.
//!
//! ```sql
//! CREATE TABLE flatstore_ledger (
//!     tbl            text,        -- the SQL table the rows went into, schema.table
//!     content_id     text,        -- FNV-1a-128 (hex) of the file's first hashed_bytes bytes
//!     hashed_bytes   bigint,      -- of content, decompressed: min(4096, consumed_bytes)
//!     consumed_bytes bigint,      -- the end of the last whole line loaded
//!     records        bigint,      -- rows loaded from the file, all runs together
//!     source         text,        -- the --source of the loader that first loaded it
//!     file           text,        -- its name when it was last loaded, for people
//!     loaded_at      timestamptz,
//!     PRIMARY KEY (tbl, content_id))
//! ```
//!
//! **Files are known by content,** as `cdr --state` knows them
//! ([`flatstore::cdr::identity`]): the hash of their first bytes, so a file renamed or gzipped since is the same file, and a live file
//! that grew is loaded on from `consumed_bytes`. The key holds no source: a file is loaded
//! into a table once, whichever loader (under whatever `--source`) gets to it first.
//!
//! **Two loaders never both load a file.** Each file is one transaction that first takes a
//! transaction-level advisory lock keyed on the SQL table and the file's first line (which
//! never changes once written, unlike the hashed prefix of a file that is still growing), then
//! reads the ledger, copies the rows, and writes the ledger row. A second loader of the same
//! file waits on the lock, and then reads the first one's committed ledger row (the lock is
//! released after the commit is visible) and loads nothing, or only what was appended since.
//! The primary key is the second guard: a ledger row inserted twice rolls the second
//! transaction back whole. A loader killed at any moment leaves its transaction uncommitted:
//! the server rolls it back when the connection drops, and the next run loads the file.
//!
//! The functions take any [`GenericClient`]. (`cdr --db` keeps the files it read inside its
//! state instead, see [`super::cdrstate`], committed with its CDRs and its open calls.)

use flatstore::cdr::hash::content_id;
use flatstore::cdr::identity::Identity;
use postgres::GenericClient;

/// The ledger, created when missing (in the first schema of the search path).
pub const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS flatstore_ledger (
    tbl text NOT NULL,
    content_id text NOT NULL,
    hashed_bytes bigint NOT NULL,
    consumed_bytes bigint NOT NULL,
    records bigint NOT NULL,
    source text NOT NULL,
    file text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tbl, content_id))";

/// A 64-bit advisory lock key for `parts` (their FNV-1a-128 hash, first 8 bytes).
pub fn lock_key(parts: &[&[u8]]) -> i64 {
    let mut bytes = Vec::new();
    for part in parts {
        bytes.extend_from_slice(part);
        bytes.push(0);
    }
    let id = content_id(&bytes).0;
    i64::from_be_bytes(id[..8].try_into().unwrap_or_default())
}

/// Run `statements` (`CREATE … IF NOT EXISTS`, which is not safe against itself run at the
/// same moment) in one transaction, under an advisory lock all loaders share.
pub fn create(client: &mut postgres::Client, statements: &[&str]) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&lock_key(&[b"flatstore schema"])],
    )?;
    for statement in statements {
        tx.batch_execute(statement)?;
    }
    tx.commit()
}

/// Wait for, and take until the end of the transaction, the lock of the file whose first line
/// is `first_line` ([`Identity::first_line`]) in the SQL table `table` (schema.table).
pub fn lock(
    tx: &mut impl GenericClient,
    table: &str,
    first_line: &[u8],
) -> Result<(), postgres::Error> {
    let key = lock_key(&[b"flatstore file", table.as_bytes(), first_line]);
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])?;
    Ok(())
}

/// What the ledger knows of a file.
#[derive(Debug, Clone)]
pub struct Entry {
    content_id: String,
    /// Content bytes already in the table: the end of the last whole line loaded.
    pub consumed: u64,
    /// The `--source` it was first loaded under.
    pub source: String,
}

/// The ledger row of this file in `table`, if it was loaded before (take the [`lock`]
/// first).
pub fn find(
    tx: &mut impl GenericClient,
    table: &str,
    identity: &Identity<'_>,
) -> Result<Option<Entry>, postgres::Error> {
    let candidates: Vec<String> = identity.candidates().map(|id| id.to_string()).collect();
    let row = tx.query_opt(
        "SELECT content_id, consumed_bytes, source FROM flatstore_ledger \
         WHERE tbl = $1 AND content_id = ANY($2) ORDER BY consumed_bytes DESC LIMIT 1",
        &[&table, &candidates],
    )?;
    Ok(row.map(|row| Entry {
        content_id: row.get(0),
        consumed: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
        source: row.get(2),
    }))
}

/// A load to record.
#[derive(Debug)]
pub struct Loaded<'a> {
    /// The SQL table, schema.table.
    pub table: &'a str,
    /// Content bytes consumed: the end of the last whole line loaded.
    pub end: u64,
    /// Rows loaded by this run.
    pub records: u64,
    /// The loader's `--source`.
    pub source: &'a str,
    /// The file's name now.
    pub file: &'a str,
}

/// Record that the file is in the table up to `loaded.end`, replacing `previous` (what
/// [`find`] gave). Part of the transaction that loaded the rows. `Ok(false)` when the ledger
/// row is no longer what [`find`] gave (another loader, not holding the lock, got there
/// first): roll back. A row inserted by another loader meanwhile fails with a unique
/// violation: roll back too.
pub fn record(
    tx: &mut impl GenericClient,
    identity: &Identity<'_>,
    previous: Option<&Entry>,
    loaded: &Loaded<'_>,
) -> Result<bool, postgres::Error> {
    let consumed = identity.consumed(loaded.end);
    let id = consumed.content_id.to_string();
    let hashed = i64::try_from(consumed.hashed_bytes).unwrap_or(i64::MAX);
    let end = i64::try_from(loaded.end).unwrap_or(i64::MAX);
    let records = i64::try_from(loaded.records).unwrap_or(i64::MAX);
    let changed = match previous {
        Some(previous) => tx.execute(
            "UPDATE flatstore_ledger SET content_id = $3, hashed_bytes = $4, \
             consumed_bytes = $5, records = records + $6, file = $7, loaded_at = now() \
             WHERE tbl = $1 AND content_id = $2 AND consumed_bytes = $8",
            &[
                &loaded.table,
                &previous.content_id,
                &id,
                &hashed,
                &end,
                &records,
                &loaded.file,
                &i64::try_from(previous.consumed).unwrap_or(i64::MAX),
            ],
        )?,
        None => tx.execute(
            "INSERT INTO flatstore_ledger \
             (tbl, content_id, hashed_bytes, consumed_bytes, records, source, file) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &loaded.table,
                &id,
                &hashed,
                &end,
                &records,
                &loaded.source,
                &loaded.file,
            ],
        )?,
    };
    Ok(changed == 1)
}
