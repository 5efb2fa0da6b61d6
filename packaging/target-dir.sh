#!/usr/bin/env bash
# Prints the directory cargo puts its output in for this workspace: CARGO_TARGET_DIR, the
# build.target-dir of a cargo config, or `target` beside Cargo.toml (as `cargo metadata` says).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
