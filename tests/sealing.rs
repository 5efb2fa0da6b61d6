//! Self-rotation. Through the Rust API, in one process: each limit seals files of exactly the
//! promised size, the time limit fires for an idle writer, a file left by an earlier process is
//! sealed before it is appended to, and `header=1` records the column names. With the torture
//! host's 4 forked workers writing as fast as they can: every record in exactly one file under
//! each limit, and every sealed file within its limit. (Crashes: `c-tests/test_hardening.c`.)

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::torture::{Host, assert_each_record_once, count_records, scratch_dir};
use flatstore::{Config, Connection, Params, Value};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-sealing-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Every test's writer is process number 3 (the number is per process; each test has its own
/// directory).
fn connect(dir: &Path, query: &str) -> Connection {
    flatstore::declare_process_number(3);
    let url = format!("flatstore:{}?{query}", dir.display());
    Connection::new(Config::from_url(&url, &Params::default()).expect("config")).expect("connect")
}

/// The sealed files of `live_name` in sealing order, and their contents.
fn sealed(dir: &Path, live_name: &str) -> Vec<(String, String)> {
    let prefix = format!("{live_name}.sealed-");
    common::visible_files(dir)
        .into_iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .map(|(name, path)| {
            let content = fs::read_to_string(path).expect("read sealed");
            (name, content)
        })
        .collect()
}

fn live(dir: &Path, live_name: &str) -> String {
    fs::read_to_string(dir.join(live_name)).unwrap_or_default()
}

fn insert_numbered(con: &mut Connection, range: std::ops::Range<u32>, padding: &[u8]) {
    for i in range {
        con.insert([Value::UInt(i), Value::Str(padding)].map(Ok))
            .expect("insert");
    }
}

/// Every record `0..count` exactly once and in order across the sealed files then the live one.
fn assert_all_in_order(sealed: &[(String, String)], live: &str, count: u32) {
    let numbers: Vec<u32> = sealed
        .iter()
        .map(|(_, content)| content.as_str())
        .chain([live])
        .flat_map(str::lines)
        .map(|line| {
            line.split('|')
                .next()
                .expect("field")
                .parse()
                .expect("number")
        })
        .collect();
    assert_eq!(numbers, (0..count).collect::<Vec<_>>());
}

fn records_limit(flush: &str) {
    let dir = scratch(&format!("records{flush}"));
    let mut con = connect(&dir, &format!("flush={flush}&rotate_records=1000"));
    con.use_table(b"acc").expect("table");
    insert_numbered(&mut con, 0..10_050, b"x");
    con.close().expect("close");
    let sealed = sealed(&dir, "acc_3.log");
    assert_eq!(sealed.len(), 10, "{sealed:?}");
    for (name, content) in &sealed {
        assert_eq!(content.lines().count(), 1000, "{name}");
        assert!(content.ends_with('\n'), "{name} ends in a whole line");
    }
    assert_eq!(live(&dir, "acc_3.log").lines().count(), 50);
    assert_all_in_order(&sealed, &live(&dir, "acc_3.log"), 10_050);
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn rotate_records_seals_files_of_exactly_that_many_records() {
    records_limit("1");
}

#[test]
fn rotate_records_holds_at_flush_0_when_buffers_span_files() {
    records_limit("0");
}

#[test]
fn rotate_bytes_seals_files_as_full_as_whole_records_allow() {
    let dir = scratch("bytes");
    let mut con = connect(&dir, "flush=0&rotate_bytes=4K");
    con.use_table(b"acc").expect("table");
    insert_numbered(
        &mut con,
        0..5_000,
        b"0123456789012345678901234567890123456789",
    );
    // One record larger than the limit goes alone into a file of its own.
    let huge = vec![b'h'; 5000];
    con.insert([Value::UInt(5_000), Value::Str(&huge)].map(Ok))
        .expect("huge record");
    insert_numbered(&mut con, 5_001..5_010, b"after");
    con.close().expect("close");
    let sealed = sealed(&dir, "acc_3.log");
    for (i, (name, content)) in sealed.iter().enumerate() {
        let next = sealed
            .get(i + 1)
            .map(|(_, c)| c)
            .map_or(live(&dir, "acc_3.log"), Clone::clone);
        let next_line = next.lines().next().map_or(0, |l| l.len() + 1);
        if content.contains("hhhh") {
            assert_eq!(content.lines().count(), 1, "{name}: the huge record alone");
        } else {
            assert!(content.len() <= 4096, "{name}: {} bytes", content.len());
            assert!(
                content.len() + next_line > 4096,
                "{name}: sealed at {} bytes though the next record ({next_line} bytes) fit",
                content.len()
            );
        }
    }
    assert!(sealed.len() > 50, "{} sealed files", sealed.len());
    assert_all_in_order(&sealed, &live(&dir, "acc_3.log"), 5_010);
    fs::remove_dir_all(&dir).expect("clean up");
}

/// An idle writer: records inserted, then no call at all; the file is sealed by the time limit.
fn idle_writer_sealed_by_time(flush: &str) {
    let dir = scratch(&format!("idle{flush}"));
    let mut con = connect(
        &dir,
        &format!("flush={flush}&flush_interval=0.05&rotate_seconds=0.3"),
    );
    con.use_table(b"acc").expect("table");
    let started = Instant::now();
    insert_numbered(&mut con, 0..5, b"idle");
    let deadline = started + Duration::from_secs(5);
    while sealed(&dir, "acc_3.log").is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let took = started.elapsed();
    let files = sealed(&dir, "acc_3.log");
    assert_eq!(files.len(), 1, "sealed while idle after {took:?}");
    assert!(
        took >= Duration::from_millis(300),
        "sealed early, after {took:?}"
    );
    assert_eq!(files[0].1.lines().count(), 5);
    assert_eq!(live(&dir, "acc_3.log"), "", "no live records left");
    // Idle on: no empty file is sealed.
    thread::sleep(Duration::from_millis(700));
    assert_eq!(sealed(&dir, "acc_3.log").len(), 1);
    insert_numbered(&mut con, 5..8, b"idle");
    con.close().expect("close");
    assert_all_in_order(&sealed(&dir, "acc_3.log"), &live(&dir, "acc_3.log"), 8);
    eprintln!("flush={flush}: idle writer's file sealed {took:?} after its first record");
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn rotate_seconds_seals_an_idle_writers_file_at_flush_1() {
    idle_writer_sealed_by_time("1");
}

#[test]
fn rotate_seconds_seals_an_idle_writers_file_at_flush_0() {
    idle_writer_sealed_by_time("0");
}

#[test]
fn a_file_left_by_an_earlier_process_is_sealed_before_appending() {
    let dir = scratch("leftover");
    fs::write(dir.join("acc_3.log"), "left|1\nleft|2\n").expect("plant");
    let mut con = connect(&dir, "rotate_records=10");
    con.use_table(b"acc").expect("table");
    con.insert([Value::Str(b"new"), Value::Int(3)].map(Ok))
        .expect("insert");
    con.close().expect("close");
    let sealed = sealed(&dir, "acc_3.log");
    assert_eq!(sealed.len(), 1);
    assert_eq!(sealed[0].1, "left|1\nleft|2\n");
    assert_eq!(live(&dir, "acc_3.log"), "new|3\n");
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn every_fsync_policy_writes_the_same_records() {
    for policy in ["never", "rotate", "interval", "always"] {
        let dir = scratch(&format!("fsync-{policy}"));
        for flush in ["1", "0"] {
            let mut con = connect(
                &dir,
                &format!("flush={flush}&fsync={policy}&fsync_interval=0.01&rotate_records=70"),
            );
            con.use_table(b"acc").expect("table");
            insert_numbered(&mut con, 0..100, b"sync");
            thread::sleep(Duration::from_millis(30));
            con.close().expect("close");
        }
        // The second connection seals the first one's 30 records before it appends.
        let per_file: Vec<usize> = sealed(&dir, "acc_3.log")
            .iter()
            .map(|(_, c)| c.lines().count())
            .chain([live(&dir, "acc_3.log").lines().count()])
            .collect();
        assert_eq!(per_file, [70, 30, 70, 30], "{policy}");
        fs::remove_dir_all(&dir).expect("clean up");
    }
}

#[test]
fn header_records_the_insert_keys_once_per_table() {
    let dir = scratch("header");
    let mut con = connect(&dir, "header=1");
    con.use_table(b"acc").expect("table");
    assert!(con.wants_columns());
    con.record_columns([Some(&b"method"[..]), Some(b"to|tag")]);
    assert!(!con.wants_columns(), "once per table");
    con.insert([Value::Str(b"INVITE"), Value::Str(b"x")].map(Ok))
        .expect("insert");
    con.use_table(b"missed").expect("table");
    assert!(con.wants_columns(), "each table has its own");
    con.close().expect("close");
    assert_eq!(
        fs::read_to_string(dir.join("acc.columns")).expect("sidecar"),
        "method|to%7Ctag\n"
    );
    let off = connect(&dir, "header=0");
    assert!(!off.wants_columns());
    fs::remove_dir_all(&dir).expect("clean up");
}

/// Sealed files of `logs` by writer rank, each in sealing order: (stamp, content).
fn sealed_by_rank(logs: &Path) -> std::collections::BTreeMap<u32, Vec<(String, Vec<u8>)>> {
    let mut by_rank = std::collections::BTreeMap::<u32, Vec<(String, Vec<u8>)>>::new();
    for (name, path) in common::visible_files(logs) {
        let Some((live, stamp)) = name.split_once(".sealed-") else {
            continue;
        };
        let rank = live
            .strip_prefix("acc_")
            .and_then(|r| r.strip_suffix(".log"))
            .and_then(|r| r.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("sealed name {name}"));
        let content = fs::read(path).expect("read sealed");
        by_rank
            .entry(rank)
            .or_default()
            .push((stamp.to_owned(), content));
    }
    for files in by_rank.values_mut() {
        files.sort();
    }
    by_rank
}

/// The torture host writing for `run` with `params`; then every record exactly once across
/// all files; returns the sealed files by rank for the limit's own checks.
fn seal_under_load(
    name: &str,
    flush: &str,
    params: &str,
    run: Duration,
) -> std::collections::BTreeMap<u32, Vec<(String, Vec<u8>)>> {
    let dir = scratch_dir(name);
    let logs = dir.join("logs");
    let host = Host::start(&dir, flush, params, 4);
    thread::sleep(run);
    let inserted = host.finish();
    let (seen, files) = count_records(&logs);
    let total = assert_each_record_once(&seen, &inserted);
    let sealed = sealed_by_rank(&logs);
    let sealed_files: usize = sealed.values().map(Vec::len).sum();
    assert_eq!(sealed.len(), 4, "every writer sealed files");
    eprintln!(
        "{params} flush={flush}: {total} records from 4 writers in {files} files, \
         {sealed_files} sealed: 0 lost, 0 duplicated, 0 torn"
    );
    fs::remove_dir_all(&dir).expect("clean up");
    sealed
}

#[test]
fn rotate_records_under_4_concurrent_writers() {
    for (flush, limit) in [("1", 5_000), ("0", 20_000)] {
        let sealed = seal_under_load(
            &format!("load-records{flush}"),
            flush,
            &format!("rotate_records={limit}"),
            Duration::from_secs(2),
        );
        for (rank, files) in &sealed {
            for (stamp, content) in files {
                let records = content.iter().filter(|&&b| b == b'\n').count();
                assert_eq!(records, limit, "acc_{rank}.log.sealed-{stamp}");
            }
        }
    }
}

#[test]
fn rotate_bytes_under_4_concurrent_writers() {
    let limit = 64 * 1024;
    let sealed = seal_under_load(
        "load-bytes",
        "0",
        "rotate_bytes=64K",
        Duration::from_secs(2),
    );
    for (rank, files) in &sealed {
        for (stamp, content) in files {
            // Lines are `<rank>|<seq>\n`, at most 1 + 1 + 10 + 1 bytes.
            assert!(
                content.len() <= limit && content.len() > limit - 13,
                "acc_{rank}.log.sealed-{stamp}: {} bytes",
                content.len()
            );
        }
    }
}

/// The UTC stamp of a sealed name, in nanoseconds of the day (runs do not cross midnight
/// often enough to matter; a run that does is skipped for that pair).
fn nanos_of_day(stamp: &str) -> Option<u64> {
    let time = stamp.get(9..15)?;
    let nanos = stamp.get(16..25)?;
    let (h, m, s): (u64, u64, u64) = (
        time[0..2].parse().ok()?,
        time[2..4].parse().ok()?,
        time[4..6].parse().ok()?,
    );
    Some(((h * 60 + m) * 60 + s) * 1_000_000_000 + nanos.parse::<u64>().ok()?)
}

#[test]
fn rotate_seconds_under_4_concurrent_writers() {
    let sealed = seal_under_load(
        "load-seconds",
        "1",
        "rotate_seconds=0.2",
        Duration::from_secs(3),
    );
    let mut gaps = Vec::new();
    for (rank, files) in &sealed {
        assert!(
            files.len() >= 5,
            "writer {rank}: {} sealed files in 3 s",
            files.len()
        );
        for pair in files.windows(2) {
            if let (Some(a), Some(b)) = (nanos_of_day(&pair[0].0), nanos_of_day(&pair[1].0))
                && b > a
            {
                gaps.push(Duration::from_nanos(b - a));
            }
        }
    }
    gaps.sort();
    // A file is sealed no sooner than 0.2 s after its first record, which follows the previous
    // seal: consecutive seals are at least 0.2 s apart (1 ms for clock granularity).
    assert!(
        gaps[0] >= Duration::from_millis(199),
        "seals {:?} apart",
        gaps[0]
    );
    let median = gaps[gaps.len() / 2];
    assert!(
        median < Duration::from_millis(400),
        "median gap between seals {median:?}"
    );
    eprintln!(
        "rotate_seconds=0.2: gaps between a writer's seals {:?} .. {:?}, median {median:?}",
        gaps[0],
        gaps[gaps.len() - 1]
    );
}

/// The library's sealed files and sidecar, read back by the CLI: `--sealed-only` gives the
/// sealed records in order and never the live file's; `export` names columns from the sidecar.
#[test]
fn the_cli_reads_what_the_writer_sealed() {
    let dir = scratch("cli");
    let mut con = connect(&dir, "header=1&rotate_records=3");
    con.use_table(b"acc").expect("table");
    con.record_columns([Some(&b"seq"[..]), Some(b"note")]);
    insert_numbered(&mut con, 0..8, b"a|b");
    con.close().expect("close");
    let cli = |args: &[&str]| {
        let dir = dir.to_str().expect("utf-8 path");
        flatstore_cli(&[args, &[dir, "acc"]].concat())
    };
    let sealed_lines: String = (0..6).map(|i| format!("{i}|a%7Cb\n")).collect();
    assert_eq!(cli(&["cat", "--sealed-only"]), sealed_lines);
    let csv: String = ["seq,note".to_owned()]
        .into_iter()
        .chain((0..6).map(|i| format!("{i},a|b")))
        .map(|line| line + "\r\n")
        .collect();
    assert_eq!(cli(&["export", "--format", "csv", "--sealed-only"]), csv);
    assert_eq!(
        cli(&["cat", "--live"]).lines().count(),
        8,
        "--live adds the live file's records"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// Runs the `flatstore` command, which must succeed; returns its standard output.
fn flatstore_cli(args: &[&str]) -> String {
    let out = std::process::Command::new(common::flatstore_cli())
        .args(args)
        .output()
        .expect("run flatstore");
    assert!(
        out.status.success(),
        "flatstore {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// Runs `flatstore seal DIR`; returns its standard output.
fn flatstore_seal(dir: &Path) -> String {
    flatstore_cli(&["seal", dir.to_str().expect("utf-8 path")])
}

/// `flatstore seal` next to 4 writers sealing every 5,000 records: it never seals a file a
/// writer holds (the writers' own limits stay exact), while they open new files all the time.
/// Once every writer is killed with `kill -9`, it seals every file they left: no records stay
/// live, and every writer's records are in sealed files once each, in order, whole, with no
/// gap.
#[test]
fn flatstore_seal_never_takes_a_live_writers_file_and_seals_what_killed_writers_left() {
    let limit = 5_000;
    let dir = scratch_dir("seal-cli");
    let logs = dir.join("logs");
    let host = Host::start(&dir, "1", &format!("rotate_records={limit}"), 4);
    let started = Instant::now();
    let mut held = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        let report = flatstore_seal(&logs);
        assert!(
            !report.contains("sealed as"),
            "sealed a file that a live writer holds:\n{report}"
        );
        held += report.matches("a writer holds it").count();
    }
    assert!(held > 0, "the writers' files were seen held");
    host.kill();

    let report = flatstore_seal(&logs);
    let sealed_by_cli = report.matches("sealed as").count();
    let mut by_rank = std::collections::BTreeMap::<u32, Vec<u64>>::new();
    let files = common::torture::for_each_record(&logs, |(rank, seq), _| {
        by_rank.entry(rank).or_default().push(seq);
    });
    for (name, path) in common::visible_files(&logs) {
        let records = common::count_lines(&path);
        assert!(
            name.contains(".sealed-") || records == 0,
            "{name} still live with {records} records after flatstore seal:\n{report}"
        );
        assert!(records <= limit, "{name} holds {records} records");
    }
    assert_eq!(by_rank.len(), 4, "every writer wrote");
    let mut total = 0;
    for (rank, seqs) in &mut by_rank {
        let written = seqs.len();
        // Files are read in name order, not sealing order: sort, then no gap and no twin.
        seqs.sort_unstable();
        assert!(
            seqs.iter().enumerate().all(|(i, &seq)| seq == i as u64),
            "writer {rank}: records missing or twice among {written}"
        );
        total += written;
    }
    assert!(
        sealed_by_cli >= 1,
        "the killed writers' live files were sealed:\n{report}"
    );
    eprintln!(
        "flatstore seal: {held} times left a live writer's file; after kill -9, sealed \
         {sealed_by_cli} files; {total} records in {files} sealed files, each once, no gap"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}
