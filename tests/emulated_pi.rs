//! The cross-built aarch64 telepi on an emulated Raspberry Pi 3 B or 4 B
//! (QEMU raspi3b/raspi4b, Debian's arm64 kernel, no /dev/gpiomem), driven
//! over the guest's USB Ethernet by a WebRTC client on the host, with the
//! GPIO pins read back from the host through the QEMU monitor (GPFSEL0-5 and
//! GPLEV0 of the emulated BCM2837/BCM2711). Run through tests/vm/pi.sh,
//! which prepares the machine and the network namespace and says which
//! model, board profile and GPIO address (TELEPI_PI_BOARD,
//! TELEPI_PI_GPIO_BASE).
//!
//! Checks are tolerant of TCG's timing (one emulated core, ~30x slower than
//! the host) but fail on wrong directions, a pin stuck high or low, a
//! duty cycle far from the commanded speed, or a stop that never comes.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::guest::Guest;
use common::{Peer, Server};

/// GPIO register offsets from the block's base (0x3f200000 on the Pi 3, 0xfe200000 on the Pi 4).
const GPFSEL0: u32 = 0x00;
const GPLEV0: u32 = 0x34;

/// board/profiles/pi3-l298n.toml and pi4-l298n.toml (the same pins).
const IN1: u8 = 5;
const IN2: u8 = 6;
const ENA: u8 = 12;
const IN3: u8 = 16;
const IN4: u8 = 26;
const ENB: u8 = 13;
const PAN: u8 = 18;
const TILT: u8 = 19;
const MOTOR_PINS: [u8; 6] = [IN1, IN2, ENA, IN3, IN4, ENB];
const ALL_PINS: [u8; 8] = [IN1, IN2, ENA, IN3, IN4, ENB, PAN, TILT];

const HTTP_PORT: u16 = 8080;
const RTC_PORT: u16 = 50000;

/// The emulated Pi has no camera and no hardware encoder (the profile asks
/// for v4l2m2m): a small test pattern through openh264 instead.
const VIDEO: &str = "[video]
source = \"pattern\"
encoder = \"openh264\"
width = 160
height = 120
fps = 5
";

/// The GPIO block read through the QEMU monitor.
struct Monitor {
    monitor: common::monitor::Monitor,
    gpio_base: u32,
}

impl Monitor {
    fn connect() -> Monitor {
        let base = std::env::var("TELEPI_PI_GPIO_BASE").unwrap_or_else(|_| "0x3f200000".into());
        let gpio_base = u32::from_str_radix(base.trim_start_matches("0x"), 16)
            .unwrap_or_else(|_| panic!("TELEPI_PI_GPIO_BASE={base:?} is not a hex address"));
        Monitor {
            monitor: common::monitor::Monitor::connect(),
            gpio_base,
        }
    }

    /// `count` 32-bit words of guest physical memory from `addr`.
    fn words(&mut self, addr: u32, count: usize) -> Vec<u32> {
        let text = self.monitor.command(&format!("xp /{count}wx {addr:#x}"));
        // The monitor echoes the command with line-editing escapes; the
        // answer lines look like `000000003f200034: 0x00000000 0x...`.
        let words: Vec<u32> = text
            .lines()
            .filter_map(|line| line.trim().split_once(": "))
            .filter(|(address, _)| {
                address.len() == 16 && address.bytes().all(|b| b.is_ascii_hexdigit())
            })
            .flat_map(|(_, values)| values.split_whitespace())
            .map(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).expect("hex word"))
            .collect();
        assert_eq!(words.len(), count, "monitor said: {text:?}");
        words
    }

    fn levels(&mut self) -> u32 {
        self.words(self.gpio_base + GPLEV0, 1)[0]
    }

    /// The function select of each pin: 0 input, 1 output, else an alternate function.
    fn functions(&mut self) -> Vec<u32> {
        let fsel = self.words(self.gpio_base + GPFSEL0, 6);
        (0..54u32)
            .map(|pin| (fsel[(pin / 10) as usize] >> (3 * (pin % 10))) & 7)
            .collect()
    }

    /// GPLEV0 as fast as the monitor answers until `done(samples)` or `limit`.
    fn record(&mut self, limit: Duration, mut done: impl FnMut(&[Sample]) -> bool) -> Vec<Sample> {
        let end = Instant::now() + limit;
        let mut samples = Vec::new();
        let gap = sample_gap();
        while Instant::now() < end && !done(&samples) {
            std::thread::sleep(gap);
            let levels = self.levels();
            samples.push(Sample {
                at: Instant::now(),
                levels,
            });
        }
        samples
    }
}

/// The pause between two monitor reads. Each read stops the guest's only
/// vCPU while QEMU answers; read flat out (~4000/s), the guest got so little
/// CPU that the software PWM ran ENA/ENB at 0.68-0.85 for a commanded 0.58,
/// a 1500 us servo pulse read as 60 %, and drives arrived late enough to
/// trip the deadman. At 1 ms a CI dry run still saw one trip (a direction pin
/// high in 98.6 % of a held turn), so 2 ms. `TELEPI_PI_SAMPLE_GAP_US`
/// overrides it (0 shows that).
fn sample_gap() -> Duration {
    let micros = match std::env::var("TELEPI_PI_SAMPLE_GAP_US") {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            panic!("TELEPI_PI_SAMPLE_GAP_US={v:?} is not a number of microseconds")
        }),
        Err(_) => 2000,
    };
    Duration::from_micros(micros)
}

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    levels: u32,
}

fn high(levels: u32, pin: u8) -> bool {
    levels & (1 << pin) != 0
}

/// The fraction of samples in which `pin` was high.
fn duty(samples: &[Sample], pin: u8) -> f64 {
    assert!(!samples.is_empty());
    samples.iter().filter(|s| high(s.levels, pin)).count() as f64 / samples.len() as f64
}

fn duties(samples: &[Sample], pins: &[u8]) -> String {
    pins.iter()
        .map(|&p| format!("GPIO{p} {:.3}", duty(samples, p)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The mean high time and period of `pin`'s square wave, from the
/// rising edges seen in the samples (each edge is late by up to one
/// sampling interval, which averages out over many periods).
fn pulse_shape(samples: &[Sample], pin: u8) -> Option<(Duration, Duration)> {
    let mut rises = Vec::new();
    let mut highs = Vec::new();
    let mut rose: Option<Instant> = None;
    for pair in samples.windows(2) {
        match (high(pair[0].levels, pin), high(pair[1].levels, pin)) {
            (false, true) => {
                rises.push(pair[1].at);
                rose = Some(pair[1].at);
            }
            (true, false) => {
                if let Some(r) = rose.take() {
                    highs.push(pair[1].at - r);
                }
            }
            _ => {}
        }
    }
    if rises.len() < 3 || highs.is_empty() {
        return None;
    }
    let period = (*rises.last().unwrap() - rises[0]) / (rises.len() - 1) as u32;
    let high = highs.iter().sum::<Duration>() / highs.len() as u32;
    Some((high, period))
}

/// The guest, its monitor and the telepi running in it.
struct Pi {
    guest: Guest,
    monitor: Monitor,
    addr: String,
    /// The board profile for this model: pi3-l298n or pi4-l298n.
    board: String,
}

impl Pi {
    fn boot() -> Pi {
        let addr = std::env::var("TELEPI_PI_ADDR")
            .expect("TELEPI_PI_ADDR is unset: run these tests through tests/vm/pi.sh");
        let board = std::env::var("TELEPI_PI_BOARD").unwrap_or_else(|_| "pi3-l298n".into());
        let guest = Guest::boot();
        let monitor = Monitor::connect();
        Pi {
            guest,
            monitor,
            addr,
            board,
        }
    }

    /// Starts telepi in the background with the board profile and `config`,
    /// and waits until it answers on HTTP.
    fn start_telepi(&mut self, config: &str) -> (Server, Duration) {
        let started = Instant::now();
        let board = &self.board;
        self.guest.sh(&format!(
            "TELEPI_LOG=info telepi --board {board} --config {config} --http 0.0.0.0:{HTTP_PORT} --rtc 0.0.0.0:{RTC_PORT} \
             > /tmp/telepi.log 2>&1 & echo $! > /tmp/telepi.pid"
        ));
        let at = |port: u16| -> SocketAddr { format!("{}:{port}", self.addr).parse().unwrap() };
        let server = Server::remote(at(HTTP_PORT), at(RTC_PORT));
        (server, started.elapsed())
    }

    fn telepi_log(&mut self) -> String {
        self.guest.sh("cat /tmp/telepi.log")
    }

    /// SIGTERM, then the exit status (from the guest shell's `wait`) and how long it took.
    fn terminate_telepi(&mut self) -> (i32, Duration) {
        let started = Instant::now();
        let (_, out) = self.guest.run(
            "pid=$(cat /tmp/telepi.pid); kill -TERM $pid; wait $pid; echo \"exit=$?\"",
            Duration::from_secs(30),
        );
        let elapsed = started.elapsed();
        let status = out
            .lines()
            .find_map(|l| l.strip_prefix("exit="))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or_else(|| panic!("no exit status from the guest: {out}"));
        (status, elapsed)
    }

    /// Pins that are high in any of `count` samples.
    fn pins_seen_high(&mut self, pins: &[u8], count: usize) -> Vec<u8> {
        let mut seen = 0u32;
        for _ in 0..count {
            seen |= self.monitor.levels();
        }
        pins.iter().copied().filter(|&p| high(seen, p)).collect()
    }
}

fn send_drive(peer: &mut Peer, linear: f64, angular: f64) {
    peer.send(
        &serde_json::json!({ "type": "drive", "linear": linear, "angular": angular }).to_string(),
    );
}

fn claim(peer: &mut Peer) {
    peer.send(r#"{"type":"claim"}"#);
    assert!(
        peer.run_until(Duration::from_secs(10), |p| p
            .last_message("role")
            .is_some_and(|r| r["role"] == "operator")),
        "claim was not answered with the operator role"
    );
}

/// Holds the stick (a drive every 100 ms, well inside the 300 ms deadman)
/// for `hold` while the monitor samples the pins; returns the samples
/// taken after `settle` (the acceleration ramp: accel 4/s reaches full
/// speed in 250 ms).
fn drive_and_sample(
    pi: &mut Pi,
    peer: &mut Peer,
    linear: f64,
    angular: f64,
    settle: Duration,
    hold: Duration,
) -> Vec<Sample> {
    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let samples = std::thread::scope(|scope| {
        let monitor = &mut pi.monitor;
        let stop = &stop;
        let sampler = scope.spawn(move || {
            while Instant::now() < start + settle {
                std::thread::sleep(Duration::from_millis(5));
            }
            monitor.record(hold, |_| stop.load(Ordering::Relaxed))
        });
        while Instant::now() < start + settle + hold && !sampler.is_finished() {
            send_drive(peer, linear, angular);
            peer.run_for(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap()
    });
    // Enough readings to judge the levels: one per 5 ms. A read every 2 ms
    // (`sample_gap`) plus QEMU's answer gives about 190 in 500 ms; the old
    // floor of 200 failed a dry run at 193 with nothing wrong on the pins.
    let wanted = (hold.as_millis() / 5) as usize;
    assert!(
        samples.len() >= wanted,
        "only {} samples in {hold:?} (want {wanted})",
        samples.len()
    );
    samples
}

/// Asserts each direction pin is steadily at the level given (a held
/// drive never toggles them).
#[track_caller]
fn assert_directions(samples: &[Sample], what: &str, want: [(u8, bool); 4]) {
    for (pin, on) in want {
        let d = duty(samples, pin);
        let ok = if on { d > 0.99 } else { d < 0.01 };
        assert!(
            ok,
            "{what}: GPIO{pin} should be {} but was high in {:.1}% of samples ({})",
            if on { "high" } else { "low" },
            d * 100.0,
            duties(samples, &MOTOR_PINS)
        );
    }
}

/// The motor value the mixer makes of a stick value with the profile's deadband 0.05.
fn after_deadband(stick: f64) -> f64 {
    (stick.abs() - 0.05) / 0.95
}

/// How far a software-PWM duty may be below and above the commanded one.
/// rppal's software PWM sleeps, then busy-waits the last 0.2 ms of each
/// phase; under TCG wake-ups come late, so each pulse ends late and each
/// period runs long (on an idle host: motors 6.1-7.3 ms high in 10.3-11.9 ms
/// for 5.79 of 10, duty 0.575-0.627 for 0.579; docs/emulated-pi.md). On a
/// busy host the lateness grew to 2-4 ms (a 1.5 ms servo pulse read as 3.6 ms
/// of 26.5), so these bounds check what software PWM must get right whatever
/// the scheduling: the pin pulses, and not stuck high or at full speed. The
/// figures are printed for the record, not asserted. Late wake-ups only
/// lengthen pulses, hence the lopsided windows.
const MOTOR_DUTY_WINDOW: (f64, f64) = (0.04, 0.25);
const SERVO_DUTY_WINDOW: (f64, f64) = (0.02, 0.15);

#[track_caller]
fn assert_duty(samples: &[Sample], what: &str, pin: u8, want: f64, window: (f64, f64)) {
    let got = duty(samples, pin);
    let shape = pulse_shape(samples, pin)
        .map(|(h, p)| {
            format!(
                "high {:.2} ms of {:.2} ms",
                h.as_secs_f64() * 1e3,
                p.as_secs_f64() * 1e3
            )
        })
        .unwrap_or_else(|| "no square wave".into());
    eprintln!(
        "{what}: GPIO{pin} duty {got:.3} (commanded {want:.3}; {shape}; {} samples)",
        samples.len()
    );
    assert!(
        (want - window.0..=want + window.1).contains(&got),
        "{what}: GPIO{pin} duty {got:.3}, commanded {want:.3} ({shape})"
    );
}

#[test]
#[ignore = "needs the emulated Pi: tests/vm/pi.sh"]
fn the_board_profile_starts_without_gpiomem_and_streams() {
    let mut pi = Pi::boot();
    let (code, out) = pi.guest.run("ls /dev/gpiomem", Duration::from_secs(10));
    assert_ne!(code, 0, "this kernel should have no /dev/gpiomem: {out}");
    pi.guest.write_file("/tmp/video.toml", VIDEO);
    // The profile as shipped (backend = "auto"), only the video overridden.
    let (server, startup) = pi.start_telepi("/tmp/video.toml");
    eprintln!(
        "telepi answered {:.1} s after it was started",
        startup.as_secs_f64()
    );
    let status = server.status();
    assert_eq!(status["drive_backend"], "gpio", "{status}");
    let log = pi.telepi_log();
    assert!(
        log.contains("/dev/mem"),
        "the log should say /dev/mem: {log}"
    );

    let functions = pi.monitor.functions();
    for pin in ALL_PINS {
        assert_eq!(functions[pin as usize], 1, "GPIO{pin} should be an output");
    }
    // Idle: motor pins low, servos pulsing at their centre (1500 us of 20 ms).
    assert_eq!(
        pi.pins_seen_high(&MOTOR_PINS, 500),
        Vec::<u8>::new(),
        "idle motor pins high"
    );
    let idle = pi.monitor.record(Duration::from_secs(2), |_| false);
    for pin in [PAN, TILT] {
        assert_duty(&idle, "idle servo (1500 us)", pin, 0.075, SERVO_DUTY_WINDOW);
    }

    // The whole telepi: video from the emulated Pi, decoded on the host.
    let mut viewer = Peer::connect(&server);
    assert!(
        viewer.run_until(Duration::from_secs(30), |p| p.frames_decoded >= 3),
        "no video from the emulated Pi ({} frames)",
        viewer.frames_decoded
    );
    assert_eq!(viewer.last_size, Some((160, 120)));
    drop(viewer);

    let (code, took) = pi.terminate_telepi();
    assert_eq!(
        code,
        0,
        "telepi exit status after SIGTERM; log:\n{}",
        pi.telepi_log()
    );
    eprintln!("SIGTERM to exit: {:.0} ms", took.as_secs_f64() * 1e3);
}

#[test]
#[ignore = "needs the emulated Pi: tests/vm/pi.sh"]
fn the_l298n_pins_follow_drive_and_servo_messages_and_the_deadman() {
    let mut pi = Pi::boot();
    pi.guest.write_file("/tmp/video.toml", VIDEO);
    let (server, _) = pi.start_telepi("/tmp/video.toml");
    let mut peer = Peer::connect_control_only(&server);
    claim(&mut peer);
    let settle = Duration::from_millis(400);
    let hold = Duration::from_secs(3);
    let speed = after_deadband(0.6);

    let forward = drive_and_sample(&mut pi, &mut peer, 0.6, 0.0, settle, hold);
    assert_directions(
        &forward,
        "forward",
        [(IN1, true), (IN2, false), (IN3, true), (IN4, false)],
    );
    assert_duty(&forward, "forward", ENA, speed, MOTOR_DUTY_WINDOW);
    assert_duty(&forward, "forward", ENB, speed, MOTOR_DUTY_WINDOW);

    let reverse = drive_and_sample(&mut pi, &mut peer, -0.6, 0.0, settle, hold);
    assert_directions(
        &reverse,
        "reverse",
        [(IN1, false), (IN2, true), (IN3, false), (IN4, true)],
    );
    assert_duty(&reverse, "reverse", ENA, speed, MOTOR_DUTY_WINDOW);
    assert_duty(&reverse, "reverse", ENB, speed, MOTOR_DUTY_WINDOW);

    // Positive angular turns left: the left wheel backwards, the right forwards.
    let left = drive_and_sample(&mut pi, &mut peer, 0.0, 0.6, settle, hold / 2);
    assert_directions(
        &left,
        "turn left",
        [(IN1, false), (IN2, true), (IN3, true), (IN4, false)],
    );
    let right = drive_and_sample(&mut pi, &mut peer, 0.0, -0.6, settle, hold / 2);
    assert_directions(
        &right,
        "turn right",
        [(IN1, true), (IN2, false), (IN3, false), (IN4, true)],
    );
    // Full speed: the enable pins are simply high (no PWM thread).
    let full = drive_and_sample(&mut pi, &mut peer, 1.0, 0.0, settle, hold / 3);
    assert_directions(
        &full,
        "full speed",
        [(IN1, true), (IN2, false), (IN3, true), (IN4, false)],
    );
    for pin in [ENA, ENB] {
        assert!(
            duty(&full, pin) > 0.99,
            "full speed: GPIO{pin} {}",
            duties(&full, &MOTOR_PINS)
        );
    }

    // The deadman: the last drive, then silence. Every motor pin must go low
    // 300 ms after telepi got it (plus the network and TCG), and stay low.
    let last_drive = Instant::now();
    send_drive(&mut peer, 0.6, 0.0);
    let stop = AtomicBool::new(false);
    let samples = std::thread::scope(|scope| {
        let monitor = &mut pi.monitor;
        let stop = &stop;
        let sampler = scope.spawn(move || {
            monitor.record(Duration::from_secs(5), |s| {
                stop.load(Ordering::Relaxed)
                    || s.last()
                        .is_some_and(|l| l.at - last_drive > Duration::from_millis(1500))
            })
        });
        // The client stays connected (ICE and SCTP keep running), it just stops driving.
        while !sampler.is_finished() {
            peer.run_for(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap()
    });
    let moving = samples
        .iter()
        .rposition(|s| MOTOR_PINS.iter().any(|&p| high(s.levels, p)))
        .expect("the motors never moved after the last drive");
    let stopped_at = samples
        .get(moving + 1)
        .unwrap_or_else(|| {
            panic!(
                "motor pins still high 1.5 s after the last drive: {}",
                duties(&samples[moving..], &MOTOR_PINS)
            )
        })
        .at;
    let deadman = stopped_at - last_drive;
    let last_high = samples[moving].at - last_drive;
    eprintln!(
        "deadman: motor pins last high {:.0} ms, all low from {:.0} ms after the last drive (deadman_ms 300)",
        last_high.as_secs_f64() * 1e3,
        deadman.as_secs_f64() * 1e3
    );
    assert!(
        deadman >= Duration::from_millis(300),
        "pins went low {deadman:?} after the last drive: before the 300 ms deadman"
    );
    assert!(
        deadman <= Duration::from_millis(1000),
        "deadman took {deadman:?} (budget 300 ms + 700 ms for TCG and the network)"
    );

    // Servos: software PWM at 50 Hz, duty = pulse / 20 ms.
    peer.send(r#"{"type":"servo","name":"pan","value":1.0}"#);
    peer.send(r#"{"type":"servo","name":"tilt","value":-1.0}"#);
    peer.run_for(Duration::from_millis(300));
    let servos = pi.monitor.record(Duration::from_secs(3), |_| false);
    assert_duty(&servos, "pan at 2000 us", PAN, 0.10, SERVO_DUTY_WINDOW);
    assert_duty(&servos, "tilt at 1000 us", TILT, 0.05, SERVO_DUTY_WINDOW);
    // Both run long by about the same time: the difference is the pulse difference.
    let (pan, tilt) = (duty(&servos, PAN), duty(&servos, TILT));
    assert!(
        pan > tilt + 0.02,
        "pan (2000 us) {pan:.3} should be well above tilt (1000 us) {tilt:.3}"
    );
    assert_eq!(
        pi.pins_seen_high(&MOTOR_PINS, 200),
        Vec::<u8>::new(),
        "servo messages moved a motor"
    );
}

#[test]
#[ignore = "needs the emulated Pi: tests/vm/pi.sh"]
fn stop_and_sigterm_bring_every_pin_low() {
    let mut pi = Pi::boot();
    // A deadman far longer than the checks, so only `stop` or SIGTERM can be
    // what brings the pins low.
    pi.guest.write_file(
        "/tmp/video.toml",
        &format!("{VIDEO}[drive]\ndeadman_ms = 8000\n"),
    );
    let (server, _) = pi.start_telepi("/tmp/video.toml");
    let mut peer = Peer::connect_control_only(&server);
    claim(&mut peer);
    let settle = Duration::from_millis(400);

    // Control: without a stop, the pins stay high after the drives end.
    let driving = drive_and_sample(
        &mut pi,
        &mut peer,
        1.0,
        0.0,
        settle,
        Duration::from_millis(500),
    );
    assert_directions(
        &driving,
        "forward",
        [(IN1, true), (IN2, false), (IN3, true), (IN4, false)],
    );
    peer.run_for(Duration::from_millis(1000));
    let still = pi.monitor.record(Duration::from_millis(300), |_| false);
    assert_directions(
        &still,
        "1 s after the last drive (deadman 8 s)",
        [(IN1, true), (IN2, false), (IN3, true), (IN4, false)],
    );

    let sent = Instant::now();
    peer.send(r#"{"type":"stop"}"#);
    let stop = AtomicBool::new(false);
    let samples = std::thread::scope(|scope| {
        let monitor = &mut pi.monitor;
        let stop = &stop;
        let sampler = scope.spawn(move || {
            monitor.record(Duration::from_secs(3), |s| {
                stop.load(Ordering::Relaxed)
                    || s.last()
                        .is_some_and(|l| MOTOR_PINS.iter().all(|&p| !high(l.levels, p)))
            })
        });
        while !sampler.is_finished() {
            peer.run_for(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap()
    });
    let last = samples.last().expect("samples");
    assert!(
        MOTOR_PINS.iter().all(|&p| !high(last.levels, p)),
        "motor pins still high 3 s after stop: {}",
        duties(&samples, &MOTOR_PINS)
    );
    let took = last.at - sent;
    eprintln!(
        "stop: motor pins low {:.0} ms after the message was sent",
        took.as_secs_f64() * 1e3
    );
    assert!(
        took <= Duration::from_millis(1000),
        "stop took {took:?} (budget 1 s)"
    );
    assert_eq!(
        pi.pins_seen_high(&MOTOR_PINS, 500),
        Vec::<u8>::new(),
        "a motor pin came back after stop"
    );

    // SIGTERM while driving: exit 0, every pin low (servo PWM threads stopped too).
    let driving = drive_and_sample(
        &mut pi,
        &mut peer,
        0.6,
        0.0,
        settle,
        Duration::from_millis(500),
    );
    assert_directions(
        &driving,
        "forward again",
        [(IN1, true), (IN2, false), (IN3, true), (IN4, false)],
    );
    let (code, took) = pi.terminate_telepi();
    eprintln!(
        "SIGTERM while driving: exited {code} after {:.0} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(
        code,
        0,
        "telepi exit status after SIGTERM; log:\n{}",
        pi.telepi_log()
    );
    assert_eq!(
        pi.pins_seen_high(&ALL_PINS, 500),
        Vec::<u8>::new(),
        "pins left high after exit"
    );
    drop(server);
}
