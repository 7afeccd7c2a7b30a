//! [`Device`], an open `/dev/video*` node, and what its queries return.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use v4l::v4l2::vidioc;
use v4l::v4l_sys as sys;

use super::buffer::{Buffer, Mapping};
use super::kernel::{
    zeroed, BUF_TYPE_VIDEO_CAPTURE, BUF_TYPE_VIDEO_CAPTURE_MPLANE, BUF_TYPE_VIDEO_OUTPUT,
    BUF_TYPE_VIDEO_OUTPUT_MPLANE, VIDIOC_S_SELECTION,
};

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

    /// Sets the crop rectangle of a queue (the visible part of padded
    /// frames); returns the size the driver chose, which may differ.
    pub fn set_crop(&self, buf_type: u32, width: u32, height: u32) -> io::Result<(u32, u32)> {
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
        unsafe { self.ioctl(VIDIOC_S_SELECTION, &mut sel) }
            .map_err(|e| self.fail("S_SELECTION", e))?;
        Ok((sel.r.width, sel.r.height))
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
            .map_err(|e| self.fail("STREAMOFF", e))
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
                let buf = self.query_buffer(buf_type, index, mplane)?;
                Mapping::new(
                    self.file.as_raw_fd(),
                    buf.mem_offset(),
                    buf.length() as usize,
                )
                .map_err(|e| self.fail("mmap", e))
            })
            .collect()
    }

    /// `VIDIOC_QUERYBUF`: where buffer `index` lives and what state it is in
    /// (its `V4L2_BUF_FLAG_QUEUED`/`DONE` flags).
    pub fn query_buffer(&self, buf_type: u32, index: u32, mplane: bool) -> io::Result<Buffer> {
        let mut buf = Buffer::new(buf_type, index, mplane);
        // SAFETY: VIDIOC_QUERYBUF takes a v4l2_buffer; `raw()` points
        // `m.planes` at the buffer's own plane for multi-planar queues.
        unsafe { self.ioctl(vidioc::VIDIOC_QUERYBUF, buf.raw()) }
            .map_err(|e| self.fail("QUERYBUF", e))?;
        Ok(buf)
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
        let revents = crate::media::fdpoll::poll(self.file.as_raw_fd(), events, timeout)
            .map_err(|e| self.fail("poll", e))?;
        if revents & libc::POLLERR != 0 {
            return Err(self.fail("poll", io::Error::other("device reported an error")));
        }
        Ok(revents & events != 0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_nodes_sort_numerically() {
        let names = ["video10", "video2", "vchiq", "video0", "videox", "video1"];
        assert_eq!(
            sort_video_nodes(names.iter().map(|s| s.to_string()).collect()),
            ["video0", "video1", "video2", "video10"]
        );
    }
}
