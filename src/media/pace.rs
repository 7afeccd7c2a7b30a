//! Real-time pacing for the synthetic sources (test pattern, tone), which
//! have no hardware clock to block on.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next_due: Option<Instant>,
}

impl Pacer {
    pub fn new(interval: Duration) -> Pacer {
        Pacer {
            interval,
            next_due: None,
        }
    }

    /// The due time of the next tick, asked at `now`.
    /// After an idle pause (nobody watching) it starts a fresh schedule
    /// instead of bursting to catch up.
    pub fn next(&mut self, now: Instant) -> Instant {
        let due = match self.next_due {
            Some(due) if due + self.interval > now => due,
            _ => now,
        };
        self.next_due = Some(due + self.interval);
        due
    }

    /// Sleeps until the next tick is due and returns its due time.
    pub fn wait(&mut self) -> Instant {
        let now = Instant::now();
        let due = self.next(now);
        if due > now {
            std::thread::sleep(due - now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_keep_the_grid_and_restart_after_a_pause() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Pacer::new(Duration::from_millis(20));
        assert_eq!(p.next(t0), t0);
        assert_eq!(p.next(ms(5)), ms(20), "early: wait for the grid");
        assert_eq!(p.next(ms(30)), ms(40), "a little late: stay on the grid");
        assert_eq!(
            p.next(ms(500)),
            ms(500),
            "long pause: no burst of catch-up ticks"
        );
        assert_eq!(p.next(ms(505)), ms(520));
    }
}
