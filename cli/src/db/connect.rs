//! Connecting to the database `--db` names: the URL, the password found as libpq finds it,
//! and the session's settings. A password is never printed: messages name the database as
//! `user@host:port/dbname`.

use std::str::FromStr as _;

use postgres::config::Host;
use postgres::{Client, Config, NoTls};

use super::pgpass;
use crate::error::CliError;

/// Where libpq looks for the server's socket when the URL names no host (Debian's build).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
/// The port when the URL names none.
pub const DEFAULT_PORT: u16 = 5432;

/// A database to connect to, from a libpq-style URL, with its password found.
pub struct Database {
    config: Config,
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
    /// The database of `url` (`postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?…]`, the host
    /// a name, an address or a socket directory written `%2Fvar%2Frun%2Fpostgresql`; or the
    /// query form `postgresql:///DBNAME?host=/var/run/postgresql`). As libpq: no host is the
    /// socket in `/var/run/postgresql`, no user the system user, no database the user's
    /// name; with no password in the URL, `PGPASSWORD`, else the password file (see
    /// [`pgpass`]). `application` is the name the server shows in `pg_stat_activity`. `warn`
    /// gets what libpq would warn about (a password file others may read).
    pub fn from_url(
        url: &str,
        application: &str,
        warn: impl FnOnce(String),
    ) -> Result<Database, CliError> {
        if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
            return Err(CliError::NotAUrl);
        }
        // The crate's messages name the option at fault, never a value.
        let mut config = Config::from_str(url).map_err(CliError::Url)?;
        if config.get_hosts().is_empty() {
            config.host(DEFAULT_SOCKET_DIR);
        }
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
        Ok(Database { config, described })
    }

    /// A new session, its time zone UTC: a time value without an offset is read as UTC, as
    /// everywhere in flatstore.
    pub fn connect(&self) -> Result<Client, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute("SET TimeZone TO 'UTC'")?;
        Ok(client)
    }

    /// `user@host:port/dbname`, for messages (no password).
    pub fn described(&self) -> &str {
        &self.described
    }
}

/// A database error as the server put it: its message and where (`COPY acc, line 3, column
/// time: "x"`); a client error as it is.
pub fn reason(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.where_() {
            Some(place) => format!("{} ({place})", db.message()),
            None => db.message().to_owned(),
        },
        None => e.to_string(),
    }
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
        let refused = Database::from_url("postgresql://u:secret@h:notaport/db", "t", |_| {})
            .expect_err("bad port")
            .to_string();
        assert!(!refused.contains("secret"), "{refused}");
    }
}
