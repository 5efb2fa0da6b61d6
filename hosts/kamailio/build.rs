//! Writes the two strings Kamailio's loader compares (`OUT_DIR/kamailio_abi.rs`), learnt from
//! the Kamailio the module is built for.

#[path = "../build_version.rs"]
mod build_version;

fn main() {
    write_kamailio_abi();
}

/// Kamailio refuses a module whose `module_version` and `module_flags` differ (strcmp) from its
/// own. Take them from `FLATSTORE_KAMAILIO_VERSION` and `FLATSTORE_KAMAILIO_FLAGS` when both
/// are set (building for another machine), else from `kamailio -V` of the installed Kamailio
/// (`FLATSTORE_KAMAILIO` names the binary; default `kamailio`, then `/usr/sbin/kamailio`).
fn write_kamailio_abi() {
    let [version, flags] =
        build_version::given(["FLATSTORE_KAMAILIO_VERSION", "FLATSTORE_KAMAILIO_FLAGS"])
            .unwrap_or_else(strings_from_installed_kamailio);
    build_version::write_constants(
        "kamailio_abi.rs",
        &[
            (
                "Kamailio's version string, as its loader compares it.",
                "VERSION",
                &version,
            ),
            (
                "Kamailio's compile flags string, as its loader compares it.",
                "FLAGS",
                &flags,
            ),
        ],
    );
}

/// `version:` (up to and including the last `)`) and `flags:` lines of `kamailio -V`.
fn strings_from_installed_kamailio() -> [String; 2] {
    let defaults = ["kamailio", "/usr/sbin/kamailio"];
    let printed = build_version::version_output("FLATSTORE_KAMAILIO", &defaults).unwrap_or_else(|candidates| {
        panic!(
            "the Kamailio module (flatstore-kamailio) needs Kamailio's version and flags strings, and no kamailio \
             binary was found (tried {candidates:?}). Install kamailio (apt-get install kamailio), \
             point FLATSTORE_KAMAILIO at its binary, or set both FLATSTORE_KAMAILIO_VERSION \
             and FLATSTORE_KAMAILIO_FLAGS to the `version:` and `flags:` lines of `kamailio -V` \
             on the target machine."
        )
    });
    let line = |prefix: &str| {
        build_version::line_after(&printed, prefix)
            .unwrap_or_else(|| panic!("`kamailio -V` printed no `{prefix}` line:\n{printed}"))
    };
    let version = line("version: ");
    let version = match version.rfind(')') {
        Some(end) => &version[..=end],
        None => version.trim_end(),
    };
    [version.to_owned(), line("flags: ").to_owned()]
}
