//! Software H.264 via Cisco's openh264 (built from source): the fallback when
//! the board has no hardware encoder (e.g. Pi 5), and the encoder in CI.

use std::io;

use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSlices;
use openh264::OpenH264API;

use crate::media::{Frame, PixelFormat, VideoEncoder};

pub struct OpenH264Encoder {
    encoder: Encoder,
    width: u32,
    height: u32,
    /// The bitrate asked for, and the one the running encoder has.
    bitrate: u32,
    applied: u32,
    /// The crate initialises openh264 at the first frame; before that it
    /// refuses options (cmInitExpected), so a new bitrate waits for it.
    started: bool,
    out: Vec<u8>,
}

impl OpenH264Encoder {
    pub fn new(width: u32, height: u32, fps: u32, bitrate: u32) -> io::Result<OpenH264Encoder> {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            // Baseline without B-frames or FMO is what browsers call Constrained Baseline (42e0xx).
            .profile(Profile::Baseline)
            // A periodic IDR bounds how long a peer that lost a keyframe stays frozen.
            .intra_frame_period(IntraFramePeriod::from_num_frames(fps * 4))
            // openh264's scene-change detection (on by default) turns a panning
            // or noisy camera into ~1.7 IDRs a second, each 5-10x a P-frame, so
            // rate control then skips frames. IDRs come from the period above
            // and from peers' requests only.
            .scene_change_detect(false)
            // Rate control only holds the bitrate if it may skip a frame; for
            // teleop a skipped frame beats a late one.
            .skip_frames(true);
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| io::Error::other(format!("openh264 init: {e}")))?;
        Ok(OpenH264Encoder {
            encoder,
            width,
            height,
            bitrate,
            applied: bitrate,
            started: false,
            out: Vec::new(),
        })
    }

    /// The bitrate the running encoder has.
    pub fn running_bitrate(&self) -> u32 {
        self.applied
    }

    fn apply_bitrate(&mut self) {
        let bps = self.bitrate;
        let mut info = openh264_sys2::SBitrateInfo {
            iLayer: openh264_sys2::SPATIAL_LAYER_ALL,
            iBitrate: bps.min(i32::MAX as u32) as i32,
        };
        // SAFETY: ENCODER_OPTION_BITRATE takes a pointer to an SBitrateInfo that
        // only needs to live for the call; the encoder is initialised (started).
        let rc = unsafe {
            self.encoder.raw_api().set_option(
                openh264_sys2::ENCODER_OPTION_BITRATE,
                std::ptr::addr_of_mut!(info).cast(),
            )
        };
        if rc != 0 {
            tracing::warn!(bps, rc, "openh264 refused the new bitrate");
        }
        // Either way: a refused value is not retried every frame.
        self.applied = bps;
    }
}

impl VideoEncoder for OpenH264Encoder {
    fn name(&self) -> &'static str {
        "openh264"
    }

    fn encode(&mut self, frame: &Frame, keyframe: bool) -> io::Result<Option<Vec<u8>>> {
        if frame.format != PixelFormat::I420
            || frame.width != self.width
            || frame.height != self.height
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "openh264 configured for I420 {}x{}, got {:?} {}x{}",
                    self.width, self.height, frame.format, frame.width, frame.height
                ),
            ));
        }
        let (w, h) = (self.width as usize, self.height as usize);
        if frame.data.len() < w * h * 3 / 2 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "short I420 frame",
            ));
        }
        let (y, chroma) = frame.data.split_at(w * h);
        let (u, v) = chroma.split_at(w * h / 4);
        let yuv = YUVSlices::new((y, u, &v[..w * h / 4]), (w, h), (w, w / 2, w / 2));
        if keyframe {
            self.encoder.force_intra_frame();
        }
        let bitstream = self
            .encoder
            .encode(&yuv)
            .map_err(|e| io::Error::other(format!("openh264 encode: {e}")))?;
        let skipped = matches!(bitstream.frame_type(), FrameType::Skip | FrameType::Invalid);
        if !skipped {
            self.out.clear();
            bitstream.write_vec(&mut self.out);
        }
        if !self.started {
            self.started = true;
            if self.applied != self.bitrate {
                self.apply_bitrate();
            }
        }
        Ok((!skipped).then(|| self.out.clone()))
    }

    fn set_bitrate(&mut self, bps: u32) {
        self.bitrate = bps;
        if self.started {
            self.apply_bitrate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::source::pattern::TestPattern;
    use crate::media::VideoSource;

    #[test]
    fn first_frame_is_an_idr_with_parameter_sets_and_decodes_to_the_right_size() {
        let mut source = TestPattern::new(320, 240, 30).unwrap();
        let mut enc = OpenH264Encoder::new(320, 240, 30, 500_000).unwrap();
        let au = enc
            .encode(&source.next_frame().unwrap(), false)
            .unwrap()
            .unwrap();
        let types: Vec<u8> = openh264::nal_units(&au).map(nal_type).collect();
        assert!(
            types.contains(&7) && types.contains(&8) && types.contains(&5),
            "{types:?}"
        );
        let mut dec = openh264::decoder::Decoder::new().unwrap();
        let yuv = dec.decode(&au).unwrap().expect("a picture");
        use openh264::formats::YUVSource;
        assert_eq!(yuv.dimensions(), (320, 240));
    }

    #[test]
    fn forced_keyframe_is_idr_and_wrong_size_is_an_error() {
        let mut source = TestPattern::new(320, 240, 30).unwrap();
        let mut enc = OpenH264Encoder::new(320, 240, 30, 500_000).unwrap();
        for _ in 0..3 {
            enc.encode(&source.next_frame().unwrap(), false).unwrap();
        }
        let au = enc
            .encode(&source.next_frame().unwrap(), true)
            .unwrap()
            .unwrap();
        assert!(openh264::nal_units(&au).any(|n| nal_type(n) == 5));
        assert!(enc.encode(&Frame::black_i420(640, 480), false).is_err());
        enc.set_bitrate(250_000);
        assert_eq!(enc.running_bitrate(), 250_000);
    }

    #[test]
    fn a_bitrate_set_before_the_first_frame_applies_once_openh264_runs() {
        let mut source = TestPattern::new(320, 240, 30).unwrap();
        let mut enc = OpenH264Encoder::new(320, 240, 30, 500_000).unwrap();
        enc.set_bitrate(200_000);
        assert_eq!(enc.running_bitrate(), 500_000, "not initialised yet");
        enc.encode(&source.next_frame().unwrap(), false).unwrap();
        assert_eq!(enc.running_bitrate(), 200_000);
    }

    #[test]
    fn camera_like_content_gets_no_idr_but_the_periodic_one() {
        // 4 s of a panning, noisy scene at 640x480@30, 1.5 Mbit/s: openh264's
        // scene-change detection used to make ~7 IDRs of it unasked.
        let (w, h, fps) = (640, 480, 30);
        let source = TestPattern::new(w, h, fps).unwrap().camera_like();
        let mut enc = OpenH264Encoder::new(w, h, fps, 1_500_000).unwrap();
        let mut frame = Frame::black_i420(w, h);
        let mut idr_frames = Vec::new();
        for n in 0..u64::from(fps) * 4 + 1 {
            source.draw(n, n * 33, &mut frame);
            if let Some(au) = enc.encode(&frame, false).unwrap() {
                if openh264::nal_units(&au).any(|nal| nal_type(nal) == 5) {
                    idr_frames.push(n);
                }
            }
        }
        // The first frame, and at most one periodic IDR (its count runs over
        // encoded frames, so skipped ones push it back).
        assert_eq!(idr_frames[0], 0);
        assert!(idr_frames.len() <= 2, "IDRs at frames {idr_frames:?}");
    }

    fn nal_type(nal: &[u8]) -> u8 {
        let start = nal.iter().position(|&b| b == 1).unwrap() + 1;
        nal[start] & 0x1f
    }
}
