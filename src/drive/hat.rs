//! The `pca9685` backend: motor HATs built on NXP's PCA9685 (16-channel,
//! 12-bit PWM over I2C, see [`super::pca9685`]) driving TB6612FNG
//! H-bridges. Each motor takes three channels: PWM for the speed, IN1/IN2
//! held fully on or off for the direction. Spare channels can carry
//! hobby-servo pulses.
//!
//! ```toml
//! [drive]
//! backend = "pca9685"
//!
//! [drive.pca9685]        # defaults shown: the Adafruit DC & Stepper Motor HAT, M1 and M2
//! bus = 1                # /dev/i2c-1, the header's SDA/SCL (pins 3 and 5)
//! address = 0x60         # Waveshare Motor Driver HAT: 0x40
//! frequency_hz = 1600    # PWM of every channel; the chip tops out at ~1526 Hz
//! left = { pwm = 8, in1 = 10, in2 = 9 }
//! right = { pwm = 13, in1 = 11, in2 = 12 }
//!
//! [[drive.servos]]       # needs frequency_hz 40..=60 (a pulse every ~20 ms)
//! name = "pan"
//! channel = 14
//! ```

use rppal::i2c::I2c;
use serde::Deserialize;

use super::bridge::bridge;
use super::pca9685::{
    frequency_hz, I2cBus, Output, Pca9685, RegisterBus, CHANNELS, FREQUENCY_LIMITS_HZ,
};
use super::{Backend, DriveConfig, DriveError, Driver, LinkState, Motors, ServoConfig, MAX_SERVOS};

/// Hobby servos want a pulse about every 20 ms.
const SERVO_FREQUENCY_HZ: std::ops::RangeInclusive<u32> = 40..=60;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pca9685Config {
    /// `/dev/i2c-<bus>`.
    pub bus: u8,
    /// 7-bit I2C address of the chip.
    pub address: u8,
    pub frequency_hz: u32,
    pub left: HatMotor,
    pub right: HatMotor,
}

/// The three PCA9685 channels wired to one TB6612 motor input set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HatMotor {
    pub pwm: u8,
    pub in1: u8,
    pub in2: u8,
}

impl Default for Pca9685Config {
    /// Adafruit's library: address 0x60, 1600 Hz, M1 = (PWM 8, IN2 9, IN1 10), M2 = (13, 12, 11).
    fn default() -> Self {
        Pca9685Config {
            bus: 1,
            address: 0x60,
            frequency_hz: 1600,
            left: HatMotor {
                pwm: 8,
                in1: 10,
                in2: 9,
            },
            right: HatMotor {
                pwm: 13,
                in1: 11,
                in2: 12,
            },
        }
    }
}

impl Pca9685Config {
    pub(crate) fn validate(&self, servos: &[ServoConfig]) -> Result<(), String> {
        if !(0x08..=0x77).contains(&self.address) {
            return Err(format!(
                "drive.pca9685.address {:#04x} is not a 7-bit device address (0x08..=0x77)",
                self.address
            ));
        }
        if !FREQUENCY_LIMITS_HZ.contains(&self.frequency_hz) {
            return Err(format!(
                "drive.pca9685.frequency_hz {} is not in 24..=1600 (the chip's prescaler)",
                self.frequency_hz
            ));
        }
        if !servos.is_empty() && !SERVO_FREQUENCY_HZ.contains(&self.frequency_hz) {
            return Err(format!(
                "servos on the PCA9685 need drive.pca9685.frequency_hz between 40 and 60 \
                 (one pulse every ~20 ms), not {}: every channel shares the one frequency, so \
                 the motors then run at it too",
                self.frequency_hz
            ));
        }
        let motors = [("left", &self.left), ("right", &self.right)]
            .into_iter()
            .flat_map(|(side, m)| {
                [(m.pwm, "pwm"), (m.in1, "in1"), (m.in2, "in2")]
                    .map(|(ch, what)| (ch, format!("drive.pca9685.{side}.{what}")))
            });
        let servos = servos
            .iter()
            .filter_map(|s| Some((s.channel?, format!("servo {:?}", s.name))));
        let mut seen: Vec<(u8, String)> = Vec::new();
        for (channel, what) in motors.chain(servos) {
            if channel >= CHANNELS {
                return Err(format!(
                    "{what}: channel {channel} is not on the chip (0..=15)"
                ));
            }
            if let Some((_, other)) = seen.iter().find(|(c, _)| *c == channel) {
                return Err(format!(
                    "PCA9685 channel {channel} is used by both {other} and {what}"
                ));
            }
            seen.push((channel, what));
        }
        Ok(())
    }
}

/// The `pca9685` backend: two TB6612 motors and servos on one chip.
pub struct MotorHat<B: RegisterBus = I2cBus> {
    chip: Pca9685<B>,
    left: HatMotor,
    right: HatMotor,
    servos: heapless::Vec<u8, MAX_SERVOS>,
    /// The last write's error, if it failed; logged once per failure spell.
    failing: Option<String>,
}

impl MotorHat {
    pub fn open(config: &DriveConfig) -> Result<MotorHat, DriveError> {
        config.validate().map_err(DriveError::Config)?;
        let c = &config.pca9685;
        let device = format!("/dev/i2c-{}", c.bus);
        let mut i2c = I2c::with_bus(c.bus).map_err(|e| {
            DriveError::I2c(format!(
                "opening {device}: {e} (on a Pi, enable I2C: dtparam=i2c_arm=on in config.txt)"
            ))
        })?;
        i2c.set_slave_address(u16::from(c.address))
            .map_err(|e| DriveError::I2c(format!("{device}: address {:#04x}: {e}", c.address)))?;
        let hat = MotorHat::new(I2cBus(i2c), config).map_err(|e| {
            DriveError::I2c(format!(
                "no PCA9685 answers at {:#04x} on {device}: {e}",
                c.address
            ))
        })?;
        tracing::info!(
            "pca9685: at {:#04x} on {device}, PWM {:.0} Hz (prescale {})",
            c.address,
            frequency_hz(hat.chip.prescale()),
            hat.chip.prescale()
        );
        Ok(hat)
    }
}

impl<B: RegisterBus> MotorHat<B> {
    /// Starts the chip on `bus`; `config` must have passed validation.
    pub fn new(bus: B, config: &DriveConfig) -> Result<MotorHat<B>, String> {
        let c = &config.pca9685;
        let chip = Pca9685::start(bus, c.frequency_hz)?;
        Ok(MotorHat {
            chip,
            left: c.left,
            right: c.right,
            servos: config.servos.iter().filter_map(|s| s.channel).collect(),
            failing: None,
        })
    }

    fn set_motor(&mut self, motor: HatMotor, value: f32) -> Result<(), String> {
        let b = bridge(Driver::Tb6612, value);
        // The input going low first, so a reversal passes through coast, not brake.
        let (low, high) = if b.in1 > 0.0 {
            (motor.in2, motor.in1)
        } else {
            (motor.in1, motor.in2)
        };
        self.chip
            .set(motor.pwm, Output::duty(b.enable.unwrap_or(0.0)))?;
        self.chip.set(low, Output::Off)?;
        let on = b.in1 > 0.0 || b.in2 > 0.0;
        self.chip
            .set(high, if on { Output::On } else { Output::Off })
    }

    fn report(&mut self, result: Result<(), String>) {
        match (result, &self.failing) {
            (Ok(()), Some(_)) => {
                tracing::info!("pca9685: writes go through again");
                self.failing = None;
            }
            (Err(e), None) => {
                tracing::warn!(
                    "pca9685: write failed: {e}; motors may not follow until it answers"
                );
                self.failing = Some(e);
            }
            _ => {}
        }
    }
}

impl<B: RegisterBus> Backend for MotorHat<B> {
    fn name(&self) -> &'static str {
        "pca9685"
    }

    fn set_motors(&mut self, motors: Motors) {
        let (left, right) = (self.left, self.right);
        let result = self
            .set_motor(left, motors.left)
            .and_then(|()| self.set_motor(right, motors.right));
        self.report(result);
    }

    fn set_servo(&mut self, index: usize, pulse_us: u32) {
        if let Some(&channel) = self.servos.get(index) {
            let output = Output::pulse(pulse_us, self.chip.prescale());
            let result = self.chip.set(channel, output);
            self.report(result);
        }
    }

    fn link(&self) -> Option<LinkState> {
        Some(if self.failing.is_some() {
            LinkState::Lost
        } else {
            LinkState::Ok
        })
    }
}

impl<B: RegisterBus> Drop for MotorHat<B> {
    fn drop(&mut self) {
        if let Err(e) = self.chip.all_off() {
            tracing::warn!("pca9685: turning every channel off failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::drive::pca9685::fake::FakeBus;
    use crate::drive::BackendKind;

    const LED0_ON_L: u8 = 0x06;
    const ALL_LED_ON_L: u8 = 0xFA;

    fn channel(n: u8, output: Output) -> (u8, Vec<u8>) {
        (LED0_ON_L + 4 * n, output.registers().to_vec())
    }

    fn hat(pca9685: Pca9685Config, servos: Vec<ServoConfig>) -> (MotorHat<FakeBus>, FakeBus) {
        let config = DriveConfig {
            backend: BackendKind::Pca9685,
            pca9685,
            servos,
            ..DriveConfig::default()
        };
        config.validate().unwrap();
        let bus = FakeBus::default();
        let hat = MotorHat::new(bus.clone(), &config).unwrap();
        bus.take();
        (hat, bus)
    }

    fn motors(left: f32, right: f32) -> Motors {
        Motors { left, right }
    }

    #[test]
    fn adafruit_layout_forward_reverse_stop_and_off_on_drop() {
        let (mut hat, bus) = hat(Pca9685Config::default(), vec![]);
        hat.set_motors(motors(0.5, -1.0));
        assert_eq!(
            bus.take(),
            [
                // M1: PWM 8 at half, IN1 10 on (IN2 9 is already off).
                channel(8, Output::High(2048)),
                channel(10, Output::On),
                // M2: PWM 13 full, IN2 12 on (IN1 11 is already off).
                channel(13, Output::On),
                channel(12, Output::On),
            ]
        );
        hat.set_motors(motors(0.5, -1.0));
        assert_eq!(bus.take(), [], "unchanged channels are not rewritten");
        hat.set_motors(motors(-0.5, -1.0));
        assert_eq!(
            bus.take(),
            [channel(10, Output::Off), channel(9, Output::On)],
            "a reversal turns the old direction off first"
        );
        hat.set_motors(motors(0.0, 0.0));
        assert_eq!(
            bus.take(),
            [
                channel(8, Output::Off),
                channel(9, Output::Off),
                channel(13, Output::Off),
                channel(12, Output::Off),
            ]
        );
        drop(hat);
        assert_eq!(bus.take(), [(ALL_LED_ON_L, vec![0, 0, 0, 0x10])]);
    }

    #[test]
    fn waveshare_layout_and_a_servo_on_a_spare_channel() {
        let waveshare = Pca9685Config {
            address: 0x40,
            frequency_hz: 50,
            left: HatMotor {
                pwm: 0,
                in1: 1,
                in2: 2,
            },
            right: HatMotor {
                pwm: 5,
                in1: 3,
                in2: 4,
            },
            ..Pca9685Config::default()
        };
        let pan = ServoConfig {
            name: "pan".into(),
            pin: None,
            channel: Some(15),
            min_us: 1000,
            max_us: 2000,
            center_us: None,
            initial: 0.0,
        };
        let (mut hat, bus) = hat(waveshare, vec![pan]);
        hat.set_motors(motors(1.0, 0.25));
        hat.set_servo(0, 1500);
        assert_eq!(
            bus.take(),
            [
                (0x06, vec![0, 0x10, 0, 0]),
                (0x0A, vec![0, 0x10, 0, 0]),
                (0x1A, vec![0, 0, 0x00, 0x04]),
                (0x12, vec![0, 0x10, 0, 0]),
                (0x42, vec![0, 0, 0x33, 0x01]),
            ]
        );
    }

    #[test]
    fn a_failing_bus_is_reported_and_the_channel_rewritten_once_it_answers() {
        let (mut hat, bus) = hat(Pca9685Config::default(), vec![]);
        assert_eq!(hat.link(), Some(LinkState::Ok));
        bus.fail.store(true, Ordering::SeqCst);
        hat.set_motors(motors(1.0, 0.0));
        assert_eq!(hat.link(), Some(LinkState::Lost));
        bus.fail.store(false, Ordering::SeqCst);
        hat.set_motors(motors(1.0, 0.0));
        assert_eq!(hat.link(), Some(LinkState::Ok));
        assert_eq!(
            bus.take(),
            [channel(8, Output::On), channel(10, Output::On)]
        );
    }

    #[test]
    fn validation_explains_addresses_channels_and_the_servo_frequency() {
        let bad = |c: Pca9685Config, servos: &[ServoConfig]| c.validate(servos).unwrap_err();
        let servo = ServoConfig {
            name: "tilt".into(),
            pin: None,
            channel: Some(9),
            min_us: 1000,
            max_us: 2000,
            center_us: None,
            initial: 0.0,
        };
        let at = |address| Pca9685Config {
            address,
            ..Pca9685Config::default()
        };
        assert!(bad(at(0x80), &[]).contains("7-bit"));
        let fast = Pca9685Config::default();
        assert!(bad(fast.clone(), std::slice::from_ref(&servo)).contains("between 40 and 60"));
        let slow = Pca9685Config {
            frequency_hz: 50,
            ..fast
        };
        assert!(bad(slow.clone(), std::slice::from_ref(&servo))
            .contains("channel 9 is used by both drive.pca9685.left.in2 and servo \"tilt\""));
        let off_chip = ServoConfig {
            channel: Some(16),
            ..servo
        };
        assert!(bad(slow, &[off_chip]).contains("not on the chip"));
        let too_fast = Pca9685Config {
            frequency_hz: 2000,
            ..Pca9685Config::default()
        };
        assert!(bad(too_fast, &[]).contains("24..=1600"));
    }
}
