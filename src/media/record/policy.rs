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

    /// The oldest files (front of `files`) to delete so the rest fit in the
    /// quota. The newest and those `open` says are being written always stay.
    pub fn over_quota(
        &self,
        files: &VecDeque<FileEntry>,
        open: impl Fn(&FileEntry) -> bool,
    ) -> Vec<String> {
        let mut total: u64 = files.iter().map(|f| f.bytes).sum();
        let mut delete = Vec::new();
        for file in files.iter().take(files.len().saturating_sub(1)) {
            if total <= self.quota_bytes {
                break;
            }
            if !open(file) {
                total -= file.bytes;
                delete.push(file.name.clone());
            }
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

/// `telepi-YYYYMMDD-HHMMSS.mp4` in UTC, so names sort by time; `_2`, `_3`... (after the first in sort order)
/// when `taken` already has one from the same second. `tag` (e.g. `-operator`) follows the time.
pub fn file_name(at: SystemTime, tag: &str, taken: &VecDeque<FileEntry>) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let clock = secs % 86_400;
    let stem = format!(
        "{PREFIX}{year:04}{month:02}{day:02}-{:02}{:02}{:02}{tag}",
        clock / 3600,
        clock / 60 % 60,
        clock % 60
    );
    let is_free = |name: &str| taken.iter().all(|f| f.name != name);
    let first = format!("{stem}{SUFFIX}");
    if is_free(&first) {
        return first;
    }
    (2..)
        .map(|n| format!("{stem}_{n}{SUFFIX}"))
        .find(|name| is_free(name))
        .expect("some suffix is free")
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
        let count = |sizes: &[u64]| LIMITS.over_quota(&entries(sizes), |_| false).len();
        assert_eq!(count(&[100, 100, 50]), 0);
        assert_eq!(count(&[100, 100, 51]), 1);
        assert_eq!(count(&[100, 100, 100, 100]), 2);
        assert_eq!(count(&[900]), 0, "the growing file stays");
        assert_eq!(count(&[10, 900]), 1);
        assert_eq!(count(&[]), 0);
        assert_eq!(
            LIMITS.over_quota(&entries(&[100, 100, 100, 100]), |_| false),
            ["telepi-0.mp4", "telepi-1.mp4"]
        );
    }

    #[test]
    fn a_file_being_written_stays_however_old() {
        let open = |f: &FileEntry| f.name == "telepi-0.mp4";
        assert_eq!(
            LIMITS.over_quota(&entries(&[100, 100, 100, 100]), open),
            ["telepi-1.mp4", "telepi-2.mp4"]
        );
    }

    #[test]
    fn names_sort_by_time_and_never_collide() {
        let at = UNIX_EPOCH + Duration::from_secs(1_764_653_100); // 2025-12-02 05:25:00 UTC
        let mut taken = VecDeque::new();
        let first = file_name(at, "", &taken);
        assert_eq!(first, "telepi-20251202-052500.mp4");
        taken.push_back(FileEntry {
            name: first,
            bytes: 0,
        });
        assert_eq!(file_name(at, "", &taken), "telepi-20251202-052500_2.mp4");
        assert_eq!(
            file_name(at, "-operator", &taken),
            "telepi-20251202-052500-operator.mp4"
        );
        assert_eq!(
            file_name(UNIX_EPOCH + Duration::from_secs(951_782_400), "", &taken),
            "telepi-20000229-000000.mp4",
            "a leap day"
        );
        assert_eq!(
            file_name(UNIX_EPOCH, "", &taken),
            "telepi-19700101-000000.mp4"
        );
    }

    #[test]
    fn only_our_own_plain_names_pass() {
        assert!(is_recording_name("telepi-20251202-052500.mp4"));
        assert!(is_recording_name("telepi-20251202-052500_2.mp4"));
        assert!(is_recording_name("telepi-20251202-052500-operator.mp4"));
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
