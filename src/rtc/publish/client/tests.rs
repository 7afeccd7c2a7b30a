//! Against tiny one-shot servers on loopback: what a WHIP endpoint (or
//! something that is not one) may answer.

use std::io::{Read, Write};
use std::net::TcpListener;

use super::*;

/// Serves each of `replies` to one connection in turn, returning what each request was.
fn serve(replies: Vec<Vec<u8>>) -> (Url, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for reply in replies {
            let (mut tcp, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 8192];
            let n = tcp.read(&mut buf).unwrap();
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = tcp.write_all(&reply);
        }
        seen
    });
    let url = Url::parse(&format!("http://127.0.0.1:{port}/whip/endpoint/robot")).unwrap();
    (url, handle)
}

fn post(url: &Url) -> HttpRequest {
    HttpRequest {
        destination: 0,
        id: 1,
        method: Method::Post,
        url: url.clone(),
        token: Some("s3cret".into()),
        body: Some("v=0\r\n".into()),
    }
}

#[test]
fn a_created_answer_comes_back_with_its_location() {
    let reply = b"HTTP/1.1 201 Created\r\nLocation: /whip/resource/robot\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n";
    let (url, server) = serve(vec![reply.to_vec()]);
    let response = perform(None, &post(&url)).unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(response.location.as_deref(), Some("/whip/resource/robot"));
    assert_eq!(response.body, "v=0\r\n");
    let request = &server.join().unwrap()[0];
    assert!(request.starts_with("POST /whip/endpoint/robot HTTP/1.1\r\n"));
    assert!(request.contains("Authorization: Bearer s3cret\r\n"));
    assert!(request.contains("Content-Type: application/sdp\r\n"));
}

#[test]
fn chunked_bodies_and_redirects_are_followed() {
    let redirect =
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /other\r\nContent-Length: 0\r\n\r\n";
    let chunked = b"HTTP/1.1 201 Created\r\nLocation: r/1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nv=0\r\n2\r\n\r\n\r\n0\r\n\r\n";
    let (url, server) = serve(vec![redirect.to_vec(), chunked.to_vec()]);
    let response = perform(None, &post(&url)).unwrap();
    assert_eq!(response.body, "v=0\r\n");
    assert_eq!(response.url.path, "/other");
    let seen = server.join().unwrap();
    assert!(
        seen[1].starts_with("POST /other HTTP/1.1\r\n"),
        "{}",
        seen[1]
    );
}

#[test]
fn a_redirect_loop_is_an_error() {
    let redirect = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /whip/endpoint/robot\r\nContent-Length: 0\r\n\r\n";
    let (url, _server) = serve(vec![redirect.to_vec(); MAX_REDIRECTS + 1]);
    let error = perform(None, &post(&url)).unwrap_err().to_string();
    assert!(error.contains("redirect loop"), "{error}");
}

#[test]
fn huge_bodies_are_refused() {
    let declared = format!(
        "HTTP/1.1 201 Created\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY + 1
    );
    let mut undeclared = b"HTTP/1.1 201 Created\r\n\r\n".to_vec();
    undeclared.extend(vec![b'x'; MAX_BODY + 10]);
    let (url, _server) = serve(vec![declared.into_bytes(), undeclared]);
    for _ in 0..2 {
        let error = perform(None, &post(&url)).unwrap_err().to_string();
        assert!(error.contains("response body over 64 KB"), "{error}");
    }
}

#[test]
fn something_that_is_not_http_is_a_clear_error() {
    let (url, _server) = serve(vec![b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(), Vec::new()]);
    let error = perform(None, &post(&url)).unwrap_err().to_string();
    assert!(error.contains("not an HTTP response"), "{error}");
    let error = perform(None, &post(&url)).unwrap_err().to_string();
    assert!(error.contains("closed the connection early"), "{error}");
}

#[test]
fn nobody_listening_is_a_connect_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = Url::parse(&format!("http://127.0.0.1:{port}/whip")).unwrap();
    let error = perform(None, &post(&url)).unwrap_err().to_string();
    assert!(error.contains("connect"), "{error}");
}

#[test]
fn a_redirect_that_would_drop_the_post_is_an_error() {
    let moved = b"HTTP/1.1 302 Found\r\nLocation: /login\r\nContent-Length: 0\r\n\r\n";
    let (url, _server) = serve(vec![moved.to_vec()]);
    let error = perform(None, &post(&url)).unwrap_err().to_string();
    assert!(error.contains("redirected with 302"), "{error}");
}

#[test]
fn an_https_endpoint_with_an_untrusted_certificate_is_a_clear_error() {
    // A self-signed certificate nobody trusts.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let config = std::sync::Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let tls = rustls::ServerConnection::new(config).unwrap();
        let mut stream = rustls::StreamOwned::new(tls, tcp);
        let _ = stream.read(&mut [0u8; 512]); // the handshake, refused by the client
    });
    let url = Url::parse(&format!("https://localhost:{port}/whip")).unwrap();
    let tls = crate::tls::client_config(None).ok();
    let error = perform(tls.as_ref(), &post(&url)).unwrap_err().to_string();
    assert!(error.contains("certificate"), "{error}");
    server.join().unwrap();
}
