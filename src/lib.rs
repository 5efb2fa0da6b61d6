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
//! flatstore::declare_process_number(5);
//! acc.use_table(b"acc")?;
//! acc.insert([Value::Str(b"INVITE"), Value::Int(200), Value::Str(b"a|b"), Value::Null].map(Ok))?;
//! acc.close()?;
//! assert_eq!(std::fs::read(dir.join("acc_5.log"))?, b"INVITE|200|a%7Cb|\n");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The parts (see `docs/architecture.md`): [`line`](mod@line), the line format, pure; [`names`], every
//! file name, built and parsed; the writer (connection, buffers, table files, log files, the
//! helper thread, seals); the state shared between processes (control file, process number,
//! rotation requests); [`report`], the library's own messages and where they go; `sys`, the
//! OS shims; [`ffi`], the C API and the toolkit of the host modules (the crates under `hosts/`),
//! the only way in from C; [`cdr`], the accounting run's
//! pure core (records to call detail records).
#![deny(unsafe_code, unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc,
    rust_2018_idioms
)]

pub mod cdr;
pub mod columns;
pub mod error;
pub mod ffi;
pub mod line;
pub mod names;
pub mod report;
mod shared;
mod sys;
mod writer;

pub use error::{Error, Result};
pub use line::value::Value;
pub use shared::control::{Control, WriterState};
// The writers' side of the rotation handshake is the library's own; it is public only so that
// `tests/rotation.rs` can hold a write in flight and `benches/insert.rs` can time the handshake
// alone. Hidden from the documentation: no contract for users.
#[doc(hidden)]
pub use shared::control::Slot;
pub use shared::process::declare_number as declare_process_number;
pub use shared::rotation::wait_for_writers;
pub use writer::abandoned::{SealOutcome, seal_if_abandoned, writer_holds};
pub use writer::config::{Config, Params};
pub use writer::connection::Connection;
