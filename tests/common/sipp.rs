//! SIPp runs the proxy tests start (the caller and the answering side of each kind of call),
//! each in a process group of its own, with SIPp's own bound on the run and a limit a little
//! past it; killed with their group when dropped, whatever happened.

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::tail;
use super::timeout::{kill_group, wait_or_fail};

/// A SIPp run of a scenario.
pub struct Sipp {
    child: Option<Child>,
    what: String,
    log: PathBuf,
    limit: Duration,
}

impl Sipp {
    /// Start `scenario` on local port `port`, SIPp's own bound `timeout_s` seconds (`-timeout`,
    /// an error when reached), then `args` (the calls, their pauses, the proxy to call ...);
    /// its output goes to `<dir>/<what>.out`.
    pub fn start(
        dir: &Path,
        what: &str,
        scenario: &Path,
        port: u16,
        timeout_s: u64,
        args: &[String],
    ) -> Sipp {
        let log = dir.join(format!("{what}.out"));
        let out = fs::File::create(&log).expect("create sipp log");
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(scenario)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-timeout", &timeout_s.to_string(), "-timeout_error"])
            .arg("-nostdin")
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start sipp");
        Sipp {
            child: Some(child),
            what: what.to_owned(),
            log,
            limit: Duration::from_secs(timeout_s + 15),
        }
    }

    /// Wait for SIPp to end (a little longer than its own bound at most): every call of its
    /// scenario must have succeeded.
    pub fn finish(mut self) {
        let mut child = self.child.take().expect("running");
        let status = wait_or_fail(&mut child, &format!("sipp {}", self.what), self.limit);
        let said = fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            status.success(),
            "sipp {}: not every call succeeded ({status}):\n{}",
            self.what,
            tail(&said, 30)
        );
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id());
            let _ = child.wait();
        }
    }
}
