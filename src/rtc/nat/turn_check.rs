//! Checks once at start that each `turn:` server of `[rtc] ice_servers`
//! accepts the credentials browsers get. telepi never relays through TURN
//! itself (the browser does), so without this a wrong `turn_secret` or a dead
//! server only shows up as "ICE failed" in a browser far away.
//!
//! The check is a TURN Allocate (RFC 8656 §7.2) without credentials, which
//! must draw a 401 with REALM and NONCE, then again with long-term credentials;
//! a granted allocation is freed at once (Refresh with LIFETIME 0). It runs on
//! a thread of its own with an ephemeral UDP socket, never on the network loop.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::stun_message::{
    long_term_key, new_transaction_id, Message, MessageBuilder, ALLOCATE_ERROR, ALLOCATE_REQUEST,
    ALLOCATE_SUCCESS, LIFETIME, NONCE, REALM, REFRESH_ERROR, REFRESH_REQUEST, REFRESH_SUCCESS,
    REQUESTED_TRANSPORT, USERNAME,
};
use crate::rtc::config::RtcConfig;
use crate::rtc::ice::{parse_url, turn_credentials, IceUrl, Scheme, TurnCredentials};

/// First retransmission, doubled on each try (RFC 8489 §6.2.1), but fewer
/// tries than the RFC's seven: this only decides what to log.
const FIRST_RTO: Duration = Duration::from_millis(500);
const TRIES: u32 = 3;
/// How long a request goes unanswered before the server counts as silent.
pub const PATIENCE: Duration = FIRST_RTO.saturating_mul((1 << TRIES) - 1);

/// REQUESTED-TRANSPORT: UDP (protocol 17) and three reserved bytes.
const UDP: [u8; 4] = [17, 0, 0, 0];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted {
        realm: String,
    },
    /// The authenticated Allocate was refused.
    Refused {
        code: u16,
        reason: String,
    },
    /// Not the TURN conversation expected (no 401 challenge, say).
    Unexpected(String),
    Silent,
}

/// The long-term credential parts every authenticated request carries.
struct Auth {
    username: String,
    realm: String,
    nonce: Vec<u8>,
    key: [u8; 16],
}

enum State {
    /// Allocate without credentials sent; a 401 challenge is expected.
    Challenge,
    /// Allocate with credentials sent.
    Authenticate(Auth),
    /// The outcome is known; freeing what was allocated.
    Release(Outcome),
    Done(Outcome),
}

/// One server's check, sans-IO: datagrams and time in, datagrams and the outcome out.
pub struct TurnCheck {
    username: String,
    password: String,
    state: State,
    /// The request in flight, for retransmission.
    request: Vec<u8>,
    tries: u32,
    resend_at: Instant,
    outgoing: Option<Vec<u8>>,
}

impl TurnCheck {
    pub fn new(now: Instant, username: &str, password: &str) -> TurnCheck {
        let mut check = TurnCheck {
            username: username.to_string(),
            password: password.to_string(),
            state: State::Challenge,
            request: Vec::new(),
            tries: 0,
            resend_at: now,
            outgoing: None,
        };
        check.send(now, allocate(None));
        check
    }

    /// Takes a datagram from the server; ignores what does not answer the request in flight.
    pub fn receive(&mut self, now: Instant, data: &[u8]) {
        let Some(answer) = Message::parse(data) else {
            return;
        };
        if answer.transaction[..] != self.request[8..20] {
            return;
        }
        let error = || {
            answer
                .error()
                .unwrap_or_else(|| (0, "without ERROR-CODE".into()))
        };
        let (state, request) = match (&self.state, answer.kind) {
            (State::Challenge, ALLOCATE_ERROR) => {
                match (error(), answer.attribute(REALM), answer.attribute(NONCE)) {
                    ((401, _), Some(realm), Some(nonce)) => {
                        let realm = String::from_utf8_lossy(realm).into_owned();
                        let auth = Auth {
                            key: long_term_key(&self.username, &realm, &self.password),
                            username: self.username.clone(),
                            realm,
                            nonce: nonce.to_vec(),
                        };
                        let request = allocate(Some(&auth));
                        (State::Authenticate(auth), Some(request))
                    }
                    ((code, reason), ..) => {
                        let what = format!("{code} {reason} to an Allocate without credentials, not 401 with REALM and NONCE");
                        (State::Done(Outcome::Unexpected(what)), None)
                    }
                }
            }
            (State::Challenge, ALLOCATE_SUCCESS) => {
                let open = "it relays for anyone, without asking for credentials";
                let outcome = Outcome::Unexpected(open.into());
                (State::Release(outcome), Some(release(None)))
            }
            (State::Authenticate(auth), ALLOCATE_SUCCESS) => {
                let realm = auth.realm.clone();
                let request = release(Some(auth));
                (State::Release(Outcome::Accepted { realm }), Some(request))
            }
            (State::Authenticate(_), ALLOCATE_ERROR) => {
                let (code, reason) = error();
                (State::Done(Outcome::Refused { code, reason }), None)
            }
            (State::Release(outcome), REFRESH_SUCCESS | REFRESH_ERROR) => {
                (State::Done(outcome.clone()), None)
            }
            _ => return,
        };
        self.state = state;
        if let Some(request) = request {
            self.send(now, request);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.state, State::Done(_)) || now < self.resend_at {
            return;
        }
        if self.tries < TRIES {
            self.resend_at = now + FIRST_RTO * (1 << self.tries);
            self.tries += 1;
            self.outgoing = Some(self.request.clone());
            return;
        }
        let outcome = match &self.state {
            // Unfreed, the allocation expires on its own in 10 minutes.
            State::Release(outcome) => outcome.clone(),
            _ => Outcome::Silent,
        };
        self.state = State::Done(outcome);
    }

    /// A request to send to the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outgoing.take()
    }

    /// None once the check is done.
    pub fn next_timeout(&self) -> Option<Instant> {
        (!matches!(self.state, State::Done(_))).then_some(self.resend_at)
    }

    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.state {
            State::Done(outcome) => Some(outcome),
            _ => None,
        }
    }

    fn send(&mut self, now: Instant, request: Vec<u8>) {
        self.outgoing = Some(request.clone());
        self.request = request;
        self.tries = 1;
        self.resend_at = now + FIRST_RTO;
    }
}

fn allocate(auth: Option<&Auth>) -> Vec<u8> {
    let request = MessageBuilder::new(ALLOCATE_REQUEST, new_transaction_id())
        .attribute(REQUESTED_TRANSPORT, &UDP);
    authenticated(request, auth)
}

/// A Refresh with LIFETIME 0 frees the allocation (RFC 8656 §7.3).
fn release(auth: Option<&Auth>) -> Vec<u8> {
    let request = MessageBuilder::new(REFRESH_REQUEST, new_transaction_id())
        .attribute(LIFETIME, &0u32.to_be_bytes());
    authenticated(request, auth)
}

fn authenticated(request: MessageBuilder, auth: Option<&Auth>) -> Vec<u8> {
    match auth {
        Some(auth) => request
            .attribute(USERNAME, auth.username.as_bytes())
            .attribute(REALM, auth.realm.as_bytes())
            .attribute(NONCE, &auth.nonce)
            .finish_with_integrity(&auth.key),
        None => request.finish(),
    }
}

/// Checks every UDP `turn:` server of the config on a thread of its own
/// (DNS and waiting block) and logs one line per server.
pub fn spawn(rtc: &RtcConfig) {
    let unix_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut servers = Vec::new();
    for server in &rtc.ice_servers {
        let Some(credentials) = turn_credentials(rtc, server, unix_now) else {
            continue;
        };
        for url in &server.urls {
            match parse_url(url) {
                Ok(parsed) if parsed.scheme == Scheme::Turn && !parsed.tcp => {
                    servers.push((url.clone(), parsed, credentials.clone()));
                }
                Ok(parsed) if parsed.scheme.is_turn() => {
                    tracing::debug!("TURN {url} not checked: only UDP turn: URLs are");
                }
                _ => {}
            }
        }
    }
    if servers.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("turn-check".into())
        .spawn(move || {
            for (url, parsed, credentials) in servers {
                check_and_log(&url, &parsed, &credentials);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no TURN check thread ({e}): TURN settings stay unchecked");
    }
}

fn check_and_log(url: &str, parsed: &IceUrl, credentials: &TurnCredentials) {
    let server = match (parsed.host.as_str(), parsed.port).to_socket_addrs() {
        Ok(mut addrs) => addrs.next(),
        Err(e) => {
            tracing::warn!(
                "TURN {url}: cannot resolve {}: {e}: browsers behind NATs will fail to connect",
                parsed.host
            );
            return;
        }
    };
    let Some(server) = server else {
        tracing::warn!("TURN {url}: {} has no address", parsed.host);
        return;
    };
    let outcome = run(server, credentials)
        .unwrap_or_else(|e| Outcome::Unexpected(format!("socket error: {e}")));
    match outcome {
        Outcome::Accepted { realm } => {
            tracing::info!("TURN {url} accepts the credentials browsers get (realm {realm})");
        }
        Outcome::Refused { code: 401, reason } => {
            let fix = if credentials.minted {
                "[rtc] turn_secret must equal the server's static-auth-secret"
            } else {
                "the static username/credential of this ice_servers entry were rejected"
            };
            tracing::warn!("TURN {url} refused the credentials (401 {reason}): {fix}");
        }
        Outcome::Refused { code, reason } => {
            tracing::warn!("TURN {url} refused an allocation with the credentials browsers get ({code} {reason})");
        }
        Outcome::Unexpected(what) => {
            tracing::warn!("TURN {url} answered unexpectedly ({what}): browsers behind NATs may fail to connect");
        }
        Outcome::Silent => tracing::warn!(
            "TURN {url} did not answer within {} s: browsers behind NATs will fail to connect",
            PATIENCE.as_secs_f32()
        ),
    }
}

/// Drives one [`TurnCheck`] on an ephemeral socket until it has an outcome.
fn run(server: SocketAddr, credentials: &TurnCredentials) -> io::Result<Outcome> {
    let any: SocketAddr = match server {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("literal"),
    };
    let socket = UdpSocket::bind(any)?;
    let mut check = TurnCheck::new(Instant::now(), &credentials.username, &credentials.password);
    let mut buf = [0u8; 1500];
    loop {
        while let Some(request) = check.poll_transmit() {
            socket.send_to(&request, server)?;
        }
        let Some(deadline) = check.next_timeout() else {
            return Ok(check
                .outcome()
                .cloned()
                .expect("a check without a timeout is done"));
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            check.handle_timeout(Instant::now());
            continue;
        }
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut buf) {
            Ok((n, source)) if source == server => check.receive(Instant::now(), &buf[..n]),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                check.handle_timeout(Instant::now());
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc::nat::stun_message::{ERROR_CODE, MESSAGE_INTEGRITY};

    const USER: &str = "1700000600:telepi";
    const PASSWORD: &str = "TfZY87Cn/dahqnTgHc/YddW2CN0=";

    /// What a TURN server answers to `request`, written out by hand.
    fn answer(request: &[u8], kind: u16, attributes: &[(u16, &[u8])]) -> Vec<u8> {
        let transaction = request[8..20].try_into().unwrap();
        attributes
            .iter()
            .fold(MessageBuilder::new(kind, transaction), |m, (k, v)| {
                m.attribute(*k, v)
            })
            .finish()
    }

    fn challenge(request: &[u8]) -> Vec<u8> {
        answer(
            request,
            ALLOCATE_ERROR,
            &[
                (ERROR_CODE, b"\0\0\x04\x01Unauthorized"),
                (NONCE, b"n0nce"),
                (REALM, b"telepi.test"),
            ],
        )
    }

    /// The check, past the challenge, with its authenticated Allocate.
    fn challenged(t0: Instant) -> (TurnCheck, Vec<u8>) {
        let mut check = TurnCheck::new(t0, USER, PASSWORD);
        let first = check.poll_transmit().unwrap();
        check.receive(t0, &challenge(&first));
        let second = check.poll_transmit().unwrap();
        (check, second)
    }

    #[test]
    fn answers_the_challenge_with_long_term_credentials_and_frees_the_allocation() {
        let t0 = Instant::now();
        let mut check = TurnCheck::new(t0, USER, PASSWORD);
        let first = check.poll_transmit().unwrap();
        let message = Message::parse(&first).unwrap();
        assert_eq!(message.kind, ALLOCATE_REQUEST);
        assert_eq!(message.attribute(REQUESTED_TRANSPORT), Some(&UDP[..]));
        assert_eq!(message.attribute(USERNAME), None, "no credentials yet");

        check.receive(t0, &challenge(&first));
        let second = check.poll_transmit().unwrap();
        let transaction = second[8..20].try_into().unwrap();
        assert_ne!(second[8..20], first[8..20], "a new transaction");
        let expected = MessageBuilder::new(ALLOCATE_REQUEST, transaction)
            .attribute(REQUESTED_TRANSPORT, &UDP)
            .attribute(USERNAME, USER.as_bytes())
            .attribute(REALM, b"telepi.test")
            .attribute(NONCE, b"n0nce")
            .finish_with_integrity(&long_term_key(USER, "telepi.test", PASSWORD));
        assert_eq!(second, expected);
        assert_eq!(check.outcome(), None);

        check.receive(t0, &answer(&second, ALLOCATE_SUCCESS, &[]));
        let release = check.poll_transmit().unwrap();
        let message = Message::parse(&release).unwrap();
        assert_eq!(message.kind, REFRESH_REQUEST);
        assert_eq!(message.attribute(LIFETIME), Some(&[0u8; 4][..]));
        assert!(message.attribute(MESSAGE_INTEGRITY).is_some());
        assert_eq!(check.outcome(), None, "still freeing the allocation");

        check.receive(t0, &answer(&release, REFRESH_SUCCESS, &[]));
        let accepted = Outcome::Accepted {
            realm: "telepi.test".into(),
        };
        assert_eq!(check.outcome(), Some(&accepted));
        assert_eq!(check.next_timeout(), None);
        assert_eq!(check.poll_transmit(), None);
    }

    #[test]
    fn a_second_401_means_the_credentials_are_wrong() {
        let t0 = Instant::now();
        let (mut check, second) = challenged(t0);
        check.receive(t0, &challenge(&second));
        let refused = Outcome::Refused {
            code: 401,
            reason: "Unauthorized".into(),
        };
        assert_eq!(check.outcome(), Some(&refused));
    }

    #[test]
    fn silence_is_reported_after_the_retransmissions() {
        let t0 = Instant::now();
        let mut check = TurnCheck::new(t0, USER, PASSWORD);
        let mut sent = 0;
        let mut now = t0;
        while let Some(deadline) = check.next_timeout() {
            sent += usize::from(check.poll_transmit().is_some());
            now = deadline;
            check.handle_timeout(now);
        }
        assert_eq!(sent, TRIES as usize);
        assert_eq!(now - t0, PATIENCE);
        assert_eq!(check.outcome(), Some(&Outcome::Silent));
    }

    #[test]
    fn an_unanswered_release_still_counts_as_accepted() {
        let t0 = Instant::now();
        let (mut check, second) = challenged(t0);
        check.receive(t0, &answer(&second, ALLOCATE_SUCCESS, &[]));
        while let Some(deadline) = check.next_timeout() {
            check.handle_timeout(deadline);
        }
        assert!(matches!(check.outcome(), Some(Outcome::Accepted { .. })));
    }

    #[test]
    fn an_answer_that_is_no_challenge_is_unexpected() {
        let t0 = Instant::now();
        let mut check = TurnCheck::new(t0, USER, PASSWORD);
        let first = check.poll_transmit().unwrap();
        let bad = answer(
            &first,
            ALLOCATE_ERROR,
            &[(ERROR_CODE, b"\0\0\x04\x00Bad Request")],
        );
        check.receive(t0, &bad);
        let Some(Outcome::Unexpected(what)) = check.outcome() else {
            panic!("{:?}", check.outcome());
        };
        assert!(what.starts_with("400 Bad Request"), "{what}");
    }

    #[test]
    fn ignores_other_transactions_and_garbage() {
        let t0 = Instant::now();
        let mut check = TurnCheck::new(t0, USER, PASSWORD);
        let first = check.poll_transmit().unwrap();
        let mut other = challenge(&first);
        other[10] ^= 0xff;
        check.receive(t0, &other);
        check.receive(t0, b"\x80\x60rtp");
        check.receive(t0, &[]);
        assert_eq!(check.poll_transmit(), None);
        assert_eq!(check.next_timeout(), Some(t0 + FIRST_RTO));
    }
}
