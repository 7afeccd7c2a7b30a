//! The synthetic microphone: a short 880 Hz beep at the top of every second,
//! silence in between. Audible, recognisable, and the beep's start marks a
//! second boundary for A/V sync checks.

use std::f32::consts::TAU;
use std::io;
use std::time::{Duration, Instant};

use super::{AudioSource, CHUNK, SAMPLE_RATE};
use crate::media::pace::Pacer;

const BEEP_HZ: f32 = 880.0;
const BEEP_CHUNKS: u64 = 5; // 100 ms
const AMPLITUDE: f32 = 8000.0;

pub struct Tone {
    chunk_no: u64,
    pacer: Pacer,
}

impl Default for Tone {
    fn default() -> Self {
        Tone {
            chunk_no: 0,
            pacer: Pacer::new(Duration::from_secs(CHUNK as u64) / SAMPLE_RATE),
        }
    }
}

impl Tone {
    /// Fills `out` with chunk number `n` of the signal.
    pub fn render(n: u64, out: &mut [i16; CHUNK]) {
        let chunks_per_second = u64::from(SAMPLE_RATE) / CHUNK as u64;
        let beeping = n % chunks_per_second < BEEP_CHUNKS;
        for (i, sample) in out.iter_mut().enumerate() {
            *sample = if beeping {
                let t = (n * CHUNK as u64 + i as u64) as f32 / SAMPLE_RATE as f32;
                (AMPLITUDE * (TAU * BEEP_HZ * t).sin()) as i16
            } else {
                0
            };
        }
    }
}

impl AudioSource for Tone {
    fn name(&self) -> String {
        "tone".into()
    }

    fn read(&mut self, out: &mut [i16; CHUNK]) -> io::Result<Instant> {
        let due = self.pacer.wait();
        Tone::render(self.chunk_no, out);
        self.chunk_no += 1;
        Ok(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beeps_for_the_first_100_ms_of_each_second() {
        let mut chunk = [0i16; CHUNK];
        Tone::render(0, &mut chunk);
        assert!(chunk.iter().any(|s| s.abs() > 7000));
        Tone::render(4, &mut chunk);
        assert!(chunk.iter().any(|s| s.abs() > 7000));
        Tone::render(5, &mut chunk);
        assert!(chunk.iter().all(|s| *s == 0));
        Tone::render(50, &mut chunk);
        assert!(
            chunk.iter().any(|s| s.abs() > 7000),
            "next second beeps again"
        );
    }
}
