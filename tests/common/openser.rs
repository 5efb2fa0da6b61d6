//! A real OpenSER 1.3 (the seed's host) driven by SIPp, for `tests/openser.rs`: OpenSER is
//! built from `../shared/hosts/openser-2008-01-*.tar.xz` into the test's target directory
//! (once; later runs reuse it), runs `tests/openser/openser.cfg` on 127.0.0.1 with acc writing
//! through a flatstore module (ours, `hosts/openser`, or the tree's stock
//! `modules/flatstore`), is driven over mi_fifo, and is stopped by pid.
//!
//! Every wait here has a deadline; a command past it is killed with its process group.

use std::ffi::OsString;
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::tail;
use super::timeout::{kill_group, output_or_fail};

/// The system tools the OpenSER tests need: to unpack and build OpenSER, and SIPp.
pub const TOOLS: [&str; 7] = ["tar", "xz", "make", "gcc", "flex", "bison", "sipp"];

/// How long building OpenSER may take (about 20 s on two idle cores).
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The OpenSER source tarball in the shared folder beside the clone, if it is there.
pub fn tarball() -> Option<PathBuf> {
    let hosts = manifest_dir().join("../shared/hosts");
    let mut found: Vec<PathBuf> = fs::read_dir(&hosts)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("openser-2008-01-") && n.ends_with(".tar.xz"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Why the OpenSER tests cannot run here (`Ok(None)`: they can); an error under `CI=true`,
/// where the tarball and every tool must be there.
pub fn cannot_run() -> Result<Option<String>, libtest_mimic::Failed> {
    if let Some(reason) = super::missing_tools(&TOOLS)? {
        return Ok(Some(reason));
    }
    if tarball().is_some() {
        return Ok(None);
    }
    let reason = "needs ../shared/hosts/openser-2008-01-*.tar.xz (the OpenSER source tarball)";
    if std::env::var("CI").as_deref() == Ok("true") {
        return Err(format!("{reason}, required when CI=true").into());
    }
    Ok(Some(reason.to_owned()))
}

/// OpenSER built from the tarball: its tree (the `openser` binary, `modules/`).
pub struct Host {
    pub tree: PathBuf,
}

impl Host {
    pub fn binary(&self) -> PathBuf {
        self.tree.join("openser")
    }

    pub fn modules(&self) -> PathBuf {
        self.tree.join("modules")
    }

    /// The stock flatstore module of the tree.
    pub fn stock_module(&self) -> PathBuf {
        self.modules().join("flatstore/flatstore.so")
    }

    /// The `version:` and `flags:` lines of `openser -V`: the strings OpenSER's loader compares.
    pub fn strings(&self) -> (String, String) {
        let out = output_or_fail(
            Command::new(self.binary()).arg("-V"),
            "openser -V",
            Duration::from_secs(10),
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = |prefix: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("openser -V: no {prefix:?} line:\n{text}"))
                .to_owned()
        };
        (line("version: "), line("flags: "))
    }
}

/// The modules the tests load, built in the tree (`make modules modules=...`).
const MODULES: [&str; 9] = [
    "sl",
    "tm",
    "rr",
    "maxfwd",
    "textops",
    "uri",
    "acc",
    "flatstore",
    "mi_fifo",
];

/// OpenSER, built once into `<target>/openser-host/` (reused while the tarball is the same:
/// the tree is named after it, and a `.built` stamp marks a finished build). The recipe of
/// `../shared/hosts/README.md`: `gcc -fcommon` (gcc ≥ 10), the core, then the nine modules.
pub fn host() -> &'static Host {
    static BUILT: OnceLock<Host> = OnceLock::new();
    BUILT.get_or_init(|| {
        let tarball = tarball().expect("the OpenSER tarball (checked before the test)");
        let stem = tarball
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".tar.xz"))
            .expect("a .tar.xz")
            .to_owned();
        let base = super::target_dir().join("openser-host").join(&stem);
        let tree = base.join("openser-2008-01");
        let stamp = base.join(".built");
        if !stamp.exists() {
            let started = Instant::now();
            let _ = fs::remove_dir_all(&base);
            fs::create_dir_all(&base).expect("create the host's build directory");
            let unpack = output_or_fail(
                Command::new("tar")
                    .arg("-xJf")
                    .arg(&tarball)
                    .arg("-C")
                    .arg(&base),
                "tar -xJf (OpenSER)",
                Duration::from_secs(120),
            );
            assert!(unpack.status.success(), "unpacking {}", tarball.display());
            let modules: Vec<String> = MODULES.iter().map(|m| format!("modules/{m}")).collect();
            let mut modules_arg = OsString::from("modules=");
            modules_arg.push(modules.join(" "));
            for (what, extra) in [("openser", None), ("modules", Some(modules_arg))] {
                let mut make = Command::new("make");
                make.args(["-j2", what, "CC=gcc -fcommon"])
                    .args(extra)
                    .current_dir(&tree);
                let out = output_or_fail(&mut make, &format!("make {what}"), BUILD_TIMEOUT);
                assert!(
                    out.status.success(),
                    "building OpenSER ({what}) failed:\n{}",
                    tail(&String::from_utf8_lossy(&out.stderr), 40)
                );
            }
            fs::write(&stamp, "").expect("write the stamp");
            eprintln!(
                "built OpenSER from {} in {:.0?}",
                tarball.display(),
                started.elapsed()
            );
        }
        Host { tree }
    })
}

/// Our module, the crate `hosts/openser` (`flatstore-openser`), built once per test run in
/// release mode into the test's target directory against the built OpenSER
/// (`FLATSTORE_OPENSER`). Checked to carry that OpenSER's version and flags strings: OpenSER
/// itself would only log a mismatch and exit 0.
pub fn our_module() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let host = host();
        let target = super::target_dir();
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--release", "-p", "flatstore-openser"])
            .env("CARGO_TARGET_DIR", &target)
            .env("FLATSTORE_OPENSER", host.binary())
            .env_remove("FLATSTORE_OPENSER_VERSION")
            .env_remove("FLATSTORE_OPENSER_FLAGS")
            .current_dir(manifest_dir());
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the OpenSER module failed");
        let module = target.join("release/libflatstore_openser.so");
        let bytes = fs::read(&module).expect("read the module");
        let (version, flags) = host.strings();
        for string in [version, flags] {
            let wanted = [string.as_bytes(), b"\0"].concat();
            assert!(
                bytes.windows(wanted.len()).any(|w| w == wanted),
                "{} does not carry OpenSER's string {string:?}: OpenSER would refuse it \
                 (and exit 0)",
                module.display()
            );
        }
        module
    })
}

/// The names of the kinds of test calls (the start of their Call-IDs): each has its own
/// callee port ([`callee_port`]).
pub const KINDS: [&str; 4] = ["callerbye", "calleebye", "busy", "cancel"];

/// Six consecutive UDP ports on 127.0.0.1 (the proxy, the caller, a callee per kind of call),
/// different for every proxy of this test run.
pub fn ports() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 31000 + (std::process::id() % 300) as u16 * 90;
    base + NEXT.fetch_add(6, Ordering::Relaxed)
}

/// The caller's port for the proxy on `port`.
pub fn caller_port(port: u16) -> u16 {
    port + 1
}

/// The port of the callee of kind `kind` (an index of [`KINDS`]) for the proxy on `port`; new
/// calls of other Call-IDs go to the first.
pub fn callee_port(port: u16, kind: usize) -> u16 {
    port + 2 + kind as u16
}

/// A fresh scratch directory with `acc/` and `run/` in it.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-openser-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("acc")).expect("create acc dir");
    fs::create_dir_all(dir.join("run")).expect("create run dir");
    dir
}

/// An OpenSER started from the test (daemonized: its main process writes its pid to
/// `run/pid`), stopped by that pid. Its processes share a process group (the session its
/// daemonizing fork made, whose leader has exited: not the main pid), killed when dropped.
pub struct Proxy {
    pub dir: PathBuf,
    pub port: u16,
    /// The main process and the process group.
    running: Option<(i32, i32)>,
}

impl Proxy {
    /// Run `tests/openser/openser.cfg` in `dir` on `port` (next hops: [`callee_port`]), loading the
    /// flatstore module `module` with acc writing to `url`, with 4 SIP workers; it answers
    /// MI commands when this returns. Fails loudly when OpenSER does not come up (a refused
    /// module makes it exit 0), with its log.
    pub fn start(module: &Path, dir: &Path, port: u16, url: &str) -> Proxy {
        Proxy::try_start(module, dir, port, url).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`start`](Self::start), with OpenSER's refusal as an error.
    pub fn try_start(module: &Path, dir: &Path, port: u16, url: &str) -> Result<Proxy, String> {
        let host = host();
        let run = dir.join("run");
        let template = fs::read_to_string(manifest_dir().join("tests/openser/openser.cfg"))
            .expect("read tests/openser/openser.cfg");
        let modules = format!("{}/", host.modules().display());
        let config = template
            .replace("@PORT@", &port.to_string())
            .replace("@NEXT_HOP@", &format!("127.0.0.1:{}", callee_port(port, 0)))
            .replace("@MODULES@", &modules)
            .replace("@FLATSTORE@", &module.display().to_string())
            .replace("@ACC_URL@", url)
            .replace("@RUN@", &run.display().to_string())
            .replace("@CHILDREN@", "4");
        let config = KINDS.iter().enumerate().fold(config, |config, (i, kind)| {
            config.replace(&format!("@KIND_{}@", i + 1), kind).replace(
                &format!("@NEXT_HOP_{}@", i + 1),
                &format!("127.0.0.1:{}", callee_port(port, i)),
            )
        });
        let cfg = dir.join("openser.cfg");
        fs::write(&cfg, config).expect("write openser.cfg");
        let log = fs::File::create(dir.join("openser.log")).expect("create log");
        // The command returns once OpenSER has forked into the background.
        let mut started = Command::new(host.binary())
            .arg("-f")
            .arg(&cfg)
            .arg("-E")
            .arg("-P")
            .arg(run.join("pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start openser");
        let deadline = Instant::now() + Duration::from_secs(30);
        let launched = loop {
            if let Some(status) = started.try_wait().expect("wait openser") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = started.kill();
                let _ = started.wait();
                return Err("openser did not go to the background in 30 s".to_owned());
            }
            thread::sleep(Duration::from_millis(20));
        };
        let log = || fs::read_to_string(dir.join("openser.log")).unwrap_or_default();
        // The daemon writes its pid file after the launcher has exited: wait for it.
        let read_pid = || {
            fs::read_to_string(run.join("pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut pid = read_pid();
        while launched.success() && pid.is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
            pid = read_pid();
        }
        let Some(pid) = pid.filter(|_| launched.success()) else {
            return Err(format!(
                "openser did not start (it exited {launched}; a refused module, such as a \
                 version mismatch, exits 0):\n{}",
                tail(&log(), 30)
            ));
        };
        let Ok(group) = nix::unistd::getpgid(Some(Pid::from_raw(pid))) else {
            return Err(format!(
                "openser (pid {pid}) is gone:\n{}",
                tail(&log(), 30)
            ));
        };
        let proxy = Proxy {
            dir: dir.to_owned(),
            port,
            running: Some((pid, group.as_raw())),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if proxy.try_mi("uptime", Duration::from_secs(2)).is_some() {
                return Ok(proxy);
            }
            if !alive(pid) {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err(format!("openser does not answer MI:\n{}", tail(&log(), 30)))
    }

    /// What the proxy has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("openser.log")).unwrap_or_default()
    }

    /// The MI command `command` over mi_fifo (`:command:reply_fifo`, then an empty line): its
    /// reply, the status line first (`200 OK`). Fails the test after 20 s.
    pub fn mi(&self, command: &str) -> String {
        self.try_mi(command, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("MI {command}: no reply in 20 s\n{}", tail(&self.log(), 20)))
    }

    fn try_mi(&self, command: &str, timeout: Duration) -> Option<String> {
        static NEXT: AtomicU16 = AtomicU16::new(0);
        let run = self.dir.join("run");
        let name = format!("reply_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let reply_path = run.join(&name);
        nix::unistd::mkfifo(&reply_path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        // Open the reply FIFO first, without waiting for a writer.
        let mut reply = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&reply_path)
            .expect("open the reply FIFO");
        let deadline = Instant::now() + timeout;
        let request = format!(":{command}:{name}\n\n");
        let sent = loop {
            // O_NONBLOCK: ENXIO until mi_fifo has its end open.
            match fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(run.join("openser_fifo"))
            {
                Ok(mut fifo) => break fifo.write_all(request.as_bytes()).is_ok(),
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Err(_) => break false,
            }
        };
        let mut text = Vec::new();
        while sent && Instant::now() < deadline {
            let mut chunk = [0u8; 4096];
            match reply.read(&mut chunk) {
                // End of file: no writer (yet, or any more once the reply is written).
                Ok(0) if !text.is_empty() => break,
                Ok(0) => thread::sleep(Duration::from_millis(10)),
                Ok(n) => text.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(10));
                }
                Err(_) => break,
            }
        }
        let _ = fs::remove_file(&reply_path);
        Some(String::from_utf8_lossy(&text).into_owned()).filter(|t| !t.is_empty())
    }

    /// SIGTERM to the main process (which stops its children), then wait (at most 60 s) until
    /// every process of its group is gone; past that, the test fails.
    pub fn stop(mut self) {
        let (pid, group) = self.running.take().expect("running");
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        while group_alive(group) {
            if Instant::now() >= deadline {
                kill_group(group as u32);
                panic!(
                    "openser did not stop in 60 s: killed\n{}",
                    tail(&self.log(), 30)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some((_, group)) = self.running.take() {
            kill_group(group as u32);
        }
    }
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

/// Whether any process of the group `pgid` is left (a zombie of a daemon's child is reaped
/// by init, so `kill(-pgid, 0)` answers for live ones).
fn group_alive(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None).is_ok()
}

/// SIPp's own bound on a run (`-timeout`, an error when reached), in seconds.
pub const SIPP_TIMEOUT_S: u64 = 60;
