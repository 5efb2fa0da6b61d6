//! A directory's log files: which table and writer each belongs to, where it stands in the
//! rotation, and the order they are read in; and which table each `<table>.columns` sidecar
//! belongs to (see [`crate::columns`]).
//!
//! Names are `<table>_<N>.log` (live: writers open this name and append to it), optionally
//! followed by a rotation suffix and `.gz`:
//!
//! - `.<k>` with k of 1 to 7 digits: logrotate's count, `.1` the newest;
//! - `.sealed-<YYYYMMDD>T<HHMMSS>.<nnnnnnnnn>Z`: sealed by its writer, which renamed it
//!   complete at that UTC time (to the nanosecond) and never writes it again. The stamp has
//!   exactly this form (8 digits, `T`, 6 digits, `.`, 9 digits, `Z`); a name with anything
//!   else after `.sealed-` is no log file: the library never makes one, and its place in the
//!   order could not be known;
//! - `.<stamp>` or `-<stamp>` otherwise: a date or stamp (logrotate's `dateext`,
//!   `-20261123`), ordered as text, which is chronological for year-first stamps.
//!
//! Reading order, oldest first: stamped files by stamp, then counted files from the highest
//! count to `.1`, then sealed files by seal stamp (across writers: records come out in seal
//! time order), then live files; within each step (a stamp, a count) by writer number N, then
//! by name.

use std::cmp::Reverse;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::columns;
use crate::status::{IO_ERROR, PROBLEMS, Status};
use crate::time;

/// Where a file stands in its table's rotation. The derived order is the reading order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rotation {
    /// `.log-<stamp>` or `.log.<stamp>`: oldest first by the stamp's bytes.
    Dated(Vec<u8>),
    /// `.log.<k>`: logrotate's count, the highest (oldest) first.
    Numbered(Reverse<u64>),
    /// `.log.sealed-<stamp>`: renamed complete by its writer; oldest first by the stamp's
    /// bytes, which are fixed-width UTC digits, so text order is time order.
    Sealed(Vec<u8>),
    /// `.log`: the name writers append to.
    Live,
}

/// What a file name says: `<table>_<N>.log[<rotation suffix>][.gz]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogName {
    /// The table.
    pub table: Vec<u8>,
    /// The writer's process number N.
    pub number: u64,
    /// Where the file stands in the rotation.
    pub rotation: Rotation,
}

/// Counts of up to this many digits are logrotate's; longer ones are stamps.
const MAX_COUNT_DIGITS: usize = 7;

/// What comes between `.log` and a writer's seal stamp.
const SEALED: &[u8] = flatstore::seal::SEALED_MARK.as_bytes();
/// The form of a seal stamp, `D` standing for a digit: `20261123T174512.123456789Z`.
const SEAL_STAMP: &[u8] = b"DDDDDDDDTDDDDDD.DDDDDDDDDZ";

impl LogName {
    /// Parse a file name; `None` when it is no table's log file.
    pub fn parse(name: &[u8]) -> Option<LogName> {
        let (name, gzip) = match name.strip_suffix(b".gz") {
            Some(name) => (name, true),
            None => (name, false),
        };
        // A table name may itself contain ".log": the first ".log" that ends `<table>_<N>`
        // and is followed by a rotation suffix wins.
        (0..name.len())
            .filter(|&i| name[i..].starts_with(b".log"))
            .find_map(|i| {
                let (table, number) = split_number(&name[..i])?;
                let rotation = rotation(&name[i + 4..])?;
                // A compressed file is never the one writers open.
                if gzip && rotation == Rotation::Live {
                    return None;
                }
                Some(LogName {
                    table: table.to_vec(),
                    number,
                    rotation,
                })
            })
    }
}

fn digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// `<table>_<N>` into the table and N.
fn split_number(stem: &[u8]) -> Option<(&[u8], u64)> {
    let at = stem.iter().rposition(|&b| b == b'_')?;
    let table = &stem[..at];
    let number = digits(&stem[at + 1..])?;
    (!table.is_empty()).then_some((table, number))
}

/// `stamp` has exactly the form of [`SEAL_STAMP`].
fn is_seal_stamp(stamp: &[u8]) -> bool {
    stamp.len() == SEAL_STAMP.len()
        && stamp.iter().zip(SEAL_STAMP).all(|(&b, &form)| match form {
            b'D' => b.is_ascii_digit(),
            _ => b == form,
        })
}

fn rotation(suffix: &[u8]) -> Option<Rotation> {
    if let Some(stamp) = suffix.strip_prefix(SEALED) {
        return is_seal_stamp(stamp).then(|| Rotation::Sealed(stamp.to_vec()));
    }
    match suffix {
        [] => Some(Rotation::Live),
        [b'.', count @ ..] if count.len() <= MAX_COUNT_DIGITS && digits(count).is_some() => {
            digits(count).map(|k| Rotation::Numbered(Reverse(k)))
        }
        [b'.' | b'-', stamp @ ..] if !stamp.is_empty() => Some(Rotation::Dated(stamp.to_vec())),
        _ => None,
    }
}

/// Why a file could not be read, or not completely.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The system refused: the file cannot be examined, opened or read (exit status 2).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The content is not a flatstore log, or not all of it: corrupt gzip, binary content
    /// (exit status 1).
    #[error("{}: {what}", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
}

impl FileError {
    /// The exit status this error calls for.
    pub fn exit_status(&self) -> u8 {
        match self {
            FileError::Io { .. } => IO_ERROR,
            FileError::Bad { .. } => PROBLEMS,
        }
    }
}

/// One log file of a table, as found in the directory.
#[derive(Debug)]
pub struct LogFile {
    /// Its path (the directory joined with its name).
    pub path: PathBuf,
    /// Its name, for reports (lossy where it is not UTF-8).
    pub file_name: String,
    /// What the name says.
    pub name: LogName,
    /// Bytes on disk when it was listed.
    pub size: u64,
    /// Last modification when it was listed.
    pub modified: SystemTime,
}

impl LogFile {
    /// A live file: writers open this name and may still append to it.
    pub fn is_live(&self) -> bool {
        self.name.rotation == Rotation::Live
    }

    /// A sealed file: complete, its writer never writes it again.
    pub fn is_sealed(&self) -> bool {
        matches!(self.name.rotation, Rotation::Sealed(_))
    }
}

/// What a directory holds.
#[derive(Debug, Default)]
pub struct Listing {
    /// The log files, in reading order: by table, then as the module docs say.
    pub files: Vec<LogFile>,
    /// `<table>.columns` sidecars: the table, and the path.
    pub sidecars: Vec<(Vec<u8>, PathBuf)>,
    /// Names that are no table's log or sidecar (hidden names such as `.flatstore.ctl` left
    /// out).
    pub ignored: Vec<String>,
    /// Log files that could not be examined, or are no regular file.
    pub errors: Vec<FileError>,
    /// `.<log name>.torn` files: torn records that a writer moved out of a log on opening it
    /// (see the library's `logfile` module), with the log's name.
    pub torn_aside: Vec<(PathBuf, String)>,
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
        let torn_of = os_name
            .as_bytes()
            .strip_prefix(b".")
            .and_then(|n| n.strip_suffix(b".torn"))
            .and_then(|log| LogName::parse(log).map(|name| (log, name)));
        if let Some((log, name)) = torn_of {
            if table.is_none_or(|t| t == name.table) {
                let log = String::from_utf8_lossy(log).into_owned();
                listing.torn_aside.push((entry.path(), log));
            }
            continue;
        }
        let Some(name) = LogName::parse(os_name.as_bytes()) else {
            if let Some(of) = columns::table_of(os_name.as_bytes()) {
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
            Ok(meta) => listing.files.push(LogFile {
                path,
                file_name,
                name,
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            }),
        }
    }
    listing.files.sort_by(|a, b| {
        (&a.name.table, &a.name.rotation, a.name.number, &a.file_name).cmp(&(
            &b.name.table,
            &b.name.rotation,
            b.name.number,
            &b.file_name,
        ))
    });
    listing.sidecars.sort();
    listing.ignored.sort();
    listing.torn_aside.sort();
    Ok(listing)
}

/// A table name as writers accept it (clap value parser).
pub fn table_name(value: &str) -> Result<String, String> {
    flatstore::store::check_table_name(value.as_bytes())
        .map(|()| value.to_owned())
        .map_err(|e| e.to_string())
}

/// Which of a table's files `cat` and `export` read.
#[derive(Debug, clap::Args)]
pub struct Selection {
    /// Also read the live TABLE_N.log files, which writers may still be appending to.
    #[arg(long)]
    pub live: bool,
    /// Read only the sealed files (TABLE_N.log.sealed-STAMP, gzipped or not), which their
    /// writers renamed complete and never write again: for a consumer that must never see a
    /// file still being written.
    #[arg(long, conflicts_with = "live")]
    pub sealed_only: bool,
    /// Only files last modified at or after TIME: 2026-11-23, 2026-11-23T10:00:00,
    /// 2026-11-23T10:00:00+01:00 or @SECONDS (UTC unless an offset is given).
    #[arg(long, value_name = "TIME", value_parser = time::parse_instant)]
    pub since: Option<SystemTime>,
    /// Only files last modified before TIME (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = time::parse_instant)]
    pub until: Option<SystemTime>,
}

impl Selection {
    fn wants(&self, file: &LogFile) -> bool {
        let by_rotation = if self.sealed_only {
            file.is_sealed()
        } else {
            self.live || !file.is_live()
        };
        by_rotation
            && self.since.is_none_or(|since| file.modified >= since)
            && self.until.is_none_or(|until| file.modified < until)
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
) -> Option<Vec<LogFile>> {
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
        status.problem(format_args!(
            "{}: no file of table {table:?}",
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

    fn parse(name: &str) -> Option<(String, u64, Rotation)> {
        LogName::parse(name.as_bytes()).map(|n| {
            (
                String::from_utf8(n.table).expect("utf8"),
                n.number,
                n.rotation,
            )
        })
    }

    #[test]
    fn names_and_their_place_in_the_rotation() {
        let dated = |s: &str| Rotation::Dated(s.as_bytes().to_vec());
        let counted = |k| Rotation::Numbered(Reverse(k));
        assert_eq!(parse("acc_5.log"), Some(("acc".into(), 5, Rotation::Live)));
        assert_eq!(parse("acc_5.log.2.gz"), Some(("acc".into(), 5, counted(2))));
        assert_eq!(parse("acc_5.log.1"), Some(("acc".into(), 5, counted(1))));
        assert_eq!(
            parse("acc_missed_12.log-20261123.gz"),
            Some(("acc_missed".into(), 12, dated("20261123")))
        );
        assert_eq!(
            parse("acc_5.log.1763892915"),
            Some(("acc".into(), 5, dated("1763892915")))
        );
        assert_eq!(
            parse("x.log_7.log.3"),
            Some(("x.log".into(), 7, counted(3)))
        );
        for not_ours in [
            ".flatstore.ctl",
            "acc.log",
            "acc_.log",
            "_5.log",
            "acc_5x.log",
            "acc_5.log.gz",
            "acc_5.logx",
            "acc_5.log-",
            "notes.txt",
        ] {
            assert_eq!(parse(not_ours), None, "{not_ours}");
        }
        assert!(dated("20261122") < dated("20261123"));
        assert!(dated("20261123") < counted(3));
        assert!(counted(3) < counted(2) && counted(1) < Rotation::Live);
    }

    #[test]
    fn sealed_names_and_their_place_in_the_order() {
        let sealed = |s: &str| Rotation::Sealed(s.as_bytes().to_vec());
        let stamp = "20261123T174512.123456789Z";
        assert_eq!(
            parse(&format!("acc_129.log.sealed-{stamp}")),
            Some(("acc".into(), 129, sealed(stamp)))
        );
        assert_eq!(
            parse(&format!("acc_missed_7.log.sealed-{stamp}.gz")),
            Some(("acc_missed".into(), 7, sealed(stamp)))
        );
        for malformed in [
            "acc_5.log.sealed-",
            "acc_5.log.sealed-20261123",
            "acc_5.log.sealed-20261123T174512Z",
            "acc_5.log.sealed-20261123T174512.12345678Z",
            "acc_5.log.sealed-20261123T174512.1234567890Z",
            "acc_5.log.sealed-20261123t174512.123456789Z",
            "acc_5.log.sealed-20261123T174512.123456789",
            "acc_5.log.sealed-20261123T174512,123456789Z",
            "acc_5.log.sealed-2026112xT174512.123456789Z",
            "acc_5.log.sealed-20261123T174512.123456789Z.tmp",
            "acc_5.log.sealed-20261123T174512.123456789Z.gz.tmp",
            "acc_5.log.sealed-20261123T174512.123456789Z.1",
        ] {
            assert_eq!(parse(malformed), None, "{malformed}");
        }
        // Not the sealed form: `-sealed-…` is a dated stamp as any other.
        assert_eq!(
            parse(&format!("acc_5.log-sealed-{stamp}")),
            Some((
                "acc".into(),
                5,
                Rotation::Dated(format!("sealed-{stamp}").into_bytes())
            ))
        );
        let counted = |k| Rotation::Numbered(Reverse(k));
        assert!(counted(1) < sealed("19700101T000000.000000000Z"));
        assert!(sealed("20261123T174512.123456789Z") < sealed("20261123T174512.123456790Z"));
        assert!(sealed("20261123T235959.999999999Z") < sealed("20261124T000000.000000000Z"));
        assert!(sealed("99991231T235959.999999999Z") < Rotation::Live);
    }

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
