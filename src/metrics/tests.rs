use super::*;
use crate::media::pipeline::{KeyframeRequests, PipelineCounters};
use crate::peer::{PeerId, Role};

#[allow(clippy::too_many_arguments)]
fn camera(
    name: &str,
    source: &str,
    (width, height, fps): (u32, u32, u32),
    bitrate: u32,
    (captured, encoded, keyframes): (u64, u64, u64),
    (dropped_by_encoder, dropped_loop_behind): (u64, u64),
    [new_peer, loss, snapshot]: [u64; 3],
    (sent, skipped): (u64, u64),
) -> Camera {
    Camera {
        name: name.into(),
        source: source.into(),
        encoder: "openh264",
        width,
        height,
        fps,
        bitrate: Some(bitrate),
        frames_sent_to_peers: sent,
        frames_skipped_for_peers: skipped,
        counters: PipelineCounters {
            frames_captured: captured,
            frames_encoded: encoded,
            keyframes_encoded: keyframes,
            keyframe_requests: KeyframeRequests {
                new_peer,
                loss,
                snapshot,
            },
            frames_dropped_by_encoder: dropped_by_encoder,
            frames_dropped_loop_behind: dropped_loop_behind,
            snapshot_wakes: 0,
        },
        ..Camera::default()
    }
}

fn status() -> Status {
    let mut viewer = Peer::fixture(1, "connected", Some(Role::Viewer));
    viewer.link.rtt_ms = Some(12.0);
    viewer.link.bitrate_estimate = Some(800_000);
    (viewer.link.frames_sent, viewer.link.frames_skipped) = (300, 2);
    let mut operator = Peer::fixture(2, "connected", Some(Role::Operator));
    operator.link.frames_sent = 100;
    let rejections = [
        ("malformed", 1),
        ("not_joined", 0),
        ("not_operator", 2),
        ("view_only", 0),
        ("wrong_secret", 0),
        ("invalid", 0),
    ];
    Status {
        robot: LoopStatus {
            uptime_s: 12.5,
            operator: Some(PeerId(2)),
            motors: crate::drive::Motors {
                left: 0.5,
                right: -0.25,
            },
            // Servo positions are f32: a value f32 holds exactly prints as written.
            servos: [("pan".to_string(), 0.25)].into(),
            messages_received: 40,
            rejected_messages: 3,
            rejections: rejections.map(|(r, n)| (r.to_string(), n)).into(),
            deadman_trips: 4,
            peers: vec![viewer, operator, Peer::fixture(3, "connecting", None)],
            cameras: vec![
                camera(
                    "front",
                    "pattern \"a\"",
                    (640, 480, 30),
                    1_500_000,
                    (410, 400, 5),
                    (10, 0),
                    [3, 1, 2],
                    (700, 6),
                ),
                camera(
                    "arm",
                    "pattern",
                    (160, 120, 15),
                    300_000,
                    (90, 88, 2),
                    (2, 1),
                    [1, 0, 0],
                    (88, 0),
                ),
            ],
            audio: AudioStatus {
                packets_sent: 600,
                ..AudioStatus::default()
            },
            recording: RecordingStatus {
                on: true,
                file: Some("telepi-20261202-054327.mp4".into()),
                files: 2,
                bytes: 3_000_000,
                dropped: 1,
                ..RecordingStatus::default()
            },
            ..LoopStatus::default()
        },
        ..Status::default()
    }
}

fn render_default() -> String {
    let http = HttpCounts::default();
    http.count(200);
    http.count(200);
    http.count(401);
    render(&status(), &http, &system::Snapshot::default())
}

#[test]
fn figures_from_the_status_document() {
    let text = render_default();
    let has = |line: &str| text.lines().any(|l| l == line);
    for line in [
        "telepi_uptime_seconds 12.5",
        r#"telepi_peers{role="operator",state="connected"} 1"#,
        r#"telepi_peers{role="viewer",state="connected"} 1"#,
        r#"telepi_peers{role="none",state="connecting"} 1"#,
        r#"telepi_peers{role="viewer",state="connecting"} 0"#,
        r#"telepi_peer_rtt_seconds{peer="1",role="viewer"} 0.012"#,
        r#"telepi_peer_bitrate_estimate_bits_per_second{peer="1",role="viewer"} 800000"#,
        r#"telepi_peer_video_frames_sent_total{peer="2",role="operator"} 100"#,
        r#"telepi_video_info{camera="front",source="pattern \"a\"",encoder="openh264",width="640",height="480",fps="30"} 1"#,
        r#"telepi_video_info{camera="arm",source="pattern",encoder="openh264",width="160",height="120",fps="15"} 1"#,
        r#"telepi_video_frames_captured_total{camera="front"} 410"#,
        r#"telepi_video_frames_captured_total{camera="arm"} 90"#,
        r#"telepi_video_frames_encoded_total{camera="front"} 400"#,
        r#"telepi_video_frames_encoded_total{camera="arm"} 88"#,
        r#"telepi_video_keyframes_encoded_total{camera="front"} 5"#,
        r#"telepi_video_frames_sent_total{camera="front"} 700"#,
        r#"telepi_video_frames_sent_total{camera="arm"} 88"#,
        r#"telepi_video_frames_dropped_total{camera="front",stage="encoder"} 10"#,
        r#"telepi_video_frames_dropped_total{camera="arm",stage="loop_behind"} 1"#,
        r#"telepi_video_keyframe_requests_total{camera="front",reason="new_peer"} 3"#,
        r#"telepi_video_keyframe_requests_total{camera="front",reason="snapshot"} 2"#,
        r#"telepi_video_keyframe_requests_total{camera="arm",reason="new_peer"} 1"#,
        r#"telepi_video_target_bitrate_bits_per_second{camera="front"} 1500000"#,
        r#"telepi_video_target_bitrate_bits_per_second{camera="arm"} 300000"#,
        "telepi_datachannel_messages_accepted_total 37",
        r#"telepi_datachannel_messages_rejected_total{reason="not_operator"} 2"#,
        "telepi_deadman_trips_total 4",
        "telepi_operator_connected 1",
        r#"telepi_motor_output{motor="right"} -0.25"#,
        r#"telepi_servo_position{servo="pan"} 0.25"#,
        "telepi_audio_packets_sent_total 600",
        "telepi_recording 1",
        "telepi_recording_files 2",
        "telepi_recording_bytes 3000000",
        "telepi_recording_dropped_total 1",
        r#"telepi_http_responses_total{code="200"} 2"#,
        r#"telepi_http_responses_total{code="401"} 1"#,
    ] {
        assert!(has(line), "missing {line:?} in\n{text}");
    }
    // Peers without an RTT or estimate yet have no sample, not a fake 0.
    assert!(!text.contains(r#"telepi_peer_rtt_seconds{peer="2""#));
    // No broker configured: no broker figures.
    assert!(!text.contains("telepi_broker_"));
    // No /proc figures given: none invented.
    assert!(!text.contains("process_"));
}

/// Every sample belongs to a family announced just before with HELP and a
/// TYPE Prometheus knows, counters end in `_total`, and each family appears once.
#[test]
fn the_exposition_is_well_formed() {
    let text = render_default();
    let mut current: Option<(String, String)> = None;
    let mut seen = std::collections::HashSet::new();
    let mut pending_help: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(seen.insert(name.clone()), "{name} twice");
            pending_help = Some(name);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(
                pending_help.take().as_deref(),
                Some(name),
                "TYPE without HELP"
            );
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
            current = Some((name.into(), kind.into()));
        } else {
            let (name, _) = current.as_ref().expect("a sample before any TYPE");
            let sample_name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(sample_name, name, "{line}");
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            let ok_name = |n: &str| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            assert!(ok_name(sample_name), "{line}");
        }
    }
    assert!(text.ends_with('\n'));
}

#[test]
fn label_values_are_escaped_and_odd_numbers_spelled_out() {
    assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    assert_eq!(format_value(f64::NAN), "NaN");
    assert_eq!(format_value(f64::INFINITY), "+Inf");
    assert_eq!(format_value(3.0), "3");
}

#[test]
fn a_broker_shows_its_link() {
    let mut status = status();
    status.broker = Some(BrokerStatus {
        connected: true,
        offers_answered: 2,
        requests_rejected: 1,
        reconnects: 0,
    });
    let text = render(
        &status,
        &HttpCounts::default(),
        &system::Snapshot::default(),
    );
    assert!(text.lines().any(|l| l == "telepi_broker_connected 1"));
    assert!(text
        .lines()
        .any(|l| l == "telepi_broker_offers_answered_total 2"));
}

#[test]
fn whip_destinations_show_state_bitrate_and_last_error() {
    let mut status = status();
    let destination = |n, server: &str, state, last_error: Option<&str>| PublishStatus {
        destination: n,
        server: server.into(),
        camera: 0,
        audio: false,
        state,
        last_error: last_error.map(Into::into),
        publishes: 0,
        bytes_sent: 0,
        frames_sent: 0,
        bitrate_bps: 0,
    };
    let publishing = PublishStatus {
        publishes: 2,
        bytes_sent: 5000,
        bitrate_bps: 320_000,
        ..destination(0, "http://10.0.0.2:7080", State::Publishing, None)
    };
    let refused = Some("the WHIP endpoint refused the token (HTTP 401)");
    status.robot.publish = vec![
        publishing,
        destination(1, "https://sfu.example.org", State::Waiting, refused),
    ];
    let text = render(
        &status,
        &HttpCounts::default(),
        &system::Snapshot::default(),
    );
    let has = |line: &str| text.lines().any(|l| l == line);
    for line in [
        r#"telepi_publish_info{destination="0",server="http://10.0.0.2:7080",state="publishing",last_error=""} 1"#,
        r#"telepi_publish_info{destination="1",server="https://sfu.example.org",state="waiting",last_error="the WHIP endpoint refused the token (HTTP 401)"} 1"#,
        r#"telepi_publish_up{destination="0",server="http://10.0.0.2:7080"} 1"#,
        r#"telepi_publish_up{destination="1",server="https://sfu.example.org"} 0"#,
        r#"telepi_publish_bitrate_bits_per_second{destination="0",server="http://10.0.0.2:7080"} 320000"#,
        r#"telepi_publish_sent_bytes_total{destination="0",server="http://10.0.0.2:7080"} 5000"#,
        r#"telepi_publish_sessions_total{destination="0",server="http://10.0.0.2:7080"} 2"#,
    ] {
        assert!(has(line), "missing {line}\n{text}");
    }
    assert!(
        !render_default().contains("telepi_publish"),
        "nothing without [[publish]]"
    );
}
