//! What the command's benchmarks share: where they write, their settings, and how one command
//! is timed with its CPU, or with its peak memory (in a helper process of its own, so that the
//! peak is that command's alone).
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};

/// Set in the helper process that runs one command and reports its time and memory.
pub const MEASURE: &str = "FLATSTORE_BENCH_MEASURE";

/// A fresh `flatstore-bench-<name>-<pid>` directory in `FLATSTORE_BENCH_DIR`, else `/dev/shm`,
/// else the system temp dir.
pub fn bench_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("FLATSTORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let shm = PathBuf::from("/dev/shm");
            if shm.is_dir() {
                shm
            } else {
                std::env::temp_dir()
            }
        });
    let dir = base.join(format!("flatstore-bench-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create bench dir");
    dir
}

/// Run `flatstore args` with standard output to /dev/null; returns its wall time and peak RSS
/// (KiB). The bench's `main` must call [`helper`] first when [`MEASURE`] is set.
pub fn measure(args: &[String]) -> (Duration, i64) {
    let out = Command::new(std::env::current_exe().expect("bench executable"))
        .env(MEASURE, "1")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run helper");
    assert!(out.status.success(), "helper failed for {args:?}");
    let text = String::from_utf8(out.stdout).expect("utf8");
    let (nanos, rss) = text.trim().split_once(' ').expect("<nanos> <rss>");
    (
        Duration::from_nanos(nanos.parse().expect("nanos")),
        rss.parse().expect("rss"),
    )
}

/// In the helper process: run `flatstore args`, print `<nanos> <peak RSS KiB>`.
pub fn helper(args: &[String]) {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_flatstore"))
        .args(args)
        .stdout(File::create("/dev/null").expect("/dev/null"))
        .status()
        .expect("run flatstore");
    let elapsed = start.elapsed();
    assert!(status.success(), "flatstore {args:?} failed: {status}");
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    println!("{} {}", elapsed.as_nanos(), usage.max_rss());
}

/// The number in environment variable `name`, else `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The machine's load averages (1, 5 and 15 minutes), to print beside wall times.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| text.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// CPU seconds (user + system) of the children reaped so far.
fn children_cpu() -> f64 {
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    seconds(usage.user_time()) + seconds(usage.system_time())
}

/// Run `command`, which must succeed; its wall time and its CPU seconds (the client's, not a
/// server's).
pub fn timed(command: &mut Command) -> (Duration, f64) {
    let cpu = children_cpu();
    let start = Instant::now();
    let out = command.output().expect("run");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (elapsed, children_cpu() - cpu)
}
