//! An emulated machine (QEMU under TCG) booted for one test, with a shell on
//! its console: the guest's `/init` (tests/vm/*/init) ends in a loop that
//! `eval`s one line at a time, so the test runs guest commands and reads
//! their output and exit status. tests/vm/*.sh prepare the kernel and
//! initramfs and pass the QEMU command line in `TELEPI_VM_QEMU`.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{request, Server};

pub struct Guest {
    qemu: Child,
    console: ChildStdin,
    lines: Receiver<String>,
    /// Everything the console printed, for failure messages.
    transcript: String,
    commands: u32,
}

impl Guest {
    /// Boots the machine `TELEPI_VM_QEMU` describes (a shell-quoted QEMU
    /// command line without the console options) and waits for its shell.
    pub fn boot() -> Guest {
        let line = std::env::var("TELEPI_VM_QEMU")
            .expect("TELEPI_VM_QEMU is unset: run these tests through tests/vm/*.sh");
        let started = Instant::now();
        let mut qemu = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec {line} -display none -monitor none -serial stdio -no-reboot"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("qemu starts");
        let console = qemu.stdin.take().unwrap();
        let out = qemu.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).split(b'\n') {
                let Ok(line) = line else { break };
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_string();
                if tx.send(text).is_err() {
                    break;
                }
            }
        });
        let mut guest = Guest {
            qemu,
            console,
            lines,
            transcript: String::new(),
            commands: 0,
        };
        guest.read_until(Duration::from_secs(120), |l| l == "@@ready@@");
        eprintln!(
            "guest: booted to its shell in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        guest
    }

    fn read_until(&mut self, timeout: Duration, mut done: impl FnMut(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.transcript.push_str(&line);
                    self.transcript.push('\n');
                    if done(&line) {
                        return seen;
                    }
                    seen.push(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "guest: no answer within {timeout:?}; console:\n{}",
                        self.tail()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("guest: QEMU exited; console:\n{}", self.tail())
                }
            }
        }
    }

    fn tail(&self) -> &str {
        let t = &self.transcript;
        let mut start = t.len().saturating_sub(6000);
        while !t.is_char_boundary(start) {
            start += 1;
        }
        &t[start..]
    }

    /// Runs `command` in the guest's shell; returns its exit status and
    /// output (stdout and stderr, one string).
    pub fn run(&mut self, command: &str, timeout: Duration) -> (i32, String) {
        self.commands += 1;
        let marker = format!("@@done{}@@", self.commands);
        // The guest's shell reads one line per command. A group so that
        // redirections inside behave as typed (`{ cmd & }` needs no `;`).
        assert!(!command.contains('\n'), "one line per guest command");
        let sep = if command.trim_end().ends_with('&') {
            " "
        } else {
            "; "
        };
        let line = format!("{{ {command}{sep}}} 2>&1; echo \"{marker}$?\"\n");
        self.console.write_all(line.as_bytes()).unwrap();
        self.console.flush().unwrap();
        let mut status = None;
        let output = self.read_until(timeout, |l| match l.split_once(&marker) {
            Some((_, code)) => {
                status = code.trim().parse().ok();
                true
            }
            None => false,
        });
        (status.unwrap_or(-1), output.join("\n"))
    }

    /// Writes `contents` to `path` in the guest.
    pub fn write_file(&mut self, path: &str, contents: &str) {
        // Octal escapes: the only kind every printf(1) understands (dash
        // and busybox alike); the guest's shell reads one line per command.
        let escaped: String = contents.bytes().map(|b| format!("\\{b:03o}")).collect();
        self.sh(&format!("printf '{escaped}' > {path}"));
    }

    /// Runs `command` and returns its output; panics if it fails.
    pub fn sh(&mut self, command: &str) -> String {
        let (status, output) = self.run(command, Duration::from_secs(120));
        assert_eq!(status, 0, "guest: `{command}` failed:\n{output}");
        output
    }

    /// Starts the host-built `telepi ARGS` in the background (its log in
    /// /tmp/telepi.log) listening on `http` and `rtc`, and waits until it
    /// answers; panics with its log if it exits first.
    pub fn start_telepi(&mut self, args: &str, http: SocketAddr, rtc: SocketAddr) -> Server {
        let telepi = env!("CARGO_BIN_EXE_telepi");
        self.sh(&format!(
            "TELEPI_LOG=debug {telepi} {args} --http {http} --rtc {rtc} \
             >/tmp/telepi.log 2>&1 & echo $! >/tmp/telepi.pid"
        ));
        let deadline = Instant::now() + TELEPI_PATIENCE;
        while request(http, "GET", "/api/status", &[], b"").map(|r| r.0) != Some(200) {
            let (alive, _) = self.run("kill -0 $(cat /tmp/telepi.pid)", TELEPI_PATIENCE);
            if alive != 0 || Instant::now() > deadline {
                let log = self.sh("cat /tmp/telepi.log");
                panic!("telepi did not come up in the guest:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Server::remote(http, rtc)
    }

    /// SIGTERM to the telepi [`start_telepi`](Self::start_telepi) started;
    /// returns its exit status and its log.
    pub fn stop_telepi(&mut self) -> (i32, String) {
        let (status, _) = self.run(
            "kill -TERM $(cat /tmp/telepi.pid); wait $(cat /tmp/telepi.pid)",
            TELEPI_PATIENCE,
        );
        (status, self.sh("cat /tmp/telepi.log"))
    }
}

/// TCG runs telepi ~30× slower than the host: generous, but finite.
pub const TELEPI_PATIENCE: Duration = Duration::from_secs(60);

impl Drop for Guest {
    fn drop(&mut self) {
        // busybox's poweroff: the host's would ask an init system that isn't there.
        let _ = self.console.write_all(b"/vm/busybox poweroff -f\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.qemu.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}
