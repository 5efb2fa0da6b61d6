//! A real Kamailio driven by SIPp, for the tests that run one (`tests/kamailio.rs`,
//! `tests/cdr.rs`, `tests/packaging.rs`): Debian's Kamailio 5.6 runs `examples/kamailio.cfg`
//! on 127.0.0.1 with `acc` writing through a flatstore module, SIPp places the calls
//! (`tests/kamailio/uac.xml`) to a SIPp answering side (`uas.xml`), and the proxy is stopped by
//! pid. Each runs in a process group of its own, with a time limit ([`super::timeout`]): a
//! proxy or SIPp that does not end in time fails the test and is killed with its group.
//!
//! Every call is accounted twice (the INVITE and the BYE transaction); every value but the
//! times is a function of the call number, so the expected records are known exactly.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::tail;
use super::timeout::{kill_group, output_or_fail, own_group};

/// Time limits: of one `kamcmd` call, of a SIPp run placing calls (SIPp's own `-timeout` is
/// 120 s), of a proxy's stop (see [`Proxy::stop`]).
const KAMCMD_LIMIT: Duration = Duration::from_secs(20);
const SIPP_LIMIT: Duration = Duration::from_secs(180);
const STOP_LIMIT: Duration = Duration::from_secs(90);

/// Where Debian installs Kamailio's modules (and the stock `db_flatstore.so`).
pub const MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `version:` (up to the last `)`) and `flags:` lines of the installed `kamailio -V`: the
/// strings Kamailio's loader compares with a module's.
pub fn installed_strings() -> Option<(String, String)> {
    let out = Command::new("kamailio").arg("-V").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix));
    let version = line("version: ")?;
    let version = &version[..=version.rfind(')')?];
    Some((version.to_owned(), line("flags: ")?.to_owned()))
}

/// Our module, and the two strings Kamailio's loader will compare with it.
pub struct Module {
    pub path: PathBuf,
    pub version: String,
    pub flags: String,
}

/// Our module (the crate `hosts/kamailio`, package `flatstore-kamailio`), built once per test
/// run in release mode into the test's target directory. Without an installed Kamailio it is
/// built with stand-in strings given through the build's override variables.
pub fn our_module() -> &'static Module {
    static BUILT: OnceLock<Module> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = super::target_dir();
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--release", "-p", "flatstore-kamailio"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(manifest_dir());
        let (version, flags) = installed_strings().unwrap_or_else(|| {
            let stand_in = ("kamailio 0.0.0 (test)".to_owned(), "TEST_FLAGS".to_owned());
            build
                .env("FLATSTORE_KAMAILIO_VERSION", &stand_in.0)
                .env("FLATSTORE_KAMAILIO_FLAGS", &stand_in.1);
            stand_in
        });
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the Kamailio module failed");
        Module {
            path: target.join("release/libflatstore_kamailio.so"),
            version,
            flags,
        }
    })
}

/// Four consecutive UDP ports on 127.0.0.1, different for every proxy of this test run.
pub fn ports() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 21000 + (std::process::id() % 400) as u16 * 50;
    base + NEXT.fetch_add(4, Ordering::Relaxed)
}

pub fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("flatstore-kamailio-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("acc")).expect("create acc dir");
    fs::create_dir_all(dir.join("run")).expect("create run dir");
    dir
}

/// `-A NAME=VALUE`, a define on Kamailio's command line.
/// `-A NAME=value` for Kamailio (`-A NAME` when `value` is empty: a define with no value).
fn define(name: &str, value: String) -> [String; 2] {
    let define = if value.is_empty() {
        name.to_owned()
    } else {
        format!("{name}={value}")
    };
    ["-A".to_owned(), define]
}

/// The defines with which the tests run `examples/kamailio.cfg` (see [`Proxy::start`]): our
/// `module`, listening on `port` with the next hop on `port + 1`, acc writing to `url`, the
/// modparam `flush`, the control socket in `<dir>/run`, 4 children.
pub fn config_defines(module: &str, dir: &Path, port: u16, url: &str, flush: u8) -> Vec<String> {
    [
        define("FLATSTORE_MODULE", format!("{module:?}")),
        define("LISTEN", format!("udp:127.0.0.1:{port}")),
        define("NEXT_HOP", format!("\"sip:127.0.0.1:{}\"", port + 1)),
        define("ACC_URL", format!("{url:?}")),
        define(
            "CTL_SOCKET",
            format!("\"unix:{}\"", dir.join("run/ctl").display()),
        ),
        define("FLUSH", flush.to_string()),
        define("CHILDREN", "4".to_owned()),
    ]
    .concat()
}

/// A Kamailio started from the test, stopped by pid.
pub struct Proxy {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl Proxy {
    /// Start `examples/kamailio.cfg` loading `module` with `acc` writing to `url`.
    pub fn start(module: &str, dir: &Path, port: u16, url: &str, flush: u8) -> Proxy {
        Proxy::start_with(module, dir, port, url, flush, &[])
    }

    /// Start `examples/kamailio.cfg` with the defines [`start`](Self::start) gives it, then
    /// `defines` (name, value as Kamailio reads it; an empty value defines the name alone).
    pub fn start_with(
        module: &str,
        dir: &Path,
        port: u16,
        url: &str,
        flush: u8,
        defines: &[(&str, &str)],
    ) -> Proxy {
        let log = fs::File::create(dir.join("kamailio.log")).expect("create log");
        let mut command = Command::new("kamailio");
        own_group(&mut command)
            .arg("-f")
            .arg(manifest_dir().join("examples/kamailio.cfg"))
            .args(["-DD", "-E", "-Y"])
            .arg(dir.join("run"))
            .args(config_defines(module, dir, port, url, flush))
            .args(
                defines
                    .iter()
                    .flat_map(|(name, value)| define(name, (*value).to_owned())),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let proxy = Proxy {
            child: Some(command.spawn().expect("start kamailio")),
            dir: dir.to_owned(),
            port,
        };
        proxy.wait_until_ready();
        proxy
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.rpc("core.uptime").status.success() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("kamailio did not start:\n{}", self.log());
    }

    /// `kamcmd method` on the proxy's control socket, within 20 s (else the test fails).
    pub fn rpc(&self, method: &str) -> std::process::Output {
        output_or_fail(
            Command::new("kamcmd")
                .arg("-s")
                .arg(format!("unix:{}", self.dir.join("run/ctl").display()))
                .arg(method),
            &format!("kamcmd {method}"),
            KAMCMD_LIMIT,
        )
    }

    /// What the proxy has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }

    /// SIGTERM to the main process (which stops its children), then wait for it.
    ///
    /// Kamailio's main process waits up to its `exit_timeout` (60 s) for its children, then
    /// kills those left with SIGKILL. A stop slower than 30 s is reported with every process's
    /// threads (where each waits) but still waited for: what the records say is then up to the
    /// test. Past 90 s the proxy is stuck, and the test fails with the same report (the proxy's
    /// process group is then killed when the [`Proxy`] is dropped).
    pub fn stop(mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let pid = child.id() as i32;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let started = Instant::now();
        let mut reported = false;
        loop {
            if let Some(status) = child.try_wait().expect("wait kamailio") {
                self.child = None;
                return status;
            }
            let waited = started.elapsed();
            if waited >= Duration::from_secs(30) && !reported {
                eprintln!("kamailio SLOW TO STOP, after 30 s:\n{}", thread_report(pid));
                reported = true;
            }
            if waited >= STOP_LIMIT {
                panic!(
                    "kamailio did not stop in 90 s; its processes and threads now:\n{}\n\
                     the end of its log:\n{}",
                    thread_report(pid),
                    tail(&self.log(), 40)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `pid` and the processes whose parent it is.
fn family(pid: i32) -> Vec<i32> {
    let mut processes = vec![pid];
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The parent pid is the second field after the parenthesised name.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if parent == Some(pid) {
            processes.push(child);
        }
    }
    processes
}

/// One line per thread of `pid` and of its children: pid, thread id, name, state, the kernel
/// function it waits in and its system call, to tell which process hangs where.
fn thread_report(pid: i32) -> String {
    let read = |path: PathBuf| fs::read_to_string(path).unwrap_or_default();
    let mut report = String::new();
    for process in family(pid) {
        let tasks = PathBuf::from(format!("/proc/{process}/task"));
        for task in fs::read_dir(&tasks).into_iter().flatten().flatten() {
            let path = task.path();
            let stat = read(path.join("stat"));
            let state = stat.rsplit_once(')').map_or("?", |(_, rest)| rest.trim());
            report += &format!(
                "{process}/{} {} state {} wchan {} syscall {}\n",
                task.file_name().to_string_lossy(),
                read(path.join("comm")).trim(),
                state.split_whitespace().next().unwrap_or("?"),
                read(path.join("wchan")),
                read(path.join("syscall")).trim(),
            );
        }
    }
    report
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole group: children would outlive their parent, holding the test's ports.
            kill_group(child.id());
            let _ = child.wait();
        }
    }
}

/// Rename every live `<table>_<N>.log` in `acc` to `<table>_<N>.log.<suffix>`, as a rotation
/// script does; how many were renamed.
pub fn rename_live_files(acc: &Path, suffix: &str) -> usize {
    let mut renamed = 0;
    for entry in fs::read_dir(acc).expect("read acc dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "log") {
            let mut to = path.clone().into_os_string();
            to.push(format!(".{suffix}"));
            fs::rename(&path, to).expect("rename");
            renamed += 1;
        }
    }
    renamed
}

/// SIPp answering calls on `port`.
pub struct Uas(Child);

impl Uas {
    pub fn start(port: u16, dir: &Path) -> Uas {
        let out = fs::File::create(dir.join("uas.out")).expect("create uas log");
        let child = own_group(&mut Command::new("sipp"))
            .arg("-sf")
            .arg(manifest_dir().join("tests/kamailio/uas.xml"))
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start sipp uas");
        thread::sleep(Duration::from_millis(300));
        Uas(child)
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        kill_group(self.0.id());
        let _ = self.0.wait();
    }
}

/// Place calls 1..=`count` through the proxy at `rate` per second, on a thread; join it to
/// learn that every call succeeded (within 180 s: a SIPp still running then is killed, and the
/// join fails).
pub fn place_calls(proxy: &Proxy, count: u32, rate: u32) -> thread::JoinHandle<()> {
    let mut command = Command::new("sipp");
    command
        .arg("-sf")
        .arg(manifest_dir().join("tests/kamailio/uac.xml"))
        .args(["-cid_str", "call-%u@flatstore.test"])
        .args(["-i", "127.0.0.1", "-p", &(proxy.port + 2).to_string()])
        .arg(format!("127.0.0.1:{}", proxy.port))
        .args([
            "-m",
            &count.to_string(),
            "-r",
            &rate.to_string(),
            "-l",
            "200",
        ])
        .args(["-timeout", "120", "-timeout_error", "-nostdin"])
        .stdin(Stdio::null());
    thread::spawn(move || {
        let out = output_or_fail(&mut command, "sipp (placing calls)", SIPP_LIMIT);
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "sipp: not every call succeeded ({}):\n{}",
            out.status,
            report.lines().rev().take(30).collect::<Vec<_>>().join("\n"),
        );
    })
}

/// Run a proxy loading `module` at flush=1 in the scratch directory `name`, with `defines`
/// (see [`Proxy::start_with`]), place calls 1..=`calls` through it at `rate` per second, and
/// stop it by pid: every line it accounted.
pub fn account_calls(
    module: &str,
    defines: &[(&str, &str)],
    name: &str,
    calls: u32,
    rate: u32,
) -> Vec<String> {
    let dir = scratch(name);
    let acc = dir.join("acc");
    let port = ports();
    let proxy = Proxy::start_with(
        module,
        &dir,
        port,
        &format!("flatstore:{}", acc.display()),
        1,
        defines,
    );
    let _uas = Uas::start(port + 1, &dir);
    place_calls(&proxy, calls, rate)
        .join()
        .expect("every call succeeded");
    let status = proxy.stop();
    assert!(status.success(), "{name}: kamailio exit status {status}");
    all_lines(&acc).0
}

/// Every line of every file in `dir` (live, renamed, sealed and gzip-compressed), after
/// checking that no file ends in a partial line.
pub fn all_lines(dir: &Path) -> (Vec<String>, usize) {
    let mut lines = Vec::new();
    let mut files = 0;
    for (name, path) in super::visible_files(dir) {
        // The schema sidecar (`header=1`) holds no records.
        if name.ends_with(".columns") {
            continue;
        }
        let bytes = if name.ends_with(".gz") {
            let out = Command::new("gzip")
                .arg("-dc")
                .arg(&path)
                .output()
                .expect("run gzip");
            assert!(out.status.success(), "gzip -dc {name}");
            out.stdout
        } else {
            let mut bytes = Vec::new();
            fs::File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .expect("read file");
            bytes
        };
        files += 1;
        if bytes.is_empty() {
            continue;
        }
        assert_eq!(bytes.last(), Some(&b'\n'), "{name} ends in a partial line");
        let text = String::from_utf8(bytes).expect("acc lines are UTF-8 here");
        lines.extend(text.lines().map(str::to_owned));
    }
    (lines, files)
}

/// The columns `examples/kamailio.cfg` accounts (acc's own, `time_hires` of `time_mode=2`, then
/// its `db_extra`), as `acc.columns` names them at `header=1`.
pub const COLUMNS: &str = "method|from_tag|to_tag|callid|sip_code|sip_reason|time|time_hires|\
                           src_user|src_domain|dst_ouser|src_ip|user_agent";

/// Check that `lines` are exactly the records of calls 1..=`calls` (an INVITE and a BYE each,
/// nothing twice), with every column of [`COLUMNS`] as expected and the times within the run.
pub fn assert_every_call_accounted_once(lines: &[String], calls: u32, started: u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut seen = vec![[0u32; 2]; calls as usize + 1];
    for line in lines {
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            COLUMNS.split('|').count(),
            "column count of {line:?}"
        );
        let call: u32 = fields[1]
            .strip_prefix("uac")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("from tag of {line:?}"));
        assert!((1..=calls).contains(&call), "call number of {line:?}");
        let method = match fields[0] {
            "INVITE" => 0,
            "BYE" => 1,
            _ => panic!("method of {line:?}"),
        };
        let expected_rest = [
            "uas".to_owned(),
            format!("call-{call}@flatstore.test"),
            "200".to_owned(),
            "OK".to_owned(),
        ];
        assert_eq!(fields[2..6], expected_rest, "columns of {line:?}");
        let time: u64 = fields[6].parse().expect("time column is epoch seconds");
        assert!((started..=now).contains(&time), "time of {line:?}");
        // time_hires: the same instant as seconds.microseconds (DOUBLE, printed with %f).
        let (seconds, micros) = fields[7]
            .split_once('.')
            .expect("time_hires has a fraction");
        assert_eq!(seconds, fields[6], "time_hires of {line:?}");
        assert!(
            micros.len() == 6 && micros.bytes().all(|b| b.is_ascii_digit()),
            "time_hires of {line:?}"
        );
        assert_eq!(
            fields[8..12],
            ["alice", "flatstore.test", "bob", "127.0.0.1"],
            "src_user, src_domain, dst_ouser, src_ip of {line:?}"
        );
        // The User-Agent header value "flatstore|uac N", with its '|' escaped.
        assert_eq!(fields[12], format!("flatstore%7Cuac {call}"), "{line:?}");
        seen[call as usize][method] += 1;
    }
    let wrong: Vec<String> = (1..=calls)
        .filter(|c| seen[*c as usize] != [1, 1])
        .map(|c| format!("call {c}: {:?}", seen[c as usize]))
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "every call once (INVITE, BYE counts): {wrong:?}"
    );
    assert_eq!(lines.len(), 2 * calls as usize);
}

pub fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}
