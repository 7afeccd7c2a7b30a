//! HTTP: the embedded page, signaling (`/connect`, WHEP) and the JSON API,
//! served by tiny_http on a couple of worker threads per listener: plain
//! HTTP, and HTTPS through the bridge in [`tls`]. Every handler only talks
//! to the network loop through its [`LoopHandle`].

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::config::PlainHttp;
use crate::media::convert::i420_to_jpeg;
use crate::media::pipeline::VideoShared;
use crate::rtc::server::{EjectError, LoopHandle};
use crate::rtc::PeerId;
use cert::Identity;
use signaling::{Refusal, MAX_BODY_BYTES};
use tls::{Bridges, TlsListener};

pub mod cert;
pub mod signaling;
pub mod tls;

/// The page, compiled into the binary so there is nothing to install beside it.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    ),
    (
        "/index.html",
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
];

const WORKERS: usize = 2;

/// A reply before it becomes a tiny_http response.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    location: Option<String>,
}

impl Reply {
    fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
            location: None,
        }
    }

    fn refusal(r: Refusal) -> Reply {
        tracing::info!(status = r.status, "refused: {}", r.reason);
        Reply::json(r.status, &serde_json::json!({ "error": r.reason }))
    }
}

/// How a request reached us, for the handlers' decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via {
    /// Over HTTPS.
    pub secure: bool,
    /// The real client (behind the TLS bridge too), if known.
    pub client: Option<SocketAddr>,
}

/// The HTTPS side: where it listens and with which certificate.
pub struct Https {
    pub listen: SocketAddr,
    pub identity: Identity,
}

/// What every request is served with.
struct Site {
    robot: LoopHandle,
    video: Arc<VideoShared>,
    plain: PlainHttp,
    /// The `https` part of `/api/status`: null without HTTPS.
    https_status: serde_json::Value,
    https_port: Option<u16>,
}

/// Which listener a worker serves.
enum Listener {
    Plain,
    /// The internal server behind the TLS bridges.
    Bridged(Arc<Bridges>),
}

/// One tiny_http server and its workers.
struct Pool {
    server: Arc<Server>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn start(server: Server, site: &Arc<Site>, listener: Listener) -> Pool {
        let (server, listener) = (Arc::new(server), Arc::new(listener));
        let workers = (0..WORKERS)
            .map(|i| {
                let (server, site, listener) = (server.clone(), site.clone(), listener.clone());
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || {
                        for request in server.incoming_requests() {
                            serve(request, &site, &listener);
                        }
                    })
                    .expect("spawning an http worker")
            })
            .collect();
        Pool { server, workers }
    }

    fn stop(self) {
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

pub struct HttpServer {
    pools: Vec<Pool>,
    tls: Option<TlsListener>,
}

impl HttpServer {
    /// Listens on `plain` (unless `mode` is off) and, given `https`, over TLS too.
    pub fn start(
        plain: SocketAddr,
        mode: PlainHttp,
        https: Option<Https>,
        robot: LoopHandle,
        video: Arc<VideoShared>,
    ) -> std::io::Result<HttpServer> {
        let site = Arc::new(Site {
            robot,
            video,
            plain: mode,
            https_status: https.as_ref().map_or(serde_json::Value::Null, |h| {
                serde_json::json!({
                    "listen": h.listen.to_string(),
                    "fingerprint_sha256": h.identity.fingerprint,
                    "self_signed": h.identity.self_signed,
                })
            }),
            https_port: https.as_ref().map(|h| h.listen.port()),
        });
        let bind = |addr: SocketAddr| {
            Server::http(addr).map_err(|e| std::io::Error::other(format!("http {addr}: {e}")))
        };
        let mut pools = Vec::new();
        if mode != PlainHttp::Off {
            pools.push(Pool::start(bind(plain)?, &site, Listener::Plain));
        }
        let tls = match https {
            None => None,
            Some(https) => {
                let listener = TcpListener::bind(https.listen)
                    .map_err(|e| std::io::Error::other(format!("https {}: {e}", https.listen)))?;
                let internal = bind("127.0.0.1:0".parse().expect("literal address"))?;
                let backend = internal.server_addr().to_ip().expect("a TCP listener");
                let bridges = Arc::new(Bridges::default());
                pools.push(Pool::start(internal, &site, Listener::Bridged(bridges.clone())));
                let config = https.identity.config;
                Some(TlsListener::start(listener, config, backend, bridges)?)
            }
        };
        Ok(HttpServer { pools, tls })
    }

    /// Stops accepting and waits for the workers to finish their request.
    pub fn stop(self) {
        if let Some(tls) = self.tls {
            tls.stop();
        }
        for pool in self.pools {
            pool.stop();
        }
    }
}

impl Listener {
    fn via(&self, request: &Request) -> Result<Via, Refusal> {
        let source = request.remote_addr().copied();
        match self {
            Listener::Plain => Ok(Via {
                secure: false,
                client: source,
            }),
            Listener::Bridged(bridges) => source
                .and_then(|s| bridges.client(s))
                .map(|client| Via {
                    secure: true,
                    client: Some(client),
                })
                .ok_or_else(|| {
                    Refusal::new(
                        403,
                        "this port is telepi's internal TLS bridge; connect to the HTTPS address",
                    )
                }),
        }
    }
}

impl Site {
    /// With `[http] plain = "redirect"`, where a plain request goes instead.
    fn redirect(&self, via: &Via, host: Option<&str>, target: &str) -> Option<Result<Reply, Refusal>> {
        if via.secure || self.plain != PlainHttp::Redirect {
            return None;
        }
        let port = self.https_port.expect("validated: redirect needs HTTPS");
        Some(
            redirect_url(host, port, target)
                .map(|location| Reply {
                    status: 308,
                    content_type: "text/plain",
                    body: format!("moved to {location}\n").into_bytes(),
                    location: Some(location),
                })
                .ok_or_else(|| Refusal::new(400, "a redirect to HTTPS needs a valid Host header")),
        )
    }

    /// Over plain HTTP in view-only mode, nobody operates: secrets crossing
    /// the network in clear are ignored.
    fn view_only(&self, via: &Via) -> bool {
        !via.secure && self.plain == PlainHttp::ViewOnly
    }
}

/// `https://HOST:PORT/path?query` for a request that came with `Host: HOST[:port]`.
fn redirect_url(host: Option<&str>, https_port: u16, target: &str) -> Option<String> {
    let host = host?.trim();
    let name = match host.strip_prefix('[') {
        Some(v6) => &host[..v6.find(']')? + 2],
        None => host.split(':').next()?,
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._[]:%".contains(c);
    if name.is_empty() || !name.chars().all(allowed) || !target.starts_with('/') {
        return None;
    }
    Some(match https_port {
        443 => format!("https://{name}{target}"),
        port => format!("https://{name}:{port}{target}"),
    })
}

fn serve(mut request: Request, site: &Site, listener: &Listener) {
    let url = request.url().to_string();
    let (path, query) = url
        .split_once('?')
        .map_or((url.as_str(), None), |(p, q)| (p, Some(q)));
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
    };
    let content_type = header("Content-Type");
    let authorization = header("Authorization");
    let host = header("Host");
    let method = request.method().clone();
    let reply = listener
        .via(&request)
        .and_then(|via| {
            if let Some(redirect) = site.redirect(&via, host.as_deref(), &url) {
                return redirect;
            }
            let body = read_body(&mut request)?;
            let incoming = Incoming {
                method: &method,
                path,
                query,
                content_type: content_type.as_deref(),
                authorization: authorization.as_deref(),
                body: &body,
            };
            route(&incoming, site, &via)
        })
        .unwrap_or_else(Reply::refusal);
    let mut response = Response::from_data(reply.body)
        .with_status_code(reply.status)
        .with_header(header_line("Content-Type", reply.content_type))
        .with_header(header_line("Cache-Control", "no-store"))
        // Signaling from other origins (e.g. a WHEP player page) is fine: it grants nothing the page doesn't.
        .with_header(header_line("Access-Control-Allow-Origin", "*"))
        .with_header(header_line("Access-Control-Expose-Headers", "Location"));
    if let Some(location) = reply.location {
        response = response.with_header(header_line("Location", &location));
    }
    if method == Method::Options {
        response = response
            .with_header(header_line(
                "Access-Control-Allow-Methods",
                "GET, POST, DELETE, OPTIONS",
            ))
            .with_header(header_line(
                "Access-Control-Allow-Headers",
                "Content-Type, Authorization",
            ));
    }
    if let Err(e) = request.respond(response) {
        tracing::debug!("http respond: {e}");
    }
}

fn header_line(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("static header names and ASCII values")
}

fn read_body(request: &mut Request) -> Result<Vec<u8>, Refusal> {
    let too_large = || Refusal::new(413, format!("request body over {MAX_BODY_BYTES} bytes"));
    if request.body_length().is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| Refusal::new(400, format!("reading the body: {e}")))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(body)
}

/// The parts of a request the routes look at.
struct Incoming<'a> {
    method: &'a Method,
    path: &'a str,
    query: Option<&'a str>,
    content_type: Option<&'a str>,
    authorization: Option<&'a str>,
    body: &'a [u8],
}

fn route(req: &Incoming, site: &Site, via: &Via) -> Result<Reply, Refusal> {
    let (robot, video) = (&site.robot, &site.video);
    let Incoming {
        method,
        path,
        query,
        content_type,
        authorization,
        body,
    } = *req;
    let unavailable = || Refusal::new(503, "the robot is shutting down");
    match (method, path) {
        (Method::Options, _) => Ok(Reply {
            status: 204,
            content_type: "text/plain",
            body: vec![],
            location: None,
        }),
        (Method::Get, _) if ASSETS.iter().any(|(p, ..)| *p == path) => {
            let (_, content_type, text) = ASSETS
                .iter()
                .find(|(p, ..)| *p == path)
                .expect("checked above");
            Ok(Reply {
                status: 200,
                content_type,
                body: text.as_bytes().to_vec(),
                location: None,
            })
        }
        (Method::Post, "/connect") => {
            let sdp = signaling::offer_from_json(content_type, body)?;
            let (secret, view_only) = operator_secret(site, via, query, authorization);
            let (_, answer) = robot
                .connect(sdp, secret, view_only)
                .map_err(|e| Refusal::new(400, e.to_string()))?;
            Ok(Reply::json(
                200,
                &serde_json::json!({ "type": "answer", "sdp": answer }),
            ))
        }
        (Method::Post, "/whep") => {
            let sdp = signaling::offer_from_sdp(content_type, body)?;
            let (secret, view_only) = operator_secret(site, via, query, authorization);
            let (peer, answer) = robot
                .connect(sdp, secret, view_only)
                .map_err(|e| Refusal::new(400, e.to_string()))?;
            Ok(Reply {
                status: 201,
                content_type: "application/sdp",
                body: answer.into_bytes(),
                location: Some(format!("/whep/{peer}")),
            })
        }
        (Method::Delete, p) if p.starts_with("/whep/") => {
            let peer = parse_peer(&p["/whep/".len()..])?;
            if robot.disconnect(peer) {
                Ok(Reply::json(200, &serde_json::json!({ "closed": peer })))
            } else {
                Err(Refusal::new(404, format!("no session {peer}")))
            }
        }
        (Method::Get, "/api/status") => robot
            .status()
            .map(|mut s| {
                s["https"] = site.https_status.clone();
                Reply::json(200, &s)
            })
            .ok_or_else(unavailable),
        (Method::Post, p) if p.starts_with("/api/peers/") && p.ends_with("/eject") => {
            let peer = parse_peer(&p["/api/peers/".len()..p.len() - "/eject".len()])?;
            if site.view_only(via) {
                return Err(Refusal::new(
                    403,
                    "plain HTTP is view-only here: eject over HTTPS",
                ));
            }
            let secret = signaling::presented_secret(query, authorization);
            match robot.eject(peer, secret) {
                Ok(()) => Ok(Reply::json(200, &serde_json::json!({ "ejected": peer }))),
                Err(EjectError::Forbidden) => Err(Refusal::new(
                    403,
                    "ejecting needs the operator secret (?secret= or Authorization: Bearer)",
                )),
                Err(EjectError::NoSuchPeer) => Err(Refusal::new(404, format!("no peer {peer}"))),
            }
        }
        (Method::Get, "/api/snapshot.jpg") => {
            let frame = video.latest_raw().ok_or_else(|| {
                Refusal::new(
                    503,
                    "no raw frame yet: snapshots come from the stream while someone watches, and not from H.264 passthrough sources",
                )
            })?;
            let jpeg = i420_to_jpeg(&frame, 85).map_err(|e| Refusal::new(500, e.to_string()))?;
            Ok(Reply {
                status: 200,
                content_type: "image/jpeg",
                body: jpeg,
                location: None,
            })
        }
        (_, "/connect" | "/whep" | "/api/status" | "/api/snapshot.jpg") => {
            Err(Refusal::new(405, format!("{method} not allowed on {path}")))
        }
        _ => Err(Refusal::new(404, format!("no such resource: {path}"))),
    }
}

/// The operator secret a signaling request presents, and whether its peer
/// must stay a viewer (then there is no secret to pass on).
fn operator_secret(
    site: &Site,
    via: &Via,
    query: Option<&str>,
    authorization: Option<&str>,
) -> (Option<String>, bool) {
    if site.view_only(via) {
        (None, true)
    } else {
        (signaling::presented_secret(query, authorization), false)
    }
}

fn parse_peer(s: &str) -> Result<PeerId, Refusal> {
    s.parse()
        .map(PeerId)
        .map_err(|_| Refusal::new(400, format!("bad session id {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::redirect_url;

    #[test]
    fn redirects_keep_the_host_name_path_and_query() {
        let url = |host, port| redirect_url(host, port, "/whep?secret=x");
        assert_eq!(
            url(Some("robot.local:8080"), 8443).as_deref(),
            Some("https://robot.local:8443/whep?secret=x")
        );
        assert_eq!(
            url(Some("192.168.1.5"), 443).as_deref(),
            Some("https://192.168.1.5/whep?secret=x")
        );
        assert_eq!(
            url(Some("[fe80::1%25eth0]:8080"), 8443).as_deref(),
            Some("https://[fe80::1%25eth0]:8443/whep?secret=x")
        );
        assert_eq!(url(None, 8443), None);
        assert_eq!(url(Some(""), 8443), None);
        assert_eq!(url(Some("evil.com/x?"), 8443), None);
        assert_eq!(url(Some("a@b"), 8443), None);
        assert_eq!(url(Some("[::1"), 8443), None);
        assert_eq!(redirect_url(Some("robot"), 8443, "*"), None);
    }
}
