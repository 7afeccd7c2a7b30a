//! The session (`telepi::session::Session`) driven by a script of peers
//! joining, leaving, talking and time passing, on a recording motor backend.
//!
//! Input: lines. The first holds options (`s`: an operator secret `hunter2`
//! is configured, `a`: acceleration ramp on). Then each line is an op byte,
//! a peer byte and a payload:
//! `j<peer>[secret]` joins, `l<peer>` leaves, `m<peer><text>` is a
//! data-channel message, `t<ms>` lets time pass and ticks.
//!
//! Safety properties checked after every step:
//! - a message `protocol::parse` rejects writes nothing to the motors or
//!   servos and counts as rejected;
//! - the motors only start moving for the operator's own message;
//! - motor values stay finite and within [-1, 1];
//! - moving motors always have a deadline (the deadman is armed), and after a
//!   tick past the deadman time without a `drive`, they are stopped;
//! - losing the operator stops the motors;
//! - everything sent to peers is JSON.
#![no_main]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use telepi::drive::{Backend, BackendKind, Drive, DriveConfig, Motors, ServoConfig};
use telepi::session::protocol::{self, Inbound};
use telepi::session::{Session, SessionConfig, SessionOutput};
use telepi::rtc::PeerId;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Write {
    Motors(Motors),
    Servo(usize, u32),
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Write>>>);

impl Recorder {
    fn writes(&self) -> Vec<Write> {
        self.0.lock().unwrap().clone()
    }
}

impl Backend for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn set_motors(&mut self, motors: Motors) {
        self.0.lock().unwrap().push(Write::Motors(motors));
    }
    fn set_servo(&mut self, index: usize, pulse_us: u32) {
        self.0.lock().unwrap().push(Write::Servo(index, pulse_us));
    }
}

const DEADMAN_MS: u64 = 300;

fn still(m: Motors) -> bool {
    m == Motors::default()
}

fn sane(m: Motors) -> bool {
    [m.left, m.right]
        .iter()
        .all(|v| v.is_finite() && (-1.0..=1.0).contains(v))
}

/// What `camera` messages may name.
const CAMERAS: [&str; 2] = ["front", "arm"];

fn drain_outputs(s: &mut Session) {
    while let Some(output) = s.poll_output() {
        let text = match output {
            SessionOutput::Send { text, .. } => text,
            // What programs on the local API would be told.
            SessionOutput::Event(event) => event.to_json(),
            // Drained after each message, so the role can't have changed since.
            SessionOutput::Record { peer, .. } => {
                assert_eq!(s.operator(), Some(peer), "only the operator records");
                continue;
            }
            SessionOutput::Camera { camera, .. } => {
                assert!(camera < CAMERAS.len(), "only cameras the robot has");
                continue;
            }
        };
        serde_json::from_str::<serde_json::Value>(&text).expect("the session sends JSON");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|b| *b == b'\n');
    let options = lines.next().unwrap_or_default();
    let drive_config = DriveConfig {
        backend: BackendKind::Sim,
        accel: if options.contains(&b'a') { 4.0 } else { 0.0 },
        deadband: 0.0,
        deadman_ms: DEADMAN_MS,
        servos: vec![ServoConfig {
            name: "pan".into(),
            pin: Some(18),
            channel: None,
            min_us: 1000,
            max_us: 2000,
            center_us: None,
            initial: 0.0,
        }],
        ..DriveConfig::default()
    };
    let recorder = Recorder::default();
    let drive = Drive::new(&drive_config, Box::new(recorder.clone())).expect("valid drive");
    let config = SessionConfig {
        operator_secret: options.contains(&b's').then(|| "hunter2".into()),
    };
    let start = Instant::now();
    let mut now = start;
    let cameras = CAMERAS.iter().map(|c| c.to_string()).collect();
    let mut s = Session::new(now, &config, drive).with_cameras(cameras);
    // When the last message that parses as a `drive` arrived.
    let mut last_drive: Option<Instant> = None;

    for line in lines.take(256) {
        let Some((&op, rest)) = line.split_first() else {
            continue;
        };
        let peer = PeerId(u64::from(rest.first().copied().unwrap_or(b'1')));
        let payload = String::from_utf8_lossy(rest.get(1..).unwrap_or_default());
        let writes_before = recorder.writes().len();
        let operator_before = s.operator();
        match op {
            b'j' => {
                let secret = (!payload.is_empty()).then_some(&*payload);
                s.peer_joined(now, peer, secret, false);
            }
            b'l' => {
                s.peer_left(now, peer);
                if operator_before == Some(peer) {
                    assert!(still(s.status().motors), "operator left, motors still run");
                }
            }
            b'm' => {
                let rejected_before = s.status().rejected_messages;
                let parsed = protocol::parse(&payload);
                s.message(now, peer, &payload);
                let new_writes = &recorder.writes()[writes_before..];
                match parsed {
                    Err(_) => {
                        assert!(
                            new_writes.is_empty(),
                            "a message parse rejects wrote {new_writes:?}"
                        );
                        assert_eq!(s.status().rejected_messages, rejected_before + 1);
                    }
                    Ok(Inbound::Drive { .. }) => last_drive = Some(now),
                    Ok(_) => {}
                }
                let moved = new_writes
                    .iter()
                    .any(|w| matches!(w, Write::Motors(m) if !still(*m)));
                if moved {
                    assert_eq!(s.operator(), Some(peer), "motors moved for a non-operator");
                }
            }
            b't' => {
                let ms: u64 = std::str::from_utf8(rest)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(20);
                now += Duration::from_millis(ms.min(5_000));
                s.tick(now);
                let stale =
                    last_drive.is_none_or(|at| now >= at + Duration::from_millis(DEADMAN_MS));
                if stale {
                    assert!(still(s.status().motors), "deadman did not stop the motors");
                }
            }
            _ => continue,
        }
        let motors = s.status().motors;
        assert!(sane(motors), "{motors:?}");
        if !still(motors) {
            assert!(s.next_deadline().is_some(), "motors run without a deadline");
            assert!(s.operator().is_some(), "motors run without an operator");
        }
        if operator_before.is_some() && s.operator() != operator_before {
            assert!(still(motors), "operator changed, motors still run");
        }
        for w in &recorder.writes()[writes_before..] {
            match w {
                Write::Motors(m) => assert!(sane(*m), "{m:?}"),
                Write::Servo(_, us) => assert!((1000..=2000).contains(us), "servo pulse {us}"),
            }
        }
        serde_json::to_string(&s.status()).expect("status serializes");
        drain_outputs(&mut s);
    }
});
