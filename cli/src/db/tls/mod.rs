//! TLS to the database, set up as libpq sets it up: the `sslmode`, `sslrootcert`, `sslcert`
//! and `sslkey` parameters of the URL, else `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`,
//! `PGSSLKEY`, else libpq's defaults (`prefer`, and the files in `~/.postgresql/`). The TLS
//! stack is rustls (pure Rust, ring's primitives); no OpenSSL is linked.
//!
//! libpq's rules, kept here:
//! - `disable` never asks for TLS; `allow` connects without TLS and tries TLS only when the
//!   server refuses that; `prefer` (the default) tries TLS and connects without it when the
//!   server does not take TLS or the handshake fails; `require`, `verify-ca` and
//!   `verify-full` connect only with TLS.
//! - The server's certificate is checked against the root certificates of `sslrootcert`
//!   (default `~/.postgresql/root.crt`) whenever that file exists, whatever the mode: so
//!   `prefer` and `require` with that file behave as `verify-ca`. Without it, `verify-ca` and
//!   `verify-full` refuse to connect and the weaker modes do not check the certificate.
//! - `verify-ca` checks the chain; `verify-full` also that the certificate names the host
//!   the URL names (a DNS name, or an IP address in the certificate's IP entries).
//! - The client certificate `sslcert` (default `~/.postgresql/postgresql.crt`) is sent when
//!   the file exists, with its key `sslkey` (default `~/.postgresql/postgresql.key`), which
//!   must be the user's own with no rights for group or others (`0600`), or root's with at
//!   most `0640`.
//! - Over a Unix socket no TLS is used, whatever the mode.

mod verify;

use std::fmt;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use self::verify::Verifier;
pub use self::verify::{explain, failure};

/// The URL parameters this module takes (the rest go to rust-postgres).
pub const PARAMETERS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    const ALL: [SslMode; 6] = [
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// Its name in a URL.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The mode named `name`; an unknown name is refused, named, with the known ones.
    pub fn parse(name: &str) -> Result<SslMode, TlsError> {
        SslMode::ALL
            .into_iter()
            .find(|mode| mode.name() == name)
            .ok_or_else(|| TlsError::UnknownSslMode {
                name: name.to_owned(),
            })
    }
}

/// The TLS parameters as given: each from the URL, else from its environment variable
/// (`None`: neither).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Given {
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
}

impl Given {
    /// Record `value` of URL parameter `key`; false when `key` is not one of [`PARAMETERS`].
    /// A parameter given twice takes its last value, as in libpq.
    pub fn take(&mut self, key: &str, value: String) -> bool {
        let slot = match key {
            "sslmode" => &mut self.sslmode,
            "sslrootcert" => &mut self.sslrootcert,
            "sslcert" => &mut self.sslcert,
            "sslkey" => &mut self.sslkey,
            _ => return false,
        };
        *slot = Some(value);
        true
    }

    /// Fill what the URL did not set from `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and
    /// `PGSSLKEY` (`env` reads one; an empty value counts as unset).
    pub fn or_environment(mut self, env: impl Fn(&str) -> Option<String>) -> Given {
        let from = |slot: &mut Option<String>, name: &str| {
            if slot.is_none() {
                *slot = env(name).filter(|v| !v.is_empty());
            }
        };
        from(&mut self.sslmode, "PGSSLMODE");
        from(&mut self.sslrootcert, "PGSSLROOTCERT");
        from(&mut self.sslcert, "PGSSLCERT");
        from(&mut self.sslkey, "PGSSLKEY");
        self
    }
}

/// TLS as a connection uses it: the mode, and for every mode but `disable` the connector
/// with its checks and client certificate.
#[derive(Clone)]
pub struct Tls {
    mode: SslMode,
    connector: Option<MakeRustlsConnect>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// A TLS setting refused: each message names the setting (`sslmode`, a certificate file).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TlsError {
    /// No such `sslmode`.
    #[error("invalid sslmode \"{name}\": give one of {}", known_modes())]
    UnknownSslMode {
        /// As given.
        name: String,
    },
    /// `sslrootcert=system`, which libpq takes and this client does not.
    #[error(
        "sslrootcert=system (the system's trusted roots) is not supported: \
         give the CA's file, e.g. sslrootcert=/etc/ssl/certs/ca-certificates.crt"
    )]
    SystemRoots,
    /// A mode that checks the server's certificate, without the root certificates' file.
    #[error(
        "{named} does not exist: sslmode={mode} checks the server's certificate \
         against it; give sslrootcert=FILE (the CA's certificate) or a weaker sslmode"
    )]
    NoRootCertificate {
        /// The file, as `root certificate file "PATH"`.
        named: String,
        /// The mode's name.
        mode: &'static str,
    },
    /// The root certificates' file cannot be used.
    #[error("sslrootcert \"{}\": {reason}", path.display())]
    RootCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the protocol versions.
    #[error("TLS: {0}")]
    Protocol(rustls::Error),
    /// The client's certificate file cannot be used.
    #[error("sslcert \"{}\": {reason}", path.display())]
    ClientCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A client certificate without its private key's file.
    #[error(
        "certificate \"{}\" present, but not its private key file \"{key}\" (sslkey)",
        certificate.display()
    )]
    NoKeyFile {
        /// The certificate's file.
        certificate: PathBuf,
        /// The key's file, as named.
        key: String,
    },
    /// The private key's file cannot be used.
    #[error("sslkey \"{}\": {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The private key's file is open to others (libpq's rule).
    #[error(
        "private key file \"{}\" has group or world access; it must have permissions \
         u=rw (0600) or less if owned by the current user, or u=rw,g=r (0640) or less if \
         owned by root",
        path.display()
    )]
    KeyAccess {
        /// The file.
        path: PathBuf,
    },
    /// A TLS parameter of the URL that is not percent-encoded UTF-8.
    #[error("the value of {key} is not percent-encoded UTF-8")]
    NotPercentEncoded {
        /// The parameter.
        key: String,
    },
}

/// The modes' names, for a message.
fn known_modes() -> String {
    let known: Vec<&str> = SslMode::ALL.iter().map(|m| m.name()).collect();
    known.join(", ")
}

impl Tls {
    /// TLS as `given` asks, the default files in `home/.postgresql/` (`home` from `HOME`).
    /// Reads the certificate files now: a file that cannot be used is an error here, named.
    pub fn new(given: &Given, home: Option<&Path>) -> Result<Tls, TlsError> {
        let mode = match &given.sslmode {
            Some(name) => SslMode::parse(name)?,
            None => SslMode::Prefer,
        };
        if mode == SslMode::Disable {
            return Ok(Tls {
                mode,
                connector: None,
            });
        }
        let file = |given: &Option<String>, default: &str| -> Option<PathBuf> {
            match given {
                Some(path) => Some(PathBuf::from(path)),
                None => home.map(|h| h.join(".postgresql").join(default)),
            }
        };
        // ring rather than aws-lc-rs (rustls' default): a small build, no C library of its
        // own to compile. Deprecated for lacking post-quantum key exchange, which the
        // PostgreSQL servers of today (OpenSSL before 3.5) do not offer either.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let root = file(&given.sslrootcert, "root.crt");
        if root.as_deref() == Some(Path::new("system")) {
            return Err(TlsError::SystemRoots);
        }
        let roots = match root.filter(|path| path.exists()) {
            Some(path) => {
                let store = root_store(&path)?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                        .build()
                        .map_err(|e| TlsError::RootCertificate {
                            path: path.clone(),
                            reason: e.to_string(),
                        })?;
                Some((webpki, path))
            }
            None if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) => {
                let named = match file(&given.sslrootcert, "root.crt") {
                    Some(path) => format!("root certificate file \"{}\"", path.display()),
                    None => "root certificate file ~/.postgresql/root.crt (no HOME)".into(),
                };
                return Err(TlsError::NoRootCertificate {
                    named,
                    mode: mode.name(),
                });
            }
            None => None,
        };
        let verifier = Verifier {
            mode,
            roots,
            provider: provider.clone(),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Protocol)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        let cert = file(&given.sslcert, "postgresql.crt").filter(|path| path.exists());
        let config = match cert {
            Some(cert) => {
                let key = file(&given.sslkey, "postgresql.key");
                let (chain, key) = client_identity(&cert, key.as_deref())?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    TlsError::ClientCertificate {
                        path: cert.clone(),
                        reason: e.to_string(),
                    }
                })?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Tls {
            mode,
            connector: Some(MakeRustlsConnect::new(config)),
        })
    }

    /// No TLS (over a Unix socket), `given`'s mode still checked.
    pub fn without(given: &Given) -> Result<Tls, TlsError> {
        if let Some(name) = &given.sslmode {
            SslMode::parse(name)?;
        }
        Ok(Tls {
            mode: SslMode::Disable,
            connector: None,
        })
    }

    /// The mode.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// The connector (`None` for `disable`).
    pub fn connector(&self) -> Option<MakeRustlsConnect> {
        self.connector.clone()
    }
}

/// The root certificates of `path` (PEM), at least one.
fn root_store(path: &Path) -> Result<RootCertStore, TlsError> {
    let named = |e: &dyn fmt::Display| TlsError::RootCertificate {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| named(&e))? {
        store
            .add(cert.map_err(|e| named(&e))?)
            .map_err(|e| named(&e))?;
    }
    if store.is_empty() {
        return Err(named(&"no certificate in it (PEM expected)"));
    }
    Ok(store)
}

/// The client's certificate chain from `cert` and its key from `key`, with libpq's checks
/// of the key file.
fn client_identity(
    cert: &Path,
    key: Option<&Path>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let in_cert = |reason: String| TlsError::ClientCertificate {
        path: cert.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| in_cert(e.to_string()))?;
    if chain.is_empty() {
        return Err(in_cert("no certificate in it (PEM expected)".to_owned()));
    }
    let Some(key) = key.filter(|key| key.exists()) else {
        let key = key.map_or("~/.postgresql/postgresql.key".into(), |k| {
            k.display().to_string()
        });
        return Err(TlsError::NoKeyFile {
            certificate: cert.to_owned(),
            key,
        });
    };
    let in_key = |reason: String| TlsError::Key {
        path: key.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(key).map_err(|e| in_key(e.to_string()))?;
    let owner_root = meta.uid() == 0;
    let mode = meta.mode();
    if !meta.is_file() {
        return Err(in_key("not a regular file".to_owned()));
    }
    if (owner_root && mode & 0o137 != 0) || (!owner_root && mode & 0o077 != 0) {
        return Err(TlsError::KeyAccess {
            path: key.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| in_key(e.to_string()))?;
    Ok((chain, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_by_name_and_unknown_ones_refused_by_name() {
        for mode in SslMode::ALL {
            assert_eq!(SslMode::parse(mode.name()), Ok(mode));
        }
        let refused = SslMode::parse("verify-fool")
            .expect_err("unknown")
            .to_string();
        assert!(refused.contains("\"verify-fool\""), "{refused}");
        assert!(refused.contains("verify-full"), "{refused}");
    }

    #[test]
    fn the_url_first_then_the_environment() {
        let mut given = Given::default();
        assert!(given.take("sslmode", "require".into()));
        assert!(!given.take("host", "h".into()));
        let env = |name: &str| match name {
            "PGSSLMODE" => Some("disable".to_owned()),
            "PGSSLROOTCERT" => Some("/ca.pem".to_owned()),
            "PGSSLCERT" => Some(String::new()),
            _ => None,
        };
        let given = given.or_environment(env);
        assert_eq!(given.sslmode.as_deref(), Some("require"));
        assert_eq!(given.sslrootcert.as_deref(), Some("/ca.pem"));
        assert_eq!(given.sslcert, None);
        assert_eq!(given.sslkey, None);
    }

    #[test]
    fn verify_modes_need_the_root_certificate_file() {
        let home = std::env::temp_dir().join(format!("flatstore-tls-unit-{}", std::process::id()));
        for mode in ["verify-ca", "verify-full"] {
            let given = Given {
                sslmode: Some(mode.into()),
                ..Given::default()
            };
            let refused = Tls::new(&given, Some(&home))
                .expect_err("no root.crt")
                .to_string();
            assert!(refused.contains("root.crt\" does not exist"), "{refused}");
        }
        let given = Given {
            sslmode: Some("require".into()),
            ..Given::default()
        };
        assert_eq!(
            Tls::new(&given, Some(&home)).expect("require").mode(),
            SslMode::Require
        );
        let disabled = Tls::new(
            &Given {
                sslmode: Some("disable".into()),
                sslrootcert: Some("/nonexistent".into()),
                ..Given::default()
            },
            None,
        )
        .expect("disable");
        assert!(disabled.connector().is_none());
    }
}
