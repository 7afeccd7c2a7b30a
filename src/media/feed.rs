//! Encoded video from the network loop to a consumer on a thread of its own
//! (a local display of the operator's camera, ...), never blocking the loop:
//! a small bounded queue. A consumer always starts at a keyframe; when it
//! falls behind and the queue is full, frames are dropped up to the next
//! keyframe (P-frames after a gap only show garbage), and one is asked for.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use super::EncodedFrame;

#[derive(Debug, Default)]
struct Shared {
    keyframe_wanted: AtomicBool,
    dropped: AtomicU64,
}

/// The loop's end.
#[derive(Debug)]
pub struct FeedSender {
    frames: SyncSender<EncodedFrame>,
    shared: Arc<Shared>,
    /// Nothing is queued until the next keyframe.
    resync: bool,
}

/// The consumer's end.
#[derive(Debug)]
pub struct FeedReceiver {
    frames: Receiver<EncodedFrame>,
    shared: Arc<Shared>,
}

/// A feed holding at most `capacity` frames.
pub fn video_feed(capacity: usize) -> (FeedSender, FeedReceiver) {
    let (tx, rx) = sync_channel(capacity);
    let shared = Arc::new(Shared {
        keyframe_wanted: AtomicBool::new(true),
        dropped: AtomicU64::new(0),
    });
    let sender = FeedSender {
        frames: tx,
        shared: shared.clone(),
        resync: true,
    };
    (sender, FeedReceiver { frames: rx, shared })
}

impl FeedSender {
    /// Queues the frame if the consumer can decode it; never blocks. False
    /// once the consumer is gone (drop the sender then).
    pub fn send(&mut self, frame: &EncodedFrame) -> bool {
        if self.resync && !frame.keyframe {
            return true;
        }
        match self.frames.try_send(frame.clone()) {
            Ok(()) => self.resync = false,
            Err(TrySendError::Full(_)) => {
                self.resync = true;
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                self.shared.keyframe_wanted.store(true, Ordering::SeqCst);
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
        true
    }

    /// True once per keyframe wanted: at the start, after a drop, or when
    /// the consumer asked.
    pub fn take_keyframe_request(&self) -> bool {
        self.shared.keyframe_wanted.swap(false, Ordering::SeqCst)
    }
}

impl FeedReceiver {
    /// The next frame; `Disconnected` once the loop is gone.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<EncodedFrame, RecvTimeoutError> {
        self.frames.recv_timeout(timeout)
    }

    /// Asks for a keyframe (e.g. the decoder failed).
    pub fn request_keyframe(&self) {
        self.shared.keyframe_wanted.store(true, Ordering::SeqCst);
    }

    /// Frames dropped because this consumer fell behind.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn frame(n: u64, keyframe: bool) -> EncodedFrame {
        EncodedFrame {
            data: vec![n as u8].into(),
            captured: Instant::now(),
            rtp_time: n * 3000,
            keyframe,
        }
    }

    fn received(rx: &FeedReceiver) -> Vec<u64> {
        std::iter::from_fn(|| rx.recv_timeout(Duration::ZERO).ok())
            .map(|f| f.rtp_time / 3000)
            .collect()
    }

    #[test]
    fn a_consumer_starts_at_a_keyframe_and_asks_for_one() {
        let (mut tx, rx) = video_feed(4);
        assert!(tx.take_keyframe_request());
        assert!(!tx.take_keyframe_request());
        for (n, key) in [(0, false), (1, true), (2, false)] {
            assert!(tx.send(&frame(n, key)));
        }
        assert_eq!(received(&rx), [1, 2]);
        rx.request_keyframe();
        assert!(tx.take_keyframe_request());
    }

    #[test]
    fn a_full_queue_drops_up_to_the_next_keyframe_and_asks_for_it() {
        let (mut tx, rx) = video_feed(2);
        tx.take_keyframe_request();
        for (n, key) in [(0, true), (1, false), (2, false), (3, false), (4, true)] {
            tx.send(&frame(n, key));
        }
        assert_eq!(rx.dropped(), 2, "2 and 4 found the queue full; 3 waited");
        assert!(tx.take_keyframe_request());
        assert_eq!(received(&rx), [0, 1]);
        tx.send(&frame(5, false));
        tx.send(&frame(6, true));
        tx.send(&frame(7, false));
        assert_eq!(received(&rx), [6, 7], "5 waited for a keyframe");
    }

    #[test]
    fn a_gone_consumer_is_reported() {
        let (mut tx, rx) = video_feed(2);
        drop(rx);
        assert!(!tx.send(&frame(0, true)));
    }
}
