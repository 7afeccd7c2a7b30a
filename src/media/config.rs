//! `[video]` (one camera) and `[[video]]` (several): each table is one
//! camera, checked alone and then together (names, the hardware encoder's budget).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::encoder::budget::{self, M2mStream};
use super::record::RecordWhen;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    /// How the page, the API and the status call this camera.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Starting (and maximum) encoder bitrate, bits per second.
    pub bitrate: u32,
    /// Floor for bandwidth adaptation.
    pub min_bitrate: u32,
    /// Minimum time between requested IDRs, so ten joining peers cause one.
    pub keyframe_interval_ms: u64,
    /// `auto` (first camera, else the test pattern), `pattern`, `v4l2`, `/dev/videoN` or `pipe`.
    pub source: String,
    /// What the test pattern shows: `bars` (easy to compress) or `camera`
    /// (a panning scene with sensor noise, for honest encoder figures).
    pub pattern: String,
    /// Camera pixel format: `auto`, `yuyv`, `nv12`, `yu12`, `mjpeg` or `h264`.
    pub format: Option<String>,
    /// For `source = "pipe"`: a command writing Annex-B H.264 to stdout.
    pub pipe_command: Option<String>,
    /// `auto` (hardware V4L2 M2M if present, else openh264), `openh264`, `v4l2m2m`, `passthrough`.
    pub encoder: String,
    /// `operator` (while the operator's switch is on) or `always`.
    pub record: RecordWhen,
    /// `auto`: besides the main encode, a low layer for viewers whose link
    /// cannot carry it; `single`: one encode, fitted to the slowest viewer.
    /// Passthrough sources always have one.
    pub layers: String,
    /// The low layer's size: the camera's divided by this (2: a quarter of the pixels).
    pub low_scale: u32,
    /// The low layer's highest bitrate, bits per second.
    pub low_bitrate: u32,
}

/// The name a lone `[video]` table's camera gets.
pub const FIRST_CAMERA: &str = "main";

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            name: FIRST_CAMERA.into(),
            width: 640,
            height: 480,
            fps: 30,
            bitrate: 1_500_000,
            min_bitrate: 150_000,
            keyframe_interval_ms: 500,
            source: "auto".into(),
            pattern: "bars".into(),
            format: None,
            pipe_command: None,
            encoder: "auto".into(),
            record: RecordWhen::Operator,
            layers: "auto".into(),
            low_scale: 2,
            low_bitrate: 300_000,
        }
    }
}

impl VideoConfig {
    pub fn keyframe_interval(&self) -> Duration {
        Duration::from_millis(self.keyframe_interval_ms)
    }

    /// The low layer's size, if `layers = "auto"` (even, so I420 holds).
    pub fn low_layer_size(&self) -> Option<(u32, u32)> {
        let even = |n: u32| (n / self.low_scale) & !1;
        (self.layers == "auto").then(|| (even(self.width), even(self.height)))
    }

    /// The low layer's bitrate range: up to `low_bitrate`, down to a sixth
    /// of it. Its viewers' links are the weak ones: held at the main layer's
    /// floor (150 kbit/s) above a slow link's estimate, its frames queued in
    /// the pacer (0.5 s freezes behind a 300 kbit/s link estimated at 85).
    pub fn low_bitrate_range(&self) -> (u32, u32) {
        (self.low_bitrate / 6, self.low_bitrate)
    }

    fn validate(&self) -> Result<(), String> {
        let name_ok = (1..=32).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(format!(
                "video name {:?}: 1 to 32 letters, digits, - or _",
                self.name
            ));
        }
        if !self.width.is_multiple_of(2)
            || !self.height.is_multiple_of(2)
            || !(64..=4096).contains(&self.width)
            || !(64..=4096).contains(&self.height)
        {
            return Err(format!(
                "video size {}x{} must be even and between 64 and 4096",
                self.width, self.height
            ));
        }
        if !(1..=120).contains(&self.fps) {
            return Err(format!("video fps {} must be 1..=120", self.fps));
        }
        if !["bars", "camera"].contains(&self.pattern.as_str()) {
            return Err(format!(
                "video pattern {:?}: use bars or camera",
                self.pattern
            ));
        }
        if self.min_bitrate == 0 || self.min_bitrate > self.bitrate {
            return Err(format!(
                "video min_bitrate {} must be >0 and <= bitrate {}",
                self.min_bitrate, self.bitrate
            ));
        }
        if !["auto", "single"].contains(&self.layers.as_str()) {
            return Err(format!(
                "video layers {:?}: use auto or single",
                self.layers
            ));
        }
        if !(2..=4).contains(&self.low_scale)
            || self.width / self.low_scale < 32
            || self.height / self.low_scale < 32
        {
            return Err(format!(
                "video low_scale {} must be 2..=4 and leave at least 32x32 of {}x{}",
                self.low_scale, self.width, self.height
            ));
        }
        // Only a low layer that exists needs room below the main encode.
        let layered = self.layers == "auto";
        if layered && (self.low_bitrate < 50_000 || self.low_bitrate >= self.bitrate) {
            return Err(format!(
                "video low_bitrate {} must be at least 50000 and below bitrate {} \
                 (or layers = \"single\": one encode, no low layer)",
                self.low_bitrate, self.bitrate
            ));
        }
        parse_source(&self.source)?;
        parse_encoder(&self.encoder)?;
        Ok(())
    }
}

/// What `source` in `[video]` asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceChoice {
    Auto,
    Pattern,
    /// A V4L2 camera; `None` = the first one that opens.
    V4l2(Option<PathBuf>),
    Pipe,
}

/// What `encoder` in `[video]` asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EncoderChoice {
    Auto,
    OpenH264,
    V4l2M2m,
    Passthrough,
}

pub fn parse_source(s: &str) -> Result<SourceChoice, String> {
    match s {
        "auto" => Ok(SourceChoice::Auto),
        "pattern" => Ok(SourceChoice::Pattern),
        "v4l2" => Ok(SourceChoice::V4l2(None)),
        "pipe" => Ok(SourceChoice::Pipe),
        path if path.starts_with("/dev/") => Ok(SourceChoice::V4l2(Some(path.into()))),
        other => Err(format!(
            "video source {other:?}: use auto, pattern, v4l2, /dev/videoN or pipe"
        )),
    }
}

pub fn parse_encoder(s: &str) -> Result<EncoderChoice, String> {
    match s {
        "auto" => Ok(EncoderChoice::Auto),
        "openh264" => Ok(EncoderChoice::OpenH264),
        "v4l2m2m" => Ok(EncoderChoice::V4l2M2m),
        "passthrough" => Ok(EncoderChoice::Passthrough),
        other => Err(format!(
            "video encoder {other:?}: use auto, openh264, v4l2m2m or passthrough"
        )),
    }
}

/// Checks every camera, then that names are unique and that the cameras
/// asking for the hardware encoder fit it together. Only an explicit
/// `encoder = "v4l2m2m"` counts: what `auto` picks is known once the board is probed.
pub fn validate<'a>(cameras: impl IntoIterator<Item = &'a VideoConfig>) -> Result<(), String> {
    let cameras: Vec<&VideoConfig> = cameras.into_iter().collect();
    for (i, camera) in cameras.iter().enumerate() {
        camera.validate().map_err(|e| match cameras.len() {
            1 => e,
            _ => format!("[[video]] #{} ({:?}): {e}", i + 1, camera.name),
        })?;
        if camera.name == super::record::shell::OPERATOR {
            return Err(format!(
                "video name {:?} is the operator's camera's (its recordings are named so): choose another",
                camera.name
            ));
        }
        if let Some(earlier) = cameras[..i].iter().find(|c| c.name == camera.name) {
            return Err(format!(
                "video name {:?} used twice: give each [[video]] its own name",
                earlier.name
            ));
        }
    }
    let m2m: Vec<M2mStream> = cameras
        .iter()
        .filter(|c| c.encoder == "v4l2m2m")
        .map(|c| M2mStream {
            name: &c.name,
            width: c.width,
            height: c.height,
            fps: c.fps,
        })
        .collect();
    budget::check(&m2m)
}

/// Takes the `[[video]]` array out of a merged config table: its first table
/// stays as `video` (the first camera, where a lone `[video]` would be), the
/// others are returned, parsed.
pub(crate) fn split_cameras(merged: &mut toml::Table) -> Result<Vec<VideoConfig>, String> {
    let Some(toml::Value::Array(tables)) = merged.get("video") else {
        return Ok(Vec::new());
    };
    let mut tables = tables.clone().into_iter();
    let first = tables
        .next()
        .ok_or("[[video]] is empty: give at least one camera")?;
    merged.insert("video".into(), first);
    tables
        .enumerate()
        .map(|(i, table)| {
            table
                .try_into()
                .map_err(|e: toml::de::Error| format!("[[video]] #{}: {e}", i + 2))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_mistakes_say_what_is_allowed() {
        assert_eq!(parse_source("auto"), Ok(SourceChoice::Auto));
        assert_eq!(
            parse_source("/dev/video2"),
            Ok(SourceChoice::V4l2(Some("/dev/video2".into())))
        );
        assert!(parse_source("webcam").unwrap_err().contains("pattern"));
        assert_eq!(parse_encoder("v4l2m2m"), Ok(EncoderChoice::V4l2M2m));
        assert!(parse_encoder("x264").unwrap_err().contains("openh264"));
    }
}
