//! Telling a memory-to-memory H.264 encoder from the other V4L2 nodes (cameras,
//! decoders, the ISP), and finding the first one.

use std::io;
use std::path::PathBuf;

use v4l::v4l_sys as sys;

use crate::media::v4l2::{
    fourcc_name, video_nodes, Device, BUF_TYPE_VIDEO_CAPTURE, BUF_TYPE_VIDEO_CAPTURE_MPLANE,
    BUF_TYPE_VIDEO_OUTPUT, BUF_TYPE_VIDEO_OUTPUT_MPLANE, FOURCC_FWHT, FOURCC_H264, FOURCC_YU12,
};

/// Whether a node with these capabilities is a memory-to-memory device, and
/// if so whether it uses the multi-planar API.
pub fn m2m_api(device_caps: u32) -> Option<bool> {
    if device_caps & sys::V4L2_CAP_STREAMING == 0 {
        None
    } else if device_caps & sys::V4L2_CAP_VIDEO_M2M_MPLANE != 0 {
        Some(true)
    } else if device_caps & sys::V4L2_CAP_VIDEO_M2M != 0 {
        Some(false)
    } else {
        None
    }
}

/// What the encoder gives out on its CAPTURE queue. Telepi streams H.264
/// and nothing else; FWHT is what the kernel's `vicodec` test driver
/// encodes, so the encoder's handling of a real driver can be tested on a
/// machine without H.264 hardware (tests/m2m_device.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    Fwht,
}

impl Codec {
    pub fn fourcc(self) -> u32 {
        match self {
            Codec::H264 => FOURCC_H264,
            Codec::Fwht => FOURCC_FWHT,
        }
    }
}

/// An encoder for `codec` takes YU12 in (OUTPUT) and gives `codec` out (CAPTURE).
fn encodes(codec: Codec, output_formats: &[u32], capture_formats: &[u32]) -> bool {
    output_formats.contains(&FOURCC_YU12) && capture_formats.contains(&codec.fourcc())
}

/// An H.264 encoder takes YU12 in (OUTPUT) and gives H.264 out (CAPTURE).
pub fn is_h264_encoder(output_formats: &[u32], capture_formats: &[u32]) -> bool {
    encodes(Codec::H264, output_formats, capture_formats)
}

pub(super) fn queue_types(mplane: bool) -> (u32, u32) {
    if mplane {
        (BUF_TYPE_VIDEO_OUTPUT_MPLANE, BUF_TYPE_VIDEO_CAPTURE_MPLANE)
    } else {
        (BUF_TYPE_VIDEO_OUTPUT, BUF_TYPE_VIDEO_CAPTURE)
    }
}

/// Checks that `device` encodes YU12 to `codec`; returns whether it is multi-planar.
pub(super) fn check_encoder(device: &Device, codec: Codec) -> io::Result<bool> {
    let caps = device.caps()?;
    let not_encoder = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: {} ({}) {why}",
                device.path().display(),
                caps.card,
                caps.driver
            ),
        )
    };
    let mplane = m2m_api(caps.device_caps)
        .ok_or_else(|| not_encoder("is not a memory-to-memory device".into()))?;
    let (output, capture) = queue_types(mplane);
    let codes = |t| -> Vec<u32> { device.formats(t).iter().map(|f| f.fourcc).collect() };
    let (inputs, outputs) = (codes(output), codes(capture));
    if !encodes(codec, &inputs, &outputs) {
        let names = |c: &[u32]| {
            c.iter()
                .map(|&f| fourcc_name(f))
                .collect::<Vec<_>>()
                .join(",")
        };
        return Err(not_encoder(format!(
            "converts [{}] to [{}], not YU12 to {}",
            names(&inputs),
            names(&outputs),
            fourcc_name(codec.fourcc())
        )));
    }
    Ok(mplane)
}

/// The first `/dev/video*` that is a usable memory-to-memory H.264 encoder.
pub fn probe() -> Option<PathBuf> {
    video_nodes().into_iter().find(|path| {
        Device::open(path)
            .and_then(|d| check_encoder(&d, Codec::H264))
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m2m_nodes_are_recognised_by_capability() {
        let streaming = sys::V4L2_CAP_STREAMING;
        assert_eq!(
            m2m_api(streaming | sys::V4L2_CAP_VIDEO_M2M_MPLANE),
            Some(true)
        );
        assert_eq!(m2m_api(streaming | sys::V4L2_CAP_VIDEO_M2M), Some(false));
        assert_eq!(
            m2m_api(sys::V4L2_CAP_VIDEO_M2M_MPLANE),
            None,
            "no streaming"
        );
        assert_eq!(
            m2m_api(streaming | sys::V4L2_CAP_VIDEO_CAPTURE),
            None,
            "a camera"
        );
    }

    #[test]
    fn only_yu12_to_h264_counts_as_an_encoder() {
        let nv12 = crate::media::v4l2::FOURCC_NV12;
        // bcm2835-codec: video11 encodes, video10 decodes, video12 is the ISP.
        assert!(is_h264_encoder(&[FOURCC_YU12, nv12], &[FOURCC_H264]));
        assert!(!is_h264_encoder(&[FOURCC_H264], &[FOURCC_YU12, nv12]));
        assert!(!is_h264_encoder(&[FOURCC_YU12], &[nv12]));
        assert!(!is_h264_encoder(&[], &[]));
        // vicodec's encoder node: an encoder, but not of H.264.
        assert!(!is_h264_encoder(&[FOURCC_YU12], &[FOURCC_FWHT]));
        assert!(encodes(Codec::Fwht, &[FOURCC_YU12, nv12], &[FOURCC_FWHT]));
    }
}
