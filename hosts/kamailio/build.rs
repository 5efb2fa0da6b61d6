//! Writes the two strings Kamailio's loader compares (`OUT_DIR/kamailio_abi.rs`), learnt from
//! the Kamailio the module is built for.

use std::env;
use std::path::PathBuf;

fn main() {
    write_kamailio_abi();
}

/// Kamailio refuses a module whose `module_version` and `module_flags` differ (strcmp) from its
/// own. Take them from `FLATSTORE_KAMAILIO_VERSION` and `FLATSTORE_KAMAILIO_FLAGS` when both
/// are set (building for another machine), else from `kamailio -V` of the installed Kamailio
/// (`FLATSTORE_KAMAILIO` names the binary; default `kamailio`, then `/usr/sbin/kamailio`).
fn write_kamailio_abi() {
    for var in [
        "FLATSTORE_KAMAILIO_VERSION",
        "FLATSTORE_KAMAILIO_FLAGS",
        "FLATSTORE_KAMAILIO",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let (version, flags) = match (
        env::var("FLATSTORE_KAMAILIO_VERSION"),
        env::var("FLATSTORE_KAMAILIO_FLAGS"),
    ) {
        (Ok(version), Ok(flags)) => (version, flags),
        _ => strings_from_installed_kamailio(),
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("kamailio_abi.rs");
    let source = format!(
        "/// Kamailio's version string, as its loader compares it.\n\
         pub const VERSION: &std::ffi::CStr = c{version:?};\n\
         /// Kamailio's compile flags string, as its loader compares it.\n\
         pub const FLAGS: &std::ffi::CStr = c{flags:?};\n"
    );
    std::fs::write(&out, source).expect("OUT_DIR is writable");
}

/// `version:` (up to and including the last `)`) and `flags:` lines of `kamailio -V`.
fn strings_from_installed_kamailio() -> (String, String) {
    let candidates = match env::var("FLATSTORE_KAMAILIO") {
        Ok(binary) => vec![binary],
        Err(_) => vec!["kamailio".to_owned(), "/usr/sbin/kamailio".to_owned()],
    };
    let printed = candidates.iter().find_map(|binary| {
        let output = std::process::Command::new(binary).arg("-V").output().ok()?;
        Some(String::from_utf8_lossy(&output.stdout).into_owned())
    });
    let Some(printed) = printed else {
        panic!(
            "the Kamailio module (flatstore-kamailio) needs Kamailio's version and flags strings, and no kamailio \
             binary was found (tried {candidates:?}). Install kamailio (apt-get install kamailio), \
             point FLATSTORE_KAMAILIO at its binary, or set both FLATSTORE_KAMAILIO_VERSION \
             and FLATSTORE_KAMAILIO_FLAGS to the `version:` and `flags:` lines of `kamailio -V` \
             on the target machine."
        )
    };
    let line = |prefix: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("`kamailio -V` printed no `{prefix}` line:\n{printed}"))
    };
    let version = line("version: ");
    let version = match version.rfind(')') {
        Some(end) => &version[..=end],
        None => version.trim_end(),
    };
    (version.to_owned(), line("flags: ").to_owned())
}
