//! Recording against the real binary: the operator starts it over the data
//! channel while three str0m viewers watch, every page is told, the files
//! come back from the API and `ffprobe` reads them; a telepi killed with
//! SIGKILL mid-file (and a file cut mid-fragment, as by a power cut) still
//! plays up to its last fragment; rotation and the quota; refusals.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::camera::Camera;
use common::{request, request_bytes, Peer, Server};
use serde_json::Value;

/// A directory of this test's own, emptied, and a config recording into it.
fn setup(name: &str, record: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("telepi-rec-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rec")).unwrap();
    let config = dir.join("telepi.toml");
    let text = format!(
        "[video]\nsource = \"pattern\"\nencoder = \"openh264\"\n\
         [audio]\nsource = \"tone\"\nsink = \"meter\"\n\
         [record]\ndir = \"{}\"\n{record}",
        dir.join("rec").display()
    );
    std::fs::write(&config, text).unwrap();
    (dir.join("rec"), config)
}

/// `ffprobe`'s view of a file: streams (with packets counted) and format.
fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_packets",
            "-show_streams",
            "-show_format",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stream<'a>(probe: &'a Value, codec: &str) -> &'a Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_name"] == codec)
        .unwrap_or_else(|| panic!("no {codec} stream: {probe:#}"))
}

fn number(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or(v.as_f64())
        .unwrap_or_else(|| panic!("{v}"))
}

/// Every video packet decodes to a frame, without a decoder complaint.
fn assert_every_frame_decodes(path: &Path) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-count_packets",
            "-select_streams",
            "v",
        ])
        .args([
            "-show_entries",
            "stream=nb_read_frames,nb_read_packets",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    let counts = String::from_utf8_lossy(&out.stdout);
    let (frames, packets) = counts.trim().split_once(',').expect("two counts");
    assert!(
        out.status.success() && out.stderr.is_empty() && frames == packets,
        "{}: {frames} frames of {packets} packets: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The recordings in `dir`, by name (oldest first).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    files.sort();
    files
}

/// Runs every peer (each must answer to stay connected) until `done`; false after 10 s.
fn run_all_until(peers: &mut [Peer], done: impl Fn(&[Peer]) -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if done(peers) {
            return true;
        }
        for peer in peers.iter_mut() {
            peer.run_for(Duration::from_millis(20));
        }
    }
    false
}

#[test]
fn ten_seconds_recorded_while_three_viewers_watch() {
    let (dir, config) = setup("three", "");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let mut peers: Vec<Peer> = (0..3).map(|_| Peer::connect(&server)).collect();
    let recording = |s: &Value| !s["recording"]["file"].is_null();
    peers[0].send(r#"{"type":"claim"}"#);
    assert!(run_all_until(&mut peers, |p| {
        p[0].last_message("role")
            .is_some_and(|r| r["role"] == "operator")
    }));
    // A viewer may not switch recording on.
    peers[1].send(r#"{"type":"record","on":true}"#);
    assert!(run_all_until(&mut peers, |p| p[1]
        .last_message("error")
        .is_some()));
    assert_eq!(server.status()["recording"]["on"], false);

    peers[0].send(r#"{"type":"record","on":true}"#);
    assert!(
        run_all_until(&mut peers, |_| recording(&server.status())),
        "{}",
        server.status()
    );
    let started = Instant::now();
    run_all_until(&mut peers, |_| started.elapsed() >= Duration::from_secs(10));
    for (i, peer) in peers.iter().enumerate() {
        let telemetry = peer.last_message("telemetry").unwrap();
        assert_eq!(
            telemetry["recording"], true,
            "peer {i} is told it is recorded"
        );
        assert!(
            peer.frames_decoded >= 200,
            "peer {i} kept watching: {}",
            peer.frames_decoded
        );
    }
    peers[0].send(r#"{"type":"record","on":false}"#);
    assert!(run_all_until(&mut peers, |_| !recording(&server.status())));
    assert_eq!(server.status()["recording"]["on"], false);
    assert!(run_all_until(&mut peers, |p| {
        p[2].last_message("telemetry")
            .is_some_and(|t| t["recording"] == false)
    }));

    let (code, body) = request(server.http, "GET", "/api/recordings", &[], b"").unwrap();
    assert_eq!(code, 200, "{body}");
    let listing: Value = serde_json::from_str(&body).unwrap();
    let listed = listing["files"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listing}");
    let on_disk = files(&dir);
    assert_eq!(on_disk.len(), 1);
    let (code, downloaded) =
        request_bytes(server.http, "GET", listed[0]["url"].as_str().unwrap()).unwrap();
    assert_eq!(code, 200);
    let file = std::fs::read(&on_disk[0]).unwrap();
    assert!(
        downloaded == file,
        "the download ({} bytes) is the file ({} bytes)",
        downloaded.len(),
        file.len()
    );
    assert_eq!(listed[0]["bytes"], downloaded.len());

    let probe = ffprobe(&on_disk[0]);
    let video = stream(&probe, "h264");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(480))
    );
    let duration = number(&probe["format"]["duration"]);
    assert!(
        (9.5..12.0).contains(&duration),
        "duration {duration}: {probe:#}"
    );
    let packets = number(&video["nb_read_packets"]);
    assert!(
        packets >= 25.0 * duration,
        "{packets} frames in {duration} s"
    );
    let audio = stream(&probe, "pcm_mulaw");
    assert_eq!(audio["sample_rate"], "8000");
    let audio_duration = number(&audio["duration"]);
    assert!(
        (duration - audio_duration).abs() < 1.0,
        "audio {audio_duration} s, video {duration} s"
    );
    assert_every_frame_decodes(&on_disk[0]);
}

#[test]
fn the_operators_camera_is_recorded_to_a_file_of_its_own() {
    let (dir, config) = setup("operator", "");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let mut operator = Peer::connect_operator_camera(&server);
    operator.send(r#"{"type":"claim"}"#);
    operator.send(r#"{"type":"record","on":true}"#);
    let wait = Duration::from_secs(10);
    assert!(operator.run_until(wait, |_| !server.status()["recording"]["file"].is_null()));
    Camera::new(320, 240).stream(&mut operator, &mut [], 90);
    let status = server.status();
    let name = status["recording"]["operator_file"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(name.ends_with("-operator.mp4"), "{status}");
    operator.send(r#"{"type":"record","on":false}"#);
    assert!(operator.run_until(wait, |_| server.status()["recording"]["on"] == false));

    let (code, body) = request(server.http, "GET", "/api/recordings", &[], b"").unwrap();
    assert_eq!(code, 200, "{body}");
    let listing: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "the robot's and the operator's: {listing}");
    assert!(names.contains(&name.as_str()), "{listing}");
    let path = dir.join(&name);
    let probe = ffprobe(&path);
    assert_eq!(
        probe["streams"].as_array().unwrap().len(),
        1,
        "video only: {probe:#}"
    );
    let video = stream(&probe, "h264");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(320), Some(240))
    );
    let packets = number(&video["nb_read_packets"]);
    assert!(
        packets >= 80.0,
        "{packets} of the 90 frames sent: {probe:#}"
    );
    assert_every_frame_decodes(&path);
}

#[test]
fn a_recording_killed_mid_file_plays_up_to_its_last_fragment() {
    let (dir, config) = setup("kill", "always = true\n");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert!(
        server.wait_for(Duration::from_secs(10), |s| !s["recording"]["file"]
            .is_null())
    );
    std::thread::sleep(Duration::from_millis(4500));
    drop(server); // SIGKILL, and waits for it: no chance to close the file
    let file = &files(&dir)[0];
    let probe = ffprobe(file);
    let duration = number(&probe["format"]["duration"]);
    // Fragments are a second at most: what is lost is the last one.
    assert!((3.0..5.5).contains(&duration), "duration {duration}");
    assert!(number(&stream(&probe, "h264")["nb_read_packets"]) >= 75.0);

    // A power cut can also leave half a fragment: cut the file in the middle
    // of its last one.
    let bytes = std::fs::read(file).unwrap();
    let last_moof = bytes.windows(4).rposition(|w| w == b"moof").unwrap() - 4;
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &bytes[..last_moof + (bytes.len() - last_moof) / 2]).unwrap();
    let probe = ffprobe(&cut);
    let cut_duration = number(&probe["format"]["duration"]);
    assert!(
        cut_duration >= duration - 1.5 && cut_duration <= duration,
        "{cut_duration} of {duration}"
    );
    assert_eq!(stream(&probe, "h264")["width"], 640);
}

#[test]
fn files_rotate_on_keyframes_and_the_quota_deletes_the_oldest() {
    let (dir, config) = setup(
        "quota",
        "always = true\nmax_file_seconds = 2\nquota_mb = 1\nmax_file_mb = 1\n",
    );
    // Earlier recordings: 700 + 250 kB of a 1 MB quota.
    let oldest = dir.join("telepi-20000101-000000.mp4");
    let older = dir.join("telepi-20000101-000100.mp4");
    std::fs::write(&oldest, vec![0; 700_000]).unwrap();
    std::fs::write(&older, vec![0; 250_000]).unwrap();
    let unrelated = dir.join("notes.mp4");
    std::fs::write(&unrelated, vec![0; 2_000_000]).unwrap();
    let server = Server::start_logged(&["--config", config.to_str().unwrap()]);
    let deleted = server
        .log
        .wait_for(Duration::from_secs(20), &["recording quota: deleted"]);
    assert!(
        deleted.is_some_and(|l| l.contains("telepi-20000101-000000.mp4")),
        "{}",
        server.log.text()
    );
    assert!(!oldest.exists());
    assert!(older.exists(), "only as much as needed goes");
    assert!(
        unrelated.exists(),
        "files that aren't recordings are never touched"
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(server.terminate(), Some(0));
    let recorded: Vec<PathBuf> = files(&dir)
        .into_iter()
        .filter(|f| *f != older && *f != unrelated)
        .collect();
    assert!(recorded.len() >= 2, "rotated every ~2 s: {recorded:?}");
    for file in &recorded {
        let probe = ffprobe(file);
        let duration = number(&probe["format"]["duration"]);
        assert!(duration <= 4.5, "{}: {duration} s", file.display());
        // Each file opens with a keyframe: the first packet decodes on its own.
        let first = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v",
                "-show_entries",
                "packet=flags",
            ])
            .args(["-read_intervals", "%+#1", "-of", "csv=p=0"])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&first.stdout).starts_with('K'),
            "{}",
            file.display()
        );
    }
    let total: u64 = files(&dir)
        .iter()
        .filter(|f| **f != unrelated)
        .map(|f| f.metadata().unwrap().len())
        .sum();
    assert!(
        total <= 1_000_000 + 300_000,
        "{total} bytes: within the quota but for the growing file"
    );
}

#[test]
fn recordings_need_the_operator_secret_and_bad_requests_are_refused() {
    let (_dir, config) = setup("refusals", "");
    let text =
        std::fs::read_to_string(&config).unwrap() + "[control]\noperator_secret = \"hunter2\"\n";
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let ask = |method: &str, path: &str, headers: &[(&str, &str)]| {
        let (code, body) = request(server.http, method, path, headers, b"").unwrap();
        (code, body)
    };
    let bearer = [("Authorization", "Bearer hunter2")];
    let wrong = [("Authorization", "Bearer nope")];
    for path in ["/api/record/start", "/api/record/stop"] {
        let (code, body) = ask("POST", path, &[]);
        assert_eq!(code, 403, "{body}");
        assert!(body.contains("operator secret"), "{body}");
        assert_eq!(ask("POST", path, &wrong).0, 403);
    }
    assert_eq!(ask("GET", "/api/recordings", &[]).0, 403);
    assert_eq!(ask("GET", "/api/recordings?secret=hunter2", &[]).0, 200);
    assert_eq!(ask("GET", "/api/record/start", &bearer).0, 405);
    assert_eq!(ask("DELETE", "/api/recordings", &bearer).0, 405);
    assert_eq!(ask("POST", "/api/record/pause", &bearer).0, 404);
    for path in [
        "/api/recordings/telepi-20000101-000000.mp4",
        "/api/recordings/../telepi.toml",
        "/api/recordings/..%2Ftelepi.toml",
        "/api/recordings/",
    ] {
        let (code, body) = ask("GET", path, &bearer);
        assert_eq!(code, 404, "{path}: {body}");
    }
    let (code, body) = ask("POST", "/api/record/start", &bearer);
    assert_eq!((code, body.as_str()), (200, r#"{"recording":true}"#));
    assert!(
        server.wait_for(Duration::from_secs(10), |s| !s["recording"]["file"]
            .is_null())
    );
    let metrics = ask("GET", "/metrics", &[]).1;
    assert!(
        metrics.lines().any(|l| l == "telepi_recording 1"),
        "{metrics}"
    );
    assert_eq!(ask("POST", "/api/record/stop?secret=hunter2", &[]).0, 200);
    assert!(server.wait_for(Duration::from_secs(5), |s| s["recording"]["file"].is_null()));
    assert_eq!(server.status()["recording"]["files"], 1);
    let metrics = ask("GET", "/metrics", &[]).1;
    assert!(
        metrics.lines().any(|l| l == "telepi_recording 0"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l == "telepi_recording_files 1"),
        "{metrics}"
    );
}

#[test]
fn a_recordings_directory_that_cannot_be_used_is_a_clear_refusal() {
    // A file where the directory should be: found at start.
    let (dir, config) = setup("in-the-way", "");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"in the way").unwrap();
    let server = Server::start_logged(&["--config", config.to_str().unwrap()]);
    let (code, body) = request(server.http, "POST", "/api/record/start", &[], b"").unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("cannot record: record dir"), "{body}");
    assert!(server.log.text().contains("recording is off"));
    // The operator's page asking is told why.
    let mut operator = Peer::connect(&server);
    operator.send(r#"{"type":"claim"}"#);
    operator.send(r#"{"type":"record","on":true}"#);
    assert!(operator.run_until(Duration::from_secs(5), |p| {
        p.last_message("error").is_some_and(|e| {
            e["reason"]
                .as_str()
                .unwrap()
                .contains("cannot record: record dir")
        })
    }));
    assert_eq!(server.status()["recording"]["on"], false);
    drop(server);
    // Always-on recording with nowhere to write: telepi doesn't start.
    let always = dir.with_extension("always.toml");
    let text = std::fs::read_to_string(&config).unwrap() + "always = true\n";
    std::fs::write(&always, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_telepi"))
        .args(["--http", "127.0.0.1:0", "--rtc", "127.0.0.1:0", "--config"])
        .arg(&always)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("telepi: cannot record: record dir"),
        "{stderr}"
    );

    // A directory that can't be made: found when the first file starts.
    let (dir, config) = setup("unmakeable", "");
    let blocked = dir.join("file/rec");
    std::fs::write(dir.join("file"), b"not a directory").unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("dir = \"{}\"", dir.display()),
        &format!("dir = \"{}\"", blocked.display()),
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::start_logged(&["--config", config.to_str().unwrap()]);
    let (code, _) = request(server.http, "POST", "/api/record/start", &[], b"").unwrap();
    assert_eq!(code, 200, "the directory is only made when a file starts");
    assert!(
        server.wait_for(Duration::from_secs(10), |s| !s["recording"]["error"]
            .is_null())
    );
    let status = server.status();
    assert_eq!(status["recording"]["on"], false, "{status}");
    let error = status["recording"]["error"].as_str().unwrap();
    assert!(
        error.contains("record dir") && error.contains("file/rec"),
        "{error}"
    );
    assert!(server.log.text().contains("recording stopped: record dir"));
}

#[test]
fn a_passthrough_camera_in_high_profile_is_recorded_as_it_comes() {
    // What rpicam-vid or a UVC camera would send (High profile, its own
    // GOP), without a microphone: one track.
    let (dir, config) = setup("passthrough", "always = true\n");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[video]\nsource = \"pattern\"\nencoder = \"openh264\"\n",
        "[video]\nsource = \"pipe\"\nwidth = 320\nheight = 240\n\
         pipe_command = \"ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc=size=320x240:rate=30 \
         -pix_fmt yuv420p -c:v libx264 -profile:v high -bf 0 -g 30 -f h264 -\"\n",
    ).replace("source = \"tone\"", "source = \"none\"");
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert!(
        server.wait_for(Duration::from_secs(10), |s| !s["recording"]["file"]
            .is_null())
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(server.terminate(), Some(0));
    let file = &files(&dir)[0];
    let probe = ffprobe(file);
    assert_eq!(
        probe["streams"].as_array().unwrap().len(),
        1,
        "no audio track: {probe:#}"
    );
    let video = stream(&probe, "h264");
    assert_eq!(video["profile"], "High");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(320), Some(240))
    );
    let duration = number(&probe["format"]["duration"]);
    assert!((2.0..4.5).contains(&duration), "duration {duration}");
    assert_every_frame_decodes(file);
}

#[test]
fn every_camera_records_to_its_own_file_and_one_may_record_always() {
    let (dir, _) = setup("cameras", "");
    let config = dir.with_file_name("cameras.toml");
    let text = std::fs::read_to_string("tests/fixtures/two-cameras.toml").unwrap()
        + "record = \"always\"\n" // the arm's table is the last
        + &format!(
            "[audio]\nsource = \"tone\"\nsink = \"meter\"\n[record]\ndir = \"{}\"\n",
            dir.display()
        );
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let camera_file = |s: &Value, n: usize| s["recording"]["cameras"][n]["file"].clone();
    // Nobody watches: the arm records all the same, the front waits for the switch.
    assert!(
        server.wait_for(Duration::from_secs(10), |s| !camera_file(s, 1).is_null()),
        "{}",
        server.status()
    );
    let status = server.status();
    assert_eq!(status["recording"]["cameras"][0]["on"], false, "{status}");
    assert_eq!(status["recording"]["cameras"][1]["always"], true);
    assert!(camera_file(&status, 1)
        .as_str()
        .unwrap()
        .ends_with("-arm.mp4"));

    let mut peers = vec![Peer::connect(&server)];
    peers[0].send(r#"{"type":"claim"}"#);
    peers[0].send(r#"{"type":"record","on":true}"#);
    assert!(run_all_until(&mut peers, |_| !camera_file(
        &server.status(),
        0
    )
    .is_null()));
    let started = Instant::now();
    run_all_until(&mut peers, |_| started.elapsed() >= Duration::from_secs(3));
    peers[0].send(r#"{"type":"record","on":false}"#);
    assert!(run_all_until(&mut peers, |_| camera_file(
        &server.status(),
        0
    )
    .is_null()));
    let status = server.status();
    assert!(
        !camera_file(&status, 1).is_null(),
        "the arm still records: {status}"
    );
    assert_eq!(status["recording"]["on"], true, "something is recorded");

    let (code, body) = request(server.http, "GET", "/api/recordings", &[], b"").unwrap();
    assert_eq!(code, 200, "{body}");
    let listing: Value = serde_json::from_str(&body).unwrap();
    let mut cameras: Vec<&str> = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["camera"].as_str().unwrap())
        .collect();
    cameras.sort();
    assert_eq!(cameras, ["arm", "front"], "{listing}");
    drop(peers);
    assert_eq!(server.terminate(), Some(0));

    let on_disk = files(&dir);
    assert_eq!(on_disk.len(), 2, "{on_disk:?}");
    for (file, size) in on_disk.iter().zip([(160, 120), (320, 240)]) {
        let probe = ffprobe(file);
        let video = stream(&probe, "h264");
        assert_eq!(
            (video["width"].as_u64(), video["height"].as_u64()),
            (Some(size.0), Some(size.1)),
            "{}",
            file.display()
        );
        assert_eq!(stream(&probe, "pcm_mulaw")["sample_rate"], "8000");
        assert_every_frame_decodes(file);
    }
    // The arm recorded from start to exit, the front for the 3 s switched on.
    let duration = |file: &Path| number(&ffprobe(file)["format"]["duration"]);
    assert!(duration(&on_disk[0]) > duration(&on_disk[1]), "{on_disk:?}");
}
