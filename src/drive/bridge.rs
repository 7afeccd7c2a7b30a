//! The H-bridge between a motor and the Pi: which inputs a motor value
//! sets, per driver chip. Both the Pi's own pins (`gpio.rs`) and a PCA9685
//! motor HAT (`hat.rs`) drive such bridges.

use super::Driver;

/// What one motor's driver inputs must be for a motor value: duty cycles in
/// [0, 1] (the direction inputs of L298N/TB6612 are only ever 0 or 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bridge {
    pub in1: f32,
    pub in2: f32,
    /// ENA/PWMA duty; `None` for drivers without an enable pin.
    pub enable: Option<f32>,
}

/// Maps a motor value in [-1, 1] to driver inputs. Zero (and garbage) coasts:
/// every input low.
pub fn bridge(driver: Driver, value: f32) -> Bridge {
    let v = if value.is_finite() {
        value.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (fwd, rev) = (v.max(0.0), (-v).max(0.0));
    match driver {
        Driver::L298n | Driver::Tb6612 => Bridge {
            in1: if fwd > 0.0 { 1.0 } else { 0.0 },
            in2: if rev > 0.0 { 1.0 } else { 0.0 },
            enable: Some(v.abs()),
        },
        // PWM on the input for the wanted direction, the other low ("fast decay").
        Driver::Drv8833 => Bridge {
            in1: fwd,
            in2: rev,
            enable: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enable_drivers_set_direction_pins_and_pwm_the_enable() {
        for driver in [Driver::L298n, Driver::Tb6612] {
            assert_eq!(
                bridge(driver, 0.6),
                Bridge {
                    in1: 1.0,
                    in2: 0.0,
                    enable: Some(0.6)
                }
            );
            assert_eq!(
                bridge(driver, -0.25),
                Bridge {
                    in1: 0.0,
                    in2: 1.0,
                    enable: Some(0.25)
                }
            );
            assert_eq!(
                bridge(driver, 0.0),
                Bridge {
                    in1: 0.0,
                    in2: 0.0,
                    enable: Some(0.0)
                }
            );
            assert_eq!(
                bridge(driver, -9.0),
                Bridge {
                    in1: 0.0,
                    in2: 1.0,
                    enable: Some(1.0)
                }
            );
        }
    }

    #[test]
    fn drv8833_pwms_the_input_for_the_direction() {
        assert_eq!(
            bridge(Driver::Drv8833, 0.6),
            Bridge {
                in1: 0.6,
                in2: 0.0,
                enable: None
            }
        );
        assert_eq!(
            bridge(Driver::Drv8833, -0.3),
            Bridge {
                in1: 0.0,
                in2: 0.3,
                enable: None
            }
        );
        assert_eq!(
            bridge(Driver::Drv8833, f32::NAN),
            Bridge {
                in1: 0.0,
                in2: 0.0,
                enable: None
            }
        );
    }
}
