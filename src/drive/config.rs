//! The `[drive]` table of the config file. Every key is optional; unknown
//! keys are errors. Defaults shown, except `stby` and `servos` (none by default):
//!
//! ```toml
//! [drive]
//! backend = "auto"      # auto | sim | gpio | pca9685 | serial | external  (auto: gpio on a Raspberry Pi)
//! driver = "l298n"      # l298n | tb6612 | drv8833
//! pwm_hz = 1000         # hardware PWM frequency of the motor outputs
//! deadman_ms = 300      # motors stop this long after the operator's last `drive`
//! max_speed = 1.0       # 0..1, scales both motors
//! accel = 4.0           # max change of a motor value per second; 0 = no limit
//! trim = 0.0            # -1..1, > 0 slows the right motor (robot veers left)
//! deadband = 0.05       # joystick inputs smaller than this count as 0
//! invert_left = false
//! invert_right = false
//! stby = 25             # TB6612 only; without it, tie STBY to 3V3
//!
//! [drive.left]          # BCM GPIO numbers
//! in1 = 5
//! in2 = 6
//! pwm = 12              # L298N ENA / TB6612 PWMA; none for the DRV8833
//!
//! [drive.right]
//! in1 = 16
//! in2 = 26
//! pwm = 13
//!
//! [[drive.servos]]      # up to 8; name is required, and where the pulses go:
//! name = "pan"
//! pin = 18              # gpio: a BCM GPIO number
//! # channel = 14        # pca9685: a channel of the chip; serial: neither (servo N = Nth in this list)
//! min_us = 1000         # pulse at value -1 (swap with max_us to reverse)
//! max_us = 2000         # pulse at value +1
//! center_us = 1500      # pulse at value 0; default: halfway
//! initial = 0.0         # value set at start, -1..1
//! ```
//!
//! `[drive.pca9685]` and `[drive.serial]` are described in [`super::hat`]
//! and [`super::serial`].

use serde::Deserialize;

use super::hat::Pca9685Config;
use super::serial::SerialConfig;
use super::MAX_SERVOS;

/// Highest BCM GPIO number on the 40-pin header.
const MAX_HEADER_GPIO: u8 = 27;
/// Pulse widths outside this range can drive a hobby servo into its end stops.
const SERVO_PULSE_LIMITS_US: std::ops::RangeInclusive<u32> = 500..=2500;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriveConfig {
    pub backend: BackendKind,
    pub driver: Driver,
    pub pwm_hz: u32,
    pub deadman_ms: u64,
    pub max_speed: f32,
    pub accel: f32,
    pub trim: f32,
    pub deadband: f32,
    pub invert_left: bool,
    pub invert_right: bool,
    pub left: MotorPins,
    pub right: MotorPins,
    pub stby: Option<u8>,
    pub servos: Vec<ServoConfig>,
    pub pca9685: Pca9685Config,
    pub serial: SerialConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Auto,
    Sim,
    Gpio,
    /// A PCA9685 PWM chip over I2C, e.g. a motor HAT.
    Pca9685,
    /// A microcontroller speaking telepi's line protocol on a serial port.
    Serial,
    /// A program on the local API (`[api] socket`).
    External,
}

/// The H-bridge between the Pi and the motors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// IN1/IN2 set the direction, PWM on ENA/ENB sets the speed.
    L298n,
    /// Like the L298N (AIN1/AIN2 + PWMA), plus a STBY pin that must be high.
    Tb6612,
    /// No enable pin: PWM on IN1 or IN2 depending on the direction.
    Drv8833,
}

/// One motor's pins (BCM GPIO numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MotorPins {
    pub in1: u8,
    pub in2: u8,
    /// The speed (enable) input; L298N and TB6612 only.
    #[serde(default)]
    pub pwm: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServoConfig {
    pub name: String,
    /// BCM GPIO number (`gpio` backend).
    #[serde(default)]
    pub pin: Option<u8>,
    /// PCA9685 channel (`pca9685` backend).
    #[serde(default)]
    pub channel: Option<u8>,
    #[serde(default = "default_min_us")]
    pub min_us: u32,
    #[serde(default = "default_max_us")]
    pub max_us: u32,
    #[serde(default)]
    pub center_us: Option<u32>,
    #[serde(default)]
    pub initial: f32,
}

fn default_min_us() -> u32 {
    1000
}

fn default_max_us() -> u32 {
    2000
}

impl Default for DriveConfig {
    /// The `l298n` board profiles' wiring, without servos.
    fn default() -> Self {
        DriveConfig {
            backend: BackendKind::Auto,
            driver: Driver::L298n,
            pwm_hz: 1000,
            deadman_ms: 300,
            max_speed: 1.0,
            accel: 4.0,
            trim: 0.0,
            deadband: 0.05,
            invert_left: false,
            invert_right: false,
            left: MotorPins {
                in1: 5,
                in2: 6,
                pwm: Some(12),
            },
            right: MotorPins {
                in1: 16,
                in2: 26,
                pwm: Some(13),
            },
            stby: None,
            servos: Vec::new(),
            pca9685: Pca9685Config::default(),
            serial: SerialConfig::default(),
        }
    }
}

impl ServoConfig {
    /// Maps a value in [-1, 1] (clamped) to a pulse width: -1 → `min_us`,
    /// 0 → `center_us`, 1 → `max_us`, linear in between on each side.
    pub fn pulse_us(&self, value: f32) -> u32 {
        let v = value.clamp(-1.0, 1.0);
        let center = self.center() as f32;
        let end = if v >= 0.0 { self.max_us } else { self.min_us } as f32;
        (center + v.abs() * (end - center)).round() as u32
    }

    fn center(&self) -> u32 {
        self.center_us.unwrap_or(self.min_us.midpoint(self.max_us))
    }
}

impl DriveConfig {
    /// Checks what serde can't: ranges, pins per driver, no pin used twice.
    pub fn validate(&self) -> Result<(), String> {
        let unit = 0.0..=1.0;
        if !unit.contains(&self.max_speed) {
            return Err(format!("max_speed {} is not in 0..=1", self.max_speed));
        }
        if !(self.accel >= 0.0 && self.accel.is_finite()) {
            return Err(format!("accel {} must be >= 0 (0 = no limit)", self.accel));
        }
        if !(-1.0..=1.0).contains(&self.trim) {
            return Err(format!("trim {} is not in -1..=1", self.trim));
        }
        if !(0.0..1.0).contains(&self.deadband) {
            return Err(format!("deadband {} is not in 0..1", self.deadband));
        }
        if self.deadman_ms == 0 {
            return Err("deadman_ms must be > 0".into());
        }
        if !(1..=100_000).contains(&self.pwm_hz) {
            return Err(format!("pwm_hz {} is not in 1..=100000", self.pwm_hz));
        }
        let enable_pins = self.driver != Driver::Drv8833;
        for (side, pins) in [("left", &self.left), ("right", &self.right)] {
            if pins.pwm.is_some() != enable_pins {
                return Err(match self.driver {
                    Driver::Drv8833 => format!("drive.{side}.pwm: the DRV8833 has no enable pin"),
                    _ => format!("drive.{side}.pwm is required for the {:?}", self.driver),
                });
            }
        }
        if self.stby.is_some() && self.driver != Driver::Tb6612 {
            return Err("drive.stby is only for the TB6612".into());
        }
        if self.servos.len() > MAX_SERVOS {
            return Err(format!("at most {MAX_SERVOS} servos"));
        }
        for (i, servo) in self.servos.iter().enumerate() {
            validate_servo(servo)?;
            self.validate_servo_output(servo)?;
            if self.servos[..i].iter().any(|s| s.name == servo.name) {
                return Err(format!("servo name {:?} is used twice", servo.name));
            }
        }
        match self.backend {
            BackendKind::Pca9685 => self.pca9685.validate(&self.servos)?,
            BackendKind::Serial => self.serial.validate()?,
            BackendKind::Auto | BackendKind::Sim | BackendKind::Gpio | BackendKind::External => {}
        }
        self.validate_pins()
    }

    /// Each backend addresses servos its own way; `sim` and `external` take any.
    fn validate_servo_output(&self, s: &ServoConfig) -> Result<(), String> {
        let name = &s.name;
        match (self.backend, s.pin, s.channel) {
            (BackendKind::Sim | BackendKind::External, ..)
            | (BackendKind::Auto | BackendKind::Gpio, Some(_), None)
            | (BackendKind::Pca9685, None, Some(_))
            | (BackendKind::Serial, None, None) => Ok(()),
            (BackendKind::Auto | BackendKind::Gpio, ..) => Err(format!(
                "servo {name:?}: the gpio backend needs `pin` (a BCM GPIO number), not `channel`"
            )),
            (BackendKind::Pca9685, ..) => Err(format!(
                "servo {name:?}: the pca9685 backend needs `channel` (0..=15 on the chip), not `pin`"
            )),
            (BackendKind::Serial, ..) => Err(format!(
                "servo {name:?}: the serial backend numbers servos by their order in the list \
                 (`S <index> <pulse_us>`); drop `pin` and `channel`"
            )),
        }
    }

    /// Every configured pin, with what it is for (for error messages).
    pub(crate) fn pins(&self) -> impl Iterator<Item = (u8, String)> + '_ {
        let motors = [("left", &self.left), ("right", &self.right)]
            .into_iter()
            .flat_map(|(side, p)| {
                [(Some(p.in1), "in1"), (Some(p.in2), "in2"), (p.pwm, "pwm")]
                    .into_iter()
                    .filter_map(move |(pin, what)| Some((pin?, format!("drive.{side}.{what}"))))
            });
        let stby = self.stby.map(|p| (p, "drive.stby".to_string()));
        let servos = self
            .servos
            .iter()
            .filter_map(|s| Some((s.pin?, format!("servo {:?}", s.name))));
        motors.chain(stby).chain(servos)
    }

    fn validate_pins(&self) -> Result<(), String> {
        let mut seen: Vec<(u8, String)> = Vec::new();
        for (pin, what) in self.pins() {
            if pin > MAX_HEADER_GPIO {
                return Err(format!(
                    "{what}: GPIO{pin} is not on the header (0..={MAX_HEADER_GPIO})"
                ));
            }
            if let Some((_, other)) = seen.iter().find(|(p, _)| *p == pin) {
                return Err(format!("GPIO{pin} is used by both {other} and {what}"));
            }
            seen.push((pin, what));
        }
        Ok(())
    }
}

fn validate_servo(s: &ServoConfig) -> Result<(), String> {
    let name = &s.name;
    if name.is_empty() || name.len() > 32 {
        return Err(format!("servo name {name:?} must be 1 to 32 bytes"));
    }
    for us in [s.min_us, s.max_us, s.center()] {
        if !SERVO_PULSE_LIMITS_US.contains(&us) {
            return Err(format!(
                "servo {name:?}: pulse {us} µs is outside 500..=2500"
            ));
        }
    }
    let (lo, hi) = (s.min_us.min(s.max_us), s.min_us.max(s.max_us));
    if !(lo..=hi).contains(&s.center()) {
        return Err(format!(
            "servo {name:?}: center_us is not between min_us and max_us"
        ));
    }
    if !(-1.0..=1.0).contains(&s.initial) {
        return Err(format!(
            "servo {name:?}: initial {} is not in -1..=1",
            s.initial
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servo(min_us: u32, max_us: u32, center_us: Option<u32>) -> ServoConfig {
        ServoConfig {
            name: "pan".into(),
            pin: Some(18),
            channel: None,
            min_us,
            max_us,
            center_us,
            initial: 0.0,
        }
    }

    #[test]
    fn servo_value_maps_onto_the_pulse_range_through_the_center() {
        let s = servo(1000, 2000, Some(1400));
        assert_eq!(s.pulse_us(-1.0), 1000);
        assert_eq!(s.pulse_us(0.0), 1400);
        assert_eq!(s.pulse_us(0.5), 1700);
        assert_eq!(s.pulse_us(-0.5), 1200);
        assert_eq!(s.pulse_us(1.0), 2000);
        assert_eq!(s.pulse_us(7.0), 2000, "clamped");
        assert_eq!(servo(1000, 2000, None).pulse_us(0.0), 1500);
        // Swapped ends reverse the servo.
        assert_eq!(servo(2000, 1000, None).pulse_us(1.0), 1000);
    }

    #[test]
    fn default_config_is_valid_and_parses_from_an_empty_table() {
        DriveConfig::default().validate().unwrap();
        assert_eq!(
            toml::from_str::<DriveConfig>("").unwrap(),
            DriveConfig::default()
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<DriveConfig>("max_sped = 1.0").is_err());
        assert!(toml::from_str::<DriveConfig>("[left]\nin1 = 1\nin2 = 2\nenable = 3").is_err());
    }

    #[test]
    fn validation_catches_bad_ranges_pins_and_drivers() {
        let bad = |edit: fn(&mut DriveConfig)| {
            let mut c = DriveConfig::default();
            edit(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.max_speed = 1.5).contains("max_speed"));
        assert!(bad(|c| c.accel = f32::NAN).contains("accel"));
        assert!(bad(|c| c.trim = -2.0).contains("trim"));
        assert!(bad(|c| c.deadband = 1.0).contains("deadband"));
        assert!(bad(|c| c.deadman_ms = 0).contains("deadman"));
        assert!(bad(|c| c.right.in1 = 5)
            .contains("GPIO5 is used by both drive.left.in1 and drive.right.in1"));
        assert!(bad(|c| c.left.in1 = 28).contains("not on the header"));
        assert!(bad(|c| c.driver = Driver::Drv8833).contains("no enable pin"));
        assert!(bad(|c| c.stby = Some(25)).contains("stby"));
        assert!(bad(|c| c.left.pwm = None).contains("required"));
        assert!(bad(|c| c.servos = vec![servo(1000, 2000, None); 2]).contains("used twice"));
        assert!(bad(|c| c.servos = vec![servo(400, 2000, None)]).contains("outside"));
        assert!(bad(|c| c.servos = vec![servo(1000, 2000, Some(2100))]).contains("center_us"));
    }

    /// Seen while writing the config fuzz target: the default center
    /// (min_us + max_us) / 2 overflowed before the range check could refuse
    /// the pulse widths.
    #[test]
    fn huge_pulse_widths_are_refused_not_overflowed() {
        let text =
            "[[servos]]\nname = \"pan\"\npin = 18\nmin_us = 4294967295\nmax_us = 4294967295\n";
        let c: DriveConfig = toml::from_str(text).unwrap();
        assert!(c.validate().unwrap_err().contains("outside"));
        assert_eq!(servo(u32::MAX, u32::MAX - 2, None).center(), u32::MAX - 1);
    }

    #[test]
    fn each_backend_wants_its_own_servo_address() {
        let with = |backend, pin, channel| DriveConfig {
            backend,
            pca9685: Pca9685Config {
                frequency_hz: 50,
                ..Pca9685Config::default()
            },
            servos: vec![ServoConfig {
                pin,
                channel,
                ..servo(1000, 2000, None)
            }],
            ..DriveConfig::default()
        };
        with(BackendKind::Gpio, Some(18), None).validate().unwrap();
        with(BackendKind::Pca9685, None, Some(0))
            .validate()
            .unwrap();
        with(BackendKind::Serial, None, None).validate().unwrap();
        with(BackendKind::Sim, None, Some(0)).validate().unwrap();
        let err = |backend, pin, channel| with(backend, pin, channel).validate().unwrap_err();
        assert!(err(BackendKind::Auto, None, Some(3)).contains("needs `pin`"));
        assert!(err(BackendKind::Gpio, None, None).contains("needs `pin`"));
        assert!(err(BackendKind::Pca9685, Some(18), None).contains("needs `channel`"));
        assert!(err(BackendKind::Serial, Some(18), None).contains("by their order"));
    }
}
