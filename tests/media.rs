//! End to end for the media paths: H.264 passthrough from a pipe source
//! (ffmpeg standing in for rpicam-vid), its restart, and snapshots (of raw
//! and of passthrough sources).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{header, request_bytes_full, Peer, Server};

const PIPE_CONFIG: &str = "tests/fixtures/pipe-ffmpeg.toml";

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
    let server = Server::start(&["--config", PIPE_CONFIG]);
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

/// Issue 19: once everyone had left, the snapshot was the last picture,
/// byte-identical seconds later. A camera nobody watches is woken for a
/// fresh one (the pattern moves, so two snapshots a second apart differ),
/// and sleeps again after.
#[test]
fn snapshot_is_a_fresh_jpeg_whether_or_not_anyone_watches() {
    // The test client vanishes without a goodbye: reap it in 3 s, not the
    // 20 s a blip is held for.
    let server = Server::start(&["--config", "tests/fixtures/fast-reap.toml"]);
    let snapshot = || {
        let (code, _, jpeg) = request_bytes_full(server.http, "GET", "/api/snapshot.jpg").unwrap();
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&jpeg));
        let image = telepi::media::convert::jpeg_to_i420(&jpeg).expect("a decodable JPEG");
        assert_eq!((image.width, image.height), (640, 480));
        jpeg
    };
    let before_anyone = snapshot();
    let mut peer = Peer::connect(&server);
    assert!(peer.run_until(Duration::from_secs(10), |p| p.frames_decoded >= 5));
    let watched = snapshot();
    drop(peer);
    assert!(server.wait_for(Duration::from_secs(10), |s| s["peers"]
        .as_array()
        .is_some_and(|p| p.is_empty())));
    let left = snapshot();
    std::thread::sleep(Duration::from_millis(1000));
    let later = snapshot();
    assert!(
        before_anyone != watched && watched != left && left != later,
        "stale snapshots"
    );
    let wakes = server.status()["video"]["snapshot_wakes"].as_u64().unwrap();
    assert!(wakes >= 3, "{wakes} wakes");
    let captured = || {
        server.status()["video"]["frames_captured"]
            .as_u64()
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(300));
    let parked = captured();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        captured(),
        parked,
        "the camera sleeps again after a snapshot"
    );
}

/// ffprobe's codec and size of an image given as bytes.
fn ffprobe_image(bytes: &[u8]) -> (String, u64, u64) {
    let mut child = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
        ])
        .args(["-of", "json", "-i", "pipe:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffprobe runs (apt-get install ffmpeg)");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "ffprobe failed on the snapshot");
    let probe: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stream = &probe["streams"][0];
    (
        stream["codec_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        stream["width"].as_u64().unwrap_or_default(),
        stream["height"].as_u64().unwrap_or_default(),
    )
}

/// The pipe fixture in High profile (CABAC, 8x8 transforms), as rpicam-vid
/// and UVC cameras send it.
fn high_profile_pipe_config() -> std::path::PathBuf {
    let baseline = std::fs::read_to_string(PIPE_CONFIG).unwrap();
    let text = baseline.replace("-profile:v baseline", "-profile:v high");
    assert_ne!(text, baseline);
    let path = std::env::temp_dir().join(format!("telepi-media-{}-high.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_passthrough_snapshot_is_the_next_keyframe_decoded_shared_by_concurrent_requests() {
    let config = high_profile_pipe_config();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    // Nobody watches: the camera is woken until its next keyframe.
    let (code, _, jpeg) = request_bytes_full(server.http, "GET", "/api/snapshot.jpg").unwrap();
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&jpeg));
    assert_eq!(ffprobe_image(&jpeg), ("mjpeg".into(), 320, 240));

    let mut peer = Peer::connect(&server);
    assert!(peer.run_until(Duration::from_secs(15), |p| p.frames_decoded >= 5));
    // Three at once, while the peer keeps watching.
    let http = server.http;
    let requests: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || request_bytes_full(http, "GET", "/api/snapshot.jpg")))
        .collect();
    assert!(peer.run_until(Duration::from_secs(10), |_| requests
        .iter()
        .all(|r| r.is_finished())));
    for response in requests {
        let (code, headers, jpeg) = response.join().unwrap().expect("an HTTP answer");
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&jpeg));
        assert_eq!(header(&headers, "content-type"), Some("image/jpeg"));
        assert_eq!(ffprobe_image(&jpeg), ("mjpeg".into(), 320, 240));
    }
    let status = server.status();
    assert!(
        status["video"]["keyframe_requests"]["snapshot"].as_u64() >= Some(1),
        "{status}"
    );
    let _ = std::fs::remove_file(config);
}
