//! A fragmented MP4 (ISO BMFF) writer for H.264 and G.711 μ-law, sans-IO:
//! parameters and samples in, bytes out.
//!
//! A file is an init segment (`ftyp`, then `moov` with empty sample tables
//! and `mvex`) followed by `moof` + `mdat` pairs. Every fragment is complete
//! on its own, so a file cut off anywhere (power lost, process killed) plays
//! up to its last whole fragment.

use std::io;

use crate::media::h264::annexb::{nal_type, nal_units, NAL_AUD, NAL_PPS, NAL_SPS};
use crate::media::h264::sps::parse_sps;

/// Video timestamps and durations are in 90 kHz ticks, as RTP's.
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// μ-law: one byte per sample at 8 kHz.
pub const AUDIO_TIMESCALE: u32 = 8_000;
const VIDEO_TRACK: u32 = 1;
const AUDIO_TRACK: u32 = 2;

/// What the init segment's `avc1` sample entry needs, from an IDR access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoParams {
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl VideoParams {
    /// The SPS and PPS of an Annex-B access unit; `None` if it lacks either.
    pub fn from_access_unit(access_unit: &[u8]) -> io::Result<Option<VideoParams>> {
        let find = |wanted| nal_units(access_unit).find(|nal| nal_type(nal) == wanted);
        let (Some(sps), Some(pps)) = (find(NAL_SPS), find(NAL_PPS)) else {
            return Ok(None);
        };
        let info = parse_sps(sps)?;
        if sps.len() < 4 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "SPS too short"));
        }
        Ok(Some(VideoParams {
            sps: sps.to_vec(),
            pps: pps.to_vec(),
            width: info.width,
            height: info.height,
        }))
    }
}

/// One video access unit in MP4 form: length-prefixed NAL units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSample {
    pub data: Vec<u8>,
    /// 90 kHz ticks until the next sample.
    pub duration: u32,
    pub keyframe: bool,
}

/// Annex-B to the 4-byte length prefixes `avcC` announces. Parameter sets
/// live in the sample entry and access unit delimiters mean nothing in MP4,
/// so both are left out.
pub fn length_prefixed(access_unit: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(access_unit.len());
    for nal in nal_units(access_unit) {
        if matches!(nal_type(nal), NAL_SPS | NAL_PPS | NAL_AUD) {
            continue;
        }
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

/// Writes one file's boxes: [`init_segment`](Muxer::init_segment) once, then
/// [`fragment`](Muxer::fragment) for each batch of samples.
#[derive(Debug)]
pub struct Muxer {
    video: VideoParams,
    audio: bool,
    sequence: u32,
    video_time: u64,
    audio_time: u64,
}

impl Muxer {
    /// A file with one H.264 track and, with `audio`, one μ-law track.
    pub fn new(video: VideoParams, audio: bool) -> Muxer {
        Muxer {
            video,
            audio,
            sequence: 0,
            video_time: 0,
            audio_time: 0,
        }
    }

    pub fn video_params(&self) -> &VideoParams {
        &self.video
    }

    /// `ftyp` and `moov`: what a player needs before the first fragment.
    pub fn init_segment(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        put_box(&mut out, b"ftyp", |b| {
            b.extend_from_slice(b"isom");
            put_u32(b, 0x200);
            for brand in [b"isom", b"iso6", b"avc1", b"mp41"] {
                b.extend_from_slice(brand);
            }
        });
        put_box(&mut out, b"moov", |b| {
            let next_track = if self.audio { 3 } else { 2 };
            put_full_box(b, b"mvhd", 0, 0, |b| {
                put_u32s(b, &[0, 0, 1000, 0, 0x0001_0000]);
                b.extend_from_slice(&[0x01, 0x00, 0, 0]); // volume 1.0, reserved
                put_u32s(b, &[0, 0]);
                put_matrix(b);
                put_u32s(b, &[0; 6]);
                put_u32(b, next_track);
            });
            self.video_trak(b);
            if self.audio {
                audio_trak(b);
            }
            put_box(b, b"mvex", |b| {
                put_trex(b, VIDEO_TRACK);
                if self.audio {
                    put_trex(b, AUDIO_TRACK);
                }
            });
        });
        out
    }

    fn video_trak(&self, out: &mut Vec<u8>) {
        let (width, height) = (self.video.width, self.video.height);
        put_box(out, b"trak", |b| {
            put_tkhd(b, VIDEO_TRACK, 0, width, height);
            put_box(b, b"mdia", |b| {
                put_mdhd(b, VIDEO_TIMESCALE);
                put_hdlr(b, b"vide", b"VideoHandler\0");
                put_box(b, b"minf", |b| {
                    put_full_box(b, b"vmhd", 0, 1, |b| b.extend_from_slice(&[0; 8]));
                    put_stbl(b, |b| self.avc1(b));
                });
            });
        });
    }

    fn avc1(&self, out: &mut Vec<u8>) {
        let v = &self.video;
        put_box(out, b"avc1", |b| {
            b.extend_from_slice(&[0; 6]);
            put_u16(b, 1); // data_reference_index
            b.extend_from_slice(&[0; 16]);
            put_u16(b, v.width as u16);
            put_u16(b, v.height as u16);
            put_u32s(b, &[0x0048_0000, 0x0048_0000, 0]); // 72 dpi
            put_u16(b, 1); // frame_count
            b.extend_from_slice(&[0; 32]); // compressorname
            put_u16(b, 0x18); // depth
            put_u16(b, 0xFFFF);
            put_box(b, b"avcC", |b| {
                // Profile, compatibility and level are the SPS's bytes 1..4. High
                // profiles' optional chroma and bit-depth fields are left out:
                // decoders take them from the SPS itself.
                b.extend_from_slice(&[1, v.sps[1], v.sps[2], v.sps[3], 0xFF, 0xE1]);
                put_u16(b, v.sps.len() as u16);
                b.extend_from_slice(&v.sps);
                b.push(1);
                put_u16(b, v.pps.len() as u16);
                b.extend_from_slice(&v.pps);
            });
        });
    }

    /// One `moof` + `mdat`: `video` samples in order, and `audio` μ-law bytes
    /// (8 kHz, continuing the previous fragment's audio). Either may be empty.
    pub fn fragment(&mut self, video: &[VideoSample], audio: &[u8]) -> Vec<u8> {
        let audio = if self.audio { audio } else { &[] };
        self.sequence += 1;
        let video_bytes: usize = video.iter().map(|s| s.data.len()).sum();
        let mut out = Vec::with_capacity(video_bytes + audio.len() + 128 + 12 * video.len());
        // Offsets of the trun data_offset fields, patched once moof's size is known.
        let mut offsets = Vec::new();
        put_box(&mut out, b"moof", |b| {
            put_full_box(b, b"mfhd", 0, 0, |b| put_u32(b, self.sequence));
            if !video.is_empty() {
                put_box(b, b"traf", |b| {
                    put_full_box(b, b"tfhd", 0, DEFAULT_BASE_IS_MOOF, |b| {
                        put_u32(b, VIDEO_TRACK)
                    });
                    put_tfdt(b, self.video_time);
                    // data offset, and per sample: duration, size, flags.
                    put_full_box(b, b"trun", 0, 0x01 | 0x100 | 0x200 | 0x400, |b| {
                        put_u32(b, video.len() as u32);
                        offsets.push(b.len());
                        put_u32(b, 0);
                        for s in video {
                            let flags = if s.keyframe { SYNC } else { NON_SYNC };
                            put_u32s(b, &[s.duration, s.data.len() as u32, flags]);
                        }
                    });
                });
            }
            if !audio.is_empty() {
                put_box(b, b"traf", |b| {
                    // Every sample is one byte lasting one tick: defaults, no table.
                    put_full_box(b, b"tfhd", 0, DEFAULT_BASE_IS_MOOF | 0x08 | 0x10, |b| {
                        put_u32s(b, &[AUDIO_TRACK, 1, 1])
                    });
                    put_tfdt(b, self.audio_time);
                    put_full_box(b, b"trun", 0, 0x01, |b| {
                        put_u32(b, audio.len() as u32);
                        offsets.push(b.len());
                        put_u32(b, 0);
                    });
                });
            }
        });
        // Data offsets count from the start of moof (default-base-is-moof).
        let mut data_at = out.len() as u32 + 8;
        let track_bytes = [video_bytes, audio.len()].into_iter().filter(|&n| n > 0);
        for (at, bytes) in offsets.into_iter().zip(track_bytes) {
            out[at..at + 4].copy_from_slice(&data_at.to_be_bytes());
            data_at += bytes as u32;
        }
        put_box(&mut out, b"mdat", |b| {
            for s in video {
                b.extend_from_slice(&s.data);
            }
            b.extend_from_slice(audio);
        });
        self.video_time += video.iter().map(|s| u64::from(s.duration)).sum::<u64>();
        self.audio_time += audio.len() as u64;
        out
    }

    /// Where the audio track stands, in 8 kHz ticks: the recorder places
    /// the first audio it gets at its capture time by starting here.
    pub fn skip_audio(&mut self, ticks: u64) {
        self.audio_time += ticks;
    }
}

const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// sample_depends_on = 2 (an I picture).
const SYNC: u32 = 0x0200_0000;
/// sample_depends_on = 1, sample_is_non_sync_sample.
const NON_SYNC: u32 = 0x0101_0000;

fn audio_trak(out: &mut Vec<u8>) {
    put_box(out, b"trak", |b| {
        put_tkhd(b, AUDIO_TRACK, 0x0100, 0, 0);
        put_box(b, b"mdia", |b| {
            put_mdhd(b, AUDIO_TIMESCALE);
            put_hdlr(b, b"soun", b"SoundHandler\0");
            put_box(b, b"minf", |b| {
                put_full_box(b, b"smhd", 0, 0, |b| put_u32(b, 0));
                put_stbl(b, |b| {
                    // QuickTime's `ulaw` entry, which ffmpeg, VLC and mpv read.
                    put_box(b, b"ulaw", |b| {
                        b.extend_from_slice(&[0; 6]);
                        put_u16(b, 1);
                        put_u32s(b, &[0, 0]);
                        put_u16(b, 1); // channels
                        put_u16(b, 16); // sample size
                        put_u32(b, 0);
                        put_u32(b, AUDIO_TIMESCALE << 16);
                    });
                });
            });
        });
    });
}

fn put_tkhd(out: &mut Vec<u8>, track: u32, volume: u16, width: u32, height: u32) {
    // Flags: enabled, in movie.
    put_full_box(out, b"tkhd", 0, 3, |b| {
        put_u32s(b, &[0, 0, track, 0, 0, 0, 0]);
        put_u32(b, 0); // layer, alternate group
        put_u16(b, volume);
        put_u16(b, 0);
        put_matrix(b);
        put_u32s(b, &[width << 16, height << 16]);
    });
}

fn put_mdhd(out: &mut Vec<u8>, timescale: u32) {
    put_full_box(out, b"mdhd", 0, 0, |b| {
        put_u32s(b, &[0, 0, timescale, 0]);
        put_u16(b, 0x55C4); // "und"
        put_u16(b, 0);
    });
}

fn put_hdlr(out: &mut Vec<u8>, handler: &[u8; 4], name: &[u8]) {
    put_full_box(out, b"hdlr", 0, 0, |b| {
        put_u32(b, 0);
        b.extend_from_slice(handler);
        put_u32s(b, &[0, 0, 0]);
        b.extend_from_slice(name);
    });
}

/// `dinf` and an `stbl` with this sample entry and no samples (they are all in fragments).
fn put_stbl(out: &mut Vec<u8>, sample_entry: impl FnOnce(&mut Vec<u8>)) {
    put_box(out, b"dinf", |b| {
        put_full_box(b, b"dref", 0, 0, |b| {
            put_u32(b, 1);
            put_full_box(b, b"url ", 0, 1, |_| {});
        });
    });
    put_box(out, b"stbl", |b| {
        put_full_box(b, b"stsd", 0, 0, |b| {
            put_u32(b, 1);
            sample_entry(b);
        });
        put_full_box(b, b"stts", 0, 0, |b| put_u32(b, 0));
        put_full_box(b, b"stsc", 0, 0, |b| put_u32(b, 0));
        put_full_box(b, b"stsz", 0, 0, |b| put_u32s(b, &[0, 0]));
        put_full_box(b, b"stco", 0, 0, |b| put_u32(b, 0));
    });
}

fn put_trex(out: &mut Vec<u8>, track: u32) {
    put_full_box(out, b"trex", 0, 0, |b| put_u32s(b, &[track, 1, 0, 0, 0]));
}

fn put_tfdt(out: &mut Vec<u8>, decode_time: u64) {
    put_full_box(out, b"tfdt", 1, 0, |b| {
        b.extend_from_slice(&decode_time.to_be_bytes())
    });
}

fn put_matrix(out: &mut Vec<u8>) {
    put_u32s(
        out,
        &[0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000],
    );
}

/// A box: its size (filled in afterwards), its type, then what `body` writes.
fn put_box(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

fn put_full_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    put_box(out, kind, |b| {
        put_u32(b, u32::from(version) << 24 | flags);
        body(b);
    });
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32s(out: &mut Vec<u8>, values: &[u32]) {
    for &v in values {
        put_u32(out, v);
    }
}

#[cfg(test)]
pub(crate) mod tests;
