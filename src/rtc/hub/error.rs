//! Why the hub refuses an offer.

/// Why an offer was refused; shown to the HTTP client as a 4xx reason.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectError {
    TooManyPeers(usize),
    BadSdp(String),
    NoUsableVideoCodec,
    NoCandidates,
    Rejected(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::TooManyPeers(n) => write!(f, "too many peers (limit {n})"),
            ConnectError::BadSdp(e) => write!(f, "malformed SDP offer: {e}"),
            ConnectError::NoUsableVideoCodec => {
                write!(
                    f,
                    "the offer's video has no H.264 with packetization-mode=1"
                )
            }
            ConnectError::NoCandidates => write!(f, "the robot has no usable network address"),
            ConnectError::Rejected(e) => write!(f, "offer rejected: {e}"),
        }
    }
}
