//! HTTP: the embedded page, signaling (`/connect`, WHEP) and the JSON API,
//! served by tiny_http on a couple of worker threads. Every handler only
//! talks to the network loop through its [`LoopHandle`].

use std::io::{Cursor, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tiny_http::{Header, Method, Request, Response, StatusCode};

use crate::access::{self, Access, Credentials, Grant};
use crate::broker::client::BrokerStats;
use crate::controls::Controls;
use crate::media::pipeline::VideoShared;
use crate::media::record::Recordings;
use crate::metrics::{self, HttpCounts};
use crate::rtc::config::RtcConfig;
use crate::rtc::hub::RestartError;
use crate::rtc::ice;
use crate::rtc::server::{EjectError, LoopHandle};
use crate::rtc::PeerId;
use crate::status::Status;
use signaling::{Refusal, MAX_BODY_BYTES};

pub mod cert;
pub mod config;
mod listen;
mod recordings;
pub mod signaling;
pub mod tls;

pub use listen::{HttpServer, Https};
use listen::{Listener, Site};

/// Shown instead of the page until the viewer password is given.
const LOGIN_PAGE: &str = include_str!("../../web/login.html");
/// Reachable without the viewer password: the login form and its style.
const PUBLIC_PATHS: &[&str] = &["/login", "/style.css"];

/// The page, compiled into the binary so there is nothing to install beside
/// it: (path, content type, text). `/` serves `index.html`; `telepi
/// export-page` writes these same files into a directory.
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("/index.html", HTML, include_str!("../../web/index.html")),
    ("/app.js", JS, include_str!("../../web/app.js")),
    ("/broker.js", JS, include_str!("../../web/broker.js")),
    ("/controls.js", JS, include_str!("../../web/controls.js")),
    ("/hud.js", JS, include_str!("../../web/hud.js")),
    ("/input.js", JS, include_str!("../../web/input.js")),
    ("/media.js", JS, include_str!("../../web/media.js")),
    (
        "/recordings.js",
        JS,
        include_str!("../../web/recordings.js"),
    ),
    ("/signal.js", JS, include_str!("../../web/signal.js")),
    ("/fleet.js", JS, include_str!("../../web/fleet.js")),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
    (
        "/vendor/mqtt.min.js",
        JS,
        include_str!("../../web/vendor/mqtt.min.js"),
    ),
    (
        "/vendor/mqtt.LICENSE.md",
        "text/plain; charset=utf-8",
        include_str!("../../web/vendor/mqtt.LICENSE.md"),
    ),
];
const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Writes the page into `dir` for any static host or a file:// URL (broker mode).
pub fn export_page(dir: &std::path::Path) -> std::io::Result<()> {
    for (path, _, text) in ASSETS {
        let file = dir.join(path.trim_start_matches('/'));
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, text)?;
    }
    Ok(())
}

/// What every request handler shares.
pub struct Context {
    pub robot: LoopHandle,
    /// Every camera by name, in config order: snapshots default to the first.
    pub cameras: Vec<(String, Arc<VideoShared>)>,
    /// For the ICE servers handed to the page.
    pub rtc: RtcConfig,
    pub access: Arc<Access>,
    /// The broker link's counters, for `/api/status`.
    pub broker: Option<Arc<BrokerStats>>,
    /// `[[controls]]` and `[[readings]]`, for `/api/controls`.
    pub controls: Arc<Controls>,
    /// Recording on and off, and the files, for the operator.
    pub recordings: Recordings,
    /// Responses by status code, for `/metrics`.
    pub http_counts: HttpCounts,
}

impl Context {
    /// The camera `?camera=` names, or the first without one.
    fn camera(&self, name: Option<&str>) -> Result<&VideoShared, Refusal> {
        let found = match name {
            None => self.cameras.first(),
            Some(name) => self.cameras.iter().find(|(n, _)| n == name),
        };
        found.map(|(_, video)| &**video).ok_or_else(|| {
            let known: Vec<&str> = self.cameras.iter().map(|(n, _)| n.as_str()).collect();
            let name = name.unwrap_or_default();
            let reason = format!("no camera {name:?} (this robot has: {})", known.join(", "));
            Refusal::new(404, reason)
        })
    }
}

/// How a request reached us.
#[derive(Debug, Clone, Copy)]
pub struct Via {
    pub secure: bool,
    pub client: Option<SocketAddr>,
}

/// A reply before it becomes a tiny_http response.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Body,
    headers: Vec<(&'static str, String)>,
}

enum Body {
    Bytes(Vec<u8>),
    /// The first `u64` bytes of a file, streamed (a recording may be large
    /// and still growing).
    File(std::fs::File, u64),
}

impl Reply {
    fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            body: Body::Bytes(body),
            headers: Vec::new(),
        }
    }

    fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply::new(status, "application/json", value.to_string().into_bytes())
    }

    fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    fn login_page(status: u16, why: &str) -> Reply {
        let page = LOGIN_PAGE.replace("This robot needs its viewer password.", why);
        Reply::new(status, "text/html; charset=utf-8", page.into_bytes())
    }

    fn refusal(r: Refusal) -> Reply {
        tracing::info!(status = r.status, "refused: {}", r.reason);
        Reply::json(r.status, &serde_json::json!({ "error": r.reason }))
    }
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
    let cookie = header("Cookie");
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
                cookie: cookie.as_deref(),
                body: &body,
                via,
            };
            guarded(&incoming, site)
        })
        .unwrap_or_else(Reply::refusal);
    site.context.http_counts.count(reply.status);
    let (body, length, is_file): (Box<dyn Read + Send>, u64, bool) = match reply.body {
        Body::Bytes(bytes) => {
            let length = bytes.len() as u64;
            (Box::new(Cursor::new(bytes)), length, false)
        }
        Body::File(file, length) => (Box::new(file.take(length)), length, true),
    };
    let status = StatusCode(reply.status);
    let mut response = Response::new(status, Vec::new(), body, Some(length as usize), None)
        .with_header(header_line("Content-Type", reply.content_type))
        .with_header(header_line("Cache-Control", "no-store"))
        // Signaling from other origins (e.g. a WHEP player page) is fine: it grants nothing the page doesn't.
        .with_header(header_line("Access-Control-Allow-Origin", "*"))
        .with_header(header_line("Access-Control-Expose-Headers", "Location"));
    for (name, value) in &reply.headers {
        response = response.with_header(header_line(name, value));
    }
    if is_file {
        // With its length, not chunked: a download shows its progress.
        response = response.with_chunked_threshold(usize::MAX);
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
    cookie: Option<&'a str>,
    body: &'a [u8],
    via: Via,
}

/// The viewer password's gate in front of [`route`]: the page shows a login
/// form, everything else answers 401/403/429 with a reason.
fn guarded(req: &Incoming, site: &Site) -> Result<Reply, Refusal> {
    let now = Instant::now();
    let access = &site.context.access;
    let client = req.via.client.map(|c| c.ip());
    if *req.method == Method::Options || PUBLIC_PATHS.contains(&req.path) {
        if (req.method, req.path) == (&Method::Post, "/login") {
            return Ok(login(req, access, now));
        }
        return route(req, site);
    }
    let presented = Credentials {
        bearer: signaling::bearer(req.authorization),
        cookie: access::cookie_value(req.cookie),
        query: signaling::form_value(req.query, "token")
            .or_else(|| signaling::form_value(req.query, "secret")),
    };
    match access.check(now, client, &presented) {
        Ok(grant) => {
            let reply = route(req, site)?;
            Ok(match (grant, access.session_cookie(req.via.secure)) {
                (Grant::Password, Some(cookie)) => reply.with_header("Set-Cookie", cookie),
                _ => reply,
            })
        }
        Err(refusal) if *req.method == Method::Get && is_page(req.path) => {
            tracing::info!(status = refusal.status, "page refused: {}", refusal.reason);
            let why = if refusal.status == 401 {
                "This robot needs its viewer password."
            } else {
                &refusal.reason
            };
            Ok(Reply::login_page(refusal.status, why))
        }
        Err(refusal) => Err(refusal),
    }
}

fn is_page(path: &str) -> bool {
    matches!(path, "/" | "/index.html")
}

/// `POST /login` from the form: the session cookie and back to the page, or the form again.
fn login(req: &Incoming, access: &Access, now: Instant) -> Reply {
    let form = std::str::from_utf8(req.body).ok();
    let presented = Credentials {
        bearer: signaling::form_value(form, "password"),
        ..Credentials::default()
    };
    match access.check(now, req.via.client.map(|c| c.ip()), &presented) {
        Ok(_) => {
            let reply = Reply::new(303, "text/plain", b"logged in".to_vec())
                .with_header("Location", "/".into());
            match access.session_cookie(req.via.secure) {
                Some(cookie) => reply.with_header("Set-Cookie", cookie),
                None => reply,
            }
        }
        Err(refusal) => {
            tracing::info!(status = refusal.status, "login refused: {}", refusal.reason);
            let why = if refusal.status == 401 {
                "Enter the password."
            } else {
                &refusal.reason
            };
            Reply::login_page(refusal.status, why)
        }
    }
}

fn route(req: &Incoming, site: &Site) -> Result<Reply, Refusal> {
    let context = &site.context;
    let Incoming {
        method,
        path,
        query,
        content_type,
        authorization,
        body,
        via,
        ..
    } = *req;
    let robot = &context.robot;
    let client = via.client.map(|c| c.ip());
    // A wrong operator secret counts against the client like a wrong password.
    // Over view-only plain HTTP no secret is taken (it crossed the network in
    // clear) and the peer stays a viewer; a wrong secret counts against the
    // client like a wrong password.
    let view_only = site.view_only(&via);
    let operator_secret = |now: Instant| {
        if view_only {
            return None;
        }
        let secret = signaling::presented_secret(query, authorization);
        context
            .access
            .note_operator_secret(now, client, secret.as_deref());
        secret
    };
    match (method, path) {
        (Method::Options, _) => Ok(Reply::new(204, "text/plain", vec![])),
        (Method::Get, _) if asset(path).is_some() => {
            let (_, content_type, text) = asset(path).expect("checked above");
            Ok(Reply::new(200, content_type, text.as_bytes().to_vec()))
        }
        (Method::Get, "/login") => Ok(Reply::login_page(
            200,
            "This robot needs its viewer password.",
        )),
        (Method::Get, "/api/ice-servers") => {
            let unix_now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Ok(Reply::json(
                200,
                &serde_json::json!({ "iceServers": ice::for_page(&context.rtc, unix_now) }),
            ))
        }
        (Method::Post, "/connect") => {
            let sdp = signaling::offer_from_json(content_type, body)?;
            let secret = operator_secret(Instant::now());
            let (peer, answer) = robot
                .connect(sdp, secret, view_only)
                .map_err(|e| Refusal::new(400, e.to_string()))?;
            Ok(Reply::json(
                200,
                &serde_json::json!({ "type": "answer", "sdp": answer, "peer": peer }),
            ))
        }
        (Method::Post, "/connect/restart") => {
            let (peer, ufrag, sdp) = signaling::restart_from_json(content_type, body)?;
            let answer = robot.restart(PeerId(peer), ufrag, sdp).map_err(|e| {
                let status = match e {
                    RestartError::UnknownSession(_) => 404,
                    RestartError::TooSoon => 429,
                    _ => 400,
                };
                Refusal::new(status, e.to_string())
            })?;
            Ok(Reply::json(
                200,
                &serde_json::json!({ "type": "answer", "sdp": answer, "peer": peer }),
            ))
        }
        (Method::Post, "/whep") => {
            let sdp = signaling::offer_from_sdp(content_type, body)?;
            let secret = operator_secret(Instant::now());
            let (peer, answer) = robot
                .connect(sdp, secret, view_only)
                .map_err(|e| Refusal::new(400, e.to_string()))?;
            Ok(Reply::new(201, "application/sdp", answer.into_bytes())
                .with_header("Location", format!("/whep/{peer}")))
        }
        (Method::Delete, p) if p.starts_with("/whep/") => {
            let peer = parse_peer(&p["/whep/".len()..])?;
            if robot.disconnect(peer) {
                Ok(Reply::json(200, &serde_json::json!({ "closed": peer })))
            } else {
                Err(Refusal::new(404, format!("no session {peer}")))
            }
        }
        (Method::Get, "/api/status") => Ok(Reply::json(200, &status(site)?.to_json())),
        (Method::Get, "/metrics") => {
            let status = status(site)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let started = now - status.robot.uptime_s;
            let system = metrics::system::Snapshot::read(started);
            let text = metrics::render(&status, &context.http_counts, &system);
            Ok(Reply::new(200, metrics::CONTENT_TYPE, text.into_bytes()))
        }
        (Method::Get, "/api/controls") => Ok(Reply::json(
            200,
            &serde_json::to_value(&*context.controls).expect("controls serialize"),
        )),
        (Method::Post, p) if p.starts_with("/api/peers/") && p.ends_with("/eject") => {
            let peer = parse_peer(&p["/api/peers/".len()..p.len() - "/eject".len()])?;
            if view_only {
                return Err(Refusal::new(
                    403,
                    "plain HTTP is view-only here: eject over HTTPS",
                ));
            }
            match robot.eject(peer, operator_secret(Instant::now())) {
                Ok(()) => Ok(Reply::json(200, &serde_json::json!({ "ejected": peer }))),
                Err(EjectError::Forbidden) => Err(Refusal::new(
                    403,
                    "ejecting needs the operator secret (?secret= or Authorization: Bearer)",
                )),
                Err(EjectError::NoSuchPeer) => Err(Refusal::new(404, format!("no peer {peer}"))),
            }
        }
        (_, p) if recordings::handles(p) => {
            let secret = if view_only {
                None
            } else {
                operator_secret(Instant::now())
            };
            let allowed = !view_only && context.access.grants_operator(secret.as_deref());
            recordings::route(&context.recordings, method, p, allowed)
        }
        (Method::Get, "/api/snapshot.jpg") => {
            let jpeg = context
                .camera(signaling::form_value(query, "camera").as_deref())?
                .snapshot_jpeg()
                .map_err(|reason| Refusal::new(503, reason.to_string()))?;
            Ok(Reply::new(200, "image/jpeg", jpeg))
        }
        (
            _,
            "/connect" | "/connect/restart" | "/whep" | "/api/status" | "/api/snapshot.jpg"
            | "/api/ice-servers" | "/api/controls" | "/login" | "/metrics",
        ) => Err(Refusal::new(405, format!("{method} not allowed on {path}"))),
        _ => Err(Refusal::new(404, format!("no such resource: {path}"))),
    }
}

/// `/api/status`'s document: the loop's snapshot with the HTTPS and broker parts.
fn status(site: &Site) -> Result<Status, Refusal> {
    let context = &site.context;
    let robot = context
        .robot
        .status()
        .ok_or_else(|| Refusal::new(503, "the robot is shutting down"))?;
    Ok(Status {
        robot,
        https: site.https_status.clone(),
        broker: context.broker.as_ref().map(|b| b.status()),
    })
}

fn asset(path: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|(p, ..)| *p == path)
}

fn parse_peer(s: &str) -> Result<PeerId, Refusal> {
    s.parse()
        .map(PeerId)
        .map_err(|_| Refusal::new(400, format!("bad session id {s:?}")))
}
