//! The board profiles (`board/profiles/`): each one a valid config, the same
//! wiring on every Pi.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::drive::{BackendKind, DriveConfig};
use crate::session::SessionConfig;

const MODELS: [&str; 4] = ["pi-zero2w", "pi3", "pi4", "pi5"];
const DRIVERS: [&str; 3] = ["l298n", "tb6612", "drv8833"];

fn table(profile: &toml::Table, key: &str) -> toml::Value {
    profile
        .get(key)
        .unwrap_or_else(|| panic!("no [{key}]"))
        .clone()
}

#[test]
fn every_board_profile_is_a_valid_config() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("board/profiles");
    let mut drives: BTreeMap<&str, DriveConfig> = BTreeMap::new();
    for model in MODELS {
        for driver in DRIVERS {
            let name = format!("{model}-{driver}.toml");
            let text = std::fs::read_to_string(dir.join(&name)).expect(&name);
            let profile: toml::Table = toml::from_str(&text).expect(&name);
            let keys: Vec<_> = profile.keys().map(String::as_str).collect();
            assert_eq!(keys, ["control", "drive", "video"], "{name}");

            let drive = DriveConfig::deserialize(table(&profile, "drive")).expect(&name);
            drive.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                format!("{:?}", drive.driver).to_lowercase(),
                driver,
                "{name}"
            );
            assert_eq!(drive.servos.len(), 2, "{name}: pan and tilt");
            // Same wiring on every model, so a robot can move to another Pi.
            assert_eq!(
                drives.entry(driver).or_insert_with(|| drive.clone()),
                &drive,
                "{name}"
            );

            SessionConfig::deserialize(table(&profile, "control")).expect(&name);
            let video = table(&profile, "video");
            let encoder = if model == "pi5" {
                "openh264"
            } else {
                "v4l2m2m"
            };
            assert_eq!(video["encoder"].as_str(), Some(encoder), "{name}");
            assert_eq!(video["source"].as_str(), Some("auto"), "{name}");
        }
    }
    let count = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        count,
        MODELS.len() * DRIVERS.len() + CONTROLLERS.len(),
        "unexpected files in board/profiles"
    );
}

/// Profiles for motor controllers that fit any Pi.
const CONTROLLERS: [(&str, BackendKind); 3] = [
    ("adafruit-motor-hat", BackendKind::Pca9685),
    ("waveshare-motor-hat", BackendKind::Pca9685),
    ("arduino-serial", BackendKind::Serial),
];

#[test]
fn every_controller_profile_is_a_valid_config_for_any_pi() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("board/profiles");
    for (name, backend) in CONTROLLERS {
        let text = std::fs::read_to_string(dir.join(format!("{name}.toml"))).expect(name);
        let profile: toml::Table = toml::from_str(&text).expect(name);
        let keys: Vec<_> = profile.keys().map(String::as_str).collect();
        assert_eq!(keys, ["control", "drive", "video"], "{name}");
        let drive = DriveConfig::deserialize(table(&profile, "drive")).expect(name);
        drive.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(drive.backend, backend, "{name}");
        SessionConfig::deserialize(table(&profile, "control")).expect(name);
        let video = table(&profile, "video");
        assert_eq!(video["encoder"].as_str(), Some("auto"), "{name}: any Pi");
    }
}
