use serde_json::{json, Value};

use super::*;
use crate::controls::{ControlConfig, ControlKind};
use crate::peer::PeerId;
use crate::peer::{PeerRole, Role};

const TIMEOUT: Duration = Duration::from_millis(1000);

struct Harness {
    api: Api,
    t: Instant,
}

fn harness(backend: &'static str) -> Harness {
    let horn = ControlConfig {
        name: "horn".into(),
        kind: ControlKind::Button,
        label: None,
        key: None,
        min: None,
        max: None,
        step: None,
    };
    let controls = Arc::new(Controls::new(&[horn], &[]).unwrap());
    let limits = Limits {
        max_clients: 3,
        queue: 8,
        motor_timeout: TIMEOUT,
    };
    Harness {
        api: Api::new(limits, backend, controls),
        t: Instant::now(),
    }
}

impl Harness {
    fn at(&self, ms: u64) -> Instant {
        self.t + Duration::from_millis(ms)
    }
    fn connect(&mut self) -> ClientId {
        let id = self.api.connect(self.t).unwrap();
        self.lines(id);
        id
    }
    fn say(&mut self, id: ClientId, line: &str) {
        self.say_at(0, id, line);
    }
    fn say_at(&mut self, ms: u64, id: ClientId, line: &str) {
        self.api
            .receive(self.at(ms), id, format!("{line}\n").as_bytes());
    }
    /// Every line queued for `id` since the last call, parsed.
    fn lines(&mut self, id: ClientId) -> Vec<Value> {
        std::iter::from_fn(|| self.api.pop_line(id))
            .map(|l| serde_json::from_str(&l).unwrap())
            .collect()
    }
    fn outputs(&mut self) -> Vec<ApiOutput> {
        std::iter::from_fn(|| self.api.poll_output()).collect()
    }
}

fn drive_event() -> Event {
    Event::Drive {
        peer: PeerId(1),
        role: Role::Operator,
        linear: 1.0,
        angular: 0.0,
    }
}

#[test]
fn a_program_is_welcomed_and_the_table_has_a_limit() {
    let mut h = harness("sim");
    let id = h.api.connect(h.t).unwrap();
    let welcome = &h.lines(id)[0];
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["client"], 1);
    assert_eq!(welcome["drive_backend"], "sim");
    assert_eq!(
        welcome["events"],
        json!(["drive", "servo", "stop", "custom", "presence"])
    );
    assert_eq!(welcome["controls"][0]["name"], "horn");
    assert_eq!(welcome["readings"], json!([]));
    h.connect();
    h.connect();
    let refused = h.api.connect(h.t).unwrap_err();
    assert!(refused.contains("too many programs (limit 3"), "{refused}");
    h.api.disconnect(id);
    h.connect();
}

#[test]
fn lines_split_anywhere_and_overlong_ones_are_skipped_with_an_error() {
    let mut h = harness("sim");
    let id = h.connect();
    for chunk in [
        &b"{\"type\":\"pi"[..],
        b"ng\",\"t\":1}\r\n\n  \n{\"type\":",
        b"\"ping\",\"t\":2}\n",
    ] {
        h.api.receive(h.t, id, chunk);
    }
    assert_eq!(
        h.lines(id),
        [json!({"type":"pong","t":1}), json!({"type":"pong","t":2})]
    );
    let long = vec![b'x'; message::MAX_LINE_BYTES + 1];
    h.api.receive(h.t, id, &long);
    h.api.receive(
        h.t,
        id,
        b"still the long line\n{\"type\":\"ping\",\"t\":3}\n",
    );
    let replies = h.lines(id);
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(replies[0]["reason"].as_str().unwrap().contains("line over"));
    assert_eq!(replies[1], json!({"type":"pong","t":3}));
    // Over the limit with its newline in the same chunk: refused as well.
    let mut exact = vec![b' '; message::MAX_LINE_BYTES + 1];
    exact.push(b'\n');
    h.api.receive(h.t, id, &exact);
    assert_eq!(h.lines(id).len(), 1);
}

#[test]
fn garbage_gets_an_error_and_is_counted() {
    let mut h = harness("sim");
    let id = h.connect();
    for bad in [
        "drive forward",
        r#"{"type":"fly"}"#,
        r#"{"type":"subscribe","events":["video"]}"#,
        r#"{"type":"reading","name":"a b","value":1}"#,
        r#"{"type":"reading","name":"v","value":[1]}"#,
        r#"{"type":"custom","name":"","value":1}"#,
        r#"{"type":"hello","name":""}"#,
    ] {
        h.say(id, bad);
    }
    let replies = h.lines(id);
    assert_eq!(replies.len(), 7);
    assert!(replies.iter().all(|r| r["type"] == "error"), "{replies:?}");
    assert_eq!(h.api.status()["clients"][0]["rejected"], 7);
    assert_eq!(h.outputs(), []);
}

/// Issue 19: before any page joined, subscribing gave no presence at all.
#[test]
fn presence_before_any_page_joined_is_nobody() {
    let mut h = harness("sim");
    let a = h.connect();
    h.say(a, r#"{"type":"subscribe","events":["presence"]}"#);
    assert_eq!(
        h.lines(a),
        [
            json!({"type":"subscribed","events":["presence"]}),
            json!({"type":"presence","peers":[],"operator":null})
        ]
    );
}

#[test]
fn events_go_only_to_subscribers_and_presence_is_caught_up() {
    let mut h = harness("sim");
    let (a, b) = (h.connect(), h.connect());
    h.say(a, r#"{"type":"subscribe","events":["drive","stop"]}"#);
    assert_eq!(
        h.lines(a),
        [json!({"type":"subscribed","events":["drive","stop"]})]
    );
    h.api.publish(&drive_event());
    let presence = Event::Presence {
        peers: vec![PeerRole {
            id: PeerId(1),
            role: Role::Operator,
        }],
        operator: Some(PeerId(1)),
    };
    h.api.publish(&presence);
    assert_eq!(
        h.lines(a),
        [json!({"type":"drive","peer":1,"role":"operator","linear":1.0,"angular":0.0})]
    );
    assert!(h.lines(b).is_empty());
    h.say(b, r#"{"type":"subscribe","events":["presence"]}"#);
    let caught_up = h.lines(b);
    assert_eq!(
        caught_up[1],
        json!({"type":"presence","peers":[{"id":1,"role":"operator"}],"operator":1})
    );
    assert_eq!(
        h.api.status()["clients"][0]["events"],
        json!(["drive", "stop"])
    );
}

#[test]
fn readings_belong_to_their_program_and_go_with_it() {
    let mut h = harness("sim");
    let (a, b) = (h.connect(), h.connect());
    h.say(a, r#"{"type":"reading","name":"battery","value":7.4}"#);
    h.say(a, r#"{"type":"reading","name":"mode","value":"auto"}"#);
    h.say(b, r#"{"type":"reading","name":"mode","value":"manual"}"#);
    h.say(b, r#"{"type":"reading","name":"gone","value":null}"#);
    let set = |name: &str, value: Value| ApiOutput::Reading {
        name: name.into(),
        value: Some(value),
    };
    let cleared = |name: &str| ApiOutput::Reading {
        name: name.into(),
        value: None,
    };
    assert_eq!(
        h.outputs(),
        [
            set("battery", json!(7.4)),
            set("mode", json!("auto")),
            set("mode", json!("manual"))
        ],
        "clearing a reading nobody set is a no-op"
    );
    h.api.disconnect(a);
    assert_eq!(h.outputs(), [cleared("battery")], "mode is b's now");
    h.say(b, r#"{"type":"reading","name":"mode","value":null}"#);
    assert_eq!(h.outputs(), [cleared("mode")]);
    for i in 0..MAX_READINGS {
        h.say(
            b,
            &format!(r#"{{"type":"reading","name":"r{i}","value":{i}}}"#),
        );
    }
    h.lines(b);
    h.say(b, r#"{"type":"reading","name":"one-too-many","value":1}"#);
    assert!(h.lines(b)[0]["reason"]
        .as_str()
        .unwrap()
        .contains("at most 64"));
    h.say(b, r#"{"type":"reading","name":"r0","value":2}"#);
    assert!(h.lines(b).is_empty(), "updating an existing one is fine");
}

#[test]
fn custom_messages_go_to_the_session_within_limits() {
    let mut h = harness("sim");
    let id = h.connect();
    h.say(
        id,
        r#"{"type":"custom","name":"lidar","value":{"ahead_m":0.4},"to":"operator"}"#,
    );
    assert_eq!(
        h.outputs(),
        [ApiOutput::Custom {
            client: id,
            to: Audience::Operator,
            name: "lidar".into(),
            value: json!({"ahead_m":0.4})
        }]
    );
    let big = json!({"type":"custom","name":"big","value":"x".repeat(message::MAX_CUSTOM_BYTES)});
    h.say(id, &big.to_string());
    assert!(h.lines(id)[0]["reason"]
        .as_str()
        .unwrap()
        .contains("limit 2048"));
    assert_eq!(h.outputs(), []);
    h.api.reply_error(id, "no operator is connected");
    assert_eq!(h.lines(id)[0]["reason"], "no operator is connected");
}

#[test]
fn taking_the_motors_needs_the_external_backend() {
    let mut h = harness("gpio");
    let id = h.connect();
    h.say(id, r#"{"type":"take_motors"}"#);
    let reason = h.lines(id)[0]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("drive backend is gpio"), "{reason}");
    h.api.motor_output(MotorOutput::Motors(Motors {
        left: 1.0,
        right: 1.0,
    }));
    assert!(h.lines(id).is_empty());
    assert_eq!(h.api.status()["motor_link"], Value::Null);
}

#[test]
fn a_motor_program_gets_the_state_then_every_change() {
    let mut h = harness("external");
    let (motor, other) = (h.connect(), h.connect());
    h.api.motor_output(MotorOutput::Servo {
        index: 0,
        name: "pan".into(),
        pulse_us: 1500,
    });
    let half = Motors {
        left: 0.5,
        right: 0.5,
    };
    h.api.motor_output(MotorOutput::Motors(half));
    assert_eq!(h.api.status()["motor_link"], "connecting");
    h.say(motor, r#"{"type":"take_motors"}"#);
    assert_eq!(
        h.lines(motor),
        [
            json!({"type":"motors","left":0.5,"right":0.5}),
            json!({"type":"servo_pulse","name":"pan","index":0,"pulse_us":1500})
        ]
    );
    let link = |state| ApiOutput::MotorLink {
        state,
        why: match state {
            LinkState::Ok => "client 1 drives the motors".into(),
            _ => unreachable!(),
        },
    };
    assert_eq!(h.outputs(), [link(LinkState::Ok)]);
    h.api.motor_output(MotorOutput::Motors(Motors::default()));
    assert_eq!(
        h.lines(motor),
        [json!({"type":"motors","left":0.0,"right":0.0})]
    );
    assert!(h.lines(other).is_empty(), "only motor programs get motors");
    assert_eq!(h.api.status()["clients"][0]["motors"], true);
}

#[test]
fn a_silent_motor_program_loses_the_link_until_it_speaks_again() {
    let mut h = harness("external");
    let id = h.connect();
    h.say(id, r#"{"type":"hello","name":"wheels"}"#);
    h.say(id, r#"{"type":"take_motors"}"#);
    h.outputs();
    assert_eq!(h.api.next_deadline(), Some(h.at(1000)));
    h.say_at(600, id, r#"{"type":"ping"}"#);
    assert_eq!(h.api.next_deadline(), Some(h.at(1600)), "any line counts");
    h.api.tick(h.at(1599));
    assert_eq!(h.outputs(), []);
    h.api.tick(h.at(1600));
    assert_eq!(
        h.outputs(),
        [ApiOutput::MotorLink {
            state: LinkState::Lost,
            why: "the motor program (client 1 (\"wheels\")) stopped answering".into()
        }]
    );
    assert_eq!(h.api.next_deadline(), None);
    assert_eq!(h.api.status()["motor_link"], "lost");
    h.say_at(2000, id, r#"{"type":"ping"}"#);
    let back = h.outputs();
    assert!(
        matches!(&back[..], [ApiOutput::MotorLink { state: LinkState::Ok, why }] if why.contains("answers again")),
        "{back:?}"
    );
    h.api.disconnect(id);
    let gone = h.outputs();
    assert!(
        matches!(&gone[..], [ApiOutput::MotorLink { state: LinkState::Lost, why }] if why.contains("disconnected")),
        "{gone:?}"
    );
}

#[test]
fn with_two_motor_programs_the_link_holds_while_one_answers() {
    let mut h = harness("external");
    let (a, b) = (h.connect(), h.connect());
    h.say(a, r#"{"type":"take_motors"}"#);
    h.say_at(500, b, r#"{"type":"take_motors"}"#);
    h.outputs();
    h.api.tick(h.at(1000));
    assert_eq!(h.outputs(), [], "b still answers");
    h.api.disconnect(b);
    assert_eq!(h.outputs().len(), 1, "now nobody does");
}

#[test]
fn a_program_that_does_not_read_loses_its_oldest_lines_and_nobody_else_notices() {
    let mut h = harness("sim");
    let (stuck, fine) = (h.connect(), h.connect());
    for id in [stuck, fine] {
        h.say(id, r#"{"type":"subscribe","events":["drive"]}"#);
    }
    h.lines(fine);
    for _ in 0..20 {
        h.api.publish(&drive_event());
        h.lines(fine);
    }
    let status = h.api.status();
    assert_eq!(status["clients"][0]["queued"], 8);
    assert_eq!(
        status["clients"][0]["dropped"], 13,
        "subscribed + 20 drives - 8 kept"
    );
    assert_eq!(status["clients"][1]["dropped"], 0);
    assert_eq!(status["dropped"], 13);
    let kept = h.lines(stuck);
    assert!(
        kept.iter().all(|l| l["type"] == "drive"),
        "the newest are kept"
    );
}
