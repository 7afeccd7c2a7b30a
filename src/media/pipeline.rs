//! The capture → encode thread. One encode feeds every peer: the network loop
//! receives each access unit once, as an `Arc<[u8]>`, and writes it to all.
//! The thread sleeps while nobody watches.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::convert::i420_to_jpeg;
use super::demand::{Demand, Hold};
use super::h264::annexb::is_idr;
// Re-exported: the hub and the loop name them `media::pipeline::...`.
pub use super::keyframe::{KeyframeReason, KeyframeThrottle};
use super::layer::{LayerCounters, LowEncode, LowShared};
use super::snapshot::{IdrSnapshots, IDR_TIMEOUT, JPEG_QUALITY};
use super::{EncodedFrame, Frame, PixelFormat, SourceInfo, VideoEncoder, VideoSource};

/// The encoder name of sources that deliver H.264 themselves.
const PASSTHROUGH: &str = "passthrough";

/// Monotonic counts of the pipeline thread's work.
#[derive(Debug, Default)]
struct VideoCounters {
    captured: AtomicU64,
    /// Encoded, or passed through (H.264 sources).
    encoded: AtomicU64,
    keyframes: AtomicU64,
    /// Keyframes asked for by the network loop, by reason (the throttle may merge them).
    keyframe_requests_new_peer: AtomicU64,
    keyframe_requests_loss: AtomicU64,
    keyframe_requests_snapshot: AtomicU64,
    /// The encoder skipped the frame (rate control) or failed on it.
    dropped_by_encoder: AtomicU64,
    /// Encoded, but dropped: the network loop's queue (two frames) was full.
    dropped_loop_behind: AtomicU64,
    /// Snapshots that woke the camera because nobody was watching it.
    snapshot_wakes: AtomicU64,
}

/// State shared between the network loop and the pipeline thread.
#[derive(Debug)]
pub struct VideoShared {
    pub source: SourceInfo,
    pub encoder: &'static str,
    viewers: Demand,
    /// Bit set of pending [`KeyframeReason`]s.
    keyframe_wanted: AtomicU8,
    target_bitrate: AtomicU64,
    counters: VideoCounters,
    /// The newest raw frame, for snapshots; moved in after encoding, never copied.
    latest_raw: Mutex<Option<Frame>>,
    /// Signalled with each new `latest_raw`.
    raw_arrived: Condvar,
    /// Snapshots of passthrough sources, which have no raw frame.
    idr_snapshots: IdrSnapshots,
    /// What the main encode sent on.
    pub main_counters: LayerCounters,
    /// The low layer (`layers = "auto"`, not for passthrough sources).
    pub low: Option<LowShared>,
}

impl VideoShared {
    /// Number of peers that want video; zero parks the thread.
    pub fn set_viewers(&self, n: usize) {
        self.viewers.set(n);
    }

    pub fn request_keyframe(&self, reason: KeyframeReason) {
        let count = match reason {
            KeyframeReason::NewPeer => &self.counters.keyframe_requests_new_peer,
            KeyframeReason::Loss => &self.counters.keyframe_requests_loss,
            KeyframeReason::Snapshot => &self.counters.keyframe_requests_snapshot,
        };
        count.fetch_add(1, Ordering::Relaxed);
        self.keyframe_wanted
            .fetch_or(reason_bit(reason), Ordering::SeqCst);
    }

    pub fn set_bitrate(&self, bps: u32) {
        self.target_bitrate.store(u64::from(bps), Ordering::SeqCst);
    }

    /// `/api/snapshot.jpg`: the newest raw frame, or for a passthrough
    /// source its next keyframe decoded; else why there is none. A camera
    /// nobody watches is woken until it gives a fresh picture (this blocks
    /// up to [`IDR_TIMEOUT`]), so a snapshot is never a stale one.
    pub fn snapshot_jpeg(&self) -> Result<Vec<u8>, SnapshotError> {
        let awake = (self.viewers.get() == 0).then(|| self.wake_for_snapshot());
        if self.encoder != PASSTHROUGH {
            let frame = self.raw_frame(awake.is_some())?;
            return i420_to_jpeg(&frame, JPEG_QUALITY).map_err(SnapshotError::Jpeg);
        }
        let jpeg = self
            .idr_snapshots
            .jpeg(|| self.request_keyframe(KeyframeReason::Snapshot))
            .map_err(SnapshotError::Keyframe)?;
        Ok(jpeg.to_vec())
    }

    fn wake_for_snapshot(&self) -> Hold<'_> {
        self.counters.snapshot_wakes.fetch_add(1, Ordering::Relaxed);
        self.viewers.hold()
    }

    /// The newest raw frame; `woken`: one captured from now on, as the
    /// frames kept from before the camera slept are stale.
    fn raw_frame(&self, woken: bool) -> Result<Frame, SnapshotError> {
        let asked = Instant::now();
        let deadline = asked + IDR_TIMEOUT;
        let mut latest = self.latest_raw.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(frame) = latest.as_ref().filter(|f| !woken || f.captured >= asked) {
                return Ok(frame.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SnapshotError::NoPicture(IDR_TIMEOUT));
            }
            let waited = self.raw_arrived.wait_timeout(latest, left);
            latest = waited.unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn keep_raw(&self, frame: Frame) {
        *self.latest_raw.lock().unwrap_or_else(|e| e.into_inner()) = Some(frame);
        self.raw_arrived.notify_all();
    }

    /// Frames and keyframes through the pipeline since start, for status and metrics.
    pub fn counters(&self) -> PipelineCounters {
        let c = &self.counters;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        PipelineCounters {
            frames_captured: get(&c.captured),
            frames_encoded: get(&c.encoded),
            keyframes_encoded: get(&c.keyframes),
            keyframe_requests: KeyframeRequests {
                new_peer: get(&c.keyframe_requests_new_peer),
                loss: get(&c.keyframe_requests_loss),
                snapshot: get(&c.keyframe_requests_snapshot),
            },
            frames_dropped_by_encoder: get(&c.dropped_by_encoder),
            frames_dropped_loop_behind: get(&c.dropped_loop_behind),
            snapshot_wakes: get(&c.snapshot_wakes),
        }
    }

    pub fn shutdown(&self) {
        self.viewers.shutdown();
    }
}

/// Why `/api/snapshot.jpg` has no picture (a 503).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the camera gave no picture within {0:?}")]
    NoPicture(Duration),
    /// The raw frame did not encode to JPEG.
    #[error("{0}")]
    Jpeg(std::io::Error),
    /// A passthrough camera's keyframe: none came, or it did not decode
    /// (shared by every request of one round, so in words).
    #[error("{0}")]
    Keyframe(String),
}

/// A camera's pipeline counters read at one moment, for status and metrics.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct PipelineCounters {
    pub frames_captured: u64,
    pub frames_encoded: u64,
    pub keyframes_encoded: u64,
    pub keyframe_requests: KeyframeRequests,
    pub frames_dropped_by_encoder: u64,
    pub frames_dropped_loop_behind: u64,
    pub snapshot_wakes: u64,
}

/// Keyframes asked of the encoder, by [`KeyframeReason`].
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct KeyframeRequests {
    pub new_peer: u64,
    pub loss: u64,
    pub snapshot: u64,
}

pub struct Pipeline {
    pub shared: Arc<VideoShared>,
    pub frames: smol::channel::Receiver<EncodedFrame>,
    /// The low layer's frames, if it has one.
    pub low_frames: Option<smol::channel::Receiver<EncodedFrame>>,
    thread: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the thread. `encoder` is `None` for sources that deliver H.264
    /// themselves; `low` is the low layer's encoder and size, if it has one.
    pub fn spawn(
        source: Box<dyn VideoSource>,
        encoder: Option<Box<dyn VideoEncoder>>,
        keyframe_interval: Duration,
        low: Option<(Box<dyn VideoEncoder>, u32, u32)>,
    ) -> Pipeline {
        let (low_encode, low_shared) = match low.filter(|_| encoder.is_some()) {
            Some((encoder, width, height)) => {
                let (encode, shared) = LowEncode::new(encoder, width, height, keyframe_interval);
                (Some(encode), Some(shared))
            }
            None => (None, None),
        };
        let shared = Arc::new(VideoShared {
            source: source.info(),
            encoder: encoder.as_ref().map_or(PASSTHROUGH, |e| e.name()),
            viewers: Demand::default(),
            keyframe_wanted: AtomicU8::new(0),
            target_bitrate: AtomicU64::new(0),
            counters: VideoCounters::default(),
            latest_raw: Mutex::new(None),
            raw_arrived: Condvar::new(),
            idr_snapshots: IdrSnapshots::new(IDR_TIMEOUT),
            main_counters: LayerCounters::default(),
            low: low_shared,
        });
        // Two frames of slack: if the loop is behind, newer frames win over queued ones.
        let (tx, rx) = smol::channel::bounded(2);
        let (low_tx, low_rx) = smol::channel::bounded(2);
        let low = low_encode.map(|encode| (encode, low_tx));
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("video".into())
            .spawn(move || run(source, encoder, low, &thread_shared, &tx, keyframe_interval))
            .expect("spawning the video thread");
        Pipeline {
            low_frames: shared.low.is_some().then_some(low_rx),
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
        if let Some(low) = &self.low_frames {
            low.close();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    mut source: Box<dyn VideoSource>,
    mut encoder: Option<Box<dyn VideoEncoder>>,
    mut low: Option<(LowEncode, smol::channel::Sender<EncodedFrame>)>,
    shared: &VideoShared,
    tx: &smol::channel::Sender<EncodedFrame>,
    keyframe_interval: Duration,
) {
    let mut throttle = KeyframeThrottle::new(keyframe_interval);
    let mut bitrate = 0;
    let epoch = Instant::now();
    // A source that keeps failing the same way (a camera that is gone) is
    // logged once, not twice a second.
    let mut last_error = String::new();
    let mut low_failing = false;
    let counters = &shared.counters;
    while shared.viewers.wait() {
        let frame = match source.next_frame() {
            Ok(frame) => {
                last_error.clear();
                counters.captured.fetch_add(1, Ordering::Relaxed);
                frame
            }
            Err(e) => {
                let error = e.to_string();
                if error != last_error {
                    tracing::warn!("video source {}: {error}", shared.source.name);
                    last_error = error;
                }
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        if shared.viewers.get() == 0 {
            // Awake for a snapshot only: keep its picture, send nothing.
            match frame.format {
                PixelFormat::H264 if is_idr(&frame.data) => {
                    shared.idr_snapshots.offer(&frame.data.into())
                }
                PixelFormat::I420 => shared.keep_raw(frame),
                _ => {}
            }
            continue;
        }
        let wanted = shared.keyframe_wanted.swap(0, Ordering::SeqCst);
        for reason in [
            KeyframeReason::NewPeer,
            KeyframeReason::Loss,
            KeyframeReason::Snapshot,
        ] {
            if wanted & reason_bit(reason) != 0 {
                throttle.request(reason);
            }
        }
        let wanted = shared.target_bitrate.load(Ordering::SeqCst) as u32;
        let (data, captured) = match (&mut encoder, frame.format) {
            (Some(enc), PixelFormat::I420) => {
                if wanted != 0 && wanted != bitrate {
                    enc.set_bitrate(wanted);
                    bitrate = wanted;
                }
                let idr = throttle.take(Instant::now());
                let encoded = enc.encode(&frame, idr);
                let captured = frame.captured;
                if let (Some((low, low_tx)), Some(low_shared)) = (&mut low, &shared.low) {
                    let rtp_time = rtp_time(epoch, captured);
                    match low.encode(&frame, low_shared, rtp_time) {
                        // A full queue drops the frame, as for the main layer.
                        Ok(Some(au)) => _ = low_tx.try_send(au),
                        Ok(None) => {}
                        // Logged once, not at every frame.
                        Err(e) if !low_failing => {
                            low_failing = true;
                            tracing::warn!("low layer encoder: {e}");
                        }
                        Err(_) => {}
                    }
                }
                shared.keep_raw(frame);
                if idr && !matches!(encoded, Ok(Some(_))) {
                    throttle.missed();
                }
                match encoded {
                    Ok(Some(au)) => (au, captured),
                    Ok(None) => {
                        counters.dropped_by_encoder.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Err(e) => {
                        counters.dropped_by_encoder.fetch_add(1, Ordering::Relaxed);
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
        counters.encoded.fetch_add(1, Ordering::Relaxed);
        let encoded = EncodedFrame {
            keyframe: is_idr(&data),
            data: data.into(),
            captured,
            rtp_time: rtp_time(epoch, captured),
        };
        shared.main_counters.count(&encoded);
        if encoded.keyframe {
            counters.keyframes.fetch_add(1, Ordering::Relaxed);
            shared.idr_snapshots.offer(&encoded.data);
        }
        if tx.try_send(encoded).is_err() {
            if tx.is_closed() {
                return;
            }
            counters.dropped_loop_behind.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The 90 kHz RTP clock of a frame captured at `captured`; both layers share it.
fn rtp_time(epoch: Instant, captured: Instant) -> u64 {
    (captured.saturating_duration_since(epoch).as_micros() * 9 / 100) as u64
}

fn reason_bit(reason: KeyframeReason) -> u8 {
    match reason {
        KeyframeReason::NewPeer => 1,
        KeyframeReason::Loss => 2,
        KeyframeReason::Snapshot => 4,
    }
}
