//! The encoder's two queues: their formats, where a frame goes in an OUTPUT
//! buffer, and which OUTPUT buffers the driver holds.

use std::io;

use v4l::v4l_sys as sys;

use crate::media::v4l2::Device;

/// Where a frame goes in an OUTPUT buffer: one YU12 plane of `stride`-byte
/// rows, the luma plane `luma_rows` high, chroma at half stride and height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLayout {
    pub stride: usize,
    pub luma_rows: usize,
    /// Bytes to hand to the driver per frame.
    pub size: usize,
}

impl OutputLayout {
    /// Validates what the driver answered to S_FMT for a `width`x`height` frame.
    pub fn new(
        width: u32,
        height: u32,
        bytesperline: u32,
        driver_height: u32,
        sizeimage: u32,
    ) -> io::Result<OutputLayout> {
        let stride = match bytesperline as usize {
            0 => width as usize,
            s => s,
        };
        let luma_rows = driver_height.max(height) as usize;
        let needed = stride
            .checked_mul(luma_rows)
            .and_then(|y| y.checked_add(y / 2))
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "encoder buffer size overflows")
            })?;
        let size = needed.max(sizeimage as usize);
        if stride < width as usize || !stride.is_multiple_of(2) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("encoder wants stride {stride} for width {width}"),
            ));
        }
        Ok(OutputLayout {
            stride,
            luma_rows,
            size,
        })
    }

    /// Copies a packed I420 frame into `dst` with this layout.
    pub fn write(&self, frame: &[u8], width: u32, height: u32, dst: &mut [u8]) -> io::Result<()> {
        let (w, h) = (width as usize, height as usize);
        if frame.len() < w * h * 3 / 2
            || dst.len() < self.size
            || w > self.stride
            || h > self.luma_rows
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "I420 {w}x{h} ({} bytes) doesn't fit encoder buffer {self:?} ({} bytes)",
                    frame.len(),
                    dst.len()
                ),
            ));
        }
        let (y, chroma) = frame.split_at(w * h);
        let (u, v) = chroma.split_at(w * h / 4);
        for (row, src) in y.chunks_exact(w).enumerate() {
            dst[row * self.stride..][..w].copy_from_slice(src);
        }
        let (cstride, cw) = (self.stride / 2, w / 2);
        let u_start = self.stride * self.luma_rows;
        let v_start = u_start + cstride * (self.luma_rows / 2);
        for (row, (su, sv)) in u.chunks_exact(cw).zip(v.chunks_exact(cw)).enumerate() {
            dst[u_start + row * cstride..][..cw].copy_from_slice(su);
            dst[v_start + row * cstride..][..cw].copy_from_slice(sv);
        }
        Ok(())
    }
}

/// The parts of a queue's format this encoder cares about.
#[derive(Debug, Clone, Copy)]
pub(super) struct QueueFormat {
    pub(super) fourcc: u32,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) planes: u8,
    pub(super) bytesperline: u32,
    pub(super) sizeimage: u32,
}

/// S_FMT on one queue, starting from its current format; returns what the driver chose.
pub(super) fn set_queue_format(
    device: &Device,
    buf_type: u32,
    mplane: bool,
    want: QueueFormat,
) -> io::Result<QueueFormat> {
    let mut fmt = device.get_format(buf_type)?;
    // Frames are limited-range BT.601, which lands in the stream's VUI.
    let colorspace = sys::v4l2_colorspace_V4L2_COLORSPACE_SMPTE170M;
    // SAFETY: G_FMT filled the union member matching the queue type, the only one touched.
    unsafe {
        if mplane {
            let pix = &mut fmt.fmt.pix_mp;
            pix.width = want.width;
            pix.height = want.height;
            pix.pixelformat = want.fourcc;
            pix.field = sys::v4l2_field_V4L2_FIELD_NONE;
            pix.colorspace = colorspace;
            pix.num_planes = want.planes;
            pix.plane_fmt[0].bytesperline = want.bytesperline;
            pix.plane_fmt[0].sizeimage = want.sizeimage;
        } else {
            let pix = &mut fmt.fmt.pix;
            pix.width = want.width;
            pix.height = want.height;
            pix.pixelformat = want.fourcc;
            pix.field = sys::v4l2_field_V4L2_FIELD_NONE;
            pix.colorspace = colorspace;
            pix.bytesperline = want.bytesperline;
            pix.sizeimage = want.sizeimage;
        }
    }
    device.set_format(&mut fmt)?;
    // SAFETY: S_FMT filled the same member.
    Ok(unsafe {
        if mplane {
            let p = fmt.fmt.pix_mp;
            QueueFormat {
                fourcc: p.pixelformat,
                width: p.width,
                height: p.height,
                planes: p.num_planes,
                bytesperline: p.plane_fmt[0].bytesperline,
                sizeimage: p.plane_fmt[0].sizeimage,
            }
        } else {
            let p = fmt.fmt.pix;
            QueueFormat {
                fourcc: p.pixelformat,
                width: p.width,
                height: p.height,
                planes: 1,
                bytesperline: p.bytesperline,
                sizeimage: p.sizeimage,
            }
        }
    })
}

/// The buffers of one queue, as the driver reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueUse {
    /// Queued, or finished but not yet taken back: the driver has them.
    pub in_driver: usize,
    pub total: usize,
}

/// Which of a queue's `count` buffers the driver has (`QUERYBUF` says
/// QUEUED or DONE), by index.
pub(super) fn held_by_driver(
    device: &Device,
    buf_type: u32,
    mplane: bool,
    count: usize,
) -> io::Result<Vec<bool>> {
    let held = sys::V4L2_BUF_FLAG_QUEUED | sys::V4L2_BUF_FLAG_DONE;
    (0..count as u32)
        .map(|index| Ok(device.query_buffer(buf_type, index, mplane)?.flags() & held != 0))
        .collect()
}

impl QueueUse {
    pub(super) fn of(held: &[bool]) -> QueueUse {
        QueueUse {
            in_driver: held.iter().filter(|&&h| h).count(),
            total: held.len(),
        }
    }
}

/// Which OUTPUT buffers are ours to fill and which the driver holds.
#[derive(Debug)]
pub(super) struct BufferPool {
    queued: Vec<bool>,
}

impl BufferPool {
    pub(super) fn new(count: usize) -> BufferPool {
        BufferPool {
            queued: vec![false; count],
        }
    }

    /// A free buffer, now marked as queued.
    pub(super) fn take(&mut self) -> Option<u32> {
        let index = self.queued.iter().position(|q| !q)?;
        self.queued[index] = true;
        Some(index as u32)
    }

    /// Per buffer, whether it is with the driver.
    pub(super) fn queued(&self) -> &[bool] {
        &self.queued
    }

    /// The driver returned (or never got) buffer `index`.
    pub(super) fn give_back(&mut self, index: u32) -> io::Result<()> {
        match self.queued.get_mut(index as usize) {
            Some(q) if *q => {
                *q = false;
                Ok(())
            }
            _ => Err(io::Error::other(format!(
                "encoder returned buffer {index}, which wasn't queued"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_layout_follows_the_driver() {
        let l = OutputLayout::new(640, 480, 640, 480, 640 * 480 * 3 / 2).unwrap();
        assert_eq!((l.stride, l.luma_rows, l.size), (640, 480, 460_800));
        // 1080p padded to 1088 rows with 32-aligned stride.
        let l = OutputLayout::new(1916, 1080, 1920, 1088, 0).unwrap();
        assert_eq!(
            (l.stride, l.luma_rows, l.size),
            (1920, 1088, 1920 * 1088 * 3 / 2)
        );
        assert!(
            OutputLayout::new(640, 480, 600, 480, 0).is_err(),
            "stride < width"
        );
        assert!(
            OutputLayout::new(640, 480, 641, 480, 0).is_err(),
            "odd stride"
        );
    }

    #[test]
    fn frames_are_copied_into_padded_buffers() {
        // 4x2 frame into stride 6, 4 luma rows.
        let l = OutputLayout::new(4, 2, 6, 4, 0).unwrap();
        assert_eq!(l.size, 36);
        let frame = [1, 2, 3, 4, 5, 6, 7, 8, 50, 51, 60, 61];
        let mut dst = vec![0u8; l.size];
        l.write(&frame, 4, 2, &mut dst).unwrap();
        let mut expected = vec![0u8; 36];
        expected[0..4].copy_from_slice(&[1, 2, 3, 4]);
        expected[6..10].copy_from_slice(&[5, 6, 7, 8]);
        expected[24..26].copy_from_slice(&[50, 51]); // U at 6 * 4, chroma stride 3
        expected[30..32].copy_from_slice(&[60, 61]); // V after 2 chroma rows
        assert_eq!(dst, expected);
        assert!(
            l.write(&frame[..10], 4, 2, &mut dst).is_err(),
            "short frame"
        );
        assert!(
            l.write(&frame, 4, 2, &mut dst[..20]).is_err(),
            "small buffer"
        );
        assert!(l.write(&[0; 96], 8, 8, &mut dst).is_err(), "frame too big");
    }

    #[test]
    fn buffer_pool_bookkeeping() {
        let mut pool = BufferPool::new(2);
        assert_eq!(
            (pool.take(), pool.take(), pool.take()),
            (Some(0), Some(1), None)
        );
        pool.give_back(1).unwrap();
        assert!(pool.give_back(1).is_err(), "returned twice");
        assert!(pool.give_back(7).is_err(), "unknown index");
        assert_eq!(pool.take(), Some(1));
    }
}
