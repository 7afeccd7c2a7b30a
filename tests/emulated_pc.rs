//! telepi against real kernel drivers, in an emulated PC booted by
//! tests/vm/pc.sh: the `vivid` camera (every pixel format telepi reads,
//! mode negotiation, unplug and errors mid-stream, --list-devices) and the
//! `snd-aloop` sound card (microphone and push-to-talk), two vivid devices
//! as two cameras, and the robot's screen on the `bochs` DRM driver's
//! /dev/fb0 (QEMU's standard VGA, seen from the host through the monitor's
//! `screendump`), showing a camera and the operator's (telepresence). The telepi binary
//! runs in the guest; the viewers are real WebRTC clients on the host side
//! of the guest's network link. Run through tests/vm/pc.sh, never alone.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::camera::Camera;
use common::guest::Guest;
use common::monitor::{Monitor, Screen};
use common::{Luma, Peer, Server};

const TELEPI: &str = env!("CARGO_BIN_EXE_telepi");
const HTTP: &str = "10.0.2.2:8080";
const RTC: &str = "10.0.2.2:50000";
const PATIENCE: Duration = common::guest::TELEPI_PATIENCE;

fn addr(a: &str) -> SocketAddr {
    a.parse().unwrap()
}

/// Starts telepi in the guest with `config` and waits until it answers.
fn start(guest: &mut Guest, config: &str) -> Server {
    guest.write_file("/tmp/telepi.toml", config);
    guest.start_telepi("--config /tmp/telepi.toml", addr(HTTP), addr(RTC))
}

/// The keys of one camera table: `device` in `format`, encoded with openh264.
fn camera_keys(device: &str, format: &str, width: u32, height: u32, fps: u32) -> String {
    format!(
        "source = \"{device}\"\nformat = \"{format}\"\nencoder = \"openh264\"\n\
         width = {width}\nheight = {height}\nfps = {fps}\n"
    )
}

const NO_AUDIO_SIM_DRIVE: &str =
    "[audio]\nsource = \"none\"\nsink = \"none\"\n[drive]\nbackend = \"sim\"\n";

fn camera_config(format: &str, width: u32, height: u32, fps: u32) -> String {
    let camera = camera_keys("/dev/video0", format, width, height, fps);
    format!("[video]\n{camera}{NO_AUDIO_SIM_DRIVE}")
}

/// Loads vivid with one capture node (/dev/video0, input 0: its webcam),
/// its text overlay off: at small sizes the text covers the bars.
fn load_vivid(guest: &mut Guest) {
    guest
        .sh("modprobe vivid n_devs=1 node_types=0x1 && v4l2-ctl -d /dev/video0 -c osd_text_mode=2");
}

/// vivid's default picture is a 75% colour bar: white, yellow, cyan,
/// green, magenta, red, blue, black, left to right, so luma falls bar by
/// bar across the middle row. telepi's own test pattern does not.
fn assert_colour_bars(luma: &Luma) {
    let row = luma.height / 2;
    let bars: Vec<u8> = (0..8)
        .map(|i| luma.at((2 * i + 1) * luma.width / 16, row))
        .collect();
    assert!(
        bars.windows(2).all(|w| w[0] > w[1]) && bars[0] - bars[7] > 120,
        "not vivid's colour bars: luma across the middle row {bars:?}"
    );
}

/// Connects a viewer and waits for `frames` more decoded frames.
fn watch(server: &Server, frames: usize) -> Peer {
    let mut viewer = Peer::connect(server);
    assert!(
        viewer.run_until(PATIENCE, |p| p.frames_decoded >= frames),
        "{} frames decoded; status {}",
        viewer.frames_decoded,
        server.status()
    );
    viewer
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn vivid_streams_to_a_viewer_in_every_format_telepi_reads() {
    let mut guest = Guest::boot();
    load_vivid(&mut guest);
    for format in ["auto", "yuyv", "nv12", "yu12"] {
        let server = start(&mut guest, &camera_config(format, 640, 480, 15));
        let viewer = watch(&server, 10);
        assert_eq!(viewer.last_size, Some((640, 480)), "{format}");
        assert_colour_bars(viewer.last_luma.as_ref().unwrap());
        let video = &server.status()["video"];
        assert_eq!(video["source"], "v4l2:/dev/video0", "{video}");
        assert_eq!(
            video["fps"], 15,
            "vivid must run at the asked rate: {video}"
        );
        drop(viewer);
        let (status, log) = guest.stop_telepi();
        assert_eq!(status, 0, "{log}");
        let capturing = log
            .lines()
            .find(|l| l.contains("capturing"))
            .unwrap_or_default();
        eprintln!("{format}: {capturing}");
        if format != "auto" {
            assert!(
                capturing.contains(&format.to_uppercase()),
                "{format}: {log}"
            );
        }
    }
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn a_size_the_camera_lacks_becomes_the_nearest_and_the_log_says_so() {
    let mut guest = Guest::boot();
    load_vivid(&mut guest);
    // vivid's webcam has 320x180 and 640x360, not 320x240.
    let server = start(&mut guest, &camera_config("yuyv", 320, 240, 30));
    let viewer = watch(&server, 10);
    assert_eq!(viewer.last_size, Some((320, 180)));
    assert_colour_bars(viewer.last_luma.as_ref().unwrap());
    assert_eq!(server.status()["video"]["fps"], 30);
    let (status, log) = guest.stop_telepi();
    assert_eq!(status, 0, "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("320x240") && l.contains("320x180")),
        "the log must say what was asked and what was chosen:\n{log}"
    );
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn list_devices_shows_vivid_and_its_formats() {
    let mut guest = Guest::boot();
    load_vivid(&mut guest);
    let out = guest.sh(&format!("{TELEPI} --list-devices"));
    assert!(out.contains("/dev/video0: vivid"), "{out}");
    for usable in ["YUYV", "NV12", "YU12"] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(usable) && !l.contains("not usable")),
            "{usable} should be listed as usable:\n{out}"
        );
    }
    assert!(out.contains("640x480"), "{out}");
    // Big-endian variants are named as v4l2-ctl names them, not as a second "Y16".
    assert!(out.contains("Y16 -BE"), "{out}");
}

/// Waits until the viewer has decoded `more` frames beyond what it had.
fn frames_resume(viewer: &mut Peer, server: &Server, more: usize, what: &str) {
    let before = viewer.frames_decoded;
    assert!(
        viewer.run_until(PATIENCE, |p| p.frames_decoded >= before + more),
        "{what}: the stream did not resume ({} frames); status {}",
        viewer.frames_decoded - before,
        server.status()
    );
    assert_colour_bars(viewer.last_luma.as_ref().unwrap());
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn a_camera_unplugged_mid_stream_comes_back_and_errors_recover() {
    let mut guest = Guest::boot();
    load_vivid(&mut guest);
    let server = start(&mut guest, &camera_config("yuyv", 320, 180, 15));
    let mut viewer = watch(&server, 5);

    for error in [
        "inject_vidioc_qbuf_error",
        "inject_fatal_streaming_error",
        "inject_v4l2_buf_flag_error",
    ] {
        guest.sh(&format!("v4l2-ctl -d /dev/video0 -c {error}=1"));
        frames_resume(&mut viewer, &server, 10, error);
    }

    // A USB-style unplug: the node goes away once telepi lets go of it,
    // then the driver comes back (here by reloading it). In the background,
    // so the viewer keeps talking to telepi meanwhile.
    guest.sh("{ v4l2-ctl -d /dev/video0 -c disconnect=1; \
           for i in $(seq 1 100); do modprobe -r vivid 2>/dev/null && break; sleep 0.2; done; \
           lsmod | grep -c '^vivid' >/tmp/vivid-left; sleep 2; \
           modprobe vivid n_devs=1 node_types=0x1 && v4l2-ctl -d /dev/video0 -c osd_text_mode=2; \
         } >/tmp/replug.log 2>&1 &");
    frames_resume(&mut viewer, &server, 10, "after the camera came back");
    assert_eq!(
        guest.sh("cat /tmp/vivid-left").trim(),
        "0",
        "telepi kept the unplugged camera open"
    );
    assert_eq!(server.status()["video"]["source"], "v4l2:/dev/video0");

    let (status, log) = guest.stop_telepi();
    assert_eq!(status, 0, "{log}");
    for said in ["camera lost", "camera back"] {
        assert!(log.contains(said), "the log must say {said:?}:\n{log}");
    }
    eprintln!(
        "{}",
        log.lines()
            .filter(|l| l.contains("camera "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn a_camera_that_fails_to_start_streaming_is_a_clear_error() {
    let mut guest = Guest::boot();
    load_vivid(&mut guest);
    guest.sh("v4l2-ctl -d /dev/video0 -c inject_vidioc_streamon_error=1");
    guest.write_file("/tmp/t.toml", &camera_config("yuyv", 320, 180, 15));
    let (status, out) = guest.run(&format!("{TELEPI} --config /tmp/t.toml"), PATIENCE);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("STREAMON"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
}

/// Rough frequency of a signal sampled at 8 kHz, from its zero crossings.
fn frequency(samples: &[i16]) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / 8000.0)
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn alsa_loopback_carries_the_microphone_and_push_to_talk() {
    let mut guest = Guest::boot();
    // snd-aloop: what is played on device 0 subdevice N is captured on device 1 subdevice N.
    guest
        .sh("modprobe snd-aloop index=0 id=Loopback pcm_substreams=2 && test -e /dev/snd/pcmC0D1c");
    let config = "[video]\nsource = \"pattern\"\nwidth = 160\nheight = 120\nfps = 5\n\
                  [audio]\nsource = \"alsa:plughw:Loopback,1,0\"\nsink = \"alsa:plughw:Loopback,0,1\"\n\
                  [drive]\nbackend = \"sim\"\n";
    // The robot's "microphone" hears a 440 Hz tone.
    guest.sh(
        "sox -q -n -r 8000 -c 1 -b 16 -t alsa plughw:Loopback,0,0 synth 120 sine 440 vol 0.5 \
         >/tmp/tone.log 2>&1 & echo $! >/tmp/tone.pid",
    );
    let server = start(&mut guest, config);
    let mut operator = Peer::connect_with_audio(&server);
    assert!(
        operator.run_until(PATIENCE, |p| p.audio_samples.len() >= 8000),
        "{} audio packets; status {}",
        operator.audio_packets,
        server.status()
    );
    let heard = frequency(operator.audio_samples.make_contiguous());
    eprintln!("microphone: {heard:.0} Hz at the viewer (440 Hz played)");
    assert!((heard - 440.0).abs() < 20.0, "heard {heard:.0} Hz");
    assert_eq!(
        server.status()["audio"]["source"],
        "alsa:plughw:Loopback,1,0"
    );

    // Push-to-talk: the operator's 400 Hz square wave comes out of the loopback's other side.
    operator.send(r#"{"type":"claim"}"#);
    assert!(operator.run_until(PATIENCE, |p| p
        .last_message("role")
        .is_some_and(|r| r["role"] == "operator")));
    guest.sh(
        "arecord -q -D plughw:Loopback,1,1 -f S16_LE -r 8000 -c 1 -d 3 /tmp/talk.wav \
         >/tmp/arecord.log 2>&1 & echo $! >/tmp/arecord.pid",
    );
    // 5 s of talk around a 3 s recording.
    for _ in 0..250 {
        operator.send_audio();
        operator.run_for(Duration::from_millis(20));
    }
    // Zero crossings counted in the guest (sox's "rough frequency" reads a
    // square wave as twice its frequency) over the samples that are not
    // silence (gaps, if any, are not the tone's); sox's header is 2 lines.
    let out = guest.sh(
        "wait $(cat /tmp/arecord.pid); sox /tmp/talk.wav -t dat - | \
         awk 'NR > 2 && ($2 > 0.05 || $2 < -0.05) { n++; neg = ($2 < 0); if (n > 1 && neg != prev) c++; prev = neg; if ($2 > peak) peak = $2 } \
         END { print n, c, peak }'",
    );
    let numbers: Vec<f64> = out
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [samples, crossings, peak] = numbers[..] else {
        panic!("recording not measured: {out}")
    };
    let heard = crossings / 2.0 / (samples / 8000.0);
    eprintln!("push-to-talk: {heard:.0} Hz, peak {peak:.2} at the speaker (400 Hz sent)");
    assert!(peak > 0.5, "the speaker stayed quiet: {out}");
    assert!((heard - 400.0).abs() < 40.0, "heard {heard:.0} Hz");
    drop(operator);
    let (status, log) = guest.stop_telepi();
    assert_eq!(status, 0, "{log}");

    // A busy device (another program holds the speaker) and a missing card are clear errors.
    guest.sh(
        "sox -q -n -t alsa hw:Loopback,0,2 synth 120 sine 300 >/tmp/hold.log 2>&1 & echo $! >/tmp/hold.pid; sleep 2",
    );
    for (audio, says) in [
        ("source = \"none\"\nsink = \"alsa:hw:Loopback,0,2\"", "busy"),
        (
            "source = \"alsa:hw:NoSuchCard\"\nsink = \"none\"",
            "nosuchcard",
        ),
    ] {
        let config = format!(
            "[video]\nsource = \"pattern\"\n[audio]\n{audio}\n[drive]\nbackend = \"sim\"\n"
        );
        guest.write_file("/tmp/bad.toml", &config);
        let (status, out) = guest.run(
            &format!("timeout 30 {TELEPI} --config /tmp/bad.toml --http {HTTP} --rtc {RTC}"),
            PATIENCE,
        );
        assert_eq!(status, 1, "{audio}: {out}");
        assert!(out.to_lowercase().contains(says), "{audio}: {out}");
    }
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn two_vivid_devices_are_two_cameras() {
    let mut guest = Guest::boot();
    guest.sh("modprobe vivid n_devs=2 node_types=0x1,0x1 && \
         for d in 0 1; do v4l2-ctl -d /dev/video$d -c osd_text_mode=2 || exit 1; done");
    let camera = |name: &str, device: &str, width: u32, height: u32| {
        let keys = camera_keys(device, "yuyv", width, height, 5);
        format!("[[video]]\nname = \"{name}\"\n{keys}")
    };
    let config = format!(
        "{}{}{NO_AUDIO_SIM_DRIVE}",
        camera("front", "/dev/video0", 640, 360),
        camera("rear", "/dev/video1", 320, 180)
    );
    let server = start(&mut guest, &config);
    let mut viewer = Peer::connect_videos(&server, 2);
    assert!(
        viewer.run_until(PATIENCE, |p| {
            p.frames_decoded >= 5 && p.more_tracks[0].frames_decoded >= 5
        }),
        "decoded {} and {} frames; status {}",
        viewer.frames_decoded,
        viewer.more_tracks[0].frames_decoded,
        server.status()
    );
    let rear = &viewer.more_tracks[0];
    assert_eq!(viewer.last_size, Some((640, 360)));
    assert_eq!(rear.last_size, Some((320, 180)));
    assert_colour_bars(viewer.last_luma.as_ref().unwrap());
    assert_colour_bars(rear.last_luma.as_ref().unwrap());
    let status = server.status();
    let sources: Vec<_> = status["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["source"].clone())
        .collect();
    assert_eq!(sources, ["v4l2:/dev/video0", "v4l2:/dev/video1"]);
    drop(viewer);
    let (status, log) = guest.stop_telepi();
    assert_eq!(status, 0, "{log}");
}

/// QEMU's standard VGA through the `bochs` DRM driver: /dev/fb0 by DRM's
/// fbdev emulation. The text console lets go of it, as on a kiosk, so
/// only telepi draws there.
fn load_screen(guest: &mut Guest) {
    guest.sh(
        "modprobe bochs && for v in /sys/class/vtconsole/vtcon*; do \
         grep -q 'frame buffer' $v/name && echo 0 > $v/bind; done; \
         for i in $(seq 1 50); do test -e /dev/fb0 && break; sleep 0.1; done; test -e /dev/fb0",
    );
}

/// Takes screenshots until `done` holds for one; panics after [`PATIENCE`].
fn screen_until(
    monitor: &mut Monitor,
    server: &Server,
    what: &str,
    done: impl Fn(&Screen) -> bool,
) -> Screen {
    let pause = || std::thread::sleep(Duration::from_millis(500));
    screen_until_between(monitor, server, what, pause, done)
}

/// [`screen_until`], running `between` (about half a second of it) before
/// each screenshot after the first.
fn screen_until_between(
    monitor: &mut Monitor,
    server: &Server,
    what: &str,
    mut between: impl FnMut(),
    done: impl Fn(&Screen) -> bool,
) -> Screen {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let screen = monitor.screen();
        if done(&screen) {
            return screen;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: lit rows {:?}; status {}",
            screen.lit_rows().first()..screen.lit_rows().last(),
            server.status()
        );
        between();
    }
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn the_screen_shows_the_camera_letterboxed_and_goes_black_when_it_stops() {
    let mut guest = Guest::boot();
    let mut monitor = Monitor::connect();
    load_vivid(&mut guest);
    load_screen(&mut guest);
    let config = format!(
        "{}[display]\ndevice = \"/dev/fb0\"\nshow = \"main\"\n",
        camera_config("yuyv", 320, 180, 5)
    );
    // Nobody watches: the screen alone keeps the camera running.
    let server = start(&mut guest, &config);
    // 320x180 on the 640x480 screen: 640x360, rows 60 to 419.
    let screen = screen_until(&mut monitor, &server, "the camera never showed", |s| {
        s.lit_rows().first() == Some(&60) && s.lit_rows().last() == Some(&419)
    });
    assert_eq!((screen.width, screen.height), (640, 480));
    assert_colour_bars(&screen.luma(60..420));
    let display = server.status()["display"].clone();
    assert_eq!(display["device"], "/dev/fb0", "{display}");
    assert_eq!(
        (display["width"].as_u64(), display["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert!(display["frames_shown"].as_u64() > Some(0), "{display}");
    eprintln!("display: {display}");

    // Unplugged: the driver goes once telepi lets go of its node.
    guest.sh("v4l2-ctl -d /dev/video0 -c disconnect=1; \
         for i in $(seq 1 100); do modprobe -r vivid 2>/dev/null && break; sleep 0.2; done; \
         ! grep -q '^vivid ' /proc/modules");
    screen_until(&mut monitor, &server, "the screen stayed lit", |s| {
        s.lit_rows().is_empty()
    });
    let (status, log) = guest.stop_telepi();
    assert_eq!(status, 0, "{log}");
}

/// The robot's screen shows the operator's camera; its own camera is
/// telepi's pattern, small and slow (nobody watches it here).
fn operator_on_screen() -> String {
    format!(
        "[video]\nsource = \"pattern\"\nwidth = 160\nheight = 120\nfps = 5\n\
         {NO_AUDIO_SIM_DRIVE}[display]\ndevice = \"/dev/fb0\"\nshow = \"operator\"\n"
    )
}

/// Sends about half a second of `camera` from `sender` at ~10 fps (a pace
/// the guest decodes and paints), running `other` too.
fn half_a_second_of(camera: &mut Camera, sender: &mut Peer, other: &mut Peer) {
    for _ in 0..5 {
        camera.stream(sender, &mut [&mut *other], 1);
        sender.run_for(Duration::from_millis(90));
    }
}

/// telepi's test pattern (the operator's camera here) at full range: its
/// eight bars scroll, so each of their luma levels covers a share of the
/// picture wherever they are, and nothing else does.
fn assert_pattern_bars(luma: &Luma) {
    // The bars' limited-range Y (235 white .. 16 black), as the screen shows it.
    let levels = [235u32, 210, 170, 145, 106, 81, 41, 16].map(|y| (y - 16) * 255 / 219);
    let shares: Vec<usize> = levels
        .iter()
        .map(|&level| {
            let near = luma
                .pixels
                .iter()
                .filter(|&&p| u32::from(p).abs_diff(level) <= 12)
                .count();
            near * 100 / luma.pixels.len()
        })
        .collect();
    assert!(
        shares.iter().all(|&share| share >= 3),
        "not the pattern's bars: % of pixels near each bar's luma {shares:?}"
    );
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn the_screen_shows_the_operators_camera_and_only_the_operators() {
    let mut guest = Guest::boot();
    let mut monitor = Monitor::connect();
    load_screen(&mut guest);
    let server = start(&mut guest, &operator_on_screen());
    let mut operator = Peer::connect_operator_camera(&server);
    operator.send(r#"{"type":"claim"}"#);
    assert!(operator.run_until(PATIENCE, |p| p
        .last_message("role")
        .is_some_and(|r| r["role"] == "operator")));
    let mut viewer = Peer::connect_operator_camera(&server);

    // A viewer's camera (4:3: it would fill the screen) is refused, so the
    // screen stays black.
    let mut viewer_camera = Camera::new(160, 120);
    let refused = |server: &Server| server.status()["operator_camera"]["refused_frames"].clone();
    while refused(&server).as_u64() < Some(5) {
        half_a_second_of(&mut viewer_camera, &mut viewer, &mut operator);
    }
    assert_eq!(monitor.screen().lit_rows(), [] as [usize; 0]);

    // The operator's 320x180 on the 640x480 screen: 640x360, rows 60 to
    // 419, black bars above and below.
    let mut operator_camera = Camera::new(320, 180);
    let screen = screen_until_between(
        &mut monitor,
        &server,
        "the operator's camera never showed",
        || half_a_second_of(&mut operator_camera, &mut operator, &mut viewer),
        |s| {
            let lit = s.lit_rows();
            lit.first() >= Some(&60) && lit.last() <= Some(&419) && lit.len() > 300
        },
    );
    assert_eq!((screen.width, screen.height), (640, 480));
    assert_pattern_bars(&screen.luma(80..400));
    let status = server.status();
    let display = &status["display"];
    assert_eq!(display["show"], "operator", "{display}");
    assert!(display["frames_shown"].as_u64() > Some(0), "{display}");
    assert_eq!(status["operator_camera"]["peer"], status["operator"]);
    eprintln!("display: {display}");

    // The operator stops; the viewer goes on sending: the screen goes
    // black after the idle time, and stays so.
    let refused_before = refused(&server).as_u64().unwrap();
    screen_until_between(
        &mut monitor,
        &server,
        "the screen stayed lit after the operator stopped",
        || half_a_second_of(&mut viewer_camera, &mut viewer, &mut operator),
        |s| s.lit_rows().is_empty(),
    );
    assert!(refused(&server).as_u64() > Some(refused_before));
    drop((operator, viewer));
    let (status, log) = guest.stop_telepi();
    assert_eq!(status, 0, "{log}");
}

/// The percentage of the screen that is clearly green: Chromium's fake
/// camera draws a green Pac-Man and clock on a dark green ground.
fn green_share(screen: &Screen) -> usize {
    let green = screen
        .rgb
        .chunks_exact(3)
        .filter(|p| p[1] > 80 && p[1] / 2 > p[0] && p[1] / 2 > p[2])
        .count();
    green * 100 / (screen.width * screen.height)
}

fn differing_pixels(a: &Screen, b: &Screen) -> usize {
    a.rgb
        .chunks_exact(3)
        .zip(b.rgb.chunks_exact(3))
        .filter(|(p, q)| p != q)
        .count()
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn the_screen_shows_chromiums_fake_camera_shared_from_the_page() {
    let mut guest = Guest::boot();
    let mut monitor = Monitor::connect();
    load_screen(&mut guest);
    let server = start(&mut guest, &operator_on_screen());
    let mut chromium = Command::new("node")
        .arg("tests/browser/share-camera.mjs")
        .arg(format!("http://{HTTP}/"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs tests/browser/share-camera.mjs");
    let said = BufReader::new(chromium.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|line| line == "sharing");
    assert!(
        said.is_some(),
        "Chromium did not share its camera: {:?}; status {}",
        chromium.wait(),
        server.status()
    );
    // 640x480 on the 640x480 screen: all of it, Chromium's green picture.
    let first = screen_until(
        &mut monitor,
        &server,
        "Chromium's camera never showed",
        |s| s.lit_rows().len() == s.height && green_share(s) >= 90,
    );
    // Its Pac-Man turns and its clock runs: the screen follows.
    screen_until(&mut monitor, &server, "the screen stood still", |s| {
        differing_pixels(s, &first) > 1000 && green_share(s) >= 90
    });
    let status = server.status();
    let opcam = &status["operator_camera"];
    assert_eq!(opcam["peer"], status["operator"], "{opcam}");
    assert_eq!(
        (&opcam["width"], &opcam["height"]),
        (&640.into(), &480.into())
    );
    eprintln!("display: {}", status["display"]);
    // Chromium leaves: the screen goes black after the idle time.
    drop(chromium.stdin.take());
    let left = chromium.wait().unwrap();
    assert!(left.success(), "share-camera.mjs: {left}");
    screen_until(
        &mut monitor,
        &server,
        "the screen stayed lit after Chromium left",
        |s| s.lit_rows().is_empty(),
    );
    let (status, log) = guest.stop_telepi();
    assert_eq!(status, 0, "{log}");
}
