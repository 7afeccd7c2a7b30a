//! Why a WHIP request got no HTTP response; each names the URL it was for.

use std::io;

use super::{MAX_BODY, MAX_REDIRECTS};
use crate::rtc::publish::url::{Url, UrlError};
use crate::tls::HandshakeError;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url}: {failure}")]
    At { url: Url, failure: Failure },
    /// A redirect's `Location` that is not a URL (its words name it).
    #[error(transparent)]
    Location(#[from] UrlError),
    #[error("no thread for the HTTP request: {0}")]
    NoThread(io::Error),
}

/// What went wrong with one URL.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("{0} has no address")]
    NoAddress(String),
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("socket: {0}")]
    Socket(io::Error),
    #[error("https:// without TLS set up")]
    NoTls,
    #[error("{0}")]
    Tls(HandshakeError),
    #[error("{0}")]
    Io(io::Error),
    #[error("the server closed the connection early")]
    ClosedEarly,
    #[error("not an HTTP response (not text)")]
    NotText,
    /// An excerpt of what the server said instead.
    #[error("not an HTTP response: {0:?}")]
    NotHttp(String),
    #[error("bad Content-Length {0:?}")]
    BadLength(String),
    #[error("more than 100 response headers")]
    TooManyHeaders,
    #[error("response body over {} KB", MAX_BODY / 1024)]
    TooBig,
    #[error("bad chunk size")]
    BadChunk,
    #[error("body cut short: {0}")]
    CutShort(io::Error),
    #[error("the response body is not text")]
    BodyNotText,
    /// 301..=303 would turn the POST into a GET.
    #[error("redirected with {0} (only 307/308 keep the request)")]
    DropsThePost(u16),
    #[error("redirect ({0}) without Location")]
    NoLocation(u16),
    #[error("more than {MAX_REDIRECTS} redirects (a redirect loop?)")]
    RedirectLoop,
}

impl Failure {
    pub fn at(self, url: &Url) -> HttpError {
        HttpError::At {
            url: url.clone(),
            failure: self,
        }
    }
}
