//! Starting a server under test on 127.0.0.1 and reading its cost from /proc.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub enum Kind {
    /// A telepi binary; `name` is "telepi" unless comparing builds or
    /// configurations. `config` replaces the content's own configuration.
    Telepi {
        name: String,
        bin: PathBuf,
        config: Option<PathBuf>,
    },
    /// A Python server taking the baseline's arguments: "baseline"
    /// (bench/baseline/server.py, aiortc) or "gstreamer"
    /// (bench/gstreamer/server.py, webrtcbin).
    Python {
        name: &'static str,
        python: PathBuf,
        script: PathBuf,
    },
}

impl Kind {
    pub fn name(&self) -> &str {
        match self {
            Kind::Telepi { name, .. } => name,
            Kind::Python { name, .. } => name,
        }
    }
}

/// What the synthetic cameras show: telepi's `[video] pattern`, the
/// baseline's `--content`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Scrolling colour bars: easy to compress.
    Bars,
    /// A panning scene with sensor noise, as a camera sees.
    Camera,
}

impl Content {
    pub fn parse(name: &str) -> Result<Content, String> {
        match name {
            "bars" => Ok(Content::Bars),
            "camera" => Ok(Content::Camera),
            _ => Err(format!("--content {name:?}: bars or camera")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Content::Bars => "bars",
            Content::Camera => "camera",
        }
    }
}

pub struct Server {
    child: Child,
    pub http: SocketAddr,
    pub pid: u32,
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port on 127.0.0.1")
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port on 127.0.0.1")
}

impl Server {
    /// Starts the server (640x480@30, 1.5 Mbit/s) with its log in `log`, and
    /// waits until `GET /api/status` answers 200.
    pub fn start(
        kind: &Kind,
        content: Content,
        log: &Path,
        cpus: Option<&[usize]>,
    ) -> Result<Server, String> {
        let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let log_file = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = match kind {
            Kind::Telepi { bin, config, .. } => {
                let rtc = format!("127.0.0.1:{}", free_udp_port());
                let mut c = Command::new(bin);
                c.args(["--http", &http.to_string(), "--rtc", &rtc]);
                // Relative to the repository's root, where bench/run.sh runs.
                match config {
                    Some(config) => {
                        c.arg("--config").arg(config);
                    }
                    None if content == Content::Camera => {
                        c.args(["--config", "bench/camera.toml"]);
                    }
                    None => {}
                }
                c
            }
            Kind::Python { python, script, .. } => {
                let mut c = Command::new(python);
                c.arg(script).args([
                    "--http",
                    &http.to_string(),
                    "--width",
                    "640",
                    "--height",
                    "480",
                    "--fps",
                    "30",
                    "--bitrate",
                    "1500000",
                    "--content",
                    content.name(),
                ]);
                c
            }
        };
        if let Some(cpus) = cpus {
            let cpus = cpus.to_vec();
            use std::os::unix::process::CommandExt;
            // SAFETY: only sched_setaffinity (async-signal-safe) between fork and exec.
            unsafe {
                cmd.pre_exec(move || pin(&cpus).map_err(std::io::Error::other));
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting {kind:?}: {e}"))?;
        let pid = child.id();
        let mut server = Server { child, http, pid };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "{} exited early ({status}); log: {}",
                    kind.name(),
                    log.display()
                ));
            }
            if matches!(
                crate::http::request(http, "GET", "/api/status", None, b""),
                Ok((200, _))
            ) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not answer on {http}; log: {}",
                    kind.name(),
                    log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then SIGKILL after 5 s.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// utime + stime of a process (all its threads), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// (VmRSS, VmHWM) in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Busy and total jiffies of the whole machine (all CPUs), from /proc/stat.
pub fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest counted in user)
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// `perf stat -e instructions,task-clock -p PID` for a fixed time, if perf works here.
pub struct PerfStat {
    child: Child,
    seconds: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct PerfCounts {
    pub instructions: f64,
    pub cycles: f64,
    pub task_clock_s: f64,
    pub seconds: f64,
}

impl PerfStat {
    pub fn start(pid: u32, seconds: f64) -> Option<PerfStat> {
        static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let works = *WORKS.get_or_init(|| {
            Command::new("perf")
                .args(["stat", "-x,", "-e", "instructions", "true"])
                .stdout(Stdio::null())
                .output()
                .is_ok_and(|o| {
                    o.status.success()
                        && String::from_utf8_lossy(&o.stderr).lines().any(|l| {
                            l.split(',')
                                .next()
                                .is_some_and(|v| v.parse::<u64>().is_ok())
                        })
                })
        });
        if !works || std::env::var_os("BENCH_NO_PERF").is_some() {
            return None;
        }
        let child = Command::new("perf")
            .args([
                "stat",
                "-x,",
                "-e",
                "instructions,cycles,task-clock",
                "-p",
                &pid.to_string(),
            ])
            .args(["--", "sleep", &format!("{seconds:.3}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        Some(PerfStat { child, seconds })
    }

    pub fn finish(self) -> Option<PerfCounts> {
        let out = self.child.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&out.stderr);
        let field = |event: &str| {
            text.lines().find_map(|l| {
                let cols: Vec<&str> = l.split(',').collect();
                (cols.get(2) == Some(&event))
                    .then(|| cols[0].parse::<f64>().ok())
                    .flatten()
            })
        };
        Some(PerfCounts {
            instructions: field("instructions")?,
            cycles: field("cycles")?,
            task_clock_s: field("task-clock")? / 1000.0,
            seconds: self.seconds,
        })
    }
}

/// Restricts the calling thread (and what it spawns or execs later) to `cpus`.
pub fn pin(cpus: &[usize]) -> Result<(), &'static str> {
    // SAFETY: a zeroed cpu_set_t filled with CPU_SET, passed with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 {
            Ok(())
        } else {
            Err("sched_setaffinity failed")
        }
    }
}

/// CPUs online on the machine (not this process's affinity).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}
