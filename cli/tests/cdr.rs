//! `flatstore cdr` as an accounting run uses it: CDRs from files spread over writers and
//! rotations, incremental runs that read each file once (renamed and gzipped ones too), and a
//! run killed with SIGKILL at any moment, then run again, leaving every CDR in the output once.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-cdr-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("logs")).expect("create scratch dir");
    dir
}

fn flatstore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flatstore"))
        .args(args)
        .output()
        .expect("run flatstore")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The CSV rows (header left out), as a count of each distinct row.
fn rows(csv: &[u8]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for row in text(csv).split("\r\n").skip(1).filter(|r| !r.is_empty()) {
        *counts.entry(row.to_owned()).or_insert(0) += 1;
    }
    counts
}

/// Kamailio's default acc columns: method, from_tag, to_tag, callid, sip_code, sip_reason, time.
fn record(method: &str, from: &str, to: &str, callid: &str, code: u32, time: &str) -> String {
    let reason = if code == 200 { "OK" } else { "Busy Here" };
    format!("{method}|{from}|{to}|{callid}|{code}|{reason}|{time}\n")
}

#[test]
fn calls_pair_across_files_whatever_side_hangs_up() {
    let dir = scratch_dir("pair");
    let logs = dir.join("logs");
    // Worker 129 saw the INVITEs, worker 130 the BYEs; the callee of c2 hung up (tags swapped);
    // c3 was re-INVITEd before its BYE; c1's BYE was logged twice (a retransmission).
    let a = [
        record("INVITE", "a1", "b1", "c1", 200, "1795392000"),
        record("INVITE", "a2", "b2", "c2", 200, "1795392010.250"),
        record("INVITE", "a3", "b3", "c3", 200, "1795392020"),
        record("INVITE", "a3", "b3", "c3", 200, "1795392050"),
    ];
    let b = [
        record("BYE", "a1", "b1", "c1", 200, "1795392060"),
        record("BYE", "b2", "a2", "c2", 200, "1795392100.750"),
        record("BYE", "a1", "b1", "c1", 200, "1795392061"),
        record("BYE", "a3", "b3", "c3", 200, "2026-11-23 00:40:30"),
        record("OPTIONS", "x", "y", "c9", 200, "1795392200"),
    ];
    fs::write(logs.join("acc_129.log.1"), a.concat()).expect("write");
    fs::write(logs.join("acc_130.log.1"), b.concat()).expect("write");
    let out = flatstore(&["cdr", path_str(&logs)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "c1's second BYE is no problem: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("1 extra BYE of calls"),
        "{}",
        text(&out.stderr)
    );
    let got = rows(&out.stdout);
    let want = [
        "c1,a1,b1,2026-11-23T00:00:00Z,2026-11-23T00:01:00Z,60,200,OK,answered",
        "c2,a2,b2,2026-11-23T00:00:10.250Z,2026-11-23T00:01:40.750Z,90.500,200,OK,answered",
        "c3,a3,b3,2026-11-23T00:00:20Z,2026-11-23T00:40:30Z,2410,200,OK,answered",
    ];
    assert_eq!(
        got,
        want.iter().map(|r| (r.to_string(), 1)).collect(),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).starts_with(
            "callid,from_tag,to_tag,start,end,duration,sip_code,sip_reason,status\r\n"
        )
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn crossed_byes_make_one_cdr_a_summary_line_and_exit_0() {
    let dir = scratch_dir("crossed");
    let logs = dir.join("logs");
    // Both parties of c1 hung up at once: the caller's BYE went through worker 129, the
    // callee's (tags swapped) through worker 130, a few milliseconds apart.
    fs::write(
        logs.join("acc_129.log.1"),
        [
            record("INVITE", "a1", "b1", "c1", 200, "1795392000"),
            record("BYE", "a1", "b1", "c1", 200, "1795392060.004"),
        ]
        .concat(),
    )
    .expect("write");
    fs::write(
        logs.join("acc_130.log.1"),
        record("BYE", "b1", "a1", "c1", 200, "1795392060.001"),
    )
    .expect("write");
    let out = flatstore(&["cdr", path_str(&logs)]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("1 extra BYE of calls"), "{stderr}");
    assert!(!stderr.contains("duplicate"), "{stderr}");
    assert_eq!(
        rows(&out.stdout),
        [(
            "c1,a1,b1,2026-11-23T00:00:00Z,2026-11-23T00:01:00.001Z,60.001,200,OK,answered"
                .to_owned(),
            1
        )]
        .into(),
        "one CDR, ended by the earliest BYE: {}",
        text(&out.stdout)
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn live_files_left_out_are_named_with_the_flag_to_read_them() {
    let dir = scratch_dir("live");
    let logs = dir.join("logs");
    let call = [
        record("INVITE", "a1", "b1", "c1", 200, "1795392000"),
        record("BYE", "a1", "b1", "c1", 200, "1795392060"),
    ]
    .concat();
    fs::write(logs.join("acc_129.log"), &call).expect("write");
    fs::write(logs.join("acc_130.log"), "").expect("write");
    let out = flatstore(&["cdr", path_str(&logs)]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("2 live files of table \"acc\" not read: acc_129.log, acc_130.log")
            && stderr.contains("give --live to read them"),
        "{stderr}"
    );
    assert!(rows(&out.stdout).is_empty(), "{}", text(&out.stdout));
    let out = flatstore(&["cdr", path_str(&logs), "--live"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("not read"), "{stderr}");
    assert_eq!(rows(&out.stdout).len(), 1, "{}", text(&out.stdout));
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_table_without_files_exits_1_as_cat_export_and_verify() {
    let dir = scratch_dir("empty");
    let logs = dir.join("logs");
    for command in [&["cat"][..], &["export", "--format", "csv"], &["verify"]] {
        let out = flatstore(&[command, &[path_str(&logs), "acc"]].concat());
        assert_eq!(
            out.status.code(),
            Some(1),
            "{command:?}: {}",
            text(&out.stderr)
        );
    }
    let state = dir.join("state");
    let output = dir.join("cdrs.csv");
    let out = flatstore(&[
        "cdr",
        path_str(&logs),
        "--state",
        path_str(&state),
        "--output",
        path_str(&output),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no file of table \"acc\""), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        !output.exists(),
        "nothing written, no header fixing a layout"
    );
    // With the sidecar the table exists, empty: a clean run.
    fs::write(
        logs.join("acc.columns"),
        "method|from_tag|to_tag|callid|sip_code|sip_reason|time\n",
    )
    .expect("sidecar");
    let out = flatstore(&["cdr", path_str(&logs)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_record_that_cannot_be_accounted_is_named_by_file_line_and_call_id() {
    let dir = scratch_dir("named");
    let logs = dir.join("logs");
    let acc = [
        record("INVITE", "a1", "b1", "c1", 200, "1795392000"),
        record("INVITE", "a2", "b2", "c2@host", 200, "yesterday"),
        "INVITE|a3|b3|c3|2xx|OK|1795392001\n".to_owned(),
        record("BYE", "a1", "b1", "c1", 200, "1795392060"),
    ];
    fs::write(logs.join("acc_129.log.1"), acc.concat()).expect("write");
    let out = flatstore(&["cdr", path_str(&logs)]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let file = logs.join("acc_129.log.1");
    for want in [
        format!(
            "{} line 2 (Call-ID \"c2@host\"): time \"yesterday\"",
            file.display()
        ),
        format!(
            "{} line 3 (Call-ID \"c3\"): INVITE with status code \"2xx\"",
            file.display()
        ),
    ] {
        assert!(stderr.contains(&want), "{want}\n{stderr}");
    }
    assert_eq!(rows(&out.stdout).len(), 1, "c1 is accounted");
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn failed_calls_lone_sides_and_unreadable_times_nothing_vanishes() {
    let dir = scratch_dir("lone");
    let logs = dir.join("logs");
    fs::write(
        logs.join("acc.columns"),
        "method|from_tag|to_tag|callid|sip_code|sip_reason|time|src_user\n",
    )
    .expect("sidecar");
    let acc = [
        "INVITE|a1|b1|c1|200|OK|1795392000|alice\n",
        "BYE|a2|b2|c2|200|OK|1795392005|bob\n",
        "INVITE|a3|b3|c3|200|OK|yesterday|carol\n",
        "INVITE|a4|b4|c4|200|OK|1795392009|dave\n",
        "BYE|a4|b4|c4|200|OK|1795392019|dave\n",
    ];
    fs::write(logs.join("acc_129.log.1"), acc.concat()).expect("write");
    fs::write(
        logs.join("missed_calls.columns"),
        "method|from_tag|to_tag|callid|sip_code|sip_reason|time|src_user\n",
    )
    .expect("sidecar");
    fs::write(
        logs.join("missed_calls_130.log.1"),
        "INVITE|a5|b5|c5|486|Busy Here|1795392003|erin\n",
    )
    .expect("write");
    let out = flatstore(&["cdr", path_str(&logs), "--format", "jsonl"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the unreadable time: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("line 3"),
        "{}",
        text(&out.stderr)
    );
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    let status_of = |callid: &str| {
        lines
            .iter()
            .find(|l| l.contains(&format!("\"callid\":\"{callid}\"")))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        status_of("c1").contains("\"status\":\"unterminated\"")
            && status_of("c1").contains("\"src_user\":\"alice\""),
        "{lines:?}"
    );
    assert!(
        status_of("c2").contains("\"status\":\"unmatched_bye\"")
            && status_of("c2").contains("\"start\":null"),
        "{lines:?}"
    );
    assert!(
        status_of("c4").contains("\"duration\":10,")
            && status_of("c4").contains("\"status\":\"answered\""),
        "{lines:?}"
    );
    assert!(
        status_of("c5").contains("\"status\":\"failed\"")
            && status_of("c5").contains("\"sip_code\":\"486\"")
            && status_of("c5").contains("\"src_user\":\"erin\""),
        "{lines:?}"
    );
    assert_eq!(
        status_of("c3"),
        "",
        "a record whose time cannot be read is skipped, never guessed"
    );
    assert_eq!(lines.len(), 4);
    fs::remove_dir_all(&dir).expect("clean up");
}

/// Files given one by one (a shell glob over both tables) and standard input make the same
/// CDRs as the directory; `--state` works with files, not with `-`; `--since`/`--until` hand
/// the pairing only the records of the window.
#[test]
fn files_standard_input_and_record_times() {
    let dir = scratch_dir("files");
    let logs = dir.join("logs");
    let invites = [
        record("INVITE", "a1", "b1", "c1", 200, "1795392000"),
        record("INVITE", "a2", "b2", "c2", 200, "1795392010"),
    ]
    .concat();
    let byes = [
        record("BYE", "a1", "b1", "c1", 200, "1795392060"),
        record("BYE", "b2", "a2", "c2", 200, "1795392130"),
    ]
    .concat();
    let missed = record("INVITE", "a3", "b3", "c3", 486, "1795392020");
    fs::write(logs.join("acc_129.log.1"), &invites).expect("write");
    fs::write(logs.join("acc_130.log.1"), &byes).expect("write");
    fs::write(logs.join("missed_calls_131.log.1"), &missed).expect("write");
    let all = [
        "c1,a1,b1,2026-11-23T00:00:00Z,2026-11-23T00:01:00Z,60,200,OK,answered",
        "c2,a2,b2,2026-11-23T00:00:10Z,2026-11-23T00:02:10Z,120,200,OK,answered",
        "c3,a3,b3,2026-11-23T00:00:20Z,,0,486,Busy Here,failed",
    ];
    let want = |rows: &[&str]| -> BTreeMap<String, usize> {
        rows.iter().map(|r| (r.to_string(), 1)).collect()
    };
    let ok = |out: Output| {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        rows(&out.stdout)
    };
    let glob: Vec<PathBuf> = ["acc_129.log.1", "acc_130.log.1", "missed_calls_131.log.1"]
        .iter()
        .map(|name| logs.join(name))
        .collect();
    let glob: Vec<&str> = glob.iter().map(|p| path_str(p)).collect();
    assert_eq!(ok(flatstore(&["cdr", path_str(&logs)])), want(&all));
    assert_eq!(ok(flatstore(&[&["cdr"][..], &glob].concat())), want(&all));
    // One stream on standard input: no missed-calls file, so the 486 INVITE is the failed call.
    let stream = [invites.clone(), missed.clone(), byes.clone()].concat();
    assert_eq!(
        ok(common::flatstore_stdin(&["cdr", "-"], stream.as_bytes())),
        want(&all)
    );

    // The window holds the two INVITEs, neither BYE nor the missed call: two calls that
    // never ended, as far as this window shows.
    let out = flatstore(&[
        "cdr",
        path_str(&logs),
        "--since",
        "2026-11-23T00:00:00Z",
        "--until",
        "@1795392015",
    ]);
    assert_eq!(
        ok(out),
        want(&[
            "c1,a1,b1,2026-11-23T00:00:00Z,,,200,OK,unterminated",
            "c2,a2,b2,2026-11-23T00:00:10Z,,,200,OK,unterminated"
        ])
    );
    // From 00:00:05 on: c1's INVITE is outside, its BYE is unmatched.
    let out = flatstore(&[&["cdr", "--since", "@1795392005"][..], &glob].concat());
    assert_eq!(
        ok(out),
        want(&[
            "c1,a1,b1,,2026-11-23T00:01:00Z,,,,unmatched_bye",
            all[1],
            all[2]
        ])
    );

    // Incremental runs over files given one by one: known by content.
    let (state, output) = (dir.join("acc.state"), dir.join("cdr.csv"));
    let incremental = |files: &[&str]| {
        let out = flatstore(
            &[
                &[
                    "cdr",
                    "--state",
                    path_str(&state),
                    "--output",
                    path_str(&output),
                ][..],
                files,
            ]
            .concat(),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        rows(&fs::read(&output).expect("output"))
    };
    assert_eq!(
        incremental(&glob[..2]),
        want(&all[..2]),
        "both calls ended in the run: a --state run emits them (settle_to)"
    );
    let later = logs.join("acc_129.log");
    fs::write(&later, record("OPTIONS", "x", "y", "c9", 200, "1795392200")).expect("write");
    let gz = common::gzip(&logs.join("acc_130.log.1"));
    assert_eq!(
        incremental(&[glob[0], path_str(&gz), path_str(&later)]),
        want(&all[..2]),
        "the gzipped file is not read again"
    );

    // Refused: --state with standard input, --state with a window.
    for (args, says) in [
        (
            &["cdr", "-", "--state", "s", "--output", "o"][..],
            "standard input",
        ),
        (
            &[
                "cdr",
                path_str(&logs),
                "--state",
                "s",
                "--output",
                "o",
                "--until",
                "2026-11-24",
            ],
            "--since/--until",
        ),
        (&["cdr", glob[0], "--sealed-only"], "--sealed-only"),
        (
            &["cdr", glob[0], "/nonexistent/acc_1.log.1"],
            "/nonexistent/acc_1.log.1: No such file or directory",
        ),
    ] {
        let out = common::flatstore_stdin(args, stream.as_bytes());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing accounted");
    }
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn incremental_runs_read_each_file_once_renamed_gzipped_or_grown() {
    let dir = scratch_dir("incremental");
    let logs = dir.join("logs");
    let (state, output) = (dir.join("acc.state"), dir.join("cdr.csv"));
    let run = || {
        let out = flatstore(&[
            "cdr",
            path_str(&logs),
            "--live",
            "--state",
            path_str(&state),
            "--output",
            path_str(&output),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        rows(&fs::read(&output).expect("output"))
    };
    let live = logs.join("acc_129.log");
    fs::write(&live, record("INVITE", "a1", "b1", "c1", 200, "1795392000")).expect("write");
    assert!(run().is_empty(), "an open call is carried, not emitted");
    // The live file grows: only the new line is read.
    let mut grown = fs::read(&live).expect("read");
    grown.extend_from_slice(record("BYE", "a1", "b1", "c1", 200, "1795392030").as_bytes());
    fs::write(&live, &grown).expect("grow");
    assert_eq!(
        run(),
        [(
            "c1,a1,b1,2026-11-23T00:00:00Z,2026-11-23T00:00:30Z,30,200,OK,answered".to_owned(),
            1
        )]
        .into(),
        "a call that ended in a run is emitted by it"
    );
    // logrotate renames and compresses it; the next file brings a later record.
    let rotated = logs.join("acc_129.log.1");
    fs::rename(&live, &rotated).expect("rotate");
    common::gzip(&rotated);
    fs::write(&live, record("INVITE", "a2", "b2", "c2", 200, "1795392040")).expect("write");
    let after = run();
    assert_eq!(
        after,
        [(
            "c1,a1,b1,2026-11-23T00:00:00Z,2026-11-23T00:00:30Z,30,200,OK,answered".to_owned(),
            1
        )]
        .into()
    );
    assert_eq!(run(), after, "nothing new, nothing appended");
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn state_needs_an_output_and_a_foreign_output_is_never_cut() {
    let dir = scratch_dir("usage");
    let logs = dir.join("logs");
    fs::write(
        logs.join("acc_1.log.1"),
        record("INVITE", "a", "b", "c", 200, "1795392000"),
    )
    .expect("write");
    let out = flatstore(&["cdr", path_str(&logs), "--state", path_str(&dir.join("s"))]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let foreign = dir.join("billing.csv");
    fs::write(&foreign, "someone's data\n").expect("plant");
    let out = flatstore(&[
        "cdr",
        path_str(&logs),
        "--state",
        path_str(&dir.join("s")),
        "--output",
        path_str(&foreign),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(fs::read(&foreign).expect("read"), b"someone's data\n");
    fs::remove_dir_all(&dir).expect("clean up");
}

/// `calls` calls starting at second `from`, INVITEs and BYEs spread over 4 writers' files.
fn write_batch(logs: &Path, batch: usize, calls: usize, from: u64) {
    let mut files: Vec<String> = vec![String::new(); 4];
    for i in 0..calls {
        let start = from + i as u64;
        let callid = format!("b{batch}-c{i}@proxy");
        let (from_tag, to_tag) = (format!("f{i}"), format!("t{i}"));
        files[i % 4].push_str(&record(
            "INVITE",
            &from_tag,
            &to_tag,
            &callid,
            200,
            &start.to_string(),
        ));
        let bye = if i % 3 == 0 {
            record(
                "BYE",
                &to_tag,
                &from_tag,
                &callid,
                200,
                &(start + 30).to_string(),
            )
        } else {
            record(
                "BYE",
                &from_tag,
                &to_tag,
                &callid,
                200,
                &(start + 30).to_string(),
            )
        };
        files[(i + 1) % 4].push_str(&bye);
    }
    // Each writer's file in time order, as a writer appends.
    for (n, content) in files.iter().enumerate() {
        let mut lines: Vec<&str> = content.lines().collect();
        lines.sort_by_key(|l| l.rsplit('|').next().and_then(|t| t.parse::<u64>().ok()));
        let mut sorted = lines.join("\n");
        sorted.push('\n');
        fs::write(logs.join(format!("acc_{}.log.{batch}", 129 + n)), sorted).expect("write batch");
    }
}

#[test]
fn runs_killed_at_any_moment_then_run_again_leave_every_cdr_once() {
    let dir = scratch_dir("kill");
    let logs = dir.join("logs");
    let (state, output) = (dir.join("acc.state"), dir.join("cdr.csv"));
    let args = [
        "cdr",
        path_str(&logs),
        "--state",
        path_str(&state),
        "--output",
        path_str(&output),
    ];
    let mut moments = common::Lcg(0x5eed);
    let mut kills = 0;
    for batch in 1..=3 {
        write_batch(&logs, batch, 6000, 1_795_392_000 + batch as u64 * 100_000);
        // How long a whole run takes here, to kill the next ones anywhere in it.
        let started = Instant::now();
        let mut probe = Command::new(env!("CARGO_BIN_EXE_flatstore"));
        let whole = probe
            .args(["cdr", path_str(&logs)])
            .stdout(Stdio::null())
            .status()
            .expect("run");
        assert!(whole.success());
        let span = started.elapsed().as_micros() as u64;
        // An incremental run reads only the new batch: kill in the first half of a whole run.
        for _ in 0..6 {
            let moment = Duration::from_micros(moments.below(span / 2));
            kills += usize::from(common::kill_after(&args, moment));
        }
        let out = flatstore(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    // A later record settles the last calls; then every call has its CDR, once.
    fs::write(
        logs.join("acc_129.log"),
        record("OPTIONS", "x", "y", "z", 200, "1795800000"),
    )
    .expect("write");
    let out = flatstore(&[&args[..], &["--live"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let journal = rows(&fs::read(&output).expect("output"));
    let once = flatstore(&["cdr", path_str(&logs), "--live"]);
    let expected = rows(&once.stdout);
    assert_eq!(expected.len(), 18_000, "every call of the three batches");
    assert!(expected.keys().all(|r| r.ends_with(",answered")));
    assert_eq!(
        journal, expected,
        "each CDR exactly once across the killed and completed runs"
    );
    assert!(
        kills >= 6,
        "only {kills} runs were killed before they ended"
    );
    assert_eq!(
        text(&fs::read(&output).expect("output"))
            .matches("callid,from_tag")
            .count(),
        1,
        "one header"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// A thread of the run that panics (a fault injected in a debug build) ends the run with exit
/// status 2 and a message naming the thread, within a bound, and commits nothing.
#[cfg(debug_assertions)]
#[test]
fn a_panicking_reading_or_pairing_thread_is_an_error_never_a_hang() {
    let dir = scratch_dir("panic");
    let logs = dir.join("logs");
    let calls: Vec<String> = (0..3000)
        .flat_map(|i| {
            let (start, end) = (1_795_392_000 + i, 1_795_392_001 + i);
            [
                record(
                    "INVITE",
                    "a",
                    "b",
                    &format!("c{i}"),
                    200,
                    &start.to_string(),
                ),
                record("BYE", "a", "b", &format!("c{i}"), 200, &end.to_string()),
            ]
        })
        .collect();
    fs::write(logs.join("acc_129.log.1"), calls.concat()).expect("write");
    let output = dir.join("cdr.csv");
    for thread in ["reading", "pairing"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flatstore"))
            .args(["cdr", path_str(&logs), "--output", path_str(&output)])
            .env("FLATSTORE_FAULT_INJECTION", thread)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flatstore");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the run hung after its {thread} thread panicked (killed after 60 s)");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
            .expect("read stderr");
        assert_eq!(status.code(), Some(2), "{thread}: {stderr}");
        assert!(
            stderr.contains(&format!("the {thread} thread failed")),
            "{thread}: {stderr}"
        );
        assert!(!output.exists(), "{thread}: nothing is committed");
    }
    fs::remove_dir_all(&dir).expect("clean up");
}
