//! The robot's session logic, sans-IO: what peers say on the data channel,
//! what we answer, who may drive, and what the motors do about it. Time
//! comes in as a value; output is polled, like str0m.
//!
//! Roles: at most one operator, everyone else a viewer. Without an operator
//! secret the role goes to the first peer that sends `claim` or a `drive`
//! while it is free; with one, `claim` (or joining) with the right secret
//! takes it, even from the current operator. The operator also gets a
//! single-use resume token: its page presents it from a new connection
//! (reload, a reconnect after a blip) to take the role back from its old,
//! dead one at once. Losing the operator, for any reason, stops the motors. `stop` is honoured from everybody. A peer that
//! joined view-only (plain HTTP in view-only mode) never operates.
//!
//! What peers do that programs on the local API may want to know comes out
//! as [`SessionOutput::Event`]; what those programs publish comes in through
//! [`Session::set_reading`], [`Session::send_custom`] and
//! [`Session::motor_link`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::{Audience, Event};
use crate::controls::Controls;
use crate::drive::{Drive, LinkState};
use crate::peer::PeerId;
use protocol::{Inbound, Outbound, PeerRole, Role};

mod config;
mod fresh;
pub mod protocol;
mod resume;
mod telemetry;

pub use config::SessionConfig;
use fresh::Freshness;
pub use telemetry::{read_cpu_temp_c, SessionStatus};
use telemetry::{Rejection, Rejections};

/// Most peers the session tracks; later ones get an error and can only `stop`.
pub const MAX_PEERS: usize = 32;
/// Why a view-only peer may not operate.
const VIEW_ONLY: &str =
    "you joined over plain HTTP, which is view-only here: open the HTTPS page to drive";
/// Telemetry goes to every peer this often (5 Hz).
pub const TELEMETRY_INTERVAL: Duration = Duration::from_millis(200);

/// Something the loop must do for the session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionOutput {
    /// Send this JSON text to one peer.
    Send { peer: PeerId, text: String },
    /// Tell the programs on the local API (those subscribed to it).
    Event(Event),
    /// The operator switched recording on or off; the loop tells the recorder.
    Record { peer: PeerId, on: bool },
    /// The peer stops or resumes receiving `camera` (config order); the loop tells the hub.
    Camera {
        peer: PeerId,
        camera: usize,
        on: bool,
    },
}

struct Peer {
    id: PeerId,
    /// Highest `drive` seq accepted from this peer.
    last_seq: Option<u64>,
    /// Its drives' trip times, to drop stale ones.
    fresh: Freshness,
    view_only: bool,
}

pub struct Session {
    secret: Option<String>,
    drive: Drive,
    peers: heapless::Vec<Peer, MAX_PEERS>,
    operator: Option<PeerId>,
    /// The operator's resume token (see the module doc); a new one with
    /// every change of operator.
    resume: Option<String>,
    outputs: VecDeque<SessionOutput>,
    started: Instant,
    /// Due time of the next telemetry broadcast; `None` while nobody listens.
    telemetry_at: Option<Instant>,
    cpu_temp_c: Option<f32>,
    recording: bool,
    /// Data-channel messages taken in, and those refused by reason.
    messages_received: u64,
    rejections: Rejections,
    /// A bystander pressed stop: the operator's drives are ignored until they
    /// let go of the controls (a zero drive), so a held joystick can't undo it.
    stop_latched: bool,
    /// The page's custom controls and readings (`[[controls]]`, `[[readings]]`).
    controls: Arc<Controls>,
    /// What programs on the local API published, for telemetry.
    readings: BTreeMap<String, Value>,
    /// The cameras' names in config order, which is video m-line order.
    cameras: Vec<String>,
}

impl Session {
    pub fn new(now: Instant, config: &SessionConfig, drive: Drive) -> Session {
        Session {
            // `operator_secret = ""` is a blanked-out template, not a secret.
            secret: config.operator_secret.clone().filter(|s| !s.is_empty()),
            drive,
            peers: heapless::Vec::new(),
            operator: None,
            resume: None,
            outputs: VecDeque::new(),
            started: now,
            telemetry_at: None,
            cpu_temp_c: None,
            recording: false,
            messages_received: 0,
            rejections: Rejections::default(),
            stop_latched: false,
            controls: Arc::default(),
            readings: BTreeMap::new(),
            cameras: Vec::new(),
        }
    }

    /// The cameras' names in config order: a joining page learns them, and
    /// `camera` messages name one.
    pub fn with_cameras(mut self, names: Vec<String>) -> Session {
        self.cameras = names;
        self
    }

    /// The custom controls peers may use and the readings the page shows.
    pub fn with_controls(mut self, controls: Arc<Controls>) -> Session {
        self.controls = controls;
        self
    }

    /// Whether `secret` grants the operator role (always, when none is configured).
    pub fn authorize(&self, secret: Option<&str>) -> bool {
        crate::secret::grants_operator(self.secret.as_deref(), secret)
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
            fresh: Freshness::default(),
            view_only,
        };
        if self.peers.push(joined).is_err() {
            let full = format!("too many peers (limit {MAX_PEERS})");
            return self.send(peer, &Outbound::error(full));
        }
        if self.telemetry_at.is_none() {
            self.telemetry_at = Some(now + TELEMETRY_INTERVAL);
        }
        if !self.cameras.is_empty() {
            let text = Outbound::Cameras {
                names: &self.cameras,
            }
            .to_json();
            self.outputs.push_back(SessionOutput::Send { peer, text });
        }
        if !self.controls.is_empty() {
            let controls = self.controls.clone();
            self.send(
                peer,
                &Outbound::Controls {
                    controls: &controls,
                },
            );
        }
        if secret.is_some() && self.secret.is_some() && !view_only {
            if self.authorize(secret) {
                self.set_operator(now, Some(peer));
                return;
            }
            let wrong = Outbound::error("wrong operator secret: joined as a viewer");
            self.send(peer, &wrong);
        }
        self.send_role(peer);
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
            self.resume = None;
            self.drive.stop(now);
        }
        if self.peers.is_empty() {
            self.telemetry_at = None;
        }
        self.broadcast_presence();
    }

    /// One text message from a peer's data channel.
    pub fn message(&mut self, now: Instant, peer: PeerId, text: &str) {
        self.messages_received += 1;
        let msg = match protocol::parse(text) {
            Ok(msg) => msg,
            Err(reason) => return self.reject(peer, Rejection::Malformed, reason),
        };
        match msg {
            Inbound::Stop => {
                tracing::info!("stop from peer {peer}");
                self.drive.stop(now);
                let role = self.role(peer);
                self.emit(Event::Stop { peer, role });
                if let Some(operator) = self.operator.filter(|op| *op != peer) {
                    self.stop_latched = true;
                    let reason = format!(
                        "stopped by peer {peer}: release the controls (a zero drive) to drive again"
                    );
                    self.send(operator, &Outbound::error(reason));
                }
            }
            Inbound::Ping { t } => self.send(peer, &Outbound::Pong { t }),
            _ if self.peer(peer).is_none() => {
                self.reject(peer, Rejection::NotJoined, "not joined".into())
            }
            Inbound::Drive {
                linear,
                angular,
                seq,
                t,
            } => self.on_drive(now, peer, (linear, angular), seq, t),
            Inbound::Servo { name, value } => {
                if self.operator != Some(peer) {
                    return self.reject(peer, Rejection::NotOperator, self.not_operator());
                }
                if self.drive.set_servo(&name, value).is_err() {
                    return self.reject(
                        peer,
                        Rejection::Invalid,
                        format!("unknown servo {name:?}"),
                    );
                }
                let role = Role::Operator;
                self.emit(Event::Servo {
                    peer,
                    role,
                    name,
                    value,
                });
            }
            Inbound::Custom { name, value } => self.on_custom(peer, name, &value),
            Inbound::Camera { name, on } => self.on_camera(peer, &name, on),
            Inbound::Claim { secret, resume } => {
                self.on_claim(now, peer, secret.as_deref(), resume.as_deref())
            }
            Inbound::Release if self.operator == Some(peer) => self.set_operator(now, None),
            Inbound::Release => self.reject(
                peer,
                Rejection::NotOperator,
                "release: you are not the operator".into(),
            ),
            Inbound::Record { on } if self.operator == Some(peer) => {
                self.outputs.push_back(SessionOutput::Record { peer, on });
            }
            Inbound::Record { .. } => {
                let reason = format!("record: {}", self.not_operator());
                self.reject(peer, Rejection::NotOperator, reason);
            }
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

    /// `linear` and `angular` come clamped into [-1, 1] by the parser.
    fn on_drive(
        &mut self,
        now: Instant,
        peer: PeerId,
        (linear, angular): (f32, f32),
        seq: Option<u64>,
        t: Option<f64>,
    ) {
        if self.operator != Some(peer) {
            if self.is_view_only(peer) {
                return self.reject(peer, Rejection::ViewOnly, VIEW_ONLY.into());
            }
            if self.secret.is_some() || self.operator.is_some() {
                return self.reject(peer, Rejection::NotOperator, self.not_operator());
            }
            self.set_operator(now, Some(peer));
        }
        let started = self.started;
        let p = self.peer(peer).expect("checked by message()");
        if let Some(seq) = seq {
            // Unordered channels can deliver late: a stale command must not win.
            if p.last_seq.is_some_and(|last| seq <= last) {
                return;
            }
            p.last_seq = Some(seq);
        }
        if t.is_some_and(|t| !p.fresh.is_fresh(started, now, t)) {
            // Nothing to tell the page: it has sent a fresher one already.
            return self.rejections.count(Rejection::Stale);
        }
        if self.stop_latched {
            if linear != 0.0 || angular != 0.0 {
                return;
            }
            self.stop_latched = false;
        }
        self.drive.drive(now, linear, angular);
        self.emit(Event::Drive {
            peer,
            role: Role::Operator,
            linear,
            angular,
        });
    }

    /// A custom control: the operator's, and one the config declares.
    fn on_custom(&mut self, peer: PeerId, name: String, value: &Value) {
        if self.operator != Some(peer) {
            let reason = format!("custom: {}", self.not_operator());
            return self.reject(peer, Rejection::NotOperator, reason);
        }
        match self.controls.check_value(&name, value) {
            Ok(value) => self.emit(Event::Custom {
                peer,
                role: Role::Operator,
                name,
                value,
            }),
            Err(reason) => self.reject(peer, Rejection::Invalid, reason),
        }
    }

    /// Any peer, viewer or operator, may stop a camera it doesn't look at.
    fn on_camera(&mut self, peer: PeerId, name: &str, on: bool) {
        match self.cameras.iter().position(|c| c == name) {
            Some(camera) => self
                .outputs
                .push_back(SessionOutput::Camera { peer, camera, on }),
            None => {
                let known = self.cameras.join(", ");
                let reason = format!("camera: no camera {name:?} (this robot has: {known})");
                self.reject(peer, Rejection::Invalid, reason);
            }
        }
    }

    /// A program's message for the pages; how many pages it went to.
    pub fn send_custom(&mut self, to: Audience, name: &str, value: &Value) -> usize {
        let text = Outbound::Custom { name, value }.to_json();
        let peers: Vec<PeerId> = match to {
            Audience::All => self.peers.iter().map(|p| p.id).collect(),
            Audience::Operator => self.operator.into_iter().collect(),
        };
        for peer in &peers {
            self.outputs.push_back(SessionOutput::Send {
                peer: *peer,
                text: text.clone(),
            });
        }
        peers.len()
    }

    /// Whether a program on the local API drives the motors (`external`
    /// backend). When none does any more the motors are stopped (so nothing
    /// picks up a stale speed when one comes back) and the operator is told.
    pub fn motor_link(&mut self, now: Instant, state: LinkState, why: &str) {
        match state {
            LinkState::Lost => {
                tracing::warn!("motors: {why}: motors stopped");
                self.drive.stop(now);
                if let Some(operator) = self.operator {
                    let reason = format!("{why}: the motors are stopped and may not respond");
                    self.send(operator, &Outbound::error(reason));
                }
            }
            LinkState::Ok | LinkState::Connecting => tracing::info!("motors: {why}"),
        }
    }

    fn on_claim(&mut self, now: Instant, peer: PeerId, secret: Option<&str>, resume: Option<&str>) {
        if self.operator == Some(peer) {
            return self.send_role(peer);
        }
        match (&self.secret, self.operator) {
            _ if self.is_view_only(peer) => {
                self.reject(peer, Rejection::ViewOnly, format!("claim: {VIEW_ONLY}"))
            }
            _ if resume.is_some_and(|token| self.resume_matches(token)) => {
                tracing::info!("operator {:?} resumes on peer {peer}", self.operator);
                self.set_operator(now, Some(peer));
            }
            (Some(_), _) if !self.authorize(secret) => self.reject(
                peer,
                Rejection::WrongSecret,
                "claim: wrong operator secret".into(),
            ),
            (None, Some(holder)) => self.reject(
                peer,
                Rejection::NotOperator,
                format!("claim: peer {holder} is the operator"),
            ),
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
        self.resume = new.map(|_| crate::secret::random_token());
        for peer in [old, new].into_iter().flatten() {
            self.send_role(peer);
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

    fn reject(&mut self, peer: PeerId, kind: Rejection, reason: String) {
        self.rejections.count(kind);
        self.send(peer, &Outbound::error(reason));
    }

    fn broadcast_presence(&mut self) {
        let roles = self.roles();
        self.broadcast(Outbound::Presence { peers: &roles }.to_json());
        self.emit(Event::Presence {
            peers: roles.to_vec(),
            operator: self.operator,
        });
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(SessionOutput::Event(event));
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

#[cfg(test)]
mod tests;
