#!/usr/bin/env bash
# The one benchmark command: telepi against an RTCBot-style Python/aiortc
# baseline and a native GStreamer webrtcbin peer on this machine, then
# docs/benchmarks.md and its plots.
#
#   bench/run.sh            # full run: builds, installs the baseline's venv, ~8 min
#   bench/run.sh --smoke    # CI smoke: debug telepi, 1 viewer, 2 s, no Python/Chromium
#
# Env: BENCH_SECONDS   window per scenario (default 12)
#      BENCH_VIEWERS   viewer counts (default 1,4,10)
#      BENCH_REPEAT    rounds, medians reported (default 3)
#      BENCH_WAIT=0    measure even while other compilers run (default: wait up to 10 min)
#      BENCH_NO_BUILD=1  use the binaries already built
#      BENCH_PIN=0     don't pin the server to CPU 0 and the viewers to the others
#      BENCH_SERVERS   servers to run (default telepi,baseline,gstreamer)
#      BENCH_CHROMIUM=0  skip the headless-Chromium part
#      BENCH_REPORT=0  leave docs/ alone (results stay in bench/results/)
#      BENCH_CONTENT=camera  every server's camera shows a panning scene with
#                    sensor noise instead of colour bars, and the viewers score
#                    the decoded pictures (luma PSNR); the report goes to
#                    docs/benchmarks-camera.md
# Everything listens and sends on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
case "${1:-}" in
  --smoke) smoke=1 ;;
  "") ;;
  *) echo "usage: bench/run.sh [--smoke]" >&2; exit 2 ;;
esac

BENCH=bench/target/release/telepi-bench
if [ "$smoke" = 1 ]; then
  # The debug build CI has anyway, and the tool built as a debug build in the
  # same target directory: the dependencies they share (str0m, aws-lc,
  # openh264) are compiled once, not again in release.
  cargo build --locked --bin telepi
  cargo build --locked --manifest-path bench/Cargo.toml --target-dir target
  exec target/debug/telepi-bench smoke --telepi target/debug/telepi --logs bench/results/smoke-logs
fi

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  cargo build --release --locked --bin telepi
  cargo build --release --locked --manifest-path bench/Cargo.toml
fi

# The baseline's Python dependencies, from PyPI, in a venv of its own.
bench/baseline/venv.sh >/dev/null
bench/.venv/bin/python bench/baseline/pattern.py >/dev/null
bench/baseline/check-pattern.sh bench/.venv/bin/python

# The GStreamer peer runs under Debian's Python with Debian's GStreamer.
servers="${BENCH_SERVERS:-telepi,baseline,gstreamer}"
if [[ ",$servers," == *,gstreamer,* ]]; then
  gst_packages=(python3-gi python3-numpy gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
    gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-nice openssl)
  missing=()
  for p in "${gst_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "bench: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  bench/baseline/check-pattern.sh /usr/bin/python3
fi

# Other people's compilers on this machine skew every figure: wait for them.
wait_quiet() {
  [ "${BENCH_WAIT:-1}" = 0 ] && return 0
  for i in $(seq 120); do
    pgrep -x rustc >/dev/null || pgrep -x cc1plus >/dev/null || return 0
    [ "$i" = 1 ] && echo "bench: waiting for other compilers to finish (up to 10 min; BENCH_WAIT=0 skips)" >&2
    sleep 5
  done
  echo "bench: the machine is still busy; measuring anyway (see 'other load' in the report)" >&2
}

# Pin the server to CPU 0 and the viewers to the other CPUs, so that viewers
# decoding on the same machine don't evict the server's caches (BENCH_PIN=0: don't).
pin=()
ncpu="$(nproc)"
if [ "${BENCH_PIN:-1}" != 0 ] && [ "$ncpu" -ge 2 ]; then
  pin=(--server-cpus 0 --viewer-cpus "1-$((ncpu - 1))")
fi

content="${BENCH_CONTENT:-bars}"
case "$content" in
  bars) report=docs/benchmarks.md; plots=docs; results=bench/results/run.json ;;
  camera) report=docs/benchmarks-camera.md; plots=docs/camera; results=bench/results/run-camera.json ;;
  *) echo "BENCH_CONTENT: bars or camera" >&2; exit 2 ;;
esac

mkdir -p bench/results "$plots"
wait_quiet
"$BENCH" run "${pin[@]}" \
  --content "$content" \
  --servers "$servers" \
  --viewers "${BENCH_VIEWERS:-1,4,10}" \
  --seconds "${BENCH_SECONDS:-12}" \
  --repeat "${BENCH_REPEAT:-3}" \
  --telepi target/release/telepi \
  --python bench/.venv/bin/python \
  --out "$results"

chromium_json=bench/results/chromium.json
rm -f "$chromium_json"
if [ "${BENCH_CHROMIUM:-1}" != 0 ]; then
  if [ -x /usr/bin/chromium ] && command -v node >/dev/null; then
    (cd bench/browser && npm ci --no-audit --no-fund --silent)
    wait_quiet
    node bench/browser/latency.mjs --servers "$servers" --content "$content" --out "$chromium_json" \
      || echo "bench: the Chromium part failed (see above)" >&2
  else
    echo "bench: no /usr/bin/chromium or node: skipping the Chromium part" >&2
  fi
fi

if [ "${BENCH_REPORT:-1}" != 0 ]; then
  command="bench/run.sh"
  [ "$content" = bars ] || command="BENCH_CONTENT=$content bench/run.sh"
  "$BENCH" report --run "$results" --chromium "$chromium_json" \
    --out "$report" --plots "$plots" --command "$command" \
    --telepi target/release/telepi --venv bench/.venv
fi
