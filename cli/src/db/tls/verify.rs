//! The check of the server's certificate as the mode asks, and what a failed handshake is
//! told as.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

use super::SslMode;

/// The server's certificate was not trusted: why, and against what.
#[derive(Debug)]
pub(super) struct NotTrusted {
    why: CertificateError,
    mode: SslMode,
    root: PathBuf,
}

impl fmt::Display for NotTrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the server's certificate was not trusted: ")?;
        match &self.why {
            CertificateError::UnknownIssuer => write!(
                f,
                "no certificate authority of sslrootcert \"{}\" issued it",
                self.root.display()
            )?,
            CertificateError::NotValidForName => {
                write!(f, "it is not for the host name of the URL")?
            }
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => {
                write!(f, "it is not for host \"{}\"", host_name(expected))?;
                // rustls writes the names as `DnsName("db.example")`.
                let names: Vec<&str> = presented
                    .iter()
                    .map(|name| {
                        name.strip_prefix("DnsName(\"")
                            .and_then(|name| name.strip_suffix("\")"))
                            .unwrap_or(name)
                    })
                    .collect();
                if !names.is_empty() {
                    write!(f, " (it names {})", names.join(", "))?;
                }
            }
            why => write!(f, "{why}")?,
        }
        write!(f, " (sslmode={})", self.mode.name())
    }
}

impl StdError for NotTrusted {}

fn host_name(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(dns) => dns.as_ref().to_owned(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// The check of the server's certificate for a mode: none without root certificates, the
/// chain with them, and the host name too for `verify-full`. The handshake's signatures are
/// always checked.
#[derive(Debug)]
pub(super) struct Verifier {
    pub(super) mode: SslMode,
    pub(super) roots: Option<(Arc<WebPkiServerVerifier>, PathBuf)>,
    pub(super) provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some((webpki, root)) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Ok(verified) => Ok(verified),
            // The chain is checked before the name: a wrong name means a trusted chain.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.mode != SslMode::VerifyFull => Ok(ServerCertVerified::assertion()),
            Err(rustls::Error::InvalidCertificate(why)) => Err(rustls::Error::InvalidCertificate(
                CertificateError::Other(OtherError(Arc::new(NotTrusted {
                    why,
                    mode: self.mode,
                    root: root.clone(),
                }))),
            )),
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS failure behind `e`, if the handshake failed: for messages, and for `prefer`'s
/// second try without TLS.
pub fn failure(e: &postgres::Error) -> Option<&rustls::Error> {
    let cause = e.source()?;
    if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    cause
        .downcast_ref::<io::Error>()?
        .get_ref()?
        .downcast_ref::<rustls::Error>()
}

/// What to tell about a failed handshake: the server's certificate not trusted and why, or
/// the TLS error.
pub fn explain(failure: &rustls::Error) -> String {
    if let rustls::Error::InvalidCertificate(CertificateError::Other(other)) = failure
        && let Some(not_trusted) = other.0.downcast_ref::<NotTrusted>()
    {
        return not_trusted.to_string();
    }
    format!("TLS handshake failed: {failure}")
}
