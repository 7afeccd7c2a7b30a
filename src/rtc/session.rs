//! The robot's session logic, sans-IO: what peers say on the data channel,
//! what we answer, who may drive, and what the motors do about it. Time
//! comes in as a value; output is polled, like str0m.
//!
//! Roles: at most one operator, everyone else a viewer. Without an operator
//! secret the role goes to the first peer that sends `claim` or a `drive`
//! while it is free; with one, `claim` (or joining) with the right secret
//! takes it, even from the current operator. Losing the operator, for any
//! reason, stops the motors. `stop` is honoured from everybody. A peer that
//! joined view-only (plain HTTP in view-only mode) never operates.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::protocol::{self, Inbound, Outbound, PeerRole, Role};
use super::PeerId;
use crate::drive::{Drive, LinkState, Motors, ServoValues};

/// Most peers the session tracks; later ones get an error and can only `stop`.
pub const MAX_PEERS: usize = 32;
/// Why a view-only peer may not operate.
const VIEW_ONLY: &str =
    "you joined over plain HTTP, which is view-only here: open the HTTPS page to drive";
/// Telemetry goes to every peer this often (5 Hz).
pub const TELEMETRY_INTERVAL: Duration = Duration::from_millis(200);

/// The `[control]` table of the config file.
///
/// ```toml
/// [control]
/// operator_secret = "hunter2"   # unset or "": the first to claim (or drive) operates
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub operator_secret: Option<String>,
}

/// Something the loop must do for the session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionOutput {
    /// Send this JSON text to one peer.
    Send { peer: PeerId, text: String },
}

/// For `/api/status`.
#[derive(Serialize)]
pub struct SessionStatus<'a> {
    pub operator: Option<PeerId>,
    pub motors: Motors,
    pub servos: ServoValues<'a>,
    pub peers: Vec<PeerRole>,
    pub rejected_messages: u64,
    pub backend: &'static str,
    /// `None` for backends without a link that can fail (sim, gpio).
    pub link: Option<LinkState>,
}

struct Peer {
    id: PeerId,
    /// Highest `drive` seq accepted from this peer.
    last_seq: Option<u64>,
    view_only: bool,
}

pub struct Session {
    secret: Option<String>,
    drive: Drive,
    peers: heapless::Vec<Peer, MAX_PEERS>,
    operator: Option<PeerId>,
    outputs: VecDeque<SessionOutput>,
    started: Instant,
    /// Due time of the next telemetry broadcast; `None` while nobody listens.
    telemetry_at: Option<Instant>,
    cpu_temp_c: Option<f32>,
    /// Messages refused (malformed, unknown, oversize, not allowed).
    rejected_messages: u64,
    /// A bystander pressed stop: the operator's drives are ignored until they
    /// let go of the controls (a zero drive), so a held joystick can't undo it.
    stop_latched: bool,
}

impl Session {
    pub fn new(now: Instant, config: &SessionConfig, drive: Drive) -> Session {
        Session {
            // `operator_secret = ""` is a blanked-out template, not a secret.
            secret: config.operator_secret.clone().filter(|s| !s.is_empty()),
            drive,
            peers: heapless::Vec::new(),
            operator: None,
            outputs: VecDeque::new(),
            started: now,
            telemetry_at: None,
            cpu_temp_c: None,
            rejected_messages: 0,
            stop_latched: false,
        }
    }

    /// Whether `secret` grants the operator role (always, when none is configured).
    pub fn authorize(&self, secret: Option<&str>) -> bool {
        match (&self.secret, secret) {
            (None, _) => true,
            (Some(want), Some(got)) => crate::secret::matches(want, got),
            (Some(_), None) => false,
        }
    }

    /// A peer's data channel is open. `secret` is what it presented to
    /// `/connect`; the right one makes it the operator straight away, unless
    /// the peer is `view_only`.
    pub fn peer_joined(
        &mut self,
        now: Instant,
        peer: PeerId,
        secret: Option<&str>,
        view_only: bool,
    ) {
        if self.peer(peer).is_some() {
            return;
        }
        let joined = Peer {
            id: peer,
            last_seq: None,
            view_only,
        };
        if self.peers.push(joined).is_err() {
            let full = format!("too many peers (limit {MAX_PEERS})");
            return self.send(peer, &Outbound::error(full));
        }
        if self.telemetry_at.is_none() {
            self.telemetry_at = Some(now + TELEMETRY_INTERVAL);
        }
        if secret.is_some() && self.secret.is_some() && !view_only {
            if self.authorize(secret) {
                self.set_operator(now, Some(peer));
                return;
            }
            let wrong = Outbound::error("wrong operator secret: joined as a viewer");
            self.send(peer, &wrong);
        }
        self.send(peer, &Outbound::Role { role: Role::Viewer });
        self.broadcast_presence();
    }

    pub fn peer_left(&mut self, now: Instant, peer: PeerId) {
        let Some(i) = self.peers.iter().position(|p| p.id == peer) else {
            return;
        };
        self.peers.remove(i);
        if self.operator == Some(peer) {
            tracing::info!("operator {peer} left: motors stopped");
            self.operator = None;
            self.drive.stop(now);
        }
        if self.peers.is_empty() {
            self.telemetry_at = None;
        }
        self.broadcast_presence();
    }

    /// One text message from a peer's data channel.
    pub fn message(&mut self, now: Instant, peer: PeerId, text: &str) {
        let msg = match protocol::parse(text) {
            Ok(msg) => msg,
            Err(reason) => return self.reject(peer, reason),
        };
        match msg {
            Inbound::Stop => {
                tracing::info!("stop from peer {peer}");
                self.drive.stop(now);
                if let Some(operator) = self.operator.filter(|op| *op != peer) {
                    self.stop_latched = true;
                    let reason = format!(
                        "stopped by peer {peer}: release the controls (a zero drive) to drive again"
                    );
                    self.send(operator, &Outbound::error(reason));
                }
            }
            Inbound::Ping { t } => self.send(peer, &Outbound::Pong { t }),
            _ if self.peer(peer).is_none() => self.reject(peer, "not joined".into()),
            Inbound::Drive {
                linear,
                angular,
                seq,
            } => self.on_drive(now, peer, linear as f32, angular as f32, seq),
            Inbound::Servo { name, value } => {
                if self.operator != Some(peer) {
                    return self.reject(peer, self.not_operator());
                }
                if self.drive.set_servo(&name, value as f32).is_err() {
                    self.reject(peer, format!("unknown servo {name:?}"));
                }
            }
            Inbound::Claim { secret } => self.on_claim(now, peer, secret.as_deref()),
            Inbound::Release if self.operator == Some(peer) => self.set_operator(now, None),
            Inbound::Release => self.reject(peer, "release: you are not the operator".into()),
        }
    }

    /// Runs the deadman, the ramp and telemetry; call at [`next_deadline`](Self::next_deadline).
    pub fn tick(&mut self, now: Instant) {
        self.drive.tick(now);
        if let Some(at) = self.telemetry_at.filter(|at| now >= *at) {
            self.broadcast_telemetry(now);
            // Keep the cadence, but don't burst to catch up after a stall.
            let next = at + TELEMETRY_INTERVAL;
            self.telemetry_at = Some(if next > now {
                next
            } else {
                now + TELEMETRY_INTERVAL
            });
        }
    }

    /// When `tick` must be called next, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.drive.next_deadline(), self.telemetry_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_output(&mut self) -> Option<SessionOutput> {
        self.outputs.pop_front()
    }

    pub fn operator(&self) -> Option<PeerId> {
        self.operator
    }

    /// Motors to zero (shutdown, panic): roles are left as they are.
    pub fn stop_all(&mut self, now: Instant) {
        self.drive.stop(now);
    }

    /// Says goodbye to a peer the loop is about to close, so its page knows at
    /// once instead of waiting for a timeout.
    pub fn farewell(&mut self, peer: PeerId, reason: &str, reconnect: bool) {
        let bye = Outbound::Bye {
            reason: reason.into(),
            reconnect,
        };
        self.send(peer, &bye);
    }

    /// Says goodbye to everyone (shutdown): they may come back when we do.
    pub fn farewell_all(&mut self, reason: &str) {
        let ids: heapless::Vec<PeerId, MAX_PEERS> = self.peers.iter().map(|p| p.id).collect();
        for id in ids {
            self.farewell(id, reason, true);
        }
    }

    /// The CPU temperature for telemetry; the loop reads it (see [`read_cpu_temp_c`]).
    pub fn set_cpu_temp(&mut self, celsius: Option<f32>) {
        self.cpu_temp_c = celsius;
    }

    pub fn status(&self) -> SessionStatus<'_> {
        SessionStatus {
            operator: self.operator,
            motors: self.drive.motors(),
            servos: self.drive.servos(),
            peers: self.roles().to_vec(),
            rejected_messages: self.rejected_messages,
            backend: self.drive.backend_name(),
            link: self.drive.link(),
        }
    }

    fn on_drive(
        &mut self,
        now: Instant,
        peer: PeerId,
        linear: f32,
        angular: f32,
        seq: Option<u64>,
    ) {
        if self.operator != Some(peer) {
            if self.is_view_only(peer) {
                return self.reject(peer, VIEW_ONLY.into());
            }
            if self.secret.is_some() || self.operator.is_some() {
                return self.reject(peer, self.not_operator());
            }
            self.set_operator(now, Some(peer));
        }
        let p = self.peer(peer).expect("checked by message()");
        if let Some(seq) = seq {
            // Unordered channels can deliver late: a stale command must not win.
            if p.last_seq.is_some_and(|last| seq <= last) {
                return;
            }
            p.last_seq = Some(seq);
        }
        if self.stop_latched {
            if linear != 0.0 || angular != 0.0 {
                return;
            }
            self.stop_latched = false;
        }
        self.drive.drive(now, linear, angular);
    }

    fn on_claim(&mut self, now: Instant, peer: PeerId, secret: Option<&str>) {
        if self.operator == Some(peer) {
            return self.send(
                peer,
                &Outbound::Role {
                    role: self.role(peer),
                },
            );
        }
        match (&self.secret, self.operator) {
            _ if self.is_view_only(peer) => self.reject(peer, format!("claim: {VIEW_ONLY}")),
            (Some(_), _) if !self.authorize(secret) => {
                self.reject(peer, "claim: wrong operator secret".into())
            }
            (None, Some(holder)) => {
                self.reject(peer, format!("claim: peer {holder} is the operator"))
            }
            _ => self.set_operator(now, Some(peer)),
        }
    }

    /// Hands the role over; any change stops the motors, since the new
    /// operator hasn't asked for the old one's speed.
    fn set_operator(&mut self, now: Instant, new: Option<PeerId>) {
        let old = std::mem::replace(&mut self.operator, new);
        if old == new {
            return;
        }
        tracing::info!("operator: {old:?} -> {new:?}");
        self.drive.stop(now);
        self.stop_latched = false;
        for peer in [old, new].into_iter().flatten() {
            self.send(
                peer,
                &Outbound::Role {
                    role: self.role(peer),
                },
            );
        }
        self.broadcast_presence();
    }

    fn not_operator(&self) -> String {
        match (self.operator, &self.secret) {
            (Some(op), _) => format!("you are a viewer: peer {op} is the operator"),
            (None, Some(_)) => "you are a viewer: claim with the operator secret".into(),
            (None, None) => "you are a viewer: send claim first".into(),
        }
    }

    fn is_view_only(&self, id: PeerId) -> bool {
        self.peers.iter().any(|p| p.id == id && p.view_only)
    }

    fn peer(&mut self, id: PeerId) -> Option<&mut Peer> {
        self.peers.iter_mut().find(|p| p.id == id)
    }

    fn role(&self, id: PeerId) -> Role {
        if self.operator == Some(id) {
            Role::Operator
        } else {
            Role::Viewer
        }
    }

    fn roles(&self) -> heapless::Vec<PeerRole, MAX_PEERS> {
        let role = |p: &Peer| PeerRole {
            id: p.id,
            role: self.role(p.id),
        };
        self.peers.iter().map(role).collect()
    }

    fn reject(&mut self, peer: PeerId, reason: String) {
        self.rejected_messages += 1;
        self.send(peer, &Outbound::error(reason));
    }

    fn broadcast_presence(&mut self) {
        let roles = self.roles();
        self.broadcast(Outbound::Presence { peers: &roles }.to_json());
    }

    fn broadcast_telemetry(&mut self, now: Instant) {
        let text = Outbound::Telemetry {
            motors: self.drive.motors(),
            servos: self.drive.servos(),
            operator: self.operator,
            uptime_s: now.saturating_duration_since(self.started).as_millis() as f64 / 1000.0,
            cpu_temp_c: self.cpu_temp_c,
            rejected_messages: self.rejected_messages,
            drive_link: self.drive.link(),
        }
        .to_json();
        self.broadcast(text);
    }

    fn broadcast(&mut self, text: String) {
        for p in &self.peers {
            self.outputs.push_back(SessionOutput::Send {
                peer: p.id,
                text: text.clone(),
            });
        }
    }

    fn send(&mut self, peer: PeerId, msg: &Outbound) {
        self.outputs.push_back(SessionOutput::Send {
            peer,
            text: msg.to_json(),
        });
    }
}

/// Reads the SoC temperature (I/O: for the loop, about once a second, not for the core).
pub fn read_cpu_temp_c() -> Option<f32> {
    let milli = std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp").ok()?;
    Some(milli.trim().parse::<f32>().ok()? / 1000.0)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::drive::testing::{Recorder, Write};

    const A: PeerId = PeerId(1);
    const B: PeerId = PeerId(2);
    const C: PeerId = PeerId(3);

    struct Harness {
        s: Session,
        motors: Recorder,
        t: Instant,
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
        /// Every message sent since the last call, as (peer, JSON).
        fn sent(&mut self) -> Vec<(PeerId, Value)> {
            std::iter::from_fn(|| self.s.poll_output())
                .map(|SessionOutput::Send { peer, text }| {
                    (peer, serde_json::from_str(&text).unwrap())
                })
                .collect()
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
            out.contains(&(A, json!({"type":"role","role":"operator"}))),
            "{out:?}"
        );
        let presence = json!({"type":"presence","peers":[{"id":1,"role":"operator"},{"id":2,"role":"viewer"}]});
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
        assert_eq!(h.sent_to(B)[0], json!({"type":"role","role":"operator"}));
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

    #[test]
    fn operator_leaving_stops_motors_and_frees_the_role() {
        let mut h = harness(None);
        h.join(A);
        h.join(B);
        h.say(A, GO);
        h.sent();
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
                   "operator":1,"uptime_s":0.2,"cpu_temp_c":48.5,"rejected_messages":0})
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
        let status = serde_json::to_value(h.s.status()).unwrap();
        assert_eq!(
            status,
            json!({"operator":2,"motors":{"left":1.0,"right":1.0},"servos":{"pan":0.0},
                   "peers":[{"id":1,"role":"viewer"},{"id":2,"role":"operator"}],
                   "rejected_messages":0,"backend":"recorder","link":null})
        );
    }
}
