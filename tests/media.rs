//! End to end for the media paths: H.264 passthrough from a pipe source
//! (ffmpeg standing in for rpicam-vid), its restart, and snapshots.

mod common;

use std::time::Duration;

use common::{request, Peer, Server};

fn pipe_children(server: &Server) -> Vec<i32> {
    let out = std::process::Command::new("pgrep")
        .args(["-P", &server.pid().to_string(), "ffmpeg"])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn pipe_source_is_passed_through_and_survives_its_process_dying() {
    let server = Server::start(&["--config", "tests/fixtures/pipe-ffmpeg.toml"]);
    let status = server.status();
    assert_eq!(status["video"]["encoder"], "passthrough", "{status}");
    assert_eq!(status["video"]["source"], "pipe");
    let mut peer = Peer::connect(&server);
    assert!(
        peer.run_until(Duration::from_secs(15), |p| p.frames_decoded >= 30),
        "{} frames",
        peer.frames_decoded
    );
    assert_eq!(
        peer.last_size,
        Some((320, 240)),
        "decoded at the source's own size"
    );

    let children = pipe_children(&server);
    assert_eq!(children.len(), 1, "one ffmpeg: {children:?}");
    // SAFETY: kill(2) on a process we just looked up.
    unsafe { libc::kill(children[0], libc::SIGKILL) };
    let before = peer.frames_decoded;
    assert!(
        peer.run_until(Duration::from_secs(15), |p| p.frames_decoded >= before + 30),
        "stream did not resume after the pipe process died"
    );
    let restarted = pipe_children(&server);
    assert!(
        restarted.len() == 1 && restarted[0] != children[0],
        "{restarted:?}"
    );
}

#[test]
fn snapshot_is_a_jpeg_of_the_stream_and_refused_before_there_is_a_frame() {
    let server = Server::start(&[]);
    let (code, reason) = request(server.http, "GET", "/api/snapshot.jpg", &[], b"").unwrap();
    assert_eq!(code, 503, "{reason}");
    let mut peer = Peer::connect(&server);
    assert!(peer.run_until(Duration::from_secs(10), |p| p.frames_decoded >= 5));
    let jpeg = common::request_bytes(server.http, "GET", "/api/snapshot.jpg").unwrap();
    assert_eq!(jpeg.0, 200);
    let image = telepi::media::convert::jpeg_to_i420(&jpeg.1).expect("a decodable JPEG");
    assert_eq!((image.width, image.height), (640, 480));
}
