//! Generates the C header from the Rust sources into `OUT_DIR/flatstore.h`. (The host modules'
//! build scripts, which ask the host for its loader's strings, are in `hosts/*/build.rs`.)
//!
//! Build scripts may only write to `OUT_DIR`: the checked-in `include/flatstore.h` is a copy of
//! that file, and the test `header_is_fresh` fails when the two differ (run it with
//! `FLATSTORE_UPDATE_HEADER=1` to refresh the copy).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("flatstore.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    match cbindgen::generate_with_config(&crate_dir, config) {
        Ok(bindings) => {
            bindings.write_to_file(&out);
        }
        Err(e) => panic!("cbindgen could not generate the header: {e}"),
    }
}
