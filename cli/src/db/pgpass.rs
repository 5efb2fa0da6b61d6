//! The password file of libpq, `~/.pgpass` (or the file `PGPASSFILE` names), read as libpq
//! reads it: lines `hostname:port:database:username:password`, `#` comments, `*` matching
//! anything in the first four fields, `\:` and `\\` escaping, the first matching line wins;
//! a file that its group or others may read is ignored with a warning. The `postgres` crate
//! reads no password file itself.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// What a line must match: the connection's host (a host name, or a socket directory), port,
/// database and user.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// The host name; for a Unix socket its directory (libpq's default directory matches as
    /// `localhost`, see [`super::connect`]).
    pub host: &'a str,
    /// The port, in decimal.
    pub port: &'a str,
    /// The database.
    pub database: &'a str,
    /// The user.
    pub user: &'a str,
}

/// Where libpq looks: `PGPASSFILE`, else `~/.pgpass`; `None` without a home directory.
pub fn location() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| Path::new(&home).join(".pgpass"))
}

/// The password of the first line of the file at `path` that matches `wanted`. `Ok(None)`
/// when there is no file or no line matches; a file that is no regular file or that group or
/// others may read is ignored, with `warn` called on what libpq would print.
pub fn lookup(
    path: &Path,
    wanted: Wanted<'_>,
    warn: impl FnOnce(String),
) -> io::Result<Option<String>> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        warn(format!(
            "password file \"{}\" is not a plain file",
            path.display()
        ));
        return Ok(None);
    }
    if meta.permissions().mode() & 0o077 != 0 {
        warn(format!(
            "password file \"{}\" has group or world access; permissions should be u=rw \
             (0600) or less",
            path.display()
        ));
        return Ok(None);
    }
    let content = fs::read(path)?;
    Ok(find(&String::from_utf8_lossy(&content), wanted))
}

/// The password of the first line of `content` that matches `wanted`.
pub fn find(content: &str, wanted: Wanted<'_>) -> Option<String> {
    let want = [wanted.host, wanted.port, wanted.database, wanted.user];
    content.lines().find_map(|line| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') || line.is_empty() {
            return None;
        }
        let mut rest = line;
        for wanted in want {
            let (field, after) = split_field(rest)?;
            if field != "*" && unescape(field) != wanted {
                return None;
            }
            rest = after;
        }
        Some(unescape(rest))
    })
}

/// The text before the first unescaped `:` and the text after it; `None` when there is none.
fn split_field(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ':' => return Some((&text[..i], &text[i + 1..])),
            _ => {}
        }
    }
    None
}

/// `\x` read as `x`.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANTED: Wanted<'static> = Wanted {
        host: "db.example.com",
        port: "5432",
        database: "billing",
        user: "loader",
    };

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let file = "\
# a comment:*:*:*:nope
other.example.com:5432:billing:loader:wrong host
db.example.com:5433:billing:loader:wrong port
db.example.com:*:billing:loader:pa\\:ss\\\\word:with colon\r
*:*:*:*:fallback
";
        assert_eq!(
            find(file, WANTED).as_deref(),
            Some("pa:ss\\word:with colon")
        );
        assert_eq!(
            find(
                file,
                Wanted {
                    user: "other",
                    ..WANTED
                }
            )
            .as_deref(),
            Some("fallback")
        );
        assert_eq!(find("too:few:fields\n", WANTED), None);
        assert_eq!(
            find(
                "/tmp/x\\:y:5432:billing:loader:sock\n",
                Wanted {
                    host: "/tmp/x:y",
                    ..WANTED
                }
            )
            .as_deref(),
            Some("sock")
        );
    }

    #[test]
    fn a_file_others_may_read_is_ignored_with_a_warning() {
        let dir = std::env::temp_dir().join(format!("flatstore-pgpass-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("pgpass");
        fs::write(&path, "*:*:*:*:secret\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut warned = String::new();
        let found = lookup(&path, WANTED, |w| warned = w).expect("lookup");
        assert_eq!(found, None);
        assert!(warned.contains("group or world access"), "{warned}");
        assert!(!warned.contains("secret"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let found = lookup(&path, WANTED, |w| panic!("{w}")).expect("lookup");
        assert_eq!(found.as_deref(), Some("secret"));
        assert_eq!(
            lookup(&dir.join("missing"), WANTED, |w| panic!("{w}")).expect("lookup"),
            None
        );
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
