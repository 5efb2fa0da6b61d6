//! `flatstore cat`: every record of a table, from all its files, as one stream.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use flatstore::cdr::TimeWindow;
use flatstore::columns;

use crate::content::{self, Content};
use crate::error::CliError;
use crate::exit::{IO_ERROR, Status};
use crate::inputs::{self, Chosen};
use crate::lines;
use crate::listing::Selection;
use crate::output::{self, BufferedStdout};
use crate::window::{self, Picker};

/// Every record of TABLE, from all its files (or of the files given), as one stream.
///
/// DIR TABLE: rotated files first, oldest first (gzip read transparently): stamped names
/// (-20261123) by stamp, then counted ones, .3 before .2 before .1; then the sealed ones
/// (.sealed-20261123T174512.123456789Z) by seal time, across writers; then, with --live, the
/// live files; within each step by writer number N. With --sealed-only, the sealed files
/// alone.
///
/// FILE…: these files (a copied file, a shell glob; - for standard input), gzipped or not;
/// those named as a table's logs in the order above, the others after them as given.
///
/// Bytes as they are, except that a torn last line is ended with a newline, so that it cannot
/// run into the next file's first record. --since/--until keep the records whose time (the
/// column named time in TABLE.columns, else the 7th column) is in the window.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// DIR TABLE: the table's files in the log directory. Or FILE…: these files, - for
    /// standard input. A first argument that is a directory means DIR TABLE.
    #[arg(value_name = "DIR TABLE | FILE", required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    selection: Selection,
}

/// Exit status 0 when every file was read whole and ends with a newline, 1 when a file is
/// corrupt, binary or ends in a torn line, or a record's time cannot be read for
/// --since/--until (the rest is still written), 2 on usage and I/O errors.
pub fn run(args: &Args) -> ExitCode {
    let mut status = Status::default();
    let Some(chosen) = inputs::choose(&args.inputs, &args.selection, &mut status) else {
        return status.exit_code();
    };
    let window = TimeWindow::from(args.selection.records);
    if !window.is_set() {
        return output::write_files("cat", &chosen.files, b"", &mut status, copy_file);
    }
    let mut picker = match time_column(&chosen) {
        Ok(column) => Picker::new(window, column),
        Err(message) => {
            eprintln!("flatstore: {message}");
            return ExitCode::from(IO_ERROR);
        }
    };
    output::write_files(
        "cat",
        &chosen.files,
        b"",
        &mut status,
        |content, out, status| copy_picked(content, out, status, &mut picker),
    )
}

/// Where the time column is: by name in the table's sidecar, when it has one.
fn time_column(chosen: &Chosen) -> Result<usize, CliError> {
    let Some(sidecar) = &chosen.sidecar else {
        return Ok(window::DEFAULT_TIME_COLUMN);
    };
    let names = columns::read(sidecar)?.unwrap_or_default();
    Ok(window::time_column(&names, &sidecar.display().to_string())?)
}

fn copy_file(
    content: &mut Content<'_>,
    out: &mut BufferedStdout,
    status: &mut Status,
) -> io::Result<()> {
    let mut last = b'\n';
    let copied = content.for_each_chunk(|chunk| {
        last = chunk[chunk.len() - 1];
        out.write_all(chunk)
    });
    content::reported(copied, status)?;
    if last != b'\n' {
        out.write_all(b"\n")?;
        torn(content, status, true);
    }
    Ok(())
}

/// [`copy_file`], the records `picker` wants only.
fn copy_picked(
    content: &mut Content<'_>,
    out: &mut BufferedStdout,
    status: &mut Status,
    picker: &mut Picker,
) -> io::Result<()> {
    let mut torn_written = None;
    let read = lines::for_each_line(content, |line| {
        if !picker.wants(line.bytes, line.number) {
            if !line.terminated {
                torn_written = Some(false);
            }
            return Ok(());
        }
        if !line.terminated {
            torn_written = Some(true);
        }
        out.write_all(line.bytes)?;
        out.write_all(b"\n")
    });
    content::reported(read, status)?;
    picker.report(content.path(), status);
    if let Some(written) = torn_written {
        torn(content, status, written);
    }
    Ok(())
}

fn torn(content: &Content<'_>, status: &mut Status, written: bool) {
    let path = content.path().display();
    if written {
        status.problem(format_args!(
            "{path}: the last line is torn (no newline at its end); a newline was added after it"
        ));
    } else {
        status.problem(format_args!(
            "{path}: the last line is torn (no newline at its end)"
        ));
    }
}
