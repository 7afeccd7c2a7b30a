//! Several cameras end to end: each video m-line of an offer gets the next
//! camera, and a camera nobody receives idles its encoder.

mod common;

use std::time::Duration;

use common::{Peer, Server};

const TWO_CAMERAS: &str = "tests/fixtures/two-cameras.toml";

fn frames_encoded(status: &serde_json::Value, camera: usize) -> u64 {
    status["cameras"][camera]["frames_encoded"]
        .as_u64()
        .unwrap()
}

#[test]
fn two_video_m_lines_receive_both_cameras_at_their_sizes() {
    let server = Server::start(&["--config", TWO_CAMERAS]);
    let mut peer = Peer::connect_videos(&server, 2);
    assert!(
        peer.run_until(Duration::from_secs(20), |p| {
            p.frames_decoded >= 10 && p.more_tracks[0].frames_decoded >= 10
        }),
        "decoded {} and {} frames",
        peer.frames_decoded,
        peer.more_tracks[0].frames_decoded
    );
    assert_eq!(peer.last_size, Some((320, 240)));
    assert_eq!(peer.more_tracks[0].last_size, Some((160, 120)));
    let status = server.status();
    let cameras = status["cameras"].as_array().unwrap();
    let described: Vec<_> = cameras
        .iter()
        .map(|c| (c["name"].clone(), c["width"].clone(), c["height"].clone()))
        .collect();
    assert_eq!(
        described,
        [
            ("front".into(), 320.into(), 240.into()),
            ("arm".into(), 160.into(), 120.into())
        ]
    );
    assert_eq!(
        (cameras[0]["fps"].as_u64(), cameras[0]["encoder"].as_str()),
        (Some(15), Some("openh264"))
    );
    assert_eq!(
        status["video"]["width"], 320,
        "`video` stays the first camera"
    );
}

#[test]
fn one_video_m_line_gets_the_first_camera_and_the_second_idles() {
    let server = Server::start(&["--config", TWO_CAMERAS]);
    let mut peer = Peer::connect(&server);
    assert!(
        peer.run_until(Duration::from_secs(20), |p| p.frames_decoded >= 10),
        "decoded {} frames",
        peer.frames_decoded
    );
    assert_eq!(peer.last_size, Some((320, 240)));
    let before = server.status();
    peer.run_for(Duration::from_secs(1));
    let after = server.status();
    assert!(
        frames_encoded(&after, 0) > frames_encoded(&before, 0),
        "the watched camera encodes"
    );
    assert_eq!(
        frames_encoded(&after, 1),
        frames_encoded(&before, 1),
        "nobody receives the second camera: its encoder idles"
    );
}
