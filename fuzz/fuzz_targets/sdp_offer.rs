//! SDP offers into the hub (`Hub::connect`): str0m's SDP parser and offer
//! handling, and telepi's H.264 check, on hostile offers.
//!
//! One hub per process (it makes a DTLS certificate); each accepted peer is
//! disconnected again so the next input starts from an empty hub.
//!
//! Properties: an accepted offer gets an SDP answer with our candidate, and
//! leaves no peer behind once disconnected.
#![no_main]

use std::cell::RefCell;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use telepi::rtc::hub::{Hub, HubConfig};
use telepi::rtc::ice::local_candidates;

thread_local! {
    static HUB: RefCell<Hub> = RefCell::new(Hub::new(HubConfig::default()));
}

fuzz_target!(|data: &[u8]| {
    let offer = String::from_utf8_lossy(data);
    let robot = "192.0.2.10:50000".parse().unwrap();
    let candidates = local_candidates(&[robot], None, None);
    HUB.with_borrow_mut(|hub| {
        let now = Instant::now();
        if let Ok((id, answer)) = hub.connect(now, &offer, &candidates, Some("s".into()), false) {
            assert!(answer.starts_with("v=0"), "{answer}");
            assert!(
                answer.contains("192.0.2.10 50000"),
                "no candidate in {answer}"
            );
            assert!(hub.disconnect(id, now));
        }
        hub.handle_timeout(now);
        while hub.poll_transmit().is_some() {}
        while hub.poll_event().is_some() {}
        assert!(hub.is_empty(), "a peer outlived its disconnect");
    });
});
