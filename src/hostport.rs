//! `HOST[:PORT]` as URLs write it (IPv6 literals in brackets), shared by the
//! ICE server and broker URL parsers.

/// Splits an authority into host and port, `default_port` when none is given.
/// The error says what is wrong, for the caller to put in context.
pub fn split(authority: &str, default_port: u16) -> Result<(String, u16), &'static str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed [ in IPv6 address")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host");
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("port must be 1..=65535")?,
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_ports_and_ipv6() {
        assert_eq!(split("a", 7), Ok(("a".into(), 7)));
        assert_eq!(split("a:8", 7), Ok(("a".into(), 8)));
        assert_eq!(split("[::1]:9", 7), Ok(("::1".into(), 9)));
        assert_eq!(split("[::1]", 7), Ok(("::1".into(), 7)));
        assert_eq!(split("[::1", 7), Err("unclosed [ in IPv6 address"));
        assert_eq!(split(":8", 7), Err("no host"));
        assert_eq!(split("a:0", 7), Err("port must be 1..=65535"));
        assert_eq!(split("a:x", 7), Err("port must be 1..=65535"));
    }
}
