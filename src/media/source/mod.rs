//! Where frames come from: a V4L2 camera, the synthetic test pattern, or a
//! command that writes H.264 to a pipe.

pub mod camera;
pub mod pattern;
pub mod pipe;
