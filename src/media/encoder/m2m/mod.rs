//! Hardware H.264 through a V4L2 memory-to-memory encoder: the Raspberry
//! Pi's bcm2835-codec (`/dev/video11`, Pi 1-4) or any other stateful encoder.
//! Raw YU12 frames go into the OUTPUT queue, H.264 comes back on the CAPTURE
//! queue. Both use mmap buffers; one frame is in flight at a time, which is
//! what a live stream wants (no queueing latency).

mod controls;
mod detect;
mod queue;

pub use detect::{is_h264_encoder, m2m_api, probe, Codec};
pub use queue::QueueUse;

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use v4l::v4l_sys as sys;

use self::controls::{clamp_i32, setup_controls};
use self::detect::{check_encoder, queue_types};
use self::queue::{held_by_driver, set_queue_format, BufferPool, OutputLayout, QueueFormat};
use crate::media::h264::annexb::{self, ParameterSetCache};
use crate::media::v4l2::{fourcc_name, Buffer, Device, Interval, Mapping, FOURCC_YU12};
use crate::media::{Frame, PixelFormat, VideoEncoder};

/// What the hardware encoder is called in status, logs and the resource guard.
pub const M2M_NAME: &str = "v4l2m2m";

const OUTPUT_BUFFERS: u32 = 2;
const CAPTURE_BUFFERS: u32 = 4;
/// Longest wait for the encoder to take a frame or return a picture.
const ENCODE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the driver's buffers are: see [`M2mEncoder::buffer_use`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferUse {
    /// Raw frames (the OUTPUT queue).
    pub frames: QueueUse,
    /// Encoded pictures (the CAPTURE queue).
    pub pictures: QueueUse,
}

pub struct M2mEncoder {
    device: Device,
    codec: Codec,
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
    /// The driver refused FORCE_KEY_FRAME: keyframes come from restarting the CAPTURE queue.
    keyframe_by_restart: bool,
    /// The driver refused a bitrate already, which has been logged.
    bitrate_refused: bool,
}

impl M2mEncoder {
    /// Opens the H.264 encoder at `path` (see [`probe`]) for I420 frames of this size.
    pub fn new(
        path: &Path,
        width: u32,
        height: u32,
        fps: u32,
        bitrate: u32,
    ) -> io::Result<M2mEncoder> {
        Self::open_with_codec(path, width, height, fps, bitrate, Codec::H264)
    }

    /// [`M2mEncoder::new`] for an encoder of another codec: how the tests
    /// drive the kernel's vicodec (FWHT) through this same code. The H.264
    /// controls are asked for all the same; a driver without them refuses
    /// them, which is logged, as on a real encoder that lacks one.
    pub fn open_with_codec(
        path: &Path,
        width: u32,
        height: u32,
        fps: u32,
        bitrate: u32,
        codec: Codec,
    ) -> io::Result<M2mEncoder> {
        crate::media::convert::i420_len(width, height)?;
        let device = Device::open(path)?;
        let mplane = check_encoder(&device, codec)?;
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
            fourcc: codec.fourcc(),
            sizeimage: width.saturating_mul(height).max(512 * 1024),
            ..raw
        };
        let got = set_queue_format(&device, capture_type, mplane, coded)?;
        if got.fourcc != codec.fourcc() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: encoder output became {}, wanted {}",
                    path.display(),
                    fourcc_name(got.fourcc),
                    fourcc_name(codec.fourcc())
                ),
            ));
        }

        // The driver padded the picture: only the requested part is the image.
        if (got_w, got_h) != (width, height) {
            match device.set_crop(output_type, width, height) {
                Ok(shown) if shown == (width, height) => {}
                // vicodec, for one, crops to no less than 640x360.
                Ok((w, h)) => tracing::warn!(
                    "{}: the encoder crops to no less than {w}x{h}: the stream is {w}x{h} \
                     with the {width}x{height} picture in its top left corner",
                    path.display()
                ),
                Err(e) => tracing::warn!("{e}; the stream may show {got_w}x{got_h}"),
            }
        }
        let interval = Interval {
            numerator: 1,
            denominator: fps.max(1),
        };
        if let Err(e) = device.set_interval(output_type, interval) {
            tracing::warn!("{e}; rate control assumes the driver's frame rate");
        }
        let mut bitrate_refused = false;
        for c in setup_controls(width, height, fps, bitrate) {
            let result = device
                .set_control(c.id, c.value)
                .or_else(|e| match c.fallback {
                    Some(value) => device.set_control(c.id, value),
                    None => Err(e),
                });
            // Not fatal: a stream with the driver's default is better than none.
            if let Err(e) = result {
                tracing::warn!(
                    "{}: {} not set ({e}); the driver's default stays",
                    path.display(),
                    c.name
                );
                bitrate_refused |= c.id == sys::V4L2_CID_MPEG_VIDEO_BITRATE;
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
            codec,
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
            keyframe_by_restart: false,
            bitrate_refused,
        })
    }

    /// How many buffers of each queue the driver has, as it reports them
    /// (`QUERYBUF`). Between two [`VideoEncoder::encode`] calls the
    /// driver has every picture buffer and at most one frame buffer (the
    /// frame just encoded, not yet taken back). Fails if the driver and
    /// the encoder's own bookkeeping disagree about a frame buffer.
    pub fn buffer_use(&self) -> io::Result<BufferUse> {
        let held = |buf_type, count| held_by_driver(&self.device, buf_type, self.mplane, count);
        let frames = held(self.output_type, self.outputs.len())?;
        if let Some(index) = (0..frames.len()).find(|&i| frames[i] != self.pool.queued()[i]) {
            let (driver, encoder) = if frames[index] {
                ("held", "free")
            } else {
                ("returned", "counted as queued")
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: frame buffer {index} is {driver} by the driver but {encoder} by the encoder",
                    self.device.path().display(),
                ),
            ));
        }
        let pictures = held(self.capture_type, self.captures.len())?;
        Ok(BufferUse {
            frames: QueueUse::of(&frames),
            pictures: QueueUse::of(&pictures),
        })
    }

    /// A timeout, with where the buffers were: the first thing to look at
    /// when a driver stalls.
    fn stalled(&self, what: String) -> io::Error {
        let held = match self.buffer_use() {
            Ok(u) => format!(
                "the driver holds {}/{} frame and {}/{} picture buffers",
                u.frames.in_driver, u.frames.total, u.pictures.in_driver, u.pictures.total
            ),
            Err(e) => e.to_string(),
        };
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{}: {what} ({held})", self.device.path().display()),
        )
    }

    /// Makes the next picture a keyframe: FORCE_KEY_FRAME, or where the
    /// driver lacks it, the reset of the V4L2 stateful encoder interface
    /// (CAPTURE off and on), after which the encoder starts an independent
    /// stream. No drain is needed first: every frame queued so far has
    /// already come back as a picture.
    fn request_keyframe(&mut self) -> io::Result<()> {
        if !self.keyframe_by_restart {
            let Err(e) = self
                .device
                .set_control(sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1)
            else {
                return Ok(());
            };
            tracing::warn!(
                "{}: the driver cannot force a keyframe ({e}); each keyframe request restarts its stream (CAPTURE off and on) instead",
                self.device.path().display()
            );
            self.keyframe_by_restart = true;
        }
        self.device.stream_off(self.capture_type)?;
        // Headers of the old stream would precede the new one's.
        self.headers.clear();
        self.device.stream_on(self.capture_type)?;
        for index in 0..self.captures.len() as u32 {
            self.device
                .queue(&mut Buffer::new(self.capture_type, index, self.mplane))?;
        }
        Ok(())
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
        match self.pool.take() {
            Some(index) => Ok(index),
            None => Err(self.stalled(format!(
                "encoder kept every input buffer for {ENCODE_TIMEOUT:?}"
            ))),
        }
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
                let picture = match self.codec {
                    Codec::H264 => {
                        annexb::nal_units(&data).any(|n| annexb::is_vcl(annexb::nal_type(n)))
                    }
                    // One buffer, one picture.
                    Codec::Fwht => !data.is_empty(),
                };
                self.headers.extend_from_slice(&data);
                if picture {
                    return Ok(std::mem::take(&mut self.headers));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.stalled(format!(
                    "no picture from the encoder within {ENCODE_TIMEOUT:?}"
                )));
            }
            self.device.wait(libc::POLLIN, left)?;
        }
    }
}

impl VideoEncoder for M2mEncoder {
    fn name(&self) -> &'static str {
        M2M_NAME
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
            if let Err(e) = self.request_keyframe() {
                self.pool.give_back(index)?;
                return Err(e);
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
        Ok(Some(match self.codec {
            Codec::H264 => self.params.process(picture),
            Codec::Fwht => picture,
        }))
    }

    fn set_bitrate(&mut self, bps: u32) {
        let result = self
            .device
            .set_control(sys::V4L2_CID_MPEG_VIDEO_BITRATE, clamp_i32(bps));
        match result {
            Ok(()) => {}
            // Bitrate changes come with every bandwidth estimate: a driver
            // that has no bitrate control is said once.
            Err(e) if self.bitrate_refused => {
                tracing::debug!("{}: bitrate {bps}: {e}", self.device.path().display())
            }
            Err(e) => {
                tracing::warn!(
                    "{}: bitrate {bps} not set ({e}); the driver keeps its own rate",
                    self.device.path().display()
                );
                self.bitrate_refused = true;
            }
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
