//! `flatstore load` into a real PostgreSQL (a throwaway cluster, see common/cluster.rs): every
//! record in the database exactly once after a rerun, loaders killed with SIGKILL during their
//! COPY, files renamed and gzipped between runs, live files that grew, two loaders at once, a
//! fleet of four proxies' directories loaded at once with a fifth loader repeating one, a
//! connection lost mid-file; bad files rolled back alone; credentials as libpq finds them.
//! Each test counts the rows in the database against the records in the files.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::cluster::{self, Cluster};
use common::{assert_exit, text, trials};
use flate2::read::MultiGzDecoder;
use flatstore::{Config, Connection, Params, Value};

fn main() {
    let trial = |name: &str, test: fn()| trials::trial_unless(name, cluster::missing, test);
    trials::run_trials(vec![
        trial(
            "a_rerun_adds_nothing_and_values_arrive_decoded_and_typed",
            a_rerun_adds_nothing_and_values_arrive_decoded_and_typed,
        ),
        trial(
            "renamed_and_gzipped_files_are_not_loaded_again",
            renamed_and_gzipped_files_are_not_loaded_again,
        ),
        trial(
            "a_live_file_loads_only_with_live_and_then_only_what_it_grew",
            a_live_file_loads_only_with_live_and_then_only_what_it_grew,
        ),
        trial(
            "bad_files_roll_back_alone_named_with_the_reason",
            bad_files_roll_back_alone_named_with_the_reason,
        ),
        trial(
            "loaders_killed_during_copy_then_run_again_leave_every_record_once",
            loaders_killed_during_copy_then_run_again_leave_every_record_once,
        ),
        trial(
            "two_loaders_at_once_load_each_file_once",
            two_loaders_at_once_load_each_file_once,
        ),
        trial(
            "a_fleet_of_four_proxies_and_a_repeating_loader_every_record_once_per_source",
            a_fleet_of_four_proxies_and_a_repeating_loader_every_record_once_per_source,
        ),
        trial(
            "one_directory_loaded_by_two_hosts_loaders_is_loaded_once",
            one_directory_loaded_by_two_hosts_loaders_is_loaded_once,
        ),
        trial(
            "a_lost_connection_rolls_back_that_file_and_the_others_still_load",
            a_lost_connection_rolls_back_that_file_and_the_others_still_load,
        ),
        trial(
            "credentials_from_pgpassword_or_pgpass_and_never_printed",
            credentials_from_pgpassword_or_pgpass_and_never_printed,
        ),
        trial(
            "files_given_load_as_the_directory_does",
            files_given_load_as_the_directory_does,
        ),
        trial(
            "usage_and_connection_errors_exit_2_and_load_nothing",
            usage_and_connection_errors_exit_2_and_load_nothing,
        ),
    ]);
}

/// One cluster for the whole test program; each test has its own database.
fn cluster() -> Option<&'static Cluster> {
    cluster::shared("load")
}

/// The process number N is process-wide: writers in parallel tests take turns.
static WRITER: Mutex<()> = Mutex::new(());

/// Kamailio's acc columns, and one extra.
const NAMES: [&str; 8] = [
    "method",
    "from_tag",
    "to_tag",
    "callid",
    "sip_code",
    "sip_reason",
    "time",
    "src_user",
];
const EPOCH: i64 = 1_795_392_000;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-load-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Append `count` acc records to `<dir>/acc_<n>.log` through the library as writer `n`, with
/// `header=1` (so `acc.columns` names the columns) and `query` (e.g. `&rotate_records=100`).
/// Call-IDs are `<tag>-<n>-<i>`; `src_user` cycles through an empty value, `a|b`, a tab and
/// a backslash, `100%` and `alice`.
fn write_acc(dir: &Path, n: u32, tag: &str, count: usize, query: &str) {
    let _turn = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    let url = format!("flatstore:{}?header=1{query}", dir.display());
    let mut acc =
        Connection::new(Config::from_url(&url, &Params::default()).expect("url")).expect("init");
    flatstore::declare_process_number(n);
    acc.use_table(b"acc").expect("table");
    if acc.wants_columns() {
        acc.record_columns(NAMES.iter().map(|name| Some(name.as_bytes())));
    }
    for i in 0..count {
        let callid = format!("{tag}-{n}-{i}");
        let from = format!("f{i}");
        let user: &[u8] = match i % 5 {
            0 => b"",
            1 => b"a|b",
            2 => b"tab\tand\\back",
            3 => b"100%",
            _ => b"alice",
        };
        let record = [
            Value::Str(b"INVITE"),
            Value::Str(from.as_bytes()),
            Value::Str(b"t"),
            Value::Str(callid.as_bytes()),
            Value::UInt(200),
            Value::Str(b"OK"),
            Value::DateTime(EPOCH + i as i64),
            Value::Str(user),
        ];
        acc.insert(record.map(Ok)).expect("insert");
    }
    acc.close().expect("close");
}

/// Seal every live file no writer holds (`flatstore seal`), as cron would.
fn seal(dir: &Path) {
    let out = flatstore(&["seal", path_str(dir)]);
    assert!(out.status.success(), "seal: {}", text(&out.stderr));
}

/// `flatstore args`, which must end within 2 minutes (else the test fails and it is killed).
fn flatstore(args: &[&str]) -> Output {
    common::timeout::output_or_fail(
        Command::new(env!("CARGO_BIN_EXE_flatstore"))
            .args(args)
            .env_remove("PGPASSWORD"),
        &format!("flatstore {}", args.first().unwrap_or(&"")),
        Duration::from_secs(120),
    )
}

/// `flatstore load DIR acc --db URL` with `extra` arguments.
fn load(dir: &Path, url: &str, extra: &[&str]) -> Output {
    flatstore(&[&["load", path_str(dir), "acc", "--db", url], extra].concat())
}

/// The records (lines) of table acc's log files in `dir`, gzip decoded.
fn records_in(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if !name.starts_with("acc_") {
            continue;
        }
        let mut bytes = fs::read(&path).expect("read");
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut plain)
                .expect("gunzip");
            bytes = plain;
        }
        total += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    total
}

fn count(client: &mut postgres::Client, sql: &str) -> u64 {
    let n: i64 = client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0);
    n as u64
}

/// Every record of `dir` in table acc under `source`, exactly once: as many rows as records,
/// each Call-ID once.
fn assert_once(client: &mut postgres::Client, source: &str, dir: &Path) {
    let records = records_in(dir);
    let rows = count(
        client,
        &format!("SELECT count(*) FROM acc WHERE source = '{source}'"),
    );
    let distinct = count(
        client,
        &format!("SELECT count(DISTINCT callid) FROM acc WHERE source = '{source}'"),
    );
    assert_eq!(
        (rows, distinct),
        (records, records),
        "source {source}: rows and distinct Call-IDs against the records in {}",
        dir.display()
    );
}

/// The file names a loader reported loading.
fn loaded_files(out: &Output) -> BTreeSet<String> {
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(name, _)| name.to_owned()))
        .collect()
}

fn a_rerun_adds_nothing_and_values_arrive_decoded_and_typed() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("rerun");
    let dir = scratch("rerun");
    write_acc(&dir, 1, "r", 250, "&rotate_records=100");
    write_acc(&dir, 2, "r", 120, "&rotate_records=100");
    seal(&dir);
    let first = load(
        &dir,
        &url,
        &["--create", "--source", "p1", "--types", "sip_code=int"],
    );
    assert_exit(&first, 0);
    assert_eq!(loaded_files(&first).len(), 5, "{}", text(&first.stdout));
    let mut db = pg.client("rerun");
    assert_once(&mut db, "p1", &dir);

    let again = load(&dir, &url, &["--source", "p1"]);
    assert_exit(&again, 0);
    assert_eq!(text(&again.stdout), "", "nothing new, nothing loaded");
    assert_once(&mut db, "p1", &dir);
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM flatstore_ledger"),
        5,
        "one ledger row per file"
    );
    assert_eq!(
        count(
            &mut db,
            "SELECT sum(records)::bigint FROM flatstore_ledger WHERE tbl = 'public.acc'"
        ),
        370
    );

    // Decoded, typed, empty as NULL.
    let rows = db
        .query(
            "SELECT sip_code, time = '2026-11-23 00:00:01+00'::timestamptz, src_user, \
             pg_typeof(time)::text FROM acc WHERE callid IN ('r-1-0', 'r-1-1', 'r-1-2', \
             'r-1-3') ORDER BY callid",
            &[],
        )
        .expect("select");
    let got: Vec<(i32, bool, Option<String>, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let tz = "timestamp with time zone".to_owned();
    assert_eq!(
        got,
        [
            (200, false, None, tz.clone()),
            (200, true, Some("a|b".to_owned()), tz.clone()),
            (200, false, Some("tab\tand\\back".to_owned()), tz.clone()),
            (200, false, Some("100%".to_owned()), tz),
        ]
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

fn renamed_and_gzipped_files_are_not_loaded_again() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("rotated");
    let dir = scratch("rotated");
    let mut db = pg.client("rotated");
    // logrotate's way: the live file renamed .1, loaded; then .1 -> .2.gz and a new .1.
    write_acc(&dir, 5, "a", 300, "");
    fs::rename(dir.join("acc_5.log"), dir.join("acc_5.log.1")).expect("rotate");
    assert_exit(&load(&dir, &url, &["--create", "--source", "p"]), 0);
    assert_once(&mut db, "p", &dir);

    fs::rename(dir.join("acc_5.log.1"), dir.join("acc_5.log.2")).expect("rotate");
    common::gzip(&dir.join("acc_5.log.2"));
    write_acc(&dir, 5, "b", 200, "");
    fs::rename(dir.join("acc_5.log"), dir.join("acc_5.log.1")).expect("rotate");
    let out = load(&dir, &url, &["--source", "p"]);
    assert_exit(&out, 0);
    assert_eq!(
        loaded_files(&out),
        BTreeSet::from(["acc_5.log.1".to_owned()]),
        "only the new file"
    );
    assert_once(&mut db, "p", &dir);
    assert_eq!(count(&mut db, "SELECT count(*) FROM acc"), 500);
    fs::remove_dir_all(&dir).expect("clean up");
}

/// Files given instead of DIR TABLE: their names say the table, the sidecar beside them the
/// columns; the ledger knows them by content, so the directory's run and a renamed copy load
/// nothing again. `-`, a record-time window, the options of a directory's files and files of
/// two tables are usage errors.
fn files_given_load_as_the_directory_does() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("files");
    let dir = scratch("files");
    let mut db = pg.client("files");
    write_acc(&dir, 5, "a", 300, "");
    fs::rename(dir.join("acc_5.log"), dir.join("acc_5.log.1")).expect("rotate");
    let file = dir.join("acc_5.log.1");
    let given =
        |extra: &[&str]| flatstore(&[&["load", path_str(&file), "--db", &url][..], extra].concat());
    let out = given(&["--create", "--source", "p"]);
    assert_exit(&out, 0);
    assert_eq!(
        loaded_files(&out),
        BTreeSet::from([path_str(&file).to_owned()])
    );
    assert_once(&mut db, "p", &dir);

    let out = load(&dir, &url, &["--source", "p"]);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "", "the same file, known by content");
    let copy = scratch("files-copy").join("calls.txt");
    fs::copy(&file, &copy).expect("copy");
    let names = NAMES.join(",");
    let copied = |extra: &[&str]| {
        flatstore(
            &[
                &["load", path_str(&copy), "--db", &url, "--source", "p"][..],
                extra,
            ]
            .concat(),
        )
    };
    assert_exit(&copied(&["--columns", &names]), 2);
    let out = copied(&["--columns", &names, "--into", "acc"]);
    assert_exit(&out, 0);
    assert_eq!(
        text(&out.stdout),
        "",
        "a copy under another name, known by content"
    );
    assert_once(&mut db, "p", &dir);

    fs::write(dir.join("missed_calls_5.log.1"), b"x\n").expect("write");
    let two = dir.join("missed_calls_5.log.1");
    for (args, says) in [
        (vec!["load", "-", "--db", &url], "standard input"),
        (
            vec![
                "load",
                path_str(&file),
                "--db",
                &url,
                "--since",
                "2026-01-01",
            ],
            "--since/--until",
        ),
        (
            vec!["load", path_str(&file), "--db", &url, "--sealed-only"],
            "--sealed-only",
        ),
        (
            vec!["load", path_str(&file), path_str(&two), "--db", &url],
            "several tables",
        ),
        (vec!["load", path_str(&dir), "--db", &url], "TABLE"),
    ] {
        let out = flatstore(&args);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_once(&mut db, "p", &dir);
    fs::remove_dir_all(&dir).expect("clean up");
    fs::remove_dir_all(copy.parent().expect("dir")).expect("clean up");
}

fn a_live_file_loads_only_with_live_and_then_only_what_it_grew() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("live");
    let dir = scratch("live");
    let mut db = pg.client("live");
    write_acc(&dir, 7, "l", 10, "");
    assert_exit(&load(&dir, &url, &["--create", "--source", "p"]), 0);
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM acc"),
        0,
        "live files wait"
    );

    assert_exit(&load(&dir, &url, &["--source", "p", "--live"]), 0);
    assert_eq!(count(&mut db, "SELECT count(*) FROM acc"), 10);
    // The writer appends; the file grows past the 4 KiB that name it.
    let _turn = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    let mut tail = Vec::new();
    for i in 10..110 {
        tail.extend_from_slice(format!("BYE|f{i}|t|l-7-{i}|200|OK|{}|bob\n", EPOCH + i).as_bytes());
    }
    fs::OpenOptions::new()
        .append(true)
        .open(dir.join("acc_7.log"))
        .expect("open")
        .write_all(&tail)
        .expect("append");
    drop(_turn);
    assert!(fs::metadata(dir.join("acc_7.log")).expect("stat").len() > 4096);
    let out = load(&dir, &url, &["--source", "p", "--live"]);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "acc_7.log: 100 records loaded\n");
    assert_once(&mut db, "p", &dir);
    // Rotated and compressed since: the same file.
    fs::rename(dir.join("acc_7.log"), dir.join("acc_7.log.1")).expect("rotate");
    common::gzip(&dir.join("acc_7.log.1"));
    let out = load(&dir, &url, &["--source", "p", "--live"]);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "");
    assert_once(&mut db, "p", &dir);
    assert_eq!(
        count(&mut db, "SELECT records FROM flatstore_ledger"),
        110,
        "one file, one ledger row"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

fn bad_files_roll_back_alone_named_with_the_reason() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("bad");
    let dir = scratch("bad");
    let mut db = pg.client("bad");
    fs::write(dir.join("acc.columns"), format!("{}\n", NAMES.join("|"))).expect("sidecar");
    let line = |i: u64, code: &str| format!("INVITE|f|t|c{i}|{code}|OK|{}|u\n", EPOCH as u64 + i);
    let good: String = (0..100).map(|i| line(i, "200")).collect();
    fs::write(dir.join("acc_1.log.1"), &good).expect("write");
    let mut columns: String = (100..200).map(|i| line(i, "200")).collect();
    columns.push_str("INVITE|only|four|columns\n");
    columns.extend((200..250).map(|i| line(i, "200")));
    fs::write(dir.join("acc_2.log.1"), &columns).expect("write");
    let mut refused: String = (300..340).map(|i| line(i, "200")).collect();
    refused.push_str(&line(340, "2xx"));
    fs::write(dir.join("acc_3.log.1"), &refused).expect("write");
    let mut times: String = (400..410).map(|i| line(i, "200")).collect();
    times.push_str("INVITE|f|t|c410|200|OK|soon|u\n");
    fs::write(dir.join("acc_4.log.1"), &times).expect("write");
    let mut torn: String = (500..520).map(|i| line(i, "200")).collect();
    torn.push_str("INVITE|f|t|c520|2");
    fs::write(dir.join("acc_6.log.1"), &torn).expect("write");

    let args = ["--create", "--source", "p", "--types", "sip_code=int"];
    let out = load(&dir, &url, &args);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    for expected in [
        "acc_2.log.1 line 101: 4 columns, not the 8 of",
        // A value the server refuses sets its record aside, and the rest of the file loads.
        "acc_3.log.1 line 41: invalid input syntax for type integer: \"2xx\" (column \
         sip_code: \"2xx\"): set aside in flatstore_rejects (the rest of the file is loaded)",
        "acc_4.log.1 line 11: invalid input syntax for type timestamp with time zone: \"soon\"",
        "acc_6.log.1: the last line is torn",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in:\n{stderr}");
    }
    assert_eq!(
        loaded_files(&out),
        BTreeSet::from(
            ["acc_1.log.1", "acc_3.log.1", "acc_4.log.1", "acc_6.log.1"].map(str::to_owned)
        )
    );
    assert_eq!(count(&mut db, "SELECT count(*) FROM acc"), 170);
    assert_eq!(count(&mut db, "SELECT count(*) FROM flatstore_ledger"), 4);
    assert_eq!(count(&mut db, "SELECT count(*) FROM flatstore_rejects"), 2);
    // The bad files are named again, nothing is added twice.
    let again = load(&dir, &url, &args);
    assert_exit(&again, 1);
    assert_eq!(text(&again.stdout), "");
    assert_eq!(count(&mut db, "SELECT count(*) FROM acc"), 170);
    assert_eq!(count(&mut db, "SELECT count(*) FROM flatstore_rejects"), 2);
    fs::remove_dir_all(&dir).expect("clean up");
}

fn loaders_killed_during_copy_then_run_again_leave_every_record_once() {
    let Some(pg) = cluster() else { return };
    let dir = scratch("kill");
    for n in 1..=4 {
        write_acc(&dir, n, "k", 30_000, "&rotate_records=10000");
    }
    seal(&dir);
    let url = pg.database("kill");
    let mut db = pg.client("kill");
    // The table and the ledger, nothing loaded yet.
    assert_exit(
        &load(&dir, &url, &["--create", "--modified-since", "@4000000000"]),
        0,
    );
    let mut admin = pg.client("postgres");
    let mut moments = common::Lcg(0x5eed);
    let (mut kills, mut partial) = (0, 0);
    let mut before = 0;
    for _ in 0..6 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flatstore"))
            .args(["load", path_str(&dir), "acc", "--db", &url])
            .args(["--create", "--source", "p"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start");
        // After it committed 0 to 2 files, once it copies the next, anywhere in the next 40 ms
        // (a file takes longer).
        let files_before = count(&mut db, "SELECT count(*) FROM flatstore_ledger");
        let wait_for = files_before + moments.below(3);
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
            let files = count(&mut db, "SELECT count(*) FROM flatstore_ledger");
            let copying = admin
                .query_opt(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = 'kill' AND \
                     application_name = 'flatstore load' AND query LIKE 'COPY%' \
                     AND state = 'active'",
                    &[],
                )
                .expect("pg_stat_activity");
            if files >= wait_for && copying.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(moments.below(40_000)));
        if child.try_wait().expect("wait").is_none() {
            kills += 1;
        }
        let _ = child.kill();
        child.wait().expect("reap");
        // Whatever a killed loader had sent of its current file is gone with its transaction.
        let rows = count(&mut db, "SELECT count(*) FROM acc");
        let ledger = count(
            &mut db,
            "SELECT coalesce(sum(records), 0)::bigint FROM flatstore_ledger",
        );
        assert_eq!(rows, ledger, "rows committed without their ledger row");
        if rows > before && rows < 120_000 {
            partial += 1;
        }
        before = rows;
    }
    eprintln!("{kills} loaders killed while running, {partial} after committing some files");
    let out = load(&dir, &url, &["--source", "p"]);
    assert_exit(&out, 0);
    assert_once(&mut db, "p", &dir);
    assert!(
        kills >= 4 && partial >= 1,
        "only {kills} loaders were killed before they ended, {partial} mid-directory"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

fn two_loaders_at_once_load_each_file_once() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("twice");
    let dir = scratch("twice");
    for n in 1..=4 {
        write_acc(&dir, n, "t", 3000, "&rotate_records=500");
    }
    seal(&dir);
    let mut db = pg.client("twice");
    // The table first, so that both loaders start copying at once.
    assert_exit(
        &flatstore(&[
            "load",
            path_str(&dir),
            "acc",
            "--db",
            &url,
            "--create",
            "--modified-since",
            "@4000000000",
        ]),
        0,
    );
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_flatstore"))
            .args(["load", path_str(&dir), "acc", "--db", &url, "--source", "p"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    assert_exit(&a, 0);
    assert_exit(&b, 0);
    let (from_a, from_b) = (loaded_files(&a), loaded_files(&b));
    assert!(
        from_a.is_disjoint(&from_b),
        "both loaded {:?}",
        from_a.intersection(&from_b).collect::<Vec<_>>()
    );
    assert_eq!(from_a.len() + from_b.len(), 24, "every file by one of them");
    assert_once(&mut db, "p", &dir);
    fs::remove_dir_all(&dir).expect("clean up");
}

fn a_fleet_of_four_proxies_and_a_repeating_loader_every_record_once_per_source() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("fleet");
    let base = scratch("fleet");
    let proxies: Vec<(String, PathBuf)> = (1..=4)
        .map(|p| {
            let dir = base.join(format!("proxy{p}"));
            fs::create_dir_all(&dir).expect("dir");
            // Each proxy's own writers, rotating as they go.
            for n in 1..=3 {
                write_acc(
                    &dir,
                    n,
                    &format!("p{p}"),
                    1500 + 100 * p,
                    "&rotate_records=400",
                );
            }
            seal(&dir);
            (format!("proxy{p}"), dir)
        })
        .collect();
    let mut db = pg.client("fleet");
    db.batch_execute(
        "CREATE TABLE acc (source text NOT NULL, method text, from_tag text, to_tag text, \
         callid text, sip_code int, sip_reason text, time timestamptz, src_user text)",
    )
    .expect("create");
    let spawn = |(source, dir): &(String, PathBuf)| {
        Command::new(env!("CARGO_BIN_EXE_flatstore"))
            .args([
                "load",
                path_str(dir),
                "acc",
                "--db",
                &url,
                "--source",
                source,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start")
    };
    let mut loaders: Vec<_> = proxies.iter().map(spawn).collect();
    // The cron job of proxy 2 runs again while the first is still loading.
    loaders.push(spawn(&proxies[1]));
    for loader in loaders {
        let out = loader.wait_with_output().expect("wait");
        assert_exit(&out, 0);
    }
    for (source, dir) in &proxies {
        assert_once(&mut db, source, dir);
    }
    assert_eq!(count(&mut db, "SELECT count(DISTINCT source) FROM acc"), 4);
    fs::remove_dir_all(&base).expect("clean up");
}

fn one_directory_loaded_by_two_hosts_loaders_is_loaded_once() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("share");
    let dir = scratch("share");
    for n in 1..=3 {
        write_acc(&dir, n, "s", 2000, "&rotate_records=500");
    }
    seal(&dir);
    assert_exit(
        &load(&dir, &url, &["--create", "--modified-since", "@4000000000"]),
        0,
    );
    let spawn = |source: &str| {
        Command::new(env!("CARGO_BIN_EXE_flatstore"))
            .args([
                "load",
                path_str(&dir),
                "acc",
                "--db",
                &url,
                "--source",
                source,
            ])
            .output()
            .expect("run")
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("host-a"));
        let b = s.spawn(|| spawn("host-b"));
        (a.join().expect("a"), b.join().expect("b"))
    });
    assert_exit(&a, 0);
    assert_exit(&b, 0);
    let mut db = pg.client("share");
    assert_eq!(count(&mut db, "SELECT count(*) FROM acc"), records_in(&dir));
    assert_eq!(
        count(&mut db, "SELECT count(DISTINCT callid) FROM acc"),
        records_in(&dir)
    );
    // Run again under the other name: told why nothing is loaded.
    let again = spawn("host-c");
    assert_exit(&again, 0);
    assert!(
        text(&again.stderr).contains("before under another --source"),
        "{}",
        text(&again.stderr)
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

fn a_lost_connection_rolls_back_that_file_and_the_others_still_load() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("lost");
    let dir = scratch("lost");
    for n in 1..=3 {
        write_acc(&dir, n, "x", 40_000, "");
        fs::rename(
            dir.join(format!("acc_{n}.log")),
            dir.join(format!("acc_{n}.log.1")),
        )
        .expect("rotate");
    }
    let mut db = pg.client("lost");
    let mut admin = pg.client("postgres");
    let loader = Command::new(env!("CARGO_BIN_EXE_flatstore"))
        .args(["load", path_str(&dir), "acc", "--db", &url])
        .args(["--create", "--source", "p"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    // The first COPY seen is cut off from the server side.
    let deadline = Instant::now() + Duration::from_secs(30);
    let terminated = loop {
        let row = admin
            .query_opt(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'lost' \
                 AND application_name = 'flatstore load' AND query LIKE 'COPY%' \
                 AND state = 'active' LIMIT 1",
                &[],
            )
            .expect("terminate");
        if row.is_some() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    assert!(terminated, "no COPY was seen");
    let out = loader.wait_with_output().expect("wait");
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the file is not loaded (rolled back)"),
        "{stderr}"
    );
    assert_eq!(loaded_files(&out).len(), 2, "the other files: {stderr}");
    assert_eq!(count(&mut db, "SELECT count(*) FROM acc"), 80_000);
    assert_exit(&load(&dir, &url, &["--source", "p"]), 0);
    assert_once(&mut db, "p", &dir);
    fs::remove_dir_all(&dir).expect("clean up");
}

fn credentials_from_pgpassword_or_pgpass_and_never_printed() {
    let Some(pg) = cluster() else { return };
    pg.database("creds");
    let mut db = pg.client("creds");
    db.batch_execute(
        "CREATE ROLE loader LOGIN PASSWORD 'Tr0ub4dor&3'; GRANT CREATE ON SCHEMA public TO loader",
    )
    .expect("role");
    let dir = scratch("creds");
    write_acc(&dir, 1, "c", 50, "");
    fs::rename(dir.join("acc_1.log"), dir.join("acc_1.log.1")).expect("rotate");
    let url = pg.url_as("loader", "creds");
    let run = |url: &str, env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flatstore"));
        command
            .args(["load", path_str(&dir), "acc", "--db", url, "--create"])
            .args(["--source", "p"])
            .env_remove("PGPASSWORD")
            .env("PGPASSFILE", dir.join("no-such-file"));
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("run")
    };
    let no_secret = |out: &Output| {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            !all.contains("Tr0ub4dor") && !all.contains("wr0ng"),
            "{all}"
        );
    };

    let out = run(&url, &[]);
    assert_exit(&out, 2);
    let out = run(&url, &[("PGPASSWORD", "wr0ng")]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("password"),
        "{}",
        text(&out.stderr)
    );
    no_secret(&out);
    let with_password = url.replacen("loader@", "loader:wr0ng@", 1);
    let out = run(&with_password, &[("PGPASSWORD", "Tr0ub4dor&3")]);
    assert_exit(&out, 2);
    no_secret(&out);

    // A password file others may read is ignored, as libpq ignores it.
    let pgpass = dir.join("pgpass");
    let host = pg.socket_dir().to_str().expect("UTF-8").replace(':', "\\:");
    fs::write(
        &pgpass,
        format!(
            "# flatstore\n{host}:{}:creds:loader:Tr0ub4dor&3\n",
            cluster::PORT
        ),
    )
    .expect("pgpass");
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o644)).expect("chmod");
    let pgpass_str = path_str(&pgpass);
    let out = run(&url, &[("PGPASSFILE", pgpass_str)]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("group or world access"));
    no_secret(&out);
    fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = run(&url, &[("PGPASSFILE", pgpass_str)]);
    assert_exit(&out, 0);
    no_secret(&out);
    let out = run(&url, &[("PGPASSWORD", "Tr0ub4dor&3")]);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "", "loaded once");
    assert_eq!(count(&mut db, "SELECT count(*) FROM acc"), 50);

    // A fleet's loader role needs no more than docs/operations.md grants it: INSERT on the
    // table, SELECT, INSERT and UPDATE on the ledger (both made by someone else).
    db.batch_execute(
        "CREATE TABLE calls (LIKE acc); CREATE ROLE fleet LOGIN PASSWORD 'Tr0ub4dor&3'; \
         GRANT INSERT ON calls TO fleet; \
         GRANT SELECT, INSERT, UPDATE ON flatstore_ledger TO fleet",
    )
    .expect("fleet role");
    write_acc(&dir, 1, "d", 20, "");
    let fleet = |into: &str| {
        Command::new(env!("CARGO_BIN_EXE_flatstore"))
            .args(["load", path_str(&dir), "acc", "--live", "--into", into])
            .args(["--db", &pg.url_as("fleet", "creds"), "--source", "p"])
            .env("PGPASSWORD", "Tr0ub4dor&3")
            .output()
            .expect("run")
    };
    let out = fleet("acc");
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("acc_1.log: permission denied for table acc"),
        "{}",
        text(&out.stderr)
    );
    let out = fleet("calls");
    assert_exit(&out, 0);
    assert_eq!(count(&mut db, "SELECT count(*) FROM calls"), 70);
    fs::remove_dir_all(&dir).expect("clean up");
}

fn usage_and_connection_errors_exit_2_and_load_nothing() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("usage");
    let dir = scratch("usage");
    fs::write(dir.join("acc_1.log.1"), "INVITE|a|b\n").expect("write");
    // No column names: no sidecar, no --columns.
    let out = load(&dir, &url, &["--create"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--columns"),
        "{}",
        text(&out.stderr)
    );
    // No table, no --create.
    let out = load(&dir, &url, &["--columns", "method,a,b"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--create"),
        "{}",
        text(&out.stderr)
    );
    // A column may not be called source; --types needs --create and known columns.
    assert_exit(
        &load(&dir, &url, &["--columns", "source,a,b", "--create"]),
        2,
    );
    assert_exit(
        &load(&dir, &url, &["--columns", "m,a,b", "--types", "a=int"]),
        2,
    );
    assert_exit(
        &load(
            &dir,
            &url,
            &["--columns", "m,a,b", "--create", "--types", "z=int"],
        ),
        2,
    );
    // No server there.
    let nowhere = format!("postgresql://postgres@{}:5/usage", "%2Fnonexistent");
    let out = load(&dir, &nowhere, &["--columns", "m,a,b", "--create"]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("postgres@/nonexistent:5/usage"));
    let mut db = pg.client("usage");
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'acc'"
        ),
        0
    );
    // Then right: loaded, into another schema's table under another name.
    db.batch_execute("CREATE SCHEMA billing").expect("schema");
    let out = load(
        &dir,
        &url,
        &["--columns", "m,a,b", "--create", "--into", "billing.Calls"],
    );
    assert_exit(&out, 0);
    assert_eq!(count(&mut db, "SELECT count(*) FROM billing.\"Calls\""), 1);
    fs::remove_dir_all(&dir).expect("clean up");
}
