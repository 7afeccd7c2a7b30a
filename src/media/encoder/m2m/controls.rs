//! The controls that make the encoder's stream one a browser can play.

use v4l::v4l_sys as sys;

/// Not in older kernel headers (added in Linux 5.12); the number is uAPI and fixed.
const CID_PREPEND_SPSPPS_TO_IDR: u32 = sys::V4L2_CID_MPEG_BASE + 644;

/// The lowest H.264 level (as the V4L2 menu value) that allows this size and
/// rate, starting at 3.1, which browsers announce for Constrained Baseline.
pub fn h264_level(width: u32, height: u32, fps: u32) -> Option<i32> {
    // (V4L2 menu value, max macroblocks per second, max macroblocks per frame), Table A-1.
    const LEVELS: [(u32, u64, u64); 7] = [
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_1,
            108_000,
            3_600,
        ),
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_2,
            216_000,
            5_120,
        ),
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_0,
            245_760,
            8_192,
        ),
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_2,
            522_240,
            8_704,
        ),
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_5_0,
            589_824,
            22_080,
        ),
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_5_1,
            983_040,
            36_864,
        ),
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_5_2,
            2_073_600,
            36_864,
        ),
    ];
    let mbs = u64::from(width.div_ceil(16)) * u64::from(height.div_ceil(16));
    let rate = mbs * u64::from(fps);
    LEVELS
        .iter()
        .find(|&&(_, max_rate, max_frame)| rate <= max_rate && mbs <= max_frame)
        .map(|&(level, _, _)| level as i32)
}

/// A control to set when the encoder starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub id: u32,
    pub value: i32,
    pub name: &'static str,
    /// Tried when the driver refuses `value`.
    pub fallback: Option<i32>,
}

pub(super) fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Controls for a WebRTC-friendly stream: Constrained Baseline, SPS/PPS
/// before every IDR, constant bitrate, a periodic IDR every 4 seconds (like
/// the openh264 encoder) so a peer that lost one recovers on its own.
pub fn setup_controls(width: u32, height: u32, fps: u32, bitrate: u32) -> Vec<Control> {
    let control = |id, value, name| Control {
        id,
        value,
        name,
        fallback: None,
    };
    let mut controls = vec![
        Control {
            fallback: Some(
                sys::v4l2_mpeg_video_h264_profile_V4L2_MPEG_VIDEO_H264_PROFILE_BASELINE as i32,
            ),
            ..control(
                sys::V4L2_CID_MPEG_VIDEO_H264_PROFILE,
                sys::v4l2_mpeg_video_h264_profile_V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE
                    as i32,
                "H.264 profile (constrained baseline)",
            )
        },
        control(
            sys::V4L2_CID_MPEG_VIDEO_BITRATE_MODE,
            sys::v4l2_mpeg_video_bitrate_mode_V4L2_MPEG_VIDEO_BITRATE_MODE_CBR as i32,
            "bitrate mode (CBR)",
        ),
        control(
            sys::V4L2_CID_MPEG_VIDEO_BITRATE,
            clamp_i32(bitrate),
            "bitrate",
        ),
        control(
            sys::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD,
            clamp_i32(fps.saturating_mul(4).max(1)),
            "IDR period",
        ),
        control(
            sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER,
            1,
            "repeat sequence header",
        ),
        control(CID_PREPEND_SPSPPS_TO_IDR, 1, "SPS/PPS before IDR"),
    ];
    if let Some(level) = h264_level(width, height, fps) {
        controls.insert(
            1,
            control(sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL, level, "H.264 level"),
        );
    }
    controls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_table_a1() {
        use sys::*;
        let level = |w, h, fps| h264_level(w, h, fps).map(|l| l as u32);
        assert_eq!(
            level(640, 480, 30),
            Some(v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_1)
        );
        assert_eq!(
            level(1280, 720, 30),
            Some(v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_1)
        );
        assert_eq!(
            level(1280, 720, 60),
            Some(v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_2)
        );
        assert_eq!(
            level(1920, 1080, 30),
            Some(v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_0)
        );
        assert_eq!(
            level(1920, 1080, 60),
            Some(v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_2)
        );
        assert_eq!(level(7680, 4320, 60), None);
    }

    #[test]
    fn controls_ask_for_a_browser_friendly_stream() {
        let controls = setup_controls(1280, 720, 30, 2_000_000);
        let get = |id| controls.iter().find(|c| c.id == id).copied().unwrap();
        let profile = get(sys::V4L2_CID_MPEG_VIDEO_H264_PROFILE);
        assert_eq!(
            profile.value as u32,
            sys::v4l2_mpeg_video_h264_profile_V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE
        );
        assert_eq!(
            profile.fallback.map(|v| v as u32),
            Some(sys::v4l2_mpeg_video_h264_profile_V4L2_MPEG_VIDEO_H264_PROFILE_BASELINE)
        );
        assert_eq!(get(sys::V4L2_CID_MPEG_VIDEO_BITRATE).value, 2_000_000);
        assert_eq!(get(sys::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD).value, 120);
        assert_eq!(get(sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER).value, 1);
        assert_eq!(get(CID_PREPEND_SPSPPS_TO_IDR).value, 1);
        assert_eq!(CID_PREPEND_SPSPPS_TO_IDR, 0x0099_0B84);
        assert!(controls
            .iter()
            .any(|c| c.id == sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL));
        assert_eq!(
            setup_controls(64, 64, 30, u32::MAX)[3].value,
            i32::MAX,
            "bitrate clamped"
        );
        assert!(!setup_controls(8192, 8192, 60, 1)
            .iter()
            .any(|c| c.id == sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL));
    }
}
