//! Bandwidth adaptation for one shared encode (a layer, see
//! `rtc::layers`): it must fit the link it follows. Falls quickly when the lowest estimate drops, climbs slowly
//! and only after the estimate has stayed high, so one noisy estimate doesn't
//! make the picture pump.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BitrateController {
    min: u32,
    max: u32,
    current: u32,
    /// Since when the estimate has been comfortably above `current`.
    high_since: Option<Instant>,
}

/// Use this share of the estimate: leaves room for RTCP, retransmissions and data.
const HEADROOM: f64 = 0.85;
/// Estimates within this band around the target change nothing.
const DEADBAND: f64 = 0.10;
/// How long the estimate must stay high before we climb.
const CLIMB_AFTER: Duration = Duration::from_secs(2);
/// Largest single climb.
const CLIMB_FACTOR: f64 = 1.5;

impl BitrateController {
    pub fn new(min: u32, max: u32) -> BitrateController {
        BitrateController {
            min,
            max,
            current: max,
            high_since: None,
        }
    }

    pub fn current(&self) -> u32 {
        self.current
    }

    /// Feeds the lowest live estimate (bits/s; `None` when nobody reports one).
    /// Returns the new encoder bitrate when it should change.
    pub fn update(&mut self, now: Instant, lowest_estimate: Option<u64>) -> Option<u32> {
        let estimate = lowest_estimate?;
        let wanted = ((estimate as f64 * HEADROOM) as u64)
            .clamp(u64::from(self.min), u64::from(self.max)) as u32;
        let current = f64::from(self.current);
        let next = if f64::from(wanted) < current * (1.0 - DEADBAND) {
            self.high_since = None;
            wanted
        } else if f64::from(wanted) > current * (1.0 + DEADBAND) {
            let since = *self.high_since.get_or_insert(now);
            if now.duration_since(since) < CLIMB_AFTER {
                return None;
            }
            self.high_since = Some(now);
            wanted.min((current * CLIMB_FACTOR) as u32)
        } else {
            self.high_since = None;
            return None;
        };
        (next != self.current).then(|| {
            self.current = next;
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn drops_at_once_to_fit_the_slowest_link() {
        let t0 = Instant::now();
        let mut c = BitrateController::new(150_000, 2_000_000);
        assert_eq!(c.update(t0, Some(1_000_000)), Some(850_000));
        assert_eq!(c.update(t0, None), None, "no estimate, no change");
    }

    #[test]
    fn small_wobbles_change_nothing() {
        let t0 = Instant::now();
        let mut c = BitrateController::new(150_000, 2_000_000);
        c.update(t0, Some(1_000_000));
        for (i, e) in [1_050_000, 960_000, 1_040_000, 980_000]
            .into_iter()
            .enumerate()
        {
            assert_eq!(c.update(ms(t0, 100 * i as u64 + 100), Some(e)), None);
        }
        assert_eq!(c.current(), 850_000);
    }

    #[test]
    fn climbs_only_after_the_estimate_stays_high_and_in_bounded_steps() {
        let t0 = Instant::now();
        let mut c = BitrateController::new(150_000, 2_000_000);
        c.update(t0, Some(400_000)); // 340 kb/s
        assert_eq!(c.update(ms(t0, 100), Some(3_000_000)), None);
        assert_eq!(c.update(ms(t0, 1_900), Some(3_000_000)), None);
        assert_eq!(
            c.update(ms(t0, 2_100), Some(3_000_000)),
            Some(510_000),
            "x1.5 at most"
        );
        assert_eq!(
            c.update(ms(t0, 2_200), Some(3_000_000)),
            None,
            "then wait again"
        );
        assert_eq!(c.update(ms(t0, 4_100), Some(3_000_000)), Some(765_000));
    }

    #[test]
    fn a_dip_restarts_the_climb_timer_and_bounds_hold() {
        let t0 = Instant::now();
        let mut c = BitrateController::new(150_000, 2_000_000);
        c.update(t0, Some(400_000));
        c.update(ms(t0, 100), Some(3_000_000));
        assert_eq!(
            c.update(ms(t0, 1_000), Some(400_000)),
            None,
            "back inside the band"
        );
        assert_eq!(
            c.update(ms(t0, 2_500), Some(3_000_000)),
            None,
            "timer restarted"
        );
        assert_eq!(
            c.update(ms(t0, 3_000), Some(10_000)),
            Some(150_000),
            "floor"
        );
        let mut c = BitrateController::new(150_000, 2_000_000);
        assert_eq!(
            c.update(t0, Some(100_000_000)),
            None,
            "already at the ceiling"
        );
    }
}
