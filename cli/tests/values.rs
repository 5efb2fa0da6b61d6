//! Values as written, whatever the bytes (issue 23, point 1): the issue's `50%ACME` (no escape
//! the writer produces, kept as it is) and raw bytes that are not UTF-8 (a Latin-1 byte in a
//! header) through `cdr`, `cdr --db`, `load` (a real PostgreSQL, see common/cluster.rs) and
//! `export`. None fails a run or a file; what is not UTF-8 goes to the database as `\xHH` text.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::cluster::{self, Cluster};
use common::{assert_exit, text, trials};

fn main() {
    let db = |name: &str, test: fn()| trials::trial_unless(name, cluster::missing, test);
    trials::run_trials(vec![
        trials::trial(
            "cdr_and_export_keep_values_as_written",
            cdr_and_export_keep_values_as_written,
        ),
        db(
            "cdr_db_loads_every_value_on_every_run",
            cdr_db_loads_every_value_on_every_run,
        ),
        db(
            "load_keeps_values_and_stores_raw_bytes_as_hex_text",
            load_keeps_values_and_stores_raw_bytes_as_hex_text,
        ),
        db(
            "load_sets_aside_records_the_server_refuses",
            load_sets_aside_records_the_server_refuses,
        ),
    ]);
}

/// One cluster for the whole test program; each test has its own database.
fn cluster() -> Option<&'static Cluster> {
    cluster::shared("values")
}

/// The issue's reproduction: a call whose INVITE's extra column holds `50%ACME`.
const ACME: &[u8] = b"INVITE|a|b|c1@h|200|OK|1795392000|50%ACME\nBYE|a|b|c1@h|200|OK|1795392060|\n";
/// A second call whose extra column holds the raw byte 0xAC (Latin-1 `¬`).
const RAW: &[u8] = b"INVITE|a|b|c2@h|200|OK|1795392100|50\xACME\nBYE|a|b|c2@h|200|OK|1795392130|\n";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-values-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn flatstore(args: &[&str]) -> Output {
    common::timeout::output_or_fail(
        Command::new(env!("CARGO_BIN_EXE_flatstore"))
            .args(args)
            .env_remove("PGPASSWORD"),
        &format!("flatstore {}", args.first().unwrap_or(&"")),
        Duration::from_secs(120),
    )
}

/// Appends `bytes` to `file`.
fn append(file: &Path, bytes: &[u8]) {
    use std::io::Write as _;
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(bytes))
        .expect("append");
}

fn cdr_and_export_keep_values_as_written() {
    let dir = scratch("plain");
    append(&dir.join("acc_1.log"), ACME);
    append(&dir.join("acc_1.log"), RAW);
    let d = path_str(&dir);

    let csv = flatstore(&["cdr", d, "--live"]);
    assert_exit(&csv, 0);
    let mut want =
        b"callid,from_tag,to_tag,start,end,duration,sip_code,sip_reason,status,extra8\r\n\
        c1@h,a,b,2026-11-23T00:00:00Z,2026-11-23T00:01:00Z,60,200,OK,answered,50%ACME\r\n"
            .to_vec();
    want.extend_from_slice(
        b"c2@h,a,b,2026-11-23T00:01:40Z,2026-11-23T00:02:10Z,30,200,OK,answered,50\xACME\r\n",
    );
    assert_eq!(text(&csv.stdout), text(&want), "{}", text(&csv.stderr));
    assert_eq!(csv.stdout, want, "the raw byte is written as it is");

    let jsonl = flatstore(&["cdr", d, "--live", "--format", "jsonl"]);
    assert_exit(&jsonl, 0);
    let rows = text(&jsonl.stdout);
    assert!(rows.contains(r#""extra8":"50%ACME"}"#), "{rows}");
    assert!(
        rows.contains(r#""extra8":{"base64":"NTCsTUU="}}"#),
        "{rows}"
    );

    // verify counts the `%` that starts no escape, and finds no problem in it.
    let verify = flatstore(&["verify", "--json", d]);
    assert_exit(&verify, 0);
    assert!(
        text(&verify.stdout).contains("\"undecodable\":1,")
            && text(&verify.stdout).contains("\"problems\":[]"),
        "{}",
        text(&verify.stdout)
    );

    let export = flatstore(&["export", d, "acc", "--live", "--format", "jsonl"]);
    assert_exit(&export, 0);
    assert_eq!(
        text(&export.stdout)
            .lines()
            .map(|l| l.rsplit_once(',').map(|(_, v)| v.to_owned()))
            .collect::<Vec<_>>(),
        [
            Some(r#""50%ACME"]"#.to_owned()),
            Some("\"\"]".to_owned()),
            Some(r#"{"base64":"NTCsTUU="}]"#.to_owned()),
            Some("\"\"]".to_owned()),
        ]
    );
    let csv = flatstore(&["export", d, "acc", "--live", "--format", "csv"]);
    assert_exit(&csv, 0);
    assert!(
        csv.stdout
            .windows(b",50\xACME".len())
            .any(|w| w == b",50\xACME"),
        "{}",
        text(&csv.stdout)
    );
    assert!(text(&csv.stdout).contains(",50%ACME\r\n"));
}

fn cdr_db_loads_every_value_on_every_run() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("cdrvalues");
    let dir = scratch("cdrdb");
    let log = dir.join("acc_1.log");
    append(&log, ACME);
    let d = path_str(&dir);
    let run = || {
        flatstore(&[
            "cdr", d, "--live", "--db", &url, "--source", "p", "--create", "--into", "probe",
        ])
    };
    let extras = || -> Vec<(String, Option<String>)> {
        pg.client("cdrvalues")
            .query("SELECT callid, extra8 FROM probe ORDER BY callid", &[])
            .expect("select")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };

    let first = run();
    assert_exit(&first, 0);
    assert_eq!(text(&first.stdout), "1 CDRs loaded into public.probe\n");
    assert_eq!(text(&first.stderr), "", "nothing to say");
    assert_eq!(extras(), [("c1@h".into(), Some("50%ACME".into()))]);

    // The next run: still fine, and a raw byte is stored as `\xHH` text, said on stderr.
    append(&log, RAW);
    let second = run();
    assert_exit(&second, 0);
    assert_eq!(text(&second.stdout), "1 CDRs loaded into public.probe\n");
    assert!(
        text(&second.stderr)
            .contains("flatstore: public.probe: 1 value was not UTF-8: stored as \\xHH text"),
        "{}",
        text(&second.stderr)
    );
    assert_eq!(
        extras(),
        [
            ("c1@h".into(), Some("50%ACME".into())),
            ("c2@h".into(), Some("50\\xACME".into()))
        ]
    );
    let third = run();
    assert_exit(&third, 0);
    assert_eq!(extras().len(), 2);
}

fn load_keeps_values_and_stores_raw_bytes_as_hex_text() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("loadvalues");
    let dir = scratch("load");
    append(&dir.join("acc_1.log"), ACME);
    let d = path_str(&dir);
    let load = || {
        flatstore(&[
            "load",
            d,
            "acc",
            "--db",
            &url,
            "--live",
            "--create",
            "--source",
            "p",
            "--columns",
            "method,from_tag,to_tag,callid,sip_code,sip_reason,time,extra",
        ])
    };
    let extras = || -> Vec<(String, String, Option<String>)> {
        pg.client("loadvalues")
            .query(
                "SELECT callid, method, extra FROM acc ORDER BY callid, time",
                &[],
            )
            .expect("select")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    };

    let first = load();
    assert_exit(&first, 0);
    assert_eq!(text(&first.stderr), "", "nothing to say");
    assert_eq!(
        extras(),
        [
            ("c1@h".into(), "INVITE".into(), Some("50%ACME".into())),
            ("c1@h".into(), "BYE".into(), None),
        ]
    );

    // A file with raw bytes: loaded whole, each value that is not UTF-8 as `\xHH` text (its
    // `\` as `\x5C`), counted on stderr.
    let raw = dir.join("acc_2.log");
    append(&raw, RAW);
    append(&raw, b"INVITE|a|b|c3@h|200|OK|1795392200|C:\\q\xFF\n");
    let second = load();
    assert_exit(&second, 0);
    assert_eq!(text(&second.stdout), "acc_2.log: 3 records loaded\n");
    assert_eq!(
        text(&second.stderr),
        format!(
            "flatstore: {}: 2 values were not UTF-8: stored as \\xHH text\n",
            raw.display()
        )
    );
    assert_eq!(
        extras(),
        [
            ("c1@h".into(), "INVITE".into(), Some("50%ACME".into())),
            ("c1@h".into(), "BYE".into(), None),
            ("c2@h".into(), "INVITE".into(), Some("50\\xACME".into())),
            ("c2@h".into(), "BYE".into(), None),
            ("c3@h".into(), "INVITE".into(), Some("C:\\x5Cq\\xFF".into())),
        ]
    );
    let third = load();
    assert_exit(&third, 0);
    assert_eq!(text(&third.stdout), "", "nothing new");
    assert_eq!(extras().len(), 5);
}

fn load_sets_aside_records_the_server_refuses() {
    let Some(pg) = cluster() else { return };
    let url = pg.database("refused");
    let dir = scratch("refused");
    let log = dir.join("acc_1.log");
    append(
        &log,
        b"INVITE|a|b|c1@h|200|OK|1795392000\n\
          INVITE|a|b|c2@h|200|OK|not a time\n\
          INVITE|a|b|c3@h|2x0|OK|1795392002\n\
          BYE|a|b|c1@h|200|OK|1795392003\n",
    );
    let d = path_str(&dir);
    let load = || {
        flatstore(&[
            "load",
            d,
            "acc",
            "--db",
            &url,
            "--live",
            "--create",
            "--source",
            "p",
            "--types",
            "sip_code=int",
            "--columns",
            "method,from_tag,to_tag,callid,sip_code,sip_reason,time",
        ])
    };
    let mut db = pg.client("refused");
    // The table's method and callid in time order; the rejects' file, line, record, reason.
    type Rejected = (String, i64, Vec<u8>, String);
    let mut state = || -> (Vec<String>, Vec<Rejected>) {
        let loaded = db
            .query("SELECT method || ' ' || callid FROM acc ORDER BY time", &[])
            .expect("select")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let rejects = db
            .query(
                "SELECT file, line, record, reason FROM flatstore_rejects \
                 WHERE tbl = 'public.acc' AND source = 'p' ORDER BY line",
                &[],
            )
            .expect("select rejects")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        (loaded, rejects)
    };

    let first = load();
    assert_exit(&first, 1);
    assert_eq!(text(&first.stdout), "acc_1.log: 2 records loaded\n");
    let stderr = text(&first.stderr);
    for line in [2, 3] {
        assert!(
            stderr.contains(&format!(
                "{} line {line}: invalid input syntax for type",
                log.display()
            )),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("set aside in flatstore_rejects"),
        "{stderr}"
    );
    let (loaded, rejects) = state();
    assert_eq!(loaded, ["INVITE c1@h", "BYE c1@h"]);
    let rejected: Vec<(String, i64, Vec<u8>)> = rejects
        .iter()
        .map(|(file, line, record, _)| (file.clone(), *line, record.clone()))
        .collect();
    assert_eq!(
        rejected,
        [
            (
                "acc_1.log".to_owned(),
                2,
                b"INVITE|a|b|c2@h|200|OK|not a time".to_vec()
            ),
            (
                "acc_1.log".to_owned(),
                3,
                b"INVITE|a|b|c3@h|2x0|OK|1795392002".to_vec()
            ),
        ]
    );
    assert!(
        rejects[0].3.contains("timestamp with time zone"),
        "{rejects:?}"
    );
    assert!(rejects[1].3.contains("integer"), "{rejects:?}");

    // The next run: nothing again; then what the file grew, its bad line set aside by its
    // number in the file.
    let again = load();
    assert_exit(&again, 0);
    assert_eq!(text(&again.stdout), "");
    append(
        &log,
        b"BYE|a|b|c3@h|200|OK|1795392010\nBYE|a|b|c9@h|200|OK|x\n",
    );
    let grown = load();
    assert_exit(&grown, 1);
    assert_eq!(text(&grown.stdout), "acc_1.log: 1 record loaded\n");
    assert!(
        text(&grown.stderr).contains(&format!("{} line 6: ", log.display())),
        "{}",
        text(&grown.stderr)
    );
    let (loaded, rejects) = state();
    assert_eq!(loaded, ["INVITE c1@h", "BYE c1@h", "BYE c3@h"]);
    assert_eq!(rejects.iter().map(|r| r.1).collect::<Vec<_>>(), [2, 3, 6]);
}
