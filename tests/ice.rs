//! STUN and TURN end to end against a real coturn on 127.0.0.1: telepi learns
//! its address by STUN, checks the TURN credentials browsers get and says
//! clearly when they are wrong or a server is unreachable, and keeps serving
//! peers whatever the servers do.

mod common;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{request, Peer, Server};

/// Long enough for the slowest warning: four unanswered STUN tries (7.5 s).
const LOG_PATIENCE: Duration = Duration::from_secs(15);

/// A coturn on 127.0.0.1, killed on drop.
struct Coturn {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Coturn {
    /// Checks TURN REST credentials minted from `secret` (coturn's `use-auth-secret`).
    fn rest(secret: &str) -> Coturn {
        Coturn::start(&["--use-auth-secret", "--static-auth-secret", secret])
    }

    /// Knows one static long-term user.
    fn static_user(user: &str, password: &str) -> Coturn {
        Coturn::start(&["--lt-cred-mech", "--user", &format!("{user}:{password}")])
    }

    fn start(auth: &[&str]) -> Coturn {
        let port = closed_udp_port();
        let relay = closed_udp_port();
        let dir = std::env::temp_dir().join(format!("telepi-coturn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let spawned = Command::new("turnserver")
            .args(["-n", "--log-file", "stdout", "--simple-log", "--no-cli"])
            .args([
                "--no-tls",
                "--no-dtls",
                "--no-tcp",
                "--realm",
                "telepi.test",
            ])
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
            .args(["--listening-port", &port.to_string()])
            .args(["--min-port", &relay.to_string()])
            .args(["--max-port", &relay.saturating_add(20).to_string()])
            // turnutils_uclient's own peer is on loopback too.
            .arg("--allow-loopback-peers")
            // Not the machine-wide defaults in /var: one instance must not clobber another's.
            .args([
                "--pidfile",
                &path("turnserver.pid"),
                "--userdb",
                &path("turndb"),
            ])
            .args(auth)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("turnserver not found: install coturn (tests/run-all.sh does)")
            }
            Err(e) => panic!("turnserver: {e}"),
        };
        let coturn = Coturn { child, port, dir };
        coturn.wait_until_up();
        coturn
    }

    fn url(&self) -> String {
        format!("turn:127.0.0.1:{}", self.port)
    }

    /// Until it answers a STUN Binding request.
    fn wait_until_up(&self) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let binding = [
            0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let _ = socket.send_to(&binding, ("127.0.0.1", self.port));
            if socket.recv_from(&mut [0u8; 512]).is_ok() {
                return;
            }
        }
        panic!("coturn never answered on port {}", self.port);
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A UDP port nothing listens on (right now).
fn closed_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config file removed on drop.
struct Config(PathBuf);

impl Config {
    fn new(rtc: &str) -> Config {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("telepi-ice-{}-{n}.toml", std::process::id()));
        let video = "[video]\nsource = \"pattern\"\nwidth = 160\nheight = 120\nfps = 15\n";
        std::fs::write(&path, format!("{video}[rtc]\n{rtc}\n")).unwrap();
        Config(path)
    }

    fn start(&self) -> Server {
        Server::start_logged(&["--config", self.0.to_str().unwrap()])
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Waits for a log line with all of `parts`, failing with what to look for.
fn expect_log(server: &Server, parts: &[&str]) -> String {
    server
        .log
        .wait_for(LOG_PATIENCE, parts)
        .unwrap_or_else(|| panic!("no log line with {parts:?}"))
}

/// telepi still serves: a peer connects and decodes video.
fn assert_a_peer_gets_video(server: &Server) {
    let mut peer = Peer::connect(server);
    assert!(
        peer.run_until(Duration::from_secs(10), |p| p.frames_decoded >= 5),
        "only {} frames decoded",
        peer.frames_decoded
    );
}

#[test]
fn a_stun_server_tells_telepi_its_address() {
    let coturn = Coturn::rest("unused");
    let config = Config::new(&format!(
        "ice_servers = [{{ urls = \"stun:127.0.0.1:{}\" }}]",
        coturn.port
    ));
    let server = config.start();
    let rtc = server.rtc.to_string();
    assert!(
        server.wait_for(Duration::from_secs(5), |s| s["ice"]["stun_mapped"]
            == rtc.as_str()),
        "{}",
        server.status()["ice"]
    );
    assert_a_peer_gets_video(&server);
}

#[test]
fn unreachable_stun_and_turn_servers_are_reported_and_peers_still_connect() {
    let (stun, turn) = (closed_udp_port(), closed_udp_port());
    let config = Config::new(&format!(
        "turn_secret = \"s\"\nice_servers = [{{ urls = [\"stun:127.0.0.1:{stun}\", \"turn:127.0.0.1:{turn}\"] }}]"
    ));
    let server = config.start();
    assert_a_peer_gets_video(&server);
    expect_log(
        &server,
        &[
            &format!("turn:127.0.0.1:{turn} did not answer within"),
            "browsers behind NATs will fail",
        ],
    );
    expect_log(&server, &["no STUN server answered"]);
    assert_eq!(
        server.status()["ice"]["stun_mapped"],
        serde_json::Value::Null
    );
    assert_a_peer_gets_video(&server);
}

#[test]
fn a_wrong_turn_secret_is_named_in_the_log() {
    let coturn = Coturn::rest("north");
    for (secret, says) in [
        ("north", "accepts the credentials browsers get (realm telepi.test)"),
        ("south", "refused the credentials (401 Unauthorized): [rtc] turn_secret must equal the server's static-auth-secret"),
    ] {
        let config = Config::new(&format!(
            "turn_secret = \"{secret}\"\nice_servers = [{{ urls = \"{}\" }}]",
            coturn.url()
        ));
        let server = config.start();
        expect_log(&server, &[&format!("TURN {} {says}", coturn.url())]);
        assert_a_peer_gets_video(&server);
    }
}

#[test]
fn static_turn_credentials_are_checked() {
    let coturn = Coturn::static_user("robot", "static-pass");
    let url = coturn.url();
    let config = Config::new(&format!(
        "ice_servers = [\
         {{ urls = \"{url}\", username = \"robot\", credential = \"static-pass\" }}, \
         {{ urls = \"{url}\", username = \"robot\", credential = \"wrong\" }}]"
    ));
    let server = config.start();
    expect_log(
        &server,
        &[&format!("TURN {url} accepts the credentials browsers get")],
    );
    expect_log(
        &server,
        &[
            &format!("TURN {url} refused the credentials (401"),
            "static username/credential",
        ],
    );
    assert_a_peer_gets_video(&server);
}

#[test]
fn the_credentials_the_page_gets_work_on_the_turn_server() {
    let coturn = Coturn::rest("north");
    let config = Config::new(&format!(
        "turn_secret = \"north\"\nice_servers = [{{ urls = \"{}\" }}]",
        coturn.url()
    ));
    let server = config.start();
    let (code, body) = request(server.http, "GET", "/api/ice-servers", &[], b"").unwrap();
    assert_eq!(code, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let turn = &page["iceServers"][0];
    let username = turn["username"].as_str().unwrap();
    let credential = turn["credential"].as_str().unwrap();
    assert!(
        allocates(coturn.port, username, credential),
        "minted credentials refused"
    );
    let tampered = format!("x{credential}");
    assert!(
        !allocates(coturn.port, username, &tampered),
        "tampered credential accepted"
    );
}

/// Whether coturn's own test client gets an allocation and relays a message
/// to itself through it with these credentials (independent of telepi's check).
fn allocates(port: u16, username: &str, credential: &str) -> bool {
    let mut client = Command::new("turnutils_uclient")
        .args(["-u", username, "-w", credential, "-p", &port.to_string()])
        .args(["-n", "1", "-m", "1", "-c", "-y", "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnutils_uclient (from coturn) runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = client.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() >= deadline {
            let _ = client.kill();
            let _ = client.wait();
            panic!("turnutils_uclient hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
