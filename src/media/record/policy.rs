//! When a recording moves on to a new file, which old files make room, and
//! what files are called: pure decisions from sizes, durations and times.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Every recording's name starts so; only such files are listed, served or
/// deleted, whatever else lives in the directory.
const PREFIX: &str = "telepi-";
const SUFFIX: &str = ".mp4";

/// A finished or growing recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
}

/// `[record]`'s limits, in the units the policy works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_file_duration: Duration,
    pub quota_bytes: u64,
}

impl Limits {
    /// Whether a file this big and this long should end at the next keyframe.
    pub fn rotation_due(&self, bytes: u64, duration: Duration) -> bool {
        bytes >= self.max_file_bytes || duration >= self.max_file_duration
    }

    /// How many of the oldest files (front of `files`) to delete so the rest
    /// fit in the quota. The newest, the one being written, always stays.
    pub fn over_quota(&self, files: &VecDeque<FileEntry>) -> usize {
        let mut total: u64 = files.iter().map(|f| f.bytes).sum();
        let mut delete = 0;
        for file in files.iter().take(files.len().saturating_sub(1)) {
            if total <= self.quota_bytes {
                break;
            }
            total -= file.bytes;
            delete += 1;
        }
        delete
    }
}

/// Whether `name` is one of ours: also what keeps a download request from
/// reaching outside the directory (no `/`, no `..`, nothing hidden).
pub fn is_recording_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(PREFIX)
        && name.ends_with(SUFFIX)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.contains("..")
}

/// `telepi-YYYYMMDD-HHMMSS-CAMERA.mp4` in UTC, so names sort by time;
/// `telepi-YYYYMMDD-HHMMSS_2-CAMERA.mp4`, `_3`... (after the first in sort
/// order) when `taken` already has one from the same second. The count goes
/// before the camera, whose name may hold `_` and digits itself.
pub fn file_name(at: SystemTime, camera: &str, taken: &VecDeque<FileEntry>) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let clock = secs % 86_400;
    let stem = format!(
        "{PREFIX}{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        clock / 3600,
        clock / 60 % 60,
        clock % 60
    );
    let is_free = |name: &str| taken.iter().all(|f| f.name != name);
    let first = format!("{stem}-{camera}{SUFFIX}");
    if is_free(&first) {
        return first;
    }
    (2..)
        .map(|n| format!("{stem}_{n}-{camera}{SUFFIX}"))
        .find(|name| is_free(name))
        .expect("some suffix is free")
}

/// The camera a recording's name says, if any: recordings from before there
/// were several cameras (`telepi-YYYYMMDD-HHMMSS.mp4`) name none.
pub fn camera_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    // After the stamp (YYYYMMDD-HHMMSS): an optional `_N`, then `-CAMERA`.
    let rest = rest.get("YYYYMMDD-HHMMSS".len()..)?;
    let rest = match rest.strip_prefix('_') {
        Some(count) => count.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    };
    rest.strip_prefix('-').filter(|camera| !camera.is_empty())
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm), to name files without a date crate.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(sizes: &[u64]) -> VecDeque<FileEntry> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &bytes)| FileEntry {
                name: format!("telepi-{i}.mp4"),
                bytes,
            })
            .collect()
    }

    const LIMITS: Limits = Limits {
        max_file_bytes: 100,
        max_file_duration: Duration::from_secs(60),
        quota_bytes: 250,
    };

    #[test]
    fn a_file_rotates_on_size_or_duration() {
        assert!(!LIMITS.rotation_due(99, Duration::from_secs(59)));
        assert!(LIMITS.rotation_due(100, Duration::ZERO));
        assert!(LIMITS.rotation_due(0, Duration::from_secs(60)));
    }

    #[test]
    fn the_oldest_files_go_until_the_rest_fit_but_never_the_newest() {
        assert_eq!(LIMITS.over_quota(&entries(&[100, 100, 50])), 0);
        assert_eq!(LIMITS.over_quota(&entries(&[100, 100, 51])), 1);
        assert_eq!(LIMITS.over_quota(&entries(&[100, 100, 100, 100])), 2);
        assert_eq!(
            LIMITS.over_quota(&entries(&[900])),
            0,
            "the growing file stays"
        );
        assert_eq!(LIMITS.over_quota(&entries(&[10, 900])), 1);
        assert_eq!(LIMITS.over_quota(&VecDeque::new()), 0);
    }

    #[test]
    fn names_sort_by_time_and_never_collide() {
        let at = UNIX_EPOCH + Duration::from_secs(1_764_653_100); // 2025-12-02 05:25:00 UTC
        let mut taken = VecDeque::new();
        let first = file_name(at, "main", &taken);
        assert_eq!(first, "telepi-20251202-052500-main.mp4");
        taken.push_back(FileEntry {
            name: first,
            bytes: 0,
        });
        assert_eq!(
            file_name(at, "main", &taken),
            "telepi-20251202-052500_2-main.mp4"
        );
        assert_eq!(
            file_name(at, "arm", &taken),
            "telepi-20251202-052500-arm.mp4",
            "each camera its own file"
        );
        assert_eq!(
            file_name(
                UNIX_EPOCH + Duration::from_secs(951_782_400),
                "main",
                &taken
            ),
            "telepi-20000229-000000-main.mp4",
            "a leap day"
        );
        assert_eq!(
            file_name(UNIX_EPOCH, "main", &taken),
            "telepi-19700101-000000-main.mp4"
        );
    }

    #[test]
    fn a_name_tells_its_camera() {
        assert_eq!(camera_of("telepi-20251202-052500-main.mp4"), Some("main"));
        assert_eq!(
            camera_of("telepi-20251202-052500_2-arm_2.mp4"),
            Some("arm_2")
        );
        assert_eq!(
            camera_of("telepi-20251202-052500-rear-left.mp4"),
            Some("rear-left")
        );
        assert_eq!(
            camera_of("telepi-20251202-052500.mp4"),
            None,
            "from before cameras had names"
        );
        assert_eq!(camera_of("telepi-20251202-052500_2.mp4"), None);
        assert_eq!(camera_of("notes.mp4"), None);
    }

    #[test]
    fn only_our_own_plain_names_pass() {
        assert!(is_recording_name("telepi-20251202-052500.mp4"));
        assert!(is_recording_name("telepi-20251202-052500_2.mp4"));
        assert!(is_recording_name(
            "telepi-20251202-052500_2-abcdefghijklmnopqrstuvwxyz_-0123.mp4"
        ));
        for bad in [
            "../telepi-1.mp4",
            "telepi-/../x.mp4",
            "telepi-..mp4",
            "other.mp4",
            "telepi-1.mp4.part",
            "telepi-%2e.mp4",
            "",
        ] {
            assert!(!is_recording_name(bad), "{bad}");
        }
    }
}
