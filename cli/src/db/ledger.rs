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
//! **Files are known by content,** as `cdr --state` knows them ([`crate::consumed`]): the hash
//! of their first bytes, so a file renamed or gzipped since is the same file, and a live file
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
//! The functions take any [`GenericClient`], so a `cdr --db` run can record the files it read
//! in the same transaction as its CDRs and its open calls.

use flatstore::cdr::hash::content_id;
use postgres::GenericClient;

use crate::consumed::PREFIX;

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
fn lock_key(parts: &[&[u8]]) -> i64 {
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

/// What names a file in the ledger, from its first bytes of content.
#[derive(Debug)]
pub struct Identity {
    prefix: Vec<u8>,
    /// The first line with its `\n` (or the whole prefix when the first line is longer).
    head: usize,
    /// How many bytes a ledger row may have hashed: each line end in the prefix, and
    /// [`PREFIX`] when the prefix is that long.
    lengths: Vec<usize>,
}

impl Identity {
    /// The identity of the file whose content starts with `prefix` (its first [`PREFIX`]
    /// bytes, or all of it when shorter); `None` while it holds no whole line (nothing to
    /// load).
    pub fn of(prefix: Vec<u8>) -> Option<Identity> {
        let mut lengths: Vec<usize> = memchr::memchr_iter(b'\n', &prefix)
            .map(|at| at + 1)
            .collect();
        if prefix.len() >= PREFIX {
            lengths.push(PREFIX);
        }
        let head = *lengths.first()?;
        Some(Identity {
            prefix,
            head,
            lengths,
        })
    }

    /// The content ids a ledger row of this file may have.
    fn candidates(&self) -> Vec<String> {
        self.lengths
            .iter()
            .map(|&n| content_id(&self.prefix[..n]).to_string())
            .collect()
    }

    /// The content id and hashed length to record once the file is consumed up to `end` (a
    /// line end).
    fn recorded(&self, end: u64) -> (String, i64) {
        let full = if self.prefix.len() >= PREFIX {
            PREFIX
        } else {
            self.lengths.last().copied().unwrap_or(0)
        };
        let hashed = usize::try_from(end).map_or(full, |end| end.min(full));
        (
            content_id(&self.prefix[..hashed]).to_string(),
            hashed as i64,
        )
    }
}

/// Wait for, and take until the end of the transaction, the lock of this file in the SQL
/// table `table` (schema.table).
pub fn lock(
    tx: &mut impl GenericClient,
    table: &str,
    identity: &Identity,
) -> Result<(), postgres::Error> {
    let key = lock_key(&[
        b"flatstore file",
        table.as_bytes(),
        &identity.prefix[..identity.head],
    ]);
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
    identity: &Identity,
) -> Result<Option<Entry>, postgres::Error> {
    let row = tx.query_opt(
        "SELECT content_id, consumed_bytes, source FROM flatstore_ledger \
         WHERE tbl = $1 AND content_id = ANY($2) ORDER BY consumed_bytes DESC LIMIT 1",
        &[&table, &identity.candidates()],
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
    identity: &Identity,
    previous: Option<&Entry>,
    loaded: &Loaded<'_>,
) -> Result<bool, postgres::Error> {
    let (id, hashed) = identity.recorded(loaded.end);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_growing_file_keeps_its_lock_and_finds_its_ledger_row() {
        assert!(Identity::of(b"no whole line yet".to_vec()).is_none());
        let small = b"INVITE|a|1\nBYE|a|2\n".to_vec();
        let first = Identity::of(small.clone()).expect("identity");
        let (id, hashed) = first.recorded(small.len() as u64);
        assert_eq!(hashed, small.len() as i64);

        // The same file grown past PREFIX: another prefix, the same head, and the first
        // load's id among its candidates.
        let mut grown = small.clone();
        while grown.len() < 2 * PREFIX {
            grown.extend_from_slice(b"INVITE|b|3\n");
        }
        let later = Identity::of(grown[..PREFIX].to_vec()).expect("identity");
        assert_eq!(later.prefix[..later.head], first.prefix[..first.head]);
        assert!(later.candidates().contains(&id));
        let (id, hashed) = later.recorded(grown.len() as u64);
        assert_eq!(hashed, PREFIX as i64);
        assert!(later.candidates().contains(&id));

        // A prefix read while the last line was being written hashes only whole lines.
        let mut partial = small.clone();
        partial.extend_from_slice(b"INV");
        let (id, hashed) = Identity::of(partial).expect("identity").recorded(1 << 20);
        assert_eq!(hashed, small.len() as i64);
        assert!(first.candidates().contains(&id));
    }
}
