//! `flatstore rotate`: make every process writing to a directory reopen its files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use flatstore::{Control, wait_for_writers};

use crate::error::CliError;

/// Make every process writing to DIR reopen its files before its next write.
///
/// Run it after renaming the files away (in logrotate's postrotate).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The log directory.
    dir: PathBuf,
    /// Return only once no live writer can still append to a renamed file (exit status 1 on
    /// timeout, naming the writers that held it up).
    #[arg(long)]
    wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    timeout: Duration,
    /// Accept a directory that no flatstore writer has opened yet (no .flatstore.ctl): exit 0,
    /// doing nothing. Without this option it fails with exit status 1, as a mistyped path
    /// does. Only for recipes that may run before any writer opened DIR.
    #[arg(long)]
    unopened_ok: bool,
}

fn seconds(value: &str) -> Result<Duration, CliError> {
    value
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| CliError::NotSeconds {
            value: value.to_owned(),
        })
}

/// Exit status 0 done, 1 failed: DIR is not a directory, no writer ever opened it (unless
/// `--unopened-ok`: then nothing can hold a renamed file, and 0), or `--wait` timed out.
pub fn run(args: &Args) -> ExitCode {
    match rotate_dir(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("flatstore: {message}");
            ExitCode::from(1)
        }
    }
}

fn rotate_dir(args: &Args) -> Result<(), CliError> {
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(CliError::NotADirectory { dir: dir.clone() });
    }
    let control = match Control::open_existing(dir) {
        Ok(control) => control,
        Err(flatstore::Error::Open { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            if args.unopened_ok {
                return Ok(());
            }
            return Err(CliError::NeverOpened { dir: dir.clone() });
        }
        Err(e) => return Err(e.into()),
    };
    let generation = control.request_rotation();
    if args.wait {
        wait_for_writers(&control, generation, args.timeout)?;
    }
    Ok(())
}
