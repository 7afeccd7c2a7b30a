//! The loop's side of the layers (see [`crate::rtc::layers`]): each
//! camera's picker fed the peers' estimates, its outputs applied to the
//! encoders and told to the peers, and the layers in `/api/status`.

use std::time::Instant;

use super::{CameraLinks, RtcServer};
use crate::media::pipeline::KeyframeReason;
use crate::rtc::layers::{Layer, LayerOutput, ViewerLayer, ViewerLink};
use crate::rtc::status::{LayerStatus, Layers};
use crate::session::protocol::Outbound;

impl RtcServer {
    /// Each camera's layers from its viewers' estimates (each camera gets
    /// an even share of a peer's link); the encoders follow.
    pub(super) fn pick_layers(&mut self, now: Instant) {
        let share = self.media.cameras.len().max(1) as u64;
        let operator = self.session.operator();
        let published = self.publish.lowest_estimate().map(|bps| bps / share);
        for (n, camera) in self.media.cameras.iter_mut().enumerate() {
            camera.layers.set_main_cap(published);
            let links: Vec<ViewerLink> = (self.hub.viewer_estimates(n).into_iter())
                .map(|(id, estimate)| ViewerLink {
                    id,
                    estimate: estimate.map(|bps| bps / share),
                    operator: operator == Some(id),
                })
                .collect();
            camera.layers.update(now, &links);
            while let Some(output) = camera.layers.poll_output() {
                match output {
                    LayerOutput::Bitrate(layer, bps) => {
                        tracing::info!(bps, camera = camera.name, ?layer, "encoder bitrate");
                        match (layer, &camera.video.low) {
                            (Layer::Main, _) => camera.video.set_bitrate(bps),
                            (Layer::Low, Some(low)) => low.set_bitrate(bps),
                            (Layer::Low, None) => {}
                        }
                    }
                    LayerOutput::Keyframe(layer) => {
                        request_keyframe(camera, layer, KeyframeReason::NewPeer)
                    }
                    LayerOutput::Viewer(peer, shown) => {
                        self.hub.send_text(peer, &layer_message(n, shown));
                    }
                }
            }
            if let Some(low) = &camera.video.low {
                low.set_viewers(camera.layers.low_viewers());
            }
        }
    }
}

/// The `layer` message telling a peer which of camera `n`'s layers it gets.
pub(super) fn layer_message(n: usize, shown: ViewerLayer) -> String {
    let message = Outbound::Layer {
        camera: n,
        layer: shown.layer,
        switching_to: shown.switching_to,
        why: shown.why,
    };
    message.to_json()
}

/// A keyframe of one of the camera's layers, through that layer's throttle.
pub(super) fn request_keyframe(camera: &CameraLinks, layer: Layer, reason: KeyframeReason) {
    match (layer, &camera.video.low) {
        (Layer::Low, Some(low)) => low.request_keyframe(reason),
        _ => camera.video.request_keyframe(reason),
    }
}

/// Per layer: its size, target bitrate and what it encoded since start.
pub(super) fn layers_status(camera: &CameraLinks) -> Layers {
    let source = &camera.video.source;
    Layers {
        main: LayerStatus {
            width: source.width,
            height: source.height,
            bitrate: camera.layers.bitrate(Layer::Main),
            viewers: None,
            counts: camera.video.main_counters.status(),
        },
        low: camera.video.low.as_ref().map(|low| LayerStatus {
            width: low.width,
            height: low.height,
            bitrate: camera.layers.bitrate(Layer::Low),
            viewers: Some(camera.layers.low_viewers()),
            counts: low.counters.status(),
        }),
    }
}
