//! ALSA capture (the robot's microphone) and playback (its speaker), 8 kHz
//! mono S16, one 20 ms period at a time; blocking, on the audio threads.

use std::io;
use std::time::Instant;

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

use super::{AudioSink, AudioSource, CHUNK, SAMPLE_RATE};

fn open(device: &str, direction: Direction) -> io::Result<PCM> {
    let what = if direction == Direction::Capture {
        "capture"
    } else {
        "playback"
    };
    let fail = |e: alsa::Error| io::Error::other(format!("ALSA {what} {device:?}: {e}"));
    let pcm = PCM::new(device, direction, false).map_err(fail)?;
    {
        let hw = HwParams::any(&pcm).map_err(fail)?;
        hw.set_channels(1).map_err(fail)?;
        hw.set_rate(SAMPLE_RATE, ValueOr::Nearest).map_err(fail)?;
        hw.set_format(Format::s16()).map_err(fail)?;
        hw.set_access(Access::RWInterleaved).map_err(fail)?;
        hw.set_period_size_near(CHUNK as alsa::pcm::Frames, ValueOr::Nearest)
            .map_err(fail)?;
        // A few periods of buffer: enough to ride out a scheduling hiccup,
        // short enough that the speaker isn't a second behind the operator.
        hw.set_buffer_size_near(4 * CHUNK as alsa::pcm::Frames)
            .map_err(fail)?;
        pcm.hw_params(&hw).map_err(fail)?;
    }
    let rate = pcm
        .hw_params_current()
        .and_then(|h| h.get_rate())
        .map_err(fail)?;
    if rate != SAMPLE_RATE {
        return Err(io::Error::other(format!(
            "ALSA {what} {device:?} runs at {rate} Hz, not {SAMPLE_RATE}: use a plug device (e.g. \"plughw:1\" or \"default\")"
        )));
    }
    Ok(pcm)
}

/// Retries once after an overrun/underrun (xrun), which ALSA reports as an error.
fn recover(pcm: &PCM, e: alsa::Error) -> io::Result<()> {
    pcm.try_recover(e, true)
        .map_err(|e| io::Error::other(format!("ALSA: {e}")))
}

pub struct AlsaCapture {
    device: String,
    pcm: PCM,
}

impl AlsaCapture {
    pub fn open(device: &str) -> io::Result<AlsaCapture> {
        Ok(AlsaCapture {
            device: device.into(),
            pcm: open(device, Direction::Capture)?,
        })
    }
}

impl AudioSource for AlsaCapture {
    fn name(&self) -> String {
        format!("alsa:{}", self.device)
    }

    fn read(&mut self, out: &mut [i16; CHUNK]) -> io::Result<Instant> {
        let io = self
            .pcm
            .io_i16()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut filled = 0;
        while filled < CHUNK {
            match io.readi(&mut out[filled..]) {
                Ok(n) => filled += n,
                Err(e) => recover(&self.pcm, e)?,
            }
        }
        // The period just completed: its first sample was taken 20 ms ago.
        Ok(Instant::now() - std::time::Duration::from_millis(20))
    }
}

pub struct AlsaPlayback {
    device: String,
    pcm: PCM,
}

impl AlsaPlayback {
    pub fn open(device: &str) -> io::Result<AlsaPlayback> {
        Ok(AlsaPlayback {
            device: device.into(),
            pcm: open(device, Direction::Playback)?,
        })
    }
}

impl AudioSink for AlsaPlayback {
    fn name(&self) -> String {
        format!("alsa:{}", self.device)
    }

    fn play(&mut self, samples: &[i16]) -> io::Result<()> {
        let io = self
            .pcm
            .io_i16()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut written = 0;
        while written < samples.len() {
            match io.writei(&samples[written..]) {
                Ok(n) => written += n,
                Err(e) => recover(&self.pcm, e)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_a_clear_error() {
        let err = AlsaCapture::open("hw:99").err().expect("no such card");
        assert!(err.to_string().contains("ALSA capture \"hw:99\""), "{err}");
        let err = AlsaPlayback::open("hw:99").err().expect("no such card");
        assert!(err.to_string().contains("playback"), "{err}");
    }
}
