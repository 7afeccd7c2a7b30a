//! The recorder, sans-IO: encoded video and audio, start and stop, and the
//! time go in; what to do with files comes out as [`Action`]s for the shell
//! to carry out. It decides where files and fragments begin (a file on a
//! keyframe, a fragment per GOP or per second), names files, and which old
//! ones the quota removes.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use super::mp4::{
    length_prefixed, Muxer, VideoParams, VideoSample, AUDIO_TIMESCALE, VIDEO_TIMESCALE,
};
use super::policy::{file_name, FileEntry, Limits};

/// A fragment is written at least this often, so at most this much is lost
/// when the power goes.
pub const FRAGMENT_DURATION: Duration = Duration::from_secs(1);
/// The last sample's duration when nothing follows it (a 30 fps frame).
const LAST_SAMPLE_TICKS: u32 = VIDEO_TIMESCALE / 30;

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create this file (in the recordings directory); later appends go to it.
    Create(String),
    /// Append these bytes to the current file and make them durable.
    Append(Vec<u8>),
    /// The current file is complete.
    Close,
    /// Remove this old file (the quota).
    Delete(String),
    /// Ask the encoder for an IDR: a file is waiting to start or to rotate.
    WantKeyframe,
}

/// The file being written.
#[derive(Debug)]
struct OpenFile {
    muxer: Muxer,
    started: Instant,
    bytes: u64,
    /// Samples not written yet; the last one's duration is known only once
    /// the next arrives.
    pending: Vec<VideoSample>,
    pending_started: Instant,
    last_sample_at: Instant,
    audio: Vec<u8>,
    /// Whether audio has been placed on the timeline yet.
    audio_started: bool,
}

#[derive(Debug)]
pub struct Recorder {
    /// The camera recorded, named in every file.
    camera: String,
    limits: Limits,
    audio: bool,
    on: bool,
    /// Oldest first; the open file, if any, is the last.
    files: VecDeque<FileEntry>,
    file: Option<OpenFile>,
    /// Frames were lost on the way here: skip to the next keyframe.
    resync: bool,
    keyframe_asked: bool,
    actions: VecDeque<Action>,
}

impl Recorder {
    /// Records `camera`; `existing`: its recordings already on disk, oldest first.
    pub fn new(camera: &str, limits: Limits, audio: bool, existing: Vec<FileEntry>) -> Recorder {
        let mut recorder = Recorder {
            camera: camera.into(),
            limits,
            audio,
            on: false,
            files: existing.into(),
            file: None,
            resync: false,
            keyframe_asked: false,
            actions: VecDeque::new(),
        };
        recorder.enforce_quota();
        recorder
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Recordings on disk, oldest first, the growing one included.
    pub fn files(&self) -> &VecDeque<FileEntry> {
        &self.files
    }

    /// The file being written.
    pub fn current(&self) -> Option<&str> {
        self.file
            .as_ref()
            .and_then(|_| self.files.back())
            .map(|f| f.name.as_str())
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Begins recording; the first file starts at the next keyframe.
    pub fn start(&mut self) {
        if !self.on {
            self.on = true;
            self.want_keyframe();
        }
    }

    /// Writes what is pending and closes the file.
    pub fn stop(&mut self) {
        self.on = false;
        self.finish_file();
    }

    /// The shell could not write: give the file up as it is (what reached
    /// the disk stays playable) and stop.
    pub fn fail(&mut self) {
        self.on = false;
        self.file = None;
        // Nothing more may be created or written; old files still make room.
        self.actions.retain(|a| matches!(a, Action::Delete(_)));
    }

    /// Frames were dropped before reaching us: the next P-frames would show
    /// garbage, so wait for a keyframe.
    pub fn frames_lost(&mut self) {
        if self.file.is_some() {
            self.resync = true;
            self.want_keyframe();
        }
    }

    /// One Annex-B access unit captured at `at`; `wall` names a new file.
    pub fn video(&mut self, wall: SystemTime, at: Instant, access_unit: &[u8], keyframe: bool) {
        if !self.on {
            return;
        }
        if self.resync && !keyframe {
            return;
        }
        self.resync = false;
        if keyframe {
            self.keyframe_asked = false;
        }
        let params = if keyframe {
            match VideoParams::from_access_unit(access_unit) {
                Ok(params) => params,
                Err(e) => {
                    tracing::warn!("recording: skipping a keyframe: {e}");
                    return;
                }
            }
        } else {
            None
        };
        if let Some(file) = &mut self.file {
            if let Some(last) = file.pending.last_mut() {
                last.duration = ticks(at.saturating_duration_since(file.last_sample_at))
                    .clamp(1, u64::from(u32::MAX)) as u32;
            }
            let rotate = self
                .limits
                .rotation_due(file.bytes, at.saturating_duration_since(file.started));
            let new_params = params
                .as_ref()
                .is_some_and(|p| p != file.muxer.video_params());
            if keyframe && (rotate || new_params) {
                self.finish_file();
            } else if rotate {
                self.want_keyframe();
            }
        }
        if let Some(file) = &mut self.file {
            let span = at.saturating_duration_since(file.pending_started);
            if keyframe || span >= FRAGMENT_DURATION {
                self.write_fragment();
            }
        } else {
            let Some(params) = params else {
                return self.want_keyframe();
            };
            self.open_file(wall, at, params);
        }
        let file = self.file.as_mut().expect("open above");
        if file.pending.is_empty() {
            file.pending_started = at;
        }
        file.last_sample_at = at;
        file.pending.push(VideoSample {
            data: length_prefixed(access_unit),
            duration: LAST_SAMPLE_TICKS,
            keyframe,
        });
    }

    /// 8 kHz μ-law captured at `at`; kept only while a file is open.
    pub fn audio(&mut self, at: Instant, data: &[u8]) {
        let Some(file) = self.file.as_mut().filter(|_| self.audio) else {
            return;
        };
        if !file.audio_started {
            // Audio from before the file's first picture has no place in it.
            let Some(offset) = at.checked_duration_since(file.started) else {
                return;
            };
            file.muxer
                .skip_audio(offset.as_nanos() as u64 * u64::from(AUDIO_TIMESCALE) / 1_000_000_000);
            file.audio_started = true;
        }
        file.audio.extend_from_slice(data);
    }

    fn open_file(&mut self, wall: SystemTime, at: Instant, params: VideoParams) {
        let name = file_name(wall, &self.camera, &self.files);
        let muxer = Muxer::new(params, self.audio);
        let init = muxer.init_segment();
        self.files.push_back(FileEntry {
            name: name.clone(),
            bytes: init.len() as u64,
        });
        self.file = Some(OpenFile {
            muxer,
            started: at,
            bytes: init.len() as u64,
            pending: Vec::new(),
            pending_started: at,
            last_sample_at: at,
            audio: Vec::new(),
            audio_started: false,
        });
        self.actions.push_back(Action::Create(name));
        self.actions.push_back(Action::Append(init));
        self.enforce_quota();
    }

    fn write_fragment(&mut self) {
        let Some(file) = &mut self.file else { return };
        if file.pending.is_empty() && file.audio.is_empty() {
            return;
        }
        let fragment = file.muxer.fragment(&file.pending, &file.audio);
        file.pending.clear();
        file.audio.clear();
        file.bytes += fragment.len() as u64;
        if let Some(entry) = self.files.back_mut() {
            entry.bytes = file.bytes;
        }
        self.actions.push_back(Action::Append(fragment));
        self.enforce_quota();
    }

    fn finish_file(&mut self) {
        if self.file.is_some() {
            self.write_fragment();
            self.file = None;
            self.actions.push_back(Action::Close);
        }
    }

    fn enforce_quota(&mut self) {
        for _ in 0..self.limits.over_quota(&self.files) {
            if let Some(old) = self.files.pop_front() {
                self.actions.push_back(Action::Delete(old.name));
            }
        }
    }

    fn want_keyframe(&mut self) {
        if !self.keyframe_asked {
            self.keyframe_asked = true;
            self.actions.push_back(Action::WantKeyframe);
        }
    }
}

/// A duration in 90 kHz ticks.
fn ticks(d: Duration) -> u64 {
    (d.as_nanos() * u128::from(VIDEO_TIMESCALE) / 1_000_000_000) as u64
}

#[cfg(test)]
mod tests;
