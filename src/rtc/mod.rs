//! WebRTC: the peers (str0m `Rtc`s), the WHIP publishers ([`publish`]: the
//! robot as the offering side, to an SFU) and the one smol loop that owns them,
//! the UDP socket and the robot's [`Session`](crate::session::Session).

pub mod config;
pub mod hub;
pub mod ice;
pub mod layers;
pub mod nat;
pub mod net;
pub mod publish;
pub mod server;
pub mod status;

// Re-exported: most of rtc/ and the tests name it `rtc::PeerId`.
pub use crate::peer::PeerId;
