//! One measurement run: for each viewer count, each server in turn (so both
//! see the same background load), a fresh server process, N viewers, a
//! warm-up, then a fixed window in which the server's CPU, memory and every
//! viewer's frames are recorded.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::quality::Reference;
use crate::server::{self, Content, Kind, Server};
use crate::viewer;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub servers: Vec<Kind>,
    pub viewers: Vec<usize>,
    pub seconds: f64,
    pub warmup: f64,
    pub idle: f64,
    pub repeat: usize,
    pub logs: PathBuf,
    /// CPUs for the server and for the viewers (disjoint), if pinned.
    pub server_cpus: Option<Vec<usize>>,
    pub viewer_cpus: Option<Vec<usize>>,
    /// What both servers' synthetic cameras show.
    pub content: Content,
    /// Video m-lines in each viewer's offer: 2 makes a two-camera telepi send both.
    pub video_lines: usize,
}

pub fn run(cfg: &RunConfig) -> Result<Value, String> {
    std::fs::create_dir_all(&cfg.logs).map_err(|e| format!("{}: {e}", cfg.logs.display()))?;
    if let Some(cpus) = &cfg.viewer_cpus {
        // The viewers' threads are spawned from here and inherit this.
        server::pin(cpus).map_err(|e| format!("pinning the viewers to {cpus:?}: {e}"))?;
    }
    // The camera-like scene is known, so its decoded pictures can be scored.
    let reference = (cfg.content == Content::Camera).then(|| Arc::new(Reference::default()));
    let mut scenarios = Vec::new();
    for round in 0..cfg.repeat {
        for &n in &cfg.viewers {
            for kind in &cfg.servers {
                eprintln!(
                    "bench: {} with {n} viewer(s){}",
                    kind.name(),
                    if cfg.repeat > 1 {
                        format!(", round {}/{}", round + 1, cfg.repeat)
                    } else {
                        String::new()
                    }
                );
                let s = scenario(kind, n, round, cfg, reference.as_ref())?;
                eprintln!("bench:   {}", one_line(&s));
                scenarios.push(s);
            }
        }
    }
    let baseline_versions = cfg.servers.iter().find_map(|k| match k {
        Kind::Python {
            name: "baseline",
            python,
            ..
        } => python_versions(python),
        _ => None,
    });
    let gstreamer_versions = cfg.servers.iter().find_map(|k| match k {
        Kind::Python {
            name: "gstreamer",
            python,
            ..
        } => python_report(
            python,
            "import sys, gi, numpy\n\
             gi.require_version('Gst', '1.0')\n\
             from gi.repository import Gst\n\
             Gst.init(None)\n\
             print(f'{Gst.version_string()} (webrtcbin, x264enc), Python {sys.version.split()[0]}, \
             PyGObject {gi.__version__}, numpy {numpy.__version__}')",
        ),
        _ => None,
    });
    Ok(json!({
        "machine": machine(),
        "baseline_versions": baseline_versions,
        "gstreamer_versions": gstreamer_versions,
        "config": {
            "seconds": cfg.seconds,
            "warmup": cfg.warmup,
            "idle": cfg.idle,
            "viewers": cfg.viewers,
            "repeat": cfg.repeat,
            "server_cpus": cfg.server_cpus,
            "viewer_cpus": cfg.viewer_cpus,
            "video": "640x480@30, 1.5 Mbit/s target",
            "content": cfg.content.name(),
        },
        "scenarios": scenarios,
    }))
}

fn sleep_s(s: f64) {
    std::thread::sleep(Duration::from_secs_f64(s.max(0.0)));
}

fn scenario(
    kind: &Kind,
    n: usize,
    round: usize,
    cfg: &RunConfig,
    reference: Option<&Arc<Reference>>,
) -> Result<Value, String> {
    let log = cfg.logs.join(format!("{}-{n}-{round}.log", kind.name()));
    let server = Server::start(kind, cfg.content, &log, cfg.server_cpus.as_deref())?;
    let pid = server.pid;

    // Idle: started, nobody watching.
    sleep_s(cfg.idle / 2.0);
    let idle_c0 = server::cpu_seconds(pid).ok_or("server vanished")?;
    let idle_t0 = Instant::now();
    sleep_s(cfg.idle / 2.0);
    let idle_cpu = (server::cpu_seconds(pid).ok_or("server vanished")? - idle_c0)
        / idle_t0.elapsed().as_secs_f64();
    let (idle_rss, _) = server::memory_kib(pid).ok_or("server vanished")?;

    // Viewers join all at once.
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            viewer::spawn(
                server.http,
                stop.clone(),
                i,
                reference.cloned(),
                cfg.video_lines,
            )
        })
        .collect();
    let join_deadline = Instant::now() + Duration::from_secs(40);
    while !handles.iter().all(|h| h.first_frame.load(Ordering::SeqCst))
        && Instant::now() < join_deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    sleep_s(cfg.warmup);

    // The measurement window. perf (if it works here) counts the server's
    // instructions too: unlike CPU time, hardly moved by other load.
    let perf = server::PerfStat::start(pid, cfg.seconds);
    let (m0, own0) = (server::machine_jiffies(), server::own_cpu_seconds());
    let c0 = server::cpu_seconds(pid).ok_or("server vanished")?;
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(cfg.seconds);
    let mut rss_samples = Vec::new();
    while Instant::now() < end {
        if let Some((rss, _)) = server::memory_kib(pid) {
            rss_samples.push(rss);
        }
        std::thread::sleep(
            Duration::from_millis(100).min(end.saturating_duration_since(Instant::now())),
        );
    }
    let c1 = server::cpu_seconds(pid).ok_or("server vanished")?;
    let t1 = Instant::now();
    let (m1, own1) = (server::machine_jiffies(), server::own_cpu_seconds());
    let (_, hwm) = server::memory_kib(pid).ok_or("server vanished")?;
    let secs = t1.duration_since(t0).as_secs_f64();
    let perf = perf.and_then(server::PerfStat::finish);

    stop.store(true, Ordering::SeqCst);
    let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    server.stop();

    let errors: Vec<String> = results.iter().filter_map(|r| r.error.clone()).collect();
    let mut received = Vec::new();
    let mut decoded = Vec::new();
    let mut fps = Vec::new();
    let mut kbps = Vec::new();
    let mut wire_kbps = Vec::new();
    let mut first = Vec::new();
    let mut psnr = Vec::new();
    for r in &results {
        let window: Vec<_> = r
            .frames
            .iter()
            .filter(|f| f.at >= t0 && f.at <= t1)
            .collect();
        fps.push(window.len() as f64 / secs);
        kbps.push(window.iter().map(|f| f.bytes).sum::<usize>() as f64 * 8.0 / 1000.0 / secs);
        let wire: u64 = r
            .datagrams
            .iter()
            .filter(|(at, _)| *at >= t0 && *at <= t1)
            .map(|(_, n)| u64::from(*n))
            .sum();
        wire_kbps.push(wire as f64 * 8.0 / 1000.0 / secs);
        received.extend(window.iter().map(|f| f.received_ms));
        decoded.extend(window.iter().map(|f| f.decoded_ms));
        psnr.extend(window.iter().filter_map(|f| f.psnr));
        if let Some(d) = r.first_frame {
            first.push(d.as_secs_f64() * 1000.0);
        }
    }
    let ncpu = server::online_cpus() as f64;
    let machine_busy = match (m0, m1) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) as f64 / (t1 - t0) as f64 * ncpu,
        _ => f64::NAN,
    };
    let server_cpu = (c1 - c0) / secs;
    let client_cpu = (own1 - own0) / secs;
    rss_samples.sort_unstable();
    Ok(json!({
        "server": kind.name(),
        "viewers": n,
        "round": round,
        "window_s": secs,
        "idle_cpu": idle_cpu,
        "idle_rss_kib": idle_rss,
        "cpu": server_cpu,
        // perf stat over (about) the same window: instructions/s and task-clock s/s.
        "instructions_per_s": perf.map(|p| p.instructions / p.seconds),
        "cycles_per_s": perf.map(|p| p.cycles / p.seconds),
        "perf_cpu": perf.map(|p| p.task_clock_s / p.seconds),
        "rss_steady_kib": rss_samples.get(rss_samples.len() / 2).copied(),
        "rss_peak_kib": hwm,
        "fps_mean": mean(&fps),
        "fps_min": fps.iter().copied().fold(f64::INFINITY, f64::min),
        "kbps_mean": mean(&kbps),
        // Everything on the wire to the viewer: media, RTCP, STUN, probing padding.
        "wire_kbps_mean": mean(&wire_kbps),
        "latency_received_ms": summary(&mut received),
        "latency_decoded_ms": summary(&mut decoded),
        // Luma PSNR of sampled decoded frames against the frames drawn (camera content).
        "psnr_db": summary(&mut psnr),
        "first_frame_ms": summary(&mut first),
        "viewers_connected": first.len(),
        "client_cpu": client_cpu,
        // Everything else the machine did during the window (other people's builds).
        "other_cpu": machine_busy - server_cpu - client_cpu,
        "decode_errors": results.iter().map(|r| r.decode_errors).sum::<u64>(),
        "bad_stamps": results.iter().map(|r| r.bad_stamps).sum::<u64>(),
        "lossy_frames": results.iter().map(|r| r.lossy_frames).sum::<u64>(),
        "other_camera_frames": results.iter().map(|r| r.other_camera_frames).sum::<u64>(),
        "errors": errors,
        "log": log.display().to_string(),
    }))
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Percentile of a sorted slice (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// n, p50, p90, p99, max and the 0..=100 percentiles (for the plots).
fn summary(v: &mut [f64]) -> Value {
    v.sort_unstable_by(f64::total_cmp);
    let pct: Vec<f64> = (0..=100).map(|p| percentile(v, p as f64)).collect();
    json!({
        "n": v.len(),
        "p50": percentile(v, 50.0),
        "p90": percentile(v, 90.0),
        "p99": percentile(v, 99.0),
        "max": v.last().copied(),
        "percentiles": if v.is_empty() { Value::Null } else { json!(pct) },
    })
}

fn one_line(s: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    format!(
        "cpu {:.3} s/s ({:.0} M instructions/s, {:.0} M cycles/s), rss {} KiB (peak {}), {:.1} fps/viewer, {:.0} kbit/s video ({:.0} on the wire), capture->received p50 {:.1} p99 {:.1} ms, decoded p50 {:.1} ms, first frame p50 {:.0} ms, Y-PSNR p50 {:.1} dB, other load {:.2} cores{}{}",
        f(&s["cpu"]),
        f(&s["instructions_per_s"]) / 1e6,
        f(&s["cycles_per_s"]) / 1e6,
        s["rss_steady_kib"],
        s["rss_peak_kib"],
        f(&s["fps_mean"]),
        f(&s["kbps_mean"]),
        f(&s["wire_kbps_mean"]),
        f(&s["latency_received_ms"]["p50"]),
        f(&s["latency_received_ms"]["p99"]),
        f(&s["latency_decoded_ms"]["p50"]),
        f(&s["first_frame_ms"]["p50"]),
        f(&s["psnr_db"]["p50"]),
        f(&s["other_cpu"]),
        match s["other_camera_frames"].as_u64() {
            Some(n) if n > 0 => format!(", {n} access units from the other cameras"),
            _ => String::new(),
        },
        match s["errors"].as_array() {
            Some(e) if !e.is_empty() => format!(", ERRORS: {e:?}"),
            _ => String::new(),
        }
    )
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: Option<u64> = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .ok();
    let rustc = std::process::Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--exclude", "*"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    json!({
        "telepi_commit": commit,
        // Not available_parallelism(): that is this (possibly pinned) process's share.
        "nproc": server::online_cpus(),
        "cpu_model": model,
        "mem_total_kib": mem_kib,
        "kernel": kernel,
        "arch": std::env::consts::ARCH,
        "rustc": rustc,
        "date_utc": crate::report::utc_date(),
    })
}

/// "Python 3.x, aiortc x, av x (libx264), aiohttp x, numpy x" of the baseline's interpreter.
fn python_versions(python: &std::path::Path) -> Option<String> {
    python_report(
        python,
        "import sys, aiortc, av, aiohttp, numpy\n\
        print(f'Python {sys.version.split()[0]}, aiortc {aiortc.__version__}, PyAV {av.__version__} \
        (FFmpeg libx264), aiohttp {aiohttp.__version__}, numpy {numpy.__version__}')",
    )
}

/// What `script` prints under `python`, if it runs.
fn python_report(python: &std::path::Path, script: &str) -> Option<String> {
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
