//! `flatstore cat`: every record of a table, from all its files, as one stream.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::content::{self, Content};
use crate::exit::Status;
use crate::listing::{self, Selection};
use crate::output::{self, Output};

/// Every record of TABLE, from all its files, as one stream.
///
/// Rotated files first, oldest first (gzip read transparently): stamped names (-20261123)
/// by stamp, then counted ones, .3 before .2 before .1; then the sealed ones
/// (.sealed-20261123T174512.123456789Z) by seal time, across writers; then, with --live, the
/// live files; within each step by writer number N. With --sealed-only, the sealed files
/// alone. Bytes as they are, except that a torn last line is ended with a newline, so that it
/// cannot run into the next file's first record.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The log directory.
    dir: PathBuf,
    /// The table.
    #[arg(value_parser = listing::table_name)]
    table: String,
    #[command(flatten)]
    selection: Selection,
}

/// Exit status 0 when every file was read whole and ends with a newline, 1 when a file is
/// corrupt, binary or ends in a torn line (the rest is still written), 2 on I/O errors.
pub fn run(args: &Args) -> ExitCode {
    let mut status = Status::default();
    output::write_table(
        "cat",
        &args.dir,
        &args.table,
        &args.selection,
        b"",
        &mut status,
        copy_file,
    )
}

fn copy_file(content: &mut Content<'_>, out: &mut Output, status: &mut Status) -> io::Result<()> {
    let mut last = b'\n';
    let copied = content.for_each_chunk(|chunk| {
        last = chunk[chunk.len() - 1];
        out.write_all(chunk)
    });
    content::reported(copied, status)?;
    if last != b'\n' {
        out.write_all(b"\n")?;
        status.problem(format_args!(
            "{}: the last line is torn (no newline at its end); a newline was added after it",
            content.path().display()
        ));
    }
    Ok(())
}
