//! The listeners: plain HTTP (unless `[http] plain = "off"`) and HTTPS through
//! the TLS bridges of [`super::tls`], each a tiny_http server with its own
//! workers, all serving the same [`Site`].

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Request, Server};

use super::cert::Identity;
use super::config::PlainHttp;
use super::signaling::Refusal;
use super::tls::{Bridges, TlsListener};
use super::{serve, Context, Reply, Via};
use crate::status::HttpsStatus;

const WORKERS: usize = 2;

/// The HTTPS side: where it listens and with which certificate.
pub struct Https {
    pub listen: SocketAddr,
    pub identity: Identity,
}

/// What every request is served with.
pub(super) struct Site {
    pub(super) context: Arc<Context>,
    plain: PlainHttp,
    /// The `https` part of `/api/status`: null without HTTPS.
    pub(super) https_status: Option<HttpsStatus>,
    https_port: Option<u16>,
}

/// Which listener a worker serves.
pub(super) enum Listener {
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
        context: Arc<Context>,
    ) -> std::io::Result<HttpServer> {
        let site = Arc::new(Site {
            context,
            plain: mode,
            https_status: https.as_ref().map(|h| HttpsStatus {
                listen: h.listen.to_string(),
                fingerprint_sha256: h.identity.fingerprint.clone(),
                self_signed: h.identity.self_signed,
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
                pools.push(Pool::start(
                    internal,
                    &site,
                    Listener::Bridged(bridges.clone()),
                ));
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
    pub(super) fn via(&self, request: &Request) -> Result<Via, Refusal> {
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
    pub(super) fn redirect(
        &self,
        via: &Via,
        host: Option<&str>,
        target: &str,
    ) -> Option<Result<Reply, Refusal>> {
        if via.secure || self.plain != PlainHttp::Redirect {
            return None;
        }
        let port = self.https_port.expect("validated: redirect needs HTTPS");
        Some(
            redirect_url(host, port, target)
                .map(|location| {
                    Reply::new(
                        308,
                        "text/plain",
                        format!("moved to {location}\n").into_bytes(),
                    )
                    .with_header("Location", location)
                })
                .ok_or_else(|| Refusal::new(400, "a redirect to HTTPS needs a valid Host header")),
        )
    }

    /// Over plain HTTP in view-only mode, nobody operates: secrets crossing
    /// the network in clear are ignored.
    pub(super) fn view_only(&self, via: &Via) -> bool {
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
