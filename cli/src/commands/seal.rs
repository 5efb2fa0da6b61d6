//! `flatstore seal`: seal the live files that no writer holds any more.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use flatstore::{SealOutcome, seal_if_abandoned};

use crate::exit::FileError;
use crate::listing;

/// Seal the live files of DIR whose writer is gone (killed, or stopped for good).
///
/// Every writer holds its live file open with a shared lock; a file that no process holds is
/// renamed to its sealed name (`<table>_<N>.log.sealed-<UTC time>Z`), so that readers of
/// sealed files only (`cat --sealed-only`) see its records. A torn last line is moved aside
/// first, as a writer does. Files a live writer holds, and empty files, are left as they are.
/// A seal its writer did not finish (`.<sealed name>.pending`, left by a crash before the
/// file was synced) is synced and given its sealed name the same way.
/// Safe while writers run; not while another tool renames live files (an outside rotation).
/// One line per live file on standard output: what was done with it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The log directory.
    dir: PathBuf,
    /// Only this table's files.
    #[arg(value_parser = listing::table_name)]
    table: Option<String>,
}

/// Exit status 0 done (whatever was left for live writers), 1 a file could not be examined or
/// sealed (named on standard error), 2 the directory cannot be read.
pub fn run(args: &Args) -> ExitCode {
    let listing = match listing::discover(&args.dir, args.table.as_deref().map(str::as_bytes)) {
        Ok(listing) => listing,
        Err(e) => {
            eprintln!("flatstore: {e}");
            return ExitCode::from(2);
        }
    };
    // A live file its writer sealed between the listing and its examination is not an error.
    let errors: Vec<_> = listing
        .errors
        .iter()
        .filter(|e| !matches!(e, FileError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound))
        .collect();
    for error in &errors {
        eprintln!("flatstore: {error}");
    }
    let mut failed = !errors.is_empty();
    // The report is a courtesy: when standard output goes away (`| head`), sealing goes on.
    let mut report = Some(io::stdout().lock());
    let live = listing
        .files
        .iter()
        .filter(|f| f.is_live())
        .map(|f| &f.path);
    for path in live.chain(&listing.pending_seals) {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let done = match seal_if_abandoned(path) {
            Ok(SealOutcome::Sealed(sealed)) => {
                let sealed = sealed.file_name().unwrap_or_default().to_string_lossy();
                format!("sealed as {sealed}")
            }
            Ok(SealOutcome::Held) => "left live, a writer holds it".to_owned(),
            Ok(SealOutcome::Empty) => "left live, empty".to_owned(),
            Ok(SealOutcome::Missing) => "gone (sealed or renamed meanwhile)".to_owned(),
            Err(e) => {
                eprintln!("flatstore: {name}: {e}");
                failed = true;
                continue;
            }
        };
        if let Some(out) = &mut report
            && writeln!(out, "{name}: {done}").is_err()
        {
            report = None;
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
