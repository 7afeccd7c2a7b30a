//! End to end audio: the robot's (synthetic) microphone reaches a peer as
//! PCMU, and only the operator's voice reaches its (metered) speaker.

mod common;

use std::time::Duration;

use common::{Peer, Server};

fn talk(peer: &mut Peer, packets: usize) {
    for _ in 0..packets {
        peer.send_audio();
        peer.run_for(Duration::from_millis(20));
    }
}

fn talkback_packets(server: &Server) -> u64 {
    server.status()["audio"]["talkback_packets"]
        .as_u64()
        .unwrap()
}

#[test]
fn the_microphone_reaches_peers_and_only_the_operator_reaches_the_speaker() {
    let server = Server::start(&["--config", "tests/fixtures/synthetic-audio.toml"]);
    let mut viewer = Peer::connect_with_audio(&server);
    // The tone beeps for 100 ms at the top of every second.
    assert!(
        viewer.run_until(Duration::from_secs(5), |p| p.audio_packets >= 60
            && p.audio_peak > 6000),
        "{} packets, peak {}",
        viewer.audio_packets,
        viewer.audio_peak
    );
    let status = server.status();
    assert_eq!(status["audio"]["source"], "tone");
    assert_eq!(status["audio"]["listeners"], 1);

    talk(&mut viewer, 10);
    assert_eq!(
        talkback_packets(&server),
        0,
        "a viewer can't talk through the robot"
    );

    let mut operator = Peer::connect_with_audio(&server);
    operator.send(r#"{"type":"claim"}"#);
    assert!(operator.run_until(Duration::from_secs(5), |p| {
        p.last_message("role")
            .is_some_and(|r| r["role"] == "operator")
    }));
    talk(&mut operator, 10);
    assert!(
        server.wait_for(Duration::from_secs(2), |s| s["audio"]["talkback_packets"]
            .as_u64()
            >= Some(5))
    );
    assert!(server.status()["audio"]["talkback_peak"].as_u64().unwrap() > 30000);
}

/// Issue 19: without a sound card, alsa-lib printed sixteen `ALSA lib ...`
/// lines at every start. An empty ALSA configuration has no `default`
/// device on any machine, with or without a card.
#[test]
fn no_sound_card_is_one_clear_line_without_alsa_lib_noise() {
    let config =
        std::env::temp_dir().join(format!("telepi-empty-alsa-{}.conf", std::process::id()));
    std::fs::write(&config, "").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_telepi"))
        .args(["--http", "127.0.0.1:0", "--rtc", "127.0.0.1:0"])
        .env("ALSA_CONFIG_PATH", &config)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = common::Log::default();
    log.collect(child.stderr.take().unwrap());
    let speaker = log.wait_for(Duration::from_secs(20), &["no speaker"]);
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_file(&config).unwrap();
    let text = log.text();
    assert!(speaker.is_some(), "no `no speaker` line:\n{text}");
    assert!(text.contains("no microphone"), "{text}");
    assert!(
        !text.contains("ALSA lib"),
        "alsa-lib's own printer:\n{text}"
    );
}
