//! The broker connection's thread. Signaling through a broker is a few small
//! messages a minute, like HTTP, so it gets what HTTP gets: a thread of its
//! own with blocking socket I/O (and TLS), asking the network loop through
//! the same [`LoopHandle`] as `POST /connect`. The smol loop never waits on
//! TCP, TLS or a slow broker, and no second async runtime is needed.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::link::{Identity, Link, LinkEvent};
use super::signaling::{self, OfferLimit, Topics, Wanted};
use super::{parse_url, BrokerConfig, BrokerError, BrokerUrl};
use crate::access::{Access, Credentials};
use crate::rtc::config::RtcConfig;
use crate::rtc::ice;
use crate::rtc::net::is_host_address;
use crate::rtc::server::LoopHandle;
use crate::rtc::PeerId;
use crate::status::BrokerStatus;
use crate::tls;

/// How often presence is compared with the robot's state.
const PRESENCE_CHECK: Duration = Duration::from_secs(2);
/// Republished even unchanged, so a broker restart without persistence heals.
const PRESENCE_REFRESH: Duration = Duration::from_secs(60);
/// The longest a read blocks: bounds how late timers and shutdown are noticed.
const READ_SLICE: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters shown in `/api/status` under `broker`.
#[derive(Debug, Default)]
pub struct BrokerStats {
    pub connected: AtomicBool,
    pub offers_answered: AtomicU64,
    pub requests_rejected: AtomicU64,
    pub reconnects: AtomicU64,
}

impl BrokerStats {
    pub fn status(&self) -> BrokerStatus {
        BrokerStatus {
            connected: self.connected.load(Ordering::Relaxed),
            offers_answered: self.offers_answered.load(Ordering::Relaxed),
            requests_rejected: self.requests_rejected.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }
}

pub struct BrokerClient {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    pub stats: Arc<BrokerStats>,
}

/// A byte stream to the broker: TCP, or TLS over it.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

struct Context {
    url: BrokerUrl,
    /// Set for `mqtts://`.
    tls: Option<Arc<rustls::ClientConfig>>,
    identity: Identity,
    topics: Topics,
    name: String,
    robot: LoopHandle,
    access: Arc<Access>,
    /// For the ICE servers a page asks for.
    rtc: RtcConfig,
    stats: Arc<BrokerStats>,
    stop: Arc<AtomicBool>,
}

enum SessionEnd {
    Refused(String),
    Lost(String),
    Stopped,
}

impl BrokerClient {
    /// Starts the connection thread, or None without `[broker] url`.
    pub fn start(
        config: &BrokerConfig,
        rtc: &RtcConfig,
        robot: LoopHandle,
        access: Arc<Access>,
    ) -> Result<Option<BrokerClient>, BrokerError> {
        let Some(url) = &config.url else {
            return Ok(None);
        };
        let url = parse_url(url)?;
        let tls = match url.tls {
            true => Some(tls::client_config(config.ca.as_deref())?),
            false => None,
        };
        let name = config.robot_name()?;
        let topics = Topics::new(&config.topic_prefix, &name);
        let identity = Identity {
            client_id: format!("telepi-{name}"),
            username: config.username.clone(),
            password: config.password.clone(),
            will: Some((topics.status.clone(), signaling::offline(&name))),
            keepalive: Duration::from_secs(u64::from(config.keepalive_s)),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(BrokerStats::default());
        let context = Context {
            url,
            tls,
            identity,
            topics,
            name,
            robot,
            access,
            rtc: rtc.clone(),
            stats: stats.clone(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("broker".into())
            .spawn(move || context.run())
            .map_err(BrokerError::Thread)?;
        Ok(Some(BrokerClient {
            stop,
            thread,
            stats,
        }))
    }

    /// Says goodbye (presence offline, DISCONNECT) and waits for the thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

impl Context {
    fn run(&self) {
        let mut attempt = 0;
        let mut last_problem = String::new();
        while !self.stopped() {
            let end = match self.open() {
                Ok((stream, local_ip)) => self.session(stream, local_ip),
                Err(e) => SessionEnd::Lost(e),
            };
            if self.stats.connected.swap(false, Ordering::Relaxed) {
                // It worked for a while: start the back-off over, and report anew.
                attempt = 0;
                last_problem.clear();
            }
            let (problem, refused) = match end {
                SessionEnd::Stopped => return,
                SessionEnd::Refused(why) => (
                    format!(
                        "the broker refused telepi: {why} (check [broker] username and password)"
                    ),
                    true,
                ),
                SessionEnd::Lost(why) => (why, false),
            };
            let wait = signaling::backoff(attempt, refused);
            // One line per new problem, not one per retry.
            if problem != last_problem {
                tracing::warn!(
                    "broker {}:{}: {problem}; retrying every {} s at most (the LAN page keeps working)",
                    self.url.host,
                    self.url.port,
                    wait.as_secs()
                );
                last_problem = problem;
            }
            attempt += 1;
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            let until = Instant::now() + wait;
            while Instant::now() < until && !self.stopped() {
                std::thread::sleep(READ_SLICE);
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The connection, and the robot's address it leaves from.
    fn open(&self) -> Result<(Box<dyn Stream>, IpAddr), String> {
        let addr = (self.url.host.as_str(), self.url.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.url.host))?
            .next()
            .ok_or_else(|| format!("{} has no address", self.url.host))?;
        let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
            .map_err(|e| format!("cannot connect: {e}"))?;
        tcp.set_read_timeout(Some(READ_SLICE))
            .and_then(|()| tcp.set_nodelay(true))
            .map_err(|e| format!("socket: {e}"))?;
        let local_ip = tcp.local_addr().map_err(|e| format!("socket: {e}"))?.ip();
        match &self.tls {
            Some(config) => {
                let stream = tls::handshake(config, &self.url.host, tcp, CONNECT_TIMEOUT)
                    .map_err(|e| e.to_string())?;
                Ok((Box::new(stream), local_ip))
            }
            None => Ok((Box::new(tcp), local_ip)),
        }
    }

    fn session(&self, mut stream: Box<dyn Stream>, local_ip: IpAddr) -> SessionEnd {
        let now = Instant::now();
        let mut link = Link::new(now, &self.identity);
        let mut limit = OfferLimit::new(now);
        let mut presence: Option<(serde_json::Value, Instant)> = None;
        let mut next_presence_check = now;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if let Err(e) = flush(&mut link, &mut stream) {
                return SessionEnd::Lost(format!("connection lost: {e}"));
            }
            if self.stopped() {
                let _ = link.publish(
                    Instant::now(),
                    &self.topics.status,
                    &signaling::offline(&self.name),
                    true,
                );
                link.disconnect(Instant::now());
                let _ = flush(&mut link, &mut stream);
                return SessionEnd::Stopped;
            }
            match stream.read(&mut buf) {
                Ok(0) => return SessionEnd::Lost("the broker closed the connection".into()),
                Ok(n) => link.receive(Instant::now(), &buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return SessionEnd::Lost(format!("connection lost: {e}")),
            }
            let now = Instant::now();
            link.handle_timeout(now);
            while let Some(event) = link.poll_event() {
                match event {
                    LinkEvent::Up => {
                        tracing::info!(
                            "broker {}:{} connected: robot {:?} takes offers on {}",
                            self.url.host,
                            self.url.port,
                            self.name,
                            self.topics.signal
                        );
                        self.stats.connected.store(true, Ordering::Relaxed);
                        if let Err(e) = link.subscribe(now, &self.topics.signal) {
                            return SessionEnd::Lost(e);
                        }
                        next_presence_check = now;
                        presence = None;
                    }
                    LinkEvent::Refused(why) => return SessionEnd::Refused(why),
                    LinkEvent::Dead(why) => return SessionEnd::Lost(why),
                    LinkEvent::Oversized(bytes) => self.reject(
                        &mut link,
                        now,
                        &format!("a {bytes}-byte message (over the limit) skipped"),
                        None,
                    ),
                    LinkEvent::Message { topic, payload } if topic == self.topics.signal => {
                        self.request(&mut link, &mut limit, now, &payload)
                    }
                    LinkEvent::Message { topic, .. } => {
                        tracing::debug!("broker: ignoring a message on {topic}")
                    }
                }
            }
            if now >= next_presence_check {
                next_presence_check = now + PRESENCE_CHECK;
                // TCP would notice only after its retransmissions give up
                // (minutes): reconnect now, from the new address.
                if !is_host_address(local_ip) {
                    return SessionEnd::Lost(format!(
                        "the robot's address {local_ip} went away (network change)"
                    ));
                }
                if link.is_up() {
                    self.publish_presence(&mut link, now, &mut presence);
                }
            }
        }
    }

    /// Answers one request: an offer as `POST /connect` would, ICE servers as
    /// `GET /api/ice-servers`, on the asker's own topic.
    fn request(&self, link: &mut Link, limit: &mut OfferLimit, now: Instant, payload: &[u8]) {
        let (request, wanted) = match signaling::parse_request(&self.topics, payload) {
            Ok(parsed) => parsed,
            Err(rejection) => return self.reject(link, now, &rejection.reason, rejection.reply_to),
        };
        let reply_to = Some((request.reply_to.clone(), request.id.clone()));
        if !limit.take(now) {
            return self.reject(
                link,
                now,
                "too many requests: try again in a second",
                reply_to,
            );
        }
        let presented = Credentials {
            bearer: request.password.clone(),
            query: request.secret.clone(),
            ..Credentials::default()
        };
        // No per-address lockout here (the broker hides addresses); the request cap limits guessing.
        if let Err(refusal) = self.access.check(now, None, &presented) {
            return self.reject(link, now, &refusal.reason, reply_to);
        }
        let reply = match wanted {
            Wanted::IceServers => {
                let unix_now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                signaling::ice_servers(&request.id, &ice::for_page(&self.rtc, unix_now))
            }
            Wanted::Offer(sdp) => match self.robot.connect(sdp, request.secret, false) {
                Ok((peer, answer)) => {
                    self.stats.offers_answered.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%peer, "offer through the broker answered");
                    signaling::answer(&request.id, peer.0, &answer)
                }
                Err(e) => return self.reject(link, now, &e.to_string(), reply_to),
            },
            Wanted::Restart { peer, ufrag, sdp } => {
                match self.robot.restart(PeerId(peer), ufrag, sdp) {
                    Ok(answer) => signaling::answer(&request.id, peer, &answer),
                    Err(e) => return self.reject(link, now, &e.to_string(), reply_to),
                }
            }
        };
        if let Err(e) = link.publish(now, &request.reply_to, &reply, false) {
            tracing::warn!("broker: cannot answer on {}: {e}", request.reply_to);
        }
    }

    fn reject(
        &self,
        link: &mut Link,
        now: Instant,
        reason: &str,
        reply_to: Option<(String, String)>,
    ) {
        self.stats.requests_rejected.fetch_add(1, Ordering::Relaxed);
        tracing::info!("broker: request rejected: {reason}");
        if let Some((topic, id)) = reply_to {
            let _ = link.publish(now, &topic, &signaling::error(&id, reason), false);
        }
    }

    /// Publishes presence (retained) when it changed, and now and then anyway.
    fn publish_presence(
        &self,
        link: &mut Link,
        now: Instant,
        last: &mut Option<(serde_json::Value, Instant)>,
    ) {
        let Some(status) = self.robot.status() else {
            return;
        };
        let current = signaling::presence(&self.name, &status);
        let due = match last {
            Some((previous, at)) => *previous != current || now >= *at + PRESENCE_REFRESH,
            None => true,
        };
        if due {
            let _ = link.publish(
                now,
                &self.topics.status,
                current.to_string().as_bytes(),
                true,
            );
            *last = Some((current, now));
        }
    }
}

fn flush(link: &mut Link, stream: &mut Box<dyn Stream>) -> std::io::Result<()> {
    while let Some(bytes) = link.poll_transmit() {
        stream.write_all(&bytes)?;
    }
    stream.flush()
}
