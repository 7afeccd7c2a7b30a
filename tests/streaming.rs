//! End to end: the real binary, real WebRTC clients over loopback UDP.

mod common;

use std::time::{Duration, Instant};

use common::{header, request, request_full, Peer, Server};

#[test]
fn a_client_decodes_sixty_frames_of_the_right_size_and_pings() {
    let server = Server::start(&[]);
    let mut peer = Peer::connect(&server);
    assert!(
        peer.run_until(Duration::from_secs(15), |p| p.frames_decoded >= 60),
        "only {} frames",
        peer.frames_decoded
    );
    assert_eq!(peer.last_size, Some((640, 480)));
    assert!(peer.ping(12345.5), "no pong");
    let status = server.status();
    assert_eq!(status["peers"][0]["state"], "connected");
    assert!(status["video"]["frames_encoded"].as_u64().unwrap() >= 60);
    assert_eq!(status["video"]["encoder"], "openh264");
}

#[test]
fn two_clients_share_the_stream_and_the_count_returns_to_zero_when_they_vanish() {
    let server = Server::start(&["--config", "tests/fixtures/fast-reap.toml"]);
    let mut a = Peer::connect(&server);
    let mut b = Peer::connect(&server);
    for _ in 0..200 {
        a.run_for(Duration::from_millis(25));
        b.run_for(Duration::from_millis(25));
        if a.frames_decoded >= 30 && b.frames_decoded >= 30 {
            break;
        }
    }
    assert!(
        a.frames_decoded >= 30 && b.frames_decoded >= 30,
        "{} / {}",
        a.frames_decoded,
        b.frames_decoded
    );
    assert_eq!(server.peer_count(), 2);
    // Both vanish without a goodbye (a crashed tab, a dropped link).
    drop(a);
    drop(b);
    assert!(
        server.wait_for(Duration::from_secs(15), |s| s["peers"]
            .as_array()
            .unwrap()
            .is_empty()),
        "peers not reaped"
    );
}

/// Bandwidth estimation (and so pacing) is on unless `[rtc]
/// congestion_control = false`: then a watching peer never gets an estimate.
#[test]
fn congestion_control_gives_each_peer_an_estimate_unless_switched_off() {
    for (args, estimated) in [
        (&[][..], true),
        (
            &["--config", "tests/fixtures/no-congestion-control.toml"][..],
            false,
        ),
    ] {
        let server = Server::start(args);
        let mut peer = Peer::connect(&server);
        let has_estimate = |s: &serde_json::Value| !s["peers"][0]["bitrate_estimate"].is_null();
        // A second of pictures, then up to 5 s for an estimate.
        let deadline = Instant::now() + Duration::from_secs(5);
        while (peer.frames_decoded < 30 || !has_estimate(&server.status()))
            && Instant::now() < deadline
        {
            peer.run_for(Duration::from_millis(100));
        }
        assert!(peer.frames_decoded >= 30, "{args:?}: no pictures");
        assert_eq!(has_estimate(&server.status()), estimated, "{args:?}");
    }
}

#[test]
fn a_dropped_client_reconnects_and_streams_again() {
    let server = Server::start(&[]);
    let mut first = Peer::connect(&server);
    assert!(first.run_until(Duration::from_secs(10), |p| p.frames_decoded >= 10));
    drop(first);
    let mut second = Peer::connect(&server);
    // While the first is not yet reaped the second joins beside it: it
    // starts on the low layer and moves up to main once its link shows fast.
    let full_size = |p: &Peer| p.frames_decoded >= 10 && p.last_size == Some((640, 480));
    assert!(
        second.run_until(Duration::from_secs(10), full_size),
        "no full-size video after reconnect: {} frames, last {:?}",
        second.frames_decoded,
        second.last_size
    );
}

#[test]
fn bad_data_channel_messages_get_errors_and_the_peer_stays() {
    let server = Server::start(&[]);
    let mut peer = Peer::connect(&server);
    for bad in [
        "not json",
        r#"{"type":"warp"}"#,
        r#"{"type":"ping","t":"soon"}"#,
    ] {
        peer.texts.clear();
        peer.send(bad);
        assert!(
            peer.run_until(Duration::from_secs(5), |p| p
                .last_message("error")
                .is_some()),
            "no error for {bad}"
        );
    }
    assert!(peer.ping(1.0), "peer dropped after bad input");
    assert_eq!(server.peer_count(), 1);
}

#[test]
fn whep_creates_and_deletes_a_session() {
    let server = Server::start(&[]);
    let (mut peer, sdp, pending) = Peer::offer(true);
    let (code, headers, answer) = request_full(
        server.http,
        "POST",
        "/whep",
        &[("Content-Type", "application/sdp")],
        sdp.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 201, "{answer}");
    let location = header(&headers, "location").expect("Location").to_string();
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/sdp"));
    peer.accept(pending, &answer);
    assert!(peer.run_until(Duration::from_secs(10), |p| p.frames_decoded >= 10));
    assert_eq!(
        request(server.http, "DELETE", &location, &[], b"")
            .unwrap()
            .0,
        200
    );
    assert_eq!(server.peer_count(), 0);
    assert_eq!(
        request(server.http, "DELETE", &location, &[], b"")
            .unwrap()
            .0,
        404
    );
}

#[test]
fn every_endpoint_refuses_bad_input_with_a_reason_and_keeps_serving() {
    let server = Server::start(&["--config", "tests/fixtures/two-peers.toml"]);
    let json = [("Content-Type", "application/json")];
    let sdp_type = [("Content-Type", "application/sdp")];
    let (_, vp8_sdp, _) = Peer::offer(true);
    let vp8 =
        serde_json::json!({ "type": "offer", "sdp": vp8_sdp.replace("H264/90000", "VP8/90000") })
            .to_string();
    let huge = vec![b' '; 70 * 1024];
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8], u16);
    let cases: Vec<Case> = vec![
        ("POST", "/connect", &json, b"{", 400),
        (
            "POST",
            "/connect",
            &json,
            br#"{"type":"answer","sdp":"v=0"}"#,
            400,
        ),
        (
            "POST",
            "/connect",
            &json,
            br#"{"type":"offer","sdp":"garbage"}"#,
            400,
        ),
        ("POST", "/connect", &json, vp8.as_bytes(), 400),
        (
            "POST",
            "/connect",
            &[("Content-Type", "image/png")],
            b"{}",
            415,
        ),
        ("POST", "/connect", &json, &huge, 413),
        ("GET", "/connect", &[], b"", 405),
        ("POST", "/whep", &json, b"v=0", 415),
        ("POST", "/whep", &sdp_type, b"v=0", 400),
        ("DELETE", "/whep/999", &[], b"", 404),
        ("DELETE", "/whep/abc", &[], b"", 400),
        ("POST", "/api/status", &[], b"", 405),
        ("GET", "/nope", &[], b"", 404),
    ];
    for (method, path, headers, body, want) in cases {
        let (code, reply) = request(server.http, method, path, headers, body).expect("an answer");
        assert_eq!(code, want, "{method} {path}: {reply}");
        let reason: serde_json::Value =
            serde_json::from_str(&reply).unwrap_or_else(|_| panic!("{reply}"));
        let reason = reason["error"].as_str().unwrap();
        assert!(!reason.is_empty() && !reason.contains('\n'), "{reason:?}");
    }
    // A full house is refused too, and the server still serves the ones it has.
    let _a = Peer::connect(&server);
    let _b = Peer::connect(&server);
    let (_, sdp, _) = Peer::offer(true);
    let body = serde_json::json!({ "type": "offer", "sdp": sdp }).to_string();
    let (code, reply) = request(server.http, "POST", "/connect", &json, body.as_bytes()).unwrap();
    assert_eq!(code, 400);
    assert!(reply.contains("too many peers"), "{reply}");
    assert_eq!(request(server.http, "GET", "/", &[], b"").unwrap().0, 200);
}

#[test]
fn sigterm_closes_peers_and_exits_zero() {
    let server = Server::start(&[]);
    let mut peer = Peer::connect(&server);
    assert!(peer.run_until(Duration::from_secs(10), |p| p.frames_decoded >= 5));
    let pid = server.pid();
    let code = std::thread::spawn(move || server.terminate());
    assert!(
        peer.run_until(Duration::from_secs(5), |p| p
            .last_message("bye")
            .is_some_and(|b| b["reconnect"] == true)),
        "browsers are told the robot is going away (pid {pid})"
    );
    assert_eq!(code.join().unwrap(), Some(0));
}

/// A multi-homed host (two addresses besides loopback), telepi bound to
/// 0.0.0.0: the client may only use the non-loopback candidate, so this
/// passes only if IP_PKTINFO hands str0m the real destination address and
/// replies leave from it. Runs itself again inside a private network
/// namespace (`unshare -n`, root only), so no traffic leaves the sandbox.
#[test]
fn wildcard_bind_streams_on_a_multi_homed_host() {
    const INSIDE: &str = "TELEPI_IN_NETNS";
    const NAME: &str = "wildcard_bind_streams_on_a_multi_homed_host";
    if std::env::var_os(INSIDE).is_none() {
        let exe = std::env::current_exe().unwrap();
        let script = "ip link set lo up && ip addr add 10.99.0.1/32 dev lo && ip addr add 10.99.0.2/32 dev lo && exec \"$0\" --exact \"$1\" --nocapture";
        let result = std::process::Command::new("unshare")
            .args(["-n", "sh", "-c", script])
            .arg(&exe)
            .arg(NAME)
            .env(INSIDE, "1")
            .output();
        match result {
            Ok(out) if String::from_utf8_lossy(&out.stderr).contains("unshare failed") => {
                telepi::testing::skipped(&format!(
                    "{NAME}: cannot create a network namespace here (needs root)"
                ));
            }
            Ok(out) => {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(
                    out.status.success() && text.contains("1 passed"),
                    "inner run failed:\n{text}"
                );
            }
            Err(e) => telepi::testing::skipped(&format!("{NAME}: no unshare ({e})")),
        }
        return;
    }
    let server = Server::start_on("0.0.0.0", &[]);
    let (mut peer, sdp, pending) = Peer::offer_from("10.99.0.2", true);
    let body = serde_json::json!({ "type": "offer", "sdp": sdp }).to_string();
    let json = [("Content-Type", "application/json")];
    let (code, answer) = request(server.http, "POST", "/connect", &json, body.as_bytes()).unwrap();
    assert_eq!(code, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let sdp = answer["sdp"].as_str().unwrap();
    assert!(
        sdp.contains("10.99.0.1") && sdp.contains("127.0.0.1"),
        "a candidate per address:\n{sdp}"
    );
    let only_wifi: String = sdp
        .lines()
        .filter(|l| !l.contains("127.0.0.1"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    peer.accept(pending, &only_wifi);
    assert!(
        peer.run_until(Duration::from_secs(10), |p| p.frames_decoded >= 10),
        "no video via 10.99.0.1"
    );
    let status = server.status();
    assert_eq!(
        status["peers"][0]["remote"]
            .as_str()
            .unwrap()
            .split(':')
            .next(),
        Some("10.99.0.2")
    );
}
