//! How telepi's HTTP server takes connections, end to end: a browser opens
//! several keep-alive connections at once (and preconnects some it sends
//! nothing on yet), and every one must be served while others stay open.
//! The page-load version of this, in headless Chromium with a poller
//! keeping a connection busy, is tests/browser/connections.test.mjs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Server;

/// Far longer than a loopback request takes; a stranded connection never answers.
const PATIENCE: Duration = Duration::from_secs(5);

/// Issue 19: tiny_http's thread pool lost the wake-up of a connection that
/// arrived while an idle thread had been woken but not yet run, so a burst
/// of new connections could leave one unread until another connection
/// closed (with keep-alive: maybe never).
#[test]
fn bursts_of_keep_alive_connections_are_all_served() {
    let server = Server::start(&[]);
    // Earlier bursts stay open, idle, as a browser's pooled sockets do.
    let mut open: Vec<TcpStream> = Vec::new();
    for burst in 0..40 {
        let mut streams: Vec<TcpStream> = (0..6)
            .map(|_| TcpStream::connect(server.http).unwrap())
            .collect();
        for stream in &mut streams {
            stream
                .write_all(b"GET /api/status HTTP/1.1\r\nHost: robot\r\n\r\n")
                .unwrap();
        }
        for (n, stream) in streams.iter_mut().enumerate() {
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            let mut head = [0u8; 12];
            let answered = stream.read_exact(&mut head).is_ok();
            assert!(
                answered && head.starts_with(b"HTTP/1.1 200"),
                "burst {burst}: connection {n} of 6 was not answered within {PATIENCE:?}"
            );
        }
        open.extend(streams);
        if open.len() > 24 {
            open.drain(..6);
        }
    }
}
