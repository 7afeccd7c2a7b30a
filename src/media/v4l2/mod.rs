//! The kernel's video API (V4L2), shared by the camera source, the hardware
//! encoder and `--list-devices`.
//!
//! The `v4l` crate supplies the kernel structs and ioctl numbers. The calls go
//! through the small [`Device`] wrapper here because the crate's higher-level
//! types panic on values they don't know (new colorspaces, non-UTF-8 names, a
//! failed STREAMOFF in `Drop`) and don't cover the multi-planar
//! memory-to-memory devices that the hardware encoder
//! ([`crate::media::encoder::m2m`]) drives with the same wrapper.

mod buffer;
mod device;
mod fourcc;
mod kernel;

pub use buffer::{Buffer, Mapping};
pub use device::{video_nodes, Caps, Device, FormatDesc, FrameRates, FrameSizes, Interval};
pub use fourcc::{
    fourcc, fourcc_name, FOURCC_FWHT, FOURCC_H264, FOURCC_JPEG, FOURCC_MJPG, FOURCC_NV12,
    FOURCC_YU12, FOURCC_YUYV,
};
pub(crate) use kernel::zeroed;
pub use kernel::{
    BUF_TYPE_VIDEO_CAPTURE, BUF_TYPE_VIDEO_CAPTURE_MPLANE, BUF_TYPE_VIDEO_OUTPUT,
    BUF_TYPE_VIDEO_OUTPUT_MPLANE,
};
