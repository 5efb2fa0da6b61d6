//! A file known by its content, not by its name: a file that logrotate renamed or gzipped
//! since is still the same file, and a live file that grew since is read on from where the last
//! reader stopped. `cdr --state`, `cdr --db` and `load`'s ledger all know files this way.
//!
//! A file is known by the first bytes of its content ([`PREFIX`] at most, decompressed). Once
//! it has been read up to a line end, it is recorded as a [`ConsumedFile`]: the hash of its
//! first whole lines (all of [`PREFIX`] when the file is that long), how many bytes that hash
//! covers, and how far it was read. A later look at the file matches a record when the hash of
//! as many of its first bytes is the record's. Its first line, which never changes once written
//! (unlike the hashed bytes of a file still growing), names it for a lock.

use super::hash::{ContentId, content_id};
use super::state::ConsumedFile;

/// How many bytes from the start of a file name it.
pub const PREFIX: usize = 4096;

/// A file, known by its first bytes of content.
#[derive(Debug)]
pub struct Identity<'a> {
    prefix: &'a [u8],
    /// Each line end in the prefix (the length of the lines before it), then [`PREFIX`] when
    /// the prefix is that long: the lengths a record of this file may have hashed.
    lengths: Vec<usize>,
}

impl<'a> Identity<'a> {
    /// The file whose content starts with `prefix`: its first [`PREFIX`] bytes, or all of it
    /// when it is shorter.
    pub fn of(prefix: &'a [u8]) -> Self {
        let mut lengths: Vec<usize> = memchr::memchr_iter(b'\n', prefix)
            .map(|at| at + 1)
            .collect();
        if prefix.len() >= PREFIX {
            lengths.push(PREFIX);
        }
        Identity { prefix, lengths }
    }

    /// The first line with its `\n` (the whole prefix when the first line is longer than
    /// [`PREFIX`]); `None` while the file holds no whole line.
    pub fn first_line(&self) -> Option<&'a [u8]> {
        Some(&self.prefix[..*self.lengths.first()?])
    }

    /// The content ids a record of this file may have (one per length it may have hashed).
    pub fn candidates(&self) -> impl Iterator<Item = ContentId> + '_ {
        self.lengths.iter().map(|&n| content_id(&self.prefix[..n]))
    }

    /// Whether `file` records this file (read up to any point).
    pub fn matches(&self, file: &ConsumedFile) -> bool {
        usize::try_from(file.hashed_bytes).is_ok_and(|hashed| {
            hashed <= self.prefix.len() && content_id(&self.prefix[..hashed]) == file.content_id
        })
    }

    /// The record of this file read up to `end`, a line end: the hash of its whole lines up to
    /// `end` (of all [`PREFIX`] bytes when the prefix is that long). A prefix read while its
    /// first line was still being written, the file read on since, hashes what it holds.
    pub fn consumed(&self, end: u64) -> ConsumedFile {
        let whole = match self.prefix.len() {
            n if n >= PREFIX => PREFIX,
            n => self.lengths.last().copied().unwrap_or(n),
        };
        let hashed = usize::try_from(end).map_or(whole, |end| end.min(whole));
        ConsumedFile {
            content_id: content_id(&self.prefix[..hashed]),
            hashed_bytes: hashed as u64,
            consumed_bytes: end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_growing_file_keeps_its_first_line_and_matches_its_record() {
        assert!(Identity::of(b"no whole line yet").first_line().is_none());
        let small = b"INVITE|a|1\nBYE|a|2\n".to_vec();
        let first = Identity::of(&small);
        let record = first.consumed(small.len() as u64);
        assert_eq!(record.hashed_bytes, small.len() as u64);
        assert!(first.matches(&record));

        // The same file grown past PREFIX: another prefix, the same first line, and the first
        // record among its candidates.
        let mut grown = small.clone();
        while grown.len() < 2 * PREFIX {
            grown.extend_from_slice(b"INVITE|b|3\n");
        }
        let later = Identity::of(&grown[..PREFIX]);
        assert_eq!(later.first_line(), Some(&b"INVITE|a|1\n"[..]));
        assert_eq!(later.first_line(), first.first_line());
        assert!(later.candidates().any(|id| id == record.content_id));
        assert!(later.matches(&record));
        let record = later.consumed(grown.len() as u64);
        assert_eq!(record.hashed_bytes, PREFIX as u64);
        assert!(later.candidates().any(|id| id == record.content_id));

        // A prefix read while the last line was being written hashes only whole lines.
        let mut partial = small.clone();
        partial.extend_from_slice(b"INV");
        let record = Identity::of(&partial).consumed(1 << 20);
        assert_eq!(record.hashed_bytes, small.len() as u64);
        assert!(first.candidates().any(|id| id == record.content_id));

        // Another file is another file.
        assert!(!Identity::of(b"INVITE|x|1\n").matches(&record));
    }
}
