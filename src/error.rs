//! The one error type of the crate, and the only place that turns an error into a C code.

use std::io;
use std::path::PathBuf;

use crate::line::value::BadValue;

/// A required pointer argument was NULL.
pub const FLATSTORE_E_NULL: i32 = -1;
/// The URL is not `flatstore:<dir>[?name=value&...]`.
pub const FLATSTORE_E_URL: i32 = -2;
/// A parameter is unknown or malformed.
pub const FLATSTORE_E_PARAM: i32 = -3;
/// A table name was refused.
pub const FLATSTORE_E_TABLE: i32 = -4;
/// Insert before use_table.
pub const FLATSTORE_E_NO_TABLE: i32 = -5;
/// A value cannot be written; nothing was written.
pub const FLATSTORE_E_VALUE: i32 = -6;
/// The value count is invalid; nothing was written.
pub const FLATSTORE_E_COUNT: i32 = -7;
/// The log directory is missing or not a directory.
pub const FLATSTORE_E_DIR: i32 = -8;
/// A log file could not be opened.
pub const FLATSTORE_E_OPEN: i32 = -9;
/// A record could not be written.
pub const FLATSTORE_E_WRITE: i32 = -10;
/// An internal error was caught at the boundary.
pub const FLATSTORE_E_INTERNAL: i32 = -11;
/// The connection's helper thread (buffers, seals by age, syncs) could not be started.
pub const FLATSTORE_E_THREAD: i32 = -12;
/// A rotation did not complete in time.
pub const FLATSTORE_E_ROTATE_TIMEOUT: i32 = -13;
/// Shared memory for the host's processes could not be mapped.
pub const FLATSTORE_E_SHARED_MEMORY: i32 = -14;
/// Every writer slot of the directory's control file is taken by a live process.
pub const FLATSTORE_E_NO_SLOT: i32 = -15;
/// A sealer held the log file at the live path for longer than a writer waits (200 ms).
pub const FLATSTORE_E_SEALER_TIMEOUT: i32 = -16;
/// `flat_rotate` reached no log directory: this process opened none, and none is shared with
/// it (`flat_share_with_children` before the host forks).
pub const FLATSTORE_E_NOTHING_TO_ROTATE: i32 = -17;

/// Everything that can go wrong, with the context an operator needs to fix it.
///
/// Each variant maps to one negative C code through [`Error::code`]; codes are never reused
/// or renumbered, so a host may switch on them.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required pointer argument was NULL.
    #[error("{what} is NULL")]
    NullArgument {
        /// Which argument.
        what: &'static str,
    },
    /// The database URL is not `flatstore:<dir>[?name=value&...]`.
    #[error("bad URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A parameter is unknown or its value is malformed.
    #[error("parameter {name:?}: {reason}")]
    BadParam {
        /// The parameter name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A table name that could leave the log directory or is not usable as a file name.
    #[error("table name {name:?} refused: {reason}")]
    BadTable {
        /// The table name, lossily decoded for display.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// `insert` was called before `use_table`.
    #[error("no table selected: call use_table first")]
    NoTable,
    /// A value cannot be written; the whole record was refused and nothing was written.
    #[error(transparent)]
    BadValue(#[from] BadValue),
    /// The value count is negative, or positive with no values.
    #[error("bad value count {count}; record not written")]
    BadCount {
        /// The count as given.
        count: i64,
    },
    /// The log directory does not exist or is not a directory.
    #[error("log directory {path}: {reason}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A log file could not be opened (a symlink in its place is refused with ELOOP).
    #[error("open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A record could not be written.
    #[error("write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A bug inside the library was caught at the boundary; the host keeps running.
    #[error("internal error (caught panic): {message}")]
    Panic {
        /// The panic message.
        message: String,
    },
    /// The connection's helper thread (buffers, seals by age, syncs) could not be started.
    #[error("cannot start the helper thread: {source}")]
    Thread {
        /// The OS error.
        source: io::Error,
    },
    /// Shared memory for the host's processes could not be mapped.
    #[error("cannot map shared memory for {what}: {source}")]
    SharedMemory {
        /// What it was for.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Every writer slot of the directory's control file is taken by a live process: more
    /// threads than there are slots write to the directory at once. Nothing was written.
    #[error("{path}: all {slots} writer slots are taken by live processes")]
    NoSlot {
        /// The control file of the directory.
        path: PathBuf,
        /// How many slots it has.
        slots: usize,
    },
    /// The log file at the live path stayed held exclusively (by `flatstore seal`, which holds
    /// a file only to rename it) for longer than a writer waits.
    #[error(
        "open {path}: held exclusively for more than {waited:?} (a sealer holds a file only to rename it)"
    )]
    SealerTimeout {
        /// The live path.
        path: PathBuf,
        /// How long the writer waited.
        waited: std::time::Duration,
    },
    /// A rotation request reached no log directory: the asking process opened none, and none
    /// is in a list shared with it (the host did not call `flat_share_with_children`, or its
    /// module's `mod_init`, before forking; or no process has opened one yet).
    #[error(
        "no log directory to rotate: this process opened none, and none is shared with it \
         (call flat_share_with_children() before the host forks, then open the directories)"
    )]
    NothingToRotate,
    /// `rotate --wait` gave up: some writer still could append to a rotated file.
    #[error("rotation of {path} not complete after {waited:?}: {blocking}")]
    RotateTimeout {
        /// The control file of the directory.
        path: PathBuf,
        /// How long it waited.
        waited: std::time::Duration,
        /// The writers that held it up.
        blocking: String,
    },
}

impl Error {
    /// The stable negative C code of this error (`FLATSTORE_E_*` in the header).
    pub fn code(&self) -> i32 {
        match self {
            Error::NullArgument { .. } => FLATSTORE_E_NULL,
            Error::BadUrl { .. } => FLATSTORE_E_URL,
            Error::BadParam { .. } => FLATSTORE_E_PARAM,
            Error::BadTable { .. } => FLATSTORE_E_TABLE,
            Error::NoTable => FLATSTORE_E_NO_TABLE,
            Error::BadValue(_) => FLATSTORE_E_VALUE,
            Error::BadCount { .. } => FLATSTORE_E_COUNT,
            Error::Directory { .. } => FLATSTORE_E_DIR,
            Error::Open { .. } => FLATSTORE_E_OPEN,
            Error::Write { .. } => FLATSTORE_E_WRITE,
            Error::Panic { .. } => FLATSTORE_E_INTERNAL,
            Error::Thread { .. } => FLATSTORE_E_THREAD,
            Error::RotateTimeout { .. } => FLATSTORE_E_ROTATE_TIMEOUT,
            Error::SharedMemory { .. } => FLATSTORE_E_SHARED_MEMORY,
            Error::NoSlot { .. } => FLATSTORE_E_NO_SLOT,
            Error::SealerTimeout { .. } => FLATSTORE_E_SEALER_TIMEOUT,
            Error::NothingToRotate => FLATSTORE_E_NOTHING_TO_ROTATE,
        }
    }

    /// [`Error::BadParam`]: parameter `name` refused for `reason` (also what a host face
    /// returns for a modparam value it cannot read).
    pub fn param(name: &str, reason: impl Into<String>) -> Self {
        Error::BadParam {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
