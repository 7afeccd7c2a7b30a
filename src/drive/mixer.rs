//! Differential-drive maths: normalised cmd_vel to left/right motor values,
//! and the acceleration ramp. Pure functions, no state.

use super::{DriveConfig, Motors};

/// The mixer's share of [`DriveConfig`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mixer {
    pub max_speed: f32,
    pub trim: f32,
    pub deadband: f32,
    pub invert_left: bool,
    pub invert_right: bool,
}

impl Mixer {
    pub fn new(config: &DriveConfig) -> Mixer {
        Mixer {
            max_speed: config.max_speed,
            trim: config.trim,
            deadband: config.deadband,
            invert_left: config.invert_left,
            invert_right: config.invert_right,
        }
    }

    /// `linear` forward, `angular` counter-clockwise (REP 103: positive turns
    /// left), both in [-1, 1] (clamped). Non-finite input gives zero.
    pub fn mix(&self, linear: f32, angular: f32) -> Motors {
        let linear = self.deadband(linear);
        let angular = self.deadband(angular);
        let (mut left, mut right) = (linear - angular, linear + angular);
        // Scale both down together so a full-speed turn keeps its curvature.
        let over = left.abs().max(right.abs()).max(1.0);
        left /= over;
        right /= over;
        // Trim slows the stronger side instead of speeding the weaker one past 1.
        left *= 1.0 - (-self.trim).max(0.0);
        right *= 1.0 - self.trim.max(0.0);
        let sign = |invert: bool| if invert { -1.0 } else { 1.0 };
        Motors {
            left: left * self.max_speed * sign(self.invert_left),
            right: right * self.max_speed * sign(self.invert_right),
        }
    }

    /// Zero inside the deadband, then rescaled so the output still starts at 0
    /// and reaches 1 (no jump at the deadband's edge).
    fn deadband(&self, x: f32) -> f32 {
        if !x.is_finite() {
            return 0.0;
        }
        let x = x.clamp(-1.0, 1.0);
        let excess = x.abs() - self.deadband;
        if excess <= 0.0 {
            0.0
        } else {
            x.signum() * excess / (1.0 - self.deadband)
        }
    }
}

/// Moves `from` towards `to` by at most `max_step` per motor (infinite: no
/// limit). Lands exactly on `to`, so callers can compare for "done".
pub fn ramp(from: Motors, to: Motors, max_step: f32) -> Motors {
    let step = |a: f32, b: f32| {
        if (b - a).abs() <= max_step {
            b
        } else {
            a + max_step.copysign(b - a)
        }
    };
    Motors {
        left: step(from.left, to.left),
        right: step(from.right, to.right),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Mixer = Mixer {
        max_speed: 1.0,
        trim: 0.0,
        deadband: 0.0,
        invert_left: false,
        invert_right: false,
    };

    fn close(a: Motors, left: f32, right: f32) -> bool {
        (a.left - left).abs() < 1e-6 && (a.right - right).abs() < 1e-6
    }

    #[track_caller]
    fn assert_mix(mixer: Mixer, linear: f32, angular: f32, left: f32, right: f32) {
        let got = mixer.mix(linear, angular);
        assert!(
            close(got, left, right),
            "mix({linear}, {angular}) = {got:?}, want ({left}, {right})"
        );
    }

    #[test]
    fn straight_spin_and_arc() {
        assert_mix(PLAIN, 0.5, 0.0, 0.5, 0.5);
        assert_mix(PLAIN, -1.0, 0.0, -1.0, -1.0);
        assert_mix(PLAIN, 0.0, 1.0, -1.0, 1.0); // positive angular turns left
        assert_mix(PLAIN, 0.5, 0.25, 0.25, 0.75);
    }

    #[test]
    fn saturation_keeps_the_ratio_and_input_is_clamped() {
        assert_mix(PLAIN, 1.0, 1.0, 0.0, 1.0);
        assert_mix(PLAIN, 1.0, 0.5, 1.0 / 3.0, 1.0);
        assert_mix(PLAIN, 5.0, 0.0, 1.0, 1.0);
        assert_mix(PLAIN, -3.0, -3.0, 0.0, -1.0);
    }

    #[test]
    fn non_finite_input_is_zero() {
        assert_mix(PLAIN, f32::NAN, 0.0, 0.0, 0.0);
        assert_mix(PLAIN, f32::INFINITY, f32::NEG_INFINITY, 0.0, 0.0);
    }

    #[test]
    fn max_speed_scales_both_sides() {
        let m = Mixer {
            max_speed: 0.5,
            ..PLAIN
        };
        assert_mix(m, 1.0, 0.0, 0.5, 0.5);
        assert_mix(m, 0.0, -1.0, 0.5, -0.5);
    }

    #[test]
    fn trim_slows_one_side_only() {
        assert_mix(Mixer { trim: 0.1, ..PLAIN }, 1.0, 0.0, 1.0, 0.9);
        assert_mix(
            Mixer {
                trim: -0.2,
                ..PLAIN
            },
            -1.0,
            0.0,
            -0.8,
            -1.0,
        );
    }

    #[test]
    fn deadband_zeroes_small_inputs_and_rescales_the_rest() {
        let m = Mixer {
            deadband: 0.1,
            ..PLAIN
        };
        assert_mix(m, 0.09, -0.1, 0.0, 0.0);
        assert_mix(m, 0.55, 0.0, 0.5, 0.5);
        assert_mix(m, 1.0, 0.0, 1.0, 1.0);
        assert_mix(m, 0.0, -0.55, 0.5, -0.5);
    }

    #[test]
    fn inversion_flips_one_side() {
        assert_mix(
            Mixer {
                invert_left: true,
                ..PLAIN
            },
            0.5,
            0.0,
            -0.5,
            0.5,
        );
        assert_mix(
            Mixer {
                invert_right: true,
                ..PLAIN
            },
            0.5,
            0.0,
            0.5,
            -0.5,
        );
    }

    #[test]
    fn ramp_limits_each_side_and_no_limit_jumps() {
        let zero = Motors::default();
        let full = Motors {
            left: 1.0,
            right: -0.1,
        };
        assert!(close(ramp(zero, full, 0.25), 0.25, -0.1));
        assert!(close(ramp(full, zero, 0.25), 0.75, 0.0));
        assert_eq!(ramp(zero, full, 0.0), zero);
        assert_eq!(ramp(zero, full, f32::INFINITY), full);
        let odd = Motors {
            left: 0.7,
            right: -0.3,
        };
        assert_eq!(
            ramp(
                Motors {
                    left: 0.1,
                    right: 0.1
                },
                odd,
                1.0
            ),
            odd,
            "exact landing"
        );
    }
}
