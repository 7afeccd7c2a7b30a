//! telepi-bench: telepi against an RTCBot-style Python/aiortc baseline, on one
//! machine, with headless str0m+openh264 viewers. Only the server process is
//! measured (/proc/<pid>/stat and /status); the viewers' cost is reported
//! separately. `bench/run.sh` is the one command; see docs/benchmarks.md.
//!
//! ```text
//! telepi-bench run    [--servers telepi,baseline[,gstreamer][,NAME=TELEPI_BINARY[@CONFIG]]] [--viewers 1,4,10] [--seconds 15]
//!                     [--warmup 3] [--idle 2] [--repeat 1] [--telepi PATH] [--python PATH]
//!                     [--baseline-script PATH] [--gst-python PATH] [--out FILE] [--logs DIR] [--content bars|camera]
//!                     [--video-lines 1|2]   (video m-lines per viewer offer; only the first is measured)
//!                     [--server-cpus 0 --viewer-cpus 1]   (pin them apart)
//! telepi-bench report --run FILE [--chromium FILE] [--out docs/benchmarks.md]
//!                     [--plots DIR] [--command CMD] [--telepi PATH] [--venv DIR]
//! telepi-bench smoke  [--telepi PATH] [--seconds 2]
//! ```

mod http;
mod quality;
mod report;
mod run;
mod server;
mod stamp;
mod svg;
mod viewer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use server::{Content, Kind};

const USAGE: &str =
    "usage: telepi-bench run|report|smoke [--option value ...] (see bench/src/main.rs)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(cmd) = args.next() else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let opts = match parse_opts(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("telepi-bench: {e}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cmd.as_str() {
        "run" => cmd_run(&opts),
        "report" => cmd_report(&opts),
        "smoke" => cmd_smoke(&opts),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("telepi-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Opts(HashMap<String, String>);

impl Opts {
    fn get(&self, key: &str, default: &str) -> String {
        self.0
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }
    fn f64(&self, key: &str, default: f64) -> Result<f64, String> {
        self.0.get(key).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("--{key}: not a number: {v}"))
        })
    }
    fn opt(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}

fn parse_opts(mut args: impl Iterator<Item = String>) -> Result<Opts, String> {
    let mut map = HashMap::new();
    while let Some(a) = args.next() {
        let key = a
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {a}"))?;
        let value = args
            .next()
            .ok_or_else(|| format!("--{key} needs a value"))?;
        map.insert(key.to_string(), value);
    }
    Ok(Opts(map))
}

fn kinds(opts: &Opts, names: &str) -> Result<Vec<Kind>, String> {
    names
        .split(',')
        .map(|name| match name.trim() {
            "telepi" => Ok(Kind::Telepi {
                name: "telepi".into(),
                bin: PathBuf::from(opts.get("telepi", "target/release/telepi")),
                config: None,
            }),
            // Another telepi build to compare, e.g. `telepi-fix=/tmp/telepi`,
            // or a configuration: `recording=target/release/telepi@bench/record.toml`.
            other if other.contains('=') => {
                let (name, bin) = other.split_once('=').unwrap();
                let (bin, config) = match bin.split_once('@') {
                    Some((bin, config)) => (bin, Some(PathBuf::from(config))),
                    None => (bin, None),
                };
                Ok(Kind::Telepi {
                    name: name.to_string(),
                    bin: PathBuf::from(bin),
                    config,
                })
            }
            "baseline" => Ok(Kind::Python {
                name: "baseline",
                python: PathBuf::from(opts.get("python", "bench/.venv/bin/python")),
                script: PathBuf::from(opts.get("baseline-script", "bench/baseline/server.py")),
            }),
            // Debian's Python: python3-gi and GStreamer come from Debian's packages.
            "gstreamer" => Ok(Kind::Python {
                name: "gstreamer",
                python: PathBuf::from(opts.get("gst-python", "/usr/bin/python3")),
                script: PathBuf::from("bench/gstreamer/server.py"),
            }),
            other => Err(format!(
                "unknown server {other} (telepi, baseline, gstreamer, NAME=PATH)"
            )),
        })
        .collect()
}

fn run_config(
    opts: &Opts,
    servers: &str,
    viewers: &str,
    seconds: f64,
) -> Result<run::RunConfig, String> {
    let viewers = opts
        .get("viewers", viewers)
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("--viewers: {v}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(run::RunConfig {
        servers: kinds(opts, &opts.get("servers", servers))?,
        viewers,
        seconds: opts.f64("seconds", seconds)?,
        warmup: opts.f64("warmup", 3.0)?,
        idle: opts.f64("idle", 2.0)?,
        repeat: opts.f64("repeat", 1.0)? as usize,
        logs: PathBuf::from(opts.get("logs", "bench/results/logs")),
        server_cpus: cpu_list(opts.opt("server-cpus"))?,
        viewer_cpus: cpu_list(opts.opt("viewer-cpus"))?,
        content: Content::parse(&opts.get("content", "bars"))?,
        video_lines: opts.f64("video-lines", 1.0)? as usize,
    })
}

/// "0" or "0,1" or "2-3".
fn cpu_list(v: Option<String>) -> Result<Option<Vec<usize>>, String> {
    let Some(v) = v else { return Ok(None) };
    let mut out = Vec::new();
    for part in v.split(',') {
        let bad = || format!("bad CPU list {v}");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(Some(out))
}

fn cmd_run(opts: &Opts) -> Result<(), String> {
    let cfg = run_config(opts, "telepi,baseline", "1,4,10", 15.0)?;
    let out = PathBuf::from(opts.get("out", "bench/results/run.json"));
    let result = run::run(&cfg)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&result).unwrap())
        .map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("bench: wrote {}", out.display());
    Ok(())
}

fn cmd_report(opts: &Opts) -> Result<(), String> {
    let read = |path: &str| -> Result<serde_json::Value, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
    };
    let run = read(&opts.get("run", "bench/results/run.json"))?;
    let chromium = match opts.opt("chromium") {
        Some(p) if std::path::Path::new(&p).exists() => Some(read(&p)?),
        _ => None,
    };
    let inputs = report::Inputs {
        run,
        chromium,
        command: opts.get("command", "bench/run.sh"),
        telepi_bin: PathBuf::from(opts.get("telepi", "target/release/telepi")),
        venv: PathBuf::from(opts.get("venv", "bench/.venv")),
        plots: PathBuf::from(opts.get("plots", "docs")),
    };
    let out = PathBuf::from(opts.get("out", "docs/benchmarks.md"));
    report::write(&inputs, &out)?;
    eprintln!(
        "bench: wrote {} and plots in {}",
        out.display(),
        inputs.plots.display()
    );
    Ok(())
}

/// CI smoke: telepi alone, one viewer, a couple of seconds; fails unless
/// frames arrive at a sane rate with a readable stamp.
fn cmd_smoke(opts: &Opts) -> Result<(), String> {
    let mut cfg = run_config(opts, "telepi", "1", 2.0)?;
    cfg.warmup = opts.f64("warmup", 0.5)?;
    cfg.idle = opts.f64("idle", 0.5)?;
    let result = run::run(&cfg)?;
    let s = &result["scenarios"][0];
    let fps = s["fps_mean"].as_f64().unwrap_or(0.0);
    let p50 = s["latency_received_ms"]["p50"].as_f64().unwrap_or(f64::NAN);
    let errors = s["errors"].as_array().map_or(0, Vec::len);
    println!(
        "smoke: telepi, 1 viewer, {:.1} s: cpu {:.3} s/s, rss {} KiB, {fps:.1} fps, capture->received p50 {p50:.1} ms",
        s["window_s"].as_f64().unwrap_or(0.0),
        s["cpu"].as_f64().unwrap_or(f64::NAN),
        s["rss_steady_kib"],
    );
    if errors > 0 {
        return Err(format!("viewer errors: {}", s["errors"]));
    }
    if fps < 10.0 {
        return Err(format!("only {fps:.1} frames/s decoded (expected ~30)"));
    }
    if !(p50 > -5.0 && p50 < 1000.0) {
        return Err(format!("implausible capture->received latency {p50} ms"));
    }
    Ok(())
}
