//! Audio both ways, as G.711 μ-law (PCMU) at 8 kHz: the robot's microphone
//! to every peer (one encode, shared like video), and the operator's voice
//! to the robot's speaker. Capture and playback each run on their own thread.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;
use smol::channel::{Receiver, Sender};

use super::demand::Demand;

pub mod alsa;
pub mod g711;
pub mod tone;

pub const SAMPLE_RATE: u32 = 8000;
/// Samples per packet: 20 ms, the usual RTP audio packet.
pub const CHUNK: usize = 160;

/// A microphone (or something pretending to be one).
pub trait AudioSource: Send {
    fn name(&self) -> String;
    /// Blocks until the next 20 ms are captured; returns when they were.
    fn read(&mut self, out: &mut [i16; CHUNK]) -> io::Result<Instant>;
}

/// A speaker (or something pretending to be one).
pub trait AudioSink: Send {
    fn name(&self) -> String;
    fn play(&mut self, samples: &[i16]) -> io::Result<()>;
}

/// The synthetic speaker: plays nothing; the playback thread's level meter
/// still shows in `/api/status` what the operator said.
pub struct Meter;

impl AudioSink for Meter {
    fn name(&self) -> String {
        "meter".into()
    }

    fn play(&mut self, _samples: &[i16]) -> io::Result<()> {
        Ok(())
    }
}

/// One 20 ms μ-law packet, shared by every peer.
#[derive(Debug, Clone)]
pub struct EncodedAudio {
    pub data: Arc<[u8]>,
    /// 8 kHz RTP clock.
    pub rtp_time: u64,
    pub captured: Instant,
}

/// The `[audio]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioConfig {
    /// `auto` (ALSA `default` if it opens, else the tone), `tone`, `none`, or `alsa:DEVICE`.
    pub source: String,
    /// `auto` (ALSA `default` if it opens, else the meter), `meter`, `none`, or `alsa:DEVICE`.
    pub sink: String,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            source: "auto".into(),
            sink: "auto".into(),
        }
    }
}

#[derive(Debug, Default)]
pub struct AudioShared {
    pub source: Option<String>,
    pub sink: Option<String>,
    listeners: Demand,
    packets_sent: AtomicU64,
    talkback_packets: AtomicU64,
    talkback_peak: AtomicU32,
}

impl AudioShared {
    /// Number of peers that receive audio; zero parks the capture thread.
    pub fn set_listeners(&self, n: usize) {
        self.listeners.set(n);
    }

    pub fn status(&self) -> AudioStatus {
        AudioStatus {
            codec: "PCMU/8000",
            source: self.source.clone(),
            sink: self.sink.clone(),
            listeners: self.listeners.get(),
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            talkback_packets: self.talkback_packets.load(Ordering::Relaxed),
            talkback_peak: self.talkback_peak.load(Ordering::Relaxed),
        }
    }
}

/// The audio part of `/api/status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AudioStatus {
    pub codec: &'static str,
    pub source: Option<String>,
    pub sink: Option<String>,
    pub listeners: usize,
    /// Microphone packets encoded (each once, whatever the listeners).
    pub packets_sent: u64,
    pub talkback_packets: u64,
    pub talkback_peak: u32,
}

pub struct Audio {
    pub shared: Arc<AudioShared>,
    /// Microphone packets for the network loop.
    pub packets: Receiver<EncodedAudio>,
    /// The operator's μ-law packets for the speaker.
    pub talkback: Sender<Arc<[u8]>>,
    threads: Vec<JoinHandle<()>>,
}

impl Audio {
    pub fn spawn(source: Option<Box<dyn AudioSource>>, sink: Option<Box<dyn AudioSink>>) -> Audio {
        let shared = Arc::new(AudioShared {
            source: source.as_ref().map(|s| s.name()),
            sink: sink.as_ref().map(|s| s.name()),
            ..AudioShared::default()
        });
        let (packet_tx, packets) = smol::channel::bounded(4);
        let (talkback, talkback_rx) = smol::channel::bounded(8);
        let mut threads = Vec::new();
        if let Some(source) = source {
            let shared = shared.clone();
            threads.push(spawn("audio-in", move || {
                capture(source, &shared, &packet_tx)
            }));
        }
        if let Some(sink) = sink {
            let shared = shared.clone();
            threads.push(spawn("audio-out", move || {
                playback(sink, &shared, &talkback_rx)
            }));
        }
        Audio {
            shared,
            packets,
            talkback,
            threads,
        }
    }
}

impl Drop for Audio {
    fn drop(&mut self) {
        self.shared.listeners.shutdown();
        self.packets.close();
        self.talkback.close();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("spawning an audio thread")
}

fn capture(mut source: Box<dyn AudioSource>, shared: &AudioShared, tx: &Sender<EncodedAudio>) {
    let mut samples = [0i16; CHUNK];
    let mut rtp_time = 0u64;
    while shared.listeners.wait() {
        let captured = match source.read(&mut samples) {
            Ok(at) => at,
            Err(e) => {
                tracing::warn!("audio source {}: {e}", source.name());
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let data: Arc<[u8]> = samples.iter().map(|s| g711::encode(*s)).collect();
        rtp_time += CHUNK as u64;
        shared.packets_sent.fetch_add(1, Ordering::Relaxed);
        // A full queue means the loop is behind: drop, audio must stay live.
        if tx
            .try_send(EncodedAudio {
                data,
                rtp_time,
                captured,
            })
            .is_err()
            && tx.is_closed()
        {
            return;
        }
    }
}

fn playback(mut sink: Box<dyn AudioSink>, shared: &AudioShared, rx: &Receiver<Arc<[u8]>>) {
    let mut samples = Vec::with_capacity(CHUNK);
    while let Ok(packet) = rx.recv_blocking() {
        samples.clear();
        samples.extend(packet.iter().map(|b| g711::decode(*b)));
        let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        shared
            .talkback_peak
            .store(u32::from(peak), Ordering::Relaxed);
        shared.talkback_packets.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = sink.play(&samples) {
            tracing::warn!("audio sink {}: {e}", sink.name());
        }
    }
}

/// Why `[audio]` cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("audio source {0:?}: use auto, tone, none or alsa:DEVICE")]
    UnknownSource(String),
    #[error("audio sink {0:?}: use auto, meter, none or alsa:DEVICE")]
    UnknownSink(String),
    /// The ALSA device named (its error names it).
    #[error("{0}")]
    Alsa(std::io::Error),
}

/// Opens what `[audio]` asks for; `auto` falls back to the synthetic ones.
pub fn open(config: &AudioConfig) -> Result<Audio, AudioError> {
    let source: Option<Box<dyn AudioSource>> = match config.source.as_str() {
        "none" => None,
        "tone" => Some(Box::new(tone::Tone::default())),
        "auto" => Some(match alsa::AlsaCapture::open("default") {
            Ok(mic) => Box::new(mic),
            Err(e) => {
                tracing::info!("no microphone ({e}): sending the test tone");
                Box::new(tone::Tone::default())
            }
        }),
        other => match other.strip_prefix("alsa:") {
            Some(device) => Some(Box::new(
                alsa::AlsaCapture::open(device).map_err(AudioError::Alsa)?,
            )),
            None => return Err(AudioError::UnknownSource(other.into())),
        },
    };
    let sink: Option<Box<dyn AudioSink>> = match config.sink.as_str() {
        "none" => None,
        "meter" => Some(Box::new(Meter)),
        "auto" => Some(match alsa::AlsaPlayback::open("default") {
            Ok(speaker) => Box::new(speaker),
            Err(e) => {
                tracing::info!("no speaker ({e}): talk-back is only metered");
                Box::new(Meter)
            }
        }),
        other => match other.strip_prefix("alsa:") {
            Some(device) => Some(Box::new(
                alsa::AlsaPlayback::open(device).map_err(AudioError::Alsa)?,
            )),
            None => return Err(AudioError::UnknownSink(other.into())),
        },
    };
    Ok(Audio::spawn(source, sink))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_runs_only_while_someone_listens_and_talkback_is_metered() {
        let audio = Audio::spawn(Some(Box::new(tone::Tone::default())), Some(Box::new(Meter)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(audio.packets.is_empty(), "idle without listeners");
        audio.shared.set_listeners(1);
        let first = audio.packets.recv_blocking().unwrap();
        let second = audio.packets.recv_blocking().unwrap();
        assert_eq!(
            (first.data.len(), second.rtp_time - first.rtp_time),
            (CHUNK, CHUNK as u64)
        );
        let loud: Arc<[u8]> = [12000i16, -12000]
            .repeat(CHUNK / 2)
            .into_iter()
            .map(g711::encode)
            .collect();
        audio.talkback.send_blocking(loud).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while audio.shared.talkback_peak.load(Ordering::Relaxed) < 11000 {
            assert!(
                Instant::now() < deadline,
                "talk-back never reached the sink"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn names_are_checked() {
        let bad = AudioConfig {
            source: "mic".into(),
            sink: "none".into(),
        };
        assert!(open(&bad)
            .err()
            .unwrap()
            .to_string()
            .contains("alsa:DEVICE"));
        let bad = AudioConfig {
            source: "none".into(),
            sink: "hdmi".into(),
        };
        assert!(open(&bad).err().unwrap().to_string().contains("meter"));
    }
}
