//! The hardware encoder (`M2mEncoder`) against a real V4L2 memory-to-memory
//! driver: the kernel's `vicodec`, which encodes FWHT through the same
//! stateful encoder interface as the Pi's bcm2835-codec encodes H.264.
//! tests/emulated_pc_m2m.rs runs this binary inside the emulated PC with
//! `TELEPI_M2M_DEVICE` set to vicodec's encoder node; the tests are ignored
//! anywhere else.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use telepi::media::encoder::m2m::{Codec, M2mEncoder};
use telepi::media::{Frame, VideoEncoder};

/// vicodec's smallest picture (its frames are at least 640x360).
const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;

fn device() -> PathBuf {
    std::env::var_os("TELEPI_M2M_DEVICE")
        .expect("TELEPI_M2M_DEVICE is unset: run through tests/vm/pc.sh m2m")
        .into()
}

fn open(path: &Path) -> M2mEncoder {
    M2mEncoder::open_with_codec(path, WIDTH, HEIGHT, 30, 1_000_000, Codec::Fwht)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Grey with a white square that moves 2 pixels a frame: mostly unchanged
/// from one frame to the next, so the encoder predicts (P-frames) unless
/// told to start afresh.
fn frame(width: u32, height: u32, n: u32) -> Frame {
    let mut f = Frame::black_i420(width, height);
    f.data[..(width * height) as usize].fill(100);
    let x0 = (n * 2) % (width - 32);
    for y in 16..48 {
        let row = (y * width + x0) as usize;
        f.data[row..row + 32].fill(235);
    }
    f
}

/// The start of a vicodec picture (`struct fwht_cframe_hdr`).
#[derive(Debug)]
struct Fwht {
    width: u32,
    height: u32,
    intra: bool,
}

fn parse_fwht(picture: &[u8]) -> Fwht {
    const HEADER: usize = 44;
    const I_FRAME: u32 = 1 << 10; // V4L2_FWHT_FL_I_FRAME
    assert!(picture.len() >= HEADER, "{} bytes", picture.len());
    assert_eq!(
        picture[..8],
        [0x4f, 0x4f, 0x4f, 0x4f, 0xff, 0xff, 0xff, 0xff]
    );
    let field = |i: usize| u32::from_be_bytes(picture[8 + 4 * i..][..4].try_into().unwrap());
    assert_eq!(
        picture.len(),
        HEADER + field(8) as usize,
        "the picture is its header's size"
    );
    Fwht {
        width: field(1),
        height: field(2),
        intra: field(3) & I_FRAME != 0,
    }
}

fn encode(encoder: &mut M2mEncoder, n: u32, keyframe: bool) -> Fwht {
    let picture = encoder
        .encode(&frame(WIDTH, HEIGHT, n), keyframe)
        .unwrap_or_else(|e| panic!("frame {n}: {e}"))
        .unwrap_or_else(|| panic!("frame {n}: no picture"));
    parse_fwht(&picture)
}

/// Between two frames the driver has every picture buffer and at most
/// the one frame buffer it just read; it and the encoder agree on which.
fn assert_buffers_balance(encoder: &M2mEncoder, n: u32) {
    let used = encoder
        .buffer_use()
        .unwrap_or_else(|e| panic!("frame {n}: {e}"));
    assert!(used.frames.in_driver <= 1, "frame {n}: {used:?}");
    assert_eq!(
        used.pictures.in_driver, used.pictures.total,
        "frame {n}: {used:?}"
    );
}

/// What this process holds open and mapped of `device`.
#[derive(Debug, PartialEq, Eq)]
struct Held {
    fds: usize,
    device_fds: usize,
    device_maps: usize,
}

fn held(device: &Path) -> Held {
    let links: Vec<PathBuf> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let name = device.to_str().unwrap();
    Held {
        fds: links.len(),
        device_fds: links.iter().filter(|l| l.as_path() == device).count(),
        device_maps: maps.lines().filter(|l| l.ends_with(name)).count(),
    }
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs `body` with telepi's log lines collected; returns them.
fn logged(body: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, body);
    let text = String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned();
    eprint!("{text}");
    text
}

fn warnings_about<'a>(log: &'a str, topic: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|l| l.contains("WARN") && l.contains(topic))
        .collect()
}

#[test]
#[ignore = "needs a V4L2 M2M encoder: tests/emulated_pc_m2m.rs runs it against vicodec"]
fn a_thousand_frames_come_back_as_pictures_and_every_buffer_returns() {
    let path = device();
    let forced = [333, 777];
    let mut intra = Vec::new();
    let log = logged(|| {
        let mut encoder = open(&path);
        let (mut after_warmup, mut rss_warm) = (None, 0);
        for n in 0..1000 {
            if n % 100 == 50 {
                encoder.set_bitrate(500_000 + n * 1000);
            }
            let picture = encode(&mut encoder, n, forced.contains(&n));
            assert_eq!((picture.width, picture.height), (WIDTH, HEIGHT));
            if picture.intra {
                intra.push(n);
            }
            assert_buffers_balance(&encoder, n);
            if n == 100 {
                after_warmup = Some(held(&path));
                rss_warm = resident_kib();
            }
        }
        let now = held(&path);
        assert_eq!(Some(&now), after_warmup.as_ref(), "fds or mappings grew");
        assert_eq!(now.device_maps, 6, "2 frame and 4 picture buffers mapped");
        let grown = resident_kib().saturating_sub(rss_warm);
        assert!(
            grown < 4096,
            "resident memory grew {grown} KiB over 900 frames"
        );
    });
    eprintln!("I-frames at {intra:?}");
    // Each picture is the frame just sent, none lost, none twice: the
    // I-frames come exactly every GOP (vicodec's is 10 frames), counted
    // afresh from each forced one, which lands on the frame asked for.
    assert_eq!(intra[0], 0, "{intra:?}");
    let gop = intra[1] - intra[0];
    assert!(gop > 1, "the encoder predicts between keyframes: {intra:?}");
    for pair in intra.windows(2) {
        assert!(
            pair[1] == pair[0] + gop || forced.contains(&pair[1]),
            "I-frame at {} after {}: {intra:?}",
            pair[1],
            pair[0]
        );
    }
    for n in forced {
        assert!(intra.contains(&n), "no I-frame at {n}: {intra:?}");
    }
    assert!(intra.last().unwrap() + gop >= 1000, "{intra:?}");
    // vicodec has neither FORCE_KEY_FRAME nor a bitrate control: each is
    // said once, and the stream goes on.
    assert_eq!(
        warnings_about(&log, "cannot force a keyframe").len(),
        1,
        "{log}"
    );
    let bitrate: Vec<_> = warnings_about(&log, "bitrate")
        .into_iter()
        .filter(|l| !l.contains("bitrate mode"))
        .collect();
    assert_eq!(bitrate.len(), 1, "{log}");
}

#[test]
#[ignore = "needs a V4L2 M2M encoder: tests/emulated_pc_m2m.rs runs it against vicodec"]
fn a_keyframe_request_starts_a_fresh_stream_where_the_driver_cannot_force_one() {
    let path = device();
    let log = logged(|| {
        let mut encoder = open(&path);
        let kinds: Vec<bool> = (0..8)
            .map(|n| encode(&mut encoder, n, n == 3 || n == 6).intra)
            .collect();
        assert_eq!(
            kinds,
            [true, false, false, true, false, false, true, false],
            "I-frames at 0 and where asked (3, 6), P-frames between"
        );
        assert_buffers_balance(&encoder, 8);
    });
    let said = warnings_about(&log, "cannot force a keyframe");
    assert_eq!(said.len(), 1, "{log}");
    assert!(said[0].contains(path.to_str().unwrap()), "{log}");
    // The H.264 controls vicodec lacks are named, and none is fatal.
    for control in ["H.264 profile", "H.264 level", "IDR period"] {
        assert_eq!(warnings_about(&log, control).len(), 1, "{control}: {log}");
    }
}

#[test]
#[ignore = "needs a V4L2 M2M encoder: tests/emulated_pc_m2m.rs runs it against vicodec"]
fn dropping_and_reopening_releases_the_device_and_its_buffers() {
    let path = device();
    let before = held(&path);
    assert_eq!((before.device_fds, before.device_maps), (0, 0));
    for cycle in 0..10 {
        let mut encoder = open(&path);
        assert_eq!(held(&path).device_maps, 6, "cycle {cycle}");
        let intra: Vec<bool> = (0..3)
            .map(|n| encode(&mut encoder, n, false).intra)
            .collect();
        assert_eq!(intra, [true, false, false], "cycle {cycle}: a fresh stream");
        assert_buffers_balance(&encoder, 3);
        drop(encoder);
        assert_eq!(held(&path), before, "cycle {cycle}");
    }
    // Two at once: each open file is an encoder of its own.
    let (mut a, mut b) = (open(&path), open(&path));
    assert!(encode(&mut a, 0, false).intra);
    assert!(!encode(&mut a, 1, false).intra);
    assert!(encode(&mut b, 0, false).intra, "b's stream starts afresh");
    assert!(!encode(&mut a, 2, false).intra);
    assert!(!encode(&mut b, 1, false).intra);
    drop((a, b));
    assert_eq!(held(&path), before);
}

#[test]
#[ignore = "needs a V4L2 M2M encoder: tests/emulated_pc_m2m.rs runs it against vicodec"]
fn bad_frames_and_wrong_codecs_are_clear_errors_and_the_encoder_goes_on() {
    let path = device();
    let mut encoder = open(&path);
    encode(&mut encoder, 0, false);
    let small = encoder
        .encode(&frame(320, 240, 1), false)
        .expect_err("a frame of another size");
    assert_eq!(small.kind(), io::ErrorKind::InvalidInput);
    assert!(small.to_string().contains("320x240"), "{small}");
    let mut short = frame(WIDTH, HEIGHT, 1);
    short.data.truncate(1000);
    let short = encoder
        .encode(&short, true)
        .expect_err("a frame with too few bytes");
    assert_eq!(short.kind(), io::ErrorKind::InvalidInput, "{short}");
    // The refused frames gave their buffers back.
    assert_buffers_balance(&encoder, 1);
    for n in 1..4 {
        encode(&mut encoder, n, false);
    }
    assert_buffers_balance(&encoder, 4);
    drop(encoder);

    // What the product opens: an H.264 encoder, which vicodec is not.
    let h264 = M2mEncoder::new(&path, WIDTH, HEIGHT, 30, 1_000_000)
        .err()
        .expect("vicodec is no H.264 encoder");
    assert_eq!(h264.kind(), io::ErrorKind::InvalidInput);
    let text = h264.to_string();
    assert!(
        text.contains("FWHT") && text.contains("not YU12 to H264"),
        "{text}"
    );
    let odd = M2mEncoder::open_with_codec(&path, 641, 360, 30, 1_000_000, Codec::Fwht)
        .err()
        .expect("an odd width");
    assert_eq!(odd.kind(), io::ErrorKind::InvalidInput, "{odd}");
}

#[test]
#[ignore = "needs a V4L2 M2M encoder: tests/emulated_pc_m2m.rs runs it against vicodec"]
fn a_size_below_the_drivers_smallest_is_padded_and_the_log_says_so() {
    let path = device();
    let log = logged(|| {
        let mut encoder = M2mEncoder::open_with_codec(&path, 320, 240, 30, 1_000_000, Codec::Fwht)
            .unwrap_or_else(|e| panic!("{e}"));
        for n in 0..3 {
            let picture = encoder
                .encode(&frame(320, 240, n), false)
                .unwrap_or_else(|e| panic!("frame {n}: {e}"))
                .expect("a picture");
            let picture = parse_fwht(&picture);
            assert_eq!((picture.width, picture.height), (WIDTH, HEIGHT));
        }
        assert_buffers_balance(&encoder, 3);
    });
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("320x240") && l.contains("640x360")),
        "the log must say the stream is 640x360, not the 320x240 asked:\n{log}"
    );
}
