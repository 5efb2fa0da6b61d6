//! Insert cost, in one run: flatstore at flush=1 and flush=0 (through the C ABI, as a host
//! calls it) against a raw `write(2)` of the same bytes and against what the C module does
//! (`fprintf` per field, then `fflush` per record at flush=1).
//!
//! `cargo bench --bench insert` prints ns/record (median of interleaved rounds) and the ratios,
//! then the cost of each `fsync` policy and of self-rotation.
//! Environment: `FLATSTORE_BENCH_DIR` (default: the system temp dir), `FLATSTORE_BENCH_RECORDS`.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int};
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use flatstore::Control;
use flatstore::ffi::openser::{
    DB_DATETIME, DB_INT, DB_STR, DbCon, DbVal, DbValUnion, Str, flat_db_close, flat_db_init,
    flat_db_insert, flat_use_table,
};
use flatstore::line::encode::{LineBuf, LineFormat};
use flatstore::line::value::{BadValue, Value};

const ROUNDS: usize = 11;

/// One acc-like record: method, from_tag, to_tag, callid, sip_code, sip_reason, time.
struct Record {
    texts: Vec<CString>,
    code: c_int,
    time: i64,
}

impl Record {
    fn new() -> Record {
        let texts = [
            "INVITE",
            "as5f7a2c1b",
            "1928301774",
            "a84b4c76e66710@pc33.atlanta.example.com",
            "OK",
        ];
        Record {
            texts: texts
                .iter()
                .map(|t| CString::new(*t).expect("no NUL"))
                .collect(),
            code: 200,
            time: 1_700_000_000,
        }
    }

    fn values(&self) -> Vec<DbVal> {
        let text = |i: usize| DbVal {
            type_: DB_STR,
            nul: 0,
            val: DbValUnion {
                str_val: Str {
                    s: self.texts[i].as_ptr() as *mut c_char,
                    len: self.texts[i].as_bytes().len() as c_int,
                },
            },
        };
        vec![
            text(0),
            text(1),
            text(2),
            text(3),
            DbVal {
                type_: DB_INT,
                nul: 0,
                val: DbValUnion { int_val: self.code },
            },
            text(4),
            DbVal {
                type_: DB_DATETIME,
                nul: 0,
                val: DbValUnion {
                    time_val: self.time,
                },
            },
        ]
    }

    fn line(&self) -> Vec<u8> {
        let t = |i: usize| self.texts[i].to_str().expect("ascii");
        format!(
            "{}|{}|{}|{}|{}|{}|{}\n",
            t(0),
            t(1),
            t(2),
            t(3),
            self.code,
            t(4),
            self.time
        )
        .into_bytes()
    }
}

/// `path` opened as a log is, for the raw `write(2)` cases.
fn open_for_append(path: &Path) -> fs::File {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .expect("open")
}

fn raw_write(dir: &Path, record: &Record, n: usize) -> f64 {
    let path = dir.join("raw.log");
    let mut file = open_for_append(&path);
    let line = record.line();
    let start = Instant::now();
    for _ in 0..n {
        let written = file.write(&line).expect("write");
        assert_eq!(written, line.len());
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    fs::remove_file(path).expect("remove");
    ns
}

fn flatstore(dir: &Path, record: &Record, n: usize, flush: &str) -> f64 {
    flatstore_with(dir, record, n, &format!("flush={flush}"))
}

/// Insert `n` records through the C ABI with the URL parameters `query`; every record must be
/// in the files afterwards (live or sealed), which are then removed.
fn flatstore_with(dir: &Path, record: &Record, n: usize, query: &str) -> f64 {
    let url = CString::new(format!("flatstore:{}?{query}", dir.display())).expect("url");
    let table = CString::new("bench").expect("table");
    let values = record.values();
    // SAFETY: valid NUL-terminated strings; values point into `record`, alive for the loop.
    let ns = unsafe {
        let h: *mut DbCon = flat_db_init(url.as_ptr());
        assert!(!h.is_null(), "{query}");
        assert_eq!(flat_use_table(h, table.as_ptr()), 0);
        let start = Instant::now();
        for _ in 0..n {
            flat_db_insert(h, std::ptr::null(), values.as_ptr(), values.len() as c_int);
        }
        flat_db_close(h);
        start.elapsed().as_nanos() as f64 / n as f64
    };
    let mut lines = 0;
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'))
        {
            continue; // the control file
        }
        lines += count_lines(&path);
        fs::remove_file(path).expect("remove");
    }
    assert_eq!(lines, n, "{query}: records in the files");
    ns
}

/// The cost of the durability policies and of self-rotation, each against plain flush=1 or
/// flush=0 in the same round; `fsync=always` at flush=1 runs fewer records (it waits for the
/// disk at every record).
fn durability(dir: &Path, record: &Record, n: usize) {
    let cases: [(&str, &str, usize); 10] = [
        ("flush=1", "flush=1", n),
        (
            "flush=1 fsync=rotate rotate_records=10000",
            "flush=1&fsync=rotate&rotate_records=10000",
            n,
        ),
        ("flush=1 fsync=interval (1 s)", "flush=1&fsync=interval", n),
        ("flush=1 fsync=always", "flush=1&fsync=always", n / 100),
        (
            "flush=1 rotate_records=10000",
            "flush=1&rotate_records=10000",
            n,
        ),
        ("flush=1 rotate_seconds=1", "flush=1&rotate_seconds=1", n),
        ("flush=0", "flush=0", n * 5),
        (
            "flush=0 fsync=interval (1 s)",
            "flush=0&fsync=interval",
            n * 5,
        ),
        ("flush=0 fsync=always", "flush=0&fsync=always", n),
        (
            "flush=0 rotate_records=10000",
            "flush=0&rotate_records=10000",
            n * 5,
        ),
    ];
    let mut samples = vec![Vec::new(); cases.len()];
    for _ in 0..DURABILITY_ROUNDS {
        for (case, samples) in cases.iter().zip(&mut samples) {
            samples.push(flatstore_with(dir, record, case.2, case.1));
        }
    }
    let m: Vec<f64> = samples.into_iter().map(median).collect();
    println!("durability and self-rotation, median of {DURABILITY_ROUNDS} rounds:");
    for ((name, query, _), ns) in cases.iter().zip(&m) {
        let base = if query.starts_with("flush=1") {
            m[0]
        } else {
            m[6]
        };
        println!("  {name:<42} {ns:>11.1} ns/record  {:>8.2}x", ns / base);
    }
}

const DURABILITY_ROUNDS: usize = 3;

fn count_lines(path: &Path) -> usize {
    fs::read(path)
        .expect("read")
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// The C module's write path: stdio, `fprintf` per field and delimiter, `fflush` per record.
fn c_stdio(dir: &Path, record: &Record, n: usize, flush_each: bool) -> f64 {
    let path = dir.join("stdio.log");
    let cpath = CString::new(path.to_str().expect("utf8")).expect("path");
    // SAFETY: plain stdio calls with valid pointers and matching format arguments.
    let ns = unsafe {
        let f = libc::fopen(cpath.as_ptr(), c"a".as_ptr());
        assert!(!f.is_null());
        let t = &record.texts;
        let start = Instant::now();
        for _ in 0..n {
            for (i, text) in t.iter().take(4).enumerate() {
                libc::fprintf(
                    f,
                    c"%.*s".as_ptr(),
                    text.as_bytes().len() as c_int,
                    text.as_ptr(),
                );
                let _ = i;
                libc::fprintf(f, c"%c".as_ptr(), b'|' as c_int);
            }
            libc::fprintf(f, c"%d".as_ptr(), record.code);
            libc::fprintf(f, c"%c".as_ptr(), b'|' as c_int);
            libc::fprintf(
                f,
                c"%.*s".as_ptr(),
                t[4].as_bytes().len() as c_int,
                t[4].as_ptr(),
            );
            libc::fprintf(f, c"%c".as_ptr(), b'|' as c_int);
            libc::fprintf(f, c"%u".as_ptr(), record.time as u32);
            libc::fprintf(f, c"\n".as_ptr());
            if flush_each {
                libc::fflush(f);
            }
        }
        libc::fclose(f);
        start.elapsed().as_nanos() as f64 / n as f64
    };
    assert_eq!(count_lines(&path), n);
    fs::remove_file(path).expect("remove");
    ns
}

/// The record as the library's values (no C conversion).
fn rust_values(record: &Record) -> [Value<'_>; 7] {
    let t = &record.texts;
    [
        Value::Str(t[0].as_bytes()),
        Value::Str(t[1].as_bytes()),
        Value::Str(t[2].as_bytes()),
        Value::Str(t[3].as_bytes()),
        Value::Int(record.code),
        Value::Str(t[4].as_bytes()),
        Value::DateTime(record.time),
    ]
}

/// The floor of `flush=1`: the library's formatter then a raw `write(2)` per record, with no
/// C boundary, no rotation handshake, nothing else around them.
fn format_then_write(dir: &Path, record: &Record, n: usize) -> f64 {
    let path = dir.join("floor.log");
    let mut file = open_for_append(&path);
    let values = rust_values(record);
    let format = LineFormat::default();
    let mut line = LineBuf::new();
    let start = Instant::now();
    for _ in 0..n {
        line.clear();
        let _ = format.encode_record(values.iter().copied().map(Ok::<_, BadValue>), &mut line);
        let written = file.write(line.as_bytes()).expect("write");
        assert_eq!(written, line.as_bytes().len());
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    assert_eq!(count_lines(&path), n);
    fs::remove_file(path).expect("remove");
    ns
}

/// Formatting alone (no I/O, no C conversion): the library's own share of an insert.
fn format_only(record: &Record, n: usize) -> f64 {
    let values = rust_values(record);
    let format = LineFormat::default();
    let mut line = LineBuf::new();
    let start = Instant::now();
    for _ in 0..n {
        line.clear();
        let _ = format.encode_record(values.iter().copied().map(Ok::<_, BadValue>), &mut line);
        std::hint::black_box(line.as_bytes());
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// The rotation machinery on every write when nothing changed: the generation load alone, and
/// the whole handshake (announce in the slot, load, say which file, clear).
fn rotation_checks(dir: &Path, n: usize) -> (f64, f64) {
    let control = Control::open(dir, None).expect("control file");
    let start = Instant::now();
    let mut moved = 0u64;
    for _ in 0..n {
        moved += u64::from(std::hint::black_box(&control).generation() != 7);
    }
    let load = start.elapsed().as_nanos() as f64 / n as f64;
    std::hint::black_box(moved);
    let slot = control.claim_slot().expect("slot");
    let start = Instant::now();
    for _ in 0..n {
        let generation = slot.begin_write();
        slot.writing_to(std::hint::black_box(generation));
        slot.end_write();
    }
    let handshake = start.elapsed().as_nanos() as f64 / n as f64;
    (load, handshake)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let base = std::env::var_os("FLATSTORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let n: usize = std::env::var("FLATSTORE_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let dir = base.join(format!("flatstore-bench-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("bench dir");
    let record = Record::new();
    let line_len = record.line().len();

    let names = [
        "raw write(2), same bytes",
        "flatstore flush=1",
        "C module flush=1 (fprintf+fflush)",
        "flatstore flush=0",
        "C module flush=0 (fprintf)",
        "formatting only (no I/O)",
        "formatting + raw write(2) (the floor)",
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    if let Ok(flush) = std::env::var("FLATSTORE_BENCH_PROFILE") {
        // Only flatstore, for a profiler: `FLATSTORE_BENCH_PROFILE=0 perf record ...`.
        let ns = match flush.as_str() {
            "raw" => raw_write(&dir, &record, n * 5),
            _ => flatstore(&dir, &record, n * 5, &flush),
        };
        fs::remove_dir_all(&dir).expect("remove bench dir");
        println!("flatstore flush={flush}: {ns:.1} ns/record");
        return;
    }
    for _ in 0..ROUNDS {
        samples[0].push(raw_write(&dir, &record, n));
        samples[1].push(flatstore(&dir, &record, n, "1"));
        samples[2].push(c_stdio(&dir, &record, n, true));
        samples[3].push(flatstore(&dir, &record, n * 5, "0"));
        samples[4].push(c_stdio(&dir, &record, n * 5, false));
        samples[5].push(format_only(&record, n * 5));
        samples[6].push(format_then_write(&dir, &record, n));
    }
    let (generation_load, handshake) = rotation_checks(&dir, n * 50);
    // Ratios per round (each pair ran back to back, under the same machine load), then the
    // median: steadier than a ratio of medians on a shared machine.
    let paired = |a: usize, b: usize| {
        median(
            samples[a]
                .iter()
                .zip(&samples[b])
                .map(|(x, y)| x / y)
                .collect(),
        )
    };
    let ratio_flush1_raw = paired(1, 0);
    let ratio_floor_raw = paired(6, 0);
    let ratio_c1_flush1 = paired(2, 1);
    let ratio_c0_flush0 = paired(4, 3);
    let m: Vec<f64> = samples.into_iter().map(median).collect();

    println!(
        "insert of one {line_len}-byte acc record (7 fields), {n} records per round ({}x at flush=0), \
         median of {ROUNDS} interleaved rounds, files in {}",
        5,
        base.display()
    );
    for (name, ns) in names.iter().zip(&m) {
        println!("  {name:<38} {ns:>9.1} ns/record");
    }
    println!("rotation machinery per write, nothing rotated:");
    println!("  generation check (one atomic load)     {generation_load:>9.1} ns");
    println!("  whole --wait handshake (load + 3 stores) {handshake:>7.1} ns");
    println!("ratios (median of the per-round ratios):");
    println!("  flatstore flush=1 / raw write(2)       {ratio_flush1_raw:>6.3}  (target <= 1.15)");
    println!(
        "  formatting + write(2) / raw write(2)   {ratio_floor_raw:>6.3}  (the floor of flush=1)"
    );
    println!("  C module flush=1 / flatstore flush=1   {ratio_c1_flush1:>6.3}");
    println!(
        "  flatstore flush=0                      {:>6.1} ns (target <= 150)",
        m[3]
    );
    println!("  C module flush=0 / flatstore flush=0   {ratio_c0_flush0:>6.3}");
    durability(&dir, &record, n);
    fs::remove_dir_all(&dir).expect("remove bench dir");
}
