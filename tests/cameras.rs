//! Several cameras end to end: each video m-line of an offer gets the next
//! camera, a camera nobody receives (or everybody turned off) idles its
//! encoder, snapshots come from the camera asked for, and a local screen
//! ([display]) watches the camera it shows.

mod common;

use std::time::Duration;

use common::{refused, request, request_bytes, Peer, Server};

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

#[test]
fn a_peer_turns_the_second_camera_off_and_its_encoder_idles_until_turned_on() {
    let server = Server::start(&["--config", TWO_CAMERAS]);
    let mut peer = Peer::connect_videos(&server, 2);
    assert!(
        peer.run_until(Duration::from_secs(20), |p| {
            p.frames_decoded >= 10 && p.more_tracks[0].frames_decoded >= 10
        }),
        "both cameras decode"
    );
    let cameras = peer
        .last_message("cameras")
        .expect("a `cameras` message on joining");
    assert_eq!(cameras["names"], serde_json::json!(["front", "arm"]));

    peer.send(r#"{"type":"camera","name":"arm","on":false}"#);
    assert!(
        peer.ping(1.0),
        "the channel is ordered: the switch came first"
    );
    let receiving = |server: &Server| server.status()["peers"][0]["receiving"].clone();
    assert_eq!(receiving(&server), serde_json::json!([true, false]));
    // Frames already encoded or on the way still arrive; then nothing does.
    peer.run_for(Duration::from_secs(1));
    let (before, decoded_before) = (server.status(), peer.more_tracks[0].frames_decoded);
    peer.run_for(Duration::from_secs(1));
    let after = server.status();
    assert_eq!(
        frames_encoded(&after, 1),
        frames_encoded(&before, 1),
        "nobody watches the arm: its encoder idles"
    );
    assert!(frames_encoded(&after, 0) > frames_encoded(&before, 0));
    assert_eq!(peer.more_tracks[0].frames_decoded, decoded_before);

    peer.send(r#"{"type":"camera","name":"tail","on":false}"#);
    assert!(peer.ping(2.0));
    let error = peer
        .last_message("error")
        .expect("an unknown camera is an error");
    assert!(
        error["reason"]
            .as_str()
            .unwrap()
            .contains("no camera \"tail\""),
        "{error}"
    );

    peer.send(r#"{"type":"camera","name":"arm","on":true}"#);
    assert!(
        peer.run_until(Duration::from_secs(20), |p| {
            p.more_tracks[0].frames_decoded >= decoded_before + 10
        }),
        "the arm comes back: decoded {} after {decoded_before}",
        peer.more_tracks[0].frames_decoded
    );
    assert!(frames_encoded(&server.status(), 1) > frames_encoded(&after, 1));
    assert_eq!(receiving(&server), serde_json::json!([true, true]));
}

/// Issue 19: a third m-line with no camera behind it said `true`.
#[test]
fn an_m_line_past_the_last_camera_is_not_receiving() {
    let server = Server::start(&["--config", TWO_CAMERAS]);
    let mut peer = Peer::connect_videos(&server, 3);
    assert!(
        peer.run_until(Duration::from_secs(20), |p| {
            p.frames_decoded >= 5 && p.more_tracks[0].frames_decoded >= 5
        }),
        "both cameras decode"
    );
    let status = server.status();
    assert_eq!(
        status["peers"][0]["receiving"],
        serde_json::json!([true, true, false])
    );
}

#[test]
fn snapshots_come_from_the_camera_asked_for_and_the_first_by_default() {
    let server = Server::start(&["--config", TWO_CAMERAS]);
    let mut peer = Peer::connect_videos(&server, 2);
    assert!(peer.run_until(Duration::from_secs(20), |p| {
        p.frames_decoded >= 5 && p.more_tracks[0].frames_decoded >= 5
    }));
    let size = |query: &str| {
        let path = format!("/api/snapshot.jpg{query}");
        let (code, jpeg) = request_bytes(server.http, "GET", &path).unwrap();
        assert_eq!(code, 200, "{path}");
        let image = telepi::media::convert::jpeg_to_i420(&jpeg).expect("a decodable JPEG");
        (image.width, image.height)
    };
    assert_eq!(size(""), (320, 240));
    assert_eq!(size("?camera=front"), (320, 240));
    assert_eq!(size("?camera=arm"), (160, 120));
    let path = "/api/snapshot.jpg?camera=tail";
    let (code, reason) = request(server.http, "GET", path, &[], b"").unwrap();
    assert_eq!(code, 404, "{reason}");
    let reason: serde_json::Value = serde_json::from_str(&reason).unwrap();
    assert_eq!(
        reason["error"],
        "no camera \"tail\" (this robot has: front, arm)"
    );
}

#[test]
fn a_screen_watches_the_camera_it_shows_and_nobody_else_needs_to() {
    let server = Server::start(&["--config", "tests/fixtures/two-cameras-screen.toml"]);
    let shown = |s: &serde_json::Value| s["display"]["frames_shown"].as_u64().unwrap_or(0);
    assert!(
        server.wait_for(Duration::from_secs(20), |s| shown(s) >= 5),
        "{}",
        server.status()
    );
    let status = server.status();
    let display = &status["display"];
    assert_eq!(
        (&display["device"], &display["show"], &display["width"]),
        (&"memory".into(), &"arm".into(), &320.into())
    );
    assert_eq!(display["decode_errors"], 0, "{display}");
    assert!(frames_encoded(&status, 1) >= 5, "the shown camera runs");
    assert_eq!(frames_encoded(&status, 0), 0, "nobody watches the other");
}

#[test]
fn a_screen_that_cannot_show_stops_the_start_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("display-refusals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let refusal = |display: &str| {
        let path = dir.join("t.toml");
        std::fs::write(
            &path,
            format!("[video]\nsource = \"pattern\"\n[display]\n{display}\n"),
        )
        .unwrap();
        refused(&path)
    };
    let no_camera = refusal("device = \"memory\"\nshow = \"rear\"");
    assert!(
        no_camera.contains("show = \"rear\": no camera by that name (cameras: main)"),
        "{no_camera}"
    );
    let no_show = refusal("device = \"memory\"");
    assert!(no_show.contains("[display] needs show"), "{no_show}");
    let no_device = refusal("device = \"/nonexistent/fb0\"\nshow = \"main\"");
    assert!(
        no_device.contains("display /nonexistent/fb0: no such device"),
        "{no_device}"
    );
    let not_a_screen = refusal("device = \"/dev/null\"\nshow = \"main\"");
    assert!(
        not_a_screen.contains("display /dev/null: not a framebuffer"),
        "{not_a_screen}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
