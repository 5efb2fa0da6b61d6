//! `flatstore cdr` on what a real Kamailio accounted (issue 14's end-to-end proof).
//!
//! Debian's Kamailio 5.6 runs `examples/kamailio.cfg` (a stateful proxy: record-route, acc on
//! the answered INVITE and on every in-dialog BYE, failed INVITEs into missed_calls through
//! `db_missed_flag` and failure accounting, the usual extras, `time_mode=2` for a `time_hires`
//! column) with acc writing through our module at `header=1`, `flush=1`. SIPp places three kinds of calls,
//! [`CALLS`] each, with a known pause of [`PAUSE_MS`]: the caller hangs up, the callee hangs up
//! (its BYE has the From/To tags swapped), the callee answers 486. The files are renamed and
//! rotated with `kamcmd flatstore.rotate` while the answered calls are up, so every such call
//! has its INVITE and its BYE in different files, and once more after the last call, so that
//! `flatstore cdr`'s default selection (rotated and sealed files, no live file) reads them all;
//! the proxy is then stopped by pid. Last, the CDRs go into a throwaway PostgreSQL with
//! `flatstore cdr --db` (issue 15's CDR path), and `SELECT count(*), sum(duration)` must match
//! the CSV's CDRs (PostgreSQL is required when CI=true, like the tools).

#[path = "../cli/tests/common/cluster.rs"]
mod cluster;
mod common;
// For `cluster`, which finds it beside itself.
use common::sipp::Calls;
use common::timeout;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::kamailio::{COLUMNS, Proxy, our_module, ports, rename_live_files, scratch};

const TOOLS: [&str; 3] = ["kamailio", "sipp", "kamcmd"];

/// Calls of each kind.
const CALLS: u32 = 3;
/// How long an answered call lasts: SIPp's `-d`, the `<pause/>` before the BYE.
const PAUSE_MS: u64 = 2000;
/// SIPp's own bound on a scenario run (`-timeout`, an error when reached), in seconds.
const SIPP_TIMEOUT_S: u64 = 30;
/// What `time_hires` may add to the pause: the relays of the 200, ACK and BYE on 127.0.0.1
/// and SIPp's scheduling, a few ms on an idle host but 140 ms seen on a loaded one; less than
/// SIPp's 500 ms retransmission interval of the BYE (`retrans="500"`), so the accounted BYE is
/// its first transmission.
const HIRES_SLACK: f64 = 0.500;

/// The columns of both tables (`acc.columns`, `missed_calls.columns`, as acc names them:
/// [`COLUMNS`]) for `--columns`, with `time_hires` read as the time and the whole-second `time`
/// an extra, `time_s`: the way to sub-second durations before `cdr` took `time_hires` itself.
const HIRES_COLUMNS: &str = "method,from_tag,to_tag,callid,sip_code,sip_reason,time_s,time,\
                             src_user,src_domain,dst_ouser,src_ip,user_agent";
/// The same columns with `time_hires` named otherwise (`hires`), so that `cdr` reads `time`
/// alone: whole seconds.
const WHOLE_COLUMNS: &str = "method,from_tag,to_tag,callid,sip_code,sip_reason,time,hires,\
                             src_user,src_domain,dst_ouser,src_ip,user_agent";

fn main() {
    common::run_trials(vec![common::trial_needing(
        "cdr_pairs_what_kamailio_accounted",
        &TOOLS,
        cdr_pairs_what_kamailio_accounted,
    )]);
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Rename the live files to `<name>.<suffix>` and make every Kamailio process reopen.
fn rotate(proxy: &Proxy, acc: &Path, suffix: &str) -> usize {
    let renamed = rename_live_files(acc, suffix);
    let rotate = proxy.rpc("flatstore.rotate");
    assert!(
        rotate.status.success(),
        "kamcmd flatstore.rotate: {rotate:?}"
    );
    renamed
}

/// One kind of call: the answering side `uas`, then [`CALLS`] calls from `uac` with Call-IDs
/// `<name>-<n>@cdr.test`, 10 per second; `during` runs `after` the calls were started.
fn run_calls(
    dir: &Path,
    port: u16,
    name: &str,
    (uas, uac): (&str, &str),
    during: Option<(Duration, &dyn Fn())>,
) {
    let scenario = |file: &str| manifest_dir().join("tests/kamailio").join(file);
    Calls {
        dir,
        name,
        domain: "cdr.test",
        uas: scenario(uas),
        uas_port: port + 1,
        uac: scenario(uac),
        uac_port: port + 2,
        proxy_port: port,
        calls: CALLS,
        pause_ms: PAUSE_MS,
        timeout_s: SIPP_TIMEOUT_S,
    }
    .run(during);
}

/// One accounted record, by column name, and the file it is in.
struct Record {
    fields: BTreeMap<String, String>,
    file: String,
}

impl Record {
    fn get(&self, column: &str) -> &str {
        &self.fields[column]
    }
}

/// Every record of `table` in `acc` (its files named `<table>_<N>.log...`), by the sidecar's
/// column names. The values here hold no escaped byte.
fn records(acc: &Path, table: &str) -> Vec<Record> {
    let columns = fs::read_to_string(acc.join(format!("{table}.columns"))).expect("sidecar");
    assert_eq!(columns, format!("{COLUMNS}\n"), "{table}.columns");
    let names: Vec<&str> = COLUMNS.split('|').collect();
    let mut records = Vec::new();
    for (file, path) in common::visible_files(acc) {
        let Some(rest) = file.strip_prefix(&format!("{table}_")) else {
            continue;
        };
        let number = rest.split('.').next().unwrap_or_default();
        if number.parse::<u64>().is_err() {
            continue; // another table whose name starts with this one's
        }
        let text = fs::read_to_string(&path).expect("read log");
        for line in text.lines() {
            let values: Vec<&str> = line.split('|').collect();
            assert_eq!(values.len(), names.len(), "{file}: {line:?}");
            records.push(Record {
                fields: names
                    .iter()
                    .zip(values)
                    .map(|(n, v)| ((*n).to_owned(), v.to_owned()))
                    .collect(),
                file: file.clone(),
            });
        }
    }
    records
}

/// `flatstore cdr <acc> <args>`: it must exit 0 (no problem found in the records); its
/// standard output.
fn cdr(acc: &Path, args: &[&str]) -> String {
    let out = Command::new(common::flatstore_cli())
        .arg("cdr")
        .arg(acc)
        .args(args)
        .output()
        .expect("run flatstore cdr");
    assert!(
        out.status.success(),
        "flatstore cdr {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("CDRs are UTF-8 here")
}

/// The CSV rows of `text` (CRLF line ends, no quoted field here), each by column name, after
/// checking the header.
fn csv_rows(text: &str, extras: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text
        .strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("CSV ends in CRLF: {text:?}"))
        .split("\r\n");
    let header = lines.next().expect("a header line");
    assert_eq!(
        header,
        format!("callid,from_tag,to_tag,start,end,duration,sip_code,sip_reason,status,{extras}")
    );
    let names: Vec<&str> = header.split(',').collect();
    lines
        .map(|line| {
            assert!(!line.contains('"'), "no quoted field expected: {line:?}");
            let values: Vec<&str> = line.split(',').collect();
            assert_eq!(values.len(), names.len(), "{line:?}");
            names
                .iter()
                .zip(values)
                .map(|(n, v)| ((*n).to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// `seconds` (epoch, with its fraction digits if any) as `flatstore cdr` writes a time.
fn iso(seconds: &str) -> String {
    let (whole, fraction) = match seconds.split_once('.') {
        Some((whole, fraction)) => (whole, format!(".{fraction}")),
        None => (seconds, String::new()),
    };
    let at = chrono::DateTime::from_timestamp(whole.parse().expect("epoch seconds"), 0)
        .expect("a time in range");
    format!("{}{fraction}Z", at.format("%Y-%m-%dT%H:%M:%S"))
}

/// The whole proof; see the module's documentation.
fn cdr_pairs_what_kamailio_accounted() {
    let began = Instant::now();
    let dir = scratch("cdr");
    let acc = dir.join("acc");
    let port = ports();
    let proxy = Proxy::start_with(
        &our_module().path.display().to_string(),
        &dir,
        port,
        &format!("flatstore:{}", acc.display()),
        1,
        &[("HEADER", "1")],
    );
    // 0. A cron job before the first call (issue 23's early run): Kamailio is up and has
    //    accounted nothing. The runs commit nothing that would fix a layout before the records
    //    name their columns: no --output (no header), no state, no --create table; the runs
    //    after the calls (3. and 4.) have every column.
    let state = dir.join("cdr.state");
    let output = dir.join("cdr.csv");
    let incremental = [
        "acc",
        "--format",
        "csv",
        "--state",
        state.to_str().expect("path"),
        "--output",
        output.to_str().expect("path"),
    ];
    let pg = match cluster::missing() {
        Err(e) => panic!("{}", e.message().unwrap_or("PostgreSQL required")),
        Ok(Some(why)) => Err(why),
        Ok(None) => {
            let bindir = cluster::bindir().expect("PostgreSQL binaries");
            Ok(cluster::Cluster::start(&bindir, "cdr"))
        }
    };
    let early = |extra: &[&str]| {
        let out = Command::new(common::flatstore_cli())
            .arg("cdr")
            .arg(&acc)
            .arg("--live")
            .args(extra)
            .output()
            .expect("run flatstore cdr");
        assert_ne!(
            out.status.code(),
            Some(2),
            "an early run is no error: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = early(&incremental);
    assert!(
        said.contains("nothing accounted"),
        "the early run says so: {said}"
    );
    assert!(
        !output.exists(),
        "no output, so no header, before the first call"
    );
    assert!(!state.exists(), "no state before the first call");
    if let Ok(pg) = &pg {
        let url = pg.database("cdr");
        early(&["acc", "--db", &url, "--source", "kamailio", "--create"]);
        let tables: i64 = pg
            .client("cdr")
            .query_one("SELECT count(*) FROM pg_class WHERE relname = 'cdr'", &[])
            .expect("look for the table")
            .get(0);
        assert_eq!(tables, 0, "no table before the first call");
    }
    // While the answered calls are up (the INVITEs within 0.3 s of the start, the BYEs after
    // the pause): a rotation, so that every call's INVITE and BYE are in different files.
    let mid_call = Duration::from_millis(PAUSE_MS / 2);
    let renamed = std::cell::Cell::new(0);
    run_calls(
        &dir,
        port,
        "callerbye",
        (
            "cdr_uas_answer_then_wait_bye.xml",
            "cdr_uac_caller_hangs_up.xml",
        ),
        Some((mid_call, &|| renamed.set(rotate(&proxy, &acc, "3")))),
    );
    assert!(renamed.get() > 0, "the INVITEs were accounted by then");
    run_calls(
        &dir,
        port,
        "calleebye",
        ("cdr_uas_hangs_up.xml", "cdr_uac_callee_hangs_up.xml"),
        Some((mid_call, &|| renamed.set(rotate(&proxy, &acc, "2")))),
    );
    assert!(renamed.get() > 0, "the INVITEs were accounted by then");
    run_calls(
        &dir,
        port,
        "busy",
        ("cdr_uas_busy.xml", "cdr_uac_busy.xml"),
        None,
    );
    // After the last call: the rest renamed too, so nothing is left in a live file.
    rotate(&proxy, &acc, "1");
    let status = proxy.stop();
    assert!(status.success(), "kamailio exit status {status}");
    let calls_took = began.elapsed();
    for (name, path) in common::visible_files(&acc) {
        if name.ends_with(".log") {
            assert_eq!(
                common::count_lines(&path),
                0,
                "{name} written after the rotation"
            );
        }
    }

    // What Kamailio accounted: an INVITE and a BYE per answered call, a missed_calls record per
    // 486, nothing else.
    let acc_records = records(&acc, "acc");
    let missed_records = records(&acc, "missed_calls");
    let mut invites = BTreeMap::new();
    let mut byes = BTreeMap::new();
    for record in &acc_records {
        let by_method = match record.get("method") {
            "INVITE" => &mut invites,
            "BYE" => &mut byes,
            other => panic!("acc method {other:?}"),
        };
        let previous = by_method.insert(record.get("callid").to_owned(), record);
        assert!(
            previous.is_none(),
            "{} accounted twice",
            record.get("callid")
        );
    }
    let answered: BTreeSet<String> = ["callerbye", "calleebye"]
        .iter()
        .flat_map(|kind| (1..=CALLS).map(move |n| format!("{kind}-{n}@cdr.test")))
        .collect();
    let busy: BTreeSet<String> = (1..=CALLS).map(|n| format!("busy-{n}@cdr.test")).collect();
    assert_eq!(invites.keys().cloned().collect::<BTreeSet<_>>(), answered);
    assert_eq!(byes.keys().cloned().collect::<BTreeSet<_>>(), answered);
    let missed: BTreeMap<String, &Record> = missed_records
        .iter()
        .map(|r| (r.get("callid").to_owned(), r))
        .collect();
    assert_eq!(missed.keys().cloned().collect::<BTreeSet<_>>(), busy);
    assert_eq!(
        missed_records.len(),
        busy.len(),
        "one missed_calls record per 486"
    );
    let mut straddling = BTreeMap::new();
    for callid in &answered {
        let (invite, bye) = (invites[callid], byes[callid]);
        let tags = |r: &Record| (r.get("from_tag").to_owned(), r.get("to_tag").to_owned());
        let (from, to) = tags(invite);
        assert!(from.starts_with("uac") && to.starts_with("uas"), "{callid}");
        // The callee's BYE has its own tag as the From tag: the case to pair unordered.
        let expected = if callid.starts_with("calleebye") {
            (to, from)
        } else {
            (from, to)
        };
        assert_eq!(tags(bye), expected, "{callid}: the BYE's tags");
        let kind = callid.split('-').next().expect("kind");
        *straddling.entry(kind).or_insert(0) += u32::from(invite.file != bye.file);
    }
    assert!(
        straddling.len() == 2 && straddling.values().all(|n| *n > 0),
        "calls with the INVITE and the BYE in different files, by kind: {straddling:?}"
    );

    // Every record's `time_hires` (acc's time_mode 2 double, printed with %f) is its `time`
    // with six decimals: both are one gettimeofday.
    for record in acc_records.iter().chain(&missed_records) {
        let hires = record.get("time_hires");
        let (whole, fraction) = hires.split_once('.').expect("time_hires has a fraction");
        assert_eq!(
            (whole, fraction.len()),
            (record.get("time"), 6),
            "{}: time_hires {hires}",
            record.get("callid")
        );
    }

    // 1. The sidecar's layout: `time_hires` is acc's finer time, read without a flag:
    //    microsecond durations.
    let extras = "time_hires,src_user,src_domain,dst_ouser,src_ip,user_agent";
    let default_text = cdr(&acc, &["acc", "--format", "csv"]);
    let default = csv_rows(&default_text, extras);
    let pause = PAUSE_MS as f64 / 1000.0;
    let mut seen = BTreeSet::new();
    let mut durations = Vec::new();
    for row in &default {
        let callid = &row["callid"];
        assert!(seen.insert(callid.clone()), "{callid}: more than one CDR");
        if answered.contains(callid) {
            let (invite, bye) = (invites[callid], byes[callid]);
            assert_eq!(row["status"], "answered", "{row:?}");
            assert_eq!(
                row["from_tag"],
                invite.get("from_tag"),
                "caller's tags: {row:?}"
            );
            assert_eq!(
                row["to_tag"],
                invite.get("to_tag"),
                "caller's tags: {row:?}"
            );
            assert_eq!(row["start"], iso(invite.get("time_hires")), "{row:?}");
            assert_eq!(row["end"], iso(bye.get("time_hires")), "{row:?}");
            assert_eq!((&*row["sip_code"], &*row["sip_reason"]), ("200", "OK"));
            let duration: f64 = row["duration"].parse().expect("seconds");
            let accounted = bye.get("time_hires").parse::<f64>().expect("time")
                - invite.get("time_hires").parse::<f64>().expect("time");
            assert!((duration - accounted).abs() < 1e-6, "{row:?}");
            assert!(
                (0.0..HIRES_SLACK).contains(&(duration - pause)),
                "{callid}: {duration} s for a pause of {pause} s"
            );
            durations.push(duration);
            // Extras are the INVITE's (the callee's BYE has src_user bob).
            assert_eq!(row["time_hires"], invite.get("time_hires"), "{row:?}");
            assert_eq!(row["src_user"], "alice", "{row:?}");
        } else if busy.contains(callid) {
            let record = missed[callid];
            assert_eq!(row["status"], "failed", "{row:?}");
            assert_eq!(
                (&*row["sip_code"], &*row["sip_reason"]),
                ("486", "Busy Here")
            );
            assert_eq!(row["from_tag"], record.get("from_tag"), "{row:?}");
            assert_eq!(row["to_tag"], record.get("to_tag"), "{row:?}");
            assert_eq!(row["start"], iso(record.get("time_hires")), "{row:?}");
            assert_eq!((&*row["end"], &*row["duration"]), ("", "0"), "{row:?}");
        } else {
            panic!("a CDR of no call placed: {row:?}");
        }
    }
    assert_eq!(
        seen,
        answered.union(&busy).cloned().collect(),
        "one CDR per call, no other (no unterminated, no unmatched_bye)"
    );
    assert_eq!(durations.len(), answered.len());

    // 2. `--columns` still decides. `time_hires` named otherwise: `time` alone, whole seconds.
    let whole = csv_rows(
        &cdr(
            &acc,
            &["acc", "--format", "csv", "--columns", WHOLE_COLUMNS],
        ),
        "hires,src_user,src_domain,dst_ouser,src_ip,user_agent",
    );
    assert_eq!(whole.len(), answered.len() + busy.len(), "{whole:?}");
    for row in &whole {
        let callid = &row["callid"];
        if busy.contains(callid) {
            assert_eq!((&*row["status"], &*row["sip_code"]), ("failed", "486"));
            // `--columns` names acc's columns; missed_calls keeps its sidecar's.
            assert_eq!(
                row["start"],
                iso(missed[callid].get("time_hires")),
                "{row:?}"
            );
            continue;
        }
        let (invite, bye) = (invites[callid], byes[callid]);
        assert_eq!(row["status"], "answered", "{row:?}");
        assert_eq!(row["start"], iso(invite.get("time")), "{row:?}");
        assert_eq!(row["end"], iso(bye.get("time")), "{row:?}");
        let duration: i64 = row["duration"].parse().expect("whole seconds");
        let accounted: i64 = bye.get("time").parse::<i64>().expect("time")
            - invite.get("time").parse::<i64>().expect("time");
        assert_eq!(duration, accounted, "{row:?}");
        assert!(
            (duration as f64 - pause).abs() <= 1.0,
            "{callid}: {duration} s for a pause of {pause} s"
        );
        assert_eq!(row["hires"], invite.get("time_hires"), "{row:?}");
    }
    // The earlier way, `time_hires` named `time`: the default run's times and durations.
    let hires = csv_rows(
        &cdr(
            &acc,
            &["acc", "--format", "csv", "--columns", HIRES_COLUMNS],
        ),
        "time_s,src_user,src_domain,dst_ouser,src_ip,user_agent",
    );
    assert_eq!(hires.len(), default.len(), "{hires:?}");
    let by_callid: BTreeMap<&str, _> = default.iter().map(|r| (&*r["callid"], r)).collect();
    for row in &hires {
        let by_default = by_callid[&*row["callid"]];
        for column in ["callid", "start", "end", "duration", "status", "src_user"] {
            assert_eq!(row[column], by_default[column], "{row:?}");
        }
        // A failed CDR's extras are missed_calls' columns of those names: it has no time_s.
        let time_s = invites.get(&row["callid"]).map_or("", |r| r.get("time"));
        assert_eq!(row["time_s"], time_s, "{row:?}");
    }

    // 3. Incremental runs (--state, --output). The pairer makes an ended call's CDR only once
    //    the stream has passed both its times (a same-time record in a file read later could
    //    still count), so a run may carry to the next one the calls that ended at the newest
    //    time it saw (here, with time_hires: at most the call whose BYE is the newest acc
    //    record). So: the first run emits a part of the one-shot run's CDRs, each once; a run
    //    with nothing new appends nothing; once a later record arrives, the next run appends
    //    the rest, and the output is then exactly the one-shot run's CDRs.
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
        lines.sort();
        lines
    };
    let one_shot = sorted(&default_text);
    let run = |what: &str| {
        assert_eq!(cdr(&acc, &incremental), "", "{what}: CDRs go to --output");
        let text = fs::read_to_string(&output).expect("read output");
        let lines = sorted(&text);
        let mut unique = lines.clone();
        unique.dedup();
        assert_eq!(unique, lines, "{what}: a CDR twice in the output");
        assert!(
            lines.iter().all(|l| one_shot.binary_search(l).is_ok()),
            "{what}: the output holds a CDR the one-shot run does not:\n{text}"
        );
        text
    };
    let first = run("first run");
    let withheld: Vec<&str> = one_shot
        .iter()
        .filter(|l| !first.contains(l.as_str()))
        .map(|l| l.split(',').next().unwrap_or_default())
        .collect();
    assert_eq!(run("second run"), first, "the second run appended nothing");
    let newest = acc_records
        .iter()
        .map(|r| r.get("time").parse::<u64>().expect("time"))
        .max()
        .expect("records");
    let later = newest + 2;
    fs::write(
        acc.join("acc_999.log.1"),
        format!(
            "OPTIONS|uac0|uas0|later@cdr.test|200|OK|{later}|{later}.000000|alice|caller.test|\
             bob|127.0.0.1|\n"
        ),
    )
    .expect("write a later record");
    let third = run("run after a later record");
    assert!(third.starts_with(&first), "runs only append");
    assert_eq!(
        sorted(&third),
        one_shot,
        "every CDR of the one-shot run, once"
    );
    assert_eq!(run("last run"), third, "the last run appended nothing");

    // 4. Into PostgreSQL: the same CDRs, loaded once (a rerun adds nothing).
    let loaded = match &pg {
        Err(why) => format!("not loaded into PostgreSQL ({why})"),
        Ok(pg) => into_postgresql(pg, &acc, &sorted(&third)),
    };

    eprintln!(
        "cdr: {loaded}; {} answered and {} failed calls in {:.1} s, straddling files {straddling:?}; \
         durations (time_hires) {durations:?}; the first incremental run withheld {withheld:?}",
        answered.len(),
        busy.len(),
        calls_took.as_secs_f64(),
    );
}

/// `flatstore cdr --db` into `pg`'s database `cdr` (the early run made none of its tables),
/// twice: `SELECT count(*), sum(duration)` must be the count and the sum of the durations of
/// `csv` (the CDR rows of the incremental CSV runs, the header among them), the sum computed by
/// the server from the CSV's text, exactly.
fn into_postgresql(pg: &cluster::Cluster, acc: &Path, csv: &[String]) -> String {
    let url = pg.url("cdr");
    let run = |extra: &[&str]| {
        let out = Command::new(common::flatstore_cli())
            .arg("cdr")
            .arg(acc)
            .args(["acc", "--db", &url, "--source", "kamailio"])
            .args(extra)
            .output()
            .expect("run flatstore cdr --db");
        assert!(
            out.status.success(),
            "flatstore cdr --db: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run(&["--create"]);
    let second = run(&[]);
    assert!(
        second.starts_with("0 CDRs"),
        "a rerun adds nothing: {second}"
    );
    let durations: Vec<String> = csv
        .iter()
        .filter(|l| !l.is_empty() && !l.starts_with("callid,"))
        .map(|l| l.split(',').nth(5).expect("a duration column").to_owned())
        .collect();
    let mut client = pg.client("cdr");
    let expected = client
        .query_one(
            "SELECT count(*), sum(nullif(d, '')::numeric)::text FROM unnest($1::text[]) d",
            &[&durations],
        )
        .expect("sum the CSV's durations");
    let got = client
        .query_one("SELECT count(*), sum(duration)::text FROM cdr", &[])
        .expect("count the CDRs");
    let (count, sum): (i64, Option<String>) = (got.get(0), got.get(1));
    let want: (i64, Option<String>) = (expected.get(0), expected.get(1));
    assert_eq!(
        (count, sum.clone()),
        want,
        "count(*), sum(duration) against the CSV"
    );
    assert!(count > 0);
    format!(
        "{} into PostgreSQL, sum(duration) {}",
        first.trim(),
        sum.unwrap_or_default()
    )
}
