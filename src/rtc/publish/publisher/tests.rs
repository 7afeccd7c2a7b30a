//! A publisher against a real str0m answerer standing in for the SFU, wired
//! back to back in memory; HTTP responses are values, time is a value.

use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::*;
use crate::rtc::hub::tests::idr_frames;

const ROBOT: &str = "127.0.0.1:50000";
const SFU: &str = "127.0.0.1:40000";
const ENDPOINT: &str = "http://sfu.test:7080/whip/endpoint/robot";

fn robot_candidates() -> Vec<Candidate> {
    vec![Candidate::host(ROBOT.parse().unwrap(), "udp").unwrap()]
}

fn publisher(now: Instant, audio: bool) -> Publisher {
    let dest = Destination {
        url: Url::parse(ENDPOINT).unwrap(),
        token: Some("s3cret".into()),
        camera: 0,
        audio,
    };
    let cert = str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate()
        .unwrap();
    Publisher::new(0, dest, Timing::default(), cert, now)
}

/// The SFU's side: a str0m answerer that receives what we publish.
struct Sfu {
    rtc: Rtc,
    events: Vec<Event>,
    /// Datagrams to us are dropped while false (a killed SFU).
    alive: bool,
}

impl Sfu {
    fn answer(offer: &str, now: Instant) -> (Sfu, String) {
        let mut rtc = Rtc::builder().build(now);
        rtc.add_local_candidate(Candidate::host(SFU.parse().unwrap(), "udp").unwrap());
        let offer = SdpOffer::from_sdp_string(offer).unwrap();
        let answer = rtc.sdp_api().accept_offer(offer).unwrap().to_sdp_string();
        let sfu = Sfu {
            rtc,
            events: vec![],
            alive: true,
        };
        (sfu, answer)
    }

    fn video_frames(&self) -> usize {
        let video =
            |e: &&Event| matches!(e, Event::MediaData(m) if m.params.spec().codec == Codec::H264);
        self.events.iter().filter(video).count()
    }
}

fn response(status: u16, location: Option<&str>, body: &str) -> Result<HttpResponse, String> {
    Ok(HttpResponse {
        url: Url::parse(ENDPOINT).unwrap(),
        status,
        location: location.map(str::to_string),
        body: body.to_string(),
    })
}

/// Starts an attempt at `now` and returns its POST.
fn post(p: &mut Publisher, now: Instant) -> HttpRequest {
    p.handle_timeout(now, robot_candidates);
    let request = (p.poll_request()).unwrap_or_else(|| panic!("no POST: {:?}", p.status()));
    assert_eq!(request.method, Method::Post);
    assert_eq!(p.state(), State::Offering);
    request
}

/// POST, `201` with the SFU's answer, connect: returns the SFU and the time.
fn publish(p: &mut Publisher, now: Instant) -> (Sfu, Instant) {
    let request = post(p, now);
    answer(p, &request, now)
}

fn answer(p: &mut Publisher, request: &HttpRequest, now: Instant) -> (Sfu, Instant) {
    let (mut sfu, answer) = Sfu::answer(request.body.as_deref().unwrap(), now);
    p.handle_response(
        now,
        request.id,
        response(201, Some("/whip/resource/robot"), &answer),
    );
    assert_eq!(p.state(), State::Connecting, "{:?}", p.status().last_error);
    let now = run_until(p, &mut sfu, now, |p, _| p.state() == State::Publishing);
    (sfu, now)
}

/// Moves datagrams both ways until both sides are quiet at `now`.
fn pump(p: &mut Publisher, sfu: &mut Sfu, now: Instant) {
    loop {
        let mut moved = false;
        while let Ok(out) = sfu.rtc.poll_output() {
            match out {
                Output::Transmit(t) => {
                    moved = true;
                    if sfu.alive {
                        p.receive(now, t.source, t.destination, &t.contents);
                    }
                }
                Output::Event(e) => sfu.events.push(e),
                Output::Timeout(_) => break,
            }
        }
        while let Some(t) = p.poll_transmit() {
            moved = true;
            if sfu.alive {
                let contents = (&*t.contents).try_into().unwrap();
                let receive = Receive {
                    proto: Protocol::Udp,
                    source: t.source,
                    destination: t.destination,
                    contents,
                };
                sfu.rtc.handle_input(Input::Receive(now, receive)).unwrap();
            }
        }
        if !moved {
            return;
        }
    }
}

/// Advances time in 10 ms steps (at most 20 s) until `done`; returns the time.
fn run_until(
    p: &mut Publisher,
    sfu: &mut Sfu,
    mut now: Instant,
    mut done: impl FnMut(&mut Publisher, &Sfu) -> bool,
) -> Instant {
    let end = now + Duration::from_secs(20);
    while now < end {
        pump(p, sfu, now);
        if done(p, sfu) {
            return now;
        }
        now += Duration::from_millis(10);
        if sfu.alive {
            sfu.rtc.handle_input(Input::Timeout(now)).unwrap();
        }
        p.handle_timeout(now, robot_candidates);
    }
    panic!("condition not reached within 20 s");
}

#[test]
fn publishes_sendonly_h264_and_pcmu_and_deletes_the_resource_on_shutdown() {
    let t0 = Instant::now();
    let mut p = publisher(t0, true);
    let request = post(&mut p, t0);
    assert_eq!(request.url.to_string(), ENDPOINT);
    assert_eq!(request.token.as_deref(), Some("s3cret"));
    let offer = request.body.clone().unwrap();
    assert!(
        offer.contains("m=video") && offer.contains("H264/90000"),
        "{offer}"
    );
    assert!(
        offer.contains("m=audio") && offer.contains("PCMU/8000"),
        "{offer}"
    );
    assert!(
        offer.contains("a=sendonly") && !offer.contains("a=recvonly"),
        "{offer}"
    );
    assert!(
        offer.contains("a=candidate:"),
        "non-trickle: candidates in the offer"
    );
    let (mut sfu, mut now) = answer(&mut p, &request, t0);
    assert!(
        p.take_keyframe_request(),
        "a new SFU session starts at an IDR"
    );
    assert!(p.wants_video() && p.wants_audio());
    for frame in idr_frames(320, 240, 5) {
        p.send_video(now, 0, &frame);
        p.send_video(now, 1, &frame); // another camera: not ours
        now += Duration::from_millis(33);
        pump(&mut p, &mut sfu, now);
    }
    run_until(&mut p, &mut sfu, now, |_, sfu| sfu.video_frames() == 5);
    let status = p.status();
    assert_eq!((status.frames_sent, status.publishes), (5, 1));
    assert!(status.bytes_sent > 5_000, "{status:?}");
    p.shutdown();
    let delete = p.poll_request().expect("a DELETE");
    assert_eq!(delete.method, Method::Delete);
    assert_eq!(
        delete.url.to_string(),
        "http://sfu.test:7080/whip/resource/robot"
    );
    assert_eq!(delete.token.as_deref(), Some("s3cret"));
    assert_eq!(p.state(), State::Stopped);
    assert!(!p.wants_video());
}

#[test]
fn a_refused_token_is_retried_slowly_and_logged_as_a_config_error() {
    let t0 = Instant::now();
    let mut p = publisher(t0, false);
    let request = post(&mut p, t0);
    p.handle_response(t0, request.id, response(401, None, "Unauthorized"));
    assert_eq!(p.state(), State::Waiting);
    assert!(p
        .status()
        .last_error
        .unwrap()
        .contains("refused the token (HTTP 401)"));
    assert_eq!(p.next_timeout(), Some(t0 + Timing::default().refused));
    assert!(p.poll_request().is_none(), "nothing to DELETE");
    p.handle_timeout(t0 + Duration::from_secs(59), robot_candidates);
    assert!(p.poll_request().is_none());
    let again = post(&mut p, t0 + Timing::default().refused);
    p.handle_response(t0, again.id, response(403, None, ""));
    assert!(p.status().last_error.unwrap().contains("HTTP 403"));
}

#[test]
fn failures_back_off_from_one_second_doubling_to_thirty() {
    let mut now = Instant::now();
    let mut p = publisher(now, false);
    let mut delays = Vec::new();
    for _ in 0..7 {
        let request = post(&mut p, now);
        p.handle_response(now, request.id, Err("connect: Connection refused".into()));
        let next = p.next_timeout().unwrap();
        delays.push((next - now).as_secs());
        now = next;
    }
    assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
    assert!(p
        .status()
        .last_error
        .unwrap()
        .contains("Connection refused"));
}

#[test]
fn answers_that_are_not_whip_are_clear_errors_with_back_off() {
    let t0 = Instant::now();
    let cases: [(u16, Option<&str>, &str, &str); 5] = [
        (
            200,
            None,
            "<html>hello</html>",
            "HTTP 200 (not 201 Created)",
        ),
        (500, None, "janus is down", "HTTP 500"),
        (201, None, "v=0\r\n", "201 without a Location"),
        (201, Some("/r"), "<html>", "not an SDP answer"),
        (201, Some("/r"), "v=0\r\nm=video garbage\r\n", "SDP answer"),
    ];
    for (status, location, body, error) in cases {
        let mut p = publisher(t0, false);
        let request = post(&mut p, t0);
        p.handle_response(t0, request.id, response(status, location, body));
        assert_eq!(p.state(), State::Waiting, "{status} {body}");
        let last = p.status().last_error.unwrap();
        assert!(last.contains(error), "{last:?} should say {error:?}");
        assert_eq!(p.next_timeout(), Some(t0 + Duration::from_secs(1)));
        // A resource that was created is deleted again.
        let delete = p.poll_request();
        assert_eq!(delete.is_some(), location.is_some(), "{status} {body}");
    }
}

#[test]
fn a_silent_sfu_is_noticed_and_published_to_again() {
    let t0 = Instant::now();
    let mut p = publisher(t0, false);
    let (mut sfu, now) = publish(&mut p, t0);
    sfu.alive = false; // SIGKILL: no goodbye
    let gone = run_until(&mut p, &mut sfu, now, |p, _| p.state() == State::Waiting);
    let waited = gone - now;
    assert!(
        waited >= Timing::default().silence
            && waited < Timing::default().silence + Duration::from_millis(50)
    );
    assert!(p
        .status()
        .last_error
        .unwrap()
        .contains("nothing heard from the SFU"));
    let delete = p.poll_request().expect("the old resource is deleted");
    assert_eq!(delete.method, Method::Delete);
    // A 404 for it (the SFU forgot it) changes nothing.
    p.handle_response(gone, delete.id, response(404, None, ""));
    assert_eq!(p.state(), State::Waiting);
    let (_sfu, _) = publish(&mut p, gone + Duration::from_secs(1));
    assert_eq!(p.status().publishes, 2);
}

#[test]
fn an_answer_that_never_connects_times_out() {
    let t0 = Instant::now();
    let mut p = publisher(t0, false);
    let request = post(&mut p, t0);
    let (mut sfu, answer) = Sfu::answer(request.body.as_deref().unwrap(), t0);
    sfu.alive = false;
    p.handle_response(t0, request.id, response(201, Some("resource/1"), &answer));
    let failed = run_until(&mut p, &mut sfu, t0, |p, _| p.state() == State::Waiting);
    assert!(failed - t0 >= Timing::default().connect);
    assert!(p.status().last_error.unwrap().contains("did not connect"));
    let delete = p.poll_request().unwrap();
    assert_eq!(
        delete.url.to_string(),
        "http://sfu.test:7080/whip/endpoint/resource/1"
    );
}

#[test]
fn a_repeated_problem_is_logged_once() {
    let mut now = Instant::now();
    let mut p = publisher(now, false);
    for _ in 0..3 {
        let request = post(&mut p, now);
        p.handle_response(now, request.id, Err("connect: refused".into()));
        now = p.next_timeout().unwrap();
    }
    assert_eq!(p.logged.as_deref(), Some("connect: refused"));
    let (_sfu, _) = publish(&mut p, now);
    assert_eq!(
        p.logged, None,
        "after a success the same problem is news again"
    );
}

#[test]
fn a_post_never_answered_is_given_up_and_its_late_answer_ignored() {
    let t0 = Instant::now();
    let mut p = publisher(t0, false);
    let request = post(&mut p, t0);
    let late = t0 + Timing::default().answer;
    assert_eq!(p.next_timeout(), Some(late));
    p.handle_timeout(late, robot_candidates);
    assert_eq!(p.state(), State::Waiting);
    assert!(p
        .status()
        .last_error
        .unwrap()
        .contains("no answer to the POST"));
    let (_sfu, answer) = Sfu::answer(request.body.as_deref().unwrap(), late);
    p.handle_response(late, request.id, response(201, Some("/r"), &answer));
    assert_eq!(p.state(), State::Waiting, "a stale answer starts nothing");
}
