//! Programs run by the tests end by themselves: each runs in a process group of its own, for at
//! most a time limit, and past it the whole group (the program and whatever it started) is
//! killed with SIGKILL and the test fails naming the program. Shared by the library's tests
//! and the command's (`cli/tests`, through `#[path]`).
//!
//! - [`output_within`]: run a program to its end, its output captured ([`Command::output`]
//!   with a limit); [`TimedOut`] carries what it printed before it was stopped.
//! - [`own_group`], [`wait_or_kill`], [`wait_or_fail`], [`kill_group`]: for a program the test
//!   starts and stops itself (a proxy, a server, a SIP load generator, a build).

use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often a wait looks at the program again.
const POLL: Duration = Duration::from_millis(10);

/// Start `command` in a process group of its own (its group id is its pid), so that
/// [`kill_group`] reaches it and everything it starts.
pub fn own_group(command: &mut Command) -> &mut Command {
    command.process_group(0)
}

/// SIGKILL to every process of the group `leader` leads (a child started with [`own_group`],
/// not yet reaped). A group already gone is no error.
pub fn kill_group(leader: u32) {
    let group = nix::unistd::Pid::from_raw(-(leader as i32));
    let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
}

/// Wait for `child` (started with [`own_group`]) at most `limit`: its exit status, or `None`
/// when it was still running then; its group is then killed and the child reaped.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            kill_group(child.id());
            let _ = child.wait();
            return None;
        }
        thread::sleep(POLL);
    }
}

/// [`wait_or_kill`], failing the test naming `what` when `child` was still running at `limit`
/// (its group killed by then).
pub fn wait_or_fail(child: &mut Child, what: &str, limit: Duration) -> ExitStatus {
    wait_or_kill(child, limit).unwrap_or_else(|| {
        panic!(
            "{what} did not end within {} s (killed with its process group)",
            limit.as_secs_f64()
        )
    })
}

/// A program stopped at its time limit, and what it had printed by then.
#[derive(Debug)]
pub struct TimedOut {
    /// The limit it ran into.
    pub limit: Duration,
    /// Its standard output up to then.
    pub stdout: String,
    /// Its standard error up to then.
    pub stderr: String,
}

impl fmt::Display for TimedOut {
    /// "did not end within N s (killed with its process group)", then the last 40 lines of
    /// each output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = |text: &str| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        write!(
            f,
            "did not end within {} s (killed with its process group)\n\
             --- the end of its standard output:\n{}\n--- the end of its standard error:\n{}",
            self.limit.as_secs_f64(),
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

/// A thread copying a pipe into a buffer the caller can read at any time.
fn collect(mut pipe: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&bytes);
    let reader = thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            into.lock()
                .expect("output buffer")
                .extend_from_slice(&chunk[..n]);
        }
    });
    (bytes, reader)
}

/// Run `command` to its end in a process group of its own, its standard input empty and its
/// output captured, for at most `limit` (the program and whatever it started still holding its
/// output). Past the limit the group is killed and `Err` gives what it had printed.
pub fn output_within(command: &mut Command, limit: Duration) -> Result<Output, TimedOut> {
    let deadline = Instant::now() + limit;
    let mut child = own_group(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
    let (stdout, out_reader) = collect(child.stdout.take().expect("piped stdout"));
    let (stderr, err_reader) = collect(child.stderr.take().expect("piped stderr"));
    let text = |bytes: &Arc<Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&bytes.lock().expect("output buffer")).into_owned()
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let status = wait_or_kill(&mut child, left);
    // Something the program started may still hold its output open: it has until the deadline.
    while status.is_some()
        && !(out_reader.is_finished() && err_reader.is_finished())
        && Instant::now() < deadline
    {
        thread::sleep(POLL);
    }
    let ended = status.filter(|_| out_reader.is_finished() && err_reader.is_finished());
    let Some(status) = ended else {
        // Its group may outlive it: end that too, so that the readers see end of file.
        kill_group(child.id());
        let _ = (out_reader.join(), err_reader.join());
        return Err(TimedOut {
            limit,
            stdout: text(&stdout),
            stderr: text(&stderr),
        });
    };
    let _ = (out_reader.join(), err_reader.join());
    Ok(Output {
        status,
        stdout: std::mem::take(&mut *stdout.lock().expect("output buffer")),
        stderr: std::mem::take(&mut *stderr.lock().expect("output buffer")),
    })
}

/// [`output_within`], failing the test on a timeout with `what` and what it printed.
pub fn output_or_fail(command: &mut Command, what: &str, limit: Duration) -> Output {
    output_within(command, limit).unwrap_or_else(|timed_out| panic!("{what} {timed_out}"))
}
