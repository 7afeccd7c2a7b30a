//! The operator's camera, sans-IO: whose video counts (the operator's only),
//! where its stream may start (a keyframe), one continuous RTP timeline
//! across operator changes, when to ask the operator for a keyframe, and
//! the counters `/api/status` shows. Frames and time go in; verdicts and
//! keyframe requests come out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::PeerId;
use crate::media::h264::annexb::{is_idr, nal_type, nal_units, NAL_SPS};
use crate::media::h264::sps::parse_sps;
use crate::media::pipeline::{KeyframeReason, KeyframeThrottle};
use crate::media::EncodedFrame;

/// PLIs to the operator for losses: at most this often (joins: every 100 ms).
const LOSS_KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);
/// The gap put between two operators' streams on the forwarded timeline (a 30 fps frame).
const SWITCH_TICKS: u64 = 3000;
/// Frames within this long count as "receiving" in the status.
const RECEIVING_WITHIN: Duration = Duration::from_secs(1);

/// One depacketized access unit a peer sent on its operator-camera m-line.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub peer: PeerId,
    /// Annex B, as str0m's H.264 depacketizer gives it.
    pub data: Arc<[u8]>,
    /// The sender's 90 kHz RTP time.
    pub time: u64,
    pub arrived: Instant,
    /// False when packets were lost before this frame.
    pub contiguous: bool,
}

/// What to do with an [`Incoming`] frame.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// The operator's: forward it, record it, show it.
    Use(EncodedFrame),
    /// Not the operator's: dropped. `first` once per peer (and role change), to log it once.
    NotOperator { first: bool },
    /// The operator's, but undecodable until the next keyframe.
    AwaitingKeyframe,
}

/// For `/api/status`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OperatorCameraStatus {
    /// The peer whose camera is used (the operator), if any.
    pub peer: Option<PeerId>,
    /// Frames from the operator within the last second.
    pub receiving: bool,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Used frames and keyframes since start, every operator together.
    pub frames: u64,
    pub keyframes: u64,
    /// Frames from peers that weren't the operator, dropped.
    pub refused_frames: u64,
    /// Frames dropped while waiting for a keyframe (start, loss, new operator).
    pub frames_awaiting_keyframe: u64,
    /// Writes of a frame to a viewer (one frame to three viewers counts three).
    pub frames_forwarded: u64,
    pub keyframe_requests: u64,
}

#[derive(Debug)]
pub struct OperatorCamera {
    operator: Option<PeerId>,
    /// Peers whose frames were refused and logged since the last role change.
    refused_logged: Vec<PeerId>,
    awaiting_keyframe: bool,
    /// The current operator has sent something: a PLI can reach a stream.
    operator_sending: bool,
    /// (sender's time, forwarded time) at the current operator's first frame.
    timeline: Option<(u64, u64)>,
    last_time: Option<u64>,
    last_frame_at: Option<Instant>,
    throttle: KeyframeThrottle,
    status: OperatorCameraStatus,
}

impl Default for OperatorCamera {
    fn default() -> Self {
        OperatorCamera {
            operator: None,
            refused_logged: Vec::new(),
            awaiting_keyframe: true,
            operator_sending: false,
            timeline: None,
            last_time: None,
            last_frame_at: None,
            throttle: KeyframeThrottle::new(LOSS_KEYFRAME_INTERVAL),
            status: OperatorCameraStatus::default(),
        }
    }
}

impl OperatorCamera {
    pub fn operator(&self) -> Option<PeerId> {
        self.operator
    }

    /// The session's operator; true if it changed. The old operator's video
    /// stops counting at once, the new one's starts at its next keyframe.
    pub fn set_operator(&mut self, operator: Option<PeerId>) -> bool {
        if self.operator == operator {
            return false;
        }
        self.operator = operator;
        self.refused_logged.clear();
        self.awaiting_keyframe = true;
        self.operator_sending = false;
        self.timeline = None;
        self.last_frame_at = None;
        self.throttle.request(KeyframeReason::NewPeer);
        true
    }

    pub fn receive(&mut self, frame: Incoming) -> Verdict {
        if self.operator != Some(frame.peer) {
            self.status.refused_frames += 1;
            let first = !self.refused_logged.contains(&frame.peer);
            if first {
                self.refused_logged.push(frame.peer);
            }
            return Verdict::NotOperator { first };
        }
        self.operator_sending = true;
        let keyframe = is_idr(&frame.data);
        if !frame.contiguous {
            self.awaiting_keyframe = true;
        }
        if self.awaiting_keyframe && !keyframe {
            self.status.frames_awaiting_keyframe += 1;
            self.throttle.request(KeyframeReason::Loss);
            return Verdict::AwaitingKeyframe;
        }
        self.awaiting_keyframe = false;
        if keyframe {
            self.status.keyframes += 1;
            let sps = nal_units(&frame.data).find(|nal| nal_type(nal) == NAL_SPS);
            if let Some(info) = sps.and_then(|sps| parse_sps(sps).ok()) {
                self.status.width = Some(info.width);
                self.status.height = Some(info.height);
            }
        }
        let (sender_base, base) = *self.timeline.get_or_insert_with(|| {
            let base = self.last_time.map_or(0, |t| t + SWITCH_TICKS);
            (frame.time, base)
        });
        let time = base + frame.time.saturating_sub(sender_base);
        self.last_time = Some(time);
        self.last_frame_at = Some(frame.arrived);
        self.status.frames += 1;
        Verdict::Use(EncodedFrame {
            data: frame.data,
            captured: frame.arrived,
            rtp_time: time,
            keyframe,
        })
    }

    /// A consumer needs a keyframe (a viewer joined or lost packets, the
    /// recorder or a display started).
    pub fn request_keyframe(&mut self, reason: KeyframeReason) {
        self.throttle.request(reason);
    }

    /// Whether to send the operator a PLI now: a request is pending, its
    /// interval has passed, and the operator is sending (before that, no
    /// stream exists to ask, and a new stream starts with a keyframe anyway).
    pub fn take_keyframe_request(&mut self, now: Instant) -> bool {
        if !self.operator_sending || !self.throttle.take(now) {
            return false;
        }
        self.status.keyframe_requests += 1;
        true
    }

    pub fn count_forwarded(&mut self) {
        self.status.frames_forwarded += 1;
    }

    pub fn status(&self, now: Instant) -> OperatorCameraStatus {
        let receiving = self
            .last_frame_at
            .is_some_and(|at| now.saturating_duration_since(at) < RECEIVING_WITHIN);
        OperatorCameraStatus {
            peer: self.operator,
            receiving,
            ..self.status.clone()
        }
    }
}

#[cfg(test)]
mod tests;
