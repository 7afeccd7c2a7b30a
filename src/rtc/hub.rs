//! Every peer connection, sans-IO. The hub takes datagrams, offers, encoded
//! frames and time as inputs and produces datagrams to send and events for the
//! session, exactly like the `str0m::Rtc`s it owns. No sockets, no clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::media::{Frequency, MediaTime};
use str0m::net::Transmit;
use str0m::{Candidate, Input, RtcConfig};

use super::PeerId;
use crate::media::audio::EncodedAudio;
use crate::media::pipeline::KeyframeReason;
use crate::media::EncodedFrame;
pub use error::ConnectError;
use opcam::OperatorCamera;
pub use opcam::OperatorCameraStatus;
pub(crate) use peer::{write, VideoTrack};
use peer::{OperatorCameraInput, Peer};
pub use restart::RestartError;
pub(crate) use sdp::pick_h264;
use sdp::{attribute, video_sections_have_h264};

#[derive(Debug, Clone)]
pub struct HubConfig {
    pub max_peers: usize,
    /// A connected peer we hear nothing from for this long is gone. Shorter
    /// silences are blips the peer is held through (see `hub/hold.rs`).
    pub silence_timeout: Duration,
    /// A peer that watches video and is silent this long has lost its link
    /// (browsers send RTCP several times a second while they watch): it is
    /// held, and its return asks for a keyframe.
    pub link_lost_after: Duration,
    /// A peer that never completes ICE+DTLS within this is dropped.
    pub connect_timeout: Duration,
    pub min_bitrate: u32,
    pub max_bitrate: u32,
    /// Bandwidth estimation (and with it str0m's pacing) per peer.
    pub congestion_control: bool,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_peers: 16,
            silence_timeout: Duration::from_secs(20),
            link_lost_after: Duration::from_millis(1500),
            connect_timeout: Duration::from_secs(15),
            min_bitrate: 150_000,
            max_bitrate: 2_500_000,
            congestion_control: true,
        }
    }
}

/// What the session and the loop need to know about.
#[derive(Debug, Clone, PartialEq)]
pub enum HubEvent {
    /// The peer can now exchange data-channel messages (or, without a data
    /// channel, is connected). `secret` is what it presented at `/connect`;
    /// `view_only` peers may watch but never operate.
    Joined {
        peer: PeerId,
        secret: Option<String>,
        view_only: bool,
    },
    Left(PeerId),
    Text {
        peer: PeerId,
        text: String,
    },
    /// A peer needs an IDR of this camera (it just connected, or sent PLI/FIR).
    KeyframeWanted {
        peer: PeerId,
        camera: usize,
        reason: KeyframeReason,
    },
    /// 20 ms of μ-law the peer sent (push-to-talk).
    Audio {
        peer: PeerId,
        data: Arc<[u8]>,
    },
    /// One access unit of the operator's camera (already forwarded to the
    /// viewers): for the recorder and local displays.
    OperatorVideo(EncodedFrame),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PeerStatus {
    pub id: PeerId,
    pub state: &'static str,
    pub remote: Option<SocketAddr>,
    pub bitrate_estimate: Option<u64>,
    /// Round trip from str0m's once-a-second stats (TWCC feedback or RTCP
    /// receiver reports), in ms.
    pub rtt_ms: Option<f64>,
    pub frames_sent: u64,
    /// Frames not written: waiting for its first keyframe, or the write failed.
    pub frames_skipped: u64,
    /// Per video m-line (camera): whether the peer receives it, false once turned off.
    pub receiving: Vec<bool>,
}

pub struct Hub {
    config: HubConfig,
    cert: DtlsCert,
    peers: Vec<Peer>,
    next_id: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<HubEvent>,
    /// Per camera: every peer's frames_sent and frames_skipped since start,
    /// departed peers included.
    totals: Vec<VideoTotals>,
    operator_camera: OperatorCamera,
}

/// Frames of one camera written to peers since start (one frame to three
/// peers counts three).
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct VideoTotals {
    pub frames_sent: u64,
    pub frames_skipped: u64,
}

impl Hub {
    pub fn new(config: HubConfig) -> Hub {
        let provider = str0m::crypto::from_feature_flags();
        // One certificate for the process: generating one per peer costs ~ms of CPU each.
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .expect("the aws-lc-rs provider generates DTLS certificates");
        provider.install_process_default();
        Hub {
            config,
            cert,
            peers: Vec::new(),
            next_id: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            totals: Vec::new(),
            operator_camera: OperatorCamera::default(),
        }
    }

    /// Accepts a (non-trickle) SDP offer and returns the peer's id and the SDP answer.
    /// `candidates` are where the browser may reach us: local addresses and,
    /// behind a NAT, the public one.
    /// A `view_only` peer (it came over plain HTTP in view-only mode) may never operate.
    pub fn connect(
        &mut self,
        now: Instant,
        offer_sdp: &str,
        candidates: &[Candidate],
        secret: Option<String>,
        view_only: bool,
    ) -> Result<(PeerId, String), ConnectError> {
        if self.peers.len() >= self.config.max_peers {
            return Err(ConnectError::TooManyPeers(self.config.max_peers));
        }
        let offer = SdpOffer::from_sdp_string(offer_sdp)
            .map_err(|e| ConnectError::BadSdp(e.to_string()))?;
        if !video_sections_have_h264(offer_sdp) {
            return Err(ConnectError::NoUsableVideoCodec);
        }
        // Full ICE, not ICE-lite: behind a NAT the robot's own checks open the
        // path (towards the browser's TURN relay, or through a port forward).
        let initial_estimate = self
            .config
            .congestion_control
            .then(|| Bitrate::bps(u64::from(self.config.max_bitrate) / 2));
        let mut rtc = RtcConfig::new()
            .set_dtls_cert(self.cert.clone())
            .clear_codecs()
            .enable_h264(true)
            .enable_pcmu(true, false)
            .enable_bwe(initial_estimate)
            // For each peer's RTT in /api/status and /metrics.
            .set_stats_interval(Some(Duration::from_secs(1)))
            .build(now);
        if candidates.is_empty() {
            return Err(ConnectError::NoCandidates);
        }
        for candidate in candidates {
            rtc.add_local_candidate(candidate.clone());
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| ConnectError::Rejected(e.to_string()))?
            .to_sdp_string();
        // str0m skips media sections it can't read; with none left the peer
        // could never connect and would hold a slot until the connect timeout.
        if !answer.contains("\nm=") {
            return Err(ConnectError::Rejected(
                "no media section the robot can answer (video, audio or data channel)".into(),
            ));
        }
        // str0m writes our candidates into the answer's section for the
        // offer's first m-line only: with that one unreadable (and skipped)
        // the browser would get no address to reach us at.
        if !answer.contains("\na=candidate:") {
            return Err(ConnectError::Rejected(
                "the offer's first media section is unreadable (the answer carries the robot's ICE candidates there)".into(),
            ));
        }
        if self.config.congestion_control {
            rtc.bwe().set_bitrate(
                Bitrate::bps(u64::from(self.config.min_bitrate)),
                Bitrate::bps(u64::from(self.config.max_bitrate)),
            );
        }
        // str0m reckoned its next timeout when it was built, before the offer
        // gave it candidates to check: without a timeout now, the robot's first
        // ICE check waited for the next unrelated wake-up (the pacer's with
        // congestion control on; without it up to 1 s, and the browser's DTLS
        // with it: the first picture took ~1 s).
        rtc.handle_input(Input::Timeout(now))
            .map_err(|e| ConnectError::Rejected(e.to_string()))?;
        let id = PeerId(self.next_id);
        self.next_id += 1;
        let mut peer = Peer {
            id,
            rtc,
            created: now,
            last_heard: now,
            timeout: now,
            remote: None,
            video: Vec::new(),
            operator_camera: None,
            operator_camera_inbox: Vec::new(),
            audio: None,
            channel: None,
            expects_channel: offer_sdp.contains("m=application"),
            connected: false,
            joined: false,
            secret,
            view_only,
            estimate: None,
            rtt: None,
            frames_sent: 0,
            frames_skipped: 0,
            held_since: None,
            sends_to: None,
            remote_ufrag: attribute(offer_sdp, "ice-ufrag").unwrap_or("").to_string(),
            fingerprint: attribute(offer_sdp, "fingerprint")
                .unwrap_or("")
                .to_string(),
            last_restart: None,
            local_candidates: candidates.to_vec(),
        };
        peer.drain(&mut self.transmits, &mut self.events);
        tracing::info!(peer = %id, "offer accepted");
        self.peers.push(peer);
        Ok((id, answer))
    }

    /// Feeds one received datagram to the peer it belongs to. False if nobody claims it.
    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        let Some(input) = super::net::udp_input(now, source, destination, data) else {
            return false;
        };
        let Some(peer) = self.peers.iter_mut().find(|p| p.rtc.accepts(&input)) else {
            return false;
        };
        peer.heard(now, &mut self.events);
        peer.remote = Some(source);
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::warn!(peer = %peer.id, "dropping peer: {e}");
            peer.rtc.disconnect();
        }
        peer.drain(&mut self.transmits, &mut self.events);
        self.serve_operator_camera(now);
        true
    }

    /// Drives every peer's timers and reaps the dead ones.
    pub fn handle_timeout(&mut self, now: Instant) {
        for peer in &mut self.peers {
            peer.hold_if_silent(now, &self.config);
            if peer.timeout <= now {
                if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                    tracing::warn!(peer = %peer.id, "dropping peer: {e}");
                    peer.rtc.disconnect();
                }
                peer.drain(&mut self.transmits, &mut self.events);
            }
        }
        self.serve_operator_camera(now);
        self.reap(now);
    }

    /// Writes one shared access unit of `camera` (config order) to every
    /// connected peer with a video m-line for it.
    pub fn send_video(&mut self, camera: usize, frame: &EncodedFrame) {
        self.send_video_to(camera, frame, |_| true);
    }

    /// [`Hub::send_video`] to the peers `admit` lets through: those on the
    /// layer `frame` belongs to.
    pub fn send_video_to(
        &mut self,
        camera: usize,
        frame: &EncodedFrame,
        mut admit: impl FnMut(PeerId) -> bool,
    ) {
        if self.totals.len() <= camera {
            self.totals.resize(camera + 1, VideoTotals::default());
        }
        let totals = &mut self.totals[camera];
        for peer in self.peers.iter_mut().filter(|p| p.sending()) {
            let Some(track) = peer.video.get_mut(camera).filter(|t| t.on) else {
                continue;
            };
            if !admit(peer.id) {
                continue;
            }
            if track.send(&mut peer.rtc, peer.id, frame) {
                peer.frames_sent += 1;
                totals.frames_sent += 1;
            } else {
                peer.frames_skipped += 1;
                totals.frames_skipped += 1;
            }
            peer.drain(&mut self.transmits, &mut self.events);
        }
    }

    /// Stops or resumes sending `camera` to a peer; a resumed camera starts
    /// at its next IDR, which is asked for. False if the peer has no video
    /// m-line for that camera.
    pub fn set_camera(&mut self, id: PeerId, camera: usize, on: bool) -> bool {
        let Some(peer) = self.peers.iter_mut().find(|p| p.id == id) else {
            return false;
        };
        let Some(track) = peer.video.get_mut(camera) else {
            return false;
        };
        if track.on == on {
            return true;
        }
        tracing::info!(peer = %id, camera, on, "camera switched by the peer");
        track.on = on;
        if on {
            track.awaiting_keyframe = true;
            if peer.connected {
                self.events.push_back(HubEvent::KeyframeWanted {
                    peer: id,
                    camera,
                    reason: KeyframeReason::NewPeer,
                });
            }
        }
        true
    }

    /// Writes one shared microphone packet to every connected peer that takes audio.
    pub fn send_audio(&mut self, packet: &EncodedAudio) {
        let rtp_time = MediaTime::new(packet.rtp_time, Frequency::EIGHT_KHZ);
        for peer in &mut self.peers {
            let Some((mid, pt)) = peer.audio.filter(|_| peer.sending()) else {
                continue;
            };
            write(
                &mut peer.rtc,
                peer.id,
                mid,
                pt,
                packet.captured,
                rtp_time,
                &packet.data,
            );
            peer.drain(&mut self.transmits, &mut self.events);
        }
    }

    /// Sends a text message on the peer's data channel. False if it has none (yet).
    pub fn send_text(&mut self, id: PeerId, text: &str) -> bool {
        let Some(peer) = self.peers.iter_mut().find(|p| p.id == id) else {
            return false;
        };
        let Some(mut channel) = peer.channel.and_then(|c| peer.rtc.channel(c)) else {
            return false;
        };
        let written = matches!(channel.write(false, text.as_bytes()), Ok(true));
        peer.drain(&mut self.transmits, &mut self.events);
        written
    }

    /// Closes a peer now (WHEP DELETE, eject, shutdown).
    pub fn disconnect(&mut self, id: PeerId, now: Instant) -> bool {
        let Some(peer) = self.peers.iter_mut().find(|p| p.id == id) else {
            return false;
        };
        peer.rtc.disconnect();
        peer.drain(&mut self.transmits, &mut self.events);
        self.reap(now);
        true
    }

    pub fn disconnect_all(&mut self, now: Instant) {
        let ids: Vec<PeerId> = self.peers.iter().map(|p| p.id).collect();
        for id in ids {
            self.disconnect(id, now);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<HubEvent> {
        self.events.pop_front()
    }

    /// The earliest instant `handle_timeout` must run.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.peers
            .iter()
            .flat_map(|p| {
                [
                    Some(p.timeout),
                    Some(p.deadline(&self.config)),
                    p.link_lost_at(&self.config),
                ]
            })
            .flatten()
            .min()
    }

    /// Peers that will receive the microphone.
    pub fn listeners(&self) -> usize {
        self.peers.iter().filter(|p| p.audio.is_some()).count()
    }

    /// Peers that will receive this camera (connecting or connected) and
    /// have not turned it off.
    pub fn viewers(&self, camera: usize) -> usize {
        let watches = |p: &&Peer| p.video.get(camera).is_some_and(|t| t.on);
        self.peers.iter().filter(watches).count()
    }

    pub fn contains(&self, id: PeerId) -> bool {
        self.peers.iter().any(|p| p.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Each peer receiving `camera` with its bandwidth estimate. A held
    /// peer's link is down, not slow: it doesn't count.
    pub fn viewer_estimates(&self, camera: usize) -> Vec<(PeerId, Option<u64>)> {
        let watches = |p: &&Peer| p.sending() && p.video.get(camera).is_some_and(|t| t.on);
        (self.peers.iter().filter(watches))
            .map(|p| (p.id, p.estimate))
            .collect()
    }

    /// Frames of `camera` written to peers and skipped, since start.
    pub fn video_totals(&self, camera: usize) -> VideoTotals {
        self.totals.get(camera).copied().unwrap_or_default()
    }

    pub fn status(&self) -> Vec<PeerStatus> {
        self.peers
            .iter()
            .map(|p| PeerStatus {
                id: p.id,
                state: match (p.connected, p.held_since) {
                    (true, None) => "connected",
                    (true, Some(_)) => "holding",
                    (false, _) => "connecting",
                },
                remote: p.remote,
                bitrate_estimate: p.estimate,
                rtt_ms: p.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
                frames_sent: p.frames_sent,
                frames_skipped: p.frames_skipped,
                receiving: p.video.iter().map(|t| t.on).collect(),
            })
            .collect()
    }

    fn reap(&mut self, now: Instant) {
        let config = &self.config;
        let events = &mut self.events;
        self.peers.retain(|p| {
            let silent = now >= p.deadline(config);
            if p.rtc.is_alive() && !silent {
                return true;
            }
            let why = if silent { "silent" } else { "closed" };
            tracing::info!(peer = %p.id, age = ?now.saturating_duration_since(p.created), "peer gone ({why})");
            if p.joined {
                events.push_back(HubEvent::Left(p.id));
            }
            false
        });
    }
}

mod error;
mod forward;
mod hold;
mod opcam;
mod peer;
mod restart;
mod sdp;
#[cfg(test)]
pub(crate) mod tests;
