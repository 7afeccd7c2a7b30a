use serde_json::json;

use super::*;

fn with_controls(mut h: Harness) -> Harness {
    let toml = r#"
        [[controls]]
        name = "horn"
        kind = "button"
        [[controls]]
        name = "speed"
        kind = "slider"
        max = 0.5
        [[readings]]
        name = "battery"
        unit = "V"
    "#;
    let controls = Arc::new(Controls::from_toml(toml).unwrap());
    h.s = h.s.with_controls(controls);
    h
}

#[test]
fn a_joining_page_gets_the_controls_when_there_are_any() {
    let mut h = harness(None);
    h.join(A);
    assert!(h.sent_to(A).iter().all(|m| m["type"] != "controls"));
    let mut h = with_controls(harness(None));
    h.join(A);
    let layout = &h.sent_to(A)[0];
    assert_eq!(layout["type"], "controls");
    assert_eq!(layout["controls"][1]["max"], 0.5);
    assert_eq!(layout["readings"][0]["unit"], "V");
}

#[test]
fn only_the_operators_declared_controls_reach_the_programs() {
    let mut h = with_controls(harness(None));
    h.join(A);
    h.join(B);
    h.say(A, r#"{"type":"claim"}"#);
    h.events();
    h.sent();
    h.say(A, r#"{"type":"custom","name":"horn","value":true}"#);
    h.say(A, r#"{"type":"custom","name":"speed","value":2}"#);
    assert_eq!(
        h.events(),
        [
            Event::Custom {
                peer: A,
                role: Role::Operator,
                name: "horn".into(),
                value: json!(true)
            },
            Event::Custom {
                peer: A,
                role: Role::Operator,
                name: "speed".into(),
                value: json!(0.5)
            }
        ],
        "the slider is clamped to its max"
    );
    h.say(B, r#"{"type":"custom","name":"horn","value":true}"#);
    h.say(A, r#"{"type":"custom","name":"siren","value":true}"#);
    h.say(A, r#"{"type":"custom","name":"horn","value":"loud"}"#);
    h.say(A, r#"{"type":"custom","name":"horn"}"#);
    assert_eq!(h.events(), [], "none of these went through");
    let sent = h.sent();
    let reasons = |peer| -> Vec<&str> {
        sent.iter()
            .filter(|(p, _)| *p == peer)
            .map(|(_, m)| m["reason"].as_str().unwrap())
            .collect()
    };
    let (a, b) = (reasons(A), reasons(B));
    assert!(b[0].contains("you are a viewer"), "{b:?}");
    assert!(a[0].contains(r#"unknown control "siren""#), "{a:?}");
    assert!(a[1].contains("true or false"), "{a:?}");
    assert!(a[2].contains("missing field `value`"), "{a:?}");
    assert_eq!(h.s.status().rejected_messages, 4);
}

#[test]
fn drives_servos_stops_and_presence_are_told_to_the_programs() {
    let mut h = harness(None);
    h.join(A);
    h.join(B);
    h.events();
    h.say(A, r#"{"type":"drive","linear":3,"angular":-0.5}"#);
    h.say(A, r#"{"type":"servo","name":"pan","value":0.25}"#);
    h.say(B, r#"{"type":"drive","linear":1,"angular":0}"#);
    h.say(B, r#"{"type":"stop"}"#);
    let roles = vec![
        PeerRole {
            id: A,
            role: Role::Operator,
        },
        PeerRole {
            id: B,
            role: Role::Viewer,
        },
    ];
    assert_eq!(
        h.events(),
        [
            Event::Presence {
                peers: roles,
                operator: Some(A)
            },
            Event::Drive {
                peer: A,
                role: Role::Operator,
                linear: 1.0,
                angular: -0.5
            },
            Event::Servo {
                peer: A,
                role: Role::Operator,
                name: "pan".into(),
                value: 0.25
            },
            Event::Stop {
                peer: B,
                role: Role::Viewer
            },
        ],
        "the viewer's drive is not an event; its stop is"
    );
}

#[test]
fn programs_messages_reach_everyone_or_just_the_operator() {
    let mut h = harness(None);
    let value = json!({"ahead_m": 0.4});
    assert_eq!(h.s.send_custom(Audience::Operator, "lidar", &value), 0);
    h.join(A);
    h.join(B);
    h.sent();
    assert_eq!(h.s.send_custom(Audience::All, "lidar", &value), 2);
    let msg = json!({"type":"custom","name":"lidar","value":{"ahead_m":0.4}});
    assert_eq!(h.sent(), [(A, msg.clone()), (B, msg.clone())]);
    h.say(B, r#"{"type":"claim"}"#);
    h.sent();
    assert_eq!(h.s.send_custom(Audience::Operator, "lidar", &value), 1);
    assert_eq!(h.sent(), [(B, msg)]);
}

#[test]
fn readings_ride_along_in_telemetry_and_status() {
    let mut h = harness(None);
    h.join(A);
    h.s.set_reading("battery".into(), Some(json!(7.4)));
    h.s.set_reading("mode".into(), Some(json!("auto")));
    h.s.set_reading("mode".into(), None);
    h.sent();
    h.s.tick(h.at(200));
    let telemetry = &h.sent_to(A)[0];
    assert_eq!(telemetry["readings"], json!({"battery": 7.4}));
    assert!(
        telemetry.get("drive_link").is_none(),
        "the recorder has no link"
    );
    let status = serde_json::to_value(h.s.status()).unwrap();
    assert_eq!(status["readings"], json!({"battery": 7.4}));
}

#[test]
fn losing_the_motor_program_stops_the_motors_and_tells_the_operator() {
    let mut h = a_driving_b_watching();
    h.s.motor_link(h.t, LinkState::Ok, "client 1 drives the motors");
    assert_eq!(h.motors(), FULL, "a program arriving changes nothing");
    h.s.motor_link(
        h.t,
        LinkState::Lost,
        "the motor program (client 1) disconnected",
    );
    assert_eq!(h.motors(), Motors::default());
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "the operator only: {sent:?}");
    assert_eq!(sent[0].0, A);
    assert!(sent[0].1["reason"]
        .as_str()
        .unwrap()
        .starts_with("the motor program (client 1) disconnected: the motors are stopped"));
}
