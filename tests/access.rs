//! The viewer password against the real binary: every endpoint guarded, the
//! login form and its cookie, token links, Bearer for tools, the lockout after
//! repeated failures, and no secret in the log.

mod common;

use std::time::Duration;

use common::{header, request, request_full, Peer, Server};

const CONFIG: &str = "tests/fixtures/viewer-password.toml";
const PASSWORD: &str = "look but don't touch";
const PASSWORD_QUERY: &str = "look%20but%20don%27t%20touch";
const OPERATOR: &str = "hunter2";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn every_endpoint_needs_the_password_and_says_how_to_give_it() {
    let server = Server::start(&["--config", CONFIG]);
    for (method, path) in [
        ("GET", "/api/status"),
        ("GET", "/api/snapshot.jpg"),
        ("GET", "/api/ice-servers"),
        ("GET", "/metrics"),
        ("GET", "/app.js"),
        ("POST", "/connect"),
        ("POST", "/whep"),
        ("POST", "/api/peers/1/eject"),
        ("POST", "/api/record/start"),
        ("GET", "/api/recordings"),
        ("GET", "/api/recordings/telepi-20261202-054327.mp4"),
    ] {
        let (code, body) = request(server.http, method, path, &[], b"").unwrap();
        assert_eq!(code, 401, "{method} {path}: {body}");
        assert!(
            body.contains("Authorization: Bearer"),
            "{method} {path}: {body}"
        );
    }
    let (code, page) = request(server.http, "GET", "/", &[], b"").unwrap();
    assert_eq!(code, 401);
    assert!(
        page.contains("action=\"/login\""),
        "the page is the login form: {page}"
    );
    assert!(!page.contains("app.js"));
    let (code, _) = request(server.http, "GET", "/style.css", &[], b"").unwrap();
    assert_eq!(code, 200, "the login form's style is public");

    for token in [PASSWORD, OPERATOR] {
        let auth = bearer(token);
        let (code, body) = request(
            server.http,
            "GET",
            "/api/status",
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap();
        assert_eq!(code, 200, "{body}");
    }
    let wrong = bearer("guess");
    let (code, body) = request(
        server.http,
        "GET",
        "/api/status",
        &[("Authorization", &wrong)],
        b"",
    )
    .unwrap();
    assert_eq!(
        (code, body.as_str()),
        (403, r#"{"error":"wrong password"}"#)
    );
}

#[test]
fn the_login_form_and_token_links_set_a_cookie_the_page_then_uses() {
    let server = Server::start(&["--config", CONFIG]);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (code, _, page) =
        request_full(server.http, "POST", "/login", &form, b"password=nope").unwrap();
    assert_eq!(code, 403);
    assert!(page.contains("wrong password"), "{page}");

    let body = format!("password={PASSWORD_QUERY}");
    let (code, headers, _) =
        request_full(server.http, "POST", "/login", &form, body.as_bytes()).unwrap();
    assert_eq!(code, 303);
    assert_eq!(header(&headers, "location"), Some("/"));
    let set_cookie = header(&headers, "set-cookie")
        .expect("a session cookie")
        .to_string();
    assert!(set_cookie.starts_with("telepi_session="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP: a Secure cookie would never come back"
    );
    assert!(
        !set_cookie.contains("look"),
        "the cookie is not the password"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    let (code, page) = request(server.http, "GET", "/", &[("Cookie", &cookie)], b"").unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("app.js"), "the real page: {page}");
    let (code, ice) = request(
        server.http,
        "GET",
        "/api/ice-servers",
        &[("Cookie", &cookie)],
        b"",
    )
    .unwrap();
    assert_eq!((code, ice.as_str()), (200, r#"{"iceServers":[]}"#));

    let link = format!("/?token={PASSWORD_QUERY}");
    let (code, headers, _) = request_full(server.http, "GET", &link, &[], b"").unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        header(&headers, "set-cookie").map(|c| c.split(';').next().unwrap()),
        Some(cookie.as_str()),
        "a token link logs the page in like the form"
    );
}

#[test]
fn peers_connect_with_the_bearer_token_or_the_cookie_and_watch() {
    let server = Server::start(&["--config", CONFIG]);
    let auth = bearer(PASSWORD);
    let mut tool = Peer::connect_sending(&server, &[("Authorization", &auth)]);
    assert!(
        tool.run_until(Duration::from_secs(15), |p| p.frames_decoded >= 10),
        "a Bearer client watches: {} frames",
        tool.frames_decoded
    );
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let body = format!("password={PASSWORD_QUERY}");
    let (_, headers, _) =
        request_full(server.http, "POST", "/login", &form, body.as_bytes()).unwrap();
    let cookie = header(&headers, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let mut page = Peer::connect_sending(&server, &[("Cookie", &cookie)]);
    assert!(page.run_until(Duration::from_secs(15), |p| p.frames_decoded >= 10));
}

#[test]
fn repeated_failures_lock_the_address_out_and_secrets_stay_out_of_the_log() {
    let server = Server::start_logged(&["--config", CONFIG]);
    let wrong = bearer("guess");
    for _ in 0..5 {
        let (code, _) = request(
            server.http,
            "GET",
            "/api/status",
            &[("Authorization", &wrong)],
            b"",
        )
        .unwrap();
        assert_eq!(code, 403);
    }
    let right = bearer(PASSWORD);
    let (code, body) = request(
        server.http,
        "GET",
        "/api/status",
        &[("Authorization", &right)],
        b"",
    )
    .unwrap();
    assert_eq!(code, 429, "locked out even with the right password: {body}");
    assert!(body.contains("try again in"), "{body}");
    let (code, page) = request(server.http, "GET", "/", &[], b"").unwrap();
    assert_eq!(code, 429);
    assert!(page.contains("too many failed attempts"), "{page}");
    assert!(server
        .log
        .wait_for(Duration::from_secs(2), &["locked out"])
        .is_some());
    let log = server.log.text();
    for secret in [PASSWORD, OPERATOR, "guess"] {
        assert!(
            !log.contains(secret),
            "{secret:?} appears in the log:\n{log}"
        );
    }
}

#[test]
fn wrong_operator_secrets_count_towards_the_lockout_without_a_viewer_password() {
    let server = Server::start(&["--config", "tests/fixtures/secret.toml"]);
    let (code, _) = request(server.http, "GET", "/api/status", &[], b"").unwrap();
    assert_eq!(code, 200, "no viewer password: open to watch");
    for _ in 0..5 {
        let (code, _) = request(
            server.http,
            "POST",
            "/api/peers/1/eject?secret=guess",
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(code, 403);
    }
    let (code, body) = request(
        server.http,
        "POST",
        "/api/peers/1/eject?secret=hunter2",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(code, 429, "{body}");
}
