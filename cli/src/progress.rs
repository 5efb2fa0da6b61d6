//! Progress on standard error, for long runs: shown only when standard error is a terminal
//! (and standard output is not, for the commands that stream records there) and the input is
//! larger than [`THRESHOLD`]; quiet when piped or redirected.

use std::cell::Cell;
use std::io::{self, IsTerminal as _, Read};
use std::time::{Duration, Instant};

/// Inputs up to this many bytes (on disk) run without progress.
pub const THRESHOLD: u64 = 64 * 1024 * 1024;
/// The progress line is redrawn at most this often.
const EVERY: Duration = Duration::from_millis(200);

/// Bytes read out of a known total, drawn as one line that rewrites itself.
#[derive(Debug)]
pub struct Progress {
    label: &'static str,
    total: u64,
    done: Cell<u64>,
    start: Instant,
    /// When the line was last drawn; `None` when progress is not shown at all.
    drawn: Option<Cell<Option<Instant>>>,
}

/// Progress is shown on a terminal, for inputs larger than [`THRESHOLD`].
pub fn wanted(terminal: bool, total: u64) -> bool {
    terminal && total > THRESHOLD
}

impl Progress {
    /// Progress of the command `label` over `total` bytes on disk. `streaming`: the command
    /// writes records to standard output as it goes, so a terminal there gets no progress
    /// line in between.
    pub fn new(label: &'static str, total: u64, streaming: bool) -> Progress {
        let terminal = io::stderr().is_terminal() && !(streaming && io::stdout().is_terminal());
        let shown = wanted(terminal, total);
        Progress {
            label,
            total,
            done: Cell::new(0),
            start: Instant::now(),
            drawn: shown.then(|| Cell::new(None)),
        }
    }

    /// `n` more bytes were read from disk.
    pub fn advance(&self, n: usize) {
        let done = self.done.get() + n as u64;
        self.done.set(done);
        let Some(drawn) = &self.drawn else { return };
        let now = Instant::now();
        // The first line after EVERY: a short run draws nothing.
        if now - drawn.get().unwrap_or(self.start) >= EVERY {
            drawn.set(Some(now));
            let line = render(self.label, done, self.total, now - self.start);
            eprint!("\r{line}\x1b[K");
        }
    }

    /// Erase the progress line, if one was drawn.
    pub fn finish(&self) {
        if self.drawn.as_ref().is_some_and(|d| d.get().is_some()) {
            eprint!("\r\x1b[K");
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The progress line: `flatstore cat: 512 of 2048 MiB (25%), 530 MB/s`.
fn render(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let percent = done.saturating_mul(100) / total.max(1);
    let rate = done as f64 / 1e6 / elapsed.as_secs_f64().max(1e-3);
    format!(
        "flatstore {label}: {:.0} of {:.0} MiB ({percent}%), {rate:.0} MB/s",
        mib(done),
        mib(total)
    )
}

/// A reader that counts what it reads in a [`Progress`].
#[derive(Debug)]
pub struct Tracked<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<'a, R> Tracked<'a, R> {
    /// Count what `inner` reads in `progress`.
    pub fn new(inner: R, progress: &'a Progress) -> Self {
        Tracked { inner, progress }
    }
}

impl<R: Read> Read for Tracked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_on_a_terminal_for_large_inputs_only() {
        assert!(wanted(true, THRESHOLD + 1));
        assert!(!wanted(true, THRESHOLD));
        assert!(!wanted(false, 100 * THRESHOLD));
    }

    #[test]
    fn the_line_says_how_far_and_how_fast() {
        let mib = 1024 * 1024;
        assert_eq!(
            render("cat", 512 * mib, 2048 * mib, Duration::from_secs(1)),
            "flatstore cat: 512 of 2048 MiB (25%), 537 MB/s"
        );
    }

    #[test]
    fn tracked_reads_are_counted() {
        let progress = Progress::new("test", 10, false);
        let mut reader = Tracked::new(&b"0123456789"[..], &progress);
        let mut buf = [0; 4];
        assert_eq!(reader.read(&mut buf).expect("read"), 4);
        assert_eq!(reader.read(&mut [0; 16]).expect("read"), 6);
        assert_eq!(progress.done.get(), 10);
    }
}
