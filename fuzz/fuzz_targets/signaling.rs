//! Signaling request handling: `/connect` JSON bodies, WHEP SDP bodies,
//! content types, query strings and form bodies, `Authorization` and `Cookie`
//! headers, and ICE server URLs.
//!
//! Input: up to four `\n`-terminated header lines (content type, query
//! string, authorization, cookie), then the body. An empty line is an absent
//! header.
//!
//! Properties: `/connect` only ever accepts a JSON object whose `type` is
//! "offer", and returns its `sdp`; WHEP only accepts `application/sdp` and
//! returns the body unchanged; refusals are 400 or 415 with a one-line reason;
//! the query's `secret` wins over the bearer token; an accepted ICE URL has a
//! host and a non-zero port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telepi::access::{cookie_value, Access, Credentials, Grant};
use telepi::http::signaling::{
    bearer, form_value, offer_from_json, offer_from_sdp, presented_secret, Refusal,
};
use telepi::rtc::ice::parse_url;

fn media_type(content_type: Option<&str>) -> Option<String> {
    content_type.map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

fn check_refusal(r: &Refusal) {
    assert!(r.status == 400 || r.status == 415, "{r:?}");
    assert!(!r.reason.is_empty());
    assert!(!r.reason.contains(char::is_control), "{r:?}");
    assert!(
        !r.reason.contains("  ") && r.reason.trim() == r.reason,
        "{r:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut headers: [Option<String>; 4] = Default::default();
    for header in &mut headers {
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            break;
        };
        let line = String::from_utf8_lossy(&rest[..end]).into_owned();
        *header = (!line.is_empty()).then_some(line);
        rest = &rest[end + 1..];
    }
    let [content_type, query, authorization, cookie] = headers;
    let (content_type, query) = (content_type.as_deref(), query.as_deref());
    let (authorization, cookie) = (authorization.as_deref(), cookie.as_deref());
    let body = rest;

    match offer_from_json(content_type, body) {
        Ok(sdp) => {
            let value: serde_json::Value = serde_json::from_slice(body).expect("accepted JSON");
            assert_eq!(value["type"], "offer", "accepted a non-offer");
            assert_eq!(value["sdp"].as_str(), Some(sdp.as_str()));
            assert!(media_type(content_type).as_deref() != Some("application/sdp"));
        }
        Err(r) => check_refusal(&r),
    }
    match offer_from_sdp(content_type, body) {
        Ok(sdp) => {
            assert_eq!(sdp.as_bytes(), body);
            assert_eq!(media_type(content_type).as_deref(), Some("application/sdp"));
        }
        Err(r) => check_refusal(&r),
    }

    let secret = presented_secret(query, authorization);
    let from_query = form_value(query, "secret");
    if from_query.is_some() {
        assert_eq!(secret, from_query, "?secret= must win");
    } else {
        assert_eq!(secret, bearer(authorization));
    }
    if let Some(token) = bearer(authorization) {
        assert_eq!(token.trim(), token);
    }
    // Login form bodies go through the same decoder.
    let form = std::str::from_utf8(body).ok();
    for name in ["password", "next", "secret"] {
        if form_value(form, name).is_some() {
            assert!(form.unwrap().contains(&format!("{name}=")));
        }
    }
    if let Some(v) = cookie_value(cookie) {
        assert!(cookie.unwrap().contains(&v));
    }

    // The viewer-password gate on what this request presents.
    let access = Access::new(Some("pw".into()), Some("op".into()));
    let presented = Credentials {
        bearer: bearer(authorization),
        cookie: cookie_value(cookie),
        query: form_value(query, "token").or_else(|| form_value(query, "secret")),
    };
    match access.check(std::time::Instant::now(), None, &presented) {
        Ok(Grant::Password) => {
            let right = |p: &Option<String>| matches!(p.as_deref(), Some("pw" | "op"));
            assert!(
                right(&presented.bearer) || right(&presented.query),
                "{presented:?}"
            );
        }
        Ok(Grant::Cookie) => {
            let set = access.session_cookie(false).unwrap();
            let token = cookie_value(Some(&set)).unwrap();
            assert_eq!(presented.cookie.as_deref(), Some(token.as_str()));
        }
        Ok(Grant::Open) => panic!("a guarded robot granted Open"),
        Err(r) => assert!(matches!(r.status, 401 | 403), "{r:?}"),
    }

    for url in [content_type, query, authorization, cookie]
        .into_iter()
        .flatten()
    {
        if let Ok(u) = parse_url(url) {
            assert!(!u.host.is_empty() && u.port != 0, "{u:?}");
        }
    }
    if let Ok(text) = std::str::from_utf8(body) {
        if let Ok(u) = parse_url(text) {
            assert!(!u.host.is_empty() && u.port != 0, "{u:?}");
        }
    }
});
