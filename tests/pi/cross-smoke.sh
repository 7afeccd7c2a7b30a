#!/usr/bin/env bash
# Runs the cross-built Raspberry Pi binaries on this x86-64 host under
# qemu-user (Debian's qemu-user, no -L: the target's libc comes from the
# multiarch packages libc6:arm64 / libc6:armhf that board/build-cross.sh installs).
#
#   tests/pi/cross-smoke.sh [aarch64|armv7|all]     (default all)
#
# For each target:
#   1. `telepi --version` and `--help` run;
#   2. it starts with --http 127.0.0.1:P --rtc 127.0.0.1:Q, serves the page
#      (GET / is the HTML with the <video>), answers /api/status, and exits 0
#      on SIGTERM;
#   3. the end-to-end tests (every tests/*.rs that starts telepi through
#      tests/common: streaming, teleop, media, audio) run against it with
#      TELEPI_TEST_BIN + TELEPI_TEST_RUNNER=qemu-...: a real str0m WebRTC
#      client on the host connects over loopback UDP and decodes 60 H.264
#      frames of the right size, ping/pong, two peers, reconnect, WHEP, bad
#      input, SIGTERM → exit 0; `drive` on the data channel moves the sim
#      motors in /api/status and silence stops them (deadman), roles, eject;
#      the pipe source (ffmpeg) and snapshot; audio talkback.
#
# TELEPI_PI_TEST_FILTER="name ..." narrows step 3 to tests matching the names.
set -euo pipefail
cd "$(dirname "$0")/../.."

which=${1:-all}
case "$which" in
  all) targets=(aarch64 armv7) ;;
  aarch64 | armv7) targets=("$which") ;;
  *) echo "usage: $0 [aarch64|armv7|all]" >&2; exit 2 ;;
esac

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
command -v qemu-aarch64 >/dev/null && command -v qemu-arm >/dev/null || need+=(qemu-user)
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
for t in "${targets[@]}"; do
  a=$([ "$t" = aarch64 ] && echo arm64 || echo armhf)
  for p in "libc6:$a" "libstdc++6:$a" "libgcc-s1:$a"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends --no-remove "${need[@]}" >/dev/null
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
  echo $((20000 + RANDOM % 20000)); }

for t in "${targets[@]}"; do
  case "$t" in
    aarch64) triple=aarch64-unknown-linux-gnu runner=qemu-aarch64 ;;
    armv7) triple=armv7-unknown-linux-gnueabihf runner=qemu-arm ;;
  esac
  bin="target/$triple/release/telepi"
  [ -x "$bin" ] || { echo "cross-smoke: $bin missing: run board/build-cross.sh $t" >&2; exit 1; }
  echo "cross-smoke: $t ($runner $bin)"
  start=$(date +%s)

  "$runner" "$bin" --version | grep -q '^telepi ' || { echo "cross-smoke: $t --version failed" >&2; exit 1; }
  "$runner" "$bin" --help | grep -q -- '--http' || { echo "cross-smoke: $t --help failed" >&2; exit 1; }

  http=$(free_port) rtc=$(free_port)
  log=$(mktemp)
  "$runner" "$bin" --http "127.0.0.1:$http" --rtc "127.0.0.1:$rtc" 2>"$log" &
  pid=$!
  ok=0
  for _ in $(seq 1 200); do
    if status=$(curl -fsS "http://127.0.0.1:$http/api/status" 2>/dev/null); then ok=1; break; fi
    sleep 0.1
  done
  if [ $ok -eq 0 ]; then
    kill "$pid" 2>/dev/null || true
    cat "$log" >&2
    echo "cross-smoke: $t never answered /api/status" >&2
    exit 1
  fi
  echo "  /api/status: $status"
  jq -e '.video.encoder == "openh264" and (.peers | length) == 0 and .uptime_s >= 0' <<<"$status" >/dev/null ||
    { echo "cross-smoke: $t: unexpected status" >&2; exit 1; }
  page=$(curl -fsS "http://127.0.0.1:$http/")
  grep -qi '<video' <<<"$page" || { echo "cross-smoke: $t: GET / is not the page" >&2; exit 1; }
  echo "  GET /: $(wc -c <<<"$page") bytes of HTML with <video>"
  kill -TERM "$pid"
  code=0
  wait "$pid" || code=$?
  [ $code -eq 0 ] || { cat "$log" >&2; echo "cross-smoke: $t exited $code on SIGTERM" >&2; exit 1; }
  echo "  SIGTERM: exit 0"
  rm -f "$log"

  # Every end-to-end test file that starts telepi through tests/common
  # (streaming, teleop, media, audio, ...), one test at a time: each runs its
  # own emulated telepi, and the host has few cores. Not restarts.rs: 200 ICE
  # restarts and an RSS bound test the session bookkeeping, which is the same
  # code on every architecture, and cost 42 s per arm target under qemu-user.
  tests=()
  for f in $(grep -l 'Server::start' tests/*.rs); do
    [ "$f" = tests/restarts.rs ] || tests+=(--test "$(basename "$f" .rs)")
  done
  TELEPI_TEST_BIN="$PWD/$bin" TELEPI_TEST_RUNNER="$runner" \
    cargo test --locked "${tests[@]}" -- --test-threads=1 ${TELEPI_PI_TEST_FILTER:-}
  echo "cross-smoke: $t passed in $(($(date +%s) - start))s"
done
