//! The recorder's I/O: a thread that feeds a [`Recorder`] per camera, and
//! one for the operator's camera as the robot received it, and
//! carries out their [`Action`]s on the recordings directory, and [`Recordings`], the handle
//! the network loop and the HTTP workers share. The loop only ever hands
//! frames over with `try_send`, so a slow SD card never holds video up.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use super::core::{Action, Recorder};
use super::policy::{camera_of, is_recording_name, FileEntry, Limits};
use crate::media::audio::EncodedAudio;
use crate::media::layer::Layer;
use crate::media::sink::{Feed, MediaSink};
use crate::media::EncodedFrame;

/// The operator's camera's recordings are `telepi-...-operator.mp4`, so no
/// robot camera may have this name.
pub const OPERATOR: &str = "operator";

/// Frames and audio packets queued for the writer: about 4 s of both.
const QUEUE: usize = 320;

enum Message {
    /// A frame of the camera with this index (config order).
    Video(usize, EncodedFrame),
    Audio(EncodedAudio),
    /// Recording was switched on or off.
    Wake,
    Shutdown,
}

/// What the writer publishes for status, listing and downloads.
#[derive(Debug, Default)]
struct Published {
    files: Vec<FileEntry>,
    /// Per camera, the file being written.
    current: Vec<Option<String>>,
    error: Option<String>,
}

/// A camera as the recorder knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCamera {
    pub name: String,
    /// Recorded from start to exit, whatever the operator's switch says.
    pub always: bool,
}

/// One camera's flags, shared by the loop and the writer.
#[derive(Debug)]
struct CameraShared {
    camera: RecordedCamera,
    keyframe_wanted: AtomicBool,
    /// A video frame could not be queued: the writer must resynchronise.
    lost_video: AtomicBool,
}

#[derive(Debug)]
struct Shared {
    dir: Result<PathBuf, String>,
    /// Whether the microphone is recorded too.
    audio: bool,
    /// The operator's switch; the writer follows it.
    on: AtomicBool,
    /// Writing failed: nothing is recorded, `always` cameras neither, until
    /// the switch is turned on again.
    failed: AtomicBool,
    /// In config order, then the operator's camera.
    cameras: Vec<CameraShared>,
    dropped: AtomicU64,
    published: Mutex<Published>,
}

impl Shared {
    fn published(&self) -> MutexGuard<'_, Published> {
        self.published.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the camera with this index is recorded now.
    fn records(&self, camera: &CameraShared) -> bool {
        !self.failed.load(Ordering::SeqCst)
            && (camera.camera.always || self.on.load(Ordering::SeqCst))
    }
}

/// The shared front of the recorder: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Recordings {
    shared: Arc<Shared>,
    messages: SyncSender<Message>,
}

/// Owns the writer thread; dropping it closes the current file cleanly.
pub struct RecordingService {
    pub recordings: Recordings,
    thread: Option<JoinHandle<()>>,
}

impl RecordingService {
    /// Lists the recordings already in `dir` (the quota counts them) and
    /// starts the writer. `dir` is created at the first recording; an `Err`
    /// says why there is none, and recording is refused with that reason
    /// (at once, when a camera is recorded always). Each camera, and the
    /// operator's, gets an even share of the quota; recordings that name no
    /// camera configured now count against the first. The microphone goes
    /// into the robot's cameras' files, not the operator's.
    pub fn start(
        dir: Result<PathBuf, String>,
        limits: Limits,
        audio: bool,
        mut cameras: Vec<RecordedCamera>,
    ) -> Result<RecordingService, RecordError> {
        if let (Some(always), Err(why)) = (cameras.iter().find(|c| c.always), &dir) {
            return Err(RecordError::AlwaysCannot {
                camera: always.name.clone(),
                why: why.clone(),
            });
        }
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
        let robot_cameras = cameras.len();
        cameras.push(RecordedCamera {
            name: OPERATOR.into(),
            always: false,
        });
        let share = Limits {
            quota_bytes: limits.quota_bytes / cameras.len().max(1) as u64,
            ..limits
        };
        let recorders = (cameras.iter().enumerate())
            .map(|(n, camera)| {
                let own = |f: &&FileEntry| match camera_of(&f.name) {
                    Some(name) if cameras.iter().any(|c| c.name == name) => name == camera.name,
                    _ => n == 0,
                };
                let files = existing.iter().filter(own).cloned().collect();
                let audio = audio && n < robot_cameras;
                (Recorder::new(&camera.name, share, audio, files), None)
            })
            .collect();
        let (tx, rx) = sync_channel(QUEUE);
        let cameras = cameras.into_iter().map(|camera| CameraShared {
            camera,
            keyframe_wanted: AtomicBool::new(false),
            lost_video: AtomicBool::new(false),
        });
        let shared = Arc::new(Shared {
            dir,
            audio,
            on: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            cameras: cameras.collect(),
            dropped: AtomicU64::new(0),
            published: Mutex::default(),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("record".into())
            .spawn(move || write_files(recorders, &thread_shared, &rx))
            .map_err(RecordError::Thread)?;
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
    pub fn set_recording(&self, on: bool) -> Result<(), RecordError> {
        if let (true, Err(why)) = (on, &self.shared.dir) {
            return Err(RecordError::NoDir(why.clone()));
        }
        let failed = on && self.shared.failed.swap(false, Ordering::SeqCst);
        if self.shared.on.swap(on, Ordering::SeqCst) != on || failed {
            tracing::info!("recording {}", if on { "started" } else { "stopped" });
            // A full queue will wake the writer anyway.
            let _ = self.messages.try_send(Message::Wake);
        }
        Ok(())
    }

    /// Whether any camera is recorded now.
    pub fn is_recording(&self) -> bool {
        self.shared.cameras.iter().any(|c| self.shared.records(c))
    }

    /// The recorder's index of a feed: the operator's camera comes after the robot's.
    fn index(&self, feed: Feed) -> usize {
        match feed {
            Feed::Camera(index) => index,
            Feed::Operator => self.shared.cameras.len() - 1,
        }
    }

    /// Whether the camera with this index (config order) is recorded now.
    pub fn is_recording_camera(&self, camera: usize) -> bool {
        (self.shared.cameras.get(camera)).is_some_and(|c| self.shared.records(c))
    }

    /// Whether the recorder listens to the microphone now.
    pub fn is_recording_audio(&self) -> bool {
        self.shared.audio && self.is_recording()
    }

    /// True once per time the recorder asked for an IDR of this camera.
    pub fn take_keyframe_request(&self, camera: usize) -> bool {
        (self.shared.cameras.get(camera))
            .is_some_and(|c| c.keyframe_wanted.swap(false, Ordering::SeqCst))
    }

    /// A frame of the camera with this index (config order).
    pub fn video(&self, camera: usize, frame: &EncodedFrame) {
        let Some(shared) = self.shared.cameras.get(camera) else {
            return;
        };
        if self.shared.records(shared) && self.queue(Message::Video(camera, frame.clone())).is_err()
        {
            shared.lost_video.store(true, Ordering::SeqCst);
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
    pub fn status(&self) -> RecordingStatus {
        let published = self.shared.published();
        let operator = self.index(Feed::Operator);
        let current = |n: usize| published.current.get(n).cloned().flatten();
        let cameras = (self.shared.cameras.iter().enumerate())
            .take(operator)
            .map(|(n, c)| RecordedCameraStatus {
                name: c.camera.name.clone(),
                on: self.shared.records(c),
                always: c.camera.always,
                file: current(n),
            })
            .collect();
        RecordingStatus {
            on: self.is_recording(),
            // The first camera's file being written, as when there was one camera.
            file: (0..operator).find_map(current),
            operator_file: current(operator),
            cameras,
            dir: self.shared.dir.as_ref().ok().cloned(),
            files: published.files.len(),
            bytes: published.files.iter().map(|f| f.bytes).sum::<u64>(),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            error: published.error.clone(),
        }
    }
}

/// Why the robot cannot record; `why` says why there is no directory.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("camera {camera:?} records always, but cannot: {why}")]
    AlwaysCannot { camera: String, why: String },
    #[error("cannot record: {0}")]
    NoDir(String),
    #[error("record thread: {0}")]
    Thread(std::io::Error),
}

/// The recorder's part of `/api/status` (and of `/api/recordings`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RecordingStatus {
    pub on: bool,
    pub file: Option<String>,
    pub operator_file: Option<String>,
    pub cameras: Vec<RecordedCameraStatus>,
    pub dir: Option<PathBuf>,
    /// Recordings on disk, and the bytes they take.
    pub files: usize,
    pub bytes: u64,
    /// Frames and audio packets there was no room for.
    pub dropped: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RecordedCameraStatus {
    pub name: String,
    pub on: bool,
    pub always: bool,
    pub file: Option<String>,
}

/// One camera's recorder and the file it writes.
type CameraWriter = (Recorder, Option<File>);

/// The writer thread: messages in, files out, until shut down.
fn write_files(mut writers: Vec<CameraWriter>, shared: &Shared, messages: &Receiver<Message>) {
    while let Ok(message) = messages.recv() {
        for ((recorder, _), camera) in writers.iter_mut().zip(&shared.cameras) {
            let wanted = shared.records(camera);
            if wanted && !recorder.is_on() {
                shared.published().error = None;
                recorder.start();
            } else if !wanted && recorder.is_on() {
                recorder.stop();
            }
            if camera.lost_video.swap(false, Ordering::SeqCst) {
                recorder.frames_lost();
            }
        }
        let shutdown = match message {
            Message::Video(camera, frame) => {
                if let Some((recorder, _)) = writers.get_mut(camera) {
                    let at = frame.captured;
                    recorder.video(SystemTime::now(), at, &frame.data, frame.keyframe);
                }
                false
            }
            Message::Audio(packet) => {
                for (recorder, _) in &mut writers {
                    recorder.audio(packet.captured, &packet.data);
                }
                false
            }
            Message::Wake => false,
            Message::Shutdown => {
                writers.iter_mut().for_each(|(recorder, _)| recorder.stop());
                true
            }
        };
        for ((recorder, file), camera) in writers.iter_mut().zip(&shared.cameras) {
            if let Err(e) = carry_out(recorder, file, camera, shared) {
                tracing::error!("recording stopped: {e}");
                shared.failed.store(true, Ordering::SeqCst);
                shared.on.store(false, Ordering::SeqCst);
                shared.published().error = Some(e);
            }
        }
        if shared.failed.load(Ordering::SeqCst) {
            // Every camera stops, as the operator's switch does.
            for (recorder, file) in writers.iter_mut().filter(|(r, _)| r.is_on()) {
                recorder.fail();
                *file = None;
            }
        }
        let mut published = shared.published();
        published.files = writers
            .iter()
            .flat_map(|(recorder, _)| recorder.files().iter().cloned())
            .collect();
        published.files.sort_by(|a, b| a.name.cmp(&b.name));
        published.current = writers
            .iter()
            .map(|(recorder, _)| recorder.current().map(str::to_string))
            .collect();
        drop(published);
        if shutdown {
            break;
        }
    }
}

/// Does what the recorder asked; a file that can't be written ends the recording.
fn carry_out(
    recorder: &mut Recorder,
    file: &mut Option<File>,
    camera: &CameraShared,
    shared: &Shared,
) -> Result<(), String> {
    // Without a directory nothing was ever started, so no action needs one.
    let Ok(dir) = &shared.dir else { return Ok(()) };
    while let Some(action) = recorder.poll_action() {
        match action {
            Action::Create(name) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("record dir {}: {e}", dir.display()))?;
                let path = dir.join(&name);
                let created = File::options()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    // The new name must survive a power cut as well as the data.
                    .and_then(|f| File::open(dir)?.sync_all().map(|()| f));
                *file = Some(created.map_err(|e| format!("creating {}: {e}", path.display()))?);
                tracing::info!("recording to {}", path.display());
            }
            Action::Append(bytes) => {
                let Some(f) = file.as_mut() else { continue };
                // Durable fragment by fragment: a power cut loses at most the last one.
                f.write_all(&bytes)
                    .and_then(|()| f.sync_data())
                    .map_err(|e| format!("writing {}: {e}", dir.display()))?;
            }
            Action::Close => *file = None,
            Action::Delete(name) => match std::fs::remove_file(dir.join(&name)) {
                Ok(()) => tracing::info!("recording quota: deleted {name}"),
                Err(e) => tracing::warn!("recording quota: deleting {name}: {e}"),
            },
            Action::WantKeyframe => camera.keyframe_wanted.store(true, Ordering::SeqCst),
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

/// The recorder as a sink of the network loop: the main layer of each
/// camera it records and of the operator's, and the microphone.
impl MediaSink for Recordings {
    fn video(&mut self, _now: Instant, feed: Feed, layer: Layer, frame: &EncodedFrame) {
        if layer == Layer::Main {
            Recordings::video(self, self.index(feed), frame);
        }
    }

    fn audio(&mut self, _now: Instant, packet: &EncodedAudio) {
        Recordings::audio(self, packet);
    }

    /// It watches each camera it records, like one more peer.
    fn viewers(&self, camera: usize) -> usize {
        usize::from(self.is_recording_camera(camera))
    }

    fn listeners(&self) -> usize {
        usize::from(self.is_recording_audio())
    }

    fn take_keyframe_request(&mut self, feed: Feed) -> bool {
        Recordings::take_keyframe_request(self, self.index(feed))
    }
}
