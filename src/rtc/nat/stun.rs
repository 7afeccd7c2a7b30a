//! The robot's public address, learned by asking the configured STUN servers
//! from the one RTC socket (RFC 8489 Binding). Sans-IO like the hub: datagrams
//! and time in, datagrams and the server-reflexive address out.
//!
//! Behind a NAT the browser's TURN relay only lets the robot's packets through
//! from an IP it was told about in the answer (coturn's permissions are per
//! IP), so the answer must carry the robot's public address.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::stun_message::{
    new_transaction_id, Message, MessageBuilder, BINDING_ERROR, BINDING_REQUEST, BINDING_SUCCESS,
    MAGIC_COOKIE, MAPPED_ADDRESS, XOR_MAPPED_ADDRESS,
};

/// First retransmission; doubled on each try (RFC 8489 §6.2.1).
const FIRST_RTO: Duration = Duration::from_millis(500);
/// Tries per server before moving on to the next one.
const TRIES: u32 = 4;
/// Asking again now and then notices a new public address (DHCP, a new
/// uplink) and keeps the NAT's mapping for the socket alive.
const REFRESH: Duration = Duration::from_secs(60);
/// After every server failed, wait this long before the next round, doubled
/// after each failed round up to `RETRY_AFTER_FAILURE`: a robot whose uplink
/// just came back (often with a new address) learns its public address again
/// within seconds, which a relayed browser needs before the robot's packets
/// get through its TURN permissions.
const FIRST_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// What the robot learned: `mapped` is how the STUN server saw the socket,
/// `base` the local address the answer arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reflexive {
    pub mapped: SocketAddr,
    pub base: SocketAddr,
}

struct Pending {
    transaction: [u8; 12],
    server: SocketAddr,
    tries: u32,
    resend_at: Instant,
}

pub struct StunClient {
    servers: Vec<SocketAddr>,
    /// Index of the server the current (or next) request goes to.
    current: usize,
    pending: Option<Pending>,
    next_round: Instant,
    reflexive: Option<Reflexive>,
    /// A request that is due but not yet taken by `poll_transmit`.
    outgoing: Option<(SocketAddr, Vec<u8>)>,
    /// So a server that stays unreachable is reported once, not every round.
    failure_logged: bool,
    /// The wait after the next failed round.
    retry_after: Duration,
}

impl StunClient {
    pub fn new(now: Instant) -> StunClient {
        StunClient {
            servers: Vec::new(),
            current: 0,
            pending: None,
            next_round: now,
            reflexive: None,
            outgoing: None,
            failure_logged: false,
            retry_after: FIRST_RETRY_AFTER_FAILURE,
        }
    }

    /// The servers to ask, freshly resolved (IPv4 only: the socket is IPv4).
    /// A new list starts a round at once.
    pub fn set_servers(&mut self, now: Instant, servers: Vec<SocketAddr>) {
        let servers: Vec<SocketAddr> = servers.into_iter().filter(|s| s.is_ipv4()).collect();
        if servers == self.servers {
            return;
        }
        self.servers = servers;
        self.current = 0;
        self.pending = None;
        self.next_round = now;
    }

    /// Asks again now: the local addresses changed to `local`, so the public
    /// one may have. What was learned on an address that is gone is dropped.
    pub fn refresh(&mut self, now: Instant, local: &[SocketAddr]) {
        self.pending = None;
        self.next_round = now;
        self.retry_after = FIRST_RETRY_AFTER_FAILURE;
        let base_gone = |r: &Reflexive| !local.iter().any(|a| a.ip() == r.base.ip());
        if self.reflexive.as_ref().is_some_and(base_gone) {
            self.reflexive = None;
        }
    }

    /// The public address, once a server answered.
    pub fn reflexive(&self) -> Option<Reflexive> {
        self.reflexive
    }

    /// Takes a datagram if it is the answer to our request; false leaves it for the peers.
    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        let Some(pending) = &self.pending else {
            return false;
        };
        if source != pending.server || data.get(8..20) != Some(&pending.transaction[..]) {
            return false;
        }
        let answer = match parse_answer(data) {
            Some(answer) => answer,
            None => return false,
        };
        let server = pending.server;
        self.pending = None;
        let mapped = match answer {
            Answer::Mapped(mapped) => mapped,
            Answer::Refused(code) => {
                tracing::warn!(%server, code, "STUN server refused the binding request");
                self.next_server(now);
                return true;
            }
            Answer::NoAddress => {
                tracing::warn!(%server, "STUN answer without an IPv4 mapped address");
                self.next_server(now);
                return true;
            }
        };
        let learned = Reflexive {
            mapped,
            base: destination,
        };
        if self.reflexive != Some(learned) {
            tracing::info!(%server, public = %mapped, local = %destination, "public address learned by STUN");
        }
        self.reflexive = Some(learned);
        self.failure_logged = false;
        self.retry_after = FIRST_RETRY_AFTER_FAILURE;
        self.next_round = now + REFRESH;
        true
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.servers.is_empty() {
            return;
        }
        match &mut self.pending {
            Some(p) if now >= p.resend_at => {
                if p.tries >= TRIES {
                    self.pending = None;
                    self.next_server(now);
                    return self.handle_timeout(now);
                }
                p.tries += 1;
                p.resend_at = now + FIRST_RTO * (1 << (p.tries - 1));
                self.outgoing = Some((p.server, request(p.transaction)));
            }
            Some(_) => {}
            None if now >= self.next_round => {
                let server = self.servers[self.current % self.servers.len()];
                let transaction = new_transaction_id();
                self.pending = Some(Pending {
                    transaction,
                    server,
                    tries: 1,
                    resend_at: now + FIRST_RTO,
                });
                self.outgoing = Some((server, request(transaction)));
            }
            None => {}
        }
    }

    /// A request to send from the RTC socket: (destination, bytes).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.outgoing.take()
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        if self.servers.is_empty() {
            return None;
        }
        Some(
            self.pending
                .as_ref()
                .map_or(self.next_round, |p| p.resend_at),
        )
    }

    /// The current server did not answer: try the next, or after a full round wait.
    fn next_server(&mut self, now: Instant) {
        self.current += 1;
        if self.current.is_multiple_of(self.servers.len()) {
            if !self.failure_logged {
                tracing::warn!(
                    servers = ?self.servers,
                    "no STUN server answered; browsers get the local addresses only (retrying in {} s, then less often, every {} s at most)",
                    self.retry_after.as_secs(),
                    RETRY_AFTER_FAILURE.as_secs()
                );
                self.failure_logged = true;
            }
            self.next_round = now + self.retry_after;
            self.retry_after = (self.retry_after * 2).min(RETRY_AFTER_FAILURE);
        }
    }
}

/// A Binding request without attributes: 20 bytes of header.
fn request(transaction: [u8; 12]) -> Vec<u8> {
    MessageBuilder::new(BINDING_REQUEST, transaction).finish()
}

#[derive(Debug, PartialEq)]
enum Answer {
    Mapped(SocketAddr),
    Refused(u16),
    NoAddress,
}

/// Reads a Binding answer: (XOR-)MAPPED-ADDRESS or ERROR-CODE. None if it is
/// not a well-formed Binding answer at all.
fn parse_answer(data: &[u8]) -> Option<Answer> {
    let message = Message::parse(data)?;
    let success = match message.kind {
        BINDING_SUCCESS => true,
        BINDING_ERROR => false,
        _ => return None,
    };
    let xor_mapped = message
        .attribute(XOR_MAPPED_ADDRESS)
        .and_then(|v| ipv4_address(v, MAGIC_COOKIE));
    let mapped = message
        .attribute(MAPPED_ADDRESS)
        .and_then(|v| ipv4_address(v, [0; 4]));
    Some(match (success, xor_mapped.or(mapped)) {
        (true, Some(addr)) => Answer::Mapped(addr),
        (true, None) => Answer::NoAddress,
        (false, _) => Answer::Refused(message.error().map_or(0, |(code, _)| code)),
    })
}

/// An IPv4 (XOR-)MAPPED-ADDRESS value; `mask` is the magic cookie for the XOR form.
fn ipv4_address(value: &[u8], mask: [u8; 4]) -> Option<SocketAddr> {
    if value.len() != 8 || value[1] != 0x01 {
        return None;
    }
    let port = u16::from_be_bytes([value[2] ^ mask[0], value[3] ^ mask[1]]);
    let ip = Ipv4Addr::new(
        value[4] ^ mask[0],
        value[5] ^ mask[1],
        value[6] ^ mask[2],
        value[7] ^ mask[3],
    );
    Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: &str = "192.168.1.20:50000";
    const PUBLIC: &str = "203.0.113.7:61000";

    fn server(n: u8) -> SocketAddr {
        format!("198.51.100.{n}:3478").parse().unwrap()
    }

    /// What a STUN server answers to `request` (RFC 8489 §14.2, written out by hand).
    fn answer(request: &[u8], mapped: &str) -> Vec<u8> {
        assert_eq!(&request[0..2], &[0x00, 0x01], "a Binding request");
        assert_eq!(&request[2..4], &[0, 0], "no attributes");
        let SocketAddr::V4(mapped) = mapped.parse().unwrap() else {
            unreachable!()
        };
        let mut out = vec![0x01, 0x01, 0x00, 12];
        out.extend_from_slice(&request[4..20]);
        out.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]);
        out.extend_from_slice(&(mapped.port() ^ 0x2112).to_be_bytes());
        let cookie = u32::from_be_bytes(MAGIC_COOKIE);
        out.extend_from_slice(&(u32::from(*mapped.ip()) ^ cookie).to_be_bytes());
        out
    }

    #[test]
    fn reads_errors_and_plain_mapped_addresses() {
        let error = [
            0x01, 0x11, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            0x00, 0x09, 0x00, 0x04, 0, 0, 4, 1,
        ];
        assert_eq!(parse_answer(&error), Some(Answer::Refused(401)));
        let plain = [
            0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            0x00, 0x01, 0x00, 0x08, 0, 1, 0x1f, 0x90, 10, 0, 0, 1,
        ];
        assert_eq!(
            parse_answer(&plain),
            Some(Answer::Mapped("10.0.0.1:8080".parse().unwrap()))
        );
        assert_eq!(parse_answer(&plain[..30]), None, "truncated");
    }

    #[test]
    fn learns_the_public_address_and_refreshes_it() {
        let t0 = Instant::now();
        let mut stun = StunClient::new(t0);
        stun.handle_timeout(t0);
        assert!(stun.poll_transmit().is_none(), "no servers, no traffic");
        stun.set_servers(t0, vec![server(1)]);
        stun.handle_timeout(t0);
        let (to, req) = stun.poll_transmit().unwrap();
        assert_eq!(to, server(1));
        let reply = answer(&req, PUBLIC);
        assert!(
            !stun.receive(t0, server(2), LOCAL.parse().unwrap(), &reply),
            "wrong source"
        );
        assert!(stun.receive(t0, server(1), LOCAL.parse().unwrap(), &reply));
        assert_eq!(
            stun.reflexive(),
            Some(Reflexive {
                mapped: PUBLIC.parse().unwrap(),
                base: LOCAL.parse().unwrap()
            })
        );
        assert!(
            !stun.receive(t0, server(1), LOCAL.parse().unwrap(), &reply),
            "answered once"
        );
        assert_eq!(stun.next_timeout(), Some(t0 + REFRESH));
        stun.handle_timeout(t0 + REFRESH);
        assert!(stun.poll_transmit().is_some(), "asks again later");
        let t1 = t0 + REFRESH + Duration::from_secs(1);
        stun.refresh(t1, &[LOCAL.parse().unwrap()]);
        assert_eq!(stun.next_timeout(), Some(t1), "a refresh asks at once");
        assert!(stun.reflexive().is_some(), "still on the same address");
    }

    #[test]
    fn retransmits_then_moves_to_the_next_server_and_keeps_what_it_knew() {
        let t0 = Instant::now();
        let mut stun = StunClient::new(t0);
        stun.set_servers(t0, vec![server(1), server(2)]);
        let mut now = t0;
        let mut sent_to = Vec::new();
        for _ in 0..20 {
            stun.handle_timeout(now);
            if let Some((to, _)) = stun.poll_transmit() {
                sent_to.push(to);
            }
            now = stun.next_timeout().unwrap();
        }
        let first_tries = sent_to.iter().take_while(|s| **s == server(1)).count();
        assert_eq!(first_tries, TRIES as usize, "{sent_to:?}");
        assert_eq!(sent_to[TRIES as usize], server(2));
        assert!(stun.reflexive().is_none());
    }

    #[test]
    fn failed_rounds_retry_soon_then_less_often_and_a_gone_address_is_forgotten() {
        let t0 = Instant::now();
        let mut stun = StunClient::new(t0);
        stun.set_servers(t0, vec![server(1)]);
        stun.handle_timeout(t0);
        let (_, req) = stun.poll_transmit().unwrap();
        assert!(stun.receive(t0, server(1), LOCAL.parse().unwrap(), &answer(&req, PUBLIC)));
        // The robot's address changes and the uplink is down for a while.
        let moved: SocketAddr = "192.168.1.3:50000".parse().unwrap();
        stun.refresh(t0, &[moved]);
        assert_eq!(stun.reflexive(), None, "learned on an address that is gone");
        let mut now = t0;
        let mut rounds = Vec::new();
        for _ in 0..60 {
            stun.handle_timeout(now);
            if stun.poll_transmit().is_some() {
                rounds.push(now);
            }
            now = stun.next_timeout().unwrap();
        }
        // Rounds of TRIES requests; the waits between rounds grow 2, 4, 8 s... to 30 s.
        let starts: Vec<_> = rounds.chunks(TRIES as usize).map(|c| c[0]).collect();
        let round_time = (FIRST_RTO * ((1 << TRIES) - 1)).as_secs_f64();
        let waits: Vec<u64> = starts
            .windows(2)
            .map(|w| ((w[1] - w[0]).as_secs_f64() - round_time).round() as u64)
            .collect();
        assert_eq!(&waits[..6], [2, 4, 8, 16, 30, 30], "{waits:?}");
    }

    #[test]
    fn ignores_datagrams_that_are_not_its_answer() {
        let t0 = Instant::now();
        let mut stun = StunClient::new(t0);
        stun.set_servers(t0, vec![server(1)]);
        stun.handle_timeout(t0);
        let (_, req) = stun.poll_transmit().unwrap();
        let mut other = answer(&req, PUBLIC);
        other[10] ^= 0xff; // another transaction
        assert!(!stun.receive(t0, server(1), LOCAL.parse().unwrap(), &other));
        assert!(!stun.receive(t0, server(1), LOCAL.parse().unwrap(), b"\x80\x60rtp"));
        assert!(!stun.receive(t0, server(1), LOCAL.parse().unwrap(), &[]));
        assert!(stun.reflexive().is_none());
    }
}
