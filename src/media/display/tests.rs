//! The display thread on an in-memory screen, fed real H.264.

use super::memory::MemoryFramebuffer;
use super::*;
use crate::media::encoder::openh264::OpenH264Encoder;
use crate::media::source::pattern::TestPattern;
use crate::media::{EncodedFrame, VideoEncoder, VideoSource};

const SCREEN: Geometry = Geometry {
    width: 200,
    height: 200,
    stride: 200 * 2,
    layout: PixelLayout::RGB565,
};

fn main_camera() -> Show {
    Show::Camera {
        index: 0,
        name: "main".into(),
    }
}

/// `n` access units of the test pattern, the first an IDR.
fn stream(n: usize) -> Vec<EncodedFrame> {
    let mut source = TestPattern::new(160, 120, 30).unwrap();
    let mut encoder = OpenH264Encoder::new(160, 120, 30, 500_000).unwrap();
    (0..n)
        .map(|i| {
            let frame = source.next_frame().unwrap();
            let data = encoder.encode(&frame, i == 0).unwrap().unwrap();
            EncodedFrame {
                keyframe: i == 0,
                data: data.into(),
                captured: frame.captured,
                rtp_time: 0,
            }
        })
        .collect()
}

/// Waits (a bounded while) until `done` holds for the screen's contents.
fn screen_becomes(image: &Mutex<Vec<u8>>, done: impl Fn(&[u8]) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done(&image.lock().unwrap()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn row(image: &[u8], y: usize) -> &[u8] {
    &image[y * SCREEN.stride..][..SCREEN.width as usize * 2]
}

fn is_black(pixels: &[u8]) -> bool {
    pixels.iter().all(|&b| b == 0)
}

#[test]
fn the_stream_is_shown_letterboxed_and_goes_black_when_it_stops() {
    let (screen, image) = MemoryFramebuffer::new(SCREEN);
    let display = Display::start(Box::new(screen), main_camera(), Duration::from_millis(300));
    assert!(
        display.take_keyframe_request(),
        "it asks for a keyframe first"
    );
    for frame in stream(5) {
        display.push(&frame.data, frame.keyframe);
    }
    // 160x120 on 200x200: 200x150 in rows 25..175.
    assert!(
        screen_becomes(&image, |i| !is_black(row(i, 100))),
        "nothing painted: {:?}",
        display.status()
    );
    let shown = image.lock().unwrap().clone();
    let lit: Vec<usize> = (0..200).filter(|&y| !is_black(row(&shown, y))).collect();
    assert!(
        lit.iter().all(|y| (25..175).contains(y)) && lit.len() > 120,
        "the picture in rows 25..175, black bars around it: lit rows {lit:?}"
    );
    let status = display.status();
    assert_eq!(status.device, "memory");
    assert_eq!((status.width, status.bits_per_pixel), (200, 16));
    assert!(status.frames_shown >= 1, "{status:?}");
    assert_eq!(status.decode_errors, 0);

    assert!(
        screen_becomes(&image, is_black),
        "the screen stayed lit after the video stopped"
    );
    assert!(
        display.take_keyframe_request(),
        "the next video starts from a keyframe"
    );
}

#[test]
fn a_stream_joined_mid_gop_waits_for_its_keyframe_and_garbage_is_survived() {
    let (screen, image) = MemoryFramebuffer::new(SCREEN);
    let display = Display::start(Box::new(screen), main_camera(), Duration::from_secs(60));
    let frames = stream(4);
    for frame in &frames[1..] {
        display.push(&frame.data, frame.keyframe);
    }
    let garbage = EncodedFrame {
        data: Arc::from(&[0u8, 0, 0, 1, 0x65, 0x88, 0x84, 0x21][..]),
        keyframe: true,
        ..frames[0].clone()
    };
    display.take_keyframe_request();
    display.push(&garbage.data, garbage.keyframe);
    let deadline = Instant::now() + Duration::from_secs(10);
    while display.status().decode_errors == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(display.status().decode_errors, 1, "garbage is an error");
    assert!(
        display.take_keyframe_request(),
        "it asks for a fresh keyframe"
    );
    for frame in &frames {
        display.push(&frame.data, frame.keyframe);
    }
    assert!(screen_becomes(&image, |i| !is_black(row(i, 100))));
    let status = display.status();
    assert_eq!(status.frames_dropped, 3, "{status:?}");
    drop(display);
    assert!(
        is_black(&image.lock().unwrap()),
        "a stopped display leaves a black screen"
    );
}

#[test]
fn show_names_the_operator_or_a_camera_or_says_which_there_are() {
    let config = |device: Option<&str>, show: Option<&str>| DisplayConfig {
        device: device.map(PathBuf::from),
        show: show.map(String::from),
    };
    let cameras = ["front", "arm"];
    assert_eq!(config(None, Some("x")).show(&cameras), Ok(None));
    assert_eq!(
        config(Some("/dev/fb0"), Some("arm")).show(&cameras),
        Ok(Some(Show::Camera {
            index: 1,
            name: "arm".into()
        }))
    );
    assert_eq!(
        config(Some("/dev/fb0"), Some("operator")).show(&cameras),
        Ok(Some(Show::Operator))
    );
    let e = config(Some("/dev/fb0"), Some("rear"))
        .show(&cameras)
        .unwrap_err();
    assert!(e.contains("\"rear\"") && e.contains("front, arm"), "{e}");
    let e = config(Some("/dev/fb0"), None).show(&cameras).unwrap_err();
    assert!(e.contains("needs show"), "{e}");
}

#[test]
fn a_missing_framebuffer_is_an_error_naming_it() {
    let e = open_framebuffer(std::path::Path::new("/dev/fb97"))
        .err()
        .unwrap();
    assert!(matches!(&e, DisplayError::NoDevice(_)), "{e}");
    assert!(e.to_string().contains("display /dev/fb97"), "{e}");
    let memory = open_framebuffer(std::path::Path::new("memory")).unwrap();
    assert_eq!(memory.geometry(), memory::DEFAULT_GEOMETRY);
}

/// As a sink of the loop, the screen takes the main layer of what it shows,
/// watches only that camera, and its keyframe request goes to that feed.
#[test]
fn as_a_sink_it_takes_only_the_main_layer_of_what_it_shows() {
    use crate::media::layer::Layer;
    use crate::media::sink::{Feed, MediaSink};

    let (screen, _image) = MemoryFramebuffer::new(SCREEN);
    let mut display = Arc::new(Display::start(
        Box::new(screen),
        main_camera(),
        Duration::from_secs(60),
    ));
    let now = Instant::now();
    // Before any keyframe a delta frame is dropped on arrival (counted
    // synchronously), which shows whether it was taken at all.
    let delta = stream(2).pop().unwrap();
    display.video(now, Feed::Camera(1), Layer::Main, &delta);
    display.video(now, Feed::Camera(0), Layer::Low, &delta);
    display.video(now, Feed::Operator, Layer::Main, &delta);
    assert_eq!(display.status().frames_dropped, 0, "none was taken");
    display.video(now, Feed::Camera(0), Layer::Main, &delta);
    assert_eq!(
        display.status().frames_dropped,
        1,
        "its camera's main layer is taken"
    );

    assert_eq!((display.viewers(0), display.viewers(1)), (1, 0));
    assert!(!display.take_keyframe_request(Feed::Operator));
    assert!(!display.take_keyframe_request(Feed::Camera(1)));
    assert!(
        display.take_keyframe_request(Feed::Camera(0)),
        "it asks first"
    );
}
