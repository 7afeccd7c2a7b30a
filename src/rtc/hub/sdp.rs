//! What the hub reads from an offer's SDP that str0m doesn't tell it: which
//! H.264 payload type to send, and whether every video section can take H.264.

use str0m::format::{Codec, PayloadParams};
use str0m::media::Pt;

/// Prefers Constrained Baseline (42e0xx), then any packetization-mode=1 H.264.
pub(crate) fn pick_h264<'a>(params: impl Iterator<Item = &'a PayloadParams>) -> Option<Pt> {
    let candidates: Vec<(Pt, Option<u32>)> = params
        .filter(|p| p.spec().codec == Codec::H264 && p.spec().format.packetization_mode == Some(1))
        .map(|p| (p.pt(), p.spec().format.profile_level_id))
        .collect();
    candidates
        .iter()
        .find(|(_, profile)| profile.is_some_and(|id| id >> 8 == 0x42e0))
        .or(candidates.first())
        .map(|(pt, _)| *pt)
}

/// The first `a=NAME:` value of the SDP (session or media level): browsers
/// put the same ICE credentials and fingerprint on every bundled section.
pub(super) fn attribute<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=")?.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// Every `m=video` section of the offer must offer H.264 with
/// packetization-mode=1; an offer without video (data channel only) is fine.
pub(super) fn video_sections_have_h264(sdp: &str) -> bool {
    let mut sections = sdp.split("\nm=").skip(1);
    sections.all(|section| {
        if !section.starts_with("video") {
            return true;
        }
        let h264_pts: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("a=rtpmap:"))
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, codec)| codec.to_ascii_uppercase().starts_with("H264/"))
            .map(|(pt, _)| pt)
            .collect();
        section
            .lines()
            .filter_map(|l| l.strip_prefix("a=fmtp:"))
            .any(|l| {
                l.split_once(' ').is_some_and(|(pt, params)| {
                    h264_pts.contains(&pt) && params.contains("packetization-mode=1")
                })
            })
    })
}

/// What one of a peer's video m-lines is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VideoLine {
    /// Carries the robot's next camera (config order).
    Camera,
    /// The operator's camera: the peer sends on it while it operates, and
    /// receives the operator's picture on it while it watches.
    OperatorCamera,
}

/// The m-line rule. The first video m-line always carries camera 0, whatever
/// its direction, so one-m-line clients (RTCBot, WHEP, any page) work as
/// they always did. After it, the first m-line the peer offers to send on
/// (`sendrecv` or `sendonly`: str0m's answer then receives) is the
/// operator's camera; every other one carries the next camera, so the n-th
/// `recvonly` m-line still gets camera n.
pub(super) fn video_line(
    earlier_video_lines: usize,
    has_operator_camera: bool,
    peer_sends: bool,
) -> VideoLine {
    if earlier_video_lines > 0 && peer_sends && !has_operator_camera {
        VideoLine::OperatorCamera
    } else {
        VideoLine::Camera
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_video_line_is_always_a_camera() {
        assert_eq!(video_line(0, false, true), VideoLine::Camera);
        assert_eq!(video_line(0, false, false), VideoLine::Camera);
    }

    #[test]
    fn a_later_line_the_peer_sends_on_is_the_operator_camera_once() {
        // The page: recvonly, recvonly, sendrecv.
        assert_eq!(video_line(1, false, false), VideoLine::Camera);
        assert_eq!(video_line(2, false, true), VideoLine::OperatorCamera);
        // Only one operator camera per peer; a further sending line is a camera again.
        assert_eq!(video_line(3, true, true), VideoLine::Camera);
        // recvonly lines after it keep counting cameras.
        assert_eq!(video_line(3, true, false), VideoLine::Camera);
    }
}
