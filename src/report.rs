//! The library's own messages: what it says where no caller is waiting for an answer (a
//! world-writable log directory, a failed seal or sync, column names not recorded, records
//! lost at exit). Every such message goes through `report`, with a [`Level`], to one
//! process-wide sink: standard error by default (`flatstore: <message>`, [`to_stderr`]), or
//! the function a host handed over ([`set_sink`]: the C API's `flat_set_log`; the Kamailio
//! module's sink, Kamailio's own logging).
//!
//! Errors a caller receives are not reported here: they are returned (`Err`, a C code and
//! `flat_last_error`).
//!
//! One of the reports comes from a termination signal handler (records that cannot be written
//! at SIGTERM, `writer::buffer`). So neither `report` nor [`to_stderr`] takes a lock or
//! allocates: the message is formatted into a buffer on the stack, the sink is one atomic
//! load, and standard error is written with `writev(2)`. What the message's values do when
//! they are formatted is theirs (the text of an OS error, `std::io::Error`'s `Display`,
//! allocates a string).

use std::fmt;
use std::io::IoSlice;
use std::os::fd::AsFd as _;

use crate::sys::atomic_fn::AtomicFn;

/// How serious a message is. The library sends [`Level::Error`] and [`Level::Warning`]
/// today; a sink handles every level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Level {
    /// Something the library was asked to do failed (a seal, a sync, recording column names),
    /// or records were lost.
    Error,
    /// Something works but should be fixed (a log directory others can write to).
    Warning,
    /// Normal but significant.
    Notice,
    /// Informational.
    Info,
}

impl Level {
    /// The syslog(3) priority of the level: `LOG_ERR` (3), `LOG_WARNING` (4), `LOG_NOTICE` (5),
    /// `LOG_INFO` (6).
    pub const fn syslog_priority(self) -> i32 {
        match self {
            Level::Error => 3,
            Level::Warning => 4,
            Level::Notice => 5,
            Level::Info => 6,
        }
    }

    /// What [`to_stderr`] writes after `flatstore: ` for the level: nothing for an error.
    fn tag(self) -> &'static str {
        match self {
            Level::Error => "",
            Level::Warning => "warning: ",
            Level::Notice => "notice: ",
            Level::Info => "info: ",
        }
    }
}

/// A function that takes the library's messages: the level and the text, without a trailing
/// newline. It may be called from any thread of the process (the connection's helper
/// thread, too), at process exit, and from a termination signal handler (SIGTERM, SIGINT):
/// see [`set_sink`].
pub type MessageSink = fn(Level, &str);

/// The longest message in bytes; a longer one is cut at a character boundary and ends in
/// `...`.
pub const MAX_MESSAGE: usize = 2048;

/// The sink installed by [`set_sink`]; none: [`to_stderr`].
static SINK: AtomicFn<Level> = AtomicFn::none();

/// Send the library's messages to `sink` from now on, in this process and in the processes
/// it forks later; `None` restores standard error ([`to_stderr`]). A report already under way
/// on another thread may still go to the sink that was there before.
///
/// `sink` runs wherever a message arises: on the inserting thread, on the connection's helper
/// thread, in an `atexit` hook, and in the termination signal handler when buffered records
/// cannot be written at SIGTERM or SIGINT (`flush=0`). A sink that must not run in a signal
/// handler should do no more than the default does there ([`to_stderr`]).
pub fn set_sink(sink: Option<MessageSink>) {
    SINK.set(sink);
}

/// The default sink: one `writev(2)` to standard error of `flatstore: `, the level's tag
/// (`warning: `, `notice: `, `info: `; none for an error), the message and a newline. No lock,
/// no allocation. A failed write is ignored: there is nowhere left to say it.
pub fn to_stderr(level: Level, message: &str) {
    write_all(&[
        b"flatstore: ",
        level.tag().as_bytes(),
        message.as_bytes(),
        b"\n",
    ]);
}

/// Write every byte of `parts`, in order, to standard error, retrying after a partial write
/// or an interruption, and giving up on any other error.
fn write_all(parts: &[&[u8]; 4]) {
    let stderr = std::io::stderr();
    let mut done = 0;
    loop {
        let mut slices = [IoSlice::new(&[]); 4];
        let mut used = 0;
        let mut skip = done;
        for part in parts {
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            slices[used] = IoSlice::new(&part[skip..]);
            skip = 0;
            used += 1;
        }
        if used == 0 {
            return;
        }
        match nix::sys::uio::writev(stderr.as_fd(), &slices[..used]) {
            Ok(0) => return,
            Ok(written) => done += written,
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Report `message` at `level` to the process's sink. Formatted on the stack (at most
/// [`MAX_MESSAGE`] bytes; a NUL byte is written `\0`, so that the text is also a C string's),
/// then handed to the sink: no lock, no allocation (see the module's documentation).
pub(crate) fn report(level: Level, message: fmt::Arguments<'_>) {
    let mut text = Message::new();
    // An error only means the text was cut short (`Message` ends it with "...").
    let _ = fmt::write(&mut text, message);
    match SINK.get() {
        Some(sink) => sink(level, text.as_str()),
        None => to_stderr(level, text.as_str()),
    }
}

/// A message's text, formatted into a fixed buffer.
struct Message {
    bytes: [u8; MAX_MESSAGE],
    len: usize,
    cut: bool,
}

impl Message {
    const ELLIPSIS: &'static str = "...";

    fn new() -> Self {
        Message {
            bytes: [0; MAX_MESSAGE],
            len: 0,
            cut: false,
        }
    }

    fn as_str(&self) -> &str {
        // Only whole characters are copied in (see `push`): always UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    /// Append `s` whole and return true; or, when it does not fit, cut the text at the last
    /// character boundary that leaves room for the ellipsis, end it with the ellipsis, and
    /// return false (as every later call does).
    fn push(&mut self, s: &str) -> bool {
        if self.cut {
            return false;
        }
        if s.len() <= MAX_MESSAGE - self.len {
            self.bytes[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
            return true;
        }
        let limit = MAX_MESSAGE - Self::ELLIPSIS.len();
        if self.len <= limit {
            let mut take = limit - self.len;
            while !s.is_char_boundary(take) {
                take -= 1;
            }
            self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
            self.len += take;
        } else {
            // What is there is whole characters: back off to the start of one.
            self.len = limit;
            while self.bytes[self.len] & 0b1100_0000 == 0b1000_0000 {
                self.len -= 1;
            }
        }
        self.bytes[self.len..self.len + Self::ELLIPSIS.len()]
            .copy_from_slice(Self::ELLIPSIS.as_bytes());
        self.len += Self::ELLIPSIS.len();
        self.cut = true;
        false
    }
}

impl fmt::Write for Message {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut pieces = s.split('\0');
        let first = pieces.next().unwrap_or_default();
        let mut whole = self.push(first);
        for piece in pieces {
            whole = whole && self.push("\\0") && self.push(piece);
        }
        if whole { Ok(()) } else { Err(fmt::Error) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(args: fmt::Arguments<'_>) -> String {
        let mut text = Message::new();
        let _ = fmt::write(&mut text, args);
        text.as_str().to_owned()
    }

    #[test]
    fn a_message_is_its_text_with_nul_bytes_spelled_out() {
        assert_eq!(formatted(format_args!("a {} c", 'b')), "a b c");
        assert_eq!(formatted(format_args!("t{}", "a\0b")), "ta\\0b");
    }

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary_and_ends_in_an_ellipsis() {
        let long = "é".repeat(MAX_MESSAGE);
        let text = formatted(format_args!("x{long}"));
        assert!(text.len() <= MAX_MESSAGE, "{}", text.len());
        assert!(text.len() >= MAX_MESSAGE - 4, "{}", text.len());
        assert!(text.starts_with("xé") && text.ends_with("é..."), "{text}");
        let exact = "a".repeat(MAX_MESSAGE);
        assert_eq!(formatted(format_args!("{exact}")), exact);
        let over = formatted(format_args!("{exact}b"));
        assert_eq!(over.len(), MAX_MESSAGE);
        assert!(over.ends_with("a..."));
        let pieces = formatted(format_args!("{exact}{}", "more"));
        assert_eq!(pieces, over);
    }

    #[test]
    fn levels_are_syslog_priorities() {
        let priorities =
            [Level::Error, Level::Warning, Level::Notice, Level::Info].map(Level::syslog_priority);
        assert_eq!(
            priorities,
            [
                libc::LOG_ERR,
                libc::LOG_WARNING,
                libc::LOG_NOTICE,
                libc::LOG_INFO
            ]
        );
    }
}
