//! The operator's camera end to end: str0m peers stand in for pages. The
//! operator sends H.264 on its operator-camera m-line; a viewer receives it
//! unchanged and decodes it; a viewer's own video is refused; when the role
//! moves, the new operator's camera is the one forwarded.

mod common;

use std::time::Duration;

use common::camera::Camera;
use common::{Peer, Server};

fn claim(peer: &mut Peer) {
    peer.send(r#"{"type":"claim"}"#);
    assert!(peer.run_until(Duration::from_secs(5), |p| p
        .last_message("role")
        .is_some_and(|m| m["role"] == "operator")));
}

#[test]
fn the_operators_camera_reaches_the_viewers_and_only_the_operators() {
    let server = Server::start_logged(&[]);
    let mut operator = Peer::connect_operator_camera(&server);
    claim(&mut operator);
    let mut viewer = Peer::connect_operator_camera(&server);
    // One-m-line pages see nothing of it.
    let mut plain = Peer::connect(&server);

    let mut camera = Camera::new(320, 240);
    camera.stream(&mut operator, &mut [&mut viewer, &mut plain], 60);
    assert!(
        viewer.run_until(Duration::from_secs(5), |p| p
            .operator_track()
            .frames_decoded
            >= 30),
        "the viewer decoded {} of the operator's frames",
        viewer.operator_track().frames_decoded
    );
    assert_eq!(viewer.operator_track().last_size, Some((320, 240)));
    assert_eq!(
        operator.operator_track().frames_decoded,
        0,
        "not echoed back"
    );
    assert!(plain.frames_decoded > 0, "the robot's camera still plays");

    let status = server.status();
    let opcam = &status["operator_camera"];
    assert_eq!(opcam["peer"], status["operator"], "{opcam}");
    assert_eq!(opcam["receiving"], true, "{opcam}");
    assert_eq!(
        (&opcam["width"], &opcam["height"]),
        (&320.into(), &240.into())
    );
    assert!(opcam["frames"].as_u64().unwrap() >= 50, "{opcam}");
    assert!(opcam["keyframes"].as_u64().unwrap() >= 1, "{opcam}");
    assert!(opcam["frames_forwarded"].as_u64().unwrap() >= 30, "{opcam}");

    // The viewer's camera is refused: counted, logged once, forwarded to nobody.
    let forwarded_to_operator = operator.operator_track().frames_decoded;
    let mut viewer_camera = Camera::new(160, 120);
    viewer_camera.stream(&mut viewer, &mut [&mut operator], 20);
    let refused = server.status()["operator_camera"]["refused_frames"]
        .as_u64()
        .unwrap();
    assert!(refused >= 15, "{refused}");
    let log = server.log.text();
    let lines = log
        .matches("video from a peer that is not the operator")
        .count();
    assert_eq!(lines, 1, "logged once:\n{log}");
    assert_eq!(
        operator.operator_track().frames_decoded,
        forwarded_to_operator
    );
}

#[test]
fn when_the_role_moves_the_new_operators_camera_is_used() {
    let server = Server::start(&[]);
    let mut first = Peer::connect_operator_camera(&server);
    claim(&mut first);
    let mut second = Peer::connect_operator_camera(&server);
    let mut first_camera = Camera::new(320, 240);
    first_camera.stream(&mut first, &mut [&mut second], 30);
    assert!(second.operator_track().frames_decoded >= 10);
    assert_eq!(second.operator_track().last_size, Some((320, 240)));

    first.send(r#"{"type":"release"}"#);
    first.run_for(Duration::from_millis(200));
    claim(&mut second);
    // The old operator keeps sending: no longer used, and nothing reaches it.
    first_camera.stream(&mut first, &mut [&mut second], 10);
    assert_eq!(first.operator_track().frames_decoded, 0);
    let mut second_camera = Camera::new(160, 120);
    second_camera.stream(&mut second, &mut [&mut first], 40);
    assert!(
        first.run_until(Duration::from_secs(5), |p| p
            .operator_track()
            .frames_decoded
            >= 20),
        "the old operator decoded {} of the new one's frames",
        first.operator_track().frames_decoded
    );
    assert_eq!(first.operator_track().last_size, Some((160, 120)));
    let status = server.status();
    assert_eq!(status["operator_camera"]["peer"], status["operator"]);
    assert_eq!(status["operator_camera"]["width"], 160);
}
