//! Hardware H.264 through a V4L2 memory-to-memory encoder: the Raspberry
//! Pi's bcm2835-codec (`/dev/video11`, Pi 1-4) or any other stateful encoder.
//! Raw YU12 frames go into the OUTPUT queue, H.264 comes back on the CAPTURE
//! queue. Both use mmap buffers; one frame is in flight at a time, which is
//! what a live stream wants (no queueing latency).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use v4l::v4l_sys as sys;

use super::annexb::{self, ParameterSetCache};
use super::v4l2::{
    fourcc_name, video_nodes, Buffer, Device, Interval, Mapping, BUF_TYPE_VIDEO_CAPTURE,
    BUF_TYPE_VIDEO_CAPTURE_MPLANE, BUF_TYPE_VIDEO_OUTPUT, BUF_TYPE_VIDEO_OUTPUT_MPLANE,
    FOURCC_H264, FOURCC_YU12,
};
use super::{Frame, PixelFormat, VideoEncoder};

/// Not in older kernel headers (added in Linux 5.12); the number is uAPI and fixed.
const CID_PREPEND_SPSPPS_TO_IDR: u32 = sys::V4L2_CID_MPEG_BASE + 644;
const OUTPUT_BUFFERS: u32 = 2;
const CAPTURE_BUFFERS: u32 = 4;
/// Longest wait for the encoder to take a frame or return a picture.
const ENCODE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether a node with these capabilities is a memory-to-memory device, and
/// if so whether it uses the multi-planar API.
pub fn m2m_api(device_caps: u32) -> Option<bool> {
    if device_caps & sys::V4L2_CAP_STREAMING == 0 {
        None
    } else if device_caps & sys::V4L2_CAP_VIDEO_M2M_MPLANE != 0 {
        Some(true)
    } else if device_caps & sys::V4L2_CAP_VIDEO_M2M != 0 {
        Some(false)
    } else {
        None
    }
}

/// An H.264 encoder takes YU12 in (OUTPUT) and gives H.264 out (CAPTURE).
pub fn is_h264_encoder(output_formats: &[u32], capture_formats: &[u32]) -> bool {
    output_formats.contains(&FOURCC_YU12) && capture_formats.contains(&FOURCC_H264)
}

fn queue_types(mplane: bool) -> (u32, u32) {
    if mplane {
        (BUF_TYPE_VIDEO_OUTPUT_MPLANE, BUF_TYPE_VIDEO_CAPTURE_MPLANE)
    } else {
        (BUF_TYPE_VIDEO_OUTPUT, BUF_TYPE_VIDEO_CAPTURE)
    }
}

/// Checks that `device` is a usable H.264 encoder; returns whether it is multi-planar.
fn check_encoder(device: &Device) -> io::Result<bool> {
    let caps = device.caps()?;
    let not_encoder = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: {} ({}) {why}",
                device.path().display(),
                caps.card,
                caps.driver
            ),
        )
    };
    let mplane = m2m_api(caps.device_caps)
        .ok_or_else(|| not_encoder("is not a memory-to-memory device".into()))?;
    let (output, capture) = queue_types(mplane);
    let codes = |t| -> Vec<u32> { device.formats(t).iter().map(|f| f.fourcc).collect() };
    let (inputs, outputs) = (codes(output), codes(capture));
    if !is_h264_encoder(&inputs, &outputs) {
        let names = |c: &[u32]| {
            c.iter()
                .map(|&f| fourcc_name(f))
                .collect::<Vec<_>>()
                .join(",")
        };
        return Err(not_encoder(format!(
            "converts [{}] to [{}], not YU12 to H264",
            names(&inputs),
            names(&outputs)
        )));
    }
    Ok(mplane)
}

/// The first `/dev/video*` that is a usable memory-to-memory H.264 encoder.
pub fn probe() -> Option<PathBuf> {
    video_nodes()
        .into_iter()
        .find(|path| Device::open(path).and_then(|d| check_encoder(&d)).is_ok())
}

/// The lowest H.264 level (as the V4L2 menu value) that allows this size and
/// rate, starting at 3.1, which browsers announce for Constrained Baseline.
pub fn h264_level(width: u32, height: u32, fps: u32) -> Option<i32> {
    // (V4L2 menu value, max macroblocks per second, max macroblocks per frame), Table A-1.
    const LEVELS: [(u32, u64, u64); 7] = [
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_1,
            108_000,
            3_600,
        ),
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_2,
            216_000,
            5_120,
        ),
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_0,
            245_760,
            8_192,
        ),
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_2,
            522_240,
            8_704,
        ),
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_5_0,
            589_824,
            22_080,
        ),
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_5_1,
            983_040,
            36_864,
        ),
        (
            sys::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_5_2,
            2_073_600,
            36_864,
        ),
    ];
    let mbs = u64::from(width.div_ceil(16)) * u64::from(height.div_ceil(16));
    let rate = mbs * u64::from(fps);
    LEVELS
        .iter()
        .find(|&&(_, max_rate, max_frame)| rate <= max_rate && mbs <= max_frame)
        .map(|&(level, _, _)| level as i32)
}

/// A control to set when the encoder starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub id: u32,
    pub value: i32,
    pub name: &'static str,
    /// Tried when the driver refuses `value`.
    pub fallback: Option<i32>,
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Controls for a WebRTC-friendly stream: Constrained Baseline, SPS/PPS
/// before every IDR, constant bitrate, a periodic IDR every 4 seconds (like
/// the openh264 encoder) so a peer that lost one recovers on its own.
pub fn setup_controls(width: u32, height: u32, fps: u32, bitrate: u32) -> Vec<Control> {
    let control = |id, value, name| Control {
        id,
        value,
        name,
        fallback: None,
    };
    let mut controls = vec![
        Control {
            fallback: Some(
                sys::v4l2_mpeg_video_h264_profile_V4L2_MPEG_VIDEO_H264_PROFILE_BASELINE as i32,
            ),
            ..control(
                sys::V4L2_CID_MPEG_VIDEO_H264_PROFILE,
                sys::v4l2_mpeg_video_h264_profile_V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE
                    as i32,
                "H.264 profile (constrained baseline)",
            )
        },
        control(
            sys::V4L2_CID_MPEG_VIDEO_BITRATE_MODE,
            sys::v4l2_mpeg_video_bitrate_mode_V4L2_MPEG_VIDEO_BITRATE_MODE_CBR as i32,
            "bitrate mode (CBR)",
        ),
        control(
            sys::V4L2_CID_MPEG_VIDEO_BITRATE,
            clamp_i32(bitrate),
            "bitrate",
        ),
        control(
            sys::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD,
            clamp_i32(fps.saturating_mul(4).max(1)),
            "IDR period",
        ),
        control(
            sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER,
            1,
            "repeat sequence header",
        ),
        control(CID_PREPEND_SPSPPS_TO_IDR, 1, "SPS/PPS before IDR"),
    ];
    if let Some(level) = h264_level(width, height, fps) {
        controls.insert(
            1,
            control(sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL, level, "H.264 level"),
        );
    }
    controls
}

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
struct QueueFormat {
    fourcc: u32,
    width: u32,
    height: u32,
    planes: u8,
    bytesperline: u32,
    sizeimage: u32,
}

/// S_FMT on one queue, starting from its current format; returns what the driver chose.
fn set_queue_format(
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

/// Which OUTPUT buffers are ours to fill and which the driver holds.
#[derive(Debug)]
struct BufferPool {
    queued: Vec<bool>,
}

impl BufferPool {
    fn new(count: usize) -> BufferPool {
        BufferPool {
            queued: vec![false; count],
        }
    }

    /// A free buffer, now marked as queued.
    fn take(&mut self) -> Option<u32> {
        let index = self.queued.iter().position(|q| !q)?;
        self.queued[index] = true;
        Some(index as u32)
    }

    /// The driver returned (or never got) buffer `index`.
    fn give_back(&mut self, index: u32) -> io::Result<()> {
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

pub struct M2mEncoder {
    device: Device,
    mplane: bool,
    output_type: u32,
    capture_type: u32,
    width: u32,
    height: u32,
    layout: OutputLayout,
    outputs: Vec<Mapping>,
    pool: BufferPool,
    captures: Vec<Mapping>,
    params: ParameterSetCache,
    /// SPS/PPS the encoder sent in a buffer of their own, for the next picture.
    headers: Vec<u8>,
    seq: u64,
}

impl M2mEncoder {
    /// Opens the encoder at `path` (see [`probe`]) for I420 frames of this size.
    pub fn new(
        path: &Path,
        width: u32,
        height: u32,
        fps: u32,
        bitrate: u32,
    ) -> io::Result<M2mEncoder> {
        super::convert::i420_len(width, height)?;
        let device = Device::open(path)?;
        let mplane = check_encoder(&device)?;
        let (output_type, capture_type) = queue_types(mplane);

        // Raw side first, then coded side: the order the Pi's driver (and
        // rpicam-apps/picamera2) use.
        let raw = QueueFormat {
            fourcc: FOURCC_YU12,
            width,
            height,
            planes: 1,
            bytesperline: 0,
            sizeimage: 0,
        };
        let got = set_queue_format(&device, output_type, mplane, raw)?;
        if got.fourcc != FOURCC_YU12 || got.planes != 1 || got.width < width || got.height < height
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: encoder input became {} {}x{} in {} planes, wanted YU12 {width}x{height}",
                    path.display(),
                    fourcc_name(got.fourcc),
                    got.width,
                    got.height,
                    got.planes
                ),
            ));
        }
        let (got_w, got_h) = (got.width, got.height);
        let layout = OutputLayout::new(width, height, got.bytesperline, got.height, got.sizeimage)?;
        let coded = QueueFormat {
            fourcc: FOURCC_H264,
            sizeimage: width.saturating_mul(height).max(512 * 1024),
            ..raw
        };
        let got = set_queue_format(&device, capture_type, mplane, coded)?;
        if got.fourcc != FOURCC_H264 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: encoder output became {}, wanted H264",
                    path.display(),
                    fourcc_name(got.fourcc)
                ),
            ));
        }

        // The driver padded the picture: only the requested part is the image.
        if (got_w, got_h) != (width, height) {
            if let Err(e) = device.set_crop(output_type, width, height) {
                tracing::warn!("{e}; the stream may show {got_w}x{got_h}");
            }
        }
        let interval = Interval {
            numerator: 1,
            denominator: fps.max(1),
        };
        if let Err(e) = device.set_interval(output_type, interval) {
            tracing::warn!("{e}; rate control assumes the driver's frame rate");
        }
        for c in setup_controls(width, height, fps, bitrate) {
            let result = device
                .set_control(c.id, c.value)
                .or_else(|e| match c.fallback {
                    Some(value) => device.set_control(c.id, value),
                    None => Err(e),
                });
            if let Err(e) = result {
                tracing::warn!("{}: {} not set: {e}", path.display(), c.name);
            }
        }

        let outputs = device.map_buffers(output_type, OUTPUT_BUFFERS, mplane)?;
        if outputs.iter().any(|m| m.as_slice().len() < layout.size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: encoder input buffers are smaller than a frame ({} bytes)",
                    path.display(),
                    layout.size
                ),
            ));
        }
        let captures = device.map_buffers(capture_type, CAPTURE_BUFFERS, mplane)?;
        for index in 0..captures.len() as u32 {
            device.queue(&mut Buffer::new(capture_type, index, mplane))?;
        }
        device.stream_on(output_type)?;
        device.stream_on(capture_type)?;
        let caps = device.caps()?;
        tracing::info!(
            "{}: {} ({}) encoding {width}x{height} at {fps} fps, {bitrate} bit/s",
            path.display(),
            caps.card,
            caps.driver
        );
        Ok(M2mEncoder {
            device,
            mplane,
            output_type,
            capture_type,
            width,
            height,
            layout,
            pool: BufferPool::new(outputs.len()),
            outputs,
            captures,
            params: ParameterSetCache::new(),
            headers: Vec::new(),
            seq: 0,
        })
    }

    /// Takes back the OUTPUT buffers the encoder has finished reading.
    fn reclaim(&mut self) -> io::Result<()> {
        while let Some(buf) = self.device.dequeue(self.output_type, self.mplane)? {
            self.pool.give_back(buf.index())?;
        }
        Ok(())
    }

    fn free_output(&mut self) -> io::Result<u32> {
        self.reclaim()?;
        if let Some(index) = self.pool.take() {
            return Ok(index);
        }
        self.device.wait(libc::POLLOUT, ENCODE_TIMEOUT)?;
        self.reclaim()?;
        self.pool.take().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{}: encoder kept every input buffer for {ENCODE_TIMEOUT:?}",
                    self.device.path().display()
                ),
            )
        })
    }

    /// Waits for the next encoded picture, collecting header-only buffers in front of it.
    fn next_picture(&mut self) -> io::Result<Vec<u8>> {
        let deadline = Instant::now() + ENCODE_TIMEOUT;
        loop {
            while let Some(buf) = self.device.dequeue(self.capture_type, self.mplane)? {
                let index = buf.index();
                let data = match self.captures.get(index as usize) {
                    Some(mapping) => buf.payload(mapping).to_vec(),
                    None => {
                        return Err(io::Error::other(format!(
                            "encoder returned unknown buffer {index}"
                        )))
                    }
                };
                self.device
                    .queue(&mut Buffer::new(self.capture_type, index, self.mplane))?;
                if buf.flags() & sys::V4L2_BUF_FLAG_ERROR != 0 {
                    tracing::warn!(
                        "{}: encoder flagged a buffer as bad",
                        self.device.path().display()
                    );
                    continue;
                }
                let picture = annexb::nal_units(&data).any(|n| annexb::is_vcl(annexb::nal_type(n)));
                self.headers.extend_from_slice(&data);
                if picture {
                    return Ok(std::mem::take(&mut self.headers));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{}: no picture from the encoder within {ENCODE_TIMEOUT:?}",
                        self.device.path().display()
                    ),
                ));
            }
            self.device.wait(libc::POLLIN, left)?;
        }
    }
}

impl VideoEncoder for M2mEncoder {
    fn name(&self) -> &'static str {
        "v4l2m2m"
    }

    fn encode(&mut self, frame: &Frame, keyframe: bool) -> io::Result<Option<Vec<u8>>> {
        if frame.format != PixelFormat::I420
            || (frame.width, frame.height) != (self.width, self.height)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "v4l2m2m configured for I420 {}x{}, got {:?} {}x{}",
                    self.width, self.height, frame.format, frame.width, frame.height
                ),
            ));
        }
        let index = self.free_output()?;
        let filled = self.layout.write(
            &frame.data,
            frame.width,
            frame.height,
            self.outputs[index as usize].as_mut_slice(),
        );
        if let Err(e) = filled {
            self.pool.give_back(index)?;
            return Err(e);
        }
        if keyframe {
            if let Err(e) = self
                .device
                .set_control(sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1)
            {
                tracing::warn!("{}: forcing a keyframe: {e}", self.device.path().display());
            }
        }
        let mut buf = Buffer::new(self.output_type, index, self.mplane);
        buf.set_bytesused(self.layout.size as u32);
        // The encoder copies the stamp to the picture; a counter is enough.
        buf.set_timestamp(Duration::from_micros(self.seq));
        self.seq += 1;
        if let Err(e) = self.device.queue(&mut buf) {
            self.pool.give_back(index)?;
            return Err(e);
        }
        let picture = self.next_picture()?;
        Ok(Some(self.params.process(picture)))
    }

    fn set_bitrate(&mut self, bps: u32) {
        if let Err(e) = self
            .device
            .set_control(sys::V4L2_CID_MPEG_VIDEO_BITRATE, clamp_i32(bps))
        {
            tracing::warn!("{}: bitrate {bps}: {e}", self.device.path().display());
        }
    }
}

impl Drop for M2mEncoder {
    fn drop(&mut self) {
        // Errors are moot here: the device is being released either way.
        let _ = self.device.stream_off(self.output_type);
        let _ = self.device.stream_off(self.capture_type);
        self.outputs.clear();
        self.captures.clear();
        let _ = self.device.request_buffers(self.output_type, 0);
        let _ = self.device.request_buffers(self.capture_type, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m2m_nodes_are_recognised_by_capability() {
        let streaming = sys::V4L2_CAP_STREAMING;
        assert_eq!(
            m2m_api(streaming | sys::V4L2_CAP_VIDEO_M2M_MPLANE),
            Some(true)
        );
        assert_eq!(m2m_api(streaming | sys::V4L2_CAP_VIDEO_M2M), Some(false));
        assert_eq!(
            m2m_api(sys::V4L2_CAP_VIDEO_M2M_MPLANE),
            None,
            "no streaming"
        );
        assert_eq!(
            m2m_api(streaming | sys::V4L2_CAP_VIDEO_CAPTURE),
            None,
            "a camera"
        );
    }

    #[test]
    fn only_yu12_to_h264_counts_as_an_encoder() {
        let nv12 = super::super::v4l2::FOURCC_NV12;
        // bcm2835-codec: video11 encodes, video10 decodes, video12 is the ISP.
        assert!(is_h264_encoder(&[FOURCC_YU12, nv12], &[FOURCC_H264]));
        assert!(!is_h264_encoder(&[FOURCC_H264], &[FOURCC_YU12, nv12]));
        assert!(!is_h264_encoder(&[FOURCC_YU12], &[nv12]));
        assert!(!is_h264_encoder(&[], &[]));
    }

    #[test]
    fn levels_follow_table_a1() {
        use sys::*;
        let level = |w, h, fps| h264_level(w, h, fps).map(|l| l as u32);
        assert_eq!(
            level(640, 480, 30),
            Some(v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_1)
        );
        assert_eq!(
            level(1280, 720, 30),
            Some(v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_1)
        );
        assert_eq!(
            level(1280, 720, 60),
            Some(v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_2)
        );
        assert_eq!(
            level(1920, 1080, 30),
            Some(v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_0)
        );
        assert_eq!(
            level(1920, 1080, 60),
            Some(v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_2)
        );
        assert_eq!(level(7680, 4320, 60), None);
    }

    #[test]
    fn controls_ask_for_a_browser_friendly_stream() {
        let controls = setup_controls(1280, 720, 30, 2_000_000);
        let get = |id| controls.iter().find(|c| c.id == id).copied().unwrap();
        let profile = get(sys::V4L2_CID_MPEG_VIDEO_H264_PROFILE);
        assert_eq!(
            profile.value as u32,
            sys::v4l2_mpeg_video_h264_profile_V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE
        );
        assert_eq!(
            profile.fallback.map(|v| v as u32),
            Some(sys::v4l2_mpeg_video_h264_profile_V4L2_MPEG_VIDEO_H264_PROFILE_BASELINE)
        );
        assert_eq!(get(sys::V4L2_CID_MPEG_VIDEO_BITRATE).value, 2_000_000);
        assert_eq!(get(sys::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD).value, 120);
        assert_eq!(get(sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER).value, 1);
        assert_eq!(get(CID_PREPEND_SPSPPS_TO_IDR).value, 1);
        assert_eq!(CID_PREPEND_SPSPPS_TO_IDR, 0x0099_0B84);
        assert!(controls
            .iter()
            .any(|c| c.id == sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL));
        assert_eq!(
            setup_controls(64, 64, 30, u32::MAX)[3].value,
            i32::MAX,
            "bitrate clamped"
        );
        assert!(!setup_controls(8192, 8192, 60, 1)
            .iter()
            .any(|c| c.id == sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL));
    }

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

    #[test]
    fn a_non_encoder_is_refused_with_a_reason() {
        let e = M2mEncoder::new(Path::new("/dev/null"), 640, 480, 30, 1_000_000)
            .err()
            .unwrap();
        assert!(e.to_string().contains("/dev/null"), "{e}");
        let e = M2mEncoder::new(Path::new("/dev/null"), 641, 480, 30, 1_000_000)
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
