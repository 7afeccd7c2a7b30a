//! End to end: per-viewer layers through real links. Two fast viewers on
//! loopback, then a slow one in its own network namespace behind a veth pair
//! capped at 300 kbit/s each way with `tc ... tbf` (no netem on these
//! kernels); camera-like content. Everything runs inside a private network
//! namespace the test creates (root only: SKIPPED otherwise, failing under
//! CI=true). It asserts mechanisms (the slow viewer gets the low layer, the
//! fast ones keep the main one, switches land on keyframes, IDRs come only
//! from requests and the period); the figures it prints (`figure:` lines)
//! go to docs/benchmarks.md, not into assertions.

mod common;

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{request, Peer, Server};

const INSIDE: &str = "TELEPI_IN_NETNS";
const NAME: &str = "a_slow_viewer_gets_the_low_layer_and_the_fast_ones_keep_the_main_one";
const SLOW_IP: &str = "10.98.0.2";
const ROBOT_SIDE_IP: &str = "10.98.0.1";
const CAP: &str = "tbf rate 300kbit burst 16kbit latency 200ms";

#[test]
fn a_slow_viewer_gets_the_low_layer_and_the_fast_ones_keep_the_main_one() {
    if std::env::var_os(INSIDE).is_none() {
        run_inside_a_namespace();
        return;
    }
    // Before the robot starts, so its candidates include the veth's address.
    let slow_link = slow_link();
    let server = Server::start_on("0.0.0.0", &["--config", "tests/fixtures/layers.toml"]);

    // Phase 1: two fast viewers alone.
    let fast: Vec<Viewer> = (0..2).map(|_| Viewer::join(&server, None)).collect();
    std::thread::sleep(Duration::from_secs(5));
    let alone = server.status();
    let phase1 = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let fast_alone = server.status();
    let phase1_end = Instant::now();
    let main_alone = layer_rate(&alone, &fast_alone, "main", phase1.elapsed());

    // Phase 2: a slow viewer joins.
    let slow = Viewer::join(&server, Some((SLOW_IP, slow_link)));
    let joined = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let settled = server.status();
    let phase2 = Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    let with_slow = server.status();
    let phase2_end = Instant::now();
    let tc = Command::new("tc")
        .args(["-s", "qdisc", "show", "dev", "vfast"])
        .output()
        .unwrap();
    println!(
        "figure: tc {} {}",
        String::from_utf8_lossy(&tc.stdout).replace('\n', " "),
        String::from_utf8_lossy(&tc.stderr)
    );
    let main_with_slow = layer_rate(&settled, &with_slow, "main", phase2.elapsed());
    let low_with_slow = layer_rate(&settled, &with_slow, "low", phase2.elapsed());
    let peers = with_slow["peers"].as_array().unwrap();
    let mut layers: Vec<(bool, &str)> = (peers.iter())
        .map(|p| {
            let slow = p["remote"].as_str().unwrap_or("").starts_with(SLOW_IP);
            (slow, p["layers"][0]["layer"].as_str().unwrap_or("none"))
        })
        .collect();
    layers.sort();
    let slow_report = slow.leave();

    // Phase 3: the slow viewer is gone (reaped when silent).
    let gone = server.wait_for(Duration::from_secs(10), |s| {
        s["peers"].as_array().is_some_and(|p| p.len() == 2)
    });
    assert!(gone, "the slow viewer was not reaped");
    let after = server.status();
    let phase3 = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let recovered = server.status();
    let main_after = layer_rate(&after, &recovered, "main", phase3.elapsed());
    let estimates: Vec<_> = (recovered["peers"].as_array().unwrap().iter())
        .map(|p| p["bitrate_estimate"].clone())
        .collect();
    println!(
        "figure: estimates after {estimates:?}, main target {}",
        recovered["cameras"][0]["layers"]["main"]["bitrate"]
    );
    let fast_reports: Vec<Report> = fast.into_iter().map(Viewer::leave).collect();

    // IDRs of the main encode: asked for (joins, losses, switches), or the
    // 4 s period; none from the content.
    let camera = &recovered["cameras"][0];
    let requests = &camera["keyframe_requests"];
    let asked = requests["new_peer"].as_u64().unwrap() + requests["loss"].as_u64().unwrap();
    let periodic = (recovered["uptime_s"].as_f64().unwrap() / 4.0).ceil() as u64 + 1;
    let idrs = camera["layers"]["main"]["keyframes"].as_u64().unwrap();
    let slow_first = slow_report.first_frame.map(|t| t.duration_since(joined));
    println!(
        "figure: main layer, fast viewers alone: {:.0} kbit/s",
        main_alone / 1000.0
    );
    println!(
        "figure: main layer, slow viewer present: {:.0} kbit/s ({:.0} %)",
        main_with_slow / 1000.0,
        100.0 * main_with_slow / main_alone
    );
    println!(
        "figure: low layer, slow viewer present: {:.0} kbit/s",
        low_with_slow / 1000.0
    );
    println!(
        "figure: main layer, 3 s after the slow viewer left: {:.0} kbit/s ({:.0} %)",
        main_after / 1000.0,
        100.0 * main_after / main_alone
    );
    for (n, report) in fast_reports.iter().enumerate() {
        println!("figure: fast viewer {n}: {:.1} fps alone, {:.1} fps with the slow viewer, frozen {:.1} %", report.fps(phase1, phase1_end), report.fps(phase2, phase2_end), report.frozen(phase2, phase2_end));
    }
    println!("figure: slow viewer: first frame after {slow_first:?}, {:.1} fps, frozen {:.1} % (last 8 s)", slow_report.fps(phase2, phase2_end), slow_report.frozen(phase2, phase2_end));
    let slow_peer = peers
        .iter()
        .find(|p| p["remote"].as_str().unwrap_or("").starts_with(SLOW_IP));
    println!(
        "figure: slow peer at the end of phase 2: {}",
        slow_peer.unwrap()
    );
    println!(
        "figure: low layer {}",
        with_slow["cameras"][0]["layers"]["low"]
    );
    println!(
        "figure: main IDRs {idrs} in {:.0} s ({asked} asked for)",
        recovered["uptime_s"].as_f64().unwrap()
    );

    assert_eq!(
        layers,
        [(false, "main"), (false, "main"), (true, "low")],
        "{peers:#?}"
    );
    // The slow viewer's picture came from the low layer: the quarter size,
    // which its decoder can only show from an IDR with new parameter sets.
    assert_eq!(
        slow_report.last_size,
        Some((320, 240)),
        "{}",
        slow_report.summary()
    );
    assert!(slow_report.said_layer("low"), "{}", slow_report.summary());
    // A viewer joining while others watch starts on the low layer; a fast
    // one moves up to the main layer (at its keyframe) and stays there.
    for report in &fast_reports {
        assert_eq!(report.last_size, Some((640, 480)), "{}", report.summary());
        let last = report.layers.last().map(|m| &m["layer"]);
        assert_eq!(last, Some(&"main".into()), "{}", report.summary());
    }
    let low = &with_slow["cameras"][0]["layers"]["low"];
    assert!(low["keyframes"].as_u64().unwrap() >= 1, "{low}");
    assert_eq!(recovered["cameras"][0]["layers"]["low"]["viewers"], 0);

    assert!(
        idrs <= asked + periodic,
        "{idrs} IDRs: {asked} asked for, {periodic} periodic"
    );
}

/// Bits per second a layer encoded between two statuses.
fn layer_rate(
    from: &serde_json::Value,
    to: &serde_json::Value,
    layer: &str,
    over: Duration,
) -> f64 {
    let bytes = |s: &serde_json::Value| {
        s["cameras"][0]["layers"][layer]["bytes"]
            .as_u64()
            .unwrap_or(0)
    };
    (bytes(to) - bytes(from)) as f64 * 8.0 / over.as_secs_f64()
}

/// Runs this test again inside a private network namespace (root only).
fn run_inside_a_namespace() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let exe = std::env::current_exe().unwrap();
    let result = Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" --exact \"$1\" --nocapture",
        ])
        .arg(&exe)
        .arg(NAME)
        .env(INSIDE, "1")
        .output();
    let skip = |why: String| {
        assert!(!ci, "SKIPPED is a failure under CI=true: {why}");
        eprintln!("SKIPPED: {why}");
    };
    match result {
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("unshare failed") => {
            skip("cannot create a network namespace here (needs root)".into())
        }
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            for line in stdout.lines().filter(|l| l.starts_with("figure:")) {
                println!("{line}");
            }
            let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
            assert!(
                out.status.success() && text.contains("1 passed"),
                "inner run failed:\n{text}"
            );
        }
        Err(e) => skip(format!("no unshare ({e})")),
    }
}

/// A new network namespace joined to this one by a veth pair capped at
/// 300 kbit/s each way; the returned file keeps it alive.
fn slow_link() -> File {
    let (tid_tx, tid) = channel();
    let (configured, wait) = channel::<()>();
    let thread = std::thread::spawn(move || {
        // SAFETY: unshare(CLONE_NEWNET) changes only the calling thread's
        // network namespace.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        // SAFETY: gettid has no preconditions.
        tid_tx.send(unsafe { libc::gettid() }).unwrap();
        wait.recv().unwrap();
        File::open("/proc/thread-self/ns/net").unwrap()
    });
    let tid = tid.recv().unwrap();
    let pid = std::process::id();
    sh(&format!(
        "ip link add vfast type veth peer name vslow && ip link set vslow netns {tid} \
         && ip addr add {ROBOT_SIDE_IP}/24 dev vfast && ip link set vfast up && tc qdisc add dev vfast root {CAP}"
    ));
    sh(&format!(
        "nsenter --net=/proc/{pid}/task/{tid}/ns/net sh -c 'ip link set lo up && ip addr add {SLOW_IP}/24 dev vslow \
         && ip link set vslow up && tc qdisc add dev vslow root {CAP}'"
    ));
    configured.send(()).unwrap();
    thread.join().unwrap()
}

fn sh(script: &str) {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a viewer saw.
#[derive(Default)]
struct Report {
    /// (when, frames decoded so far), every ~50 ms.
    samples: Vec<(Instant, usize)>,
    first_frame: Option<Instant>,
    last_size: Option<(usize, usize)>,
    /// The `layer` messages it got, in order.
    layers: Vec<serde_json::Value>,
}

impl Report {
    /// What an assertion message shows.
    fn summary(&self) -> String {
        let frames = self.samples.last().map_or(0, |s| s.1);
        let stalled_at = (self.samples.windows(2).rev())
            .find(|w| w[1].1 > w[0].1)
            .map(|w| w[1].0.elapsed());
        format!(
            "{frames} frames, last {:?}, the last new frame {stalled_at:?} ago, layer messages {:?}",
            self.last_size, self.layers
        )
    }

    fn said_layer(&self, layer: &str) -> bool {
        self.layers.iter().any(|m| m["layer"] == layer)
    }

    fn in_window(&self, from: Instant, to: Instant) -> Vec<(Instant, usize)> {
        self.samples
            .iter()
            .copied()
            .filter(|(t, _)| *t >= from && *t <= to)
            .collect()
    }

    fn fps(&self, from: Instant, to: Instant) -> f64 {
        let window = self.in_window(from, to);
        match (window.first(), window.last()) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) as f64 / (b.0 - a.0).as_secs_f64(),
            _ => 0.0,
        }
    }

    /// Share of the window spent in gaps of more than 250 ms between frames.
    fn frozen(&self, from: Instant, to: Instant) -> f64 {
        let window = self.in_window(from, to);
        let mut frozen = Duration::ZERO;
        let mut last_frame = window.first().map(|s| s.0);
        for pair in window.windows(2) {
            if pair[1].1 > pair[0].1 {
                let gap = pair[1].0 - last_frame.unwrap();
                if gap > Duration::from_millis(250) {
                    frozen += gap;
                }
                last_frame = Some(pair[1].0);
            }
        }
        100.0 * frozen.as_secs_f64() / (to - from).as_secs_f64()
    }
}

/// A test client on its own thread (its socket in that thread's network
/// namespace); the offer/answer goes through this thread, which can reach
/// the robot's HTTP port.
struct Viewer {
    stop: Sender<()>,
    thread: JoinHandle<Report>,
}

impl Viewer {
    /// A viewer on loopback, or at `ip` in the namespace `netns`.
    fn join(server: &Server, netns: Option<(&'static str, File)>) -> Viewer {
        let (offer_tx, offer_rx) = channel::<String>();
        let (answer_tx, answer_rx) = channel::<String>();
        let (stop, stopped) = channel();
        let thread = std::thread::spawn(move || {
            let ip = match netns {
                Some((ip, netns)) => {
                    // SAFETY: setns moves only this thread, into a namespace
                    // the open file keeps alive.
                    let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                    ip
                }
                None => "127.0.0.1",
            };
            let (mut peer, sdp, pending) = Peer::offer_from(ip, true);
            offer_tx.send(sdp).unwrap();
            peer.accept(pending, &answer_rx.recv().unwrap());
            watch(&mut peer, &stopped)
        });
        let sdp = offer_rx.recv().unwrap();
        let answer = signal(server.http, &sdp);
        answer_tx.send(answer).unwrap();
        Viewer { stop, thread }
    }

    fn leave(self) -> Report {
        self.stop.send(()).unwrap();
        self.thread.join().unwrap()
    }
}

fn signal(http: SocketAddr, sdp: &str) -> String {
    let body = serde_json::json!({ "type": "offer", "sdp": sdp }).to_string();
    let json = [("Content-Type", "application/json")];
    let (code, answer) = request(http, "POST", "/connect", &json, body.as_bytes()).unwrap();
    assert_eq!(code, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    answer["sdp"].as_str().unwrap().to_string()
}

fn watch(peer: &mut Peer, stop: &Receiver<()>) -> Report {
    let mut report = Report::default();
    while stop.try_recv().is_err() {
        peer.run_for(Duration::from_millis(50));
        let now = Instant::now();
        if peer.frames_decoded > 0 && report.first_frame.is_none() {
            report.first_frame = Some(now);
        }
        report.samples.push((now, peer.frames_decoded));
    }
    report.last_size = peer.last_size;
    report.layers = (peer.texts.iter())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .filter(|m| m["type"] == "layer")
        .collect();
    report
}
