use super::*;
use crate::media::encoder::openh264::OpenH264Encoder;
use crate::media::source::pattern::TestPattern;
use crate::media::{VideoEncoder, VideoSource};

const OPERATOR: PeerId = PeerId(1);
const VIEWER: PeerId = PeerId(2);

/// An IDR then P-frames of a 160x120 pattern, as access units.
fn access_units(count: usize) -> Vec<Arc<[u8]>> {
    let mut source = TestPattern::new(160, 120, 30).unwrap();
    let mut encoder = OpenH264Encoder::new(160, 120, 30, 200_000).unwrap();
    (0..count)
        .map(|n| {
            let frame = source.next_frame().unwrap();
            encoder.encode(&frame, n == 0).unwrap().unwrap().into()
        })
        .collect()
}

fn incoming(peer: PeerId, data: &Arc<[u8]>, n: u64, at: Instant) -> Incoming {
    Incoming {
        peer,
        data: data.clone(),
        time: 1_000_000 + n * 3000,
        arrived: at + Duration::from_millis(33 * n),
        contiguous: true,
    }
}

fn used(verdict: Verdict) -> EncodedFrame {
    match verdict {
        Verdict::Use(frame) => frame,
        other => panic!("expected a used frame, got {other:?}"),
    }
}

#[test]
fn only_the_operators_frames_are_used_and_a_viewer_is_logged_once() {
    let t0 = Instant::now();
    let aus = access_units(3);
    let mut camera = OperatorCamera::default();
    assert!(matches!(
        camera.receive(incoming(OPERATOR, &aus[0], 0, t0)),
        Verdict::NotOperator { first: true }
    ));
    assert!(camera.set_operator(Some(OPERATOR)));
    assert!(!camera.set_operator(Some(OPERATOR)), "no change");
    let first = used(camera.receive(incoming(OPERATOR, &aus[0], 0, t0)));
    assert!(first.keyframe);
    assert_eq!(first.rtp_time, 0, "the forwarded timeline starts at 0");
    assert!(matches!(
        camera.receive(incoming(VIEWER, &aus[0], 0, t0)),
        Verdict::NotOperator { first: true }
    ));
    assert!(matches!(
        camera.receive(incoming(VIEWER, &aus[1], 1, t0)),
        Verdict::NotOperator { first: false }
    ));
    let second = used(camera.receive(incoming(OPERATOR, &aus[1], 1, t0)));
    assert!(!second.keyframe);
    assert_eq!(second.rtp_time, 3000);
    let status = camera.status(t0 + Duration::from_millis(40));
    assert_eq!(status.peer, Some(OPERATOR));
    assert!(status.receiving);
    assert_eq!((status.width, status.height), (Some(160), Some(120)));
    assert_eq!((status.frames, status.keyframes), (2, 1));
    assert_eq!(status.refused_frames, 3);
    assert!(!camera.status(t0 + Duration::from_secs(3)).receiving);
}

#[test]
fn a_stream_starts_at_a_keyframe_and_a_gap_waits_for_the_next() {
    let t0 = Instant::now();
    let aus = access_units(4);
    let mut camera = OperatorCamera::default();
    camera.set_operator(Some(OPERATOR));
    // Joined mid-stream: P-frames are no use, and the operator is asked for an IDR.
    assert!(matches!(
        camera.receive(incoming(OPERATOR, &aus[1], 1, t0)),
        Verdict::AwaitingKeyframe
    ));
    assert!(camera.take_keyframe_request(t0));
    assert!(!camera.take_keyframe_request(t0), "one request, one PLI");
    used(camera.receive(incoming(OPERATOR, &aus[0], 2, t0)));
    used(camera.receive(incoming(OPERATOR, &aus[1], 3, t0)));
    let mut gap = incoming(OPERATOR, &aus[3], 5, t0);
    gap.contiguous = false;
    assert!(matches!(camera.receive(gap), Verdict::AwaitingKeyframe));
    assert_eq!(camera.status(t0).frames_awaiting_keyframe, 2);
    let later = t0 + Duration::from_secs(1);
    assert!(camera.take_keyframe_request(later), "the loss asks again");
    assert!(camera.receive(incoming(OPERATOR, &aus[0], 6, t0)).is_use());
}

#[test]
fn a_new_operator_replaces_the_old_one_on_one_continuous_timeline() {
    let t0 = Instant::now();
    let aus = access_units(2);
    let mut camera = OperatorCamera::default();
    camera.set_operator(Some(OPERATOR));
    used(camera.receive(incoming(OPERATOR, &aus[0], 0, t0)));
    let last = used(camera.receive(incoming(OPERATOR, &aus[1], 1, t0)));
    assert!(camera.set_operator(Some(VIEWER)));
    assert!(
        !camera.take_keyframe_request(t0),
        "nothing to ask before the new operator sends"
    );
    assert!(matches!(
        camera.receive(incoming(OPERATOR, &aus[1], 2, t0)),
        Verdict::NotOperator { first: true }
    ));
    // The new operator's P-frame waits; its own clock is far from the old one's.
    let mut p = incoming(VIEWER, &aus[1], 0, t0);
    p.time = 7;
    assert!(matches!(camera.receive(p), Verdict::AwaitingKeyframe));
    assert!(camera.take_keyframe_request(t0));
    let mut idr = incoming(VIEWER, &aus[0], 0, t0);
    idr.time = 3007;
    let first = used(camera.receive(idr));
    assert_eq!(first.rtp_time, last.rtp_time + SWITCH_TICKS);
    let mut next = incoming(VIEWER, &aus[1], 0, t0);
    next.time = 6007;
    assert_eq!(used(camera.receive(next)).rtp_time, first.rtp_time + 3000);
    assert_eq!(camera.status(t0).peer, Some(VIEWER));
    camera.set_operator(None);
    assert!(matches!(
        camera.receive(incoming(VIEWER, &aus[0], 0, t0)),
        Verdict::NotOperator { first: true }
    ));
}

impl Verdict {
    fn is_use(&self) -> bool {
        matches!(self, Verdict::Use(_))
    }
}
