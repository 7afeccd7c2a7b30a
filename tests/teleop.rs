//! End to end teleop: roles, driving, the deadman, eject, bad input; the real
//! binary (sim motors) and real WebRTC clients on loopback.

mod common;

use std::time::Duration;

use common::{drive, drive_until_moving, motors, request, Peer, Server};
use serde_json::Value;

fn is_stopped(s: &Value) -> bool {
    s["motors"]["left"] == 0.0 && s["motors"]["right"] == 0.0
}

#[test]
fn the_operator_drives_and_silence_stops_the_motors() {
    let server = Server::start(&[]);
    let mut op = Peer::connect(&server);
    drive_until_moving(&server, &mut op);
    assert_eq!(
        server.status()["operator"],
        1,
        "the first to drive operates"
    );
    assert_eq!(op.last_message("role").unwrap()["role"], "operator");
    // The deadman is 300 ms; allow plenty for a loaded CI machine (the real figure is benchmarked).
    assert!(
        server.wait_for(Duration::from_secs(2), is_stopped),
        "deadman did not stop the motors"
    );
    assert!(op.run_until(Duration::from_secs(2), |p| {
        p.last_message("telemetry")
            .is_some_and(|t| t["motors"]["left"] == 0.0)
    }));
}

#[test]
fn a_viewer_cannot_drive_but_anyone_can_stop() {
    let server = Server::start(&[]);
    let mut op = Peer::connect(&server);
    op.send(r#"{"type":"claim"}"#);
    assert!(op.run_until(Duration::from_secs(5), |p| {
        p.last_message("role")
            .is_some_and(|r| r["role"] == "operator")
    }));
    let mut viewer = Peer::connect(&server);
    viewer.texts.clear();
    drive(&mut viewer, 1.0, 0.0);
    assert!(viewer.run_until(Duration::from_secs(5), |p| p
        .last_message("error")
        .is_some()));
    assert_eq!(motors(&server), (0.0, 0.0));
    assert!(viewer.run_until(Duration::from_secs(5), |p| {
        p.last_message("presence")
            .is_some_and(|m| m["peers"].as_array().unwrap().len() == 2)
    }));

    drive_until_moving(&server, &mut op);
    viewer.send(r#"{"type":"stop"}"#);
    viewer.run_for(Duration::from_millis(50));
    assert!(
        server.wait_for(Duration::from_millis(250), is_stopped),
        "a viewer's stop is honoured at once"
    );
}

#[test]
fn when_the_operator_vanishes_the_motors_stop_and_the_role_is_free() {
    let server = Server::start(&["--config", "tests/fixtures/fast-reap.toml"]);
    let mut op = Peer::connect(&server);
    drive_until_moving(&server, &mut op);
    drop(op); // no goodbye: a crashed tab or a dropped Wi-Fi link
    assert!(server.wait_for(Duration::from_secs(2), is_stopped));
    assert!(
        server.wait_for(Duration::from_secs(15), |s| s["operator"].is_null()),
        "role not freed"
    );
    let mut next = Peer::connect(&server);
    drive_until_moving(&server, &mut next);
}

#[test]
fn eject_needs_the_secret_and_closes_the_peer() {
    let server = Server::start(&["--config", "tests/fixtures/secret.toml"]);
    let mut op = Peer::connect(&server);
    // Without the secret nobody may operate.
    drive(&mut op, 1.0, 0.0);
    assert!(op.run_until(Duration::from_secs(5), |p| p
        .last_message("error")
        .is_some()));
    assert_eq!(motors(&server), (0.0, 0.0));
    op.send(r#"{"type":"claim","secret":"hunter2"}"#);
    assert!(op.run_until(Duration::from_secs(5), |p| {
        p.last_message("role")
            .is_some_and(|r| r["role"] == "operator")
    }));
    let mut victim = Peer::connect(&server);
    let id = server.status()["peers"][1]["id"].as_u64().unwrap();
    let path = format!("/api/peers/{id}/eject");
    assert_eq!(
        request(server.http, "POST", &path, &[], b"").unwrap().0,
        403
    );
    let bearer = [("Authorization", "Bearer hunter2")];
    assert_eq!(
        request(server.http, "POST", "/api/peers/999/eject", &bearer, b"")
            .unwrap()
            .0,
        404
    );
    assert_eq!(
        request(server.http, "POST", &path, &bearer, b"").unwrap().0,
        200
    );
    assert_eq!(server.peer_count(), 1);
    assert!(
        victim.run_until(Duration::from_secs(5), |p| {
            p.last_message("bye")
                .is_some_and(|b| b["reconnect"] == false)
        }),
        "the ejected page is told not to come back"
    );
    drop(victim);
    assert_eq!(
        server.status()["operator"],
        1,
        "ejecting a viewer leaves the operator"
    );
}

#[test]
fn malformed_commands_never_move_a_motor() {
    let server = Server::start(&[]);
    let mut op = Peer::connect(&server);
    op.send(r#"{"type":"claim"}"#);
    let bad = [
        r#"{"type":"drive","linear":"fast","angular":0}"#,
        r#"{"type":"drive","linear":1}"#,
        r#"{"type":"drive","linear":1e999,"angular":0}"#,
        r#"{"type":"drive","linear":null,"angular":0}"#,
        r#"{"type":"servo","name":"pan"}"#,
        r#"{"type":"teleport"}"#,
        "drive forward",
    ];
    for text in bad {
        op.send(text);
    }
    let huge = format!(
        r#"{{"type":"drive","linear":1,"angular":0,"pad":"{}"}}"#,
        "x".repeat(8000)
    );
    op.send(&huge);
    assert!(op.run_until(Duration::from_secs(5), |p| {
        p.texts
            .iter()
            .filter(|t| t.contains(r#""type":"error""#))
            .count()
            > bad.len()
    }));
    op.run_for(Duration::from_millis(200));
    let status = server.status();
    assert!(is_stopped(&status), "{status}");
    assert!(status["rejected_messages"].as_u64().unwrap() >= bad.len() as u64);
    // Out-of-range numbers are clamped, not refused.
    drive(&mut op, 5.0, 0.0);
    op.run_for(Duration::from_millis(100));
    let (l, r) = motors(&server);
    assert!(l <= 1.0 && r <= 1.0 && l > 0.0, "{l} {r}");
}
