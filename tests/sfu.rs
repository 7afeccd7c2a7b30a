//! telepi publishing to a real SFU over WHIP (issue 23): Debian's Janus
//! (VideoRoom, H.264) behind Meetecho's simple-whip-server, all inside a
//! network namespace this test creates (nothing reaches the machine's own
//! network); subscribers are str0m clients through Janus's HTTP API.
//!
//! Needs root (for the namespace; it re-runs itself through password-less
//! sudo otherwise) and what tests/sfu/install.sh installs; without them it
//! says SKIPPED, and fails under CI=true. TELEPI_SFU_SUBSCRIBERS (default 20)
//! sets the audience, TELEPI_SFU_KEEP=1 keeps Janus's and the WHIP server's logs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::janus::{Janus, Subscriber};
use common::{request, Peer, Server};
use serde_json::Value;

const ROOM: u64 = 1234;
/// The veth pair's addresses. Everything runs in the one namespace (so its
/// traffic goes through its `lo`), but Janus ignores loopback interfaces for
/// ICE and needs a route-less address to put in its SDP: it gets the veth's
/// far end, telepi and the subscribers the near one.
const ROBOT_IP: &str = "10.77.0.1";
const SFU_IP: &str = "10.77.0.2";
const WHIP_PORT: u16 = 7080;
const WIDTH: usize = 320;
const HEIGHT: usize = 240;

fn skip(reason: &str) {
    telepi::testing::skipped(&format!(
        "sfu test: {reason} (run tests/sfu/install.sh as root)"
    ));
}

/// Janus's module folders, the WHIP server's sources and its NODE_PATH.
struct Tools {
    janus_lib: PathBuf,
    whip_src: PathBuf,
    node_path: Option<PathBuf>,
}

fn find_tools() -> Result<Tools, String> {
    let janus_lib = [
        "/usr/lib/x86_64-linux-gnu/janus",
        "/usr/lib/aarch64-linux-gnu/janus",
        "/usr/lib/janus",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.join("plugins/libjanus_videoroom.so").exists())
    .ok_or("Janus (Debian package janus) is not installed")?;
    let unpacked =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sfu-tools/simple-whip-server");
    let (whip_src, node_path) = if unpacked.join("node_modules/express").exists() {
        (unpacked.join("src"), Some(unpacked.join("node_modules")))
    } else if Path::new("/usr/share/simple-whip-server/src/server.js").exists() {
        (PathBuf::from("/usr/share/simple-whip-server/src"), None)
    } else {
        return Err("simple-whip-server is not installed".into());
    };
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node is missing".into());
    }
    Ok(Tools {
        janus_lib,
        whip_src,
        node_path,
    })
}

/// A process killed (SIGKILL) when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sh(command: &str) {
    let status = Command::new("sh").args(["-c", command]).status().unwrap();
    assert!(status.success(), "{command}");
}

/// This thread (and every thread and process it starts) into a fresh network
/// namespace with `lo` and a veth pair up.
fn enter_namespace() -> Result<(), String> {
    // SAFETY: unshare only changes this thread's namespace membership.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        ));
    }
    sh("ip link set lo up");
    sh("ip link add tpv0 type veth peer name tpv1");
    sh(&format!(
        "ip addr add {ROBOT_IP}/24 dev tpv0 && ip addr add {SFU_IP}/24 dev tpv1"
    ));
    sh("ip link set tpv0 up && ip link set tpv1 up");
    Ok(())
}

fn write_janus_config(dir: &Path, lib: &Path) {
    let lib = lib.display();
    std::fs::write(
        dir.join("janus.jcfg"),
        format!(
            r#"general: {{
	configs_folder = "{dir}"
	plugins_folder = "{lib}/plugins"
	transports_folder = "{lib}/transports"
	events_folder = "{lib}/events"
	loggers_folder = "{lib}/loggers"
	debug_level = 4
	interface = "{SFU_IP}"
}}
media: {{ rtp_port_range = "20000-40000" }}
nat: {{ ice_ignore_list = "lo" }}
plugins: {{ disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so" }}
transports: {{ disable = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so" }}
loggers: {{ disable = "libjanus_jsonlog.so" }}
events: {{ broadcast = false }}
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("janus.transport.http.jcfg"),
        "general: {\n\thttp = true\n\tport = 8088\n\thttps = false\n}\nadmin: {\n\tadmin_http = false\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("janus.transport.websockets.jcfg"),
        "general: {\n\tws = true\n\tws_port = 8188\n\twss = false\n}\nadmin: {\n\tadmin_ws = false\n}\n",
    )
    .unwrap();
    // PCMU: the robot's one audio encode.
    std::fs::write(
        dir.join("janus.plugin.videoroom.jcfg"),
        format!(
            "general: {{\n}}\nroom-{ROOM}: {{\n\tdescription = \"telepi\"\n\tpublishers = 2\n\tbitrate = 0\n\tvideocodec = \"h264\"\n\taudiocodec = \"pcmu\"\n}}\n"
        ),
    )
    .unwrap();
}

fn start_janus(dir: &Path) -> Process {
    let log = std::fs::File::create(dir.join("janus.out")).unwrap();
    let child = Command::new("janus")
        .arg("-C")
        .arg(dir.join("janus.jcfg"))
        .arg("-F")
        .arg(dir)
        .arg("-L")
        .arg(dir.join("janus.log"))
        .arg("--disable-colors")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("janus starts");
    Process(child)
}

fn start_whip_server(dir: &Path, tools: &Tools) -> Process {
    // Its sources with our config (the package's config.js links into /etc).
    let src = dir.join("whip/src");
    std::fs::create_dir_all(&src).unwrap();
    for file in ["server.js", "whip-janus.js"] {
        std::fs::copy(tools.whip_src.join(file), src.join(file)).unwrap();
    }
    std::fs::write(
        src.join("config.js"),
        format!(
            "module.exports = {{ janus: {{ address: 'ws://127.0.0.1:8188' }}, port: {WHIP_PORT}, rest: '/whip', allowTrickle: true, strictETags: false, iceServers: [] }};\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("whip.out")).unwrap();
    let mut command = Command::new("node");
    command
        .arg("src/server.js")
        .current_dir(dir.join("whip"))
        .env("DEBUG", "whip:*")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    if let Some(path) = &tools.node_path {
        command.env("NODE_PATH", path);
    }
    Process(command.spawn().expect("node starts"))
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn whip(method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let addr = format!("127.0.0.1:{WHIP_PORT}").parse().unwrap();
    request(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn destination(server: &Server, n: usize) -> Value {
    server.status()["publish"][n].clone()
}

/// Bytes telepi sent to destination 0 per second over `window`, and its CPU
/// use (% of one core) meanwhile.
fn upload(server: &Server, window: Duration) -> (f64, f64) {
    let bytes = |s: &Server| destination(s, 0)["bytes_sent"].as_f64().unwrap();
    let (before, cpu_before, start) = (bytes(server), cpu_ticks(server.pid()), Instant::now());
    std::thread::sleep(window);
    let seconds = start.elapsed().as_secs_f64();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (cpu_ticks(server.pid()) - cpu_before) as f64 / hz / seconds * 100.0;
    ((bytes(server) - before) / seconds, cpu)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Joins `n` subscribers to the robot's feed and waits until each has decoded a picture.
fn subscribe(janus: &Janus, n: usize, list: &mut Vec<Subscriber>) {
    let mut feeds = Vec::new();
    wait_until(
        "Janus lists the robot's feed",
        Duration::from_secs(5),
        || {
            feeds = janus.publishers(ROOM);
            !feeds.is_empty()
        },
    );
    let feed = feeds[0];
    for _ in 0..n {
        list.push(Subscriber::join(janus, ROOM, feed, ROBOT_IP));
    }
    wait_until(
        "every subscriber decodes a picture",
        Duration::from_secs(30),
        || list.iter().all(|s| s.size().is_some()),
    );
    for s in list.iter() {
        assert_eq!(s.size(), Some((WIDTH, HEIGHT)));
    }
}

#[test]
fn publishes_through_whip_into_a_janus_videoroom() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return as_root();
    }
    let tools = match find_tools() {
        Ok(tools) => tools,
        Err(e) => return skip(&e),
    };
    // Its own thread: the namespace is per thread, and the test harness's
    // other threads must keep theirs.
    std::thread::spawn(move || {
        if let Err(e) = enter_namespace() {
            return skip(&e);
        }
        run(&tools);
    })
    .join()
    .unwrap();
}

/// Runs this test again through password-less sudo, if there is one.
fn as_root() {
    let sudo = |args: &[&str]| Command::new("sudo").args(["-n"]).args(args).status();
    if !sudo(&["true"]).is_ok_and(|s| s.success()) {
        return skip("needs root (or password-less sudo) for a network namespace");
    }
    let exe = std::env::current_exe().unwrap();
    let status = sudo(&[
        "--preserve-env=CI,TELEPI_LOG,TELEPI_SFU_KEEP,TELEPI_SFU_SUBSCRIBERS",
        exe.to_str().unwrap(),
        "--exact",
        "publishes_through_whip_into_a_janus_videoroom",
        "--nocapture",
    ])
    .unwrap();
    assert!(status.success(), "the test as root failed");
}

fn run(tools: &Tools) {
    let scratch = Scratch(std::env::temp_dir().join(format!("telepi-sfu-{}", std::process::id())));
    let dir = &scratch.0;
    std::fs::create_dir_all(dir).unwrap();
    write_janus_config(dir, &tools.janus_lib);
    let janus = Janus {
        api: "127.0.0.1:8088".parse().unwrap(),
    };
    let mut janus_process = start_janus(dir);
    wait_until("Janus answers", Duration::from_secs(20), || janus.is_up());
    let _whip_server = start_whip_server(dir, tools);
    wait_until(
        "simple-whip-server answers",
        Duration::from_secs(20),
        || whip("GET", "/whip/endpoint/none", "").is_some(),
    );
    for (id, token) in [("robot", "s3cret"), ("spare", "other")] {
        let body = format!(r#"{{"id":"{id}","room":{ROOM},"token":"{token}","label":"{id}"}}"#);
        let (code, text) = whip("POST", "/whip/create", &body).expect("create answers");
        assert_eq!(code, 200, "create {id}: {text}");
    }
    // Two destinations: the right token, and a wrong one.
    let config = dir.join("telepi.toml");
    std::fs::write(
        &config,
        format!(
            r#"[video]
source = "pattern"
width = {WIDTH}
height = {HEIGHT}
fps = 15
bitrate = 300000
min_bitrate = 300000
# The bitrate is pinned: one encode, no low layer to pick.
layers = "single"
[audio]
source = "tone"
sink = "none"
[[publish]]
url = "http://127.0.0.1:{WHIP_PORT}/whip/endpoint/robot"
token = "s3cret"
[[publish]]
url = "http://127.0.0.1:{WHIP_PORT}/whip/endpoint/spare"
token = "wrong"
"#
        ),
    )
    .unwrap();
    let started = Instant::now();
    let server = Server::start_on(ROBOT_IP, &["--config", config.to_str().unwrap()]);
    let publishing = wait_until("telepi publishes", Duration::from_secs(20), || {
        destination(&server, 0)["state"] == "publishing"
    });
    let mut subscribers = Vec::new();
    subscribe(&janus, 1, &mut subscribers);
    eprintln!(
        "sfu: telepi start -> publishing {:?}, -> first subscriber picture {:?}",
        publishing - started,
        started.elapsed()
    );

    // The wrong token: a clear error, no session, and local viewers unharmed.
    let spare = destination(&server, 1);
    assert_eq!(spare["state"], "waiting", "{spare}");
    assert_eq!(spare["publishes"], 0);
    let error = spare["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("refused the token (HTTP 403)"), "{error}");
    let mut viewer = Peer::connect(&server);
    assert!(viewer.run_until(Duration::from_secs(10), |p| p.frames_decoded >= 10));
    drop(viewer);

    // One upload, whatever the audience.
    std::thread::sleep(Duration::from_secs(2));
    let (one, cpu_one) = upload(&server, Duration::from_secs(5));
    let total = std::env::var("TELEPI_SFU_SUBSCRIBERS").map_or(20, |n| n.parse().unwrap());
    subscribe(&janus, total - 1, &mut subscribers);
    std::thread::sleep(Duration::from_secs(2));
    let (many, cpu_many) = upload(&server, Duration::from_secs(5));
    eprintln!(
        "sfu: telepi's upload to Janus: {one:.0} B/s, CPU {cpu_one:.1} % with 1 subscriber; {many:.0} B/s, CPU {cpu_many:.1} % with {total}"
    );
    assert!(
        (many - one).abs() <= one * 0.1,
        "1: {one:.0} B/s, {total}: {many:.0} B/s"
    );
    let before = subscribers.iter().map(Subscriber::frames).sum::<usize>();
    std::thread::sleep(Duration::from_secs(1));
    let counts: Vec<usize> = subscribers.iter().map(Subscriber::frames).collect();
    assert!(
        counts.iter().sum::<usize>() > before + total * 5,
        "{counts:?}"
    );
    subscribers.clear();

    // Janus killed without a goodbye, then back: telepi publishes again.
    let _ = janus_process.0.kill();
    let _ = janus_process.0.wait();
    wait_until(
        "telepi notices Janus is gone",
        Duration::from_secs(10),
        || destination(&server, 0)["state"] != "publishing",
    );
    janus_process = start_janus(dir);
    let answering = wait_until("Janus answers again", Duration::from_secs(20), || {
        janus.is_up()
    });
    let again = wait_until("telepi publishes again", Duration::from_secs(30), || {
        let d = destination(&server, 0);
        d["state"] == "publishing" && d["publishes"] == 2
    });
    eprintln!(
        "sfu: published again {:?} after Janus answered",
        again - answering
    );
    assert!(
        again - answering <= Duration::from_secs(5),
        "{:?}",
        again - answering
    );
    subscribe(&janus, 1, &mut subscribers);
    drop(subscribers);

    // A clean stop DELETEs the resource: the feed leaves the room at once,
    // not after Janus's ICE timeout.
    assert_eq!(server.terminate(), Some(0));
    wait_until("the feed leaves the room", Duration::from_secs(2), || {
        janus.publishers(ROOM).is_empty()
    });
    drop(janus_process);
}

/// The test's folder (configs, Janus's and the WHIP server's logs), removed
/// at the end unless TELEPI_SFU_KEEP=1.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var("TELEPI_SFU_KEEP").as_deref() != Ok("1") {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!("sfu: logs kept in {}", self.0.display());
        }
    }
}
