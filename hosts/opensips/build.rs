//! OpenSIPS's loader compares four strings of the module's `exports` with its own: the version,
//! the compile flags, and the SCM type and revision. A mismatch makes OpenSIPS exit 1 at startup.
//! They are learnt here from `opensips -V` of the OpenSIPS the module is built for
//! (`FLATSTORE_OPENSIPS` names its binary; default `opensips`, then `/usr/sbin/opensips` and
//! `/usr/local/sbin/opensips`), or from `FLATSTORE_OPENSIPS_VERSION`, `FLATSTORE_OPENSIPS_FLAGS`,
//! `FLATSTORE_OPENSIPS_SCM_TYPE` and `FLATSTORE_OPENSIPS_SCM_REV` when all four are set
//! (building for another machine). No binary and no strings fails the build, naming both ways.

#[path = "../build_version.rs"]
mod build_version;

const VARS: [&str; 4] = [
    "FLATSTORE_OPENSIPS_VERSION",
    "FLATSTORE_OPENSIPS_FLAGS",
    "FLATSTORE_OPENSIPS_SCM_TYPE",
    "FLATSTORE_OPENSIPS_SCM_REV",
];

fn main() {
    let [version, flags, scm_type, scm_rev] =
        build_version::given(VARS).unwrap_or_else(strings_from_opensips);
    build_version::write_constants(
        "opensips_abi.rs",
        &[
            (
                "OpenSIPS's version string (`opensips -V`: `version:`).",
                "VERSION",
                &version,
            ),
            (
                "OpenSIPS's compile flags (`opensips -V`: `flags:`).",
                "FLAGS",
                &flags,
            ),
            (
                "The SCM type OpenSIPS was built from (`opensips -V`: `scm:`, or `unknown`).",
                "SCM_TYPE",
                &scm_type,
            ),
            (
                "The SCM revision (`opensips -V`: `scm:`; empty when unknown).",
                "SCM_REV",
                &scm_rev,
            ),
        ],
    );
}

/// The four strings from `opensips -V`.
fn strings_from_opensips() -> [String; 4] {
    let defaults = ["opensips", "/usr/sbin/opensips", "/usr/local/sbin/opensips"];
    let printed = build_version::version_output("FLATSTORE_OPENSIPS", &defaults).unwrap_or_else(
        |candidates| {
            panic!(
                "flatstore-opensips needs the version strings of the OpenSIPS it is built for, and \
             no opensips binary was found (tried {candidates:?}). Point FLATSTORE_OPENSIPS at \
             the binary, or set {} to the lines of `opensips -V` on the target machine.",
                VARS.join(", ")
            )
        },
    );
    parse_version_output(&printed)
        .unwrap_or_else(|missing| panic!("`opensips -V` printed no `{missing}` line:\n{printed}"))
}

/// The `version:` and `flags:` lines, and `<type> revision: <rev>` (`unknown revision: ` for a
/// tree built without its `.git`).
fn parse_version_output(printed: &str) -> Result<[String; 4], &'static str> {
    let line = |prefix: &'static str| {
        build_version::line_after(printed, prefix)
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
