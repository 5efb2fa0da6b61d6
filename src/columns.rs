//! A table's schema sidecar, `<dir>/<table>.columns` (`header=1`): one line holding the column
//! names (the keys the host gives to insert), encoded and separated exactly like a record's
//! values. Written here by the writers, read here by the `flatstore` command.
//!
//! The file is replaced atomically (written to a hidden temporary file, then renamed), and only
//! when its content changes, so the many writers of a table agree on it without locks and a
//! reader never sees half of it.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use std::collections::HashSet;

use crate::line::decode::decode_field_lenient;
use crate::line::encode::{LineBuf, LineFormat};
use crate::line::fields::split_fields;
use crate::line::value::Value;
use crate::names;

/// Why the column names were not written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ColumnsError {
    /// The host gave no name for a column (a NULL key, or an empty one).
    #[error("column {position} has no name (the host passed no key, or an empty one)")]
    Unnamed {
        /// Its position, from 1.
        position: usize,
    },
    /// The file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The sidecar.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// Make `<dir>/<table>.columns` hold `names` in `format`, with file `mode` when it is created.
pub(crate) fn record<'a>(
    dir: &Path,
    table: &[u8],
    columns: impl IntoIterator<Item = Option<&'a [u8]>>,
    format: LineFormat,
    mode: Option<u32>,
) -> Result<(), ColumnsError> {
    let mut line = LineBuf::new();
    format.encode_record(
        columns.into_iter().enumerate().map(|(i, name)| {
            name.filter(|name| !name.is_empty())
                .map(Value::Str)
                .ok_or(ColumnsError::Unnamed { position: i + 1 })
        }),
        &mut line,
    )?;
    let target = names::sidecar(dir, table);
    if fs::read(&target).is_ok_and(|found| found == line.as_bytes()) {
        return Ok(());
    }
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let temporary = names::sidecar_temporary(
        dir,
        table,
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed),
    );
    let fail = |source| ColumnsError::Io {
        path: target.clone(),
        source,
    };
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(mode.unwrap_or(0o666))
        .open(&temporary)
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .and_then(|()| fs::rename(&temporary, &target));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written.map_err(fail)
}

/// Why a list of names cannot name columns, or a sidecar's content holds none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamesError {
    /// The sidecar is empty.
    #[error("the file is empty")]
    Empty,
    /// The sidecar's line has no `\n`.
    #[error("no newline at the end")]
    NoNewline,
    /// The sidecar holds more than one line.
    #[error("more than one line")]
    Lines,
    /// A name is empty.
    #[error("a name is empty")]
    EmptyName,
    /// A name is given twice.
    #[error("{0:?} is given twice")]
    Twice(String),
    /// A name is not UTF-8 (shown with its bad bytes replaced).
    #[error("the name {0:?} is not UTF-8")]
    NotUtf8(String),
}

/// Why a sidecar could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The system refused to read it.
    #[error("{}: {source}", path.display())]
    Io {
        /// The sidecar.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Its content is not a line of names.
    #[error("{}: malformed column names: {what}", path.display())]
    Malformed {
        /// The sidecar.
        path: PathBuf,
        /// What is wrong.
        what: NamesError,
    },
}

/// `Err` with what is wrong when `names` cannot name columns: a name is empty or given twice.
/// The rule for names given by hand (e.g. `--columns`) and for sidecars alike.
pub fn check_names(names: &[String]) -> Result<(), NamesError> {
    let mut seen = HashSet::new();
    for name in names {
        if name.is_empty() {
            return Err(NamesError::EmptyName);
        }
        if !seen.insert(name) {
            return Err(NamesError::Twice(name.clone()));
        }
    }
    Ok(())
}

/// The names in the sidecar at `path`, decoded (`%HH` and `\xHH` escapes; a `%` or `\` that
/// starts no escape is kept, as record values are decoded); `Ok(None)` when there is no
/// sidecar. Malformed: empty, not exactly one line ending in `\n`, a name that is empty,
/// given twice or not UTF-8.
pub fn read(path: &Path) -> Result<Option<Vec<String>>, ReadError> {
    let content = match fs::read(path) {
        Ok(content) => content,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ReadError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    parse(&content)
        .map(Some)
        .map_err(|what| ReadError::Malformed {
            path: path.to_owned(),
            what,
        })
}

/// The names in a sidecar's `content`, or what is wrong with it.
pub fn parse(content: &[u8]) -> Result<Vec<String>, NamesError> {
    if content.is_empty() {
        return Err(NamesError::Empty);
    }
    let Some(line) = content.strip_suffix(b"\n") else {
        return Err(NamesError::NoNewline);
    };
    if line.contains(&b'\n') {
        return Err(NamesError::Lines);
    }
    let names = split_fields(line)
        .map(|field| {
            let mut name = Vec::new();
            decode_field_lenient(field, &mut name);
            String::from_utf8(name).map_err(|e| {
                NamesError::NotUtf8(String::from_utf8_lossy(e.as_bytes()).into_owned())
            })
        })
        .collect::<Result<Vec<String>, NamesError>>()?;
    check_names(&names)?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::encode::Escape;

    #[test]
    fn names_are_encoded_like_values_and_rewritten_only_when_changed() {
        let dir = std::env::temp_dir().join(format!("flatstore-columns-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let format = LineFormat {
            escape: Escape::Delimiter,
        };
        let names: [&[u8]; 3] = [b"method", b"from|tag", b"time"];
        record(&dir, b"acc", names.map(Some), format, None).expect("written");
        let file = names::sidecar(&dir, b"acc");
        assert_eq!(fs::read(&file).expect("read"), b"method|from%7Ctag|time\n");
        let before = fs::metadata(&file).expect("meta");
        record(&dir, b"acc", names.map(Some), format, None).expect("same");
        let after = fs::metadata(&file).expect("meta");
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(
            before.ino(),
            after.ino(),
            "unchanged content is not rewritten"
        );
        record(&dir, b"acc", [Some(&b"a"[..]), Some(b"b")], format, None).expect("changed");
        assert_eq!(fs::read(&file).expect("read"), b"a|b\n");
        let unnamed = record(&dir, b"acc", [Some(&b"a"[..]), None], format, None);
        assert!(matches!(
            unnamed,
            Err(ColumnsError::Unnamed { position: 2 })
        ));
        let empty = record(&dir, b"acc", [Some(&b""[..])], format, None);
        assert!(matches!(empty, Err(ColumnsError::Unnamed { position: 1 })));
        assert_eq!(fs::read(&file).expect("read"), b"a|b\n", "left as it was");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(&dir).expect("remove");
    }

    #[test]
    fn content_is_one_line_of_distinct_names() {
        let names = |content: &[u8]| parse(content);
        assert_eq!(
            names(b"method|from_tag|time\n"),
            Ok(vec!["method".into(), "from_tag".into(), "time".into()])
        );
        assert_eq!(
            names(b"a%7Cb|c%0Ad|100%|caf\xc3\xa9\n"),
            Ok(vec![
                "a|b".into(),
                "c\nd".into(),
                "100%".into(),
                "café".into()
            ])
        );
        assert_eq!(names(b"only\n"), Ok(vec!["only".into()]));
        for (bad, what) in [
            (&b""[..], "the file is empty"),
            (b"a|b", "no newline at the end"),
            (b"a|b\nc|d\n", "more than one line"),
            (b"a|b\n\n", "more than one line"),
            (b"\n", "a name is empty"),
            (b"a||b\n", "a name is empty"),
            (b"a|b|a\n", "\"a\" is given twice"),
            (b"a|\\x61\n", "\"a\" is given twice"),
            (b"caf\xe9\n", "the name \"caf\u{fffd}\" is not UTF-8"),
        ] {
            assert_eq!(
                names(bad).map_err(|e| e.to_string()),
                Err(what.to_string()),
                "{bad:?}"
            );
        }
    }
}
