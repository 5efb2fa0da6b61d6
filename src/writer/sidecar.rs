//! The schema sidecar (`header=1`): `<dir>/<table>.columns`, one line holding the column names
//! (the keys the host gives to insert), encoded and separated exactly like a record's values.
//!
//! The file is replaced atomically (written to a hidden temporary file, then renamed), and only
//! when its content changes, so the many writers of a table agree on it without locks and a
//! reader never sees half of it.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::line::encode::{LineBuf, LineFormat};
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
}
