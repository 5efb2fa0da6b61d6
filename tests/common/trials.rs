//! Test programs built with `harness = false`, run by libtest-mimic: a test that needs a system
//! tool (valgrind, kamailio, PostgreSQL, ...) that is missing is reported as ignored with the
//! reason, and fails instead when `CI=true` (CI installs every tool the tests use: `.ci/run`).
//! Shared by the library's tests and the command's (`cli/tests`, through `#[path]`).

use std::process::Command;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Whether the system tool `tool` is on the PATH.
fn installed(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Why a test that needs the system tools `tools` cannot run here: `Ok(None)` when all are
/// installed, else `Ok(Some("needs valgrind"))` naming the missing ones, or `Err` when
/// `CI=true` (CI installs every tool the tests use, see `.ci/run`: a missing one is a failure).
pub fn missing_tools(tools: &[&str]) -> Result<Option<String>, Failed> {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !installed(t)).collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let missing = missing.join(", ");
    if std::env::var("CI").as_deref() == Ok("true") {
        return Err(format!("{missing} required when CI=true (install it: see .ci/run)").into());
    }
    Ok(Some(format!("needs {missing}")))
}

/// The trial `name` of a test program built with `harness = false`: `test` runs unless `skip`
/// gives a reason not to, and the trial is then reported as ignored with that reason
/// (`test c_tests_under_valgrind ... ignored (needs valgrind)`, counted in libtest's closing
/// "test result" line). A panic in `test`, or an `Err` from `skip`, fails it.
pub fn trial_unless(
    name: &str,
    skip: impl FnOnce() -> Result<Option<String>, Failed> + Send + 'static,
    test: fn(),
) -> Trial {
    Trial::ignorable_test(name, move || match skip()? {
        Some(reason) => Ok(Completion::ignored_with(reason)),
        None => {
            test();
            Ok(Completion::Completed)
        }
    })
}

/// [`trial_unless`] with nothing that skips it.
pub fn trial(name: &str, test: fn()) -> Trial {
    trial_unless(name, || Ok(None), test)
}

/// [`trial_unless`] for a test that needs the system tools `tools` ([`missing_tools`]).
pub fn trial_needing(name: &str, tools: &'static [&'static str], test: fn()) -> Trial {
    trial_unless(name, move || missing_tools(tools), test)
}

/// Run the trials of a `harness = false` test program with libtest's arguments and output, and
/// exit with its status.
pub fn run_trials(trials: Vec<Trial>) -> ! {
    libtest_mimic::run(&Arguments::from_args(), trials).exit()
}
