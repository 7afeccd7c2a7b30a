//! Data-channel messages: JSON text, one object per message, tagged by `type`.
//!
//! Browser → robot: `ping {t}`, `drive {linear, angular, seq?, t?}` (both in
//! [-1, 1], clamped as they are parsed; stale ones dropped), `stop`, `servo
//! {name, value}` (value in [-1, 1], clamped as it is parsed), `claim
//! {secret?, resume?}`, `release`, `custom {name, value}` (a
//! control declared in `[[controls]]`), `record {on}` (operator only),
//! `camera {name, on}` (stop or resume receiving one camera).
//! Robot → browser: `pong {t}`, `error {reason}`, `role {role, resume?}`,
//! `cameras {names}` (on joining: the camera each video m-line carries),
//! `presence {peers: [{id, role}]}`, `telemetry {...}`, `controls {...}`,
//! `custom {name, value}` (from a program on the local API), `layer {camera,
//! layer, switching_to, why}` (which encode it gets: `main` or `low`); telemetry has
//! `drive_link` when the motors are behind a link that can fail.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::controls::Controls;
use crate::drive::{LinkState, Motors, ServoValues};
use crate::json::required;
use crate::peer::PeerId;
pub use crate::peer::{PeerRole, Role};

/// The label of a page's second data channel, unordered and without
/// retransmissions, for `drive` only: a lost or late drive is simply gone,
/// so none queues behind a blip. Everything else, and every reply, uses the
/// page's first (reliable) channel.
pub const DRIVE_CHANNEL: &str = "drive";

/// Largest data-channel message we parse; anything bigger is refused unread.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Browser → robot.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Inbound {
    Ping {
        t: serde_json::Number,
    },
    /// Normalised cmd_vel: `linear` forward, `angular` counter-clockwise.
    Drive {
        #[serde(deserialize_with = "unit")]
        linear: f32,
        #[serde(deserialize_with = "unit")]
        angular: f32,
        /// Increasing per peer; a `drive` not above the last one seen is stale.
        seq: Option<u64>,
        /// When the page sent it, on its own clock (ms): one that took much
        /// longer than the page's fastest is stale (see `session/fresh.rs`).
        t: Option<f64>,
    },
    /// Emergency stop, honoured from every peer.
    Stop,
    Servo {
        name: String,
        #[serde(deserialize_with = "unit")]
        value: f32,
    },
    /// Asks for the operator role; `secret` when one is configured, or the
    /// `resume` token this page got with the role on an earlier connection.
    Claim {
        secret: Option<String>,
        resume: Option<String>,
    },
    Release,
    /// Starts or stops recording (operator only).
    Record {
        on: bool,
    },
    /// Stops (`on: false`) or resumes sending one camera to this peer.
    Camera {
        name: String,
        on: bool,
    },
    /// A custom control on the page (`[[controls]]`).
    Custom {
        name: String,
        #[serde(deserialize_with = "required")]
        value: Value,
    },
}

/// A number clamped into [-1, 1] as it is parsed, before any arithmetic
/// sees it: cast first, 1e308 would be an f32 infinity, which the mixer
/// treats as zero (a robot that spins in place instead of going straight).
/// `-0.0` and values too small for an f32 come out as `0.0`.
fn unit<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_nan() {
        return Err(serde::de::Error::custom("not a number"));
    }
    // Adding +0.0 turns -0.0 into +0.0 and leaves every other value alone.
    Ok(v.clamp(-1.0, 1.0) as f32 + 0.0)
}

/// Robot → browser.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Outbound<'a> {
    Pong {
        t: serde_json::Number,
    },
    Error {
        reason: String,
    },
    /// The receiving peer's own role; an operator also gets a single-use
    /// token to take the role back on a new connection (`claim {resume}`).
    Role {
        role: Role,
        #[serde(skip_serializing_if = "Option::is_none")]
        resume: Option<&'a str>,
    },
    Presence {
        peers: &'a [PeerRole],
    },
    Telemetry {
        motors: Motors,
        servos: ServoValues<'a>,
        operator: Option<PeerId>,
        uptime_s: f64,
        cpu_temp_c: Option<f32>,
        rejected_messages: u64,
        /// What programs on the local API published.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        readings: &'a BTreeMap<String, Value>,
        /// For backends with a link that can fail (serial, external).
        #[serde(skip_serializing_if = "Option::is_none")]
        drive_link: Option<LinkState>,
        /// Everybody sees that they are being recorded.
        recording: bool,
    },
    /// Which of a camera's encodes this peer gets, and why (its HUD shows it).
    Layer {
        camera: usize,
        layer: crate::media::layer::Layer,
        switching_to: Option<crate::media::layer::Layer>,
        why: crate::media::layer::Why,
    },
    /// The robot's cameras by name, in the order of the offer's video m-lines.
    Cameras {
        names: &'a [String],
    },
    /// The custom controls and readings to show; sent on joining.
    Controls {
        #[serde(flatten)]
        controls: &'a Controls,
    },
    /// A program's message (local API).
    Custom {
        name: &'a str,
        value: &'a Value,
    },
    /// The robot is closing this connection; sent just before. `reconnect`
    /// is false when the peer was ejected and should not come straight back.
    Bye {
        reason: String,
        reconnect: bool,
    },
}

impl Outbound<'_> {
    pub fn error(reason: impl Into<String>) -> Outbound<'static> {
        Outbound::Error {
            reason: reason.into(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("outbound messages always serialize")
    }
}

/// Parses one message, turning every failure into the reason sent back to the peer.
pub fn parse(text: &str) -> Result<Inbound, String> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "message too large ({} bytes, limit {MAX_MESSAGE_BYTES})",
            text.len()
        ));
    }
    // serde_json refuses NaN, infinities and out-of-range numbers, so every
    // f64 that comes out is finite.
    serde_json::from_str(text).map_err(|e| format!("bad message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_round_trips_its_number_unchanged() {
        let Ok(Inbound::Ping { t }) = parse(r#"{"type":"ping","t":1234.5}"#) else {
            panic!()
        };
        assert_eq!(
            Outbound::Pong { t }.to_json(),
            r#"{"type":"pong","t":1234.5}"#
        );
    }

    #[test]
    fn control_messages_parse() {
        assert_eq!(
            parse(r#"{"type":"drive","linear":1,"angular":-0.5,"seq":9}"#),
            Ok(Inbound::Drive {
                linear: 1.0,
                angular: -0.5,
                seq: Some(9),
                t: None
            })
        );
        assert_eq!(
            parse(r#"{"type":"drive","linear":3,"angular":0}"#),
            Ok(Inbound::Drive {
                linear: 1.0,
                angular: 0.0,
                seq: None,
                t: None
            })
        );
        assert_eq!(
            parse(r#"{"type":"drive","linear":0,"angular":0,"seq":2,"t":1234.5}"#),
            Ok(Inbound::Drive {
                linear: 0.0,
                angular: 0.0,
                seq: Some(2),
                t: Some(1234.5)
            })
        );
        // A stop must get through whatever else the page adds to it.
        assert_eq!(
            parse(r#"{"type":"stop","why":"button"}"#),
            Ok(Inbound::Stop)
        );
        assert_eq!(
            parse(r#"{"type":"claim","secret":"s"}"#),
            Ok(Inbound::Claim {
                secret: Some("s".into()),
                resume: None
            })
        );
        assert_eq!(
            parse(r#"{"type":"claim","resume":"r"}"#),
            Ok(Inbound::Claim {
                secret: None,
                resume: Some("r".into())
            })
        );
        assert_eq!(parse(r#"{"type":"release"}"#), Ok(Inbound::Release));
        assert_eq!(
            parse(r#"{"type":"record","on":true}"#),
            Ok(Inbound::Record { on: true })
        );
        assert!(parse(r#"{"type":"record","on":"yes"}"#).is_err());
        assert_eq!(
            parse(r#"{"type":"camera","name":"arm","on":false}"#),
            Ok(Inbound::Camera {
                name: "arm".into(),
                on: false
            })
        );
        assert!(parse(r#"{"type":"camera","name":"arm"}"#).is_err());
        assert_eq!(
            parse(r#"{"type":"custom","name":"horn","value":true}"#),
            Ok(Inbound::Custom {
                name: "horn".into(),
                value: Value::Bool(true)
            })
        );
        assert!(parse(r#"{"type":"custom","name":"horn"}"#)
            .unwrap_err()
            .contains("missing field `value`"));
        assert_eq!(
            parse(r#"{"type":"servo","name":"pan","value":-1}"#),
            Ok(Inbound::Servo {
                name: "pan".into(),
                value: -1.0
            })
        );
    }

    #[test]
    fn unknown_type_and_garbage_are_errors() {
        assert!(parse(r#"{"type":"fly"}"#)
            .unwrap_err()
            .contains("unknown variant"));
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"type":"ping","t":"soon"}"#).is_err());
        let huge = format!(r#"{{"type":"ping","t":1,"pad":"{}"}}"#, "x".repeat(5000));
        assert!(parse(&huge).unwrap_err().contains("too large"));
    }

    #[test]
    fn drive_and_servo_refuse_non_numbers_and_missing_fields() {
        for bad in [
            r#"{"type":"drive","linear":NaN,"angular":0}"#,
            r#"{"type":"drive","linear":1e999,"angular":0}"#,
            r#"{"type":"drive","linear":"1","angular":0}"#,
            r#"{"type":"drive","linear":null,"angular":0}"#,
            r#"{"type":"drive","linear":1}"#,
            r#"{"type":"drive","linear":1,"angular":0,"seq":-1}"#,
            r#"{"type":"drive","linear":1,"angular":0,"seq":1.5}"#,
            r#"{"type":"drive","linear":1,"angular":0,"t":"now"}"#,
            r#"{"type":"servo","name":"pan","value":"max"}"#,
            r#"{"type":"servo","value":1}"#,
            r#"{"linear":1,"angular":0}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn outbound_shapes() {
        let peers = [
            PeerRole {
                id: PeerId(1),
                role: Role::Operator,
            },
            PeerRole {
                id: PeerId(2),
                role: Role::Viewer,
            },
        ];
        assert_eq!(
            Outbound::Presence { peers: &peers }.to_json(),
            r#"{"type":"presence","peers":[{"id":1,"role":"operator"},{"id":2,"role":"viewer"}]}"#
        );
        assert_eq!(
            Outbound::Role {
                role: Role::Viewer,
                resume: None
            }
            .to_json(),
            r#"{"type":"role","role":"viewer"}"#
        );
        assert_eq!(
            Outbound::Role {
                role: Role::Operator,
                resume: Some("ab12")
            }
            .to_json(),
            r#"{"type":"role","role":"operator","resume":"ab12"}"#
        );
    }

    /// Issue 19: `1e308` came through as an f32 infinity and stopped the
    /// motor it should have driven at full speed.
    #[test]
    fn drive_and_servo_numbers_are_clamped_as_they_are_parsed() {
        let cases: [(&str, f32); 13] = [
            ("1e308", 1.0),
            ("-1e308", -1.0),
            ("1.7976931348623157e308", 1.0),
            ("-1.7976931348623157e308", -1.0),
            ("3.5e38", 1.0),
            ("1e20", 1.0),
            ("5", 1.0),
            ("-0.0", 0.0),
            ("5e-324", 0.0),
            ("-5e-324", 0.0),
            ("-2.2250738585072014e-308", 0.0),
            ("1e-40", 1e-40),
            ("-0.25", -0.25),
        ];
        for (text, want) in cases {
            let drive = format!(r#"{{"type":"drive","linear":{text},"angular":{text}}}"#);
            let Ok(Inbound::Drive {
                linear, angular, ..
            }) = parse(&drive)
            else {
                panic!("{drive} refused")
            };
            for got in [linear, angular] {
                assert_eq!(got.to_bits(), want.to_bits(), "{text} gave {got:e}");
            }
            let servo = format!(r#"{{"type":"servo","name":"pan","value":{text}}}"#);
            let Ok(Inbound::Servo { value, .. }) = parse(&servo) else {
                panic!("{servo} refused")
            };
            assert_eq!(value.to_bits(), want.to_bits(), "{text} gave {value:e}");
        }
    }

    /// Found by `fuzz/run.sh` (datachannel): without serde_json's
    /// `float_roundtrip` a long ping number came back 1 ulp off in the pong.
    #[test]
    fn pong_numbers_survive_a_round_trip_exactly() {
        let ping =
            r#"{"type":"ping","t":126666666666666666666666666666666666666666666666666634.5}"#;
        let Ok(Inbound::Ping { t }) = parse(ping) else {
            panic!()
        };
        let pong: serde_json::Value =
            serde_json::from_str(&Outbound::Pong { t: t.clone() }.to_json()).unwrap();
        assert_eq!(pong["t"], serde_json::Value::Number(t));
        assert_eq!(pong["t"].as_f64(), Some(1.2666666666666667e53));
    }
}
