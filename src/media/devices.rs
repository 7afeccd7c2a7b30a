//! `telepi --list-devices`: the cameras and encoders this board offers, so
//! configuring `video.device`, size and rate isn't guesswork.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use v4l::v4l_sys as sys;

use super::encoder::m2m;
use super::source::camera::CaptureFormat;
use super::v4l2::{
    fourcc_name, video_nodes, Caps, Device, FormatDesc, FrameRates, FrameSizes,
    BUF_TYPE_VIDEO_CAPTURE, BUF_TYPE_VIDEO_CAPTURE_MPLANE, BUF_TYPE_VIDEO_OUTPUT,
    BUF_TYPE_VIDEO_OUTPUT_MPLANE,
};

/// One capture format with its sizes and, per size, its rates.
#[derive(Debug, Clone, PartialEq)]
struct FormatReport {
    format: FormatDesc,
    sizes: Vec<(FrameSizes, FrameRates)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Camera(Vec<FormatReport>),
    /// Capture devices that only speak the multi-planar API (libcamera sensor nodes).
    MultiPlanarCamera(Vec<FormatDesc>),
    Codec {
        inputs: Vec<FormatDesc>,
        outputs: Vec<FormatDesc>,
    },
    /// Metadata nodes and the like.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
struct DeviceReport {
    path: PathBuf,
    found: Result<(Caps, Kind), String>,
}

fn inspect(path: &Path) -> DeviceReport {
    let found = Device::open(path)
        .and_then(|device| {
            let caps = device.caps()?;
            let c = caps.device_caps;
            let kind = if let Some(mplane) = m2m::m2m_api(c) {
                let (input, output) = if mplane {
                    (BUF_TYPE_VIDEO_OUTPUT_MPLANE, BUF_TYPE_VIDEO_CAPTURE_MPLANE)
                } else {
                    (BUF_TYPE_VIDEO_OUTPUT, BUF_TYPE_VIDEO_CAPTURE)
                };
                Kind::Codec {
                    inputs: device.formats(input),
                    outputs: device.formats(output),
                }
            } else if c & sys::V4L2_CAP_VIDEO_CAPTURE != 0 {
                let formats = device.formats(BUF_TYPE_VIDEO_CAPTURE);
                Kind::Camera(
                    formats
                        .into_iter()
                        .map(|format| {
                            let sizes = device
                                .frame_sizes(format.fourcc)
                                .into_iter()
                                .map(|size| {
                                    let (w, h) = match size {
                                        FrameSizes::Discrete { width, height } => (width, height),
                                        FrameSizes::Stepwise {
                                            max_width,
                                            max_height,
                                            ..
                                        } => (max_width, max_height),
                                    };
                                    (size, device.frame_rates(format.fourcc, w, h))
                                })
                                .collect();
                            FormatReport { format, sizes }
                        })
                        .collect(),
                )
            } else if c & sys::V4L2_CAP_VIDEO_CAPTURE_MPLANE != 0 {
                Kind::MultiPlanarCamera(device.formats(BUF_TYPE_VIDEO_CAPTURE_MPLANE))
            } else {
                Kind::Other
            };
            Ok((caps, kind))
        })
        .map_err(|e| e.to_string());
    DeviceReport {
        path: path.to_path_buf(),
        found,
    }
}

fn fps_text(fps: f64) -> String {
    let s = format!("{fps:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn rates_text(rates: &FrameRates) -> String {
    match rates {
        FrameRates::Discrete(intervals) => {
            let fps: Vec<String> = intervals.iter().map(|i| fps_text(i.fps())).collect();
            format!("{} fps", fps.join("/"))
        }
        FrameRates::Stepwise { min, max } => {
            format!("{}-{} fps", fps_text(max.fps()), fps_text(min.fps()))
        }
        FrameRates::Unknown => "rates not listed".into(),
    }
}

fn format_line(f: &FormatDesc) -> String {
    let note = match CaptureFormat::from_fourcc(f.fourcc) {
        Some(CaptureFormat::H264) => ", passthrough",
        Some(_) => "",
        None => ", not usable by telepi",
    };
    format!("{} ({}{note})", fourcc_name(f.fourcc), f.description)
}

fn names(formats: &[FormatDesc]) -> String {
    let names: Vec<String> = formats.iter().map(|f| fourcc_name(f.fourcc)).collect();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

fn render(devices: &[DeviceReport], hardware_encoder: Option<&Path>) -> String {
    let mut out = String::new();
    if devices.is_empty() {
        out.push_str("No video devices (/dev/video*) found.\n");
    } else {
        out.push_str("Video devices:\n");
    }
    for d in devices {
        let (caps, kind) = match &d.found {
            Ok(found) => found,
            Err(e) => {
                let _ = writeln!(out, "{}: cannot inspect: {e}", d.path.display());
                continue;
            }
        };
        let _ = writeln!(
            out,
            "{}: {} (driver {}, {})",
            d.path.display(),
            caps.card,
            caps.driver,
            caps.bus
        );
        match kind {
            Kind::Camera(formats) if formats.is_empty() => {
                out.push_str("  camera without formats\n");
            }
            Kind::Camera(formats) => {
                out.push_str("  camera:\n");
                for f in formats {
                    let _ = writeln!(out, "    {}", format_line(&f.format));
                    for (size, rates) in &f.sizes {
                        let size = match *size {
                            FrameSizes::Discrete { width, height } => format!("{width}x{height}"),
                            FrameSizes::Stepwise {
                                min_width,
                                max_width,
                                step_width,
                                min_height,
                                max_height,
                                step_height,
                            } => format!(
                                "{min_width}x{min_height} to {max_width}x{max_height} \
                                 (steps {step_width}x{step_height}; rates at the largest)"
                            ),
                        };
                        let _ = writeln!(out, "      {size}: {}", rates_text(rates));
                    }
                }
            }
            Kind::MultiPlanarCamera(formats) => {
                let _ = writeln!(
                    out,
                    "  multi-planar capture ({}): a libcamera sensor node, use the pipe source \
                     with rpicam-vid",
                    names(formats)
                );
            }
            Kind::Codec { inputs, outputs } => {
                let role = if m2m::is_h264_encoder(
                    &inputs.iter().map(|f| f.fourcc).collect::<Vec<_>>(),
                    &outputs.iter().map(|f| f.fourcc).collect::<Vec<_>>(),
                ) {
                    "H.264 encoder"
                } else {
                    "not an H.264 encoder"
                };
                let _ = writeln!(
                    out,
                    "  memory-to-memory codec: {} -> {} ({role})",
                    names(inputs),
                    names(outputs)
                );
            }
            Kind::Other => out.push_str("  no video capture (metadata or output node)\n"),
        }
    }
    out.push_str("\nEncoders:\n");
    match hardware_encoder {
        Some(path) => {
            let _ = writeln!(out, "  v4l2m2m: usable ({})", path.display());
        }
        None => out.push_str("  v4l2m2m: not available (no V4L2 H.264 encoder found)\n"),
    }
    out.push_str("  openh264: usable (software)\n");
    out
}

/// A human-readable inventory of every `/dev/video*` node and the encoders.
pub fn list_devices() -> String {
    let devices: Vec<DeviceReport> = video_nodes().iter().map(|p| inspect(p)).collect();
    render(&devices, m2m::probe().as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::v4l2::{fourcc, Interval};

    fn desc(code: &[u8; 4], description: &str) -> FormatDesc {
        FormatDesc {
            fourcc: fourcc(code),
            description: description.into(),
        }
    }

    fn caps(card: &str, driver: &str) -> Caps {
        Caps {
            driver: driver.into(),
            card: card.into(),
            bus: "platform:test".into(),
            device_caps: 0,
        }
    }

    #[test]
    fn no_devices_is_said_plainly() {
        let text = render(&[], None);
        assert!(
            text.starts_with("No video devices (/dev/video*) found.\n"),
            "{text}"
        );
        assert!(text.contains("v4l2m2m: not available"));
        assert!(text.contains("openh264: usable"));
    }

    #[test]
    fn a_pi_with_a_webcam() {
        let iv = |d| Interval {
            numerator: 1,
            denominator: d,
        };
        let webcam = DeviceReport {
            path: "/dev/video0".into(),
            found: Ok((
                caps("USB Camera", "uvcvideo"),
                Kind::Camera(vec![
                    FormatReport {
                        format: desc(b"MJPG", "Motion-JPEG"),
                        sizes: vec![(
                            FrameSizes::Discrete {
                                width: 1280,
                                height: 720,
                            },
                            FrameRates::Discrete(vec![
                                iv(30),
                                Interval {
                                    numerator: 2,
                                    denominator: 15,
                                },
                            ]),
                        )],
                    },
                    FormatReport {
                        format: desc(b"RGB3", "24-bit RGB"),
                        sizes: vec![(
                            FrameSizes::Stepwise {
                                min_width: 32,
                                max_width: 2592,
                                step_width: 2,
                                min_height: 32,
                                max_height: 1944,
                                step_height: 2,
                            },
                            FrameRates::Stepwise {
                                min: iv(30),
                                max: iv(1),
                            },
                        )],
                    },
                ]),
            )),
        };
        let encoder = DeviceReport {
            path: "/dev/video11".into(),
            found: Ok((
                caps("bcm2835-codec-encode", "bcm2835-codec"),
                Kind::Codec {
                    inputs: vec![
                        desc(b"YU12", "Planar YUV 4:2:0"),
                        desc(b"NV12", "Y/UV 4:2:0"),
                    ],
                    outputs: vec![desc(b"H264", "H.264")],
                },
            )),
        };
        let decoder = DeviceReport {
            path: "/dev/video10".into(),
            found: Ok((
                caps("bcm2835-codec-decode", "bcm2835-codec"),
                Kind::Codec {
                    inputs: vec![desc(b"H264", "H.264")],
                    outputs: vec![desc(b"YU12", "Planar YUV 4:2:0")],
                },
            )),
        };
        let unicam = DeviceReport {
            path: "/dev/video2".into(),
            found: Ok((
                caps("unicam", "unicam"),
                Kind::MultiPlanarCamera(vec![desc(b"pRAA", "10-bit Bayer")]),
            )),
        };
        let locked = DeviceReport {
            path: "/dev/video3".into(),
            found: Err("/dev/video3: Permission denied (is the user in the 'video' group?)".into()),
        };
        let meta = DeviceReport {
            path: "/dev/video1".into(),
            found: Ok((caps("USB Camera", "uvcvideo"), Kind::Other)),
        };
        let text = render(
            &[webcam, meta, unicam, locked, decoder, encoder],
            Some(Path::new("/dev/video11")),
        );
        let expected = "\
Video devices:
/dev/video0: USB Camera (driver uvcvideo, platform:test)
  camera:
    MJPG (Motion-JPEG)
      1280x720: 30/7.5 fps
    RGB3 (24-bit RGB, not usable by telepi)
      32x32 to 2592x1944 (steps 2x2; rates at the largest): 1-30 fps
/dev/video1: USB Camera (driver uvcvideo, platform:test)
  no video capture (metadata or output node)
/dev/video2: unicam (driver unicam, platform:test)
  multi-planar capture (pRAA): a libcamera sensor node, use the pipe source with rpicam-vid
/dev/video3: cannot inspect: /dev/video3: Permission denied (is the user in the 'video' group?)
/dev/video10: bcm2835-codec-decode (driver bcm2835-codec, platform:test)
  memory-to-memory codec: H264 -> YU12 (not an H.264 encoder)
/dev/video11: bcm2835-codec-encode (driver bcm2835-codec, platform:test)
  memory-to-memory codec: YU12, NV12 -> H264 (H.264 encoder)

Encoders:
  v4l2m2m: usable (/dev/video11)
  openh264: usable (software)
";
        assert_eq!(text, expected);
    }

    #[test]
    fn this_machine_lists_without_panicking() {
        let text = list_devices();
        assert!(text.contains("openh264: usable"), "{text}");
    }

    #[test]
    fn inspecting_a_non_device_reports_the_error() {
        let report = inspect(Path::new("/dev/null"));
        assert!(report.found.unwrap_err().contains("not a V4L2 device"));
    }
}
