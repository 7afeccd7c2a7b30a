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
pub mod status;

// Re-exported: most of rtc/ and the tests name it `rtc::PeerId`.
pub use crate::peer::PeerId;
