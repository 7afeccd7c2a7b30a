//! The `pca9685` motor backend against a real kernel I2C driver, in the
//! emulated PC booted by tests/vm/pc.sh: Linux's `i2c-stub` plays a
//! register chip at the HATs' addresses, telepi writes to it through
//! rppal's I2C on /dev/i2c-N (i2c-dev) with the shipped board profiles, and
//! the registers are read back with i2c-tools' `i2cdump` in the guest and
//! checked against the PCA9685 datasheet's layout while a real WebRTC
//! operator drives, after the deadman stops the motors, and after SIGTERM.
//!
//! i2c-stub stores what is written and nothing more: it does not clear
//! MODE1's RESTART bit as the chip does, so MODE1 is checked as written, and
//! it does not apply ALL_LED_* to the channels, so after checking telepi's
//! ALL_LED full-off write at start the test does that part (for the
//! channels still holding what the test put there). Run through
//! tests/vm/pc.sh, never alone.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::guest::{Guest, TELEPI_PATIENCE as PATIENCE};
use common::{Peer, Server};

const HTTP: &str = "10.0.2.2:8080";
const RTC: &str = "10.0.2.2:50000";

// PCA9685 registers (NXP datasheet rev. 4, section 7.3).
const MODE1: usize = 0x00;
const MODE2: usize = 0x01;
const LED0_ON_L: usize = 0x06;
const ALL_LED_ON_L: usize = 0xFA;
const PRE_SCALE: usize = 0xFE;
/// MODE1 as telepi leaves it: RESTART | AI (auto-increment), SLEEP clear.
const MODE1_RUNNING: u8 = 0xA0;
/// MODE2: OUTDRV, totem-pole outputs.
const MODE2_TOTEM_POLE: u8 = 0x04;
/// Bit 4 of LEDn_ON_H / LEDn_OFF_H: full on / full off.
const FULL: u8 = 0x10;
const FULL_OFF: [u8; 4] = [0, 0, 0, FULL];
const FULL_ON: [u8; 4] = [0, FULL, 0, 0];

/// PWM, IN1 and IN2 channels of one motor on the HAT.
#[derive(Debug, Clone, Copy)]
struct Channels {
    pwm: usize,
    in1: usize,
    in2: usize,
}

struct Hat {
    profile: &'static str,
    address: u8,
    left: Channels,
    right: Channels,
}

/// board/profiles/adafruit-motor-hat.toml: M1 and M2 (Adafruit's library).
const ADAFRUIT: Hat = Hat {
    profile: "adafruit-motor-hat",
    address: 0x60,
    left: Channels {
        pwm: 8,
        in1: 10,
        in2: 9,
    },
    right: Channels {
        pwm: 13,
        in1: 11,
        in2: 12,
    },
};

/// board/profiles/waveshare-motor-hat.toml: motors A and B (Waveshare's demo).
const WAVESHARE: Hat = Hat {
    profile: "waveshare-motor-hat",
    address: 0x40,
    left: Channels {
        pwm: 0,
        in1: 1,
        in2: 2,
    },
    right: Channels {
        pwm: 5,
        in1: 3,
        in2: 4,
    },
};

fn addr(a: &str) -> SocketAddr {
    a.parse().unwrap()
}

/// Loads i2c-dev and i2c-stub with chips at both HATs' addresses; returns
/// the stub's bus number (found by its adapter name, not assumed).
fn load_i2c_stub(guest: &mut Guest) -> u8 {
    guest.sh(&format!(
        "modprobe i2c-dev && modprobe i2c-stub chip_addr={:#04x},{:#04x}",
        WAVESHARE.address, ADAFRUIT.address
    ));
    let found = guest.sh("grep -l 'SMBus stub driver' /sys/class/i2c-dev/*/name");
    found
        .trim()
        .strip_prefix("/sys/class/i2c-dev/i2c-")
        .and_then(|rest| rest.strip_suffix("/name"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no i2c-stub bus in /sys/class/i2c-dev: {found}"))
}

/// All 256 registers of the chip at `address`, read by i2cdump (SMBus byte reads).
fn registers(guest: &mut Guest, bus: u8, address: u8) -> [u8; 256] {
    let dump = guest.sh(&format!("i2cdump -y {bus} {address:#04x} b"));
    let mut regs = [0u8; 256];
    let mut rows = 0;
    // Rows look like `40: 00 10 00 00 ...    .?..`; the header row has no colon.
    for line in dump.lines() {
        let Some((row, values)) = line.split_once(": ") else {
            continue;
        };
        let Ok(row) = usize::from_str_radix(row.trim(), 16) else {
            continue;
        };
        for (i, v) in values.split_whitespace().take(16).enumerate() {
            regs[row + i] =
                u8::from_str_radix(v, 16).unwrap_or_else(|_| panic!("i2cdump row: {line}"));
        }
        rows += 1;
    }
    assert_eq!(rows, 16, "i2cdump printed:\n{dump}");
    regs
}

fn channel(regs: &[u8; 256], n: usize) -> [u8; 4] {
    let at = LED0_ON_L + 4 * n;
    regs[at..at + 4].try_into().unwrap()
}

/// What the datasheet says a channel's four registers hold at `duty` in
/// [0, 1]: on at step 0, off after round(duty × 4096) steps, the ends by the
/// full-on / full-off bits.
fn at_duty(duty: f64) -> [u8; 4] {
    match (duty * 4096.0).round() as u16 {
        0 => FULL_OFF,
        4096.. => FULL_ON,
        steps => {
            let [lo, hi] = steps.to_le_bytes();
            [0, 0, lo, hi]
        }
    }
}

/// Checks one motor's channels against its value from /api/status.
#[track_caller]
fn assert_motor(regs: &[u8; 256], what: &str, m: Channels, value: f64) {
    let (in1, in2) = match value {
        v if v > 0.0 => (FULL_ON, FULL_OFF),
        v if v < 0.0 => (FULL_OFF, FULL_ON),
        _ => (FULL_OFF, FULL_OFF),
    };
    let want = [
        (m.pwm, "PWM", at_duty(value.abs())),
        (m.in1, "IN1", in1),
        (m.in2, "IN2", in2),
    ];
    for (n, name, registers) in want {
        assert_eq!(
            channel(regs, n),
            registers,
            "{what}: {name} (LED{n}) at motor value {value}"
        );
    }
}

fn motors(server: &Server) -> (f64, f64) {
    let s = server.status();
    let m = |side: &str| s["motors"][side].as_f64().unwrap();
    (m("left"), m("right"))
}

fn drive(peer: &mut Peer, linear: f64, angular: f64) -> bool {
    peer.try_send(
        &serde_json::json!({ "type": "drive", "linear": linear, "angular": angular }).to_string(),
    )
}

/// Holds the stick (a drive every 100 ms, inside the 300 ms deadman) until
/// the motors reach what the drive asks, then, still holding, runs `then`
/// (a guest command that would otherwise let the deadman fire meanwhile);
/// returns the motor values and what `then` returned.
fn hold<T: Send>(
    peer: &mut Peer,
    server: &Server,
    (linear, angular): (f64, f64),
    arrived: impl Fn((f64, f64)) -> bool,
    then: impl FnOnce() -> T + Send,
) -> ((f64, f64), T) {
    let deadline = Instant::now() + PATIENCE;
    let reached = loop {
        assert!(drive(peer, linear, angular), "the data channel closed");
        peer.run_for(Duration::from_millis(100));
        let m = motors(server);
        if arrived(m) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "drive {linear} {angular}: motors stuck at {m:?}"
        );
    };
    let done = std::thread::scope(|scope| {
        let then = scope.spawn(then);
        // Once telepi exits (SIGTERM in `then`) the channel closes: stop sending.
        while !then.is_finished() && drive(peer, linear, angular) {
            peer.run_for(Duration::from_millis(100));
        }
        then.join().unwrap()
    });
    (reached, done)
}

/// Four bytes telepi never writes to a channel (its outputs are full on,
/// full off, or on at 0 and off at a step below 4096).
const NEVER_WRITTEN: u8 = 0xAA;

/// One guest command writing `bytes` from `register` in I2C block writes
/// of at most 32 bytes (what i2cset's `i` mode takes).
fn block_writes(bus: u8, address: u8, register: usize, bytes: &[u8]) -> String {
    bytes
        .chunks(32)
        .enumerate()
        .map(|(i, chunk)| {
            let values: Vec<String> = chunk.iter().map(|b| format!("{b:#04x}")).collect();
            format!(
                "i2cset -y {bus} {address:#04x} {:#04x} {} i",
                register + 32 * i,
                values.join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Sets the registers telepi must write to values it never writes (the
/// chip's power-on MODE1 and PRE_SCALE, MODE2 and ALL_LED_OFF_H zero, every
/// channel [`NEVER_WRITTEN`]), so what is read back afterwards is telepi's.
fn scribble(guest: &mut Guest, bus: u8, address: u8) {
    let mut commands = vec![block_writes(bus, address, LED0_ON_L, &[NEVER_WRITTEN; 64])];
    for (register, value) in [
        (MODE1, 0x11),
        (MODE2, 0x00),
        (PRE_SCALE, 0x1E),
        (ALL_LED_ON_L + 3, 0x00),
    ] {
        commands.push(format!(
            "i2cset -y {bus} {address:#04x} {register:#04x} {value:#04x}"
        ));
    }
    guest.sh(&commands.join(" && "));
}

/// What the chip does with telepi's ALL_LED full-off write at start and
/// i2c-stub does not: every channel off. Only the channels telepi has not
/// written since (still [`NEVER_WRITTEN`]), so a servo set after it keeps
/// its pulse.
fn apply_all_led_off(guest: &mut Guest, bus: u8, address: u8, regs: &[u8; 256]) {
    let commands: Vec<String> = (0..16)
        .filter(|&n| channel(regs, n) == [NEVER_WRITTEN; 4])
        .map(|n| block_writes(bus, address, LED0_ON_L + 4 * n, &FULL_OFF))
        .collect();
    guest.sh(&commands.join(" && "));
}

/// A hobby servo on a spare channel: its pulse at 50 Hz (prescale 121, one
/// step 4.88 µs): 1500 µs is 307 steps, 2000 µs 410.
const SERVO_CENTRE: [u8; 4] = [0, 0, 0x33, 0x01];
const SERVO_END: [u8; 4] = [0, 0, 0x9A, 0x01];

/// One HAT profile as shipped, on the stub's bus; `extra` adds config, and
/// `servo` is the channel of the `pan` servo it declares, if any. Checks
/// start-up, driving, the deadman, the servo and SIGTERM.
fn run_hat(guest: &mut Guest, bus: u8, hat: &Hat, extra: &str, prescale: u8, servo: Option<usize>) {
    let what = hat.profile;
    scribble(guest, bus, hat.address);
    guest.write_file(
        "/tmp/hat.toml",
        &format!(
            "[video]\nsource = \"pattern\"\nencoder = \"openh264\"\nwidth = 160\nheight = 120\nfps = 5\n\
             [audio]\nsource = \"none\"\nsink = \"none\"\n[drive.pca9685]\nbus = {bus}\n{extra}"
        ),
    );
    let server = guest.start_telepi(
        &format!("--board {what} --config /tmp/hat.toml"),
        addr(HTTP),
        addr(RTC),
    );
    let status = server.status();
    assert_eq!(status["drive_backend"], "pca9685", "{status}");
    assert_eq!(status["drive_link"], "ok", "{status}");

    let regs = registers(guest, bus, hat.address);
    assert_eq!(regs[MODE1], MODE1_RUNNING, "{what}: MODE1");
    assert_eq!(regs[MODE2], MODE2_TOTEM_POLE, "{what}: MODE2");
    assert_eq!(regs[PRE_SCALE], prescale, "{what}: PRE_SCALE");
    assert_eq!(
        regs[ALL_LED_ON_L..ALL_LED_ON_L + 4],
        FULL_OFF,
        "{what}: every channel off at start"
    );
    if let Some(n) = servo {
        assert_eq!(
            channel(&regs, n),
            SERVO_CENTRE,
            "{what}: servo on LED{n} centred"
        );
    }
    apply_all_led_off(guest, bus, hat.address, &regs);

    let mut op = Peer::connect_control_only(&server);
    // Full speed ahead: the PWM channels fully on, IN1 high, IN2 low.
    let (forward, regs) = hold(
        &mut op,
        &server,
        (1.0, 0.0),
        |m| m == (1.0, 1.0),
        || registers(guest, bus, hat.address),
    );
    assert_motor(&regs, &format!("{what} forward"), hat.left, forward.0);
    assert_motor(&regs, &format!("{what} forward"), hat.right, forward.1);

    // A spin to the left at part speed: left backwards, right forwards, PWM in between.
    let (spin, regs) = hold(
        &mut op,
        &server,
        (0.0, 0.6),
        |(l, r)| l < -0.5 && r > 0.5 && (l + r).abs() < 1e-6,
        || registers(guest, bus, hat.address),
    );
    assert_motor(&regs, &format!("{what} spin"), hat.left, spin.0);
    assert_motor(&regs, &format!("{what} spin"), hat.right, spin.1);
    eprintln!(
        "{what}: spin at {spin:?}: left PWM LED{} = {:02x?}",
        hat.left.pwm,
        channel(&regs, hat.left.pwm)
    );

    // The deadman: no more drives, every motor channel fully off.
    assert!(
        server.wait_for(PATIENCE, |s| s["motors"]["left"] == 0.0
            && s["motors"]["right"] == 0.0),
        "the deadman did not stop the motors"
    );
    let regs = registers(guest, bus, hat.address);
    assert_motor(&regs, &format!("{what} after the deadman"), hat.left, 0.0);
    assert_motor(&regs, &format!("{what} after the deadman"), hat.right, 0.0);

    if let Some(n) = servo {
        op.send(r#"{"type":"servo","name":"pan","value":1.0}"#);
        assert!(
            op.run_until(PATIENCE, |p| p
                .last_message("telemetry")
                .is_some_and(|t| t["servos"]["pan"] == 1.0)),
            "the servo message was not taken"
        );
        let regs = registers(guest, bus, hat.address);
        assert_eq!(
            channel(&regs, n),
            SERVO_END,
            "{what}: servo on LED{n} at 2000 µs"
        );
    }

    // SIGTERM while driving: the motor channels off and ALL_LED full off
    // (cleared here first, so it is the exit that sets it).
    let (_, (code, log)) = hold(
        &mut op,
        &server,
        (1.0, 0.0),
        |m| m == (1.0, 1.0),
        || {
            guest.sh(&format!(
                "i2cset -y {bus} {:#04x} {:#04x} 0x00",
                hat.address,
                ALL_LED_ON_L + 3
            ));
            guest.stop_telepi()
        },
    );
    assert_eq!(code, 0, "{what}: exit status after SIGTERM; log:\n{log}");
    assert!(
        log.contains(&format!(
            "pca9685: at {:#04x} on /dev/i2c-{bus}",
            hat.address
        )),
        "{log}"
    );
    let regs = registers(guest, bus, hat.address);
    assert_motor(&regs, &format!("{what} after SIGTERM"), hat.left, 0.0);
    assert_motor(&regs, &format!("{what} after SIGTERM"), hat.right, 0.0);
    assert_eq!(
        regs[ALL_LED_ON_L..ALL_LED_ON_L + 4],
        FULL_OFF,
        "{what}: ALL_LED full off on exit"
    );
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn pca9685_hats_write_the_datasheet_registers_on_the_kernels_i2c_stub() {
    let mut guest = Guest::boot();
    let bus = load_i2c_stub(&mut guest);

    // Adafruit's profile as shipped: 1600 Hz asked, prescale 3 (~1526 Hz).
    run_hat(&mut guest, bus, &ADAFRUIT, "", 3, None);

    // Waveshare's at 50 Hz (prescale 121) with a servo on spare channel 15.
    let servo = "frequency_hz = 50\n[[drive.servos]]\nname = \"pan\"\nchannel = 15\n\
                 min_us = 1000\nmax_us = 2000\ninitial = 0.0\n";
    run_hat(&mut guest, bus, &WAVESHARE, servo, 121, Some(15));
}
