//! A directory's log files, as the names say (see `flatstore::names`, which builds and parses
//! every name): which table and writer each belongs to, where it stands in the rotation, and
//! the order they are read in; and which table each `<table>.columns` sidecar belongs to.
//!
//! Reading order, oldest first: stamped files by stamp, then counted files from the highest
//! count to `.1`, then sealed files by seal stamp (across writers: records come out in seal
//! time order), then live files; within each step (a stamp, a count) by writer number N, then
//! by name.

use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use flatstore::names::{self, LogName};

use crate::error::CliError;
use crate::exit::{FileError, Status};
use crate::time;
use crate::window::Window;

/// One file to read: a log file of a table as found in the directory, or a file given on the
/// command line (see [`crate::inputs`]), standard input included.
#[derive(Debug)]
pub struct ListedFile {
    /// Its path (the directory joined with its name, or as given); `-` for standard input.
    pub path: PathBuf,
    /// Its name for reports (lossy where it is not UTF-8): the name in the directory, or the
    /// path as given.
    pub file_name: String,
    /// What the name says; `None` for a file given under a name that is no table's log (a
    /// copy named `acc.txt`, standard input).
    pub name: Option<LogName>,
    /// Bytes on disk when it was listed (0 for a pipe).
    pub size: u64,
    /// Last modification when it was listed.
    pub modified: SystemTime,
}

impl ListedFile {
    /// A live file: writers open this name and may still append to it.
    pub fn is_live(&self) -> bool {
        self.name.as_ref().is_some_and(LogName::is_live)
    }

    /// A sealed file: complete, its writer never writes it again.
    pub fn is_sealed(&self) -> bool {
        self.name.as_ref().is_some_and(LogName::is_sealed)
    }

    /// The table its name says it belongs to.
    pub fn table(&self) -> Option<&[u8]> {
        self.name.as_ref().map(|name| name.table.as_slice())
    }

    /// Standard input (`-` on the command line).
    pub fn is_stdin(&self) -> bool {
        self.path.as_os_str() == STDIN
    }
}

/// How standard input is given on the command line.
pub const STDIN: &str = "-";

/// The reading order of files: by table, then as the module docs say; files whose names are
/// no table's log after all others, in the order they came.
pub fn sort_for_reading(files: &mut [ListedFile]) {
    files.sort_by(|a, b| match (&a.name, &b.name) {
        (Some(x), Some(y)) => (&x.table, &x.rotation, x.number, &a.file_name).cmp(&(
            &y.table,
            &y.rotation,
            y.number,
            &b.file_name,
        )),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

/// What a directory holds.
#[derive(Debug, Default)]
pub struct Listing {
    /// The log files, in reading order: by table, then as the module docs say.
    pub files: Vec<ListedFile>,
    /// `<table>.columns` sidecars: the table, and the path.
    pub sidecars: Vec<(Vec<u8>, PathBuf)>,
    /// Names that are no table's log or sidecar (hidden names such as `.flatstore.ctl` left
    /// out).
    pub ignored: Vec<String>,
    /// Log files that could not be examined, or are no regular file.
    pub errors: Vec<FileError>,
    /// `.<log name>.torn` files: torn records that a writer moved out of a log on opening it
    /// (see the library's `writer::log_file` module), with the log's name.
    pub torn_aside: Vec<(PathBuf, String)>,
    /// `.<sealed log name>.pending` files: sealed by their writer, waiting for its helper
    /// thread to sync them and give them their sealed name (see the library's
    /// `writer::handoff` module); read under that name once it has. One that stays is a
    /// crashed writer's: `flatstore seal` finishes it.
    pub pending_seals: Vec<PathBuf>,
}

/// List the log files of `dir`, only `table`'s when given. Fails only when the directory
/// cannot be read; trouble with single files is in [`Listing::errors`].
pub fn discover(dir: &Path, table: Option<&[u8]>) -> Result<Listing, FileError> {
    let dir_error = |source| FileError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut listing = Listing::default();
    for entry in fs::read_dir(dir).map_err(dir_error)? {
        let entry = entry.map_err(dir_error)?;
        let os_name = entry.file_name();
        let file_name = os_name.to_string_lossy().into_owned();
        if let Some((log, name)) = names::torn_of(os_name.as_bytes()) {
            if table.is_none_or(|t| t == name.table) {
                let log = String::from_utf8_lossy(log).into_owned();
                listing.torn_aside.push((entry.path(), log));
            }
            continue;
        }
        if let Some((_, name)) = names::pending_seal_of(os_name.as_bytes()) {
            if table.is_none_or(|t| t == name.table) {
                listing.pending_seals.push(entry.path());
            }
            continue;
        }
        let Some(name) = LogName::parse(os_name.as_bytes()) else {
            if let Some(of) = names::sidecar_table(os_name.as_bytes()) {
                if table.is_none_or(|t| t == of) {
                    listing.sidecars.push((of.to_vec(), entry.path()));
                }
            } else if table.is_none() && !file_name.starts_with('.') {
                listing.ignored.push(file_name);
            }
            continue;
        };
        if table.is_some_and(|t| t != name.table) {
            continue;
        }
        let path = entry.path();
        match fs::metadata(&path) {
            Err(source) => listing.errors.push(FileError::Io { path, source }),
            Ok(meta) if !meta.is_file() => listing.errors.push(FileError::Bad {
                path,
                what: "not a regular file".into(),
            }),
            Ok(meta) => listing.files.push(ListedFile {
                path,
                file_name,
                name: Some(name),
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            }),
        }
    }
    sort_for_reading(&mut listing.files);
    listing.sidecars.sort();
    listing.ignored.sort();
    listing.torn_aside.sort();
    listing.pending_seals.sort();
    Ok(listing)
}

/// A table name as writers accept it (clap value parser).
pub fn table_name(value: &str) -> Result<String, CliError> {
    names::check_table_name(value.as_bytes())
        .map(|()| value.to_owned())
        .map_err(CliError::TableName)
}

/// Which of a table's files `cat`, `export` and `cdr` read from a directory, and which of
/// their records (`--since`/`--until`, by record time).
#[derive(Debug, clap::Args)]
pub struct Selection {
    /// Also read the live TABLE_N.log files, which writers may still be appending to (DIR
    /// only).
    #[arg(long)]
    pub live: bool,
    /// Read only the sealed files (TABLE_N.log.sealed-STAMP, gzipped or not), which their
    /// writers renamed complete and never write again: for a consumer that must never see a
    /// file still being written (DIR only).
    #[arg(long, conflicts_with = "live")]
    pub sealed_only: bool,
    /// Only files last modified at or after TIME: 2026-11-23, 2026-11-23T10:00:00,
    /// 2026-11-23T10:00:00+01:00 or @SECONDS (UTC unless an offset is given) (DIR only).
    #[arg(long, value_name = "TIME", value_parser = time::parse_instant)]
    pub modified_since: Option<SystemTime>,
    /// Only files last modified before TIME (same forms as --modified-since) (DIR only).
    #[arg(long, value_name = "TIME", value_parser = time::parse_instant)]
    pub modified_until: Option<SystemTime>,
    #[command(flatten)]
    pub records: Window,
}

impl Selection {
    /// True when `file` is one the selection reads.
    pub fn wants(&self, file: &ListedFile) -> bool {
        let by_rotation = if self.sealed_only {
            file.is_sealed()
        } else {
            self.live || !file.is_live()
        };
        by_rotation && self.wants_modified(file)
    }

    /// True when `file` is live and left out for that alone: `--live` would read it.
    pub fn leaves_live(&self, file: &ListedFile) -> bool {
        file.is_live() && !self.live && !self.sealed_only && self.wants_modified(file)
    }

    fn wants_modified(&self, file: &ListedFile) -> bool {
        self.modified_since
            .is_none_or(|since| file.modified >= since)
            && self
                .modified_until
                .is_none_or(|until| file.modified < until)
    }

    /// The options that choose among a directory's files, by name, when one is given: with
    /// files given one by one, every file given is read.
    pub fn directory_only(&self) -> Option<&'static str> {
        [
            (self.live, "--live"),
            (self.sealed_only, "--sealed-only"),
            (self.modified_since.is_some(), "--modified-since"),
            (self.modified_until.is_some(), "--modified-until"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }
}

/// The files of `table` in `dir` that `selection` wants, in reading order. Files that could
/// not be examined are reported to `status`; `None` when the directory cannot be read or holds
/// no file of the table at all, neither log nor sidecar (a mistyped table name must not pass
/// for an empty one; a table whose sealed files were all consumed still has its sidecar).
pub fn select(
    dir: &Path,
    table: &str,
    selection: &Selection,
    status: &mut Status,
) -> Option<Vec<ListedFile>> {
    let listing = match discover(dir, Some(table.as_bytes())) {
        Ok(listing) => listing,
        Err(e) => {
            status.file_error(&e);
            return None;
        }
    };
    for error in &listing.errors {
        status.file_error(error);
    }
    if listing.files.is_empty() && listing.errors.is_empty() && listing.sidecars.is_empty() {
        let pending = match listing.pending_seals.len() {
            0 => String::new(),
            n => format!(
                " ({n} sealed file(s) waiting for their sync under a .pending name; \
                 `flatstore seal` finishes those of writers that are gone)"
            ),
        };
        status.problem(format_args!(
            "{}: no file of table {table:?}{pending}",
            dir.display()
        ));
        return None;
    }
    Some(
        listing
            .files
            .into_iter()
            .filter(|f| selection.wants(f))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_belong_to_their_table_and_are_no_unknown_file() {
        let dir = std::env::temp_dir().join(format!("flatstore-files-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create");
        for name in [
            "acc_5.log",
            "acc.columns",
            ".acc.columns.4242.tmp",
            "cdr.columns",
            "notes.columns.txt",
        ] {
            fs::write(dir.join(name), b"x\n").expect("write");
        }
        let all = discover(&dir, None).expect("discover");
        assert_eq!(
            all.sidecars,
            [
                (b"acc".to_vec(), dir.join("acc.columns")),
                (b"cdr".to_vec(), dir.join("cdr.columns")),
            ]
        );
        assert_eq!(all.ignored, ["notes.columns.txt"]);
        assert_eq!(all.files.len(), 1);
        let acc = discover(&dir, Some(b"acc")).expect("discover");
        assert_eq!(acc.sidecars, [(b"acc".to_vec(), dir.join("acc.columns"))]);
        assert!(acc.ignored.is_empty());
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
