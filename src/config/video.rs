//! `[video]` (one camera) and `[[video]]` (several): each table is one
//! camera, checked alone and then together (names, the hardware encoder's budget).

use std::time::Duration;

use serde::Deserialize;

use crate::media::encoder::budget::{self, M2mStream};
use crate::media::record::RecordWhen;

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
        if self.low_bitrate < 50_000 || self.low_bitrate >= self.bitrate {
            return Err(format!(
                "video low_bitrate {} must be at least 50000 and below bitrate {}",
                self.low_bitrate, self.bitrate
            ));
        }
        crate::media::select::parse_source(&self.source)?;
        crate::media::select::parse_encoder(&self.encoder)?;
        Ok(())
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
        if camera.name == crate::media::record::shell::OPERATOR {
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
pub(super) fn split_cameras(merged: &mut toml::Table) -> Result<Vec<VideoConfig>, String> {
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
    use crate::config::load;

    fn layers(texts: &[&str]) -> Vec<(String, String)> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("layer{i}"), t.to_string()))
            .collect()
    }

    fn names_and_sizes(config: &crate::config::Config) -> Vec<(String, u32, u32)> {
        config
            .cameras()
            .map(|c| (c.name.clone(), c.width, c.height))
            .collect()
    }

    #[test]
    fn a_lone_video_table_is_one_camera_named_main() {
        let c = load(&layers(&["[video]\nwidth = 320\nheight = 240\n"])).unwrap();
        assert_eq!(names_and_sizes(&c), [("main".into(), 320, 240)]);
    }

    #[test]
    fn video_tables_are_cameras_in_order_the_first_also_being_video() {
        let two = "[[video]]\nname = \"front\"\nsource = \"pattern\"\nwidth = 320\nheight = 240\n\
                   [[video]]\nname = \"arm\"\nsource = \"pattern\"\nwidth = 160\nheight = 120\nencoder = \"openh264\"\n";
        let c = load(&layers(&[two])).unwrap();
        assert_eq!(
            names_and_sizes(&c),
            [("front".into(), 320, 240), ("arm".into(), 160, 120)]
        );
        assert_eq!(c.video.name, "front");
        assert_eq!(c.more_cameras[0].encoder, "openh264");
    }

    #[test]
    fn each_video_table_is_laid_over_the_board_profiles_video() {
        let board = "[video]\nencoder = \"openh264\"\nfps = 15\n";
        let file = "[[video]]\nname = \"a\"\n[[video]]\nname = \"b\"\nfps = 10\n";
        let c = load(&layers(&[board, file])).unwrap();
        let got: Vec<(&str, &str, u32)> = c
            .cameras()
            .map(|v| (v.name.as_str(), v.encoder.as_str(), v.fps))
            .collect();
        assert_eq!(got, [("a", "openh264", 15), ("b", "openh264", 10)]);
    }

    #[test]
    fn a_camera_may_record_always_and_records_on_the_operators_switch_by_default() {
        use crate::media::record::RecordWhen;
        let two = "[[video]]\nname = \"front\"\n[[video]]\nname = \"arm\"\nrecord = \"always\"\n";
        let c = load(&layers(&[two])).unwrap();
        let record: Vec<RecordWhen> = c.cameras().map(|v| v.record).collect();
        assert_eq!(record, [RecordWhen::Operator, RecordWhen::Always]);
        let err = load(&layers(&["[video]\nrecord = \"sometimes\"\n"])).unwrap_err();
        assert!(err.contains("unknown variant"), "{err}");
    }

    #[test]
    fn mistakes_in_cameras_are_explained() {
        let err = |text: &str| load(&layers(&[text])).unwrap_err();
        assert!(err("[[video]]\n[[video]]\n").contains("\"main\" used twice"));
        assert!(err("[[video]]\nname = \"a b\"\n").contains("letters, digits"));
        assert!(err("video = []\n").contains("at least one camera"));
        assert!(err("[[video]]\nname = \"operator\"\n").contains("operator's camera"));
        let second_bad = err("[[video]]\nname = \"a\"\n[[video]]\nname = \"b\"\nwidth = 641\n");
        assert!(
            second_bad.contains("#2 (\"b\")") && second_bad.contains("even"),
            "{second_bad}"
        );
        let typo = err("[[video]]\nname = \"a\"\n[[video]]\nwidht = 3\n");
        assert!(
            typo.contains("#2") && typo.contains("unknown field"),
            "{typo}"
        );
    }

    #[test]
    fn layers_default_to_auto_with_a_quarter_size_low_layer_and_mistakes_are_explained() {
        let c = load(&layers(&["[video]\nwidth = 640\nheight = 480\n"])).unwrap();
        assert_eq!(c.video.low_layer_size(), Some((320, 240)));
        assert_eq!(c.video.low_bitrate_range(), (50_000, 300_000));
        let odd = load(&layers(&["[video]\nwidth = 1280\nheight = 722\n"])).unwrap();
        assert_eq!(odd.video.low_layer_size(), Some((640, 360)));
        let single = load(&layers(&["[video]\nlayers = \"single\"\n"])).unwrap();
        assert_eq!(single.video.low_layer_size(), None);
        let err = |text: &str| load(&layers(&[text])).unwrap_err();
        assert!(err("[video]\nlayers = \"two\"\n").contains("auto or single"));
        assert!(err("[video]\nlow_scale = 8\n").contains("2..=4"));
        assert!(err("[video]\nlow_bitrate = 2000000\n").contains("below bitrate"));
    }

    #[test]
    fn two_1080p30_hardware_streams_are_refused_at_start() {
        let hd = |name: &str, fps: u32| {
            format!("[[video]]\nname = \"{name}\"\nencoder = \"v4l2m2m\"\nwidth = 1920\nheight = 1080\nfps = {fps}\n")
        };
        let err = load(&layers(&[&(hd("front", 30) + &hd("arm", 30))])).unwrap_err();
        assert!(err.contains("hardware encoder cannot serve"), "{err}");
        load(&layers(&[&(hd("front", 15) + &hd("arm", 15))])).unwrap();
        let one_in_software = hd("front", 30) + &hd("arm", 30).replace("v4l2m2m", "openh264");
        load(&layers(&[&one_in_software])).unwrap();
    }
}
