//! Who is connected: a peer's id and role, as the WebRTC loop (`rtc`) and the
//! local API (`api`) both speak of them. Below both, so neither imports the other for them.

use serde::Serialize;

/// A peer connection's id, unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PeerId(pub u64);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Operator,
    Viewer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PeerRole {
    pub id: PeerId,
    pub role: Role,
}
