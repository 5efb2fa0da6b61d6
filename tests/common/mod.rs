//! Helpers shared by the integration tests: the built library, C compilation, optional tools
//! and the trials of the test programs that need them, a real Kamailio under SIPp traffic
//! ([`kamailio`]), a real OpenSER and a real OpenSIPS built from source ([`openser`],
//! [`opensips`]), the torture host ([`torture`]), and time limits for every program a
//! test runs ([`timeout`]).
#![allow(dead_code)]

pub mod kamailio;
pub mod openser;
pub mod opensips;
pub mod sipp;
pub mod timeout;
pub mod torture;
pub mod trials;

#[allow(unused_imports)] // Each test program uses some of them.
pub use trials::{missing_tools, run_trials, trial, trial_needing, trial_unless};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::Duration;

/// `target/<profile>` of this test build: where cargo puts the library and the command.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// Where cargo puts this workspace's output (`target`, or `CARGO_TARGET_DIR`): the parent of
/// this test build's profile directory.
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("target/<profile>")
        .to_path_buf()
}

/// Run `cargo build <args>` for this test build's profile and target directory: `cargo test`
/// builds the tests against the rlib only and may leave the shared object and the command
/// unbuilt or stale.
fn cargo_build(args: &[&str]) {
    let dir = profile_dir();
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .arg("build")
        .args(args)
        .arg("--quiet")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if dir.file_name().is_some_and(|p| p == "release") {
        cargo.arg("--release");
    }
    cargo.env("CARGO_TARGET_DIR", target_dir());
    let status = cargo.status().expect("run cargo build");
    assert!(status.success(), "cargo build {args:?} failed");
}

/// The directory holding `libflatstore.so` of this build (`target/<profile>`), brought up to
/// date once per test program.
pub fn cdylib_dir() -> PathBuf {
    static BUILT: Once = Once::new();
    BUILT.call_once(|| cargo_build(&["--lib"]));
    let dir = profile_dir();
    assert!(
        dir.join("libflatstore.so").exists(),
        "libflatstore.so not built in {}",
        dir.display()
    );
    dir
}

/// The `flatstore` command of this build (the workspace member `cli`), brought up to date once
/// per test program.
pub fn flatstore_cli() -> PathBuf {
    static BUILT: Once = Once::new();
    BUILT.call_once(|| cargo_build(&["-p", "flatstore-cli", "--bin", "flatstore"]));
    let cli = profile_dir().join("flatstore");
    assert!(cli.exists(), "flatstore not built at {}", cli.display());
    cli
}

/// A scratch directory for build outputs of C programs.
pub fn c_build_dir() -> PathBuf {
    let dir = cdylib_dir().join("c-tests");
    std::fs::create_dir_all(&dir).expect("create c-tests build dir");
    dir
}

/// Compile `source` against `include/flatstore.h` and the built library; returns the program.
pub fn build_c(source: &Path, out_name: &str, extra_flags: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = cdylib_dir();
    let out = c_build_dir().join(out_name);
    let status = Command::new("cc")
        .args(["-std=c11", "-g", "-Wall", "-Wextra", "-Werror"])
        .args(extra_flags)
        .arg("-I")
        .arg(root.join("include"))
        .arg("-I")
        .arg(root.join("c-tests"))
        .arg(source)
        .arg("-o")
        .arg(&out)
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lflatstore", "-lm"])
        .status()
        .expect("run cc");
    assert!(status.success(), "compiling {} failed", source.display());
    out
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Rename every live `<table>_<N>.log` in `acc` (not hidden) to `<name>.<suffix>`, a rotation
/// script's step; the new paths.
pub fn rename_live_files(acc: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut renamed = Vec::new();
    for (name, path) in visible_files(acc) {
        if name.ends_with(".log") {
            let to = acc.join(format!("{name}.{suffix}"));
            std::fs::rename(&path, &to).expect("rename");
            renamed.push(to);
        }
    }
    renamed
}

/// The files of `dir` that are not hidden (hidden ones are the control file, temporary files
/// and torn records moved aside), as (name, path), sorted by name.
pub fn visible_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, path)
        })
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    files.sort();
    files
}

/// The number of lines (`\n` bytes) in the file at `path`.
pub fn count_lines(path: &Path) -> usize {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// The time limit of [`run_checked`].
pub const C_PROGRAM_LIMIT: Duration = Duration::from_secs(600);

/// Run a C test program; it must exit 0 and close with "N passed, 0 failed", within
/// [`C_PROGRAM_LIMIT`].
pub fn run_checked(cmd: Command, what: &str) -> String {
    run_checked_within(cmd, what, C_PROGRAM_LIMIT)
}

/// [`run_checked`] within `limit`: a program still running then is killed with its process
/// group, and the test fails naming it and the last test it started (the `-- test_x(...)` line
/// that `RUN` of `c-tests/harness.h` prints).
pub fn run_checked_within(mut cmd: Command, what: &str, limit: Duration) -> String {
    let output = timeout::output_within(&mut cmd, limit).unwrap_or_else(|timed_out| {
        let last = timed_out
            .stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("-- "))
            .unwrap_or("(none named)");
        panic!("{what}: hung in {last}: {timed_out}")
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let closing = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed, "))
        .unwrap_or("");
    assert!(
        output.status.success() && closing.ends_with(" 0 failed"),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    eprintln!("{what}: {closing}");
    stdout
}
