use serde_json::{json, Value};

use super::*;
use crate::drive::testing::{Recorder, Write};
use crate::drive::Motors;

const A: PeerId = PeerId(1);
const B: PeerId = PeerId(2);
const C: PeerId = PeerId(3);

struct Harness {
    s: Session,
    motors: Recorder,
    t: Instant,
    sends: Vec<(PeerId, Value)>,
    events: Vec<Event>,
    /// Recording switched by peers, as the loop would get it.
    records: Vec<(PeerId, bool)>,
    /// Cameras switched by peers: (peer, camera, on).
    cameras: Vec<(PeerId, usize, bool)>,
}

fn harness(secret: Option<&str>) -> Harness {
    let drive_config = crate::drive::testing::config(0.0);
    let motors = Recorder::default();
    let drive = Drive::new(&drive_config, Box::new(motors.clone())).unwrap();
    let config = SessionConfig {
        operator_secret: secret.map(Into::into),
    };
    let t = Instant::now();
    Harness {
        s: Session::new(t, &config, drive),
        motors,
        t,
        sends: Vec::new(),
        events: Vec::new(),
        records: Vec::new(),
        cameras: Vec::new(),
    }
}

impl Harness {
    fn at(&self, ms: u64) -> Instant {
        self.t + Duration::from_millis(ms)
    }
    fn join(&mut self, peer: PeerId) {
        self.s.peer_joined(self.t, peer, None, false);
    }
    fn say(&mut self, peer: PeerId, text: &str) {
        self.s.message(self.t, peer, text);
    }
    fn drain(&mut self) {
        while let Some(output) = self.s.poll_output() {
            match output {
                SessionOutput::Send { peer, text } => self
                    .sends
                    .push((peer, serde_json::from_str(&text).unwrap())),
                SessionOutput::Event(event) => self.events.push(event),
                SessionOutput::Record { peer, on } => self.records.push((peer, on)),
                SessionOutput::Camera { peer, camera, on } => self.cameras.push((peer, camera, on)),
            }
        }
    }
    /// Every message sent since the last call, as (peer, JSON).
    fn sent(&mut self) -> Vec<(PeerId, Value)> {
        self.drain();
        std::mem::take(&mut self.sends)
    }
    /// Every event for the local API since the last call.
    fn events(&mut self) -> Vec<Event> {
        self.drain();
        std::mem::take(&mut self.events)
    }
    fn sent_to(&mut self, peer: PeerId) -> Vec<Value> {
        self.sent()
            .into_iter()
            .filter(|(p, _)| *p == peer)
            .map(|(_, v)| v)
            .collect()
    }
    fn motors(&self) -> Motors {
        self.s.status().motors
    }
    fn operator(&self) -> Option<PeerId> {
        self.s.status().operator
    }
    fn servos(&self) -> Value {
        serde_json::to_value(self.s.status().servos).unwrap()
    }
    fn moved(&self) -> bool {
        self.motors
            .writes()
            .iter()
            .any(|w| matches!(w, Write::Motors(m) if *m != Motors::default()))
    }
}

const GO: &str = r#"{"type":"drive","linear":1,"angular":0}"#;
const FULL: Motors = Motors {
    left: 1.0,
    right: 1.0,
};

fn error(v: &Value) -> bool {
    v["type"] == "error"
}

/// The operator role, with the resume token that comes with it.
fn operator_role(v: &Value) -> bool {
    v["type"] == "role"
        && v["role"] == "operator"
        && v["resume"].as_str().is_some_and(|r| r.len() == 32)
}

#[test]
fn ping_gets_pong_and_garbage_gets_error_without_dropping_the_peer() {
    let mut h = harness(None);
    h.join(A);
    h.sent();
    h.say(A, r#"{"type":"ping","t":7}"#);
    h.say(A, "{");
    let out = h.sent_to(A);
    assert_eq!(out[0], json!({"type":"pong","t":7}));
    assert!(
        out[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("bad message"),
        "{out:?}"
    );
    assert_eq!(h.s.status().rejected_messages, 1);
    assert_eq!(
        h.s.status().peers,
        [PeerRole {
            id: A,
            role: Role::Viewer
        }]
    );
}

#[test]
fn only_the_operator_switches_recording_and_everyone_sees_it_in_telemetry() {
    let mut h = harness(None);
    h.join(A);
    h.join(B);
    h.say(A, GO);
    h.say(B, r#"{"type":"record","on":true}"#);
    h.sent();
    assert_eq!(h.records, [], "a viewer cannot record");
    h.say(A, r#"{"type":"record","on":true}"#);
    h.sent();
    assert_eq!(h.records, [(A, true)]);
    h.s.set_recording(true);
    h.s.tick(h.at(200));
    let out = h.sent();
    assert!(out.iter().all(|(_, m)| m["recording"] == true), "{out:?}");
    assert_eq!(out.len(), 2, "both peers told");
    assert_eq!(h.s.status().rejections.total(), 1);
}

#[test]
fn join_and_leave_send_role_and_presence_to_everyone() {
    let mut h = harness(None);
    h.join(A);
    let viewer = json!({"type":"role","role":"viewer"});
    let only_a = json!({"type":"presence","peers":[{"id":1,"role":"viewer"}]});
    assert_eq!(h.sent(), [(A, viewer.clone()), (A, only_a.clone())]);
    h.join(B);
    let both =
        json!({"type":"presence","peers":[{"id":1,"role":"viewer"},{"id":2,"role":"viewer"}]});
    assert_eq!(h.sent(), [(B, viewer), (A, both.clone()), (B, both)]);
    h.s.peer_left(h.t, B);
    assert_eq!(h.sent(), [(A, only_a)]);
    h.s.peer_left(h.t, B);
    assert_eq!(h.sent(), [], "leaving twice is a no-op");
}

#[test]
fn without_a_secret_the_first_drive_takes_the_free_role() {
    let mut h = harness(None);
    h.join(A);
    h.join(B);
    h.sent();
    h.say(A, GO);
    assert_eq!(h.operator(), Some(A));
    assert_eq!(h.motors(), FULL);
    let out = h.sent();
    assert!(
        out.iter().any(|(p, m)| *p == A && operator_role(m)),
        "{out:?}"
    );
    let presence =
        json!({"type":"presence","peers":[{"id":1,"role":"operator"},{"id":2,"role":"viewer"}]});
    assert!(out.contains(&(B, presence)), "{out:?}");

    h.say(B, r#"{"type":"drive","linear":-1,"angular":0}"#);
    assert_eq!(h.motors(), FULL, "a viewer's drive changes nothing");
    assert_eq!(h.operator(), Some(A));
    let reply = h.sent_to(B);
    assert!(
        error(&reply[0])
            && reply[0]["reason"]
                .as_str()
                .unwrap()
                .contains("peer 1 is the operator")
    );
}

#[test]
fn without_a_secret_claim_is_first_come_and_release_frees_it() {
    let mut h = harness(None);
    h.join(A);
    h.join(B);
    h.say(A, r#"{"type":"claim"}"#);
    h.say(B, r#"{"type":"claim"}"#);
    assert_eq!(h.operator(), Some(A));
    h.say(A, GO);
    h.sent();
    h.say(A, r#"{"type":"release"}"#);
    assert_eq!(h.operator(), None);
    assert_eq!(h.motors(), Motors::default(), "releasing stops the motors");
    assert_eq!(h.sent_to(A)[0], json!({"type":"role","role":"viewer"}));
    h.say(A, r#"{"type":"release"}"#);
    assert!(error(&h.sent_to(A)[0]));
    h.say(B, r#"{"type":"claim"}"#);
    assert_eq!(h.operator(), Some(B));
}

#[test]
fn with_a_secret_only_the_secret_claims_and_it_takes_over() {
    let mut h = harness(Some("s3cret"));
    h.join(A);
    h.join(B);
    h.sent();
    h.say(A, GO);
    h.say(A, r#"{"type":"claim"}"#);
    h.say(A, r#"{"type":"claim","secret":"guess"}"#);
    assert_eq!(h.operator(), None);
    assert!(!h.moved());
    assert_eq!(h.sent_to(A).iter().filter(|v| error(v)).count(), 3);

    h.say(A, r#"{"type":"claim","secret":"s3cret"}"#);
    h.say(A, GO);
    assert_eq!((h.operator(), h.motors()), (Some(A), FULL));
    h.sent();
    h.say(B, r#"{"type":"claim","secret":"s3cret"}"#);
    assert_eq!(h.operator(), Some(B));
    assert_eq!(h.motors(), Motors::default(), "a takeover stops the motors");
    assert_eq!(h.sent_to(A)[0], json!({"type":"role","role":"viewer"}));
    h.say(A, GO);
    assert_eq!(
        h.motors(),
        Motors::default(),
        "the old operator is a viewer now"
    );
}

#[test]
fn with_a_secret_joining_with_it_makes_the_operator() {
    let mut h = harness(Some("s3cret"));
    assert!(h.s.authorize(Some("s3cret")));
    assert!(!h.s.authorize(Some("s3cre")));
    assert!(!h.s.authorize(None));
    h.s.peer_joined(h.t, A, Some("nope"), false);
    assert_eq!(h.operator(), None);
    let out = h.sent_to(A);
    assert!(
        error(&out[0]) && out[1] == json!({"type":"role","role":"viewer"}),
        "{out:?}"
    );
    h.s.peer_joined(h.t, B, Some("s3cret"), false);
    assert_eq!(h.operator(), Some(B));
    assert!(operator_role(&h.sent_to(B)[0]));
}

#[test]
fn a_view_only_peer_never_operates_even_with_the_secret_or_a_free_role() {
    for secret in [None, Some("s3cret")] {
        let mut h = harness(secret);
        h.s.peer_joined(h.t, A, secret, true);
        h.say(A, GO);
        h.say(
            A,
            &format!(r#"{{"type":"claim","secret":"{}"}}"#, secret.unwrap_or("")),
        );
        assert_eq!(h.operator(), None, "secret {secret:?}");
        assert!(!h.moved());
        let out = h.sent_to(A);
        assert_eq!(out[0], json!({"type":"role","role":"viewer"}));
        assert!(out
            .iter()
            .filter(|v| error(v))
            .all(|v| v["reason"].as_str().unwrap().contains("view-only")));
        h.join(B);
        h.say(B, r#"{"type":"claim","secret":"s3cret"}"#);
        assert_eq!(h.operator(), Some(B), "others still can");
        h.say(B, GO);
        assert_eq!(h.motors(), FULL);
        h.say(A, r#"{"type":"stop"}"#);
        assert_eq!(h.motors(), Motors::default(), "and its stop still counts");
    }
}

#[test]
fn no_secret_authorizes_everyone_and_an_empty_secret_is_none() {
    let mut h = harness(None);
    assert!(h.s.authorize(None));
    h.s.peer_joined(h.t, A, Some("whatever"), false);
    assert_eq!(
        h.operator(),
        None,
        "no secret configured: joining claims nothing"
    );
    let mut h = harness(Some(""));
    assert!(h.s.authorize(Some("anything")));
    h.join(A);
    h.say(A, GO);
    assert_eq!(h.operator(), Some(A));
}

/// A and B joined, A operates at full speed; nothing sent pending.
fn a_driving_b_watching() -> Harness {
    let mut h = harness(None);
    h.join(A);
    h.join(B);
    h.say(A, GO);
    h.sent();
    h
}

#[test]
fn operator_leaving_stops_motors_and_frees_the_role() {
    let mut h = a_driving_b_watching();
    h.s.peer_left(h.at(50), A);
    assert_eq!((h.operator(), h.motors()), (None, Motors::default()));
    assert_eq!(
        h.sent(),
        [(
            B,
            json!({"type":"presence","peers":[{"id":2,"role":"viewer"}]})
        )]
    );
    h.say(B, GO);
    assert_eq!(h.operator(), Some(B));
}

#[test]
fn deadman_stops_exactly_at_the_deadline() {
    let mut h = harness(None);
    h.join(A);
    h.s.message(h.at(1000), A, GO);
    assert_eq!(
        h.s.next_deadline(),
        Some(h.at(200)),
        "telemetry comes first"
    );
    h.s.tick(h.at(200));
    assert_eq!(h.s.next_deadline(), Some(h.at(400)));
    h.s.tick(h.at(1299));
    assert_eq!(h.motors(), FULL);
    assert_eq!(h.s.next_deadline(), Some(h.at(1300)));
    h.s.tick(h.at(1300));
    assert_eq!(h.motors(), Motors::default());
    assert_eq!(h.operator(), Some(A), "the deadman keeps the role");
}

#[test]
fn stop_from_a_viewer_or_a_stranger_is_honoured() {
    let mut h = harness(None);
    h.join(A);
    h.join(B);
    h.say(A, GO);
    h.say(B, r#"{"type":"stop"}"#);
    assert_eq!(h.motors(), Motors::default());
    h.say(A, GO);
    h.say(C, r#"{"type":"stop"}"#); // never joined
    assert_eq!(h.motors(), Motors::default());
    h.say(A, GO);
    h.s.stop_all(h.t);
    assert_eq!(h.motors(), Motors::default());
}

#[test]
fn farewells_reach_the_peers_named() {
    let mut h = harness(None);
    h.join(A);
    h.join(B);
    h.sent();
    h.s.farewell(A, "ejected", false);
    let bye = json!({"type":"bye","reason":"ejected","reconnect":false});
    assert_eq!(h.sent(), vec![(A, bye)]);
    h.s.farewell_all("shutting down");
    assert_eq!(h.sent().len(), 2);
}

#[test]
fn a_bystanders_stop_holds_until_the_operator_lets_go() {
    let mut h = harness(None);
    h.join(A);
    h.join(B);
    h.say(A, GO);
    assert_eq!(h.motors(), FULL);
    h.sent();
    h.say(B, r#"{"type":"stop"}"#);
    assert!(h.sent_to(A).iter().any(error), "the operator is told why");
    h.say(A, GO); // the joystick is still held
    assert_eq!(h.motors(), Motors::default());
    h.say(A, r#"{"type":"drive","linear":0,"angular":0}"#); // released
    h.say(A, GO);
    assert_eq!(h.motors(), FULL, "re-armed by letting go");
    // The operator's own stop (releasing the stick) doesn't latch.
    h.say(A, r#"{"type":"stop"}"#);
    h.say(A, GO);
    assert_eq!(h.motors(), FULL);
}

#[test]
fn malformed_messages_never_move_a_motor_and_are_counted() {
    let mut h = harness(None);
    h.join(A);
    h.say(A, r#"{"type":"claim"}"#);
    h.sent();
    let huge = format!(
        r#"{{"type":"drive","linear":1,"angular":0,"pad":"{}"}}"#,
        "x".repeat(5000)
    );
    let bad = [
        r#"{"type":"drive","linear":NaN,"angular":0}"#,
        r#"{"type":"drive","linear":Infinity,"angular":0}"#,
        r#"{"type":"drive","linear":1e999,"angular":0}"#,
        r#"{"type":"drive","linear":"1","angular":0}"#,
        r#"{"type":"drive","linear":1}"#,
        r#"{"type":"drive","angular":1}"#,
        r#"{"type":"drive"}"#,
        r#"{"type":"drive","linear":[1],"angular":0}"#,
        r#"{"type":"servo","name":"pan","value":"left"}"#,
        r#"{"type":"servo","name":"tilt","value":1}"#,
        r#"{"type":"fly","linear":1}"#,
        r#"{"linear":1,"angular":1}"#,
        r#"["drive",1,0]"#,
        "",
        &huge,
    ];
    for text in bad {
        h.say(A, text);
    }
    assert!(!h.moved(), "{:?}", h.motors.writes());
    assert_eq!(h.servos(), json!({"pan":0.0}));
    assert_eq!(h.s.status().rejected_messages, bad.len() as u64);
    let replies = h.sent_to(A);
    assert_eq!(replies.len(), bad.len());
    assert!(replies.iter().all(error), "{replies:?}");
    assert!(replies.last().unwrap()["reason"]
        .as_str()
        .unwrap()
        .contains("too large"));
}

#[test]
fn out_of_range_numbers_are_clamped() {
    let mut h = harness(None);
    h.join(A);
    h.say(A, r#"{"type":"drive","linear":40,"angular":0}"#);
    assert_eq!(h.motors(), FULL);
    h.say(A, r#"{"type":"servo","name":"pan","value":-7}"#);
    assert_eq!(h.servos(), json!({"pan":-1.0}));
    assert!(h.motors.writes().contains(&Write::Servo(0, 1000)));
}

/// Issue 19: `1e308` or `f64::MAX` must drive like `1`, not stop a motor
/// (an f32 infinity) and spin the robot on the other axis.
#[test]
fn extreme_numbers_drive_like_their_clamped_values() {
    let extremes = [
        ("1e308", "1"),
        ("-1e308", "-1"),
        ("1.7976931348623157e308", "1"),
        ("-1.7976931348623157e308", "-1"),
        ("1e300", "1"),
        ("5e-324", "0"),
        ("-0.0", "0"),
    ];
    for (huge, clamped) in extremes {
        for (other, t) in [("0", 0), ("0.3", 1)] {
            let motors = |pair: [&str; 2]| {
                let mut h = harness(None);
                h.join(A);
                let msg = format!(
                    r#"{{"type":"drive","linear":{},"angular":{}}}"#,
                    pair[0], pair[1]
                );
                h.say(A, &msg);
                (h.motors(), h.events())
            };
            let [a, b] = if t == 0 { [huge, other] } else { [other, huge] };
            let [ca, cb] = if t == 0 {
                [clamped, other]
            } else {
                [other, clamped]
            };
            assert_eq!(
                motors([a, b]),
                motors([ca, cb]),
                "drive {a}, {b} against {ca}, {cb}"
            );
        }
        let servo = |value: &str| {
            let mut h = harness(None);
            h.join(A);
            h.say(A, r#"{"type":"claim"}"#);
            h.say(
                A,
                &format!(r#"{{"type":"servo","name":"pan","value":{value}}}"#),
            );
            (h.servos().to_string(), h.motors.writes(), h.events())
        };
        assert_eq!(servo(huge), servo(clamped), "servo {huge}");
    }
}

#[test]
fn servo_is_for_the_operator_only() {
    let mut h = harness(None);
    h.join(A);
    h.say(A, r#"{"type":"servo","name":"pan","value":0.5}"#);
    assert_eq!(h.operator(), None, "servo does not claim");
    assert_eq!(h.servos(), json!({"pan":0.0}));
    assert!(error(&h.sent_to(A).pop().unwrap()));
}

#[test]
fn stale_and_duplicate_seqs_are_dropped() {
    let mut h = harness(None);
    h.join(A);
    h.say(A, r#"{"type":"drive","linear":0.5,"angular":0,"seq":5}"#);
    h.say(A, r#"{"type":"drive","linear":1,"angular":0,"seq":4}"#);
    h.say(A, r#"{"type":"drive","linear":1,"angular":0,"seq":5}"#);
    assert_eq!(
        h.motors(),
        Motors {
            left: 0.5,
            right: 0.5
        }
    );
    h.say(A, r#"{"type":"drive","linear":1,"angular":0}"#);
    assert_eq!(h.motors(), FULL, "no seq: always applied");
    h.say(A, r#"{"type":"drive","linear":0,"angular":0,"seq":6}"#);
    assert_eq!(h.motors(), Motors::default());
    assert_eq!(h.s.status().rejected_messages, 0, "stale is not malformed");
}

#[test]
fn telemetry_goes_to_everyone_at_5hz_while_anyone_listens() {
    let mut h = harness(None);
    assert_eq!(h.s.next_deadline(), None);
    h.join(A);
    h.join(B);
    h.s.set_cpu_temp(Some(48.5));
    h.say(A, GO);
    h.sent();
    h.s.tick(h.at(199));
    assert_eq!(h.sent(), []);
    h.s.tick(h.at(200));
    let out = h.sent();
    assert_eq!(out.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [A, B]);
    assert_eq!(
        out[0].1,
        json!({"type":"telemetry","motors":{"left":1.0,"right":1.0},"servos":{"pan":0.0},
               "operator":1,"uptime_s":0.2,"cpu_temp_c":48.5,"rejected_messages":0,
               "recording":false})
    );
    // Late by 150 ms: one message, and the cadence keeps its phase.
    h.s.tick(h.at(550));
    assert_eq!(h.sent().len(), 2);
    assert_eq!(h.s.next_deadline(), Some(h.at(600)));
    h.s.peer_left(h.t, A);
    h.s.peer_left(h.t, B);
    assert_eq!(h.s.next_deadline(), None, "nobody listens, nothing moves");
}

#[test]
fn a_full_session_refuses_newcomers_but_still_obeys_their_stop() {
    let mut h = harness(None);
    for id in 0..MAX_PEERS as u64 {
        h.join(PeerId(100 + id));
    }
    h.say(PeerId(100), GO);
    h.sent();
    h.join(A);
    assert!(error(&h.sent_to(A)[0]));
    h.say(A, GO);
    assert_eq!(h.operator(), Some(PeerId(100)));
    h.say(A, r#"{"type":"stop"}"#);
    assert_eq!(h.motors(), Motors::default());
}

#[test]
fn status_serializes_for_the_api() {
    let mut h = harness(None);
    h.join(A);
    h.join(B);
    h.say(B, GO);
    h.say(A, GO);
    h.say(A, "{nope");
    let status = serde_json::to_value(h.s.status()).unwrap();
    assert_eq!(
        status,
        json!({"operator":2,"motors":{"left":1.0,"right":1.0},"servos":{"pan":0.0},
               "peers":[{"id":1,"role":"viewer"},{"id":2,"role":"operator"}],
               "rejected_messages":2,"messages_received":3,
               "rejections":{"malformed":1,"not_joined":0,"not_operator":1,"view_only":0,
                             "wrong_secret":0,"invalid":0,"stale":0},
               "deadman_trips":0,"backend":"recorder","link":null,"readings":{}})
    );
}

/// Custom controls, readings and events for programs on the local API.
mod api;
mod blip;

#[test]
fn a_peer_turns_a_camera_off_and_on_by_name_and_an_unknown_name_is_an_error() {
    let mut h = harness(None);
    h.s = h.s.with_cameras(vec!["front".into(), "arm".into()]);
    h.join(A);
    let joined = h.sent_to(A);
    assert!(joined.contains(&json!({"type": "cameras", "names": ["front", "arm"]})));
    h.say(A, r#"{"type":"camera","name":"arm","on":false}"#);
    h.say(A, r#"{"type":"camera","name":"arm","on":true}"#);
    h.say(A, r#"{"type":"camera","name":"tail","on":false}"#);
    h.drain();
    let switches: Vec<_> = std::mem::take(&mut h.cameras);
    assert_eq!(switches, [(A, 1, false), (A, 1, true)]);
    let errors = h.sent_to(A);
    assert_eq!(
        errors,
        [
            json!({"type": "error", "reason": "camera: no camera \"tail\" (this robot has: front, arm)"})
        ]
    );
    assert_eq!(h.s.status().rejected_messages, 1);
}
