//! The `fsync` policy as the system sees it: the example host (`examples/proxy.c`, 2 forked
//! workers) runs under `strace -f`, and the `fdatasync` and `fsync` calls it makes are counted
//! against what each policy promises, and by which thread: a worker's own thread (the one that
//! inserts) never waits for a sync except where the policy says it does (`always`, and at
//! close). Needs `strace` (reported as ignored without it; required
//! when `CI=true`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What one traced run did.
#[derive(Debug)]
struct Traced {
    /// `fdatasync` calls (files).
    file_syncs: usize,
    /// Of those, the calls made by the workers' own threads (not by a thread a worker started).
    worker_file_syncs: usize,
    /// `fsync` calls (the directory, after a seal).
    dir_syncs: usize,
    /// Records in all files.
    records: usize,
    /// Sealed files.
    sealed: usize,
    /// Live files holding records.
    live: usize,
}

fn proxy() -> PathBuf {
    common::build_c(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/proxy.c"),
        "durability_proxy",
        &["-O2"],
    )
}

/// Run the example host with 2 workers and 50 calls each (95 records per worker, in the tables
/// `acc` and `missed_calls`) at `flush` with the URL parameters `query`, under strace.
fn traced(name: &str, flush: &str, query: &str) -> Traced {
    let dir = std::env::temp_dir().join(format!(
        "flatstore-durability-{name}-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    let log = dir.with_extension("strace");
    let out = common::timeout::output_or_fail(
        Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-e",
                "trace=fdatasync,fsync,clone,clone3",
                "-o",
            ])
            .arg(&log)
            .arg(proxy())
            .arg(format!("{}?{query}", dir.display()))
            .args(["2", "50", flush]),
        &format!("{name}: the host under strace"),
        std::time::Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "{name}: the host failed under strace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let strace = fs::read_to_string(&log).expect("strace output");
    let calls = whole_calls(&strace);
    let count = |call: &str| {
        calls
            .iter()
            .filter(|(_, c)| c.starts_with(&format!("{call}(")))
            .count()
    };
    // Threads (not processes) that the workers started: clones with CLONE_THREAD.
    let threads: Vec<&str> = calls
        .iter()
        .filter(|(_, c)| c.starts_with("clone") && c.contains("CLONE_THREAD"))
        .filter_map(|(_, c)| c.rsplit("= ").next())
        .map(str::trim)
        .collect();
    let mut traced = Traced {
        file_syncs: count("fdatasync"),
        worker_file_syncs: calls
            .iter()
            .filter(|(tid, c)| c.starts_with("fdatasync(") && !threads.contains(tid))
            .count(),
        dir_syncs: count("fsync"),
        records: 0,
        sealed: 0,
        live: 0,
    };
    for (name, path) in common::visible_files(&dir) {
        let records = common::count_lines(&path);
        traced.records += records;
        if name.contains(".log.sealed-") {
            traced.sealed += 1;
        } else if records > 0 {
            traced.live += 1;
        }
    }
    fs::remove_dir_all(&dir).expect("clean up");
    fs::remove_file(&log).expect("remove strace output");
    eprintln!("{name}: {traced:?}");
    traced
}

/// strace's lines as `(thread id, whole call)`: a call cut by another thread's
/// (`<unfinished ...>`, then `<... name resumed>`) is put back together.
fn whole_calls(strace: &str) -> Vec<(&str, String)> {
    let mut unfinished: std::collections::HashMap<&str, &str> = Default::default();
    let mut calls = Vec::new();
    for line in strace.lines() {
        // strace pads the thread id to a width: one or more spaces follow it.
        let Some((tid, call)) = line.split_once(' ') else {
            continue;
        };
        let call = call.trim_start();
        if let Some(start) = call.strip_suffix("<unfinished ...>") {
            unfinished.insert(tid, start);
        } else if let Some((_, rest)) = call.split_once(" resumed>") {
            let start = unfinished.remove(tid).unwrap_or_default();
            calls.push((tid, format!("{start}{rest}")));
        } else {
            calls.push((tid, call.to_owned()));
        }
    }
    calls
}

fn main() {
    common::run_trials(vec![
        common::trial(
            "strace_lines_are_read_whatever_the_padding",
            strace_lines_are_read_whatever_the_padding,
        ),
        common::trial_needing(
            "each_fsync_policy_syncs_what_it_promises",
            &["strace"],
            each_fsync_policy_syncs_what_it_promises,
        ),
    ]);
}

/// strace pads thread ids to a width, and cuts a call another thread interrupts in two.
fn strace_lines_are_read_whatever_the_padding() {
    let strace = "4933  fdatasync(5) = 0\n\
                  12345 clone3({flags=CLONE_VM|CLONE_THREAD, exit_signal=0}, 88 <unfinished ...>\n\
                  4933  fsync(6 <unfinished ...>\n\
                  12345 <... clone3 resumed>) = 12350\n\
                  4933  <... fsync resumed>) = 0\n";
    let calls = whole_calls(strace);
    let calls: Vec<(&str, &str)> = calls.iter().map(|(t, c)| (*t, c.as_str())).collect();
    assert_eq!(
        calls,
        [
            ("4933", "fdatasync(5) = 0"),
            (
                "12345",
                "clone3({flags=CLONE_VM|CLONE_THREAD, exit_signal=0}, 88 ) = 12350"
            ),
            ("4933", "fsync(6 ) = 0"),
        ]
    );
}

fn each_fsync_policy_syncs_what_it_promises() {
    let never = traced("never", "1", "rotate_records=20");
    assert_eq!(never.records, 190);
    assert_eq!(
        (never.file_syncs, never.dir_syncs),
        (0, 0),
        "fsync=never syncs nothing"
    );

    // Every sealed file before it takes its sealed name, with the directory after it (one
    // directory sync may cover several seals); every live file at close. The sealed files are
    // synced by the helper thread: the worker itself syncs only at close.
    let rotate = traced("rotate", "1", "rotate_records=20&fsync=rotate");
    assert_eq!(rotate.records, 190);
    assert!(rotate.sealed >= 8, "{rotate:?}");
    assert_eq!(rotate.file_syncs, rotate.sealed + rotate.live, "{rotate:?}");
    assert!(
        (1..=rotate.sealed).contains(&rotate.dir_syncs),
        "{rotate:?}"
    );
    assert_eq!(rotate.worker_file_syncs, rotate.live, "{rotate:?}");

    // Every record at flush=1.
    let always = traced("always", "1", "fsync=always");
    assert_eq!(always.records, 190);
    assert_eq!(always.file_syncs, 190, "one fdatasync per record");
    assert_eq!(always.worker_file_syncs, 190, "by the inserting thread");

    // One per buffer written at flush=0: here each file's buffer is written once, at close.
    let buffered = traced("always0", "0", "fsync=always&flush_interval=60");
    assert_eq!(buffered.records, 190);
    assert_eq!(buffered.file_syncs, buffered.live, "{buffered:?}");

    // At least each file with records once (at close); never more than once per record.
    let interval = traced("interval", "1", "fsync=interval&fsync_interval=0.001");
    assert_eq!(interval.records, 190);
    assert!(
        (interval.live..=190).contains(&interval.file_syncs),
        "{interval:?}"
    );
    assert!(
        interval.worker_file_syncs <= interval.live,
        "only at close: {interval:?}"
    );
}
