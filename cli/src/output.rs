//! Standard output. The frame that `cat` and `export` share: show progress, write to standard
//! output in large blocks, and turn what happened into the exit status; and the reports of
//! `verify` and `stats`.

use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::os::fd::AsFd as _;
use std::process::ExitCode;

use crate::content::{self, Content};
use crate::exit::Status;
use crate::listing::ListedFile;
use crate::progress::Progress;

/// Bytes gathered before a write to standard output.
const OUTPUT_BUFFER: usize = 256 * 1024;

/// Standard output, buffered by us (not line by line as `io::stdout()` is).
pub type BufferedStdout = BufWriter<File>;

/// Write `preamble`, then `files` to standard output, one after the other, each with
/// `write_file`. A file that cannot be opened is reported to `status` and skipped; trouble
/// inside a file is `write_file`'s to report; an `Err` from it is a failed write and ends the
/// run.
pub fn write_files(
    label: &'static str,
    files: &[ListedFile],
    preamble: &[u8],
    status: &mut Status,
    mut write_file: impl FnMut(&mut Content<'_>, &mut BufferedStdout, &mut Status) -> io::Result<()>,
) -> ExitCode {
    let progress = Progress::new(label, files.iter().map(|f| f.size).sum(), true);
    let written = io::stdout().as_fd().try_clone_to_owned().and_then(|fd| {
        let mut out = BufWriter::with_capacity(OUTPUT_BUFFER, File::from(fd));
        out.write_all(preamble)?;
        for file in files {
            match content::open(file, &progress) {
                Ok(mut content) => write_file(&mut content, &mut out, status)?,
                Err(e) => status.file_error(&e),
            }
        }
        out.flush()
    });
    progress.finish();
    if let Err(e) = written {
        status.output_failed(&e);
    }
    status.exit_code()
}

/// Write a report to standard output; a failed write goes to `status`.
pub fn print_report(report: &str, status: &mut Status) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(report.as_bytes()).and_then(|()| out.flush()) {
        status.output_failed(&e);
    }
}

/// A report as one line of JSON (serde_json), for `--json`.
pub fn json_report(report: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string(report)
        .unwrap_or_else(|e| unreachable!("a report has string keys and no failing value: {e}"));
    text.push('\n');
    text
}
