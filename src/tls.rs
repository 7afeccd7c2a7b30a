//! TLS as a client, for the broker (`mqtts://`) and WHIP endpoints
//! (`https://`): rustls on aws-lc-rs (the crypto provider str0m and the
//! HTTPS listener already use). The server's certificate is checked against
//! the system's CA bundle (what certbot-issued and hosted servers chain to)
//! plus an optional private CA file (`[broker] ca`), and its name against the
//! URL's host.

use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use rustls::pki_types::pem;
use std::path::PathBuf;

/// Debian, Ubuntu and Raspberry Pi OS keep every trusted CA in this one file
/// (package ca-certificates).
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The TLS settings for every (re)connection: built once at start, so a
/// missing or broken `ca` file is a start-up error, not a retry loop.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, TrustError> {
    let mut roots = RootCertStore::empty();
    if let Ok(pem) = std::fs::read(SYSTEM_BUNDLE) {
        // Unparsable entries in the system bundle are skipped, not fatal.
        let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
        roots.add_parsable_certificates(certs);
    }
    if let Some(path) = ca {
        let path = path.to_path_buf();
        let pem = match std::fs::read(&path) {
            Ok(pem) => pem,
            Err(source) => return Err(TrustError::CaRead { path, source }),
        };
        let certs = match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
            Ok(certs) if certs.is_empty() => return Err(TrustError::CaEmpty { path }),
            Ok(certs) => certs,
            Err(source) => return Err(TrustError::CaNotPem { path, source }),
        };
        for cert in certs {
            if let Err(source) = roots.add(cert) {
                return Err(TrustError::CaRefused { path, source });
            }
        }
    }
    if roots.is_empty() {
        return Err(TrustError::NoTrustedCas {
            bundle: SYSTEM_BUNDLE,
        });
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TrustError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Runs the handshake on a connected socket within `timeout`, so a broker
/// that accepts TCP but never speaks TLS is an error here and not a session
/// that stalls; the certificate error, if any, says what was wrong.
pub fn handshake(
    config: &Arc<ClientConfig>,
    host: &str,
    mut tcp: TcpStream,
    timeout: Duration,
) -> Result<StreamOwned<ClientConnection, TcpStream>, HandshakeError> {
    let name = ServerName::try_from(host.to_string()).map_err(|source| HandshakeError::Name {
        host: host.into(),
        source,
    })?;
    let mut conn = ClientConnection::new(config.clone(), name).map_err(HandshakeError::Setup)?;
    let slice = tcp.read_timeout().map_err(HandshakeError::Socket)?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(HandshakeError::Socket)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(handshake_error)?;
    }
    tcp.set_read_timeout(slice)
        .map_err(HandshakeError::Socket)?;
    Ok(StreamOwned::new(conn, tcp))
}

/// Why the client TLS settings could not be made: the CA file, or no CA at all.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("ca {}: {source}", path.display())]
    CaRead { path: PathBuf, source: io::Error },
    #[error("ca {}: not a PEM certificate: {source}", path.display())]
    CaNotPem { path: PathBuf, source: pem::Error },
    #[error("ca {}: no PEM certificate in it", path.display())]
    CaEmpty { path: PathBuf },
    #[error("ca {}: {source}", path.display())]
    CaRefused {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("no trusted CAs: {bundle} is missing (install ca-certificates) and no ca file is set")]
    NoTrustedCas { bundle: &'static str },
    #[error("TLS setup: {0}")]
    Tls(rustls::Error),
}

/// Why a TLS connection (to the broker, or a WHIP endpoint) did not come up.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("host {host:?} as a TLS name: {source}")]
    Name {
        host: String,
        source: rustls::pki_types::InvalidDnsNameError,
    },
    #[error("TLS setup: {0}")]
    Setup(rustls::Error),
    #[error("socket: {0}")]
    Socket(io::Error),
    #[error("TLS handshake timed out (does that port speak TLS: mqtts://, https://?)")]
    TimedOut,
    #[error("the server closed the connection during the TLS handshake")]
    Closed,
    /// The certificate's problem, in rustls' words.
    #[error("TLS handshake: {0}")]
    Failed(io::Error),
}

fn handshake_error(e: io::Error) -> HandshakeError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HandshakeError::TimedOut,
        io::ErrorKind::UnexpectedEof => HandshakeError::Closed,
        _ => HandshakeError::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let empty =
            std::env::temp_dir().join(format!("telepi-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(Some(&empty)).unwrap_err().to_string();
        let _ = std::fs::remove_file(&empty);
        assert!(err.contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn a_ca_file_is_trusted() {
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["test ca".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let path = std::env::temp_dir().join(format!("telepi-ca-{}.pem", std::process::id()));
        std::fs::write(&path, ca.pem()).unwrap();
        let config = client_config(Some(&path));
        let _ = std::fs::remove_file(&path);
        assert!(config.is_ok(), "{:?}", config.err());
    }
}
