//! Drives are perishable. After a blip a page's drives can arrive late and
//! in a burst (from a reliable channel, or an older page); obeying them
//! would replay seconds-old stick positions. Each drive may carry `t`, the
//! page's own clock when it was sent. The clocks differ by an unknown
//! offset, but `arrival - t` is that offset plus the trip's delay, so its
//! lowest value seen is the offset plus the fastest trip: a drive that took
//! [`MAX_LATE`] longer than that is stale and dropped, and the deadman
//! stops the motors as if it had never come.

use std::time::{Duration, Instant};

/// Later than the fastest trip by more than this: stale. Well above the
/// jitter of a bad link (60 ± 30 ms, 150 ± 75 ms were measured without a
/// deadman trip); as long as the default deadman, which has stopped the
/// motors by the time such a drive arrives.
pub const MAX_LATE: Duration = Duration::from_millis(300);

/// One page's drive timing.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Freshness {
    /// Lowest `arrival - t` seen, in ms (arrival counted from `epoch`).
    fastest_ms: Option<f64>,
}

impl Freshness {
    /// Whether a drive the page stamped `t` (ms) that arrives `now` is fresh.
    pub(super) fn is_fresh(&mut self, epoch: Instant, now: Instant, t: f64) -> bool {
        let trip = now.saturating_duration_since(epoch).as_secs_f64() * 1e3 - t;
        let fastest = self.fastest_ms.map_or(trip, |f| f.min(trip));
        self.fastest_ms = Some(fastest);
        trip - fastest <= MAX_LATE.as_secs_f64() * 1e3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drive_much_later_than_the_fastest_is_stale_whatever_the_clock_offset() {
        let epoch = Instant::now();
        let at = |ms| epoch + Duration::from_millis(ms);
        // The page's clock is 1e6 ms ahead of ours; it sends every 100 ms.
        let mut f = Freshness::default();
        assert!(
            f.is_fresh(epoch, at(1000), 1_001_000.0 - 20.0),
            "20 ms trip"
        );
        assert!(f.is_fresh(epoch, at(1100), 1_001_100.0 - 5.0), "faster");
        assert!(
            f.is_fresh(epoch, at(1400), 1_001_200.0),
            "195 ms late: jitter"
        );
        // A blip: drives sent at 2000..2900 arrive together at 3000.
        assert!(!f.is_fresh(epoch, at(3000), 1_002_000.0), "995 ms late");
        assert!(!f.is_fresh(epoch, at(3000), 1_002_690.0), "305 ms late");
        assert!(f.is_fresh(epoch, at(3000), 1_002_900.0), "95 ms late");
        assert!(f.is_fresh(epoch, at(3100), 1_003_095.0), "the next one");
    }

    #[test]
    fn a_late_first_drive_does_not_make_later_ones_stale() {
        let epoch = Instant::now();
        let mut f = Freshness::default();
        let at = |ms| epoch + Duration::from_millis(ms);
        assert!(
            f.is_fresh(epoch, at(5000), 3000.0),
            "nothing to compare yet"
        );
        assert!(f.is_fresh(epoch, at(5100), 5090.0), "faster: the new best");
        assert!(!f.is_fresh(epoch, at(5200), 4000.0));
    }
}
