//! What the session reports: telemetry to every peer at 5 Hz, and its part
//! of `/api/status`; with the readings programs publish and the CPU
//! temperature the loop reads.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use super::Session;
use crate::drive::{LinkState, Motors, ServoValues};
use crate::peer::PeerId;
use crate::session::protocol::{Outbound, PeerRole};

/// Why a data-channel message was refused: a label in `/metrics`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Rejection {
    /// Not JSON, an unknown type, a missing or out-of-range field, too long.
    Malformed,
    /// Before the peer's channel joined the session.
    NotJoined,
    /// A command only the operator may give.
    NotOperator,
    /// The peer came over view-only plain HTTP.
    ViewOnly,
    WrongSecret,
    /// Well-formed, but names a servo or control (or value) the robot lacks.
    Invalid,
    /// A drive that arrived too late to obey (see `fresh.rs`); dropped silently.
    Stale,
}

/// Refused messages by [`Rejection`].
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Rejections {
    malformed: u64,
    not_joined: u64,
    not_operator: u64,
    view_only: u64,
    wrong_secret: u64,
    invalid: u64,
    stale: u64,
}

impl Rejections {
    pub(super) fn count(&mut self, kind: Rejection) {
        let n = match kind {
            Rejection::Malformed => &mut self.malformed,
            Rejection::NotJoined => &mut self.not_joined,
            Rejection::NotOperator => &mut self.not_operator,
            Rejection::ViewOnly => &mut self.view_only,
            Rejection::WrongSecret => &mut self.wrong_secret,
            Rejection::Invalid => &mut self.invalid,
            Rejection::Stale => &mut self.stale,
        };
        *n += 1;
    }

    pub fn total(&self) -> u64 {
        self.malformed
            + self.not_joined
            + self.not_operator
            + self.view_only
            + self.wrong_secret
            + self.invalid
            + self.stale
    }
}

/// For `/api/status`.
#[derive(Serialize)]
pub struct SessionStatus<'a> {
    pub operator: Option<PeerId>,
    pub motors: Motors,
    pub servos: ServoValues<'a>,
    pub peers: Vec<PeerRole>,
    /// All refused messages, for the page; `rejections` splits them by reason.
    pub rejected_messages: u64,
    pub messages_received: u64,
    pub rejections: Rejections,
    /// Times the deadman stopped moving motors.
    pub deadman_trips: u64,
    pub backend: &'static str,
    /// `None` for backends without a link that can fail (sim, gpio).
    pub link: Option<LinkState>,
    pub readings: &'a BTreeMap<String, Value>,
}

impl Session {
    /// The CPU temperature for telemetry; the loop reads it (see [`read_cpu_temp_c`]).
    pub fn set_cpu_temp(&mut self, celsius: Option<f32>) {
        self.cpu_temp_c = celsius;
    }

    /// Whether the recorder is on, for telemetry; the loop asks it.
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// A reading from a program on the local API (checked there); `None` removes it.
    pub fn set_reading(&mut self, name: String, value: Option<Value>) {
        match value {
            Some(value) => self.readings.insert(name, value),
            None => self.readings.remove(&name),
        };
    }

    pub fn status(&self) -> SessionStatus<'_> {
        SessionStatus {
            operator: self.operator,
            motors: self.drive.motors(),
            servos: self.drive.servos(),
            peers: self.roles().to_vec(),
            rejected_messages: self.rejections.total(),
            messages_received: self.messages_received,
            rejections: self.rejections,
            deadman_trips: self.drive.deadman_trips(),
            backend: self.drive.backend_name(),
            link: self.drive.link(),
            readings: &self.readings,
        }
    }

    pub(super) fn broadcast_telemetry(&mut self, now: Instant) {
        let text = Outbound::Telemetry {
            motors: self.drive.motors(),
            servos: self.drive.servos(),
            operator: self.operator,
            uptime_s: now.saturating_duration_since(self.started).as_millis() as f64 / 1000.0,
            cpu_temp_c: self.cpu_temp_c,
            rejected_messages: self.rejections.total(),
            readings: &self.readings,
            drive_link: self.drive.link(),
            recording: self.recording,
        }
        .to_json();
        self.broadcast(text);
    }
}

/// Reads the SoC temperature (I/O: for the loop, about once a second, not for the core).
pub fn read_cpu_temp_c() -> Option<f32> {
    let milli = std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp").ok()?;
    Some(milli.trim().parse::<f32>().ok()? / 1000.0)
}
