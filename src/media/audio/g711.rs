//! G.711 μ-law (PCMU): 8 kHz telephone audio every browser decodes, in a
//! dozen lines instead of a codec library.

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

pub fn encode(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let exponent = (7 - (s as u16).leading_zeros().saturating_sub(1).min(7)) as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

pub fn decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_points() {
        // Reference values of ITU-T G.711 μ-law.
        assert_eq!(encode(0), 0xff);
        assert_eq!(encode(-1), 0x7f);
        assert_eq!(encode(32767), 0x80);
        assert_eq!(encode(-32768), 0x00);
        assert_eq!(decode(0xff), 0);
        assert_eq!(decode(0x80), 32124);
        assert_eq!(decode(0x00), -32124);
    }

    #[test]
    fn round_trip_error_stays_within_the_segment_step() {
        for s in (-32768i32..=32767).step_by(7) {
            let s = s as i16;
            let back = i32::from(decode(encode(s)));
            let err = (back - i32::from(s)).abs();
            // μ-law's step grows with the magnitude: about 1/16 of it at most.
            let allowed = (i32::from(s).abs() / 16).max(8) + 132;
            assert!(err <= allowed, "{s} -> {back} (err {err})");
        }
    }
}
