//! Why the broker link cannot start: its URL, the robot's name, the CA file
//! or the TLS setup. Once running, losses are retried and logged instead.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("broker url {url:?}: {why}")]
    Url { url: String, why: &'static str },
    /// A topic level: MQTT's separators and wildcards are refused.
    #[error("broker name {0:?} must be non-empty without / + #")]
    Name(String),
    /// `mqtts://`: the CA file or the system's bundle (`[broker] ca`).
    #[error("broker {0}")]
    Trust(#[from] crate::tls::TrustError),
    #[error("broker thread: {0}")]
    Thread(io::Error),
}
