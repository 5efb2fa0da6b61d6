//! Per-insert latency while sealing, syncing and rotation run beside the writer (issue 16,
//! point 2: no SIP worker waits on the disk).
//!
//! `cargo bench --bench latency` runs, on tmpfs (`/dev/shm`) and on the disk (`/var/tmp`),
//! at `flush=1` and at `flush=0`, one writer inserting acc-like records (7 fields) through the
//! C ABI, as a host calls it, with
//! `rotate_seconds=0.05&fsync=interval&fsync_interval=0.1` while a second thread rotates the
//! directory as logrotate does every 100 ms: it renames every live `<table>_<N>.log` to
//! `<table>_<N>.log-rot<k>` (a dated name to the listing), then moves the rotation generation
//! as `flatstore rotate` does. The helper thread syncs every 100 ms and seals a file 50 ms
//! after its first record, with the syncs a seal takes at `fsync=interval` (the file, then
//! the directory). The age limit is half the rotation period because each rotation starts a new
//! file: at 100 ms, no file would ever grow old enough to be sealed. So a file lives about
//! 50 ms to its seal, the next up to the next rotation: about one seal, one sync and one
//! rotation every 100 ms. At `flush=0`, `flush_interval` keeps its default (1 s); the writer's
//! 64 KiB buffer fills every 15 ms or so.
//!
//! What is timed: one `flat_db_insert` call, `Instant::now()` before and after it (the two
//! clock reads, some 20–50 ns, are included). The table is selected once; the first
//! [`WARMUP`] inserts (which open the file and start the helper thread) are not timed. Every
//! record carries its sequence number in its time field; afterwards every file of the
//! directory is read and each record must be there exactly once, or the bench panics.
//!
//! The writer is paced, not flat out: on this 2-core machine a writer spinning on one core
//! leaves the helper thread, the rotating thread and every neighbour one core, and the
//! percentiles would measure CPU starvation. It inserts back to back while it is behind its
//! schedule of `FLATSTORE_BENCH_RATE` inserts per second (default 50,000) or less than 1 ms
//! ahead of it, and sleeps while it is further ahead: bursts of about 50 inserts each
//! millisecond. A slow insert is then waiting (on a lock, on the disk, on a preempted helper),
//! not queueing behind the inserts before it.
//!
//! After the timed inserts, `fork()` is timed ([`FORKS`] times, one every 250 inserts, the
//! inserts going on untimed): the fork gate makes `fork()` wait for the helper's tick. The
//! child `_exit`s at once; only the parent's `fork()` call is timed, `waitpid` is not.
//!
//! Environment: `FLATSTORE_BENCH_DIR` (one directory instead of the two), `FLATSTORE_BENCH_RECORDS`
//! (timed inserts per case, default 125,000: 2.5 s at the default rate),
//! `FLATSTORE_BENCH_RATE`, `FLATSTORE_BENCH_FORKS` (default 200; 0: no fork phase).
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int};
use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use flatstore::Control;
use flatstore::ffi::openser::{
    DB_DATETIME, DB_INT, DB_STR, DbCon, DbVal, DbValUnion, Str, flat_db_close, flat_db_init,
    flat_db_insert, flat_use_table,
};
use flatstore::names::{CONTROL_FILE, LogName, Rotation};

/// The background load: seal by age (50 ms: see the top of the file), sync every 100 ms.
const LOAD: &str = "rotate_seconds=0.05&fsync=interval&fsync_interval=0.1";
/// Time between two external rotations.
const ROTATE_EVERY: Duration = Duration::from_millis(100);
/// Untimed inserts before the timed ones: the first opens the file and starts the helper.
const WARMUP: usize = 1_000;
/// How far ahead of its schedule the writer may run before it sleeps.
const AHEAD: Duration = Duration::from_millis(1);
/// Forks timed per case (default), and the inserts between two of them.
const FORKS: usize = 200;
const INSERTS_PER_FORK: usize = 250;
/// An insert slower than this is counted on its own.
const SLOW: Duration = Duration::from_millis(1);
/// The time field of record `k` is `TIME_BASE + k`: each record names itself.
const TIME_BASE: i64 = 1_700_000_000;
const TABLE: &str = "acc";
/// `statfs` magic of tmpfs.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// One acc-like record (method, from_tag, to_tag, callid, sip_code, sip_reason, time) as C
/// values, its time field the record's sequence number.
struct Record {
    texts: Vec<CString>,
    values: Vec<DbVal>,
}

impl Record {
    fn new() -> Record {
        let texts: Vec<CString> = [
            "INVITE",
            "as5f7a2c1b",
            "1928301774",
            "a84b4c76e66710@pc33.atlanta.example.com",
            "OK",
        ]
        .iter()
        .map(|t| CString::new(*t).expect("no NUL"))
        .collect();
        let text = |t: &CString| DbVal {
            type_: DB_STR,
            nul: 0,
            val: DbValUnion {
                str_val: Str {
                    s: t.as_ptr() as *mut c_char,
                    len: t.as_bytes().len() as c_int,
                },
            },
        };
        let values = vec![
            text(&texts[0]),
            text(&texts[1]),
            text(&texts[2]),
            text(&texts[3]),
            DbVal {
                type_: DB_INT,
                nul: 0,
                val: DbValUnion { int_val: 200 },
            },
            text(&texts[4]),
            DbVal {
                type_: DB_DATETIME,
                nul: 0,
                val: DbValUnion { time_val: 0 },
            },
        ];
        Record { texts, values }
    }

    /// Number the record `k`.
    fn set_sequence(&mut self, k: usize) {
        self.values[6].val = DbValUnion {
            time_val: TIME_BASE + k as i64,
        };
    }

    /// Every line's bytes before its time field.
    fn line_prefix(&self) -> Vec<u8> {
        let t = |i: usize| self.texts[i].to_str().expect("ascii");
        format!("{}|{}|{}|{}|200|{}|", t(0), t(1), t(2), t(3), t(4)).into_bytes()
    }
}

/// One writer's handle on `dir` through the C ABI, its table selected.
struct Writer {
    handle: *mut DbCon,
    /// Kept alive: the handle keeps a pointer to the table name.
    _table: CString,
}

impl Writer {
    fn open(dir: &Path, query: &str) -> Writer {
        let url = CString::new(format!("flatstore:{}?{query}", dir.display())).expect("url");
        let table = CString::new(TABLE).expect("table");
        // SAFETY: NUL-terminated strings; `table` lives as long as the handle.
        let handle = unsafe { flat_db_init(url.as_ptr()) };
        assert!(!handle.is_null(), "flat_db_init({query})");
        // SAFETY: an open handle; `table` outlives it (kept in the Writer).
        assert_eq!(unsafe { flat_use_table(handle, table.as_ptr()) }, 0);
        Writer {
            handle,
            _table: table,
        }
    }

    /// One insert; returns its code (0 or a negative FLATSTORE_E_*).
    #[inline]
    fn insert(&mut self, record: &Record) -> c_int {
        // SAFETY: an open handle; the values point into `record`'s strings, alive for the call.
        unsafe {
            flat_db_insert(
                self.handle,
                std::ptr::null(),
                record.values.as_ptr(),
                record.values.len() as c_int,
            )
        }
    }

    fn close(self) {
        // SAFETY: an open handle, not used again.
        unsafe { flat_db_close(self.handle) };
    }
}

/// The writer's schedule: insert `k` is due `k / rate` seconds after the start.
struct Pace {
    start: Instant,
    period: Duration,
}

impl Pace {
    fn new(rate: u32) -> Pace {
        Pace {
            start: Instant::now(),
            period: Duration::from_secs(1) / rate,
        }
    }

    /// Sleep until insert `k` is less than [`AHEAD`] ahead of its time.
    fn wait_for(&self, k: usize) {
        let due = self.start + self.period * k as u32;
        let now = Instant::now();
        if due > now + AHEAD {
            thread::sleep(due - now);
        }
    }
}

/// Rename every live log of `dir` away as logrotate does (a suffix unique to rotation `k`).
fn rename_live_logs(dir: &Path, k: usize) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("a name").as_bytes();
        if LogName::parse(name).is_some_and(|log| log.is_live()) {
            let mut rotated = path.clone().into_os_string();
            rotated.push(format!("-rot{k:06}"));
            match fs::rename(&path, &rotated) {
                // The writer's helper sealed it in the meantime.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                result => result.expect("rename"),
            }
        }
    }
}

/// Every [`ROTATE_EVERY`] until `stop`: rename the live logs, then move the rotation
/// generation (`flatstore rotate`, without `--wait`). Returns the number of rotations.
fn rotate_until(dir: &Path, stop: &AtomicBool) -> usize {
    let control = Control::open_existing(dir).expect("control file");
    let mut rotations = 0;
    while !stop.load(Ordering::Relaxed) {
        thread::sleep(ROTATE_EVERY);
        rename_live_logs(dir, rotations);
        control.request_rotation();
        rotations += 1;
    }
    rotations
}

/// Stops the rotating thread when dropped, also when the writer panics (the scope would
/// otherwise wait for that thread forever).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What one case measured.
struct Measured {
    /// Nanoseconds per timed insert, sorted.
    inserts: Vec<u64>,
    /// Nanoseconds per timed `fork()`, sorted.
    forks: Vec<u64>,
    rotations: usize,
    files: Files,
}

/// What the directory held afterwards.
#[derive(Default)]
struct Files {
    records: usize,
    sealed: usize,
    renamed: usize,
    live: usize,
}

/// Time `fork()` once: the child exits at once, the parent reaps it (untimed).
fn timed_fork() -> u64 {
    let start = Instant::now();
    // SAFETY: the child calls only `_exit`, which is async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above; no atexit hook, no destructor runs in the child.
        unsafe { libc::_exit(0) };
    }
    let ns = start.elapsed().as_nanos() as u64;
    assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out pointer.
    let reaped = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(reaped, pid, "waitpid: {}", std::io::Error::last_os_error());
    ns
}

/// One case: `timed` paced inserts at `flush`, then `forks` timed forks between untimed
/// inserts, the load running all along; then every record is checked in the files.
fn run_case(dir: &Path, flush: u8, timed: usize, rate: u32, forks: usize) -> Measured {
    fs::create_dir_all(dir).expect("case dir");
    let mut record = Record::new();
    let mut writer = Writer::open(dir, &format!("flush={flush}&{LOAD}"));
    let mut inserts = vec![0u64; timed];
    let mut fork_ns = Vec::with_capacity(forks);
    let stop = AtomicBool::new(false);
    let total = WARMUP + timed + forks * INSERTS_PER_FORK;
    let rotations = thread::scope(|scope| {
        let rotator = scope.spawn(|| rotate_until(dir, &stop));
        let stopping = StopOnDrop(&stop);
        let pace = Pace::new(rate);
        for k in 0..total {
            pace.wait_for(k);
            record.set_sequence(k);
            let timed_slot = k.checked_sub(WARMUP).filter(|&i| i < timed);
            let code = match timed_slot {
                Some(i) => {
                    let start = Instant::now();
                    let code = writer.insert(&record);
                    inserts[i] = start.elapsed().as_nanos() as u64;
                    code
                }
                None => writer.insert(&record),
            };
            assert_eq!(code, 0, "insert {k}");
            if k >= WARMUP + timed && (k - WARMUP - timed).is_multiple_of(INSERTS_PER_FORK) {
                fork_ns.push(timed_fork());
            }
        }
        drop(stopping);
        rotator.join().expect("rotating thread")
    });
    writer.close();
    let files = check_records(dir, &record, total);
    fs::remove_dir_all(dir).expect("remove case dir");
    inserts.sort_unstable();
    fork_ns.sort_unstable();
    Measured {
        inserts,
        forks: fork_ns,
        rotations,
        files,
    }
}

/// Read every file of `dir` (but the control file): each of the records `0..total` must be
/// there exactly once, every line whole; panics otherwise.
fn check_records(dir: &Path, record: &Record, total: usize) -> Files {
    let prefix = record.line_prefix();
    let mut seen = vec![false; total];
    let mut files = Files::default();
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("a name").as_bytes();
        if name == CONTROL_FILE.as_bytes() {
            continue;
        }
        match LogName::parse(name).map(|log| log.rotation) {
            Some(Rotation::Sealed(_)) => files.sealed += 1,
            Some(Rotation::Dated(_)) => files.renamed += 1,
            Some(Rotation::Live) => files.live += 1,
            _ => panic!("{}: not a file the bench made", path.display()),
        }
        let bytes = fs::read(&path).expect("read");
        assert!(
            bytes.is_empty() || bytes.ends_with(b"\n"),
            "{}: torn last line",
            path.display()
        );
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let k = line
                .strip_prefix(prefix.as_slice())
                .and_then(|time| std::str::from_utf8(time).ok())
                .and_then(|time| time.parse::<i64>().ok())
                .and_then(|time| usize::try_from(time - TIME_BASE).ok())
                .filter(|&k| k < total)
                .unwrap_or_else(|| {
                    panic!(
                        "{}: not a record of the bench: {:?}",
                        path.display(),
                        String::from_utf8_lossy(line)
                    )
                });
            assert!(!seen[k], "record {k} twice (again in {})", path.display());
            seen[k] = true;
            files.records += 1;
        }
    }
    let missing: Vec<usize> = (0..total).filter(|&k| !seen[k]).collect();
    assert!(
        missing.is_empty(),
        "{} of {total} records missing, the first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    files
}

/// The nearest-rank percentile `q` (0..=1) of `sorted`, in µs.
fn percentile_us(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1_000.0
}

/// "tmpfs" or "disk", as `statfs` says of `dir`.
fn kind_of(dir: &Path) -> &'static str {
    let path = CString::new(dir.as_os_str().as_bytes()).expect("path");
    // SAFETY: all-zero is a valid `statfs`, filled in by the call.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid out pointer.
    let ok = unsafe { libc::statfs(path.as_ptr(), &mut stat) } == 0;
    assert!(ok, "statfs {}", dir.display());
    if stat.f_type as i64 == TMPFS_MAGIC {
        "tmpfs"
    } else {
        "disk"
    }
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let bases: Vec<PathBuf> = match std::env::var_os("FLATSTORE_BENCH_DIR") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![PathBuf::from("/dev/shm"), PathBuf::from("/var/tmp")],
    };
    let timed: usize = env_number("FLATSTORE_BENCH_RECORDS", 125_000);
    let rate: u32 = env_number("FLATSTORE_BENCH_RATE", 50_000);
    let forks: usize = env_number("FLATSTORE_BENCH_FORKS", FORKS);
    assert!(timed > 0 && rate > 0, "records and rate must be positive");

    println!(
        "per-insert latency (flat_db_insert), {timed} timed inserts per case at {rate}/s, beside \
         {LOAD} and a rename + rotate every {} ms",
        ROTATE_EVERY.as_millis()
    );
    println!(
        "  {:<6} {:<5} {:>8} {:>8} {:>8} {:>9} {:>6} {:>16}   {:>23}",
        "dir",
        "flush",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        ">1 ms",
        "records checked",
        "fork p50 / p99 / max µs"
    );
    let mut loads = Vec::new();
    for base in &bases {
        let kind = kind_of(base);
        for flush in [1u8, 0] {
            let dir = base.join(format!("flatstore-latency-{}", std::process::id()));
            let m = run_case(&dir, flush, timed, rate, forks);
            let slow = m
                .inserts
                .iter()
                .filter(|&&ns| ns > SLOW.as_nanos() as u64)
                .count();
            let fork = if m.forks.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "{:.0} / {:.0} / {:.0}",
                    percentile_us(&m.forks, 0.5),
                    percentile_us(&m.forks, 0.99),
                    percentile_us(&m.forks, 1.0)
                )
            };
            println!(
                "  {kind:<6} {flush:<5} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {slow:>6} {:>16}   {fork:>23}",
                percentile_us(&m.inserts, 0.5),
                percentile_us(&m.inserts, 0.99),
                percentile_us(&m.inserts, 0.999),
                percentile_us(&m.inserts, 1.0),
                m.files.records,
            );
            loads.push(format!(
                "  {kind} flush={flush}: {} external rotations; files: {} sealed, {} renamed, {} live",
                m.rotations, m.files.sealed, m.files.renamed, m.files.live
            ));
        }
    }
    println!("the load that ran beside the writer:");
    for line in loads {
        println!("{line}");
    }
    println!("target: no insert waits on a sync (>1 ms: 0); p99.9 <= 50 µs on tmpfs");
}
