//! The hardware encoder against a real memory-to-memory driver, in the
//! emulated PC booted by tests/vm/pc.sh: the kernel's `vicodec` (built out
//! of tree by tests/vm/vicodec.sh), a stateful encoder like the Pi's, of
//! FWHT instead of H.264. tests/m2m_device.rs runs inside the guest on
//! vicodec's encoder node, once through the single-planar API and once
//! through the multi-planar one (the Pi's); `telepi --list-devices` must
//! show vicodec as a codec that is no H.264 encoder. Run through
//! tests/vm/pc.sh, never alone.

mod common;

use std::time::Duration;

use common::guest::Guest;

const TELEPI: &str = env!("CARGO_BIN_EXE_telepi");
/// Every test in tests/m2m_device.rs: each must run and pass in the guest.
const DEVICE_TESTS: [&str; 5] = [
    "a_thousand_frames_come_back_as_pictures_and_every_buffer_returns",
    "a_keyframe_request_starts_a_fresh_stream_where_the_driver_cannot_force_one",
    "dropping_and_reopening_releases_the_device_and_its_buffers",
    "bad_frames_and_wrong_codecs_are_clear_errors_and_the_encoder_goes_on",
    "a_size_below_the_drivers_smallest_is_padded_and_the_log_says_so",
];

/// (Re)loads vicodec with `params`; returns its encoder node, found by the
/// name vicodec gives it (its decoders are nodes of their own).
fn load_vicodec(guest: &mut Guest, params: &str) -> String {
    let multiplanar = guest.sh(&format!(
        "modprobe -r vicodec 2>/dev/null; modprobe vicodec {params} && \
         cat /sys/module/vicodec/parameters/multiplanar"
    ));
    assert_eq!(
        multiplanar.trim() == "Y",
        params.contains("multiplanar=1"),
        "vicodec {params}: multiplanar is {multiplanar}"
    );
    let names = guest.sh("grep -l '^stateful-encoder$' /sys/class/video4linux/*/name");
    let nodes: Vec<&str> = names.lines().collect();
    let [name] = nodes[..] else {
        panic!("one vicodec encoder node expected: {names}")
    };
    let node = name
        .trim_start_matches("/sys/class/video4linux/")
        .trim_end_matches("/name");
    format!("/dev/{node}")
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn the_m2m_encoder_drives_vicodec_through_both_buffer_apis() {
    let tests = std::env::var("TELEPI_M2M_TESTS")
        .expect("TELEPI_M2M_TESTS (the m2m_device test binary) is unset: run tests/vm/pc.sh");
    let mut guest = Guest::boot();
    for params in ["", "multiplanar=1"] {
        let node = load_vicodec(&mut guest, params);
        let (status, out) = guest.run(
            &format!("TELEPI_M2M_DEVICE={node} {tests} --ignored --test-threads=1 --color never --show-output"),
            Duration::from_secs(1200),
        );
        eprintln!("vicodec {params}: {node}\n{out}");
        assert_eq!(status, 0, "vicodec {params}: {out}");
        for name in DEVICE_TESTS {
            assert!(
                out.contains(&format!("test {name} ... ok")),
                "vicodec {params}: {name} did not pass:\n{out}"
            );
        }
    }
}

#[test]
#[ignore = "needs the emulated PC: tests/vm/pc.sh"]
fn list_devices_shows_vicodec_as_an_m2m_codec_but_no_h264_encoder() {
    let mut guest = Guest::boot();
    let node = load_vicodec(&mut guest, "");
    let out = guest.sh(&format!("{TELEPI} --list-devices"));
    let mut lines = out.lines();
    lines
        .find(|l| l.starts_with(&format!("{node}: vicodec (driver vicodec")))
        .unwrap_or_else(|| panic!("{node} not listed as vicodec:\n{out}"));
    let role = lines.next().unwrap_or_default();
    assert!(
        role.contains("memory-to-memory codec: YU12")
            && role.ends_with("-> FWHT (not an H.264 encoder)"),
        "{node}: {role}\n{out}"
    );
    assert!(
        out.contains("v4l2m2m: not available (no V4L2 H.264 encoder found)"),
        "{out}"
    );
}
