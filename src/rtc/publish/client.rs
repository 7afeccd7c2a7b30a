//! The WHIP requests, made off the network loop: each on its own short-lived
//! thread with connect/read timeouts, a response size limit, a bounded number
//! of redirects, plain `http://` or `https://` through the rustls the binary
//! already has. Results come back on a channel the loop waits on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use smol::channel::{Receiver, Sender};

use super::url::Url;

mod error;
pub use error::{Failure, HttpError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// An SDP answer is a few KB; anything near this is not one.
pub const MAX_BODY: usize = 64 * 1024;
const MAX_REDIRECTS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Delete,
}

/// One request a publisher wants made.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// Which `[[publish]]` destination asked, and its request number.
    pub destination: usize,
    pub id: u64,
    pub method: Method,
    pub url: Url,
    pub token: Option<String>,
    /// The SDP offer of a POST.
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// Where the response finally came from (after redirects): `Location`
    /// resolves against it.
    pub url: Url,
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// A finished request: the response, or why there is none.
#[derive(Debug)]
pub struct Done {
    pub destination: usize,
    pub id: u64,
    pub result: Result<HttpResponse, HttpError>,
}

/// Runs requests on threads and hands their results back to the loop.
pub struct HttpWorkers {
    tls: Option<Arc<ClientConfig>>,
    done_tx: Sender<Done>,
    done_rx: Receiver<Done>,
    /// Requests started and not finished.
    in_flight: Arc<AtomicUsize>,
}

impl HttpWorkers {
    /// `tls`: for `https://` destinations (None when none is configured).
    pub fn new(tls: Option<Arc<ClientConfig>>) -> HttpWorkers {
        let (done_tx, done_rx) = smol::channel::unbounded();
        HttpWorkers {
            tls,
            done_tx,
            done_rx,
            in_flight: Arc::default(),
        }
    }

    pub fn start(&self, request: HttpRequest) {
        let (destination, id) = (request.destination, request.id);
        let (tls, done) = (self.tls.clone(), self.done_tx.clone());
        let in_flight = self.in_flight.clone();
        in_flight.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("whip-http".into())
            .spawn(move || {
                let result = perform(tls.as_ref(), &request);
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let _ = done.try_send(Done {
                    destination: request.destination,
                    id: request.id,
                    result,
                });
            });
        if let Err(e) = spawned {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let result = Err(HttpError::NoThread(e));
            let _ = self.done_tx.try_send(Done {
                destination,
                id,
                result,
            });
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn results(&self) -> &Receiver<Done> {
        &self.done_rx
    }
}

/// Makes the request, following redirects (RFC 9725 allows a 307 from the
/// endpoint) up to a small limit.
pub fn perform(
    tls: Option<&Arc<ClientConfig>>,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let mut url = request.url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let mut response = exchange(tls, request, &url)?;
        if matches!(response.status, 301..=303) {
            // These would turn the POST into a GET: not a WHIP endpoint's answer.
            return Err(Failure::DropsThePost(response.status).at(&url));
        }
        if !matches!(response.status, 307 | 308) {
            response.url = url;
            return Ok(response);
        }
        let target =
            (response.location).ok_or_else(|| Failure::NoLocation(response.status).at(&url))?;
        url = url.join(&target)?;
    }
    Err(Failure::RedirectLoop.at(&request.url))
}

fn exchange(
    tls: Option<&Arc<ClientConfig>>,
    request: &HttpRequest,
    url: &Url,
) -> Result<HttpResponse, HttpError> {
    let host = || url.host.clone();
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|source| {
            Failure::Resolve {
                host: host(),
                source,
            }
            .at(url)
        })?
        .next()
        .ok_or_else(|| Failure::NoAddress(host()).at(url))?;
    let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| Failure::Connect(e).at(url))?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| Failure::Socket(e).at(url))?;
    let head = request_head(request, url);
    if url.https {
        let config = tls.ok_or_else(|| Failure::NoTls.at(url))?;
        let stream = crate::tls::handshake(config, &url.host, tcp, IO_TIMEOUT)
            .map_err(|e| Failure::Tls(e).at(url))?;
        talk(stream, &head, request.body.as_deref(), url)
    } else {
        talk(tcp, &head, request.body.as_deref(), url)
    }
}

fn request_head(request: &HttpRequest, url: &Url) -> String {
    let method = match request.method {
        Method::Post => "POST",
        Method::Delete => "DELETE",
    };
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: telepi/{}\r\nConnection: close\r\n",
        url.path,
        url.authority(),
        env!("CARGO_PKG_VERSION")
    );
    if let Some(token) = &request.token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    match &request.body {
        // Exactly `application/sdp`: some servers refuse parameters after it.
        Some(body) => head.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n",
            body.len()
        )),
        None => head.push_str("Content-Length: 0\r\n"),
    }
    head.push_str("\r\n");
    head
}

fn talk<S: Read + Write>(
    mut stream: S,
    head: &str,
    body: Option<&str>,
    url: &Url,
) -> Result<HttpResponse, HttpError> {
    let io = |e| Failure::Io(e).at(url);
    stream.write_all(head.as_bytes()).map_err(io)?;
    if let Some(body) = body {
        stream.write_all(body.as_bytes()).map_err(io)?;
    }
    stream.flush().map_err(io)?;
    read_response(BufReader::new(stream.take(MAX_BODY as u64 * 2)), url)
}

/// Status line, headers and a body (Content-Length, chunked, or up to EOF),
/// each within limits.
fn read_response(mut reader: impl BufRead, url: &Url) -> Result<HttpResponse, HttpError> {
    let mut line = String::new();
    let read_line = |reader: &mut dyn BufRead, line: &mut String| {
        line.clear();
        match reader.read_line(line) {
            Ok(0) => Err(Failure::ClosedEarly.at(url)),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(Failure::NotText.at(url)),
            Err(e) => Err(Failure::Io(e).at(url)),
        }
    };
    read_line(&mut reader, &mut line)?;
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| Failure::NotHttp(excerpt(&line)).at(url))?;
    let (mut length, mut chunked, mut location) = (None, false, None);
    for _ in 0..100 {
        read_line(&mut reader, &mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            let body = read_body(&mut reader, length, chunked, url)?;
            return Ok(HttpResponse {
                url: url.clone(),
                status,
                location,
                body,
            });
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| Failure::BadLength(excerpt(value)).at(url))?,
                )
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "location" => location = Some(value.to_string()),
            _ => {}
        }
    }
    Err(Failure::TooManyHeaders.at(url))
}

fn read_body(
    reader: &mut impl BufRead,
    length: Option<usize>,
    chunked: bool,
    url: &Url,
) -> Result<String, HttpError> {
    let too_big = || Failure::TooBig.at(url);
    let io = |e| Failure::Io(e).at(url);
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).map_err(io)?;
            let size = size.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size, 16).map_err(|_| Failure::BadChunk.at(url))?;
            if size == 0 {
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(too_big());
            }
            let start = body.len();
            body.resize(start + size + 2, 0);
            reader.read_exact(&mut body[start..]).map_err(io)?;
            body.truncate(start + size);
        }
    } else if let Some(length) = length {
        if length > MAX_BODY {
            return Err(too_big());
        }
        body.resize(length, 0);
        reader
            .read_exact(&mut body)
            .map_err(|e| Failure::CutShort(e).at(url))?;
    } else {
        reader
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body)
            .map_err(io)?;
        if body.len() > MAX_BODY {
            return Err(too_big());
        }
    }
    String::from_utf8(body).map_err(|_| Failure::BodyNotText.at(url))
}

/// A short, printable piece of what the server said, for error messages.
pub fn excerpt(text: &str) -> String {
    let text: String = text.chars().filter(|c| !c.is_control()).take(120).collect();
    text.trim().to_string()
}

#[cfg(test)]
mod tests;
