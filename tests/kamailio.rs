//! The Kamailio profile inside a real proxy (see [`common::kamailio`]): our module, the crate
//! `hosts/kamailio` (`flatstore-kamailio`), under SIPp traffic, with rotation mid-run by `kamcmd` and by the real
//! `logrotate`, stopped by pid, and compared with the stock module.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::kamailio::{
    COLUMNS, MODULES, Proxy, Uas, account_calls, all_lines, assert_every_call_accounted_once,
    config_defines, epoch_now, our_module, place_calls, ports, rename_live_files, scratch,
};
use common::timeout::{output_or_fail, own_group, wait_or_kill};
use common::{trial, trial_needing, trial_unless};

const TOOLS: [&str; 4] = ["kamailio", "sipp", "kamcmd", "logrotate"];

fn main() {
    common::run_trials(vec![
        trial("kamailio_module_abi_from_c", kamailio_module_abi_from_c),
        trial_needing(
            "kamailio_module_abi_from_c_under_valgrind",
            &["valgrind"],
            kamailio_module_abi_from_c_under_valgrind,
        ),
        trial_needing(
            "kamailio_seals_files_and_records_column_names",
            &TOOLS,
            kamailio_seals_files_and_records_column_names,
        ),
        trial_needing(
            "kamailio_accounts_every_call_across_rotations",
            &TOOLS,
            kamailio_accounts_every_call_across_rotations,
        ),
        trial_needing(
            "kamailio_flush_0_loses_nothing_when_stopped",
            &TOOLS,
            kamailio_flush_0_loses_nothing_when_stopped,
        ),
        trial_needing(
            "stock_module_and_ours_write_the_same_records",
            &TOOLS,
            stock_module_and_ours_write_the_same_records,
        ),
        trial_needing(
            "kamailio_module_logs_through_kamailios_logging",
            &["kamailio", "kamcmd"],
            kamailio_module_logs_through_kamailios_logging,
        ),
        trial_unless(
            "kamailio_module_logs_to_syslog_as_kamailio_does",
            private_dev_log,
            kamailio_module_logs_to_syslog_as_kamailio_does,
        ),
        trial(
            "kamailio_build_without_kamailio_explains_the_fix",
            kamailio_build_without_kamailio_explains_the_fix,
        ),
    ]);
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `c-tests/test_kamailio_abi.c`, compiled once per test run.
fn abi_program() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
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
        exe
    })
}

/// The module as Kamailio's loader and acc use it, from C (`c-tests/test_kamailio_abi.c`):
/// the loader's strings, exports, modparams, db_bind_api, all srdb1 types, RPC rotation. Runs
/// without Kamailio installed.
fn kamailio_module_abi_from_c() {
    let module = our_module();
    let mut plain = Command::new(abi_program());
    plain
        .arg(&module.path)
        .arg(&module.version)
        .arg(&module.flags);
    common::run_checked(plain, "test_kamailio_abi");
}

/// [`kamailio_module_abi_from_c`] under valgrind.
fn kamailio_module_abi_from_c_under_valgrind() {
    let module = our_module();
    let mut checked = Command::new("valgrind");
    checked
        .args(["--quiet", "--error-exitcode=99", "--leak-check=full"])
        .args(["--errors-for-leak-kinds=definite"])
        .arg(abi_program())
        .arg(&module.path)
        .arg(&module.version)
        .arg(&module.flags);
    common::run_checked(checked, "test_kamailio_abi (valgrind)");
}

/// Kamailio loading our module, accounting into `<scratch>/acc`, and the UAS behind it.
struct Running {
    /// The scratch directory of the run.
    dir: PathBuf,
    /// acc's log directory.
    acc: PathBuf,
    proxy: Proxy,
    _uas: Uas,
    /// When the proxy was started (seconds since the epoch).
    started: u64,
}

/// Start [`Running`] in the scratch directory `name`, with `query` after acc's `db_url`
/// (`?name=value&…` or empty) and the modparam `flush`.
fn start_our_proxy(name: &str, query: &str, flush: u8) -> Running {
    let dir = scratch(name);
    let acc = dir.join("acc");
    let port = ports();
    let started = epoch_now();
    let proxy = Proxy::start(
        &our_module().path.display().to_string(),
        &dir,
        port,
        &format!("flatstore:{}{query}", acc.display()),
        flush,
    );
    let _uas = Uas::start(port + 1, &dir);
    Running {
        dir,
        acc,
        proxy,
        _uas,
        started,
    }
}

/// Self-rotation and the schema sidecar in the real proxy: 1,500 calls with `header=1`,
/// `rotate_records=400`, `rotate_seconds=2` and `fsync=rotate` in the db_url (each worker's
/// helper thread syncs its sealed files and gives them their sealed names). acc's own column
/// names are in `acc.columns`; every sealed file holds at most 400 whole records; every call
/// is accounted once across sealed and live files, and no seal is left pending once Kamailio
/// has stopped; `flatstore export --sealed-only` names the JSON keys from the sidecar.
fn kamailio_seals_files_and_records_column_names() {
    let run = start_our_proxy(
        "sealed",
        "?header=1&rotate_records=400&rotate_seconds=2&fsync=rotate",
        1,
    );
    let calls = 1500;
    place_calls(&run.proxy, calls, 300)
        .join()
        .expect("every call succeeded");
    // Idle now: the time limit seals what the workers still hold.
    thread::sleep(Duration::from_secs(3));
    let status = run.proxy.stop();
    assert!(status.success(), "kamailio exit status {status}");
    assert_eq!(
        fs::read_to_string(run.acc.join("acc.columns")).expect("acc.columns"),
        format!("{COLUMNS}\n")
    );
    let mut sealed = 0;
    let mut live_records = 0;
    for (name, path) in common::visible_files(&run.acc) {
        let records = || fs::read_to_string(&path).expect("read").lines().count();
        if name.contains(".log.sealed-") {
            sealed += 1;
            assert!(records() <= 400, "{name}: {} records", records());
        } else if name.ends_with(".log") {
            live_records += records();
        }
    }
    assert_eq!(
        live_records, 0,
        "the time limit sealed every file of the idle proxy"
    );
    assert!(sealed >= 8, "{sealed} sealed files for 3,000 records");
    let pending: Vec<String> = fs::read_dir(&run.acc)
        .expect("read the log directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".pending"))
        .collect();
    assert!(pending.is_empty(), "seals left pending: {pending:?}");
    let (lines, _) = all_lines(&run.acc);
    assert_every_call_accounted_once(&lines, calls, run.started);
    let export = Command::new(common::flatstore_cli())
        .args(["export", "--format", "jsonl", "--sealed-only"])
        .arg(&run.acc)
        .arg("acc")
        .output()
        .expect("run flatstore export");
    assert!(export.status.success(), "export: {export:?}");
    let text = String::from_utf8(export.stdout).expect("utf8");
    assert_eq!(text.lines().count(), 2 * calls as usize);
    assert!(
        text.lines()
            .all(|l| l.starts_with("{\"method\":\"")
                && l.contains(",\"user_agent\":\"flatstore|uac ")),
        "{}",
        text.lines().next().unwrap_or_default()
    );
    eprintln!("{calls} calls: {sealed} sealed files, acc.columns as acc names them");
}

/// flush=1: 3,000 calls; mid-run one rotation by renaming and `kamcmd flatstore.rotate`, and
/// one by the real `logrotate` with the recipe of `examples/logrotate.conf` (postrotate:
/// `flatstore rotate --wait`); Kamailio stopped by pid. Every call accounted once, every file
/// ends in a whole line, and the renamed files received nothing after the rotation.
fn kamailio_accounts_every_call_across_rotations() {
    let run = start_our_proxy("flush1", "", 1);
    let calls = 3000;
    let traffic = place_calls(&run.proxy, calls, 300);

    thread::sleep(Duration::from_secs(3));
    let renamed = rename_live_files(&run.acc, "kamcmd");
    assert!(renamed > 0, "some worker has written by now");
    let rotate = run.proxy.rpc("flatstore.rotate");
    assert!(
        rotate.status.success(),
        "kamcmd flatstore.rotate: {rotate:?}"
    );
    let wait = Command::new(common::flatstore_cli())
        .arg("rotate")
        .arg(&run.acc)
        .args(["--wait", "--timeout", "10"])
        .output()
        .expect("run flatstore rotate --wait");
    assert!(wait.status.success(), "rotate --wait: {wait:?}");
    let sealed: Vec<(PathBuf, u64)> = fs::read_dir(&run.acc)
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
        .replace("/var/log/kamailio/acc", &run.acc.display().to_string())
        .replace(
            "/usr/bin/flatstore",
            &common::flatstore_cli().to_string_lossy(),
        );
    fs::write(run.dir.join("logrotate.conf"), recipe).expect("write recipe");
    let logrotate = output_or_fail(
        Command::new("logrotate")
            .arg("--force")
            .arg("--state")
            .arg(run.dir.join("logrotate.state"))
            .arg(run.dir.join("logrotate.conf")),
        "logrotate",
        Duration::from_secs(60),
    );
    assert!(logrotate.status.success(), "logrotate: {logrotate:?}");

    traffic.join().expect("every call succeeded");
    let status = run.proxy.stop();
    assert!(status.success(), "kamailio exit status {status}");
    for (path, len) in &sealed {
        assert_eq!(
            fs::metadata(path).expect("stat").len(),
            *len,
            "{} grew after rotate --wait returned",
            path.display()
        );
    }
    let (lines, files) = all_lines(&run.acc);
    let compressed = fs::read_dir(&run.acc)
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
    assert_every_call_accounted_once(&lines, calls, run.started);
}

/// flush=0 with a flush interval of an hour: the records reach the files only when a buffer
/// fills, at the rotation, and when Kamailio is stopped (its children `_exit(0)` on SIGTERM;
/// the stock module loses its buffers there). Every call accounted once.
fn kamailio_flush_0_loses_nothing_when_stopped() {
    let run = start_our_proxy("flush0", "?flush_interval=3600", 0);
    let calls = 2000;
    let traffic = place_calls(&run.proxy, calls, 400);
    thread::sleep(Duration::from_secs(2));
    rename_live_files(&run.acc, "kamcmd");
    let rotate = run.proxy.rpc("flatstore.k_rotate");
    assert!(
        rotate.status.success(),
        "kamcmd flatstore.k_rotate: {rotate:?}"
    );
    traffic.join().expect("every call succeeded");
    let (before_stop, _) = all_lines(&run.acc);
    let status = run.proxy.stop();
    assert!(status.success(), "kamailio exit status {status}");
    let (lines, files) = all_lines(&run.acc);
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
    assert_every_call_accounted_once(&lines, calls, run.started);
}

/// The same SIPp traffic through Debian's stock `db_flatstore.so` and through ours, at flush=1:
/// the same records byte for byte, but for the digits of the times (`time`, and `time_hires`
/// whose form, seconds and six decimals, must be the same).
fn stock_module_and_ours_write_the_same_records() {
    let calls = 500;
    let mut runs = Vec::new();
    for (name, module, defines) in [
        (
            "stock",
            format!("{MODULES}/db_flatstore.so"),
            &[("STOCK_DB_FLATSTORE", "")][..],
        ),
        ("ours", our_module().path.display().to_string(), &[]),
    ] {
        let lines = account_calls(&module, defines, &format!("diff-{name}"), calls, 250);
        let mut without_time: Vec<String> = lines
            .iter()
            .map(|l| {
                let mut fields: Vec<String> = l.split('|').map(str::to_owned).collect();
                for time in fields.iter_mut().skip(6).take(2) {
                    *time = time.replace(|c: char| c.is_ascii_digit(), "9");
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
fn kamailio_build_without_kamailio_explains_the_fix() {
    let out = Command::new(env!("CARGO"))
        .args(["check", "-p", "flatstore-kamailio"])
        // Its own target directory: the failed build script leaves the test's own alone.
        .arg("--target-dir")
        .arg(common::target_dir().join("hosts-check"))
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

/// A scratch directory for Kamailio whose `acc` directory other users can write to: the
/// module warns about it in every process that opens it. Returns (directory, acc, the
/// warning's text).
fn shared_acc(name: &str) -> (PathBuf, PathBuf, String) {
    let dir = scratch(name);
    let acc = dir.join("acc");
    fs::set_permissions(&acc, fs::Permissions::from_mode(0o777)).expect("chmod 777 acc");
    let warning = format!(
        "log directory {} is writable by other users (mode 777); use a directory only the \
         proxy's user can write",
        acc.display()
    );
    (dir, acc, warning)
}

/// `line` as Kamailio's `LM_*` macros print it on standard error (`%2d(%d) %s: ` then the
/// rest: process number, pid, level name): (process number, pid, what follows the level).
fn kamailio_stderr_line<'a>(line: &'a str, level: &str) -> Option<(i32, i32, &'a str)> {
    let (number, rest) = line.split_once('(')?;
    let (pid, rest) = rest.split_once(") ")?;
    let rest = rest.strip_prefix(level)?.strip_prefix(": ")?;
    if number.len() < 2 {
        return None;
    }
    Some((number.trim_start().parse().ok()?, pid.parse().ok()?, rest))
}

/// Inside Kamailio the library's messages go through Kamailio's logging, as every module's
/// do. Kamailio run with `-E` (and `log_stderror=yes`) prints them on standard error in its own
/// format, `%2d(%d) WARNING: db_flatstore: …` with its process number and the process's pid,
/// as its core's lines, and never as the default sink's raw `flatstore: …` line. A log
/// directory others can write to is a warning from each process that opens it (once); a
/// refused modparam is an error at startup (`kamailio -c`), under the level name `ERROR`.
fn kamailio_module_logs_through_kamailios_logging() {
    let (dir, acc, warning) = shared_acc("logging");
    let module = our_module().path.display().to_string();
    let url = format!("flatstore:{}", acc.display());
    let port = ports();
    let proxy = Proxy::start(&module, &dir, port, &url, 1);
    // acc opens its connection in each worker's child_init: wait for their warnings.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxy.log().contains(&warning) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    let status = proxy.stop();
    assert!(status.success(), "kamailio exit status {status}");
    let log = fs::read_to_string(dir.join("kamailio.log")).expect("kamailio.log");
    let ours = format!("db_flatstore: {warning}");
    let mut pids = Vec::new();
    for line in log.lines().filter(|l| l.contains(&warning)) {
        let (_, pid, rest) = kamailio_stderr_line(line, "WARNING")
            .unwrap_or_else(|| panic!("not Kamailio's format: {line:?}"));
        assert_eq!(rest, ours, "{line:?}");
        assert!(!pids.contains(&pid), "pid {pid} warned twice:\n{log}");
        pids.push(pid);
    }
    assert!(
        pids.len() >= 4,
        "a warning from each SIP worker, got {pids:?}:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| kamailio_stderr_line(l, "INFO")
                .is_some_and(|(_, _, r)| r.starts_with("<core> "))),
        "Kamailio's own lines have the same shape:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("flatstore: ")),
        "a raw line on standard error:\n{log}"
    );

    let check = Command::new("kamailio")
        .args(["-c", "-E", "-f"])
        .arg(manifest_dir().join("examples/kamailio.cfg"))
        .args(config_defines(&module, &dir, port, &url, 7))
        .stdin(Stdio::null())
        .output()
        .expect("run kamailio -c");
    let said = String::from_utf8_lossy(&check.stderr);
    let refused = "db_flatstore: parameter \"flush\": \"7\" is not 0 or 1";
    assert!(
        said.lines().any(|l| kamailio_stderr_line(l, "ERROR")
            .is_some_and(|(number, _, rest)| number == 0 && rest == refused)),
        "the refused modparam, as Kamailio logs an error:\n{said}"
    );
    eprintln!("{} processes warned through Kamailio's logging", pids.len());
}

/// Why [`kamailio_module_logs_to_syslog_as_kamailio_does`] cannot run here: it needs
/// Kamailio, and root in a private mount namespace to give Kamailio a `/dev/log` of its own.
fn private_dev_log() -> Result<Option<String>, libtest_mimic::Failed> {
    if let Some(reason) = common::missing_tools(&["kamailio", "unshare", "mount"])? {
        return Ok(Some(reason));
    }
    let private = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .args(["sh", "-c", "mount -t tmpfs tmpfs /dev"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    Ok((!private).then(|| "needs root in a private mount namespace (unshare -m)".to_owned()))
}

/// Kamailio as it runs in production (logging to syslog: `log_stderror=no`, no `-E`), with a
/// `/dev/log` of its own (a socket of this test, mounted over it in a private mount
/// namespace): the module's warning arrives there with Kamailio's facility and the warning's
/// priority, as `WARNING: db_flatstore: …`, beside Kamailio's own lines; nothing goes to
/// standard error.
fn kamailio_module_logs_to_syslog_as_kamailio_does() {
    let (dir, acc, warning) = shared_acc("syslog");
    let syslog = UnixDatagram::bind(dir.join("log.sock")).expect("bind the syslog socket");
    syslog
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let config = fs::read_to_string(manifest_dir().join("examples/kamailio.cfg"))
        .expect("read examples/kamailio.cfg");
    assert!(config.contains("\nlog_stderror=yes\n"));
    fs::write(
        dir.join("kamailio.cfg"),
        config.replace("\nlog_stderror=yes\n", "\nlog_stderror=no\n"),
    )
    .expect("write kamailio.cfg");
    // In a private mount namespace: a /dev of its own, with the few devices Kamailio uses
    // and the test's socket as /dev/log; then Kamailio, in the foreground.
    let script = r#"set -e
        mkdir -p "$1/dev"
        mount --rbind /dev "$1/dev"
        mount -t tmpfs tmpfs /dev
        for n in null zero random urandom; do touch /dev/$n; mount --bind "$1/dev/$n" /dev/$n; done
        touch /dev/log
        mount --bind "$1/log.sock" /dev/log
        shift
        exec "$@""#;
    let log = fs::File::create(dir.join("kamailio.log")).expect("create log");
    let mut kamailio = own_group(&mut Command::new("unshare"))
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&dir)
        .args(["kamailio", "-DD", "-f"])
        .arg(dir.join("kamailio.cfg"))
        .arg("-Y")
        .arg(dir.join("run"))
        .args(config_defines(
            &our_module().path.display().to_string(),
            &dir,
            ports(),
            &format!("flatstore:{}", acc.display()),
            1,
        ))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start kamailio in a private mount namespace");
    // Read the socket until Kamailio is gone: a full socket would block its syslog() calls.
    let messages = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (messages, done) = (Arc::clone(&messages), Arc::clone(&done));
        thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            while !done.load(Ordering::SeqCst) {
                if let Ok(n) = syslog.recv(&mut buffer) {
                    let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
                    messages.lock().expect("messages").push(message);
                }
            }
        })
    };
    let ours = format!(": WARNING: db_flatstore: {warning}\n");
    let warned = || {
        let messages = messages.lock().expect("messages");
        messages.iter().filter(|m| m.ends_with(&ours)).count()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && warned() < 4 && kamailio.try_wait().expect("wait").is_none()
    {
        thread::sleep(Duration::from_millis(100));
    }
    let pid = nix::unistd::Pid::from_raw(kamailio.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let status = wait_or_kill(&mut kamailio, Duration::from_secs(90));
    done.store(true, Ordering::SeqCst);
    let status = status.expect("kamailio stopped within 90 s of SIGTERM (its group was killed)");
    reader.join().expect("the socket reader");
    let messages = messages.lock().expect("messages").clone();
    let said = fs::read_to_string(dir.join("kamailio.log")).unwrap_or_default();
    let all = messages.concat();
    assert!(
        status.success(),
        "kamailio: {status}\n{said}\nsyslog:\n{all}"
    );
    // `<priority>` first: facility | level. Kamailio's own INFO lines give its facility.
    let priority =
        |m: &str| -> Option<i32> { m.strip_prefix('<')?.split_once('>')?.0.parse().ok() };
    let facility = messages
        .iter()
        .find(|m| m.contains(": INFO: <core> ["))
        .and_then(|m| priority(m))
        .map(|p| p & !7)
        .unwrap_or_else(|| panic!("Kamailio's own lines reach the socket:\n{all}\n{said}"));
    let warnings: Vec<&String> = messages.iter().filter(|m| m.ends_with(&ours)).collect();
    assert!(
        warnings.len() >= 4,
        "a warning from each SIP worker:\n{all}\n{said}"
    );
    for message in &warnings {
        assert_eq!(
            priority(message),
            Some(facility | libc::LOG_WARNING),
            "{message:?}"
        );
    }
    assert!(
        !said.contains("writable by other users"),
        "on standard error:\n{said}"
    );
    eprintln!(
        "{} warnings at syslog priority {} (facility {})",
        warnings.len(),
        facility | libc::LOG_WARNING,
        facility >> 3
    );
}
