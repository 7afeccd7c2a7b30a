//! Links that blip: stale drives are dropped, and the operator's page takes
//! its role back on a new connection with its resume token.

use super::*;

/// The resume token in the last operator role sent to `peer` in `sent`.
fn token(sent: &[(PeerId, Value)], peer: PeerId) -> String {
    let mut mine = sent.iter().filter(|(p, m)| *p == peer && operator_role(m));
    let last = mine.next_back().expect("an operator role was sent");
    last.1["resume"].as_str().unwrap().to_string()
}

fn claim_with(token: &str) -> String {
    json!({"type":"claim","resume":token}).to_string()
}

#[test]
fn the_operators_page_resumes_its_role_on_a_new_connection_once() {
    for secret in [None, Some("s3cret")] {
        let mut h = harness(secret);
        h.join(A);
        h.join(C);
        let claim = json!({"type":"claim","secret":secret}).to_string();
        h.say(A, &claim);
        h.say(A, GO);
        assert_eq!((h.operator(), h.motors()), (Some(A), FULL));
        let first = token(&h.sent(), A);

        // A's link died; its page connects again as B and presents the token.
        h.join(B);
        h.say(B, &claim_with(&first));
        assert_eq!(h.operator(), Some(B), "{secret:?}");
        assert_eq!(h.motors(), Motors::default(), "a change of operator stops");
        let told = h.sent();
        let viewer = json!({"type":"role","role":"viewer"});
        assert!(told.contains(&(A, viewer)), "the old connection is told");
        let second = token(&told, B);
        assert_ne!(first, second, "a new token with the role");

        // Single use: the old token, or a guess, takes nothing.
        for bad in [first.as_str(), "", "00000000000000000000000000000000"] {
            h.say(C, &claim_with(bad));
            assert_eq!(h.operator(), Some(B), "{secret:?} {bad:?}");
            assert!(error(&h.sent_to(C)[0]), "{secret:?}: refused with a reason");
        }
        h.say(A, &claim_with(&first));
        assert_eq!(h.operator(), Some(B));
    }
}

#[test]
fn a_released_role_takes_its_token_with_it() {
    let mut h = harness(Some("s3cret"));
    h.join(A);
    h.join(B);
    h.say(A, r#"{"type":"claim","secret":"s3cret"}"#);
    let old = token(&h.sent(), A);
    h.s.peer_left(h.t, A); // the silence limit, or a clean close
    h.sent();
    h.say(B, &claim_with(&old));
    assert_eq!(h.operator(), None);
    assert!(error(&h.sent_to(B)[0]));
}

#[test]
fn a_view_only_peer_cannot_resume_the_role() {
    let mut h = harness(None);
    h.join(A);
    h.say(A, r#"{"type":"claim"}"#);
    let t = token(&h.sent(), A);
    h.s.peer_joined(h.t, B, None, true);
    h.say(B, &claim_with(&t));
    assert_eq!(h.operator(), Some(A));
    assert!(h.sent_to(B).iter().any(error));
}

/// A drive stamped `t` on the page's clock (ms), arriving at `at` ms.
fn drive_at(h: &mut Harness, at: u64, seq: u64, t: f64, linear: f64) {
    let msg = json!({"type":"drive","linear":linear,"angular":0,"seq":seq,"t":t});
    h.s.message(h.at(at), A, &msg.to_string());
}

#[test]
fn drives_that_arrive_late_after_a_blip_are_dropped_and_the_next_fresh_one_moves() {
    let mut h = harness(None);
    h.join(A);
    // The page's clock reads 90 000 ms when ours reads 0; 10 ms trips.
    for n in 0..5 {
        drive_at(
            &mut h,
            10 + 100 * n,
            n + 1,
            90_000.0 + 100.0 * n as f64,
            0.5,
        );
    }
    assert_eq!(h.motors().left, 0.5);
    // The link drops at 500; the deadman stops the motors.
    h.s.tick(h.at(900));
    assert_eq!(h.motors(), Motors::default());
    // At 2500 the link is back: what was sent into the outage (the page
    // stopped sending at 1900, when it saw the link was lost) arrives at once.
    for n in 5..20 {
        drive_at(&mut h, 2500, n + 1, 90_000.0 + 100.0 * n as f64, 1.0);
    }
    assert_eq!(h.motors(), Motors::default(), "stale drives never move it");
    assert_eq!(h.s.status().rejections.total(), 15);
    assert!(h.sent_to(A).iter().all(|m| !error(m)), "nothing to answer");
    // The page's next drive, sent after the return, moves it at once.
    drive_at(&mut h, 2512, 26, 92_500.0, 1.0);
    assert_eq!(h.motors(), FULL);
}
