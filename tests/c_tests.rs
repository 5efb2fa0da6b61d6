//! Builds the C programs in `c-tests/` against the real `libflatstore.so` and runs them plain,
//! under ASan/UBSan, and under valgrind. Each program ends with "N passed, N failed". Without
//! valgrind its run is reported as ignored (`harness = false`: see [`common::trial_unless`]).
//! Each program has a time limit per run ([`PLAIN_LIMIT`], ...): one still running then is
//! killed with its process group, and the test fails naming it and the last test it started.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{build_c, run_checked_within, trial, trial_needing};

/// Time limits of one program's run, plain, under the sanitizers and under valgrind: ten times
/// and more what they take on a loaded two-core machine.
const PLAIN_LIMIT: Duration = Duration::from_secs(180);
const ASAN_LIMIT: Duration = Duration::from_secs(300);
const VALGRIND_LIMIT: Duration = Duration::from_secs(900);

const PROGRAMS: &[&str] = &[
    "test_api",
    "test_host_types",
    "test_hardening",
    "test_control_rotation",
];

/// A 256 KiB tmpfs for the full-disk tests of `test_hardening`, mounted while it lives; `None`
/// when this process may not mount (not root), and the C test then uses RLIMIT_FSIZE.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(name: &str) -> Option<SmallDisk> {
        let dir =
            std::env::temp_dir().join(format!("flatstore-full-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(&dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if mounted {
            return Some(SmallDisk(dir));
        }
        eprintln!(
            "note: cannot mount a small tmpfs (not root?): the full-disk tests use RLIMIT_FSIZE"
        );
        let _ = std::fs::remove_dir(&dir);
        None
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// `cmd` for `name`, with the small disk of the hardening test when there is one.
fn with_small_disk(cmd: &mut Command, name: &str, mode: &str) -> Option<SmallDisk> {
    if name != "test_hardening" {
        return None;
    }
    let disk = SmallDisk::mount(mode);
    if let Some(disk) = &disk {
        cmd.env("FLATSTORE_CTEST_FULL_DIR", &disk.0);
    }
    disk
}

fn program_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("c-tests")
        .join(format!("{name}.c"))
}

fn main() {
    common::run_trials(vec![
        trial("c_tests_plain", c_tests_plain),
        trial("c_tests_under_asan_and_ubsan", c_tests_under_asan_and_ubsan),
        trial_needing(
            "c_tests_under_valgrind",
            &["valgrind"],
            c_tests_under_valgrind,
        ),
        trial(
            "a_hung_program_fails_naming_its_last_test_and_leaves_no_process",
            a_hung_program_fails_naming_its_last_test_and_leaves_no_process,
        ),
        trial(
            "a_missing_tool_is_reported_ignored_with_the_reason",
            a_missing_tool_is_reported_ignored_with_the_reason,
        ),
    ]);
}

/// A test whose tool is missing is reported by libtest's own lines as ignored, with the
/// reason, never as passed; with `CI=true` it fails. Seen from outside: this test program run
/// again for its valgrind test, with nothing on the PATH.
fn a_missing_tool_is_reported_ignored_with_the_reason() {
    let no_tools = std::env::temp_dir().join(format!("flatstore-no-tools-{}", std::process::id()));
    std::fs::create_dir_all(&no_tools).expect("create an empty PATH directory");
    let run = |ci: Option<&str>| {
        let mut cmd = Command::new(std::env::current_exe().expect("this test program"));
        cmd.args(["--exact", "c_tests_under_valgrind"])
            .env("PATH", &no_tools)
            .env_remove("CI");
        if let Some(ci) = ci {
            cmd.env("CI", ci);
        }
        let out = cmd.output().expect("run this test program again");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success(), stdout)
    };
    let (passed, stdout) = run(None);
    assert!(passed, "{stdout}");
    assert!(
        stdout.contains("test c_tests_under_valgrind ... ignored (needs valgrind)")
            && stdout.contains("test result: ok. 0 passed; 0 failed; 1 ignored;"),
        "{stdout}"
    );
    let (passed, stdout) = run(Some("true"));
    assert!(
        !passed && stdout.contains("valgrind required when CI=true"),
        "{stdout}"
    );
    std::fs::remove_dir(&no_tools).expect("clean up");
}

/// A program that does not end within its limit fails the run, which names the program and the
/// last test it started; it and the process it started are killed. Seen from outside: a shell
/// that prints a test's name, starts a child and sleeps.
fn a_hung_program_fails_naming_its_last_test_and_leaves_no_process() {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "echo '-- test_stuck(1)'; sleep 600 & echo \"child $!\"; echo '-- test_hung(2)'; wait",
    ]);
    let started = std::time::Instant::now();
    let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_checked_within(cmd, "stuck_program", Duration::from_secs(1));
    }))
    .expect_err("a hung program fails its test");
    let took = started.elapsed();
    let message = failure
        .downcast_ref::<String>()
        .expect("a panic with a message");
    assert!(
        message.starts_with("stuck_program: hung in test_hung(2): did not end within 1 s"),
        "{message}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let child: i32 = message
        .lines()
        .find_map(|l| l.strip_prefix("child "))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("the child's pid in: {message}"));
    // Killed: gone, or a zombie until whoever adopted it reaps it.
    let gone = || {
        std::fs::read_to_string(format!("/proc/{child}/stat")).map_or(true, |stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, s)| s.starts_with('Z'))
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gone(), "the program's child {child} still runs");
}

fn c_tests_plain() {
    for name in PROGRAMS {
        let exe = build_c(&program_source(name), &format!("{name}-plain"), &[]);
        let mut cmd = Command::new(&exe);
        let _disk = with_small_disk(&mut cmd, name, "plain");
        run_checked_within(cmd, name, PLAIN_LIMIT);
    }
}

fn c_tests_under_asan_and_ubsan() {
    for name in PROGRAMS {
        let exe = build_c(
            &program_source(name),
            &format!("{name}-asan"),
            &[
                "-fsanitize=address,undefined",
                "-fno-sanitize-recover=all",
                "-fno-omit-frame-pointer",
            ],
        );
        let mut cmd = Command::new(&exe);
        cmd.env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
            .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
            .env(
                "LSAN_OPTIONS",
                format!(
                    "suppressions={}",
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("c-tests/lsan.supp")
                        .display()
                ),
            );
        let _disk = with_small_disk(&mut cmd, name, "asan");
        run_checked_within(cmd, &format!("{name} (ASan/UBSan)"), ASAN_LIMIT);
    }
}

fn c_tests_under_valgrind() {
    for name in PROGRAMS {
        let exe = build_c(&program_source(name), &format!("{name}-valgrind"), &["-O1"]);
        let mut cmd = Command::new("valgrind");
        cmd.args([
            "--quiet",
            "--error-exitcode=99",
            "--trace-children=yes",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--child-silent-after-fork=no",
        ])
        .arg(format!(
            "--suppressions={}",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("c-tests/valgrind.supp")
                .display()
        ))
        .arg(&exe)
        // valgrind's scheduler makes write(2) calls of its own: the per-record write counts are
        // checked by the plain and sanitizer runs.
        .env("FLATSTORE_CTEST_NO_SYSCALL_COUNTS", "1")
        // 20 kill -9 rounds instead of 200: the plain and sanitizer runs do the rest.
        .env("FLATSTORE_CTEST_QUICK", "1");
        let _disk = with_small_disk(&mut cmd, name, "valgrind");
        run_checked_within(cmd, &format!("{name} (valgrind)"), VALGRIND_LIMIT);
    }
}
