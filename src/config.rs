//! Configuration: built-in defaults, then a TOML file (`--config`), then
//! command-line flags; later ones win.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub rtc: RtcConfig,
    pub video: VideoConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of the page, signaling and API.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtcConfig {
    /// The one UDP socket every peer's media and data goes through.
    pub listen: SocketAddr,
    pub max_peers: usize,
    /// A connected peer silent for this long is dropped (it vanished without a goodbye).
    pub peer_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Starting (and maximum) encoder bitrate, bits per second.
    pub bitrate: u32,
    /// Floor for bandwidth adaptation.
    pub min_bitrate: u32,
    /// Minimum time between requested IDRs, so ten joining peers cause one.
    pub keyframe_interval_ms: u64,
    /// `pattern` (the synthetic camera).
    pub source: String,
    /// `openh264`.
    pub encoder: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "0.0.0.0:8080".parse().expect("literal address"),
        }
    }
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            listen: "0.0.0.0:50000".parse().expect("literal address"),
            max_peers: 16,
            peer_timeout_ms: 1500,
        }
    }
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            width: 640,
            height: 480,
            fps: 30,
            bitrate: 1_500_000,
            min_bitrate: 150_000,
            keyframe_interval_ms: 500,
            source: "pattern".into(),
            encoder: "openh264".into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: HttpConfig::default(),
            rtc: RtcConfig::default(),
            video: VideoConfig::default(),
        }
    }
}

impl RtcConfig {
    pub fn peer_timeout(&self) -> Duration {
        Duration::from_millis(self.peer_timeout_ms)
    }
}

impl VideoConfig {
    pub fn keyframe_interval(&self) -> Duration {
        Duration::from_millis(self.keyframe_interval_ms)
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Action {
    Run(Box<Config>),
    Help,
    Version,
}

pub const USAGE: &str = "\
telepi: stream a camera to browsers over WebRTC and drive the robot from them

Usage: telepi [OPTIONS]

Options:
  --config FILE        TOML configuration file (see README)
  --http ADDR:PORT     page, signaling and API address   [default: 0.0.0.0:8080]
  --rtc ADDR:PORT      UDP address for all WebRTC peers  [default: 0.0.0.0:50000]
  -h, --help           show this help
  -V, --version        show the version

Environment: TELEPI_LOG=error|warn|info|debug|trace sets the log level.
";

/// Parses the arguments (without the program name) and loads the config file they name.
pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Action, String> {
    let mut args = args.into_iter();
    let mut file: Option<PathBuf> = None;
    let (mut http, mut rtc) = (None, None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Action::Help),
            "-V" | "--version" => return Ok(Action::Version),
            "--config" => file = Some(value("--config")?.into()),
            "--http" => http = Some(parse_addr("--http", &value("--http")?)?),
            "--rtc" => rtc = Some(parse_addr("--rtc", &value("--rtc")?)?),
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    let mut config = match file {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            parse(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(addr) = http {
        config.http.listen = addr;
    }
    if let Some(addr) = rtc {
        config.rtc.listen = addr;
    }
    config.validate()?;
    Ok(Action::Run(Box::new(config)))
}

/// Parses a TOML config; missing keys take their defaults, unknown keys are errors.
pub fn parse(text: &str) -> Result<Config, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

impl Config {
    fn validate(&self) -> Result<(), String> {
        let v = &self.video;
        if v.width % 2 != 0
            || v.height % 2 != 0
            || v.width < 64
            || v.height < 64
            || v.width > 4096
            || v.height > 4096
        {
            return Err(format!(
                "video size {}x{} must be even and between 64 and 4096",
                v.width, v.height
            ));
        }
        if !(1..=120).contains(&v.fps) {
            return Err(format!("video fps {} must be 1..=120", v.fps));
        }
        if v.min_bitrate == 0 || v.min_bitrate > v.bitrate {
            return Err(format!(
                "video min_bitrate {} must be >0 and <= bitrate {}",
                v.min_bitrate, v.bitrate
            ));
        }
        if self.rtc.max_peers == 0 {
            return Err("rtc max_peers must be at least 1".into());
        }
        Ok(())
    }
}

fn parse_addr(flag: &str, s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("{flag} wants ADDR:PORT like 0.0.0.0:8080, got {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(parse("[video]\nwidth = 641")
            .unwrap()
            .validate()
            .unwrap_err()
            .contains("even"));
        assert_eq!(from_args(["--help".to_string()]), Ok(Action::Help));
    }
}
