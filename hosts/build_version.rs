//! What the host modules' build scripts share (each includes this file with
//! `#[path = "../build_version.rs"] mod build_version;`): a host's loader compares strings of the
//! module with its own, and the build script learns them from the environment or from the
//! host's `-V`, then writes them as constants into `OUT_DIR`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// The values of the variables `vars` when every one is set (building for another machine),
/// else `None`. A change of any reruns the build script.
pub fn given<const N: usize>(vars: [&str; N]) -> Option<[String; N]> {
    for var in vars {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let values: Vec<String> = vars.iter().filter_map(|v| env::var(v).ok()).collect();
    <[String; N]>::try_from(values).ok()
}

/// The standard output of `BINARY -V`: BINARY is the file the variable `binary_var` names (a
/// change of either reruns the build script), else the first of `defaults` that runs. `Err`
/// lists the binaries tried, none of which ran.
pub fn version_output(binary_var: &str, defaults: &[&str]) -> Result<String, Vec<String>> {
    println!("cargo:rerun-if-env-changed={binary_var}");
    let candidates = match env::var(binary_var) {
        Ok(binary) => {
            println!("cargo:rerun-if-changed={binary}");
            vec![binary]
        }
        Err(_) => defaults.iter().map(|d| d.to_string()).collect(),
    };
    let printed = candidates.iter().find_map(|binary| {
        let output = Command::new(binary).arg("-V").output().ok()?;
        Some(String::from_utf8_lossy(&output.stdout).into_owned())
    });
    printed.ok_or(candidates)
}

/// What follows `prefix` on the first line of `printed` that starts with it (`version: `,
/// `flags: `), trailing blanks included.
pub fn line_after<'a>(printed: &'a str, prefix: &str) -> Option<&'a str> {
    printed.lines().find_map(|l| l.strip_prefix(prefix))
}

/// Write `OUT_DIR/<file>`: one `pub const NAME: &CStr` a (doc, NAME, value).
pub fn write_constants(file: &str, constants: &[(&str, &str, &str)]) {
    let source: String = constants
        .iter()
        .map(|(doc, name, value)| {
            format!("/// {doc}\npub const {name}: &std::ffi::CStr = c{value:?};\n")
        })
        .collect();
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join(file);
    std::fs::write(&out, source).expect("OUT_DIR is writable");
}
