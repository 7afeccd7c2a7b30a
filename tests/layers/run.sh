#!/usr/bin/env bash
# Per-viewer layers in real browsers (issue 21): telepi and one headless
# Chromium (the fast viewers) in a "robot" network namespace, a second
# Chromium (the slow viewer) in a "slow" namespace joined to it by a veth
# pair capped at 300 kbit/s each way with `tc ... tbf` (no netem on these
# kernels); camera-like content. Nothing is attached to the machine's own
# network; all of it is torn down on exit, error and SIGTERM.
#
#   robot  10.97.0.1  telepi, Chromium with the fast viewers' pages
#   slow   10.97.0.2  Chromium with the slow viewer's page
#
# tests/layers/chromium.test.mjs asserts mechanisms (the slow viewer gets the
# low layer, the fast ones the main one, a joiner switches layers at a
# keyframe); timings are printed as figures for docs/benchmarks.md.
#
#   tests/layers/run.sh          (as root; uses sudo otherwise)
# Env: TELEPI_BIN (default target/debug/telepi), TELEPI_LAYERS_KEEP=1 (keep logs).
# Without root or network namespaces it says SKIPPED, and fails under CI=true.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/../.."

log() { echo "layers: $*" >&2; }
die() { echo "layers: FAIL: $*" >&2; exit 1; }
skip() {
  if [ "${CI:-}" = true ]; then die "cannot run: $*"; fi
  echo "layers: SKIPPED: $*" >&2
  exit 0
}

if [ "$(id -u)" -ne 0 ]; then
  sudo -n true 2>/dev/null || skip "needs root (or password-less sudo) for network namespaces"
  exec sudo --preserve-env=TELEPI_BIN,TELEPI_LAYERS_KEEP,CI,PATH "$self" "$@"
fi
# shellcheck source=tests/netns.sh
source tests/netns.sh
need=()
need_browser_tools
install_needed
find_telepi_and_playwright
netns_begin layers robot slow

# ---- topology ------------------------------------------------------------------
ip netns add "$(ns robot)" 2>/dev/null || skip "cannot create network namespaces here"
ip netns add "$(ns slow)"
for n in "${namespaces[@]}"; do inns "$n" ip link set lo up; done
ip -n "$(ns robot)" link add eth0 type veth peer name eth0 netns "$(ns slow)"
inns robot ip addr add 10.97.0.1/24 dev eth0
inns slow ip addr add 10.97.0.2/24 dev eth0
for n in robot slow; do
  inns "$n" ip link set eth0 up
  inns "$n" tc qdisc add dev eth0 root tbf rate 300kbit burst 16kbit latency 200ms
done

# ---- telepi ----------------------------------------------------------------------
cat >"$work/telepi.toml" <<CONF
state_dir = "$work/state"
[video]
source = "pattern"
pattern = "camera"
encoder = "openh264"
[rtc]
listen = "0.0.0.0:50000"
peer_timeout_ms = 3000
CONF
(cd "$work" && TELEPI_LOG=info exec ip netns exec "$(ns robot)" "$bin" --config telepi.toml --http 0.0.0.0:8080) \
  >"$work/telepi.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  inns slow curl -sf -o /dev/null http://10.97.0.1:8080/ && break
  sleep 0.1
done
inns slow curl -sf -o /dev/null http://10.97.0.1:8080/ || {
  tail -20 "$work/telepi.log" >&2
  die "telepi does not answer through the slow link"
}

# The slow viewer's Chromium, started by Playwright (over a pipe) in its namespace.
cat >"$work/chromium-slow" <<SH
#!/bin/sh
exec ip netns exec $(ns slow) /usr/bin/chromium "\$@"
SH
chmod +x "$work/chromium-slow"

export TELEPI_LAYERS="{\"base\":\"http://10.97.0.1:8080\",\"slowChromium\":\"$work/chromium-slow\",\"log\":\"$work/telepi.log\"}"
started=$(date +%s)
inns robot node --test --test-reporter=spec tests/layers/ &
node_pid=$!
pids+=($node_pid)
status=0
wait $node_pid || status=$?
log "browser test: $(($(date +%s) - started)) s, exit $status"
inns robot tc -s qdisc show dev eth0 | tr '\n' ' ' | sed 's/^/layers: figure: robot-side tbf: /' >&2
echo >&2
if [ $status -ne 0 ]; then
  echo "--- telepi log tail ---" >&2
  grep -v '^ALSA lib' "$work/telepi.log" | tail -25 >&2
fi
exit $status
