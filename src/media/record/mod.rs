//! Recording: the H.264 every peer gets (no second encode) and the robot's
//! audio, written to fragmented MP4 files that stay playable however they
//! end, rotated by size and duration, the oldest deleted beyond a quota.
//!
//! [`mp4`] turns samples into bytes, [`policy`] decides rotation, quota and
//! names, [`core::Recorder`] puts them together sans-IO; the shell writes
//! the files on a thread of its own, off the network loop.

pub mod core;
pub mod mp4;
pub mod policy;
