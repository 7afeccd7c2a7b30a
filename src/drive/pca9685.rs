//! NXP's PCA9685: 16 PWM channels, 12 bits each, one frequency for all, over
//! I2C. Register layout and start-up sequence from the datasheet (rev. 4,
//! sections 7.3 and 7.3.1.1). [`super::hat`] puts motors and servos on it.

use std::time::Duration;

use rppal::i2c::I2c;

const MODE1: u8 = 0x00;
const MODE2: u8 = 0x01;
const LED0_ON_L: u8 = 0x06;
const ALL_LED_ON_L: u8 = 0xFA;
const PRE_SCALE: u8 = 0xFE;

// MODE1 bits.
const RESTART: u8 = 0x80;
/// Register auto-increment: one transfer writes a channel's four registers.
const AI: u8 = 0x20;
const SLEEP: u8 = 0x10;
/// MODE2: totem-pole outputs (the HATs wire the channels straight to logic inputs).
const OUTDRV: u8 = 0x04;
/// Bit 4 of LEDn_ON_H / LEDn_OFF_H: the output fully on / fully off.
const FULL: u8 = 0x10;

const OSCILLATOR_HZ: f64 = 25_000_000.0;
const STEPS: u32 = 4096;
/// The datasheet's prescale limits: 3 (~1526 Hz) to 255 (~24 Hz).
const PRESCALE_RANGE: std::ops::RangeInclusive<u8> = 3..=255;
/// What `frequency_hz` may ask for: 1600 is what Adafruit's library asks (and gets ~1526).
pub const FREQUENCY_LIMITS_HZ: std::ops::RangeInclusive<u32> = 24..=1600;
/// The oscillator needs 500 µs after leaving sleep before RESTART.
const OSCILLATOR_START: Duration = Duration::from_micros(500);
pub const CHANNELS: u8 = 16;

/// The prescale register value for a PWM frequency: round(25 MHz / (4096 × f)) − 1.
pub fn prescale(frequency_hz: u32) -> u8 {
    let value = (OSCILLATOR_HZ / (f64::from(STEPS) * f64::from(frequency_hz))).round() - 1.0;
    value.clamp(
        f64::from(*PRESCALE_RANGE.start()),
        f64::from(*PRESCALE_RANGE.end()),
    ) as u8
}

/// The frequency a prescale value really gives.
pub fn frequency_hz(prescale: u8) -> f64 {
    OSCILLATOR_HZ / (f64::from(STEPS) * (f64::from(prescale) + 1.0))
}

/// What one channel outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Off,
    On,
    /// High for this many of the 4096 steps of each period, 1..=4095.
    High(u16),
}

impl Output {
    /// A duty cycle in [0, 1]; the ends use the full-off/full-on bits, so no glitch.
    pub fn duty(duty: f32) -> Output {
        let steps = (duty.clamp(0.0, 1.0) * STEPS as f32).round() as u16;
        match steps {
            0 => Output::Off,
            4096.. => Output::On,
            n => Output::High(n),
        }
    }

    /// A servo pulse at the chip's prescale: 25 MHz / (prescale + 1) steps per second.
    pub fn pulse(pulse_us: u32, prescale: u8) -> Output {
        let steps =
            (f64::from(pulse_us) * OSCILLATOR_HZ / 1e6 / (f64::from(prescale) + 1.0)).round();
        Output::High(steps.clamp(1.0, 4095.0) as u16)
    }

    /// LEDn_ON_L, LEDn_ON_H, LEDn_OFF_L, LEDn_OFF_H: on at step 0, off at step n.
    pub fn registers(self) -> [u8; 4] {
        match self {
            Output::Off => [0, 0, 0, FULL],
            Output::On => [0, FULL, 0, 0],
            Output::High(n) => {
                let [lo, hi] = n.to_le_bytes();
                [0, 0, lo, hi]
            }
        }
    }
}

/// Register writes to one chip. The real bus is rppal's I2C; tests record.
pub trait RegisterBus: Send {
    /// Writes `values` to consecutive registers from `register` in one
    /// transfer (MODE1's auto-increment is on).
    fn write(&mut self, register: u8, values: &[u8]) -> Result<(), String>;
}

/// `/dev/i2c-N` with the chip's address set.
pub struct I2cBus(pub I2c);

impl RegisterBus for I2cBus {
    fn write(&mut self, register: u8, values: &[u8]) -> Result<(), String> {
        // SMBus byte / I2C-block transfers rather than a raw write: they are
        // the same bytes on the wire, and SMBus-only adapters take them too.
        let written = match values {
            [value] => self.0.smbus_write_byte(register, *value),
            _ => self.0.block_write(register, values),
        };
        written.map_err(|e| e.to_string())
    }
}

/// One PCA9685: start-up, channel outputs (unchanged ones are not rewritten).
pub struct Pca9685<B: RegisterBus> {
    bus: B,
    prescale: u8,
    outputs: [Option<Output>; CHANNELS as usize],
}

impl<B: RegisterBus> Pca9685<B> {
    /// Every output off, then the datasheet's sequence: sleep, set the
    /// prescaler (writable only asleep), wake, wait for the oscillator, restart.
    pub fn start(mut bus: B, frequency_hz: u32) -> Result<Pca9685<B>, String> {
        let prescale = prescale(frequency_hz);
        bus.write(ALL_LED_ON_L, &Output::Off.registers())?;
        bus.write(MODE2, &[OUTDRV])?;
        bus.write(MODE1, &[AI | SLEEP])?;
        bus.write(PRE_SCALE, &[prescale])?;
        bus.write(MODE1, &[AI])?;
        std::thread::sleep(OSCILLATOR_START);
        bus.write(MODE1, &[RESTART | AI])?;
        Ok(Pca9685 {
            bus,
            prescale,
            outputs: [Some(Output::Off); CHANNELS as usize],
        })
    }

    pub fn prescale(&self) -> u8 {
        self.prescale
    }

    pub fn set(&mut self, channel: u8, output: Output) -> Result<(), String> {
        let slot = &mut self.outputs[usize::from(channel)];
        if *slot == Some(output) {
            return Ok(());
        }
        // Unknown after a failed write: rewritten next time whatever it is.
        *slot = None;
        self.bus
            .write(LED0_ON_L + 4 * channel, &output.registers())?;
        *slot = Some(output);
        Ok(())
    }

    /// ALL_LED full off: one transfer stops every channel.
    pub fn all_off(&mut self) -> Result<(), String> {
        self.outputs = [None; CHANNELS as usize];
        self.bus.write(ALL_LED_ON_L, &Output::Off.registers())?;
        self.outputs = [Some(Output::Off); CHANNELS as usize];
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod fake {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use super::RegisterBus;

    /// The first register written, and the bytes.
    pub(crate) type Transfer = (u8, Vec<u8>);

    /// Records every transfer as (first register, bytes); fails while `fail` is set.
    #[derive(Clone, Default)]
    pub(crate) struct FakeBus {
        pub(crate) writes: Arc<Mutex<Vec<Transfer>>>,
        pub(crate) fail: Arc<AtomicBool>,
    }

    impl FakeBus {
        pub(crate) fn take(&self) -> Vec<Transfer> {
            std::mem::take(&mut self.writes.lock().unwrap())
        }
    }

    impl RegisterBus for FakeBus {
        fn write(&mut self, register: u8, values: &[u8]) -> Result<(), String> {
            if self.fail.load(Ordering::SeqCst) {
                return Err("Remote I/O error".into());
            }
            self.writes
                .lock()
                .unwrap()
                .push((register, values.to_vec()));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeBus;
    use super::*;

    #[test]
    fn prescale_follows_the_datasheet_formula() {
        assert_eq!(prescale(50), 121);
        assert_eq!(prescale(1600), 3, "1600 Hz rounds to the fastest setting");
        assert_eq!(prescale(200), 30, "the datasheet's own example");
        assert_eq!(prescale(24), 253);
        assert_eq!(prescale(10), 255, "clamped");
        assert!((frequency_hz(121) - 50.03).abs() < 0.01);
        assert!((frequency_hz(3) - 1525.9).abs() < 0.1);
    }

    #[test]
    fn start_turns_everything_off_then_sleeps_sets_the_prescaler_and_restarts() {
        let bus = FakeBus::default();
        Pca9685::start(bus.clone(), 1600).unwrap();
        assert_eq!(
            bus.take(),
            [
                (0xFA, vec![0x00, 0x00, 0x00, 0x10]),
                (0x01, vec![0x04]),
                (0x00, vec![0x30]),
                (0xFE, vec![3]),
                (0x00, vec![0x20]),
                (0x00, vec![0xA0]),
            ]
        );
    }

    #[test]
    fn outputs_use_the_full_on_and_full_off_bits_at_the_ends() {
        assert_eq!(Output::duty(0.0).registers(), [0, 0, 0, 0x10]);
        assert_eq!(Output::duty(-1.0), Output::Off);
        assert_eq!(Output::duty(1.0).registers(), [0, 0x10, 0, 0]);
        assert_eq!(Output::duty(0.5).registers(), [0, 0, 0x00, 0x08]);
        assert_eq!(Output::duty(0.25), Output::High(1024));
        assert_eq!(Output::duty(0.9999), Output::On);
        // At 50 Hz (prescale 121) one step is 4.88 µs.
        assert_eq!(Output::pulse(1500, 121), Output::High(307));
        assert_eq!(Output::pulse(1000, 121), Output::High(205));
        assert_eq!(Output::pulse(2000, 121).registers(), [0, 0, 0x9A, 0x01]);
    }
}
