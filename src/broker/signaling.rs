//! What telepi says and hears on the broker, independent of the MQTT session:
//! the topic layout, offers from browsers (checked like `POST /connect`), the
//! answers, presence, and a cap on how fast offers are taken. No I/O, and
//! time is a value.
//!
//! Topics, under `topic_prefix` (default `telepi`):
//! - `<prefix>/robots/<name>/status`: retained presence JSON; the broker
//!   replaces it with `{"name":..,"online":false}` (the will) when the robot
//!   vanishes.
//! - `<prefix>/robots/<name>/signal`: browsers publish requests:
//!   `{"type":"offer","sdp":..,"id":..,"reply_to":"<prefix>/clients/<id>",
//!   "password":..,"secret":..}` (password and secret optional), or
//!   `{"type":"ice-servers","id":..,"reply_to":..,"password":..}`, or an
//!   ICE restart of session N as `POST /connect/restart` takes it:
//!   `{"type":"restart","peer":N,"ufrag":..,"sdp":..,"id":..,"reply_to":..,"password":..}`.
//! - `reply_to`: telepi answers `{"type":"answer","sdp":..,"id":..,"peer":N}`
//!   (to offers and restarts),
//!   `{"type":"ice-servers","id":..,"iceServers":[..]}` or
//!   `{"type":"error","id":..,"error":"reason"}`.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::rtc::status::LoopStatus;

/// Offers a robot takes per second on average, and in a burst.
const OFFERS_PER_SECOND: f64 = 2.0;
const OFFER_BURST: f64 = 6.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub status: String,
    pub signal: String,
    /// Answers may only go below this, never to another robot's topics.
    pub clients: String,
}

impl Topics {
    pub fn new(prefix: &str, name: &str) -> Topics {
        Topics {
            status: format!("{prefix}/robots/{name}/status"),
            signal: format!("{prefix}/robots/{name}/signal"),
            clients: format!("{prefix}/clients/"),
        }
    }
}

/// A browser's request, as published on the signal topic.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(rename = "type")]
    pub kind: String,
    /// For offers.
    #[serde(default)]
    pub sdp: Option<String>,
    pub id: String,
    pub reply_to: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    /// For restarts: the session, and the ICE ufrag of its current offer.
    #[serde(default)]
    pub peer: Option<u64>,
    #[serde(default)]
    pub ufrag: Option<String>,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Wanted {
    Offer(String),
    IceServers,
    Restart {
        peer: u64,
        ufrag: String,
        sdp: String,
    },
}

/// Why an offer was not taken; `reply_to` is None when there is nowhere safe to say so.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: String,
    pub reply_to: Option<(String, String)>,
}

/// Reads a request off the signal topic. Answers never go outside the
/// clients' part of the tree, so a crafted `reply_to` can't make the robot
/// publish over another robot's status.
pub fn parse_request(topics: &Topics, payload: &[u8]) -> Result<(Request, Wanted), Rejection> {
    let offer: Request = serde_json::from_slice(payload).map_err(|e| Rejection {
        reason: format!("malformed request: {e}"),
        reply_to: None,
    })?;
    let valid_reply_to = offer.reply_to.starts_with(&topics.clients)
        && offer.reply_to.len() > topics.clients.len()
        && !offer.reply_to.contains(['+', '#', '\0']);
    if !valid_reply_to {
        return Err(Rejection {
            reason: format!("reply_to must be a topic below {}", topics.clients),
            reply_to: None,
        });
    }
    let wanted = match (offer.kind.as_str(), &offer.sdp) {
        ("offer", Some(sdp)) => Wanted::Offer(sdp.clone()),
        ("ice-servers", None) => Wanted::IceServers,
        ("offer", None) => Err(offer.reject("an offer needs sdp"))?,
        ("restart", Some(sdp)) => match (offer.peer, &offer.ufrag) {
            (Some(peer), Some(ufrag)) => Wanted::Restart {
                peer,
                ufrag: ufrag.clone(),
                sdp: sdp.clone(),
            },
            _ => Err(offer.reject("a restart needs peer and ufrag"))?,
        },
        ("restart", None) => Err(offer.reject("a restart needs sdp"))?,
        (kind, _) => Err(offer.reject(&format!(
            "unknown request type \"{kind}\" (offer, restart or ice-servers)"
        )))?,
    };
    Ok((offer, wanted))
}

impl Request {
    fn reject(&self, reason: &str) -> Rejection {
        Rejection {
            reason: reason.into(),
            reply_to: Some((self.reply_to.clone(), self.id.clone())),
        }
    }
}

pub fn ice_servers(id: &str, servers: &[crate::rtc::config::IceServer]) -> Vec<u8> {
    json!({ "type": "ice-servers", "id": id, "iceServers": servers })
        .to_string()
        .into_bytes()
}

pub fn answer(id: &str, peer: u64, sdp: &str) -> Vec<u8> {
    json!({ "type": "answer", "id": id, "peer": peer, "sdp": sdp })
        .to_string()
        .into_bytes()
}

pub fn error(id: &str, reason: &str) -> Vec<u8> {
    json!({ "type": "error", "id": id, "error": reason })
        .to_string()
        .into_bytes()
}

/// The retained presence message, from the loop's status.
pub fn presence(name: &str, status: &LoopStatus) -> serde_json::Value {
    let video = status.video.as_ref();
    json!({
        "name": name,
        "version": env!("CARGO_PKG_VERSION"),
        "online": true,
        "operator": status.operator,
        "viewers": status.peers.len(),
        "video": {
            "width": video.map(|v| v.width),
            "height": video.map(|v| v.height),
            "fps": video.map(|v| v.fps),
            "source": video.map(|v| &v.source),
        },
    })
}

/// What the broker publishes for us when we vanish.
pub fn offline(name: &str) -> Vec<u8> {
    json!({ "name": name, "online": false })
        .to_string()
        .into_bytes()
}

/// A token bucket: a flood of offers is refused (and counted) instead of
/// building one peer after another.
pub struct OfferLimit {
    tokens: f64,
    at: Instant,
}

impl OfferLimit {
    pub fn new(now: Instant) -> OfferLimit {
        OfferLimit {
            tokens: OFFER_BURST,
            at: now,
        }
    }

    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * OFFERS_PER_SECOND).min(OFFER_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Reconnection back-off: 1 s, doubling, at most 30 s; a refusal of our
/// credentials waits longest (retrying fast can't fix a password).
pub fn backoff(attempt: u32, refused: bool) -> Duration {
    if refused {
        return Duration::from_secs(60);
    }
    Duration::from_secs(1u64 << attempt.min(5)).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics::new("telepi", "robot1")
    }

    #[test]
    fn topics_follow_the_documented_layout() {
        let t = topics();
        assert_eq!(t.status, "telepi/robots/robot1/status");
        assert_eq!(t.signal, "telepi/robots/robot1/signal");
        assert_eq!(t.clients, "telepi/clients/");
    }

    #[test]
    fn offers_are_checked_and_answers_stay_below_clients() {
        let ok = br#"{"type":"offer","sdp":"v=0","id":"r1","reply_to":"telepi/clients/abc","password":"pw"}"#;
        let (offer, wanted) = parse_request(&topics(), ok).unwrap();
        assert_eq!(wanted, Wanted::Offer("v=0".into()));
        assert_eq!(offer.password.as_deref(), Some("pw"));
        let ice = br#"{"type":"ice-servers","id":"r0","reply_to":"telepi/clients/abc"}"#;
        assert_eq!(parse_request(&topics(), ice).unwrap().1, Wanted::IceServers);
        for (payload, why) in [
            (&br#"{"type":"offer","sdp":"v=0","id":"r1","reply_to":"telepi/robots/other/status"}"#[..], "reply_to"),
            (br#"{"type":"offer","sdp":"v=0","id":"r1","reply_to":"telepi/clients/#"}"#, "reply_to"),
            (br#"{"type":"offer","sdp":"v=0","id":"r1","reply_to":"telepi/clients/"}"#, "reply_to"),
            (br#"{"type":"offer","sdp":"v=0"}"#, "malformed"),
            (br#"{"type":"offer","sdp":"v=0","id":"r1","reply_to":"telepi/clients/a","x":1}"#, "malformed"),
            (b"\xff\xfe", "malformed"),
        ] {
            let e = parse_request(&topics(), payload).unwrap_err();
            assert!(e.reason.contains(why), "{e:?}");
            assert_eq!(e.reply_to, None);
        }
        let answer_type =
            br#"{"type":"answer","sdp":"v=0","id":"r2","reply_to":"telepi/clients/a"}"#;
        let e = parse_request(&topics(), answer_type).unwrap_err();
        assert!(e.reason.contains("unknown request type"), "{e:?}");
        assert_eq!(e.reply_to, Some(("telepi/clients/a".into(), "r2".into())));
        let restart = br#"{"type":"restart","peer":4,"ufrag":"u1","sdp":"v=0","id":"r4","reply_to":"telepi/clients/a"}"#;
        assert_eq!(
            parse_request(&topics(), restart).unwrap().1,
            Wanted::Restart {
                peer: 4,
                ufrag: "u1".into(),
                sdp: "v=0".into()
            }
        );
        let no_ufrag =
            br#"{"type":"restart","peer":4,"sdp":"v=0","id":"r5","reply_to":"telepi/clients/a"}"#;
        let e = parse_request(&topics(), no_ufrag).unwrap_err();
        assert!(e.reason.contains("needs peer and ufrag"), "{e:?}");
        assert_eq!(e.reply_to, Some(("telepi/clients/a".into(), "r5".into())));
        let no_sdp = br#"{"type":"offer","id":"r3","reply_to":"telepi/clients/a"}"#;
        assert!(parse_request(&topics(), no_sdp)
            .unwrap_err()
            .reason
            .contains("needs sdp"));
    }

    #[test]
    fn presence_summarises_the_status() {
        let peer = |id| crate::rtc::status::Peer::fixture(id, "connected", None);
        let status = LoopStatus {
            operator: Some(crate::peer::PeerId(3)),
            peers: vec![peer(3), peer(4)],
            video: Some(crate::rtc::status::Camera {
                width: 640,
                height: 480,
                fps: 30,
                source: "pattern".into(),
                ..Default::default()
            }),
            ..LoopStatus::default()
        };
        let p = presence("robot1", &status);
        assert_eq!(p["online"], true);
        assert_eq!(p["viewers"], 2);
        assert_eq!(p["operator"], 3);
        assert_eq!(p["video"]["width"], 640);
        let gone: serde_json::Value = serde_json::from_slice(&offline("robot1")).unwrap();
        assert_eq!(gone, json!({"name": "robot1", "online": false}));
    }

    #[test]
    fn a_flood_of_offers_is_capped() {
        let t0 = Instant::now();
        let mut limit = OfferLimit::new(t0);
        let taken = (0..20).filter(|_| limit.take(t0)).count();
        assert_eq!(taken, OFFER_BURST as usize);
        assert!(
            limit.take(t0 + Duration::from_millis(500)),
            "refills at 2/s"
        );
        assert!(!limit.take(t0 + Duration::from_millis(500)));
    }

    #[test]
    fn backoff_doubles_to_a_ceiling() {
        let secs: Vec<u64> = (0..8).map(|a| backoff(a, false).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(0, true).as_secs(), 60);
    }
}
