//! Per-layer figures of each camera (`cameras[].layers` in `/api/status`)
//! and which layer each peer gets (`peers[].layers`).

use serde_json::Value;

use super::{num, Exposition};

pub(super) fn render(e: &mut Exposition, status: &Value) {
    let cameras = status["cameras"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let name = |camera: &Value| camera["name"].as_str().unwrap_or("").to_string();
    let figures = [
        (
            "telepi_video_layer_frames_total",
            "counter",
            "Frames each layer encoded.",
            "frames",
        ),
        (
            "telepi_video_layer_keyframes_total",
            "counter",
            "Keyframes (IDR) each layer encoded.",
            "keyframes",
        ),
        (
            "telepi_video_layer_bytes_total",
            "counter",
            "Bytes each layer encoded (its bitrate is the rate of this).",
            "bytes",
        ),
        (
            "telepi_video_layer_target_bits_per_second",
            "gauge",
            "Each layer's encoder bitrate target.",
            "bitrate",
        ),
    ];
    for (metric, kind, help, field) in figures {
        let mut f = e.family(metric, kind, help);
        for camera in cameras {
            for (layer, figures) in camera["layers"].as_object().into_iter().flatten() {
                f.sample(
                    &[("camera", &name(camera)), ("layer", layer)],
                    num(&figures[field]),
                );
            }
        }
    }
    let mut f = e.family(
        "telepi_peer_video_layer",
        "gauge",
        "The layer each peer gets of each camera (always 1; the layer is a label).",
    );
    let peers = status["peers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for peer in peers {
        let id = peer["id"].to_string();
        let layers = peer["layers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        for (camera, layer) in cameras.iter().zip(layers) {
            if let Some(layer) = layer["layer"].as_str() {
                f.sample(
                    &[("peer", &id), ("camera", &name(camera)), ("layer", layer)],
                    1.0,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_layer_and_each_peers_layer_is_a_sample() {
        let status = serde_json::json!({
            "cameras": [{"name": "front", "layers": {
                "main": {"frames": 300, "keyframes": 3, "bytes": 5_000_000, "bitrate": 1_500_000},
                "low": {"frames": 90, "keyframes": 2, "bytes": 100_000, "bitrate": 255_000},
            }}],
            "peers": [
                {"id": 1, "layers": [{"layer": "main", "switching_to": null, "why": "fast_link"}]},
                {"id": 2, "layers": [{"layer": "low", "switching_to": null, "why": "slow_link"}]},
                {"id": 3, "layers": [null]},
            ],
        });
        let mut e = super::Exposition::default();
        super::render(&mut e, &status);
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
