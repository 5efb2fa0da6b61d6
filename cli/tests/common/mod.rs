//! Helpers of the command's integration tests: a throwaway PostgreSQL cluster ([`cluster`]),
//! the trials of test programs that need a system tool ([`trials`]) and time limits for the
//! programs the tests run ([`timeout`]), both shared with the library's tests.
#![allow(dead_code)]

pub mod cluster;
#[path = "../../../tests/common/timeout.rs"]
pub mod timeout;
#[path = "../../../tests/common/trials.rs"]
pub mod trials;

use std::ffi::OsStr;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;

/// A deterministic stream of numbers for the kill moments (no dependency, same every run).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number below `bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// Bytes as text, for messages and assertions.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts `out`'s exit status, showing its output when it is another.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `flatstore args`, `input` on its standard input.
pub fn flatstore_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flatstore"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run flatstore");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Written from another thread: a command that refuses its arguments never reads it.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for flatstore");
    writer.join().expect("writer");
    out
}

/// `bytes` compressed with gzip.
pub fn gzip_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Replace `path` by `path.gz`, as logrotate's `compress` does; returns the new path.
pub fn gzip(path: &Path) -> PathBuf {
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    fs::write(&gz, gzip_bytes(&fs::read(path).expect("read"))).expect("write gz");
    fs::remove_file(path).expect("remove");
    gz
}

/// Start `flatstore args` (its output dropped) and kill it with SIGKILL `after` it started;
/// true when it was still running then.
pub fn kill_after(args: &[impl AsRef<OsStr>], after: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flatstore"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start flatstore");
    std::thread::sleep(after);
    let running = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    child.wait().expect("reap");
    running
}
