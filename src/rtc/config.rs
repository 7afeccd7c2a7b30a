//! `[rtc]`: the UDP socket, the peer limits, the ICE servers the page gets
//! and the TURN credentials minted for them.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtcConfig {
    /// The one UDP socket every peer's media and data goes through.
    pub listen: SocketAddr,
    pub max_peers: usize,
    /// A connected peer silent for this long is dropped (it vanished without a
    /// goodbye); it is held through shorter silences (blips).
    pub peer_timeout_ms: u64,
    /// STUN and TURN servers in the browser's RTCIceServer shape. The page gets
    /// them; telepi itself asks the `stun:` ones for its public address.
    pub ice_servers: Vec<IceServer>,
    /// TURN REST API shared secret (coturn's `static-auth-secret`): every
    /// `turn:` URL gets credentials minted per page load instead of static ones.
    pub turn_secret: Option<String>,
    /// How long minted TURN credentials stay valid.
    pub turn_ttl_s: u64,
    /// The robot's address as seen from outside (port forward or 1:1 NAT),
    /// offered to browsers besides the local addresses.
    pub public_addr: Option<SocketAddr>,
    /// Bandwidth estimation per peer, which sets the encoder's bitrate and
    /// paces packets at 1.1 × the estimate. Off: the configured bitrate,
    /// each frame sent at once (lower latency on a LAN, no adapting to a
    /// slow link).
    pub congestion_control: bool,
}

/// One entry of `[rtc] ice_servers`, as the browser's RTCIceServer.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `urls` may be one string or a list, as in the browser.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(url) => vec![url],
        OneOrMany::Many(urls) => urls,
    })
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            listen: "0.0.0.0:50000".parse().expect("literal address"),
            max_peers: 16,
            peer_timeout_ms: 20_000,
            ice_servers: Vec::new(),
            turn_secret: None,
            turn_ttl_s: 12 * 3600,
            public_addr: None,
            congestion_control: true,
        }
    }
}

impl RtcConfig {
    /// The `[rtc]` table of a config text, alone (tests in `rtc/`).
    #[cfg(test)]
    pub fn from_toml(text: &str) -> Result<RtcConfig, String> {
        #[derive(Deserialize)]
        struct File {
            rtc: RtcConfig,
        }
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        Ok(file.rtc)
    }

    pub fn peer_timeout(&self) -> Duration {
        Duration::from_millis(self.peer_timeout_ms)
    }

    /// The peer limit and the TURN lifetime (the ICE servers' URLs are
    /// checked by `ice::check_credentials`, which parses them).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=crate::session::MAX_PEERS).contains(&self.max_peers) {
            return Err(format!(
                "rtc max_peers must be 1..={}",
                crate::session::MAX_PEERS
            ));
        }
        if !(60..=7 * 24 * 3600).contains(&self.turn_ttl_s) {
            return Err("rtc turn_ttl_s must be between 60 and 604800".into());
        }
        Ok(())
    }
}
