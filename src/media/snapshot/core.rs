//! Snapshots of a passthrough camera, sans-IO: requests join a round, the
//! round waits for the stream's next IDR, one requester decodes it and every
//! requester of the round gets that one outcome. Time goes in as `now`; the
//! shell does the locking, the waiting and the decoding.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// A JPEG, or why there is none.
pub type Outcome = Result<Arc<[u8]>, String>;

/// Which round a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// What a request should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Sleep until woken, or until this instant if there is one.
    Wait(Option<Instant>),
    /// Decode this access unit and report with [`Rounds::finish`]; the
    /// others of the round wait for it.
    Decode(Arc<[u8]>),
    Done(Outcome),
}

#[derive(Debug)]
enum Phase {
    WaitingForIdr,
    /// The pipeline handed an IDR over; nobody decodes it yet.
    Caught(Arc<[u8]>),
    Decoding,
}

#[derive(Debug)]
struct Round {
    ticket: Ticket,
    deadline: Instant,
    phase: Phase,
}

#[derive(Debug)]
pub struct Rounds {
    timeout: Duration,
    next_ticket: u64,
    current: Option<Round>,
    /// The newest finished round's outcome: it answers that round's
    /// requesters, and older ones (a newer picture is as good).
    last: Outcome,
}

impl Rounds {
    /// `timeout`: how long a round waits for an IDR before giving up.
    pub fn new(timeout: Duration) -> Rounds {
        Rounds {
            timeout,
            next_ticket: 0,
            current: None,
            last: Err("no snapshot yet".into()),
        }
    }

    /// A request arrives. It joins the round under way, or starts one; the
    /// flag says a round was started, so a keyframe should be asked for.
    pub fn join(&mut self, now: Instant) -> (Ticket, bool) {
        if let Some(round) = &self.current {
            return (round.ticket, false);
        }
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.current = Some(Round {
            ticket,
            deadline: now + self.timeout,
            phase: Phase::WaitingForIdr,
        });
        (ticket, true)
    }

    /// A keyframe went by in the stream. True when a round took it, so the
    /// shell wakes the requesters.
    pub fn offer(&mut self, access_unit: &Arc<[u8]>) -> bool {
        match &mut self.current {
            Some(round) if matches!(round.phase, Phase::WaitingForIdr) => {
                round.phase = Phase::Caught(access_unit.clone());
                true
            }
            _ => false,
        }
    }

    pub fn next(&mut self, ticket: Ticket, now: Instant) -> Step {
        let Some(round) = self.current.as_mut().filter(|r| r.ticket == ticket) else {
            // Its round finished: that outcome, or a newer one, is `last`.
            return Step::Done(self.last.clone());
        };
        match &round.phase {
            Phase::Caught(access_unit) => {
                let access_unit = access_unit.clone();
                round.phase = Phase::Decoding;
                Step::Decode(access_unit)
            }
            Phase::WaitingForIdr if now >= round.deadline => {
                let outcome = Err(format!(
                    "no keyframe came from the camera within {} s",
                    self.timeout.as_secs_f32()
                ));
                self.finish(ticket, outcome.clone());
                Step::Done(outcome)
            }
            Phase::WaitingForIdr => Step::Wait(Some(round.deadline)),
            // The decoder always finishes (the shell turns a panic into an outcome).
            Phase::Decoding => Step::Wait(None),
        }
    }

    /// The decoding requester's result, for everyone in its round.
    pub fn finish(&mut self, ticket: Ticket, outcome: Outcome) {
        if self.current.as_ref().is_some_and(|r| r.ticket == ticket) {
            self.current = None;
            self.last = outcome;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(3);

    fn au(byte: u8) -> Arc<[u8]> {
        Arc::from(vec![0, 0, 0, 1, 0x65, byte])
    }

    #[test]
    fn the_first_request_asks_for_a_keyframe_and_later_ones_share_its_round() {
        let t0 = Instant::now();
        let mut rounds = Rounds::new(TIMEOUT);
        let (first, ask) = rounds.join(t0);
        assert!(ask);
        let (second, ask) = rounds.join(t0);
        assert!(!ask, "a keyframe is already asked for");
        assert_eq!(first, second);
        assert_eq!(rounds.next(first, t0), Step::Wait(Some(t0 + TIMEOUT)));
    }

    #[test]
    fn one_requester_decodes_the_next_idr_and_all_get_its_picture() {
        let t0 = Instant::now();
        let mut rounds = Rounds::new(TIMEOUT);
        let (a, _) = rounds.join(t0);
        let (b, _) = rounds.join(t0);
        assert!(rounds.offer(&au(1)));
        assert!(!rounds.offer(&au(2)), "the round keeps the first IDR");
        assert_eq!(rounds.next(b, t0), Step::Decode(au(1)));
        assert_eq!(rounds.next(a, t0), Step::Wait(None), "one decode");
        let jpeg: Arc<[u8]> = Arc::from(&b"jpeg"[..]);
        rounds.finish(b, Ok(jpeg.clone()));
        assert_eq!(rounds.next(a, t0), Step::Done(Ok(jpeg.clone())));
        assert_eq!(rounds.next(b, t0), Step::Done(Ok(jpeg)));
        let (c, ask) = rounds.join(t0);
        assert!(ask && c != a, "a later request waits for a newer picture");
    }

    #[test]
    fn a_round_without_an_idr_ends_with_a_reason_at_its_deadline() {
        let t0 = Instant::now();
        let mut rounds = Rounds::new(TIMEOUT);
        let (a, _) = rounds.join(t0);
        let (b, _) = rounds.join(t0 + Duration::from_secs(2));
        assert!(matches!(
            rounds.next(a, t0 + Duration::from_secs(2)),
            Step::Wait(_)
        ));
        let Step::Done(Err(reason)) = rounds.next(a, t0 + TIMEOUT) else {
            panic!("not done at the deadline");
        };
        assert!(reason.contains("no keyframe"), "{reason}");
        assert_eq!(rounds.next(b, t0 + TIMEOUT), Step::Done(Err(reason)));
        assert!(!rounds.offer(&au(1)), "a late IDR is nobody's");
    }

    #[test]
    fn a_decode_failure_is_everybodys_answer_and_the_next_round_starts_afresh() {
        let t0 = Instant::now();
        let mut rounds = Rounds::new(TIMEOUT);
        let (a, _) = rounds.join(t0);
        rounds.offer(&au(1));
        assert!(matches!(rounds.next(a, t0), Step::Decode(_)));
        let (b, _) = rounds.join(t0);
        rounds.finish(a, Err("corrupt".into()));
        assert_eq!(rounds.next(b, t0), Step::Done(Err("corrupt".into())));
        let (c, ask) = rounds.join(t0);
        assert!(ask);
        rounds.offer(&au(2));
        assert_eq!(rounds.next(c, t0), Step::Decode(au(2)));
    }

    #[test]
    fn a_requester_overtaken_by_a_newer_round_gets_the_newer_picture() {
        let t0 = Instant::now();
        let mut rounds = Rounds::new(TIMEOUT);
        let (a, _) = rounds.join(t0);
        rounds.offer(&au(1));
        let (b, _) = rounds.join(t0);
        assert!(matches!(rounds.next(b, t0), Step::Decode(_)));
        rounds.finish(b, Ok(Arc::from(&b"old"[..])));
        let (c, _) = rounds.join(t0);
        rounds.offer(&au(2));
        assert!(matches!(rounds.next(c, t0), Step::Decode(_)));
        rounds.finish(c, Ok(Arc::from(&b"new"[..])));
        assert_eq!(rounds.next(a, t0), Step::Done(Ok(Arc::from(&b"new"[..]))));
    }
}
