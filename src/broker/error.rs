//! Why the broker link cannot start: its URL, the robot's name, the CA file
//! or the TLS setup. Once running, losses are retried and logged instead.

use std::io;
use std::path::PathBuf;

use rustls::pki_types::pem;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("broker url {url:?}: {why}")]
    Url { url: String, why: &'static str },
    /// A topic level: MQTT's separators and wildcards are refused.
    #[error("broker name {0:?} must be non-empty without / + #")]
    Name(String),
    #[error("broker ca {}: {source}", path.display())]
    CaRead { path: PathBuf, source: io::Error },
    #[error("broker ca {}: not a PEM certificate: {source}", path.display())]
    CaNotPem { path: PathBuf, source: pem::Error },
    #[error("broker ca {}: no PEM certificate in it", path.display())]
    CaEmpty { path: PathBuf },
    #[error("broker ca {}: {source}", path.display())]
    CaRefused {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("mqtts:// needs trusted CAs: {bundle} is missing (install ca-certificates) and [broker] ca is not set")]
    NoTrustedCas { bundle: &'static str },
    #[error("TLS setup: {0}")]
    Tls(rustls::Error),
    #[error("broker thread: {0}")]
    Thread(io::Error),
}
