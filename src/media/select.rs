//! Picks the video source and encoder from the config: explicit choices are
//! honoured or fail loudly at startup; `auto` takes the best thing present.

use std::path::PathBuf;

use super::config::{parse_encoder, parse_source, EncoderChoice, SourceChoice, VideoConfig};
use super::encoder::budget::{self, M2mStream};
use super::encoder::m2m::{self, M2mEncoder, M2M_NAME};
use super::encoder::openh264::OpenH264Encoder;
use super::source::camera::{CaptureFormat, Request, V4l2Source};
use super::source::pattern::TestPattern;
use super::source::pipe::PipeSource;
use super::source::reconnect::Reconnecting;
use super::v4l2;
use super::{PixelFormat, VideoEncoder, VideoSource};

/// A source and, unless it delivers H.264 itself, the encoder for it.
pub type Video = (Box<dyn VideoSource>, Option<Box<dyn VideoEncoder>>);

/// Opens the configured source and, unless it already delivers H.264, an encoder for it.
pub fn open(config: &VideoConfig) -> Result<Video, String> {
    let source_choice = parse_source(&config.source)?;
    let encoder_choice = parse_encoder(&config.encoder)?;
    let source = open_source(config, &source_choice)?;
    let info = source.info();
    tracing::info!(
        "video source {}: {}x{}@{} {:?}",
        info.name,
        info.width,
        info.height,
        info.fps,
        info.format
    );
    let encoder = match (info.format, encoder_choice) {
        (PixelFormat::H264, EncoderChoice::Auto | EncoderChoice::Passthrough) => None,
        (PixelFormat::H264, other) => {
            return Err(format!(
                "source {} already delivers H.264; encoder {other:?} would have to decode it first: use encoder = \"passthrough\" or \"auto\"",
                info.name
            ))
        }
        (PixelFormat::I420, EncoderChoice::Passthrough) => {
            return Err(format!(
                "encoder \"passthrough\" needs an H.264 source; {} delivers raw frames",
                info.name
            ))
        }
        (PixelFormat::I420, choice) => Some(open_encoder(config, choice, &info)?),
    };
    Ok((source, encoder))
}

fn open_source(
    config: &VideoConfig,
    choice: &SourceChoice,
) -> Result<Box<dyn VideoSource>, String> {
    let pattern = || -> Result<Box<dyn VideoSource>, String> {
        let p =
            TestPattern::new(config.width, config.height, config.fps).map_err(|e| e.to_string())?;
        Ok(Box::new(match config.pattern.as_str() {
            "camera" => p.camera_like(),
            _ => p,
        }))
    };
    let request = || -> Result<Request, String> {
        let format = match config.format.as_deref() {
            None | Some("auto") => None,
            Some(name) => Some(CaptureFormat::parse(name).ok_or_else(|| {
                format!("video format {name:?}: use auto, yuyv, nv12, yu12, mjpeg or h264")
            })?),
        };
        Ok(Request {
            width: config.width,
            height: config.height,
            fps: config.fps,
            format,
        })
    };
    match choice {
        SourceChoice::Pattern => pattern(),
        SourceChoice::Pipe => {
            let command = config
                .pipe_command
                .as_deref()
                .ok_or("video source \"pipe\" needs pipe_command")?;
            PipeSource::new(command, config.width, config.height, config.fps)
                .map(|s| Box::new(s) as Box<dyn VideoSource>)
                .map_err(|e| format!("pipe source: {e}"))
        }
        SourceChoice::V4l2(Some(path)) => {
            camera(path.clone(), request()?).map_err(|e| format!("camera {e}"))
        }
        SourceChoice::V4l2(None) => first_camera(&request()?)
            .ok_or_else(|| "no V4L2 camera could be opened (see --list-devices)".to_string()),
        SourceChoice::Auto => match first_camera(&request()?) {
            Some(camera) => Ok(camera),
            None => {
                tracing::info!("no camera found: streaming the test pattern");
                pattern()
            }
        },
    }
}

/// A V4L2 camera that is reopened after it fails or is unplugged.
fn camera(path: PathBuf, request: Request) -> std::io::Result<Box<dyn VideoSource>> {
    let open =
        move || V4l2Source::open(&path, &request).map(|s| Box::new(s) as Box<dyn VideoSource>);
    Ok(Box::new(Reconnecting::new(Box::new(open))?))
}

fn first_camera(request: &Request) -> Option<Box<dyn VideoSource>> {
    v4l2::video_nodes()
        .into_iter()
        .find_map(|path| match camera(path.clone(), *request) {
            Ok(source) => Some(source),
            Err(e) => {
                tracing::debug!("{}: not a usable camera: {e}", path.display());
                None
            }
        })
}

fn open_encoder(
    config: &VideoConfig,
    choice: EncoderChoice,
    info: &super::SourceInfo,
) -> Result<Box<dyn VideoEncoder>, String> {
    let (w, h, fps, bps) = (info.width, info.height, info.fps.max(1), config.bitrate);
    let openh264 = || -> Result<Box<dyn VideoEncoder>, String> {
        OpenH264Encoder::new(w, h, fps, bps)
            .map(|e| Box::new(e) as Box<dyn VideoEncoder>)
            .map_err(|e| e.to_string())
    };
    let hardware = |path: PathBuf| -> Result<Box<dyn VideoEncoder>, String> {
        M2mEncoder::new(&path, w, h, fps, bps)
            .map(|e| Box::new(e) as Box<dyn VideoEncoder>)
            .map_err(|e| format!("hardware encoder {}: {e}", path.display()))
    };
    match choice {
        EncoderChoice::OpenH264 => openh264(),
        EncoderChoice::V4l2M2m => {
            let path =
                m2m::probe().ok_or("no V4L2 M2M H.264 encoder found (see --list-devices)")?;
            hardware(path)
        }
        EncoderChoice::Auto => match m2m::probe().map(hardware) {
            Some(Ok(encoder)) => Ok(encoder),
            Some(Err(e)) => {
                tracing::warn!("{e}; falling back to openh264");
                openh264()
            }
            None => openh264(),
        },
        EncoderChoice::Passthrough => unreachable!("handled by the caller"),
    }
}

/// The low layer's encoder and size for a camera whose main encoder is
/// `main`, if `layers = "auto"`: of the same kind (a second hardware context
/// beside a hardware main encode), else openh264. `None` (logged) if none opens.
pub fn open_low_encoder(
    config: &VideoConfig,
    main: &dyn VideoEncoder,
) -> Option<(Box<dyn VideoEncoder>, u32, u32)> {
    let (w, h) = config.low_layer_size()?;
    let (fps, bps) = (config.fps.max(1), config.low_bitrate);
    let hardware = (main.name() == M2M_NAME)
        .then(m2m::probe)
        .flatten()
        .and_then(|path| match M2mEncoder::new(&path, w, h, fps, bps) {
            Ok(encoder) => Some(Box::new(encoder) as Box<dyn VideoEncoder>),
            Err(e) => {
                tracing::warn!("low layer on {}: {e}; using openh264", path.display());
                None
            }
        });
    let encoder = match hardware {
        Some(encoder) => encoder,
        None => match OpenH264Encoder::new(w, h, fps, bps) {
            Ok(encoder) => Box::new(encoder),
            Err(e) => {
                tracing::warn!("camera {:?}: no low layer ({e})", config.name);
                return None;
            }
        },
    };
    tracing::info!(
        "camera {:?}: low layer {w}x{h} up to {bps} bit/s on {}",
        config.name,
        encoder.name()
    );
    Some((encoder, w, h))
}

/// Opens every camera in config order, then checks that those the hardware
/// encoder serves (`auto` included, now resolved) fit it together.
pub fn open_cameras<'a>(
    cameras: impl IntoIterator<Item = &'a VideoConfig>,
) -> Result<Vec<Video>, String> {
    let cameras: Vec<&VideoConfig> = cameras.into_iter().collect();
    let opened = cameras
        .iter()
        .map(|c| open(c).map_err(|e| format!("camera {:?}: {e}", c.name)))
        .collect::<Result<Vec<Video>, String>>()?;
    let on_m2m: Vec<M2mStream> = cameras
        .iter()
        .zip(&opened)
        .filter(|(_, (_, encoder))| encoder.as_ref().is_some_and(|e| e.name() == M2M_NAME))
        .map(|(c, _)| M2mStream {
            name: &c.name,
            width: c.width,
            height: c.height,
            fps: c.fps,
        })
        .collect();
    budget::check(&on_m2m)?;
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_falls_back_to_pattern_and_openh264_without_hardware() {
        let config = VideoConfig {
            source: "auto".into(),
            encoder: "auto".into(),
            ..VideoConfig::default()
        };
        let (source, encoder) = open(&config).unwrap();
        assert_eq!(source.info().name, "pattern");
        assert_eq!(encoder.unwrap().name(), "openh264");
    }

    #[test]
    fn impossible_combinations_fail_at_startup_with_a_reason() {
        let pattern_passthrough = VideoConfig {
            source: "pattern".into(),
            encoder: "passthrough".into(),
            ..VideoConfig::default()
        };
        assert!(open(&pattern_passthrough)
            .err()
            .unwrap()
            .contains("needs an H.264 source"));
        let pipe_without_command = VideoConfig {
            source: "pipe".into(),
            ..VideoConfig::default()
        };
        assert!(open(&pipe_without_command)
            .err()
            .unwrap()
            .contains("pipe_command"));
        let missing_camera = VideoConfig {
            source: "/dev/video99".into(),
            ..VideoConfig::default()
        };
        assert!(open(&missing_camera)
            .err()
            .unwrap()
            .contains("/dev/video99"));
    }
}
