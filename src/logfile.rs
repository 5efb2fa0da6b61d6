//! One open log file: how it is opened and how whole lines reach it.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An append-only log file opened by this process.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    path: PathBuf,
}

impl LogFile {
    /// Open `path` for appending, creating it if needed, never through a symlink.
    ///
    /// Flags: `O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC|O_NOFOLLOW`. A new file gets `mode` exactly
    /// when one is given, else `0666` less the umask.
    pub fn open(path: &Path, mode: Option<u32>) -> Result<LogFile> {
        let fail = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        let options = |create_new: bool| {
            let mut o = OpenOptions::new();
            o.append(true)
                .custom_flags(libc::O_NOFOLLOW)
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
        let log = LogFile {
            file,
            path: path.to_owned(),
        };
        log.end_torn_line()?;
        Ok(log)
    }

    /// A file that does not end in `\n` ends in a torn line, left by a crash of the machine
    /// (or a writer that was not flatstore): close it with a `\n` so that the next record
    /// starts on a line of its own. The torn record itself stays as it is, for `flatstore
    /// verify` to report.
    fn end_torn_line(&self) -> Result<()> {
        let len = self
            .file
            .metadata()
            .map_err(|source| Error::Open {
                path: self.path.clone(),
                source,
            })?
            .len();
        if len == 0 {
            return Ok(());
        }
        // The descriptor is write-only: read the last byte through a read-only descriptor of
        // the same open file (not of the path, which a rotation may have moved). Without
        // /proc the check is skipped.
        let mut last = [0u8];
        let read = File::open(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
            .and_then(|reader| reader.read_exact_at(&mut last, len - 1));
        if read.is_ok() && last[0] != b'\n' {
            self.write_lines(b"\n")?;
        }
        Ok(())
    }

    /// Append `bytes` (whole lines) with one `write(2)`.
    ///
    /// The kernel writes a regular file short only when it runs out of space or hits a size
    /// limit; the rest is then retried so the line is completed if at all possible.
    pub fn write_lines(&self, bytes: &[u8]) -> Result<()> {
        let mut written = 0;
        self.write_lines_counted(bytes, &mut written)
    }

    /// [`LogFile::write_lines`], telling in `written` how many bytes of whole lines are in the
    /// file, also when it fails. A failure never leaves part of a line behind: when the disk
    /// fills in the middle of a line, the file is cut back to the end of the last whole line.
    pub fn write_lines_counted(&self, bytes: &[u8], written: &mut usize) -> Result<()> {
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
