//! What the `v4l` crate's bindings leave to us: zeroed kernel structs, the
//! buffer-type names, and the number of `VIDIOC_S_SELECTION`.

use v4l::v4l2::vidioc;
use v4l::v4l_sys as sys;

/// Kernel structs that are valid when all-zero (integers, pointers, unions of those).
pub(crate) trait Zeroable {}
impl Zeroable for sys::v4l2_capability {}
impl Zeroable for sys::v4l2_fmtdesc {}
impl Zeroable for sys::v4l2_frmsizeenum {}
impl Zeroable for sys::v4l2_frmivalenum {}
impl Zeroable for sys::v4l2_format {}
impl Zeroable for sys::v4l2_streamparm {}
impl Zeroable for sys::v4l2_requestbuffers {}
impl Zeroable for sys::v4l2_buffer {}
impl Zeroable for sys::v4l2_plane {}
impl Zeroable for sys::v4l2_selection {}

pub(crate) fn zeroed<T: Zeroable>() -> T {
    // SAFETY: only implemented for plain C structs where all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// `VIDIOC_S_SELECTION`, which the `v4l` crate doesn't define: `_IOWR('V', 95, struct v4l2_selection)`.
pub(super) const VIDIOC_S_SELECTION: vidioc::_IOC_TYPE = ((3 << 30)
    | ((std::mem::size_of::<sys::v4l2_selection>() as u32) << 16)
    | ((b'V' as u32) << 8)
    | 95) as vidioc::_IOC_TYPE;

pub const BUF_TYPE_VIDEO_CAPTURE: u32 = sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
pub const BUF_TYPE_VIDEO_OUTPUT: u32 = sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT;
pub const BUF_TYPE_VIDEO_CAPTURE_MPLANE: u32 =
    sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
pub const BUF_TYPE_VIDEO_OUTPUT_MPLANE: u32 = sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_ioctl_number_matches_the_kernel() {
        // From <linux/videodev2.h> on 64-bit Linux.
        assert_eq!(std::mem::size_of::<sys::v4l2_selection>(), 64);
        assert_eq!(VIDIOC_S_SELECTION, 0xC040_565F);
    }
}
