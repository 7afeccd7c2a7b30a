//! The `serial` motor backend end to end: telepi opens one end of a
//! pseudo-terminal pair as its serial port (through rppal's UART, as it
//! would /dev/ttyACM0), this test plays the microcontroller on the other end
//! with the documented line protocol (src/drive/serial.rs), and a real
//! WebRTC operator drives. Checks: drives arrive as `M` lines, every stop
//! (deadman, `stop`, SIGTERM) sends `X`, a controller that goes silent or a
//! cable that is pulled shows as `drive_link: "lost"` in /api/status and in
//! the operator's telemetry, and telepi picks the port up again when it
//! comes back. Then the reference Arduino sketch (board/arduino/telepi-motors)
//! takes the test's place, twice: its protocol code built for the host, and
//! its firmware built for an Uno running on an emulated ATmega328P (simavr).

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Log, Peer, Server};
use serde_json::Value;

/// Generous: the link timeout is 1 s and the port is reopened every second.
const PATIENCE: Duration = Duration::from_secs(10);

/// One line telepi sent, as the protocol documents it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Line {
    Motors(i32, i32),
    Servo(usize, u32),
    Stop,
    Ping,
}

/// Parses a line the way a controller must; `Err` is the `ERR` reason.
fn parse(line: &str) -> Result<Line, String> {
    let words: Vec<&str> = line.split(' ').collect();
    let number = |w: &str| w.parse::<i64>().map_err(|_| format!("not a number: {w:?}"));
    match words[..] {
        ["M", left, right] => {
            let (l, r) = (number(left)?, number(right)?);
            let speed = -1000..=1000;
            if !speed.contains(&l) || !speed.contains(&r) {
                return Err(format!("speed out of range: {line}"));
            }
            Ok(Line::Motors(l as i32, r as i32))
        }
        ["S", index, pulse] => {
            let (i, us) = (number(index)?, number(pulse)?);
            if !(0..8).contains(&i) || !(500..=2500).contains(&us) {
                return Err(format!("servo out of range: {line}"));
            }
            Ok(Line::Servo(i as usize, us as u32))
        }
        ["X"] => Ok(Line::Stop),
        ["P"] => Ok(Line::Ping),
        _ => Err(format!("unknown command {line:?}")),
    }
}

/// A pseudo-terminal pair whose terminal end is reachable at a fixed path
/// (a symlink, as udev's /dev/serial/by-id/ names are): telepi's serial port.
struct Pty {
    /// The controller's end.
    master: OwnedFd,
    /// The terminal end telepi opens, held open here as well so that the
    /// master reads nothing but telepi's writes until the cable is pulled.
    slave: OwnedFd,
}

impl Pty {
    fn open(port: &Path) -> Pty {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty fills the two fds; no name buffer, default termios and size.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just opened by openpty and are owned here only.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // Close-on-exec, as std opens files: a telepi started later must not
        // inherit the master, or pulling the cable could never hang it up.
        for fd in [&master, &slave] {
            // SAFETY: fcntl on an fd owned here.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        // Raw, as a serial line is: the terminal's default echo would bounce
        // the controller's banner back at it until telepi opens the port
        // (and sets raw mode itself).
        // SAFETY: termios of an fd owned here, into a zeroed struct it fills.
        unsafe {
            let mut termios: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &mut termios), 0);
            libc::cfmakeraw(&mut termios);
            assert_eq!(
                libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &termios),
                0
            );
        }
        let tty = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd())).unwrap();
        let _ = std::fs::remove_file(port);
        std::os::unix::fs::symlink(&tty, port).unwrap();
        Pty { master, slave }
    }
}

/// The microcontroller, played by this test on the master end of a [`Pty`].
struct Controller {
    /// What telepi sent, in order, each line with when it came.
    lines: Receiver<(Instant, String)>,
    /// Cleared: the controller reads but no longer answers (a hung sketch).
    answering: Arc<AtomicBool>,
    unplugged: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _slave: OwnedFd,
}

impl Controller {
    /// A fresh pty pair with its terminal end linked at `port`.
    fn plug(port: &Path) -> Controller {
        let Pty { master, slave } = Pty::open(port);
        let (tx, lines) = mpsc::channel();
        let answering = Arc::new(AtomicBool::new(true));
        let unplugged = Arc::new(AtomicBool::new(false));
        let thread = {
            let (answering, unplugged) = (answering.clone(), unplugged.clone());
            std::thread::spawn(move || {
                let mut master = File::from(master);
                let mut pending = Vec::new();
                let mut buf = [0u8; 256];
                while !unplugged.load(Ordering::SeqCst) {
                    let mut poll = libc::pollfd {
                        fd: master.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd; 20 ms so an unplug is noticed promptly.
                    if unsafe { libc::poll(&mut poll, 1, 20) } <= 0 {
                        continue;
                    }
                    let Ok(n) = master.read(&mut buf) else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                        let raw: Vec<u8> = pending.drain(..=end).collect();
                        let line = String::from_utf8_lossy(&raw[..end]).into_owned();
                        let reply = match parse(&line) {
                            Ok(Line::Ping) => "P".to_string(),
                            Ok(_) => "OK".to_string(),
                            Err(why) => format!("ERR {why}"),
                        };
                        if answering.load(Ordering::SeqCst) {
                            // CR LF, as Arduino's Serial.println ends lines.
                            let _ = master.write_all(format!("{reply}\r\n").as_bytes());
                        }
                        if tx.send((Instant::now(), line)).is_err() {
                            return;
                        }
                    }
                }
                // Dropping the master hangs the terminal up: telepi's next write fails.
            })
        };
        Controller {
            lines,
            answering,
            unplugged,
            thread: Some(thread),
            _slave: slave,
        }
    }

    /// Every line that came within `wait`, parsed; panics on a line that
    /// breaks the protocol.
    fn collect(&self, wait: Duration) -> Vec<(Instant, Line)> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        while let Ok((at, line)) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let parsed = parse(&line).unwrap_or_else(|e| panic!("telepi broke the protocol: {e}"));
            got.push((at, parsed));
        }
        got
    }

    /// Waits for the first line `want` accepts; returns it with the lines before it.
    fn wait_for(&self, what: &str, want: impl Fn(Line) -> bool) -> (Instant, Vec<Line>) {
        let deadline = Instant::now() + PATIENCE;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, line) = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} within {PATIENCE:?}; got {before:?}"));
            let parsed = parse(&line).unwrap_or_else(|e| panic!("telepi broke the protocol: {e}"));
            if want(parsed) {
                return (at, before);
            }
            before.push(parsed);
        }
    }

    /// Pulls the cable: the pty pair goes away and the port's path with it.
    fn unplug(mut self, port: &Path) {
        self.unplugged.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        std::fs::remove_file(port).unwrap();
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.unplugged.store(true, Ordering::SeqCst);
    }
}

/// A config for the serial backend on `port`, no ramp or deadband (so a
/// drive maps straight to the numbers sent), one servo.
fn config(dir: &Path, port: &Path, deadman_ms: u32) -> PathBuf {
    let path = dir.join("telepi.toml");
    let text = format!(
        "[video]\nsource = \"pattern\"\nwidth = 160\nheight = 120\nfps = 5\n\
         [audio]\nsource = \"none\"\nsink = \"none\"\n\
         [drive]\nbackend = \"serial\"\ndeadman_ms = {deadman_ms}\naccel = 0.0\ndeadband = 0.0\n\
         [drive.serial]\nport = \"{}\"\nbaud = 115200\n\
         [[drive.servos]]\nname = \"pan\"\nmin_us = 1000\nmax_us = 2000\ninitial = 0.0\n",
        port.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn drive(peer: &mut Peer, linear: f64, angular: f64) {
    peer.send(
        &serde_json::json!({ "type": "drive", "linear": linear, "angular": angular }).to_string(),
    );
}

/// Drives every 50 ms (a held stick) until the controller gets `want`;
/// returns when the last drive was sent.
fn drive_until(
    peer: &mut Peer,
    mcu: &Controller,
    linear: f64,
    angular: f64,
    want: Line,
) -> Instant {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let sent = Instant::now();
        drive(peer, linear, angular);
        peer.run_for(Duration::from_millis(50));
        let lines = mcu.collect(Duration::ZERO);
        if lines.iter().any(|(_, l)| *l == want) {
            return sent;
        }
        seen.extend(lines.into_iter().map(|(_, l)| l));
    }
    panic!("drive {linear} {angular} never reached the controller as {want:?}; got {seen:?}");
}

fn link(server: &Server) -> Value {
    server.status()["drive_link"].clone()
}

/// Runs the operator's client until its telemetry says `drive_link` is `state`.
fn operator_told(peer: &mut Peer, state: &str) {
    assert!(
        peer.run_until(PATIENCE, |p| p
            .last_message("telemetry")
            .is_some_and(|t| t["drive_link"] == state)),
        "the operator's telemetry never said drive_link {state:?}: {:?}",
        peer.last_message("telemetry")
    );
}

#[test]
fn drives_stops_and_a_dead_link_over_a_pseudo_terminal() {
    let dir = std::env::temp_dir().join(format!("telepi-serial-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = dir.join("ttyACM0");
    let mcu = Controller::plug(&port);
    let server = Server::start_logged(&["--config", config(&dir, &port, 300).to_str().unwrap()]);
    assert_eq!(server.status()["drive_backend"], "serial");

    // At start the servo goes to its initial position and the motors are stopped.
    let (_, before) = mcu.wait_for("the first ping", |l| l == Line::Ping);
    let start = [
        before,
        mcu.collect(Duration::from_millis(300))
            .into_iter()
            .map(|(_, l)| l)
            .collect(),
    ]
    .concat();
    assert!(start.contains(&Line::Stop), "no X at start: {start:?}");
    assert!(
        start.contains(&Line::Servo(0, 1500)),
        "servo not centred: {start:?}"
    );
    assert!(
        server.wait_for(PATIENCE, |s| s["drive_link"] == "ok"),
        "{}",
        server.status()
    );

    let mut op = Peer::connect_control_only(&server);
    drive_until(&mut op, &mcu, 0.5, 0.0, Line::Motors(500, 500));
    // Positive angular turns left: the left wheel backwards.
    let last_drive = drive_until(&mut op, &mcu, 0.0, 0.25, Line::Motors(-250, 250));
    operator_told(&mut op, "ok");

    // The deadman (300 ms): once the drives stop, X comes and no M after it.
    let (stopped, _) = mcu.wait_for("the deadman's X", |l| l == Line::Stop);
    let deadman = stopped - last_drive;
    eprintln!("deadman: X reached the controller {deadman:?} after the last drive was sent");
    assert!(
        deadman >= Duration::from_millis(300),
        "X came before the deadman: {deadman:?}"
    );
    op.run_for(Duration::from_millis(600));
    let after = mcu.collect(Duration::ZERO);
    assert!(
        after.iter().all(|(_, l)| *l == Line::Ping),
        "after the deadman's X only pings may follow: {after:?}"
    );

    // An explicit stop while moving, and a servo.
    drive_until(&mut op, &mcu, 1.0, 0.0, Line::Motors(1000, 1000));
    op.send(r#"{"type":"stop"}"#);
    op.run_for(Duration::from_millis(50));
    mcu.wait_for("stop's X", |l| l == Line::Stop);
    op.send(r#"{"type":"servo","name":"pan","value":1.0}"#);
    op.run_for(Duration::from_millis(50));
    mcu.wait_for("the servo line", |l| l == Line::Servo(0, 2000));

    // The controller hangs (reads, never answers): lost, then back when it answers.
    mcu.answering.store(false, Ordering::SeqCst);
    operator_told(&mut op, "lost");
    assert_eq!(link(&server), "lost");
    assert!(server
        .log
        .wait_for(PATIENCE, &["serial", "link lost"])
        .is_some());
    mcu.answering.store(true, Ordering::SeqCst);
    operator_told(&mut op, "ok");
    assert!(server.log.wait_for(PATIENCE, &["answers again"]).is_some());

    // The cable is pulled: lost; plugged back in under the same name: driving again.
    mcu.unplug(&port);
    operator_told(&mut op, "lost");
    assert_eq!(link(&server), "lost");
    let mcu = Controller::plug(&port);
    // Issue 19: a controller that just booted is told a stop and where the
    // servo is (set to 1.0 above), before any motor command.
    let (_, before) = mcu.wait_for("the servo restated after the replug", |l| {
        l == Line::Servo(0, 2000)
    });
    assert!(
        before.contains(&Line::Stop) && !before.iter().any(|l| matches!(l, Line::Motors(..))),
        "X first, no M before the servo: {before:?}"
    );
    operator_told(&mut op, "ok");
    assert!(server
        .log
        .wait_for(PATIENCE, &["serial: reopened"])
        .is_some());
    drive_until(&mut op, &mcu, 0.5, 0.0, Line::Motors(500, 500));

    // SIGTERM while moving: X comes after the last M, and nothing moves after it.
    drive_until(&mut op, &mcu, 1.0, 0.0, Line::Motors(1000, 1000));
    assert_eq!(server.terminate(), Some(0));
    let tail: Vec<Line> = mcu
        .collect(Duration::from_millis(500))
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let last_stop = tail.iter().rposition(|l| *l == Line::Stop);
    let last_move = tail.iter().rposition(|l| matches!(l, Line::Motors(..)));
    assert!(
        last_stop.is_some() && last_stop > last_move,
        "on exit X must follow the last M: {tail:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_port_that_is_not_there_is_a_clear_error_at_start() {
    let dir = std::env::temp_dir().join(format!("telepi-serial-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = dir.join("ttyACM9");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_telepi"))
        .args(["--config", config(&dir, &port, 300).to_str().unwrap()])
        .args(["--http", "127.0.0.1:0", "--rtc", "127.0.0.1:0"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("ttyACM9"),
        "the error must name the port: {said}"
    );
    assert!(!said.contains("panicked"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `command` with its output in `dir`, panicking with what it printed if it fails.
fn build(command: &mut std::process::Command, what: &str) {
    let built = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (tests/run-all.sh installs what it needs)"));
    assert!(
        built.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn built(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// tests/arduino/host.cpp: the sketch's protocol.h on a PC, built with g++.
fn sketch_protocol_on_the_host() -> std::process::Command {
    let host = built("telepi-motors-host");
    build(
        std::process::Command::new("g++")
            .args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-O1", "-o"])
            .arg(&host)
            .arg(repo("tests/arduino/host.cpp")),
        "building the sketch's protocol.h on the host with g++",
    );
    std::process::Command::new(host)
}

/// The sketch built for an Uno (tests/arduino/avr-build.sh) running on an
/// emulated ATmega328P (tests/arduino/simavr-uno.c).
fn sketch_firmware_on_an_emulated_uno() -> std::process::Command {
    let avr = built("arduino");
    build(
        std::process::Command::new(repo("tests/arduino/avr-build.sh")).arg(&avr),
        "building the sketch for an Uno (tests/arduino/avr-build.sh)",
    );
    let simulator = built("simavr-uno");
    build(
        std::process::Command::new("gcc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"])
            .arg("-I/usr/include/simavr")
            .arg(repo("tests/arduino/simavr-uno.c"))
            .args(["-lsimavr", "-o"])
            .arg(&simulator),
        "building tests/arduino/simavr-uno.c against Debian's libsimavr-dev",
    );
    let mut run = std::process::Command::new(simulator);
    run.arg(avr.join("telepi-motors.elf"));
    run
}

/// Waits until `log` has more than `seen` lines that are exactly `line`.
fn wait_for_another(log: &Log, line: &str, seen: usize) {
    let count = || log.text().lines().filter(|l| *l == line).count();
    let deadline = Instant::now() + PATIENCE;
    while count() <= seen {
        assert!(
            Instant::now() < deadline,
            "the sketch never said {line:?}; it said:\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Holds the stick until the sketch's outputs say `outputs`.
fn drive_sketch_until(peer: &mut Peer, sketch: &Log, linear: f64, angular: f64, outputs: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !sketch.text().lines().any(|l| l == outputs) {
        assert!(
            Instant::now() < deadline,
            "drive {linear} {angular} never gave {outputs:?}; the sketch said:\n{}",
            sketch.text()
        );
        drive(peer, linear, angular);
        peer.run_for(Duration::from_millis(50));
    }
}

/// The reference sketch (its protocol code on the host, or its firmware on
/// an emulated Uno) as telepi's motor controller: its outputs follow the
/// operator's drives, `stop` and servo, it never refuses a line telepi
/// sends, and when telepi is killed at full speed (no X can come) its own
/// watchdog stops the motors.
fn the_sketch_follows_telepi_and_stops_on_its_own(mut sketch: std::process::Command, name: &str) {
    let dir = std::env::temp_dir().join(format!("telepi-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = dir.join("ttyACM0");
    let pty = Pty::open(&port);
    let mut sketch = sketch
        .stdin(File::from(pty.master.try_clone().unwrap()))
        .stdout(File::from(pty.master.try_clone().unwrap()))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let said = Log::default();
    said.collect(sketch.stderr.take().unwrap());
    drop(pty.master);
    // A deadman far longer than the test: only `stop` and the sketch's own
    // watchdog may stop the motors here.
    let server = Server::start_logged(&["--config", config(&dir, &port, 60_000).to_str().unwrap()]);
    assert!(
        server.wait_for(PATIENCE, |s| s["drive_link"] == "ok"),
        "telepi never heard the sketch: {}",
        server.status()
    );
    const STOPPED: &str = "outputs left=C0 right=C0";
    wait_for_another(&said, STOPPED, 0);

    let mut op = Peer::connect_control_only(&server);
    // 500 of 1000 is PWM 128 of 255; a left turn runs the left wheel backwards.
    drive_sketch_until(&mut op, &said, 0.5, 0.0, "outputs left=F128 right=F128");
    drive_sketch_until(&mut op, &said, 0.0, 0.25, "outputs left=R64 right=F64");
    op.send(r#"{"type":"stop"}"#);
    op.run_for(Duration::from_millis(50));
    wait_for_another(&said, STOPPED, 1);
    op.send(r#"{"type":"servo","name":"pan","value":1.0}"#);
    op.run_for(Duration::from_millis(50));
    wait_for_another(&said, "servo 0 2000", 0);

    // A dead Pi: telepi killed at full speed sends no X; the sketch's
    // watchdog stops the motors on its own.
    drive_sketch_until(&mut op, &said, 1.0, 0.0, "outputs left=F255 right=F255");
    const WATCHDOG: &str = "said watchdog";
    let watchdogs = said.text().lines().filter(|l| *l == WATCHDOG).count();
    let killed = Instant::now();
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(server.pid() as i32, libc::SIGKILL) };
    wait_for_another(&said, STOPPED, 2);
    eprintln!(
        "{name}: motors stopped {:?} after telepi was killed",
        killed.elapsed()
    );
    // The sketch's watchdog must be what stopped them. It says so just after
    // the outputs line, which an emulated Uno under qemu-user may take a
    // moment over: waited for, not read at once.
    wait_for_another(&said, WATCHDOG, watchdogs);
    let text = said.text();
    assert!(
        !text.contains("said ERR"),
        "the sketch refused lines telepi sent:\n{text}"
    );
    let _ = sketch.kill();
    let _ = sketch.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_sketchs_protocol_code_on_the_host_follows_telepi_and_stops_on_its_own() {
    the_sketch_follows_telepi_and_stops_on_its_own(sketch_protocol_on_the_host(), "sketch-host");
}

#[test]
fn the_sketch_firmware_on_an_emulated_uno_follows_telepi_and_stops_on_its_own() {
    the_sketch_follows_telepi_and_stops_on_its_own(
        sketch_firmware_on_an_emulated_uno(),
        "sketch-uno",
    );
}
