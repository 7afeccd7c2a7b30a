//! WebRTC: the peers (str0m `Rtc`s), the session logic, and the one smol loop
//! that owns them and the UDP socket.

pub mod config;
pub mod hub;
pub mod ice;
pub mod layers;
pub mod nat;
pub mod net;
pub mod protocol;
pub mod server;
pub mod session;

/// A peer connection's id, unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PeerId(pub u64);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
