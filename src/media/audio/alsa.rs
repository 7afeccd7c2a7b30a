//! ALSA capture (the robot's microphone) and playback (its speaker), 8 kHz
//! mono S16, one 20 ms period at a time; blocking, on the audio threads.

use std::ffi::{c_char, c_int, CStr};
use std::io;
use std::sync::Once;
use std::time::Instant;

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

use super::{AudioSink, AudioSource, CHUNK, SAMPLE_RATE};

fn open(device: &str, direction: Direction) -> io::Result<PCM> {
    static QUIET: Once = Once::new();
    QUIET.call_once(quiet_alsa_lib);
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

/// alsa-lib prints its own errors to stderr (`ALSA lib ... cannot find card
/// '0'`, sixteen lines at every start on a robot without a sound card);
/// ours say the same in one line ("no microphone ..."), so its printer
/// goes to the debug log instead.
fn quiet_alsa_lib() {
    // The handler's C type is variadic, which stable Rust cannot define. A
    // handler that takes only the fixed arguments and ignores the rest is
    // called correctly on every ABI telepi builds for (x86-64, AArch64,
    // ARM EABI): fixed integer and pointer arguments sit in the same
    // registers whether or not the call is variadic.
    type Handler = unsafe extern "C" fn(
        file: *const c_char,
        line: c_int,
        function: *const c_char,
        err: c_int,
        format: *const c_char,
    );
    extern "C" {
        fn snd_lib_error_set_handler(handler: Option<Handler>) -> c_int;
    }
    unsafe extern "C" fn to_debug_log(
        _file: *const c_char,
        _line: c_int,
        function: *const c_char,
        err: c_int,
        format: *const c_char,
    ) {
        let text = |p: *const c_char| {
            // SAFETY: alsa-lib passes NUL-terminated strings (or null).
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy())
        };
        tracing::debug!(
            "alsa-lib {}: {} (error {err})",
            text(function).unwrap_or_default(),
            text(format).unwrap_or_default()
        );
    }
    // SAFETY: see above; the handler lives for the whole program.
    unsafe { snd_lib_error_set_handler(Some(to_debug_log)) };
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
