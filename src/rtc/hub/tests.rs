//! The hub against a real str0m client, wired back to back in memory: no
//! sockets, and time is a value we advance.

use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::peer::DATA_ONLY_SILENCE;
use super::*;
use crate::media::encoder::openh264::OpenH264Encoder;
use crate::media::pipeline::KeyframeReason;
use crate::media::source::pattern::TestPattern;
use crate::media::{VideoEncoder, VideoSource};

const ROBOT: &str = "127.0.0.1:50000";
const BROWSER: &str = "127.0.0.1:40000";

struct Client {
    rtc: Rtc,
    events: Vec<Event>,
    /// The offer's video m-lines, in order.
    video_mids: Vec<str0m::media::Mid>,
}

fn offer(video: bool) -> (Client, String, str0m::change::SdpPendingOffer) {
    offer_videos(usize::from(video))
}

/// An offer with `videos` recvonly video m-lines and a data channel.
fn offer_videos(videos: usize) -> (Client, String, str0m::change::SdpPendingOffer) {
    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host(BROWSER.parse().unwrap(), "udp").unwrap());
    let mut api = rtc.sdp_api();
    let video_mids = (0..videos)
        .map(|_| api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None))
        .collect();
    api.add_channel("default".into());
    let (offer, pending) = api.apply().unwrap();
    (
        Client {
            rtc,
            events: vec![],
            video_mids,
        },
        offer.to_sdp_string(),
        pending,
    )
}

fn connect(hub: &mut Hub, now: Instant) -> (PeerId, Client) {
    connect_videos(hub, now, 1)
}

fn connect_videos(hub: &mut Hub, now: Instant, videos: usize) -> (PeerId, Client) {
    let (mut client, sdp, pending) = offer_videos(videos);
    let robot = Candidate::host(ROBOT.parse().unwrap(), "udp").unwrap();
    let (id, answer) = hub
        .connect(
            now,
            &sdp,
            std::slice::from_ref(&robot),
            Some("s3cret".into()),
            false,
        )
        .unwrap();
    client
        .rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();
    (id, client)
}

/// Moves datagrams both ways until both sides are quiet at `now`.
fn pump(hub: &mut Hub, client: &mut Client, now: Instant) {
    pump_dropping(hub, client, now, |_| false);
}

/// [`pump`], dropping the hub's datagrams for which `lost` says so.
fn pump_dropping(
    hub: &mut Hub,
    client: &mut Client,
    now: Instant,
    mut lost: impl FnMut(&str0m::net::Transmit) -> bool,
) {
    loop {
        let mut moved = false;
        while let Ok(out) = client.rtc.poll_output() {
            match out {
                Output::Transmit(t) => {
                    moved = true;
                    hub.receive(now, t.source, t.destination, &t.contents);
                }
                Output::Event(e) => client.events.push(e),
                Output::Timeout(_) => break,
            }
        }
        while let Some(t) = hub.poll_transmit() {
            moved = true;
            if !lost(&t) {
                to_client(client, now, &t);
            }
        }
        if !moved {
            return;
        }
    }
}

/// Advances time in 5 ms steps until `done` or `limit` elapsed; returns the final time.
fn run_until(
    hub: &mut Hub,
    client: &mut Client,
    mut now: Instant,
    limit: Duration,
    mut done: impl FnMut(&mut Hub, &Client) -> bool,
) -> Instant {
    let end = now + limit;
    while now < end {
        pump(hub, client, now);
        if done(hub, client) {
            return now;
        }
        now += Duration::from_millis(5);
        client.rtc.handle_input(Input::Timeout(now)).unwrap();
        hub.handle_timeout(now);
    }
    panic!("condition not reached within {limit:?}");
}

fn drain_events(hub: &mut Hub) -> Vec<HubEvent> {
    std::iter::from_fn(|| hub.poll_event()).collect()
}

#[test]
fn client_connects_gets_keyframe_first_and_decodes_video_and_talks_on_the_channel() {
    let mut hub = Hub::new(HubConfig::default());
    let t0 = Instant::now();
    let (id, mut client) = connect(&mut hub, t0);
    let now = run_until(&mut hub, &mut client, t0, Duration::from_secs(5), |_, c| {
        c.events.iter().any(|e| matches!(e, Event::ChannelOpen(..)))
    });
    assert_eq!((hub.viewers(0), hub.viewers(1)), (1, 0));
    let events = drain_events(&mut hub);
    assert!(
        events.contains(&HubEvent::KeyframeWanted {
            peer: id,
            camera: 0,
            reason: KeyframeReason::NewPeer
        }),
        "{events:?}"
    );
    let cid = client
        .events
        .iter()
        .find_map(|e| match e {
            Event::ChannelOpen(cid, _) => Some(*cid),
            _ => None,
        })
        .unwrap();
    assert!(events.contains(&HubEvent::Joined {
        peer: id,
        secret: Some("s3cret".into()),
        view_only: false
    }));

    // Frames: first a P-frame (must be held back), then IDRs and P-frames.
    let mut source = TestPattern::new(320, 240, 30).unwrap();
    let mut encoder = OpenH264Encoder::new(320, 240, 30, 400_000).unwrap();
    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    let mut decoded = 0;
    let mut decode = |client: &mut Client| {
        for e in client.events.drain(..) {
            if let Event::MediaData(m) = e {
                if let Some(yuv) = decoder.decode(&m.data).unwrap() {
                    use openh264::formats::YUVSource;
                    assert_eq!(yuv.dimensions(), (320, 240));
                    decoded += 1;
                }
            }
        }
    };
    let mut now = now;
    for n in 0..20u64 {
        let frame = source.next_frame().unwrap();
        let au = encoder.encode(&frame, n == 3).unwrap().unwrap();
        let keyframe = crate::media::h264::annexb::is_idr(&au);
        let encoded = EncodedFrame {
            data: au.into(),
            captured: frame.captured,
            rtp_time: n * 3000,
            keyframe,
        };
        hub.send_video(0, &encoded);
        now += Duration::from_millis(33);
        client.rtc.handle_input(Input::Timeout(now)).unwrap();
        hub.handle_timeout(now);
        pump(&mut hub, &mut client, now);
        decode(&mut client);
    }
    // Let the pacer and the client's depacketizer catch up.
    for _ in 0..100 {
        now += Duration::from_millis(10);
        client.rtc.handle_input(Input::Timeout(now)).unwrap();
        hub.handle_timeout(now);
        pump(&mut hub, &mut client, now);
        decode(&mut client);
    }
    // The first encode is an IDR, so no frame is held back; the client
    // releases a frame only once the next one starts, so the last may lag.
    assert!(decoded >= 19, "decoded {decoded} of 20");
    assert_eq!(hub.status()[0].state, "connected");

    // The data channel works both ways.
    client
        .rtc
        .channel(cid)
        .unwrap()
        .write(false, br#"{"type":"ping","t":1}"#)
        .unwrap();
    pump(&mut hub, &mut client, now);
    assert_eq!(
        drain_events(&mut hub).last(),
        Some(&HubEvent::Text {
            peer: id,
            text: r#"{"type":"ping","t":1}"#.into()
        })
    );
    assert!(hub.send_text(id, "hello"));
    pump(&mut hub, &mut client, now);
    assert!(client
        .events
        .iter()
        .any(|e| matches!(e, Event::ChannelData(d) if d.data == b"hello")));

    // A clean close is noticed at once, not after a timeout.
    assert!(hub.disconnect(id, now));
    assert!(hub.is_empty());
    assert!(drain_events(&mut hub).contains(&HubEvent::Left(id)));
}

/// A hub with an 800 ms silence timeout and one peer, run until it is
/// connected; also when that was.
fn connected_with_short_silence() -> (Hub, PeerId, Instant) {
    let mut hub = Hub::new(HubConfig {
        silence_timeout: Duration::from_millis(800),
        ..HubConfig::default()
    });
    let t0 = Instant::now();
    let (id, mut client) = connect(&mut hub, t0);
    let now = run_until(&mut hub, &mut client, t0, Duration::from_secs(5), |h, _| {
        h.status().first().is_some_and(|p| p.state == "connected")
    });
    (hub, id, now)
}

/// The peers fall silent at `from`: timeouts every 50 ms and no datagrams
/// until the hub has reaped them all (within `limit`). How long that took.
fn time_to_reap(hub: &mut Hub, from: Instant, limit: Duration) -> Duration {
    let mut t = from;
    while !hub.is_empty() {
        t += Duration::from_millis(50);
        hub.handle_timeout(t);
        assert!(t - from < limit, "not reaped in time");
    }
    t - from
}

#[test]
fn peer_that_goes_silent_is_reaped_and_reported_left() {
    let (mut hub, id, now) = connected_with_short_silence();
    drain_events(&mut hub);
    // The browser vanishes: the hub keeps getting timeouts but no datagrams.
    let took = time_to_reap(&mut hub, now, Duration::from_secs(2));
    assert!(took >= Duration::from_millis(800));
    assert_eq!(drain_events(&mut hub), vec![HubEvent::Left(id)]);
    assert_eq!(hub.next_timeout(), None);
}

#[test]
fn the_robot_sends_its_first_ice_check_as_it_answers_without_congestion_control() {
    for congestion_control in [false, true] {
        let mut hub = Hub::new(HubConfig {
            congestion_control,
            ..HubConfig::default()
        });
        let now = Instant::now();
        connect(&mut hub, now);
        let check = hub.poll_transmit();
        assert!(
            check.is_some_and(|t| t.destination == BROWSER.parse().unwrap()),
            "congestion_control = {congestion_control}: no ICE check with the answer"
        );
    }
}

#[test]
fn bad_offers_are_refused_with_reasons() {
    let mut hub = Hub::new(HubConfig {
        max_peers: 1,
        ..HubConfig::default()
    });
    let robot = Candidate::host(ROBOT.parse().unwrap(), "udp").unwrap();
    let now = Instant::now();
    let err = hub
        .connect(
            now,
            "v=0 garbage",
            std::slice::from_ref(&robot),
            None,
            false,
        )
        .unwrap_err();
    assert!(matches!(err, ConnectError::BadSdp(_)), "{err:?}");

    let (_, sdp, _) = offer(true);
    let vp8_only = sdp.replace("H264/90000", "VP8/90000");
    assert_eq!(
        hub.connect(now, &vp8_only, std::slice::from_ref(&robot), None, false)
            .unwrap_err(),
        ConnectError::NoUsableVideoCodec
    );
    assert_eq!(
        hub.connect(now, &sdp, &[], None, false).unwrap_err(),
        ConnectError::NoCandidates
    );

    let (_, data_only, _) = offer(false);
    hub.connect(now, &data_only, std::slice::from_ref(&robot), None, false)
        .unwrap();
    assert_eq!(
        hub.connect(now, &sdp, std::slice::from_ref(&robot), None, false)
            .unwrap_err(),
        ConnectError::TooManyPeers(1)
    );
    assert_eq!(
        hub.viewers(0),
        0,
        "a data-channel-only peer is not a viewer"
    );
}

#[test]
fn h264_check_looks_only_at_video_sections() {
    let ok = "v=0\r\nm=video 9 UDP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\n";
    assert!(video_sections_have_h264(ok));
    assert!(!video_sections_have_h264(
        &ok.replace("packetization-mode=1", "packetization-mode=0")
    ));
    assert!(video_sections_have_h264(
        "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    ));
}

/// Found by `fuzz/run.sh` (sdp_offer): an offer whose only media line is
/// garbled got an answer without media, so a peer that could never connect.
/// A fresh hub refuses `offer` with a reason containing `reason`, and keeps no peer.
fn assert_refused(offer: &str, reason: &str) {
    let mut hub = Hub::new(HubConfig::default());
    let robot = Candidate::host(ROBOT.parse().unwrap(), "udp").unwrap();
    let result = hub.connect(Instant::now(), offer, &[robot], None, false);
    assert!(
        matches!(&result, Err(ConnectError::Rejected(e)) if e.contains(reason)),
        "{result:?}"
    );
    assert!(hub.is_empty());
}

#[test]
fn an_offer_without_a_usable_media_section_is_rejected() {
    let offer = concat!(
        "v=0\r\n",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n",
        "s=-\r\n",
        "t=0 0\r\n",
        "a=group:BUNDLE 2\r\n",
        "a=extmap-allow-mixed\r\n",
        "a=msid-semantic: WMS\r\n",
        "m=applicati-on ) UDP/DTLS/SCTP webrtc-datachannel\r\n",
        "c=IN IP4 0.0.0.0\r\n",
        "a=candidate:1109849234 1 udp 2a=rtpmap:122260223 192.168.1.50 40000 typ host generation 0 network-id 1\r\n",
        "a=ice-ufrag:q9Xr\r\n",
        "a=ice-pwd:5yH1z8n2t3LrQ0pWm4dKsV7b\r\n",
        "a=ice-options:trickle\r\n",
        "a=fingerprint:sha-255 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC\r\n",
        "a=setup:actpass\r\n",
        "a=mid:2\r\n",
        "a=sctp-port:5000\r\n",
        "a=max-message-size:262144\r\n",
    );
    assert_refused(offer, "no media section");
}

#[test]
fn an_offer_whose_first_media_section_is_unreadable_is_rejected() {
    // Found by fuzzing: str0m skips an m-line it cannot read, and puts the
    // answer's candidates only in the section of the offer's first m-line.
    let offer = concat!(
        "v=0\r\n",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n",
        "s=-\r\n",
        "t=0 0\r\n",
        "a=group:BUNDLE 0 1\r\n",
        "m=viod e9 UDP/TLS/RTP/SAVPF 102\r\n",
        "c=IN IP4 0.0.0.0\r\n",
        "a=ice-ufrag:q9Xr\r\n",
        "a=ice-pwd:5yH1z8n2t3LrQ0pWm4dKsV7b\r\n",
        "a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC\r\n",
        "a=setup:actpass\r\n",
        "a=mid:0\r\n",
        "a=recvonly\r\n",
        "a=rtcp-mux\r\n",
        "a=rtpmap:102 H264/90000\r\n",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
        "c=IN IP4 0.0.0.0\r\n",
        "a=ice-ufrag:q9Xr\r\n",
        "a=ice-pwd:5yH1z8n2t3LrQ0pWm4dKsV7b\r\n",
        "a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC\r\n",
        "a=setup:actpass\r\n",
        "a=mid:1\r\n",
        "a=sctp-port:5000\r\n",
        "a=max-message-size:262144\r\n",
    );
    assert_refused(offer, "first media section is unreadable");
}

/// Encoded pattern frames of one size, every one an IDR (so none is held back).
pub(crate) fn idr_frames(width: u32, height: u32, count: u64) -> Vec<EncodedFrame> {
    let mut source = TestPattern::new(width, height, 30).unwrap();
    let mut encoder = OpenH264Encoder::new(width, height, 30, 400_000).unwrap();
    (0..count)
        .map(|n| {
            let frame = source.next_frame().unwrap();
            let au = encoder.encode(&frame, true).unwrap().unwrap();
            EncodedFrame {
                data: au.into(),
                captured: frame.captured,
                rtp_time: n * 3000,
                keyframe: true,
            }
        })
        .collect()
}

#[test]
fn each_video_m_line_carries_the_next_camera() {
    let mut hub = Hub::new(HubConfig::default());
    let t0 = Instant::now();
    let (id, mut client) = connect_videos(&mut hub, t0, 2);
    let mut now = run_until(&mut hub, &mut client, t0, Duration::from_secs(5), |_, c| {
        c.events.iter().any(|e| matches!(e, Event::ChannelOpen(..)))
    });
    assert_eq!((hub.viewers(0), hub.viewers(1), hub.viewers(2)), (1, 1, 0));
    let events = drain_events(&mut hub);
    for camera in 0..2 {
        let wanted = HubEvent::KeyframeWanted {
            peer: id,
            camera,
            reason: KeyframeReason::NewPeer,
        };
        assert!(events.contains(&wanted), "{events:?}");
    }
    let cameras = [idr_frames(320, 240, 6), idr_frames(160, 120, 6)];
    let mut decoders: Vec<_> = (0..2)
        .map(|_| openh264::decoder::Decoder::new().unwrap())
        .collect();
    let mut sizes = vec![Vec::new(), Vec::new()];
    for n in 0..6 {
        for (camera, frames) in cameras.iter().enumerate() {
            hub.send_video(camera, &frames[n]);
        }
        hub.send_video(2, &cameras[0][n]); // no peer has a third m-line: nothing happens
        for _ in 0..10 {
            now += Duration::from_millis(10);
            client.rtc.handle_input(Input::Timeout(now)).unwrap();
            hub.handle_timeout(now);
            pump(&mut hub, &mut client, now);
        }
        for e in client.events.drain(..) {
            if let Event::MediaData(m) = e {
                let track = client.video_mids.iter().position(|mid| *mid == m.mid);
                let track = track.expect("media arrives on an offered m-line");
                if let Some(yuv) = decoders[track].decode(&m.data).unwrap() {
                    use openh264::formats::YUVSource;
                    sizes[track].push(yuv.dimensions());
                }
            }
        }
    }
    assert!(sizes[0].len() >= 4 && sizes[1].len() >= 4, "{sizes:?}");
    assert!(sizes[0].iter().all(|s| *s == (320, 240)), "{sizes:?}");
    assert!(sizes[1].iter().all(|s| *s == (160, 120)), "{sizes:?}");
}

/// Sends `frames` (camera, frame), lets them through and returns the m-lines
/// media arrived on, with repeats.
fn deliver(
    hub: &mut Hub,
    client: &mut Client,
    now: &mut Instant,
    frames: &[(usize, &EncodedFrame)],
) -> Vec<usize> {
    for (camera, frame) in frames {
        hub.send_video(*camera, frame);
    }
    for _ in 0..10 {
        *now += Duration::from_millis(10);
        client.rtc.handle_input(Input::Timeout(*now)).unwrap();
        hub.handle_timeout(*now);
        pump(hub, client, *now);
    }
    let mids = client.video_mids.clone();
    client
        .events
        .drain(..)
        .filter_map(|e| match e {
            Event::MediaData(m) => mids.iter().position(|mid| *mid == m.mid),
            _ => None,
        })
        .collect()
}

#[test]
fn a_camera_turned_off_is_not_sent_nor_counted_and_resumes_at_a_keyframe() {
    let mut hub = Hub::new(HubConfig::default());
    let t0 = Instant::now();
    let (id, mut client) = connect_videos(&mut hub, t0, 2);
    let mut now = run_until(&mut hub, &mut client, t0, Duration::from_secs(5), |_, c| {
        c.events.iter().any(|e| matches!(e, Event::ChannelOpen(..)))
    });
    drain_events(&mut hub);
    let [front, arm] = [idr_frames(320, 240, 1), idr_frames(160, 120, 2)];
    let arm_p_frame = EncodedFrame {
        keyframe: false,
        ..arm[1].clone()
    };
    let both = [(0, &front[0]), (1, &arm[0])];
    let arrived = deliver(&mut hub, &mut client, &mut now, &both);
    assert!(arrived.contains(&0) && arrived.contains(&1), "{arrived:?}");

    assert!(hub.set_camera(id, 1, false));
    assert_eq!(
        (hub.viewers(0), hub.viewers(1)),
        (1, 0),
        "the arm's encoder may idle"
    );
    assert_eq!(hub.status()[0].receiving, [true, false]);
    let sent_before = hub.status()[0].frames_sent;
    let arrived = deliver(&mut hub, &mut client, &mut now, &both);
    assert!(
        arrived.iter().all(|m| *m == 0) && !arrived.is_empty(),
        "{arrived:?}"
    );
    assert_eq!(
        hub.status()[0].frames_sent,
        sent_before + 1,
        "only the front's frame"
    );
    assert!(
        drain_events(&mut hub).is_empty(),
        "turning off asks for nothing"
    );

    assert!(hub.set_camera(id, 1, true));
    assert_eq!(hub.viewers(1), 1);
    assert_eq!(
        drain_events(&mut hub),
        [HubEvent::KeyframeWanted {
            peer: id,
            camera: 1,
            reason: KeyframeReason::NewPeer
        }]
    );
    let arrived = deliver(&mut hub, &mut client, &mut now, &[(1, &arm_p_frame)]);
    assert!(
        arrived.is_empty(),
        "a P-frame before the IDR is held back: {arrived:?}"
    );
    let arrived = deliver(&mut hub, &mut client, &mut now, &[(1, &arm[0])]);
    assert!(
        !arrived.is_empty() && arrived.iter().all(|m| *m == 1),
        "{arrived:?}"
    );

    assert!(!hub.set_camera(id, 2, false), "no third m-line");
    assert!(!hub.set_camera(PeerId(99), 0, false), "no such peer");
}

/// With every camera off no RTCP comes: the peer gets a data-only peer's patience.
#[test]
fn a_peer_with_every_camera_off_is_timed_out_like_a_data_only_one() {
    let (mut hub, id, now) = connected_with_short_silence();
    assert!(hub.set_camera(id, 0, false));
    let took = time_to_reap(&mut hub, now, DATA_ONLY_SILENCE * 2);
    assert!(took >= DATA_ONLY_SILENCE, "reaped after {took:?}");
}

/// Delivers `datagram` from the hub to the client.
fn to_client(client: &mut Client, now: Instant, t: &str0m::net::Transmit) {
    let contents = (&*t.contents).try_into().unwrap();
    let input = Input::Receive(
        now,
        Receive {
            proto: Protocol::Udp,
            source: t.source,
            destination: t.destination,
            contents,
        },
    );
    client.rtc.handle_input(input).unwrap();
}

#[test]
fn a_keyframe_that_lost_half_its_packets_is_repaired_by_retransmission() {
    let mut hub = Hub::new(HubConfig::default());
    let t0 = Instant::now();
    let (_, mut client) = connect(&mut hub, t0);
    let mut now = run_until(&mut hub, &mut client, t0, Duration::from_secs(5), |_, c| {
        c.events.iter().any(|e| matches!(e, Event::ChannelOpen(..)))
    });
    client.events.clear();
    // A camera-like 640x480 IDR at 1.5 Mbit/s: some 30 packets.
    let (w, h) = (640, 480);
    let pattern = TestPattern::new(w, h, 30).unwrap().camera_like();
    let mut raw = crate::media::Frame::black_i420(w, h);
    pattern.draw(0, 0, &mut raw);
    let mut encoder = OpenH264Encoder::new(w, h, 30, 1_500_000).unwrap();
    let au = encoder.encode(&raw, true).unwrap().unwrap();
    assert!(au.len() > 30_000, "keyframe of {} bytes", au.len());
    let keyframe = EncodedFrame {
        data: au.into(),
        captured: now,
        rtp_time: 0,
        keyframe: true,
    };
    hub.send_video(0, &keyframe);
    // The link drops 20 of the keyframe's first transmissions (a burst
    // overflowing a slow link's queue); the retransmissions get through.
    let mut big = 0;
    for _ in 0..300 {
        now += Duration::from_millis(5);
        client.rtc.handle_input(Input::Timeout(now)).unwrap();
        hub.handle_timeout(now);
        pump_dropping(&mut hub, &mut client, now, |t| {
            big += usize::from(t.contents.len() > 1000);
            t.contents.len() > 1000 && (5..25).contains(&big)
        });
        let is_idr = |e: &Event| matches!(e, Event::MediaData(m) if crate::media::h264::annexb::is_idr(&m.data));
        if client.events.iter().any(is_idr) {
            return;
        }
    }
    panic!("the keyframe was never completed ({big} large datagrams sent)");
}

mod blip;
