//! `flatstore`: the operator's command line, on the library's safe Rust API.
//!
//! ```text
//! flatstore rotate DIR [--wait] [--timeout SECONDS] [--unopened-ok]
//! flatstore cat    DIR TABLE | FILE… | -  [SELECTION]
//! flatstore verify DIR [TABLE] | FILE… | -  [--json]
//! flatstore export DIR TABLE | FILE… | -  --format csv|jsonl [--columns NAME,..]
//!                                         [--iso-time COL,..] [SELECTION]
//! flatstore stats  DIR [--json]
//! flatstore seal   DIR [TABLE]
//! flatstore cdr    DIR [TABLE] | FILE… | -  [--missed TABLE] [--columns NAME,..]
//!                      [--format csv|jsonl] [--output FILE [--state FILE]]
//!                      [--max-call-age SECONDS] [SELECTION]
//! flatstore load   DIR TABLE --db postgresql://USER@HOST[:PORT]/DBNAME [--source NAME]
//!                      [--into SQLTABLE] [--create [--types NAME=TYPE,..]] [--columns NAME,..]
//!                      [--live | --sealed-only] [--modified-since TIME] [--modified-until TIME]
//!
//! SELECTION: [--live | --sealed-only] [--modified-since TIME] [--modified-until TIME]
//!            (a directory's files; DIR only) [--since TIME] [--until TIME] (records)
//! ```
//!
//! One module per job: [`inputs`] reads the positional arguments (a first argument that is a
//! directory means `DIR [TABLE]`, anything else files), [`listing`] finds a directory's log
//! files and orders them, [`window`] picks records by their time, [`content`]
//! reads one (gzip included), [`lines`] splits content into lines (a table's `<table>.columns` is
//! read by [`flatstore::columns`]), [`output`] is the frame of the commands that write records,
//! [`exit`] turns what went wrong into the exit status, [`progress`] reports on a terminal,
//! [`json`] and [`time`] format, [`db`] speaks to PostgreSQL for `load`; and one module per
//! command under [`commands`].
#![forbid(unsafe_code)]
#![warn(rust_2018_idioms)]

mod commands;
mod commit;
mod consumed;
mod content;
mod csv;
mod db;
mod error;
mod exit;
mod inputs;
mod json;
mod lines;
mod listing;
mod output;
mod progress;
mod time;
mod window;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{cat, cdr, export, load, rotate, seal, stats, verify};

const EXIT_STATUS: &str = "\
Exit status: rotate: 0 done, 1 failed (also: no flatstore writer ever opened DIR, unless
--unopened-ok), 2 usage error.
seal: 0 done (files held by live writers are left), 1 a file could not be examined or sealed, 2 usage
error or an unreadable directory.
cat, verify, export, stats, cdr: 0 clean, 1 problems found in the files (named on standard error,
or in verify's report), 2 usage error or an I/O error (a missing directory, an unreadable file),
and for export a TABLE.columns that cannot be read or is malformed (nothing is exported).
load: 0 every selected file is in the table, 1 a file was not loaded (named on standard error with
the reason; rolled back whole, the other files are loaded), 2 usage error, a database that cannot
be reached or prepared, or an unreadable file.";

/// The operator's tool for a flatstore log directory.
#[derive(Debug, Parser)]
#[command(name = "flatstore", version, after_help = EXIT_STATUS)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Rotate(rotate::Args),
    Cat(cat::Args),
    Verify(verify::Args),
    Export(export::Args),
    Stats(stats::Args),
    Seal(seal::Args),
    Cdr(cdr::Args),
    Load(load::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Rotate(args) => rotate::run(&args),
        Command::Cat(args) => cat::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Stats(args) => stats::run(&args),
        Command::Seal(args) => seal::run(&args),
        Command::Cdr(args) => cdr::run(&args),
        Command::Load(args) => load::run(&args),
    }
}
