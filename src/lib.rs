//! flatstore: the OpenSER/Kamailio *flatstore* accounting sink, in Rust.
//!
//! A SIP proxy hands every accounting record to the sink; the sink appends it as one
//! `|`-separated line to `<dir>/<table>_<N>.log`, one file per process per table, with no
//! locking between processes. The C API (`include/flatstore.h`) is the OpenSER 1.x database
//! API insert subset; the Rust API below is what the CLI, the tests and the benchmarks use.
//!
//! ```
//! use flatstore::{Config, Connection, Params, Value};
//!
//! let dir = std::env::temp_dir().join(format!("flatstore-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let url = format!("flatstore:{}", dir.display());
//! let mut acc = Connection::new(Config::from_url(&url, &Params::default())?)?;
//! flatstore::process::declare_number(5);
//! acc.use_table(b"acc")?;
//! acc.insert([Value::Str(b"INVITE"), Value::Int(200), Value::Str(b"a|b"), Value::Null].map(Ok))?;
//! acc.close()?;
//! assert_eq!(std::fs::read(dir.join("acc_5.log"))?, b"INVITE|200|a%7Cb|\n");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`value`]: one field, independent of the host's C layout.
//! - [`format`](mod@format): values to the bytes of one line (pure).
//! - [`decode`]: a line back to its fields (the inverse of `format`).
//! - [`config`]: the URL and the module parameters.
//! - [`columns`]: the schema sidecar `<table>.columns` (`header=1`).
//! - [`store`]: per-process table files, lazy open, one write per record, reopen.
//! - [`table`]: one table's file in one process, and the write handshake.
//! - [`logfile`]: opening a log file and writing whole lines to it.
//! - [`buffer`]: buffered mode (`flush=0`) and its helper thread.
//! - [`rotate`]: rotation policy, triggers, and waiting for writers.
//! - [`seal`]: self-rotation limits, sealed names, and the durability policy.
//! - [`abandoned`]: sealing the live file of a writer that is gone (`flatstore seal`).
//! - [`control`]: the control file shared by a directory's writers.
//! - [`process`]: fork detection and the process number N.
//! - [`error`]: the error type and its C codes.
//! - [`ffi`]: the C boundary, the only place with `unsafe`.
#![deny(unsafe_code, unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc,
    rust_2018_idioms
)]

pub mod abandoned;
pub mod buffer;
pub mod columns;
pub mod config;
pub mod control;
pub mod decode;
pub mod directories;
pub mod error;
pub mod ffi;
pub mod format;
pub mod logfile;
pub mod process;
pub mod rotate;
pub mod seal;
pub mod store;
pub mod table;
pub mod value;

pub use config::{Config, Params};
pub use error::{Error, Result};
pub use store::Connection;
pub use value::Value;
