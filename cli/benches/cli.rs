//! Throughput and memory of the `flatstore` command: `cat`, `verify`, `export` (CSV and JSON
//! Lines with ISO times) and `stats` over a table of acc records written in the library's line
//! format, 4 writers, rotated files; `cat` also over gzip files. Output goes to /dev/null.
//!
//! `cargo bench --bench cli` prints, per command, MB/s of content (best of 3 runs) and the
//! peak resident memory of the command on a small and on an 8 times larger table: the two
//! must be about the same (streaming, fixed-size buffers).
//! Environment: `FLATSTORE_BENCH_DIR` (default `/dev/shm`, else the system temp dir),
//! `FLATSTORE_BENCH_MB` (size of the large table, default 512).

use std::fs::{self, File};
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use flatstore::line::encode::{LineBuf, LineFormat};
use flatstore::line::value::{BadValue, Value};

mod common;

use common::{MEASURE, helper, measure};

const RUNS: usize = 3;
const WRITERS: u32 = 4;
/// One command to measure: `before`, the table (none when empty), `after`; `bytes` of content
/// in the table; `small`, the 8 times smaller table for the memory comparison (none: empty).
struct Case {
    label: &'static str,
    before: Vec<String>,
    after: Vec<String>,
    table: &'static str,
    bytes: u64,
    small: &'static str,
}

/// Write `<dir>/<table>_<N>.log.<k>` for N in 5.., k in 1..=2 holding `bytes` of acc records
/// in all, gzip-compressed when `gzip`; returns the content bytes written.
fn write_table(dir: &Path, table: &str, bytes: u64, gzip: bool) -> u64 {
    let format = LineFormat::default();
    let mut line = LineBuf::new();
    let per_file = bytes / u64::from(WRITERS) / 2;
    let mut total = 0;
    let mut seq = 0u64;
    let mut random = 0x9e37_79b9_7f4a_7c15_u64;
    for n in 5..5 + WRITERS {
        for k in 1..=2 {
            let name = format!("{table}_{n}.log.{k}{}", if gzip { ".gz" } else { "" });
            let file = File::create(dir.join(name)).expect("create");
            let mut out: Box<dyn std::io::Write> = if gzip {
                Box::new(GzEncoder::new(file, Compression::fast()))
            } else {
                Box::new(std::io::BufWriter::with_capacity(1 << 20, file))
            };
            let mut written = 0;
            while written < per_file {
                seq += 1;
                // Tags and call ids as random as a proxy's (xorshift64).
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                let from_tag = format!("{:08x}", random >> 32);
                let to_tag = format!("{:08x}", random as u32);
                let call_id = format!("{random:016x}@pc33.atlanta.example.com");
                let reason: &[u8] = if seq.is_multiple_of(16) {
                    b"Busy|Here"
                } else {
                    b"OK"
                };
                let values = [
                    Value::Str(b"INVITE"),
                    Value::Str(from_tag.as_bytes()),
                    Value::Str(to_tag.as_bytes()),
                    Value::Str(call_id.as_bytes()),
                    Value::Int(200),
                    Value::Str(reason),
                    Value::DateTime(1_795_392_000 + (seq / 1000) as i64),
                ];
                line.clear();
                format
                    .encode_record(values.map(Ok::<_, BadValue>), &mut line)
                    .expect("valid record");
                out.write_all(line.as_bytes()).expect("write");
                written += line.as_bytes().len() as u64;
            }
            out.flush().expect("flush");
            total += written;
        }
    }
    total
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os(MEASURE).is_some() {
        helper(&args);
        return;
    }
    let mb: u64 = std::env::var("FLATSTORE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let dir = common::bench_dir("cli");
    let d = dir.to_str().expect("utf-8 dir").to_owned();
    let made = Instant::now();
    let large = write_table(&dir, "acc", mb << 20, false);
    let small = write_table(&dir, "small", (mb << 20) / 8, false);
    let gz = write_table(&dir, "gz", (mb << 20) / 4, true);
    write_table(&dir, "smallgz", (mb << 20) / 32, true);
    eprintln!(
        "{d}: tables acc {} MB, gz {} MB of content ({WRITERS} writers, 2 rotated files \
         each), and 8 times smaller ones; made in {:.1} s",
        large / 1_000_000,
        gz / 1_000_000,
        made.elapsed().as_secs_f64()
    );
    let columns = "--columns=method,from_tag,to_tag,callid,code,reason,time";
    let case = |label, before: &[&str], after: &[&str], table, bytes, small| Case {
        label,
        before: before.iter().map(|a| a.to_string()).collect(),
        after: after.iter().map(|a| a.to_string()).collect(),
        table,
        bytes,
        small,
    };
    let cases = [
        case("cat", &["cat", &d], &[], "acc", large, "small"),
        case("verify", &["verify", &d], &[], "acc", large, "small"),
        case(
            "export csv",
            &["export", &d],
            &["--format=csv"],
            "acc",
            large,
            "small",
        ),
        case(
            "export jsonl --iso-time",
            &["export", &d],
            &["--format=jsonl", columns, "--iso-time=time"],
            "acc",
            large,
            "small",
        ),
        case("cat (gzip)", &["cat", &d], &[], "gz", gz, "smallgz"),
        case(
            "stats (all tables)",
            &["stats", &d],
            &[],
            "",
            large + small + gz,
            "",
        ),
    ];
    println!(
        "{:<24} {:>8} {:>9}  {:>16} {:>16}",
        "command", "MB/s", "seconds", "peak RSS small", "peak RSS large"
    );
    for Case {
        label,
        before,
        after,
        table,
        bytes,
        small: small_table,
    } in cases
    {
        let args = |table: &str| -> Vec<String> {
            let table = (!table.is_empty()).then(|| table.to_owned());
            before
                .iter()
                .cloned()
                .chain(table)
                .chain(after.iter().cloned())
                .collect()
        };
        let rss_small = if small_table.is_empty() {
            "-".into()
        } else {
            format!("{} KiB", measure(&args(small_table)).1)
        };
        let mut best = Duration::MAX;
        let mut rss_large = 0;
        for _ in 0..RUNS {
            let (time, rss) = measure(&args(table));
            best = best.min(time);
            rss_large = rss_large.max(rss);
        }
        println!(
            "{label:<24} {:>8.0} {:>9.3}  {rss_small:>16} {:>16}",
            bytes as f64 / 1e6 / best.as_secs_f64(),
            best.as_secs_f64(),
            format!("{rss_large} KiB"),
        );
    }
    fs::remove_dir_all(&dir).expect("clean up");
}
