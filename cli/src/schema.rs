//! A table's schema sidecar, `<dir>/<table>.columns`: the column names that writers with
//! `header=1` keep next to the table's logs.
//!
//! Its content is exactly one line ending in `\n`: the names, encoded as record values are
//! (same escapes) and separated by `|`. Writers replace it whole (a hidden temporary file,
//! then a rename), so it is never seen half written.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;

use flatstore::line::decode::{decode_field_lenient, split_fields};

use crate::listing::FileError;

/// `Err` with what is wrong when `names` cannot name columns: a name is empty or given twice.
/// The rule for `export --columns` and for sidecars alike.
pub fn check_names(names: &[String]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for name in names {
        if name.is_empty() {
            return Err("a name is empty".into());
        }
        if !seen.insert(name) {
            return Err(format!("{name:?} is given twice"));
        }
    }
    Ok(())
}

/// The names in the sidecar at `path`, decoded (`%HH` and `\xHH` escapes; a `%` or `\` that
/// starts no escape is kept, as `export` decodes values); `Ok(None)` when there is no sidecar.
///
/// Fails with [`FileError::Io`] when the system refuses to read it, with [`FileError::Bad`]
/// when it is malformed: empty, not exactly one line ending in `\n`, a name that is empty,
/// given twice or not UTF-8.
pub fn read(path: &Path) -> Result<Option<Vec<String>>, FileError> {
    let content = match fs::read(path) {
        Ok(content) => content,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(FileError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    parse(&content).map(Some).map_err(|what| FileError::Bad {
        path: path.to_owned(),
        what: format!("malformed column names: {what}"),
    })
}

/// The names in a sidecar's `content`, or what is wrong with it.
fn parse(content: &[u8]) -> Result<Vec<String>, String> {
    if content.is_empty() {
        return Err("the file is empty".into());
    }
    let Some(line) = content.strip_suffix(b"\n") else {
        return Err("no newline at the end".into());
    };
    if line.contains(&b'\n') {
        return Err("more than one line".into());
    }
    let names = split_fields(line)
        .map(|field| {
            let mut name = Vec::new();
            decode_field_lenient(field, &mut name);
            String::from_utf8(name).map_err(|e| {
                format!(
                    "the name {:?} is not UTF-8",
                    String::from_utf8_lossy(e.as_bytes())
                )
            })
        })
        .collect::<Result<Vec<String>, String>>()?;
    check_names(&names)?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            (b"a|%61\n", "\"a\" is given twice"),
            (b"caf\xe9\n", "the name \"caf\u{fffd}\" is not UTF-8"),
        ] {
            assert_eq!(names(bad), Err(what.to_string()), "{bad:?}");
        }
    }
}
