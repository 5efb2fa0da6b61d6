//! What a proxy loads stays lean: `libflatstore.so` and every host module (`hosts/*`) need only
//! the C runtime, and none of the command's dependencies (the PostgreSQL client of `flatstore
//! load`, its tokio, TLS, clap, gzip) reaches them. The command is the workspace member `cli/`,
//! with its own dependencies; this reads the built objects to prove they stayed there.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    common::run_trials(vec![
        common::trial_needing(
            "the_library_needs_only_the_c_runtime",
            &["objdump"],
            the_library_needs_only_the_c_runtime,
        ),
        common::trial_needing(
            "no_symbol_of_the_commands_dependencies_is_in_the_library",
            &["objdump"],
            no_symbol_of_the_commands_dependencies_is_in_the_library,
        ),
    ]);
}

/// The libraries a proxy already has: the C library, the dynamic loader, libm, and libgcc_s
/// (unwinding).
const ALLOWED: [&str; 4] = ["libc.so", "libm.so", "libgcc_s.so", "ld-linux"];
/// Names that must not appear among the object's symbols.
const FOREIGN: [&str; 8] = [
    "postgres", "tokio", "libpq", "ssl", "clap", "flate2", "whoami", "rustls",
];

/// The objects a proxy loads: the C library and each host module (see [`common::kamailio`];
/// the OpenSER and OpenSIPS modules with stand-in loader strings, [`openser_module`],
/// [`opensips_module`]).
fn objects() -> Vec<PathBuf> {
    vec![
        common::cdylib_dir().join("libflatstore.so"),
        common::kamailio::our_module().path.clone(),
        openser_module(),
        opensips_module(),
    ]
}

/// The OpenSIPS module as this test build's profile builds it, with stand-in strings for
/// OpenSIPS's loader (what it links does not depend on them): no OpenSIPS is needed here.
fn opensips_module() -> PathBuf {
    let dir = common::cdylib_dir();
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "-p", "flatstore-opensips"])
        .env("CARGO_TARGET_DIR", common::target_dir())
        .env("FLATSTORE_OPENSIPS_VERSION", "opensips 0.0.0 (lean test)")
        .env("FLATSTORE_OPENSIPS_FLAGS", "LEAN_TEST")
        .env("FLATSTORE_OPENSIPS_SCM_TYPE", "unknown")
        .env("FLATSTORE_OPENSIPS_SCM_REV", "")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "building the OpenSIPS module failed");
    dir.join("libflatstore_opensips.so")
}

/// The OpenSER module as this test build's profile builds it, with stand-in strings for
/// OpenSER's loader (what it links does not depend on them): no OpenSER is needed here.
fn openser_module() -> PathBuf {
    let dir = common::cdylib_dir();
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "-p", "flatstore-openser"])
        .env("CARGO_TARGET_DIR", common::target_dir())
        .env("FLATSTORE_OPENSER_VERSION", "openser 0.0.0 (lean test)")
        .env("FLATSTORE_OPENSER_FLAGS", "LEAN_TEST")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "building the OpenSER module failed");
    dir.join("libflatstore_openser.so")
}

fn objdump(flag: &str, so: &Path) -> String {
    let out = Command::new("objdump")
        .arg(flag)
        .arg(so)
        .output()
        .expect("run objdump");
    assert!(
        out.status.success(),
        "objdump {flag} {}: {}",
        so.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 objdump output")
}

fn the_library_needs_only_the_c_runtime() {
    for so in objects() {
        let headers = objdump("-p", &so);
        let needed: Vec<&str> = headers
            .lines()
            .filter_map(|l| l.trim().strip_prefix("NEEDED"))
            .map(str::trim)
            .collect();
        assert!(needed.iter().any(|n| n.starts_with("libc.so")), "{headers}");
        for library in &needed {
            assert!(
                ALLOWED.iter().any(|a| library.starts_with(a)),
                "{} needs {library}: only {ALLOWED:?} may be (NEEDED: {needed:?})",
                so.display()
            );
        }
    }
}

fn no_symbol_of_the_commands_dependencies_is_in_the_library() {
    for so in objects() {
        // The dynamic symbols (what the proxy's loader sees), and the whole symbol table where
        // the object still has one (not stripped): code of those crates would be named there.
        for (flag, table) in [("-T", "dynamic symbols"), ("-t", "symbol table")] {
            let symbols = objdump(flag, &so).to_lowercase();
            for name in FOREIGN {
                let found: Vec<&str> = symbols.lines().filter(|l| l.contains(name)).collect();
                assert!(
                    found.is_empty(),
                    "{name} in {}'s {table}:\n{}",
                    so.display(),
                    found[..found.len().min(10)].join("\n")
                );
            }
        }
        // The one set of functions: every face exports the C API too.
        let dynamic = objdump("-T", &so);
        assert!(
            dynamic.contains("flat_db_insert"),
            "the C API is exported by {}:\n{dynamic}",
            so.display()
        );
    }
}
