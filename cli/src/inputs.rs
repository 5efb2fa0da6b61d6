//! What a reading command reads (`cat`, `verify`, `export`, `cdr`): a table's files in a log
//! directory, or files given one by one.
//!
//! The positional arguments decide: a first argument that is a directory means `DIR [TABLE]`,
//! exactly as before files could be given; anything else means `FILE…`, where `-` is standard
//! input (once). So a single copied file, several files, or a shell glob that expands to files
//! are read as they are, gzipped or not (by content). Files whose names are a table's log names
//! (`acc_5.log.2.gz`) are read in the directory's reading order, whatever order the shell gave
//! them in; files under other names, and standard input, after them in the order given.

use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use flatstore::names::{self, LogName};

use crate::exit::{FileError, Status, usage};
use crate::listing::{self, ListedFile, Listing, STDIN, Selection};

/// The positional arguments, read.
#[derive(Debug)]
pub enum Named<'a> {
    /// `DIR [TABLE]`.
    Table {
        /// The log directory.
        dir: &'a Path,
        /// The table, when given.
        table: Option<String>,
    },
    /// `FILE…`, `-` among them for standard input.
    Files(&'a [PathBuf]),
}

/// What `inputs` (at least one) name; a usage error (exit status 2) when they fit neither
/// shape: more than a TABLE after DIR, a TABLE that writers would refuse, a directory among
/// files, `-` twice.
pub fn named(inputs: &[PathBuf]) -> Named<'_> {
    let Some(first) = inputs.first() else {
        usage("give DIR [TABLE], or files (- for standard input)")
    };
    if first.as_os_str() != STDIN && first.is_dir() {
        return match inputs {
            [dir] => Named::Table { dir, table: None },
            [dir, table] => {
                let table = table.to_string_lossy();
                if let Err(e) = listing::table_name(&table) {
                    usage(format_args!("TABLE: {e}"))
                }
                Named::Table {
                    dir,
                    table: Some(table.into_owned()),
                }
            }
            _ => usage(format_args!(
                "{} is a directory: give DIR [TABLE] (one table), or files only",
                first.display()
            )),
        };
    }
    if inputs.iter().filter(|p| p.as_os_str() == STDIN).count() > 1 {
        usage("- (standard input) is given more than once")
    }
    if let Some(dir) = inputs.iter().find(|p| p.as_os_str() != STDIN && p.is_dir()) {
        usage(format_args!(
            "{} is a directory among files: give DIR [TABLE] first and alone, or files only",
            dir.display()
        ))
    }
    Named::Files(inputs)
}

/// The files `paths` name (`-` for standard input), in reading order, as a [`Listing`]: those
/// that cannot be examined are in its errors; its sidecars are the `<table>.columns` beside
/// each file named as a table's log, where one exists.
pub fn given(paths: &[PathBuf]) -> Listing {
    let mut listing = Listing::default();
    for path in paths {
        if path.as_os_str() == STDIN {
            listing.files.push(ListedFile {
                path: path.clone(),
                file_name: STDIN.into(),
                name: None,
                size: 0,
                modified: SystemTime::UNIX_EPOCH,
            });
            continue;
        }
        match fs::metadata(path) {
            Err(source) => listing.errors.push(FileError::Io {
                path: path.clone(),
                source,
            }),
            // A pipe (`<(zcat …)`) is read as a file is.
            Ok(meta) => listing.files.push(ListedFile {
                path: path.clone(),
                file_name: path.to_string_lossy().into_owned(),
                name: path
                    .file_name()
                    .and_then(|name| LogName::parse(name.as_bytes())),
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            }),
        }
    }
    listing::sort_for_reading(&mut listing.files);
    for file in &listing.files {
        let Some(table) = file.table() else { continue };
        let sidecar = sidecar_beside(file, table);
        if sidecar.is_file() && !listing.sidecars.iter().any(|(_, s)| *s == sidecar) {
            listing.sidecars.push((table.to_vec(), sidecar));
        }
    }
    listing
}

/// The `<table>.columns` in the directory of `file`.
pub fn sidecar_beside(file: &ListedFile, table: &[u8]) -> PathBuf {
    names::sidecar(file.path.parent().unwrap_or(Path::new("")), table)
}

/// The files `cat` and `export` read, and where their table's column names are.
#[derive(Debug)]
pub struct Chosen {
    /// In reading order.
    pub files: Vec<ListedFile>,
    /// The table's `<table>.columns`, which may not exist: DIR/TABLE.columns, or the one
    /// beside the first file given that is named as a table's log.
    pub sidecar: Option<PathBuf>,
}

/// The files `inputs` and `selection` choose for `cat` and `export`: TABLE's selected files in
/// DIR, or the files given. Files that cannot be examined are reported to `status`; `None`
/// when DIR cannot be read or has no file of TABLE at all (reported).
pub fn choose(inputs: &[PathBuf], selection: &Selection, status: &mut Status) -> Option<Chosen> {
    match named(inputs) {
        Named::Table { dir, table: None } => usage(format_args!(
            "give the TABLE after {}: DIR TABLE",
            dir.display()
        )),
        Named::Table {
            dir,
            table: Some(table),
        } => {
            let files = listing::select(dir, &table, selection, status)?;
            Some(Chosen {
                files,
                sidecar: Some(names::sidecar(dir, table.as_bytes())),
            })
        }
        Named::Files(paths) => {
            refuse_directory_options(selection);
            let listing = given(paths);
            for error in &listing.errors {
                status.file_error(error);
            }
            let sidecar = listing
                .files
                .iter()
                .find_map(|f| f.table().map(|table| sidecar_beside(f, table)));
            Some(Chosen {
                files: listing.files,
                sidecar,
            })
        }
    }
}

/// With files given, the options that choose among a directory's files are a usage error: every
/// file given is read.
pub fn refuse_directory_options(selection: &Selection) {
    if let Some(option) = selection.directory_only() {
        usage(format_args!(
            "{option} chooses among a directory's files (DIR TABLE); with files given, every \
             file given is read"
        ))
    }
}
