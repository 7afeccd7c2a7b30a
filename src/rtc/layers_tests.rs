use super::*;

const MAIN: Limits = Limits {
    min: 150_000,
    max: 1_500_000,
};
const LOW: Limits = Limits {
    min: 100_000,
    max: 300_000,
};

fn auto() -> LayerPicker {
    LayerPicker::new(LayerConfig {
        main: MAIN,
        low: Some(LOW),
    })
}

fn link(id: u64, estimate: Option<u64>) -> ViewerLink {
    ViewerLink {
        id: PeerId(id),
        estimate,
        operator: false,
    }
}

fn outputs(p: &mut LayerPicker) -> Vec<LayerOutput> {
    std::iter::from_fn(|| p.poll_output()).collect()
}

/// Runs `update` every 100 ms for `ms`, returning the outputs on the way.
fn run(p: &mut LayerPicker, now: &mut Instant, ms: u64, links: &[ViewerLink]) -> Vec<LayerOutput> {
    let mut out = Vec::new();
    for _ in 0..ms / 100 {
        *now += Duration::from_millis(100);
        p.update(*now, links);
        out.extend(outputs(p));
    }
    out
}

fn layer(p: &LayerPicker, id: u64) -> Layer {
    p.viewer(PeerId(id)).unwrap().layer
}

#[test]
fn fast_viewers_keep_main_and_a_slow_one_moves_to_the_low_layer_at_its_keyframe() {
    let mut p = auto();
    let mut now = Instant::now();
    let links = two_fast_one_slow();
    p.update(now, &[link(1, None), link(2, None), link(3, None)]);
    assert_eq!(layer(&p, 3), Layer::Main, "everybody starts on main");
    assert_eq!(p.viewer(PeerId(3)).unwrap().why, Why::Starting);
    let out = run(&mut p, &mut now, 900, &links);
    assert_eq!(p.viewer(PeerId(3)).unwrap().switching_to, None, "{out:?}");
    let out = run(&mut p, &mut now, 300, &links);
    assert!(out.contains(&LayerOutput::Keyframe(Layer::Low)), "{out:?}");
    let v3 = p.viewer(PeerId(3)).unwrap();
    assert_eq!((v3.layer, v3.switching_to), (Layer::Main, Some(Layer::Low)));
    assert_eq!(p.keyframe_layer(PeerId(3)), Layer::Low);
    assert!(!p.admit(PeerId(3), Layer::Low, false), "not at a P-frame");
    assert!(
        p.admit(PeerId(3), Layer::Main, false),
        "the old layer meanwhile"
    );
    assert!(
        p.admit(PeerId(3), Layer::Low, true),
        "switches at the keyframe"
    );
    assert!(
        !p.admit(PeerId(3), Layer::Main, true),
        "and no longer gets main"
    );
    run(&mut p, &mut now, 800, &links);
    assert_eq!(p.viewer(PeerId(3)).unwrap().why, Why::SlowLink);
    for fast in [1, 2] {
        assert_eq!(layer(&p, fast), Layer::Main);
        assert_eq!(p.viewer(PeerId(fast)).unwrap().why, Why::FastLink);
        assert!(!p.admit(PeerId(fast), Layer::Low, true));
    }
    assert_eq!(p.low_viewers(), 1);
    assert_eq!(
        p.bitrate(Layer::Low),
        Some(255_000),
        "the low layer fits its slowest viewer"
    );
    assert_eq!(
        p.bitrate(Layer::Main),
        Some(1_500_000),
        "the slow viewer does not pull the main encode down"
    );
}

fn two_fast_one_slow() -> [ViewerLink; 3] {
    [
        link(1, Some(5_000_000)),
        link(2, Some(4_000_000)),
        link(3, Some(300_000)),
    ]
}

/// Three viewers settled: 1 and 2 on main, 3 on low.
fn settled() -> (LayerPicker, Instant) {
    let mut p = auto();
    let mut now = Instant::now();
    let links = two_fast_one_slow();
    run(&mut p, &mut now, 1_500, &links);
    assert!(p.admit(PeerId(3), Layer::Low, true));
    run(&mut p, &mut now, 2_000, &links);
    (p, now)
}

#[test]
fn a_viewer_whose_link_degrades_moves_down_after_a_second_not_at_once() {
    let (mut p, mut now) = settled();
    let links = [
        link(1, Some(5_000_000)),
        link(2, Some(500_000)),
        link(3, Some(300_000)),
    ];
    let out = run(&mut p, &mut now, 900, &links);
    assert_eq!(p.viewer(PeerId(2)).unwrap().switching_to, None, "{out:?}");
    let out = run(&mut p, &mut now, 300, &links);
    assert_eq!(p.viewer(PeerId(2)).unwrap().switching_to, Some(Layer::Low));
    assert!(out.contains(&LayerOutput::Keyframe(Layer::Low)), "{out:?}");
    assert_eq!(p.keyframe_layer(PeerId(2)), Layer::Low);
    assert!(p.admit(PeerId(2), Layer::Low, true));
    assert_eq!(layer(&p, 2), Layer::Low);
    // Back up only after its link has been good for 2 s, and not within 2 s of the last switch.
    let links = [link(1, Some(5_000_000)), link(2, Some(5_000_000))];
    let out = run(&mut p, &mut now, 1_900, &links);
    assert!(
        !out.contains(&LayerOutput::Keyframe(Layer::Main)),
        "{out:?}"
    );
    let out = run(&mut p, &mut now, 300, &links);
    assert!(out.contains(&LayerOutput::Keyframe(Layer::Main)), "{out:?}");
    assert!(p.admit(PeerId(2), Layer::Main, true));
    assert_eq!(layer(&p, 2), Layer::Main);
}

#[test]
fn flapping_estimates_never_switch_and_keyframes_stay_bounded() {
    let (mut p, mut now) = settled();
    let mut keyframes = 0;
    for tick in 0..600 {
        // Every 100 ms between a LAN and a 2G link, for a minute.
        let e = if tick % 2 == 0 { 5_000_000 } else { 200_000 };
        now += Duration::from_millis(100);
        p.update(now, &[link(1, Some(5_000_000)), link(2, Some(e))]);
        keyframes += outputs(&mut p)
            .iter()
            .filter(|o| matches!(o, LayerOutput::Keyframe(_)))
            .count();
        assert!(p.admit(PeerId(2), Layer::Main, false));
    }
    assert_eq!(keyframes, 0);
    assert_eq!(layer(&p, 2), Layer::Main);
    // Noticed (and logged) once: its alarm has gone off already.
    let viewer = p.viewers.iter_mut().find(|v| v.id == PeerId(2)).unwrap();
    assert!(!viewer.flips.note(now), "the flapping was noticed before");
    let mut steady = RateAlarm::new(FLAPPING);
    for n in 0..60u64 {
        // A link that changes every 5 s for five minutes is no flapping.
        assert!(!steady.note(now + Duration::from_secs(5 * n)));
    }
}

#[test]
fn a_viewer_never_taking_a_keyframe_gets_requests_once_a_second_at_most() {
    let (mut p, mut now) = settled();
    let links = [link(1, Some(5_000_000)), link(3, Some(5_000_000))];
    let out = run(&mut p, &mut now, 10_000, &links);
    let main_keyframes = out
        .iter()
        .filter(|o| **o == LayerOutput::Keyframe(Layer::Main))
        .count();
    assert!(
        (7..=10).contains(&main_keyframes),
        "{main_keyframes} {out:?}"
    );
}

#[test]
fn nonsense_estimates_and_silence_keep_the_layer_and_do_not_steer_the_encodes() {
    let (mut p, mut now) = settled();
    let links = [
        link(1, Some(5_000_000)),
        link(2, Some(0)),
        link(3, Some(u64::MAX)),
        link(4, None),
    ];
    run(&mut p, &mut now, 5_000, &links);
    assert_eq!(layer(&p, 2), Layer::Main);
    assert_eq!(layer(&p, 3), Layer::Low, "a huge estimate does not lift it");
    assert_eq!(
        layer(&p, 4),
        Layer::Low,
        "no feedback: a joiner stays on the layer it started on"
    );
    assert_eq!(p.viewer(PeerId(2)).unwrap().why, Why::NoEstimate);
    assert_eq!(p.bitrate(Layer::Main), Some(1_500_000));
    assert_eq!(p.bitrate(Layer::Low), Some(255_000), "nobody steers it now");
}

#[test]
fn the_main_encode_follows_the_operator_when_links_conflict() {
    let mut p = auto();
    let mut now = Instant::now();
    let mut operator = link(1, Some(1_000_000));
    operator.operator = true;
    let links = [operator, link(2, Some(5_000_000))];
    run(&mut p, &mut now, 3_000, &links);
    assert_eq!(
        p.bitrate(Layer::Main),
        Some(850_000),
        "fits the operator's link"
    );
    for id in [1, 2] {
        assert_eq!(layer(&p, id), Layer::Main);
        assert_eq!(p.viewer(PeerId(id)).unwrap().switching_to, None);
    }
}

#[test]
fn when_the_slow_viewer_leaves_the_low_encoder_parks() {
    let (mut p, mut now) = settled();
    assert_eq!(p.low_viewers(), 1);
    run(
        &mut p,
        &mut now,
        200,
        &[link(1, Some(5_000_000)), link(2, Some(4_000_000))],
    );
    assert_eq!(p.low_viewers(), 0);
    assert!(p.viewer(PeerId(3)).is_none());
}

#[test]
fn single_layer_follows_the_slowest_viewer_and_everybody_gets_main() {
    let mut p = LayerPicker::new(LayerConfig {
        main: MAIN,
        low: None,
    });
    let mut now = Instant::now();
    let links = [link(1, Some(5_000_000)), link(2, Some(400_000))];
    let out = run(&mut p, &mut now, 1_000, &links);
    let single = ViewerLayer {
        layer: Layer::Main,
        switching_to: None,
        why: Why::Single,
    };
    assert_eq!(
        out,
        [
            LayerOutput::Bitrate(Layer::Main, 340_000),
            LayerOutput::Viewer(PeerId(1), single),
            LayerOutput::Viewer(PeerId(2), single),
        ]
    );
    assert_eq!(p.viewer(PeerId(2)).unwrap().why, Why::Single);
    assert!(p.admit(PeerId(2), Layer::Main, false));
    assert_eq!(p.keyframe_layer(PeerId(9)), Layer::Main);
    assert_eq!(p.low_viewers(), 0);
}

#[test]
fn a_published_stream_caps_the_main_encode_and_lifting_the_cap_lets_it_climb() {
    let mut p = auto();
    let mut now = Instant::now();
    let fast = [link(1, Some(5_000_000))];
    run(&mut p, &mut now, 10_000, &fast);
    let uncapped = p.bitrate(Layer::Main).unwrap();
    p.set_main_cap(Some(400_000));
    run(&mut p, &mut now, 10_000, &fast);
    let capped = p.bitrate(Layer::Main).unwrap();
    assert!(
        capped <= 400_000,
        "main {capped} over the SFU link's 400 kbit/s"
    );
    assert!(capped < uncapped, "{capped} against {uncapped} uncapped");
    p.set_main_cap(None);
    run(&mut p, &mut now, 10_000, &fast);
    assert_eq!(p.bitrate(Layer::Main), Some(uncapped));
}

#[test]
fn a_joiner_starts_on_the_low_layer_while_others_watch_and_a_fast_one_moves_up_soon() {
    let mut p = auto();
    let mut now = Instant::now();
    let first = [link(1, None)];
    run(&mut p, &mut now, 100, &first);
    assert_eq!(layer(&p, 1), Layer::Main, "the first viewer starts on main");
    // Before the picker has seen it, a joiner gets the layer it will start on.
    assert_eq!(p.keyframe_layer(PeerId(2)), Layer::Low);
    assert!(!p.admit(PeerId(2), Layer::Main, true));
    assert!(p.admit(PeerId(2), Layer::Low, true));
    let joined = [link(1, Some(5_000_000)), link(2, None), link(3, None)];
    let out = run(&mut p, &mut now, 100, &joined);
    for id in [2, 3] {
        let v = p.viewer(PeerId(id)).unwrap();
        assert_eq!(
            (v.layer, v.switching_to, v.why),
            (Layer::Low, None, Why::Starting)
        );
        assert_eq!(p.keyframe_layer(PeerId(id)), Layer::Low);
        assert!(!p.admit(PeerId(id), Layer::Main, true), "{out:?}");
    }
    assert_eq!(p.low_viewers(), 2, "the low encoder runs for them");
    // Their first estimates are str0m's initial guess: no verdict yet.
    let guess = [
        link(1, Some(5_000_000)),
        link(2, Some(750_000)),
        link(3, Some(750_000)),
    ];
    run(&mut p, &mut now, 1_000, &guess);
    for id in [2, 3] {
        assert_eq!(p.viewer(PeerId(id)).unwrap().why, Why::Starting);
    }
    // Then 2's estimate climbs to a fast link's, 3's falls to a slow one's.
    let links = [
        link(1, Some(5_000_000)),
        link(2, Some(4_000_000)),
        link(3, Some(300_000)),
    ];
    let out = run(&mut p, &mut now, 400, &links);
    assert_eq!(p.viewer(PeerId(2)).unwrap().switching_to, None, "{out:?}");
    let out = run(&mut p, &mut now, 200, &links);
    assert!(out.contains(&LayerOutput::Keyframe(Layer::Main)), "{out:?}");
    assert_eq!(p.viewer(PeerId(2)).unwrap().switching_to, Some(Layer::Main));
    assert!(
        p.admit(PeerId(2), Layer::Main, true),
        "up at a main keyframe"
    );
    assert_eq!(layer(&p, 2), Layer::Main);
    run(&mut p, &mut now, 3_000, &links);
    assert_eq!(layer(&p, 3), Layer::Low);
    assert_eq!(p.viewer(PeerId(3)).unwrap().why, Why::SlowLink);
    assert_eq!(p.low_viewers(), 1);
    assert_eq!(p.bitrate(Layer::Low), Some(255_000));
}

#[test]
fn a_lone_viewer_and_single_layer_viewers_start_on_main() {
    let mut single = LayerPicker::new(LayerConfig {
        main: MAIN,
        low: None,
    });
    let mut now = Instant::now();
    run(&mut single, &mut now, 100, &[link(1, None)]);
    assert_eq!(single.keyframe_layer(PeerId(2)), Layer::Main);
    run(&mut single, &mut now, 100, &[link(1, None), link(2, None)]);
    assert_eq!(layer(&single, 2), Layer::Main);
    let mut p = auto();
    assert_eq!(p.keyframe_layer(PeerId(1)), Layer::Main);
    assert!(p.admit(PeerId(1), Layer::Main, true));
    run(&mut p, &mut now, 100, &[link(1, Some(300_000))]);
    assert_eq!(layer(&p, 1), Layer::Main);
    assert_eq!(p.bitrate(Layer::Main), Some(255_000), "main follows it");
}

#[test]
fn a_joiner_that_never_sends_feedback_stays_low_shown_as_such_and_steers_nothing() {
    let (mut p, mut now) = settled();
    let links = [
        link(1, Some(5_000_000)),
        link(2, Some(4_000_000)),
        link(3, Some(300_000)),
        link(4, None),
    ];
    run(&mut p, &mut now, 4_000, &links);
    assert_eq!(p.viewer(PeerId(4)).unwrap().why, Why::Starting);
    let out = run(&mut p, &mut now, 2_000, &links);
    let silent = p.viewer(PeerId(4)).unwrap();
    assert_eq!((silent.layer, silent.why), (Layer::Low, Why::NoEstimate));
    assert!(
        out.contains(&LayerOutput::Viewer(PeerId(4), silent)),
        "its HUD is told: {out:?}"
    );
    run(&mut p, &mut now, 10_000, &links);
    assert_eq!(layer(&p, 4), Layer::Low);
    assert_eq!(p.bitrate(Layer::Main), Some(1_500_000));
    assert_eq!(p.bitrate(Layer::Low), Some(255_000));
}

#[test]
fn a_keyframe_request_flood_is_noticed_once_and_requests_still_name_the_layer() {
    let mut rate = RateAlarm::new(KEYFRAME_FLOOD);
    let t0 = Instant::now();
    // A browser after losses: a few a second, for a minute.
    for n in 0..300u64 {
        assert!(!rate.note(t0 + Duration::from_millis(200 * n)));
    }
    let mut flood = RateAlarm::new(KEYFRAME_FLOOD);
    // 100 a second for 10 s: noticed once, in its first second.
    let noticed: Vec<u64> = (0..1_000u64)
        .filter(|n| flood.note(t0 + Duration::from_millis(10 * n)))
        .collect();
    assert_eq!(noticed, [u64::from(KEYFRAME_FLOOD.events)]);
    let (mut p, now) = settled();
    for n in 0..100 {
        let at = now + Duration::from_millis(10 * n);
        assert_eq!(p.keyframe_wanted(at, PeerId(3)), Layer::Low);
        assert_eq!(p.keyframe_wanted(at, PeerId(1)), Layer::Main);
    }
}
