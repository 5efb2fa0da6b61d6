//! Files a writer has left, handed to its helper thread to sync, so that no insert waits for
//! the disk (`fsync` other than `never`).
//!
//! A writer leaves a file when it seals it, and when a rotation makes it reopen. A sealed file
//! leaves the writer's path under its pending name (see [`crate::names::pending_seal`]); the
//! helper thread syncs it, gives it its sealed name, then syncs the directory. A sealed name
//! therefore only ever names a synced file, as before; it appears one sync later than the
//! seal. A file left after a rotation is synced the same way, after the writer moved on.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::SystemTime;

use crate::sys::mutex::lock;
use crate::writer::log_file::LogFile;
use crate::writer::seal;

/// A file its writer has left, still to sync.
#[derive(Debug)]
enum Leftover {
    /// Sealed with stamp `at`, now at its pending name; `live` is the path it was sealed from.
    Sealed {
        file: LogFile,
        live: PathBuf,
        at: SystemTime,
    },
    /// Left after a rotation, wherever it now is.
    Rotated(LogFile),
}

/// What went wrong with one left file or directory. A sealed file keeps its pending name;
/// `flatstore seal` finishes it once the helper has let go of it.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}: {source}")]
pub(crate) struct Unfinished {
    path: PathBuf,
    what: &'static str,
    source: io::Error,
}

const NOT_SEALED: &str = "not given its sealed name (left for `flatstore seal`)";
const NOT_SYNCED: &str = "left after a rotation, not synced";
const DIRECTORY_NOT_SYNCED: &str = "directory not synced after a seal";

/// The files the writers of one connection in one process have left, and the helper thread
/// that syncs them.
#[derive(Debug, Default)]
pub(crate) struct Handoff {
    left: Mutex<Vec<Leftover>>,
    /// Held from a [`Handoff::take`] until its files are finished: never by a writer, so an
    /// exit waits for what the helper thread is syncing instead of leaving it pending.
    finishing: Mutex<()>,
    helper: OnceLock<Thread>,
}

impl Handoff {
    /// The thread to wake when a file is left.
    pub(crate) fn set_helper(&self, helper: Thread) {
        let _ = self.helper.set(helper);
    }

    /// Hand over `file`, just renamed from `live` to its pending seal with stamp `at`.
    pub(crate) fn sealed(&self, file: LogFile, live: &Path, at: SystemTime) {
        self.leave(Leftover::Sealed {
            file,
            live: live.to_owned(),
            at,
        });
    }

    /// Hand over `file`, left after a rotation with data not yet synced.
    pub(crate) fn rotated(&self, file: LogFile) {
        self.leave(Leftover::Rotated(file));
    }

    fn leave(&self, leftover: Leftover) {
        lock(&self.left).push(leftover);
        if let Some(helper) = self.helper.get() {
            helper.unpark();
        }
    }

    /// Take every file left so far, to [`Left::finish`] them; first wait until the files an
    /// earlier take holds are finished.
    pub(crate) fn take(&self) -> Left<'_> {
        let finishing = lock(&self.finishing);
        Left {
            files: std::mem::take(&mut *lock(&self.left)),
            _finishing: finishing,
        }
    }
}

/// Files taken from a [`Handoff`], to sync holding no lock a writer takes.
#[derive(Debug)]
pub(crate) struct Left<'a> {
    files: Vec<Leftover>,
    _finishing: MutexGuard<'a, ()>,
}

impl Left<'_> {
    /// Sync every file: a sealed one then takes its sealed name, and each directory a name
    /// appeared in is synced once. Returns what failed, for the caller to report.
    pub(crate) fn finish(self) -> Vec<Unfinished> {
        let mut failed = Vec::new();
        let mut directories: Vec<PathBuf> = Vec::new();
        for leftover in self.files {
            match leftover {
                Leftover::Rotated(file) => {
                    if let Err(e) = file.sync() {
                        failed.push(Unfinished {
                            path: file.path().to_owned(),
                            what: NOT_SYNCED,
                            source: io::Error::other(e),
                        });
                    }
                }
                Leftover::Sealed { file, live, at } => {
                    let finished = file
                        .sync()
                        .map_err(io::Error::other)
                        .and_then(|()| seal::finish_pending(&live, at));
                    match finished {
                        Ok(sealed) => {
                            if let Some(dir) = sealed.parent()
                                && !directories.iter().any(|d| d == dir)
                            {
                                directories.push(dir.to_owned());
                            }
                        }
                        Err(source) => failed.push(Unfinished {
                            path: seal::pending_path(&live, at),
                            what: NOT_SEALED,
                            source,
                        }),
                    }
                }
            }
        }
        for dir in directories {
            if let Err(source) = seal::sync_directory(&dir) {
                failed.push(Unfinished {
                    path: dir,
                    what: DIRECTORY_NOT_SYNCED,
                    source,
                });
            }
        }
        failed
    }
}
