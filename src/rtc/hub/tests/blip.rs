//! Links that blip: a silent peer is held (nothing written into the dead
//! link), its first datagram after the silence asks for a keyframe at once
//! and the picture resumes at it; only the silence limit ends the peer.

use super::restart::RESTART_INTERVAL;
use super::*;

/// The link is down for `length`: the hub's timers run (every 50 ms), what it
/// sends is lost and nothing arrives from the client.
fn outage(hub: &mut Hub, now: &mut Instant, length: Duration) {
    let end = *now + length;
    while *now < end {
        *now += Duration::from_millis(50);
        hub.handle_timeout(*now);
        while hub.poll_transmit().is_some() {}
    }
}

/// Offers `sdp` to the hub from `client` and applies the answer.
fn answered(
    hub: &mut Hub,
    client: &mut Client,
    now: Instant,
    sdp: &str,
    pending: str0m::change::SdpPendingOffer,
) -> PeerId {
    let robot = Candidate::host(ROBOT.parse().unwrap(), "udp").unwrap();
    let (id, answer) = hub.connect(now, sdp, &[robot], None, false).unwrap();
    let answer = SdpAnswer::from_sdp_string(&answer).unwrap();
    client.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    id
}

/// Runs until the client's data channel is open; the time then.
fn channel_open(hub: &mut Hub, client: &mut Client, from: Instant) -> Instant {
    run_until(hub, client, from, Duration::from_secs(5), |_, c| {
        c.events.iter().any(|e| matches!(e, Event::ChannelOpen(..)))
    })
}

fn keyframe_wanted(events: &[HubEvent]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            HubEvent::KeyframeWanted {
                camera: 0,
                reason: KeyframeReason::NewPeer,
                ..
            }
        )
    })
}

#[test]
fn a_blip_holds_the_peer_and_its_return_asks_for_a_keyframe_at_once() {
    // 2 s: a Wi-Fi dropout; 12 s: many unanswered ICE checks and consent
    // periods, still shorter than the 20 s silence limit.
    for blip in [Duration::from_secs(2), Duration::from_secs(12)] {
        let mut hub = Hub::new(HubConfig::default());
        let t0 = Instant::now();
        let (id, mut client) = connect(&mut hub, t0);
        let mut now = channel_open(&mut hub, &mut client, t0);
        let frames = idr_frames(160, 120, 1);
        let p_frame = EncodedFrame {
            keyframe: false,
            ..frames[0].clone()
        };
        assert!(!deliver(&mut hub, &mut client, &mut now, &[(0, &frames[0])]).is_empty());
        drain_events(&mut hub);

        outage(&mut hub, &mut now, blip);
        assert!(hub.contains(id), "{blip:?}: a blip must not end the peer");
        assert_eq!(hub.status()[0].state, "holding", "{blip:?}");
        assert!(drain_events(&mut hub).is_empty(), "{blip:?}: no Left");
        let sent = hub.status()[0].frames_sent;
        hub.send_video(0, &frames[0]);
        assert_eq!(
            hub.status()[0].frames_sent,
            sent,
            "{blip:?}: nothing is written into a dead link"
        );

        // The link is back: the client's next datagram (RTCP, a STUN check)
        // is enough to ask for a keyframe, before any PLI.
        client.rtc.handle_input(Input::Timeout(now)).unwrap();
        let back = now;
        let when = run_until(
            &mut hub,
            &mut client,
            now,
            Duration::from_secs(5),
            |h, _| keyframe_wanted(&drain_events(h)),
        );
        assert_eq!(
            when, back,
            "{blip:?}: keyframe asked for on the first datagram"
        );
        assert_eq!(hub.status()[0].state, "connected", "{blip:?}");
        client.events.clear();
        // The picture resumes at that keyframe, not at a P-frame that refers
        // to what was lost.
        let arrived = deliver(&mut hub, &mut client, &mut now, &[(0, &p_frame)]);
        assert!(arrived.is_empty(), "{blip:?}: {arrived:?}");
        let arrived = deliver(&mut hub, &mut client, &mut now, &[(0, &frames[0])]);
        assert!(
            !arrived.is_empty(),
            "{blip:?}: the keyframe reaches the client"
        );
        assert!(hub.contains(id));
    }
}

#[test]
fn a_silence_past_the_limit_still_ends_the_peer_as_before() {
    let mut hub = Hub::new(HubConfig::default());
    let t0 = Instant::now();
    let (id, mut client) = connect(&mut hub, t0);
    let now = channel_open(&mut hub, &mut client, t0);
    drain_events(&mut hub);
    let limit = HubConfig::default().silence_timeout;
    let took = time_to_reap(&mut hub, now, limit + Duration::from_secs(1));
    assert!(took >= limit, "reaped after {took:?}");
    assert_eq!(drain_events(&mut hub), [HubEvent::Left(id)]);
}

#[test]
fn a_held_peer_does_not_set_the_shared_bitrate() {
    let mut hub = Hub::new(HubConfig::default());
    let t0 = Instant::now();
    let (_, mut client) = connect(&mut hub, t0);
    let mut now = run_until(&mut hub, &mut client, t0, Duration::from_secs(5), |h, _| {
        h.viewer_estimates(0).iter().any(|(_, e)| e.is_some())
    });
    outage(&mut hub, &mut now, Duration::from_secs(2));
    assert_eq!(hub.status()[0].state, "holding");
    assert_eq!(hub.viewer_estimates(0), [], "its link is down, not slow");
}

#[test]
fn drives_come_on_their_own_lossy_channel_and_replies_go_on_the_reliable_one() {
    use str0m::channel::{ChannelConfig, Reliability};
    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host(BROWSER.parse().unwrap(), "udp").unwrap());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    // Opened first, so the hub can't just take the first channel for replies.
    let drives = api.add_channel_with_config(ChannelConfig {
        label: crate::session::protocol::DRIVE_CHANNEL.into(),
        ordered: false,
        reliability: Reliability::MaxRetransmits { retransmits: 0 },
        ..ChannelConfig::default()
    });
    let reliable = api.add_channel("default".into());
    let (offer, pending) = api.apply().unwrap();
    let mut client = Client {
        rtc,
        events: vec![],
        video_mids: vec![],
    };
    let mut hub = Hub::new(HubConfig::default());
    let t0 = Instant::now();
    let id = answered(&mut hub, &mut client, t0, &offer.to_sdp_string(), pending);
    let now = run_until(&mut hub, &mut client, t0, Duration::from_secs(5), |_, c| {
        let open = |e: &&Event| matches!(e, Event::ChannelOpen(..));
        c.events.iter().filter(open).count() == 2
    });
    let joined = drain_events(&mut hub);
    let joins = joined
        .iter()
        .filter(|e| matches!(e, HubEvent::Joined { .. }));
    assert_eq!(joins.count(), 1, "{joined:?}");

    let drive = br#"{"type":"drive","linear":1,"angular":0}"#;
    client
        .rtc
        .channel(drives)
        .unwrap()
        .write(false, drive)
        .unwrap();
    pump(&mut hub, &mut client, now);
    let text = String::from_utf8_lossy(drive).into_owned();
    assert_eq!(drain_events(&mut hub), [HubEvent::Text { peer: id, text }]);

    client.events.clear();
    assert!(hub.send_text(id, "reply"));
    pump(&mut hub, &mut client, now);
    let on = client.events.iter().find_map(|e| match e {
        Event::ChannelData(d) => Some(d.id),
        _ => None,
    });
    assert_eq!(on, Some(reliable));
}

/// The client's current ICE ufrag, from its latest offer.
fn ufrag_of(sdp: &str) -> String {
    super::super::sdp::attribute(sdp, "ice-ufrag")
        .unwrap()
        .to_string()
}

/// The client restarts ICE: a new offer with new credentials, through
/// `Hub::restart`; the answer applied. Returns the offer's SDP.
fn restart_ice(
    hub: &mut Hub,
    client: &mut Client,
    id: PeerId,
    now: Instant,
    ufrag: &str,
) -> String {
    let mut api = client.rtc.sdp_api();
    api.ice_restart(true);
    let (offer, pending) = api.apply().unwrap();
    let sdp = offer.to_sdp_string();
    let answer = hub.restart(now, id, ufrag, &sdp).unwrap();
    client
        .rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();
    sdp
}

/// A client with one video m-line and its channel open; its peer id, its
/// offer's SDP and the time then. Hub events so far are drained.
fn watching_with_channel_open(hub: &mut Hub) -> (Client, PeerId, String, Instant) {
    let t0 = Instant::now();
    let (mut client, first_offer, pending) = offer(true);
    let id = answered(hub, &mut client, t0, &first_offer, pending);
    let now = channel_open(hub, &mut client, t0);
    drain_events(hub);
    (client, id, first_offer, now)
}

#[test]
fn an_ice_restart_keeps_the_session_and_bad_ones_are_refused_with_reasons() {
    let mut hub = Hub::new(HubConfig::default());
    let (mut client, id, first_offer, mut now) = watching_with_channel_open(&mut hub);
    let mut ufrag = ufrag_of(&first_offer);

    // Refusals first: each says why, and the session is unharmed.
    let (_, stranger, _) = offer(true);
    let refused = |hub: &mut Hub, now, peer, ufrag: &str, sdp: &str| {
        hub.restart(now, peer, ufrag, sdp).unwrap_err()
    };
    assert_eq!(
        refused(&mut hub, now, PeerId(99), &ufrag, &stranger),
        RestartError::UnknownSession(PeerId(99))
    );
    assert_eq!(
        refused(&mut hub, now, id, "guess", &stranger),
        RestartError::WrongUfrag
    );
    assert_eq!(
        refused(&mut hub, now, id, &ufrag, &first_offer),
        RestartError::NotARestart
    );
    assert_eq!(
        refused(&mut hub, now, id, &ufrag, &stranger),
        RestartError::FingerprintChanged,
        "another connection's offer"
    );
    for e in [RestartError::WrongUfrag, RestartError::TooSoon] {
        assert!(!e.to_string().is_empty());
    }

    // 200 restarts, one a second: the same peer each time, and it still talks.
    for n in 0..200 {
        let sdp = restart_ice(&mut hub, &mut client, id, now, &ufrag);
        assert_ne!(ufrag_of(&sdp), ufrag, "restart {n}: new credentials");
        ufrag = ufrag_of(&sdp);
        // A flood: the next one within the second is refused.
        assert_eq!(
            hub.restart(now, id, &ufrag, &sdp).unwrap_err(),
            RestartError::TooSoon
        );
        now = run_until(
            &mut hub,
            &mut client,
            now,
            Duration::from_secs(5),
            |h, _| h.status()[0].state == "connected",
        );
        now += RESTART_INTERVAL;
    }
    assert_eq!(hub.status().len(), 1);
    assert_eq!(hub.status()[0].id, id);
    client.events.clear();
    assert!(hub.send_text(id, "still here"));
    now = run_until(
        &mut hub,
        &mut client,
        now,
        Duration::from_secs(5),
        |_, c| {
            c.events
                .iter()
                .any(|e| matches!(e, Event::ChannelData(d) if d.data == b"still here"))
        },
    );
    let events = drain_events(&mut hub);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, HubEvent::Left(_) | HubEvent::Joined { .. })),
        "no new presence entry: {events:?}"
    );
    assert!(hub.contains(id));
    let _ = now;
}

#[test]
fn a_new_address_moves_the_send_path_and_asks_for_a_keyframe_at_once() {
    let mut hub = Hub::new(HubConfig::default());
    let (mut client, id, first_offer, mut now) = watching_with_channel_open(&mut hub);
    // From now on the client's datagrams reach the robot from a new address
    // (a new lease, a NAT rebinding; what the robot sends there is mapped
    // back), and the page restarts ICE, as it does when its media stalls.
    let moved: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    restart_ice(&mut hub, &mut client, id, now, &ufrag_of(&first_offer));
    let mut sent_to_new = false;
    let mut events = vec![];
    let end = now + Duration::from_secs(5);
    while now < end && !(sent_to_new && keyframe_wanted(&events)) {
        while let Ok(out) = client.rtc.poll_output() {
            match out {
                Output::Transmit(t) => {
                    hub.receive(now, moved, t.destination, &t.contents);
                }
                Output::Event(e) => client.events.push(e),
                Output::Timeout(_) => break,
            }
        }
        while let Some(mut t) = hub.poll_transmit() {
            if t.destination == moved {
                sent_to_new |= t.contents.first().is_some_and(|b| *b >= 4);
                t.destination = BROWSER.parse().unwrap();
            }
            to_client(&mut client, now, &t);
        }
        events.extend(drain_events(&mut hub));
        now += Duration::from_millis(5);
        client.rtc.handle_input(Input::Timeout(now)).unwrap();
        hub.handle_timeout(now);
    }
    assert!(
        sent_to_new,
        "the robot sends media and data to the new address"
    );
    assert!(
        keyframe_wanted(&events),
        "a keyframe asked for when the path moved"
    );
}
