//! Per-layer figures of each camera (`cameras[].layers` in `/api/status`)
//! and which layer each peer gets (`peers[].layers`).

use super::{bitrate, label, Exposition};
use crate::rtc::status::{Camera, LayerStatus, Peer};

/// A camera's layers by name, in the order `/metrics` always listed them.
fn each_layer(camera: &Camera) -> impl Iterator<Item = (&'static str, &LayerStatus)> {
    let layers = &camera.layers;
    (layers.low.as_ref().map(|low| ("low", low)).into_iter()).chain([("main", &layers.main)])
}

pub(super) fn render(e: &mut Exposition, cameras: &[Camera], peers: &[Peer]) {
    type LayerFigure = (
        &'static str,
        &'static str,
        &'static str,
        fn(&LayerStatus) -> f64,
    );
    let figures: [LayerFigure; 4] = [
        (
            "telepi_video_layer_frames_total",
            "counter",
            "Frames each layer encoded.",
            |l| l.counts.frames as f64,
        ),
        (
            "telepi_video_layer_keyframes_total",
            "counter",
            "Keyframes (IDR) each layer encoded.",
            |l| l.counts.keyframes as f64,
        ),
        (
            "telepi_video_layer_bytes_total",
            "counter",
            "Bytes each layer encoded (its bitrate is the rate of this).",
            |l| l.counts.bytes as f64,
        ),
        (
            "telepi_video_layer_target_bits_per_second",
            "gauge",
            "Each layer's encoder bitrate target.",
            |l| bitrate(l.bitrate),
        ),
    ];
    for (metric, kind, help, figure) in figures {
        let mut f = e.family(metric, kind, help);
        for camera in cameras {
            for (layer, status) in each_layer(camera) {
                f.sample(
                    &[("camera", &camera.name), ("layer", layer)],
                    figure(status),
                );
            }
        }
    }
    let mut f = e.family(
        "telepi_peer_video_layer",
        "gauge",
        "The layer each peer gets of each camera (always 1; the layer is a label).",
    );
    for peer in peers {
        let id = peer.link.id.to_string();
        for (camera, shown) in cameras.iter().zip(&peer.layers) {
            if let Some(shown) = shown {
                let layer = label(&shown.layer);
                f.sample(
                    &[("peer", &id), ("camera", &camera.name), ("layer", &layer)],
                    1.0,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::layer::{Layer, LayerCounts};
    use crate::rtc::layers::{ViewerLayer, Why};
    use crate::rtc::status::Layers;

    #[test]
    fn each_layer_and_each_peers_layer_is_a_sample() {
        let layer = |(frames, keyframes, bytes), bitrate| LayerStatus {
            bitrate: Some(bitrate),
            counts: LayerCounts {
                frames,
                keyframes,
                bytes,
            },
            ..LayerStatus::default()
        };
        let cameras = [Camera {
            name: "front".into(),
            layers: Layers {
                main: layer((300, 3, 5_000_000), 1_500_000),
                low: Some(layer((90, 2, 100_000), 255_000)),
            },
            ..Camera::default()
        }];
        let watching = |id, layer: Option<Layer>, why| {
            let mut p = Peer::fixture(id, "connected", None);
            p.layers = vec![layer.map(|layer| ViewerLayer {
                layer,
                switching_to: None,
                why,
            })];
            p
        };
        let peers = [
            watching(1, Some(Layer::Main), Why::FastLink),
            watching(2, Some(Layer::Low), Why::SlowLink),
            watching(3, None, Why::Starting),
        ];
        let mut e = super::Exposition::default();
        super::render(&mut e, &cameras, &peers);
        for line in [
            r#"telepi_video_layer_frames_total{camera="front",layer="low"} 90"#,
            r#"telepi_video_layer_bytes_total{camera="front",layer="main"} 5000000"#,
            r#"telepi_video_layer_target_bits_per_second{camera="front",layer="low"} 255000"#,
            r#"telepi_peer_video_layer{peer="1",camera="front",layer="main"} 1"#,
            r#"telepi_peer_video_layer{peer="2",camera="front",layer="low"} 1"#,
        ] {
            assert!(e.out.lines().any(|l| l == line), "{line} in\n{}", e.out);
        }
        assert!(!e.out.contains(r#"peer="3""#));
    }
}
