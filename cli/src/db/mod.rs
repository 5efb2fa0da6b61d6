//! PostgreSQL, as `flatstore load` uses it (and `cdr --db` can, later): connecting with libpq's
//! rules for credentials ([`connect`], [`pgpass`]), SQL names and types ([`sql`]), the ledger of
//! loaded files that makes every load exactly once ([`ledger`]), and records as rows of COPY's
//! text format ([`copy`]).
//!
//! The client is the `postgres` crate (rust-postgres, its blocking API). It is a dependency of
//! the command only: `libflatstore.so`, which a proxy loads, never links it (tests/lean.rs).

pub mod connect;
pub mod copy;
pub mod ledger;
pub mod pgpass;
pub mod sql;
