//! Self-rotation: when a writer seals its own file, the sealed name, and the rename that
//! seals it.
//!
//! A sealed file is `<table>_<N>.log.sealed-<YYYYMMDD>T<HHMMSS>.<nnnnnnnnn>Z`: the live name
//! followed by the UTC time of the seal to the nanosecond. Stamps are strictly increasing per
//! writer, so sorting them as text is sealing order. A file is sealed by its only writer,
//! after its last write to it and never written again: it holds whole records only from the
//! moment its name appears, and a consumer that reads sealed names only never sees a record
//! that is still being written. A seal never replaces an existing file. The file of a writer
//! that is gone for good is sealed by `flatstore seal` ([`crate::abandoned`]), only once no
//! process has it open.

use std::io::{self, ErrorKind};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use nix::errno::Errno;
use nix::fcntl::{RenameFlags, renameat2};

/// What comes between the live name and the stamp.
pub const SEALED_MARK: &str = ".sealed-";

/// When a writer seals its file; every limit is off unless set, and any combination may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SealLimits {
    /// Most records in one file.
    pub records: Option<NonZeroU64>,
    /// Most bytes in one file (a single record larger than this goes alone into a file).
    pub bytes: Option<NonZeroU64>,
    /// Longest time from a file's first record to its seal.
    pub age: Option<Duration>,
}

impl SealLimits {
    /// True when no limit is set: files are only ever rotated from outside.
    pub fn is_off(&self) -> bool {
        self.records.is_none() && self.bytes.is_none() && self.age.is_none()
    }

    /// True when only a limit on records or bytes is set: every seal happens during a write.
    pub fn is_size_only(&self) -> bool {
        self.age.is_none()
    }

    /// How many bytes of `lines` (whole lines) may go into a file that holds `records`
    /// records and `bytes` bytes: the longest run of whole lines within both limits; at least
    /// one line when the file is empty. Also returns how many lines that is.
    pub fn room(&self, lines: &[u8], records: u64, bytes: u64) -> (usize, u64) {
        let record_room = self
            .records
            .map_or(u64::MAX, |r| r.get().saturating_sub(records));
        let byte_room = self
            .bytes
            .map_or(u64::MAX, |b| b.get().saturating_sub(bytes));
        if lines.len() as u64 <= byte_room {
            // Usually all of it fits: one vectorised count instead of a walk line by line.
            let count = count_lines(lines);
            if count <= record_room {
                return (lines.len(), count);
            }
        }
        let mut end = 0;
        let mut count = 0;
        for newline in memchr::memchr_iter(b'\n', lines) {
            let next = newline + 1;
            let first_in_empty_file = records == 0 && count == 0;
            if count == record_room || (next as u64 > byte_room && !first_in_empty_file) {
                break;
            }
            end = next;
            count += 1;
        }
        (end, count)
    }

    /// True when a file holding `records` records and `bytes` bytes takes no more.
    pub fn is_full(&self, records: u64, bytes: u64) -> bool {
        self.records.is_some_and(|r| records >= r.get())
            || self.bytes.is_some_and(|b| bytes >= b.get())
    }
}

/// The records in `lines` (whole lines): one vectorised count of their ends.
pub fn count_lines(lines: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', lines).count() as u64
}

/// When written data is forced to stable storage (`fdatasync`), parameter `fsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `never`: the kernel writes back when it likes (the C modules' behaviour).
    Never,
    /// `rotate`: a file is synced before it is sealed, before a writer leaves it after a
    /// rotation, and at close; the directory is synced after a seal.
    OnSeal,
    /// `interval`: as `rotate`, and every file with unsynced data each `fsync_interval`.
    Interval,
    /// `always`: after every `write(2)` (at `flush=0`, every buffer written out).
    EveryWrite,
}

impl Durability {
    /// True when files are synced before they are sealed or left.
    pub fn syncs_on_seal(self) -> bool {
        self != Durability::Never
    }
}

/// The sealed name of `live` for a seal at `at`.
pub fn sealed_path(live: &Path, at: SystemTime) -> PathBuf {
    let at: DateTime<Utc> = at.into();
    let mut name = live.file_name().unwrap_or_default().to_os_string();
    name.push(SEALED_MARK);
    name.push(at.format("%Y%m%dT%H%M%S.%9fZ").to_string());
    live.with_file_name(name)
}

/// Seal stamps of one writer: never the same twice, never going back, even when the clock
/// does or two seals fall in one clock tick.
#[derive(Debug, Default)]
pub struct Stamps {
    last: Option<SystemTime>,
}

impl Stamps {
    /// The next stamp: now, or just after the previous one.
    pub fn next_stamp(&mut self) -> SystemTime {
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
pub fn rename_sealed(live: &Path, stamps: &mut Stamps) -> io::Result<PathBuf> {
    loop {
        let sealed = sealed_path(live, stamps.next_stamp());
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
pub fn sync_directory(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(records: u64, bytes: u64) -> SealLimits {
        SealLimits {
            records: NonZeroU64::new(records),
            bytes: NonZeroU64::new(bytes),
            age: None,
        }
    }

    #[test]
    fn room_takes_whole_lines_within_both_limits() {
        let lines = b"aaa\nbbb\nccc\n";
        assert_eq!(limits(0, 0).room(lines, 0, 0), (12, 3));
        assert_eq!(limits(2, 0).room(lines, 0, 0), (8, 2));
        assert_eq!(limits(2, 0).room(lines, 1, 4), (4, 1));
        assert_eq!(limits(2, 0).room(lines, 2, 8), (0, 0));
        assert_eq!(limits(0, 9).room(lines, 0, 0), (8, 2));
        assert_eq!(limits(0, 9).room(lines, 1, 4), (4, 1));
        assert_eq!(limits(0, 9).room(lines, 2, 8), (0, 0));
        // A record larger than the byte limit goes alone into an empty file.
        assert_eq!(limits(0, 2).room(lines, 0, 0), (4, 1));
        assert_eq!(limits(0, 2).room(lines, 1, 4), (0, 0));
        assert!(limits(2, 0).is_full(2, 0) && !limits(2, 0).is_full(1, 100));
        assert!(limits(0, 8).is_full(1, 8) && !limits(0, 8).is_full(1, 7));
        assert!(!SealLimits::default().is_full(u64::MAX, u64::MAX));
    }

    #[test]
    fn sealed_names_sort_in_sealing_order() {
        let at = SystemTime::UNIX_EPOCH + Duration::new(1_795_455_912, 123_456_789);
        let sealed = sealed_path(Path::new("/var/log/acc/acc_129.log"), at);
        assert_eq!(
            sealed,
            Path::new("/var/log/acc/acc_129.log.sealed-20261123T174512.123456789Z")
        );
        let mut stamps = Stamps::default();
        let names: Vec<PathBuf> = (0..1000)
            .map(|_| sealed_path(Path::new("acc_1.log"), stamps.next_stamp()))
            .collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
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
