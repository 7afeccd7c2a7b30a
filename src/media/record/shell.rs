//! The recorder's I/O: a thread that feeds [`Recorder`] and carries out its
//! [`Action`]s on the recordings directory, and [`Recordings`], the handle
//! the network loop and the HTTP workers share. The loop only ever hands
//! frames over with `try_send`, so a slow SD card never holds video up.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::SystemTime;

use super::core::{Action, Recorder, Stream};
use super::policy::{is_recording_name, FileEntry, Limits};
use crate::media::audio::EncodedAudio;
use crate::media::{EncodedFrame, VideoSink};

/// Frames and audio packets queued for the writer: about 4 s of both.
const QUEUE: usize = 320;

enum Message {
    Video(Stream, EncodedFrame),
    Audio(EncodedAudio),
    /// Recording was switched on or off.
    Wake,
    Shutdown,
}

/// What the writer publishes for status, listing and downloads.
#[derive(Debug, Default)]
struct Published {
    files: Vec<FileEntry>,
    /// Each stream's file being written.
    current: [Option<String>; 2],
    error: Option<String>,
}

#[derive(Debug)]
struct Shared {
    dir: Result<PathBuf, String>,
    /// Whether the microphone is recorded too.
    audio: bool,
    /// What was asked for; the writer follows it.
    on: AtomicBool,
    /// Per stream: the writer wants an IDR.
    keyframe_wanted: [AtomicBool; 2],
    /// Per stream: a video frame could not be queued, the writer must resynchronise.
    lost_video: [AtomicBool; 2],
    dropped: AtomicU64,
    published: Mutex<Published>,
}

impl Shared {
    fn published(&self) -> MutexGuard<'_, Published> {
        self.published.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The shared front of the recorder: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Recordings {
    shared: Arc<Shared>,
    messages: SyncSender<Message>,
}

/// One stream of the recorder as a [`VideoSink`] (the operator's camera).
pub struct RecordingSink {
    recordings: Recordings,
    stream: Stream,
}

impl VideoSink for RecordingSink {
    fn push(&self, frame: &EncodedFrame) {
        self.recordings.video(self.stream, frame);
    }

    fn take_keyframe_request(&self) -> bool {
        self.recordings.take_keyframe_request(self.stream)
    }
}

/// Owns the writer thread; dropping it closes the current file cleanly.
pub struct RecordingService {
    pub recordings: Recordings,
    thread: Option<JoinHandle<()>>,
}

impl RecordingService {
    /// Lists the recordings already in `dir` (the quota counts them) and
    /// starts the writer. `dir` is created at the first recording; an `Err`
    /// says why there is none, and recording is refused with that reason.
    pub fn start(
        dir: Result<PathBuf, String>,
        limits: Limits,
        audio: bool,
    ) -> Result<RecordingService, String> {
        // A directory that can't be read leaves the robot running, without recording.
        let (dir, existing) = match dir {
            Ok(dir) if dir.exists() => match list_dir(&dir) {
                Ok(files) => (Ok(dir), files),
                Err(e) => {
                    let why = format!("record dir {}: {e}", dir.display());
                    tracing::warn!("{why}: recording is off");
                    (Err(why), Vec::new())
                }
            },
            dir => (dir, Vec::new()),
        };
        let recorder = Recorder::new(limits, audio, existing);
        let (tx, rx) = sync_channel(QUEUE);
        let shared = Arc::new(Shared {
            dir,
            audio,
            on: AtomicBool::new(false),
            keyframe_wanted: Default::default(),
            lost_video: Default::default(),
            dropped: AtomicU64::new(0),
            published: Mutex::default(),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("record".into())
            .spawn(move || write_files(recorder, &thread_shared, &rx))
            .map_err(|e| format!("record thread: {e}"))?;
        // Let the quota's deletions at start happen and the listing appear.
        let _ = tx.send(Message::Wake);
        Ok(RecordingService {
            recordings: Recordings {
                shared,
                messages: tx,
            },
            thread: Some(thread),
        })
    }
}

impl Drop for RecordingService {
    fn drop(&mut self) {
        let _ = self.recordings.messages.send(Message::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Recordings {
    /// Starts or stops recording; refused when there is nowhere to write.
    pub fn set_recording(&self, on: bool) -> Result<(), String> {
        if let (true, Err(why)) = (on, &self.shared.dir) {
            return Err(format!("cannot record: {why}"));
        }
        if self.shared.on.swap(on, Ordering::SeqCst) != on {
            tracing::info!("recording {}", if on { "started" } else { "stopped" });
            // A full queue will wake the writer anyway.
            let _ = self.messages.try_send(Message::Wake);
        }
        Ok(())
    }

    pub fn is_recording(&self) -> bool {
        self.shared.on.load(Ordering::SeqCst)
    }

    /// Whether the recorder listens to the microphone now.
    pub fn is_recording_audio(&self) -> bool {
        self.shared.audio && self.is_recording()
    }

    /// True once per time the recorder asked for an IDR of `stream`.
    pub fn take_keyframe_request(&self, stream: Stream) -> bool {
        self.shared.keyframe_wanted[stream.index()].swap(false, Ordering::SeqCst)
    }

    /// `stream` as a sink of its own.
    pub fn sink(&self, stream: Stream) -> RecordingSink {
        RecordingSink {
            recordings: self.clone(),
            stream,
        }
    }

    /// One access unit of `stream`: the robot's first camera, or the operator's.
    pub fn video(&self, stream: Stream, frame: &EncodedFrame) {
        let message = Message::Video(stream, frame.clone());
        if self.is_recording() && self.queue(message).is_err() {
            self.shared.lost_video[stream.index()].store(true, Ordering::SeqCst);
        }
    }

    pub fn audio(&self, packet: &EncodedAudio) {
        if self.is_recording_audio() {
            let _ = self.queue(Message::Audio(packet.clone()));
        }
    }

    fn queue(&self, message: Message) -> Result<(), ()> {
        self.messages.try_send(message).map_err(|_| {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// Recordings on disk, oldest first.
    pub fn list(&self) -> Vec<FileEntry> {
        self.shared.published().files.clone()
    }

    /// A recording to download, and its length now (the growing one too:
    /// every fragment up to here is complete).
    pub fn open(&self, name: &str) -> io::Result<(File, u64)> {
        let known = self.shared.published().files.iter().any(|f| f.name == name);
        if !is_recording_name(name) || !known {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such recording"));
        }
        let dir = self
            .shared
            .dir
            .as_ref()
            .map_err(|why| io::Error::other(why.clone()))?;
        let file = File::open(dir.join(name))?;
        let len = file.metadata()?.len();
        Ok((file, len))
    }

    /// For `/api/status`.
    pub fn status(&self) -> serde_json::Value {
        let published = self.shared.published();
        serde_json::json!({
            "on": self.is_recording(),
            "file": published.current[Stream::Robot.index()],
            "operator_file": published.current[Stream::Operator.index()],
            "dir": self.shared.dir.as_ref().ok(),
            "files": published.files.len(),
            "bytes": published.files.iter().map(|f| f.bytes).sum::<u64>(),
            "dropped": self.shared.dropped.load(Ordering::Relaxed),
            "error": published.error,
        })
    }
}

/// The writer thread: messages in, files out, until shut down.
fn write_files(mut recorder: Recorder, shared: &Shared, messages: &Receiver<Message>) {
    let mut files: [Option<File>; 2] = Default::default();
    while let Ok(message) = messages.recv() {
        let wanted = shared.on.load(Ordering::SeqCst);
        if wanted && !recorder.is_on() {
            shared.published().error = None;
            recorder.start();
        } else if !wanted && recorder.is_on() {
            recorder.stop();
        }
        for stream in Stream::ALL {
            if shared.lost_video[stream.index()].swap(false, Ordering::SeqCst) {
                recorder.frames_lost(stream);
            }
        }
        let shutdown = match message {
            Message::Video(stream, frame) => {
                let at = frame.captured;
                let wall = SystemTime::now();
                recorder.video(stream, wall, at, &frame.data, frame.keyframe);
                false
            }
            Message::Audio(packet) => {
                recorder.audio(packet.captured, &packet.data);
                false
            }
            Message::Wake => false,
            Message::Shutdown => {
                recorder.stop();
                true
            }
        };
        if let Err(e) = carry_out(&mut recorder, &mut files, shared) {
            tracing::error!("recording stopped: {e}");
            recorder.fail();
            files = Default::default();
            shared.on.store(false, Ordering::SeqCst);
            shared.published().error = Some(e);
        }
        let mut published = shared.published();
        published.files = recorder.files().iter().cloned().collect();
        published.current = Stream::ALL.map(|s| recorder.current(s).map(str::to_string));
        drop(published);
        if shutdown {
            break;
        }
    }
}

/// Does what the recorder asked; a file that can't be written ends the recording.
fn carry_out(
    recorder: &mut Recorder,
    files: &mut [Option<File>; 2],
    shared: &Shared,
) -> Result<(), String> {
    // Without a directory nothing was ever started, so no action needs one.
    let Ok(dir) = &shared.dir else { return Ok(()) };
    while let Some(action) = recorder.poll_action() {
        match action {
            Action::Create(stream, name) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("record dir {}: {e}", dir.display()))?;
                let path = dir.join(&name);
                let created = File::options()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    // The new name must survive a power cut as well as the data.
                    .and_then(|f| File::open(dir)?.sync_all().map(|()| f));
                let created = created.map_err(|e| format!("creating {}: {e}", path.display()))?;
                files[stream.index()] = Some(created);
                tracing::info!("recording to {}", path.display());
            }
            Action::Append(stream, bytes) => {
                let Some(f) = files[stream.index()].as_mut() else {
                    continue;
                };
                // Durable fragment by fragment: a power cut loses at most the last one.
                f.write_all(&bytes)
                    .and_then(|()| f.sync_data())
                    .map_err(|e| format!("writing {}: {e}", dir.display()))?;
            }
            Action::Close(stream) => files[stream.index()] = None,
            Action::Delete(name) => match std::fs::remove_file(dir.join(&name)) {
                Ok(()) => tracing::info!("recording quota: deleted {name}"),
                Err(e) => tracing::warn!("recording quota: deleting {name}: {e}"),
            },
            Action::WantKeyframe(stream) => {
                shared.keyframe_wanted[stream.index()].store(true, Ordering::SeqCst)
            }
        }
    }
    Ok(())
}

/// The recordings in `dir`, oldest (by name, which is by time) first.
fn list_dir(dir: &Path) -> io::Result<Vec<FileEntry>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if is_recording_name(&name) && entry.file_type()?.is_file() {
            let bytes = entry.metadata()?.len();
            files.push(FileEntry { name, bytes });
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}
