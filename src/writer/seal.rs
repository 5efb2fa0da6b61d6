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

/// `rename(from, to)` that fails with `AlreadyExists` instead of replacing `to`. Where the file
/// system has no `RENAME_NOREPLACE`, a hard link then an unlink does the same.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
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
}
