//! HTTPS against the real binary, with curl as the TLS client: the generated
//! certificate kept across restarts (its fingerprint in `/api/status` equal to
//! openssl's), signaling over TLS, the plain-HTTP modes, and bad certificates.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{header, request_full, Peer, Server};

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("telepi-https-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A config keeping the generated pair in `dir`, plus `extra` TOML.
fn config(dir: &Path, extra: &str) -> String {
    let path = dir.join("telepi.toml");
    std::fs::write(&path, format!("state_dir = \"{}\"\n{extra}", dir.display())).unwrap();
    path.display().to_string()
}

/// curl over TLS (certificate not checked: the test checks the fingerprint itself).
fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_string(), body.to_string())
}

fn openssl_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().rsplit('=').next().unwrap().to_string()
}

#[test]
fn the_generated_certificate_is_kept_and_its_fingerprint_reported() {
    let dir = scratch("keep");
    let https = free_addr();
    let url = format!("https://{https}/api/status");
    let mut seen = Vec::new();
    for _ in 0..2 {
        let server = Server::start(&["--config", &config(&dir, ""), "--https", &https.to_string()]);
        let (code, body) = curl(&[&url]);
        assert_eq!(code, "200", "{body}");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status["https"]["self_signed"], true);
        seen.push(
            status["https"]["fingerprint_sha256"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        assert_eq!(server.terminate(), Some(0));
    }
    assert_eq!(
        seen[0], seen[1],
        "the browser's exception survives a restart"
    );
    assert_eq!(seen[0], openssl_fingerprint(&dir.join("tls/cert.pem")));
    let key_mode = std::fs::metadata(dir.join("tls/key.pem")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key_mode.permissions()) & 0o777,
        0o600
    );
}

#[test]
fn a_peer_signals_over_https_and_watches() {
    let dir = scratch("peer");
    let https = free_addr();
    let server = Server::start(&["--config", &config(&dir, ""), "--https", &https.to_string()]);
    let (mut peer, sdp, pending) = Peer::offer_from("127.0.0.1", true);
    let body = serde_json::json!({ "type": "offer", "sdp": sdp }).to_string();
    let (code, answer) = curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &body,
        &format!("https://{https}/connect"),
    ]);
    assert_eq!(code, "200", "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    peer.accept(pending, answer["sdp"].as_str().unwrap());
    assert!(peer.run_until(Duration::from_secs(15), |p| p.frames_decoded >= 10));
    let (code, page) = curl(&[&format!("https://{https}/")]);
    assert_eq!(code, "200");
    assert!(page.contains("app.js"));
    drop(server);
}

#[test]
fn plain_http_can_redirect_or_be_view_only() {
    let dir = scratch("plain");
    let https = free_addr();
    let redirect = config(&dir, "[http]\nplain = \"redirect\"\n");
    let server = Server::start(&["--config", &redirect, "--https", &https.to_string()]);
    let (code, headers, _) = request_full(server.http, "GET", "/whep?x=1", &[], b"").unwrap();
    assert_eq!(code, 308);
    let location = header(&headers, "location");
    assert_eq!(
        location,
        Some(format!("https://127.0.0.1:{}/whep?x=1", https.port()).as_str())
    );
    drop(server);

    let view_only = config(
        &dir,
        "[http]\nplain = \"view-only\"\n[control]\noperator_secret = \"hunter2\"\n",
    );
    let https = free_addr();
    let server = Server::start(&["--config", &view_only, "--https", &https.to_string()]);
    let mut peer = Peer::connect_sending(&server, &[("Authorization", "Bearer hunter2")]);
    assert!(peer.run_until(Duration::from_secs(5), |p| p.last_message("role").is_some()));
    assert_eq!(
        peer.last_message("role").unwrap()["role"],
        "viewer",
        "the secret crossed plain HTTP"
    );
    peer.send(r#"{"type":"claim","secret":"hunter2"}"#);
    peer.send(r#"{"type":"drive","linear":1,"angular":0}"#);
    peer.run_for(Duration::from_millis(500));
    assert_eq!(
        server.status()["motors"]["left"],
        0.0,
        "a view-only peer never drives"
    );
    let (code, _, body) = request_full(
        server.http,
        "POST",
        "/api/peers/1/eject?secret=hunter2",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(code, 403, "{body}");
}

#[test]
fn plain_off_has_no_listener_and_bad_certificates_stop_the_start() {
    let dir = scratch("off");
    let (http, https) = (free_addr(), free_addr());
    let mut child = Command::new(env!("CARGO_BIN_EXE_telepi"))
        .args(["--config", &config(&dir, "[http]\nplain = \"off\"\n")])
        .args([
            "--http",
            &http.to_string(),
            "--https",
            &https.to_string(),
            "--rtc",
            &free_addr().to_string(),
        ])
        .spawn()
        .unwrap();
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        curl(&[&format!("https://{https}/api/status")]).0 == "200"
    });
    assert!(up, "HTTPS answers");
    assert!(TcpStream::connect(http).is_err(), "no plain listener");
    let _ = child.kill();
    let _ = child.wait();

    std::fs::write(dir.join("bad.pem"), "not a certificate").unwrap();
    let bad = config(
        &dir,
        &format!(
            "[https]\ncert = \"{0}/bad.pem\"\nkey = \"{0}/bad.pem\"\n",
            dir.display()
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_telepi"))
        .args([
            "--config",
            &bad,
            "--https",
            &free_addr().to_string(),
            "--http",
            &free_addr().to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.pem"), "names the file: {stderr}");
}
