//! `GET /metrics`: the robot's figures in Prometheus' text exposition format
//! (version 0.0.4). A view, not a second bookkeeping: everything comes from
//! the same snapshot as `/api/status` (the network loop's counters), the HTTP
//! layer's response counts and the process's own `/proc` and `/sys` files,
//! rendered off the loop by the HTTP worker. Rendering is pure (`render`), so
//! it is tested with a [`Status`] and no running robot.
//!
//! Names follow Prometheus' conventions: `telepi_` prefix, `_total` for
//! counters, base units (seconds, bytes, bits per second); the process
//! figures use the standard `process_` names so existing dashboards work.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use crate::media::audio::AudioStatus;
use crate::media::record::RecordingStatus;
use crate::rtc::publish::publisher::{PublishStatus, State};
use crate::rtc::status::{Camera, LoopStatus, Peer};
use crate::status::{BrokerStatus, Status};

mod layers;
pub mod system;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// HTTP responses by status code, counted by the HTTP workers.
#[derive(Debug, Default)]
pub struct HttpCounts(Mutex<BTreeMap<u16, u64>>);

impl HttpCounts {
    pub fn count(&self, status: u16) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(status)
            .or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<u16, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One metric family being written: `# HELP`, `# TYPE`, then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Family<'_> {
    /// One sample per entry (servos by name, rejections by reason),
    /// labelled `label` = the entry's name.
    fn sample_each<'s>(&mut self, label: &str, set: impl IntoIterator<Item = (&'s String, f64)>) {
        for (key, value) in set {
            self.sample(&[(label, key)], value);
        }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape_label(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
        self
    }
}

/// The exposition being built.
#[derive(Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &'static str, kind: &str, help: &str) -> Family<'_> {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        Family {
            out: &mut self.out,
            name,
        }
    }

    fn counter(&mut self, name: &'static str, help: &str, value: f64) {
        self.family(name, "counter", help).sample(&[], value);
    }

    fn gauge(&mut self, name: &'static str, help: &str, value: f64) {
        self.family(name, "gauge", help).sample(&[], value);
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

/// A state or role as `/api/status` spells it (its serde name).
fn label(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// A bitrate target; 0 before the encoder has one.
fn bitrate(bps: Option<u32>) -> f64 {
    bps.map_or(0.0, f64::from)
}

fn flag(on: bool) -> f64 {
    f64::from(u8::from(on))
}

/// Everything `/metrics` shows: `status` is `/api/status`'s document.
pub fn render(status: &Status, http: &HttpCounts, system: &system::Snapshot) -> String {
    let robot = &status.robot;
    let mut e = Exposition::default();
    e.gauge(
        "telepi_uptime_seconds",
        "Seconds since telepi started.",
        robot.uptime_s,
    );
    peers(&mut e, &robot.peers);
    video(&mut e, &robot.cameras);
    layers::render(&mut e, &robot.cameras, &robot.peers);
    control(&mut e, robot);
    audio(&mut e, &robot.audio);
    recording(&mut e, &robot.recording);
    if let Some(b) = &status.broker {
        broker(&mut e, b);
    }
    publish(&mut e, &robot.publish);
    let mut f = e.family(
        "telepi_http_responses_total",
        "counter",
        "HTTP responses sent, by status code.",
    );
    for (code, n) in http.snapshot() {
        f.sample(&[("code", &code.to_string())], n as f64);
    }
    system::render(&mut e, system);
    e.out
}

/// A peer's role label: `none` until its data channel joins.
fn role(peer: &Peer) -> String {
    peer.role.map_or_else(|| "none".into(), |r| label(&r))
}

fn peers(e: &mut Exposition, list: &[Peer]) {
    // Every role/state pair appears, at 0 too, so alerts see a drop to none.
    let mut by_kind: BTreeMap<(String, &str), u64> = BTreeMap::new();
    for role in ["operator", "viewer", "none"] {
        for state in ["connecting", "connected", "holding"] {
            by_kind.insert((role.into(), state), 0);
        }
    }
    for peer in list {
        *by_kind.entry((role(peer), peer.link.state)).or_default() += 1;
    }
    let mut f = e.family(
        "telepi_peers",
        "gauge",
        "Peers by role (none: its data channel has not joined yet) and transport state.",
    );
    for ((role, state), n) in by_kind {
        f.sample(&[("role", &role), ("state", state)], n as f64);
    }
    type PeerFigure = (
        &'static str,
        &'static str,
        &'static str,
        fn(&Peer) -> Option<f64>,
    );
    let figures: [PeerFigure; 4] = [
        (
            "telepi_peer_rtt_seconds",
            "gauge",
            "Each peer's round-trip time (str0m's stats, once a second).",
            |p| p.link.rtt_ms.map(|ms| ms / 1000.0),
        ),
        (
            "telepi_peer_bitrate_estimate_bits_per_second",
            "gauge",
            "Each peer's bandwidth estimate (TWCC/REMB).",
            |p| p.link.bitrate_estimate.map(|bps| bps as f64),
        ),
        (
            "telepi_peer_video_frames_sent_total",
            "counter",
            "Video frames written to each peer.",
            |p| Some(p.link.frames_sent as f64),
        ),
        (
            "telepi_peer_video_frames_skipped_total",
            "counter",
            "Video frames not written to each peer (before its first keyframe, or a failed write).",
            |p| Some(p.link.frames_skipped as f64),
        ),
    ];
    for (name, kind, help, figure) in figures {
        let mut f = e.family(name, kind, help);
        for peer in list {
            if let Some(value) = figure(peer) {
                let id = peer.link.id.to_string();
                f.sample(&[("peer", &id), ("role", &role(peer))], value);
            }
        }
    }
}

/// Every camera's figures, each sample labelled `camera` with its name.
fn video(e: &mut Exposition, cameras: &[Camera]) {
    let mut f = e.family(
        "telepi_video_info",
        "gauge",
        "Each camera and its encoder (always 1; the facts are labels).",
    );
    for camera in cameras {
        let (width, height, fps) = (
            camera.width.to_string(),
            camera.height.to_string(),
            camera.fps.to_string(),
        );
        let labels = [
            ("camera", camera.name.as_str()),
            ("source", &camera.source),
            ("encoder", camera.encoder),
            ("width", &width),
            ("height", &height),
            ("fps", &fps),
        ];
        f.sample(&labels, 1.0);
    }
    type CameraCounter = (&'static str, &'static str, fn(&Camera) -> u64);
    let counters: [CameraCounter; 6] = [
        (
            "telepi_video_frames_captured_total",
            "Frames read from each camera.",
            |c| c.counters.frames_captured,
        ),
        (
            "telepi_video_frames_encoded_total",
            "Frames encoded once for every peer (or passed through).",
            |c| c.counters.frames_encoded,
        ),
        (
            "telepi_video_keyframes_encoded_total",
            "Keyframes (IDR) among the encoded frames.",
            |c| c.counters.keyframes_encoded,
        ),
        (
            "telepi_video_frames_sent_total",
            "Frames written to peers (one frame to three peers counts three).",
            |c| c.frames_sent_to_peers,
        ),
        (
            "telepi_video_snapshot_wakes_total",
            "Snapshots that woke a camera nobody watched, for a fresh picture.",
            |c| c.counters.snapshot_wakes,
        ),
        (
            "telepi_video_frames_skipped_total",
            "Frames not written to a peer (before its first keyframe, or a failed write).",
            |c| c.frames_skipped_for_peers,
        ),
    ];
    for (metric, help, field) in counters {
        let mut f = e.family(metric, "counter", help);
        for camera in cameras {
            f.sample(&[("camera", &camera.name)], field(camera) as f64);
        }
    }
    let mut f = e.family(
        "telepi_video_frames_dropped_total",
        "counter",
        "Captured frames that never reached the peers, by where they were dropped.",
    );
    for camera in cameras {
        let c = &camera.counters;
        for (stage, n) in [
            ("encoder", c.frames_dropped_by_encoder),
            ("loop_behind", c.frames_dropped_loop_behind),
        ] {
            f.sample(&[("camera", &camera.name), ("stage", stage)], n as f64);
        }
    }
    let mut f = e.family(
        "telepi_video_keyframe_requests_total",
        "counter",
        "Keyframes asked of the encoder, by reason (a new peer, loss reported by PLI/FIR, a snapshot).",
    );
    for camera in cameras {
        let r = &camera.counters.keyframe_requests;
        for (reason, n) in [
            ("new_peer", r.new_peer),
            ("loss", r.loss),
            ("snapshot", r.snapshot),
        ] {
            f.sample(&[("camera", &camera.name), ("reason", reason)], n as f64);
        }
    }
    let mut f = e.family(
        "telepi_video_target_bitrate_bits_per_second",
        "gauge",
        "Each encoder's target bitrate (its share of the slowest peer's estimate).",
    );
    for camera in cameras {
        f.sample(&[("camera", &camera.name)], bitrate(camera.bitrate));
    }
}

fn control(e: &mut Exposition, robot: &LoopStatus) {
    e.counter(
        "telepi_datachannel_messages_accepted_total",
        "Data-channel messages from the pages that were acted on.",
        robot
            .messages_received
            .saturating_sub(robot.rejected_messages) as f64,
    );
    e.family(
        "telepi_datachannel_messages_rejected_total",
        "counter",
        "Data-channel messages refused, by reason.",
    )
    .sample_each(
        "reason",
        robot.rejections.iter().map(|(k, n)| (k, *n as f64)),
    );
    e.counter(
        "telepi_deadman_trips_total",
        "Times the deadman stopped moving motors because the operator went silent.",
        robot.deadman_trips as f64,
    );
    e.gauge(
        "telepi_operator_connected",
        "1 while a peer holds the operator role.",
        flag(robot.operator.is_some()),
    );
    let mut f = e.family(
        "telepi_motor_output",
        "gauge",
        "What each motor is driven at now, -1 (full reverse) to 1 (full forward).",
    );
    for (motor, value) in [("left", robot.motors.left), ("right", robot.motors.right)] {
        f.sample(&[("motor", motor)], f64::from(value));
    }
    e.family(
        "telepi_servo_position",
        "gauge",
        "Each servo's position, -1 to 1.",
    )
    .sample_each(
        "servo",
        robot.servos.iter().map(|(k, v)| (k, f64::from(*v))),
    );
}

fn audio(e: &mut Exposition, audio: &AudioStatus) {
    e.counter(
        "telepi_audio_packets_sent_total",
        "Microphone packets encoded for the listeners (each once, whatever their number).",
        audio.packets_sent as f64,
    );
    e.counter(
        "telepi_talkback_packets_total",
        "Push-to-talk packets received from the operator.",
        audio.talkback_packets as f64,
    );
}

fn recording(e: &mut Exposition, recording: &RecordingStatus) {
    e.gauge(
        "telepi_recording",
        "1 while the robot records.",
        flag(recording.on),
    );
    e.gauge(
        "telepi_recording_files",
        "Recordings on disk.",
        recording.files as f64,
    );
    e.gauge(
        "telepi_recording_bytes",
        "What the recordings on disk take, against quota_mb.",
        recording.bytes as f64,
    );
    e.counter(
        "telepi_recording_dropped_total",
        "Frames and audio packets the recorder had no room for (a slow disk).",
        recording.dropped as f64,
    );
}

fn broker(e: &mut Exposition, broker: &BrokerStatus) {
    e.gauge(
        "telepi_broker_connected",
        "1 while the MQTT broker link is up.",
        flag(broker.connected),
    );
    e.counter(
        "telepi_broker_offers_answered_total",
        "Offers answered through the broker.",
        broker.offers_answered as f64,
    );
    e.counter(
        "telepi_broker_requests_rejected_total",
        "Requests through the broker refused (malformed, unauthorised, flood).",
        broker.requests_rejected as f64,
    );
    e.counter(
        "telepi_broker_reconnects_total",
        "Times the broker link was lost or refused and retried.",
        broker.reconnects as f64,
    );
}

/// Each `[[publish]]` destination, labelled with its index and server
/// (not the path: it can hold a stream key).
fn publish(e: &mut Exposition, list: &[PublishStatus]) {
    if list.is_empty() {
        return;
    }
    let mut f = e.family(
        "telepi_publish_info",
        "gauge",
        "Each WHIP destination's state and last error (always 1; the facts are labels).",
    );
    for d in list {
        let n = d.destination.to_string();
        f.sample(
            &[
                ("destination", &n),
                ("server", &d.server),
                ("state", &label(&d.state)),
                ("last_error", d.last_error.as_deref().unwrap_or("")),
            ],
            1.0,
        );
    }
    type Figure = (
        &'static str,
        &'static str,
        &'static str,
        fn(&PublishStatus) -> f64,
    );
    let figures: [Figure; 4] = [
        (
            "telepi_publish_up",
            "gauge",
            "1 while publishing to the destination.",
            |d| flag(d.state == State::Publishing),
        ),
        (
            "telepi_publish_bitrate_bits_per_second",
            "gauge",
            "What goes to the destination (video, audio, RTCP), over the last second.",
            |d| d.bitrate_bps as f64,
        ),
        (
            "telepi_publish_sent_bytes_total",
            "counter",
            "UDP payload bytes sent to the destination.",
            |d| d.bytes_sent as f64,
        ),
        (
            "telepi_publish_sessions_total",
            "counter",
            "Times the destination was connected (1 + re-publishes).",
            |d| d.publishes as f64,
        ),
    ];
    for (name, kind, help, figure) in figures {
        let mut f = e.family(name, kind, help);
        for d in list {
            let n = d.destination.to_string();
            f.sample(&[("destination", &n), ("server", &d.server)], figure(d));
        }
    }
}

#[cfg(test)]
mod tests;
