//! Configuration: built-in defaults, then a TOML file (`--config`), then
//! command-line flags; later ones win.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::access::AccessConfig;
use crate::api::ApiConfig;
use crate::controls::{ControlConfig, Controls, ReadingConfig};
use crate::drive::{BackendKind, DriveConfig};
use crate::http::config::{HttpConfig, HttpsConfig};
use crate::media::audio::AudioConfig;
use crate::media::config::{self as video, VideoConfig};
use crate::media::display::{DisplayConfig, Show};
use crate::media::record::RecordConfig;
use crate::rtc::config::RtcConfig;
use crate::session::SessionConfig;

mod error;
#[cfg(test)]
mod profile_tests;
#[cfg(test)]
mod publish_tests;
#[cfg(test)]
mod video_tests;
pub use error::ConfigError;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where telepi keeps what must survive a restart (the generated TLS pair).
    /// Unset: `$STATE_DIRECTORY` (systemd), else `$XDG_STATE_HOME/telepi`,
    /// else `~/.local/state/telepi`.
    pub state_dir: Option<PathBuf>,
    pub http: HttpConfig,
    pub https: HttpsConfig,
    pub access: AccessConfig,
    pub broker: crate::broker::BrokerConfig,
    pub rtc: RtcConfig,
    /// `[video]`, or the first of the `[[video]]` tables: the first camera.
    pub video: VideoConfig,
    /// The `[[video]]` tables after the first, in order.
    #[serde(skip)]
    pub more_cameras: Vec<VideoConfig>,
    pub audio: AudioConfig,
    /// `[record]`: where recordings go, their limits, always-on.
    pub record: RecordConfig,
    /// `[display]`: the robot's own screen, and what it shows.
    pub display: DisplayConfig,
    pub drive: DriveConfig,
    pub control: SessionConfig,
    pub api: ApiConfig,
    /// `[[controls]]`: buttons, toggles and sliders on the page (see [`crate::controls`]).
    pub controls: Vec<ControlConfig>,
    /// `[[readings]]`: how the page shows what programs publish.
    pub readings: Vec<ReadingConfig>,
    /// `[[publish]]`: SFUs to publish to over WHIP (see [`crate::rtc::publish`]).
    pub publish: Vec<crate::rtc::publish::PublishConfig>,
}

macro_rules! board {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../board/profiles/", $name, ".toml")),
        )
    };
}

/// Board profiles from `board/profiles/`, compiled in: `--board NAME`.
pub const BOARDS: &[(&str, &str)] = &[
    board!("pi-zero2w-l298n"),
    board!("pi-zero2w-tb6612"),
    board!("pi-zero2w-drv8833"),
    board!("pi3-l298n"),
    board!("pi3-tb6612"),
    board!("pi3-drv8833"),
    board!("pi4-l298n"),
    board!("pi4-tb6612"),
    board!("pi4-drv8833"),
    board!("pi5-l298n"),
    board!("pi5-tb6612"),
    board!("pi5-drv8833"),
    board!("adafruit-motor-hat"),
    board!("waveshare-motor-hat"),
    board!("arduino-serial"),
];

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Action {
    Run(Box<Config>),
    Help,
    Version,
    ListDevices,
    ListBoards,
    /// Write the page into a directory (for a static host, or opened as a file with ?broker=).
    ExportPage(PathBuf),
}

pub const USAGE: &str = "\
telepi: stream a camera to browsers over WebRTC and drive the robot from them

Usage: telepi [OPTIONS]

Options:
  --config FILE        TOML configuration file (docs/reference/configuration.md)
  --http ADDR:PORT     page, signaling and API address   [default: 0.0.0.0:8080]
  --https ADDR:PORT    also serve everything over TLS here (certificate from
                       [https] cert/key, else a generated self-signed pair)
  --rtc ADDR:PORT      UDP address for all WebRTC peers  [default: 0.0.0.0:50000]
  --board NAME         start from a board profile (pins, driver, encoder); the
                       config file and flags override it. --board list shows them
  --list-devices       list cameras, their formats and the usable encoders
  export-page DIR      write the page into DIR, to open with ?broker= (docs/guide/remote-access.md)
  -h, --help           show this help
  -V, --version        show the version

Environment: TELEPI_LOG=error|warn|info|debug|trace sets the log level.
";

/// Parses the arguments (without the program name) and loads the config file they name.
pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Action, ConfigError> {
    let mut args = args.into_iter();
    let mut file: Option<PathBuf> = None;
    let mut board: Option<String> = None;
    let (mut http, mut https, mut rtc) = (None, None, None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            (args.next()).ok_or_else(|| ConfigError::Usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(Action::Help),
            "-V" | "--version" => return Ok(Action::Version),
            "--list-devices" => return Ok(Action::ListDevices),
            "export-page" => return Ok(Action::ExportPage(value("export-page")?.into())),
            "--config" => file = Some(value("--config")?.into()),
            "--board" => board = Some(value("--board")?),
            "--http" => http = Some(parse_addr("--http", &value("--http")?)?),
            "--https" => https = Some(parse_addr("--https", &value("--https")?)?),
            "--rtc" => rtc = Some(parse_addr("--rtc", &value("--rtc")?)?),
            other => {
                let why = format!("unknown argument {other:?} (see --help)");
                return Err(ConfigError::Usage(why));
            }
        }
    }
    let mut layers = Vec::new();
    if board.as_deref() == Some("list") {
        return Ok(Action::ListBoards);
    }
    if let Some(name) = board {
        let profile = BOARDS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            let known: Vec<&str> = BOARDS.iter().map(|(n, _)| *n).collect();
            let known = known.join(", ");
            ConfigError::Usage(format!("unknown board {name:?}; known boards: {known}"))
        })?;
        layers.push((format!("board {name}"), profile.1.to_string()));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        layers.push((path.display().to_string(), text));
    }
    let mut config = parse_layers(&layers)?;
    if let Some(addr) = http {
        config.http.listen = addr;
    }
    if let Some(addr) = https {
        config.https.listen = Some(addr);
    }
    if let Some(addr) = rtc {
        config.rtc.listen = addr;
    }
    config.validate().map_err(ConfigError::Invalid)?;
    Ok(Action::Run(Box::new(config)))
}

/// Parses a TOML config; missing keys take their defaults, unknown keys are
/// errors, in words (what tests and `tests/docs.rs` read).
pub fn parse(text: &str) -> Result<Config, String> {
    parse_layers(&[("config".into(), text.into())]).map_err(|e| e.to_string())
}

/// What `--board` and `--config` load: each (origin, TOML text) layer laid
/// over the earlier ones, key by key, then checked as a whole (ranges, pins,
/// sources, ICE URLs). Command-line addresses are not applied.
pub fn load(layers: &[(String, String)]) -> Result<Config, ConfigError> {
    let config = parse_layers(layers)?;
    config.validate().map_err(ConfigError::Invalid)?;
    Ok(config)
}

/// Parses each (origin, TOML text) layer and lays later ones over earlier ones, key by key.
fn parse_layers(layers: &[(String, String)]) -> Result<Config, ConfigError> {
    let mut merged = toml::Table::new();
    for (origin, text) in layers {
        let table: toml::Table = text.parse().map_err(|source| ConfigError::Syntax {
            origin: origin.clone(),
            source,
        })?;
        merge(&mut merged, table);
    }
    let origins: Vec<&str> = layers.iter().map(|(o, _)| o.as_str()).collect();
    let in_layers = |reason: String| ConfigError::Keys {
        origins: origins.join(" + "),
        reason,
    };
    let more_cameras = video::split_cameras(&mut merged).map_err(in_layers)?;
    let config: Config = toml::Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| in_layers(e.to_string()))?;
    Ok(Config {
        more_cameras,
        ..config
    })
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            // `[[video]]` over a board profile's `[video]`: each camera keeps
            // the profile's keys it does not set (the encoder, say).
            (Some(toml::Value::Table(b)), toml::Value::Array(items)) => {
                let inherit = |item: toml::Value| match item {
                    toml::Value::Table(o) => {
                        let mut table = b.clone();
                        merge(&mut table, o);
                        toml::Value::Table(table)
                    }
                    other => other,
                };
                let items = items.into_iter().map(inherit).collect();
                base.insert(key, toml::Value::Array(items));
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl Config {
    /// The state directory: `state_dir`, else `$STATE_DIRECTORY` (systemd; the
    /// first if it lists several), else `$XDG_STATE_HOME/telepi`, else
    /// `~/.local/state/telepi`.
    pub fn state_dir(&self) -> Result<PathBuf, String> {
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(dir) = &self.state_dir {
            return Ok(dir.clone());
        }
        if let Some(dirs) = env("STATE_DIRECTORY") {
            let first = dirs.to_string_lossy().split(':').next().map(PathBuf::from);
            return first.ok_or_else(|| "STATE_DIRECTORY is malformed".into());
        }
        if let Some(xdg) = env("XDG_STATE_HOME") {
            return Ok(PathBuf::from(xdg).join("telepi"));
        }
        let home = env("HOME").ok_or("no state directory: set state_dir, or HOME")?;
        Ok(PathBuf::from(home).join(".local/state/telepi"))
    }

    /// Where recordings go: `[record] dir`, else `recordings` in the state
    /// directory; `Err` says why there is none.
    pub fn record_dir(&self) -> Result<PathBuf, String> {
        match &self.record.dir {
            Some(dir) => Ok(dir.clone()),
            None => Ok(self.state_dir()?.join("recordings")),
        }
    }

    /// Every camera in config order: `[video]` or each `[[video]]`.
    pub fn cameras(&self) -> impl Iterator<Item = &VideoConfig> {
        std::iter::once(&self.video).chain(&self.more_cameras)
    }

    /// What `[display]` shows; `None` without a display.
    pub fn display_shows(&self) -> Result<Option<Show>, String> {
        let names: Vec<&str> = self.cameras().map(|c| c.name.as_str()).collect();
        self.display.show(&names)
    }

    /// `[[controls]]` and `[[readings]]`, checked, with their defaults filled in.
    pub fn checked_controls(&self) -> Result<Controls, String> {
        Controls::new(&self.controls, &self.readings)
    }

    fn validate(&self) -> Result<(), String> {
        video::validate(self.cameras())?;
        self.http.validate(&self.https)?;
        self.rtc.validate()?;
        crate::rtc::ice::check_credentials(&self.rtc)
            .map_err(|e| format!("rtc ice_servers: {e}"))?;
        self.broker.validate()?;
        self.record.validate()?;
        self.display_shows()?;
        self.drive.validate()?;
        self.api.validate()?;
        if self.drive.backend == BackendKind::External && self.api.socket.is_none() {
            return Err(
                "drive backend \"external\" needs the local API: set [api] socket (e.g. \"/run/telepi/api.sock\")"
                    .into(),
            );
        }
        self.checked_controls()?;
        self.publish_destinations()?;
        Ok(())
    }

    /// `[[publish]]`, checked against the cameras.
    pub fn publish_destinations(&self) -> Result<Vec<crate::rtc::publish::Destination>, String> {
        let names: Vec<&str> = self.cameras().map(|c| c.name.as_str()).collect();
        (self.publish.iter())
            .map(|p| p.destination(&names))
            .collect()
    }
}

fn parse_addr(flag: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| {
        ConfigError::Usage(format!(
            "{flag} wants ADDR:PORT like 0.0.0.0:8080, got {s:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The loaders with their errors in words, as the user reads them.
    fn from_args(args: impl IntoIterator<Item = String>) -> Result<Action, String> {
        super::from_args(args).map_err(|e| e.to_string())
    }

    fn load(layers: &[(String, String)]) -> Result<Config, String> {
        super::load(layers).map_err(|e| e.to_string())
    }

    fn run(args: &[&str]) -> Result<Config, String> {
        match from_args(args.iter().map(|s| s.to_string()))? {
            Action::Run(c) => Ok(*c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_readme() {
        let c = run(&[]).unwrap();
        assert_eq!(c.http.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.rtc.listen.to_string(), "0.0.0.0:50000");
        assert_eq!((c.video.width, c.video.height, c.video.fps), (640, 480, 30));
        assert!(c.rtc.congestion_control);
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("telepi-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.toml");
        std::fs::write(
            &path,
            "[http]\nlisten = \"127.0.0.1:1\"\n[video]\nwidth = 320\nheight = 240\n",
        )
        .unwrap();
        let c = run(&["--config", path.to_str().unwrap(), "--http", "127.0.0.1:9"]).unwrap();
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:9");
        assert_eq!((c.video.width, c.video.height, c.video.fps), (320, 240, 30));
    }

    #[test]
    fn mistakes_are_explained() {
        assert!(run(&["--http"]).unwrap_err().contains("needs a value"));
        assert!(run(&["--http", "nope"]).unwrap_err().contains("ADDR:PORT"));
        assert!(run(&["--frobnicate"])
            .unwrap_err()
            .contains("unknown argument"));
        assert!(run(&["--config", "/nonexistent.toml"])
            .unwrap_err()
            .contains("reading"));
        assert!(parse("[video]\nwidht = 3")
            .unwrap_err()
            .contains("unknown field"));
        assert!(parse("[video]\npattern = \"stripes\"")
            .unwrap()
            .validate()
            .unwrap_err()
            .contains("bars or camera"));
        assert!(parse("[video]\nwidth = 641")
            .unwrap()
            .validate()
            .unwrap_err()
            .contains("even"));
        assert_eq!(from_args(["--help".to_string()]), Ok(Action::Help));
        let list = ["--board", "list"].map(String::from);
        assert_eq!(from_args(list), Ok(Action::ListBoards));
        let unknown = run(&["--board", "pi9-l298n"]).unwrap_err();
        assert!(
            unknown.contains("pi4-tb6612"),
            "lists the known boards: {unknown}"
        );
    }

    #[test]
    fn a_board_profile_is_the_base_and_the_file_overrides_it_key_by_key() {
        let c = run(&["--board", "pi5-tb6612"]).unwrap();
        assert_eq!(
            c.video.encoder, "openh264",
            "the Pi 5 has no hardware H.264"
        );
        assert_eq!(c.drive.stby, Some(25));
        let dir = std::env::temp_dir().join(format!("telepi-board-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("o.toml");
        std::fs::write(&path, "[drive]\ndeadman_ms = 200\n").unwrap();
        let c = run(&["--board", "pi5-tb6612", "--config", path.to_str().unwrap()]).unwrap();
        assert_eq!(c.drive.deadman_ms, 200);
        assert_eq!(
            c.drive.stby,
            Some(25),
            "the rest of [drive] still comes from the profile"
        );
    }

    #[test]
    fn the_external_backend_needs_the_api_and_controls_are_checked_at_start() {
        let layer = |text: &str| vec![("t.toml".to_string(), text.to_string())];
        let external = "[drive]\nbackend = \"external\"\n";
        assert!(load(&layer(external))
            .unwrap_err()
            .contains("set [api] socket"));
        let with_api = format!("{external}[api]\nsocket = \"/tmp/x.sock\"\nmode = 0o600\n");
        let c = load(&layer(&with_api)).unwrap();
        assert_eq!(c.api.mode, 0o600);
        assert_eq!(
            c.api.socket.as_deref(),
            Some(std::path::Path::new("/tmp/x.sock"))
        );
        assert!(load(&layer("[api]\nmode = 0o1777"))
            .unwrap_err()
            .contains("file mode"));
        assert!(load(&layer("[api]\nqueue = 1"))
            .unwrap_err()
            .contains("queue"));
        let twice = "[[controls]]\nname = \"horn\"\nkind = \"button\"\n".repeat(2);
        assert!(load(&layer(&twice)).unwrap_err().contains("used twice"));
        assert!(load(&layer("[record]\nmax_file_mb = 50\nquota_mb = 10"))
            .unwrap_err()
            .contains("one file must fit"));
        // Issue 19: a small quota alone used to refuse to start (the
        // default max_file_mb, 100, did not fit).
        let small = load(&layer("[record]\nquota_mb = 10")).unwrap();
        assert_eq!(small.record.limits().max_file_bytes, 10_000_000);
        let default = load(&layer("")).unwrap().record.limits();
        assert_eq!(
            (default.max_file_bytes, default.quota_bytes),
            (100_000_000, 1_000_000_000)
        );
        assert!(load(&layer("[record]\nquota_mb = 0"))
            .unwrap_err()
            .contains("quota_mb must be"));
        assert!(load(&layer("[record]\nmax_file_seconds = 0"))
            .unwrap_err()
            .contains("max_file_seconds"));
        assert!(load(&layer("[[readings]]\nname = \"v\"\nmin = 1.0"))
            .unwrap_err()
            .contains("go together"));
    }

    #[test]
    fn every_shipped_board_profile_loads() {
        for (name, _) in BOARDS {
            run(&["--board", name]).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
