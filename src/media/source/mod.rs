//! Where frames come from: a V4L2 camera (reopened by [`reconnect`] when it
//! fails or is unplugged), the synthetic test pattern, or a command that
//! writes H.264 to a pipe.

pub mod camera;
pub mod pattern;
pub mod pipe;
pub mod reconnect;
pub mod scene;
