//! Signaling and presence through an MQTT broker, for robots no browser can
//! reach (CGNAT, phone hotspots): telepi keeps one outbound connection to the
//! broker, takes offers from its topic exactly as `POST /connect` does, and
//! keeps a retained presence message there with a will that marks it offline.
//!
//! `link.rs` is the MQTT session and `signaling.rs` what telepi says on it,
//! both sans-IO; `client.rs` is the thread that owns the socket, `tls.rs`
//! its `mqtts://` layer.

use std::path::PathBuf;

use serde::Deserialize;

pub mod client;
mod error;
pub use error::BrokerError;
pub mod link;
pub mod signaling;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// `mqtt://HOST[:1883]` or `mqtts://HOST[:8883]`; unset: no broker.
    pub url: Option<String>,
    /// This robot's name in topics and the fleet view; default: the hostname.
    pub name: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub topic_prefix: String,
    /// A CA certificate (PEM) to trust for `mqtts://` besides the system's.
    pub ca: Option<PathBuf>,
    /// Seconds between pings when idle; the broker drops us after 1.5× this.
    pub keepalive_s: u16,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            url: None,
            name: None,
            username: None,
            password: None,
            topic_prefix: "telepi".into(),
            ca: None,
            keepalive_s: 15,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

pub fn parse_url(url: &str) -> Result<BrokerUrl, BrokerError> {
    let bad = |why| BrokerError::Url {
        url: url.into(),
        why,
    };
    let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtt://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("mqtts://") {
        (true, rest)
    } else {
        return Err(bad("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains(['/', '@', '?']) {
        return Err(bad(
            "only HOST[:PORT]; credentials go in username and password",
        ));
    }
    let (host, port) = crate::hostport::split(rest, if tls { 8883 } else { 1883 }).map_err(bad)?;
    Ok(BrokerUrl { tls, host, port })
}

impl BrokerConfig {
    /// The robot's name: configured, else the hostname. It is a topic level,
    /// so MQTT's separators and wildcards are refused.
    pub fn robot_name(&self) -> Result<String, BrokerError> {
        let name = match &self.name {
            Some(name) => name.clone(),
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "telepi".into()),
        };
        if name.is_empty() || name.contains(['/', '+', '#', '\0']) {
            return Err(BrokerError::Name(name));
        }
        Ok(name)
    }

    pub fn validate(&self) -> Result<(), String> {
        let Some(url) = &self.url else { return Ok(()) };
        parse_url(url).map_err(|e| e.to_string())?;
        self.robot_name().map_err(|e| e.to_string())?;
        if self.topic_prefix.is_empty() || self.topic_prefix.contains(['+', '#', '\0']) {
            return Err("broker topic_prefix must be non-empty without + #".into());
        }
        if self.keepalive_s < 2 {
            return Err("broker keepalive_s must be at least 2".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports() {
        assert_eq!(
            parse_url("mqtt://broker.local").unwrap(),
            BrokerUrl {
                tls: false,
                host: "broker.local".into(),
                port: 1883
            }
        );
        assert_eq!(parse_url("mqtts://b:8884").unwrap().port, 8884);
        assert!(parse_url("mqtts://b").unwrap().tls);
        assert_eq!(parse_url("mqtt://[::1]:1884").unwrap().host, "::1");
        for (url, why) in [
            ("ws://b", "expected mqtt"),
            ("mqtt://user:pw@b", "credentials"),
            ("mqtt://b:0", "port"),
            ("mqtt://:1883", "no host"),
        ] {
            let e = parse_url(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn names_are_single_topic_levels() {
        let named = |n: &str| BrokerConfig {
            url: Some("mqtt://b".into()),
            name: Some(n.into()),
            ..BrokerConfig::default()
        };
        assert!(named("robot1").validate().is_ok());
        assert!(named("a/b").validate().is_err());
        assert!(named("#").validate().is_err());
        assert!(BrokerConfig::default().robot_name().is_ok(), "the hostname");
    }
}
