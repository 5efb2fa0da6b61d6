//! Which part of a log an earlier accounting run already read: files are known by content, not
//! by name, so a file that logrotate renamed or gzipped since is still the same file, and a
//! live file that grew since is read from where the last run stopped.
//!
//! A file is known by its first bytes ([`flatstore::cdr::identity`]), and the state keeps, per
//! file, how many bytes of whole lines were read.

use flatstore::cdr::identity::{Identity, PREFIX};
use flatstore::cdr::state::ConsumedFile;

use crate::content::Content;
use crate::exit::FileError;

/// The first bytes of a file's content (up to [`PREFIX`]), for [`ConsumedFiles::already_read`].
pub fn prefix(content: &mut Content<'_>) -> Result<Vec<u8>, FileError> {
    content.read_up_to(PREFIX)
}

/// The files consumed by every committed run, as the state carries them.
#[derive(Debug, Default)]
pub struct ConsumedFiles {
    files: Vec<ConsumedFile>,
}

impl ConsumedFiles {
    /// The ledger a state restored.
    pub fn new(files: Vec<ConsumedFile>) -> ConsumedFiles {
        ConsumedFiles { files }
    }

    /// The entries, for saving.
    pub fn files(&self) -> &[ConsumedFile] {
        &self.files
    }

    /// How many bytes of the file whose content starts with `prefix` were read by earlier runs
    /// (0 for a file never seen): the longest read of any entry that names the file.
    pub fn already_read(&self, prefix: &[u8]) -> u64 {
        let identity = Identity::of(prefix);
        self.files
            .iter()
            .filter(|file| identity.matches(file))
            .map(|file| file.consumed_bytes)
            .max()
            .unwrap_or(0)
    }

    /// Record that the file whose content starts with `prefix` has been read up to `end` (the
    /// end of its last whole line), replacing what was known of it.
    pub fn record(&mut self, prefix: &[u8], end: u64) {
        if end == 0 {
            return;
        }
        let identity = Identity::of(prefix);
        self.files.retain(|file| !identity.matches(file));
        self.files.push(identity.consumed(end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_known_by_its_first_bytes_and_read_on_from_where_it_stopped() {
        let mut ledger = ConsumedFiles::default();
        let small = b"INVITE|a|b|c|200|OK|1\n".to_vec();
        assert_eq!(ledger.already_read(&small), 0);
        ledger.record(&small, small.len() as u64);
        assert_eq!(ledger.already_read(&small), small.len() as u64);

        // The same file, grown since (a live file read again): the first run's part is known.
        let mut grown = small.clone();
        grown.extend_from_slice(b"BYE|a|b|c|200|OK|9\n");
        assert_eq!(ledger.already_read(&grown), small.len() as u64);
        ledger.record(&grown, grown.len() as u64);
        assert_eq!(ledger.files().len(), 1, "the grown file replaces its entry");
        assert_eq!(ledger.already_read(&grown), grown.len() as u64);

        // Another file is another file.
        assert_eq!(ledger.already_read(b"INVITE|x|y|z|200|OK|1\n"), 0);

        // A large file is named by its first PREFIX bytes.
        let large: Vec<u8> = b"0123456789abcde\n".repeat(1000);
        ledger.record(&large[..PREFIX], large.len() as u64);
        assert_eq!(ledger.already_read(&large[..PREFIX]), large.len() as u64);
        ledger.record(b"", 0);
        assert_eq!(ledger.files().len(), 2, "an empty read records nothing");
    }
}
