#!/usr/bin/env bash
# Every test telepi has: Rust unit and end-to-end tests, then the headless
# Chromium page test. Installs what is missing first, so it works on a fresh
# Debian/Ubuntu/Raspberry Pi OS machine (as root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

# coturn: tests/ice.rs runs its own turnserver instances on 127.0.0.1;
# mosquitto: tests/broker.rs runs its own broker there, and talks to it with mosquitto-clients;
# g++, gcc-avr, avr-libc, arduino-core-avr, libsimavr-dev: tests/serial.rs builds the
# reference Arduino sketch for the host and for an Uno, and runs the latter on an emulated ATmega328P.
packages=(libasound2-dev libclang-dev cmake nasm pkg-config ffmpeg chromium coturn mosquitto mosquitto-clients
  g++ gcc-avr binutils-avr avr-libc arduino-core-avr libsimavr-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Node may come from Debian or from NodeSource (which bundles npm): check the commands.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
# Debian's chromium-driver is not needed: playwright-core drives Chromium over CDP.
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  # The packages may start Debian's coturn and mosquitto services: the tests
  # start their own, and nobody asked for those servers on this machine.
  # Quietly: without systemd (containers) there is nothing to disable.
  for service in coturn mosquitto; do
    if [[ " ${missing[*]} " == *" $service "* ]]; then
      $sudo systemctl disable --now "$service" >/dev/null 2>&1 || true
    fi
  done
fi

# Each part prints how long it took, so CI's time budget is easy to follow.
run_start=$(date +%s)
part_start=$run_start
took() {
  local now; now=$(date +%s)
  echo "== $1: $((now - part_start)) s (total $((now - run_start)) s)"
  part_start=$now
}

# Janus and simple-whip-server for tests/sfu.rs (publishing over WHIP; ~25 s
# inside cargo test below): Debian packages, or the WHIP server unpacked into
# target/sfu-tools where its package does not install (NodeSource Node.js).
tests/sfu/install.sh
took "SFU packages"

cargo build --locked
# Includes tests/layers.rs (~30 s): a 300 kbit/s viewer behind tc tbf in its
# own network namespace (root; SKIPPED otherwise, a failure under CI=true).
cargo test --locked --all-targets
took "cargo test"

(cd tests/browser && npm ci --no-audit --no-fund --silent)
TELEPI_BIN="$PWD/target/debug/telepi" node --test tests/browser/
took "browser tests"

# ---- Through NATs (tests/nat/run.sh; docs/dev/testing.md) ------------------
# Network namespaces only: coturn on an "internet" bridge, the robot behind a
# symmetric NAT, headless Chromium behind another NAT opening the page over
# HTTPS: video and driving through the TURN relay, a direct path through a
# forwarded UDP port, and STUN-only failing as it must. TELEPI_SKIP_NAT=1 skips it.
if [ "${TELEPI_SKIP_NAT:-0}" != 1 ]; then
  TELEPI_BIN="$PWD/target/debug/telepi" tests/nat/run.sh
  took "NAT tests"
fi

# ---- Links that blip (tests/link/run.sh; docs/dev/testing.md) -------------
# Network namespaces joined by a userspace link emulator, checked against its
# settings first; headless Chromium on the page through a 2 s outage and one
# past the silence limit, an address change (~50 s). SKIPPED without root or namespaces (fails
# under CI=true). TELEPI_SKIP_LINK=1 skips it.
if [ "${TELEPI_SKIP_LINK:-0}" != 1 ]; then
  TELEPI_BIN="$PWD/target/debug/telepi" tests/link/run.sh
  took "link tests"
fi

# The benchmark tool, briefly (telepi only, 1 viewer, 2 s), so it keeps working;
# the full comparison is bench/run.sh (docs/benchmarks.md).
bench/run.sh --smoke
took "bench smoke"

# ---- Fuzzing (fuzz/, docs/dev/fuzzing.md) ---------------------------------------
# Every cargo-fuzz target briefly from its seed corpus (nightly and cargo-fuzz
# are installed by fuzz/run.sh when missing); a crash fails the run and leaves
# its input in fuzz/artifacts/. TELEPI_FUZZ_SECONDS sets the time per target,
# TELEPI_SKIP_FUZZ=1 skips it.
if [ "${TELEPI_SKIP_FUZZ:-0}" != 1 ]; then
  fuzz/run.sh "${TELEPI_FUZZ_SECONDS:-10}"
  took "fuzzing"
fi

# ---- Real kernel drivers in an emulated PC (tests/vm/pc.sh) ------------------
# QEMU (TCG) boots Debian's own kernel; the host-built telepi runs in it
# against vivid (camera), snd-aloop (sound card) and vicodec (M2M encoder,
# built here out of tree), with WebRTC viewers on the host side of a tap
# link inside a private network namespace. TELEPI_SKIP_VM=1 skips it.
if [ "${TELEPI_SKIP_VM:-0}" != 1 ]; then
  tests/vm/pc.sh
  took "emulated PC"
fi

# ---- Raspberry Pi (board/, tests/pi/; docs/start/pi.md) -------------
# Cross-builds aarch64 + armv7 release binaries and their .debs (size budget
# 8 MB stripped), checks the packages and the unit, runs both binaries under
# qemu-user through the end-to-end tests above (WebRTC frames decoded on the
# host, drive/deadman, pipe source, audio), and writes a synthetic Raspberry
# Pi OS image with board/make-image.sh. TELEPI_SKIP_CROSS=1 skips all of it.
if [ "${TELEPI_SKIP_CROSS:-0}" != 1 ]; then
  board/build-cross.sh all
  took "cross builds"
  tests/pi/deb.test.sh
  took "Pi: the .deb packages"
  tests/pi/cross-smoke.sh all
  took "Pi: both binaries under qemu-user"
  tests/pi/image.test.sh
  took "Pi: the OS image"
  # The aarch64 binary on emulated Pi 3 B and 4 B (QEMU raspi3b/raspi4b):
  # GPIO follows drive, the deadman, stop and SIGTERM (~2 min).
  tests/vm/pi.sh --model all
  took "Pi: emulated Pi 3 B and 4 B"
fi
# ---- end Raspberry Pi --------------------------------------------------------
