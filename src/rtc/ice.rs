//! ICE servers: the `stun:`/`turn:` URLs of `[rtc] ice_servers` (RFC 7064,
//! RFC 7065), and what the page is handed for them, with TURN credentials
//! minted per page load when a TURN REST secret is configured.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use str0m::Candidate;

use super::config::{IceServer, RtcConfig};
use super::nat::stun::Reflexive;
use super::server::handle::LoopHandle;

/// The user name part after the expiry time in minted TURN credentials.
const TURN_USER: &str = "telepi";

/// The ICE servers as the page's `RTCPeerConnection` gets them: each with
/// its [`turn_credentials`] if it has any.
pub fn for_page(rtc: &RtcConfig, unix_now: u64) -> Vec<IceServer> {
    rtc.ice_servers
        .iter()
        .map(|server| {
            let mut server = server.clone();
            if let Some(c) = turn_credentials(rtc, &server, unix_now) {
                server.username = Some(c.username);
                server.credential = Some(c.password);
            }
            server
        })
        .collect()
}

/// What browsers authenticate to a TURN server with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    pub username: String,
    pub password: String,
    /// From `turn_secret` rather than the entry's own username/credential.
    pub minted: bool,
}

/// The credentials browsers get for `server` if it has a `turn:` URL. With a
/// TURN REST secret they are minted, valid for `turn_ttl_s` from `unix_now`
/// (the scheme coturn's `use-auth-secret` checks: user `<expiry>:<name>`,
/// password base64(HMAC-SHA1(secret, user))); else the static ones.
pub fn turn_credentials(
    rtc: &RtcConfig,
    server: &IceServer,
    unix_now: u64,
) -> Option<TurnCredentials> {
    let has_turn = server
        .urls
        .iter()
        .any(|u| parse_url(u).is_ok_and(|u| u.scheme.is_turn()));
    if !has_turn {
        return None;
    }
    if let Some(secret) = &rtc.turn_secret {
        let username = format!("{}:{TURN_USER}", unix_now + rtc.turn_ttl_s);
        return Some(TurnCredentials {
            password: turn_password(secret, &username),
            username,
            minted: true,
        });
    }
    Some(TurnCredentials {
        username: server.username.clone()?,
        password: server.credential.clone()?,
        minted: false,
    })
}

/// Where browsers may reach the robot: every local address (`hosts`), then the
/// public address learned by STUN and the configured `public_addr` of a port
/// forward or 1:1 NAT. Public addresses are server-reflexive candidates whose
/// base is a local address, so str0m sends from an address the socket has.
pub fn local_candidates(
    hosts: &[SocketAddr],
    learned: Option<Reflexive>,
    public_addr: Option<SocketAddr>,
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = hosts
        .iter()
        .filter_map(|addr| {
            Candidate::host(*addr, "udp")
                .inspect_err(|e| tracing::debug!("skipping candidate {addr}: {e}"))
                .ok()
        })
        .collect();
    // A port forward reaches the robot on its main (first, non-loopback) address.
    let main = hosts
        .iter()
        .find(|a| !a.ip().is_loopback())
        .or(hosts.first());
    let configured = public_addr.zip(main).map(|(mapped, base)| Reflexive {
        mapped,
        base: *base,
    });
    let mut public: Vec<Reflexive> = configured.into_iter().chain(learned).collect();
    public.dedup_by_key(|r| r.mapped);
    for Reflexive { mapped, base } in public {
        if hosts.contains(&mapped) {
            continue; // not behind a NAT: the host candidate says it already
        }
        match Candidate::server_reflexive(mapped, base, "udp") {
            Ok(c) => out.push(c),
            Err(e) => tracing::warn!("public address {mapped} unusable: {e}"),
        }
    }
    out
}

/// A `turn:` URL without credentials makes the browser throw when it builds
/// the peer connection: refuse such a config at start instead.
pub fn check_credentials(rtc: &RtcConfig) -> Result<(), String> {
    for server in &rtc.ice_servers {
        for url in &server.urls {
            let parsed = parse_url(url)?;
            let has_static = server.username.is_some() && server.credential.is_some();
            if parsed.scheme.is_turn() && !has_static && rtc.turn_secret.is_none() {
                return Err(format!(
                    "{url} needs username and credential, or [rtc] turn_secret to mint them"
                ));
            }
        }
    }
    Ok(())
}

/// The `stun:` servers telepi asks for its own public address, resolved to
/// IPv4 socket addresses. Blocking (DNS): call it off the network loop.
pub fn resolve_stun_servers(servers: &[IceServer]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for url in servers.iter().flat_map(|s| &s.urls) {
        let Ok(parsed) = parse_url(url) else { continue };
        if parsed.scheme != Scheme::Stun {
            continue;
        }
        match (parsed.host.as_str(), parsed.port).to_socket_addrs() {
            Ok(addrs) => {
                let v4: Vec<SocketAddr> = addrs.filter(SocketAddr::is_ipv4).collect();
                if v4.is_empty() {
                    tracing::warn!("{url}: no IPv4 address; skipped");
                }
                out.extend(v4.into_iter().take(1));
            }
            Err(e) => tracing::warn!("{url}: cannot resolve {}: {e}", parsed.host),
        }
    }
    out.dedup();
    out
}

/// Resolves the `stun:` servers now and every few minutes on a thread of its
/// own (DNS blocks; the network loop must not), handing each result to the loop.
pub fn spawn_stun_resolver(servers: Vec<IceServer>, robot: LoopHandle) {
    let has_stun = servers
        .iter()
        .flat_map(|s| &s.urls)
        .any(|u| parse_url(u).is_ok_and(|u| u.scheme == Scheme::Stun));
    if !has_stun {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("stun-resolver".into())
        .spawn(move || loop {
            let resolved = resolve_stun_servers(&servers);
            let pause = if resolved.is_empty() {
                Duration::from_secs(30)
            } else {
                Duration::from_secs(300)
            };
            if !robot.set_stun_servers(resolved) {
                return;
            }
            std::thread::sleep(pause);
        });
    if let Err(e) = spawned {
        tracing::warn!("no STUN resolver thread ({e}): browsers get the local addresses only");
    }
}

fn turn_password(secret: &str, user: &str) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    base64(hmac::sign(&key, user.as_bytes()).as_ref())
}

/// Standard base64 with padding (RFC 4648 §4), all coturn and browsers need.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The parts of an ICE server URL telepi needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceUrl {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// `?transport=tcp`: the browser reaches the TURN server over TCP.
    pub tcp: bool,
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
    if !query.is_empty() && !scheme.is_turn() {
        return Err(bad("only turn: URLs take ?transport="));
    }
    let tcp = match query.to_ascii_lowercase().as_str() {
        "" | "transport=udp" => false,
        "transport=tcp" => true,
        _ => return Err(bad("the only query is ?transport=udp or ?transport=tcp")),
    };
    let (host, port) = crate::hostport::split(authority, default_port).map_err(bad)?;
    Ok(IceUrl {
        scheme,
        host,
        port,
        tcp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtc(toml: &str) -> RtcConfig {
        RtcConfig::from_toml(toml).unwrap()
    }

    #[test]
    fn candidates_are_local_then_public() {
        let hosts: Vec<SocketAddr> = vec![
            "192.168.1.20:50000".parse().unwrap(),
            "127.0.0.1:50000".parse().unwrap(),
        ];
        let learned = Reflexive {
            mapped: "203.0.113.7:61000".parse().unwrap(),
            base: hosts[0],
        };
        let forwarded: SocketAddr = "203.0.113.7:50000".parse().unwrap();
        let c = local_candidates(&hosts, Some(learned), Some(forwarded));
        let sdp: Vec<String> = c.iter().map(|c| c.to_sdp_string()).collect();
        assert_eq!(c.len(), 4, "{sdp:?}");
        assert!(sdp[0].contains("192.168.1.20 50000 typ host"), "{sdp:?}");
        assert!(sdp[2].contains("203.0.113.7 50000 typ srflx"), "{sdp:?}");
        assert!(sdp[3].contains("203.0.113.7 61000 typ srflx"), "{sdp:?}");
        assert!(c.iter().skip(2).all(|c| c.local() == hosts[0]));
        let same = Reflexive {
            mapped: hosts[0],
            base: hosts[0],
        };
        assert_eq!(
            local_candidates(&hosts, Some(same), None).len(),
            2,
            "no NAT: no srflx"
        );
        assert!(local_candidates(&[], None, Some(forwarded)).is_empty());
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn minted_turn_credentials_follow_the_rest_api() {
        let c = rtc("[rtc]\nturn_secret = \"north\"\nturn_ttl_s = 600\nice_servers = [{ urls = [\"turn:t:3478\"] }, { urls = \"stun:s\" }]\n");
        let page = for_page(&c, 1_700_000_000);
        assert_eq!(page[0].username.as_deref(), Some("1700000600:telepi"));
        // Independently: `printf %s 1700000600:telepi | openssl dgst -sha1 -hmac north -binary | base64`
        assert_eq!(
            page[0].credential.as_deref(),
            Some("TfZY87Cn/dahqnTgHc/YddW2CN0=")
        );
        assert_eq!(page[1].username, None, "STUN needs no credentials");
        assert_ne!(
            for_page(&c, 1_700_000_001)[0].credential,
            page[0].credential
        );
    }

    #[test]
    fn static_credentials_pass_through_and_missing_ones_are_refused() {
        let c = rtc(
            "[rtc]\nice_servers = [{ urls = \"turn:t\", username = \"u\", credential = \"p\" }]\n",
        );
        assert_eq!(for_page(&c, 0), c.ice_servers);
        assert!(check_credentials(&c).is_ok());
        let bare = rtc("[rtc]\nice_servers = [{ urls = \"turn:t\" }]\n");
        assert!(check_credentials(&bare)
            .unwrap_err()
            .contains("turn_secret"));
    }

    #[test]
    fn only_stun_urls_are_resolved_for_the_robot() {
        let c = rtc("[rtc]\nturn_secret = \"x\"\nice_servers = [{ urls = [\"turn:127.0.0.9\", \"stun:127.0.0.8:3479\"] }]\n");
        assert_eq!(
            resolve_stun_servers(&c.ice_servers),
            vec!["127.0.0.8:3479".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn urls_parse_with_default_ports() {
        let u = parse_url("stun:stun.example.org").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (Scheme::Stun, "stun.example.org", 3478)
        );
        let u = parse_url("turns:turn.example.org?transport=tcp").unwrap();
        assert_eq!((u.scheme, u.port, u.tcp), (Scheme::Turns, 5349, true));
        let u = parse_url("turn:100.64.0.2:3479?transport=udp").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.tcp),
            ("100.64.0.2", 3479, false)
        );
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
        let c = rtc(
            "[rtc]\nice_servers = [{ urls = \"stun:a\" }, { urls = [\"turn:b\", \"turn:c\"], username = \"u\", credential = \"p\" }]\n",
        );
        let servers: &[IceServer] = &c.ice_servers;
        assert_eq!(servers[0].urls, ["stun:a"]);
        assert_eq!(servers[1].urls.len(), 2);
        assert_eq!(servers[1].username.as_deref(), Some("u"));
    }
}
