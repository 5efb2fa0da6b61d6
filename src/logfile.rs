//! One open log file: how it is opened and how whole lines reach it.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
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
        Ok(LogFile {
            file,
            path: path.to_owned(),
        })
    }

    /// Append `bytes` (whole lines) with one `write(2)`.
    ///
    /// The kernel writes a regular file short only when it runs out of space or hits a size
    /// limit; the rest is then retried so the line is completed if at all possible.
    pub fn write_lines(&self, bytes: &[u8]) -> Result<()> {
        let mut written = 0;
        self.write_lines_counted(bytes, &mut written)
    }

    /// [`LogFile::write_lines`], telling in `written` how many bytes reached the file, also
    /// when it fails.
    #[inline]
    pub fn write_lines_counted(&self, bytes: &[u8], written: &mut usize) -> Result<()> {
        *written = 0;
        while *written < bytes.len() {
            match (&self.file).write(&bytes[*written..]) {
                Ok(0) => return Err(self.write_error(ErrorKind::WriteZero.into())),
                Ok(n) => *written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.write_error(e)),
            }
        }
        Ok(())
    }

    fn write_error(&self, source: io::Error) -> Error {
        Error::Write {
            path: self.path.clone(),
            source,
        }
    }
}
