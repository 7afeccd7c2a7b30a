//! HTTP: the embedded page, signaling (`/connect`, WHEP) and the JSON API,
//! served by tiny_http on a couple of worker threads. Every handler only
//! talks to the network loop through its [`LoopHandle`].

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::media::convert::i420_to_jpeg;
use crate::media::pipeline::VideoShared;
use crate::rtc::server::{EjectError, LoopHandle};
use crate::rtc::PeerId;
use signaling::{Refusal, MAX_BODY_BYTES};

pub mod signaling;

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

pub struct HttpServer {
    server: Arc<Server>,
    workers: Vec<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(
        addr: SocketAddr,
        robot: LoopHandle,
        video: Arc<VideoShared>,
    ) -> std::io::Result<HttpServer> {
        let server = Arc::new(
            Server::http(addr).map_err(|e| std::io::Error::other(format!("http {addr}: {e}")))?,
        );
        let workers = (0..WORKERS)
            .map(|i| {
                let (server, robot, video) = (server.clone(), robot.clone(), video.clone());
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || {
                        for request in server.incoming_requests() {
                            serve(request, &robot, &video);
                        }
                    })
                    .expect("spawning an http worker")
            })
            .collect();
        Ok(HttpServer { server, workers })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.server_addr().to_ip()
    }

    /// Stops accepting and waits for the workers to finish their request.
    pub fn stop(self) {
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

fn serve(mut request: Request, robot: &LoopHandle, video: &VideoShared) {
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
    let method = request.method().clone();
    let reply = match read_body(&mut request) {
        Err(r) => Reply::refusal(r),
        Ok(body) => {
            let incoming = Incoming {
                method: &method,
                path,
                query,
                content_type: content_type.as_deref(),
                authorization: authorization.as_deref(),
                body: &body,
            };
            route(&incoming, robot, video).unwrap_or_else(Reply::refusal)
        }
    };
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

fn route(req: &Incoming, robot: &LoopHandle, video: &VideoShared) -> Result<Reply, Refusal> {
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
            let secret = signaling::presented_secret(query, authorization);
            let (_, answer) = robot
                .connect(sdp, secret)
                .map_err(|e| Refusal::new(400, e.to_string()))?;
            Ok(Reply::json(
                200,
                &serde_json::json!({ "type": "answer", "sdp": answer }),
            ))
        }
        (Method::Post, "/whep") => {
            let sdp = signaling::offer_from_sdp(content_type, body)?;
            let secret = signaling::presented_secret(query, authorization);
            let (peer, answer) = robot
                .connect(sdp, secret)
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
            .map(|s| Reply::json(200, &s))
            .ok_or_else(unavailable),
        (Method::Post, p) if p.starts_with("/api/peers/") && p.ends_with("/eject") => {
            let peer = parse_peer(&p["/api/peers/".len()..p.len() - "/eject".len()])?;
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

fn parse_peer(s: &str) -> Result<PeerId, Refusal> {
    s.parse()
        .map(PeerId)
        .map_err(|_| Refusal::new(400, format!("bad session id {s:?}")))
}
