use std::time::UNIX_EPOCH;

use super::*;
use crate::media::record::mp4::tests::encoded_frames;

const LIMITS: Limits = Limits {
    max_file_bytes: 10_000_000,
    max_file_duration: Duration::from_secs(60),
    quota_bytes: 100_000_000,
};

/// Drives a recorder with 30 fps frames (an IDR every `gop`) and collects its actions.
struct Run {
    recorder: Recorder,
    frames: Vec<Vec<u8>>,
    gop: usize,
    t0: Instant,
    n: usize,
    actions: Vec<Action>,
}

impl Run {
    fn new(limits: Limits, gop: usize, existing: Vec<FileEntry>) -> Run {
        Run {
            recorder: Recorder::new(limits, true, existing),
            frames: encoded_frames(160, 120, 2 * gop, gop),
            gop,
            t0: Instant::now(),
            n: 0,
            actions: Vec::new(),
        }
    }

    fn at(&self, frame: usize) -> Instant {
        self.t0 + Duration::from_millis(frame as u64 * 100 / 3)
    }

    /// Feeds `count` more frames, with 20 ms of audio each 20 ms.
    fn frames(&mut self, count: usize) {
        for _ in 0..count {
            let i = self.n;
            let data = &self.frames[i % self.frames.len()];
            let wall = UNIX_EPOCH + Duration::from_secs(1_764_653_100 + i as u64 / 30);
            let at = self.at(i);
            self.recorder
                .video(Stream::Robot, wall, at, data, i.is_multiple_of(self.gop));
            self.recorder.audio(at, &[0xFF; 160]);
            self.n += 1;
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some(a) = self.recorder.poll_action() {
            self.actions.push(a);
        }
    }

    fn created(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Create(_, name) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    fn appends(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::Append(..)))
            .count()
    }
}

#[test]
fn nothing_is_written_until_started_and_then_from_a_keyframe() {
    let mut run = Run::new(LIMITS, 30, Vec::new());
    run.frames(5);
    assert!(run.actions.is_empty(), "not recording");
    run.recorder.start();
    run.drain();
    let wanted = Stream::ALL.map(Action::WantKeyframe);
    assert_eq!(run.actions, wanted, "both cameras are asked for an IDR");
    run.frames(20);
    assert!(run.created().is_empty(), "P-frames cannot start a file");
    assert_eq!(run.recorder.current(Stream::Robot), None);
    run.frames(10);
    assert_eq!(run.created(), ["telepi-20251202-052501.mp4"]);
    assert_eq!(
        run.recorder.current(Stream::Robot),
        Some("telepi-20251202-052501.mp4")
    );
    assert_eq!(
        run.appends(),
        1,
        "the init segment; samples wait for their fragment"
    );
}

#[test]
fn a_fragment_per_second_or_gop_and_stop_writes_the_rest() {
    let mut run = Run::new(LIMITS, 45, Vec::new());
    run.recorder.start();
    run.frames(45 * 3);
    // Fragments at 30 frames (a second), 45 (a keyframe), 75, 90, 120.
    assert_eq!(run.appends(), 1 + 5);
    run.recorder.stop();
    run.drain();
    assert!(matches!(
        run.actions.last(),
        Some(Action::Close(Stream::Robot))
    ));
    assert_eq!(run.appends(), 1 + 6);
    let written: u64 = run
        .actions
        .iter()
        .map(|a| match a {
            Action::Append(_, bytes) => bytes.len() as u64,
            _ => 0,
        })
        .sum();
    assert_eq!(
        run.recorder.files()[0].bytes,
        written,
        "sizes tracked exactly"
    );
    assert_eq!(run.recorder.current(Stream::Robot), None);
    run.frames(50);
    assert_eq!(run.created().len(), 1, "stopped stays stopped");
}

#[test]
fn files_rotate_on_a_keyframe_once_long_enough_and_ask_for_one() {
    let limits = Limits {
        max_file_duration: Duration::from_secs(2),
        ..LIMITS
    };
    let mut run = Run::new(limits, 90, Vec::new());
    run.recorder.start();
    run.frames(61);
    assert_eq!(run.created().len(), 1);
    let asked = run
        .actions
        .iter()
        .filter(|a| **a == Action::WantKeyframe(Stream::Robot))
        .count();
    assert_eq!(asked, 2, "at the start and when the 2 s were up");
    run.frames(29);
    assert_eq!(run.created().len(), 1, "no keyframe yet: the file goes on");
    run.frames(1);
    assert_eq!(
        run.created().len(),
        2,
        "the keyframe at 3 s starts the next file"
    );
    let close = run
        .actions
        .iter()
        .position(|a| *a == Action::Close(Stream::Robot))
        .unwrap();
    assert!(matches!(run.actions[close + 1], Action::Create(..)));
}

#[test]
fn the_quota_deletes_the_oldest_files_also_those_found_at_start() {
    let old = |name: &str| FileEntry {
        name: name.into(),
        bytes: 40_000,
    };
    let limits = Limits {
        max_file_bytes: 30_000,
        quota_bytes: 100_000,
        ..LIMITS
    };
    let existing = vec![
        old("telepi-1.mp4"),
        old("telepi-2.mp4"),
        old("telepi-3.mp4"),
    ];
    let mut run = Run::new(limits, 15, existing);
    run.drain();
    assert_eq!(run.actions, [Action::Delete("telepi-1.mp4".into())]);
    run.recorder.start();
    run.frames(300);
    let deleted: Vec<&str> = run
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert!(deleted.starts_with(&["telepi-1.mp4", "telepi-2.mp4", "telepi-3.mp4"]));
    assert!(run.created().len() >= 3, "{:?}", run.created());
    let total: u64 = run.recorder.files().iter().map(|f| f.bytes).sum();
    assert!(total <= 100_000, "{total}");
}

#[test]
fn lost_frames_skip_to_the_next_keyframe_and_bad_ones_are_ignored() {
    let mut run = Run::new(LIMITS, 30, Vec::new());
    run.recorder.start();
    run.frames(10);
    run.recorder.frames_lost(Stream::Robot);
    run.drain();
    assert_eq!(
        run.actions.last(),
        Some(&Action::WantKeyframe(Stream::Robot))
    );
    let before = run.recorder.files()[0].bytes;
    run.frames(19);
    run.recorder.stop();
    run.drain();
    let after = run.recorder.files()[0].bytes;
    // Only the 10 frames before the loss (and their audio) were written.
    assert!(after - before < 20_000, "{before} -> {after}");

    let mut run = Run::new(LIMITS, 30, Vec::new());
    run.recorder.start();
    let garbage_idr = [
        0, 0, 0, 1, 0x67, 0xFF, 0, 0, 0, 1, 0x68, 0xCE, 0, 0, 0, 1, 0x65, 0x88,
    ];
    run.recorder
        .video(Stream::Robot, UNIX_EPOCH, run.t0, &garbage_idr, true);
    run.drain();
    assert!(run.created().is_empty(), "an unreadable SPS starts nothing");
}

#[test]
fn audio_before_the_first_picture_is_dropped_and_the_rest_placed_in_time() {
    let mut recorder = Recorder::new(LIMITS, true, Vec::new());
    let frames = encoded_frames(160, 120, 2, 30);
    let t0 = Instant::now();
    recorder.start();
    recorder.audio(t0, &[1; 160]);
    recorder.video(
        Stream::Robot,
        UNIX_EPOCH,
        t0 + Duration::from_millis(10),
        &frames[0],
        true,
    );
    recorder.audio(t0 + Duration::from_millis(30), &[2; 160]);
    recorder.stop();
    let fragment = std::iter::from_fn(|| recorder.poll_action())
        .filter_map(|a| match a {
            Action::Append(_, bytes) => Some(bytes),
            _ => None,
        })
        .nth(1)
        .unwrap();
    assert!(fragment.ends_with(&[2; 160]));
    assert!(!fragment.windows(160).any(|w| w == [1; 160]));
    // The audio tfdt: 20 ms after the picture, 160 ticks at 8 kHz.
    let tfdt = fragment
        .windows(4)
        .enumerate()
        .filter(|(_, w)| w == b"tfdt")
        .map(|(i, _)| u64::from_be_bytes(fragment[i + 8..i + 16].try_into().unwrap()))
        .collect::<Vec<_>>();
    assert_eq!(tfdt, [0, 160]);
}

#[test]
fn a_failed_write_ends_the_recording_and_drops_what_was_queued() {
    let limits = Limits {
        max_file_duration: Duration::from_secs(1),
        ..LIMITS
    };
    let old = FileEntry {
        name: "telepi-1.mp4".into(),
        bytes: LIMITS.quota_bytes,
    };
    let mut run = Run::new(limits, 15, vec![old]);
    run.recorder.start();
    // Rotation, a new file and the quota's deletion all queued, not carried out.
    for i in 0..40 {
        let at = run.at(i);
        run.recorder.video(
            Stream::Robot,
            UNIX_EPOCH,
            at,
            &run.frames[i % 30],
            i % 15 == 0,
        );
    }
    run.recorder.fail();
    run.drain();
    assert_eq!(run.actions, [Action::Delete("telepi-1.mp4".into())]);
    assert!(!run.recorder.is_on());
    assert_eq!(run.recorder.current(Stream::Robot), None);
}

#[test]
fn garbage_access_units_and_cut_parameter_sets_never_panic() {
    let mut recorder = Recorder::new(LIMITS, true, Vec::new());
    recorder.start();
    let t0 = Instant::now();
    // A small xorshift: the same bytes every run.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let real_sps = {
        let frames = encoded_frames(160, 120, 1, 1);
        VideoParams::from_access_unit(&frames[0])
            .unwrap()
            .unwrap()
            .sps
    };
    for i in 0..2000u64 {
        let len = (next() % 200) as usize;
        let mut au: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Often a start code and an SPS/PPS/IDR header, sometimes a real SPS cut short.
        if next() % 2 == 0 {
            let header = [0x67, 0x68, 0x65, 0x41][(next() % 4) as usize];
            au.splice(0..0, [0, 0, 0, 1, header]);
        }
        if next() % 8 == 0 {
            let cut = (next() as usize) % real_sps.len();
            au.extend_from_slice(&[0, 0, 1]);
            au.extend_from_slice(&real_sps[..cut]);
        }
        let at = t0 + Duration::from_millis(i * 33);
        recorder.video(Stream::Robot, UNIX_EPOCH, at, &au, next() % 3 == 0);
        recorder.audio(at, &au);
        while recorder.poll_action().is_some() {}
    }
    recorder.stop();
    while recorder.poll_action().is_some() {}
}

#[test]
fn the_operators_camera_goes_to_a_file_of_its_own_without_audio_and_the_quota_spares_it() {
    let limits = Limits {
        max_file_bytes: 30_000,
        quota_bytes: 100_000,
        ..LIMITS
    };
    let mut run = Run::new(limits, 15, Vec::new());
    run.recorder.start();
    let operator = encoded_frames(320, 240, 2, 2);
    let wall = UNIX_EPOCH + Duration::from_secs(1_764_653_100);
    run.recorder
        .video(Stream::Operator, wall, run.t0, &operator[0], true);
    run.frames(300);
    run.recorder
        .video(Stream::Operator, wall, run.at(300), &operator[1], false);
    let name = "telepi-20251202-052500-operator.mp4";
    assert_eq!(run.recorder.current(Stream::Operator), Some(name));
    assert!(
        run.recorder.files().iter().any(|f| f.name == name),
        "the oldest file, open, stays while the robot's rotate out"
    );
    run.recorder.stop();
    run.drain();
    let operator_bytes: Vec<u8> = run
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Append(Stream::Operator, bytes) => Some(bytes.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let init = Muxer::new(
        VideoParams::from_access_unit(&operator[0])
            .unwrap()
            .unwrap(),
        false,
    )
    .init_segment();
    assert!(
        operator_bytes.starts_with(&init),
        "a 320x240 video-only init segment"
    );
    assert!(run.actions.contains(&Action::Close(Stream::Operator)));
    assert!(run.created().len() >= 3, "{:?}", run.created());
    assert!(!run.created()[1..].contains(&name));
}
