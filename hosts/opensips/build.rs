//! OpenSIPS's loader compares four strings of the module's `exports` with its own: the version,
//! the compile flags, and the SCM type and revision. A mismatch makes OpenSIPS exit 1 at startup.
//! They are learnt here from `opensips -V` of the OpenSIPS the module is built for
//! (`FLATSTORE_OPENSIPS` names its binary; default `opensips`, then `/usr/sbin/opensips` and
//! `/usr/local/sbin/opensips`), or from `FLATSTORE_OPENSIPS_VERSION`, `FLATSTORE_OPENSIPS_FLAGS`,
//! `FLATSTORE_OPENSIPS_SCM_TYPE` and `FLATSTORE_OPENSIPS_SCM_REV` when all four are set
//! (building for another machine). No binary and no strings fails the build, naming both ways.

use std::env;
use std::path::PathBuf;

const VARS: [&str; 4] = [
    "FLATSTORE_OPENSIPS_VERSION",
    "FLATSTORE_OPENSIPS_FLAGS",
    "FLATSTORE_OPENSIPS_SCM_TYPE",
    "FLATSTORE_OPENSIPS_SCM_REV",
];

fn main() {
    println!("cargo:rerun-if-env-changed=FLATSTORE_OPENSIPS");
    for var in VARS {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let given: Vec<String> = VARS.iter().filter_map(|v| env::var(v).ok()).collect();
    let strings = match <[String; 4]>::try_from(given) {
        Ok(strings) => strings,
        Err(_) => strings_from_opensips(),
    };
    let [version, flags, scm_type, scm_rev] = strings;
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("opensips_abi.rs");
    let source = format!(
        "/// OpenSIPS's version string (`opensips -V`: `version:`).\n\
         pub const VERSION: &std::ffi::CStr = c{version:?};\n\
         /// OpenSIPS's compile flags (`opensips -V`: `flags:`).\n\
         pub const FLAGS: &std::ffi::CStr = c{flags:?};\n\
         /// The SCM type OpenSIPS was built from (`opensips -V`: `scm:`, or `unknown`).\n\
         pub const SCM_TYPE: &std::ffi::CStr = c{scm_type:?};\n\
         /// The SCM revision (`opensips -V`: `scm:`; empty when unknown).\n\
         pub const SCM_REV: &std::ffi::CStr = c{scm_rev:?};\n"
    );
    std::fs::write(&out, source).expect("OUT_DIR is writable");
}

/// The four strings from `opensips -V`.
fn strings_from_opensips() -> [String; 4] {
    let candidates = match env::var("FLATSTORE_OPENSIPS") {
        Ok(binary) => {
            println!("cargo:rerun-if-changed={binary}");
            vec![binary]
        }
        Err(_) => ["opensips", "/usr/sbin/opensips", "/usr/local/sbin/opensips"]
            .map(str::to_owned)
            .to_vec(),
    };
    let printed = candidates.iter().find_map(|binary| {
        let output = std::process::Command::new(binary).arg("-V").output().ok()?;
        Some(String::from_utf8_lossy(&output.stdout).into_owned())
    });
    let Some(printed) = printed else {
        panic!(
            "flatstore-opensips needs the version strings of the OpenSIPS it is built for, and \
             no opensips binary was found (tried {candidates:?}). Point FLATSTORE_OPENSIPS at \
             the binary, or set {} to the lines of `opensips -V` on the target machine.",
            VARS.join(", ")
        )
    };
    parse_version_output(&printed)
        .unwrap_or_else(|missing| panic!("`opensips -V` printed no `{missing}` line:\n{printed}"))
}

/// The `version:` and `flags:` lines, and `<type> revision: <rev>` (`unknown revision: ` for a
/// tree built without its `.git`).
fn parse_version_output(printed: &str) -> Result<[String; 4], &'static str> {
    let line = |prefix: &'static str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim_end)
            .ok_or(prefix)
    };
    let version = line("version: ")?;
    let flags = line("flags: ")?;
    let (scm_type, scm_rev) = printed
        .lines()
        .find_map(|l| l.split_once(" revision:"))
        .ok_or("<type> revision:")?;
    Ok([version, flags, scm_type, scm_rev.trim()].map(str::to_owned))
}
