//! The exactly-once commit of an incremental accounting run: its output and its state change
//! together or not at all, whatever moment the run is killed at.
//!
//! The output file is a journal that runs append to. The state records which file that is
//! (device and inode) and how long it was when the state was committed. A run first cuts the
//! output back to that length (dropping what a killed run appended and never committed),
//! appends its rows, syncs them, then commits by renaming a new state over the old one. Killed
//! before the rename, the run left nothing: the next run cuts its rows off and makes them
//! again. Killed after it, the rows and the state agree. An output file that is not the one
//! the state names (moved away by the consumer, or never written) starts a new journal.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use flatstore::cdr::state::OutputMark;

/// The output of a committed run, opened for appending the next run's rows.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl Journal {
    /// Open `path` for the run after the commit `mark`: the same file is cut back to the
    /// committed length; a file that is not the one `mark` names is taken as a new journal
    /// only when it is empty or missing (it is created), else it is refused, never cut.
    /// Returns the journal and whether it is empty (a header is due).
    pub fn open(path: &Path, mark: Option<OutputMark>) -> io::Result<(Journal, bool)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let meta = file.metadata()?;
        let ours = mark.filter(|m| m.device == meta.dev() && m.inode == meta.ino());
        match ours {
            Some(mark) if meta.len() >= mark.length => file.set_len(mark.length)?,
            Some(mark) => {
                return Err(io::Error::other(format!(
                    "{} is shorter ({} bytes) than its committed {} bytes: it was cut by \
                     someone else; move it away to start a new one",
                    path.display(),
                    meta.len(),
                    mark.length
                )));
            }
            None if meta.len() == 0 => {}
            None => {
                return Err(io::Error::other(format!(
                    "{} is not the output the state was committed with and is not empty: \
                     move it away (a consumer takes the whole file), or give another --output",
                    path.display()
                )));
            }
        }
        let empty = file.metadata()?.len() == 0;
        let journal = Journal {
            file,
            path: path.to_owned(),
            device: meta.dev(),
            inode: meta.ino(),
        };
        Ok((journal, empty))
    }

    /// Append `bytes` (whole rows).
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::io::Seek as _;
        self.file.seek(io::SeekFrom::End(0))?;
        self.file.write_all(bytes)
    }

    /// Sync what was appended and give the mark to commit with the state.
    pub fn sync(&mut self) -> io::Result<OutputMark> {
        self.file.sync_data()?;
        Ok(OutputMark {
            device: self.device,
            inode: self.inode,
            length: self.file.metadata()?.len(),
        })
    }

    /// The journal's path, for reports.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the journal's content begins with `first` (its header line, say).
    pub fn begins_with(&self, first: &[u8]) -> io::Result<bool> {
        use std::os::unix::fs::FileExt as _;
        let mut begins = vec![0; first.len()];
        match self.file.read_exact_at(&mut begins, 0) {
            Ok(()) => Ok(begins == first),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Ends the journal: it is renamed to a free name beside it (its name, `.`, the time as
    /// `20261123T100000Z`), durably, and that name returned. Its committed rows stay in it;
    /// the next [`Journal::open`] of its path begins a new journal, as when a consumer takes
    /// the file. Killed at any moment, the rename happened or not, and either way the state
    /// still holds: the mark names this file, wherever it is.
    pub fn retire(self) -> io::Result<PathBuf> {
        let stamp = crate::time::file_name_time(std::time::SystemTime::now());
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{stamp}"));
        let mut to = self.path.with_file_name(&name);
        let mut n = 1;
        while fs::symlink_metadata(&to).is_ok() {
            let mut numbered = name.clone();
            numbered.push(format!(".{n}"));
            to = self.path.with_file_name(numbered);
            n += 1;
        }
        fs::rename(&self.path, &to)?;
        sync_directory_of(&self.path)?;
        Ok(to)
    }
}

/// Syncs the directory holding `path`, so that a rename in it is durable.
fn sync_directory_of(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Replace the file at `path` by `bytes` atomically and durably: a temporary file beside it,
/// synced, renamed over it, and the directory synced. A reader (or a run after a crash) sees
/// the old content or the new, never a mix.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temporary = path.with_file_name(name);
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, path)?;
    sync_directory_of(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flatstore-commit-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn an_uncommitted_tail_is_cut_and_a_foreign_file_is_never_touched() {
        let dir = scratch("journal");
        let out = dir.join("cdr.csv");
        let (mut journal, empty) = Journal::open(&out, None).expect("new journal");
        assert!(empty);
        journal.append(b"header\r\nrow 1\r\n").expect("append");
        let mark = journal.sync().expect("sync");
        journal
            .append(b"row 2 of a run killed before its commit\r\n")
            .expect("append");
        drop(journal);

        let (mut journal, empty) = Journal::open(&out, Some(mark)).expect("same journal");
        assert!(!empty);
        assert_eq!(fs::read(&out).expect("read"), b"header\r\nrow 1\r\n");
        journal.append(b"row 2\r\n").expect("append");
        let mark = journal.sync().expect("sync");
        drop(journal);

        // The consumer took the file: a new journal starts.
        fs::rename(&out, dir.join("taken.csv")).expect("take");
        let (_, empty) = Journal::open(&out, Some(mark)).expect("new journal");
        assert!(empty);
        // Someone else's non-empty file is refused, and left as it was.
        fs::write(&out, b"not ours\n").expect("plant");
        assert!(Journal::open(&out, Some(mark)).is_err());
        assert_eq!(fs::read(&out).expect("read"), b"not ours\n");
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_replaced_file_holds_the_new_bytes_only() {
        let dir = scratch("replace");
        let state = dir.join("acc.state");
        replace(&state, b"one").expect("first");
        replace(&state, b"two").expect("second");
        assert_eq!(fs::read(&state).expect("read"), b"two");
        assert!(!dir.join("acc.state.tmp").exists());
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
