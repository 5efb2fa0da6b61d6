//! The Kamailio profile inside a real proxy (see [`common::kamailio`]): our module, built with
//! `--features kamailio`, under SIPp traffic, with rotation mid-run by `kamcmd` and by the real
//! `logrotate`, stopped by pid, and compared with the stock module.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use common::kamailio::{
    COLUMNS, MODULES, Proxy, Uas, account_calls, all_lines, assert_every_call_accounted_once,
    epoch_now, our_module, place_calls, ports, rename_live_files, scratch,
};
use common::{trial, trial_needing};

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
/// `rotate_records=400` and `rotate_seconds=2` in the db_url. acc's own column names are in
/// `acc.columns`; every sealed file holds at most 400 whole records; every call is accounted
/// once across sealed and live files; `flatstore export --sealed-only` names the JSON keys
/// from the sidecar.
fn kamailio_seals_files_and_records_column_names() {
    let run = start_our_proxy("sealed", "?header=1&rotate_records=400&rotate_seconds=2", 1);
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
    let logrotate = Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(run.dir.join("logrotate.state"))
        .arg(run.dir.join("logrotate.conf"))
        .output()
        .expect("run logrotate");
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
        .args(["check", "--lib", "--features", "kamailio"])
        .arg("--target-dir")
        .arg(common::target_dir().join("kamailio"))
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
