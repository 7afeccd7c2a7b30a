//! ICE servers: the `stun:`/`turn:` URLs of `[rtc] ice_servers` (RFC 7064,
//! RFC 7065), and what the page is handed for them, with TURN credentials
//! minted per page load when a TURN REST secret is configured.

/// The parts of an ICE server URL telepi needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceUrl {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Stun,
    Stuns,
    Turn,
    Turns,
}

impl Scheme {
    pub fn is_turn(self) -> bool {
        matches!(self, Scheme::Turn | Scheme::Turns)
    }
}

/// Parses `stun:host[:port]`, `turn:host[:port][?transport=udp|tcp]` and the
/// `s` variants; IPv6 literals in brackets.
pub fn parse_url(url: &str) -> Result<IceUrl, String> {
    let bad = |why: &str| format!("bad ICE server URL {url:?}: {why}");
    let (scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| bad("expected stun:, stuns:, turn: or turns:"))?;
    let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "stun" => (Scheme::Stun, 3478),
        "stuns" => (Scheme::Stuns, 5349),
        "turn" => (Scheme::Turn, 3478),
        "turns" => (Scheme::Turns, 5349),
        _ => return Err(bad("expected stun:, stuns:, turn: or turns:")),
    };
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    if authority.starts_with("//") || authority.contains('@') || authority.contains('/') {
        return Err(bad("write scheme:host:port, without // or user@"));
    }
    if !query.is_empty() {
        if !scheme.is_turn() {
            return Err(bad("only turn: URLs take ?transport="));
        }
        match query.to_ascii_lowercase().as_str() {
            "transport=udp" | "transport=tcp" => {}
            _ => return Err(bad("the only query is ?transport=udp or ?transport=tcp")),
        }
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed [ in IPv6 address"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("port must be 1..=65535"))?,
    };
    Ok(IceUrl {
        scheme,
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IceServer;

    #[test]
    fn urls_parse_with_default_ports() {
        let u = parse_url("stun:stun.example.org").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (Scheme::Stun, "stun.example.org", 3478)
        );
        let u = parse_url("turns:turn.example.org?transport=tcp").unwrap();
        assert_eq!((u.scheme, u.port), (Scheme::Turns, 5349));
        let u = parse_url("turn:100.64.0.2:3479?transport=udp").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("100.64.0.2", 3479));
        let u = parse_url("stun:[2001:db8::1]:19302").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("2001:db8::1", 19302));
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("http://x", "expected stun"),
            ("stun://x:3478", "without //"),
            ("stun:x:0", "port"),
            ("stun:x:99999", "port"),
            ("stun:x?transport=udp", "only turn"),
            ("turn:x?transport=sctp", "only query"),
            ("turn:", "no host"),
            ("stun:[::1", "unclosed"),
        ] {
            let e = parse_url(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn config_takes_one_url_or_a_list() {
        let c = crate::config::parse(
            "[rtc]\nice_servers = [{ urls = \"stun:a\" }, { urls = [\"turn:b\", \"turn:c\"], username = \"u\", credential = \"p\" }]\n",
        )
        .unwrap();
        let servers: &[IceServer] = &c.rtc.ice_servers;
        assert_eq!(servers[0].urls, ["stun:a"]);
        assert_eq!(servers[1].urls.len(), 2);
        assert_eq!(servers[1].username.as_deref(), Some("u"));
    }
}
