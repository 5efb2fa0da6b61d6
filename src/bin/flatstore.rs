//! `flatstore`: the operator's command line, on the library's safe Rust API.
//!
//! ```text
//! flatstore rotate DIR [--wait] [--timeout SECONDS]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use flatstore::control::Control;
use flatstore::rotate;

const USAGE: &str = "\
usage: flatstore rotate DIR [--wait] [--timeout SECONDS]

  rotate   make every process writing to DIR reopen its files before its next
           write (run it after renaming the files away, e.g. in logrotate's
           postrotate). With --wait, return only once no live writer can still
           append to a renamed file (default timeout 10 s; exit status 1 on
           timeout, naming the writers that held it up).

exit status: 0 done, 1 failed, 2 usage error";

enum Failure {
    Usage(String),
    Failed(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("flatstore: {message}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("flatstore: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<(), Failure> {
    match args.first().map(String::as_str) {
        Some("rotate") => rotate_command(&args[1..]),
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some("--version" | "-V") => {
            println!("flatstore {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some(other) => Err(Failure::Usage(format!("unknown command {other:?}"))),
        None => Err(Failure::Usage("no command given".into())),
    }
}

fn rotate_command(args: &[String]) -> Result<(), Failure> {
    let mut dir = None;
    let mut wait = false;
    let mut timeout = Duration::from_secs(10);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--wait" => wait = true,
            "--timeout" => {
                let value = rest
                    .next()
                    .ok_or_else(|| Failure::Usage("--timeout needs a number of seconds".into()))?;
                let secs: f64 = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| Failure::Usage(format!("--timeout {value:?}: not seconds")))?;
                timeout = Duration::from_secs_f64(secs);
            }
            flag if flag.starts_with('-') => {
                return Err(Failure::Usage(format!("unknown option {flag:?}")));
            }
            path if dir.is_none() => dir = Some(PathBuf::from(path)),
            extra => return Err(Failure::Usage(format!("unexpected argument {extra:?}"))),
        }
    }
    let dir = dir.ok_or_else(|| Failure::Usage("rotate needs a directory".into()))?;
    if !dir.is_dir() {
        return Err(Failure::Failed(format!(
            "{}: not a directory",
            dir.display()
        )));
    }
    let control = match Control::open_existing(&dir) {
        Ok(control) => control,
        Err(flatstore::Error::Open { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            // No writer has ever opened this directory: nothing can hold a renamed file.
            return Ok(());
        }
        Err(e) => return Err(Failure::Failed(e.to_string())),
    };
    let generation = control.request_rotation();
    if wait {
        rotate::wait_for_writers(&control, generation, timeout)
            .map_err(|e| Failure::Failed(e.to_string()))?;
    }
    Ok(())
}
