//! The browser stand-in: a str0m client on a UDP socket that offers video
//! m-lines (one per camera wanted), decodes them, and talks on a data channel.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use openh264::formats::YUVSource;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::{request, Luma, Server};

/// A G.711 μ-law byte as a linear sample.
pub fn mulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = u32::from((u >> 4) & 7);
    let mantissa = u32::from(u & 15);
    let magnitude = ((((mantissa << 3) + 0x84) << exponent) - 0x84) as i16;
    if u & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// The local address a socket would send from to reach `remote`.
fn local_ip_towards(remote: SocketAddr) -> String {
    let probe = UdpSocket::bind("0.0.0.0:0").unwrap();
    probe.connect(remote).unwrap();
    probe.local_addr().unwrap().ip().to_string()
}

/// A browser stand-in: receives video, decodes it, talks on a data channel.
pub struct Peer {
    pub rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    channel: Option<ChannelId>,
    decoder: openh264::decoder::Decoder,
    pub frames_decoded: usize,
    pub last_size: Option<(usize, usize)>,
    pub texts: Vec<String>,
    pub connected: bool,
    audio_mid: Option<str0m::media::Mid>,
    /// μ-law packets received, and the loudest sample decoded from them.
    pub audio_packets: usize,
    pub audio_peak: u16,
    /// The newest received audio, decoded (the last 2 s at most).
    pub audio_samples: std::collections::VecDeque<i16>,
    audio_sent: u64,
    /// The newest decoded picture's luma.
    pub last_luma: Option<Luma>,
    /// The video m-lines after the first (which the fields above describe), in offer order.
    pub more_tracks: Vec<Track>,
    /// The operator-camera m-line (the robot's rule: a later video m-line
    /// this peer sends on), if offered; what arrives on it is in `more_tracks`.
    operator_camera: Option<str0m::media::Mid>,
    /// PLIs and FIRs the robot sent for the operator camera.
    pub keyframe_requests: usize,
}

/// A further video m-line of a [`Peer`], decoded on its own.
pub struct Track {
    mid: str0m::media::Mid,
    decoder: openh264::decoder::Decoder,
    pub frames_decoded: usize,
    pub last_size: Option<(usize, usize)>,
    /// The newest decoded picture's luma.
    pub last_luma: Option<Luma>,
}

impl Peer {
    /// Builds an offer (recvonly video unless `video` is false, plus a `default` channel).
    pub fn offer(video: bool) -> (Peer, String, SdpPendingOffer) {
        Peer::offer_from("127.0.0.1", video)
    }

    /// Like [`offer`](Self::offer) from a given local address.
    pub fn offer_from(ip: &str, video: bool) -> (Peer, String, SdpPendingOffer) {
        Peer::offer_media(ip, video, None)
    }

    /// An offer with video (recvonly) if asked, and audio in the given direction.
    pub fn offer_media(
        ip: &str,
        video: bool,
        audio: Option<Direction>,
    ) -> (Peer, String, SdpPendingOffer) {
        Peer::offer_tracks(ip, usize::from(video), audio)
    }

    /// An offer with `videos` recvonly video m-lines, and audio in the given direction.
    pub fn offer_tracks(
        ip: &str,
        videos: usize,
        audio: Option<Direction>,
    ) -> (Peer, String, SdpPendingOffer) {
        Peer::offer_lines(ip, &vec![Direction::RecvOnly; videos], audio)
    }

    /// An offer with video m-lines in these directions, and audio in the given one.
    pub fn offer_lines(
        ip: &str,
        videos: &[Direction],
        audio: Option<Direction>,
    ) -> (Peer, String, SdpPendingOffer) {
        let socket = UdpSocket::bind((ip, 0)).unwrap();
        let local = socket.local_addr().unwrap();
        // Browsers offer PCMU among their audio codecs; str0m needs asking.
        let mut rtc = Rtc::builder()
            .enable_pcmu(true, false)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let video_mids: Vec<_> = videos
            .iter()
            .map(|&dir| api.add_media(MediaKind::Video, dir, None, None, None))
            .collect();
        let operator_camera = video_mids
            .iter()
            .zip(videos)
            .skip(1)
            .find(|(_, dir)| matches!(dir, Direction::SendRecv | Direction::SendOnly))
            .map(|(mid, _)| *mid);
        let more_tracks = video_mids
            .iter()
            .skip(1)
            .map(|&mid| Track {
                mid,
                decoder: openh264::decoder::Decoder::new().unwrap(),
                frames_decoded: 0,
                last_size: None,
                last_luma: None,
            })
            .collect();
        let audio_mid = audio.map(|dir| api.add_media(MediaKind::Audio, dir, None, None, None));
        api.add_channel("default".into());
        let (offer, pending) = api.apply().unwrap();
        let peer = Peer {
            rtc,
            socket,
            local,
            channel: None,
            decoder: openh264::decoder::Decoder::new().unwrap(),
            frames_decoded: 0,
            last_size: None,
            texts: vec![],
            connected: false,
            audio_mid,
            audio_packets: 0,
            audio_peak: 0,
            audio_samples: Default::default(),
            audio_sent: 0,
            last_luma: None,
            more_tracks,
            operator_camera,
            keyframe_requests: 0,
        };
        (peer, offer.to_sdp_string(), pending)
    }

    /// Connects through RTCBot-style `POST /connect` and waits for the data channel.
    pub fn connect(server: &Server) -> Peer {
        Peer::connect_at(server, "/connect")
    }

    pub fn connect_at(server: &Server, path: &str) -> Peer {
        Peer::connect_with(server, path, true, &[])
    }

    /// Connects with video, sending `headers` (e.g. `Authorization`) with the offer.
    pub fn connect_sending(server: &Server, headers: &[(&str, &str)]) -> Peer {
        Peer::connect_with(server, "/connect", true, headers)
    }

    /// A remote control without video (the robot encodes nothing for it).
    pub fn connect_control_only(server: &Server) -> Peer {
        Peer::connect_with(server, "/connect", false, &[])
    }

    /// Connects offering `videos` video m-lines (one per camera wanted).
    pub fn connect_videos(server: &Server, videos: usize) -> Peer {
        let lines = vec![Direction::RecvOnly; videos];
        Peer::connect_tracks(server, "/connect", &lines, &[])
    }

    /// Connects offering the first camera and the operator-camera m-line
    /// (sendrecv: it sends while operating, receives while watching).
    pub fn connect_operator_camera(server: &Server) -> Peer {
        let lines = [Direction::RecvOnly, Direction::SendRecv];
        Peer::connect_tracks(server, "/connect", &lines, &[])
    }

    fn connect_with(server: &Server, path: &str, video: bool, headers: &[(&str, &str)]) -> Peer {
        let lines = vec![Direction::RecvOnly; usize::from(video)];
        Peer::connect_tracks(server, path, &lines, headers)
    }

    fn connect_tracks(
        server: &Server,
        path: &str,
        videos: &[Direction],
        headers: &[(&str, &str)],
    ) -> Peer {
        let ip = local_ip_towards(server.rtc);
        let (mut peer, sdp, pending) = Peer::offer_lines(&ip, videos, None);
        let body = serde_json::json!({ "type": "offer", "sdp": sdp }).to_string();
        let mut headers = headers.to_vec();
        headers.push(("Content-Type", "application/json"));
        let (code, answer) = request(server.http, "POST", path, &headers, body.as_bytes()).unwrap();
        assert_eq!(code, 200, "{answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["type"], "answer");
        peer.accept(pending, answer["sdp"].as_str().unwrap());
        assert!(
            peer.run_until(Duration::from_secs(10), |p| p.channel.is_some()),
            "data channel never opened"
        );
        peer
    }

    /// Connects with video and two-way audio (listen and push-to-talk) and
    /// waits until the robot says which role this peer has.
    pub fn connect_with_audio(server: &Server) -> Peer {
        let ip = local_ip_towards(server.rtc);
        let (mut peer, sdp, pending) = Peer::offer_media(&ip, true, Some(Direction::SendRecv));
        let body = serde_json::json!({ "type": "offer", "sdp": sdp }).to_string();
        let json = [("Content-Type", "application/json")];
        let (code, answer) =
            request(server.http, "POST", "/connect", &json, body.as_bytes()).unwrap();
        assert_eq!(code, 200, "{answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let answer_sdp = answer["sdp"].as_str().unwrap();
        assert!(answer_sdp.contains("PCMU/8000"), "{answer_sdp}");
        peer.accept(pending, answer_sdp);
        assert!(peer.run_until(Duration::from_secs(10), |p| p
            .last_message("role")
            .is_some()));
        peer
    }

    pub fn accept(&mut self, pending: SdpPendingOffer, answer_sdp: &str) {
        let answer = SdpAnswer::from_sdp_string(answer_sdp).unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    /// Sends 20 ms of a loud square wave as PCMU (push-to-talk).
    pub fn send_audio(&mut self) {
        let mid = self.audio_mid.expect("offered audio");
        // 0x80 / 0x00 are μ-law's loudest positive and negative codes.
        let samples: Vec<u8> = (0..160)
            .map(|i| if i % 20 < 10 { 0x80 } else { 0x00 })
            .collect();
        let time =
            str0m::media::MediaTime::new(self.audio_sent * 160, str0m::media::Frequency::EIGHT_KHZ);
        self.audio_sent += 1;
        self.write(mid, Codec::PCMU, time, samples);
    }

    /// Sends one Annex-B access unit on the operator-camera m-line.
    pub fn send_video(&mut self, access_unit: &[u8], rtp_time: u64) {
        let mid = self.operator_camera.expect("offered an operator camera");
        let time = str0m::media::MediaTime::from_90khz(rtp_time);
        self.write(mid, Codec::H264, time, access_unit.to_vec());
    }

    /// Writes one frame on `mid` with the negotiated payload type of `codec`.
    fn write(&mut self, mid: Mid, codec: Codec, time: str0m::media::MediaTime, data: Vec<u8>) {
        let writer = self.rtc.writer(mid).expect("the m-line is sendable");
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .unwrap_or_else(|| panic!("{codec} negotiated"))
            .pt();
        writer.write(pt, Instant::now(), time, data).unwrap();
    }

    /// What arrived on the operator-camera m-line.
    pub fn operator_track(&self) -> &Track {
        let mid = self.operator_camera.expect("offered an operator camera");
        let track = self.more_tracks.iter().find(|t| t.mid == mid);
        track.expect("a later m-line")
    }

    /// Sends a text message on the data channel.
    pub fn send(&mut self, text: &str) {
        assert!(self.try_send(text), "channel closed or its buffer full");
    }

    /// Sends a text message if the data channel is still open; false if the
    /// robot has closed it (or its buffer is full).
    pub fn try_send(&mut self, text: &str) -> bool {
        let cid = self.channel.expect("channel opened");
        self.rtc
            .channel(cid)
            .is_some_and(|mut c| c.write(false, text.as_bytes()).unwrap_or(false))
    }

    /// Runs the client until `done` holds or `timeout` passes; returns `done`'s last value.
    pub fn run_until(&mut self, timeout: Duration, mut done: impl FnMut(&Peer) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 2048];
        loop {
            let wake = self.poll();
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = wake
                .min(deadline)
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            self.socket
                .set_read_timeout(Some(wait.min(Duration::from_millis(20))))
                .unwrap();
            let input_time = Instant::now();
            match self.socket.recv_from(&mut buf) {
                Ok((n, source)) => {
                    let contents = buf[..n].try_into().unwrap();
                    let receive = Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: self.local,
                        contents,
                    };
                    self.rtc
                        .handle_input(Input::Receive(input_time, receive))
                        .unwrap();
                }
                Err(_) => self
                    .rtc
                    .handle_input(Input::Timeout(Instant::now()))
                    .unwrap(),
            }
        }
    }

    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(duration, |_| false);
    }

    /// Pings with `t` and waits for the matching pong.
    pub fn ping(&mut self, t: f64) -> bool {
        self.send(&serde_json::json!({ "type": "ping", "t": t }).to_string());
        let want = serde_json::json!({ "type": "pong", "t": t });
        self.run_until(Duration::from_secs(5), |p| {
            p.texts
                .iter()
                .any(|m| serde_json::from_str::<serde_json::Value>(m).ok().as_ref() == Some(&want))
        })
    }

    /// Last message of the given `type`, parsed.
    pub fn last_message(&self, kind: &str) -> Option<serde_json::Value> {
        self.texts
            .iter()
            .rev()
            .filter_map(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .find(|v| v["type"] == kind)
    }

    fn poll(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(t) => return t,
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => self.connected = true,
            Event::KeyframeRequest(r) if Some(r.mid) == self.operator_camera => {
                self.keyframe_requests += 1
            }
            Event::ChannelOpen(id, _) => self.channel = Some(id),
            Event::ChannelData(d) => self
                .texts
                .push(String::from_utf8_lossy(&d.data).into_owned()),
            Event::MediaData(m) if Some(m.mid) == self.audio_mid => {
                self.audio_packets += 1;
                for sample in m.data.iter().map(|b| mulaw_decode(*b)) {
                    self.audio_peak = self.audio_peak.max(sample.unsigned_abs());
                    if self.audio_samples.len() == 16_000 {
                        self.audio_samples.pop_front();
                    }
                    self.audio_samples.push_back(sample);
                }
            }
            Event::MediaData(m) if self.more_tracks.iter().any(|t| t.mid == m.mid) => {
                let track = self.more_tracks.iter_mut().find(|t| t.mid == m.mid);
                let track = track.expect("just found");
                if let Ok(Some(yuv)) = track.decoder.decode(&m.data) {
                    track.frames_decoded += 1;
                    track.last_size = Some(yuv.dimensions());
                    track.last_luma = Some(luma_of(&yuv));
                }
            }
            Event::MediaData(m) => {
                let damaged = match self.decoder.decode(&m.data) {
                    Ok(Some(yuv)) => {
                        self.frames_decoded += 1;
                        self.last_size = Some(yuv.dimensions());
                        self.last_luma = Some(luma_of(&yuv));
                        false
                    }
                    Ok(None) => false,
                    Err(_) => true,
                };
                // Like a browser: a frame after lost packets, or one that
                // does not decode, asks for a keyframe (PLI).
                if damaged || !m.contiguous {
                    if let Some(mut writer) = self.rtc.writer(m.mid) {
                        let _ = writer.request_keyframe(None, KeyframeRequestKind::Pli);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A decoded picture's luma plane, rows packed.
fn luma_of(yuv: &openh264::decoder::DecodedYUV<'_>) -> Luma {
    let (width, height) = yuv.dimensions();
    let stride = yuv.strides().0;
    let y = yuv.y();
    let pixels = (0..height)
        .flat_map(|row| &y[row * stride..row * stride + width])
        .copied()
        .collect();
    Luma {
        width,
        height,
        pixels,
    }
}
