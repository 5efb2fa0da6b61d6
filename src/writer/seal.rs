//! How a writer seals a file: the rename to its stamped sealed name (see [`crate::names`]).
//!
//! A file is sealed by its only writer, after its last write to it and never written again: it
//! holds whole records only from the moment its sealed name appears, so a consumer that reads
//! sealed names only never sees a record that is still being written. A seal never replaces
//! an existing file. The file of a writer that is gone for good is sealed by `flatstore seal`
//! ([`super::abandoned`]), only once no process has it open.

use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{RenameFlags, renameat2};

use crate::names;

/// Seal stamps of one writer: never the same twice, never going back, even when the clock
/// does or two seals fall in one clock tick.
#[derive(Debug, Default)]
pub(crate) struct Stamps {
    last: Option<SystemTime>,
}

impl Stamps {
    /// The next stamp: now, or just after the previous one.
    pub(crate) fn next_stamp(&mut self) -> SystemTime {
        let now = SystemTime::now();
        let stamp = match self.last {
            Some(last) if now <= last => last + Duration::from_nanos(1),
            _ => now,
        };
        self.last = Some(stamp);
        stamp
    }
}

/// Rename `live` to its sealed name, never replacing a file: when the name is taken (a clock
/// set back), the next stamp is tried. Returns the sealed path.
pub(crate) fn rename_sealed(live: &Path, stamps: &mut Stamps) -> io::Result<PathBuf> {
    loop {
        let sealed = names::sealed_log(live, stamps.next_stamp());
        match rename_no_replace(live, &sealed) {
            Ok(()) => return Ok(sealed),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Rename `live` to the pending name of a seal (see [`names::pending_seal`]), never replacing
/// a file: the first step of a seal whose file is synced before it takes its sealed name
/// ([`finish_pending`]). Returns the seal's stamp.
pub(crate) fn rename_pending(live: &Path, stamps: &mut Stamps) -> io::Result<SystemTime> {
    loop {
        let at = stamps.next_stamp();
        let pending = pending_path(live, at);
        match rename_no_replace(live, &pending) {
            Ok(()) => return Ok(at),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Where [`rename_pending`] puts the file at `live` for a seal stamped `at`.
pub(crate) fn pending_path(live: &Path, at: SystemTime) -> PathBuf {
    names::pending_seal(&names::sealed_log(live, at))
}

/// Give the file that [`rename_pending`] moved from `live` with stamp `at` its sealed name,
/// once it is synced; never replacing a file (a later stamp when the name is taken). Returns
/// the sealed path.
pub(crate) fn finish_pending(live: &Path, at: SystemTime) -> io::Result<PathBuf> {
    let pending = pending_path(live, at);
    let mut stamps = Stamps { last: Some(at) };
    let mut stamp = at;
    loop {
        let sealed = names::sealed_log(live, stamp);
        match rename_no_replace(&pending, &sealed) {
            Ok(()) => return Ok(sealed),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => stamp = stamps.next_stamp(),
            Err(e) => return Err(e),
        }
    }
}

/// `rename(from, to)` that fails with `AlreadyExists` instead of replacing `to`. Where the file
/// system has no `RENAME_NOREPLACE`, a hard link then an unlink does the same.
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    match renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL | Errno::ENOSYS) => {
            std::fs::hard_link(from, to)?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(e.into()),
    }
}

/// Make a seal (a rename in `dir`) durable.
pub(crate) fn sync_directory(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_strictly_increase() {
        let mut stamps = Stamps::default();
        let all: Vec<SystemTime> = (0..1000).map(|_| stamps.next_stamp()).collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_seal_never_replaces_a_file() {
        let dir = std::env::temp_dir().join(format!("flatstore-seal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let live = dir.join("t_1.log");
        let mut stamps = Stamps::default();
        let mut sealed = Vec::new();
        for content in ["one\n", "two\n", "three\n"] {
            std::fs::write(&live, content).expect("write");
            sealed.push(rename_sealed(&live, &mut stamps).expect("seal"));
        }
        assert!(!live.exists());
        let contents: Vec<String> = sealed
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("read"))
            .collect();
        assert_eq!(contents, ["one\n", "two\n", "three\n"]);
        std::fs::write(&live, "four\n").expect("write");
        assert!(
            rename_no_replace(&live, &sealed[0])
                .is_err_and(|e| e.kind() == ErrorKind::AlreadyExists)
        );
        std::fs::remove_dir_all(&dir).expect("remove");
    }

    #[test]
    fn a_pending_seal_takes_its_sealed_name_only_when_finished() {
        let dir = std::env::temp_dir().join(format!("flatstore-pending-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let live = dir.join("t_2.log");
        std::fs::write(&live, "one\n").expect("write");
        let mut stamps = Stamps::default();
        let at = rename_pending(&live, &mut stamps).expect("pending");
        let sealed = names::sealed_log(&live, at);
        assert!(!live.exists() && !sealed.exists());
        assert!(names::pending_seal(&sealed).exists());
        // A file already at the sealed name is never replaced: the seal takes a later stamp.
        std::fs::write(&sealed, "other\n").expect("plant");
        let finished = finish_pending(&live, at).expect("finish");
        assert_ne!(finished, sealed);
        assert_eq!(std::fs::read(&finished).expect("read"), b"one\n");
        assert_eq!(std::fs::read(&sealed).expect("read"), b"other\n");
        assert!(!names::pending_seal(&sealed).exists());
        std::fs::remove_dir_all(&dir).expect("remove");
    }
}
