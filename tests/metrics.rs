//! `GET /metrics` against the real binary: Prometheus' text format, and
//! figures that move as a WebRTC client (str0m on loopback) watches and
//! drives the sim motors, sends a bad message and goes silent (the deadman).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{drive_until_moving, header, request_full, Peer, Server};

/// Sample (`name{labels}`) → value, after checking the response's type.
fn scrape(server: &Server) -> HashMap<String, f64> {
    let (code, headers, body) =
        request_full(server.http, "GET", "/metrics", &[], b"").expect("/metrics answers");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').expect("sample value");
            let value = value.parse().unwrap_or_else(|_| panic!("{l}"));
            (key.to_string(), value)
        })
        .collect()
}

/// Scrapes until `check` holds, running the peer meanwhile (it must keep
/// answering to stay connected); the last scrape on failure.
fn scrape_until(
    server: &Server,
    peer: &mut Peer,
    what: &str,
    check: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let figures = scrape(server);
        if check(&figures) {
            return figures;
        }
        assert!(Instant::now() < deadline, "{what}: {figures:#?}");
        peer.run_for(Duration::from_millis(100));
    }
}

const OPERATOR: &str = r#"telepi_peers{role="operator",state="connected"}"#;

#[test]
fn figures_move_as_a_client_watches_and_drives() {
    let server = Server::start(&[]);
    let idle = scrape(&server);
    assert_eq!(idle[OPERATOR], 0.0);
    assert_eq!(idle["telepi_deadman_trips_total"], 0.0);
    assert_eq!(
        idle[r#"telepi_video_frames_sent_total{camera="main"}"#],
        0.0
    );
    assert!(idle["process_resident_memory_bytes"] > 1e6);
    assert!(idle["process_threads"] >= 2.0);
    assert!(idle["telepi_uptime_seconds"] > 0.0);

    let mut op = Peer::connect(&server);
    assert!(op.run_until(Duration::from_secs(15), |p| p.frames_decoded >= 30));
    drive_until_moving(&server, &mut op);
    op.send("{nope");
    let driving = scrape(&server);
    assert_eq!(driving[OPERATOR], 1.0);
    assert_eq!(driving["telepi_operator_connected"], 1.0);
    assert!(driving[r#"telepi_motor_output{motor="left"}"#] > 0.5);
    assert!(driving[r#"telepi_video_frames_encoded_total{camera="main"}"#] >= 30.0);
    assert!(
        driving[r#"telepi_video_frames_captured_total{camera="main"}"#]
            >= driving[r#"telepi_video_frames_encoded_total{camera="main"}"#]
    );
    assert!(driving[r#"telepi_video_frames_sent_total{camera="main"}"#] >= 30.0);
    assert!(driving[r#"telepi_video_keyframes_encoded_total{camera="main"}"#] >= 1.0);
    assert!(
        driving[r#"telepi_video_keyframe_requests_total{camera="main",reason="new_peer"}"#] >= 1.0
    );
    assert!(driving[r#"telepi_peer_video_frames_sent_total{peer="1",role="operator"}"#] >= 30.0);
    assert!(driving["telepi_datachannel_messages_accepted_total"] >= 1.0);
    assert!(driving[r#"telepi_video_target_bitrate_bits_per_second{camera="main"}"#] > 0.0);

    // The operator goes silent: the deadman trips, once; the bad message was counted.
    let after = scrape_until(&server, &mut op, "a deadman trip", |f| {
        f["telepi_deadman_trips_total"] == 1.0
    });
    assert_eq!(after[r#"telepi_motor_output{motor="left"}"#], 0.0);
    assert_eq!(
        after[r#"telepi_datachannel_messages_rejected_total{reason="malformed"}"#],
        1.0
    );
    assert!(after[r#"telepi_http_responses_total{code="200"}"#] >= 3.0);
    assert!(after["process_cpu_seconds_total"] > 0.0);
    // str0m's stats come once a second: the peer's round trip shows up.
    let rtt = scrape_until(&server, &mut op, "the peer's RTT", |f| {
        f.contains_key(r#"telepi_peer_rtt_seconds{peer="1",role="operator"}"#)
    });
    let rtt = rtt[r#"telepi_peer_rtt_seconds{peer="1",role="operator"}"#];
    assert!((0.0..1.0).contains(&rtt), "loopback RTT {rtt} s");
}

#[test]
fn each_camera_has_its_own_video_figures() {
    let server = Server::start(&["--config", "tests/fixtures/two-cameras.toml"]);
    let mut peer = Peer::connect_videos(&server, 2);
    assert!(peer.run_until(Duration::from_secs(20), |p| {
        p.frames_decoded >= 10 && p.more_tracks[0].frames_decoded >= 10
    }));
    let figures = scrape(&server);
    let info = |name, width, height| {
        format!(
            r#"telepi_video_info{{camera="{name}",source="pattern",encoder="openh264",width="{width}",height="{height}",fps="15"}}"#
        )
    };
    assert_eq!(figures[&info("front", 320, 240)], 1.0);
    assert_eq!(figures[&info("arm", 160, 120)], 1.0);
    for camera in ["front", "arm"] {
        let sent = format!(r#"telepi_video_frames_sent_total{{camera="{camera}"}}"#);
        assert!(figures[&sent] >= 10.0, "{sent}: {figures:#?}");
        let bitrate =
            format!(r#"telepi_video_target_bitrate_bits_per_second{{camera="{camera}"}}"#);
        assert!(figures[&bitrate] > 0.0, "{bitrate}");
    }

    // The peer turns the arm off: only the front's frames still go out.
    peer.send(r#"{"type":"camera","name":"arm","on":false}"#);
    assert!(peer.ping(1.0));
    peer.run_for(Duration::from_secs(1));
    let before = scrape(&server);
    peer.run_for(Duration::from_secs(1));
    let after = scrape(&server);
    let moved = |camera: &str| {
        let key = format!(r#"telepi_video_frames_sent_total{{camera="{camera}"}}"#);
        after[&key] - before[&key]
    };
    assert!(moved("front") > 0.0);
    assert_eq!(moved("arm"), 0.0);
}
