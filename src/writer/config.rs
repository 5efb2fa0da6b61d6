//! The database URL and the module parameters, validated once at init.

use std::ffi::CStr;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::line::encode::{Escape, LineFormat};
use crate::writer::policy::{Durability, SealLimits};

/// Every parameter name [`Params::set`] knows, NUL-terminated for the hosts that export them
/// (Kamailio's modparams): Kamailio's names (`flush`, `encode_delimiter`, and the four its stock
/// module only accepts at their defaults) and ours. The table in `docs/operations.md` is
/// checked against this list.
pub const PARAMETER_NAMES: [&CStr; 17] = [
    c"flush",
    c"encode_delimiter",
    c"flush_interval",
    c"buffer_size",
    c"escape",
    c"file_mode",
    c"rotate_signal",
    c"field_delimiter",
    c"record_delimiter",
    c"escape_char",
    c"file_suffix",
    c"rotate_records",
    c"rotate_bytes",
    c"rotate_seconds",
    c"fsync",
    c"fsync_interval",
    c"header",
];

/// URL scheme the host's `db_url` names us by.
pub(crate) const SCHEME: &str = "flatstore";

/// When a record reaches the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// `flush=1`: every insert is one `write(2)` before it returns.
    EveryRecord,
    /// `flush=0`: whole lines are collected per file and written when the buffer is full, on
    /// rotate, close and process exit, and by a helper thread at most `interval` after they were
    /// inserted.
    Buffered {
        /// Longest time a record may wait in memory.
        interval: Duration,
        /// Bytes collected per file before they are written.
        buffer_size: usize,
    },
}

/// The module parameters (Kamailio `modparam`, `flat_set_param`, or the URL query).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    flush: bool,
    flush_interval: Duration,
    buffer_size: usize,
    escape: Escape,
    file_mode: Option<u32>,
    rotate_signal: Option<i32>,
    seal: SealLimits,
    durability: Durability,
    fsync_interval: Duration,
    header: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            flush: true,
            flush_interval: Duration::from_secs(1),
            buffer_size: 64 * 1024,
            escape: Escape::Delimiter,
            file_mode: None,
            rotate_signal: None,
            seal: SealLimits::default(),
            durability: Durability::Never,
            fsync_interval: Duration::from_secs(1),
            header: false,
        }
    }
}

/// Parameters of Kamailio's stock module that do not change what its acc path writes: accepted
/// at their default values only, so that an existing configuration loads unchanged.
const STOCK_FIXED: [(&str, &str); 4] = [
    ("field_delimiter", "|"),
    ("record_delimiter", "\n"),
    ("escape_char", "\\"),
    ("file_suffix", ".log"),
];

/// Bounds of the numeric parameters.
const MIN_BUFFER: usize = 4 * 1024;
const MAX_BUFFER: usize = 64 * 1024 * 1024;
const MAX_INTERVAL_SECS: f64 = 3600.0;
const MAX_SEAL_SECS: f64 = 31.0 * 24.0 * 3600.0;

impl Params {
    /// Set one parameter by name, with one of the values that the table in
    /// `docs/operations.md` (Parameters) lists for it. Unknown names and malformed values are refused
    /// with a message naming them; the parameters are then unchanged.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        if let Some((_, default)) = STOCK_FIXED.iter().find(|(n, _)| *n == name) {
            return if value == *default {
                Ok(())
            } else {
                Err(Error::param(
                    name,
                    format!("only {default:?} is supported (the stock module ignores it for acc)"),
                ))
            };
        }
        let value = value.trim();
        match name {
            "flush" => self.flush = parse_bool(name, value)?,
            "flush_interval" => {
                self.flush_interval = parse_seconds(name, value, 0.001, MAX_INTERVAL_SECS)?
            }
            "fsync_interval" => {
                self.fsync_interval = parse_seconds(name, value, 0.001, MAX_INTERVAL_SECS)?
            }
            "rotate_seconds" => {
                self.seal.age = if value == "0" {
                    None
                } else {
                    Some(parse_seconds(name, value, 0.01, MAX_SEAL_SECS)?)
                }
            }
            "rotate_records" => {
                let records: u64 = value
                    .parse()
                    .map_err(|_| Error::param(name, format!("{value:?} is not a record count")))?;
                self.seal.records = NonZeroU64::new(records);
            }
            "rotate_bytes" => self.seal.bytes = NonZeroU64::new(parse_size(name, value)?),
            "fsync" => {
                self.durability = match value {
                    "never" => Durability::Never,
                    "rotate" => Durability::OnSeal,
                    "interval" => Durability::Interval,
                    "always" => Durability::EveryWrite,
                    _ => {
                        return Err(Error::param(
                            name,
                            format!("{value:?} is not one of never, rotate, interval, always"),
                        ));
                    }
                }
            }
            "header" => self.header = parse_bool(name, value)?,
            "buffer_size" => {
                let bytes = parse_size(name, value)?;
                if !(MIN_BUFFER as u64..=MAX_BUFFER as u64).contains(&bytes) {
                    return Err(Error::param(
                        name,
                        format!("{bytes} is outside {MIN_BUFFER}..{MAX_BUFFER} bytes"),
                    ));
                }
                // Within MAX_BUFFER, so it fits a usize.
                self.buffer_size = bytes as usize;
            }
            "escape" => {
                self.escape = match value {
                    "delimiter" => Escape::Delimiter,
                    "strict" => Escape::Strict,
                    "none" => Escape::None,
                    "hex" => Escape::Hex,
                    _ => {
                        return Err(Error::param(
                            name,
                            format!("{value:?} is not one of delimiter, strict, none, hex"),
                        ));
                    }
                }
            }
            "encode_delimiter" => {
                self.escape = if parse_bool(name, value)? {
                    Escape::Delimiter
                } else {
                    Escape::None
                }
            }
            "file_mode" => {
                let mode = u32::from_str_radix(value, 8)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| {
                        Error::param(name, format!("{value:?} is not an octal mode 0000..0777"))
                    })?;
                self.file_mode = Some(mode);
            }
            "rotate_signal" => {
                self.rotate_signal = match value.trim_start_matches("SIG") {
                    "none" | "" => None,
                    "USR1" => Some(libc::SIGUSR1),
                    "USR2" => Some(libc::SIGUSR2),
                    "HUP" => Some(libc::SIGHUP),
                    _ => {
                        return Err(Error::param(
                            name,
                            format!("{value:?} is not one of USR1, USR2, HUP, none"),
                        ));
                    }
                }
            }
            _ => {
                let known: Vec<&str> = PARAMETER_NAMES
                    .iter()
                    .filter_map(|n| n.to_str().ok())
                    .collect();
                let known = known.join(", ");
                return Err(Error::param(
                    name,
                    format!("unknown parameter (known: {known})"),
                ));
            }
        }
        Ok(())
    }

    fn flush_policy(&self) -> Flush {
        if self.flush {
            Flush::EveryRecord
        } else {
            Flush::Buffered {
                interval: self.flush_interval,
                buffer_size: self.buffer_size,
            }
        }
    }
}

/// Seconds, decimals allowed, within `min..=max`.
fn parse_seconds(name: &str, value: &str, min: f64, max: f64) -> Result<Duration> {
    let secs: f64 = value
        .parse()
        .map_err(|_| Error::param(name, format!("{value:?} is not a number of seconds")))?;
    if !(min..=max).contains(&secs) {
        return Err(Error::param(
            name,
            format!("{value} is outside {min}..{max} seconds"),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A byte count, optionally with a binary `K`, `M` or `G` suffix.
fn parse_size(name: &str, value: &str) -> Result<u64> {
    let (digits, unit) = match value.as_bytes().last() {
        Some(b'K' | b'k') => (&value[..value.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&value[..value.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&value[..value.len() - 1], 1 << 30),
        _ => (value, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| {
            Error::param(
                name,
                format!("{value:?} is not a byte count (digits, optionally K, M or G)"),
            )
        })
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(Error::param(name, format!("{value:?} is not 0 or 1"))),
    }
}

/// A validated connection configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The log directory; it exists.
    pub(crate) dir: PathBuf,
    /// How records are rendered.
    pub(crate) format: LineFormat,
    /// When records reach the kernel.
    pub(crate) flush: Flush,
    /// Permission bits for files this library creates; `None`: `0666` less the umask.
    pub(crate) file_mode: Option<u32>,
    /// Signal that requests a rotation of the directory, when opted in.
    pub(crate) rotate_signal: Option<i32>,
    /// When a writer seals its own file (all off by default).
    pub(crate) seal: SealLimits,
    /// When written data is forced to stable storage.
    pub(crate) durability: Durability,
    /// Time between syncs at [`Durability::Interval`].
    pub(crate) fsync_interval: Duration,
    /// Write each table's column names to `<table>.columns`.
    pub(crate) header: bool,
}

impl Config {
    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Parse `flatstore:<dir>[?name=value&name=value...]` on top of `params` (query parameters
    /// win) and check that the directory exists.
    pub fn from_url(url: &str, params: &Params) -> Result<Config> {
        let bad = |reason| Error::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or_else(|| bad("expected flatstore:<directory>"))?;
        let (dir, query) = match rest.split_once('?') {
            Some((dir, query)) => (dir, Some(query)),
            None => (rest, None),
        };
        if dir.is_empty() {
            return Err(bad("no directory after flatstore:"));
        }
        let mut params = params.clone();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| Error::param(pair, "expected name=value in the URL query"))?;
            params.set(name, value)?;
        }
        let dir = PathBuf::from(dir);
        check_directory(&dir)?;
        Ok(Config {
            format: LineFormat {
                escape: params.escape,
            },
            flush: params.flush_policy(),
            file_mode: params.file_mode,
            rotate_signal: params.rotate_signal,
            seal: params.seal,
            durability: params.durability,
            fsync_interval: params.fsync_interval,
            header: params.header,
            dir,
        })
    }
}

fn check_directory(dir: &Path) -> Result<()> {
    let fail = |reason: String| Error::Directory {
        path: dir.to_owned(),
        reason,
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(fail("not a directory".into())),
        Err(e) => Err(fail(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_query_overrides_params() {
        let dir = std::env::temp_dir();
        let url = format!("flatstore:{}?flush=0&flush_interval=0.25", dir.display());
        let config = Config::from_url(&url, &Params::default()).expect("valid");
        assert_eq!(config.dir, dir);
        assert_eq!(
            config.flush,
            Flush::Buffered {
                interval: Duration::from_millis(250),
                buffer_size: 65536
            }
        );
    }

    #[test]
    fn bad_urls_and_params_are_named() {
        let msg = |r: Result<Config>| r.expect_err("refused").to_string();
        let p = Params::default();
        assert!(msg(Config::from_url("mysql://x", &p)).contains("mysql://x"));
        assert!(msg(Config::from_url("flatstore:", &p)).contains("no directory"));
        assert!(msg(Config::from_url("flatstore:/tmp?colour=red", &p)).contains("\"colour\""));
        assert!(msg(Config::from_url("flatstore:/no/such/dir/x", &p)).contains("/no/such/dir/x"));
        let mut p = Params::default();
        for (name, value) in [
            ("flush", "yes"),
            ("flush_interval", "0"),
            ("buffer_size", "12"),
            ("escape", "html"),
            ("file_mode", "0999"),
            ("nope", "1"),
        ] {
            let e = p.set(name, value).expect_err("refused");
            assert!(e.to_string().contains(name), "{e}");
        }
        assert_eq!(p, Params::default());
    }

    #[test]
    fn every_listed_name_is_known_and_documented_once() {
        for name in PARAMETER_NAMES {
            let name = name.to_str().expect("ASCII");
            let refused = Params::default().set(name, "\u{1}not a value");
            let message = refused
                .expect_err("no parameter takes that value")
                .to_string();
            assert!(!message.contains("unknown parameter"), "{name}: {message}");
        }
        let docs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
                .expect("docs/operations.md");
        let section = docs
            .split("\n## ")
            .find(|s| s.starts_with("Parameters"))
            .expect("a Parameters section");
        let mut documented: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let mut listed: Vec<&str> = PARAMETER_NAMES
            .iter()
            .map(|n| n.to_str().expect("ASCII"))
            .collect();
        documented.sort_unstable();
        listed.sort_unstable();
        assert_eq!(
            documented, listed,
            "the table in docs/operations.md, row by row"
        );
    }

    #[test]
    fn buffer_size_takes_k_and_m_like_rotate_bytes_within_its_bounds() {
        let mut p = Params::default();
        for (value, bytes) in [
            ("4096", 4096),
            ("4K", 4096),
            ("64k", 65536),
            ("1M", 1 << 20),
            ("64M", 64 << 20),
            ("67108864", 64 << 20),
        ] {
            p.set("buffer_size", value).expect(value);
            assert_eq!(p.buffer_size, bytes, "{value}");
        }
        for value in ["4095", "3K", "65M", "1G", "", "K", "12X", "-4K", "1.5M"] {
            let e = p.set("buffer_size", value).expect_err(value).to_string();
            assert!(e.contains("buffer_size"), "{value}: {e}");
            assert_eq!(p.buffer_size, 64 << 20, "{value}: refused, unchanged");
        }
        let e = p
            .set("buffer_size", "3K")
            .expect_err("too small")
            .to_string();
        assert!(e.contains("3072 is outside 4096..67108864 bytes"), "{e}");
    }

    #[test]
    fn kamailio_encode_delimiter_maps_to_escape() {
        let mut p = Params::default();
        p.set("encode_delimiter", "0").expect("valid");
        assert_eq!(p.escape, Escape::None);
        p.set("file_mode", "0640").expect("valid");
        assert_eq!(p.file_mode, Some(0o640));
    }
}
