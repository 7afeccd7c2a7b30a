//! What the hub reads from an offer's SDP that str0m doesn't tell it: which
//! H.264 payload type to send, and whether every video section can take H.264.

use str0m::format::{Codec, PayloadParams};
use str0m::media::Pt;

/// Prefers Constrained Baseline (42e0xx), then any packetization-mode=1 H.264.
pub(super) fn pick_h264<'a>(params: impl Iterator<Item = &'a PayloadParams>) -> Option<Pt> {
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
