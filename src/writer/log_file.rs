//! One open log file: how it is opened and how whole lines reach it.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::names;
use crate::sys::flock::{FileLock, try_flock};

/// The longest torn tail moved aside; a longer run of bytes without a newline is not a log.
const MAX_TORN: u64 = 16 << 20;

/// Offset just after the last `\n` of the first `len` bytes of `file` (0 if there is none).
fn last_line_end(file: &File, len: u64) -> io::Result<u64> {
    let mut chunk = [0u8; 4096];
    let mut end = len;
    while end > 0 && len - end <= MAX_TORN {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(end)
}

/// How long [`LogFile::open`] waits for a sealer that holds the file at the live path.
pub(crate) const SEALER_PATIENCE: Duration = Duration::from_millis(200);

/// What [`LogFile::claim_abandoned`] found at a live path.
#[derive(Debug)]
pub(crate) enum Claim {
    /// No writer has the file open; it is held exclusively until dropped.
    Abandoned(LogFile),
    /// A live writer has it open.
    Held,
    /// No file there (any more).
    Missing,
}

/// Why a log path that is not a regular file is refused.
const PLANTED: &str = "not a regular file (something else was planted at the log path)";

/// An append-only log file opened by this process.
#[derive(Debug)]
pub(crate) struct LogFile {
    file: File,
    path: PathBuf,
}

impl LogFile {
    /// Open `path` for appending, creating it if needed, never through a symlink.
    ///
    /// Flags: `O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC|O_NOFOLLOW|O_NONBLOCK`; anything but a
    /// regular file at the path is refused. A new file gets `mode` exactly when one is given,
    /// else `0666` less the umask.
    ///
    /// The open holds a shared `flock(2)` lock on the file for as long as it is open: writers
    /// never wait for each other, but `flatstore seal` (see [`LogFile::claim_abandoned`])
    /// knows that the file has a writer. While a sealer holds the file (microseconds), the
    /// open waits for it and then opens the next file at the path; after
    /// [`SEALER_PATIENCE`] it fails with [`Error::SealerTimeout`] instead.
    /// Where the file system has no `flock`, the file is opened without the lock.
    pub(crate) fn open(path: &Path, mode: Option<u32>) -> Result<LogFile> {
        let started = Instant::now();
        loop {
            let log = LogFile::open_plain(path, mode)?;
            let sealer_in_the_way = match try_flock(&log.file, FileLock::Shared) {
                // Between the open and the lock, a sealer may have renamed the file away.
                Ok(locked) => !locked || !log.is_at_its_path(),
                Err(_) => false,
            };
            if !sealer_in_the_way {
                log.end_torn_line(mode)?;
                return Ok(log);
            }
            if started.elapsed() >= SEALER_PATIENCE {
                return Err(Error::SealerTimeout {
                    path: path.to_owned(),
                    waited: SEALER_PATIENCE,
                });
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Claim the live file `path` of a writer that is gone, to seal it: open it without
    /// creating it and take an exclusive `flock(2)` lock without waiting, which succeeds only
    /// when no process has the file open for writing (every writer holds a shared lock, see
    /// [`LogFile::open`]; the lock of a killed writer went with it). A torn last line is moved
    /// aside as on any open. While the claim is held, writers opening the path wait; rename
    /// the file and drop the claim at once.
    pub(crate) fn claim_abandoned(path: &Path) -> Result<Claim> {
        let fail = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        let opened = OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path);
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Claim::Missing),
            Err(e) => return Err(fail(e)),
        };
        if !file.metadata().map_err(fail)?.is_file() {
            return Err(fail(io::Error::other(PLANTED)));
        }
        let log = LogFile {
            file,
            path: path.to_owned(),
        };
        if !try_flock(&log.file, FileLock::Exclusive).map_err(fail)? {
            return Ok(Claim::Held);
        }
        if !log.is_at_its_path() {
            return Ok(Claim::Missing);
        }
        log.end_torn_line(None)?;
        Ok(Claim::Abandoned(log))
    }

    /// [`LogFile::open`] without the torn-line check.
    fn open_plain(path: &Path, mode: Option<u32>) -> Result<LogFile> {
        let fail = |source: io::Error| Error::Open {
            path: path.to_owned(),
            source: if source.raw_os_error() == Some(libc::ENXIO) {
                // What O_NONBLOCK gives for a FIFO (or socket) without a reader.
                io::Error::other(PLANTED)
            } else {
                source
            },
        };
        let options = |create_new: bool| {
            let mut o = OpenOptions::new();
            // O_NONBLOCK: a FIFO planted at the path must not hang the host in open(2).
            o.append(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .mode(mode.unwrap_or(0o666));
            if create_new {
                o.create_new(true);
            } else {
                o.create(mode.is_none());
            }
            o
        };
        let file = match mode {
            None => options(false).open(path).map_err(fail)?,
            // Apply the mode exactly (not less the umask), but only to a file we create.
            Some(mode) => loop {
                match options(true).open(path) {
                    Ok(file) => {
                        file.set_permissions(Permissions::from_mode(mode))
                            .map_err(fail)?;
                        break file;
                    }
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(fail(e)),
                }
                match options(false).open(path) {
                    Ok(file) => break file,
                    // Renamed away between the two opens: create it again.
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(fail(e)),
                }
            },
        };
        let kind = file.metadata().map_err(fail)?.file_type();
        if !kind.is_file() {
            return Err(fail(io::Error::other(PLANTED)));
        }
        Ok(LogFile {
            file,
            path: path.to_owned(),
        })
    }

    /// A file that does not end in `\n` ends in a torn line: the record a writer was writing
    /// when it was killed (Linux can stop a `write(2)` between pages on `kill -9`) or when the
    /// machine lost power. The torn bytes are moved out of the log, appended as one line to
    /// the hidden file `.<name>.torn` beside it (for `flatstore verify` to report), and the log
    /// is cut back to its last whole line: the next record starts on a line of its own and no
    /// billing run ever reads a cut-short record. A tail of more than 16 MiB without a newline
    /// is not a log: the open is refused.
    fn end_torn_line(&self, mode: Option<u32>) -> Result<()> {
        let fail = |source| Error::Open {
            path: self.path.clone(),
            source,
        };
        let len = self.file.metadata().map_err(fail)?.len();
        if len == 0 {
            return Ok(());
        }
        // The descriptor is write-only: read through a read-only descriptor of the same open
        // file (not of the path, which a rotation may have moved). Without /proc the check is
        // skipped.
        let Ok(reader) = File::open(format!("/proc/self/fd/{}", self.file.as_raw_fd())) else {
            return Ok(());
        };
        let whole = last_line_end(&reader, len).map_err(fail)?;
        if whole == len {
            return Ok(());
        }
        if len - whole > MAX_TORN {
            return Err(fail(io::Error::other(format!(
                "ends in {} bytes without a newline: not a flatstore log",
                len - whole
            ))));
        }
        let mut torn = vec![0u8; (len - whole) as usize];
        reader.read_exact_at(&mut torn, whole).map_err(fail)?;
        torn.push(b'\n');
        LogFile::open_plain(&names::torn_aside(&self.path), mode)?.write_lines(&torn)?;
        self.file.set_len(whole).map_err(fail)
    }

    /// True when the file holds no bytes.
    pub(crate) fn is_empty(&self) -> Result<bool> {
        self.file
            .metadata()
            .map(|m| m.len() == 0)
            .map_err(|source| self.write_error(source))
    }

    /// True when `self.path` still names this open file (no one renamed it away).
    pub(crate) fn is_at_its_path(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        match (self.file.metadata(), std::fs::symlink_metadata(&self.path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        }
    }

    /// The path the file was opened at (it may have been renamed since).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Force the written data to stable storage (`fdatasync`).
    pub(crate) fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|source| self.write_error(source))
    }

    /// A second descriptor of this open file, to sync it without holding up writers.
    pub(crate) fn try_clone(&self) -> Result<LogFile> {
        Ok(LogFile {
            file: self
                .file
                .try_clone()
                .map_err(|source| self.write_error(source))?,
            path: self.path.clone(),
        })
    }

    /// Append `bytes` (whole lines) with one `write(2)`.
    ///
    /// The kernel writes a regular file short only when it runs out of space or hits a size
    /// limit; the rest is then retried so the line is completed if at all possible.
    pub(crate) fn write_lines(&self, bytes: &[u8]) -> Result<()> {
        let mut written = 0;
        self.write_lines_counted(bytes, &mut written)
    }

    /// [`LogFile::write_lines`], telling in `written` how many bytes of whole lines are in the
    /// file, also when it fails. A failure never leaves part of a line behind: when the disk
    /// fills in the middle of a line, the file is cut back to the end of the last whole line.
    #[inline]
    pub(crate) fn write_lines_counted(&self, bytes: &[u8], written: &mut usize) -> Result<()> {
        *written = 0;
        while *written < bytes.len() {
            let error = match (&self.file).write(&bytes[*written..]) {
                Ok(0) => ErrorKind::WriteZero.into(),
                Ok(n) => {
                    *written += n;
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => e,
            };
            return Err(self.cut_partial_line(bytes, written, error));
        }
        Ok(())
    }

    /// After a failed write of which `written` bytes reached the file: remove the bytes of
    /// the line that did not fit (the file is this process's alone, so they are its last
    /// bytes) and leave `written` at the end of the last whole line.
    fn cut_partial_line(&self, bytes: &[u8], written: &mut usize, error: io::Error) -> Error {
        let whole = bytes[..*written]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let partial = (*written - whole) as u64;
        *written = whole;
        if partial == 0 {
            return self.write_error(error);
        }
        let cut = self
            .file
            .metadata()
            .and_then(|m| self.file.set_len(m.len().saturating_sub(partial)));
        match cut {
            Ok(()) => self.write_error(error),
            Err(cut) => self.write_error(io::Error::new(
                error.kind(),
                format!("{error}; the partial line could not be removed: {cut}"),
            )),
        }
    }

    fn write_error(&self, source: io::Error) -> Error {
        Error::Write {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FLATSTORE_E_SEALER_TIMEOUT;

    /// A writer that finds the live file held by a sealer for longer than it waits fails with
    /// its own error (and C code) naming the file, not an open error; once the sealer lets go
    /// the file opens.
    #[test]
    fn a_file_held_by_a_sealer_too_long_is_a_sealer_timeout() {
        let dir = std::env::temp_dir().join(format!("flatstore-sealer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let live = dir.join("acc_3.log");
        std::fs::write(&live, b"one\n").expect("write");
        let Claim::Abandoned(sealer) = LogFile::claim_abandoned(&live).expect("claim") else {
            panic!("no writer has the file open");
        };
        let started = Instant::now();
        let error = LogFile::open(&live, None).expect_err("held by the sealer");
        assert!(
            started.elapsed() >= SEALER_PATIENCE,
            "waited for the sealer first"
        );
        assert!(matches!(error, Error::SealerTimeout { .. }), "{error:?}");
        assert_eq!(error.code(), FLATSTORE_E_SEALER_TIMEOUT);
        let message = error.to_string();
        assert!(
            message.contains("acc_3.log") && message.contains("sealer"),
            "{message}"
        );
        drop(sealer);
        LogFile::open(&live, None).expect("open once the sealer let go");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
