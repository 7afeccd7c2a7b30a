//! The config loader (`telepi::config::parse`, `telepi::config::load`) on
//! arbitrary TOML, laid over a board profile as `--board NAME --config FILE`
//! does.
//!
//! Input: a byte choosing the board profile (none, or one of
//! `telepi::config::BOARDS`), then the config file's text.
//!
//! Properties: whatever `load` accepts starts: the drive opens (on the
//! simulator), the video size makes an I420 frame, the ICE servers give the
//! page its list; and a config that loads alone also parses alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telepi::config::{self, BOARDS};
use telepi::drive::{BackendKind, Drive};

fuzz_target!(|data: &[u8]| {
    let Some((&board, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let parsed = config::parse(text);

    let mut layers = Vec::new();
    let board = usize::from(board) % (BOARDS.len() + 1);
    if board > 0 {
        let (name, profile) = BOARDS[board - 1];
        layers.push((format!("board {name}"), profile.to_string()));
    }
    layers.push(("fuzz.toml".to_string(), text.to_string()));
    let Ok(loaded) = config::load(&layers) else {
        return;
    };
    if board == 0 {
        assert!(parsed.is_ok(), "load accepted what parse refuses");
    }

    let mut drive = loaded.drive.clone();
    drive.backend = BackendKind::Sim;
    if let Err(e) = Drive::open(&drive) {
        panic!("a loaded config's drive does not open: {e}");
    }
    telepi::media::convert::i420_len(loaded.video.width, loaded.video.height)
        .expect("a loaded video size makes I420 frames");
    let _ = loaded.rtc.peer_timeout();
    let _ = loaded.video.keyframe_interval();
    let servers = telepi::rtc::ice::for_page(&loaded.rtc, 1_700_000_000);
    assert_eq!(servers.len(), loaded.rtc.ice_servers.len());
});
