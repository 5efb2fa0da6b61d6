//! `flatstore cdr --db` against the two things it does at once: `flatstore cdr --output` (the
//! same run, its CDRs to a file) and `psql -c "\copy … FROM file"` of the very same finished
//! CDRs into the same table, in one run, on the same data (issue 23, point 7). Goal: `cdr --db`
//! at most 1.2 × the slower of the other two.
//!
//! `cargo bench -p flatstore-cli --bench cdr_db` writes `FLATSTORE_BENCH_CALLS` (default
//! 2,000,000) answered calls as 8 writers' sealed files (with `acc.columns`: Kamailio's seven
//! columns and an extra `src_user`), each an INVITE and its BYE 10 to 209 s later (every third
//! hung up by the callee), times with milliseconds. It starts a throwaway cluster (the tests'
//! harness, cli/tests/common/cluster.rs), makes the table with a first `cdr --db --create`
//! run and takes its rows with `psql -c "\copy cdr TO file"`: the COPY text psql loads. Then
//! `FLATSTORE_BENCH_ROUNDS` (default 5) rounds, each running the three in a rotated order, the
//! table and the state emptied before each: the best and the median time of each (with its
//! client's CPU), and the ratio of `cdr --db` to the slower of the other two, of the best
//! times and the median of the rounds' own ratios. It prints the load average before and
//! after. Environment: `FLATSTORE_BENCH_DIR` (default `/dev/shm`, else the system temp dir),
//! `FLATSTORE_BENCH_FLATSTORE` (another build of the command to time, e.g. an earlier
//! commit's, for a before and after).

#[path = "../tests/common/cluster.rs"]
mod cluster;
mod common;
// The library's tests' time limits, of which the cluster uses a few.
#[allow(dead_code)]
#[path = "../../tests/common/timeout.rs"]
mod timeout;

use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cluster::Cluster;
use common::{env_or, load_average, timed};

const WRITERS: u64 = 8;
/// Calls started per second.
const RATE: u64 = 1000;

/// `calls` answered calls as 8 writers' sealed files of table `acc` in `logs`, with
/// `acc.columns`. Returns the bytes of log content.
fn write_calls(logs: &Path, calls: u64) -> u64 {
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
    let start = 1_795_392_000_000u64; // milliseconds
    let invite_at = |call: u64| start + call * 1000 / RATE;
    let bye_at = |call: u64| invite_at(call) + 10_000 + (call * 7919 % 200) * 1000 + call % 1000;
    // BYEs come in the order of their times: a heap of the calls started, by BYE time.
    let mut pending = std::collections::BinaryHeap::new();
    let (mut next, mut total) = (0u64, 0u64);
    let mut line = String::new();
    loop {
        let bye = match pending.peek() {
            Some(&std::cmp::Reverse((at, _))) => next >= calls || at <= invite_at(next),
            None if next < calls => false,
            None => break,
        };
        let (call, ms) = if bye {
            let std::cmp::Reverse((at, call)) = pending.pop().expect("peeked");
            (call, at)
        } else {
            let call = next;
            next += 1;
            pending.push(std::cmp::Reverse((bye_at(call), call)));
            (call, invite_at(call))
        };
        let (from, to) = (
            format!("{:08x}", call.wrapping_mul(0x9e37_79b9)),
            format!("{call:08x}"),
        );
        let (method, from, to) = match (bye, call % 3) {
            (false, _) => ("INVITE", &from, &to),
            (true, 0) => ("BYE", &to, &from),
            (true, _) => ("BYE", &from, &to),
        };
        let user = if bye || call % 5 == 0 { "" } else { "alice" };
        line.clear();
        use std::fmt::Write as _;
        let _ = writeln!(
            line,
            "{method}|{from}|{to}|{call:016x}@pc33.atlanta.example.com|200|OK|{}.{:03}|{user}",
            ms / 1000,
            ms % 1000
        );
        let writer = (call + u64::from(bye)) % WRITERS;
        outs[writer as usize]
            .write_all(line.as_bytes())
            .expect("write");
        total += line.len() as u64;
    }
    for out in &mut outs {
        out.flush().expect("flush");
    }
    total
}

/// Empty the CDR table and the runs' state, so that a `cdr --db` run loads everything again.
fn empty(client: &mut postgres::Client) {
    client
        .batch_execute("TRUNCATE cdr; TRUNCATE flatstore_cdr_state; CHECKPOINT")
        .expect("truncate");
}

fn rows(client: &mut postgres::Client) -> u64 {
    let n: i64 = client
        .query_one("SELECT count(*) FROM cdr", &[])
        .expect("count")
        .get(0);
    n as u64
}

/// The commands timed: the three of the goal, and the SQL way.
const NAMES: [&str; 4] = ["cdr --db", "cdr --output", "psql \\copy", "the SQL way"];

/// The SQL way, modelled: the raw records into a table with `psql \copy` (the files as they
/// are: `|` is the delimiter), then the answered calls paired in one statement (each INVITE
/// with a 2xx joined to the earliest BYE of its Call-ID and unordered tags), tuned: one hash
/// aggregate of the BYEs in memory. (It makes only answered CDRs: every call of the bench is
/// one.)
fn sql_way(logs: &Path, script: &Path) {
    let mut files: Vec<PathBuf> = fs::read_dir(logs)
        .expect("logs")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("acc_"))
        })
        .collect();
    files.sort();
    let mut sql = String::from("SET work_mem = '512MB';\nTRUNCATE acc_raw;\n");
    for file in files {
        sql.push_str(&format!(
            "\\copy acc_raw FROM '{}' WITH (DELIMITER '|')\n",
            file.display()
        ));
    }
    sql.push_str(
        "INSERT INTO cdr (source, callid, from_tag, to_tag, start, \"end\", duration, \
         sip_code, sip_reason, status, src_user) \
         SELECT 'bench', i.callid, i.from_tag, i.to_tag, to_timestamp(i.time), \
         to_timestamp(b.time), b.time - i.time, i.sip_code, i.sip_reason, 'answered', \
         nullif(i.src_user, '') \
         FROM acc_raw i JOIN (SELECT callid, least(from_tag, to_tag) AS t1, \
         greatest(from_tag, to_tag) AS t2, min(time) AS time FROM acc_raw \
         WHERE method = 'BYE' GROUP BY 1, 2, 3) b \
         ON b.callid = i.callid AND b.t1 = least(i.from_tag, i.to_tag) \
         AND b.t2 = greatest(i.from_tag, i.to_tag) \
         WHERE i.method = 'INVITE' AND i.sip_code LIKE '2%';\n",
    );
    fs::write(script, sql).expect("write the SQL way's script");
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
    let calls = env_or("FLATSTORE_BENCH_CALLS", 2_000_000);
    let rounds = env_or("FLATSTORE_BENCH_ROUNDS", 5).max(1) as usize;
    let dir = common::bench_dir("cdr-db");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).expect("create bench dir");
    let (csv, copy) = (dir.join("cdrs.csv"), dir.join("cdrs.copy"));
    let made = Instant::now();
    let bytes = write_calls(&logs, calls);
    eprintln!(
        "{calls} calls ({:.1} MB of logs) made in {:.1} s; load average {}",
        bytes as f64 / 1e6,
        made.elapsed().as_secs_f64(),
        load_average()
    );
    let pg = Cluster::start(&bindir, "cdrbench");
    let url = pg.database("bench");
    let mut client = pg.client("bench");
    let logs_arg = logs.to_str().expect("UTF-8").to_owned();
    let flatstore = std::env::var_os("FLATSTORE_BENCH_FLATSTORE").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_flatstore")),
        PathBuf::from,
    );
    let cdr = |extra: &[&str]| {
        let mut command = Command::new(&flatstore);
        command
            .args(["cdr", &logs_arg, "acc", "--sealed-only", "--missed=none"])
            .args(extra);
        command
    };
    let db = ["--db", &url, "--source", "bench", "--into", "cdr"];
    let socket = pg.socket_dir().to_str().expect("UTF-8").to_owned();
    let port = cluster::PORT.to_string();
    // psql with -c COMMAND or -f FILE.
    let psql_with = |option: &str, what: &std::ffi::OsStr| {
        let mut psql = Command::new(pg.psql());
        psql.args(["-X", "-q", "-h", &socket, "-p", &port, "-U", "postgres"])
            .args(["-d", "bench", "-v", "ON_ERROR_STOP=1", option])
            .arg(what);
        psql
    };
    let psql_c = |command: String| psql_with("-c", command.as_ref());
    // The table, and the finished CDRs' COPY text for psql.
    timed(cdr(&db).arg("--create"));
    let cdrs = rows(&mut client);
    assert!(cdrs >= calls, "{cdrs} CDRs of {calls} calls");
    let state = client
        .query_one(
            "SELECT length(state)::bigint, pg_column_size(state)::bigint FROM flatstore_cdr_state",
            &[],
        )
        .expect("the state row");
    let (state_bytes, stored): (i64, i64) = (state.get(0), state.get(1));
    timed(&mut psql_c(format!("\\copy cdr TO '{}'", copy.display())));
    let copy_bytes = fs::metadata(&copy).expect("copy file").len();
    eprintln!(
        "{cdrs} CDRs, {:.1} MB of COPY text; the state row {:.1} MB ({:.1} MB stored); \
         {rounds} rounds",
        copy_bytes as f64 / 1e6,
        state_bytes as f64 / 1e6,
        stored as f64 / 1e6
    );

    let script = dir.join("sql-way.sql");
    sql_way(&logs, &script);
    client
        .batch_execute(
            "CREATE TABLE acc_raw (method text, from_tag text, to_tag text, callid text, \
             sip_code text, sip_reason text, time numeric, src_user text)",
        )
        .expect("the raw table");

    // times[tool][round]: wall time and client CPU.
    let mut times: [Vec<(Duration, f64)>; 4] = Default::default();
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let mut this = [Duration::ZERO; 4];
        for k in 0..4 {
            let tool = (round + k) % 4;
            empty(&mut client);
            let t = match tool {
                0 => {
                    let t = timed(&mut cdr(&db));
                    assert_eq!(rows(&mut client), cdrs, "cdr --db: every CDR");
                    t
                }
                1 => {
                    let _ = fs::remove_file(&csv);
                    timed(cdr(&[]).arg("--output").arg(&csv))
                }
                2 => {
                    let t = timed(&mut psql_c(format!("\\copy cdr FROM '{}'", copy.display())));
                    assert_eq!(rows(&mut client), cdrs, "psql \\copy: every CDR");
                    t
                }
                _ => {
                    let t = timed(&mut psql_with("-f", script.as_os_str()));
                    assert_eq!(rows(&mut client), cdrs, "the SQL way: every CDR");
                    t
                }
            };
            times[tool].push(t);
            this[tool] = t.0;
        }
        let ratio = this[0].as_secs_f64() / this[1].max(this[2]).as_secs_f64();
        ratios.push(ratio);
        eprintln!(
            "round {}: cdr --db {:.3} s, cdr --output {:.3} s, psql \\copy {:.3} s: {ratio:.2}; \
             the SQL way {:.3} s",
            round + 1,
            this[0].as_secs_f64(),
            this[1].as_secs_f64(),
            this[2].as_secs_f64(),
            this[3].as_secs_f64()
        );
    }
    let csv_rows = fs::read(&csv)
        .expect("csv")
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64
        - 1;
    assert_eq!(csv_rows, cdrs, "cdr --output: the same CDRs");

    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "{calls} calls ({:.1} MB of logs), {cdrs} CDRs ({:.1} MB of COPY text), {rounds} rounds:",
        bytes as f64 / 1e6,
        copy_bytes as f64 / 1e6
    );
    let mut best = [0.0; 4];
    let mut medians = [0.0; 4];
    for tool in 0..4 {
        let (time, cpu) = times[tool]
            .iter()
            .copied()
            .min_by_key(|(time, _)| *time)
            .expect("a round");
        best[tool] = time.as_secs_f64();
        medians[tool] = median(times[tool].iter().map(|(t, _)| t.as_secs_f64()).collect());
        println!(
            "  {:<14} best {:>7.3} s (client {:.2} s CPU), median {:>7.3} s",
            NAMES[tool], best[tool], cpu, medians[tool]
        );
    }
    let sorted = {
        let mut r = ratios.clone();
        r.sort_by(f64::total_cmp);
        r
    };
    println!(
        "  cdr --db / max(cdr --output, psql \\copy): {:.2} of the best times, {:.2} of the \
         medians, {:.2} the median of the rounds' ratios ({:.2} to {:.2}) (goal <= 1.2)",
        best[0] / best[1].max(best[2]),
        medians[0] / medians[1].max(medians[2]),
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1]
    );
    println!(
        "  the SQL way / cdr --db: {:.2} of the best times, {:.2} of the medians",
        best[3] / best[0],
        medians[3] / medians[0]
    );
    println!("  load average after: {}", load_average());
    drop(client);
    drop(pg);
    fs::remove_dir_all(&dir).expect("clean up");
}
