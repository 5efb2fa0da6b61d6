//! Rotation torture: a forking C host (`c-tests/torture_host.c`) whose 4 workers insert unique
//! records as fast as they can while the test renames the live files and requests a rotation
//! over and over, alternating the three triggers: `flatstore rotate DIR --wait` (no host
//! involved), SIGUSR2 to the host's main process (which calls `flat_rotate()`), and the opt-in
//! `rotate_signal` (SIGUSR1) sent to one worker. Afterwards every record must be present exactly
//! once across all files, no line may be torn, and no file renamed before a `--wait` rotation
//! returned may have grown after it.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use common::torture::{Host, assert_each_record_once, count_records, for_each_record, scratch_dir};
use common::{trial, trial_needing};

fn main() {
    common::run_trials(vec![
        trial(
            "torture_flush_1_every_record_once_across_1000_rotations",
            torture_flush_1_every_record_once_across_1000_rotations,
        ),
        trial(
            "torture_flush_0_every_record_once_across_300_rotations",
            torture_flush_0_every_record_once_across_300_rotations,
        ),
        trial_needing(
            "logrotate_recipe_loses_nothing",
            &["logrotate"],
            logrotate_recipe_loses_nothing,
        ),
        trial(
            "rotate_wait_times_out_naming_a_writer_still_writing",
            rotate_wait_times_out_naming_a_writer_still_writing,
        ),
        trial(
            "rotate_cli_usage_and_untouched_directory",
            rotate_cli_usage_and_untouched_directory,
        ),
        trial(
            "load_8_writers_60_seconds_rotating_every_100_ms",
            load_8_writers_60_seconds_rotating_every_100_ms,
        ),
    ]);
}

/// `flatstore rotate --wait --timeout <timeout> <logs>`.
fn rotate_wait(logs: &Path, timeout: &str) -> std::process::ExitStatus {
    Command::new(common::flatstore_cli())
        .args(["rotate", "--wait", "--timeout", timeout])
        .arg(logs)
        .status()
        .expect("run flatstore rotate")
}

/// Rename every live `*.log` file of `logs` to `<name>.<suffix>`; returns the new paths.
fn rename_live_files(logs: &Path, suffix: usize) -> Vec<PathBuf> {
    let mut renamed = Vec::new();
    for entry in fs::read_dir(logs).expect("read logs") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "log") {
            let to = PathBuf::from(format!("{}.{suffix}", path.display()));
            fs::rename(&path, &to).expect("rename");
            renamed.push(to);
        }
    }
    renamed
}

fn torture(flush: &str, rotations: usize) {
    let dir = scratch_dir(&format!("torture{flush}"));
    let logs = dir.join("logs");
    let host = Host::start(&dir, flush, "", 4);
    let mut unsealed: Vec<PathBuf> = Vec::new();
    let mut sealed: Vec<(PathBuf, u64)> = Vec::new();
    let mut triggers = [0usize; 3];
    for i in 0..rotations {
        unsealed.extend(rename_live_files(&logs, i));
        match i % 3 {
            0 => {
                assert!(
                    rotate_wait(&logs, "20").success(),
                    "flatstore rotate --wait failed"
                );
                for path in unsealed.drain(..) {
                    let size = fs::metadata(&path).expect("renamed file").len();
                    sealed.push((path, size));
                }
            }
            1 => kill(host.pid, Signal::SIGUSR2).expect("signal host"),
            _ => {
                kill(host.workers[i % host.workers.len()], Signal::SIGUSR1).expect("signal worker")
            }
        }
        triggers[i % 3] += 1;
    }
    let inserted = host.finish();
    for (path, size) in &sealed {
        let now = fs::metadata(path).expect("sealed file").len();
        assert_eq!(
            now,
            *size,
            "{} grew after rotate --wait returned",
            path.display()
        );
    }
    let (seen, files) = count_records(&logs);
    let total = assert_each_record_once(&seen, &inserted);
    eprintln!(
        "flush={flush}: {total} records, {rotations} rotations (cli --wait {}, flat_rotate {}, \
         signal {}), {files} files, {} sealed files unchanged after --wait: 0 lost, 0 duplicated, 0 torn",
        triggers[0],
        triggers[1],
        triggers[2],
        sealed.len()
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

fn torture_flush_1_every_record_once_across_1000_rotations() {
    torture("1", 1000);
}

fn torture_flush_0_every_record_once_across_300_rotations() {
    torture("0", 300);
}

/// The recipe in `examples/logrotate.conf`, run by the real `logrotate` (forced, 5 times) while
/// the workers write: every record once, across live, renamed and compressed files.
fn logrotate_recipe_loses_nothing() {
    let dir = scratch_dir("logrotate");
    let logs = dir.join("logs");
    let recipe =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/logrotate.conf"))
            .expect("read recipe")
            .replace("/var/log/kamailio/acc", &logs.display().to_string())
            .replace(
                "/usr/bin/flatstore",
                &common::flatstore_cli().to_string_lossy(),
            );
    let config = dir.join("logrotate.conf");
    fs::write(&config, recipe).expect("write config");
    let host = Host::start(&dir, "1", "", 4);
    let mut rotated = 0;
    for _ in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let out = common::timeout::output_or_fail(
            Command::new("logrotate")
                .arg("--force")
                .arg("--state")
                .arg(dir.join("logrotate.state"))
                .arg(&config),
            "logrotate",
            std::time::Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "logrotate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        rotated += 1;
    }
    let inserted = host.finish();
    let (seen, files) = count_records(&logs);
    let compressed = fs::read_dir(&logs)
        .expect("read logs")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "gz"))
        })
        .count();
    assert!(
        compressed >= 4 * (rotated - 1),
        "logrotate compressed {compressed} files"
    );
    let total = assert_each_record_once(&seen, &inserted);
    eprintln!(
        "logrotate: {total} records, {rotated} forced rotations, {files} files ({compressed} gzip): \
         0 lost, 0 duplicated, 0 torn"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// `rotate --wait` does not return while a write under the old generation is in flight: it
/// times out with exit status 1 naming the writer, and succeeds once the write is done.
fn rotate_wait_times_out_naming_a_writer_still_writing() {
    let dir = scratch_dir("wait-timeout");
    let logs = dir.join("logs");
    let control = flatstore::Control::open(&logs, None).expect("control file");
    let slot = control.claim_slot().expect("slot");
    let generation = slot.begin_write();
    slot.writing_to(generation);
    let cli = common::flatstore_cli();
    let out = Command::new(cli)
        .args(["rotate", "--wait", "--timeout", "0.3"])
        .arg(&logs)
        .output()
        .expect("run flatstore rotate");
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "timed out: {message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())) && message.contains("generation"),
        "names the writer: {message}"
    );
    slot.end_write();
    assert!(
        rotate_wait(&logs, "5").success(),
        "an idle writer does not hold up --wait"
    );
    drop(slot);
    fs::remove_dir_all(&dir).expect("clean up");
}

/// Usage errors exit 2. A directory no writer ever opened (a mistyped path in a logrotate
/// recipe, whose `compress` would then delete files writers still append to) fails with exit
/// status 1 and a message naming it; `--unopened-ok` accepts it (exit 0), and the recipe does
/// not use it. Rotate creates nothing in such a directory.
fn rotate_cli_usage_and_untouched_directory() {
    let dir = scratch_dir("cli");
    let cli = common::flatstore_cli();
    let status = |args: &[&str]| Command::new(&cli).args(args).status().expect("run").code();
    assert_eq!(status(&["rotate"]), Some(2));
    assert_eq!(status(&["rotate", "--bogus", "/tmp"]), Some(2));
    assert_eq!(status(&["frobnicate"]), Some(2));
    assert_eq!(status(&["rotate", "/no/such/dir"]), Some(1));
    let logs = dir.join("logs");
    let logs_arg = logs.to_str().expect("utf8");
    let out = Command::new(&cli)
        .args(["rotate", "--wait", logs_arg])
        .output()
        .expect("run");
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "untouched directory: {message}");
    assert!(
        message.contains(logs_arg) && message.contains("no flatstore writer has ever opened"),
        "names the directory and says why: {message}"
    );
    assert_eq!(
        status(&["rotate", "--wait", "--unopened-ok", logs_arg]),
        Some(0)
    );
    assert!(
        !logs.join(".flatstore.ctl").exists(),
        "rotate creates nothing"
    );
    let recipe =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/logrotate.conf"))
            .expect("read recipe");
    assert!(
        recipe.contains("flatstore rotate") && !recipe.contains("--unopened-ok"),
        "the recipe fails on a mistyped directory"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: Pid) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("read status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Load: 8 writer processes at full speed for 60 s (flush=1) while the files are renamed and
/// rotated every 100 ms (alternately `flatstore rotate --wait` and `flat_rotate`): every
/// record once, none torn, and each writer's resident memory flat from start to end.
fn load_8_writers_60_seconds_rotating_every_100_ms() {
    let dir = scratch_dir("load");
    let logs = dir.join("logs");
    let host = Host::start(&dir, "1", "", 8);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let rss_start: Vec<u64> = host.workers.iter().map(|p| rss_kib(*p)).collect();
    let started = std::time::Instant::now();
    let mut rotations = 0;
    while started.elapsed() < std::time::Duration::from_secs(60) {
        rename_live_files(&logs, rotations);
        if rotations % 2 == 0 {
            assert!(rotate_wait(&logs, "20").success(), "rotate --wait failed");
        } else {
            kill(host.pid, Signal::SIGUSR2).expect("signal host");
        }
        rotations += 1;
        // One rotation per 100 ms period (a slow `--wait` is caught up, not stretched).
        let next = started + std::time::Duration::from_millis(100) * rotations as u32;
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
    }
    let rss_end: Vec<u64> = host.workers.iter().map(|p| rss_kib(*p)).collect();
    let inserted = host.finish();
    let total: u64 = inserted.values().sum();
    let (seen, files) = count_records_compact(&logs, &inserted);
    assert_eq!(seen, total, "every acknowledged record once");
    for (start, end) in rss_start.iter().zip(&rss_end) {
        assert!(
            *end <= start + 1024,
            "a writer's memory grew: {rss_start:?} KiB at the start, {rss_end:?} at the end"
        );
    }
    eprintln!(
        "load: 8 writers, 60 s, {rotations} rotations, {total} records in {files} files: 0 lost, \
         0 duplicated, 0 torn; writer RSS start {rss_start:?} KiB, end {rss_end:?} KiB"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// [`count_records`] for tens of millions of records: one byte per acknowledged record, and a
/// failure on any record seen twice, torn, or never acknowledged. Returns (records, files).
fn count_records_compact(logs: &Path, inserted: &HashMap<u32, u64>) -> (u64, usize) {
    let mut seen: HashMap<u32, Vec<u8>> = inserted
        .iter()
        .map(|(rank, count)| (*rank, vec![0u8; *count as usize]))
        .collect();
    let mut records = 0;
    let files = for_each_record(logs, |(rank, seq), text| {
        let slot = seen
            .get_mut(&rank)
            .and_then(|s| s.get_mut(seq as usize))
            .unwrap_or_else(|| panic!("record {text} was never acknowledged"));
        *slot += 1;
        assert_eq!(*slot, 1, "record {text} written twice");
        records += 1;
    });
    (records, files)
}
