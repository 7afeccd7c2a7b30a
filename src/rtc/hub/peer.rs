//! One peer of the hub: its str0m `Rtc`, its m-lines and what its str0m
//! events mean (video m-lines to cameras or the operator's camera, audio,
//! the data channel, keyframe requests, bandwidth and RTT).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::BweKind;
use str0m::channel::ChannelId;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::Transmit;
use str0m::{Event, IceConnectionState, Output, Rtc};

use super::opcam::Incoming;
use super::sdp::{pick_h264, video_line, VideoLine};
use super::{HubConfig, HubEvent, PeerId};
use crate::media::pipeline::KeyframeReason;
use crate::media::EncodedFrame;
use crate::session::protocol::DRIVE_CHANNEL;

/// Silence allowed from a connected peer that receives no video.
pub(super) const DATA_ONLY_SILENCE: Duration = Duration::from_secs(12);

/// One peer connection and what the hub knows of it.
pub(super) struct Peer {
    pub(super) id: PeerId,
    pub(super) rtc: Rtc,
    pub(super) created: Instant,
    pub(super) last_heard: Instant,
    pub(super) timeout: Instant,
    pub(super) remote: Option<SocketAddr>,
    /// The offer's camera m-lines in order: the n-th carries camera n.
    pub(super) video: Vec<VideoTrack>,
    /// The m-line the operator's camera comes in on (from this peer while it
    /// operates) and goes out on (to it while it watches): see [`video_line`].
    pub(super) operator_camera: Option<VideoTrack>,
    /// What this peer did on that m-line, for the hub to act on after draining.
    pub(super) operator_camera_inbox: Vec<OperatorCameraInput>,
    /// Where the robot's microphone goes, if the peer wants it.
    pub(super) audio: Option<(Mid, Pt)>,
    pub(super) channel: Option<ChannelId>,
    pub(super) expects_channel: bool,
    pub(super) connected: bool,
    pub(super) joined: bool,
    pub(super) secret: Option<String>,
    pub(super) view_only: bool,
    pub(super) estimate: Option<u64>,
    pub(super) rtt: Option<Duration>,
    pub(super) frames_sent: u64,
    pub(super) frames_skipped: u64,
    /// Since when the peer's link is silent, while it is held (see `hold.rs`).
    pub(super) held_since: Option<Instant>,
    /// Where str0m sends media, DTLS and SCTP: the nominated pair's remote
    /// address (see `hold.rs`).
    pub(super) sends_to: Option<SocketAddr>,
    /// Its current offer's ICE ufrag and DTLS fingerprint, and its last ICE
    /// restart (see `restart.rs`).
    pub(super) remote_ufrag: String,
    pub(super) fingerprint: String,
    pub(super) last_restart: Option<Instant>,
}

/// One video m-line of a peer and what it carries (a camera, or the operator's camera).
pub(crate) struct VideoTrack {
    pub(crate) mid: Mid,
    pub(crate) pt: Pt,
    /// Until it has an IDR, P-frames only make the peer's decoder show garbage.
    pub(crate) awaiting_keyframe: bool,
    /// False while the peer has turned this camera off (a `camera` message).
    pub(crate) on: bool,
}

/// Something a peer did that concerns the operator's camera.
pub(super) enum OperatorCameraInput {
    Frame(Incoming),
    WantsKeyframe(KeyframeReason),
}

impl VideoTrack {
    /// Writes one access unit unless the peer still waits for a keyframe
    /// and this isn't one; true if written.
    pub(crate) fn send(
        &mut self,
        rtc: &mut Rtc,
        peer: impl std::fmt::Display,
        frame: &EncodedFrame,
    ) -> bool {
        let decodable = frame.keyframe || !self.awaiting_keyframe;
        let time = MediaTime::from_90khz(frame.rtp_time);
        let sent = decodable
            && write(
                rtc,
                peer,
                self.mid,
                self.pt,
                frame.captured,
                time,
                &frame.data,
            );
        if sent {
            self.awaiting_keyframe = false;
        }
        sent
    }
}

/// Retransmissions may be this share of a video stream's bytes over the
/// last second. str0m's default, 0.15, drops every queued resend above it:
/// a joiner that lost 20 packets of a 29-packet keyframe got 9 of them back
/// and then none (hub test), so it showed nothing until a later PLI brought
/// a new keyframe. Pacing still holds resends to the estimate.
const RTX_RATIO_CAP: f32 = 0.6;
/// str0m's own defaults for the resend cache: packets and age.
const RTX_CACHE_PACKETS: usize = 1000;
const RTX_CACHE_AGE: Duration = Duration::from_secs(3);

/// Lets NACKs repair a lost keyframe (see [`RTX_RATIO_CAP`]).
fn allow_keyframe_repair(rtc: &mut Rtc, mid: Mid) {
    let mut api = rtc.direct_api();
    if let Some(stream) = api.stream_tx_by_mid(mid, None) {
        stream.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP));
    }
}

/// Writes one frame (or audio packet) on `mid`; false if str0m refused it.
/// `peer` names the receiver in logs (a peer, a WHIP destination).
pub(crate) fn write(
    rtc: &mut Rtc,
    peer: impl std::fmt::Display,
    mid: Mid,
    pt: Pt,
    captured: Instant,
    time: MediaTime,
    data: &Arc<[u8]>,
) -> bool {
    let Some(writer) = rtc.writer(mid) else {
        return false;
    };
    match writer.write(pt, captured, time, data.clone()) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(%peer, "media write: {e}");
            false
        }
    }
}

impl Peer {
    /// When this peer counts as gone if nothing more is heard from it.
    pub(super) fn deadline(&self, config: &HubConfig) -> Instant {
        if self.connected && self.video.iter().all(|t| !t.on) {
            // Without video there is no RTCP stream; browsers only send STUN
            // consent checks (every ~5 s) and whatever the page sends.
            self.last_heard + config.silence_timeout.max(DATA_ONLY_SILENCE)
        } else if self.connected {
            self.last_heard + config.silence_timeout
        } else {
            self.created + config.connect_timeout
        }
    }

    /// Polls str0m until it only has a timeout left, as str0m requires after every mutation.
    pub(super) fn drain(
        &mut self,
        transmits: &mut VecDeque<Transmit>,
        events: &mut VecDeque<HubEvent>,
    ) {
        while self.rtc.is_alive() {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    self.follow_send_path(&t, events);
                    transmits.push_back(t);
                }
                Ok(Output::Event(e)) => self.on_event(e, events),
                Err(e) => {
                    tracing::warn!(peer = %self.id, "dropping peer: {e}");
                    self.rtc.disconnect();
                }
            }
        }
    }

    fn on_event(&mut self, event: Event, events: &mut VecDeque<HubEvent>) {
        match event {
            Event::Connected => {
                self.connected = true;
                self.start_video_at_keyframe(events);
                if !self.expects_channel {
                    self.join(events);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                // Our checks go unanswered: maybe a blip. The peer is held
                // until the silence limit; packets from it bring it back.
                tracing::info!(peer = %self.id, "ICE disconnected: holding");
            }
            Event::MediaAdded(m) if m.kind == MediaKind::Video => {
                let pt = self
                    .rtc
                    .writer(m.mid)
                    .and_then(|w| pick_h264(w.payload_params()));
                let earlier = self.video.len() + usize::from(self.operator_camera.is_some());
                let line = video_line(
                    earlier,
                    self.operator_camera.is_some(),
                    m.direction.is_receiving(),
                );
                match pt {
                    Some(pt) if line == VideoLine::OperatorCamera => {
                        self.operator_camera = Some(VideoTrack {
                            mid: m.mid,
                            pt,
                            awaiting_keyframe: true,
                            on: true,
                        });
                        if self.connected {
                            let wants = OperatorCameraInput::WantsKeyframe(KeyframeReason::NewPeer);
                            self.operator_camera_inbox.push(wants);
                        }
                    }
                    Some(pt) => {
                        allow_keyframe_repair(&mut self.rtc, m.mid);
                        self.video.push(VideoTrack {
                            mid: m.mid,
                            pt,
                            awaiting_keyframe: true,
                            on: true,
                        });
                        // str0m may report the m-line after `Connected`.
                        if self.connected {
                            events.push_back(HubEvent::KeyframeWanted {
                                peer: self.id,
                                camera: self.video.len() - 1,
                                reason: KeyframeReason::NewPeer,
                            });
                        }
                    }
                    None => tracing::warn!(peer = %self.id, "video m-line without usable H.264"),
                }
            }
            Event::MediaAdded(m) if m.kind == MediaKind::Audio => {
                let pcmu = |p: &&PayloadParams| p.spec().codec == Codec::PCMU;
                self.audio = self
                    .rtc
                    .writer(m.mid)
                    .and_then(|w| w.payload_params().find(pcmu).map(|p| p.pt()))
                    .map(|pt| (m.mid, pt));
            }
            Event::MediaData(m)
                if self.is_operator_camera(m.mid) && m.params.spec().codec == Codec::H264 =>
            {
                let frame = Incoming {
                    peer: self.id,
                    data: m.data,
                    time: m.time.rebase(Frequency::NINETY_KHZ).numer(),
                    arrived: m.network_time,
                    contiguous: m.contiguous,
                };
                self.operator_camera_inbox
                    .push(OperatorCameraInput::Frame(frame));
            }
            Event::MediaData(m) if m.params.spec().codec == Codec::PCMU => {
                events.push_back(HubEvent::Audio {
                    peer: self.id,
                    data: m.data,
                });
            }
            Event::ChannelOpen(id, label) => {
                tracing::debug!(peer = %self.id, "data channel '{label}' open");
                if label != DRIVE_CHANNEL {
                    self.channel.get_or_insert(id);
                    self.join(events);
                }
            }
            Event::ChannelClose(id) if self.channel == Some(id) => self.channel = None,
            Event::ChannelData(d) => {
                let text = String::from_utf8_lossy(&d.data).into_owned();
                events.push_back(HubEvent::Text {
                    peer: self.id,
                    text,
                });
            }
            Event::KeyframeRequest(request) if self.is_operator_camera(request.mid) => {
                let wants = OperatorCameraInput::WantsKeyframe(KeyframeReason::Loss);
                self.operator_camera_inbox.push(wants);
            }
            Event::KeyframeRequest(request) => {
                if let Some(camera) = self.video.iter().position(|t| t.mid == request.mid) {
                    events.push_back(HubEvent::KeyframeWanted {
                        peer: self.id,
                        camera,
                        reason: KeyframeReason::Loss,
                    });
                }
            }
            Event::EgressBitrateEstimate(
                BweKind::Twcc { estimate, .. } | BweKind::Remb { estimate, .. },
            ) => {
                self.estimate = Some(estimate.as_u64());
            }
            // TWCC feedback gives PeerStats an RTT; RTCP receiver reports give
            // the video stream's. Either is the peer's latest round trip.
            Event::PeerStats(stats) => self.rtt = stats.rtt.or(self.rtt),
            Event::MediaEgressStats(stats) => self.rtt = stats.rtt.or(self.rtt),
            Event::Closed => self.rtc.disconnect(),
            _ => {}
        }
    }

    /// Every video m-line waits for an IDR, which is asked for: P-frames
    /// are useless to a peer that just connected or whose link just came back.
    pub(super) fn start_video_at_keyframe(&mut self, events: &mut VecDeque<HubEvent>) {
        for (camera, track) in self.video.iter_mut().enumerate().filter(|(_, t)| t.on) {
            track.awaiting_keyframe = true;
            events.push_back(HubEvent::KeyframeWanted {
                peer: self.id,
                camera,
                reason: KeyframeReason::NewPeer,
            });
        }
        if let Some(track) = &mut self.operator_camera {
            track.awaiting_keyframe = true;
            let wants = OperatorCameraInput::WantsKeyframe(KeyframeReason::NewPeer);
            self.operator_camera_inbox.push(wants);
        }
    }

    fn is_operator_camera(&self, mid: Mid) -> bool {
        self.operator_camera.as_ref().is_some_and(|t| t.mid == mid)
    }

    fn join(&mut self, events: &mut VecDeque<HubEvent>) {
        if !self.joined {
            self.joined = true;
            events.push_back(HubEvent::Joined {
                peer: self.id,
                secret: self.secret.take(),
                view_only: self.view_only,
            });
        }
    }
}
