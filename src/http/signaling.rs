//! Turning HTTP signaling requests into SDP offers, with a reason for every refusal.

use serde::Deserialize;

// Re-exported: every handler in http/ refuses with it.
pub use crate::refusal::Refusal;

/// Largest request body we read: a browser offer is ~5 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonOffer {
    #[serde(rename = "type")]
    kind: String,
    sdp: String,
}

/// RTCBot's `POST /connect` body: `{"type":"offer","sdp":"..."}`.
pub fn offer_from_json(content_type: Option<&str>, body: &[u8]) -> Result<String, Refusal> {
    match media_type(content_type).as_deref() {
        None | Some("application/json") | Some("text/plain") => {}
        Some("application/sdp") => {
            return Err(Refusal::new(
                415,
                "send application/sdp offers to /whep; /connect takes JSON",
            ))
        }
        Some(other) => {
            return Err(Refusal::new(
                415,
                format!("unsupported content type {other}, expected application/json"),
            ))
        }
    }
    let offer: JsonOffer = serde_json::from_slice(body)
        .map_err(|e| Refusal::new(400, format!("malformed JSON offer: {e}")))?;
    if offer.kind != "offer" {
        return Err(Refusal::new(
            400,
            format!("expected type \"offer\", got \"{}\"", offer.kind),
        ));
    }
    Ok(offer.sdp)
}

/// The offer's own fields are checked by `offer_from_json`.
#[derive(Deserialize)]
struct JsonRestart {
    peer: u64,
    ufrag: String,
    #[serde(flatten)]
    offer: serde_json::Value,
}

/// `POST /connect/restart` body: `{"peer":N,"ufrag":"...","type":"offer","sdp":"..."}`,
/// an ICE restart of session N whose current offer had that ICE ufrag.
pub fn restart_from_json(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(u64, String, String), Refusal> {
    let restart: JsonRestart = serde_json::from_slice(body)
        .map_err(|e| Refusal::new(400, format!("malformed JSON restart: {e}")))?;
    let offer = serde_json::to_vec(&restart.offer).expect("JSON values serialize");
    let sdp = offer_from_json(content_type, &offer)?;
    Ok((restart.peer, restart.ufrag, sdp))
}

/// WHEP's `POST /whep` body: the SDP itself, as `application/sdp`.
pub fn offer_from_sdp(content_type: Option<&str>, body: &[u8]) -> Result<String, Refusal> {
    if media_type(content_type).as_deref() != Some("application/sdp") {
        return Err(Refusal::new(
            415,
            "WHEP offers must be sent as Content-Type: application/sdp",
        ));
    }
    String::from_utf8(body.to_vec()).map_err(|_| Refusal::new(400, "the SDP offer is not UTF-8"))
}

/// The operator secret a client presents: `?secret=` wins over `Authorization: Bearer`.
pub fn presented_secret(query: Option<&str>, authorization: Option<&str>) -> Option<String> {
    form_value(query, "secret").or_else(|| bearer(authorization))
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(authorization: Option<&str>) -> Option<String> {
    authorization
        .and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
}

/// One field of a query string or `application/x-www-form-urlencoded` body, decoded.
pub fn form_value(form: Option<&str>, name: &str) -> Option<String> {
    form?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

fn media_type(content_type: Option<&str>) -> Option<String> {
    content_type.map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_offers_are_checked() {
        let ok = br#"{"type":"offer","sdp":"v=0"}"#;
        assert_eq!(
            offer_from_json(Some("application/json; charset=utf-8"), ok).unwrap(),
            "v=0"
        );
        assert_eq!(offer_from_json(None, ok).unwrap(), "v=0");
        assert_eq!(
            offer_from_json(Some("application/sdp"), ok)
                .unwrap_err()
                .status,
            415
        );
        assert_eq!(
            offer_from_json(Some("image/png"), ok).unwrap_err().status,
            415
        );
        assert_eq!(offer_from_json(None, b"{").unwrap_err().status, 400);
        assert_eq!(
            offer_from_json(None, br#"{"type":"answer","sdp":"v=0"}"#)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            offer_from_json(None, br#"{"sdp":"v=0"}"#)
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn restarts_name_the_session_and_its_ufrag() {
        let ok = br#"{"peer":3,"ufrag":"ab+/","type":"offer","sdp":"v=0"}"#;
        assert_eq!(
            restart_from_json(None, ok).unwrap(),
            (3, "ab+/".into(), "v=0".into())
        );
        for bad in [
            &br#"{"ufrag":"a","type":"offer","sdp":"v=0"}"#[..],
            br#"{"peer":3,"type":"offer","sdp":"v=0"}"#,
            br#"{"peer":3,"ufrag":"a","type":"answer","sdp":"v=0"}"#,
            br#"{"peer":-1,"ufrag":"a","type":"offer","sdp":"v=0"}"#,
            b"[",
        ] {
            let refusal = restart_from_json(None, bad).unwrap_err();
            assert_eq!(refusal.status, 400, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn whep_offers_need_the_sdp_type() {
        assert_eq!(
            offer_from_sdp(Some("application/sdp"), b"v=0").unwrap(),
            "v=0"
        );
        assert_eq!(
            offer_from_sdp(Some("application/json"), b"v=0")
                .unwrap_err()
                .status,
            415
        );
        assert_eq!(
            offer_from_sdp(Some("application/sdp"), &[0xff, 0xfe])
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn secrets_come_from_query_or_bearer() {
        assert_eq!(
            presented_secret(Some("a=1&secret=p%40ss+w"), None).as_deref(),
            Some("p@ss w")
        );
        assert_eq!(
            presented_secret(None, Some("Bearer tok")).as_deref(),
            Some("tok")
        );
        assert_eq!(presented_secret(Some("x=1"), Some("Basic abc")), None);
        assert_eq!(
            presented_secret(Some("secret=%zz%4"), None).as_deref(),
            Some("%zz%4")
        );
    }

    /// Found by `fuzz/run.sh` (signaling): a NUL-laden content type was
    /// quoted into the reason, raw, and so into the log.
    #[test]
    fn refusals_escape_control_characters_from_the_request() {
        let r = offer_from_json(Some("application/x-www\0\x1b[31m"), b"{}").unwrap_err();
        assert_eq!(r.status, 415);
        assert!(!r.reason.contains(char::is_control), "{r:?}");
        assert!(r.reason.contains("x-www\\u{0}\\u{1b}[31m"), "{r:?}");
        assert_eq!(Refusal::new(400, " a\n\tb  c ").reason, "a b c");
    }
}
