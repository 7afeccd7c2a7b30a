//! Keyframe requests: why a peer wants an IDR, and the throttle that turns
//! a burst of requests into few IDRs. Used by both encodes of a camera (the
//! pipeline's main one and the low layer).

use std::time::{Duration, Instant};

/// Why a peer wants an IDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeReason {
    /// It just connected and shows nothing until one arrives.
    NewPeer,
    /// It lost packets (PLI/FIR) and shows a damaged picture meanwhile.
    Loss,
    /// `/api/snapshot.jpg` waits for one (passthrough sources).
    Snapshot,
}

/// A peer that just joined waits at most this long for its first IDR.
const NEW_PEER_INTERVAL: Duration = Duration::from_millis(100);

/// Keyframe requests arrive from every peer (join, PLI, FIR); this turns a
/// burst of them into few IDRs: at most one per `loss_interval` for losses,
/// and one per 100 ms while peers are joining, so a crowd arriving at once
/// neither storms the encoder nor waits half a second for a picture.
#[derive(Debug)]
pub struct KeyframeThrottle {
    loss_interval: Duration,
    /// The shortest interval among the requests not served yet.
    pending: Option<Duration>,
    last: Option<Instant>,
}

impl KeyframeThrottle {
    pub fn new(loss_interval: Duration) -> KeyframeThrottle {
        KeyframeThrottle {
            loss_interval,
            pending: None,
            last: None,
        }
    }

    pub fn request(&mut self, reason: KeyframeReason) {
        let interval = match reason {
            KeyframeReason::NewPeer | KeyframeReason::Snapshot => {
                NEW_PEER_INTERVAL.min(self.loss_interval)
            }
            KeyframeReason::Loss => self.loss_interval,
        };
        self.pending = Some(self.pending.map_or(interval, |p| p.min(interval)));
    }

    /// True when the frame encoded at `now` should be an IDR. A request made
    /// inside its interval stays pending and is served once the interval ends.
    pub fn take(&mut self, now: Instant) -> bool {
        let Some(interval) = self.pending else {
            return false;
        };
        if self.last.is_some_and(|last| now < last + interval) {
            return false;
        }
        self.pending = None;
        self.last = Some(now);
        true
    }

    /// The IDR `take` granted never came out (rate control skipped that
    /// frame, or the encoder failed on it): the next frame gets it instead,
    /// or the peers waiting for it see nothing until the encoder's own GOP ends.
    pub fn missed(&mut self) {
        self.pending = Some(Duration::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_serves_first_request_at_once_and_coalesces_a_burst() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut t = KeyframeThrottle::new(Duration::from_millis(500));
        assert!(!t.take(t0), "no request, no keyframe");
        t.request(KeyframeReason::Loss);
        assert!(t.take(t0));
        for _ in 0..10 {
            t.request(KeyframeReason::Loss);
        }
        assert!(!t.take(ms(100)));
        assert!(!t.take(ms(499)));
        assert!(t.take(ms(500)), "pending request served after the interval");
        assert!(!t.take(ms(2000)), "the burst produced exactly one more");
    }

    #[test]
    fn a_granted_idr_the_encoder_skipped_goes_to_the_next_frame() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut t = KeyframeThrottle::new(Duration::from_millis(500));
        t.request(KeyframeReason::NewPeer);
        assert!(t.take(t0));
        t.missed();
        assert!(t.take(ms(33)), "the next frame, not after the interval");
        assert!(!t.take(ms(66)), "and only that one");
    }

    #[test]
    fn joining_peers_wait_100_ms_at_most_and_a_crowd_gets_few_idrs() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut t = KeyframeThrottle::new(Duration::from_millis(500));
        t.request(KeyframeReason::Loss);
        assert!(t.take(t0));
        // Peers keep joining for 300 ms, two per frame, frames every 33 ms.
        let mut idrs = 0;
        for frame in 1..=10u64 {
            let now = ms(frame * 33);
            if frame * 33 <= 300 {
                t.request(KeyframeReason::NewPeer);
                t.request(KeyframeReason::NewPeer);
            }
            idrs += u32::from(t.take(now));
        }
        assert_eq!(idrs, 2, "at 132 ms and 264 ms, not one per peer");
        t.request(KeyframeReason::NewPeer);
        t.request(KeyframeReason::Loss);
        assert!(t.take(ms(364)), "the shorter interval wins");
    }

    #[test]
    fn a_peer_asking_100_times_a_second_gets_one_idr_per_interval() {
        let t0 = Instant::now();
        let mut t = KeyframeThrottle::new(Duration::from_millis(500));
        let mut idrs = 0;
        // 10 s of frames every 33 ms, with 3-4 loss requests between frames.
        for ms in 0..10_000u64 {
            if ms % 10 == 0 {
                t.request(KeyframeReason::Loss);
            }
            if ms % 33 == 0 {
                idrs += u32::from(t.take(t0 + Duration::from_millis(ms)));
            }
        }
        assert!((19..=20).contains(&idrs), "{idrs} IDRs in 10 s");
    }
}
