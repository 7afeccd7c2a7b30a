//! Publishing to an SFU over WHIP (RFC 9725): each `[[publish]]` table is one
//! destination, one more consumer of the shared encode. The [`Publishers`]
//! are sans-IO like the hub; the network loop feeds them and makes their HTTP
//! requests through [`client::HttpWorkers`].

pub mod backoff;
pub mod client;
pub mod publisher;
pub mod url;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use str0m::config::DtlsCert;
use str0m::net::Transmit;
use str0m::Candidate;

use crate::media::audio::EncodedAudio;
use crate::media::layer::Layer;
use crate::media::sink::{Feed, MediaSink};
use crate::media::EncodedFrame;
use client::{HttpError, HttpRequest, HttpResponse};
pub use publisher::{Destination, PublishStatus, Publisher, State, Timing};
use url::Url;

/// One `[[publish]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// The WHIP endpoint, `http://` or `https://`.
    pub url: String,
    /// Sent as `Authorization: Bearer TOKEN`.
    #[serde(default)]
    pub token: Option<String>,
    /// Which camera (its `[[video]] name`); the first by default.
    #[serde(default)]
    pub camera: Option<String>,
    /// The microphone too (when there is one).
    #[serde(default = "yes")]
    pub audio: bool,
}

fn yes() -> bool {
    true
}

impl PublishConfig {
    /// Checked against the configured cameras' names (config order).
    pub fn destination(&self, cameras: &[&str]) -> Result<Destination, String> {
        let url = Url::parse(&self.url).map_err(|e| format!("publish url {e}"))?;
        let camera = match &self.camera {
            None => 0,
            Some(name) => cameras.iter().position(|c| c == name).ok_or_else(|| {
                format!("publish camera {name:?}: no such camera (have {cameras:?})")
            })?,
        };
        if self
            .token
            .as_deref()
            .is_some_and(|t| t.contains(['\r', '\n']))
        {
            return Err("publish token: no line breaks allowed".into());
        }
        Ok(Destination {
            url,
            token: self.token.clone().filter(|t| !t.is_empty()),
            camera,
            audio: self.audio,
        })
    }
}

/// Every destination, driven as one.
#[derive(Default)]
pub struct Publishers {
    list: Vec<Publisher>,
}

impl Publishers {
    pub fn new(
        destinations: Vec<Destination>,
        timing: Timing,
        cert: DtlsCert,
        now: Instant,
    ) -> Self {
        let list = (destinations.into_iter().enumerate())
            .map(|(n, d)| Publisher::new(n, d, timing.clone(), cert.clone(), now))
            .collect();
        Publishers { list }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `candidates` is asked for only when an attempt starts.
    pub fn handle_timeout(&mut self, now: Instant, candidates: impl Fn() -> Vec<Candidate>) {
        for p in &mut self.list {
            p.handle_timeout(now, &candidates);
        }
    }

    pub fn handle_response(
        &mut self,
        now: Instant,
        destination: usize,
        id: u64,
        result: Result<HttpResponse, HttpError>,
    ) {
        if let Some(p) = self.list.get_mut(destination) {
            // The publisher keeps the words: its status and log show them.
            p.handle_response(now, id, result.map_err(|e| e.to_string()));
        }
    }

    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        self.list
            .iter_mut()
            .any(|p| p.receive(now, source, destination, data))
    }

    pub fn send_video(&mut self, now: Instant, camera: usize, frame: &EncodedFrame) {
        self.list
            .iter_mut()
            .for_each(|p| p.send_video(now, camera, frame));
    }

    pub fn send_audio(&mut self, now: Instant, packet: &EncodedAudio) {
        self.list.iter_mut().for_each(|p| p.send_audio(now, packet));
    }

    pub fn shutdown(&mut self) {
        self.list.iter_mut().for_each(Publisher::shutdown);
    }

    /// Destinations that need `camera` encoded now.
    pub fn viewers(&self, camera: usize) -> usize {
        let watches = |p: &&Publisher| p.camera() == camera && p.wants_video();
        self.list.iter().filter(watches).count()
    }

    pub fn listeners(&self) -> usize {
        self.list.iter().filter(|p| p.wants_audio()).count()
    }

    /// Whether any destination of `camera` wants a keyframe (every request is taken).
    pub fn take_keyframe_request(&mut self, camera: usize) -> bool {
        let of_camera = self.list.iter_mut().filter(|p| p.camera() == camera);
        of_camera.fold(false, |any, p| p.take_keyframe_request() | any)
    }

    pub fn lowest_estimate(&self) -> Option<u64> {
        self.list.iter().filter_map(Publisher::estimate).min()
    }

    pub fn poll_request(&mut self) -> Option<HttpRequest> {
        self.list.iter_mut().find_map(Publisher::poll_request)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.list.iter_mut().find_map(Publisher::poll_transmit)
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.list.iter().filter_map(Publisher::next_timeout).min()
    }

    pub fn status(&self) -> Vec<PublishStatus> {
        self.list.iter().map(Publisher::status).collect()
    }
}

/// The publishers as a sink of the network loop: each destination takes
/// the main layer of its camera, and the microphone.
impl MediaSink for Publishers {
    fn video(&mut self, now: Instant, feed: Feed, layer: Layer, frame: &EncodedFrame) {
        if let (Feed::Camera(camera), Layer::Main) = (feed, layer) {
            self.send_video(now, camera, frame);
        }
    }

    fn audio(&mut self, now: Instant, packet: &EncodedAudio) {
        self.send_audio(now, packet);
    }

    fn viewers(&self, camera: usize) -> usize {
        Publishers::viewers(self, camera)
    }

    fn listeners(&self) -> usize {
        Publishers::listeners(self)
    }

    fn take_keyframe_request(&mut self, feed: Feed) -> bool {
        match feed {
            Feed::Camera(camera) => Publishers::take_keyframe_request(self, camera),
            Feed::Operator => false,
        }
    }
}

/// The TLS client settings, if any destination is `https://`.
pub fn tls_for(
    destinations: &[Destination],
) -> Result<Option<Arc<rustls::ClientConfig>>, crate::tls::TrustError> {
    if destinations.iter().any(|d| d.url.https) {
        crate::tls::client_config(None).map(Some)
    } else {
        Ok(None)
    }
}
