//! `flatstore cdr` on OpenSIPS's CDR mode (`do_accounting("db", "cdr|missed")`): one line per
//! answered call in `acc`, its length in `duration` (seconds, rounded up) and `ms_duration`,
//! failed calls in `missed_calls`, the columns named by `acc.columns` (our `header=1`).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-osips-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
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

/// acc's columns with a `do_accounting` context, as `header=1` writes them.
const ACC_COLUMNS: &str = "method|from_tag|to_tag|callid|sip_code|sip_reason|time|setuptime|\
                           created|duration|ms_duration\n";
/// missed_calls' columns: no length on a missed call.
const MISSED_COLUMNS: &str = "method|from_tag|to_tag|callid|sip_code|sip_reason|time|setuptime|\
                              created\n";

#[test]
fn each_cdr_mode_line_is_one_answered_call_and_missed_calls_fail() {
    let dir = scratch_dir("cdr-mode");
    fs::write(dir.join("acc.columns"), ACC_COLUMNS).expect("write");
    fs::write(dir.join("missed_calls.columns"), MISSED_COLUMNS).expect("write");
    // As acc writes them: `time` the answer, `created` the INVITE (both epoch seconds, our
    // DATETIME), `setuptime` their difference, `duration` the length rounded up to seconds.
    fs::write(
        dir.join("acc_5.log.1"),
        "INVITE|a1|b1|c1@opensips|200|OK|1795392000|2|1795391998|66|65001\n\
         INVITE|a2|b2|c2@opensips|200|OK|1795392030|0|1795392030|1|1\n",
    )
    .expect("write");
    fs::write(
        dir.join("acc_6.log.1"),
        "INVITE|a3|b3|c3@opensips|200|OK|1795392010|1|1795392009|2|1500\n",
    )
    .expect("write");
    fs::write(
        dir.join("missed_calls_5.log.1"),
        "INVITE|a4|b4|c4@opensips|486|Busy \\x7C Here|1795392020|1|1795392019\n",
    )
    .expect("write");
    let out = flatstore(&["cdr", dir.to_str().expect("UTF-8 path")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "no problem, no unterminated call");
    let csv = text(&out.stdout);
    let mut lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines.remove(0),
        "callid,from_tag,to_tag,start,end,duration,sip_code,sip_reason,status,setuptime,created",
        "the length columns make the CDR's duration, not extras"
    );
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "c1@opensips,a1,b1,2026-11-23T00:00:00Z,2026-11-23T00:01:05.001Z,65.001,200,OK,\
             answered,2,1795391998",
            "c2@opensips,a2,b2,2026-11-23T00:00:30Z,2026-11-23T00:00:30.001Z,0.001,200,OK,\
             answered,0,1795392030",
            "c3@opensips,a3,b3,2026-11-23T00:00:10Z,2026-11-23T00:00:11.500Z,1.500,200,OK,\
             answered,1,1795392009",
            "c4@opensips,a4,b4,2026-11-23T00:00:20Z,,0,486,Busy | Here,failed,1,1795392019",
        ],
        "{csv}"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn without_ms_duration_the_whole_seconds_are_the_length() {
    let dir = scratch_dir("seconds");
    let file = dir.join("acc_5.log.1");
    fs::write(
        &file,
        "INVITE|a1|b1|c1@opensips|200|OK|1795392000|2|1795391998|66\n",
    )
    .expect("write");
    let out = flatstore(&[
        "cdr",
        file.to_str().expect("UTF-8 path"),
        "--columns",
        "method,from_tag,to_tag,callid,sip_code,sip_reason,time,setuptime,created,duration",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).split("\r\n").nth(1),
        Some(
            "c1@opensips,a1,b1,2026-11-23T00:00:00Z,2026-11-23T00:01:06Z,66,200,OK,answered,2,\
             1795391998"
        )
    );
    fs::remove_dir_all(&dir).expect("clean up");
}
