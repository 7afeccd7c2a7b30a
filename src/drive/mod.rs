//! Motors and servos: mixer, acceleration ramp, deadman watchdog, and the
//! backends that move real pins ([`gpio`]), a PCA9685 PWM chip over I2C
//! ([`pca9685`]), a microcontroller on a serial port ([`serial`]), a program
//! on the local API ([`external`]) or nothing ([`sim`]).
//!
//! [`Drive`] is sans-IO apart from its backend: time is always passed in,
//! and [`Drive::next_deadline`] says when the owner must call [`Drive::tick`].

use std::time::{Duration, Instant};

use serde::ser::{Serialize, SerializeMap, Serializer};

pub mod bridge;
mod config;
pub mod external;
pub mod gpio;
pub mod hat;
pub mod mixer;
pub mod pca9685;
pub mod serial;
pub mod sim;

pub use config::{BackendKind, DriveConfig, Driver, MotorPins, ServoConfig};
use mixer::Mixer;

/// Most servos a config may list.
pub const MAX_SERVOS: usize = 8;
/// How often the acceleration ramp advances while motors are catching up.
pub const RAMP_STEP: Duration = Duration::from_millis(20);

/// Motor values in [-1, 1]: the sign is the direction, the size the duty.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Motors {
    pub left: f32,
    pub right: f32,
}

/// What moves the motors and servos. Implementations must stop everything on drop.
pub trait Backend: Send {
    /// Short name for logs and status, e.g. `sim`, `gpio`.
    fn name(&self) -> &'static str;
    fn set_motors(&mut self, motors: Motors);
    /// `index` is the servo's position in [`DriveConfig::servos`].
    fn set_servo(&mut self, index: usize, pulse_us: u32);
    /// The state of the link to the motor hardware, for backends that have
    /// one that can fail at run time (a bus, a cable).
    fn link(&self) -> Option<LinkState> {
        None
    }
}

/// Whether the motor hardware is answering; `drive_link` in `/api/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Opened, not heard from yet (a microcontroller may still be booting).
    Connecting,
    Ok,
    Lost,
}

#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("bad [drive] config: {0}")]
    Config(String),
    #[error("gpio: {0}")]
    Gpio(String),
    #[error("i2c: {0}")]
    I2c(String),
    #[error("serial: {0}")]
    Serial(String),
}

/// A servo name the config doesn't list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownServo;

struct Servo {
    config: ServoConfig,
    value: f32,
}

pub struct Drive {
    mixer: Mixer,
    accel: f32,
    deadman: Duration,
    backend: Box<dyn Backend>,
    /// Where the operator wants the motors.
    target: Motors,
    /// What the backend was last told; follows `target` through the ramp.
    output: Motors,
    /// When `output` was last advanced towards `target`.
    ramped_at: Option<Instant>,
    /// Motors stop at this instant unless another `drive` comes first.
    deadman_at: Option<Instant>,
    /// Times the deadman stopped moving motors (for metrics).
    deadman_trips: u64,
    servos: heapless::Vec<Servo, MAX_SERVOS>,
}

impl Drive {
    /// Validates `config`, picks the backend it names and centres the
    /// servos. The `external` backend comes with the port the local API
    /// serves it through.
    pub fn open(config: &DriveConfig) -> Result<(Drive, Option<external::MotorPort>), DriveError> {
        let backend: Box<dyn Backend> = match config.backend {
            BackendKind::External => {
                let (backend, port) = external::external(config);
                return Ok((Drive::new(config, Box::new(backend))?, Some(port)));
            }
            BackendKind::Sim => Box::new(sim::Sim),
            BackendKind::Gpio => Box::new(gpio::Gpio::open(config)?),
            BackendKind::Pca9685 => Box::new(hat::MotorHat::open(config)?),
            BackendKind::Serial => Box::new(serial::Serial::open(config)?),
            BackendKind::Auto if gpio::access().is_some() => Box::new(gpio::Gpio::open(config)?),
            BackendKind::Auto => {
                tracing::info!("not a Raspberry Pi (no /dev/gpiomem, no Pi in the device tree): motors are simulated");
                Box::new(sim::Sim)
            }
        };
        Ok((Drive::new(config, backend)?, None))
    }

    /// A drive on the given backend (tests, or a backend of your own).
    pub fn new(config: &DriveConfig, mut backend: Box<dyn Backend>) -> Result<Drive, DriveError> {
        config.validate().map_err(DriveError::Config)?;
        let mut servos = heapless::Vec::new();
        for (i, s) in config.servos.iter().enumerate() {
            backend.set_servo(i, s.pulse_us(s.initial));
            let servo = Servo {
                config: s.clone(),
                value: s.initial,
            };
            // validate() allows at most MAX_SERVOS.
            assert!(servos.push(servo).is_ok(), "validated servo count");
        }
        backend.set_motors(Motors::default());
        Ok(Drive {
            mixer: Mixer::new(config),
            accel: config.accel,
            deadman: Duration::from_millis(config.deadman_ms),
            backend,
            target: Motors::default(),
            output: Motors::default(),
            ramped_at: None,
            deadman_at: None,
            deadman_trips: 0,
            servos,
        })
    }

    /// A `drive` from the operator: new target, deadman re-armed.
    pub fn drive(&mut self, now: Instant, linear: f32, angular: f32) {
        // Catch up with the old target first so the ramp measures from now.
        self.advance(now);
        self.target = self.mixer.mix(linear, angular);
        self.deadman_at = Some(now + self.deadman);
        self.advance(now);
    }

    /// Motors to zero at once, bypassing the ramp: this is the safety path.
    pub fn stop(&mut self, now: Instant) {
        self.target = Motors::default();
        self.deadman_at = None;
        self.ramped_at = Some(now);
        self.write(Motors::default());
    }

    /// Fires the deadman and advances the ramp; call at [`next_deadline`](Self::next_deadline).
    pub fn tick(&mut self, now: Instant) {
        if self.deadman_at.is_some_and(|at| now >= at) {
            if self.output != Motors::default() {
                tracing::info!("deadman: no drive for {:?}, motors stopped", self.deadman);
                self.deadman_trips += 1;
            }
            self.stop(now);
        } else {
            self.advance(now);
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let ramp = match self.ramped_at {
            Some(at) if self.output != self.target => Some(at + RAMP_STEP),
            _ => None,
        };
        [self.deadman_at, ramp].into_iter().flatten().min()
    }

    pub fn set_servo(&mut self, name: &str, value: f32) -> Result<(), UnknownServo> {
        let (i, servo) = self
            .servos
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.config.name == name)
            .ok_or(UnknownServo)?;
        servo.value = if value.is_finite() {
            value.clamp(-1.0, 1.0)
        } else {
            servo.value
        };
        self.backend
            .set_servo(i, servo.config.pulse_us(servo.value));
        Ok(())
    }

    pub fn deadman_trips(&self) -> u64 {
        self.deadman_trips
    }

    /// What the motors are doing now (after ramp, trim, inversion).
    pub fn motors(&self) -> Motors {
        self.output
    }

    /// Servo name → value, serializes as a JSON object.
    pub fn servos(&self) -> ServoValues<'_> {
        ServoValues(&self.servos)
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    pub fn link(&self) -> Option<LinkState> {
        self.backend.link()
    }

    fn advance(&mut self, now: Instant) {
        let elapsed = self
            .ramped_at
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.ramped_at = Some(now);
        let step = if self.accel > 0.0 {
            self.accel * elapsed.as_secs_f32()
        } else {
            f32::INFINITY
        };
        self.write(mixer::ramp(self.output, self.target, step));
    }

    fn write(&mut self, motors: Motors) {
        if motors != self.output {
            self.output = motors;
            self.backend.set_motors(motors);
        }
    }
}

impl Drop for Drive {
    fn drop(&mut self) {
        self.backend.set_motors(Motors::default());
    }
}

/// Servo values by name, for telemetry and status.
pub struct ServoValues<'a>(&'a [Servo]);

impl ServoValues<'_> {
    /// Owned, for a status that outlives the drive's borrow.
    pub fn to_map(&self) -> std::collections::BTreeMap<String, f32> {
        (self.0.iter())
            .map(|s| (s.config.name.clone(), s.value))
            .collect()
    }
}

impl Serialize for ServoValues<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for s in self.0 {
            map.serialize_entry(&s.config.name, &s.value)?;
        }
        map.end()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::sync::{Arc, Mutex};

    use super::{Backend, BackendKind, DriveConfig, Motors, ServoConfig};

    /// Simulated motors without ramp or deadband (so a drive is the output),
    /// and one `pan` servo on GPIO18 starting at `pan`.
    pub(crate) fn config(pan: f32) -> DriveConfig {
        DriveConfig {
            backend: BackendKind::Sim,
            accel: 0.0,
            deadband: 0.0,
            servos: vec![ServoConfig {
                name: "pan".into(),
                pin: Some(18),
                channel: None,
                min_us: 1000,
                max_us: 2000,
                center_us: None,
                initial: pan,
            }],
            ..DriveConfig::default()
        }
    }

    /// Records every write, so tests see exactly what reached the pins.
    #[derive(Clone, Default)]
    pub(crate) struct Recorder(Arc<Mutex<Vec<Write>>>);

    #[derive(Debug, Clone, Copy, PartialEq)]
    pub(crate) enum Write {
        Motors(Motors),
        Servo(usize, u32),
    }

    impl Recorder {
        pub(crate) fn writes(&self) -> Vec<Write> {
            self.0.lock().unwrap().clone()
        }
    }

    impl Backend for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn set_motors(&mut self, motors: Motors) {
            self.0.lock().unwrap().push(Write::Motors(motors));
        }
        fn set_servo(&mut self, index: usize, pulse_us: u32) {
            self.0.lock().unwrap().push(Write::Servo(index, pulse_us));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{self, Recorder, Write};
    use super::*;

    fn config() -> DriveConfig {
        testing::config(0.5)
    }

    fn ms(t: Instant, n: u64) -> Instant {
        t + Duration::from_millis(n)
    }

    #[test]
    fn deadman_stops_exactly_at_the_deadline_and_each_drive_rearms_it() {
        let t = Instant::now();
        let mut d = Drive::new(&config(), Box::new(sim::Sim)).unwrap();
        d.drive(t, 1.0, 0.0);
        assert_eq!(
            d.motors(),
            Motors {
                left: 1.0,
                right: 1.0
            }
        );
        assert_eq!(d.next_deadline(), Some(ms(t, 300)));
        d.drive(ms(t, 200), 0.5, 0.0);
        d.tick(ms(t, 499));
        assert_eq!(
            d.motors(),
            Motors {
                left: 0.5,
                right: 0.5
            }
        );
        assert_eq!(d.next_deadline(), Some(ms(t, 500)));
        assert_eq!(d.deadman_trips(), 0);
        d.tick(ms(t, 500));
        assert_eq!(d.motors(), Motors::default());
        assert_eq!(d.next_deadline(), None);
        assert_eq!(d.deadman_trips(), 1);
        // Silence after a zero drive stops nothing: not a trip.
        d.drive(ms(t, 600), 0.0, 0.0);
        d.tick(ms(t, 900));
        assert_eq!(d.deadman_trips(), 1);
    }

    #[test]
    fn accel_ramps_up_on_ticks_but_stop_is_immediate() {
        let t = Instant::now();
        let mut d = Drive::new(
            &DriveConfig {
                accel: 2.0,
                ..config()
            },
            Box::new(sim::Sim),
        )
        .unwrap();
        d.drive(t, 1.0, 0.0);
        assert_eq!(d.motors(), Motors::default(), "no time has passed");
        assert_eq!(d.next_deadline(), Some(t + RAMP_STEP));
        d.tick(ms(t, 100));
        assert!((d.motors().left - 0.2).abs() < 1e-6, "{:?}", d.motors());
        d.drive(ms(t, 250), 1.0, 0.0);
        assert!((d.motors().left - 0.5).abs() < 1e-6, "{:?}", d.motors());
        d.tick(ms(t, 500));
        assert_eq!(d.motors().left, 1.0, "reached the target and stays");
        assert_eq!(
            d.next_deadline(),
            Some(ms(t, 550)),
            "only the deadman is left"
        );
        d.stop(ms(t, 510));
        assert_eq!(d.motors(), Motors::default());
    }

    #[test]
    fn servos_start_at_initial_clamp_and_unknown_names_fail() {
        let rec = Recorder::default();
        let mut d = Drive::new(&config(), Box::new(rec.clone())).unwrap();
        assert_eq!(
            serde_json::to_string(&d.servos()).unwrap(),
            r#"{"pan":0.5}"#
        );
        d.set_servo("pan", -3.0).unwrap();
        d.set_servo("pan", f32::NAN).unwrap();
        assert_eq!(d.set_servo("tilt", 0.0), Err(UnknownServo));
        assert_eq!(
            serde_json::to_string(&d.servos()).unwrap(),
            r#"{"pan":-1.0}"#
        );
        assert_eq!(
            rec.writes(),
            [
                Write::Servo(0, 1750),
                Write::Motors(Motors::default()),
                Write::Servo(0, 1000),
                Write::Servo(0, 1000)
            ]
        );
    }

    #[test]
    fn backend_sees_only_changes_and_zero_on_drop() {
        let t = Instant::now();
        let rec = Recorder::default();
        let mut d = Drive::new(
            &DriveConfig {
                servos: vec![],
                ..config()
            },
            Box::new(rec.clone()),
        )
        .unwrap();
        d.drive(t, 0.5, 0.0);
        d.drive(t, 0.5, 0.0);
        d.tick(ms(t, 10));
        drop(d);
        let half = Motors {
            left: 0.5,
            right: 0.5,
        };
        let zero = Motors::default();
        assert_eq!(
            rec.writes(),
            [
                Write::Motors(zero),
                Write::Motors(half),
                Write::Motors(zero)
            ]
        );
    }

    #[test]
    fn auto_without_gpio_is_simulated() {
        if gpio::access().is_some() {
            return; // a real Pi: don't grab its pins from a unit test
        }
        let (d, port) = Drive::open(&DriveConfig::default()).unwrap();
        assert!(port.is_none());
        assert_eq!(d.backend_name(), "sim");
        let gpio = DriveConfig {
            backend: BackendKind::Gpio,
            ..DriveConfig::default()
        };
        assert!(matches!(Drive::open(&gpio), Err(DriveError::Gpio(_))));
    }

    #[test]
    fn invalid_config_is_refused() {
        let err = Drive::new(
            &DriveConfig {
                max_speed: 2.0,
                ..config()
            },
            Box::new(sim::Sim),
        );
        assert!(matches!(err, Err(DriveError::Config(_))));
    }
}
