//! The accounting run against `verify`, in one run on the same sealed files: `flatstore cdr`'s
//! MB/s of content must be at least half of `verify`'s, and its peak resident memory must be
//! bounded by the calls open at once, not by the input size.
//!
//! `cargo bench --bench cdr` writes a day of traffic as 8 writers' sealed files: calls start at
//! a steady rate and last `FLATSTORE_BENCH_HOLD` seconds (default 100), so that about
//! rate × hold calls are open at any moment (default 100,000), each an answered INVITE and its
//! BYE (every third hung up by the callee). It prints MB/s (best of 3), seconds and peak RSS
//! of `verify` and `cdr` over the whole input and over an 8 times smaller one.
//! Environment: `FLATSTORE_BENCH_DIR` (default `/dev/shm`, else the system temp dir),
//! `FLATSTORE_BENCH_RECORDS` (default 10,000,000), `FLATSTORE_BENCH_HOLD`.

use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::{MEASURE, env_or, helper, measure};

const RUNS: usize = 3;
const WRITERS: u64 = 8;
const CALLS_PER_SECOND: u64 = 1000;

/// Write `records` acc records (half INVITEs, half BYEs) of calls held `hold` seconds into
/// `<dir>/<table>_<N>.log.sealed-<stamp>`, one file per writer, each in time order. Returns
/// the content bytes written.
fn write_calls(dir: &Path, table: &str, records: u64, hold: u64) -> u64 {
    let calls = records / 2;
    let mut outs: Vec<BufWriter<File>> = (0..WRITERS)
        .map(|n| {
            let name = format!("{table}_{}.log.sealed-20261123T000000.{n:09}Z", 129 + n);
            BufWriter::with_capacity(1 << 20, File::create(dir.join(name)).expect("create"))
        })
        .collect();
    // Records in time order: the INVITE of call i at i/rate, its BYE `hold` seconds later.
    let start = 1_795_392_000_000u64; // milliseconds
    let time_of = |call: u64, bye: bool| {
        start + call * 1000 / CALLS_PER_SECOND + if bye { hold * 1000 } else { 0 }
    };
    let (mut next_invite, mut next_bye) = (0u64, 0u64);
    let mut total = 0;
    let mut line = String::new();
    while next_bye < calls {
        let bye = next_invite >= calls || time_of(next_bye, true) <= time_of(next_invite, false);
        let call = if bye { next_bye } else { next_invite };
        let ms = time_of(call, bye);
        let (from, to) = (
            format!("{:08x}", call.wrapping_mul(0x9e37_79b9)),
            format!("{call:08x}"),
        );
        let (method, from, to) = match (bye, call % 3) {
            (false, _) => ("INVITE", &from, &to),
            (true, 0) => ("BYE", &to, &from),
            (true, _) => ("BYE", &from, &to),
        };
        line.clear();
        use std::fmt::Write as _;
        let _ = writeln!(
            line,
            "{method}|{from}|{to}|{call:016x}@pc33.atlanta.example.com|200|OK|{}.{:03}",
            ms / 1000,
            ms % 1000
        );
        let writer = (call + u64::from(bye)) % WRITERS;
        outs[writer as usize]
            .write_all(line.as_bytes())
            .expect("write");
        total += line.len() as u64;
        if bye {
            next_bye += 1;
        } else {
            next_invite += 1;
        }
    }
    for out in &mut outs {
        out.flush().expect("flush");
    }
    total
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os(MEASURE).is_some() {
        helper(&args);
        return;
    }
    let records = env_or("FLATSTORE_BENCH_RECORDS", 10_000_000);
    let hold = env_or("FLATSTORE_BENCH_HOLD", 100);
    let dir = common::bench_dir("cdr");
    let d = dir.to_str().expect("utf-8 dir").to_owned();
    let made = Instant::now();
    let large = write_calls(&dir, "acc", records, hold);
    write_calls(&dir, "small", records / 8, hold);
    eprintln!(
        "{d}: {records} records ({} MB) of calls held {hold} s, {} open at once, in {WRITERS} \
         writers' sealed files, and an 8 times smaller table; made in {:.1} s",
        large / 1_000_000,
        CALLS_PER_SECOND * hold,
        made.elapsed().as_secs_f64()
    );
    println!(
        "{:<8} {:>8} {:>9}  {:>16} {:>16}",
        "command", "MB/s", "seconds", "peak RSS small", "peak RSS large"
    );
    let mut rates = Vec::new();
    for command in ["verify", "cdr"] {
        let args = |table: &str| -> Vec<String> {
            let mut args = vec![command.to_owned(), d.clone(), table.to_owned()];
            if command == "cdr" {
                args.extend(["--sealed-only".to_owned(), "--missed=none".to_owned()]);
            }
            args
        };
        let (_, rss_small) = measure(&args("small"));
        let mut best = Duration::MAX;
        let mut rss_large = 0;
        for _ in 0..RUNS {
            let (time, rss) = measure(&args("acc"));
            best = best.min(time);
            rss_large = rss_large.max(rss);
        }
        let rate = large as f64 / 1e6 / best.as_secs_f64();
        rates.push(rate);
        println!(
            "{command:<8} {rate:>8.0} {:>9.3}  {:>16} {:>16}",
            best.as_secs_f64(),
            format!("{rss_small} KiB"),
            format!("{rss_large} KiB"),
        );
    }
    println!("cdr / verify: {:.2} (target >= 0.5)", rates[1] / rates[0]);
    fs::remove_dir_all(&dir).expect("clean up");
}
