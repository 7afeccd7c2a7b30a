//! The local API's core, sans-IO: the table of connected programs, their
//! line framing, subscriptions and outgoing queues, the readings they own,
//! and whether a program is there to drive the motors. Bytes and time go
//! in; lines to write and [`ApiOutput`]s for the session come out.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::message::{self, Audience, Event, EventKind, EventSet, Reply, Request};
use crate::controls::{check_name, Controls, MAX_READINGS};
use crate::drive::external::MotorOutput;
use crate::drive::{LinkState, Motors};

/// A connection's id, unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct ClientId(pub u64);

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Longest `hello` name.
const MAX_CLIENT_NAME: usize = 32;

/// What the session must do for the programs.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiOutput {
    /// Show a reading on the pages; `None` removes it.
    Reading { name: String, value: Option<Value> },
    /// A program's message for the pages.
    Custom {
        client: ClientId,
        to: Audience,
        name: String,
        value: Value,
    },
    /// Whether a program drives the motors changed; `why` for the log and the operator.
    MotorLink { state: LinkState, why: String },
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_clients: usize,
    /// Lines queued per program before the oldest are dropped.
    pub queue: usize,
    /// A motor program silent for this long no longer counts as driving.
    pub motor_timeout: Duration,
}

/// Splits a byte stream into lines, refusing (and skipping) overlong ones.
#[derive(Debug, Default)]
struct LineReader {
    partial: Vec<u8>,
    /// Inside a line that was too long: drop bytes up to its newline.
    skipping: bool,
}

#[derive(Debug, PartialEq)]
enum Line {
    Text(Vec<u8>),
    TooLong,
}

impl LineReader {
    fn push(&mut self, bytes: &[u8], lines: &mut Vec<Line>) {
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = (&rest[..end], &rest[end + 1..]);
            rest = tail;
            if std::mem::take(&mut self.skipping) {
                continue;
            }
            if self.partial.len() + head.len() > message::MAX_LINE_BYTES {
                self.partial.clear();
                lines.push(Line::TooLong);
                continue;
            }
            self.partial.extend_from_slice(head);
            let mut line = std::mem::take(&mut self.partial);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                lines.push(Line::Text(line));
            }
        }
        if self.skipping {
            return;
        }
        if self.partial.len() + rest.len() > message::MAX_LINE_BYTES {
            self.partial.clear();
            self.skipping = true;
            lines.push(Line::TooLong);
        } else {
            self.partial.extend_from_slice(rest);
        }
    }
}

struct Client {
    id: ClientId,
    name: Option<String>,
    events: EventSet,
    /// Took the motors (`take_motors`).
    motors: bool,
    /// A motor program heard within the timeout.
    alive: bool,
    heard_at: Instant,
    reader: LineReader,
    queue: VecDeque<String>,
    dropped: u64,
    rejected: u64,
}

impl Client {
    fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("client {} ({name:?})", self.id),
            None => format!("client {}", self.id),
        }
    }
}

pub struct Api {
    limits: Limits,
    drive_backend: &'static str,
    controls: Arc<Controls>,
    clients: Vec<Client>,
    next_id: u64,
    outputs: VecDeque<ApiOutput>,
    /// Each reading's publisher: its readings go when it does.
    reading_owners: BTreeMap<String, ClientId>,
    /// What the motors and servos were last told, for a program that takes them.
    motors: Motors,
    servo_pulses: BTreeMap<usize, (String, u32)>,
    /// `None` unless the drive backend is `external`.
    link: Option<LinkState>,
    /// The newest presence, for programs that subscribe later (nobody, until
    /// a page joins).
    presence: String,
    dropped: u64,
}

impl Api {
    pub fn new(limits: Limits, drive_backend: &'static str, controls: Arc<Controls>) -> Api {
        let external = drive_backend == "external";
        Api {
            limits,
            drive_backend,
            controls,
            clients: Vec::new(),
            next_id: 1,
            outputs: VecDeque::new(),
            reading_owners: BTreeMap::new(),
            motors: Motors::default(),
            servo_pulses: BTreeMap::new(),
            link: external.then_some(LinkState::Connecting),
            presence: Event::Presence {
                peers: Vec::new(),
                operator: None,
            }
            .to_json(),
            dropped: 0,
        }
    }

    /// A program connected; `Err` holds the line to send it before closing.
    pub fn connect(&mut self, now: Instant) -> Result<ClientId, String> {
        if self.clients.len() >= self.limits.max_clients {
            let full = format!(
                "too many programs (limit {}, [api] max_clients)",
                self.limits.max_clients
            );
            tracing::warn!("api: refused a program: {full}");
            return Err(Reply::error(full).to_json());
        }
        let id = ClientId(self.next_id);
        self.next_id += 1;
        self.clients.push(Client {
            id,
            name: None,
            events: EventSet::default(),
            motors: false,
            alive: false,
            heard_at: now,
            reader: LineReader::default(),
            queue: VecDeque::new(),
            dropped: 0,
            rejected: 0,
        });
        let welcome = Reply::Welcome {
            client: id.0,
            version: env!("CARGO_PKG_VERSION"),
            drive_backend: self.drive_backend,
            events: EventKind::ALL,
            controls: &self.controls,
        }
        .to_json();
        self.push(id, welcome);
        tracing::info!("api: client {id} connected");
        Ok(id)
    }

    /// Bytes a program wrote.
    pub fn receive(&mut self, now: Instant, id: ClientId, bytes: &[u8]) {
        let mut lines = Vec::new();
        match self.client_mut(id) {
            Some(client) => client.reader.push(bytes, &mut lines),
            None => return,
        }
        for line in lines {
            self.heard(now, id);
            match line {
                Line::Text(text) => match message::parse(&text) {
                    Ok(request) => self.request(id, request),
                    Err(reason) => self.reject(id, reason),
                },
                Line::TooLong => self.reject(
                    id,
                    format!("line over {} bytes: skipped", message::MAX_LINE_BYTES),
                ),
            }
        }
    }

    /// A program's connection closed.
    pub fn disconnect(&mut self, id: ClientId) {
        let Some(i) = self.clients.iter().position(|c| c.id == id) else {
            return;
        };
        let client = self.clients.remove(i);
        tracing::info!("api: {} disconnected", client.label());
        let owned: Vec<String> = self
            .reading_owners
            .iter()
            .filter(|(_, owner)| **owner == id)
            .map(|(name, _)| name.clone())
            .collect();
        for name in owned {
            self.reading_owners.remove(&name);
            self.outputs
                .push_back(ApiOutput::Reading { name, value: None });
        }
        if client.motors && client.alive {
            self.update_link(format!(
                "the motor program ({}) disconnected",
                client.label()
            ));
        }
    }

    /// Hands an event from the data channels to every program subscribed to it.
    pub fn publish(&mut self, event: &Event) {
        let kind = event.kind();
        let mut json = None;
        if kind == EventKind::Presence {
            self.presence = event.to_json();
        }
        let ids: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|c| c.events.contains(kind))
            .map(|c| c.id)
            .collect();
        for id in ids {
            let line = json.get_or_insert_with(|| event.to_json()).clone();
            self.push(id, line);
        }
    }

    /// What the `external` drive backend asked for, for the programs that took the motors.
    pub fn motor_output(&mut self, output: MotorOutput) {
        let line = match &output {
            MotorOutput::Motors(m) => {
                self.motors = *m;
                Reply::motors(*m).to_json()
            }
            MotorOutput::Servo {
                index,
                name,
                pulse_us,
            } => {
                self.servo_pulses.insert(*index, (name.clone(), *pulse_us));
                Reply::ServoPulse {
                    name,
                    index: *index,
                    pulse_us: *pulse_us,
                }
                .to_json()
            }
        };
        let ids: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|c| c.motors)
            .map(|c| c.id)
            .collect();
        for id in ids {
            self.push(id, line.clone());
        }
    }

    /// Notices motor programs that fell silent; call at [`next_deadline`](Self::next_deadline).
    pub fn tick(&mut self, now: Instant) {
        let timeout = self.limits.motor_timeout;
        let mut silent = Vec::new();
        for c in self.clients.iter_mut().filter(|c| c.motors && c.alive) {
            if now >= c.heard_at + timeout {
                c.alive = false;
                silent.push(c.label());
            }
        }
        for label in silent {
            tracing::warn!(
                "api: the motor program ({label}) has been silent for {} ms",
                timeout.as_millis()
            );
            self.update_link(format!("the motor program ({label}) stopped answering"));
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.clients
            .iter()
            .filter(|c| c.motors && c.alive)
            .map(|c| c.heard_at + self.limits.motor_timeout)
            .min()
    }

    pub fn poll_output(&mut self) -> Option<ApiOutput> {
        self.outputs.pop_front()
    }

    /// The next line to write to a program, oldest first.
    pub fn pop_line(&mut self, id: ClientId) -> Option<String> {
        self.client_mut(id)?.queue.pop_front()
    }

    /// Tells a program something it asked for went wrong (found out by the session).
    pub fn reply_error(&mut self, id: ClientId, reason: &str) {
        self.reject(id, reason.to_string());
    }

    pub fn status(&self) -> Value {
        let clients: Vec<Value> = self
            .clients
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.id,
                    "name": c.name,
                    "events": c.events.kinds(),
                    "motors": c.motors,
                    "queued": c.queue.len(),
                    "dropped": c.dropped,
                    "rejected": c.rejected,
                })
            })
            .collect();
        serde_json::json!({
            "clients": clients,
            "dropped": self.dropped,
            "motor_link": self.link,
        })
    }

    fn request(&mut self, id: ClientId, request: Request) {
        match request {
            Request::Hello { name } => {
                if name.is_empty()
                    || name.chars().count() > MAX_CLIENT_NAME
                    || name.chars().any(char::is_control)
                {
                    return self.reject(
                        id,
                        format!("hello: a name is 1 to {MAX_CLIENT_NAME} printable characters"),
                    );
                }
                tracing::info!("api: client {id} is {name:?}");
                if let Some(c) = self.client_mut(id) {
                    c.name = Some(name);
                }
            }
            Request::Subscribe { events } => {
                let Some(c) = self.client_mut(id) else { return };
                for kind in &events {
                    c.events.insert(*kind);
                }
                let subscribed = Reply::Subscribed {
                    events: c.events.kinds(),
                }
                .to_json();
                self.push(id, subscribed);
                if events.contains(&EventKind::Presence) {
                    self.push(id, self.presence.clone());
                }
            }
            Request::Reading { name, value } => self.reading(id, name, value),
            Request::Custom { name, value, to } => {
                let size = value.to_string().len();
                if let Err(e) = check_name(&name) {
                    return self.reject(id, format!("custom: {e}"));
                }
                if size > message::MAX_CUSTOM_BYTES {
                    return self.reject(
                        id,
                        format!(
                            "custom: value is {size} bytes as JSON, limit {}",
                            message::MAX_CUSTOM_BYTES
                        ),
                    );
                }
                self.outputs.push_back(ApiOutput::Custom {
                    client: id,
                    to,
                    name,
                    value,
                });
            }
            Request::TakeMotors => self.take_motors(id),
            Request::Ping { t } => self.push(id, Reply::Pong { t }.to_json()),
        }
    }

    fn reading(&mut self, id: ClientId, name: String, value: Value) {
        if let Err(e) = check_name(&name).and_then(|()| message::check_reading(&value)) {
            return self.reject(id, format!("reading: {e}"));
        }
        if value.is_null() {
            if self.reading_owners.remove(&name).is_some() {
                self.outputs
                    .push_back(ApiOutput::Reading { name, value: None });
            }
            return;
        }
        if !self.reading_owners.contains_key(&name) && self.reading_owners.len() >= MAX_READINGS {
            return self.reject(id, format!("reading: at most {MAX_READINGS} readings"));
        }
        self.reading_owners.insert(name.clone(), id);
        self.outputs.push_back(ApiOutput::Reading {
            name,
            value: Some(value),
        });
    }

    fn take_motors(&mut self, id: ClientId) {
        if self.link.is_none() {
            let why = format!(
                "take_motors: the drive backend is {}; set [drive] backend = \"external\" to drive the motors from a program",
                self.drive_backend
            );
            return self.reject(id, why);
        }
        let Some(c) = self.client_mut(id) else { return };
        c.motors = true;
        c.alive = true;
        let label = c.label();
        tracing::info!("api: {label} drives the motors");
        self.push(id, Reply::motors(self.motors).to_json());
        let pulses: Vec<String> = self
            .servo_pulses
            .iter()
            .map(|(index, (name, pulse_us))| {
                Reply::ServoPulse {
                    name,
                    index: *index,
                    pulse_us: *pulse_us,
                }
                .to_json()
            })
            .collect();
        for line in pulses {
            self.push(id, line);
        }
        self.update_link(format!("{label} drives the motors"));
    }

    /// Any line proves a program is there; a motor program that was silent is back.
    fn heard(&mut self, now: Instant, id: ClientId) {
        let Some(c) = self.client_mut(id) else { return };
        c.heard_at = now;
        if c.motors && !c.alive {
            c.alive = true;
            let back = format!("the motor program ({}) answers again", c.label());
            self.update_link(back);
        }
    }

    /// Recomputes the motor link from the motor programs alive; says so when it changes.
    fn update_link(&mut self, why: String) {
        let Some(old) = self.link else { return };
        let new = if self.clients.iter().any(|c| c.motors && c.alive) {
            LinkState::Ok
        } else if old == LinkState::Connecting {
            LinkState::Connecting
        } else {
            LinkState::Lost
        };
        if new != old {
            self.link = Some(new);
            self.outputs
                .push_back(ApiOutput::MotorLink { state: new, why });
        }
    }

    fn reject(&mut self, id: ClientId, reason: String) {
        let Some(c) = self.client_mut(id) else { return };
        c.rejected += 1;
        // The first refusal is logged for whoever debugs the program; then quieter.
        if c.rejected == 1 {
            tracing::info!(
                "api: {}: {reason} (further refusals at debug level)",
                c.label()
            );
        } else {
            tracing::debug!("api: {}: {reason}", c.label());
        }
        self.push(id, Reply::error(reason).to_json());
    }

    /// Queues a line, dropping the oldest when the program doesn't keep up.
    fn push(&mut self, id: ClientId, line: String) {
        let limit = self.limits.queue;
        let Some(c) = self.clients.iter_mut().find(|c| c.id == id) else {
            return;
        };
        if c.queue.len() >= limit {
            c.queue.pop_front();
            c.dropped += 1;
            self.dropped += 1;
            if c.dropped == 1 {
                tracing::warn!(
                    "api: {} falls behind: dropping its oldest messages ([api] queue = {limit})",
                    c.label()
                );
            }
        }
        c.queue.push_back(line);
    }

    fn client_mut(&mut self, id: ClientId) -> Option<&mut Client> {
        self.clients.iter_mut().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests;
