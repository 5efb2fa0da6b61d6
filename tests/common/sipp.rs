//! SIPp runs the proxy tests start (the caller and the answering side of each kind of call,
//! [`Calls`]), each in a process group of its own, with SIPp's own bound on the run and a
//! limit a little past it; killed with their group when dropped, whatever happened.

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
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

/// One kind of call through a proxy: SIPp's answering side, then its callers.
pub struct Calls<'a> {
    /// Where SIPp's output goes (`<name>.uas.out`, `<name>.uac.out`).
    pub dir: &'a Path,
    /// The kind: names the runs and the Call-IDs, `<name>-<n>@<domain>`.
    pub name: &'a str,
    /// The Call-IDs' domain.
    pub domain: &'a str,
    /// The answering side's scenario and its port.
    pub uas: PathBuf,
    pub uas_port: u16,
    /// The callers' scenario and their port.
    pub uac: PathBuf,
    pub uac_port: u16,
    /// The proxy's port, which the callers call.
    pub proxy_port: u16,
    /// How many calls, and the scenarios' pauses (`-d`).
    pub calls: u32,
    pub pause_ms: u64,
    /// SIPp's own bound on each run, in seconds.
    pub timeout_s: u64,
}

impl Calls<'_> {
    /// Starts the answering side, then the calls, 10 a second; `during` runs `after` the calls
    /// were started. Every call must succeed on both sides.
    pub fn run(self, during: Option<(Duration, impl FnOnce())>) {
        let each = [
            "-m".to_owned(),
            self.calls.to_string(),
            "-d".to_owned(),
            self.pause_ms.to_string(),
        ];
        let (uas, uac) = (format!("{}.uas", self.name), format!("{}.uac", self.name));
        let answering = Sipp::start(
            self.dir,
            &uas,
            &self.uas,
            self.uas_port,
            self.timeout_s,
            &each,
        );
        thread::sleep(Duration::from_millis(300));
        let mut args = each.to_vec();
        args.extend([
            format!("127.0.0.1:{}", self.proxy_port),
            "-r".to_owned(),
            "10".to_owned(),
            "-cid_str".to_owned(),
            format!("{}-%u@{}", self.name, self.domain),
        ]);
        let calling = Sipp::start(
            self.dir,
            &uac,
            &self.uac,
            self.uac_port,
            self.timeout_s,
            &args,
        );
        if let Some((after, action)) = during {
            thread::sleep(after);
            action();
        }
        calling.finish();
        answering.finish();
    }
}
