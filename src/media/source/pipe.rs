//! A source that runs a command and reads Annex-B H.264 from its stdout, e.g.
//! `rpicam-vid -t 0 --inline --codec h264 -o -` on boards whose camera only
//! libcamera can drive. The stream is cut into access units, SPS/PPS are put
//! in front of every IDR, and the command is restarted (with back-off) when it
//! exits or stalls.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::media::fdpoll;
use crate::media::h264::annexb::{self, AccessUnitSplitter, ParameterSetCache};
use crate::media::h264::sps;
use crate::media::{Frame, PixelFormat, SourceInfo, VideoSource};

/// Largest access unit accepted; more without a boundary is garbage.
const MAX_ACCESS_UNIT: usize = 4 << 20;
/// A picture is handed on once the pipe has been quiet this long after it,
/// instead of waiting a frame interval for the next picture to begin.
const IDLE_FLUSH: Duration = Duration::from_millis(8);
/// A command silent this long is considered hung and restarted.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `new` waits for the first SPS to learn the picture size.
const STARTUP_WAIT: Duration = Duration::from_secs(5);
/// Grace period between SIGTERM and SIGKILL when stopping the command.
const TERM_GRACE: Duration = Duration::from_secs(1);
/// After end of output, how long the command gets to exit by itself.
const EXIT_WAIT: Duration = Duration::from_millis(200);

/// Splits a command line into program and arguments like a POSIX shell
/// would for simple quoting: whitespace separates words, `'...'` is literal,
/// `"..."` allows `\"`, `\\`, `\$` and `` \` ``, and `\` escapes outside quotes.
/// No variables, globs, pipes or redirections.
pub fn split_command(line: &str) -> io::Result<Vec<String>> {
    let bad = |msg: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{msg} in command {line:?}"),
        )
    };
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(bad("unterminated '")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(bad("unterminated \"")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(bad("unterminated \"")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(bad("trailing \\")),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    if words.is_empty() {
        return Err(bad("no program"));
    }
    Ok(words)
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds `program` the way `execvp` will, so a typo fails at start-up with a
/// clear message instead of as a restart loop.
pub fn find_program(program: &str, path_var: Option<&str>) -> io::Result<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if is_executable_file(&path) {
            Ok(path)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("pipe source: {program} is not an executable file"),
            ))
        };
    }
    let dirs = path_var.unwrap_or("");
    dirs.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| is_executable_file(p))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("pipe source: {program} not found in PATH ({dirs})"),
            )
        })
}

/// Restart delays: doubling from `MIN` to `MAX`, back to `MIN` once the
/// command has run long enough to count as healthy.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(8);
    const HEALTHY_RUN: Duration = Duration::from_secs(10);

    fn new() -> Backoff {
        Backoff { next: Self::MIN }
    }

    /// Delay before the next start, given how long the last run lasted.
    fn after_run(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= Self::HEALTHY_RUN {
            self.next = Self::MIN;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }
}

/// Waits up to `timeout` for `fd` to become readable (or hung up).
fn wait_readable(fd: &impl AsRawFd, timeout: Duration) -> io::Result<bool> {
    Ok(fdpoll::poll(fd.as_raw_fd(), libc::POLLIN, timeout)? != 0)
}

struct Running {
    child: Child,
    stdout: ChildStdout,
    started: Instant,
}

enum Outcome {
    Data,
    Quiet,
    Ended,
}

pub struct PipeSource {
    program: PathBuf,
    args: Vec<String>,
    /// The command as configured, for messages.
    command: String,
    running: Option<Running>,
    restart_at: Instant,
    backoff: Backoff,
    splitter: AccessUnitSplitter,
    params: ParameterSetCache,
    ready: VecDeque<Vec<u8>>,
    read_buf: Vec<u8>,
    width: u32,
    height: u32,
    fps: u32,
}

impl PipeSource {
    /// Starts `command` and waits briefly for its first SPS to learn the
    /// picture size; `width`/`height` are used until one arrives. Fails if
    /// the program doesn't exist or exits before producing any video.
    pub fn new(command: &str, width: u32, height: u32, fps: u32) -> io::Result<PipeSource> {
        let mut words = split_command(command)?;
        let program = find_program(&words[0], std::env::var("PATH").ok().as_deref())?;
        let args = words.split_off(1);
        let mut source = PipeSource {
            program,
            args,
            command: command.to_string(),
            running: None,
            restart_at: Instant::now(),
            backoff: Backoff::new(),
            splitter: AccessUnitSplitter::new(MAX_ACCESS_UNIT),
            params: ParameterSetCache::new(),
            ready: VecDeque::new(),
            read_buf: vec![0; 64 * 1024],
            width,
            height,
            fps,
        };
        source.start()?;
        let deadline = Instant::now() + STARTUP_WAIT;
        while source.params.sps().is_none() {
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(
                    "pipe source `{}`: no SPS within {STARTUP_WAIT:?}; assuming {width}x{height}",
                    source.command
                );
                break;
            }
            match source.read_some(deadline - now)? {
                Outcome::Ended => {
                    source.collect();
                    let (status, delay) = source.stop(EXIT_WAIT);
                    if source.params.sps().is_none() {
                        return Err(io::Error::other(format!(
                            "pipe source `{command}` {status} before sending an SPS"
                        )));
                    }
                    tracing::warn!("pipe source `{command}` {status}; restarting in {delay:?}");
                }
                Outcome::Data | Outcome::Quiet => source.collect(),
            }
        }
        tracing::info!(
            "pipe source `{}`: H.264 {}x{} (passthrough)",
            source.command,
            source.width,
            source.height
        );
        Ok(source)
    }

    fn start(&mut self) -> io::Result<()> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("pipe source `{}`: {e}", self.command))
            })?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("pipe source: child has no stdout"));
        };
        self.running = Some(Running {
            child,
            stdout,
            started: Instant::now(),
        });
        self.splitter.reset();
        // A new process is a new stream; old parameter sets don't describe it.
        self.params = ParameterSetCache::new();
        Ok(())
    }

    /// Stops the command (after `patience` for it to exit by itself: it may
    /// just have closed its stdout) and schedules the restart. Returns how it
    /// ended and the restart delay, for messages.
    fn stop(&mut self, patience: Duration) -> (String, Duration) {
        let Some(mut run) = self.running.take() else {
            return ("was not running".into(), Duration::ZERO);
        };
        drop(run.stdout);
        let status = terminate(&mut run.child, patience);
        let delay = self.backoff.after_run(run.started.elapsed());
        self.restart_at = Instant::now() + delay;
        (status, delay)
    }

    /// Reads what the command has written, waiting up to `timeout`.
    fn read_some(&mut self, timeout: Duration) -> io::Result<Outcome> {
        let Some(run) = self.running.as_mut() else {
            return Ok(Outcome::Ended);
        };
        if !wait_readable(&run.stdout, timeout)? {
            return Ok(Outcome::Quiet);
        }
        let n = loop {
            match run.stdout.read(&mut self.read_buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            self.splitter.finish();
            return Ok(Outcome::Ended);
        }
        self.splitter.push(&self.read_buf[..n]);
        Ok(Outcome::Data)
    }

    /// Moves finished access units through the parameter-set cache into `ready`.
    fn collect(&mut self) {
        while let Some(au) = self.splitter.next_access_unit() {
            let au = self.params.process(au);
            if let Some(sps) =
                annexb::nal_units(&au).find(|n| annexb::nal_type(n) == annexb::NAL_SPS)
            {
                match sps::parse_sps(sps) {
                    Ok(info) => (self.width, self.height) = (info.width, info.height),
                    Err(e) => tracing::warn!("pipe source `{}`: {e}", self.command),
                }
            }
            self.ready.push_back(au);
        }
        // Behind (e.g. after the pipeline slept): skip to the newest IDR, the
        // only point a decoder can jump to without corruption.
        if let Some(idr) = self.ready.iter().rposition(|au| annexb::is_idr(au)) {
            self.ready.drain(..idr);
        }
    }
}

/// Waits up to `patience` for the child to exit by itself, then SIGTERM, a
/// grace period and SIGKILL; returns the exit status as text.
fn terminate(child: &mut Child, patience: Duration) -> String {
    let deadline = Instant::now() + patience;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return format!("exited ({status})"),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => break,
        }
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: plain kill(2); the child isn't reaped yet so the pid is still ours.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + TERM_GRACE;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => return format!("stopped ({status})"),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return format!("could not be waited for: {e}"),
        }
    }
    let _ = child.kill();
    match child.wait() {
        Ok(status) => format!("killed ({status})"),
        Err(e) => format!("could not be waited for: {e}"),
    }
}

impl VideoSource for PipeSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: "pipe".into(),
            width: self.width,
            height: self.height,
            fps: self.fps,
            format: PixelFormat::H264,
        }
    }

    fn next_frame(&mut self) -> io::Result<Frame> {
        loop {
            if let Some(data) = self.ready.pop_front() {
                return Ok(Frame {
                    width: self.width,
                    height: self.height,
                    format: PixelFormat::H264,
                    data,
                    captured: Instant::now(),
                });
            }
            if self.running.is_none() {
                std::thread::sleep(self.restart_at.saturating_duration_since(Instant::now()));
                if let Err(e) = self.start() {
                    self.restart_at = Instant::now() + self.backoff.after_run(Duration::ZERO);
                    return Err(e);
                }
                tracing::info!("pipe source `{}` restarted", self.command);
            }
            let pending = self.splitter.has_pending_picture();
            let timeout = if pending { IDLE_FLUSH } else { STALL_TIMEOUT };
            match self.read_some(timeout)? {
                Outcome::Data => {}
                Outcome::Quiet if pending => self.splitter.flush_pending(),
                Outcome::Quiet => {
                    let (status, delay) = self.stop(Duration::ZERO);
                    tracing::warn!(
                        "pipe source `{}`: no output for {STALL_TIMEOUT:?}, {status}; restarting in {delay:?}",
                        self.command
                    );
                }
                Outcome::Ended => {
                    let (status, delay) = self.stop(EXIT_WAIT);
                    tracing::warn!(
                        "pipe source `{}` {status}; restarting in {delay:?}",
                        self.command
                    );
                }
            }
            self.collect();
        }
    }
}

impl Drop for PipeSource {
    fn drop(&mut self) {
        if let Some(mut run) = self.running.take() {
            drop(run.stdout);
            terminate(&mut run.child, Duration::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_a_shell() {
        assert_eq!(
            split_command("rpicam-vid -t 0 --inline  -o -").unwrap(),
            ["rpicam-vid", "-t", "0", "--inline", "-o", "-"]
        );
        assert_eq!(
            split_command(r#"sh -c 'echo "a b"' "x \"y\" \n" z\ w '' """#).unwrap(),
            ["sh", "-c", "echo \"a b\"", "x \"y\" \\n", "z w", "", ""]
        );
        assert_eq!(split_command("a'b'\"c\"d").unwrap(), ["abcd"]);
        for bad in ["", "   ", "'open", "\"open", "trailing\\"] {
            assert_eq!(
                split_command(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn programs_are_found_on_path_up_front() {
        let path = std::env::var("PATH").unwrap_or_default();
        assert!(find_program("sh", Some(&path)).unwrap().ends_with("sh"));
        let e = find_program("telepi-no-such-program", Some(&path)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("not found in PATH"), "{e}");
        assert!(find_program("sh", None).is_err());
        assert!(find_program("/nonexistent/rpicam-vid", Some(&path)).is_err());
        let plain = temp_file("plain", b"not a program");
        assert!(
            find_program(plain.to_str().unwrap(), Some(&path)).is_err(),
            "not executable"
        );
        std::fs::remove_file(plain).unwrap();
        let e = PipeSource::new("telepi-no-such-program --flag", 64, 64, 30)
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_resets_after_a_healthy_run() {
        let mut b = Backoff::new();
        let quick = Duration::from_millis(100);
        let delays: Vec<u64> = (0..7)
            .map(|_| b.after_run(quick).as_millis() as u64)
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(
            b.after_run(Duration::from_secs(60)),
            Duration::from_millis(500)
        );
        assert_eq!(b.after_run(quick), Duration::from_secs(1));
    }

    fn nal(bytes: &[u8]) -> Vec<u8> {
        [&[0, 0, 0, 1][..], bytes].concat()
    }

    /// The 640x480 SPS from the annexb tests plus made-up PPS and slices.
    /// An IDR picture with the 640x480 SPS from the annexb tests and a made-up PPS.
    fn idr_picture() -> Vec<u8> {
        let sps = [
            0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00,
            0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48,
        ];
        [
            nal(&sps),
            nal(&[0x68, 0xCE, 0x38, 0x80]),
            nal(&[0x65, 0x88, 0x84, 0x21]),
        ]
        .concat()
    }

    /// The IDR followed by two P pictures.
    fn test_stream() -> Vec<u8> {
        [
            idr_picture(),
            nal(&[0x41, 0x9A, 0x02]),
            nal(&[0x41, 0x9A, 0x03]),
        ]
        .concat()
    }

    fn temp_file(name: &str, data: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("telepi-pipe-{}-{name}", std::process::id()));
        std::fs::write(&path, data).unwrap();
        path
    }

    #[test]
    fn reads_access_units_and_restarts_the_command_when_it_exits() {
        let file = temp_file("stream.h264", &test_stream());
        let mut source = PipeSource::new(&format!("cat '{}'", file.display()), 64, 64, 25).unwrap();
        let info = source.info();
        assert_eq!(
            (info.width, info.height, info.fps, info.format),
            (640, 480, 25, PixelFormat::H264)
        );
        let started = Instant::now();
        let mut frames = Vec::new();
        for _ in 0..6 {
            frames.push(source.next_frame().unwrap());
        }
        assert!(frames
            .iter()
            .all(|f| f.format == PixelFormat::H264 && (f.width, f.height) == (640, 480)));
        let idrs: Vec<bool> = frames.iter().map(|f| annexb::is_idr(&f.data)).collect();
        assert_eq!(
            idrs,
            [true, false, false, true, false, false],
            "cat ran twice"
        );
        assert!(annexb::contains(&frames[3].data, annexb::NAL_SPS));
        assert!(
            started.elapsed() >= Backoff::MIN,
            "restart waited for the back-off"
        );
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn one_picture_and_exit_is_enough_to_start() {
        let file = temp_file("single.h264", &idr_picture());
        let mut source = PipeSource::new(&format!("cat {}", file.display()), 64, 64, 30).unwrap();
        assert_eq!((source.info().width, source.info().height), (640, 480));
        assert_eq!(source.next_frame().unwrap().data, idr_picture());
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn a_command_that_sends_nothing_is_an_error() {
        let e = PipeSource::new("true", 64, 64, 30).err().unwrap();
        assert!(e.to_string().contains("before sending an SPS"), "{e}");
    }

    #[test]
    fn drop_stops_a_running_command() {
        let file = temp_file("once.h264", &test_stream());
        // Sends one stream, then keeps the pipe open like a camera would.
        let cmd = format!("sh -c 'cat \"{}\"; exec sleep 60'", file.display());
        let mut source = PipeSource::new(&cmd, 64, 64, 30).unwrap();
        assert!(annexb::is_idr(&source.next_frame().unwrap().data));
        // The last picture is released by the idle flush, not by end of stream.
        for _ in 0..2 {
            assert!(!annexb::is_idr(&source.next_frame().unwrap().data));
        }
        let pid = source.running.as_ref().unwrap().child.id();
        let stopped = Instant::now();
        drop(source);
        assert!(stopped.elapsed() < TERM_GRACE, "SIGTERM was enough");
        // SAFETY: signal 0 only checks whether the pid exists.
        assert_ne!(
            unsafe { libc::kill(pid as libc::pid_t, 0) },
            0,
            "child reaped"
        );
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn real_encoder_output_through_a_pipe() {
        let path = std::env::var("PATH").unwrap_or_default();
        if find_program("ffmpeg", Some(&path)).is_err() {
            return crate::testing::skipped(
                "real_encoder_output_through_a_pipe: ffmpeg is not installed",
            );
        }
        // Real-time pacing and no encoder lookahead, like a camera.
        let cmd =
            "ffmpeg -loglevel error -re -f lavfi -i testsrc=size=320x240:rate=30 -frames:v 40 \
                   -pix_fmt yuv420p -c:v libx264 -profile:v baseline -tune zerolatency -threads 1 -g 20 \
                   -flush_packets 1 -f h264 -";
        let mut source = PipeSource::new(cmd, 64, 64, 30).unwrap();
        assert_eq!((source.info().width, source.info().height), (320, 240));
        // Frames may be skipped if this test runs slower than real time, so
        // read up to the second IDR (frame 20) rather than count frames.
        let mut idrs = 0;
        for i in 0..60 {
            let f = source.next_frame().unwrap();
            assert_eq!((f.width, f.height), (320, 240));
            let slices = annexb::nal_units(&f.data)
                .filter(|n| annexb::is_vcl(annexb::nal_type(n)))
                .count();
            assert_eq!(slices, 1, "frame {i} is one picture");
            if annexb::is_idr(&f.data) {
                idrs += 1;
                assert!(
                    annexb::contains(&f.data, annexb::NAL_SPS)
                        && annexb::contains(&f.data, annexb::NAL_PPS)
                );
            } else {
                assert!(i > 0, "the stream starts with an IDR");
            }
            if idrs == 2 {
                return;
            }
        }
        panic!("saw {idrs} IDRs in 60 frames");
    }
}
