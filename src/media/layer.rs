//! A camera's encodes: the main one and, with `layers = "auto"`, a low
//! layer, a second encoder (openh264, or a second hardware context) fed a
//! downscale of the same frames, for viewers whose link cannot carry the main
//! one. It runs on the pipeline thread only while some viewer needs it;
//! which viewer gets which layer is decided in [`crate::rtc::layers`].

use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::h264::annexb::is_idr;
use super::keyframe::{KeyframeReason, KeyframeThrottle};
use super::{EncodedFrame, Frame, PixelFormat, VideoEncoder};

/// One of a camera's encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Main,
    Low,
}

/// Why a viewer is on its layer (shown on the page's HUD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// One encode for everybody (`layers = "single"`, or a passthrough source).
    Single,
    /// Just joined: it starts on the low layer while others watch (its link
    /// is unknown; the main layer's keyframe could swamp a slow one), and
    /// moves up once its estimate carries the main encode.
    Starting,
    /// Its link carries the main encode.
    FastLink,
    /// Its estimate is below what the main encode needs.
    SlowLink,
    /// No usable estimate (no feedback, or nonsense): it stays where it is.
    NoEstimate,
}

/// Frames, keyframes and bytes one encode produced since start.
#[derive(Debug, Default)]
pub struct LayerCounters {
    pub frames: AtomicU64,
    pub keyframes: AtomicU64,
    pub bytes: AtomicU64,
}

impl LayerCounters {
    pub fn count(&self, frame: &EncodedFrame) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.keyframes
            .fetch_add(u64::from(frame.keyframe), Ordering::Relaxed);
        (self.bytes).fetch_add(frame.data.len() as u64, Ordering::Relaxed);
    }

    pub fn status(&self) -> LayerCounts {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        LayerCounts {
            frames: get(&self.frames),
            keyframes: get(&self.keyframes),
            bytes: get(&self.bytes),
        }
    }
}

/// [`LayerCounters`] read at one moment, for status and metrics.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct LayerCounts {
    pub frames: u64,
    pub keyframes: u64,
    pub bytes: u64,
}

/// The network loop's side of the low layer.
#[derive(Debug)]
pub struct LowShared {
    pub width: u32,
    pub height: u32,
    /// Viewers on (or moving to) the low layer; zero parks its encoder.
    viewers: AtomicUsize,
    /// Pending requests: [`JOINING`] and/or [`LOSS`].
    keyframe_wanted: AtomicU8,
    target_bitrate: AtomicU64,
    pub counters: LayerCounters,
}

impl LowShared {
    pub fn set_viewers(&self, n: usize) {
        self.viewers.store(n, Ordering::SeqCst);
    }

    /// Throttled like the main encode's: a viewer switching to this layer
    /// within 100 ms, losses (PLI/FIR) once per keyframe interval.
    pub fn request_keyframe(&self, reason: KeyframeReason) {
        let bit = match reason {
            KeyframeReason::Loss => LOSS,
            KeyframeReason::NewPeer | KeyframeReason::Snapshot => JOINING,
        };
        self.keyframe_wanted.fetch_or(bit, Ordering::SeqCst);
    }

    pub fn set_bitrate(&self, bps: u32) {
        self.target_bitrate.store(u64::from(bps), Ordering::SeqCst);
    }
}

const JOINING: u8 = 1;
const LOSS: u8 = 2;

/// The pipeline thread's side: the low layer's encoder.
pub struct LowEncode {
    encoder: Box<dyn VideoEncoder>,
    throttle: KeyframeThrottle,
    bitrate: u32,
    /// Parked last frame: the next one it encodes must be an IDR.
    was_parked: bool,
    scaled: Frame,
}

impl LowEncode {
    pub fn new(
        encoder: Box<dyn VideoEncoder>,
        width: u32,
        height: u32,
        keyframe_interval: Duration,
    ) -> (LowEncode, LowShared) {
        let shared = LowShared {
            width,
            height,
            viewers: AtomicUsize::new(0),
            keyframe_wanted: AtomicU8::new(0),
            target_bitrate: AtomicU64::new(0),
            counters: LayerCounters::default(),
        };
        let encode = LowEncode {
            encoder,
            throttle: KeyframeThrottle::new(keyframe_interval),
            bitrate: 0,
            was_parked: true,
            scaled: Frame::black_i420(width, height),
        };
        (encode, shared)
    }

    /// Encodes a downscale of `frame` if some viewer needs the low layer.
    /// `Ok(None)`: parked, or the encoder skipped the frame.
    pub fn encode(
        &mut self,
        frame: &Frame,
        shared: &LowShared,
        rtp_time: u64,
    ) -> io::Result<Option<EncodedFrame>> {
        if shared.viewers.load(Ordering::SeqCst) == 0 {
            self.was_parked = true;
            return Ok(None);
        }
        let wanted = shared.keyframe_wanted.swap(0, Ordering::SeqCst);
        if std::mem::take(&mut self.was_parked) || wanted & JOINING != 0 {
            self.throttle.request(KeyframeReason::NewPeer);
        }
        if wanted & LOSS != 0 {
            self.throttle.request(KeyframeReason::Loss);
        }
        let wanted = shared.target_bitrate.load(Ordering::SeqCst) as u32;
        if wanted != 0 && wanted != self.bitrate {
            self.encoder.set_bitrate(wanted);
            self.bitrate = wanted;
        }
        downscale_i420(frame, &mut self.scaled)?;
        self.scaled.captured = frame.captured;
        let idr = self.throttle.take(Instant::now());
        let encoded = self.encoder.encode(&self.scaled, idr);
        if idr && !matches!(encoded, Ok(Some(_))) {
            self.throttle.missed();
        }
        Ok(encoded?.map(|au| {
            let frame = EncodedFrame {
                keyframe: is_idr(&au),
                data: au.into(),
                captured: frame.captured,
                rtp_time,
            };
            shared.counters.count(&frame);
            frame
        }))
    }
}

/// Shrinks an I420 frame into `out` (smaller, I420) by averaging boxes of
/// source pixels; rows and columns beyond a whole number of boxes are dropped.
pub fn downscale_i420(src: &Frame, out: &mut Frame) -> io::Result<()> {
    let (sw, sh) = (src.width as usize, src.height as usize);
    let (dw, dh) = (out.width as usize, out.height as usize);
    if src.format != PixelFormat::I420
        || dw == 0
        || dh == 0
        || dw > sw
        || dh > sh
        || src.data.len() < sw * sh * 3 / 2
        || out.data.len() < dw * dh * 3 / 2
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot downscale {sw}x{sh} {:?} to {dw}x{dh}", src.format),
        ));
    }
    let (src_y, src_chroma) = src.data.split_at(sw * sh);
    let (src_u, src_v) = src_chroma.split_at(sw * sh / 4);
    let (dst_y, dst_chroma) = out.data.split_at_mut(dw * dh);
    let (dst_u, dst_v) = dst_chroma.split_at_mut(dw * dh / 4);
    shrink_plane(src_y, sw, sh, dst_y, dw, dh);
    shrink_plane(src_u, sw / 2, sh / 2, dst_u, dw / 2, dh / 2);
    shrink_plane(&src_v[..sw * sh / 4], sw / 2, sh / 2, dst_v, dw / 2, dh / 2);
    Ok(())
}

fn shrink_plane(src: &[u8], sw: usize, sh: usize, dst: &mut [u8], dw: usize, dh: usize) {
    let (bx, by) = (sw / dw, sh / dh);
    let area = (bx * by) as u32;
    for (y, row) in dst.chunks_exact_mut(dw).take(dh).enumerate() {
        for (x, out) in row.iter_mut().enumerate() {
            let mut sum = 0u32;
            for line in src[(y * by) * sw..].chunks(sw).take(by) {
                sum += line[x * bx..x * bx + bx]
                    .iter()
                    .map(|&p| u32::from(p))
                    .sum::<u32>();
            }
            *out = ((sum + area / 2) / area) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::encoder::openh264::OpenH264Encoder;

    #[test]
    fn downscale_averages_boxes_in_every_plane() {
        let mut src = Frame::black_i420(8, 4);
        // Luma: left half 0, right half 200; chroma: U 100, V 50.
        for (i, p) in src.data[..32].iter_mut().enumerate() {
            *p = if i % 8 < 4 { 0 } else { 200 };
        }
        src.data[32..40].fill(100);
        src.data[40..48].fill(50);
        let mut out = Frame::black_i420(4, 2);
        downscale_i420(&src, &mut out).unwrap();
        assert_eq!(&out.data[..8], &[0, 0, 200, 200, 0, 0, 200, 200]);
        assert_eq!(&out.data[8..10], &[100, 100]);
        assert_eq!(&out.data[10..12], &[50, 50]);
        let mut bigger = Frame::black_i420(16, 8);
        assert!(downscale_i420(&src, &mut bigger).is_err());
    }

    #[test]
    fn the_low_layer_is_parked_without_viewers_and_starts_with_an_idr() {
        let (w, h) = (320, 240);
        let encoder = OpenH264Encoder::new(w / 2, h / 2, 30, 200_000).unwrap();
        let (mut low, shared) = LowEncode::new(Box::new(encoder), w / 2, h / 2, Duration::ZERO);
        let frame = Frame::black_i420(w, h);
        assert_eq!(low.encode(&frame, &shared, 0).unwrap(), None, "parked");
        shared.set_viewers(1);
        let first = low.encode(&frame, &shared, 3000).unwrap().unwrap();
        assert!(first.keyframe);
        assert_eq!(first.rtp_time, 3000);
        let second = low.encode(&frame, &shared, 6000).unwrap();
        assert!(second.is_none_or(|f| !f.keyframe));
        shared.request_keyframe(KeyframeReason::NewPeer);
        assert!(low.encode(&frame, &shared, 9000).unwrap().unwrap().keyframe);
        shared.set_viewers(0);
        assert_eq!(low.encode(&frame, &shared, 12000).unwrap(), None);
        shared.set_viewers(1);
        let resumed = low.encode(&frame, &shared, 15000).unwrap().unwrap();
        assert!(resumed.keyframe, "a parked layer resumes with an IDR");
        assert_eq!(shared.counters.keyframes.load(Ordering::Relaxed), 3);
    }
}
