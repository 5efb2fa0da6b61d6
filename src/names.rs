//! Every name flatstore gives a file in a log directory, built and parsed in this one place.
//!
//! | name | what it is |
//! |---|---|
//! | `<table>_<N>.log` | a live log: the writer with process number N appends to it |
//! | `<table>_<N>.log.sealed-<YYYYMMDD>T<HHMMSS>.<nnnnnnnnn>Z` | sealed by its writer at that UTC time; never written again |
//! | `.<sealed log name>.pending` | sealed, waiting for its sync (`fsync` other than `never`) before it takes its sealed name |
//! | `<table>_<N>.log.<k>`, `.log-<stamp>`, `.log.<stamp>` | renamed by logrotate (a count, or `dateext`) |
//! | any of the rotated names + `.gz` | compressed after rotation |
//! | `.<log name>.torn` | torn last lines a writer moved out of a log when it opened it |
//! | `<table>.columns` | the table's column names (`header=1`) |
//! | `.<table>.columns.<pid>.<k>.tmp` | a sidecar being written, renamed over the sidecar |
//! | `.flatstore.ctl` | the control file: rotation generation and writer slots |
//!
//! Table names are bytes: any bytes a writer accepts ([`check_table_name`]) name the same
//! files whether or not they are UTF-8.

use std::cmp::Reverse;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// Name of the control file inside the log directory (hidden from `*.log` globs).
pub const CONTROL_FILE: &str = ".flatstore.ctl";

/// Longest table name accepted: the file name `<table>_<N>.log` must fit `NAME_MAX` (255).
pub const MAX_TABLE_LEN: usize = 200;

/// What comes between a live log's name and its seal stamp.
const SEALED_MARK: &[u8] = b".sealed-";
/// The form of a seal stamp, `D` standing for a digit: `20261123T174512.123456789Z`.
const SEAL_STAMP: &[u8] = b"DDDDDDDDTDDDDDD.DDDDDDDDDZ";
/// What follows a sealed log's name (after a leading `.`) while it waits for its sync.
const PENDING_SUFFIX: &[u8] = b".pending";
/// What follows the table's name in its sidecar's name.
const SIDECAR_SUFFIX: &[u8] = b".columns";
/// logrotate counts have up to this many digits; longer numbers are stamps.
const MAX_COUNT_DIGITS: usize = 7;

/// Check that `table` names files inside the log directory: not empty, at most
/// [`MAX_TABLE_LEN`] bytes, no `/`, no NUL, no `..`.
pub fn check_table_name(table: &[u8]) -> Result<()> {
    let refuse = |reason| Error::BadTable {
        name: String::from_utf8_lossy(table).into_owned(),
        reason,
    };
    if table.is_empty() {
        return Err(refuse("empty"));
    }
    if table.len() > MAX_TABLE_LEN {
        return Err(refuse("longer than 200 bytes"));
    }
    if table.contains(&b'/') {
        return Err(refuse("contains '/'"));
    }
    if table.contains(&0) {
        return Err(refuse("contains NUL"));
    }
    if table.windows(2).any(|w| w == b"..") {
        return Err(refuse("contains '..'"));
    }
    Ok(())
}

/// `<dir>/<table>_<n>.log`: the live log of `table` written by the process numbered `n`.
pub fn live_log(dir: &Path, table: &[u8], n: u64) -> PathBuf {
    let mut name = table.to_vec();
    name.extend_from_slice(format!("_{n}.log").as_bytes());
    dir.join(OsStr::from_bytes(&name))
}

/// The sealed name of the live log `live` for a seal at `at`.
pub fn sealed_log(live: &Path, at: SystemTime) -> PathBuf {
    let at: DateTime<Utc> = at.into();
    let mut name = live.file_name().unwrap_or_default().to_os_string();
    name.push(OsStr::from_bytes(SEALED_MARK));
    name.push(at.format("%Y%m%dT%H%M%S.%9fZ").to_string());
    live.with_file_name(name)
}

/// `.<name>.torn` beside the log `log`: where torn last lines of the log are moved.
pub fn torn_aside(log: &Path) -> PathBuf {
    let mut name = b".".to_vec();
    name.extend_from_slice(log.file_name().unwrap_or_default().as_bytes());
    name.extend_from_slice(b".torn");
    log.with_file_name(OsStr::from_bytes(&name))
}

/// `.<name>.pending` beside the sealed log `sealed`: the file under this name is sealed (never
/// written again) but not yet synced; it takes the name `sealed` once it is.
pub fn pending_seal(sealed: &Path) -> PathBuf {
    let mut name = b".".to_vec();
    name.extend_from_slice(sealed.file_name().unwrap_or_default().as_bytes());
    name.extend_from_slice(PENDING_SUFFIX);
    sealed.with_file_name(OsStr::from_bytes(&name))
}

/// `<dir>/<table>.columns`: the table's column names.
pub fn sidecar(dir: &Path, table: &[u8]) -> PathBuf {
    let mut name = table.to_vec();
    name.extend_from_slice(SIDECAR_SUFFIX);
    dir.join(OsStr::from_bytes(&name))
}

/// `<dir>/.<table>.columns.<pid>.<k>.tmp`: a sidecar being written by process `pid` (its
/// `k`th write), hidden and never read as a sidecar.
pub fn sidecar_temporary(dir: &Path, table: &[u8], pid: u32, k: u64) -> PathBuf {
    let mut name = b".".to_vec();
    name.extend_from_slice(table);
    name.extend_from_slice(format!(".columns.{pid}.{k}.tmp").as_bytes());
    dir.join(OsStr::from_bytes(&name))
}

/// Where a log stands in its table's rotation. The derived order is the reading order,
/// oldest first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rotation {
    /// `.log-<stamp>` or `.log.<stamp>` (logrotate's `dateext`, or any stamp of more than 7
    /// digits): oldest first by the stamp's bytes, which is time order for year-first stamps.
    Dated(Vec<u8>),
    /// `.log.<k>`: logrotate's count, the highest (oldest) first.
    Numbered(Reverse<u64>),
    /// `.log.sealed-<stamp>`: renamed complete by its writer; oldest first by the stamp, which
    /// is fixed-width UTC digits.
    Sealed(Vec<u8>),
    /// `.log`: the name writers append to.
    Live,
}

/// What a log's file name says: `<table>_<N>.log[<rotation suffix>][.gz]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogName {
    /// The table.
    pub table: Vec<u8>,
    /// The writer's process number N.
    pub number: u64,
    /// Where the file stands in the rotation.
    pub rotation: Rotation,
    /// Compressed (`.gz`); never true for a live log.
    pub gzip: bool,
}

impl LogName {
    /// Parse a file name; `None` when it is no table's log (a sealed name whose stamp is not
    /// exactly of the form the writers make is none either: its place in the order could not
    /// be known).
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
                if gzip && rotation == Rotation::Live {
                    return None;
                }
                Some(LogName {
                    table: table.to_vec(),
                    number,
                    rotation,
                    gzip,
                })
            })
    }

    /// True for the live name, the one writers open and append to.
    pub fn is_live(&self) -> bool {
        self.rotation == Rotation::Live
    }

    /// True for a sealed name: complete, its writer never writes it again.
    pub fn is_sealed(&self) -> bool {
        matches!(self.rotation, Rotation::Sealed(_))
    }
}

/// The table whose sidecar a file named `name` is; `None` when it is none (the table's name
/// must be one that writers accept).
pub fn sidecar_table(name: &[u8]) -> Option<&[u8]> {
    let table = name.strip_suffix(SIDECAR_SUFFIX)?;
    check_table_name(table).ok()?;
    Some(table)
}

/// The name of the log whose torn lines a file named `name` holds (`.<log>.torn`), with what
/// that name says; `None` when it is no such file.
pub fn torn_of(name: &[u8]) -> Option<(&[u8], LogName)> {
    let log = name.strip_prefix(b".")?.strip_suffix(b".torn")?;
    LogName::parse(log).map(|parsed| (log, parsed))
}

/// The sealed name a file named `name` waits for (`.<sealed log>.pending`, see
/// [`pending_seal`]), with what that name says; `None` when it is no such file.
pub fn pending_seal_of(name: &[u8]) -> Option<(&[u8], LogName)> {
    let sealed = name.strip_prefix(b".")?.strip_suffix(PENDING_SUFFIX)?;
    LogName::parse(sealed)
        .filter(|parsed| parsed.is_sealed() && !parsed.gzip)
        .map(|parsed| (sealed, parsed))
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
    if let Some(stamp) = suffix.strip_prefix(SEALED_MARK) {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    fn file_name(path: &Path) -> &[u8] {
        path.file_name().expect("a file name").as_bytes()
    }

    #[test]
    fn every_name_built_here_parses_back() {
        let dir = Path::new("/var/log/acc");
        let at = SystemTime::UNIX_EPOCH + Duration::new(1_795_455_912, 123_456_789);
        for table in [&b"acc"[..], b"missed_calls", b"x.log", b"caf\xe9", b"a|b"] {
            check_table_name(table).expect("accepted");
            let live = live_log(dir, table, 129);
            assert_eq!(live.parent(), Some(dir));
            let name = LogName::parse(file_name(&live)).expect("live parses");
            assert_eq!((&name.table[..], name.number), (table, 129));
            assert!(name.is_live() && !name.gzip);

            let sealed = sealed_log(&live, at);
            let name = LogName::parse(file_name(&sealed)).expect("sealed parses");
            assert_eq!(&name.table[..], table);
            assert_eq!(
                name.rotation,
                Rotation::Sealed(b"20261123T174512.123456789Z".to_vec())
            );
            let mut gzipped = file_name(&sealed).to_vec();
            gzipped.extend_from_slice(b".gz");
            assert!(LogName::parse(&gzipped).is_some_and(|n| n.gzip && n.is_sealed()));

            let pending = pending_seal(&sealed);
            let (waits_for, name) = pending_seal_of(file_name(&pending)).expect("pending parses");
            assert_eq!(waits_for, file_name(&sealed));
            assert!(name.is_sealed());
            assert_eq!(
                LogName::parse(file_name(&pending)),
                None,
                "hidden from readers"
            );
            assert_eq!(pending_seal_of(file_name(&sealed)), None);
            assert_eq!(pending_seal_of(&[b".", file_name(&live)].concat()), None);

            let torn = torn_aside(&live);
            let (log, name) = torn_of(file_name(&torn)).expect("torn parses");
            assert_eq!(log, file_name(&live));
            assert!(name.is_live());

            let sidecar = sidecar(dir, table);
            assert_eq!(sidecar_table(file_name(&sidecar)), Some(table));
            let temporary = sidecar_temporary(dir, table, 4242, 7);
            assert_eq!(sidecar_table(file_name(&temporary)), None);
            assert_eq!(LogName::parse(file_name(&temporary)), None);
        }
        assert_eq!(LogName::parse(CONTROL_FILE.as_bytes()), None);
        assert_eq!(sidecar_table(CONTROL_FILE.as_bytes()), None);
    }

    #[test]
    fn table_names_that_could_leave_the_directory_are_refused() {
        for bad in [&b""[..], b"a/b", b"..", b"a..b", b"a\0b", &[b'x'; 201]] {
            assert!(check_table_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_table_name(&[b'x'; 200]).is_ok());
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
    fn sidecar_names_and_their_tables() {
        assert_eq!(sidecar_table(b"acc.columns"), Some(&b"acc"[..]));
        assert_eq!(
            sidecar_table(b"acc_missed.columns"),
            Some(&b"acc_missed"[..])
        );
        assert_eq!(sidecar_table(b".columns"), None);
        assert_eq!(sidecar_table(b"acc.columns.123.tmp"), None);
        assert_eq!(sidecar_table(b"a..b.columns"), None);
        assert_eq!(sidecar_table(b"acc.column"), None);
    }
}
