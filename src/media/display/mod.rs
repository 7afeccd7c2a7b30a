//! The robot's own screen (`[display]`): an H.264 stream decoded and
//! painted on a framebuffer by a thread of its own, so the network loop
//! only hands it access units (a lock and a push, never a wait). A screen
//! slower than the video skips pictures; one that stops getting video goes
//! black after [`IDLE_CLEAR`]. The backends are [`fbdev`] (the Linux
//! framebuffer) and [`memory`] (a screen in memory); [`core`] decides what
//! to do next and [`paint`] converts and scales, both without hardware.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

use self::core::{ScreenCore, Step};
use crate::media::h264::decode::StreamDecoder;
use crate::media::layer::Layer;
use crate::media::record::shell::OPERATOR;
use crate::media::sink::{Feed, MediaSink};
use crate::media::EncodedFrame;

pub mod core;
pub mod fbdev;
pub mod memory;
pub mod paint;
#[cfg(test)]
mod tests;

/// How long without video before the screen goes black.
pub const IDLE_CLEAR: Duration = Duration::from_secs(3);

/// `[display]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DisplayConfig {
    /// The framebuffer, e.g. `/dev/fb0`, or `memory` (a screen nobody
    /// sees); unset: no display.
    pub device: Option<PathBuf>,
    /// What it shows: `operator` (the operator's camera, for telepresence)
    /// or the name of one of the robot's cameras (`[[video]] name`).
    pub show: Option<String>,
}

/// What the screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    /// The robot's own camera: the index in config order, and its name.
    Camera { index: usize, name: String },
    /// The operator's camera, as the robot receives it (telepresence).
    Operator,
}

impl Show {
    /// What `show =` said.
    pub fn name(&self) -> &str {
        match self {
            Show::Camera { name, .. } => name,
            Show::Operator => OPERATOR,
        }
    }
}

impl DisplayConfig {
    /// What the screen shows, given the cameras' names in config order;
    /// `None` without a display. A missing or unknown `show` is an error.
    pub fn show(&self, cameras: &[&str]) -> Result<Option<Show>, String> {
        if self.device.is_none() {
            return Ok(None);
        }
        let names = cameras.join(", ");
        let Some(show) = &self.show else {
            return Err(format!(
                "[display] needs show: {OPERATOR:?} or the name of a camera ({names})"
            ));
        };
        if show == OPERATOR {
            return Ok(Some(Show::Operator));
        }
        let index = cameras.iter().position(|c| c == show).ok_or_else(|| {
            format!("[display] show = {show:?}: no camera by that name (cameras: {names})")
        })?;
        Ok(Some(Show::Camera {
            index,
            name: show.clone(),
        }))
    }
}

/// Where each colour channel sits in a pixel: (bit offset, bit length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelLayout {
    pub bits_per_pixel: u32,
    pub red: (u32, u32),
    pub green: (u32, u32),
    pub blue: (u32, u32),
}

impl PixelLayout {
    pub const RGB565: PixelLayout = PixelLayout {
        bits_per_pixel: 16,
        red: (11, 5),
        green: (5, 6),
        blue: (0, 5),
    };
    pub const XRGB8888: PixelLayout = PixelLayout {
        bits_per_pixel: 32,
        red: (16, 8),
        green: (8, 8),
        blue: (0, 8),
    };

    pub fn bytes_per_pixel(&self) -> usize {
        self.bits_per_pixel as usize / 8
    }

    /// 16 or 32 bits per pixel, each channel 1 to 8 bits inside the pixel.
    pub fn is_supported(&self) -> bool {
        let fits = |(offset, length): (u32, u32)| {
            (1..=8).contains(&length) && offset + length <= self.bits_per_pixel
        };
        matches!(self.bits_per_pixel, 16 | 32)
            && fits(self.red)
            && fits(self.green)
            && fits(self.blue)
    }
}

/// A screen's size and memory layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next (at least `width` pixels).
    pub stride: usize,
    pub layout: PixelLayout,
}

impl Geometry {
    /// Bytes in one whole screen image.
    pub fn image_len(&self) -> usize {
        self.stride * self.height as usize
    }
}

/// Somewhere to show pictures.
pub trait Framebuffer: Send {
    /// The device, for logs and `/api/status`.
    fn name(&self) -> &str;
    fn geometry(&self) -> Geometry;
    /// Shows one whole image laid out as [`geometry`](Self::geometry) says.
    fn show(&mut self, image: &[u8]) -> io::Result<()>;
}

/// Why the screen cannot be used; each names the device.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("display {0}: no such device (no framebuffer driver loaded, or another fbN)")]
    NoDevice(String),
    #[error("display {0}: permission denied (run telepi in the `video` group)")]
    PermissionDenied(String),
    #[error("display {device}: {source}")]
    Open { device: String, source: io::Error },
    #[error("display {device}: not a framebuffer ({source})")]
    NotFramebuffer { device: String, source: io::Error },
    #[error("display {device}: unsupported framebuffer (type {kind}, visual {visual}): telepi draws packed true-colour pixels")]
    NotTrueColour {
        device: String,
        kind: u32,
        visual: u32,
    },
    #[error("display {device}: {} bits per pixel (red {:?}, green {:?}, blue {:?}) is not supported: \
             telepi draws 16 bpp (RGB565) and 32 bpp (XRGB8888)",
            layout.bits_per_pixel, layout.red, layout.green, layout.blue)]
    Depth { device: String, layout: PixelLayout },
    #[error("display {device}: {width}x{height} with {stride} bytes per line makes no sense")]
    Nonsense {
        device: String,
        width: u32,
        height: u32,
        stride: u32,
    },
}

/// Opens the framebuffer `device` names: `memory`, or a Linux framebuffer.
pub fn open_framebuffer(device: &std::path::Path) -> Result<Box<dyn Framebuffer>, DisplayError> {
    if device == std::path::Path::new("memory") {
        return Ok(Box::new(
            memory::MemoryFramebuffer::new(memory::DEFAULT_GEOMETRY).0,
        ));
    }
    Ok(Box::new(fbdev::LinuxFramebuffer::open(device)?))
}

#[derive(Debug)]
struct Shared {
    core: Mutex<ScreenCore>,
    wake: Condvar,
    shutdown: AtomicBool,
    shown: AtomicU64,
    decode_errors: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ScreenCore> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running screen: feed it the shown source's access units.
pub struct Display {
    shared: Arc<Shared>,
    show: Show,
    device: String,
    geometry: Geometry,
    thread: Option<JoinHandle<()>>,
}

impl Display {
    /// Starts painting on `framebuffer` (black until the first keyframe).
    pub fn start(framebuffer: Box<dyn Framebuffer>, show: Show, idle_after: Duration) -> Display {
        let shared = Arc::new(Shared {
            core: Mutex::new(ScreenCore::new(idle_after)),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            shown: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
        });
        let (device, geometry) = (framebuffer.name().to_string(), framebuffer.geometry());
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("display".into())
            .spawn(move || run(framebuffer, &thread_shared))
            .expect("spawning the display thread");
        tracing::info!(
            "display {device}: {}x{} at {} bpp, showing {}",
            geometry.width,
            geometry.height,
            geometry.layout.bits_per_pixel,
            show.name()
        );
        Display {
            shared,
            show,
            device,
            geometry,
            thread: Some(thread),
        }
    }

    /// Whether the screen shows camera `index` (and so watches it like a peer).
    pub fn shows_camera(&self, index: usize) -> bool {
        matches!(self.show, Show::Camera { index: i, .. } if i == index)
    }

    pub fn shows_operator(&self) -> bool {
        self.show == Show::Operator
    }

    fn shows(&self, feed: Feed) -> bool {
        match feed {
            Feed::Camera(index) => self.shows_camera(index),
            Feed::Operator => self.shows_operator(),
        }
    }

    /// One Annex-B access unit of what the screen shows (`keyframe`: an
    /// IDR with its SPS and PPS); returns at once.
    pub fn push(&self, access_unit: &Arc<[u8]>, keyframe: bool) {
        self.shared
            .lock()
            .push(access_unit, keyframe, Instant::now());
        self.shared.wake.notify_one();
    }

    /// True once each time the screen needs a keyframe from its source.
    pub fn take_keyframe_request(&self) -> bool {
        self.shared.lock().take_keyframe_request()
    }

    pub fn status(&self) -> DisplayStatus {
        DisplayStatus {
            device: self.device.clone(),
            width: self.geometry.width,
            height: self.geometry.height,
            bits_per_pixel: self.geometry.layout.bits_per_pixel,
            show: self.show.name().to_string(),
            frames_shown: self.shared.shown.load(Ordering::Relaxed),
            frames_dropped: self.shared.lock().dropped,
            decode_errors: self.shared.decode_errors.load(Ordering::Relaxed),
        }
    }
}

/// The screen's part of `/api/status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DisplayStatus {
    pub device: String,
    pub width: u32,
    pub height: u32,
    pub bits_per_pixel: u32,
    pub show: String,
    pub frames_shown: u64,
    pub frames_dropped: u64,
    pub decode_errors: u64,
}

impl Drop for Display {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        drop(self.shared.lock());
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The display thread: waits for work, decodes, paints; black at the end.
fn run(mut framebuffer: Box<dyn Framebuffer>, shared: &Shared) {
    let geometry = framebuffer.geometry();
    let mut image = vec![0; geometry.image_len()];
    let mut decoder = None;
    let mut last_error = String::new();
    let mut show = |framebuffer: &mut Box<dyn Framebuffer>, image: &[u8]| {
        if let Err(e) = framebuffer.show(image) {
            let error = e.to_string();
            if error != last_error {
                tracing::warn!("display {}: {error}", framebuffer.name());
                last_error = error;
            }
        }
    };
    show(&mut framebuffer, &image);
    while let Some(step) = next_step(shared) {
        match step {
            Step::Decode(units) => {
                let Some(frame) = decode(&mut decoder, &units, shared) else {
                    continue;
                };
                if let Err(e) = paint::paint(&frame, &geometry, &mut image) {
                    tracing::warn!("display: {e}");
                    continue;
                }
                show(&mut framebuffer, &image);
                shared.shown.fetch_add(1, Ordering::Relaxed);
                shared.lock().painted();
            }
            Step::Clear => {
                image.fill(0);
                show(&mut framebuffer, &image);
            }
            // next_step waits these out itself.
            Step::Wait(_) => {}
        }
    }
    image.fill(0);
    show(&mut framebuffer, &image);
}

/// Blocks until there is something to do; `None` at shutdown.
fn next_step(shared: &Shared) -> Option<Step> {
    let mut core = shared.lock();
    loop {
        if shared.shutdown.load(Ordering::SeqCst) {
            return None;
        }
        core = match core.next(Instant::now()) {
            Step::Wait(None) => shared.wake.wait(core).unwrap_or_else(|e| e.into_inner()),
            Step::Wait(Some(deadline)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let woken = shared.wake.wait_timeout(core, left);
                woken.unwrap_or_else(|e| e.into_inner()).0
            }
            step => return Some(step),
        };
    }
}

/// Decodes `units` in order; the last picture, if any. An error (or a
/// panic in the decoder's wrapper) drops the rest until the next keyframe.
fn decode(
    decoder: &mut Option<StreamDecoder>,
    units: &[Arc<[u8]>],
    shared: &Shared,
) -> Option<crate::media::Frame> {
    let mut picture = None;
    for unit in units {
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            if decoder.is_none() {
                *decoder = Some(StreamDecoder::new()?);
            }
            decoder.as_mut().map_or(Ok(None), |d| d.decode(unit))
        }))
        .unwrap_or_else(|_| {
            // What a panic left behind is not worth trusting: a fresh decoder.
            *decoder = None;
            Err(io::Error::other("the decoder panicked"))
        });
        match decoded {
            Ok(Some(frame)) => picture = Some(frame),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!("display: {e}; waiting for the next keyframe");
                shared.decode_errors.fetch_add(1, Ordering::Relaxed);
                shared.lock().decode_failed();
                return picture;
            }
        }
    }
    picture
}

/// The screen as a sink of the network loop: it watches the camera it shows
/// (or the operator's), main layer only.
impl MediaSink for Arc<Display> {
    fn video(&mut self, _now: Instant, feed: Feed, layer: Layer, frame: &EncodedFrame) {
        if layer == Layer::Main && self.shows(feed) {
            self.push(&frame.data, frame.keyframe);
        }
    }

    fn viewers(&self, camera: usize) -> usize {
        usize::from(self.shows_camera(camera))
    }

    fn take_keyframe_request(&mut self, feed: Feed) -> bool {
        self.shows(feed) && Display::take_keyframe_request(self)
    }
}
