//! `flatstore cdr` takes the finest time the records carry without being told: Kamailio's acc
//! with `time_mode` 1 (`time_attr` seconds and `time_exten` microseconds) or 2 (`time_hires`,
//! or `time_attr`, in decimal seconds) beside its whole-second `time`, named in `acc.columns`.
//! `--columns` still decides, and a state carried from whole-second runs pairs with finer BYEs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::timeout::output_or_fail;

const LIMIT: Duration = Duration::from_secs(60);
const ROLES: &str = "method|from_tag|to_tag|callid|sip_code|sip_reason|time";
const HEADER: &str = "callid,from_tag,to_tag,start,end,duration,sip_code,sip_reason,status";

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-finer-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// `flatstore cdr DIR args`: its standard output, exit status 0 required.
fn cdr(dir: &Path, args: &[&str]) -> String {
    let out: Output = output_or_fail(
        Command::new(env!("CARGO_BIN_EXE_flatstore"))
            .arg("cdr")
            .arg(dir)
            .args(args),
        "flatstore cdr",
        LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "cdr {args:?}: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8 CSV")
}

/// A table `table` of `dir` named by `columns` (after the seven roles), with `lines` in one
/// rotated file.
fn table(dir: &Path, table: &str, columns: &str, lines: &[&str]) {
    fs::write(
        dir.join(format!("{table}.columns")),
        format!("{ROLES}|{columns}\n"),
    )
    .expect("sidecar");
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(dir.join(format!("{table}_129.log.1")), text).expect("records");
}

/// The CSV's lines: its header first, then its rows in sorted order (the order CDRs come out
/// in is not what these tests are about).
fn lines(csv: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = csv.split("\r\n").filter(|line| !line.is_empty()).collect();
    if let Some(rows) = lines.get_mut(1..) {
        rows.sort_unstable();
    }
    lines
}

#[test]
fn time_mode_2_time_hires_gives_sub_second_durations_without_flags() {
    let dir = scratch_dir("mode2");
    table(
        &dir,
        "acc",
        "time_hires|src_user",
        &[
            "INVITE|a1|b1|c1|200|OK|1795392000|1795392000.250000|alice",
            "INVITE|a2|b2|c2|200|OK|1795392010|1795392010.900000|carol",
            "BYE|b1|a1|c1|200|OK|1795392065|1795392065.750123|bob",
            // Written without its finer time: the BYE's time is its `time`.
            "BYE|a2|b2|c2|200|OK|1795392020||carol",
        ],
    );
    table(
        &dir,
        "missed_calls",
        "time_hires|src_user",
        &["INVITE|a3|b3|c3|486|Busy Here|1795392030|1795392030.000042|dave"],
    );
    let csv = cdr(&dir, &[]);
    assert_eq!(
        lines(&csv),
        [
            &format!("{HEADER},time_hires,src_user")[..],
            "c1,a1,b1,2026-11-23T00:00:00.250000Z,2026-11-23T00:01:05.750123Z,65.500123,\
             200,OK,answered,1795392000.250000,alice",
            "c2,a2,b2,2026-11-23T00:00:10.900000Z,2026-11-23T00:00:20Z,9.100000,\
             200,OK,answered,1795392010.900000,carol",
            "c3,a3,b3,2026-11-23T00:00:30.000042Z,,0,486,Busy Here,failed,\
             1795392030.000042,dave",
        ]
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn time_mode_1_seconds_and_microseconds_give_sub_second_durations_without_flags() {
    let dir = scratch_dir("mode1");
    table(
        &dir,
        "acc",
        "time_attr|time_exten|src_user",
        &[
            "INVITE|a1|b1|c1|200|OK|1795392000|1795392000|250000|alice",
            "BYE|a1|b1|c1|200|OK|1795392065|1795392065|5123|alice",
        ],
    );
    let csv = cdr(&dir, &[]);
    assert_eq!(
        lines(&csv),
        [
            &format!("{HEADER},time_attr,time_exten,src_user")[..],
            "c1,a1,b1,2026-11-23T00:00:00.250000Z,2026-11-23T00:01:05.005123Z,64.755123,\
             200,OK,answered,1795392000,250000,alice",
        ]
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn dates_in_time_attr_are_no_finer_and_columns_still_decide() {
    // time_mode 3 (local time) or 4 (UTC): dates, no finer than `time`, which is read.
    let dir = scratch_dir("columns");
    table(
        &dir,
        "acc",
        "time_attr",
        &[
            "INVITE|a1|b1|c1|200|OK|1795392000|2026-11-23 01:00:00",
            "BYE|a1|b1|c1|200|OK|1795392065|2026-11-23 01:01:05",
        ],
    );
    let csv = cdr(&dir, &[]);
    assert_eq!(
        lines(&csv)[1],
        "c1,a1,b1,2026-11-23T00:00:00Z,2026-11-23T00:01:05Z,65,200,OK,answered,\
         2026-11-23 01:00:00"
    );

    table(
        &dir,
        "acc",
        "time_hires",
        &[
            "INVITE|a1|b1|c1|200|OK|1795392000|1795392000.250000",
            "BYE|a1|b1|c1|200|OK|1795392065|1795392065.750123",
        ],
    );
    let names = |finer: &str| format!("{},{finer}", ROLES.replace('|', ","));
    // Off: the finer column named otherwise.
    let off = cdr(&dir, &["--columns", &names("hires")]);
    assert_eq!(
        lines(&off),
        [
            &format!("{HEADER},hires")[..],
            "c1,a1,b1,2026-11-23T00:00:00Z,2026-11-23T00:01:05Z,65,200,OK,answered,\
             1795392000.250000",
        ]
    );
    // The earlier way: the finer column named `time`, the seconds column something else.
    let swapped = names("time").replacen(",time,", ",time_s,", 1);
    let on = cdr(&dir, &["--columns", &swapped]);
    assert_eq!(
        lines(&on),
        [
            &format!("{HEADER},time_s")[..],
            "c1,a1,b1,2026-11-23T00:00:00.250000Z,2026-11-23T00:01:05.750123Z,65.500123,\
             200,OK,answered,1795392000",
        ]
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_call_carried_with_a_whole_second_start_ends_at_its_finer_bye() {
    let dir = scratch_dir("state");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).expect("logs");
    let (state, output) = (dir.join("acc.state"), dir.join("cdr.csv"));
    // A state as an earlier version saved it, reading `time` only: c1's INVITE open, started
    // at its whole second.
    fs::write(
        &state,
        "flatstore-cdr-state 1\n\
         newest 2026-11-23T00:00:00Z\n\
         invite c1 a1 b1 2026-11-23T00:00:00Z 200 OK 1795392000.250000 alice\n\
         end\n",
    )
    .expect("state");
    table(
        &logs,
        "acc",
        "time_hires|src_user",
        &["BYE|a1|b1|c1|200|OK|1795392065|1795392065.750123|alice"],
    );
    let run = ["--state", path_str(&state), "--output", path_str(&output)];
    assert_eq!(cdr(&logs, &run), "");
    let written = fs::read_to_string(&output).expect("output");
    assert_eq!(
        lines(&written),
        [
            &format!("{HEADER},time_hires,src_user")[..],
            "c1,a1,b1,2026-11-23T00:00:00Z,2026-11-23T00:01:05.750123Z,65.750123,\
             200,OK,answered,1795392000.250000,alice",
        ]
    );
    let saved = fs::read_to_string(&state).expect("state");
    assert!(
        saved.contains("newest 2026-11-23T00:01:05.750123Z\n"),
        "the finer time carried on: {saved}"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}
