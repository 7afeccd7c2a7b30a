//! Deadman figures, measured on the real binary with a real WebRTC client:
//! how long after the operator's last `drive` (or after the operator's
//! client dies without a goodbye) the motors read zero, and when the role is
//! free again. `cargo bench --bench deadman`
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Peer, Server};

const RUNS: usize = 20;

fn moving(server: &Server) -> bool {
    server.status()["motors"]["left"].as_f64().unwrap_or(0.0) > 0.0
}

/// Drives at 20 Hz for half a second, returns the instant of the last command.
fn drive_a_while(server: &Server, peer: &mut Peer) -> Instant {
    let mut last = Instant::now();
    for _ in 0..10 {
        peer.send(r#"{"type":"drive","linear":1,"angular":0}"#);
        last = Instant::now();
        peer.run_for(Duration::from_millis(50));
    }
    assert!(moving(server), "motors should be moving");
    last
}

/// Polls status as fast as it answers (~1 ms) until `done`.
fn time_until(
    server: &Server,
    from: Instant,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Duration {
    loop {
        let status = server.status();
        if done(&status) {
            return from.elapsed();
        }
        assert!(from.elapsed() < Duration::from_secs(10), "never happened");
    }
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick =
        |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{name:<44} n={:<3} min {:>7.1} ms  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
        samples.len(),
        pick(0.0),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
}

fn main() {
    let server = Server::start(&["--config", "tests/fixtures/reap-1500.toml"]);
    let stopped = |s: &serde_json::Value| s["motors"]["left"] == 0.0 && s["motors"]["right"] == 0.0;

    let mut silence = Vec::new();
    let mut op = Peer::connect(&server);
    for _ in 0..RUNS {
        let last = drive_a_while(&server, &mut op);
        silence.push(time_until(&server, last, stopped));
        op.run_for(Duration::from_millis(50));
    }
    drop(op);
    server.wait_for(Duration::from_secs(5), |s| {
        s["peers"].as_array().unwrap().is_empty()
    });

    let (mut death, mut freed) = (Vec::new(), Vec::new());
    for _ in 0..RUNS / 2 {
        let mut op = Peer::connect(&server);
        let last = drive_a_while(&server, &mut op);
        drop(op); // the client dies: no goodbye, no more packets
        death.push(time_until(&server, last, stopped));
        freed.push(time_until(&server, last, |s| s["operator"].is_null()));
    }

    println!("deadman_ms = 300 (default), peer_timeout_ms = 1500 (tests/fixtures/reap-1500.toml)");
    report("last drive -> motors 0", silence);
    report("client dies -> motors 0", death);
    report("client dies -> operator role free", freed);
}
