//! `flatstore load` against `psql -c "\copy … FROM file"`, in one run, into the same table
//! layout of a throwaway PostgreSQL cluster (the tests' harness, cli/tests/common/cluster.rs):
//! rows per second of each and their ratio (target: the loader at least 0.9 of psql's).
//!
//! `cargo bench --bench load` writes `FLATSTORE_BENCH_RECORDS` (default 1,000,000) Kamailio acc
//! records as 8 writers' sealed files (with `acc.columns`), and the very same rows in COPY's
//! text format for psql (the `source` column, the time as `2026-11-23 00:00:00+00`). Each
//! tool loads them into an emptied table `acc (source text, method text, …, time
//! timestamptz, src_user text)`, 7 rounds, each tool once per round, alternating which goes
//! first; it prints the best time of each with its client's CPU, the ratio of the best times
//! and the median of the rounds' ratios. psql reads a file the server parses; the loader also
//! reads, decodes and converts the logs and keeps its ledger, one transaction per file. Environment: `FLATSTORE_BENCH_DIR` (default
//! `/dev/shm`, else the system temp dir).

#[path = "../tests/common/cluster.rs"]
mod cluster;
mod common;
// The library's tests' time limits, of which this bench uses a few.
#[allow(dead_code)]
#[path = "../../tests/common/timeout.rs"]
mod timeout;

use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cluster::Cluster;
use common::timed;

const RUNS: usize = 7;
const WRITERS: u64 = 8;
const EPOCH: u64 = 1_795_392_000;
const TABLE: &str = "CREATE TABLE acc (source text NOT NULL, method text, from_tag text, \
    to_tag text, callid text, sip_code text, sip_reason text, time timestamptz, src_user text)";

/// `records` acc records as 8 writers' sealed files in `logs`, and the same rows in COPY text
/// format in `copy`. Returns the bytes of log content.
fn write_inputs(logs: &Path, copy: &Path, records: u64) -> u64 {
    fs::write(
        logs.join("acc.columns"),
        "method|from_tag|to_tag|callid|sip_code|sip_reason|time|src_user\n",
    )
    .expect("sidecar");
    let mut outs: Vec<BufWriter<File>> = (0..WRITERS)
        .map(|n| {
            let name = format!("acc_{}.log.sealed-20261123T000000.{n:09}Z", 129 + n);
            BufWriter::with_capacity(1 << 20, File::create(logs.join(name)).expect("create"))
        })
        .collect();
    let mut rows = BufWriter::with_capacity(1 << 20, File::create(copy).expect("create"));
    let (mut line, mut row) = (String::new(), String::new());
    let mut total = 0;
    // In the order the loader reads them: file by file.
    for n in 0..WRITERS {
        for i in (n..records).step_by(WRITERS as usize) {
            use std::fmt::Write as _;
            let (method, code, reason) = if i % 2 == 0 {
                ("INVITE", "200", "OK")
            } else {
                ("BYE", "200", "OK")
            };
            let secs = EPOCH + i / 100;
            let user = if i % 7 == 0 { "" } else { "alice" };
            line.clear();
            row.clear();
            let (from, to, callid) = (
                format!("{:08x}", i.wrapping_mul(0x9e37_79b9)),
                format!("{i:08x}"),
                format!("{i:016x}@pc33.atlanta.example.com"),
            );
            let _ = writeln!(
                line,
                "{method}|{from}|{to}|{callid}|{code}|{reason}|{secs}|{user}"
            );
            let time = chrono::DateTime::from_timestamp(secs as i64, 0)
                .expect("time")
                .format("%Y-%m-%d %H:%M:%S+00");
            let user = if user.is_empty() { "\\N" } else { user };
            let _ = writeln!(
                row,
                "bench\t{method}\t{from}\t{to}\t{callid}\t{code}\t{reason}\t{time}\t{user}"
            );
            outs[n as usize].write_all(line.as_bytes()).expect("write");
            rows.write_all(row.as_bytes()).expect("write");
            total += line.len() as u64;
        }
    }
    for out in &mut outs {
        out.flush().expect("flush");
    }
    rows.flush().expect("flush");
    total
}

/// Empty the table (and the ledger, so that the loader loads again).
fn empty(client: &mut postgres::Client) {
    client
        .batch_execute("TRUNCATE acc; TRUNCATE flatstore_ledger; CHECKPOINT")
        .expect("truncate");
}

fn rows(client: &mut postgres::Client) -> u64 {
    let n: i64 = client
        .query_one("SELECT count(*) FROM acc", &[])
        .expect("count")
        .get(0);
    n as u64
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(bindir) = cluster::bindir() else {
        eprintln!("SKIPPED: PostgreSQL is not installed (no initdb): nothing measured");
        return;
    };
    let records: u64 = std::env::var("FLATSTORE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = common::bench_dir("load");
    fs::create_dir_all(dir.join("logs")).expect("create bench dir");
    let (logs, copy) = (dir.join("logs"), dir.join("acc.copy"));
    let bytes = write_inputs(&logs, &copy, records);
    let pg = Cluster::start(&bindir, "bench");
    let url = pg.database("bench");
    let mut client = pg.client("bench");
    client.batch_execute(TABLE).expect("create");
    // The ledger, made by a load that selects no file, so that no timed run creates it.
    timed(
        Command::new(env!("CARGO_BIN_EXE_flatstore"))
            .args(["load", logs.to_str().expect("UTF-8"), "acc", "--db", &url])
            .args(["--modified-since", "@4000000000"]),
    );

    let socket = pg.socket_dir().to_str().expect("UTF-8").to_owned();
    let port = cluster::PORT.to_string();
    let (mut ours, mut theirs) = ((Duration::MAX, 0.0), (Duration::MAX, 0.0));
    // Each round's ratio of the two back to back: the machine's load drifts less within one.
    let mut paired = Vec::new();
    let best = |best: &mut (Duration, f64), run: (Duration, f64)| {
        if run.0 < best.0 {
            *best = run;
        }
    };
    for run in 0..RUNS {
        let mut round = [Duration::ZERO; 2];
        // Alternating which goes first, against drift in the machine's load.
        for tool in [run % 2, 1 - run % 2] {
            empty(&mut client);
            if tool == 0 {
                let t = timed(
                    Command::new(env!("CARGO_BIN_EXE_flatstore"))
                        .args(["load", logs.to_str().expect("UTF-8"), "acc", "--db", &url])
                        .args(["--source", "bench"]),
                );
                assert_eq!(rows(&mut client), records, "flatstore load: every row");
                best(&mut ours, t);
                round[0] = t.0;
            } else {
                let t = timed(
                    Command::new(pg.psql())
                        .args(["-X", "-q", "-h", &socket, "-p", &port, "-U", "postgres"])
                        .args(["-d", "bench", "-v", "ON_ERROR_STOP=1", "-c"])
                        .arg(format!("\\copy acc FROM '{}'", copy.display())),
                );
                assert_eq!(rows(&mut client), records, "psql \\copy: every row");
                best(&mut theirs, t);
                round[1] = t.0;
            }
        }
        paired.push(round[1].as_secs_f64() / round[0].as_secs_f64());
    }
    paired.sort_by(f64::total_cmp);
    let rate = |d: Duration| records as f64 / d.as_secs_f64();
    println!(
        "{records} records ({:.1} MB of logs), best of {RUNS} (client CPU of that run):",
        bytes as f64 / 1e6
    );
    println!(
        "  flatstore load       {:>8.3} s  {:>10.0} rows/s  (client {:.2} s CPU)",
        ours.0.as_secs_f64(),
        rate(ours.0),
        ours.1
    );
    println!(
        "  psql \\copy           {:>8.3} s  {:>10.0} rows/s  (client {:.2} s CPU)",
        theirs.0.as_secs_f64(),
        rate(theirs.0),
        theirs.1
    );
    println!(
        "  ratio (load / psql)  {:>8.2}  of the best times; {:.2} the median of {RUNS} rounds \
         ({:.2} to {:.2}) (target >= 0.9)",
        rate(ours.0) / rate(theirs.0),
        paired[RUNS / 2],
        paired[0],
        paired[RUNS - 1]
    );
    drop(client);
    drop(pg);
    fs::remove_dir_all(&dir).expect("clean up");
}
