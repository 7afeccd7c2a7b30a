//! The robot's session logic, sans-IO: what peers say on the data channel and
//! what we answer. Time comes in as a value; output is polled, like str0m.

use std::collections::VecDeque;
use std::time::Instant;

use super::protocol::{self, Inbound, Outbound};
use super::PeerId;

/// Something the loop must do for the session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionOutput {
    /// Send this JSON text to one peer.
    Send { peer: PeerId, text: String },
}

#[derive(Debug, Default)]
pub struct Session {
    peers: Vec<PeerId>,
    outputs: VecDeque<SessionOutput>,
    /// Messages refused (malformed, unknown, oversize), for status.
    pub rejected_messages: u64,
}

impl Session {
    pub fn new() -> Session {
        Session::default()
    }

    pub fn peer_joined(&mut self, _now: Instant, peer: PeerId) {
        if !self.peers.contains(&peer) {
            self.peers.push(peer);
        }
    }

    pub fn peer_left(&mut self, _now: Instant, peer: PeerId) {
        self.peers.retain(|p| *p != peer);
    }

    /// One text message from a peer's data channel.
    pub fn message(&mut self, _now: Instant, peer: PeerId, text: &str) {
        let reply = match protocol::parse(text) {
            Ok(Inbound::Ping { t }) => Outbound::Pong { t },
            Err(reason) => {
                self.rejected_messages += 1;
                Outbound::error(reason)
            }
        };
        self.send(peer, reply);
    }

    /// Advances timers (nothing is time-driven yet).
    pub fn tick(&mut self, _now: Instant) {}

    /// When `tick` must be called next, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        None
    }

    pub fn poll_output(&mut self) -> Option<SessionOutput> {
        self.outputs.pop_front()
    }

    fn send(&mut self, peer: PeerId, msg: Outbound) {
        self.outputs.push_back(SessionOutput::Send {
            peer,
            text: msg.to_json(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_gets_pong_and_garbage_gets_error_without_dropping_the_peer() {
        let now = Instant::now();
        let mut s = Session::new();
        s.peer_joined(now, PeerId(1));
        s.message(now, PeerId(1), r#"{"type":"ping","t":7}"#);
        s.message(now, PeerId(1), "{");
        assert_eq!(
            s.poll_output(),
            Some(SessionOutput::Send { peer: PeerId(1), text: r#"{"type":"pong","t":7}"#.into() })
        );
        let Some(SessionOutput::Send { text, .. }) = s.poll_output() else { panic!() };
        assert!(text.starts_with(r#"{"type":"error","reason":"#), "{text}");
        assert_eq!(s.rejected_messages, 1);
        assert_eq!(s.peers, vec![PeerId(1)]);
    }
}
