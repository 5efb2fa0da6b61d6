//! The library a proxy loads stays lean: `libflatstore.so` needs only the C runtime, and none
//! of the command's dependencies (the PostgreSQL client of `flatstore load`, its tokio, TLS,
//! clap, gzip) reaches it. The command is the workspace member `cli/`, with its own
//! dependencies; this reads the built object to prove they stayed there.

mod common;

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

fn objdump(flag: &str) -> String {
    let so = common::cdylib_dir().join("libflatstore.so");
    let out = Command::new("objdump")
        .arg(flag)
        .arg(&so)
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
    let headers = objdump("-p");
    let needed: Vec<&str> = headers
        .lines()
        .filter_map(|l| l.trim().strip_prefix("NEEDED"))
        .map(str::trim)
        .collect();
    assert!(needed.iter().any(|n| n.starts_with("libc.so")), "{headers}");
    for library in &needed {
        assert!(
            ALLOWED.iter().any(|a| library.starts_with(a)),
            "libflatstore.so needs {library}: only {ALLOWED:?} may be (NEEDED: {needed:?})"
        );
    }
}

fn no_symbol_of_the_commands_dependencies_is_in_the_library() {
    // The dynamic symbols (what the proxy's loader sees), and the whole symbol table where the
    // object still has one (not stripped): code of those crates would be named there.
    for (flag, table) in [("-T", "dynamic symbols"), ("-t", "symbol table")] {
        let symbols = objdump(flag).to_lowercase();
        for name in FOREIGN {
            let found: Vec<&str> = symbols.lines().filter(|l| l.contains(name)).collect();
            assert!(
                found.is_empty(),
                "{name} in libflatstore.so's {table}:\n{}",
                found[..found.len().min(10)].join("\n")
            );
        }
    }
    let dynamic = objdump("-T");
    assert!(
        dynamic.contains("flat_db_insert"),
        "the C API is exported:\n{dynamic}"
    );
}
