//! ICE restarts as bad input, end to end (issue 20): the real binary and str0m
//! clients on loopback. Pages that restart ICE every 100 ms, a restart with a
//! wrong ufrag, one for a session that does not exist, one that is not a
//! restart and malformed bodies are all refused with a reason; the sessions
//! survive, a bystander keeps its picture, and 200 accepted restarts leave
//! neither a peer nor memory behind.

mod common;

use std::time::{Duration, Instant};

use common::{request, Peer, Server};
use serde_json::{json, Value};
use str0m::change::SdpAnswer;
use str0m::media::Direction;

/// Accepted restarts the test makes in all.
const RESTARTS: usize = 200;
/// Pages restarting at once: 200 restarts need 200 s on one session (the
/// robot takes one a second per session), 40 s on five.
const RESTARTING: usize = 5;
/// How often each restarting page tries (a page stuck in a loop).
const TRY_EVERY: Duration = Duration::from_millis(100);
/// What the resident memory may grow by between the first and the last
/// restarts. A peer's `Rtc` with its buffers is a few hundred KiB, so a
/// per-restart leak of even a fraction of one would exceed this over ~180
/// restarts, while allocator noise and the bystander's buffers stay well
/// inside it (measured: docs/benchmarks.md, "ICE restarts").
const RSS_GROWTH_BOUND_KIB: u64 = 8 * 1024;

/// One connected page: the client, the robot's id for it, and the ICE
/// username fragment of its current offer.
struct Page {
    peer: Peer,
    id: u64,
    ufrag: String,
    /// The page's first offer.
    first_offer: String,
}

fn ufrag_of(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .expect("an offer names its ICE ufrag")
        .to_string()
}

fn post(server: &Server, path: &str, body: &str) -> (u16, String) {
    let json = [("Content-Type", "application/json")];
    request(server.http, "POST", path, &json, body.as_bytes()).expect("telepi answers")
}

/// Connects a page (with one video m-line or none) and waits for its role.
fn connect(server: &Server, video: bool) -> Page {
    let videos = vec![Direction::RecvOnly; usize::from(video)];
    let (mut peer, sdp, pending) = Peer::offer_lines("127.0.0.1", &videos, None);
    let (code, answer) = post(
        server,
        "/connect",
        &json!({"type": "offer", "sdp": sdp}).to_string(),
    );
    assert_eq!(code, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    peer.accept(pending, answer["sdp"].as_str().unwrap());
    assert!(
        peer.run_until(Duration::from_secs(10), |p| p
            .last_message("role")
            .is_some()),
        "the page never heard its role"
    );
    Page {
        peer,
        id: answer["peer"]
            .as_u64()
            .expect("the answer names the session"),
        ufrag: ufrag_of(&sdp),
        first_offer: sdp,
    }
}

/// A restart body for `page` (its session, its current ufrag) carrying `sdp`.
fn restart_body(id: u64, ufrag: &str, sdp: &str) -> String {
    json!({"peer": id, "ufrag": ufrag, "type": "offer", "sdp": sdp}).to_string()
}

/// `page` tries an ICE restart as a browser does. Accepted: the answer is
/// applied and the new ufrag kept; refused: the pending offer is dropped
/// (a browser rolls back). Returns the HTTP status and body.
fn try_restart(server: &Server, page: &mut Page) -> (u16, String) {
    let mut api = page.peer.rtc.sdp_api();
    api.ice_restart(true);
    let (offer, pending) = api.apply().expect("a restart offer");
    let sdp = offer.to_sdp_string();
    let (code, body) = post(
        server,
        "/connect/restart",
        &restart_body(page.id, &page.ufrag, &sdp),
    );
    if code == 200 {
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["peer"], page.id);
        let answer = SdpAnswer::from_sdp_string(answer["sdp"].as_str().unwrap()).unwrap();
        page.peer
            .rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .unwrap();
        page.ufrag = ufrag_of(&sdp);
    }
    // Refused: the pending offer is dropped, which is str0m's rollback.
    (code, body)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn session_ids(server: &Server) -> Vec<u64> {
    let status = server.status();
    let peers = status["peers"].as_array().unwrap();
    let mut ids: Vec<u64> = peers.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn restart_floods_and_bad_restarts_are_refused_and_leak_nothing() {
    let server = Server::start_logged(&[]);
    let mut bystander = connect(&server, true);
    assert!(
        bystander
            .peer
            .run_until(Duration::from_secs(10), |p| p.frames_decoded > 0),
        "the bystander sees no picture"
    );
    // One restarting page with video (its send path moves each time), the rest data only.
    let mut pages: Vec<Page> = (0..RESTARTING).map(|n| connect(&server, n == 0)).collect();
    let mut sessions: Vec<u64> = pages.iter().map(|p| p.id).collect();
    sessions.push(bystander.id);
    sessions.sort_unstable();
    assert_eq!(session_ids(&server), sessions);

    // Bad restarts, each refused with its reason.
    let (_, stranger_sdp, _) = Peer::offer_lines("127.0.0.1", &[], None);
    let first = &pages[1];
    let cases = [
        (
            restart_body(9999, &first.ufrag, &stranger_sdp),
            404,
            "no session 9999",
        ),
        (
            restart_body(first.id, "guessed", &stranger_sdp),
            400,
            "wrong ufrag",
        ),
        (
            restart_body(first.id, &first.ufrag, &stranger_sdp),
            400,
            "fingerprint changed",
        ),
        ("{\"peer\": 1".to_string(), 400, "malformed JSON"),
        (
            json!({"peer": first.id, "type": "offer"}).to_string(),
            400,
            "malformed",
        ),
    ];
    for (body, want, reason) in cases {
        let (code, text) = post(&server, "/connect/restart", &body);
        assert_eq!(code, want, "{body}: {text}");
        assert!(
            text.contains(reason),
            "{body}: the reason says {reason:?}: {text}"
        );
    }
    // An offer that keeps the session's credentials is not a restart.
    let body = restart_body(first.id, &first.ufrag, &first.first_offer);
    let (code, text) = post(&server, "/connect/restart", &body);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("not a restart"), "{text}");
    assert_eq!(
        session_ids(&server),
        sessions,
        "bad restarts end no session"
    );

    // The flood: each page tries every 100 ms; about one a second is taken.
    let pid = server.pid();
    let (mut accepted, mut too_soon, mut rounds) = (0, 0, 0);
    let mut rss_after_warm_up = None;
    let started = Instant::now();
    while accepted < RESTARTS {
        let round = Instant::now();
        for page in &mut pages {
            let (code, body) = try_restart(&server, page);
            match code {
                200 => accepted += 1,
                429 => {
                    assert!(body.contains("too soon"), "{body}");
                    too_soon += 1;
                }
                _ => panic!("restart refused: {code} {body}"),
            }
        }
        // Every page and the bystander get the rest of the round to talk.
        while round.elapsed() < TRY_EVERY {
            for page in pages.iter_mut().chain([&mut bystander]) {
                page.peer.run_for(Duration::from_millis(3));
            }
        }
        rounds += 1;
        if rss_after_warm_up.is_none() && accepted >= RESTARTING * 4 {
            rss_after_warm_up = Some(rss_kib(pid));
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "restarts too slow: {accepted}"
        );
    }
    let (rss_before, rss_after) = (rss_after_warm_up.unwrap(), rss_kib(pid));
    eprintln!(
        "ICE restarts: {accepted} accepted, {too_soon} refused as too soon, in {rounds} rounds \
         ({:.1} s); telepi RSS {rss_before} KiB after {} restarts, {rss_after} KiB after {accepted}",
        started.elapsed().as_secs_f64(),
        RESTARTING * 4,
    );
    assert!(
        too_soon > accepted * 5,
        "the flood is mostly refused: {too_soon}"
    );

    // Every session is the one it was, and all of them still talk.
    assert_eq!(session_ids(&server), sessions, "no session lost or added");
    for (n, page) in pages.iter_mut().chain([&mut bystander]).enumerate() {
        assert!(
            page.peer.ping(n as f64),
            "session {} answers after the restarts",
            page.id
        );
    }
    for (page, what) in [
        (&mut bystander, "the bystander's picture goes on"),
        (&mut pages[0], "the restarting page's picture comes back"),
    ] {
        let frames = page.peer.frames_decoded;
        let more = |p: &Peer| p.frames_decoded > frames + 10;
        assert!(page.peer.run_until(Duration::from_secs(5), more), "{what}");
    }
    assert!(
        rss_after <= rss_before + RSS_GROWTH_BOUND_KIB,
        "telepi grew {} KiB over {} restarts",
        rss_after - rss_before,
        accepted - RESTARTING * 4
    );
    // The log says what was refused.
    assert!(server.log.text().contains("ICE restart accepted"));
}
