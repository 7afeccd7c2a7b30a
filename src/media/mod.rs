//! Media: video sources and encoders, audio both ways ([`audio`]).
//!
//! A [`VideoSource`] ([`source`]) produces frames (raw I420 or ready H.264),
//! a [`VideoEncoder`] ([`encoder`]) turns raw frames into Annex-B access
//! units, and the [`pipeline`] runs both on their own thread and hands
//! [`EncodedFrame`]s to the network loop, which fans one encode out to every
//! peer and every other [`sink`]. [`select`] opens the pair the configuration names; [`v4l2`] is the
//! kernel interface that cameras, the hardware encoder and [`devices`] share.

use std::sync::Arc;
use std::time::Instant;

pub mod audio;
pub mod bitrate;
pub mod config;
pub mod convert;
pub mod demand;
pub mod devices;
pub mod display;
pub mod encoder;
pub mod fdpoll;
pub mod h264;
pub mod keyframe;
pub mod layer;
pub mod pace;
pub mod pipeline;
pub mod record;
pub mod select;
pub mod sink;
pub mod snapshot;
pub mod source;
pub mod v4l2;

/// Pixel layout of a frame's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Planar Y, then U and V at half width and half height (a.k.a. YUV420p).
    I420,
    /// An Annex-B H.264 access unit, already encoded by the source.
    H264,
}

/// One captured frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    pub data: Vec<u8>,
    /// When the frame was captured; latency is measured from here.
    pub captured: Instant,
}

impl Frame {
    /// An I420 frame captured now.
    pub fn i420(width: u32, height: u32, data: Vec<u8>) -> Frame {
        Frame {
            width,
            height,
            format: PixelFormat::I420,
            data,
            captured: Instant::now(),
        }
    }

    /// An all-black I420 frame, for sources to draw into.
    pub fn black_i420(width: u32, height: u32) -> Frame {
        let luma = (width * height) as usize;
        let mut data = vec![16u8; luma + luma / 2];
        data[luma..].fill(128);
        Frame::i420(width, height, data)
    }
}

/// What a source reports about itself for logs and `/api/status`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    /// Short name, e.g. `pattern`, `v4l2:/dev/video0`, `pipe`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub format: PixelFormat,
}

/// A camera (or something pretending to be one).
pub trait VideoSource: Send {
    fn info(&self) -> SourceInfo;
    /// Blocks until the next frame is due/available and returns it.
    fn next_frame(&mut self) -> std::io::Result<Frame>;
}

/// Turns raw frames into H.264 (Constrained Baseline, Annex-B, SPS/PPS before every IDR).
pub trait VideoEncoder: Send {
    fn name(&self) -> &'static str;
    /// Encodes one frame; `None` when the encoder chose to skip it.
    fn encode(&mut self, frame: &Frame, keyframe: bool) -> std::io::Result<Option<Vec<u8>>>;
    /// Target bitrate in bits per second.
    fn set_bitrate(&mut self, bps: u32);
}

/// One encoded access unit, shared by every peer without copying.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedFrame {
    pub data: Arc<[u8]>,
    pub captured: Instant,
    /// 90 kHz RTP clock derived from the capture time.
    pub rtp_time: u64,
    pub keyframe: bool,
}
