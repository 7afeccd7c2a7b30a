//! A real WebRTC client (str0m over a loopback UDP socket) and a minimal
//! HTTP client, for driving a `telepi` process end to end.
#![allow(dead_code)] // each test binary uses a different part of this kit

pub mod camera;
pub mod guest;
pub mod janus;
pub mod monitor;
mod peer;

pub use peer::Peer;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Server {
    /// `None` for a telepi running elsewhere (an emulated machine).
    child: Option<Child>,
    pub http: SocketAddr,
    pub rtc: SocketAddr,
    /// telepi's stderr, when started with [`Server::start_logged`].
    pub log: Log,
}

/// A process's output, collected line by line (and passed on to the test's stderr).
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Collects `output` line by line on a thread of its own.
    pub fn collect(&self, output: impl Read + Send + 'static) {
        let lines = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                eprintln!("{line}");
                lines.lock().unwrap().push(line);
            }
        });
    }

    /// Everything so far, one line per line.
    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }

    /// How many lines so far.
    pub fn line_count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The first line containing every one of `parts`, waiting up to `timeout` for it.
    pub fn wait_for(&self, timeout: Duration, parts: &[&str]) -> Option<String> {
        self.wait_for_from(0, timeout, parts)
    }

    /// Like [`wait_for`](Self::wait_for), among the lines after the first `skip`.
    pub fn wait_for_from(&self, skip: usize, timeout: Duration, parts: &[&str]) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .0
                .lock()
                .unwrap()
                .iter()
                .skip(skip)
                .find(|line| parts.iter().all(|p| line.contains(p)))
                .cloned();
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs telepi with `config` expecting it to refuse to start; its stderr.
pub fn refused(config: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_telepi"))
        .args(["--http", "127.0.0.1:0", "--rtc", "127.0.0.1:0"])
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "telepi started with {}",
        config.display()
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP port free on `ip` just now (telepi's rtc socket is UDP).
fn free_udp_port(ip: &str) -> u16 {
    std::net::UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts the binary on loopback-only ports with extra arguments and waits until it answers.
    /// `TELEPI_TEST_BIN` replaces the binary (e.g. a cross-built one) and
    /// `TELEPI_TEST_RUNNER` runs it through a command (e.g. `qemu-aarch64`).
    pub fn start(extra: &[&str]) -> Server {
        Server::start_on("127.0.0.1", extra)
    }

    /// Like [`start`](Self::start) with the UDP socket bound to `rtc_ip`.
    pub fn start_on(rtc_ip: &str, extra: &[&str]) -> Server {
        Server::spawn(rtc_ip, extra, false)
    }

    /// Like [`start`](Self::start), collecting telepi's log in `log`.
    pub fn start_logged(extra: &[&str]) -> Server {
        Server::spawn("127.0.0.1", extra, true)
    }

    /// A port free when picked may be taken by a parallel test before
    /// telepi binds it ("Address already in use"): telepi then exits at
    /// once, and is started again on other ports.
    fn spawn(rtc_ip: &str, extra: &[&str], logged: bool) -> Server {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let mut server = Server::launch(rtc_ip, extra, logged);
            match server.wait_until_up_or_exit(Duration::from_secs(20)) {
                None => return server,
                Some(status) => eprintln!(
                    "telepi exited at start ({status}), attempt {attempt} of {ATTEMPTS}: other ports"
                ),
            }
        }
        panic!("telepi exited at start {ATTEMPTS} times with {extra:?}");
    }

    fn launch(rtc_ip: &str, extra: &[&str], logged: bool) -> Server {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let rtc: SocketAddr = format!("{rtc_ip}:{}", free_udp_port(rtc_ip))
            .parse()
            .unwrap();
        let bin = std::env::var_os("TELEPI_TEST_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_telepi").into());
        let mut command = match std::env::var_os("TELEPI_TEST_RUNNER") {
            Some(runner) => {
                let mut c = Command::new(runner);
                c.arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let mut child = command
            .args(["--http", &http.to_string(), "--rtc", &rtc.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stderr(if logged {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("telepi starts");
        let log = Log::default();
        if let Some(stderr) = child.stderr.take() {
            log.collect(stderr);
        }
        Server {
            child: Some(child),
            http,
            rtc,
            log,
        }
    }

    /// Waits until telepi answers (None), or until it has exited (its status).
    fn wait_until_up_or_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let http = self.http;
        let deadline = Instant::now() + timeout;
        // Any answer will do: a password-guarded robot answers 401.
        while request(http, "GET", "/api/status", &[], b"").is_none() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                return Some(status);
            }
            assert!(Instant::now() < deadline, "telepi did not answer on {http}");
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// A telepi started elsewhere (e.g. in an emulated machine) that will
    /// answer on `http`; waits until it does.
    pub fn remote(http: SocketAddr, rtc: SocketAddr) -> Server {
        let server = Server {
            child: None,
            http,
            rtc,
            log: Log::default(),
        };
        server.wait_until_up(Duration::from_secs(60));
        server
    }

    fn wait_until_up(&self, timeout: Duration) {
        let http = self.http;
        let deadline = Instant::now() + timeout;
        // Any answer will do: a password-guarded robot answers 401.
        while request(http, "GET", "/api/status", &[], b"").is_none() {
            assert!(Instant::now() < deadline, "telepi did not answer on {http}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn status(&self) -> serde_json::Value {
        let (code, body) =
            request(self.http, "GET", "/api/status", &[], b"").expect("status answers");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn peer_count(&self) -> usize {
        self.status()["peers"].as_array().unwrap().len()
    }

    /// Waits until `check(status)` holds; false on timeout.
    pub fn wait_for(&self, timeout: Duration, check: impl Fn(&serde_json::Value) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check(&self.status()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a local telepi").id()
    }

    /// Sends SIGTERM and returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let child = self.child.as_mut().expect("a local telepi");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "telepi ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The sim motors' (left, right) from `/api/status`.
pub fn motors(server: &Server) -> (f64, f64) {
    let s = server.status();
    (
        s["motors"]["left"].as_f64().unwrap(),
        s["motors"]["right"].as_f64().unwrap(),
    )
}

pub fn drive(peer: &mut Peer, linear: f64, angular: f64) {
    peer.send(
        &serde_json::json!({ "type": "drive", "linear": linear, "angular": angular }).to_string(),
    );
}

/// Keeps driving (as a held joystick does, every 50 ms) until the motors move.
pub fn drive_until_moving(server: &Server, peer: &mut Peer) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        drive(peer, 1.0, 0.0);
        peer.run_for(Duration::from_millis(50));
        let (l, r) = motors(server);
        if l > 0.5 && r > 0.5 {
            return;
        }
    }
    panic!("motors never moved: {:?}", motors(server));
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, body).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    let (code, _, body) = request_full(addr, method, path, headers, body)?;
    Some((code, body))
}

/// A GET whose body is binary: (status, body bytes).
pub fn request_bytes(addr: SocketAddr, method: &str, path: &str) -> Option<(u16, Vec<u8>)> {
    let (code, _, raw) = request_bytes_full(addr, method, path)?;
    Some((code, raw))
}

/// Like [`request_bytes`] but also returns the response headers.
pub fn request_bytes_full(addr: SocketAddr, method: &str, path: &str) -> Option<Response<Vec<u8>>> {
    exchange(addr, method, path, &[], b"")
}

/// Status, headers (lower-cased names) and body.
pub type Response<Body = String> = (u16, Vec<(String, String)>, Body);

/// A response header's value, by lower-cased name.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Like [`request`] but also returns the response headers.
pub fn request_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Response> {
    let (code, headers, body) = exchange(addr, method, path, headers, body)?;
    Some((code, headers, String::from_utf8_lossy(&body).into_owned()))
}

fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Response<Vec<u8>>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    // A server may refuse before reading a large body; that's fine.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let code = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some((code, headers, raw[split + 4..].to_vec()))
}

/// The luma plane of one decoded picture.
pub struct Luma {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Luma {
    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.pixels[y * self.width + x]
    }
}
