//! One log file's content: gzip decoded transparently (recognised by its magic bytes, whatever
//! the name), binary files refused, errors naming the file and telling corrupt data from a
//! refusal of the system. Memory is a few fixed-size buffers, whatever the file's size.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::fd::AsFd as _;
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use crate::exit::{FileError, Status};
use crate::listing::ListedFile;
use crate::progress::{Progress, Tracked};

/// Longest line accepted. flatstore records are far shorter; a longer "line" means the file is
/// no flatstore log, and holding it would let memory grow with the input.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// Size of the read buffers.
const CHUNK: usize = 256 * 1024;
/// How much of the content is looked at for a NUL byte (git's rule for "binary").
const BINARY_PROBE: usize = 8000;
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

/// The content of one open log file.
pub struct Content<'a> {
    reader: Box<dyn BufRead + 'a>,
    gzip: bool,
    path: &'a Path,
    /// Content bytes consumed so far.
    position: u64,
    /// Bytes put back by [`Content::unread`], read again before the reader's from
    /// `pending_at` on (a plain buffer, not a chain of readers: reading costs nothing more once
    /// it is used up).
    pending: Vec<u8>,
    pending_at: usize,
}

/// Open `file` for reading its content, counting the bytes read from disk in `progress`.
///
/// Fails with [`FileError::Io`] when the system refuses, with [`FileError::Bad`] when the name
/// ends in `.gz` but the content is not gzip, or when the first 8000 bytes of content hold a
/// NUL byte (binary: no flatstore log starts so).
pub fn open<'a>(file: &'a ListedFile, progress: &'a Progress) -> Result<Content<'a>, FileError> {
    open_buffered(file, progress, CHUNK)
}

/// [`open`] with read buffers of `capacity` bytes (smaller for readers that keep many files
/// open at once).
pub fn open_buffered<'a>(
    file: &'a ListedFile,
    progress: &'a Progress,
    capacity: usize,
) -> Result<Content<'a>, FileError> {
    let path = file.path.as_path();
    let io_error = |source| FileError::Io {
        path: path.to_owned(),
        source,
    };
    let handle = if file.is_stdin() {
        // Our own descriptor for it, read through our buffers like any file.
        io::stdin().as_fd().try_clone_to_owned().map(File::from)
    } else {
        File::open(path)
    }
    .map_err(io_error)?;
    let mut raw = BufReader::with_capacity(capacity, Tracked::new(handle, progress));
    let gzip = raw.fill_buf().map_err(io_error)?.starts_with(GZIP_MAGIC);
    if !gzip && file.file_name.ends_with(".gz") {
        return Err(bad(path, "corrupt gzip: not in gzip format".into()));
    }
    let reader: Box<dyn BufRead + 'a> = if gzip {
        Box::new(BufReader::with_capacity(capacity, MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };
    let mut content = Content {
        reader,
        gzip,
        path,
        position: 0,
        pending: Vec::new(),
        pending_at: 0,
    };
    let head = content.fill()?;
    if let Some(at) = head.iter().take(BINARY_PROBE).position(|&b| b == 0) {
        return Err(bad(
            path,
            format!("binary content (a NUL byte at offset {at}): not a flatstore log"),
        ));
    }
    Ok(content)
}

fn bad(path: &Path, what: String) -> FileError {
    FileError::Bad {
        path: path.to_owned(),
        what,
    }
}

impl<'a> Content<'a> {
    /// The path of the file.
    pub fn path(&self) -> &'a Path {
        self.path
    }

    /// The file is gzip (its size on disk is not the size of its content).
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Call `each` with the content (decompressed), chunk by chunk (never empty), to its end.
    pub fn for_each_chunk<E>(
        &mut self,
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), Stop<E>> {
        loop {
            let chunk = self.fill().map_err(Stop::Read)?;
            if chunk.is_empty() {
                return Ok(());
            }
            let n = chunk.len();
            each(chunk).map_err(Stop::Sink)?;
            self.consume(n);
        }
    }

    /// Content bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Up to `n` more bytes of content (fewer at the end), consumed.
    pub fn read_up_to(&mut self, n: usize) -> Result<Vec<u8>, FileError> {
        let mut bytes = Vec::with_capacity(n);
        while bytes.len() < n {
            let chunk = self.fill()?;
            if chunk.is_empty() {
                break;
            }
            let take = chunk.len().min(n - bytes.len());
            bytes.extend_from_slice(&chunk[..take]);
            self.consume(take);
        }
        Ok(bytes)
    }

    /// Put `bytes`, the last bytes consumed, back in front of the content, to be read again:
    /// a look at the start of a file that is opened once (standard input cannot be opened
    /// twice).
    pub fn unread(&mut self, mut bytes: Vec<u8>) {
        self.position -= bytes.len() as u64;
        bytes.extend_from_slice(&self.pending[self.pending_at..]);
        self.pending = bytes;
        self.pending_at = 0;
    }

    /// Read the next line into `line` (cleared first, without its `\n`): `Ok(Some(true))` for
    /// a whole line, `Ok(Some(false))` for a last line without a newline (torn), `Ok(None)` at
    /// the end. A line longer than [`MAX_LINE`] is [`FileError::Bad`].
    pub fn next_line(&mut self, line: &mut Vec<u8>) -> Result<Option<bool>, FileError> {
        line.clear();
        loop {
            let chunk = self.fill()?;
            if chunk.is_empty() {
                return Ok((!line.is_empty()).then_some(false));
            }
            let (take, whole) = match memchr::memchr(b'\n', chunk) {
                Some(end) => (end + 1, true),
                None => (chunk.len(), false),
            };
            line.extend_from_slice(&chunk[..take - usize::from(whole)]);
            self.consume(take);
            if whole {
                return Ok(Some(true));
            }
            if line.len() > MAX_LINE {
                return Err(bad(
                    self.path,
                    "a line is longer than 16 MiB: not a flatstore log".into(),
                ));
            }
        }
    }

    /// The next bytes of content; empty at the end. Until [`Content::consume`] the same bytes
    /// are returned again.
    fn fill(&mut self) -> Result<&[u8], FileError> {
        if self.pending_at < self.pending.len() {
            return Ok(&self.pending[self.pending_at..]);
        }
        match self.reader.fill_buf() {
            Ok(bytes) => Ok(bytes),
            // The decoder's verdicts on its input; anything else came from the file.
            Err(e)
                if self.gzip
                    && matches!(
                        e.kind(),
                        io::ErrorKind::InvalidInput
                            | io::ErrorKind::InvalidData
                            | io::ErrorKind::UnexpectedEof
                    ) =>
            {
                Err(bad(
                    self.path,
                    format!("corrupt gzip after {} bytes of content: {e}", self.position),
                ))
            }
            Err(source) => Err(FileError::Io {
                path: self.path.to_owned(),
                source,
            }),
        }
    }

    /// Mark the first `n` bytes of the last [`Content::fill`] as used.
    fn consume(&mut self, n: usize) {
        if self.pending_at < self.pending.len() {
            self.pending_at += n;
            if self.pending_at == self.pending.len() {
                self.pending = Vec::new();
                self.pending_at = 0;
            }
        } else {
            self.reader.consume(n);
        }
        self.position += n as u64;
    }
}

/// Why reading a file's content stopped early.
#[derive(Debug)]
pub enum Stop<E> {
    /// The file could not be read on, or is no flatstore log.
    Read(FileError),
    /// The callback failed.
    Sink(E),
}

/// Report a read error to `status` (the reader goes on with the next file); hand back the
/// callback's error.
pub fn reported<E>(result: Result<(), Stop<E>>, status: &mut Status) -> Result<(), E> {
    match result {
        Ok(()) => Ok(()),
        Err(Stop::Read(e)) => {
            status.file_error(&e);
            Ok(())
        }
        Err(Stop::Sink(e)) => Err(e),
    }
}
