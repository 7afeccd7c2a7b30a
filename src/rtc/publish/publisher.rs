//! One WHIP destination, sans-IO: it takes time, HTTP results, datagrams and
//! encoded media, and emits HTTP requests to make and datagrams to send, like
//! the `str0m::Rtc` it owns. No sockets, no clock, no threads.
//!
//! Life of a publish: build an `Rtc` with sendonly H.264 (+ PCMU audio),
//! POST its offer, accept the `201`'s answer, keep its `Location`, connect,
//! publish. Whatever goes wrong ends the attempt (DELETE if a resource
//! exists) and schedules the next one with back-off; `401/403` are a wrong
//! token, retried slowly. Each new problem is logged once.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::config::DtlsCert;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::Transmit;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use super::backoff::Backoff;
use super::client::{excerpt, HttpRequest, HttpResponse, Method};
use super::url::Url;
use crate::media::audio::EncodedAudio;
use crate::media::EncodedFrame;
use crate::rtc::hub::{pick_h264, write, VideoTrack};
use crate::rtc::net::udp_input;

/// One `[[publish]]` destination, checked and resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub url: Url,
    pub token: Option<String>,
    /// Index into the configured cameras.
    pub camera: usize,
    pub audio: bool,
}

#[derive(Debug, Clone)]
pub struct Timing {
    /// Connected, but nothing (RTCP, STUN) heard from the SFU for this long:
    /// it is gone. ICE alone takes 15 s+ to notice a killed SFU.
    pub silence: Duration,
    /// From the `201` to ICE+DTLS connected.
    pub connect: Duration,
    /// From the POST to its answer: the HTTP client's timeouts bound each
    /// read, not a server that drips its answer.
    pub answer: Duration,
    /// Between attempts after a `401/403` (a wrong token needs a person).
    pub refused: Duration,
    pub min_bitrate: u32,
    pub max_bitrate: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            silence: Duration::from_secs(3),
            connect: Duration::from_secs(10),
            answer: Duration::from_secs(30),
            refused: Duration::from_secs(60),
            min_bitrate: 150_000,
            max_bitrate: 2_500_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Until the next attempt (back-off, or a refused token).
    Waiting,
    /// The offer is POSTed; waiting for the answer.
    Offering,
    /// Answered; ICE and DTLS under way.
    Connecting,
    Publishing,
    Stopped,
}

pub struct Publisher {
    index: usize,
    dest: Destination,
    timing: Timing,
    cert: DtlsCert,
    state: State,
    rtc: Option<Rtc>,
    pending_offer: Option<SdpPendingOffer>,
    /// The POST in flight.
    offer_request: Option<u64>,
    /// The resource the last `201` created, deleted when the publish ends.
    resource: Option<Url>,
    /// The video and audio m-lines we offered.
    mids: Option<(Mid, Option<Mid>)>,
    video: Option<VideoTrack>,
    audio: Option<(Mid, Pt)>,
    /// Why the current attempt must end, found while draining str0m.
    lost: Option<String>,
    backoff: Backoff,
    next_attempt: Instant,
    attempt_started: Instant,
    last_heard: Instant,
    rtc_timeout: Instant,
    next_request: u64,
    requests: VecDeque<HttpRequest>,
    transmits: VecDeque<Transmit>,
    keyframe_wanted: bool,
    estimate: Option<u64>,
    /// The problem last logged, so a repeat is not logged again.
    logged: Option<String>,
    last_error: Option<String>,
    counters: Counters,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
struct Counters {
    publishes: u64,
    bytes_sent: u64,
    frames_sent: u64,
    bitrate_bps: u64,
    #[serde(skip)]
    window_bytes: u64,
    #[serde(skip)]
    window_start: Option<Instant>,
}

/// `/api/status` for one destination.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishStatus {
    /// The `[[publish]]` table's index.
    pub destination: usize,
    /// Scheme, host and port only: paths can carry stream keys.
    pub server: String,
    pub camera: usize,
    pub audio: bool,
    pub state: State,
    pub last_error: Option<String>,
    pub publishes: u64,
    pub bytes_sent: u64,
    pub frames_sent: u64,
    pub bitrate_bps: u64,
}

impl Publisher {
    /// `index` tags this destination's HTTP requests. The first attempt is at `now`.
    pub fn new(
        index: usize,
        dest: Destination,
        timing: Timing,
        cert: DtlsCert,
        now: Instant,
    ) -> Self {
        Publisher {
            index,
            dest,
            timing,
            cert,
            state: State::Waiting,
            rtc: None,
            pending_offer: None,
            offer_request: None,
            resource: None,
            mids: None,
            video: None,
            audio: None,
            lost: None,
            backoff: Backoff::default(),
            next_attempt: now,
            attempt_started: now,
            last_heard: now,
            rtc_timeout: now,
            next_request: 1,
            requests: VecDeque::new(),
            transmits: VecDeque::new(),
            keyframe_wanted: false,
            estimate: None,
            logged: None,
            last_error: None,
            counters: Counters::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn camera(&self) -> usize {
        self.dest.camera
    }

    /// Whether the camera's encoder must run for this destination.
    pub fn wants_video(&self) -> bool {
        matches!(self.state, State::Connecting | State::Publishing)
    }

    pub fn wants_audio(&self) -> bool {
        self.wants_video() && self.dest.audio
    }

    /// The SFU link's bandwidth estimate while publishing.
    pub fn estimate(&self) -> Option<u64> {
        self.estimate.filter(|_| self.state == State::Publishing)
    }

    /// Drives timers: starts an attempt when it is due (with `candidates`,
    /// asked for only then), notices silence and connect timeouts.
    pub fn handle_timeout(&mut self, now: Instant, candidates: impl FnOnce() -> Vec<Candidate>) {
        match self.state {
            State::Waiting if now >= self.next_attempt => self.start(now, candidates()),
            State::Offering if now >= self.attempt_started + self.timing.answer => {
                let why = format!("no answer to the POST within {:?}", self.timing.answer);
                self.fail(now, why, false);
            }
            State::Connecting if now >= self.attempt_started + self.timing.connect => {
                let why = format!(
                    "ICE/DTLS did not connect within {:?} of the answer",
                    self.timing.connect
                );
                self.fail(now, why, false);
            }
            State::Publishing if now >= self.last_heard + self.timing.silence => {
                let why = format!(
                    "nothing heard from the SFU for {:?}: re-publishing",
                    self.timing.silence
                );
                self.fail(now, why, false);
            }
            _ => {}
        }
        if let Some(rtc) = self.rtc.as_mut().filter(|_| now >= self.rtc_timeout) {
            if let Err(e) = rtc.handle_input(Input::Timeout(now)) {
                self.lost = Some(format!("WebRTC: {e}"));
            }
            self.drain(now);
        }
        self.update_bitrate(now);
    }

    /// The answer to our POST, or any other request's outcome.
    pub fn handle_response(&mut self, now: Instant, id: u64, result: Result<HttpResponse, String>) {
        if self.offer_request != Some(id) {
            // A DELETE's outcome: 404 means it was gone already, which is fine.
            match result {
                Ok(r) if r.status < 300 || r.status == 404 => {}
                Ok(r) => tracing::debug!(url = %self.dest.url, "DELETE answered {}", r.status),
                Err(e) => tracing::debug!(url = %self.dest.url, "DELETE: {e}"),
            }
            return;
        }
        self.offer_request = None;
        let response = match result {
            Ok(response) => response,
            Err(e) => return self.fail(now, e, false),
        };
        match response.status {
            201 => {}
            401 | 403 => {
                let why = format!(
                    "the WHIP endpoint refused the token (HTTP {}): check [[publish]] token",
                    response.status
                );
                return self.fail(now, why, true);
            }
            status => {
                let why = format!(
                    "POST {} answered HTTP {status} (not 201 Created): {:?}",
                    response.url,
                    excerpt(&response.body)
                );
                return self.fail(now, why, false);
            }
        }
        // Without a resource we could never end the publish cleanly.
        let resource = match response.location.as_deref().map(|l| response.url.join(l)) {
            Some(Ok(resource)) => resource,
            Some(Err(e)) => return self.fail(now, format!("201 with a bad Location: {e}"), false),
            None => {
                let why = "201 without a Location header: not a WHIP endpoint?".to_string();
                return self.fail(now, why, false);
            }
        };
        self.resource = Some(resource);
        if let Err(why) = self.accept_answer(now, &response.body) {
            return self.fail(now, why, false);
        }
        self.state = State::Connecting;
        self.attempt_started = now;
    }

    /// Feeds a datagram to this destination's `Rtc`; false if not ours.
    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        let Some(rtc) = &mut self.rtc else {
            return false;
        };
        let Some(input) = udp_input(now, source, destination, data) else {
            return false;
        };
        if !rtc.accepts(&input) {
            return false;
        }
        self.last_heard = now;
        if let Err(e) = rtc.handle_input(input) {
            self.lost = Some(format!("WebRTC: {e}"));
        }
        self.drain(now);
        true
    }

    /// One access unit of `camera`, published if it is ours and we are publishing.
    pub fn send_video(&mut self, now: Instant, camera: usize, frame: &EncodedFrame) {
        if camera != self.dest.camera || self.state != State::Publishing {
            return;
        }
        let (Some(rtc), Some(track)) = (&mut self.rtc, &mut self.video) else {
            return;
        };
        if track.send(rtc, &self.dest.url, frame) {
            self.counters.frames_sent += 1;
        }
        self.drain(now);
    }

    pub fn send_audio(&mut self, now: Instant, packet: &EncodedAudio) {
        let Some((mid, pt)) = self.audio.filter(|_| self.state == State::Publishing) else {
            return;
        };
        let Some(rtc) = &mut self.rtc else { return };
        let time = MediaTime::new(packet.rtp_time, Frequency::EIGHT_KHZ);
        write(
            rtc,
            &self.dest.url,
            mid,
            pt,
            packet.captured,
            time,
            &packet.data,
        );
        self.drain(now);
    }

    /// Ends the publish for good: DELETE the resource, close the connection.
    pub fn shutdown(&mut self) {
        self.close();
        self.state = State::Stopped;
    }

    /// True once per keyframe the SFU (or a fresh connection) needs.
    pub fn take_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_wanted)
    }

    pub fn poll_request(&mut self) -> Option<HttpRequest> {
        self.requests.pop_front()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting => Some(self.next_attempt),
            State::Offering => Some(self.attempt_started + self.timing.answer),
            State::Stopped => None,
            State::Connecting => Some(
                self.rtc_timeout
                    .min(self.attempt_started + self.timing.connect),
            ),
            State::Publishing => Some(self.rtc_timeout.min(self.last_heard + self.timing.silence)),
        }
    }

    pub fn status(&self) -> PublishStatus {
        let url = &self.dest.url;
        let scheme = if url.https { "https" } else { "http" };
        PublishStatus {
            destination: self.index,
            server: format!("{scheme}://{}", url.authority()),
            camera: self.dest.camera,
            audio: self.dest.audio,
            state: self.state,
            last_error: self.last_error.clone(),
            publishes: self.counters.publishes,
            bytes_sent: self.counters.bytes_sent,
            frames_sent: self.counters.frames_sent,
            bitrate_bps: self.counters.bitrate_bps,
        }
    }

    /// A fresh `Rtc` and its offer, POSTed.
    fn start(&mut self, now: Instant, candidates: Vec<Candidate>) {
        if candidates.is_empty() {
            return self.fail(now, "no local address to publish from".into(), false);
        }
        let mut config = RtcConfig::new()
            .set_dtls_cert(self.cert.clone())
            .clear_codecs()
            .enable_h264(true)
            .enable_bwe(Some(Bitrate::bps(u64::from(self.timing.max_bitrate) / 2)));
        if self.dest.audio {
            config = config.enable_pcmu(true, false);
        }
        let mut rtc = config.build(now);
        for candidate in candidates {
            rtc.add_local_candidate(candidate);
        }
        rtc.bwe().set_bitrate(
            Bitrate::bps(u64::from(self.timing.min_bitrate)),
            Bitrate::bps(u64::from(self.timing.max_bitrate)),
        );
        let mut api = rtc.sdp_api();
        let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let audio = (self.dest.audio)
            .then(|| api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        self.mids = Some((video, audio));
        let Some((offer, pending)) = api.apply() else {
            return self.fail(now, "str0m made no offer".into(), false);
        };
        let id = self.request(
            Method::Post,
            self.dest.url.clone(),
            Some(offer.to_sdp_string()),
        );
        self.offer_request = Some(id);
        self.pending_offer = Some(pending);
        self.rtc = Some(rtc);
        self.state = State::Offering;
        self.attempt_started = now;
        self.drain(now);
    }

    fn accept_answer(&mut self, now: Instant, body: &str) -> Result<(), String> {
        let (Some(rtc), Some(pending)) = (&mut self.rtc, self.pending_offer.take()) else {
            return Err("an answer without an offer".into());
        };
        if !body.trim_start().starts_with("v=0") {
            return Err(format!(
                "the 201's body is not an SDP answer: {:?}",
                excerpt(body)
            ));
        }
        let answer =
            SdpAnswer::from_sdp_string(body).map_err(|e| format!("malformed SDP answer: {e}"))?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| format!("unusable SDP answer: {e}"))?;
        // str0m announces no MediaAdded for m-lines we offered: the payload
        // types the SFU accepted are read from the writers.
        let (video_mid, audio_mid) = self.mids.ok_or("an answer without an offer")?;
        self.video = rtc
            .writer(video_mid)
            .and_then(|w| pick_h264(w.payload_params()))
            .map(|pt| VideoTrack {
                mid: video_mid,
                pt,
                awaiting_keyframe: true,
                on: true,
            });
        let pcmu = |p: &&PayloadParams| p.spec().codec == Codec::PCMU;
        self.audio = audio_mid.and_then(|mid| {
            let pt = rtc.writer(mid)?.payload_params().find(pcmu)?.pt();
            Some((mid, pt))
        });
        // Checks go out now, not at the next unrelated wake-up.
        if let Err(e) = rtc.handle_input(Input::Timeout(now)) {
            return Err(format!("WebRTC: {e}"));
        }
        self.drain(now);
        match self.video {
            Some(_) => Ok(()),
            None => Err("the SFU's answer has no H.264 (packetization-mode=1) video".into()),
        }
    }

    /// Polls str0m until only a timeout is left; ends the attempt if it died.
    fn drain(&mut self, now: Instant) {
        while let Some(rtc) = self.rtc.as_mut().filter(|r| r.is_alive()) {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.rtc_timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    self.counters.bytes_sent += t.contents.len() as u64;
                    self.counters.window_bytes += t.contents.len() as u64;
                    self.transmits.push_back(t);
                }
                Ok(Output::Event(e)) => self.on_event(now, e),
                Err(e) => self.lost = Some(format!("WebRTC: {e}")),
            }
        }
        let dead = self.rtc.as_ref().is_some_and(|r| !r.is_alive()) && self.wants_video();
        if let Some(why) = self
            .lost
            .take()
            .or_else(|| dead.then(|| "the connection closed".into()))
        {
            self.fail(now, why, false);
        }
    }

    fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected => {
                self.state = State::Publishing;
                self.last_heard = now;
                self.backoff.reset();
                self.logged = None;
                self.counters.publishes += 1;
                self.keyframe_wanted = true;
                tracing::info!(url = %self.dest.url, "publishing");
            }
            Event::KeyframeRequest(_) => self.keyframe_wanted = true,
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.lost = Some("ICE disconnected".into());
            }
            Event::EgressBitrateEstimate(
                BweKind::Twcc { estimate, .. } | BweKind::Remb { estimate, .. },
            ) => self.estimate = Some(estimate.as_u64()),
            _ => {}
        }
    }

    /// Ends this attempt and schedules the next: slowly for a refused
    /// token, else with back-off. Logs a problem only when it is new.
    fn fail(&mut self, now: Instant, why: String, refused: bool) {
        self.close();
        let delay = if refused {
            self.timing.refused
        } else {
            self.backoff.next_delay()
        };
        if self.logged.as_ref() != Some(&why) {
            tracing::warn!(url = %self.dest.url, "publish: {why} (next try in {delay:?})");
            self.logged = Some(why.clone());
        } else {
            tracing::debug!(url = %self.dest.url, "publish: {why} again (next try in {delay:?})");
        }
        self.last_error = Some(why);
        self.state = State::Waiting;
        self.next_attempt = now + delay;
    }

    /// Drops the connection and DELETEs the resource, if there is one.
    fn close(&mut self) {
        if let Some(mut rtc) = self.rtc.take() {
            rtc.disconnect();
        }
        self.pending_offer = None;
        self.offer_request = None;
        self.mids = None;
        self.video = None;
        self.audio = None;
        self.estimate = None;
        if let Some(resource) = self.resource.take() {
            self.request(Method::Delete, resource, None);
        }
    }

    fn request(&mut self, method: Method, url: Url, body: Option<String>) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        self.requests.push_back(HttpRequest {
            destination: self.index,
            id,
            method,
            url,
            token: self.dest.token.clone(),
            body,
        });
        id
    }

    fn update_bitrate(&mut self, now: Instant) {
        let counters = &mut self.counters;
        let start = *counters.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= Duration::from_secs(1) {
            counters.bitrate_bps = counters.window_bytes * 8 * 1000 / elapsed.as_millis() as u64;
            counters.window_bytes = 0;
            counters.window_start = Some(now);
        }
    }
}

#[cfg(test)]
mod tests;
