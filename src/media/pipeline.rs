//! The capture → encode thread. One encode feeds every peer: the network loop
//! receives each access unit once, as an `Arc<[u8]>`, and writes it to all.
//! The thread sleeps while nobody watches.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::demand::Demand;
use super::{EncodedFrame, Frame, PixelFormat, SourceInfo, VideoEncoder, VideoSource};

/// Keyframe requests arrive from every peer (join, PLI, FIR); this turns a
/// burst of them into at most one IDR per `min_interval`.
#[derive(Debug)]
pub struct KeyframeThrottle {
    min_interval: Duration,
    pending: bool,
    last: Option<Instant>,
}

impl KeyframeThrottle {
    pub fn new(min_interval: Duration) -> KeyframeThrottle {
        KeyframeThrottle {
            min_interval,
            pending: false,
            last: None,
        }
    }

    pub fn request(&mut self) {
        self.pending = true;
    }

    /// True when the frame encoded at `now` should be an IDR. A request made
    /// inside the interval stays pending and is served once the interval ends.
    pub fn take(&mut self, now: Instant) -> bool {
        let due = self.last.is_none_or(|last| now >= last + self.min_interval);
        if self.pending && due {
            self.pending = false;
            self.last = Some(now);
            true
        } else {
            false
        }
    }
}

/// State shared between the network loop and the pipeline thread.
#[derive(Debug)]
pub struct VideoShared {
    pub source: SourceInfo,
    pub encoder: &'static str,
    viewers: Demand,
    keyframe_wanted: AtomicBool,
    target_bitrate: AtomicU64,
    frames_encoded: AtomicU64,
    /// The newest raw frame, for snapshots; moved in after encoding, never copied.
    latest_raw: Mutex<Option<Frame>>,
}

impl VideoShared {
    /// Number of peers that want video; zero parks the thread.
    pub fn set_viewers(&self, n: usize) {
        self.viewers.set(n);
    }

    pub fn request_keyframe(&self) {
        self.keyframe_wanted.store(true, Ordering::SeqCst);
    }

    pub fn set_bitrate(&self, bps: u32) {
        self.target_bitrate.store(u64::from(bps), Ordering::SeqCst);
    }

    /// A copy of the newest raw (I420) frame, if the source delivers raw frames
    /// and anybody has been watching.
    pub fn latest_raw(&self) -> Option<Frame> {
        self.latest_raw
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn frames_encoded(&self) -> u64 {
        self.frames_encoded.load(Ordering::Relaxed)
    }

    pub fn shutdown(&self) {
        self.viewers.shutdown();
    }
}

pub struct Pipeline {
    pub shared: Arc<VideoShared>,
    pub frames: smol::channel::Receiver<EncodedFrame>,
    thread: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the thread. `encoder` is `None` for sources that deliver H.264 themselves.
    pub fn spawn(
        source: Box<dyn VideoSource>,
        encoder: Option<Box<dyn VideoEncoder>>,
        keyframe_interval: Duration,
    ) -> Pipeline {
        let shared = Arc::new(VideoShared {
            source: source.info(),
            encoder: encoder.as_ref().map_or("passthrough", |e| e.name()),
            viewers: Demand::default(),
            keyframe_wanted: AtomicBool::new(false),
            target_bitrate: AtomicU64::new(0),
            frames_encoded: AtomicU64::new(0),
            latest_raw: Mutex::new(None),
        });
        // Two frames of slack: if the loop is behind, newer frames win over queued ones.
        let (tx, rx) = smol::channel::bounded(2);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("video".into())
            .spawn(move || run(source, encoder, &thread_shared, &tx, keyframe_interval))
            .expect("spawning the video thread");
        Pipeline {
            shared,
            frames: rx,
            thread: Some(thread),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shared.shutdown();
        self.frames.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    mut source: Box<dyn VideoSource>,
    mut encoder: Option<Box<dyn VideoEncoder>>,
    shared: &VideoShared,
    tx: &smol::channel::Sender<EncodedFrame>,
    keyframe_interval: Duration,
) {
    let mut throttle = KeyframeThrottle::new(keyframe_interval);
    let mut bitrate = 0;
    let epoch = Instant::now();
    let mut seq = 0u64;
    while shared.viewers.wait() {
        let frame = match source.next_frame() {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!("video source {}: {e}", shared.source.name);
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        if shared.keyframe_wanted.swap(false, Ordering::SeqCst) {
            throttle.request();
        }
        let wanted = shared.target_bitrate.load(Ordering::SeqCst) as u32;
        let (data, captured) = match (&mut encoder, frame.format) {
            (Some(enc), PixelFormat::I420) => {
                if wanted != 0 && wanted != bitrate {
                    enc.set_bitrate(wanted);
                    bitrate = wanted;
                }
                let encoded = enc.encode(&frame, throttle.take(Instant::now()));
                let captured = frame.captured;
                *shared.latest_raw.lock().unwrap_or_else(|e| e.into_inner()) = Some(frame);
                match encoded {
                    Ok(Some(au)) => (au, captured),
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!("encoder {}: {e}", enc.name());
                        continue;
                    }
                }
            }
            (_, PixelFormat::H264) => (frame.data, frame.captured),
            (None, format) => {
                tracing::error!("source gives {format:?} but no encoder is configured");
                return;
            }
        };
        seq += 1;
        shared.frames_encoded.fetch_add(1, Ordering::Relaxed);
        let since = captured.saturating_duration_since(epoch);
        let encoded = EncodedFrame {
            keyframe: is_idr(&data),
            data: data.into(),
            captured,
            rtp_time: (since.as_micros() * 9 / 100) as u64,
            seq,
        };
        if tx.try_send(encoded).is_err() && tx.is_closed() {
            return;
        }
    }
}

/// True if an Annex-B access unit contains an IDR slice (NAL type 5).
pub fn is_idr(access_unit: &[u8]) -> bool {
    access_unit
        .windows(4)
        .any(|w| w[0] == 0 && w[1] == 0 && w[2] == 1 && w[3] & 0x1f == 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_serves_first_request_at_once_and_coalesces_a_burst() {
        let t0 = Instant::now();
        let mut t = KeyframeThrottle::new(Duration::from_millis(500));
        assert!(!t.take(t0), "no request, no keyframe");
        t.request();
        assert!(t.take(t0));
        for _ in 0..10 {
            t.request();
        }
        assert!(!t.take(t0 + Duration::from_millis(100)));
        assert!(!t.take(t0 + Duration::from_millis(499)));
        assert!(
            t.take(t0 + Duration::from_millis(500)),
            "pending request served after the interval"
        );
        assert!(
            !t.take(t0 + Duration::from_millis(2000)),
            "the burst produced exactly one more"
        );
    }

    #[test]
    fn idr_detection() {
        assert!(is_idr(&[0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x65, 9]));
        assert!(!is_idr(&[0, 0, 0, 1, 0x41, 1, 2]));
    }
}
