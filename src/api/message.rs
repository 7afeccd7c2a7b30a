//! The local API's messages: one JSON object per line, tagged by `type`,
//! in the data channel's style (docs/reference/local-api.md).

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use crate::controls::Controls;
use crate::drive::Motors;
use crate::json::required;
use crate::peer::PeerId;
use crate::peer::{PeerRole, Role};

/// Longest line a program may send; longer ones are refused (and skipped to the next newline).
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Largest `custom` value passed on to pages (a data-channel message has room for it).
pub const MAX_CUSTOM_BYTES: usize = 2048;
/// Longest string reading.
pub const MAX_READING_TEXT: usize = 256;

/// What a program may subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Drive,
    Servo,
    Stop,
    Custom,
    Presence,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Drive,
        EventKind::Servo,
        EventKind::Stop,
        EventKind::Custom,
        EventKind::Presence,
    ];

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of [`EventKind`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventSet(u8);

impl EventSet {
    pub fn insert(&mut self, kind: EventKind) {
        self.0 |= kind.bit();
    }

    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub fn kinds(self) -> Vec<EventKind> {
        EventKind::ALL
            .into_iter()
            .filter(|k| self.contains(*k))
            .collect()
    }
}

/// Who a program's `custom` message goes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    /// Every connected page.
    #[default]
    All,
    /// The operator's page only.
    Operator,
}

/// Program → telepi.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Names the program in logs and `/api/status`.
    Hello { name: String },
    /// Adds event kinds to what this program is sent.
    Subscribe { events: Vec<EventKind> },
    /// Sets a reading shown on the page; `null` removes it.
    Reading {
        name: String,
        #[serde(deserialize_with = "required")]
        value: Value,
    },
    /// A message for the pages: `{"type":"custom","name":..,"value":..}`.
    Custom {
        name: String,
        #[serde(deserialize_with = "required")]
        value: Value,
        #[serde(default)]
        to: Audience,
    },
    /// This program drives the motors (`[drive] backend = "external"`).
    TakeMotors,
    Ping {
        #[serde(default)]
        t: Option<Number>,
    },
}

/// What happened on the data channels, for subscribed programs. The session
/// emits these; `peer` and `role` say who sent it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// An operator's `drive` that reached the motors, clamped to [-1, 1].
    Drive {
        peer: PeerId,
        role: Role,
        linear: f32,
        angular: f32,
    },
    Servo {
        peer: PeerId,
        role: Role,
        name: String,
        value: f32,
    },
    /// An emergency stop, from anyone.
    Stop { peer: PeerId, role: Role },
    /// A custom control on the operator's page.
    Custom {
        peer: PeerId,
        role: Role,
        name: String,
        value: Value,
    },
    /// Every join, leave and change of role.
    Presence {
        peers: Vec<PeerRole>,
        operator: Option<PeerId>,
    },
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Drive { .. } => EventKind::Drive,
            Event::Servo { .. } => EventKind::Servo,
            Event::Stop { .. } => EventKind::Stop,
            Event::Custom { .. } => EventKind::Custom,
            Event::Presence { .. } => EventKind::Presence,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events always serialize")
    }
}

/// Telepi → program, besides [`Event`]s.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply<'a> {
    /// First line on every connection.
    Welcome {
        client: u64,
        version: &'static str,
        drive_backend: &'a str,
        events: [EventKind; 5],
        #[serde(flatten)]
        controls: &'a Controls,
    },
    Subscribed {
        events: Vec<EventKind>,
    },
    Error {
        reason: String,
    },
    Pong {
        t: Option<Number>,
    },
    /// For programs that took the motors: what they should be doing now.
    /// Both zero is a stop: apply it at once.
    Motors {
        left: f32,
        right: f32,
    },
    /// For programs that took the motors: a servo's pulse width.
    ServoPulse {
        name: &'a str,
        index: usize,
        pulse_us: u32,
    },
}

impl Reply<'_> {
    pub fn error(reason: impl Into<String>) -> Reply<'static> {
        Reply::Error {
            reason: reason.into(),
        }
    }

    pub fn motors(m: Motors) -> Reply<'static> {
        Reply::Motors {
            left: m.left,
            right: m.right,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("replies always serialize")
    }
}

/// Parses one line from a program, turning every failure into the reason sent back.
pub fn parse(line: &[u8]) -> Result<Request, String> {
    let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))?;
    serde_json::from_str(text).map_err(|e| format!("bad message: {e}"))
}

/// A reading's value: a number, a short string, a boolean, or `null` (remove it).
pub fn check_reading(value: &Value) -> Result<(), String> {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        Value::String(s) if s.len() <= MAX_READING_TEXT => Ok(()),
        Value::String(_) => Err(format!(
            "a reading's text is at most {MAX_READING_TEXT} bytes"
        )),
        _ => Err("a reading is a number, a string, a boolean or null".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(
            parse(br#"{"type":"subscribe","events":["drive","custom"]}"#),
            Ok(Request::Subscribe {
                events: vec![EventKind::Drive, EventKind::Custom]
            })
        );
        assert_eq!(
            parse(br#"{"type":"reading","name":"v","value":null}"#),
            Ok(Request::Reading {
                name: "v".into(),
                value: Value::Null
            })
        );
        assert_eq!(
            parse(br#"{"type":"custom","name":"n","value":[1],"to":"operator"}"#),
            Ok(Request::Custom {
                name: "n".into(),
                value: json!([1]),
                to: Audience::Operator
            })
        );
        assert_eq!(
            parse(br#"{"type":"custom","name":"n","value":1}"#).map(|r| match r {
                Request::Custom { to, .. } => to,
                _ => panic!(),
            }),
            Ok(Audience::All)
        );
        assert_eq!(parse(br#"{"type":"take_motors"}"#), Ok(Request::TakeMotors));
        assert_eq!(parse(br#"{"type":"ping"}"#), Ok(Request::Ping { t: None }));
    }

    #[test]
    fn bad_requests_say_why() {
        let err = |line: &[u8]| parse(line).unwrap_err();
        assert!(
            err(br#"{"type":"subscribe","events":["video"]}"#).contains("unknown variant `video`")
        );
        assert!(err(br#"{"type":"reading","name":"v"}"#).contains("missing field `value`"));
        assert!(err(br#"{"type":"custom","name":"n","value":1,"to":"me"}"#)
            .contains("unknown variant `me`"));
        assert!(err(br#"{"type":"fly"}"#).contains("unknown variant `fly`"));
        assert!(err(b"\xff\xfe").contains("not UTF-8"));
        assert!(err(b"drive 1 0").contains("bad message"));
    }

    #[test]
    fn readings_are_scalars() {
        for ok in [json!(1.5), json!("ok"), json!(true), Value::Null] {
            check_reading(&ok).unwrap();
        }
        assert!(check_reading(&json!([1])).is_err());
        assert!(check_reading(&json!({"a": 1})).is_err());
        assert!(check_reading(&json!("x".repeat(257))).is_err());
    }

    #[test]
    fn events_and_replies_look_like_the_data_channel() {
        let drive = Event::Drive {
            peer: PeerId(3),
            role: Role::Operator,
            linear: 0.5,
            angular: -1.0,
        };
        assert_eq!(
            drive.to_json(),
            r#"{"type":"drive","peer":3,"role":"operator","linear":0.5,"angular":-1.0}"#
        );
        assert_eq!(
            Reply::ServoPulse {
                name: "pan",
                index: 0,
                pulse_us: 1500
            }
            .to_json(),
            r#"{"type":"servo_pulse","name":"pan","index":0,"pulse_us":1500}"#
        );
        let mut set = EventSet::default();
        set.insert(EventKind::Presence);
        set.insert(EventKind::Drive);
        assert_eq!(set.kinds(), [EventKind::Drive, EventKind::Presence]);
        assert!(!set.contains(EventKind::Stop));
    }
}
