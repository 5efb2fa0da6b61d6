//! PostgreSQL, as `flatstore load` and `flatstore cdr --db` use it: connecting with libpq's
//! rules for credentials ([`connect`], [`pgpass`]), SQL names and types ([`sql`]), the ledger of
//! loaded files that makes every load exactly once ([`ledger`]), and records as rows of COPY's
//! text format ([`copy`]), one COPY for a whole run fed from another thread ([`stream`]),
//! records the server refused, set aside ([`rejects`]); the state of `cdr --db` runs,
//! committed with their CDRs ([`cdrstate`]).
//!
//! The client is the `postgres` crate (rust-postgres, its blocking API). It is a dependency of
//! the command only: `libflatstore.so`, which a proxy loads, never links it (tests/lean.rs).

pub mod cdrstate;
pub mod connect;
pub mod copy;
pub mod ledger;
pub mod pgpass;
pub mod rejects;
pub mod sql;
pub mod stream;
pub mod tls;

use crate::error::CliError;
use crate::exit::usage;

/// The `source` column's value: `--source` as given (empty is a usage error), else this
/// host's name.
pub fn source(given: Option<&str>) -> Result<String, CliError> {
    match given {
        Some("") => usage("--source: empty"),
        Some(source) => Ok(source.to_owned()),
        None => whoami::hostname().map_err(CliError::HostName),
    }
}
