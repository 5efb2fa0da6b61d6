//! Writes the two strings OpenSER's loader compares (`OUT_DIR/openser_abi.rs`), learnt from the
//! OpenSER the module is built for.
//!
//! OpenSER 1.x `dlsym`s `module_version` and `module_flags` and `strcmp`s them with its own;
//! on a mismatch it logs an error and exits with status 0. So the strings are never guessed:
//! they come from `FLATSTORE_OPENSER_VERSION` and `FLATSTORE_OPENSER_FLAGS` when both are set
//! (building for another machine), else from `openser -V` of the binary `FLATSTORE_OPENSER`
//! names (default: `openser` on the PATH, then `/usr/sbin/openser`, `/usr/local/sbin/openser`),
//! and the build stops when neither is there.

#[path = "../build_version.rs"]
mod build_version;

fn main() {
    let [version, flags] =
        build_version::given(["FLATSTORE_OPENSER_VERSION", "FLATSTORE_OPENSER_FLAGS"])
            .unwrap_or_else(strings_from_openser);
    build_version::write_constants(
        "openser_abi.rs",
        &[
            (
                "OpenSER's version string, as its loader compares it.",
                "VERSION",
                &version,
            ),
            (
                "OpenSER's compile flags string, as its loader compares it.",
                "FLAGS",
                &flags,
            ),
        ],
    );
}

/// The `version:` and `flags:` lines of `openser -V`, whole (OpenSER's loader compares
/// `OPENSER_FULL_VERSION`, e.g. `openser 1.4.0dev0-notls (x86_64/linux)`, and
/// `OPENSER_COMPILE_FLAGS`, exactly as `-V` prints them).
fn strings_from_openser() -> [String; 2] {
    let defaults = ["openser", "/usr/sbin/openser", "/usr/local/sbin/openser"];
    let printed = build_version::version_output("FLATSTORE_OPENSER", &defaults).unwrap_or_else(
        |candidates| {
            panic!(
                "the OpenSER module (flatstore-openser) needs OpenSER's version and flags strings, \
             and no openser binary was found (tried {candidates:?}). Point FLATSTORE_OPENSER \
             at the openser binary the module is for, or set both FLATSTORE_OPENSER_VERSION and \
             FLATSTORE_OPENSER_FLAGS to the `version:` and `flags:` lines of its `openser -V` \
             (docs/openser.md)."
            )
        },
    );
    let line = |prefix: &str| {
        build_version::line_after(&printed, prefix)
            .map(|l| l.trim_end().to_owned())
            .unwrap_or_else(|| panic!("`openser -V` printed no `{prefix}` line:\n{printed}"))
    };
    [line("version: "), line("flags: ")]
}
