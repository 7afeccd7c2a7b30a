//! Cameras through V4L2 (USB webcams, the Pi's legacy camera driver): mode
//! negotiation, mmap streaming and conversion to I420, or H.264 passthrough
//! for cameras that encode themselves.
//!
//! The `v4l` crate supplies the kernel structs and ioctl numbers. The calls go
//! through the small [`Device`] wrapper here because the crate's higher-level
//! types panic on values they don't know (new colorspaces, non-UTF-8 names, a
//! failed STREAMOFF in `Drop`) and don't cover the multi-planar
//! memory-to-memory devices that `m2m.rs` drives with the same wrapper.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use v4l::v4l2::vidioc;
use v4l::v4l_sys as sys;

use super::annexb::{self, ParameterSetCache};
use super::convert::{self, Layout};
use super::{Frame, PixelFormat, SourceInfo, VideoSource};

/// A V4L2 pixel format code from its four characters.
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*code)
}

/// The four characters of a pixel format code, for people.
pub fn fourcc_name(code: u32) -> String {
    let name: String = code
        .to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { ' ' })
        .collect();
    name.trim_end().to_string()
}

pub const FOURCC_YU12: u32 = fourcc(b"YU12");
pub const FOURCC_NV12: u32 = fourcc(b"NV12");
pub const FOURCC_YUYV: u32 = fourcc(b"YUYV");
pub const FOURCC_MJPG: u32 = fourcc(b"MJPG");
pub const FOURCC_JPEG: u32 = fourcc(b"JPEG");
pub const FOURCC_H264: u32 = fourcc(b"H264");

/// Camera formats this source can use, in order of preference when several
/// deliver the wanted size and rate: cheapest conversion first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CaptureFormat {
    Yu12,
    Nv12,
    Yuyv,
    Mjpeg,
    /// Encoded by the camera; passed through without re-encoding.
    H264,
}

impl CaptureFormat {
    pub fn from_fourcc(code: u32) -> Option<CaptureFormat> {
        match code {
            FOURCC_YU12 => Some(CaptureFormat::Yu12),
            FOURCC_NV12 => Some(CaptureFormat::Nv12),
            FOURCC_YUYV => Some(CaptureFormat::Yuyv),
            FOURCC_MJPG | FOURCC_JPEG => Some(CaptureFormat::Mjpeg),
            FOURCC_H264 => Some(CaptureFormat::H264),
            _ => None,
        }
    }

    /// Parses a configuration value (`yuyv`, `nv12`, `yu12`/`i420`, `mjpeg`/`mjpg`, `h264`).
    pub fn parse(name: &str) -> Option<CaptureFormat> {
        match name.to_ascii_lowercase().as_str() {
            "yu12" | "i420" => Some(CaptureFormat::Yu12),
            "nv12" => Some(CaptureFormat::Nv12),
            "yuyv" => Some(CaptureFormat::Yuyv),
            "mjpeg" | "mjpg" => Some(CaptureFormat::Mjpeg),
            "h264" => Some(CaptureFormat::H264),
            _ => None,
        }
    }
}

/// Frame interval in seconds, as V4L2 states it (30 fps is 1/30).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub numerator: u32,
    pub denominator: u32,
}

impl Interval {
    pub fn fps(self) -> f64 {
        if self.numerator == 0 {
            0.0
        } else {
            f64::from(self.denominator) / f64::from(self.numerator)
        }
    }
}

/// Frame sizes a device offers for one format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameSizes {
    Discrete {
        width: u32,
        height: u32,
    },
    /// Any size in the range on the step grid (continuous has step 1).
    Stepwise {
        min_width: u32,
        max_width: u32,
        step_width: u32,
        min_height: u32,
        max_height: u32,
        step_height: u32,
    },
}

/// Frame rates a device offers for one format and size.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameRates {
    Discrete(Vec<Interval>),
    /// `min` is the shortest interval (highest rate).
    Stepwise {
        min: Interval,
        max: Interval,
    },
    /// The driver doesn't enumerate rates.
    Unknown,
}

/// One way the device can capture.
#[derive(Debug, Clone, PartialEq)]
pub struct Mode {
    /// The device's own code (MJPEG comes as `MJPG` or `JPEG`).
    pub fourcc: u32,
    pub format: CaptureFormat,
    pub width: u32,
    pub height: u32,
    pub rates: FrameRates,
}

/// What the configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// `None` picks automatically: raw formats (our encoder can then force
    /// keyframes and follow the bandwidth), H.264 only if nothing else works.
    pub format: Option<CaptureFormat>,
}

/// The mode picked for a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub fourcc: u32,
    pub format: CaptureFormat,
    pub width: u32,
    pub height: u32,
    /// Interval to ask for; `None` when the device doesn't say.
    pub interval: Option<Interval>,
    /// Rate expected from `interval` (the requested one if unknown).
    pub fps: f64,
}

/// The value on the grid `min + k * step` (within `[min, max]`) nearest to `want`.
pub fn fit_stepwise(min: u32, max: u32, step: u32, want: u32) -> u32 {
    let (min, max) = (min.min(max), max.max(min));
    let want = want.clamp(min, max);
    let step = step.max(1);
    let below = min + (want - min) / step * step;
    let above = below.saturating_add(step);
    if above <= max && above - want < want - below {
        above
    } else {
        below
    }
}

/// The rate closest to `fps` (ties go to the faster one) and the interval for it.
fn pick_rate(rates: &FrameRates, fps: u32) -> (Option<Interval>, f64) {
    let want = f64::from(fps);
    match rates {
        FrameRates::Discrete(intervals) => intervals
            .iter()
            .filter(|i| i.numerator != 0 && i.denominator != 0)
            .map(|&i| (Some(i), i.fps()))
            .min_by(|a, b| {
                let (da, db) = ((a.1 - want).abs(), (b.1 - want).abs());
                da.total_cmp(&db).then(b.1.total_cmp(&a.1))
            })
            .unwrap_or((None, want)),
        FrameRates::Stepwise { min, max } => {
            let (slowest, fastest) = (max.fps(), min.fps());
            if want > fastest {
                (Some(*min), fastest)
            } else if want < slowest {
                (Some(*max), slowest)
            } else {
                (
                    Some(Interval {
                        numerator: 1,
                        denominator: fps,
                    }),
                    want,
                )
            }
        }
        FrameRates::Unknown => (None, want),
    }
}

/// Picks the mode closest to the request: nearest size first, then the rate
/// that best reaches the wanted one, then the cheapest format. Odd sizes
/// (not representable in I420) are never picked.
pub fn choose_mode(modes: &[Mode], req: &Request) -> Option<Choice> {
    modes
        .iter()
        .filter(|m| req.format.is_none_or(|f| f == m.format))
        .filter(|m| convert::i420_len(m.width, m.height).is_ok())
        .map(|m| {
            let (interval, fps) = pick_rate(&m.rates, req.fps);
            let choice = Choice {
                fourcc: m.fourcc,
                format: m.format,
                width: m.width,
                height: m.height,
                interval,
                fps,
            };
            let passthrough = req.format.is_none() && m.format == CaptureFormat::H264;
            let size = m.width.abs_diff(req.width) + m.height.abs_diff(req.height);
            let millis = |x: f64| (x.max(0.0) * 1000.0).round() as u64;
            let shortfall = millis(f64::from(req.fps) - fps);
            let excess = millis(fps - f64::from(req.fps));
            ((passthrough, size, shortfall, m.format, excess), choice)
        })
        .min_by_key(|(key, _)| *key)
        .map(|(_, choice)| choice)
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

/// Kernel structs that are valid when all-zero (integers, pointers, unions of those).
trait Zeroable {}
impl Zeroable for sys::v4l2_capability {}
impl Zeroable for sys::v4l2_fmtdesc {}
impl Zeroable for sys::v4l2_frmsizeenum {}
impl Zeroable for sys::v4l2_frmivalenum {}
impl Zeroable for sys::v4l2_format {}
impl Zeroable for sys::v4l2_streamparm {}
impl Zeroable for sys::v4l2_requestbuffers {}
impl Zeroable for sys::v4l2_buffer {}
impl Zeroable for sys::v4l2_plane {}
impl Zeroable for sys::v4l2_selection {}

fn zeroed<T: Zeroable>() -> T {
    // SAFETY: only implemented for plain C structs where all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// `VIDIOC_S_SELECTION`, which the `v4l` crate doesn't define: `_IOWR('V', 95, struct v4l2_selection)`.
const VIDIOC_S_SELECTION: vidioc::_IOC_TYPE = ((3 << 30)
    | ((std::mem::size_of::<sys::v4l2_selection>() as u32) << 16)
    | ((b'V' as u32) << 8)
    | 95) as vidioc::_IOC_TYPE;

pub const BUF_TYPE_VIDEO_CAPTURE: u32 = sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
pub const BUF_TYPE_VIDEO_OUTPUT: u32 = sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT;
pub const BUF_TYPE_VIDEO_CAPTURE_MPLANE: u32 =
    sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
pub const BUF_TYPE_VIDEO_OUTPUT_MPLANE: u32 = sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_string()
}

/// What `VIDIOC_QUERYCAP` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps {
    pub driver: String,
    pub card: String,
    pub bus: String,
    /// Capabilities of this node (`V4L2_CAP_*`).
    pub device_caps: u32,
}

/// A format from `VIDIOC_ENUM_FMT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatDesc {
    pub fourcc: u32,
    pub description: String,
}

/// An open `/dev/video*` node.
pub struct Device {
    file: File,
    path: PathBuf,
}

impl Device {
    pub fn open(path: &Path) -> io::Result<Device> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| {
                let hint = if e.kind() == io::ErrorKind::PermissionDenied {
                    " (is the user in the 'video' group?)"
                } else {
                    ""
                };
                io::Error::new(e.kind(), format!("{}: {e}{hint}", path.display()))
            })?;
        Ok(Device {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// # Safety
    /// `T` must be the argument type the kernel expects for `request`, and any
    /// pointers inside it must be valid for the kernel to follow.
    unsafe fn ioctl<T>(&self, request: vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
        loop {
            match v4l::v4l2::ioctl(self.file.as_raw_fd(), request, (arg as *mut T).cast()) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => return result,
            }
        }
    }

    fn fail(&self, what: &str, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {what}: {e}", self.path.display()))
    }

    pub fn caps(&self) -> io::Result<Caps> {
        let mut caps: sys::v4l2_capability = zeroed();
        // SAFETY: VIDIOC_QUERYCAP takes a v4l2_capability.
        unsafe { self.ioctl(vidioc::VIDIOC_QUERYCAP, &mut caps) }
            .map_err(|e| self.fail("not a V4L2 device (QUERYCAP)", e))?;
        let device_caps = if caps.capabilities & sys::V4L2_CAP_DEVICE_CAPS != 0 {
            caps.device_caps
        } else {
            caps.capabilities
        };
        Ok(Caps {
            driver: c_string(&caps.driver),
            card: c_string(&caps.card),
            bus: c_string(&caps.bus_info),
            device_caps,
        })
    }

    /// Formats offered on queue `buf_type`.
    pub fn formats(&self, buf_type: u32) -> Vec<FormatDesc> {
        let mut out = Vec::new();
        for index in 0..256 {
            let mut desc: sys::v4l2_fmtdesc = zeroed();
            desc.index = index;
            desc.type_ = buf_type;
            // SAFETY: VIDIOC_ENUM_FMT takes a v4l2_fmtdesc.
            if unsafe { self.ioctl(vidioc::VIDIOC_ENUM_FMT, &mut desc) }.is_err() {
                break;
            }
            out.push(FormatDesc {
                fourcc: desc.pixelformat,
                description: c_string(&desc.description),
            });
        }
        out
    }

    pub fn frame_sizes(&self, code: u32) -> Vec<FrameSizes> {
        let mut out = Vec::new();
        for index in 0..256 {
            let mut e: sys::v4l2_frmsizeenum = zeroed();
            e.index = index;
            e.pixel_format = code;
            // SAFETY: VIDIOC_ENUM_FRAMESIZES takes a v4l2_frmsizeenum.
            if unsafe { self.ioctl(vidioc::VIDIOC_ENUM_FRAMESIZES, &mut e) }.is_err() {
                break;
            }
            // SAFETY: the union member is chosen by `type_`, as the kernel documents.
            match e.type_ {
                sys::v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_DISCRETE => {
                    let d = unsafe { e.__bindgen_anon_1.discrete };
                    out.push(FrameSizes::Discrete {
                        width: d.width,
                        height: d.height,
                    });
                }
                sys::v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_CONTINUOUS
                | sys::v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_STEPWISE => {
                    let s = unsafe { e.__bindgen_anon_1.stepwise };
                    out.push(FrameSizes::Stepwise {
                        min_width: s.min_width,
                        max_width: s.max_width,
                        step_width: s.step_width,
                        min_height: s.min_height,
                        max_height: s.max_height,
                        step_height: s.step_height,
                    });
                    // The first entry describes the whole range.
                    break;
                }
                _ => break,
            }
        }
        out
    }

    pub fn frame_rates(&self, code: u32, width: u32, height: u32) -> FrameRates {
        let mut discrete = Vec::new();
        for index in 0..256 {
            let mut e: sys::v4l2_frmivalenum = zeroed();
            e.index = index;
            e.pixel_format = code;
            e.width = width;
            e.height = height;
            // SAFETY: VIDIOC_ENUM_FRAMEINTERVALS takes a v4l2_frmivalenum.
            if unsafe { self.ioctl(vidioc::VIDIOC_ENUM_FRAMEINTERVALS, &mut e) }.is_err() {
                break;
            }
            let interval = |f: sys::v4l2_fract| Interval {
                numerator: f.numerator,
                denominator: f.denominator,
            };
            match e.type_ {
                sys::v4l2_frmivaltypes_V4L2_FRMIVAL_TYPE_DISCRETE => {
                    // SAFETY: `discrete` is the member for this type.
                    discrete.push(interval(unsafe { e.__bindgen_anon_1.discrete }));
                }
                sys::v4l2_frmivaltypes_V4L2_FRMIVAL_TYPE_CONTINUOUS
                | sys::v4l2_frmivaltypes_V4L2_FRMIVAL_TYPE_STEPWISE => {
                    // SAFETY: `stepwise` is the member for these types.
                    let s = unsafe { e.__bindgen_anon_1.stepwise };
                    return FrameRates::Stepwise {
                        min: interval(s.min),
                        max: interval(s.max),
                    };
                }
                _ => break,
            }
        }
        if discrete.is_empty() {
            FrameRates::Unknown
        } else {
            FrameRates::Discrete(discrete)
        }
    }

    /// Every mode the device offers in formats this crate can use. Stepwise
    /// sizes become the one size nearest to `want`.
    pub fn modes(&self, want_width: u32, want_height: u32) -> Vec<Mode> {
        let mut modes = Vec::new();
        for desc in self.formats(BUF_TYPE_VIDEO_CAPTURE) {
            let Some(format) = CaptureFormat::from_fourcc(desc.fourcc) else {
                continue;
            };
            let sizes = self.frame_sizes(desc.fourcc);
            let sizes: Vec<(u32, u32)> = if sizes.is_empty() {
                // Drivers that don't enumerate sizes adjust them in S_FMT.
                vec![(want_width, want_height)]
            } else {
                sizes
                    .iter()
                    .map(|s| match *s {
                        FrameSizes::Discrete { width, height } => (width, height),
                        FrameSizes::Stepwise {
                            min_width,
                            max_width,
                            step_width,
                            min_height,
                            max_height,
                            step_height,
                        } => (
                            fit_stepwise(min_width, max_width, step_width, want_width),
                            fit_stepwise(min_height, max_height, step_height, want_height),
                        ),
                    })
                    .collect()
            };
            for (width, height) in sizes {
                modes.push(Mode {
                    fourcc: desc.fourcc,
                    format,
                    width,
                    height,
                    rates: self.frame_rates(desc.fourcc, width, height),
                });
            }
        }
        modes
    }

    pub fn get_format(&self, buf_type: u32) -> io::Result<sys::v4l2_format> {
        let mut fmt: sys::v4l2_format = zeroed();
        fmt.type_ = buf_type;
        // SAFETY: VIDIOC_G_FMT takes a v4l2_format.
        unsafe { self.ioctl(vidioc::VIDIOC_G_FMT, &mut fmt) }.map_err(|e| self.fail("G_FMT", e))?;
        Ok(fmt)
    }

    /// Sets a format; the driver adjusts `fmt` to what it will really do.
    pub fn set_format(&self, fmt: &mut sys::v4l2_format) -> io::Result<()> {
        // SAFETY: VIDIOC_S_FMT takes a v4l2_format.
        unsafe { self.ioctl(vidioc::VIDIOC_S_FMT, fmt) }.map_err(|e| self.fail("S_FMT", e))
    }

    /// Asks for a frame interval on a capture or output queue; returns what the driver set.
    pub fn set_interval(&self, buf_type: u32, interval: Interval) -> io::Result<Interval> {
        let mut parm: sys::v4l2_streamparm = zeroed();
        parm.type_ = buf_type;
        let fract = sys::v4l2_fract {
            numerator: interval.numerator,
            denominator: interval.denominator,
        };
        // SAFETY: writing plain integers into the union member matching `type_`.
        unsafe {
            if buf_type == BUF_TYPE_VIDEO_CAPTURE {
                parm.parm.capture.timeperframe = fract;
            } else {
                parm.parm.output.timeperframe = fract;
            }
            self.ioctl(vidioc::VIDIOC_S_PARM, &mut parm)
        }
        .map_err(|e| self.fail("S_PARM", e))?;
        // SAFETY: the driver filled the member matching `type_`.
        let got = unsafe {
            if buf_type == BUF_TYPE_VIDEO_CAPTURE {
                parm.parm.capture.timeperframe
            } else {
                parm.parm.output.timeperframe
            }
        };
        Ok(Interval {
            numerator: got.numerator,
            denominator: got.denominator,
        })
    }

    /// Sets the crop rectangle of a queue (the visible part of padded frames).
    pub fn set_crop(&self, buf_type: u32, width: u32, height: u32) -> io::Result<()> {
        let mut sel: sys::v4l2_selection = zeroed();
        // Selection uses the single-planar type names for both API flavours.
        sel.type_ = match buf_type {
            BUF_TYPE_VIDEO_OUTPUT_MPLANE => BUF_TYPE_VIDEO_OUTPUT,
            BUF_TYPE_VIDEO_CAPTURE_MPLANE => BUF_TYPE_VIDEO_CAPTURE,
            other => other,
        };
        sel.target = sys::V4L2_SEL_TGT_CROP;
        sel.r = sys::v4l2_rect {
            left: 0,
            top: 0,
            width,
            height,
        };
        // SAFETY: VIDIOC_S_SELECTION takes a v4l2_selection.
        unsafe { self.ioctl(VIDIOC_S_SELECTION, &mut sel) }.map_err(|e| self.fail("S_SELECTION", e))
    }

    pub fn set_control(&self, id: u32, value: i32) -> io::Result<()> {
        let mut ctrl = sys::v4l2_control { id, value };
        // SAFETY: VIDIOC_S_CTRL takes a v4l2_control.
        unsafe { self.ioctl(vidioc::VIDIOC_S_CTRL, &mut ctrl) }
    }

    pub fn stream_on(&self, buf_type: u32) -> io::Result<()> {
        let mut t = buf_type;
        // SAFETY: VIDIOC_STREAMON takes the buffer type as an int.
        unsafe { self.ioctl(vidioc::VIDIOC_STREAMON, &mut t) }.map_err(|e| self.fail("STREAMON", e))
    }

    pub fn stream_off(&self, buf_type: u32) -> io::Result<()> {
        let mut t = buf_type;
        // SAFETY: VIDIOC_STREAMOFF takes the buffer type as an int.
        unsafe { self.ioctl(vidioc::VIDIOC_STREAMOFF, &mut t) }
    }

    /// `VIDIOC_REQBUFS` for mmap buffers; returns how many the driver made.
    pub fn request_buffers(&self, buf_type: u32, count: u32) -> io::Result<u32> {
        let mut req: sys::v4l2_requestbuffers = zeroed();
        req.count = count;
        req.type_ = buf_type;
        req.memory = sys::v4l2_memory_V4L2_MEMORY_MMAP;
        // SAFETY: VIDIOC_REQBUFS takes a v4l2_requestbuffers.
        unsafe { self.ioctl(vidioc::VIDIOC_REQBUFS, &mut req) }
            .map_err(|e| self.fail("REQBUFS", e))?;
        Ok(req.count)
    }

    /// Requests `count` mmap buffers on a queue and maps them all.
    pub fn map_buffers(&self, buf_type: u32, count: u32, mplane: bool) -> io::Result<Vec<Mapping>> {
        let got = self.request_buffers(buf_type, count)?;
        if got == 0 {
            return Err(self.fail("REQBUFS", io::Error::other("driver gave no buffers")));
        }
        (0..got)
            .map(|index| {
                let mut buf = Buffer::new(buf_type, index, mplane);
                // SAFETY: VIDIOC_QUERYBUF takes a v4l2_buffer; `raw()` points
                // `m.planes` at the buffer's own plane for multi-planar queues.
                unsafe { self.ioctl(vidioc::VIDIOC_QUERYBUF, buf.raw()) }
                    .map_err(|e| self.fail("QUERYBUF", e))?;
                Mapping::new(self, buf.mem_offset(), buf.length() as usize)
            })
            .collect()
    }

    pub fn queue(&self, buf: &mut Buffer) -> io::Result<()> {
        // SAFETY: VIDIOC_QBUF takes a v4l2_buffer with valid plane pointers.
        unsafe { self.ioctl(vidioc::VIDIOC_QBUF, buf.raw()) }.map_err(|e| self.fail("QBUF", e))
    }

    /// Takes a finished buffer off a queue; `None` if none is ready.
    pub fn dequeue(&self, buf_type: u32, mplane: bool) -> io::Result<Option<Buffer>> {
        let mut buf = Buffer::new(buf_type, 0, mplane);
        // SAFETY: VIDIOC_DQBUF takes a v4l2_buffer with valid plane pointers.
        match unsafe { self.ioctl(vidioc::VIDIOC_DQBUF, buf.raw()) } {
            Ok(()) => Ok(Some(buf)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(self.fail("DQBUF", e)),
        }
    }

    /// Waits up to `timeout` for `events` (`POLLIN`: a capture buffer is
    /// done, `POLLOUT`: an output buffer can be reclaimed).
    pub fn wait(&self, events: i16, timeout: Duration) -> io::Result<bool> {
        let revents = super::fdpoll::poll(self.file.as_raw_fd(), events, timeout)
            .map_err(|e| self.fail("poll", e))?;
        if revents & libc::POLLERR != 0 {
            return Err(self.fail("poll", io::Error::other("device reported an error")));
        }
        Ok(revents & events != 0)
    }
}

/// A `v4l2_buffer` (with its single plane for multi-planar queues).
pub struct Buffer {
    raw: sys::v4l2_buffer,
    plane: Box<sys::v4l2_plane>,
    mplane: bool,
}

impl Buffer {
    pub fn new(buf_type: u32, index: u32, mplane: bool) -> Buffer {
        let mut raw: sys::v4l2_buffer = zeroed();
        raw.type_ = buf_type;
        raw.memory = sys::v4l2_memory_V4L2_MEMORY_MMAP;
        raw.index = index;
        Buffer {
            raw,
            plane: Box::new(zeroed()),
            mplane,
        }
    }

    /// The struct for an ioctl, with the plane pointer refreshed.
    fn raw(&mut self) -> &mut sys::v4l2_buffer {
        if self.mplane {
            self.raw.length = 1;
            self.raw.m.planes = &mut *self.plane;
        }
        &mut self.raw
    }

    pub fn index(&self) -> u32 {
        self.raw.index
    }

    pub fn flags(&self) -> u32 {
        self.raw.flags
    }

    pub fn bytesused(&self) -> u32 {
        if self.mplane {
            self.plane.bytesused
        } else {
            self.raw.bytesused
        }
    }

    /// Where the payload starts in the buffer (multi-planar only).
    pub fn data_offset(&self) -> u32 {
        if self.mplane {
            self.plane.data_offset
        } else {
            0
        }
    }

    pub fn set_bytesused(&mut self, bytes: u32) {
        if self.mplane {
            self.plane.bytesused = bytes;
        } else {
            self.raw.bytesused = bytes;
        }
    }

    fn length(&self) -> u32 {
        if self.mplane {
            self.plane.length
        } else {
            self.raw.length
        }
    }

    fn mem_offset(&self) -> u32 {
        // SAFETY: for MMAP buffers the kernel fills these u32 union members.
        unsafe {
            if self.mplane {
                self.plane.m.mem_offset
            } else {
                self.raw.m.offset
            }
        }
    }

    // `timeval` holds `c_long`s: 64-bit here, 32-bit on armhf.
    #[allow(clippy::unnecessary_cast)]
    pub fn timestamp(&self) -> Duration {
        let t = self.raw.timestamp;
        let usec = (t.tv_usec as i64).clamp(0, 999_999) as u32;
        Duration::new((t.tv_sec as i64).max(0) as u64, usec * 1000)
    }

    pub fn set_timestamp(&mut self, t: Duration) {
        self.raw.timestamp.tv_sec = t.as_secs() as _;
        self.raw.timestamp.tv_usec = t.subsec_micros() as _;
    }

    /// The payload inside `mapping`, bounded by the mapping's size.
    pub fn payload<'a>(&self, mapping: &'a Mapping) -> &'a [u8] {
        let data = mapping.as_slice();
        let end = (self.bytesused() as usize).min(data.len());
        let start = (self.data_offset() as usize).min(end);
        &data[start..end]
    }
}

/// One mmap'ed driver buffer.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; access goes
// through &self/&mut self like a Vec.
unsafe impl Send for Mapping {}

impl Mapping {
    fn new(device: &Device, offset: u32, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(device.fail("mmap", io::Error::other("driver reported a 0-byte buffer")));
        }
        // SAFETY: a fresh shared mapping of the device at the offset QUERYBUF gave.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                device.file.as_raw_fd(),
                // Offsets are cookies below 2^31 (VB2 uses 1 << 30 for the
                // second queue), so the cast is lossless even with 32-bit off_t.
                offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(device.fail("mmap", io::Error::last_os_error()));
        }
        let ptr = NonNull::new(ptr.cast())
            .ok_or_else(|| device.fail("mmap", io::Error::other("null mapping")))?;
        Ok(Mapping { ptr, len })
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// `/dev/video*` nodes in numeric order (video2 before video10).
pub fn video_nodes() -> Vec<PathBuf> {
    let names = std::fs::read_dir("/dev")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    sort_video_nodes(names)
        .into_iter()
        .map(|n| Path::new("/dev").join(n))
        .collect()
}

fn sort_video_nodes(names: Vec<String>) -> Vec<String> {
    let mut nodes: Vec<(u32, String)> = names
        .into_iter()
        .filter_map(|n| Some((n.strip_prefix("video")?.parse().ok()?, n)))
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, n)| n).collect()
}

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
            let offered: Vec<String> = device
                .formats(BUF_TYPE_VIDEO_CAPTURE)
                .iter()
                .map(|f| fourcc_name(f.fourcc))
                .collect();
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: no usable mode for {:?} (device offers {}; usable are YU12, NV12, YUYV, MJPG/JPEG, H264)",
                    path.display(),
                    req.format,
                    offered.join(", ")
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
        tracing::info!(
            "{}: {} ({}) capturing {} {}x{} at {fps} fps ({}; asked for {}x{} at {} fps)",
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
            req.width,
            req.height,
            req.fps
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

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(denominator: u32) -> Interval {
        Interval {
            numerator: 1,
            denominator,
        }
    }

    fn mode(code: &[u8; 4], width: u32, height: u32, fps: &[u32]) -> Mode {
        Mode {
            fourcc: fourcc(code),
            format: CaptureFormat::from_fourcc(fourcc(code)).unwrap(),
            width,
            height,
            rates: FrameRates::Discrete(fps.iter().map(|&f| iv(f)).collect()),
        }
    }

    fn req(width: u32, height: u32, fps: u32) -> Request {
        Request {
            width,
            height,
            fps,
            format: None,
        }
    }

    /// What a typical UVC webcam offers: YUYV is slow at high resolutions.
    fn webcam() -> Vec<Mode> {
        vec![
            mode(b"YUYV", 640, 480, &[30, 15]),
            mode(b"YUYV", 1280, 720, &[10, 5]),
            mode(b"YUYV", 320, 240, &[30]),
            mode(b"MJPG", 640, 480, &[30]),
            mode(b"MJPG", 1280, 720, &[30, 15]),
            mode(b"MJPG", 1920, 1080, &[30]),
        ]
    }

    #[test]
    fn exact_mode_prefers_the_cheaper_format() {
        let c = choose_mode(&webcam(), &req(640, 480, 30)).unwrap();
        assert_eq!(
            (c.format, c.width, c.height, c.interval),
            (CaptureFormat::Yuyv, 640, 480, Some(iv(30)))
        );
    }

    #[test]
    fn frame_rate_outweighs_format_cost() {
        let c = choose_mode(&webcam(), &req(1280, 720, 30)).unwrap();
        assert_eq!(
            (c.format, c.width, c.fps),
            (CaptureFormat::Mjpeg, 1280, 30.0)
        );
    }

    #[test]
    fn nearest_size_when_the_exact_one_is_missing() {
        let c = choose_mode(&webcam(), &req(800, 600, 30)).unwrap();
        assert_eq!((c.width, c.height), (640, 480));
        let c = choose_mode(&webcam(), &req(1920, 1200, 30)).unwrap();
        assert_eq!(
            (c.width, c.height, c.format),
            (1920, 1080, CaptureFormat::Mjpeg)
        );
    }

    #[test]
    fn nearest_rate_ties_go_to_the_faster() {
        let modes = [mode(b"YUYV", 640, 480, &[20, 40, 5])];
        assert_eq!(
            choose_mode(&modes, &req(640, 480, 30)).unwrap().interval,
            Some(iv(40))
        );
        assert_eq!(
            choose_mode(&modes, &req(640, 480, 24)).unwrap().interval,
            Some(iv(20))
        );
    }

    #[test]
    fn explicit_format_is_honoured_and_h264_is_a_last_resort() {
        let mut modes = webcam();
        modes.push(mode(b"H264", 640, 480, &[30]));
        let mut r = req(640, 480, 30);
        assert_eq!(choose_mode(&modes, &r).unwrap().format, CaptureFormat::Yuyv);
        r.format = Some(CaptureFormat::H264);
        assert_eq!(choose_mode(&modes, &r).unwrap().format, CaptureFormat::H264);
        r.format = Some(CaptureFormat::Nv12);
        assert_eq!(choose_mode(&modes, &r), None);
        let only_h264 = [mode(b"H264", 1920, 1080, &[30])];
        assert_eq!(
            choose_mode(&only_h264, &req(640, 480, 30)).unwrap().format,
            CaptureFormat::H264
        );
    }

    #[test]
    fn odd_sizes_and_empty_lists_are_not_chosen() {
        assert_eq!(
            choose_mode(&[mode(b"YUYV", 641, 480, &[30])], &req(641, 480, 30)),
            None
        );
        assert_eq!(choose_mode(&[], &req(640, 480, 30)), None);
    }

    #[test]
    fn stepwise_and_unknown_rates() {
        let mut m = mode(b"NV12", 1280, 720, &[]);
        m.rates = FrameRates::Stepwise {
            min: iv(60),
            max: iv(1),
        };
        let c = choose_mode(&[m.clone()], &req(1280, 720, 30)).unwrap();
        assert_eq!((c.interval, c.fps), (Some(iv(30)), 30.0));
        let c = choose_mode(&[m.clone()], &req(1280, 720, 120)).unwrap();
        assert_eq!((c.interval, c.fps), (Some(iv(60)), 60.0));
        m.rates = FrameRates::Unknown;
        let c = choose_mode(&[m], &req(1280, 720, 25)).unwrap();
        assert_eq!((c.interval, c.fps), (None, 25.0));
        // Zero intervals from a confused driver are ignored, not divided by.
        let mut z = mode(b"YUYV", 640, 480, &[]);
        z.rates = FrameRates::Discrete(vec![Interval {
            numerator: 0,
            denominator: 0,
        }]);
        assert_eq!(
            choose_mode(&[z], &req(640, 480, 30)).unwrap().interval,
            None
        );
    }

    #[test]
    fn stepwise_sizes_snap_to_the_grid() {
        assert_eq!(fit_stepwise(16, 1920, 16, 1000), 992);
        assert_eq!(fit_stepwise(16, 1920, 16, 1010), 1008);
        assert_eq!(fit_stepwise(16, 1920, 16, 4000), 1920);
        assert_eq!(fit_stepwise(16, 1920, 16, 2), 16);
        assert_eq!(fit_stepwise(32, 2592, 2, 641), 640, "ties go down");
        assert_eq!(
            fit_stepwise(1, 100, 0, 37),
            37,
            "step 0 treated as continuous"
        );
        assert_eq!(fit_stepwise(100, 10, 1, 50), 50, "swapped bounds");
    }

    #[test]
    fn fourcc_round_trip_and_parse() {
        assert_eq!(FOURCC_YUYV, 0x5659_5559);
        assert_eq!(fourcc_name(FOURCC_MJPG), "MJPG");
        assert_eq!(fourcc_name(fourcc(b"Y8\0\0")), "Y8");
        assert_eq!(
            CaptureFormat::from_fourcc(FOURCC_JPEG),
            Some(CaptureFormat::Mjpeg)
        );
        assert_eq!(CaptureFormat::from_fourcc(fourcc(b"RGB3")), None);
        assert_eq!(CaptureFormat::parse("I420"), Some(CaptureFormat::Yu12));
        assert_eq!(CaptureFormat::parse("mjpg"), Some(CaptureFormat::Mjpeg));
        assert_eq!(CaptureFormat::parse("rgb"), None);
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
    fn video_nodes_sort_numerically() {
        let names = ["video10", "video2", "vchiq", "video0", "videox", "video1"];
        assert_eq!(
            sort_video_nodes(names.iter().map(|s| s.to_string()).collect()),
            ["video0", "video1", "video2", "video10"]
        );
    }

    #[test]
    fn selection_ioctl_number_matches_the_kernel() {
        // From <linux/videodev2.h> on 64-bit Linux.
        assert_eq!(std::mem::size_of::<sys::v4l2_selection>(), 64);
        assert_eq!(VIDIOC_S_SELECTION, 0xC040_565F);
    }

    #[test]
    fn opening_a_missing_device_is_a_clear_error() {
        let e = V4l2Source::open(Path::new("/dev/video-telepi-none"), &req(640, 480, 30))
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("/dev/video-telepi-none"), "{e}");
        let e = V4l2Source::open(Path::new("/dev/null"), &req(640, 480, 30))
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a V4L2 device"), "{e}");
    }
}
