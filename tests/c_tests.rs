//! Builds the C programs in `c-tests/` against the real `libflatstore.so` and runs them plain,
//! under ASan/UBSan, and under valgrind. Each program ends with "N passed, N failed".

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{build_c, require_tool, run_checked};

const PROGRAMS: &[&str] = &["test_api", "test_host_types"];

fn program_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("c-tests")
        .join(format!("{name}.c"))
}

#[test]
fn c_tests_plain() {
    for name in PROGRAMS {
        let exe = build_c(&program_source(name), &format!("{name}-plain"), &[]);
        run_checked(Command::new(&exe), name);
    }
}

#[test]
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
        run_checked(cmd, &format!("{name} (ASan/UBSan)"));
    }
}

#[test]
fn c_tests_under_valgrind() {
    if !require_tool("valgrind") {
        return;
    }
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
        .env("FLATSTORE_CTEST_NO_SYSCALL_COUNTS", "1");
        run_checked(cmd, &format!("{name} (valgrind)"));
    }
}
