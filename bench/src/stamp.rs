//! The capture-time stamp of telepi's test pattern (src/media/source/pattern.rs):
//! the top 16 pixel rows hold 32 black/white cells, the capture time in ms
//! since the Unix epoch modulo 2^32, most significant bit first. The baseline
//! (bench/baseline/pattern.py) draws the same cells.

pub const STAMP_BITS: usize = 32;
pub const STAMP_HEIGHT: usize = 16;

/// Reads the stamp from a decoded luma plane with the given row stride.
/// Samples the centre of each cell in the middle row, like telepi's `read_stamp`.
pub fn read_stamp(luma: &[u8], width: usize, stride: usize) -> Option<u32> {
    let cell = width / STAMP_BITS;
    let row = STAMP_HEIGHT / 2;
    let line = luma.get(row * stride..row * stride + width)?;
    let mut value = 0u32;
    for bit in 0..STAMP_BITS {
        let centre = line[bit * cell + cell / 2];
        value = (value << 1) | u32::from(centre > 128);
    }
    Some(value)
}

/// Milliseconds from a stamp to a wall-clock time given in ns since the epoch
/// (both modulo 2^32 ms, so this works across the wrap).
pub fn latency_ms(stamp: u32, wall_ns: u128) -> f64 {
    let wall_ms = (wall_ns / 1_000_000) as u64;
    let frac = (wall_ns % 1_000_000) as f64 / 1e6;
    f64::from((wall_ms as u32).wrapping_sub(stamp) as i32) + frac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(stamp: u32, width: usize, stride: usize) -> Vec<u8> {
        let mut luma = vec![16u8; stride * 32];
        let cell = width / STAMP_BITS;
        for bit in 0..STAMP_BITS {
            if (stamp >> (31 - bit)) & 1 == 1 {
                for row in 0..STAMP_HEIGHT {
                    luma[row * stride + bit * cell..row * stride + (bit + 1) * cell].fill(235);
                }
            }
        }
        luma
    }

    #[test]
    fn reads_back_with_padding_stride() {
        let stamp = 0xdead_beef;
        assert_eq!(read_stamp(&draw(stamp, 640, 704), 640, 704), Some(stamp));
    }

    #[test]
    fn latency_across_the_wrap() {
        let stamp = u32::MAX - 4; // 5 ms before a wrap of the 32-bit ms counter
        let wall_ns = ((1u128 << 32) + 10) * 1_000_000 + 250_000;
        assert!((latency_ms(stamp, wall_ns) - 15.25).abs() < 1e-9);
    }
}
