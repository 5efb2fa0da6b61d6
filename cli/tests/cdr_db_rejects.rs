//! `flatstore cdr --db` when the server refuses a CDR (issue 23, points 1, 4 and 7): a value
//! not of its column's type in a table the user made sets that CDR aside in
//! `flatstore_rejects` (its row, the server's reason, the file, line and Call-ID of its record)
//! and loads every other one, exit status 1, exactly once over runs; the COPY of a run of many
//! MiB of rows (one stream, several buffers) loads everything once, refusals anywhere in it;
//! more refusals than the bound, or a server error that is no refusal (an exception, the
//! connection lost), commit nothing (exit status 2). A real PostgreSQL: common/cluster.rs.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::cluster::{self, Cluster};
use common::{assert_exit, text, trials};

fn main() {
    let trial = |name: &str, test: fn()| trials::trial_unless(name, cluster::missing, test);
    trials::run_trials(vec![
        trial(
            "a_cdr_the_server_refuses_is_set_aside_and_the_others_load_once",
            a_cdr_the_server_refuses_is_set_aside_and_the_others_load_once,
        ),
        trial(
            "megabytes_of_cdrs_load_once_with_refusals_anywhere",
            megabytes_of_cdrs_load_once_with_refusals_anywhere,
        ),
        trial(
            "more_refusals_than_the_bound_commit_nothing",
            more_refusals_than_the_bound_commit_nothing,
        ),
        trial(
            "a_server_error_that_is_no_refusal_commits_nothing",
            a_server_error_that_is_no_refusal_commits_nothing,
        ),
        trial(
            "a_thread_of_the_run_that_fails_commits_nothing",
            a_thread_of_the_run_that_fails_commits_nothing,
        ),
        trial(
            "without_a_spool_only_a_run_with_a_refusal_fails",
            without_a_spool_only_a_run_with_a_refusal_fails,
        ),
    ]);
}

/// One cluster for the whole test program; each test has its own database.
fn cluster() -> Option<&'static Cluster> {
    cluster::shared("cdrrej")
}

const EPOCH: u64 = 1_795_392_000;

/// The CDR table as a user may make it: `sip_code` and the extra `src_user` integers.
const TABLE: &str = "CREATE TABLE cdr (source text, callid text, from_tag text, to_tag text, \
    start timestamptz, \"end\" timestamptz, duration numeric, sip_code integer, \
    sip_reason text, status text, src_user integer)";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-cdrrej-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    fs::write(
        dir.join("acc.columns"),
        "method|from_tag|to_tag|callid|sip_code|sip_reason|time|src_user\n",
    )
    .expect("write acc.columns");
    dir
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn flatstore(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flatstore"));
    command.args(args).env_remove("PGPASSWORD");
    common::timeout::output_or_fail(&mut command, "flatstore cdr", Duration::from_secs(300))
}

/// `flatstore cdr DIR --db URL --source p`.
fn cdr_db(dir: &Path, url: &str) -> Output {
    flatstore(&["cdr", path_str(dir), "--db", url, "--source", "p"])
}

/// How many CDRs a run reported loading.
fn loaded(out: &Output) -> u64 {
    let stdout = text(&out.stdout);
    stdout
        .split_once(" CDRs loaded into ")
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in {stdout:?}"))
}

fn count(client: &mut postgres::Client, sql: &str) -> u64 {
    let n: i64 = client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0);
    n as u64
}

/// An answered call: its INVITE (with `user` in src_user) and its BYE 30 s later.
fn call(callid: &str, start: u64, user: &str) -> [String; 2] {
    [
        format!("INVITE|f-{callid}|t-{callid}|{callid}|200|OK|{start}|{user}\n"),
        format!(
            "BYE|f-{callid}|t-{callid}|{callid}|200|OK|{}|\n",
            start + 30
        ),
    ]
}

/// Writes `calls` (Call-ID, start, src_user) as sealed files of `writers` writers, a call's
/// INVITE and BYE in the same file, each file in time order; returns where each INVITE is
/// (file name, line).
fn write_calls(
    dir: &Path,
    batch: usize,
    writers: usize,
    calls: &[(String, u64, String)],
) -> BTreeMap<String, (String, u64)> {
    let mut files: Vec<Vec<(u64, String, Option<String>)>> = vec![Vec::new(); writers];
    for (i, (callid, start, user)) in calls.iter().enumerate() {
        let [invite, bye] = call(callid, *start, user);
        files[i % writers].push((*start, invite, Some(callid.clone())));
        files[i % writers].push((*start + 30, bye, None));
    }
    let mut at = BTreeMap::new();
    for (n, mut lines) in files.into_iter().enumerate() {
        lines.sort_by_key(|(time, _, _)| *time);
        let name = format!("acc_{}.log.{batch}", 129 + n);
        let mut content = String::new();
        for (number, (_, line, invite)) in lines.into_iter().enumerate() {
            if let Some(callid) = invite {
                at.insert(callid, (name.clone(), number as u64 + 1));
            }
            content.push_str(&line);
        }
        fs::write(dir.join(&name), content).expect("write");
    }
    at
}

/// The rejects kept: (file, line, the record's Call-ID as its row has it, reason).
fn rejects(client: &mut postgres::Client) -> Vec<(String, i64, String, String)> {
    client
        .query(
            "SELECT file, line, record, reason FROM flatstore_rejects \
             WHERE tbl = 'public.cdr' AND source = 'p' ORDER BY file, line",
            &[],
        )
        .expect("select rejects")
        .iter()
        .map(|r| {
            let record: Vec<u8> = r.get(2);
            let callid = text(&record)
                .split('\t')
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            (r.get(0), r.get(1), callid, r.get(3))
        })
        .collect()
}

/// Each Call-ID in the table, with how many times it is there.
fn callids(client: &mut postgres::Client) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for row in client
        .query("SELECT callid FROM cdr", &[])
        .expect("select callids")
    {
        *counts.entry(row.get::<_, String>(0)).or_insert(0) += 1;
    }
    counts
}

fn a_cdr_the_server_refuses_is_set_aside_and_the_others_load_once() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("refused");
    let mut db = pg.client("refused");
    db.batch_execute(TABLE).expect("create the table");
    let logs = scratch("refused");
    let calls: Vec<(String, u64, String)> = (0..40)
        .map(|i| {
            let user = match i {
                7 => "abc".to_owned(),
                31 => "12x".to_owned(),
                _ => i.to_string(),
            };
            (format!("c{i}@h"), EPOCH + i * 10, user)
        })
        .collect();
    let at = write_calls(&logs, 1, 3, &calls);

    let first = cdr_db(&logs, &url);
    assert_exit(&first, 1);
    assert_eq!(text(&first.stdout), "38 CDRs loaded into public.cdr\n");
    let stderr = text(&first.stderr);
    for (callid, value) in [("c7@h", "abc"), ("c31@h", "12x")] {
        let (file, line) = &at[callid];
        let named = format!(
            "{} line {line}: call \"{callid}\": invalid input syntax for type integer: \
             \"{value}\"",
            logs.join(file).display()
        );
        assert!(stderr.contains(&named), "{named:?} not in:\n{stderr}");
    }
    assert!(
        stderr.contains("set aside in flatstore_rejects"),
        "{stderr}"
    );
    assert!(
        stderr.contains("public.cdr: 2 CDRs refused by the server"),
        "{stderr}"
    );
    assert!(!stderr.contains("COPY cdr"), "no internal row: {stderr}");
    let kept = rejects(&mut db);
    let mut expected: Vec<(String, i64, String)> = ["c7@h", "c31@h"]
        .iter()
        .map(|callid| {
            let (file, line) = &at[*callid];
            (file.clone(), *line as i64, (*callid).to_owned())
        })
        .collect();
    expected.sort();
    let got: Vec<(String, i64, String)> = kept
        .iter()
        .map(|(file, line, callid, _)| (file.clone(), *line, callid.clone()))
        .collect();
    assert_eq!(got, expected);
    assert!(
        kept.iter()
            .all(|(_, _, _, reason)| reason.contains("integer")),
        "{kept:?}"
    );
    let ids = callids(&mut db);
    assert_eq!(ids.len(), 38);
    assert!(ids.values().all(|&n| n == 1));
    assert!(!ids.contains_key("c7@h") && !ids.contains_key("c31@h"));

    // The next run: nothing again, neither CDRs nor rejects.
    let again = cdr_db(&logs, &url);
    assert_exit(&again, 0);
    assert_eq!(loaded(&again), 0);
    assert_eq!(count(&mut db, "SELECT count(*) FROM cdr"), 38);
    assert_eq!(count(&mut db, "SELECT count(*) FROM flatstore_rejects"), 2);
    // New calls load; the state goes on.
    write_calls(
        &logs,
        2,
        1,
        &[("n1@h".to_owned(), EPOCH + 1000, "5".to_owned())],
    );
    let grown = cdr_db(&logs, &url);
    assert_exit(&grown, 0);
    assert_eq!(loaded(&grown), 1);
    assert_eq!(count(&mut db, "SELECT count(*) FROM cdr"), 39);
    fs::remove_dir_all(&logs).expect("clean up");
}

fn megabytes_of_cdrs_load_once_with_refusals_anywhere() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("many");
    let mut db = pg.client("many");
    db.batch_execute(TABLE).expect("create the table");
    let logs = scratch("many");
    // Long Call-IDs: some 300 bytes a row, 40,000 rows: about 12 MiB, a dozen buffers.
    let pad = "x".repeat(200);
    let bad = [3, 20_000, 39_998];
    let calls: Vec<(String, u64, String)> = (0..40_000u64)
        .map(|i| {
            let user = if bad.contains(&i) {
                format!("bad{i}")
            } else {
                (i % 1000).to_string()
            };
            (format!("{i}-{pad}@h"), EPOCH + i, user)
        })
        .collect();
    let at = write_calls(&logs, 1, 4, &calls);
    let first = cdr_db(&logs, &url);
    assert_exit(&first, 1);
    assert_eq!(loaded(&first), 40_000 - 3);
    let ids = callids(&mut db);
    assert_eq!(ids.len(), 40_000 - 3);
    assert!(ids.values().all(|&n| n == 1), "every CDR once");
    let got: Vec<(String, i64, String)> = rejects(&mut db)
        .into_iter()
        .map(|(file, line, callid, _)| (file, line, callid))
        .collect();
    let mut expected: Vec<(String, i64, String)> = bad
        .iter()
        .map(|i| {
            let callid = format!("{i}-{pad}@h");
            let (file, line) = &at[&callid];
            (file.clone(), *line as i64, callid)
        })
        .collect();
    expected.sort();
    assert_eq!(got, expected);
    let again = cdr_db(&logs, &url);
    assert_exit(&again, 0);
    assert_eq!(loaded(&again), 0);
    assert_eq!(count(&mut db, "SELECT count(*) FROM cdr"), 40_000 - 3);
    fs::remove_dir_all(&logs).expect("clean up");
}

fn more_refusals_than_the_bound_commit_nothing() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("toomany");
    let mut db = pg.client("toomany");
    db.batch_execute(TABLE).expect("create the table");
    let logs = scratch("toomany");
    let calls: Vec<(String, u64, String)> = (0..300)
        .map(|i| {
            let user = if i % 2 == 0 {
                "x".to_owned()
            } else {
                i.to_string()
            };
            (format!("m{i}@h"), EPOCH + i, user)
        })
        .collect();
    write_calls(&logs, 1, 2, &calls);
    let out = cdr_db(&logs, &url);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("more than 100 CDRs refused by the server, the last ")
            && stderr.contains("nothing is committed"),
        "{stderr}"
    );
    assert!(stderr.contains("line "), "the last one named: {stderr}");
    assert_eq!(count(&mut db, "SELECT count(*) FROM cdr"), 0);
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM flatstore_cdr_state"),
        0
    );
    fs::remove_dir_all(&logs).expect("clean up");
}

fn a_server_error_that_is_no_refusal_commits_nothing() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("broken");
    let mut db = pg.client("broken");
    db.batch_execute(TABLE).expect("create the table");
    // A row of Call-ID `boom@h` raises an exception (SQLSTATE P0001); one of `gone@h` ends
    // the session, as a server going away mid-COPY.
    db.batch_execute(
        "CREATE FUNCTION trip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.callid = 'boom@h' THEN RAISE EXCEPTION 'boom'; END IF; \
           IF NEW.callid = 'gone@h' THEN PERFORM pg_terminate_backend(pg_backend_pid()); \
           END IF; RETURN NEW; END $$; \
         CREATE TRIGGER trip BEFORE INSERT ON cdr FOR EACH ROW EXECUTE FUNCTION trip()",
    )
    .expect("create the trigger");
    for (n, trap) in ["boom@h", "gone@h"].into_iter().enumerate() {
        let logs = scratch(&format!("broken{n}"));
        let calls: Vec<(String, u64, String)> = (0..50)
            .map(|i| {
                let callid = if i == 25 {
                    trap.to_owned()
                } else {
                    format!("b{i}@h")
                };
                (callid, EPOCH + i, i.to_string())
            })
            .collect();
        write_calls(&logs, 1, 2, &calls);
        let out = cdr_db(&logs, &url);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        if trap == "boom@h" {
            let named = format!(
                "{} line 13: call \"boom@h\": boom: nothing is committed",
                logs.join("acc_130.log.1").display()
            );
            assert!(stderr.contains(&named), "{named:?} not in:\n{stderr}");
        } else {
            assert!(stderr.contains("nothing is committed"), "{stderr}");
        }
        assert_eq!(count(&mut db, "SELECT count(*) FROM cdr"), 0, "{trap}");
        assert_eq!(
            count(&mut db, "SELECT count(*) FROM flatstore_cdr_state"),
            0,
            "{trap}"
        );
        fs::remove_dir_all(&logs).expect("clean up");
    }
}

/// A panic in the reading or the pairing thread (injected, debug builds) while the COPY
/// thread copies: the run ends, exit status 2, nothing committed.
fn a_thread_of_the_run_that_fails_commits_nothing() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("panics");
    let mut db = pg.client("panics");
    db.batch_execute(TABLE).expect("create the table");
    let logs = scratch("panics");
    let calls: Vec<(String, u64, String)> = (0..2000)
        .map(|i| (format!("p{i}@h"), EPOCH + i, i.to_string()))
        .collect();
    write_calls(&logs, 1, 2, &calls);
    for thread in ["reading", "pairing"] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flatstore"));
        command
            .args(["cdr", path_str(&logs), "--db", &url, "--source", "p"])
            .env("FLATSTORE_FAULT_INJECTION", thread);
        let out = common::timeout::output_or_fail(&mut command, thread, Duration::from_secs(60));
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(&format!("the {thread} thread failed")),
            "{thread}: {}",
            text(&out.stderr)
        );
        assert_eq!(count(&mut db, "SELECT count(*) FROM cdr"), 0, "{thread}");
        assert_eq!(
            count(&mut db, "SELECT count(*) FROM flatstore_cdr_state"),
            0,
            "{thread}"
        );
    }
    fs::remove_dir_all(&logs).expect("clean up");
}

/// The spool of the rows sent cannot be made (TMPDIR is no directory): a run with nothing
/// refused loads as ever; one with a refused CDR fails, saying why, nothing committed.
fn without_a_spool_only_a_run_with_a_refusal_fails() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("nospool");
    let mut db = pg.client("nospool");
    db.batch_execute(TABLE).expect("create the table");
    let logs = scratch("nospool");
    let run = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flatstore"));
        command
            .args(["cdr", path_str(&logs), "--db", &url, "--source", "p"])
            .env("TMPDIR", logs.join("acc.columns"));
        common::timeout::output_or_fail(&mut command, "cdr", Duration::from_secs(60))
    };
    let good: Vec<(String, u64, String)> = (0..20)
        .map(|i| (format!("g{i}@h"), EPOCH + i, i.to_string()))
        .collect();
    write_calls(&logs, 1, 2, &good);
    let first = run();
    assert_exit(&first, 0);
    assert_eq!(loaded(&first), 20);
    write_calls(
        &logs,
        2,
        1,
        &[
            ("n1@h".to_owned(), EPOCH + 1000, "1".to_owned()),
            ("n2@h".to_owned(), EPOCH + 1001, "two".to_owned()),
        ],
    );
    let second = run();
    assert_exit(&second, 2);
    assert!(
        text(&second.stderr)
            .contains("the server refused a CDR, and the rows sent could not be kept"),
        "{}",
        text(&second.stderr)
    );
    assert_eq!(count(&mut db, "SELECT count(*) FROM cdr"), 20);
    // With a spool, the next run sets the CDR aside.
    let third = cdr_db(&logs, &url);
    assert_exit(&third, 1);
    assert_eq!(loaded(&third), 1);
    fs::remove_dir_all(&logs).expect("clean up");
}
