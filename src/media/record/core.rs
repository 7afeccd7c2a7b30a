//! The recorder, sans-IO: encoded video and audio, start and stop, and the
//! time go in; what to do with files comes out as [`Action`]s for the shell
//! to carry out. It decides where files and fragments begin (a file on a
//! keyframe, a fragment per GOP or per second), names files, and which old
//! ones the quota removes. Each [`Stream`] (the robot's camera, the
//! operator's) goes to files of its own; the quota counts them all.

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

/// A picture recorded to files of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The robot's first camera, with the robot's microphone.
    Robot,
    /// The operator's camera, as the robot received it (no audio).
    Operator,
}

impl Stream {
    pub const ALL: [Stream; 2] = [Stream::Robot, Stream::Operator];

    pub fn index(self) -> usize {
        self as usize
    }

    /// What its file names carry after the time.
    fn tag(self) -> &'static str {
        match self {
            Stream::Robot => "",
            Stream::Operator => "-operator",
        }
    }
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create this file (in the recordings directory); the stream's later appends go to it.
    Create(Stream, String),
    /// Append these bytes to the stream's current file and make them durable.
    Append(Stream, Vec<u8>),
    /// The stream's current file is complete.
    Close(Stream),
    /// Remove this old file (the quota).
    Delete(String),
    /// Ask the stream's source for an IDR: a file is waiting to start or to rotate.
    WantKeyframe(Stream),
}

/// The file being written.
#[derive(Debug)]
struct OpenFile {
    name: String,
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

/// One stream's state.
#[derive(Debug, Default)]
struct Track {
    file: Option<OpenFile>,
    /// Frames were lost on the way here: skip to the next keyframe.
    resync: bool,
    keyframe_asked: bool,
}

#[derive(Debug)]
pub struct Recorder {
    limits: Limits,
    audio: bool,
    on: bool,
    /// Oldest first, the open ones included.
    files: VecDeque<FileEntry>,
    tracks: [Track; 2],
    actions: VecDeque<Action>,
}

impl Recorder {
    /// `existing`: the recordings already on disk, oldest first.
    pub fn new(limits: Limits, audio: bool, existing: Vec<FileEntry>) -> Recorder {
        let mut recorder = Recorder {
            limits,
            audio,
            on: false,
            files: existing.into(),
            tracks: Default::default(),
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

    /// The stream's file being written.
    pub fn current(&self, stream: Stream) -> Option<&str> {
        let file = self.tracks[stream.index()].file.as_ref();
        file.map(|f| f.name.as_str())
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Begins recording; each stream's first file starts at its next keyframe.
    pub fn start(&mut self) {
        if !self.on {
            self.on = true;
            for stream in Stream::ALL {
                self.want_keyframe(stream);
            }
        }
    }

    /// Writes what is pending and closes the files.
    pub fn stop(&mut self) {
        self.on = false;
        for stream in Stream::ALL {
            self.finish_file(stream);
        }
    }

    /// The shell could not write: give the files up as they are (what
    /// reached the disk stays playable) and stop.
    pub fn fail(&mut self) {
        self.on = false;
        for track in &mut self.tracks {
            track.file = None;
        }
        // Nothing more may be created or written; old files still make room.
        self.actions.retain(|a| matches!(a, Action::Delete(_)));
    }

    /// Frames were dropped before reaching us: the next P-frames would show
    /// garbage, so wait for a keyframe.
    pub fn frames_lost(&mut self, stream: Stream) {
        let track = &mut self.tracks[stream.index()];
        if track.file.is_some() {
            track.resync = true;
            self.want_keyframe(stream);
        }
    }

    /// One Annex-B access unit of `stream` captured at `at`; `wall` names a new file.
    pub fn video(
        &mut self,
        stream: Stream,
        wall: SystemTime,
        at: Instant,
        access_unit: &[u8],
        keyframe: bool,
    ) {
        let track = &mut self.tracks[stream.index()];
        if !self.on || (track.resync && !keyframe) {
            return;
        }
        track.resync = false;
        if keyframe {
            track.keyframe_asked = false;
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
        if let Some(file) = &mut track.file {
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
                self.finish_file(stream);
            } else if rotate {
                self.want_keyframe(stream);
            }
        }
        if let Some(file) = &self.tracks[stream.index()].file {
            let span = at.saturating_duration_since(file.pending_started);
            if keyframe || span >= FRAGMENT_DURATION {
                self.write_fragment(stream);
            }
        } else {
            let Some(params) = params else {
                return self.want_keyframe(stream);
            };
            self.open_file(stream, wall, at, params);
        }
        let file = self.tracks[stream.index()].file.as_mut();
        let file = file.expect("open above");
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

    /// 8 kHz μ-law captured at `at`; kept only while the robot's file is open.
    pub fn audio(&mut self, at: Instant, data: &[u8]) {
        let file = self.tracks[Stream::Robot.index()].file.as_mut();
        let Some(file) = file.filter(|_| self.audio) else {
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

    fn open_file(&mut self, stream: Stream, wall: SystemTime, at: Instant, params: VideoParams) {
        let name = file_name(wall, stream.tag(), &self.files);
        let muxer = Muxer::new(params, self.audio && stream == Stream::Robot);
        let init = muxer.init_segment();
        self.files.push_back(FileEntry {
            name: name.clone(),
            bytes: init.len() as u64,
        });
        self.tracks[stream.index()].file = Some(OpenFile {
            name: name.clone(),
            muxer,
            started: at,
            bytes: init.len() as u64,
            pending: Vec::new(),
            pending_started: at,
            last_sample_at: at,
            audio: Vec::new(),
            audio_started: false,
        });
        self.actions.push_back(Action::Create(stream, name));
        self.actions.push_back(Action::Append(stream, init));
        self.enforce_quota();
    }

    fn write_fragment(&mut self, stream: Stream) {
        let Some(file) = &mut self.tracks[stream.index()].file else {
            return;
        };
        if file.pending.is_empty() && file.audio.is_empty() {
            return;
        }
        let fragment = file.muxer.fragment(&file.pending, &file.audio);
        file.pending.clear();
        file.audio.clear();
        file.bytes += fragment.len() as u64;
        if let Some(entry) = self.files.iter_mut().find(|f| f.name == file.name) {
            entry.bytes = file.bytes;
        }
        self.actions.push_back(Action::Append(stream, fragment));
        self.enforce_quota();
    }

    fn finish_file(&mut self, stream: Stream) {
        if self.tracks[stream.index()].file.is_some() {
            self.write_fragment(stream);
            self.tracks[stream.index()].file = None;
            self.actions.push_back(Action::Close(stream));
        }
    }

    /// The oldest files go; the open ones stay, whatever their age.
    fn enforce_quota(&mut self) {
        let open: Vec<&str> = Stream::ALL
            .iter()
            .filter_map(|s| self.current(*s))
            .collect();
        let doomed = self
            .limits
            .over_quota(&self.files, |f| open.contains(&f.name.as_str()));
        for name in doomed {
            self.files.retain(|f| f.name != name);
            self.actions.push_back(Action::Delete(name));
        }
    }

    fn want_keyframe(&mut self, stream: Stream) {
        let track = &mut self.tracks[stream.index()];
        if !track.keyframe_asked {
            track.keyframe_asked = true;
            self.actions.push_back(Action::WantKeyframe(stream));
        }
    }
}

/// A duration in 90 kHz ticks.
fn ticks(d: Duration) -> u64 {
    (d.as_nanos() * u128::from(VIDEO_TIMESCALE) / 1_000_000_000) as u64
}

#[cfg(test)]
mod tests;
