//! Snapshots of passthrough cameras (H.264 straight from the camera, no raw
//! frame to encode): the next IDR the peers get, decoded with openh264 and
//! encoded as JPEG on the requesting HTTP worker, never on the network loop.
//! The round logic is in [`core`]; this is its lock, wake-ups and decoder.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use self::core::{Outcome, Rounds, Step};
use crate::media::convert::i420_to_jpeg;
use crate::media::h264::decode::decode_idr;

mod core;

/// JPEG quality of every snapshot, raw or decoded.
pub const JPEG_QUALITY: u8 = 85;
/// How long a snapshot waits for the camera's next keyframe: passthrough
/// cameras send one every GOP (a second or two) whether asked or not.
pub const IDR_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub struct IdrSnapshots {
    rounds: Mutex<Rounds>,
    wake: Condvar,
}

impl IdrSnapshots {
    pub fn new(timeout: Duration) -> IdrSnapshots {
        IdrSnapshots {
            rounds: Mutex::new(Rounds::new(timeout)),
            wake: Condvar::new(),
        }
    }

    /// The pipeline thread passes every keyframe (SPS, PPS, IDR) here: a
    /// reference-count increment, and a wake-up when a snapshot waits for it.
    pub fn offer(&self, access_unit: &Arc<[u8]>) {
        if self.lock().offer(access_unit) {
            self.wake.notify_all();
        }
    }

    /// Blocks until the next keyframe is decoded to a JPEG, or why not.
    /// Concurrent callers share one round and one decode; the first of a
    /// round calls `ask_for_keyframe`.
    pub fn jpeg(&self, ask_for_keyframe: impl FnOnce()) -> Outcome {
        let mut rounds = self.lock();
        let (ticket, started) = rounds.join(Instant::now());
        if started {
            ask_for_keyframe();
        }
        loop {
            rounds = match rounds.next(ticket, Instant::now()) {
                Step::Done(outcome) => return outcome,
                Step::Wait(None) => self.wake.wait(rounds).unwrap_or_else(|e| e.into_inner()),
                Step::Wait(Some(deadline)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let woken = self.wake.wait_timeout(rounds, left);
                    woken.unwrap_or_else(|e| e.into_inner()).0
                }
                Step::Decode(access_unit) => {
                    drop(rounds);
                    let outcome = idr_to_jpeg(&access_unit);
                    let mut rounds = self.lock();
                    rounds.finish(ticket, outcome);
                    self.wake.notify_all();
                    rounds
                }
            };
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rounds> {
        self.rounds.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn idr_to_jpeg(access_unit: &[u8]) -> Outcome {
    // The decoder wrapper slices the C decoder's buffers by the sizes it
    // reports: a panic must become an outcome, or the round's other
    // requesters would wait for ever.
    let jpeg = catch_unwind(AssertUnwindSafe(|| {
        decode_idr(access_unit).and_then(|frame| i420_to_jpeg(&frame, JPEG_QUALITY))
    }))
    .unwrap_or_else(|_| Err(std::io::Error::other("the decoder panicked")));
    jpeg.map(Arc::from).map_err(|e| {
        tracing::warn!(
            "snapshot: the camera's keyframe ({} bytes) did not decode: {e}",
            access_unit.len()
        );
        format!("the camera's keyframe did not decode: {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::convert::jpeg_to_i420;
    use crate::media::encoder::openh264::OpenH264Encoder;
    use crate::media::source::pattern::TestPattern;
    use crate::media::{VideoEncoder, VideoSource};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pattern_idr() -> Arc<[u8]> {
        let mut source = TestPattern::new(320, 240, 30).unwrap();
        let mut encoder = OpenH264Encoder::new(320, 240, 30, 1_000_000).unwrap();
        let frame = source.next_frame().unwrap();
        encoder.encode(&frame, true).unwrap().unwrap().into()
    }

    /// Starts `n` snapshot requests, waits until they all joined, and offers `idr`.
    fn requests_served_by(idr: Arc<[u8]>, n: usize) -> (Vec<Outcome>, usize) {
        let snapshots = Arc::new(IdrSnapshots::new(Duration::from_secs(5)));
        let asked = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let (snapshots, asked) = (snapshots.clone(), asked.clone());
                std::thread::spawn(move || {
                    snapshots.jpeg(|| {
                        asked.fetch_add(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        // Joining takes the lock; once all have, they sleep in the round.
        std::thread::sleep(Duration::from_millis(100));
        snapshots.offer(&idr);
        let outcomes = threads.into_iter().map(|t| t.join().unwrap()).collect();
        (outcomes, asked.load(Ordering::SeqCst))
    }

    #[test]
    fn concurrent_requests_get_one_jpeg_of_the_next_idr() {
        let (outcomes, asked) = requests_served_by(pattern_idr(), 3);
        assert_eq!(asked, 1, "one keyframe asked for");
        let first = outcomes[0].clone().unwrap();
        for outcome in &outcomes {
            assert!(Arc::ptr_eq(outcome.as_ref().unwrap(), &first), "one decode");
        }
        let image = jpeg_to_i420(&first).unwrap();
        assert_eq!((image.width, image.height), (320, 240));
    }

    #[test]
    fn a_corrupt_idr_is_a_reason_for_everyone() {
        let idr = pattern_idr();
        let corrupt: Arc<[u8]> = Arc::from(&idr[..40]);
        let (outcomes, _) = requests_served_by(corrupt, 2);
        for outcome in outcomes {
            let reason = outcome.unwrap_err();
            assert!(reason.contains("did not decode"), "{reason}");
        }
    }

    #[test]
    fn no_idr_is_a_reason_after_the_timeout() {
        let snapshots = IdrSnapshots::new(Duration::from_millis(50));
        let started = Instant::now();
        let reason = snapshots.jpeg(|| {}).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(reason.contains("no keyframe"), "{reason}");
    }
}
