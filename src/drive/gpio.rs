//! Real pins through rppal: H-bridge motor drivers and hobby servos.
//!
//! A PWM output uses the hardware peripheral when the pin has a channel
//! (GPIO12/13/18/19), the channel is still free, and the pin is in an
//! alternate function (i.e. a `pwm-2chan` overlay routed the channel there);
//! otherwise it falls back to rppal's software PWM. Everything else is a
//! plain output driven low at start and on drop.

use std::path::Path;
use std::time::Duration;

use rppal::gpio::{Level, Mode, OutputPin, Pin};
use rppal::pwm::{Channel, Polarity, Pwm};
use rppal::system::{DeviceInfo, SoC};

use super::bridge::{bridge, Bridge};
use super::{Backend, DriveConfig, DriveError, Driver, MotorPins, Motors, MAX_SERVOS};

/// rppal's software PWM busy-waits up to 0.2 ms per edge, so a faster
/// software PWM costs a lot of CPU; 100 Hz is plenty for a DC motor.
const SOFT_PWM_HZ: f64 = 100.0;
/// Hobby servos expect one pulse every 20 ms.
const SERVO_HZ: f64 = 50.0;
const SERVO_PERIOD_US: f32 = 20_000.0;
/// Raspberry Pi OS exposes GPIO as `/dev/gpiomem` (Pi ≤ 4) or `/dev/gpiomem0` (Pi 5).
const GPIOMEM: [&str; 2] = ["/dev/gpiomem", "/dev/gpiomem0"];

/// How rppal will reach the GPIO registers on this machine, if it is a Pi.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Access {
    /// Raspberry Pi OS: no root needed (group `gpio`).
    Gpiomem,
    /// Debian/Ubuntu Pi kernels have no gpiomem driver: rppal maps `/dev/mem`,
    /// which needs root and, with `CONFIG_IO_STRICT_DEVMEM`, `iomem=relaxed`.
    DevMem,
}

/// `None` when this is not a Raspberry Pi (rppal recognises the model from
/// the device tree), so `backend = "auto"` picks the simulator.
pub fn access() -> Option<Access> {
    if GPIOMEM.iter().any(|p| Path::new(p).exists()) {
        Some(Access::Gpiomem)
    } else if DeviceInfo::new().is_ok() {
        Some(Access::DevMem)
    } else {
        None
    }
}

/// The hardware PWM channel a BCM pin can carry. The Pi 5 has four
/// channels; older models two, each selectable on one of two pins.
pub fn pwm_channel(pi5: bool, pin: u8) -> Option<Channel> {
    match (pin, pi5) {
        (12, _) => Some(Channel::Pwm0),
        (13, _) => Some(Channel::Pwm1),
        (18, false) => Some(Channel::Pwm0),
        (19, false) => Some(Channel::Pwm1),
        (18, true) => Some(Channel::Pwm2),
        (19, true) => Some(Channel::Pwm3),
        _ => None,
    }
}

/// A servo pulse as a duty cycle of the 50 Hz period.
pub fn servo_duty(pulse_us: u32) -> f32 {
    (pulse_us as f32 / SERVO_PERIOD_US).clamp(0.0, 1.0)
}

enum Output {
    Hardware(Pwm),
    Software { pin: OutputPin, period: Duration },
}

impl Output {
    fn set_duty(&mut self, duty: f32) {
        let duty = duty.clamp(0.0, 1.0);
        let result = match self {
            Output::Hardware(pwm) => pwm
                .set_duty_cycle(f64::from(duty))
                .map_err(|e| e.to_string()),
            // Fully off or on needs no PWM thread (and idle motors then cost no CPU).
            Output::Software { pin, .. } if duty == 0.0 || duty == 1.0 => {
                let cleared = pin.clear_pwm();
                pin.write(if duty == 1.0 { Level::High } else { Level::Low });
                cleared.map_err(|e| e.to_string())
            }
            Output::Software { pin, period } => pin
                .set_pwm(*period, period.mul_f32(duty))
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = result {
            tracing::warn!("gpio: setting a duty cycle failed: {e}");
        }
    }

    fn off(&mut self) {
        self.set_duty(0.0);
        if let Output::Hardware(pwm) = self {
            let _ = pwm.disable();
        }
    }
}

struct Motor {
    in1: Output,
    in2: Output,
    enable: Option<Output>,
}

impl Motor {
    fn set(&mut self, b: Bridge) {
        self.in1.set_duty(b.in1);
        self.in2.set_duty(b.in2);
        if let (Some(en), Some(duty)) = (&mut self.enable, b.enable) {
            en.set_duty(duty);
        }
    }

    fn off(&mut self) {
        self.in1.off();
        self.in2.off();
        if let Some(en) = &mut self.enable {
            en.off();
        }
    }
}

pub struct Gpio {
    driver: Driver,
    left: Motor,
    right: Motor,
    stby: Option<Output>,
    servos: heapless::Vec<Output, MAX_SERVOS>,
}

impl Gpio {
    /// Claims every configured pin; motors idle, servos without pulses until set.
    pub fn open(config: &DriveConfig) -> Result<Gpio, DriveError> {
        config.validate().map_err(DriveError::Config)?;
        let Some(access) = access() else {
            return Err(DriveError::Gpio(
                "this is not a Raspberry Pi (no /dev/gpiomem and no Pi model in the device \
                 tree); set [drive] backend = \"sim\" to run without motors"
                    .into(),
            ));
        };
        let chip = rppal::gpio::Gpio::new().map_err(|e| {
            DriveError::Gpio(match access {
                Access::Gpiomem => format!("opening GPIO through /dev/gpiomem: {e}"),
                Access::DevMem => format!(
                    "opening GPIO through /dev/mem (this kernel has no /dev/gpiomem): {e}; \
                     it needs root, and iomem=relaxed on the kernel command line"
                ),
            })
        })?;
        tracing::info!(
            "gpio: registers through {}",
            match access {
                Access::Gpiomem => "/dev/gpiomem",
                Access::DevMem => "/dev/mem (no /dev/gpiomem on this kernel)",
            }
        );
        let pi5 = DeviceInfo::new().is_ok_and(|d| d.soc() == SoC::Bcm2712);
        let mut pins = Pins {
            chip,
            pi5,
            claimed: heapless::Vec::new(),
        };
        let motor_hz = f64::from(config.pwm_hz);
        let mut motor = |p: &MotorPins| -> Result<Motor, DriveError> {
            Ok(match p.pwm {
                Some(en) => Motor {
                    in1: pins.digital(p.in1)?,
                    in2: pins.digital(p.in2)?,
                    enable: Some(pins.pwm(en, motor_hz, SOFT_PWM_HZ)?),
                },
                None => Motor {
                    in1: pins.pwm(p.in1, motor_hz, SOFT_PWM_HZ)?,
                    in2: pins.pwm(p.in2, motor_hz, SOFT_PWM_HZ)?,
                    enable: None,
                },
            })
        };
        let (left, right) = (motor(&config.left)?, motor(&config.right)?);
        let mut servos = heapless::Vec::new();
        // validate() gives every servo a pin on this backend.
        for pin in config.servos.iter().filter_map(|s| s.pin) {
            let out = pins.pwm(pin, SERVO_HZ, SERVO_HZ)?;
            // validate() allows at most MAX_SERVOS.
            assert!(servos.push(out).is_ok(), "validated servo count");
        }
        let mut stby = config.stby.map(|p| pins.digital(p)).transpose()?;
        if let Some(stby) = &mut stby {
            stby.set_duty(1.0);
        }
        Ok(Gpio {
            driver: config.driver,
            left,
            right,
            stby,
            servos,
        })
    }
}

impl Backend for Gpio {
    fn name(&self) -> &'static str {
        "gpio"
    }

    fn set_motors(&mut self, motors: Motors) {
        self.left.set(bridge(self.driver, motors.left));
        self.right.set(bridge(self.driver, motors.right));
    }

    fn set_servo(&mut self, index: usize, pulse_us: u32) {
        if let Some(out) = self.servos.get_mut(index) {
            out.set_duty(servo_duty(pulse_us));
        }
    }
}

impl Drop for Gpio {
    fn drop(&mut self) {
        self.left.off();
        self.right.off();
        self.servos.iter_mut().for_each(Output::off);
        if let Some(stby) = &mut self.stby {
            stby.off();
        }
    }
}

struct Pins {
    chip: rppal::gpio::Gpio,
    pi5: bool,
    claimed: heapless::Vec<Channel, 4>,
}

impl Pins {
    fn get(&self, pin: u8) -> Result<Pin, DriveError> {
        self.chip
            .get(pin)
            .map_err(|e| DriveError::Gpio(format!("GPIO{pin}: {e}")))
    }

    /// A plain output (software PWM at most), driven low now and left low
    /// after exit rather than floating back to an input the driver could read as high.
    fn software(&self, pin: u8, hz: f64) -> Result<Output, DriveError> {
        let mut out = self.get(pin)?.into_output_low();
        out.set_reset_on_drop(false);
        Ok(Output::Software {
            pin: out,
            period: Duration::from_secs_f64(1.0 / hz),
        })
    }

    fn digital(&self, pin: u8) -> Result<Output, DriveError> {
        self.software(pin, SOFT_PWM_HZ)
    }

    fn pwm(&mut self, pin: u8, hardware_hz: f64, software_hz: f64) -> Result<Output, DriveError> {
        // Only a look at the pin's function: the `Pin` must be released before
        // the software fallback takes it again (rppal refuses a pin in use).
        let routed = !matches!(
            self.get(pin)?.mode(),
            Mode::Input | Mode::Output | Mode::Null
        );
        let channel = pwm_channel(self.pi5, pin).filter(|c| routed && !self.claimed.contains(c));
        if let Some(channel) = channel {
            match Pwm::with_frequency(channel, hardware_hz, 0.0, Polarity::Normal, true) {
                Ok(pwm) => {
                    // At most four channels exist, so this cannot overflow.
                    let _ = self.claimed.push(channel);
                    tracing::info!("GPIO{pin}: hardware PWM {channel} at {hardware_hz} Hz");
                    return Ok(Output::Hardware(pwm));
                }
                Err(e) => tracing::warn!("GPIO{pin}: hardware PWM {channel} unavailable ({e})"),
            }
        }
        tracing::info!("GPIO{pin}: software PWM at {software_hz} Hz");
        self.software(pin, software_hz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_channels_per_model() {
        assert_eq!(pwm_channel(false, 12), Some(Channel::Pwm0));
        assert_eq!(pwm_channel(false, 18), Some(Channel::Pwm0));
        assert_eq!(pwm_channel(false, 19), Some(Channel::Pwm1));
        assert_eq!(pwm_channel(true, 18), Some(Channel::Pwm2));
        assert_eq!(pwm_channel(true, 19), Some(Channel::Pwm3));
        assert_eq!(pwm_channel(true, 5), None);
    }

    #[test]
    fn servo_pulse_is_a_fraction_of_20ms() {
        assert_eq!(servo_duty(1500), 0.075);
        assert_eq!(servo_duty(1000), 0.05);
        assert_eq!(servo_duty(2000), 0.1);
    }

    #[test]
    fn opening_without_gpio_fails_clearly() {
        if access().is_some() {
            return; // a real Pi: don't grab its pins from a unit test
        }
        let Err(e) = Gpio::open(&DriveConfig::default()) else {
            panic!("opened GPIO on a machine that is not a Pi")
        };
        assert!(e.to_string().contains("not a Raspberry Pi"), "{e}");
    }
}
