//! Encode cost of the one shared encode: openh264 on the test pattern at
//! 640x480 and 1280x720, per frame. `cargo bench --bench encode`
use std::time::{Duration, Instant};

use telepi::media::encoder::openh264::OpenH264Encoder;
use telepi::media::source::pattern::TestPattern;
use telepi::media::{Frame, VideoEncoder};

const FRAMES: u64 = 300;

/// Sensor-like noise (±8 on luma) so the encoder works as hard as on a real camera;
/// the bare pattern compresses unrealistically well.
fn add_noise(frame: &mut Frame, seed: &mut u32) {
    let luma = (frame.width * frame.height) as usize;
    for y in &mut frame.data[..luma] {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 17;
        *seed ^= *seed << 5;
        *y = y.saturating_add((*seed & 15) as u8).saturating_sub(8);
    }
}

fn main() {
    for (w, h, bitrate, noisy) in [
        (640, 480, 1_500_000, false),
        (640, 480, 1_500_000, true),
        (1280, 720, 3_000_000, false),
        (1280, 720, 3_000_000, true),
    ] {
        let pattern = TestPattern::new(w, h, 30).unwrap();
        let mut encoder = OpenH264Encoder::new(w, h, 30, bitrate).unwrap();
        let mut frame = Frame::black_i420(w, h);
        let (mut times, mut bytes, mut seed) = (Vec::new(), 0usize, 0x9e37_79b9u32);
        for n in 0..FRAMES {
            // Same content as the live source, without its real-time pacing.
            pattern.draw(n, 1_700_000_000_000 + n * 33, &mut frame);
            if noisy {
                add_noise(&mut frame, &mut seed);
            }
            let start = Instant::now();
            let au = encoder.encode(&frame, n % 120 == 0).unwrap();
            times.push(start.elapsed());
            bytes += au.map_or(0, |a| a.len());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        println!(
            "openh264 {w}x{h} {:<9}: mean {:.2} ms/frame, p50 {:.2} ms, p99 {:.2} ms ({:.0}% of one core at 30 fps), {:.0} kbit/s",
            if noisy { "+ noise" } else { "pattern" },
            ms(mean),
            ms(times[times.len() / 2]),
            ms(times[times.len() * 99 / 100]),
            ms(mean) * 30.0 / 10.0,
            bytes as f64 * 8.0 / (FRAMES as f64 / 30.0) / 1e3
        );
    }
}
