//! A microcontroller drives the motors (e.g. an Arduino with an L298N or
//! TB6612, running a sketch that speaks the protocol below); telepi
//! talks to it over a serial port, one ASCII line per command, `\n`-ended:
//!
//! | telepi sends | meaning | controller answers |
//! | --- | --- | --- |
//! | `M <left> <right>` | motor speeds, integers -1000..=1000 (sign = direction) | `OK` |
//! | `S <index> <pulse_us>` | servo `index` (its place in `[[drive.servos]]`) to a pulse, 500..=2500 µs | `OK` |
//! | `X` | stop both motors now | `OK` |
//! | `P` | ping | `P` |
//!
//! Any other answer is `ERR <why>` (logged). telepi pings every 200 ms and
//! repeats the current `M` with it while the motors move; the controller
//! stops them when no `M` came for 500 ms, so a dead Pi or a pulled cable
//! stops the robot. `X` goes out on every stop, deadman trip and exit.
//! Nothing heard for 1 s (3 s after opening: an Arduino reboots when the
//! port opens) marks the link lost, logged once and shown as `drive_link` in
//! `/api/status`; a port that fails is reopened every second (USB adapters
//! come back under the same name). After every (re)open, and when the
//! controller answers first or again, `X` and every servo's `S` go out: it
//! may just have booted and know neither.
//!
//! ```toml
//! [drive]
//! backend = "serial"
//! [drive.serial]
//! port = "/dev/ttyACM0"   # default; /dev/ttyUSB0 for CH340/FTDI adapters, /dev/serial0 for the header UART
//! baud = 115200           # default
//! ```
//!
//! All port I/O is on a thread of its own, so a slow or stuck port never
//! holds up the network loop. Between the two sits a one-deep mailbox per
//! kind: the latest motor command replaces an unsent one, a stop is never dropped.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rppal::uart::{Parity, Uart};
use serde::Deserialize;

use super::{Backend, DriveConfig, DriveError, LinkState, Motors, MAX_SERVOS};

pub const PING_EVERY: Duration = Duration::from_millis(200);
pub const LINK_TIMEOUT: Duration = Duration::from_secs(1);
/// Opening the port resets an Arduino (DTR); its bootloader waits ~2 s.
pub const BOOT_GRACE: Duration = Duration::from_secs(3);
const REOPEN_EVERY: Duration = Duration::from_secs(1);
/// How long the I/O thread sleeps at most, so answers are read promptly.
const POLL: Duration = Duration::from_millis(20);
/// Longer answers are garbage (wrong baud rate): dropped.
const MAX_LINE: usize = 64;
/// Unsent bytes beyond this mean the controller stopped reading: stale, dropped.
const MAX_UNSENT: usize = 256;
const BAUD_RATES: [u32; 10] = [
    9_600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 500_000, 921_600, 1_000_000,
];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SerialConfig {
    pub port: PathBuf,
    pub baud: u32,
}

impl Default for SerialConfig {
    fn default() -> Self {
        SerialConfig {
            port: "/dev/ttyACM0".into(),
            baud: 115_200,
        }
    }
}

impl SerialConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.port.as_os_str().is_empty() {
            return Err("drive.serial.port is empty".into());
        }
        if !BAUD_RATES.contains(&self.baud) {
            return Err(format!(
                "drive.serial.baud {} is not one of {BAUD_RATES:?}",
                self.baud
            ));
        }
        Ok(())
    }
}

/// One line from telepi to the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Motors(i16, i16),
    Servo(usize, u32),
    Stop,
    Ping,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Motors(left, right) => writeln!(f, "M {left} {right}"),
            Command::Servo(index, pulse_us) => writeln!(f, "S {index} {pulse_us}"),
            Command::Stop => writeln!(f, "X"),
            Command::Ping => writeln!(f, "P"),
        }
    }
}

/// A motor value in [-1, 1] as the protocol's integer: per mille keeps the
/// resolution of a 10-bit timer, and an AVR parses it without floats.
pub fn protocol_speed(value: f32) -> i16 {
    let v = if value.is_finite() { value } else { 0.0 };
    (v.clamp(-1.0, 1.0) * 1000.0).round() as i16
}

/// One line from the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    Ok,
    Pong,
    Err(&'a str),
    /// Anything else (a boot banner, debug prints): it still proves the link.
    Other(&'a str),
}

pub fn parse_reply(line: &str) -> Reply<'_> {
    match line.trim() {
        "OK" => Reply::Ok,
        "P" => Reply::Pong,
        err if err.starts_with("ERR") => Reply::Err(err[3..].trim()),
        other => Reply::Other(other),
    }
}

/// Link supervision, with time passed in.
#[derive(Debug)]
pub struct Link {
    state: LinkState,
    heard_at: Instant,
    ping_at: Instant,
}

/// What [`Link::poll`] says is due.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Due {
    pub ping: bool,
    /// The link has just been declared lost.
    pub lost: bool,
}

impl Link {
    pub fn opened(now: Instant) -> Link {
        Link {
            state: LinkState::Connecting,
            heard_at: now,
            ping_at: now,
        }
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    /// A line came in; returns the state before it.
    pub fn heard(&mut self, now: Instant) -> LinkState {
        self.heard_at = now;
        std::mem::replace(&mut self.state, LinkState::Ok)
    }

    pub fn poll(&mut self, now: Instant) -> Due {
        let mut due = Due::default();
        if now >= self.ping_at {
            due.ping = true;
            self.ping_at = now + PING_EVERY;
        }
        let timeout = match self.state {
            LinkState::Connecting => BOOT_GRACE,
            LinkState::Ok => LINK_TIMEOUT,
            LinkState::Lost => return due,
        };
        if now.saturating_duration_since(self.heard_at) >= timeout {
            self.state = LinkState::Lost;
            due.lost = true;
        }
        due
    }

    /// The port failed; returns whether that newly loses the link.
    pub fn closed(&mut self) -> bool {
        std::mem::replace(&mut self.state, LinkState::Lost) != LinkState::Lost
    }
}

/// What the network loop asked for since the I/O thread last looked.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outbox {
    stop: bool,
    motors: Option<(i16, i16)>,
    servos: [Option<u32>; MAX_SERVOS],
    closing: bool,
}

impl Outbox {
    pub fn set_motors(&mut self, motors: Motors) {
        let speeds = (protocol_speed(motors.left), protocol_speed(motors.right));
        if speeds == (0, 0) {
            self.stop = true;
            self.motors = None;
        } else {
            self.motors = Some(speeds);
        }
    }

    pub fn set_servo(&mut self, index: usize, pulse_us: u32) {
        if let Some(slot) = self.servos.get_mut(index) {
            *slot = Some(pulse_us);
        }
    }

    fn is_empty(&self) -> bool {
        *self == Outbox::default()
    }

    /// The commands in the order they must go out: a stop before anything newer.
    pub fn commands(&self) -> impl Iterator<Item = Command> + '_ {
        let stop = (self.stop || self.closing).then_some(Command::Stop);
        let servos = self
            .servos
            .iter()
            .enumerate()
            .filter_map(|(i, us)| Some(Command::Servo(i, (*us)?)));
        let motors = self
            .motors
            .filter(|_| !self.closing)
            .map(|(l, r)| Command::Motors(l, r));
        stop.into_iter().chain(servos).chain(motors)
    }
}

#[derive(Default)]
struct Shared {
    outbox: Mutex<Outbox>,
    wake: Condvar,
    link: Mutex<Option<LinkState>>,
}

/// The `serial` backend: hands commands to the I/O thread.
pub struct Serial {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn open_port(config: &SerialConfig) -> Result<Uart, String> {
    Uart::with_path(&config.port, config.baud, Parity::None, 8, 1).map_err(|e| e.to_string())
}

impl Serial {
    pub fn open(config: &DriveConfig) -> Result<Serial, DriveError> {
        config.validate().map_err(DriveError::Config)?;
        let c = config.serial.clone();
        let port = open_port(&c)
            .map_err(|e| DriveError::Serial(format!("opening {}: {e}", c.port.display())))?;
        tracing::info!(
            "serial: motor controller on {} at {} baud",
            c.port.display(),
            c.baud
        );
        let shared = Arc::new(Shared::default());
        let now = Instant::now();
        let worker = Worker {
            config: c,
            port: Some(port),
            link: Link::opened(now),
            shared: shared.clone(),
            unsent: Vec::new(),
            received: Vec::new(),
            moving: None,
            servos: [None; MAX_SERVOS],
            restate: false,
            reopen_at: now,
        };
        let thread = std::thread::Builder::new()
            .name("serial-motors".into())
            .spawn(move || worker.run())
            .map_err(|e| DriveError::Serial(format!("starting its thread: {e}")))?;
        Ok(Serial {
            shared,
            thread: Some(thread),
        })
    }

    fn post(&self, edit: impl FnOnce(&mut Outbox)) {
        edit(&mut self.shared.outbox.lock().expect("outbox lock"));
        self.shared.wake.notify_one();
    }
}

impl Backend for Serial {
    fn name(&self) -> &'static str {
        "serial"
    }

    fn set_motors(&mut self, motors: Motors) {
        self.post(|o| o.set_motors(motors));
    }

    fn set_servo(&mut self, index: usize, pulse_us: u32) {
        self.post(|o| o.set_servo(index, pulse_us));
    }

    fn link(&self) -> Option<LinkState> {
        *self.shared.link.lock().expect("link lock")
    }
}

impl Drop for Serial {
    /// Sends `X` and waits (briefly: a stuck port must not hang the exit) for the thread.
    fn drop(&mut self) {
        self.post(|o| o.closing = true);
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(1);
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            tracing::warn!("serial: the port did not take the final stop within 1 s");
        }
    }
}

struct Worker {
    config: SerialConfig,
    port: Option<Uart>,
    link: Link,
    shared: Arc<Shared>,
    unsent: Vec<u8>,
    received: Vec<u8>,
    /// The last `M` sent, repeated with each ping so the controller's watchdog stays fed.
    moving: Option<(i16, i16)>,
    /// Every servo's last pulse, for [`restate`](Self::restate).
    servos: [Option<u32>; MAX_SERVOS],
    /// A (re)opened or newly answering controller may have just booted (an
    /// Arduino resets when its port opens): tell it a stop and the servos.
    restate: bool,
    reopen_at: Instant,
}

impl Worker {
    fn run(mut self) {
        loop {
            let outbox = self.next_outbox();
            let now = Instant::now();
            self.reopen(now);
            let mut lines = self.restate(&outbox);
            for command in outbox.commands() {
                self.moving = match command {
                    Command::Motors(l, r) => Some((l, r)),
                    Command::Stop => None,
                    _ => self.moving,
                };
                lines.push_str(&command.to_string());
            }
            let due = self.link.poll(now);
            if due.lost {
                self.warn_lost();
            }
            if due.ping && self.port.is_some() {
                if let Some((l, r)) = self.moving.filter(|_| outbox.motors.is_none()) {
                    lines.push_str(&Command::Motors(l, r).to_string());
                }
                lines.push_str(&Command::Ping.to_string());
            }
            self.send(now, lines.as_bytes());
            self.receive(now);
            *self.shared.link.lock().expect("link lock") = Some(self.link.state());
            if outbox.closing {
                return;
            }
        }
    }

    /// `X` and every servo's pulse when the controller may have forgotten
    /// them; remembers the servos `outbox` sets.
    fn restate(&mut self, outbox: &Outbox) -> String {
        for (known, new) in self.servos.iter_mut().zip(outbox.servos) {
            *known = new.or(*known);
        }
        if !std::mem::take(&mut self.restate) || self.port.is_none() {
            return String::new();
        }
        let servos =
            (self.servos.iter().enumerate()).filter_map(|(i, us)| Some(Command::Servo(i, (*us)?)));
        std::iter::once(Command::Stop)
            .chain(servos)
            .map(|c| c.to_string())
            .collect()
    }

    /// Waits up to [`POLL`] for commands and takes them.
    fn next_outbox(&self) -> Outbox {
        let mut outbox = self.shared.outbox.lock().expect("outbox lock");
        if outbox.is_empty() {
            outbox = self
                .shared
                .wake
                .wait_timeout(outbox, POLL)
                .expect("outbox lock")
                .0;
        }
        std::mem::take(&mut *outbox)
    }

    fn port_name(&self) -> String {
        self.config.port.display().to_string()
    }

    fn warn_lost(&self) {
        tracing::warn!(
            "serial: motor controller on {} silent for {:?}: link lost (motors stop on its own watchdog)",
            self.port_name(),
            LINK_TIMEOUT
        );
    }

    fn reopen(&mut self, now: Instant) {
        if self.port.is_some() || now < self.reopen_at {
            return;
        }
        self.reopen_at = now + REOPEN_EVERY;
        match open_port(&self.config) {
            Ok(port) => {
                tracing::info!("serial: reopened {}", self.port_name());
                self.port = Some(port);
                self.restate = true;
                self.unsent.clear();
                self.received.clear();
            }
            Err(e) => tracing::debug!("serial: reopening {}: {e}", self.port_name()),
        }
    }

    fn fail(&mut self, now: Instant, what: &str, e: rppal::uart::Error) {
        let lost = if self.link.closed() {
            ": link lost (motors stop on its own watchdog)"
        } else {
            ""
        };
        tracing::warn!(
            "serial: {what} {}: {e}{lost}; reopening it every {REOPEN_EVERY:?}",
            self.port_name()
        );
        self.port = None;
        self.reopen_at = now + REOPEN_EVERY;
    }

    fn send(&mut self, now: Instant, bytes: &[u8]) {
        let Some(port) = &mut self.port else {
            return;
        };
        if self.unsent.len() > MAX_UNSENT {
            self.unsent.clear();
        }
        self.unsent.extend_from_slice(bytes);
        if self.unsent.is_empty() {
            return;
        }
        match port.write(&self.unsent) {
            Ok(n) => {
                self.unsent.drain(..n);
            }
            Err(e) => self.fail(now, "writing to", e),
        }
    }

    fn receive(&mut self, now: Instant) {
        let mut buf = [0u8; 256];
        while let Some(port) = &mut self.port {
            match port.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) => return self.fail(now, "reading from", e),
            }
        }
        while let Some(end) = self.received.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.received.drain(..=end).collect();
            self.on_line(now, &String::from_utf8_lossy(&line));
        }
        if self.received.len() > MAX_LINE {
            self.received.clear();
        }
    }

    fn on_line(&mut self, now: Instant, line: &str) {
        match self.link.heard(now) {
            LinkState::Lost => tracing::info!("serial: motor controller answers again"),
            LinkState::Connecting => tracing::info!("serial: motor controller answers"),
            LinkState::Ok => return self.on_reply(line),
        }
        self.restate = true;
        self.on_reply(line);
    }

    fn on_reply(&self, line: &str) {
        match parse_reply(line) {
            Reply::Err(why) => tracing::warn!("serial: motor controller: ERR {why}"),
            Reply::Other(text) => tracing::debug!("serial: motor controller says {text:?}"),
            Reply::Ok | Reply::Pong => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: Instant, n: u64) -> Instant {
        t + Duration::from_millis(n)
    }

    fn lines(outbox: &Outbox) -> String {
        outbox.commands().map(|c| c.to_string()).collect()
    }

    #[test]
    fn commands_are_the_documented_lines() {
        assert_eq!(Command::Motors(500, -1000).to_string(), "M 500 -1000\n");
        assert_eq!(Command::Servo(1, 1500).to_string(), "S 1 1500\n");
        assert_eq!(Command::Stop.to_string(), "X\n");
        assert_eq!(Command::Ping.to_string(), "P\n");
        assert_eq!(protocol_speed(0.4567), 457);
        assert_eq!(protocol_speed(-3.0), -1000);
        assert_eq!(protocol_speed(f32::NAN), 0);
    }

    #[test]
    fn replies_parse_with_or_without_carriage_returns() {
        assert_eq!(parse_reply("OK\r\n"), Reply::Ok);
        assert_eq!(parse_reply("P\n"), Reply::Pong);
        assert_eq!(parse_reply("ERR bad servo\r\n"), Reply::Err("bad servo"));
        assert_eq!(
            parse_reply("telepi-motors 1\n"),
            Reply::Other("telepi-motors 1")
        );
    }

    #[test]
    fn the_latest_motor_command_wins_but_a_stop_is_never_dropped() {
        let mut o = Outbox::default();
        o.set_motors(Motors {
            left: 0.5,
            right: 0.5,
        });
        o.set_motors(Motors {
            left: 0.0,
            right: 0.0,
        });
        o.set_motors(Motors {
            left: 1.0,
            right: -0.25,
        });
        o.set_servo(1, 1200);
        o.set_servo(1, 1300);
        o.set_servo(MAX_SERVOS, 1500);
        assert_eq!(lines(&o), "X\nS 1 1300\nM 1000 -250\n");
        o.closing = true;
        assert_eq!(lines(&o), "X\nS 1 1300\n", "closing: nothing moves again");
        assert!(Outbox::default().is_empty());
    }

    #[test]
    fn link_pings_times_out_and_recovers() {
        let t = Instant::now();
        let mut link = Link::opened(t);
        assert_eq!(
            link.poll(t),
            Due {
                ping: true,
                lost: false
            }
        );
        assert_eq!(link.poll(ms(t, 199)), Due::default());
        assert!(link.poll(ms(t, 200)).ping);
        // A rebooting Arduino gets BOOT_GRACE before its first answer.
        assert!(!link.poll(ms(t, 2_999)).lost);
        assert_eq!(link.heard(ms(t, 2_999)), LinkState::Connecting);
        assert_eq!(link.state(), LinkState::Ok);
        assert!(!link.poll(ms(t, 3_998)).lost);
        assert!(link.poll(ms(t, 3_999)).lost, "1 s of silence");
        assert_eq!(link.state(), LinkState::Lost);
        assert!(!link.poll(ms(t, 9_000)).lost, "lost is reported once");
        assert!(!link.closed(), "already lost");
        assert_eq!(link.heard(ms(t, 9_100)), LinkState::Lost);
        assert_eq!(link.state(), LinkState::Ok);
        assert!(link.closed());
    }

    #[test]
    fn config_checks_the_baud_rate() {
        SerialConfig::default().validate().unwrap();
        let odd = SerialConfig {
            baud: 12_345,
            ..SerialConfig::default()
        };
        assert!(odd.validate().unwrap_err().contains("115200"));
    }
}
