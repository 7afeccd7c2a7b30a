//! H.264 helpers for streams made elsewhere (a camera, a command, the hardware
//! encoder): Annex-B framing, what the SPS says about the picture, and one
//! picture decoded for a snapshot.

pub mod annexb;
pub mod decode;
pub mod sps;
