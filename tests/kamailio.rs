//! The Kamailio profile inside a real proxy: Debian's Kamailio 5.6 runs `examples/kamailio.cfg`
//! on 127.0.0.1 with `acc` writing through our module (built with `--features kamailio`), SIPp
//! places the calls (`tests/kamailio/uac.xml`) to a SIPp answering side (`uas.xml`), rotation
//! happens mid-run with `kamcmd` and with the real `logrotate`, and the proxy is stopped by pid.
//!
//! Every call is accounted twice (the INVITE and the BYE transaction); every value but the time
//! is a function of the call number, so the expected records are known exactly.

mod common;

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TOOLS: [&str; 4] = ["kamailio", "sipp", "kamcmd", "logrotate"];
/// Where Debian installs Kamailio's modules (and the stock `db_flatstore.so`).
const MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";

fn tools_present() -> bool {
    TOOLS.iter().all(|t| common::require_tool(t))
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Our module, and the two strings Kamailio's loader will compare with it.
struct Module {
    path: PathBuf,
    version: String,
    flags: String,
}

/// The `version:` (up to the last `)`) and `flags:` lines of the installed `kamailio -V`.
fn installed_kamailio_strings() -> Option<(String, String)> {
    let out = Command::new("kamailio").arg("-V").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix));
    let version = line("version: ")?;
    let version = &version[..=version.rfind(')')?];
    Some((version.to_owned(), line("flags: ")?.to_owned()))
}

/// Our module, built once per test run with the `kamailio` feature (its own target directory,
/// so the OpenSER build the other tests load is left alone). Without an installed Kamailio it
/// is built with stand-in strings given through the build's override variables.
fn our_module() -> &'static Module {
    static BUILT: OnceLock<Module> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = manifest_dir().join("target/kamailio");
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--release", "--lib", "--features", "kamailio"])
            .arg("--target-dir")
            .arg(&target)
            .current_dir(manifest_dir());
        let (version, flags) = installed_kamailio_strings().unwrap_or_else(|| {
            let stand_in = ("kamailio 0.0.0 (test)".to_owned(), "TEST_FLAGS".to_owned());
            build
                .env("FLATSTORE_KAMAILIO_VERSION", &stand_in.0)
                .env("FLATSTORE_KAMAILIO_FLAGS", &stand_in.1);
            stand_in
        });
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the Kamailio module failed");
        Module {
            path: target.join("release/libflatstore.so"),
            version,
            flags,
        }
    })
}

/// The module as Kamailio's loader and acc use it, from C (`c-tests/test_kamailio_abi.c`):
/// the loader's strings, exports, modparams, db_bind_api, all srdb1 types, RPC rotation. Runs
/// without Kamailio installed; under valgrind too when it is.
#[test]
fn kamailio_module_abi_from_c() {
    let module = our_module();
    let exe = common::c_build_dir().join("test_kamailio_abi");
    let status = Command::new("cc")
        .args(["-std=c11", "-g", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(manifest_dir().join("c-tests"))
        .arg(manifest_dir().join("c-tests/test_kamailio_abi.c"))
        .arg("-o")
        .arg(&exe)
        .args(["-ldl", "-lm"])
        .status()
        .expect("run cc");
    assert!(status.success(), "compiling test_kamailio_abi.c failed");
    let mut plain = Command::new(&exe);
    plain
        .arg(&module.path)
        .arg(&module.version)
        .arg(&module.flags);
    common::run_checked(plain, "test_kamailio_abi");
    if common::require_tool("valgrind") {
        let mut checked = Command::new("valgrind");
        checked
            .args(["--quiet", "--error-exitcode=99", "--leak-check=full"])
            .args(["--errors-for-leak-kinds=definite"])
            .arg(&exe)
            .arg(&module.path)
            .arg(&module.version)
            .arg(&module.flags);
        common::run_checked(checked, "test_kamailio_abi (valgrind)");
    }
}

/// Four consecutive UDP ports on 127.0.0.1, different for every proxy of this test run.
fn ports() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 21000 + (std::process::id() % 400) as u16 * 50;
    base + NEXT.fetch_add(4, Ordering::Relaxed)
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("flatstore-kamailio-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("acc")).expect("create acc dir");
    fs::create_dir_all(dir.join("run")).expect("create run dir");
    dir
}

/// A Kamailio started from the test, stopped by pid.
struct Proxy {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl Proxy {
    /// Start `examples/kamailio.cfg` loading `module` with `acc` writing to `url`.
    fn start(module: &str, dir: &Path, port: u16, url: &str, flush: u8) -> Proxy {
        let define = |name: &str, value: String| ["-A".to_owned(), format!("{name}={value}")];
        let log = fs::File::create(dir.join("kamailio.log")).expect("create log");
        let mut command = Command::new("kamailio");
        command
            .arg("-f")
            .arg(manifest_dir().join("examples/kamailio.cfg"))
            .args(["-DD", "-E", "-Y"])
            .arg(dir.join("run"))
            .args(define("FLATSTORE_MODULE", format!("{module:?}")))
            .args(define("LISTEN", format!("udp:127.0.0.1:{port}")))
            .args(define(
                "NEXT_HOP",
                format!("\"sip:127.0.0.1:{}\"", port + 1),
            ))
            .args(define("ACC_URL", format!("{url:?}")))
            .args(define(
                "CTL_SOCKET",
                format!("\"unix:{}\"", dir.join("run/ctl").display()),
            ))
            .args(define("FLUSH", flush.to_string()))
            .args(define("CHILDREN", "4".to_owned()))
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

    fn rpc(&self, method: &str) -> std::process::Output {
        Command::new("kamcmd")
            .arg("-s")
            .arg(format!("unix:{}", self.dir.join("run/ctl").display()))
            .arg(method)
            .output()
            .expect("run kamcmd")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }

    /// SIGTERM to the main process (which stops its children), then wait for it.
    fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait kamailio") {
                return status;
            }
            assert!(Instant::now() < deadline, "kamailio did not stop in 30 s");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIPp answering calls on `port`.
struct Uas(Child);

impl Uas {
    fn start(port: u16, dir: &Path) -> Uas {
        let out = fs::File::create(dir.join("uas.out")).expect("create uas log");
        let child = Command::new("sipp")
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
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Place calls 1..=`count` through the proxy at `rate` per second, on a thread; join it to
/// learn that every call succeeded.
fn place_calls(proxy: &Proxy, count: u32, rate: u32) -> thread::JoinHandle<()> {
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
        let out = command.output().expect("run sipp uac");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "sipp: not every call succeeded ({}):\n{}",
            out.status,
            report.lines().rev().take(30).collect::<Vec<_>>().join("\n"),
        );
    })
}

/// Every line of every file in `dir` (live, renamed and gzip-compressed), after checking that
/// no file ends in a partial line.
fn all_lines(dir: &Path) -> (Vec<String>, usize) {
    let mut lines = Vec::new();
    let mut files = 0;
    for entry in fs::read_dir(dir).expect("read acc dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name.starts_with('.') {
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

/// Check that `lines` are exactly the records of calls 1..=`calls` (an INVITE and a BYE each,
/// nothing twice), with every column as expected and the time within the run.
fn assert_every_call_accounted_once(lines: &[String], calls: u32, started: u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut seen = vec![[0u32; 2]; calls as usize + 1];
    for line in lines {
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 9, "column count of {line:?}");
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
        assert_eq!(fields[7], "127.0.0.1", "source IP of {line:?}");
        // The User-Agent header value "flatstore|uac N", with its '|' escaped.
        assert_eq!(fields[8], format!("flatstore%7Cuac {call}"), "{line:?}");
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

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Rename every live `acc_<N>.log` to `acc_<N>.log.<suffix>`, as a rotation script does.
fn rename_live_files(acc: &Path, suffix: &str) -> usize {
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

/// flush=1: 3,000 calls; mid-run one rotation by renaming and `kamcmd flatstore.rotate`, and
/// one by the real `logrotate` with the recipe of `examples/logrotate.conf` (postrotate:
/// `flatstore rotate --wait`); Kamailio stopped by pid. Every call accounted once, every file
/// ends in a whole line, and the renamed files received nothing after the rotation.
#[test]
fn kamailio_accounts_every_call_across_rotations() {
    if !tools_present() {
        return;
    }
    let dir = scratch("flush1");
    let acc = dir.join("acc");
    let port = ports();
    let started = epoch_now();
    let proxy = Proxy::start(
        &our_module().path.display().to_string(),
        &dir,
        port,
        &format!("flatstore:{}", acc.display()),
        1,
    );
    let _uas = Uas::start(port + 1, &dir);
    let calls = 3000;
    let traffic = place_calls(&proxy, calls, 300);

    thread::sleep(Duration::from_secs(3));
    let renamed = rename_live_files(&acc, "kamcmd");
    assert!(renamed > 0, "some worker has written by now");
    let rotate = proxy.rpc("flatstore.rotate");
    assert!(
        rotate.status.success(),
        "kamcmd flatstore.rotate: {rotate:?}"
    );
    let wait = Command::new(env!("CARGO_BIN_EXE_flatstore"))
        .arg("rotate")
        .arg(&acc)
        .args(["--wait", "--timeout", "10"])
        .output()
        .expect("run flatstore rotate --wait");
    assert!(wait.status.success(), "rotate --wait: {wait:?}");
    let sealed: Vec<(PathBuf, u64)> = fs::read_dir(&acc)
        .expect("read acc")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "kamcmd"))
        .map(|p| {
            let len = fs::metadata(&p).expect("stat").len();
            (p, len)
        })
        .collect();

    thread::sleep(Duration::from_secs(3));
    let recipe = fs::read_to_string(manifest_dir().join("examples/logrotate.conf"))
        .expect("read recipe")
        .replace("/var/log/kamailio/acc", &acc.display().to_string())
        .replace("/usr/bin/flatstore", env!("CARGO_BIN_EXE_flatstore"));
    fs::write(dir.join("logrotate.conf"), recipe).expect("write recipe");
    let logrotate = Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(dir.join("logrotate.state"))
        .arg(dir.join("logrotate.conf"))
        .output()
        .expect("run logrotate");
    assert!(logrotate.status.success(), "logrotate: {logrotate:?}");

    traffic.join().expect("every call succeeded");
    let status = proxy.stop();
    assert!(status.success(), "kamailio exit status {status}");
    for (path, len) in &sealed {
        assert_eq!(
            fs::metadata(path).expect("stat").len(),
            *len,
            "{} grew after rotate --wait returned",
            path.display()
        );
    }
    let (lines, files) = all_lines(&acc);
    let compressed = fs::read_dir(&acc)
        .expect("read acc")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "gz"))
        })
        .count();
    assert!(compressed > 0, "logrotate compressed the rotated files");
    eprintln!(
        "kamailio flush=1: {} records of {calls} calls in {files} files ({renamed} renamed for \
         kamcmd, {compressed} compressed by logrotate)",
        lines.len()
    );
    assert_every_call_accounted_once(&lines, calls, started);
}

/// flush=0 with a flush interval of an hour: the records reach the files only when a buffer
/// fills, at the rotation, and when Kamailio is stopped (its children `_exit(0)` on SIGTERM;
/// the stock module loses its buffers there). Every call accounted once.
#[test]
fn kamailio_flush_0_loses_nothing_when_stopped() {
    if !tools_present() {
        return;
    }
    let dir = scratch("flush0");
    let acc = dir.join("acc");
    let port = ports();
    let started = epoch_now();
    let proxy = Proxy::start(
        &our_module().path.display().to_string(),
        &dir,
        port,
        &format!("flatstore:{}?flush_interval=3600", acc.display()),
        0,
    );
    let _uas = Uas::start(port + 1, &dir);
    let calls = 2000;
    let traffic = place_calls(&proxy, calls, 400);
    thread::sleep(Duration::from_secs(2));
    rename_live_files(&acc, "kamcmd");
    let rotate = proxy.rpc("flatstore.k_rotate");
    assert!(
        rotate.status.success(),
        "kamcmd flatstore.k_rotate: {rotate:?}"
    );
    traffic.join().expect("every call succeeded");
    let (before_stop, _) = all_lines(&acc);
    let status = proxy.stop();
    assert!(status.success(), "kamailio exit status {status}");
    let (lines, files) = all_lines(&acc);
    eprintln!(
        "kamailio flush=0: {} of {} records were in the files before the stop, {} after, in \
         {files} files",
        before_stop.len(),
        2 * calls,
        lines.len()
    );
    assert!(
        before_stop.len() < lines.len(),
        "some records were still buffered at the stop (else this test proves nothing)"
    );
    assert_every_call_accounted_once(&lines, calls, started);
}

/// The same SIPp traffic through Debian's stock `db_flatstore.so` and through ours, at flush=1:
/// the same records byte for byte, but for the time column.
#[test]
fn stock_module_and_ours_write_the_same_records() {
    if !tools_present() {
        return;
    }
    let calls = 500;
    let mut runs = Vec::new();
    for (name, module) in [
        ("stock", format!("{MODULES}/db_flatstore.so")),
        ("ours", our_module().path.display().to_string()),
    ] {
        let dir = scratch(&format!("diff-{name}"));
        let acc = dir.join("acc");
        let port = ports();
        let proxy = Proxy::start(
            &module,
            &dir,
            port,
            &format!("flatstore:{}", acc.display()),
            1,
        );
        let _uas = Uas::start(port + 1, &dir);
        place_calls(&proxy, calls, 250)
            .join()
            .expect("every call succeeded");
        let status = proxy.stop();
        assert!(status.success(), "{name}: kamailio exit status {status}");
        let (lines, _) = all_lines(&acc);
        let mut without_time: Vec<String> = lines
            .iter()
            .map(|l| {
                let mut fields: Vec<&str> = l.split('|').collect();
                if let Some(time) = fields.get_mut(6) {
                    *time = "<time>";
                }
                fields.join("|")
            })
            .collect();
        without_time.sort();
        runs.push(without_time);
    }
    assert_eq!(
        runs[0].len(),
        2 * calls as usize,
        "stock module: every call"
    );
    assert_eq!(runs[0], runs[1], "stock and ours differ");
}

/// Building the Kamailio module where no kamailio binary is found, and no override is given,
/// stops with a message that says what to do.
#[test]
fn kamailio_build_without_kamailio_explains_the_fix() {
    let out = Command::new(env!("CARGO"))
        .args(["check", "--lib", "--features", "kamailio"])
        .arg("--target-dir")
        .arg(manifest_dir().join("target/kamailio"))
        .current_dir(manifest_dir())
        .env("FLATSTORE_KAMAILIO", "/nonexistent/kamailio")
        .env_remove("FLATSTORE_KAMAILIO_VERSION")
        .env_remove("FLATSTORE_KAMAILIO_FLAGS")
        .output()
        .expect("run cargo check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the build must fail");
    for needle in [
        "no kamailio binary was found",
        "apt-get install kamailio",
        "FLATSTORE_KAMAILIO_VERSION",
    ] {
        assert!(
            stderr.contains(needle),
            "{needle:?} missing from:\n{stderr}"
        );
    }
}
