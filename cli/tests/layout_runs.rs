//! The layout of `flatstore cdr`'s output follows the records, never the first run: a run
//! before the first record (a cron job on a fresh proxy) fixes nothing, neither a header nor a
//! table, and columns that appear later (the table's `.columns`, extras added to the proxy's
//! config) get a new journal with their header, or the --create table the columns added. The
//! --db trials need PostgreSQL (see common/cluster.rs).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cluster::{self, Cluster};
use common::{assert_exit, text, trials};

fn main() {
    let db_trial = |name: &str, test: fn()| trials::trial_unless(name, cluster::missing, test);
    trials::run_trials(vec![
        trials::trial(
            "a_run_before_the_first_record_writes_no_header_and_no_state",
            a_run_before_the_first_record_writes_no_header_and_no_state,
        ),
        trials::trial(
            "columns_that_appear_later_begin_a_new_journal_and_nothing_is_lost",
            columns_that_appear_later_begin_a_new_journal_and_nothing_is_lost,
        ),
        trials::trial(
            "a_jsonl_journal_goes_on_when_columns_appear",
            a_jsonl_journal_goes_on_when_columns_appear,
        ),
        db_trial(
            "a_db_run_before_the_first_record_creates_no_table",
            a_db_run_before_the_first_record_creates_no_table,
        ),
        db_trial(
            "a_created_table_gets_the_columns_that_appear_later",
            a_created_table_gets_the_columns_that_appear_later,
        ),
        db_trial(
            "load_create_adds_the_columns_that_appear_later",
            load_create_adds_the_columns_that_appear_later,
        ),
    ]);
}

const EPOCH: u64 = 1_795_392_000;
const SEVEN: &str = "method|from_tag|to_tag|callid|sip_code|sip_reason|time";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-layout-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("acc")).expect("create scratch dir");
    dir
}

fn flatstore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flatstore"))
        .args(args)
        .env_remove("PGPASSWORD")
        .output()
        .expect("run flatstore")
}

/// One answered call's INVITE (with `extras` after the seven default columns) and BYE (as
/// many fields, its extras empty).
fn call(callid: &str, start: u64, extras: &[&str]) -> String {
    let tail: String = extras.iter().map(|e| format!("|{e}")).collect();
    let empty: String = extras.iter().map(|_| "|").collect();
    format!(
        "INVITE|f|t|{callid}|200|OK|{start}{tail}\nBYE|f|t|{callid}|200|OK|{}{empty}\n",
        start + 10
    )
}

/// An incremental run over `dir/acc`, live files included: its journal `dir/OUTPUT` in
/// `format`, its state `dir/cdr.state`.
fn incremental(dir: &Path, output: &str, format: &str) -> Output {
    let acc = dir.join("acc");
    let (out, state) = (dir.join(output), dir.join("cdr.state"));
    flatstore(&[
        "cdr",
        acc.to_str().unwrap(),
        "--live",
        "--format",
        format,
        "--state",
        state.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ])
}

/// A `--db` run over `dir/acc` into `url`'s table `cdr`, live files included, then `extra`.
fn into_db(dir: &Path, url: &str, extra: &[&str]) -> Output {
    let acc = dir.join("acc");
    let args = [
        "cdr",
        acc.to_str().unwrap(),
        "--live",
        "--db",
        url,
        "--source",
        "p",
    ];
    flatstore(&[&args[..], extra].concat())
}

/// Appends `lines` to the live file `acc/acc_1.log`.
fn append(dir: &Path, lines: &str) {
    use std::io::Write as _;
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("acc/acc_1.log"))
        .expect("open the log")
        .write_all(lines.as_bytes())
        .expect("append");
}

/// The CSV lines of `path`.
fn csv_lines(path: &Path) -> Vec<String> {
    text(&fs::read(path).expect("read the output"))
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every line of a CSV file has as many fields as its header (no field here holds a comma).
fn assert_one_width(path: &Path) {
    let lines = csv_lines(path);
    let width = lines[0].split(',').count();
    for line in &lines {
        assert_eq!(
            line.split(',').count(),
            width,
            "{}: {line:?} under the header {:?}",
            path.display(),
            lines[0]
        );
    }
}

fn a_run_before_the_first_record_writes_no_header_and_no_state() {
    let dir = scratch("early");
    let (out, state) = (dir.join("cdr.csv"), dir.join("cdr.state"));
    let run = || incremental(&dir, "cdr.csv", "csv");
    // The proxy made its file, and wrote nothing yet.
    fs::write(dir.join("acc/acc_1.log"), "").expect("empty log");
    let early = run();
    assert_exit(&early, 0);
    assert!(
        text(&early.stderr).contains("no record yet: nothing accounted, nothing committed"),
        "{}",
        text(&early.stderr)
    );
    assert!(
        !out.exists(),
        "no output, so no header, before the first record"
    );
    assert!(!state.exists(), "no state before the first record");
    // The first calls, with their columns named.
    fs::write(
        dir.join("acc/acc.columns"),
        format!("{SEVEN}|src_user|dst_user\n"),
    )
    .expect("columns");
    append(&dir, &call("c1@h", EPOCH, &["alice", "bob"]));
    assert_exit(&run(), 0);
    let lines = csv_lines(&out);
    assert_eq!(
        lines[0],
        "callid,from_tag,to_tag,start,end,duration,sip_code,sip_reason,status,src_user,dst_user"
    );
    assert_eq!(lines.len(), 2);
    assert!(lines[1].ends_with(",answered,alice,bob"), "{lines:?}");
    fs::remove_dir_all(&dir).expect("clean up");
}

fn columns_that_appear_later_begin_a_new_journal_and_nothing_is_lost() {
    let dir = scratch("appear");
    let out = dir.join("cdr.csv");
    let run = || incremental(&dir, "cdr.csv", "csv");
    // Records without column names (a stock module's files): Kamailio's default layout.
    append(&dir, &call("c1@h", EPOCH, &["alice"]));
    assert_exit(&run(), 0);
    assert_eq!(csv_lines(&out)[0].split(',').next_back(), Some("extra8"));
    // Then the names appear, with one more extra (the config changed).
    fs::write(
        dir.join("acc/acc.columns"),
        format!("{SEVEN}|src_user|dst_user\n"),
    )
    .expect("columns");
    fs::rename(dir.join("acc/acc_1.log"), dir.join("acc/acc_1.log.1")).expect("rotate");
    append(&dir, &call("c2@h", EPOCH + 60, &["carol", "dave"]));
    let second = run();
    assert_exit(&second, 0);
    assert!(
        text(&second.stderr).contains("its header is not of the table's columns now"),
        "{}",
        text(&second.stderr)
    );
    let retired: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("cdr.csv.20"))
        })
        .collect();
    assert_eq!(retired.len(), 1, "one journal ended: {retired:?}");
    assert_one_width(&retired[0]);
    assert_one_width(&out);
    let old = csv_lines(&retired[0]);
    let new = csv_lines(&out);
    assert_eq!(old.len(), 2, "{old:?}");
    assert!(old[1].starts_with("c1@h,") && old[1].ends_with(",alice"));
    assert_eq!(new.len(), 2, "{new:?}");
    assert!(new[0].ends_with(",src_user,dst_user"));
    assert!(new[1].starts_with("c2@h,") && new[1].ends_with(",carol,dave"));
    // A third run finds the journal of its header: it goes on in it.
    append(&dir, &call("c3@h", EPOCH + 120, &["erin", "frank"]));
    assert_exit(&run(), 0);
    assert_eq!(csv_lines(&out).len(), 3);
    assert_one_width(&out);
    fs::remove_dir_all(&dir).expect("clean up");
}

fn a_jsonl_journal_goes_on_when_columns_appear() {
    let dir = scratch("jsonl");
    let out = dir.join("cdr.jsonl");
    let run = || incremental(&dir, "cdr.jsonl", "jsonl");
    append(&dir, &call("c1@h", EPOCH, &["alice"]));
    assert_exit(&run(), 0);
    fs::write(dir.join("acc/acc.columns"), format!("{SEVEN}|src_user\n")).expect("columns");
    append(&dir, &call("c2@h", EPOCH + 60, &["carol"]));
    assert_exit(&run(), 0);
    // Each object names its columns: one journal holds both.
    let objects = text(&fs::read(&out).expect("read"));
    let objects: Vec<&str> = objects.lines().collect();
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert!(
        objects[0].contains("\"extra8\":\"alice\""),
        "{}",
        objects[0]
    );
    assert!(
        objects[1].contains("\"src_user\":\"carol\""),
        "{}",
        objects[1]
    );
    assert_eq!(
        fs::read_dir(&dir).expect("list").count(),
        3,
        "acc, cdr.jsonl, cdr.state"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// One cluster for the whole test program; each test has its own database.
fn cluster() -> Option<&'static Cluster> {
    cluster::shared("layout")
}

fn count(db: &mut postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).expect(sql).get(0)
}

fn a_db_run_before_the_first_record_creates_no_table() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("early");
    let mut db = pg.client("early");
    let dir = scratch("dbearly");
    let acc = dir.join("acc");
    let run = || into_db(&dir, &url, &["--create"]);
    fs::write(acc.join("acc_1.log"), "").expect("empty log");
    let early = run();
    assert_exit(&early, 0);
    assert!(text(&early.stderr).contains("nothing committed"));
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM pg_class WHERE relname = 'cdr'"
        ),
        0,
        "no table before the first record"
    );
    fs::write(acc.join("acc.columns"), format!("{SEVEN}|src_user\n")).expect("columns");
    append(&dir, &call("c1@h", EPOCH, &["alice"]));
    assert_exit(&run(), 0);
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM cdr WHERE src_user = 'alice'"),
        1
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

fn a_created_table_gets_the_columns_that_appear_later() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("appear");
    let mut db = pg.client("appear");
    let dir = scratch("dbappear");
    let acc = dir.join("acc");
    let run = |extra: &[&str]| into_db(&dir, &url, extra);
    fs::write(acc.join("acc.columns"), format!("{SEVEN}\n")).expect("columns");
    append(&dir, &call("c1@h", EPOCH, &[]));
    assert_exit(&run(&["--create"]), 0);
    // The proxy's config gets an extra: its records, and the names, have one more column.
    fs::write(acc.join("acc.columns"), format!("{SEVEN}|src_user\n")).expect("columns");
    fs::rename(acc.join("acc_1.log"), acc.join("acc_1.log.1")).expect("rotate");
    append(&dir, &call("c2@h", EPOCH + 60, &["carol"]));
    // Without --create the table is not changed: the run says which column is missing.
    let refused = run(&[]);
    assert_exit(&refused, 2);
    assert!(
        text(&refused.stderr).contains("has no column \"src_user\""),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM cdr"),
        1,
        "nothing committed"
    );
    // With --create, the column is added and the run goes on: never stuck.
    let added = run(&["--create"]);
    assert_exit(&added, 0);
    assert!(
        text(&added.stderr).contains("column \"src_user\" added"),
        "{}",
        text(&added.stderr)
    );
    assert_eq!(count(&mut db, "SELECT count(*) FROM cdr"), 2);
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM cdr WHERE src_user = 'carol'"),
        1
    );
    assert_exit(&run(&["--create"]), 0);
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM cdr"),
        2,
        "each CDR once"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

fn load_create_adds_the_columns_that_appear_later() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("load");
    let mut db = pg.client("load");
    let dir = scratch("load");
    let acc = dir.join("acc");
    let load = || {
        flatstore(&[
            "load",
            acc.to_str().unwrap(),
            "acc",
            "--live",
            "--db",
            &url,
            "--source",
            "p",
            "--create",
        ])
    };
    fs::write(acc.join("acc.columns"), format!("{SEVEN}\n")).expect("columns");
    append(&dir, &call("c1@h", EPOCH, &[]));
    assert_exit(&load(), 0);
    fs::write(acc.join("acc.columns"), format!("{SEVEN}|src_user\n")).expect("columns");
    fs::rename(acc.join("acc_1.log"), acc.join("acc_1.log.1")).expect("rotate");
    append(&dir, &call("c2@h", EPOCH + 60, &["carol"]));
    let added = load();
    assert_exit(&added, 0);
    assert!(text(&added.stderr).contains("column \"src_user\" added"));
    assert_eq!(count(&mut db, "SELECT count(*) FROM acc"), 4);
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM acc WHERE src_user = 'carol'"),
        1
    );
    fs::remove_dir_all(&dir).expect("clean up");
}
