//! The hub's side of the operator's camera: what peers sent on their
//! operator-camera m-lines goes through [`OperatorCamera`]'s verdict; the
//! operator's frames go out unchanged to every other peer with that m-line
//! and up to the loop as [`HubEvent::OperatorVideo`]; keyframe requests go
//! to the operator as PLIs.

use std::time::Instant;

use str0m::media::KeyframeRequestKind;

use super::opcam::{OperatorCameraStatus, Verdict};
use super::{Hub, HubEvent, OperatorCameraInput, PeerId};
use crate::media::pipeline::KeyframeReason;
use crate::media::EncodedFrame;

impl Hub {
    /// The session's operator, whose camera alone is used. Any change
    /// restarts the forwarded picture at the new operator's next keyframe.
    pub fn set_operator(&mut self, operator: Option<PeerId>) {
        if !self.operator_camera.set_operator(operator) {
            return;
        }
        for peer in &mut self.peers {
            if let Some(track) = &mut peer.operator_camera {
                track.awaiting_keyframe = true;
            }
        }
    }

    /// A consumer of [`HubEvent::OperatorVideo`] (the recorder, a display)
    /// needs a keyframe; the operator is asked with a PLI, throttled.
    pub fn request_operator_keyframe(&mut self, now: Instant, reason: KeyframeReason) {
        self.operator_camera.request_keyframe(reason);
        self.ask_operator_for_keyframe(now);
    }

    pub fn operator_camera_status(&self, now: Instant) -> OperatorCameraStatus {
        self.operator_camera.status(now)
    }

    /// Acts on what the peers did on their operator-camera m-lines since the last call.
    pub(super) fn serve_operator_camera(&mut self, now: Instant) {
        let mut inputs = Vec::new();
        for peer in &mut self.peers {
            inputs.extend(peer.operator_camera_inbox.drain(..).map(|i| (peer.id, i)));
        }
        for (peer, input) in inputs {
            match input {
                OperatorCameraInput::Frame(frame) => match self.operator_camera.receive(frame) {
                    Verdict::Use(frame) => {
                        self.forward(&frame);
                        self.events.push_back(HubEvent::OperatorVideo(frame));
                    }
                    Verdict::NotOperator { first: true } => {
                        tracing::info!(%peer, "video from a peer that is not the operator: dropped");
                    }
                    Verdict::NotOperator { first: false } | Verdict::AwaitingKeyframe => {}
                },
                // The operator's own page asks for nothing it doesn't get.
                OperatorCameraInput::WantsKeyframe(_)
                    if Some(peer) == self.operator_camera.operator() => {}
                OperatorCameraInput::WantsKeyframe(reason) => {
                    self.operator_camera.request_keyframe(reason);
                }
            }
        }
        self.ask_operator_for_keyframe(now);
    }

    /// The operator's frame, unchanged, to every other connected peer with
    /// an operator-camera m-line. A peer still waiting for a keyframe asks for one.
    fn forward(&mut self, frame: &EncodedFrame) {
        let operator = self.operator_camera.operator();
        let mut waiting = false;
        for peer in &mut self.peers {
            if !peer.sending() || Some(peer.id) == operator {
                continue;
            }
            let Some(track) = &mut peer.operator_camera else {
                continue;
            };
            if track.send(&mut peer.rtc, peer.id, frame) {
                self.operator_camera.count_forwarded();
            } else {
                waiting |= track.awaiting_keyframe;
            }
            peer.drain(&mut self.transmits, &mut self.events);
        }
        if waiting {
            self.operator_camera
                .request_keyframe(KeyframeReason::NewPeer);
        }
    }

    fn ask_operator_for_keyframe(&mut self, now: Instant) {
        if !self.operator_camera.take_keyframe_request(now) {
            return;
        }
        let operator = self.operator_camera.operator();
        let Some(peer) = self.peers.iter_mut().find(|p| Some(p.id) == operator) else {
            return;
        };
        let Some(mid) = peer.operator_camera.as_ref().map(|t| t.mid) else {
            return;
        };
        if let Some(mut writer) = peer.rtc.writer(mid) {
            if let Err(e) = writer.request_keyframe(None, KeyframeRequestKind::Pli) {
                tracing::debug!(peer = %peer.id, "keyframe request for the operator's camera: {e}");
            }
        }
        peer.drain(&mut self.transmits, &mut self.events);
    }
}
