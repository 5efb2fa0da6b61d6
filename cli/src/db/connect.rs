//! Connecting to the database `--db` names: the URL, the password found as libpq finds it,
//! TLS as libpq sets it up (see [`tls`]), and the session's settings. A password is never
//! printed: messages name the database as `user@host:port/dbname`.

use std::path::PathBuf;
use std::str::FromStr as _;

use postgres::config::{Host, SslMode as WireMode};
use postgres::{Client, Config, NoTls};

use super::pgpass;
use super::tls::{self, Given, SslMode, Tls, TlsError};
use crate::error::CliError;

/// Where libpq looks for the server's socket when the URL names no host (Debian's build).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
/// The port when the URL names none.
pub const DEFAULT_PORT: u16 = 5432;

/// How long a connection attempt may take when the URL gives no `connect_timeout` (libpq
/// waits for ever; a cron job that never ends is worse than one that fails and says why).
/// `connect_timeout=0` in the URL waits for ever, as in libpq.
pub const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether the URL's query names the parameter `name` (whatever its value).
fn names_parameter(url: &str, name: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.split_once('=').map_or(pair, |(key, _)| key) == name)
    })
}

/// A database to connect to, from a libpq-style URL, with its password found.
pub struct Database {
    config: Config,
    tls: Tls,
    described: String,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("described", &self.described)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// The database of `--db`: [`Database::from_url`], its warnings on standard error, its
    /// error as the option's.
    pub fn from_db_option(url: &str, application: &str) -> Result<Database, CliError> {
        Database::from_url(url, application, |warning| {
            eprintln!("flatstore: WARNING: {warning}")
        })
        .map_err(|e| CliError::Option {
            option: "--db",
            source: Box::new(e),
        })
    }

    /// The database of `url` (`postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?…]`, the host
    /// a name, an address or a socket directory written `%2Fvar%2Frun%2Fpostgresql`; or the
    /// query form `postgresql:///DBNAME?host=/var/run/postgresql`). As libpq: no host is the
    /// socket in `/var/run/postgresql`, no user the system user, no database the user's
    /// name; with no password in the URL, `PGPASSWORD`, else the password file (see
    /// [`pgpass`]). TLS from the parameters `sslmode`, `sslrootcert`, `sslcert`, `sslkey`,
    /// else `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, else libpq's defaults (see
    /// [`tls`]). `application` is the name the server shows in `pg_stat_activity`. `warn`
    /// gets what libpq would warn about (a password file others may read).
    pub fn from_url(
        url: &str,
        application: &str,
        warn: impl FnOnce(String),
    ) -> Result<Database, CliError> {
        if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
            return Err(CliError::NotAUrl);
        }
        let (url, given) = take_tls_parameters(url)?;
        let given = given.or_environment(|name| std::env::var(name).ok());
        // The crate's messages name the option at fault, never a value.
        let mut config = Config::from_str(&url).map_err(CliError::Url)?;
        if config.get_hosts().is_empty() {
            config.host(DEFAULT_SOCKET_DIR);
        }
        if !names_parameter(&url, "connect_timeout") {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        // Over a Unix socket libpq uses no TLS whatever the mode, and reads no certificate.
        let unix = config
            .get_hosts()
            .iter()
            .all(|host| matches!(host, Host::Unix(_)));
        let tls = match unix {
            true => Tls::without(&given)?,
            false => {
                let home = std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .map(PathBuf::from);
                Tls::new(&given, home.as_deref())?
            }
        };
        let user = match config.get_user() {
            Some(user) => user.to_owned(),
            None => whoami::username().map_err(CliError::UserName)?,
        };
        config.user(&user);
        let dbname = config.get_dbname().unwrap_or(&user).to_owned();
        config.dbname(&dbname);
        config.application_name(application);
        let host = match &config.get_hosts()[0] {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(DEFAULT_PORT);
        if config.get_password().is_none() {
            if let Some(password) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
                config.password(password);
            } else if let Some(path) = pgpass::location() {
                // libpq matches its own default socket directory as "localhost".
                let unix_default = matches!(&config.get_hosts()[0],
                    Host::Unix(path) if path.as_os_str() == DEFAULT_SOCKET_DIR);
                let wanted = pgpass::Wanted {
                    host: if unix_default { "localhost" } else { &host },
                    port: &port.to_string(),
                    database: &dbname,
                    user: &user,
                };
                match pgpass::lookup(&path, wanted, warn) {
                    Ok(Some(password)) => {
                        config.password(password);
                    }
                    Ok(None) => {}
                    Err(source) => return Err(CliError::PasswordFile { path, source }),
                }
            }
        }
        let described = format!("{user}@{host}:{port}/{dbname}");
        Ok(Database {
            config,
            tls,
            described,
        })
    }

    /// A new session, its time zone UTC: a time value without an offset is read as UTC, as
    /// everywhere in flatstore. TLS as the mode says, with libpq's second tries: `prefer`
    /// tries again without TLS when the handshake fails or the server refuses the session
    /// (its `pg_hba.conf` may take this user only without TLS; a server that does not take
    /// TLS at all is talked to without it at once), `allow` with TLS when the server refuses
    /// the session without; that second try failing too, the first one's error is returned.
    pub fn connect(&self) -> Result<Client, postgres::Error> {
        let mut client = match self.tls.mode() {
            SslMode::Disable => self.session(WireMode::Disable)?,
            SslMode::Allow => self.session(WireMode::Disable).or_else(|first| {
                if first.as_db_error().is_none() {
                    return Err(first);
                }
                self.session(WireMode::Require).map_err(|_| first)
            })?,
            SslMode::Prefer => self.session(WireMode::Prefer).or_else(|first| {
                if first.as_db_error().is_none() && tls::failure(&first).is_none() {
                    return Err(first);
                }
                self.session(WireMode::Disable).map_err(|_| first)
            })?,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                self.session(WireMode::Require)?
            }
        };
        client.batch_execute("SET TimeZone TO 'UTC'")?;
        Ok(client)
    }

    /// A session, TLS as `wire` says.
    fn session(&self, wire: WireMode) -> Result<Client, postgres::Error> {
        let mut config = self.config.clone();
        config.ssl_mode(wire);
        match (wire, self.tls.connector()) {
            (WireMode::Disable, _) | (_, None) => config.connect(NoTls),
            (_, Some(connector)) => config.connect(connector),
        }
    }

    /// `user@host:port/dbname`, for messages (no password).
    pub fn described(&self) -> &str {
        &self.described
    }

    /// A database error as a command reports it: the database described, and the reason.
    pub fn in_db(&self) -> impl Fn(postgres::Error) -> CliError + '_ {
        |e| CliError::Database {
            database: self.described.clone(),
            reason: reason(&e),
        }
    }
}

/// A database error as the server put it: its message and where (`COPY acc, line 3, column
/// time: "x"`); a failed TLS handshake as what failed (the server's certificate not trusted,
/// and why); another client error as it is.
pub fn reason(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.where_() {
            Some(place) => format!("{} ({place})", db.message()),
            None => db.message().to_owned(),
        },
        None => match tls::failure(e) {
            Some(failure) => tls::explain(failure),
            None => e.to_string(),
        },
    }
}

/// `url` without its TLS parameters (see [`tls::PARAMETERS`]), and their values, decoded:
/// rust-postgres knows only some of them, and checks none as libpq does.
fn take_tls_parameters(url: &str) -> Result<(String, Given), TlsError> {
    let mut given = Given::default();
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), given));
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if tls::PARAMETERS.contains(&key) {
            let value = percent_decode(value).ok_or_else(|| TlsError::NotPercentEncoded {
                key: key.to_owned(),
            })?;
            given.take(key, value);
        } else {
            kept.push(pair);
        }
    }
    let url = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    Ok((url, given))
}

/// `s` with its `%HH` decoded (and `+` kept, as libpq); `None` when that is not UTF-8 or a
/// `%` is not followed by two hex digits.
fn percent_decode(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_urls_and_defaults() {
        let db = Database::from_url(
            "postgresql://loader:pw@%2Ftmp%2Fpg%20x:55432/billing",
            "t",
            |w| panic!("{w}"),
        )
        .expect("url");
        assert_eq!(db.described(), "loader@/tmp/pg x:55432/billing");
        assert_eq!(db.config.get_password(), Some(&b"pw"[..]));
        assert!(!format!("{db:?}").contains("pw"));
        let db = Database::from_url("postgresql:///acc?host=/run/pg&user=u", "t", |w| {
            panic!("{w}")
        })
        .expect("query form");
        assert_eq!(db.described(), "u@/run/pg:5432/acc");
        let db = Database::from_url("postgresql://u@/", "t", |w| panic!("{w}")).expect("bare");
        assert_eq!(db.described(), "u@/var/run/postgresql:5432/u");
        assert!(Database::from_url("mysql://u@h/db", "t", |_| {}).is_err());
        assert_eq!(
            db.config.get_connect_timeout(),
            Some(&DEFAULT_CONNECT_TIMEOUT)
        );
        let patient =
            Database::from_url("postgresql://u@h/db?connect_timeout=0", "t", |_| {}).expect("url");
        assert_eq!(patient.config.get_connect_timeout(), None);
        let quick =
            Database::from_url("postgresql://u@h/db?connect_timeout=5", "t", |_| {}).expect("url");
        assert_eq!(
            quick.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(5))
        );
        let refused = Database::from_url("postgresql://u:secret@h:notaport/db", "t", |_| {})
            .expect_err("bad port")
            .to_string();
        assert!(!refused.contains("secret"), "{refused}");
    }

    #[test]
    fn tls_parameters_are_taken_from_the_url_and_the_rest_kept() {
        let (url, given) = take_tls_parameters(
            "postgresql://u@h/db?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca%20a.pem&sslcert=/c&sslkey=/k",
        )
        .expect("url");
        assert_eq!(url, "postgresql://u@h/db?application_name=x");
        assert_eq!(given.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(given.sslrootcert.as_deref(), Some("/etc/ca a.pem"));
        assert_eq!(given.sslcert.as_deref(), Some("/c"));
        assert_eq!(given.sslkey.as_deref(), Some("/k"));
        let (url, given) = take_tls_parameters("postgresql://u@h/db?sslmode=require").expect("url");
        assert_eq!(url, "postgresql://u@h/db");
        assert_eq!(given.sslmode.as_deref(), Some("require"));
        assert!(take_tls_parameters("postgresql://u@h/db?sslrootcert=%ZZ").is_err());
        let refused = Database::from_url("postgresql://u@h/db?sslmode=verify-fool", "t", |_| {})
            .expect_err("unknown sslmode")
            .to_string();
        assert!(
            refused.contains("invalid sslmode \"verify-fool\""),
            "{refused}"
        );
    }
}
