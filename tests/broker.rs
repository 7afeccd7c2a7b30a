//! Signaling and presence through a real Mosquitto on 127.0.0.1, with
//! mosquitto_pub/mosquitto_sub playing the browser's side: presence (and the
//! will when telepi is killed), an offer answered on the asker's topic with
//! video flowing, the viewer password, bad input, and `mqtts://` through
//! Mosquitto's TLS listener (a certificate from a test CA).

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, request, Peer, Server};

const USER: &str = "robot";
const PASS: &str = "broker-pw";

struct Mosquitto {
    child: Child,
    port: u16,
    /// The TLS listener's port and the CA its certificate chains to.
    tls: Option<(u16, PathBuf)>,
    dir: PathBuf,
}

/// A test CA and a certificate for 127.0.0.1 it signed, as Mosquitto's
/// `listener` lines; the CA's PEM is written to `dir/ca.pem`.
fn tls_listener(dir: &Path, port: u16) -> String {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "telepi test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let ca_file = write("ca.pem", ca.pem());
    let cert_file = write("server.pem", cert.pem());
    let key_file = write("server.key", key.serialize_pem());
    format!(
        "listener {port} 127.0.0.1\ncafile {ca_file}\ncertfile {cert_file}\nkeyfile {key_file}\n"
    )
}

impl Mosquitto {
    fn start() -> Mosquitto {
        Self::start_with(false)
    }

    /// With a second listener speaking MQTT over TLS.
    fn start_with_tls() -> Mosquitto {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Mosquitto {
        assert!(
            Path::new("/usr/sbin/mosquitto").exists(),
            "install mosquitto and mosquitto-clients (tests/run-all.sh does)"
        );
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("telepi-mosquitto-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let passwords = dir.join("passwd");
        let made = Command::new("mosquitto_passwd")
            .args(["-b", "-c", passwords.to_str().unwrap(), USER, PASS])
            .status()
            .unwrap();
        assert!(made.success());
        let tls = tls.then(|| (free_port(), dir.join("ca.pem")));
        let tls_lines = tls
            .as_ref()
            .map(|(port, _)| tls_listener(&dir, *port))
            .unwrap_or_default();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n{tls_lines}allow_anonymous false\npassword_file {}\nuser root\npersistence false\n",
                passwords.display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/mosquitto")
            .args(["-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let deadline = Instant::now() + Duration::from_secs(5);
        let ports = [Some(port), tls.as_ref().map(|(port, _)| *port)];
        for port in ports.into_iter().flatten() {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "mosquitto did not listen");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Mosquitto {
            child,
            port,
            tls,
            dir,
        }
    }

    /// A telepi config pointing at this broker, with `extra` TOML appended.
    fn config(&self, name: &str, extra: &str) -> PathBuf {
        self.config_at(&format!("mqtt://127.0.0.1:{}", self.port), name, extra)
    }

    fn config_at(&self, url: &str, name: &str, extra: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[broker]\nurl = \"{url}\"\nname = \"{name}\"\nusername = \"{USER}\"\npassword = \"{PASS}\"\nkeepalive_s = 4\n{extra}"
            ),
        )
        .unwrap();
        path
    }

    /// Waits for one message on `topic` (retained ones included).
    fn next_message(&self, topic: &str, timeout: Duration) -> Option<String> {
        let out = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-u",
                USER,
                "-P",
                PASS,
            ])
            .args([
                "-t",
                topic,
                "-C",
                "1",
                "-W",
                &timeout.as_secs().max(1).to_string(),
            ])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Subscribes to `topic` now, in the background; the output once one message came.
    fn subscribe(&self, topic: &str) -> Child {
        let child = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-u",
                USER,
                "-P",
                PASS,
            ])
            .args(["-t", topic, "-C", "1", "-W", "15"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // mosquitto_sub has no "subscribed" signal: give it a moment to get there.
        std::thread::sleep(Duration::from_millis(300));
        child
    }

    fn publish(&self, topic: &str, payload: &str) {
        let ok = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-u",
                USER,
                "-P",
                PASS,
            ])
            .args(["-t", topic, "-m", payload])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_json(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

fn presence(broker: &Mosquitto, name: &str) -> serde_json::Value {
    let topic = format!("telepi/robots/{name}/status");
    let text = broker
        .next_message(&topic, Duration::from_secs(10))
        .expect("a retained presence message");
    serde_json::from_str(&text).unwrap()
}

/// Publishes an offer from `peer_ip` through the broker and returns the reply.
fn offer_through_broker(
    broker: &Mosquitto,
    name: &str,
    extra_fields: &str,
) -> (Peer, serde_json::Value, str0m::change::SdpPendingOffer) {
    let (peer, sdp, pending) = Peer::offer_from("127.0.0.1", true);
    let reply_to = format!("telepi/clients/test-{}", std::process::id());
    let answer = broker.subscribe(&reply_to);
    let offer = serde_json::json!({"type": "offer", "sdp": sdp, "id": "r1", "reply_to": reply_to});
    let mut offer = offer.to_string();
    if !extra_fields.is_empty() {
        offer.insert_str(offer.len() - 1, &format!(",{extra_fields}"));
    }
    broker.publish(&format!("telepi/robots/{name}/signal"), &offer);
    (peer, wait_json(answer), pending)
}

#[test]
fn presence_offers_through_the_broker_and_the_will() {
    let broker = Mosquitto::start();
    let config = broker.config("r1", "");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let online = presence(&broker, "r1");
    assert_eq!(online["online"], true, "{online}");
    assert_eq!(online["name"], "r1");
    assert_eq!(online["video"]["width"], 640);

    let (mut peer, reply, pending) = offer_through_broker(&broker, "r1", "");
    assert_eq!(reply["type"], "answer", "{reply}");
    assert_eq!(reply["id"], "r1");
    peer.accept(pending, reply["sdp"].as_str().unwrap());
    assert!(
        peer.run_until(Duration::from_secs(15), |p| p.frames_decoded >= 10),
        "video through a broker-signalled peer: {} frames",
        peer.frames_decoded
    );
    assert!(
        server.wait_for(Duration::from_secs(5), |s| s["broker"]["offers_answered"]
            == 1)
    );
    // Presence follows the robot's state within a couple of seconds.
    let deadline = Instant::now() + Duration::from_secs(8);
    while presence(&broker, "r1")["viewers"] != 1 {
        assert!(
            Instant::now() < deadline,
            "presence never counted the viewer"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Killed without a goodbye: the broker publishes the will.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(server.pid() as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if presence(&broker, "r1")["online"] == false {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the will never marked r1 offline"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends `request` (its `id` and `reply_to` filled in) to robot `name`
/// through the broker and returns the reply.
fn ask(broker: &Mosquitto, name: &str, mut request: serde_json::Value) -> serde_json::Value {
    let reply_to = format!("telepi/clients/test-{}", std::process::id());
    request["id"] = "r1".into();
    request["reply_to"] = reply_to.clone().into();
    let reply = broker.subscribe(&reply_to);
    broker.publish(
        &format!("telepi/robots/{name}/signal"),
        &request.to_string(),
    );
    wait_json(reply)
}

fn ufrag_of(sdp: &str) -> String {
    let line = sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"));
    line.expect("an offer names its ICE ufrag").to_string()
}

#[test]
fn an_ice_restart_through_the_broker_keeps_the_session() {
    let broker = Mosquitto::start();
    let config = broker.config("r5", "");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert_eq!(presence(&broker, "r5")["online"], true);
    let (mut peer, sdp, pending) = Peer::offer_from("127.0.0.1", true);
    let reply = ask(
        &broker,
        "r5",
        serde_json::json!({"type": "offer", "sdp": sdp}),
    );
    assert_eq!(reply["type"], "answer", "{reply}");
    let id = reply["peer"]
        .as_u64()
        .expect("the answer names the session");
    peer.accept(pending, reply["sdp"].as_str().unwrap());
    assert!(peer.run_until(Duration::from_secs(15), |p| p.frames_decoded >= 5));

    // Refused with reasons, on the asker's topic; the session stays.
    let mut api = peer.rtc.sdp_api();
    api.ice_restart(true);
    let (offer, pending) = api.apply().unwrap();
    let restart = offer.to_sdp_string();
    for (peer_id, ufrag, reason) in [
        (id, "guessed".to_string(), "wrong ufrag"),
        (id + 100, ufrag_of(&sdp), "no session"),
    ] {
        let bad =
            serde_json::json!({"type": "restart", "peer": peer_id, "ufrag": ufrag, "sdp": restart});
        let reply = ask(&broker, "r5", bad);
        assert_eq!(reply["type"], "error", "{reply}");
        assert!(reply["error"].as_str().unwrap().contains(reason), "{reply}");
    }
    let no_ufrag = serde_json::json!({"type": "restart", "peer": id, "sdp": restart});
    let reply = ask(&broker, "r5", no_ufrag);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("needs peer and ufrag"),
        "{reply}"
    );

    // The page's restart: new credentials, the same session, video goes on.
    let good =
        serde_json::json!({"type": "restart", "peer": id, "ufrag": ufrag_of(&sdp), "sdp": restart});
    let reply = ask(&broker, "r5", good);
    assert_eq!(reply["type"], "answer", "{reply}");
    assert_eq!(reply["peer"], id);
    let answer = str0m::change::SdpAnswer::from_sdp_string(reply["sdp"].as_str().unwrap()).unwrap();
    peer.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    let frames = peer.frames_decoded;
    assert!(
        peer.run_until(Duration::from_secs(10), |p| p.frames_decoded > frames + 10),
        "video after the restart"
    );
    let status = server.status();
    let peers: Vec<_> = status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(peers, [serde_json::json!(id)], "the same session, no other");
    assert!(peer.ping(1.0), "the data channel still talks");
}

#[test]
fn a_clean_shutdown_says_offline_itself() {
    let broker = Mosquitto::start();
    let config = broker.config("r2", "");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert_eq!(presence(&broker, "r2")["online"], true);
    assert_eq!(server.terminate(), Some(0));
    assert_eq!(presence(&broker, "r2")["online"], false);
}

#[test]
fn the_viewer_password_and_bad_offers_are_refused_with_reasons() {
    let broker = Mosquitto::start();
    let config = broker.config("r3", "[access]\nviewer_password = \"watch\"\n");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert_eq!(presence(&broker, "r3")["online"], true);

    let (_, reply, _) = offer_through_broker(&broker, "r3", "");
    assert_eq!(reply["type"], "error", "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("viewer password"),
        "{reply}"
    );
    let (_, reply, _) = offer_through_broker(&broker, "r3", r#""password":"nope""#);
    assert_eq!(reply["error"], "wrong password");
    let (_, reply, _) = offer_through_broker(&broker, "r3", r#""password":"watch""#);
    assert_eq!(reply["type"], "answer", "{reply}");

    // Malformed, misdirected and oversized messages: counted, nothing answered elsewhere.
    broker.publish("telepi/robots/r3/signal", "not json");
    broker.publish(
        "telepi/robots/r3/signal",
        r#"{"type":"offer","sdp":"v=0","id":"x","reply_to":"telepi/robots/r3/status"}"#,
    );
    broker.publish("telepi/robots/r3/signal", &"x".repeat(100_000));
    let rejected = || {
        let auth = [("Authorization", "Bearer watch")];
        let (_, status) = request(server.http, "GET", "/api/status", &auth, b"").unwrap();
        serde_json::from_str::<serde_json::Value>(&status).unwrap()["broker"]["requests_rejected"]
            .clone()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while rejected() != 5 {
        assert!(
            Instant::now() < deadline,
            "rejections counted: {}",
            rejected()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        presence(&broker, "r3")["online"],
        true,
        "status untouched by the bad reply_to"
    );
}

#[test]
fn an_unreachable_broker_or_wrong_credentials_leave_the_lan_working() {
    let closed: SocketAddr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let broker = Mosquitto::start();
    let wrong = broker.dir.join("wrong.toml");
    std::fs::write(
        &wrong,
        format!(
            "[broker]\nurl = \"mqtt://127.0.0.1:{}\"\nname = \"r4\"\nusername = \"{USER}\"\npassword = \"nope\"\n",
            broker.port
        ),
    )
    .unwrap();
    let unreachable = broker.dir.join("unreachable.toml");
    std::fs::write(
        &unreachable,
        format!("[broker]\nurl = \"mqtt://{closed}\"\nname = \"r5\"\n"),
    )
    .unwrap();
    for (config, expected) in [
        (&wrong, "the broker refused telepi"),
        (&unreachable, "cannot connect"),
    ] {
        let server = Server::start_logged(&["--config", config.to_str().unwrap()]);
        assert!(
            server
                .log
                .wait_for(Duration::from_secs(10), &["broker", expected])
                .is_some(),
            "expected a log line with {expected:?}"
        );
        let mut peer = Peer::connect(&server);
        assert!(peer.run_until(Duration::from_secs(15), |p| p.frames_decoded >= 5));
        let (code, status) = request(server.http, "GET", "/api/status", &[], b"").unwrap();
        assert_eq!(code, 200);
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        assert_eq!(status["broker"]["connected"], false);
    }
}

#[test]
fn mqtts_checks_the_brokers_certificate_and_signals_over_tls() {
    let broker = Mosquitto::start_with_tls();
    let (tls_port, ca) = broker.tls.clone().unwrap();
    let url = format!("mqtts://127.0.0.1:{tls_port}");

    // Trusted through [broker] ca: online, and an offer answered over TLS.
    let config = broker.config_at(&url, "r7", &format!("ca = \"{}\"\n", ca.display()));
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert_eq!(presence(&broker, "r7")["online"], true);
    let (mut peer, reply, pending) = offer_through_broker(&broker, "r7", "");
    assert_eq!(reply["type"], "answer", "{reply}");
    peer.accept(pending, reply["sdp"].as_str().unwrap());
    assert!(peer.run_until(Duration::from_secs(15), |p| p.frames_decoded >= 5));
    drop(server);

    // A certificate nothing vouches for (the test CA not given): refused, said why.
    let untrusted = broker.config_at(&url, "r8", "");
    let server = Server::start_logged(&["--config", untrusted.to_str().unwrap()]);
    assert!(
        server
            .log
            .wait_for(Duration::from_secs(10), &["broker", "certificate"])
            .is_some(),
        "expected a log line about the broker's certificate"
    );
    let (code, status) = request(server.http, "GET", "/api/status", &[], b"").unwrap();
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["broker"]["connected"], false);
}
