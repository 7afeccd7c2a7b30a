//! End to end: the robot's own programs on the local API (the Python
//! examples in `examples/`, and raw Unix sockets for misbehaving ones) with
//! the real binary (sim motors, or `external`) and real WebRTC clients on
//! loopback.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{refused, Log, Peer, Server};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// A fresh directory for one test's socket and config.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("telepi-api-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a config with `[api] socket` in `dir` (plus `api_keys`) and `rest`.
fn config(dir: &Path, api_keys: &str, rest: &str) -> (PathBuf, PathBuf) {
    let socket = dir.join("api.sock");
    let path = dir.join("telepi.toml");
    let text = format!(
        "[api]\nsocket = \"{}\"\n{api_keys}\n{rest}",
        socket.display()
    );
    std::fs::write(&path, text).unwrap();
    (path, socket)
}

fn start(dir: &Path, api_keys: &str, rest: &str) -> (Server, PathBuf) {
    let (path, socket) = config(dir, api_keys, rest);
    let server = Server::start_logged(&["--config", path.to_str().unwrap()]);
    (server, socket)
}

/// One of the Python examples, its stdout collected.
struct Program {
    child: Child,
    out: Log,
}

impl Program {
    fn start(script: &str, socket: &Path, args: &[&str]) -> Program {
        let mut child = Command::new("python3")
            .arg(Path::new("examples").join(script))
            .arg(socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let out = Log::default();
        out.collect(child.stdout.take().unwrap());
        Program { child, out }
    }

    /// The first line printed after the first `skip` containing all `parts`,
    /// keeping `peer`'s connection going meanwhile (its sends leave only then).
    fn printed_from(&self, skip: usize, peer: &mut Peer, parts: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(line) = self.out.wait_for_from(skip, Duration::ZERO, parts) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "never printed {parts:?}:\n{}",
                self.out.text()
            );
            peer.run_for(Duration::from_millis(20));
        }
    }

    fn printed(&self, peer: &mut Peer, parts: &[&str]) -> String {
        self.printed_from(0, peer, parts)
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A program written here: raw lines both ways.
struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    fn connect(socket: &Path) -> Client {
        let writer = UnixStream::connect(socket).unwrap();
        writer.set_read_timeout(Some(WAIT)).unwrap();
        let reader = BufReader::new(writer.try_clone().unwrap());
        let mut client = Client { writer, reader };
        assert_eq!(client.next_of("welcome")["type"], "welcome");
        client
    }

    fn send(&mut self, message: Value) {
        writeln!(self.writer, "{message}").unwrap();
    }

    /// The next line of type `kind`, skipping others.
    fn next_of(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("a line in time");
            let value: Value = serde_json::from_str(&line).unwrap();
            if value["type"] == kind {
                return value;
            }
            assert!(Instant::now() < deadline, "no {kind} in time");
        }
    }
}

fn api_client<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["api"]["clients"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

/// A peer with the operator role (no secret configured: claiming takes it).
fn operator(server: &Server, video: bool) -> Peer {
    let mut peer = if video {
        Peer::connect(server)
    } else {
        Peer::connect_control_only(server)
    };
    peer.send(r#"{"type":"claim"}"#);
    assert!(peer.run_until(WAIT, |p| p
        .last_message("role")
        .is_some_and(|r| r["role"] == "operator")));
    peer
}

fn drive(peer: &mut Peer, linear: f64) {
    peer.send(&json!({"type":"drive","linear":linear,"angular":0}).to_string());
}

/// Waits until the peer is sent a message with these fields.
fn receives(peer: &mut Peer, want: &Value) -> bool {
    peer.run_until(WAIT, |p| {
        p.texts
            .iter()
            .filter_map(|t| serde_json::from_str::<Value>(t).ok())
            .any(|m| m == *want)
    })
}

/// Waits for an `error` whose reason contains `part`.
fn error_containing(peer: &mut Peer, part: &str) -> bool {
    peer.run_until(WAIT, |p| {
        p.texts
            .iter()
            .filter_map(|t| serde_json::from_str::<Value>(t).ok())
            .any(|m| m["type"] == "error" && m["reason"].as_str().is_some_and(|r| r.contains(part)))
    })
}

const PANEL: &str = r#"
[[controls]]
name = "horn"
kind = "button"
key = "h"
[[controls]]
name = "speed"
kind = "slider"
[[readings]]
name = "load"
label = "Load"
"#;

#[test]
fn controls_readings_and_the_operators_commands_reach_the_programs_and_back() {
    let dir = scratch("roundtrip");
    let (server, socket) = start(&dir, "", PANEL);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660, "the default socket mode");
    let logger = Program::start("api_logger.py", &socket, &["--every", "0.2"]);
    assert!(
        server.wait_for(WAIT, |s| api_client(s, "logger").is_some_and(|c| c
            ["events"]
            .as_array()
            .unwrap()
            .len()
            == 5))
    );

    let mut op = operator(&server, false);
    let layout = op
        .last_message("controls")
        .expect("the page gets the controls");
    assert_eq!(
        layout["controls"][0],
        json!({"name":"horn","kind":"button","label":"horn","key":"h"})
    );
    assert_eq!(layout["readings"][0]["label"], "Load");
    logger.printed(&mut op, &["presence: 1 operator"]);

    // Round trip: the page's control reaches the program, which answers the pages.
    op.send(r#"{"type":"custom","name":"horn","value":true}"#);
    logger.printed(&mut op, &["custom from peer 1 (operator): horn = true"]);
    assert!(receives(
        &mut op,
        &json!({"type":"custom","name":"horn","value":true})
    ));
    op.send(r#"{"type":"custom","name":"speed","value":7}"#);
    logger.printed(&mut op, &["custom from peer 1 (operator): speed = 1.0"]);

    // The program's reading is in the telemetry and the status.
    assert!(op.run_until(WAIT, |p| p
        .last_message("telemetry")
        .is_some_and(|t| t["readings"]["load"].is_number())));
    assert!(server.status()["readings"]["load"].is_number());

    drive(&mut op, 0.5);
    logger.printed(
        &mut op,
        &["drive from peer 1 (operator): linear +0.50 angular +0.00"],
    );
    op.send(r#"{"type":"servo","name":"pan","value":0.3}"#);
    assert!(
        error_containing(&mut op, "unknown servo"),
        "no servos configured"
    );

    let mut viewer = Peer::connect_control_only(&server);
    logger.printed(&mut viewer, &["presence: 1 operator, 2 viewer"]);
    viewer.send(r#"{"type":"custom","name":"horn","value":true}"#);
    assert!(error_containing(&mut viewer, "you are a viewer"));
    viewer.send(r#"{"type":"stop"}"#);
    logger.printed(&mut viewer, &["stop from peer 2 (viewer)"]);
    op.send(r#"{"type":"custom","name":"siren","value":true}"#);
    assert!(error_containing(&mut op, r#"unknown control "siren""#));
    assert_eq!(
        logger.out.text().matches("custom from").count(),
        2,
        "refused controls reach no program"
    );

    // A program's message for the operator only.
    let mut raw = Client::connect(&socket);
    raw.send(json!({"type":"custom","name":"note","value":"obstacle ahead","to":"operator"}));
    assert!(receives(
        &mut op,
        &json!({"type":"custom","name":"note","value":"obstacle ahead"})
    ));
    viewer.run_for(Duration::from_millis(200));
    assert!(!viewer.texts.iter().any(|t| t.contains("obstacle")));
    raw.send(json!({"type":"reading","name":"bad name","value":1}));
    assert!(raw.next_of("error")["reason"]
        .as_str()
        .unwrap()
        .contains("letters, digits"));

    // The program leaves: its reading goes with it.
    drop(logger);
    assert!(server.wait_for(WAIT, |s| s["readings"].get("load").is_none()));
}

#[test]
fn the_external_backend_gets_the_drives_and_telepi_keeps_the_deadman() {
    let dir = scratch("external");
    let drive_config = "[drive]\nbackend = \"external\"\naccel = 0.0\n";
    let (server, socket) = start(&dir, "", drive_config);
    let status = server.status();
    assert_eq!(status["drive_backend"], "external");
    assert_eq!(status["drive_link"], "connecting");

    let motors = Program::start("api_motors.py", &socket, &[]);
    assert!(server.wait_for(WAIT, |s| s["drive_link"] == "ok"));
    let mut op = operator(&server, false);
    let before = motors.out.line_count();
    let deadline = Instant::now() + WAIT;
    while motors
        .out
        .wait_for_from(before, Duration::ZERO, &["left=+1.00 right=+1.00"])
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "no drive reached the program:\n{}",
            motors.out.text()
        );
        drive(&mut op, 1.0); // a held joystick
        op.run_for(Duration::from_millis(50));
    }
    // The operator goes silent: the deadman sends the program a stop.
    let moving = motors.out.line_count();
    motors.printed_from(moving, &mut op, &["motors stop"]);
    assert!(op.run_until(WAIT, |p| p
        .last_message("telemetry")
        .is_some_and(|t| t["drive_link"] == "ok" && t["motors"]["left"] == 0.0)));

    // The program dies: telepi says so to the operator, and the link is lost.
    drop(motors);
    assert!(error_containing(
        &mut op,
        r#"the motor program (client 1 ("motors")) disconnected"#
    ));
    assert_eq!(server.status()["drive_link"], "lost");

    // A program that takes the motors and then goes silent.
    let mut silent = Client::connect(&socket);
    silent.send(json!({"type":"hello","name":"silent"}));
    silent.send(json!({"type":"take_motors"}));
    assert_eq!(
        silent.next_of("motors"),
        json!({"type":"motors","left":0.0,"right":0.0})
    );
    assert!(server.wait_for(WAIT, |s| s["drive_link"] == "ok"));
    drive(&mut op, 0.5);
    op.run_for(Duration::from_millis(100));
    let half = silent.next_of("motors"); // after the deadband's rescaling
    assert!(
        half["left"].as_f64() > Some(0.4) && half["left"] == half["right"],
        "{half}"
    );
    assert!(error_containing(
        &mut op,
        r#"("silent")) stopped answering"#
    ));
    assert_eq!(server.status()["drive_link"], "lost");
    assert!(server.wait_for(WAIT, |s| s["motors"] == json!({"left":0.0,"right":0.0})));
    silent.send(json!({"type":"ping"}));
    assert!(
        server.wait_for(WAIT, |s| s["drive_link"] == "ok"),
        "speaking again revives it"
    );
}

#[test]
fn a_stuck_program_delays_neither_the_video_nor_the_peers_nor_other_programs() {
    let dir = scratch("stuck");
    let (server, socket) = start(&dir, "queue = 16", PANEL);
    // Subscribes to everything, then never reads a byte.
    let mut stuck = UnixStream::connect(&socket).unwrap();
    stuck
        .write_all(b"{\"type\":\"hello\",\"name\":\"stuck\"}\n{\"type\":\"subscribe\",\"events\":[\"drive\",\"servo\",\"stop\",\"custom\",\"presence\"]}\n")
        .unwrap();
    let logger = Program::start("api_logger.py", &socket, &[]);
    let mut viewer = Peer::connect(&server);
    assert!(viewer.run_until(WAIT, |p| p.frames_decoded > 0));
    let mut op = operator(&server, false);

    // Until the stuck program's socket buffer and queue are full and lines are dropped.
    // Generous: under qemu-user (tests/pi/cross-smoke.sh) telepi is slow.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut sent = 0;
    // (Queued lines move on into the socket at every step unless it is full.)
    let stuck_and_full = |s: &Value| {
        api_client(s, "stuck").is_some_and(|c| c["queued"] == 16 && c["dropped"].as_u64() > Some(0))
    };
    while !stuck_and_full(&server.status()) {
        assert!(
            Instant::now() < deadline,
            "nothing dropped after {sent} drives"
        );
        for _ in 0..50 {
            drive(&mut op, if sent % 2 == 0 { 0.3 } else { -0.3 });
            sent += 1;
        }
        op.run_for(Duration::from_millis(20));
        viewer.run_for(Duration::from_millis(5));
    }
    let status = server.status();
    assert!(status["api"]["dropped"].as_u64() > Some(0));

    // With it still stuck: the video plays on, pings come back, the other
    // program hears the newest command, and the motors follow the operator.
    let frames = viewer.frames_decoded;
    assert!(viewer.run_until(WAIT, |p| p.frames_decoded >= frames + 30));
    assert!(viewer.ping(42.0));
    op.send(r#"{"type":"custom","name":"speed","value":0.37}"#);
    logger.printed(&mut op, &["speed = 0.37"]);
    drive(&mut op, 1.0);
    op.run_for(Duration::from_millis(50));
    assert!(server.wait_for(WAIT, |s| s["motors"]["left"].as_f64() > Some(0.3)));
    assert!(
        api_client(&server.status(), "stuck").is_some(),
        "still connected"
    );
}

#[test]
fn a_bad_api_config_or_a_busy_socket_stops_the_start_with_a_reason() {
    let dir = scratch("refusals");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let no_dir = write(
        "no-dir.toml",
        "[api]\nsocket = \"/nonexistent-telepi-dir/api.sock\"\n",
    );
    assert!(refused(&no_dir).contains("the directory /nonexistent-telepi-dir does not exist"));
    let in_the_way = dir.join("file");
    std::fs::write(&in_the_way, "mine").unwrap();
    let file = write(
        "file.toml",
        &format!("[api]\nsocket = \"{}\"\n", in_the_way.display()),
    );
    assert!(refused(&file).contains("not a socket is in the way"));
    assert_eq!(
        std::fs::read_to_string(&in_the_way).unwrap(),
        "mine",
        "left alone"
    );
    let external = write("external.toml", "[drive]\nbackend = \"external\"\n");
    assert!(refused(&external).contains("set [api] socket"));
    let kind = write(
        "kind.toml",
        "[[controls]]\nname = \"horn\"\nkind = \"siren\"\n",
    );
    assert!(refused(&kind).contains("unknown variant `siren`"));
    let key = write(
        "key.toml",
        "[[controls]]\nname = \"horn\"\nkind = \"button\"\nkey = \"w\"\n",
    );
    assert!(refused(&key).contains("page's own"));

    // A second telepi on the same socket is refused; the first keeps it.
    let (path, socket) = config(&dir, "", "");
    let server = Server::start_logged(&["--config", path.to_str().unwrap()]);
    let busy = write(
        "busy.toml",
        &format!("[api]\nsocket = \"{}\"\n", socket.display()),
    );
    assert!(refused(&busy).contains("another program serves it"));
    Client::connect(&socket);
    // Killed without a goodbye, it leaves the socket behind: the next start replaces it.
    drop(server);
    assert!(socket.exists());
    let _again = Server::start_logged(&["--config", path.to_str().unwrap()]);
    Client::connect(&socket);
}
