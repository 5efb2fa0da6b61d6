//! What the command's benchmarks share: where they write, and how one command is timed and its
//! peak memory taken (in a helper process of its own, so that the peak is that command's alone).
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
