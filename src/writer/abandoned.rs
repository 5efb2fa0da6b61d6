//! Sealing the live file of a writer that is gone (`flatstore seal`).
//!
//! A writer seals its own file when it reaches a limit, and a new process with the same N
//! seals what its predecessor left. A writer that dies and never comes back would leave its
//! last records in a live file for good, unseen by consumers of sealed files only. Every
//! writer holds a shared `flock(2)` lock on its live file (see [`LogFile::open`]), so an
//! exclusive lock that succeeds proves that no process has the file open: its writer is gone,
//! and no new writer can get in before the rename (a writer opening the path meanwhile waits
//! for the lock, then opens the next file).

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::names;
use crate::sys::flock::{FileLock, try_flock};
use crate::writer::log_file::{Claim, LogFile};
use crate::writer::seal::{self, Stamps};

/// What [`seal_if_abandoned`] did with a live file.
#[derive(Debug, PartialEq, Eq)]
pub enum SealOutcome {
    /// Its writer was gone: renamed to this sealed path, and synced.
    Sealed(PathBuf),
    /// A live writer has it open: left alone.
    Held,
    /// No records in it: left alone (the next writer with the same N appends to it).
    Empty,
    /// No file at the path (any more).
    Missing,
}

/// Seal the live file `live` if no process has it open: a torn last line is moved aside
/// first, the sealed name is stamped with the time of the seal, and the file and its
/// directory are synced before this returns. `live` may also be a seal its writer did not
/// finish ([`names::pending_seal`]): it is synced and given the sealed name it waits for.
pub fn seal_if_abandoned(live: &Path) -> Result<SealOutcome> {
    let log = match LogFile::claim_abandoned(live)? {
        Claim::Abandoned(log) => log,
        Claim::Held => return Ok(SealOutcome::Held),
        Claim::Missing => return Ok(SealOutcome::Missing),
    };
    let fail = |source: io::Error| Error::Open {
        path: live.to_owned(),
        source,
    };
    let waits_for = live
        .file_name()
        .and_then(|name| names::pending_seal_of(name.as_bytes()))
        .map(|(sealed, _)| live.with_file_name(OsStr::from_bytes(sealed)));
    let sealed = if let Some(sealed) = waits_for {
        log.sync()?;
        seal::rename_no_replace(live, &sealed).map_err(fail)?;
        sealed
    } else {
        if log.is_empty()? {
            return Ok(SealOutcome::Empty);
        }
        let sealed = seal::rename_sealed(live, &mut Stamps::default()).map_err(fail)?;
        // Writers waiting for the path open the next file from here on; the claim only keeps
        // the sealed file to itself while it is synced.
        log.sync()?;
        sealed
    };
    if let Some(dir) = live.parent() {
        seal::sync_directory(dir).map_err(fail)?;
    }
    Ok(SealOutcome::Sealed(sealed))
}

/// True when a process holds the file at `path` open as its writer (every writer holds a
/// shared lock on its file, and a helper thread on a seal it is finishing); false when none
/// does, or there is no file. Reads only: the exclusive lock that answers is let go at once.
pub fn writer_holds(path: &Path) -> Result<bool> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(Error::Open {
                path: path.to_owned(),
                source,
            });
        }
    };
    try_flock(&file, FileLock::Exclusive)
        .map(|free| !free)
        .map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flatstore-abandoned-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    fn sealed_path(outcome: SealOutcome) -> PathBuf {
        match outcome {
            SealOutcome::Sealed(path) => path,
            other => panic!("expected a seal, got {other:?}"),
        }
    }

    #[test]
    fn a_file_with_a_writer_is_left_and_sealed_once_the_writer_is_gone() {
        let dir = scratch("writer");
        let live = dir.join("acc_3.log");
        let writer = LogFile::open(&live, None).expect("open");
        writer.write_lines(b"one\ntwo\n").expect("write");
        assert_eq!(seal_if_abandoned(&live).expect("seal"), SealOutcome::Held);
        assert!(live.exists(), "a writer's file is never renamed");

        drop(writer);
        let sealed = sealed_path(seal_if_abandoned(&live).expect("seal"));
        assert!(!live.exists());
        let name = sealed.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("acc_3.log.sealed-"), "{name}");
        assert_eq!(std::fs::read(&sealed).expect("read"), b"one\ntwo\n");
        assert_eq!(
            seal_if_abandoned(&live).expect("again"),
            SealOutcome::Missing
        );
    }

    #[test]
    fn a_seal_left_pending_is_finished_once_its_writer_is_gone() {
        let dir = scratch("pending");
        let live = dir.join("acc_6.log");
        std::fs::write(&live, b"one\n").expect("plant");
        let at = seal::rename_pending(&live, &mut Stamps::default()).expect("pending");
        let sealed = names::sealed_log(&live, at);
        let pending = names::pending_seal(&sealed);
        let writer = LogFile::open(&pending, None).expect("a writer still holds it");
        assert_eq!(
            seal_if_abandoned(&pending).expect("held"),
            SealOutcome::Held
        );
        drop(writer);
        assert_eq!(
            seal_if_abandoned(&pending).expect("finish"),
            SealOutcome::Sealed(sealed.clone())
        );
        assert_eq!(std::fs::read(&sealed).expect("read"), b"one\n");
        assert!(!pending.exists());
    }

    #[test]
    fn a_torn_last_line_is_moved_aside_before_the_seal() {
        let dir = scratch("torn");
        let live = dir.join("acc_1.log");
        std::fs::write(&live, b"whole\nhal").expect("plant");
        let sealed = sealed_path(seal_if_abandoned(&live).expect("seal"));
        assert_eq!(std::fs::read(&sealed).expect("read"), b"whole\n");
        let aside = std::fs::read(dir.join(".acc_1.log.torn")).expect("torn aside");
        assert_eq!(aside, b"hal\n");
    }

    #[test]
    fn empty_files_and_other_things_at_the_path_are_not_sealed() {
        let dir = scratch("empty");
        let live = dir.join("acc_2.log");
        std::fs::write(&live, b"").expect("empty");
        assert_eq!(seal_if_abandoned(&live).expect("empty"), SealOutcome::Empty);
        assert!(live.exists());

        let planted = dir.join("acc_4.log");
        std::fs::create_dir(&planted).expect("dir");
        assert!(
            seal_if_abandoned(&planted).is_err(),
            "a directory is no log"
        );
    }

    #[test]
    fn a_writer_opening_the_path_during_a_claim_gets_the_next_file() {
        let dir = scratch("race");
        let live = dir.join("acc_5.log");
        std::fs::write(&live, b"old\n").expect("plant");
        let Claim::Abandoned(claim) = LogFile::claim_abandoned(&live).expect("claim") else {
            panic!("nobody holds it");
        };
        let writer = std::thread::spawn({
            let live = live.clone();
            move || {
                let log = LogFile::open(&live, None).expect("open after the seal");
                log.write_lines(b"new\n").expect("write");
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        let sealed = seal::rename_sealed(&live, &mut Stamps::default()).expect("rename");
        drop(claim);
        writer.join().expect("writer");
        assert_eq!(std::fs::read(&sealed).expect("sealed"), b"old\n");
        assert_eq!(std::fs::read(&live).expect("live"), b"new\n");
    }
}
