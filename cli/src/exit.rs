//! The exit status of the reading commands (cat, verify, export, stats), what went wrong with
//! a file and the status it calls for, and where their complaints go: standard error, one line
//! each, naming the file.

use std::fmt::Display;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use flatstore::columns;

/// Exit status 1: the files hold something that is not right (corrupt gzip, a binary file, a
/// torn line, a record of the wrong shape).
pub const PROBLEMS: u8 = 1;
/// Exit status 2: usage error, or the system refused (a missing directory, an unreadable
/// file, output that cannot be written).
pub const IO_ERROR: u8 = 2;

/// Why a file could not be read, or not completely.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The system refused: the file cannot be examined, opened or read (exit status 2).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The content is not a flatstore log, or not all of it: corrupt gzip, binary content
    /// (exit status 1).
    #[error("{}: {what}", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
}

impl From<columns::ReadError> for FileError {
    fn from(error: columns::ReadError) -> FileError {
        match error {
            columns::ReadError::Io { path, source } => FileError::Io { path, source },
            columns::ReadError::Malformed { path, what } => FileError::Bad {
                path,
                what: format!("malformed column names: {what}"),
            },
        }
    }
}

impl FileError {
    /// The exit status this error calls for.
    pub fn exit_status(&self) -> u8 {
        match self {
            FileError::Io { .. } => IO_ERROR,
            FileError::Bad { .. } => PROBLEMS,
        }
    }
}

/// The worst of what a command met so far; 0 while everything was clean.
#[derive(Debug, Default)]
pub struct Status {
    worst: u8,
}

impl Status {
    /// Note a problem in the data without printing it (the command reports it itself).
    pub fn raise(&mut self, status: u8) {
        self.worst = self.worst.max(status);
    }

    /// Print a problem in the data to standard error; exit status at least 1.
    pub fn problem(&mut self, message: impl Display) {
        eprintln!("flatstore: {message}");
        self.raise(PROBLEMS);
    }

    /// Print an I/O error to standard error; exit status 2.
    pub fn io_error(&mut self, message: impl Display) {
        eprintln!("flatstore: {message}");
        self.raise(IO_ERROR);
    }

    /// Print a file's error to standard error, with the exit status its kind calls for.
    pub fn file_error(&mut self, error: &FileError) {
        eprintln!("flatstore: {error}");
        self.raise(error.exit_status());
    }

    /// Writing the output failed: a closed pipe (`flatstore cat … | head`) ends the command
    /// quietly, anything else is an I/O error.
    pub fn output_failed(&mut self, error: &io::Error) {
        if error.kind() != io::ErrorKind::BrokenPipe {
            self.io_error(format_args!("writing the output: {error}"));
        }
    }

    /// The process exit status.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.worst)
    }
}

/// A usage error found after parsing: the message on standard error, exit status 2 (as
/// clap's own).
pub fn usage(message: impl Display) -> ! {
    clap::Error::raw(
        clap::error::ErrorKind::ValueValidation,
        format!("{message}\n"),
    )
    .exit()
}

/// "1 record", "2 records".
pub fn records(n: u64) -> String {
    if n == 1 {
        "1 record".into()
    } else {
        format!("{n} records")
    }
}
