//! H.264 helpers for streams made elsewhere (a camera, a command, the hardware
//! encoder): Annex-B framing and what the SPS says about the picture.

pub mod annexb;
pub mod sps;
