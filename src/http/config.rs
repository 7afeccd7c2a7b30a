//! `[http]` and `[https]`: where the page, signaling and API listen, and
//! what plain HTTP does once HTTPS is on.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of the page, signaling and API.
    pub listen: SocketAddr,
    /// What plain HTTP serves once HTTPS is on.
    pub plain: PlainHttp,
}

/// What the plain-HTTP listener does when an HTTPS listener exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlainHttp {
    /// Everything, as over HTTPS.
    #[default]
    On,
    /// Every request is redirected to the HTTPS listener.
    Redirect,
    /// Watching only: no operator secret is accepted over plain HTTP (it would cross the network in clear).
    ViewOnly,
    /// No plain listener at all.
    Off,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpsConfig {
    /// TLS listener for the page, signaling and API; unset: no HTTPS.
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain and private key (e.g. from certbot). Unset: a
    /// self-signed pair generated once and kept in the state directory.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl HttpConfig {
    /// The startup log's words for what plain HTTP does.
    pub fn describe_plain(&self) -> String {
        let listen = self.listen;
        match self.plain {
            PlainHttp::On => format!("serving http://{listen}"),
            PlainHttp::Redirect => format!("http://{listen} redirects to HTTPS"),
            PlainHttp::ViewOnly => {
                format!("serving http://{listen} for watching only (operators use HTTPS)")
            }
            PlainHttp::Off => "no plain HTTP (HTTPS only)".into(),
        }
    }
    /// Plain HTTP's mode and the HTTPS listener it may need, checked together.
    pub fn validate(&self, https: &HttpsConfig) -> Result<(), String> {
        if https.listen.is_none() && self.plain != PlainHttp::On {
            return Err(format!(
                "http plain = {:?} needs an HTTPS listener ([https] listen or --https)",
                self.plain
            ));
        }
        if https.cert.is_some() != https.key.is_some() {
            return Err("https cert and key go together: set both or neither".into());
        }
        Ok(())
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "0.0.0.0:8080".parse().expect("literal address"),
            plain: PlainHttp::On,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19: the log said `plain: On`.
    #[test]
    fn plain_http_is_described_in_words() {
        let http = |plain| HttpConfig {
            listen: "0.0.0.0:8080".parse().unwrap(),
            plain,
        };
        assert_eq!(
            http(PlainHttp::On).describe_plain(),
            "serving http://0.0.0.0:8080"
        );
        assert_eq!(
            http(PlainHttp::Redirect).describe_plain(),
            "http://0.0.0.0:8080 redirects to HTTPS"
        );
        assert!(http(PlainHttp::ViewOnly)
            .describe_plain()
            .contains("watching only"));
        assert_eq!(
            http(PlainHttp::Off).describe_plain(),
            "no plain HTTP (HTTPS only)"
        );
    }
}
