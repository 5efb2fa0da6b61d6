//! Writes the two strings OpenSER's loader compares (`OUT_DIR/openser_abi.rs`), learnt from the
//! OpenSER the module is built for.
//!
//! OpenSER 1.x `dlsym`s `module_version` and `module_flags` and `strcmp`s them with its own;
//! on a mismatch it logs an error and exits with status 0. So the strings are never guessed:
//! they come from `FLATSTORE_OPENSER_VERSION` and `FLATSTORE_OPENSER_FLAGS` when both are set
//! (building for another machine), else from `openser -V` of the binary `FLATSTORE_OPENSER`
//! names (default: `openser` on the PATH, then `/usr/sbin/openser`, `/usr/local/sbin/openser`),
//! and the build stops when neither is there.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    for var in [
        "FLATSTORE_OPENSER_VERSION",
        "FLATSTORE_OPENSER_FLAGS",
        "FLATSTORE_OPENSER",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let (version, flags) = match (
        env::var("FLATSTORE_OPENSER_VERSION"),
        env::var("FLATSTORE_OPENSER_FLAGS"),
    ) {
        (Ok(version), Ok(flags)) => (version, flags),
        _ => strings_from_openser(),
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("openser_abi.rs");
    let source = format!(
        "/// OpenSER's version string, as its loader compares it.\n\
         pub const VERSION: &std::ffi::CStr = c{version:?};\n\
         /// OpenSER's compile flags string, as its loader compares it.\n\
         pub const FLAGS: &std::ffi::CStr = c{flags:?};\n"
    );
    std::fs::write(&out, source).expect("OUT_DIR is writable");
}

/// The `version:` and `flags:` lines of `openser -V`, whole (OpenSER's loader compares
/// `OPENSER_FULL_VERSION`, e.g. `openser 1.4.0dev0-notls (x86_64/linux)`, and
/// `OPENSER_COMPILE_FLAGS`, exactly as `-V` prints them).
fn strings_from_openser() -> (String, String) {
    let candidates = match env::var("FLATSTORE_OPENSER") {
        Ok(binary) => {
            println!("cargo:rerun-if-changed={binary}");
            vec![binary]
        }
        Err(_) => ["openser", "/usr/sbin/openser", "/usr/local/sbin/openser"]
            .map(String::from)
            .to_vec(),
    };
    let printed = candidates.iter().find_map(|binary| {
        let output = Command::new(binary).arg("-V").output().ok()?;
        Some(String::from_utf8_lossy(&output.stdout).into_owned())
    });
    let Some(printed) = printed else {
        panic!(
            "the OpenSER module (flatstore-openser) needs OpenSER's version and flags strings, \
             and no openser binary was found (tried {candidates:?}). Point FLATSTORE_OPENSER \
             at the openser binary the module is for, or set both FLATSTORE_OPENSER_VERSION and \
             FLATSTORE_OPENSER_FLAGS to the `version:` and `flags:` lines of its `openser -V` \
             (docs/openser.md)."
        )
    };
    let line = |prefix: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|l| l.trim_end().to_owned())
            .unwrap_or_else(|| panic!("`openser -V` printed no `{prefix}` line:\n{printed}"))
    };
    (line("version: "), line("flags: "))
}
