//! Cameras through V4L2 (USB webcams, the Pi's legacy camera driver): the
//! mode nearest to the request (`mode.rs`), mmap streaming and conversion to
//! I420, or H.264 passthrough for cameras that encode themselves.

mod mode;

pub use mode::{CaptureFormat, Request};

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use v4l::v4l_sys as sys;

use self::mode::{choose_mode, no_usable_mode, substitution};
use crate::media::convert::{self, Layout};
use crate::media::h264::annexb::{self, ParameterSetCache};
use crate::media::v4l2::{fourcc_name, zeroed, Buffer, Device, Mapping, BUF_TYPE_VIDEO_CAPTURE};
use crate::media::{Frame, PixelFormat, SourceInfo, VideoSource};

const CAPTURE_BUFFERS: u32 = 4;
/// Longest wait for a frame before `next_frame` reports the camera as stuck.
const FRAME_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on H.264 data without a picture, should a camera send only that.
const MAX_PENDING_HEADERS: usize = 1 << 20;
/// Corrupt frames (e.g. a flaky USB cable) skipped before giving up.
const MAX_BAD_FRAMES: u32 = 10;

/// A V4L2 camera delivering I420 (converted) or H.264 (passthrough) frames.
pub struct V4l2Source {
    device: Device,
    buffers: Vec<Mapping>,
    format: CaptureFormat,
    layout: Layout,
    fps: u32,
    name: String,
    params: ParameterSetCache,
    /// H.264 parameter sets waiting for the picture they belong to.
    headers: Vec<u8>,
}

impl V4l2Source {
    /// Opens a capture device and starts streaming the mode nearest to `req`.
    pub fn open(path: &Path, req: &Request) -> io::Result<V4l2Source> {
        let device = Device::open(path)?;
        let caps = device.caps()?;
        let c = caps.device_caps;
        if c & (sys::V4L2_CAP_VIDEO_M2M | sys::V4L2_CAP_VIDEO_M2M_MPLANE) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: {} is a codec (memory-to-memory), not a camera",
                    path.display(),
                    caps.card
                ),
            ));
        }
        if c & sys::V4L2_CAP_VIDEO_CAPTURE == 0 {
            let why = if c & sys::V4L2_CAP_VIDEO_CAPTURE_MPLANE != 0 {
                "only multi-planar capture, which needs libcamera: use the pipe source with rpicam-vid"
            } else {
                "no video capture"
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: {} has {why}", path.display(), caps.card),
            ));
        }
        if c & sys::V4L2_CAP_STREAMING == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: {} doesn't support streaming I/O",
                    path.display(),
                    caps.card
                ),
            ));
        }
        let modes = device.modes(req.width, req.height);
        let choice = choose_mode(&modes, req).ok_or_else(|| {
            let offered: Vec<u32> = device
                .formats(BUF_TYPE_VIDEO_CAPTURE)
                .iter()
                .map(|f| f.fourcc)
                .collect();
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: {}",
                    path.display(),
                    no_usable_mode(req.format, &offered)
                ),
            )
        })?;

        let mut fmt: sys::v4l2_format = zeroed();
        fmt.type_ = BUF_TYPE_VIDEO_CAPTURE;
        // `pix` is the member for single-planar capture.
        fmt.fmt.pix.width = choice.width;
        fmt.fmt.pix.height = choice.height;
        fmt.fmt.pix.pixelformat = choice.fourcc;
        fmt.fmt.pix.field = sys::v4l2_field_V4L2_FIELD_NONE;
        device.set_format(&mut fmt)?;
        // SAFETY: the driver filled `pix` for this type.
        let pix = unsafe { fmt.fmt.pix };
        if pix.pixelformat != choice.fourcc {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: asked for {}, driver switched to {}",
                    path.display(),
                    fourcc_name(choice.fourcc),
                    fourcc_name(pix.pixelformat)
                ),
            ));
        }
        convert::i420_len(pix.width, pix.height)?;
        let bytes_per_pixel = if choice.format == CaptureFormat::Yuyv {
            2
        } else {
            1
        };
        let stride = match pix.bytesperline as usize {
            0 => pix.width as usize * bytes_per_pixel,
            s => s,
        };
        let luma_rows = match choice.format {
            CaptureFormat::Yu12 | CaptureFormat::Nv12 => {
                planar_luma_rows(stride, pix.height, pix.sizeimage as usize)
            }
            _ => pix.height,
        };
        let layout = Layout {
            luma_rows,
            ..Layout::new(pix.width, pix.height, stride)
        };

        let mut fps = choice.fps.round().max(1.0) as u32;
        if let Some(interval) = choice.interval {
            match device.set_interval(BUF_TYPE_VIDEO_CAPTURE, interval) {
                Ok(got) if got.fps() >= 1.0 => fps = got.fps().round() as u32,
                Ok(_) => {}
                Err(e) => tracing::warn!("{e}; keeping the driver's frame rate"),
            }
        }

        let buffers = device.map_buffers(BUF_TYPE_VIDEO_CAPTURE, CAPTURE_BUFFERS, false)?;
        for index in 0..buffers.len() as u32 {
            device.queue(&mut Buffer::new(BUF_TYPE_VIDEO_CAPTURE, index, false))?;
        }
        device.stream_on(BUF_TYPE_VIDEO_CAPTURE)?;
        if let Some(substitution) = substitution(req, pix.width, pix.height, fps) {
            tracing::warn!("{}: {substitution}", path.display());
        }
        tracing::info!(
            "{}: {} ({}) capturing {} {}x{} at {fps} fps ({})",
            path.display(),
            caps.card,
            caps.driver,
            fourcc_name(choice.fourcc),
            pix.width,
            pix.height,
            if choice.format == CaptureFormat::H264 {
                "H.264 passthrough"
            } else {
                "converted to I420"
            },
        );
        Ok(V4l2Source {
            device,
            buffers,
            format: choice.format,
            layout,
            fps,
            name: format!("v4l2:{}", path.display()),
            params: ParameterSetCache::new(),
            headers: Vec::new(),
        })
    }

    /// Waits for the next filled buffer. Raw formats skip to the newest one
    /// so a slow consumer sees fresh frames; H.264 must keep every frame.
    fn dequeue(&mut self) -> io::Result<Buffer> {
        loop {
            if !self.device.wait(libc::POLLIN, FRAME_TIMEOUT)? {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{}: no frame for {FRAME_TIMEOUT:?}",
                        self.device.path().display()
                    ),
                ));
            }
            let mut latest: Option<Buffer> = None;
            while let Some(buf) = self.device.dequeue(BUF_TYPE_VIDEO_CAPTURE, false)? {
                if let Some(mut older) = latest.replace(buf) {
                    self.device.queue(&mut older)?;
                }
                if self.format == CaptureFormat::H264 {
                    break;
                }
            }
            if let Some(buf) = latest {
                return Ok(buf);
            }
        }
    }

    /// The frame in `buf`; `None` for a buffer holding only H.264 parameter
    /// sets, which are kept for the next picture.
    fn convert(&mut self, buf: &Buffer) -> io::Result<Option<(PixelFormat, Vec<u8>)>> {
        let mapping = self.buffers.get(buf.index() as usize).ok_or_else(|| {
            io::Error::other(format!("driver returned unknown buffer {}", buf.index()))
        })?;
        let data = buf.payload(mapping);
        if buf.flags() & sys::V4L2_BUF_FLAG_ERROR != 0 || data.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "driver flagged the frame as bad",
            ));
        }
        let l = &self.layout;
        let i420 = |data| Ok(Some((PixelFormat::I420, data)));
        match self.format {
            CaptureFormat::Yu12 => i420(convert::yu12_to_i420(data, l)?),
            CaptureFormat::Nv12 => i420(convert::nv12_to_i420(data, l)?),
            CaptureFormat::Yuyv => i420(convert::yuyv_to_i420(data, l)?),
            CaptureFormat::Mjpeg => {
                let img = convert::jpeg_to_i420(data)?;
                if (img.width, img.height) != (l.width, l.height) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "MJPEG frame is {}x{}, expected {}x{}",
                            img.width, img.height, l.width, l.height
                        ),
                    ));
                }
                i420(img.data)
            }
            CaptureFormat::H264 => {
                // Some drivers send SPS/PPS in a buffer of their own.
                if self.headers.len() > MAX_PENDING_HEADERS {
                    self.headers.clear();
                }
                self.headers.extend_from_slice(data);
                if !annexb::nal_units(data).any(|n| annexb::is_vcl(annexb::nal_type(n))) {
                    return Ok(None);
                }
                let au = std::mem::take(&mut self.headers);
                Ok(Some((PixelFormat::H264, self.params.process(au))))
            }
        }
    }
}

impl VideoSource for V4l2Source {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: self.name.clone(),
            width: self.layout.width,
            height: self.layout.height,
            fps: self.fps,
            format: if self.format == CaptureFormat::H264 {
                PixelFormat::H264
            } else {
                PixelFormat::I420
            },
        }
    }

    fn next_frame(&mut self) -> io::Result<Frame> {
        let mut bad = 0;
        loop {
            let mut buf = self.dequeue()?;
            let stamped = buf.flags() & sys::V4L2_BUF_FLAG_TIMESTAMP_MASK
                == sys::V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
            let captured = if stamped {
                capture_instant(Instant::now(), monotonic_now(), buf.timestamp())
            } else {
                Instant::now()
            };
            let converted = self.convert(&buf);
            // The buffer goes back to the driver whatever the conversion did.
            self.device.queue(&mut buf)?;
            match converted {
                Ok(None) => {}
                Ok(Some((format, data))) => {
                    return Ok(Frame {
                        width: self.layout.width,
                        height: self.layout.height,
                        format,
                        data,
                        captured,
                    })
                }
                Err(e) if bad < MAX_BAD_FRAMES => {
                    bad += 1;
                    tracing::debug!("{}: skipping frame: {e}", self.name);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        // Errors are moot here: the device is going away either way.
        let _ = self.device.stream_off(BUF_TYPE_VIDEO_CAPTURE);
        self.buffers.clear();
        let _ = self.device.request_buffers(BUF_TYPE_VIDEO_CAPTURE, 0);
    }
}

/// Rows of the luma plane for single-buffer planar formats: some drivers pad
/// it to a multiple of 16 rows, which shows in `sizeimage`.
pub fn planar_luma_rows(stride: usize, height: u32, sizeimage: usize) -> u32 {
    let padded = height.next_multiple_of(16);
    let needed = stride.saturating_mul(padded as usize).saturating_mul(3) / 2;
    if padded != height && sizeimage >= needed {
        padded
    } else {
        height
    }
}

/// Converts a buffer's timestamp (CLOCK_MONOTONIC, like `Instant`) into the
/// `Instant` it was captured; implausible stamps fall back to `now`.
pub fn capture_instant(now: Instant, monotonic_now: Duration, stamp: Duration) -> Instant {
    match monotonic_now.checked_sub(stamp) {
        Some(age) if age < Duration::from_secs(1) => now.checked_sub(age).unwrap_or(now),
        _ => now,
    }
}

fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            width: 640,
            height: 480,
            fps: 30,
            format: None,
        }
    }

    #[test]
    fn padded_luma_planes_are_detected_from_sizeimage() {
        assert_eq!(planar_luma_rows(1920, 1080, 1920 * 1088 * 3 / 2), 1088);
        assert_eq!(planar_luma_rows(1920, 1080, 1920 * 1080 * 3 / 2), 1080);
        assert_eq!(planar_luma_rows(640, 480, 640 * 480 * 3 / 2), 480);
    }

    #[test]
    fn capture_time_from_buffer_stamps() {
        let now = Instant::now();
        let mono = Duration::from_secs(1000);
        let t = capture_instant(now, mono, mono - Duration::from_millis(30));
        assert_eq!(now - t, Duration::from_millis(30));
        assert_eq!(
            capture_instant(now, mono, mono + Duration::from_secs(1)),
            now,
            "future"
        );
        assert_eq!(
            capture_instant(now, mono, Duration::ZERO),
            now,
            "ancient or unset"
        );
    }
    #[test]
    fn opening_a_missing_device_is_a_clear_error() {
        let e = V4l2Source::open(Path::new("/dev/video-telepi-none"), &request())
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("/dev/video-telepi-none"), "{e}");
        let e = V4l2Source::open(Path::new("/dev/null"), &request())
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a V4L2 device"), "{e}");
    }
}
