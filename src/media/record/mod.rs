//! Recording: the H.264 every peer gets (no second encode), a file per
//! camera, and the robot's audio in each, and beside them the operator's
//! camera as the robot received it, written to fragmented MP4 files that stay playable however they
//! end, rotated by size and duration, the oldest deleted beyond a quota.
//!
//! [`mp4`] turns samples into bytes, [`policy`] decides rotation, quota and
//! names, [`core::Recorder`] puts them together sans-IO; [`shell`] writes
//! the files on a thread of its own, off the network loop.

pub mod core;
pub mod mp4;
pub mod policy;
pub mod shell;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use policy::Limits;
pub use shell::{RecordError, RecordedCamera, RecordingService, RecordingStatus, Recordings};

/// When a camera is recorded: `record` in its `[[video]]` table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordWhen {
    /// While the operator's switch is on (always, with `[record] always`).
    #[default]
    Operator,
    /// From start to exit, whatever the switch says.
    Always,
}

/// The `[record]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordConfig {
    /// Where recordings go; unset: `recordings` in the state directory.
    pub dir: Option<PathBuf>,
    /// Record from start to exit, not only when the operator asks.
    pub always: bool,
    /// Record the robot's microphone beside the video.
    pub audio: bool,
    /// A file ends at the first keyframe past this size or duration.
    /// Unset: 100 MB, or `quota_mb` when that is smaller.
    pub max_file_mb: Option<u64>,
    pub max_file_seconds: u64,
    /// The oldest recordings are deleted while all of them take more.
    pub quota_mb: u64,
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            dir: None,
            always: false,
            audio: true,
            max_file_mb: None,
            max_file_seconds: 600,
            quota_mb: 1000,
        }
    }
}

const MB: u64 = 1_000_000;
const DEFAULT_MAX_FILE_MB: u64 = 100;

impl RecordConfig {
    /// A small quota makes small files rather than refusing to start.
    fn max_file_mb(&self) -> u64 {
        self.max_file_mb
            .unwrap_or(DEFAULT_MAX_FILE_MB.min(self.quota_mb))
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_file_bytes: self.max_file_mb() * MB,
            max_file_duration: Duration::from_secs(self.max_file_seconds),
            quota_bytes: self.quota_mb * MB,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(1..=100_000_000).contains(&self.quota_mb) {
            return Err("record quota_mb must be 1..=100000000".into());
        }
        if !(1..=100_000).contains(&self.max_file_mb()) {
            return Err("record max_file_mb must be 1..=100000".into());
        }
        if !(1..=86_400).contains(&self.max_file_seconds) {
            return Err("record max_file_seconds must be 1..=86400 (a day)".into());
        }
        if self.quota_mb < self.max_file_mb() {
            return Err(format!(
                "record quota_mb {} must be at least max_file_mb ({}): one file must fit",
                self.quota_mb,
                self.max_file_mb()
            ));
        }
        Ok(())
    }
}
