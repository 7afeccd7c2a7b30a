//! The little of URLs WHIP needs: `http(s)://host[:port]/path?query`, and a
//! `Location` (absolute, absolute-path or relative) resolved against the
//! endpoint's URL (RFC 9725 §4.2: it may be relative).

use std::fmt;

/// Why a WHIP URL (or a `Location` against it) is not one we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?}: not an http:// or https:// URL")]
    NotHttp(String),
    #[error("{0:?}: credentials in the URL are not supported (use token)")]
    Credentials(String),
    #[error("{0:?}: unclosed [ in the host")]
    UnclosedBracket(String),
    #[error("{url:?}: bad port {port:?}")]
    BadPort { url: String, port: String },
    #[error("{0:?}: no usable host")]
    NoHost(String),
    #[error("{0:?}: spaces or control characters in the path")]
    BadPath(String),
    #[error("an empty Location")]
    EmptyLocation,
    #[error("Location {0:?}: not a URL")]
    BadLocation(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// Without brackets for IPv6 literals.
    pub host: String,
    pub port: u16,
    /// Starts with `/`; includes the query, if any.
    pub path: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, UrlError> {
        let (https, rest) = if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(UrlError::NotHttp(text.into()));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) if rest[at..].starts_with('/') => (&rest[..at], rest[at..].to_string()),
            Some(at) => (&rest[..at], format!("/{}", &rest[at..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err(UrlError::Credentials(text.into()));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::UnclosedBracket(text.into()))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            None => default_port,
            Some(p) => p.parse().map_err(|_| UrlError::BadPort {
                url: text.into(),
                port: p.into(),
            })?,
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(UrlError::NoHost(text.into()));
        }
        if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::BadPath(text.into()));
        }
        Ok(Url {
            https,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `reference` (a `Location` or redirect target) resolved against this URL.
    pub fn join(&self, reference: &str) -> Result<Url, UrlError> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(UrlError::EmptyLocation);
        }
        if reference.starts_with("http://") || reference.starts_with("https://") {
            return Url::parse(reference);
        }
        if let Some(rest) = reference.strip_prefix("//") {
            let scheme = if self.https { "https" } else { "http" };
            return Url::parse(&format!("{scheme}://{rest}"));
        }
        let path = if reference.starts_with('/') {
            reference.to_string()
        } else {
            // Relative to the endpoint's "directory": drop its last segment and query.
            let without_query = self.path.split('?').next().unwrap_or("/");
            let dir = &without_query[..=without_query.rfind('/').unwrap_or(0)];
            format!("{dir}{reference}")
        };
        if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::BadLocation(reference.into()));
        }
        Ok(Url {
            path,
            ..self.clone()
        })
    }

    /// `host:port` as the `Host` header wants it.
    pub fn authority(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_paths() {
        let u = Url::parse("http://10.0.0.1:7080/whip/endpoint/abc?x=1").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port),
            (false, "10.0.0.1", 7080)
        );
        assert_eq!(u.path, "/whip/endpoint/abc?x=1");
        let u = Url::parse("https://sfu.example.org").unwrap();
        assert_eq!((u.port, u.path.as_str()), (443, "/"));
        let u = Url::parse("http://[fd00::1]:8080/w").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("fd00::1", 8080));
        assert_eq!(u.to_string(), "http://[fd00::1]:8080/w");
        for bad in [
            "ftp://x/",
            "http://",
            "http://h:99999/",
            "http://u:p@h/",
            "http://h/a b",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn locations_resolve_against_the_endpoint() {
        let base = Url::parse("http://h:7080/whip/endpoint/abc?t=1").unwrap();
        let join = |r| base.join(r).unwrap().to_string();
        assert_eq!(
            join("/whip/resource/abc"),
            "http://h:7080/whip/resource/abc"
        );
        assert_eq!(join("resource/1"), "http://h:7080/whip/endpoint/resource/1");
        assert_eq!(join("https://other/r"), "https://other/r");
        assert_eq!(join("//cdn:81/r"), "http://cdn:81/r");
        assert!(base.join("").is_err());
        assert!(base.join("/a\r\nb").is_err());
    }
}
