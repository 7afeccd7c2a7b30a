//! `GET /metrics`: the robot's figures in Prometheus' text exposition format
//! (version 0.0.4). A view, not a second bookkeeping: everything comes from
//! the same snapshot as `/api/status` (the network loop's counters), the HTTP
//! layer's response counts and the process's own `/proc` and `/sys` files,
//! rendered off the loop by the HTTP worker. Rendering is pure (`render`), so
//! it is tested with a status document and no running robot.
//!
//! Names follow Prometheus' conventions: `telepi_` prefix, `_total` for
//! counters, base units (seconds, bytes, bits per second); the process
//! figures use the standard `process_` names so existing dashboards work.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use serde_json::Value;

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
    /// One sample per entry of a JSON object, labelled `label` = the entry's key.
    fn sample_each(&mut self, label: &str, object: &Value) {
        for (key, value) in object.as_object().into_iter().flatten() {
            self.sample(&[(label, key)], num(value));
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

    /// One unlabelled counter per (name, help, field of `object`).
    fn counters_from(&mut self, object: &Value, table: &[(&'static str, &str, &str)]) {
        for (name, help, field) in table {
            self.counter(name, help, num(&object[*field]));
        }
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

/// A number from the status document; absent or null is 0 (a counter that
/// has not started, a peer without an estimate yet).
fn num(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

/// Everything `/metrics` shows: `status` is `/api/status`'s document.
pub fn render(status: &Value, http: &HttpCounts, system: &system::Snapshot) -> String {
    let mut e = Exposition::default();
    e.gauge(
        "telepi_uptime_seconds",
        "Seconds since telepi started.",
        num(&status["uptime_s"]),
    );
    peers(&mut e, status);
    video(&mut e, &status["cameras"]);
    layers::render(&mut e, status);
    control(&mut e, status);
    audio(&mut e, &status["audio"]);
    recording(&mut e, &status["recording"]);
    broker(&mut e, &status["broker"]);
    publish(&mut e, &status["publish"]);
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

fn peers(e: &mut Exposition, status: &Value) {
    let list = status["peers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    // Every role/state pair appears, at 0 too, so alerts see a drop to none.
    let mut by_kind: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for role in ["operator", "viewer", "none"] {
        for state in ["connecting", "connected", "holding"] {
            by_kind.insert((role, state), 0);
        }
    }
    for peer in list {
        let role = peer["role"].as_str().unwrap_or("none");
        let state = peer["state"].as_str().unwrap_or("connecting");
        *by_kind.entry((role, state)).or_default() += 1;
    }
    let mut f = e.family(
        "telepi_peers",
        "gauge",
        "Peers by role (none: its data channel has not joined yet) and transport state.",
    );
    for ((role, state), n) in by_kind {
        f.sample(&[("role", role), ("state", state)], n as f64);
    }
    type PeerFigure = (
        &'static str,
        &'static str,
        &'static str,
        fn(&Value) -> Option<f64>,
    );
    let figures: [PeerFigure; 4] = [
        (
            "telepi_peer_rtt_seconds",
            "gauge",
            "Each peer's round-trip time (str0m's stats, once a second).",
            |p| p["rtt_ms"].as_f64().map(|ms| ms / 1000.0),
        ),
        (
            "telepi_peer_bitrate_estimate_bits_per_second",
            "gauge",
            "Each peer's bandwidth estimate (TWCC/REMB).",
            |p| p["bitrate_estimate"].as_f64(),
        ),
        (
            "telepi_peer_video_frames_sent_total",
            "counter",
            "Video frames written to each peer.",
            |p| p["frames_sent"].as_f64(),
        ),
        (
            "telepi_peer_video_frames_skipped_total",
            "counter",
            "Video frames not written to each peer (before its first keyframe, or a failed write).",
            |p| p["frames_skipped"].as_f64(),
        ),
    ];
    for (name, kind, help, figure) in figures {
        let mut f = e.family(name, kind, help);
        for peer in list {
            if let Some(value) = figure(peer) {
                let id = peer["id"].to_string();
                let role = peer["role"].as_str().unwrap_or("none");
                f.sample(&[("peer", &id), ("role", role)], value);
            }
        }
    }
}

/// Every camera's figures, each sample labelled `camera` with its name.
fn video(e: &mut Exposition, cameras: &Value) {
    let cameras = cameras.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let name = |camera: &Value| camera["name"].as_str().unwrap_or("").to_string();
    let mut f = e.family(
        "telepi_video_info",
        "gauge",
        "Each camera and its encoder (always 1; the facts are labels).",
    );
    for camera in cameras {
        let (width, height, fps) = (
            camera["width"].to_string(),
            camera["height"].to_string(),
            camera["fps"].to_string(),
        );
        let labels = [
            ("camera", name(camera)),
            ("source", camera["source"].as_str().unwrap_or("").into()),
            ("encoder", camera["encoder"].as_str().unwrap_or("").into()),
            ("width", width),
            ("height", height),
            ("fps", fps),
        ];
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        f.sample(&labels, 1.0);
    }
    let counters = [
        (
            "telepi_video_frames_captured_total",
            "Frames read from each camera.",
            "frames_captured",
        ),
        (
            "telepi_video_frames_encoded_total",
            "Frames encoded once for every peer (or passed through).",
            "frames_encoded",
        ),
        (
            "telepi_video_keyframes_encoded_total",
            "Keyframes (IDR) among the encoded frames.",
            "keyframes_encoded",
        ),
        (
            "telepi_video_frames_sent_total",
            "Frames written to peers (one frame to three peers counts three).",
            "frames_sent_to_peers",
        ),
        (
            "telepi_video_snapshot_wakes_total",
            "Snapshots that woke a camera nobody watched, for a fresh picture.",
            "snapshot_wakes",
        ),
        (
            "telepi_video_frames_skipped_total",
            "Frames not written to a peer (before its first keyframe, or a failed write).",
            "frames_skipped_for_peers",
        ),
    ];
    for (metric, help, field) in counters {
        let mut f = e.family(metric, "counter", help);
        for camera in cameras {
            f.sample(&[("camera", &name(camera))], num(&camera[field]));
        }
    }
    let mut f = e.family(
        "telepi_video_frames_dropped_total",
        "counter",
        "Captured frames that never reached the peers, by where they were dropped.",
    );
    for camera in cameras {
        let name = name(camera);
        for (stage, field) in [
            ("encoder", "frames_dropped_by_encoder"),
            ("loop_behind", "frames_dropped_loop_behind"),
        ] {
            f.sample(&[("camera", &name), ("stage", stage)], num(&camera[field]));
        }
    }
    let mut f = e.family(
        "telepi_video_keyframe_requests_total",
        "counter",
        "Keyframes asked of the encoder, by reason (a new peer, loss reported by PLI/FIR, a snapshot).",
    );
    for camera in cameras {
        let name = name(camera);
        for reason in ["new_peer", "loss", "snapshot"] {
            let requests = num(&camera["keyframe_requests"][reason]);
            f.sample(&[("camera", &name), ("reason", reason)], requests);
        }
    }
    let mut f = e.family(
        "telepi_video_target_bitrate_bits_per_second",
        "gauge",
        "Each encoder's target bitrate (its share of the slowest peer's estimate).",
    );
    for camera in cameras {
        f.sample(&[("camera", &name(camera))], num(&camera["bitrate"]));
    }
}

fn control(e: &mut Exposition, status: &Value) {
    let received = num(&status["messages_received"]);
    let rejected = num(&status["rejected_messages"]);
    e.counter(
        "telepi_datachannel_messages_accepted_total",
        "Data-channel messages from the pages that were acted on.",
        (received - rejected).max(0.0),
    );
    e.family(
        "telepi_datachannel_messages_rejected_total",
        "counter",
        "Data-channel messages refused, by reason.",
    )
    .sample_each("reason", &status["rejections"]);
    e.counter(
        "telepi_deadman_trips_total",
        "Times the deadman stopped moving motors because the operator went silent.",
        num(&status["deadman_trips"]),
    );
    e.gauge(
        "telepi_operator_connected",
        "1 while a peer holds the operator role.",
        if status["operator"].is_null() {
            0.0
        } else {
            1.0
        },
    );
    let mut f = e.family(
        "telepi_motor_output",
        "gauge",
        "What each motor is driven at now, -1 (full reverse) to 1 (full forward).",
    );
    for motor in ["left", "right"] {
        f.sample(&[("motor", motor)], num(&status["motors"][motor]));
    }
    e.family(
        "telepi_servo_position",
        "gauge",
        "Each servo's position, -1 to 1.",
    )
    .sample_each("servo", &status["servos"]);
}

fn audio(e: &mut Exposition, audio: &Value) {
    e.counters_from(
        audio,
        &[
            (
                "telepi_audio_packets_sent_total",
                "Microphone packets encoded for the listeners (each once, whatever their number).",
                "packets_sent",
            ),
            (
                "telepi_talkback_packets_total",
                "Push-to-talk packets received from the operator.",
                "talkback_packets",
            ),
        ],
    );
}

fn recording(e: &mut Exposition, recording: &Value) {
    let on = if recording["on"] == true { 1.0 } else { 0.0 };
    e.gauge("telepi_recording", "1 while the robot records.", on);
    e.gauge(
        "telepi_recording_files",
        "Recordings on disk.",
        num(&recording["files"]),
    );
    e.gauge(
        "telepi_recording_bytes",
        "What the recordings on disk take, against quota_mb.",
        num(&recording["bytes"]),
    );
    e.counter(
        "telepi_recording_dropped_total",
        "Frames and audio packets the recorder had no room for (a slow disk).",
        num(&recording["dropped"]),
    );
}

fn broker(e: &mut Exposition, broker: &Value) {
    if broker.is_null() {
        return;
    }
    e.gauge(
        "telepi_broker_connected",
        "1 while the MQTT broker link is up.",
        if broker["connected"] == true {
            1.0
        } else {
            0.0
        },
    );
    e.counters_from(
        broker,
        &[
            (
                "telepi_broker_offers_answered_total",
                "Offers answered through the broker.",
                "offers_answered",
            ),
            (
                "telepi_broker_requests_rejected_total",
                "Requests through the broker refused (malformed, unauthorised, flood).",
                "requests_rejected",
            ),
            (
                "telepi_broker_reconnects_total",
                "Times the broker link was lost or refused and retried.",
                "reconnects",
            ),
        ],
    );
}

/// Each `[[publish]]` destination, labelled with its index and server
/// (not the path: it can hold a stream key).
fn publish(e: &mut Exposition, destinations: &Value) {
    let list = destinations.as_array().map(Vec::as_slice).unwrap_or(&[]);
    if list.is_empty() {
        return;
    }
    let labels = |d: &Value| {
        let server = d["server"].as_str().unwrap_or("").to_string();
        [d["destination"].to_string(), server]
    };
    let mut f = e.family(
        "telepi_publish_info",
        "gauge",
        "Each WHIP destination's state and last error (always 1; the facts are labels).",
    );
    for d in list {
        let state = d["state"].as_str().unwrap_or("");
        let error = d["last_error"].as_str().unwrap_or("");
        let [n, server] = labels(d);
        let labels = [("destination", n.as_str()), ("server", &server)];
        f.sample(
            &[
                labels[0],
                labels[1],
                ("state", state),
                ("last_error", error),
            ],
            1.0,
        );
    }
    let figures: [(&'static str, &'static str, &'static str, &'static str); 4] = [
        (
            "telepi_publish_up",
            "gauge",
            "1 while publishing to the destination.",
            "",
        ),
        (
            "telepi_publish_bitrate_bits_per_second",
            "gauge",
            "What goes to the destination (video, audio, RTCP), over the last second.",
            "bitrate_bps",
        ),
        (
            "telepi_publish_sent_bytes_total",
            "counter",
            "UDP payload bytes sent to the destination.",
            "bytes_sent",
        ),
        (
            "telepi_publish_sessions_total",
            "counter",
            "Times the destination was connected (1 + re-publishes).",
            "publishes",
        ),
    ];
    for (name, kind, help, field) in figures {
        let mut f = e.family(name, kind, help);
        for d in list {
            let value = match field {
                "" => f64::from(u8::from(d["state"] == "publishing")),
                field => num(&d[field]),
            };
            let [n, server] = labels(d);
            f.sample(&[("destination", &n), ("server", &server)], value);
        }
    }
}

#[cfg(test)]
mod tests;
