//! Policy, apart from the mechanism: when a writer seals its file (the limits), and when
//! written data is synced. (When a rotation makes a writer reopen is one comparison, made where
//! the reopen is: [`super::table_file`].)

use std::num::NonZeroU64;
use std::time::Duration;

/// When a writer seals its file; every limit is off unless set, and any combination may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SealLimits {
    /// Most records in one file.
    pub(crate) records: Option<NonZeroU64>,
    /// Most bytes in one file (a single record larger than this goes alone into a file).
    pub(crate) bytes: Option<NonZeroU64>,
    /// Longest time from a file's first record to its seal.
    pub(crate) age: Option<Duration>,
}

impl SealLimits {
    /// True when no limit is set: files are only ever rotated from outside.
    pub(crate) fn is_off(&self) -> bool {
        self.records.is_none() && self.bytes.is_none() && self.age.is_none()
    }

    /// How many bytes of `lines` (whole lines) may go into a file that holds `records`
    /// records and `bytes` bytes: the longest run of whole lines within both limits; at least
    /// one line when the file is empty. Also returns how many lines that is.
    pub(crate) fn room(&self, lines: &[u8], records: u64, bytes: u64) -> (usize, u64) {
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
    pub(crate) fn is_full(&self, records: u64, bytes: u64) -> bool {
        self.records.is_some_and(|r| records >= r.get())
            || self.bytes.is_some_and(|b| bytes >= b.get())
    }
}

/// The records in `lines` (whole lines): one vectorised count of their ends.
pub(crate) fn count_lines(lines: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', lines).count() as u64
}

/// When written data is forced to stable storage (`fdatasync`), parameter `fsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
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
    pub(crate) fn syncs_on_seal(self) -> bool {
        self != Durability::Never
    }
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
}
