//! A real OpenSIPS 3.6 for `tests/opensips.rs`: built from `../shared/hosts/opensips-3.6.8.tar.xz`
//! into `<target>/hosts/opensips-3.6.8` (kept there: built once, reused by later runs), running
//! `tests/opensips/opensips.cfg` on 127.0.0.1 with acc writing through our module or the stock
//! `db_flatstore`, SIPp calls through it, MI commands over `mi_fifo`, stopped by pid. Every
//! process the tests start runs in a process group of its own and every wait has a limit past
//! which the group is killed and the test fails.

use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use libtest_mimic::Failed;

use super::timeout::{kill_group, wait_or_fail};

/// The tree's name, from the tarball's.
pub const TREE: &str = "opensips-3.6.8";
/// What building OpenSIPS and driving it need (logrotate and gzip: the logrotate recipe).
pub const TOOLS: [&str; 9] = [
    "gcc",
    "make",
    "flex",
    "bison",
    "tar",
    "xz",
    "sipp",
    "logrotate",
    "gzip",
];
/// The modules built (`make modules=...`): what `opensips.cfg` loads, and the stock module.
const MODULES: &str = "signaling sl tm rr maxfwd sipmsgops textops dialog acc db_flatstore mi_fifo";
/// Limit on building OpenSIPS (about 1.5 to 3 min on 2 idle cores).
const BUILD_LIMIT: Duration = Duration::from_secs(1800);

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/hosts/opensips-3.6.8.tar.xz`, beside the clone (as in CI).
pub fn tarball() -> PathBuf {
    manifest_dir().join(format!("../shared/hosts/{TREE}.tar.xz"))
}

/// Why the OpenSIPS tests cannot run here (a tool or the tarball missing), or `Err` when
/// `CI=true`, where both must be there.
pub fn missing() -> Result<Option<String>, Failed> {
    if let Some(reason) = super::missing_tools(&TOOLS)? {
        return Ok(Some(reason));
    }
    if !tarball().exists() {
        let reason = format!("needs {}", tarball().display());
        if std::env::var("CI").as_deref() == Ok("true") {
            return Err(format!("{reason} (required when CI=true)").into());
        }
        return Ok(Some(reason));
    }
    Ok(None)
}

/// The built OpenSIPS: its tree (modules under `modules/<name>/<name>.so`) and binary.
pub struct Host {
    pub tree: PathBuf,
    pub binary: PathBuf,
}

impl Host {
    /// The stock `db_flatstore.so` of the tree.
    pub fn stock_module(&self) -> PathBuf {
        self.tree.join("modules/db_flatstore/db_flatstore.so")
    }
}

/// OpenSIPS, built on first use into `<target>/hosts/` and reused when already there (the
/// binary and every module of [`MODULES`] present). The build's time is printed.
pub fn host() -> &'static Host {
    static BUILT: OnceLock<Host> = OnceLock::new();
    BUILT.get_or_init(|| {
        let hosts = super::target_dir().join("hosts");
        let tree = hosts.join(TREE);
        let binary = tree.join("opensips");
        let built = |tree: &Path| {
            binary.exists()
                && MODULES
                    .split(' ')
                    .all(|m| tree.join(format!("modules/{m}/{m}.so")).exists())
        };
        if !built(&tree) {
            let started = Instant::now();
            fs::create_dir_all(&hosts).expect("create hosts dir");
            if !tree.join("Makefile").exists() {
                let mut untar = Command::new("tar")
                    .arg("-xJf")
                    .arg(tarball())
                    .current_dir(&hosts)
                    .process_group(0)
                    .spawn()
                    .expect("run tar");
                let status = wait_or_fail(&mut untar, "tar", Duration::from_secs(120));
                assert!(status.success(), "unpacking {} failed", tarball().display());
            }
            let log = tree.join("flatstore-build.log");
            let out = fs::File::create(&log).expect("build log");
            let mut make = Command::new("make")
                .args(["-j2", "all", "all_misclibs="])
                .arg(format!("module={MODULES}"))
                .current_dir(&tree)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("log"))
                .stderr(out)
                .process_group(0)
                .spawn()
                .expect("run make");
            let status = wait_or_fail(&mut make, "building OpenSIPS", BUILD_LIMIT);
            assert!(
                status.success() && built(&tree),
                "building OpenSIPS failed ({status}), see {}",
                log.display()
            );
            eprintln!(
                "built OpenSIPS in {} s (cached in {})",
                started.elapsed().as_secs(),
                tree.display()
            );
        }
        Host { tree, binary }
    })
}

/// Our module (`hosts/opensips`, package `flatstore-opensips`), built once per test run in
/// release mode into the test's target directory against [`host`]'s binary.
pub fn our_module() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = super::target_dir();
        let mut build = Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet", "-p", "flatstore-opensips"])
            .env("CARGO_TARGET_DIR", &target)
            .env("FLATSTORE_OPENSIPS", &host().binary)
            .current_dir(manifest_dir())
            .process_group(0)
            .spawn()
            .expect("run cargo build");
        let status = wait_or_fail(&mut build, "building flatstore-opensips", BUILD_LIMIT);
        assert!(status.success(), "building the OpenSIPS module failed");
        target.join("release/libflatstore_opensips.so")
    })
}

/// Four consecutive UDP ports on 127.0.0.1, different for every proxy of this test run.
pub fn ports() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 41000 + (std::process::id() % 400) as u16 * 50;
    base + NEXT.fetch_add(4, Ordering::Relaxed)
}

/// A fresh scratch directory with `acc/` and `run/` in it.
pub fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("flatstore-opensips-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("acc")).expect("create acc dir");
    fs::create_dir_all(dir.join("run")).expect("create run dir");
    dir
}

/// How acc accounts the calls.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Accounting {
    /// The answered INVITE and every in-dialog BYE into `acc`, failed INVITEs into
    /// `missed_calls` (`do_accounting("db", "missed")`).
    PerRequest,
    /// One line per call into `acc`, failed INVITEs into `missed_calls`
    /// (`do_accounting("db", "cdr|missed")`, with dialog).
    Cdr,
}

/// An OpenSIPS started from the test, stopped by pid.
pub struct Proxy {
    child: Option<Child>,
    pub dir: PathBuf,
    pub port: u16,
}

impl Proxy {
    /// Start `tests/opensips/opensips.cfg` on `port` (next hop `port + 1`) loading `module`,
    /// with acc writing to `url`, `workers` UDP workers; `extra` is appended to the
    /// configuration's modparams (lines of its own).
    pub fn start(
        module: &Path,
        dir: &Path,
        port: u16,
        url: &str,
        accounting: Accounting,
        extra: &str,
    ) -> Proxy {
        Proxy::try_start(module, dir, port, url, accounting, extra)
            .unwrap_or_else(|(status, log)| panic!("opensips did not start ({status:?}):\n{log}"))
    }

    /// [`Proxy::start`], or why OpenSIPS is not running 30 s later: its exit status (`None`:
    /// still starting) and its log.
    pub fn try_start(
        module: &Path,
        dir: &Path,
        port: u16,
        url: &str,
        accounting: Accounting,
        extra: &str,
    ) -> Result<Proxy, (Option<ExitStatus>, String)> {
        let host = host();
        let (invite, bye) = match accounting {
            Accounting::PerRequest => (
                "do_accounting(\"db\", \"missed\");",
                "do_accounting(\"db\");",
            ),
            Accounting::Cdr => ("do_accounting(\"db\", \"cdr|missed\");", "$var(bye) = 1;"),
        };
        let template =
            fs::read_to_string(manifest_dir().join("tests/opensips/opensips.cfg")).expect("cfg");
        let cfg = template
            .replace("@WORKERS@", "2")
            .replace("@PORT@", &port.to_string())
            .replace("@NEXT_PORT@", &(port + 1).to_string())
            .replace("@MODULES@", &format!("{}/modules/", host.tree.display()))
            .replace("@MODULE@", &module.display().to_string())
            .replace("@FIFO@", &dir.join("run/fifo").display().to_string())
            .replace("@REPLY_DIR@", &format!("{}/", dir.join("run").display()))
            .replace("@ACC_URL@", url)
            .replace("@INVITE_ACC@", invite)
            .replace("@BYE_ACC@", bye)
            .replace("#@EXTRA@", extra);
        let cfg_path = dir.join("opensips.cfg");
        fs::write(&cfg_path, cfg).expect("write cfg");
        let log = fs::File::create(dir.join("opensips.log")).expect("create log");
        let child = Command::new(&host.binary)
            .arg("-f")
            .arg(&cfg_path)
            .arg("-F")
            .arg("-w")
            .arg(dir.join("run"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start opensips");
        let mut proxy = Proxy {
            child: Some(child),
            dir: dir.to_owned(),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = proxy
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                proxy.child = None;
                return Err((Some(status), proxy.log()));
            }
            if proxy.dir.join("run/fifo").exists() && proxy.mi("uptime").is_ok() {
                return Ok(proxy);
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err((None, proxy.log()))
    }

    /// MI `method` over mi_fifo: the JSON-RPC reply, within 10 s.
    pub fn mi(&self, method: &str) -> Result<String, String> {
        mi_call(&self.dir.join("run"), method)
    }

    /// What the proxy has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("opensips.log")).unwrap_or_default()
    }

    /// SIGTERM to the main process (which stops its children), then wait for it, at most 60 s.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let status = wait_or_fail(&mut child, "stopping opensips", Duration::from_secs(60));
        // Children that outlived the main process would hold the test's ports.
        kill_group(child.id());
        status
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id());
            let _ = child.wait();
        }
    }
}

/// One MI command over the FIFO of the OpenSIPS whose run directory is `run`: a reply FIFO
/// made in `run` (mi_fifo's `reply_dir`), the request written to `run/fifo`, the reply read
/// within 10 s. `Err` when the FIFO cannot be written or no reply comes.
pub fn mi_call(run: &Path, method: &str) -> Result<String, String> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let name = format!("reply-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let reply_path = run.join(&name);
    let _ = fs::remove_file(&reply_path);
    nix::unistd::mkfifo(&reply_path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| format!("mkfifo: {e}"))?;
    let request = format!(":{name}:{{\"jsonrpc\":\"2.0\",\"method\":\"{method}\",\"id\":\"1\"}}\n");
    let (tx, rx) = mpsc::channel();
    let reader_path = reply_path.clone();
    thread::spawn(move || {
        let mut text = String::new();
        let read = fs::File::open(&reader_path).and_then(|mut f| f.read_to_string(&mut text));
        let _ = tx.send(read.map(|_| text));
    });
    let written = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(run.join("fifo"))
        .and_then(|mut f| f.write_all(request.as_bytes()));
    let result = match written {
        Err(e) => Err(format!("write to mi_fifo: {e}")),
        Ok(()) => match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(e)) => Err(format!("read the reply: {e}")),
            Err(_) => Err("no MI reply in 10 s".to_owned()),
        },
    };
    if result.is_err() {
        // Unblock the reader thread, still waiting for a writer.
        let _ = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&reply_path);
    }
    let _ = fs::remove_file(&reply_path);
    result
}

/// SIPp's own bound on a scenario run (`-timeout`, an error when reached), in seconds.
pub const SIPP_TIMEOUT_S: u64 = 40;

/// The last `lines` lines of the file at `path`.
pub fn tail(path: &Path, lines: usize) -> String {
    super::tail(&fs::read_to_string(path).unwrap_or_default(), lines)
}
