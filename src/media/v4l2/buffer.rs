//! Driver buffers: the `v4l2_buffer` handed to and from a queue, and the
//! memory each one is mapped to.

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::time::Duration;

use v4l::v4l_sys as sys;

use super::kernel::zeroed;

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
    pub(super) fn raw(&mut self) -> &mut sys::v4l2_buffer {
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

    pub(super) fn length(&self) -> u32 {
        if self.mplane {
            self.plane.length
        } else {
            self.raw.length
        }
    }

    pub(super) fn mem_offset(&self) -> u32 {
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
    pub(super) fn new(fd: RawFd, offset: u32, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::other("driver reported a 0-byte buffer"));
        }
        // SAFETY: a fresh shared mapping of the device at the offset QUERYBUF gave.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                // Offsets are cookies below 2^31 (VB2 uses 1 << 30 for the
                // second queue), so the cast is lossless even with 32-bit off_t.
                offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("null mapping"))?;
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
