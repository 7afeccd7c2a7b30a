//! What the screen does next, sans-IO: access units arrive (from the
//! network loop, never blocking it), the display thread takes what is
//! pending, and time is a value. Every access unit since the last keyframe
//! must be decoded (each refers to the one before), but only the newest
//! picture is painted: a slow screen skips pictures, not decoding. A
//! backlog it cannot catch up with is dropped and a fresh keyframe asked for.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Access units waiting for the decoder beyond which the screen gives up
/// on them and waits for a keyframe (a second at 30 fps).
pub const MAX_BACKLOG: usize = 30;

#[derive(Debug, PartialEq)]
pub enum Step {
    /// Decode these in order and paint the last picture.
    Decode(Vec<Arc<[u8]>>),
    /// The video stopped: paint the screen black.
    Clear,
    /// Nothing to do until something arrives, or until this instant.
    Wait(Option<Instant>),
}

#[derive(Debug)]
pub struct ScreenCore {
    idle_after: Duration,
    pending: Vec<Arc<[u8]>>,
    /// Access units that refer to frames the decoder never saw are useless:
    /// true until the next keyframe.
    needs_keyframe: bool,
    /// `pending` starts with a keyframe: decodable whatever came before.
    pending_from_keyframe: bool,
    /// Whether to ask the producer for a keyframe (taken by whoever feeds us).
    keyframe_wanted: bool,
    last_arrival: Option<Instant>,
    /// Whether the screen shows a picture that the idle timeout may clear.
    showing: bool,
    /// Access units dropped while waiting for a keyframe or catching up.
    pub dropped: u64,
}

impl ScreenCore {
    pub fn new(idle_after: Duration) -> ScreenCore {
        ScreenCore {
            idle_after,
            pending: Vec::new(),
            needs_keyframe: true,
            pending_from_keyframe: false,
            keyframe_wanted: true,
            last_arrival: None,
            showing: false,
            dropped: 0,
        }
    }

    /// One access unit from the producer at `now`.
    pub fn push(&mut self, access_unit: &Arc<[u8]>, keyframe: bool, now: Instant) {
        self.last_arrival = Some(now);
        if keyframe {
            // Nothing before a keyframe is needed to decode what follows it.
            self.dropped += self.pending.len() as u64;
            self.pending.clear();
            self.needs_keyframe = false;
            self.pending_from_keyframe = true;
        } else if self.needs_keyframe {
            self.dropped += 1;
            return;
        } else if self.pending.len() >= MAX_BACKLOG {
            self.dropped += self.pending.len() as u64 + 1;
            self.pending.clear();
            self.start_over();
            return;
        }
        self.pending.push(access_unit.clone());
    }

    /// The decoder rejected what it was given: what follows is undecodable
    /// until the next keyframe (unless one arrived meanwhile).
    pub fn decode_failed(&mut self) {
        if self.pending_from_keyframe {
            return;
        }
        self.dropped += self.pending.len() as u64;
        self.pending.clear();
        self.start_over();
    }

    fn start_over(&mut self) {
        self.needs_keyframe = true;
        self.keyframe_wanted = true;
    }

    /// True once per time the screen needs a keyframe from its producer.
    pub fn take_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_wanted)
    }

    /// A picture was painted.
    pub fn painted(&mut self) {
        self.showing = true;
    }

    pub fn next(&mut self, now: Instant) -> Step {
        if !self.pending.is_empty() {
            self.pending_from_keyframe = false;
            return Step::Decode(std::mem::take(&mut self.pending));
        }
        let Some(clear_at) = self.last_arrival.map(|t| t + self.idle_after) else {
            return Step::Wait(None);
        };
        if !self.showing {
            return Step::Wait(None);
        }
        if now >= clear_at {
            self.showing = false;
            // Whenever the video comes back, it starts from a keyframe.
            self.start_over();
            return Step::Clear;
        }
        Step::Wait(Some(clear_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(n: u8) -> Arc<[u8]> {
        Arc::from(vec![n])
    }

    fn decoded(step: Step) -> Vec<u8> {
        match step {
            Step::Decode(units) => units.iter().map(|u| u[0]).collect(),
            other => panic!("expected a decode, got {other:?}"),
        }
    }

    #[test]
    fn it_asks_for_a_keyframe_and_starts_there() {
        let t0 = Instant::now();
        let mut core = ScreenCore::new(Duration::from_secs(3));
        assert!(core.take_keyframe_request());
        assert!(!core.take_keyframe_request(), "once");
        core.push(&au(1), false, t0);
        assert_eq!(
            core.next(t0),
            Step::Wait(None),
            "a P-frame alone is useless"
        );
        core.push(&au(2), true, t0);
        core.push(&au(3), false, t0);
        assert_eq!(decoded(core.next(t0)), [2, 3]);
        assert_eq!(core.dropped, 1);
    }

    #[test]
    fn a_slow_screen_decodes_every_unit_since_the_keyframe_in_one_go() {
        let t0 = Instant::now();
        let mut core = ScreenCore::new(Duration::from_secs(3));
        core.push(&au(1), true, t0);
        assert_eq!(decoded(core.next(t0)), [1]);
        for n in 2..6 {
            core.push(&au(n), false, t0);
        }
        assert_eq!(decoded(core.next(t0)), [2, 3, 4, 5]);
        // A keyframe makes what is still pending unnecessary.
        core.push(&au(6), false, t0);
        core.push(&au(7), true, t0);
        core.push(&au(8), false, t0);
        assert_eq!(decoded(core.next(t0)), [7, 8]);
    }

    #[test]
    fn a_backlog_too_long_is_dropped_for_a_fresh_keyframe() {
        let t0 = Instant::now();
        let mut core = ScreenCore::new(Duration::from_secs(3));
        core.take_keyframe_request();
        core.push(&au(0), true, t0);
        for n in 1..MAX_BACKLOG as u8 {
            core.push(&au(n), false, t0);
        }
        assert!(!core.take_keyframe_request());
        core.push(&au(99), false, t0);
        assert!(core.take_keyframe_request());
        assert_eq!(core.next(t0), Step::Wait(None));
        assert_eq!(core.dropped, MAX_BACKLOG as u64 + 1);
        core.push(&au(100), true, t0);
        assert_eq!(decoded(core.next(t0)), [100]);
    }

    #[test]
    fn a_decoding_error_waits_for_the_next_keyframe() {
        let t0 = Instant::now();
        let mut core = ScreenCore::new(Duration::from_secs(3));
        core.take_keyframe_request();
        core.push(&au(1), true, t0);
        core.next(t0);
        core.decode_failed();
        assert!(core.take_keyframe_request());
        core.push(&au(2), false, t0);
        assert_eq!(core.next(t0), Step::Wait(None));
        core.push(&au(3), true, t0);
        assert_eq!(decoded(core.next(t0)), [3]);
        // A keyframe that arrives while a bad batch is being decoded stays.
        core.push(&au(4), true, t0);
        core.decode_failed();
        assert!(!core.take_keyframe_request());
        assert_eq!(decoded(core.next(t0)), [4]);
    }

    #[test]
    fn the_screen_goes_black_once_when_the_video_stops() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut core = ScreenCore::new(Duration::from_secs(3));
        core.take_keyframe_request();
        core.push(&au(1), true, t0);
        core.next(t0);
        core.painted();
        core.push(&au(2), false, s(1));
        core.next(s(1));
        assert_eq!(core.next(s(2)), Step::Wait(Some(s(4))));
        assert_eq!(core.next(s(4)), Step::Clear);
        assert_eq!(core.next(s(9)), Step::Wait(None), "cleared once");
        assert!(
            core.take_keyframe_request(),
            "the video restarts from a keyframe"
        );
        core.push(&au(3), false, s(10));
        assert_eq!(core.next(s(10)), Step::Wait(None));
        core.push(&au(4), true, s(10));
        assert_eq!(decoded(core.next(s(10))), [4]);
    }
}
