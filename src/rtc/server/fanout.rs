//! Who consumes encoded media, in one place: the peers (each camera's layer
//! picker admitting them frame by frame), the WHIP publishers, the recorder
//! and the robot's screen, as one [`FanOut`] the loop hands each frame to.

use std::time::Instant;

use super::{CameraLinks, RtcServer};
use crate::media::audio::EncodedAudio;
use crate::media::layer::Layer;
use crate::media::sink::{FanOut, Feed, MediaSink};
use crate::media::EncodedFrame;
use crate::rtc::hub::Hub;

/// The peers as a sink: a frame goes to those its camera's layer picker puts
/// on that layer.
struct Peers<'a> {
    hub: &'a mut Hub,
    cameras: &'a mut [CameraLinks],
}

impl MediaSink for Peers<'_> {
    fn video(&mut self, _now: Instant, feed: Feed, layer: Layer, frame: &EncodedFrame) {
        // The operator's camera comes from a peer; the hub keeps it to itself.
        let Feed::Camera(camera) = feed else { return };
        let Some(links) = self.cameras.get_mut(camera) else {
            return;
        };
        let (layers, keyframe) = (&mut links.layers, frame.keyframe);
        (self.hub).send_video_to(camera, frame, |peer| layers.admit(peer, layer, keyframe));
    }

    fn audio(&mut self, _now: Instant, packet: &EncodedAudio) {
        self.hub.send_audio(packet);
    }

    fn viewers(&self, camera: usize) -> usize {
        self.hub.viewers(camera)
    }

    fn listeners(&self) -> usize {
        self.hub.listeners()
    }

    /// Peers ask per layer, through `HubEvent::KeyframeWanted`.
    fn take_keyframe_request(&mut self, _feed: Feed) -> bool {
        false
    }
}

impl RtcServer {
    /// Runs `f` with every consumer of encoded media.
    pub(super) fn with_consumers<R>(&mut self, f: impl FnOnce(&mut FanOut<'_, 4>) -> R) -> R {
        let mut peers = Peers {
            hub: &mut self.hub,
            cameras: &mut self.media.cameras,
        };
        f(&mut FanOut::new([
            &mut peers,
            &mut self.publish,
            &mut self.media.recordings,
            &mut self.media.display,
        ]))
    }
}
