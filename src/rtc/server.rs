//! The network loop: one smol task on one thread owns the UDP socket, the
//! [`Hub`] of peers, the [`Session`] and the local API's socket. Everything
//! else talks to it through [`LoopHandle`] commands, so no locks guard any
//! peer or motor state.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::channel::{Receiver, Sender};
use smol::future::FutureExt;
use smol::{Async, Timer};

use super::hub::{Hub, HubEvent, VideoTotals};
use super::ice;
use super::layers::{Layer, LayerPicker};
use super::nat::stun::StunClient;
use super::net::{self, RtcSocket};
use super::status::{self, LoopStatus};
use crate::api::{ApiOutput, Audience, LocalApi};
use crate::media::audio::{AudioShared, EncodedAudio};
use crate::media::display::Display;
use crate::media::pipeline::{KeyframeReason, VideoShared};
use crate::media::record::Recordings;
use crate::media::sink::Feed;
use crate::media::EncodedFrame;
use crate::rtc::publish::client::{Done, HttpWorkers};
use crate::rtc::publish::Publishers;
use crate::session::protocol::Outbound;
use crate::session::{read_cpu_temp_c, Session, SessionOutput};

/// The loop's ends of one camera's pipeline.
pub struct CameraLinks {
    pub name: String,
    pub video: Arc<VideoShared>,
    pub frames: Receiver<EncodedFrame>,
    /// The low layer's frames, if the camera has one.
    pub low_frames: Option<Receiver<EncodedFrame>>,
    /// Which viewer gets which layer, and the encoders' bitrates.
    pub layers: LayerPicker,
}

/// The loop's ends of the media threads.
pub struct MediaLinks {
    /// In config order: camera n goes out on each peer's n-th video m-line.
    pub cameras: Vec<CameraLinks>,
    pub audio: Arc<AudioShared>,
    pub microphone: Receiver<EncodedAudio>,
    pub talkback: Sender<Arc<[u8]>>,
    /// The recorder takes every camera's frames, the operator's, and the
    /// audio the peers get.
    pub recordings: Recordings,
    /// The robot's own screen (`[display]`), if it has one: a robot camera
    /// or the operator's.
    pub display: Option<Arc<Display>>,
}

pub struct RtcServer {
    socket: Async<RtcSocket>,
    local: SocketAddr,
    /// A port forward's or 1:1 NAT's outside address, offered besides ours.
    public_addr: Option<SocketAddr>,
    stun: StunClient,
    hub: Hub,
    session: Session,
    /// Programs on the Unix socket (`[api] socket`), if configured.
    api: Option<LocalApi>,
    media: MediaLinks,
    commands: Receiver<Command>,
    started: Instant,
    next_host_check: Instant,
    /// The local addresses last seen: a change (DHCP, a new uplink) means the
    /// public address may have changed too.
    local_addrs: Vec<SocketAddr>,
    /// `[[publish]]`: the SFUs we publish to, and their HTTP requests in flight.
    publish: Publishers,
    whip: HttpWorkers,
}

enum Wake {
    Datagram(std::io::Result<(usize, SocketAddr, SocketAddr)>),
    Command(Option<Command>),
    Frame(usize, Layer, EncodedFrame),
    Audio(EncodedAudio),
    Api,
    Whip(Done),
    Timer,
}

impl RtcServer {
    pub fn new(
        socket: RtcSocket,
        public_addr: Option<SocketAddr>,
        hub: Hub,
        session: Session,
        api: Option<LocalApi>,
        media: MediaLinks,
    ) -> std::io::Result<(RtcServer, LoopHandle)> {
        let local = socket.local_addr();
        let (tx, rx) = smol::channel::unbounded();
        let server = RtcServer {
            socket: Async::new(socket)?,
            local,
            public_addr,
            stun: StunClient::new(Instant::now()),
            hub,
            session,
            api,
            media,
            commands: rx,
            started: Instant::now(),
            next_host_check: Instant::now(),
            local_addrs: net::candidate_addrs(local),
            publish: Publishers::default(),
            whip: HttpWorkers::new(None),
        };
        Ok((server, LoopHandle::new(tx)))
    }

    /// Publishes to these WHIP destinations too, making their requests with `whip`.
    pub fn with_publishers(mut self, publish: Publishers, whip: HttpWorkers) -> RtcServer {
        self.publish = publish;
        self.whip = whip;
        self
    }

    /// Runs until a `Shutdown` command (or every handle is dropped), then
    /// stops the motors and closes every peer before returning.
    pub fn run(mut self) {
        smol::block_on(async {
            let mut buf = vec![0u8; 2048];
            loop {
                let deadline = self.next_deadline();
                let wake = {
                    let datagram =
                        async { Wake::Datagram(self.socket.read_with(|s| s.recv(&mut buf)).await) };
                    let command = async { Wake::Command(self.commands.recv().await.ok()) };
                    let api = async {
                        match &self.api {
                            Some(api) => {
                                api.ready().await;
                                Wake::Api
                            }
                            None => smol::future::pending().await,
                        }
                    };
                    let frame = async {
                        let (camera, layer, frame) = next_frame(&self.media.cameras).await;
                        Wake::Frame(camera, layer, frame)
                    };
                    let audio = async {
                        match self.media.microphone.recv().await {
                            Ok(a) => Wake::Audio(a),
                            Err(_) => smol::future::pending().await,
                        }
                    };
                    let whip = async {
                        match self.whip.results().recv().await {
                            Ok(done) => Wake::Whip(done),
                            Err(_) => smol::future::pending().await,
                        }
                    };
                    let timer = async {
                        Timer::at(deadline).await;
                        Wake::Timer
                    };
                    datagram
                        .or(command)
                        .or(api)
                        .or(frame)
                        .or(audio)
                        .or(whip)
                        .or(timer)
                        .await
                };
                let now = Instant::now();
                match wake {
                    Wake::Datagram(Ok((n, source, destination))) => {
                        let data = &buf[..n];
                        if !self.stun.receive(now, source, destination, data)
                            && !self.hub.receive(now, source, destination, data)
                            && !self.publish.receive(now, source, destination, data)
                        {
                            tracing::trace!("unclaimed datagram from {source}");
                        }
                    }
                    // ICMP errors from departed browsers surface here; they are not fatal.
                    Wake::Datagram(Err(e)) => tracing::debug!("udp recv: {e}"),
                    Wake::Command(Some(Command::Shutdown)) | Wake::Command(None) => break,
                    Wake::Command(Some(cmd)) => self.command(now, cmd),
                    Wake::Frame(camera, layer, frame) => {
                        self.with_consumers(|to| to.video(now, Feed::Camera(camera), layer, &frame))
                    }
                    Wake::Audio(packet) => self.with_consumers(|to| to.audio(now, &packet)),
                    Wake::Api => {
                        if let Some(api) = &mut self.api {
                            api.service(now);
                        }
                    }
                    Wake::Whip(done) => {
                        (self.publish).handle_response(now, done.destination, done.id, done.result)
                    }
                    Wake::Timer => {}
                }
                self.hub.handle_timeout(now);
                let (local_addrs, stun, public_addr) =
                    (&self.local_addrs, &self.stun, self.public_addr);
                self.publish.handle_timeout(now, || {
                    ice::local_candidates(local_addrs, stun.reflexive(), public_addr)
                });
                self.stun.handle_timeout(now);
                self.check_host(now);
                self.session.tick(now);
                if let Some(api) = &mut self.api {
                    api.tick(now);
                }
                self.pick_layers(now);
                self.flush(now);
            }
            let now = Instant::now();
            self.session.stop_all(now);
            self.session.farewell_all("the robot is shutting down");
            self.drain_session();
            self.hub.disconnect_all(now);
            self.publish.shutdown();
            // Also hands the motor programs the final stop.
            self.flush(now);
            self.await_whip_goodbyes().await;
            tracing::info!("rtc loop stopped");
        });
        for camera in &self.media.cameras {
            camera.video.set_viewers(0);
        }
        self.media.audio.set_listeners(0);
    }

    fn next_deadline(&self) -> Instant {
        // Even with nothing scheduled, wake now and then so a stale clock can't stall us.
        let idle = Instant::now() + Duration::from_secs(1);
        [
            self.hub.next_timeout(),
            self.session.next_deadline(),
            self.stun.next_timeout(),
            self.api.as_ref().and_then(LocalApi::next_deadline),
            self.publish.next_timeout(),
        ]
        .into_iter()
        .flatten()
        .fold(idle, Instant::min)
    }

    /// Once a second: the SoC temperature for telemetry (a sysfs read, not worth
    /// a thread), and whether the local addresses changed (getifaddrs).
    fn check_host(&mut self, now: Instant) {
        if now >= self.next_host_check {
            self.next_host_check = now + Duration::from_secs(1);
            let addrs = net::candidate_addrs(self.local);
            if addrs != self.local_addrs {
                tracing::info!(old = ?self.local_addrs, new = ?addrs, "local addresses changed: asking STUN again");
                self.stun.refresh(now, &addrs);
                self.local_addrs = addrs;
            }
            self.session.set_cpu_temp(read_cpu_temp_c());
        }
    }

    fn command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Connect {
                sdp,
                secret,
                view_only,
                reply,
            } => {
                let candidates = ice::local_candidates(
                    &self.local_addrs,
                    self.stun.reflexive(),
                    self.public_addr,
                );
                let connected = self.hub.connect(now, &sdp, &candidates, secret, view_only);
                let _ = reply.try_send(connected);
            }
            Command::StunServers(servers) => self.stun.set_servers(now, servers),
            Command::Disconnect { peer, reply } => {
                let _ = reply.try_send(self.hub.disconnect(peer, now));
            }
            Command::Restart {
                peer,
                ufrag,
                sdp,
                reply,
            } => {
                let candidates = ice::local_candidates(
                    &self.local_addrs,
                    self.stun.reflexive(),
                    self.public_addr,
                );
                let restarted = self.hub.restart(now, peer, &ufrag, &sdp, &candidates);
                let _ = reply.try_send(restarted);
            }
            Command::Eject {
                peer,
                secret,
                reply,
            } => {
                let result = if !self.session.authorize(secret.as_deref()) {
                    Err(EjectError::Forbidden)
                } else if self.hub.contains(peer) {
                    self.session
                        .farewell(peer, "ejected by the operator", false);
                    self.drain_session();
                    self.hub.disconnect(peer, now);
                    tracing::info!(%peer, "ejected");
                    Ok(())
                } else {
                    Err(EjectError::NoSuchPeer)
                };
                let _ = reply.try_send(result);
            }
            Command::Status { reply } => {
                let _ = reply.try_send(self.status(now));
            }
            Command::Shutdown => {}
        }
    }

    /// Moves what the programs published and hub events into the session,
    /// session output onto data channels and to the programs, and every
    /// pending datagram and line onto its socket.
    fn flush(&mut self, now: Instant) {
        self.apply_api(now);
        while let Some(event) = self.hub.poll_event() {
            match event {
                HubEvent::Joined {
                    peer,
                    secret,
                    view_only,
                } => {
                    self.session
                        .peer_joined(now, peer, secret.as_deref(), view_only);
                    // Its layer was decided before its data channel opened.
                    for (n, camera) in self.media.cameras.iter().enumerate() {
                        if let Some(shown) = camera.layers.viewer(peer) {
                            self.hub.send_text(peer, &layer_message(n, shown));
                        }
                    }
                }
                HubEvent::Left(peer) => self.session.peer_left(now, peer),
                HubEvent::Text { peer, text } => self.session.message(now, peer, &text),
                HubEvent::KeyframeWanted {
                    peer,
                    camera,
                    reason,
                } => {
                    if let Some(camera) = self.media.cameras.get_mut(camera) {
                        let layer = camera.layers.keyframe_wanted(now, peer);
                        request_keyframe(camera, layer, reason);
                    }
                }
                // Only the operator talks through the robot's speaker.
                HubEvent::Audio { peer, data } => {
                    if self.session.operator() == Some(peer) {
                        let _ = self.media.talkback.try_send(data);
                    }
                }
                // The hub passes on the operator's frames only.
                HubEvent::OperatorVideo(frame) => {
                    self.with_consumers(|to| to.video(now, Feed::Operator, Layer::Main, &frame))
                }
            }
            self.drain_session();
        }
        self.drain_session();
        self.hub.set_operator(self.session.operator());
        if self.with_consumers(|to| to.take_keyframe_request(Feed::Operator)) {
            self.hub
                .request_operator_keyframe(now, KeyframeReason::NewPeer);
        }
        while let Some((server, request)) = self.stun.poll_transmit() {
            // From the wildcard address: the kernel picks the source the route to the server needs.
            if let Err(e) = self.socket.get_ref().send(self.local, server, &request) {
                tracing::debug!("STUN request to {server}: {e}");
            }
        }
        while let Some(request) = self.publish.poll_request() {
            self.whip.start(request);
        }
        let (hub, publish) = (&mut self.hub, &mut self.publish);
        let transmits = std::iter::from_fn(|| hub.poll_transmit());
        for t in transmits.chain(std::iter::from_fn(|| publish.poll_transmit())) {
            if let Err(e) = self
                .socket
                .get_ref()
                .send(t.source, t.destination, &t.contents)
            {
                // A full socket buffer drops the datagram: for live video, late is worse than lost.
                tracing::debug!("udp send to {}: {e}", t.destination);
            }
        }
        // Each camera's pipeline idles while none of its consumers watches.
        for n in 0..self.media.cameras.len() {
            let (viewers, wanted) = self
                .with_consumers(|to| (to.viewers(n), to.take_keyframe_request(Feed::Camera(n))));
            let video = &self.media.cameras[n].video;
            video.set_viewers(viewers);
            if wanted {
                video.request_keyframe(KeyframeReason::NewPeer);
            }
        }
        let listeners = self.with_consumers(|to| to.listeners());
        self.media.audio.set_listeners(listeners);
        self.session
            .set_recording(self.media.recordings.is_recording());
        if let Some(api) = &mut self.api {
            api.flush();
        }
    }

    /// The DELETEs of a shutdown, given a moment so the SFU frees the
    /// resources at once rather than after its own timeout.
    async fn await_whip_goodbyes(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.whip.in_flight() > 0 {
            let done = async { self.whip.results().recv().await.ok() };
            let late = async {
                Timer::at(deadline).await;
                None
            };
            if done.or(late).await.is_none() {
                break;
            }
        }
    }

    fn drain_session(&mut self) {
        while let Some(out) = self.session.poll_output() {
            match out {
                SessionOutput::Send { peer, text } => {
                    self.hub.send_text(peer, &text);
                }
                SessionOutput::Event(event) => {
                    if let Some(api) = &mut self.api {
                        api.publish(&event);
                    }
                }
                SessionOutput::Record { peer, on } => {
                    if let Err(reason) = self.media.recordings.set_recording(on) {
                        tracing::warn!("recording asked for by peer {peer}: {reason}");
                        let reason = reason.to_string();
                        self.hub.send_text(peer, &Outbound::error(reason).to_json());
                    }
                }
                SessionOutput::Camera { peer, camera, on } => {
                    if !self.hub.set_camera(peer, camera, on) {
                        let name = self.media.cameras.get(camera).map(|c| c.name.as_str());
                        let reason = format!(
                            "camera: your offer has no video m-line for {:?} (camera {})",
                            name.unwrap_or_default(),
                            camera + 1
                        );
                        self.hub.send_text(peer, &Outbound::error(reason).to_json());
                    }
                }
            }
        }
    }

    /// What the programs on the local API asked of the session.
    fn apply_api(&mut self, now: Instant) {
        let Some(api) = &mut self.api else { return };
        while let Some(output) = api.poll_output() {
            match output {
                ApiOutput::Reading { name, value } => self.session.set_reading(name, value),
                ApiOutput::Custom {
                    client,
                    to,
                    name,
                    value,
                } => {
                    let reached = self.session.send_custom(to, &name, &value);
                    if reached == 0 && to == Audience::Operator {
                        api.reply_error(client, "custom: no operator is connected");
                    }
                }
                ApiOutput::MotorLink { state, why } => self.session.motor_link(now, state, &why),
            }
        }
    }

    fn status(&self, now: Instant) -> LoopStatus {
        let session = self.session.status();
        // Each peer's transport state joined with its role from the session.
        let peers = (self.hub.status().into_iter())
            .map(|mut link| {
                let role = session.peers.iter().find(|s| s.id == link.id);
                // The hub keeps every video m-line the browser offered; one
                // past the last camera carries nothing.
                for line in link.receiving.iter_mut().skip(self.media.cameras.len()) {
                    *line = false;
                }
                let layers = (self.media.cameras.iter())
                    .map(|c| c.layers.viewer(link.id))
                    .collect();
                status::Peer {
                    role: role.map(|s| s.role),
                    layers,
                    link,
                }
            })
            .collect();
        let cameras: Vec<status::Camera> = (self.media.cameras.iter().enumerate())
            .map(|(n, camera)| camera_status(camera, self.hub.video_totals(n)))
            .collect();
        LoopStatus {
            uptime_s: now.duration_since(self.started).as_secs_f64(),
            operator: session.operator,
            motors: session.motors,
            servos: session.servos.to_map(),
            drive_backend: session.backend,
            drive_link: session.link,
            rejected_messages: session.rejected_messages,
            messages_received: session.messages_received,
            rejections: status::counts_by_name(&session.rejections),
            deadman_trips: session.deadman_trips,
            readings: session.readings.clone(),
            api: self.api.as_ref().map(LocalApi::status),
            peers,
            ice: status::Ice {
                public_addr: self.public_addr,
                stun_mapped: self.stun.reflexive().map(|r| r.mapped),
            },
            video: cameras.first().cloned(),
            cameras,
            operator_camera: self.hub.operator_camera_status(now),
            audio: self.media.audio.status(),
            recording: self.media.recordings.status(),
            display: self.media.display.as_deref().map(Display::status),
            publish: self.publish.status(),
        }
    }
}

mod fanout;
pub mod handle;
mod layers;
pub use handle::{Command, EjectError, LoopHandle};
use layers::{layer_message, layers_status, request_keyframe};

/// One camera in `/api/status`: what it captures, how it encodes, its
/// counters, and how many of its frames went to peers.
fn camera_status(camera: &CameraLinks, totals: VideoTotals) -> status::Camera {
    let source = &camera.video.source;
    status::Camera {
        name: camera.name.clone(),
        source: source.name.clone(),
        width: source.width,
        height: source.height,
        fps: source.fps,
        encoder: camera.video.encoder,
        bitrate: camera.layers.bitrate(Layer::Main),
        layers: layers_status(camera),
        frames_sent_to_peers: totals.frames_sent,
        frames_skipped_for_peers: totals.frames_skipped,
        counters: camera.video.counters(),
    }
}

/// The next encoded frame of any camera's layers, with the camera's index.
/// A pipeline that is gone (or never started) just stops waking the loop.
async fn next_frame(cameras: &[CameraLinks]) -> (usize, Layer, EncodedFrame) {
    let mut waits = Vec::new();
    for (camera, links) in cameras.iter().enumerate() {
        waits.push((camera, Layer::Main, Some(Box::pin(links.frames.recv()))));
        if let Some(low) = &links.low_frames {
            waits.push((camera, Layer::Low, Some(Box::pin(low.recv()))));
        }
    }
    std::future::poll_fn(|cx| {
        for (camera, layer, wait) in waits.iter_mut() {
            let Some(recv) = wait else { continue };
            match std::future::Future::poll(recv.as_mut(), cx) {
                std::task::Poll::Ready(Ok(frame)) => {
                    return std::task::Poll::Ready((*camera, *layer, frame))
                }
                std::task::Poll::Ready(Err(_)) => *wait = None,
                std::task::Poll::Pending => {}
            }
        }
        std::task::Poll::Pending
    })
    .await
}
