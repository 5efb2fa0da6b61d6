//! `flatstore cdr --db` into a real PostgreSQL (a throwaway cluster, see common/cluster.rs):
//! every CDR in the table exactly once, the same CDRs as a plain `flatstore cdr` run's CSV,
//! after a rerun, files renamed and gzipped between runs, runs killed with SIGKILL at random
//! moments then run again, and two runs at once.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{self, Cluster};
use common::{assert_exit, text, trials};

fn main() {
    let trial = |name: &str, test: fn()| trials::trial_unless(name, cluster::missing, test);
    trials::run_trials(vec![
        trial(
            "a_rerun_adds_nothing_and_the_cdrs_are_the_plain_runs",
            a_rerun_adds_nothing_and_the_cdrs_are_the_plain_runs,
        ),
        trial(
            "renamed_and_gzipped_files_are_not_read_again",
            renamed_and_gzipped_files_are_not_read_again,
        ),
        trial(
            "runs_killed_at_random_moments_then_run_again_leave_every_cdr_once",
            runs_killed_at_random_moments_then_run_again_leave_every_cdr_once,
        ),
        trial(
            "two_runs_at_once_load_each_cdr_once",
            two_runs_at_once_load_each_cdr_once,
        ),
        trial(
            "db_conflicts_with_output_and_state",
            db_conflicts_with_output_and_state,
        ),
    ]);
}

/// One cluster for the whole test program; each test has its own database.
fn cluster() -> Option<&'static Cluster> {
    cluster::shared("cdrdb")
}

const EPOCH: u64 = 1_795_392_000;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-cdrdb-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn flatstore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flatstore"))
        .args(args)
        .env_remove("PGPASSWORD")
        .output()
        .expect("run flatstore")
}

/// The arguments of `flatstore cdr DIR --db URL --source p`, then `extra`.
fn cdr_db<'a>(dir: &'a Path, url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [
        &["cdr", path_str(dir), "--db", url, "--source", "p"][..],
        extra,
    ]
    .concat()
}

/// How many CDRs a run reported loading.
fn loaded(out: &Output) -> u64 {
    let stdout = text(&out.stdout);
    stdout
        .split_once(" CDRs loaded into ")
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in {stdout:?}"))
}

/// Kamailio's default acc columns: method, from_tag, to_tag, callid, sip_code, sip_reason, time.
fn record(method: &str, from: &str, to: &str, callid: &str, code: u32, time: u64) -> String {
    let reason = if code == 200 { "OK" } else { "Busy Here" };
    format!("{method}|{from}|{to}|{callid}|{code}|{reason}|{time}\n")
}

/// `calls` calls from second `from`, INVITEs and BYEs spread over 4 writers' files (rotated
/// as `acc_N.log.BATCH`); every seventh call has no BYE (unterminated once old enough).
fn write_batch(logs: &Path, batch: usize, calls: usize, from: u64) {
    let mut files: Vec<Vec<(u64, String)>> = vec![Vec::new(); 4];
    for i in 0..calls {
        let start = from + i as u64;
        let callid = format!("b{batch}-c{i}@proxy");
        let (from_tag, to_tag) = (format!("f{i}"), format!("t{i}"));
        files[i % 4].push((
            start,
            record("INVITE", &from_tag, &to_tag, &callid, 200, start),
        ));
        if i % 7 == 6 {
            continue;
        }
        let end = start + 30 + (i as u64 % 5);
        let bye = if i % 3 == 0 {
            record("BYE", &to_tag, &from_tag, &callid, 200, end)
        } else {
            record("BYE", &from_tag, &to_tag, &callid, 200, end)
        };
        files[(i + 1) % 4].push((end, bye));
    }
    for (n, mut lines) in files.into_iter().enumerate() {
        lines.sort_by_key(|(time, _)| *time);
        let content: String = lines.into_iter().map(|(_, line)| line).collect();
        fs::write(logs.join(format!("acc_{}.log.{batch}", 129 + n)), content).expect("write");
    }
}

/// A record far later than every call so far: every call is then settled.
/// Writes `acc.columns` (Kamailio's default seven names): the table exists before its first
/// record, so a run can create the SQL table (a directory with no file of the table at all is
/// a problem, exit status 1).
fn name_columns(logs: &Path) {
    fs::write(
        logs.join("acc.columns"),
        "method|from_tag|to_tag|callid|sip_code|sip_reason|time\n",
    )
    .expect("write acc.columns");
}

fn write_later(logs: &Path) {
    fs::write(
        logs.join("acc_200.log.1"),
        record("OPTIONS", "x", "y", "later@proxy", 200, EPOCH + 10_000_000),
    )
    .expect("write");
}

/// The CDRs of a plain run over everything (`flatstore cdr DIR`), as CSV rows, each with its
/// count.
fn plain_rows(logs: &Path) -> BTreeMap<String, usize> {
    let out = flatstore(&["cdr", path_str(logs)]);
    assert_exit(&out, 0);
    let mut counts = BTreeMap::new();
    for row in text(&out.stdout)
        .split("\r\n")
        .skip(1)
        .filter(|r| !r.is_empty())
    {
        *counts.entry(row.to_owned()).or_insert(0) += 1;
    }
    counts
}

/// The rows of table cdr (source p) written as `flatstore cdr` writes them in CSV (whole
/// seconds), each with its count.
fn db_rows(client: &mut postgres::Client) -> BTreeMap<String, usize> {
    let time = |column: &str| {
        format!(
            "coalesce(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"
        )
    };
    let sql = format!(
        "SELECT concat_ws(',', coalesce(callid, ''), coalesce(from_tag, ''), \
         coalesce(to_tag, ''), {}, {}, coalesce(duration::text, ''), coalesce(sip_code, ''), \
         coalesce(sip_reason, ''), coalesce(status, '')) FROM cdr WHERE source = 'p'",
        time("start"),
        time("\"end\"")
    );
    let mut counts = BTreeMap::new();
    for row in client.query(&sql, &[]).expect("select the CDRs") {
        *counts.entry(row.get::<_, String>(0)).or_insert(0) += 1;
    }
    counts
}

fn count(client: &mut postgres::Client, sql: &str) -> u64 {
    let n: i64 = client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0);
    n as u64
}

/// Every CDR of the plain run in the table exactly once, and nothing else.
fn assert_once(client: &mut postgres::Client, logs: &Path) {
    let expected = plain_rows(logs);
    assert!(expected.values().all(|&n| n == 1), "distinct plain rows");
    let got = db_rows(client);
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "CDRs in the table more than once: {twice:?}"
    );
    let missing: Vec<_> = expected
        .keys()
        .filter(|r| !got.contains_key(*r))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|r| !expected.contains_key(*r))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, not in the plain run {extra:?}"
    );
}

fn a_rerun_adds_nothing_and_the_cdrs_are_the_plain_runs() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("rerun");
    let mut db = pg.client("rerun");
    let logs = scratch("rerun");
    write_batch(&logs, 1, 500, EPOCH);
    let first = flatstore(&cdr_db(&logs, &url, &["--create"]));
    assert_exit(&first, 0);
    let n = loaded(&first);
    assert!(n > 400, "{n} CDRs");
    assert_eq!(count(&mut db, "SELECT count(*) FROM cdr"), n);
    let again = flatstore(&cdr_db(&logs, &url, &[]));
    assert_exit(&again, 0);
    assert_eq!(loaded(&again), 0, "a rerun adds nothing");
    assert_eq!(count(&mut db, "SELECT count(*) FROM cdr"), n);
    // The same directory under another --source reads nothing again.
    let other = flatstore(&["cdr", path_str(&logs), "--db", &url, "--source", "q"]);
    assert_exit(&other, 0);
    assert_eq!(loaded(&other), 0, "{}", text(&other.stderr));
    assert!(text(&other.stderr).contains("under --source p"));
    // A second batch, then a later record that settles every open call.
    write_batch(&logs, 2, 500, EPOCH + 1000);
    assert_exit(&flatstore(&cdr_db(&logs, &url, &[])), 0);
    write_later(&logs);
    assert_exit(&flatstore(&cdr_db(&logs, &url, &[])), 0);
    assert_exit(&flatstore(&cdr_db(&logs, &url, &[])), 0);
    assert_once(&mut db, &logs);
    let types: Vec<(String, String)> = db
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_name = 'cdr' ORDER BY ordinal_position",
            &[],
        )
        .expect("columns")
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let types: Vec<String> = types.iter().map(|(n, t)| format!("{n} {t}")).collect();
    assert_eq!(
        types,
        [
            "source text",
            "callid text",
            "from_tag text",
            "to_tag text",
            "start timestamp with time zone",
            "end timestamp with time zone",
            "duration numeric",
            "sip_code text",
            "sip_reason text",
            "status text"
        ]
    );
    fs::remove_dir_all(&logs).expect("clean up");
}

fn renamed_and_gzipped_files_are_not_read_again() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("rename");
    let mut db = pg.client("rename");
    let logs = scratch("rename");
    write_batch(&logs, 1, 400, EPOCH);
    let first = flatstore(&cdr_db(&logs, &url, &["--create"]));
    assert_exit(&first, 0);
    let n = loaded(&first);
    // logrotate: .1 becomes .2, another is gzipped.
    fs::rename(logs.join("acc_129.log.1"), logs.join("acc_129.log.2")).expect("rename");
    common::gzip(&logs.join("acc_130.log.1"));
    let out = flatstore(&cdr_db(&logs, &url, &[]));
    assert_exit(&out, 0);
    assert_eq!(loaded(&out), 0, "renamed and gzipped files are known");
    assert_eq!(count(&mut db, "SELECT count(*) FROM cdr"), n);
    write_later(&logs);
    assert_exit(&flatstore(&cdr_db(&logs, &url, &[])), 0);
    assert_once(&mut db, &logs);
    fs::remove_dir_all(&logs).expect("clean up");
}

fn runs_killed_at_random_moments_then_run_again_leave_every_cdr_once() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("kill");
    let mut db = pg.client("kill");
    let logs = scratch("kill");
    let mut moments = common::Lcg(0x5eed);
    let (mut kills, mut committed_between) = (0, 0);
    name_columns(&logs);
    assert_exit(
        &flatstore(&cdr_db(
            &logs,
            &url,
            &["--create", "--modified-since", "@4000000000"],
        )),
        0,
    );
    for batch in 1..=3 {
        write_batch(&logs, batch, 6000, EPOCH + batch as u64 * 100_000);
        // How long a --db run over every batch so far takes (into another database): a run
        // reads only the new batch, so it is killed in the first half of that.
        let probe_url = pg.database(&format!("probe{batch}"));
        let started = Instant::now();
        assert_exit(&flatstore(&cdr_db(&logs, &probe_url, &["--create"])), 0);
        let span = started.elapsed().as_micros() as u64;
        for _ in 0..5 {
            let before = count(&mut db, "SELECT count(*) FROM cdr");
            let moment = Duration::from_micros(moments.below(span / 2));
            kills += usize::from(common::kill_after(&cdr_db(&logs, &url, &[]), moment));
            if count(&mut db, "SELECT count(*) FROM cdr") != before {
                committed_between += 1;
            }
        }
        assert_exit(&flatstore(&cdr_db(&logs, &url, &[])), 0);
    }
    write_later(&logs);
    assert_exit(&flatstore(&cdr_db(&logs, &url, &[])), 0);
    assert_once(&mut db, &logs);
    eprintln!("{kills} runs killed while running; {committed_between} committed before the kill");
    assert!(
        kills >= 8,
        "only {kills} runs were killed before they ended"
    );
    fs::remove_dir_all(&logs).expect("clean up");
}

fn two_runs_at_once_load_each_cdr_once() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("twice");
    let mut db = pg.client("twice");
    let logs = scratch("twice");
    name_columns(&logs);
    assert_exit(
        &flatstore(&cdr_db(
            &logs,
            &url,
            &["--create", "--modified-since", "@4000000000"],
        )),
        0,
    );
    for batch in 1..=2 {
        write_batch(&logs, batch, 3000, EPOCH + batch as u64 * 100_000);
        let spawn = || {
            Command::new(env!("CARGO_BIN_EXE_flatstore"))
                .args(cdr_db(&logs, &url, &[]))
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
        assert!(
            loaded(&a) == 0 || loaded(&b) == 0,
            "both runs loaded CDRs: {} and {}",
            loaded(&a),
            loaded(&b)
        );
    }
    write_later(&logs);
    assert_exit(&flatstore(&cdr_db(&logs, &url, &[])), 0);
    assert_once(&mut db, &logs);
    fs::remove_dir_all(&logs).expect("clean up");
}

fn db_conflicts_with_output_and_state() {
    let logs = scratch("usage");
    for extra in [
        &["--output", "x.csv"][..],
        &["--state", "s", "--output", "x.csv"],
        &["--format", "jsonl"],
    ] {
        let out = flatstore(
            &[
                &["cdr", path_str(&logs), "--db", "postgresql://u@/db"][..],
                extra,
            ]
            .concat(),
        );
        assert_exit(&out, 2);
    }
    let out = flatstore(&["cdr", path_str(&logs), "--into", "cdr"]);
    assert_exit(&out, 2);
    fs::remove_dir_all(&logs).expect("clean up");
}
