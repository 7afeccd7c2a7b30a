//! Mode negotiation: which of the camera's formats, sizes and rates comes
//! closest to what the configuration asks for. [`Device::modes`] lists what
//! the camera offers in the formats this crate can use.

use crate::media::convert;
use crate::media::v4l2::{
    fourcc_name, Device, FrameRates, FrameSizes, Interval, BUF_TYPE_VIDEO_CAPTURE, FOURCC_H264,
    FOURCC_JPEG, FOURCC_MJPG, FOURCC_NV12, FOURCC_YU12, FOURCC_YUYV,
};

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

    /// The configuration value for this format, as [`CaptureFormat::parse`] takes it.
    pub fn name(self) -> &'static str {
        match self {
            CaptureFormat::Yu12 => "yu12",
            CaptureFormat::Nv12 => "nv12",
            CaptureFormat::Yuyv => "yuyv",
            CaptureFormat::Mjpeg => "mjpeg",
            CaptureFormat::H264 => "h264",
        }
    }
}

/// Why no mode fits, in one sentence that the caller puts after the camera's
/// name: the format asked for (`None` = any) and the fourccs the camera offers.
pub fn no_usable_mode(format: Option<CaptureFormat>, offered: &[u32]) -> String {
    let wanted = match format {
        Some(format) => format!("format \"{}\"", format.name()),
        None => "any format".to_string(),
    };
    let offered: Vec<String> = offered.iter().map(|&code| fourcc_name(code)).collect();
    format!(
        "no usable mode for {wanted}: the camera offers {}; telepi can use YU12, NV12, YUYV, MJPG/JPEG or H264",
        offered.join(", ")
    )
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

/// What the camera delivers instead of the request, for the log; `None`
/// when it delivers the size and rate asked for.
pub fn substitution(req: &Request, width: u32, height: u32, fps: u32) -> Option<String> {
    ((width, height, fps) != (req.width, req.height, req.fps)).then(|| {
        format!(
            "{}x{} at {} fps asked for; the nearest the camera has is {width}x{height} at {fps} fps",
            req.width, req.height, req.fps
        )
    })
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

impl Device {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::v4l2::fourcc;

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
    fn capture_formats_from_fourccs_and_config_names() {
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
    fn no_usable_mode_is_one_sentence_with_the_format_as_configured() {
        let offered = [fourcc(b"YUYV"), fourcc(b"Y16 ") | 1 << 31];
        assert_eq!(
            no_usable_mode(CaptureFormat::parse("MJPG"), &offered),
            "no usable mode for format \"mjpeg\": the camera offers YUYV, Y16 -BE; telepi can use YU12, NV12, YUYV, MJPG/JPEG or H264"
        );
        assert!(no_usable_mode(None, &offered).starts_with("no usable mode for any format: "));
        for format in [
            CaptureFormat::Yu12,
            CaptureFormat::Nv12,
            CaptureFormat::Yuyv,
            CaptureFormat::Mjpeg,
            CaptureFormat::H264,
        ] {
            assert_eq!(CaptureFormat::parse(format.name()), Some(format));
        }
    }

    #[test]
    fn a_size_or_rate_the_camera_lacks_is_reported() {
        let asked = req(320, 240, 30);
        assert_eq!(substitution(&asked, 320, 240, 30), None);
        assert_eq!(
            substitution(&asked, 320, 180, 30).as_deref(),
            Some("320x240 at 30 fps asked for; the nearest the camera has is 320x180 at 30 fps")
        );
        assert!(substitution(&asked, 320, 240, 25).is_some());
    }
}
