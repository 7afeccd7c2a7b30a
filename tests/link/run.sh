#!/usr/bin/env bash
# Links that blip (issue 20): telepi and headless Chromium in two network
# namespaces joined only through tests/link/emulator.py (a userspace link in
# a third namespace), nothing attached to the machine's own network; all of
# it torn down on exit, error and SIGTERM.
#
#   robot    10.99.0.1  telepi (peer_timeout_ms = 6000, so the long outage is short)
#   router   no address, no forwarding: emulator.py copies frames between its veths
#   browser  10.99.0.2  Chromium driven by tests/link/blip.test.mjs
#
# First the emulator is checked against its settings (tests/link/verify.py:
# loss, bursts, delay + jitter, rate, outage), then the page is driven
# through blips: a 2 s outage (same peer, same operator, picture back,
# driving again) and one longer than the silence limit (peer reaped,
# operator released, motors stopped, the page reconnects); then the
# browser's address changes under a page on telepi's HTTPS listener with
# camera and mic granted (tests/link/secure.test.mjs).
#
#   tests/link/run.sh            (as root; uses sudo otherwise)
# Env: TELEPI_BIN (default target/debug/telepi), TELEPI_LINK_KEEP=1 (keep logs),
# TELEPI_LINK_FILES (test files instead of tests/link/), TELEPI_LINK_EMULATE
# (more emulator options, e.g. "--loss 0.02": with tests/link/conditions.bench.mjs).
# The later --delay wins over the default 5 ms.
# TELEPI_LINK_CONTENT=camera: the test pattern is the panning, noisy scene
# instead of colour bars. TELEPI_LINK_SERVER=aiortc: the robot namespace runs
# the aiortc baseline (bench/baseline/server.py, one libx264 encode per
# viewer, its venv made by bench/baseline/venv.sh) instead of telepi, and the
# files default to tests/link/aiortc.bench.mjs (the comparison for
# conditions.bench.mjs; a benchmark, not part of tests/run-all.sh).
# Without root or network namespaces it says SKIPPED, and fails under CI=true.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/../.."

log() { echo "link: $*" >&2; }
die() { echo "link: FAIL: $*" >&2; exit 1; }
skip() {
  if [ "${CI:-}" = true ]; then die "cannot run: $*"; fi
  echo "link: SKIPPED: $*" >&2
  exit 0
}

if [ "$(id -u)" -ne 0 ]; then
  sudo -n true 2>/dev/null || skip "needs root (or password-less sudo) for network namespaces"
  exec sudo --preserve-env=TELEPI_BIN,TELEPI_LINK_KEEP,TELEPI_LINK_FILES,TELEPI_LINK_EMULATE,TELEPI_LINK_TESTS,TELEPI_LINK_SERVER,TELEPI_LINK_CONTENT,CI,PATH "$self" "$@"
fi
# shellcheck source=tests/netns.sh
source tests/netns.sh
need=()
need_browser_tools
command -v python3 >/dev/null || need+=(python3)
install_needed
server=${TELEPI_LINK_SERVER:-telepi}
content=${TELEPI_LINK_CONTENT:-bars}
case "$server" in
  telepi) find_telepi_and_playwright ;;
  aiortc)
    find_playwright
    python=$(bench/baseline/venv.sh) || die "cannot make the aiortc baseline's venv (bench/baseline/venv.sh)"
    ;;
  *) die "TELEPI_LINK_SERVER: telepi or aiortc, not $server" ;;
esac
case "$content" in bars | camera) ;; *) die "TELEPI_LINK_CONTENT: bars or camera, not $content" ;; esac
netns_begin link robot router browser

# ---- topology ------------------------------------------------------------------
ip netns add "$(ns robot)" 2>/dev/null || skip "cannot create network namespaces here"
ip netns add "$(ns router)"
ip netns add "$(ns browser)"
for n in "${namespaces[@]}"; do inns "$n" ip link set lo up; done
# Endpoint veths are eth0; their peers in the router are to-robot / to-browser.
ip -n "$(ns robot)" link add eth0 type veth peer name to-robot netns "$(ns router)"
ip -n "$(ns browser)" link add eth0 type veth peer name to-browser netns "$(ns router)"
ip -n "$(ns router)" link set to-robot up
ip -n "$(ns router)" link set to-browser up
inns robot ip addr add 10.99.0.1/24 dev eth0
inns browser ip addr add 10.99.0.2/24 dev eth0
for n in robot browser; do
  inns "$n" ip link set eth0 up
  # Frames read with AF_PACKET must be MTU-sized with finished checksums.
  inns "$n" python3 tests/link/emulator.py offload-off eth0
done
# Fixed neighbours: no ARP through the emulator to distort what it measures.
mac() { ip -n "$(ns "$1")" -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2; }
inns robot ip neigh replace 10.99.0.2 lladdr "$(mac browser)" dev eth0 nud permanent
inns browser ip neigh replace 10.99.0.1 lladdr "$(mac robot)" dev eth0 nud permanent

started=$(date +%s)
python3 tests/link/verify.py "$(ns router)" to-robot to-browser "$(ns browser)" "$(ns robot)" 10.99.0.1 ||
  die "the link emulator does not do what it is told"
log "emulator checked in $(($(date +%s) - started)) s"

# ---- the link and the server ------------------------------------------------------
mkfifo "$work/link.ctl"
# shellcheck disable=SC2086 # TELEPI_LINK_EMULATE is a list of emulator options
inns router python3 tests/link/emulator.py run to-robot to-browser --delay 5 --seed 20 ${TELEPI_LINK_EMULATE:-} \
  --control "$work/link.ctl" >"$work/link.log" 2>&1 &
pids+=($!)
server_log="$work/$server.log"
if [ "$server" = telepi ]; then
  cat >"$work/telepi.toml" <<CONF
state_dir = "$work/state"
[rtc]
listen = "0.0.0.0:50000"
peer_timeout_ms = 6000
[video]
pattern = "$content"
CONF
  (cd "$work" && TELEPI_LOG=info exec ip netns exec "$(ns robot)" "$bin" --config telepi.toml --http 0.0.0.0:8080 --https 0.0.0.0:8443) \
    >"$server_log" 2>&1 &
  ready=/
  files=tests/link/
else
  # Its defaults are telepi's [video] ones: 640x480, 30 fps, 1.5 Mbit/s.
  inns robot "$python" bench/baseline/server.py --http 0.0.0.0:8080 --ice-address 10.99.0.1 --content "$content" \
    --page tests/link/aiortc-viewer.html >"$server_log" 2>&1 &
  ready=/api/status
  files=tests/link/aiortc.bench.mjs
fi
pids+=($!)
for _ in $(seq 1 100); do
  inns browser curl -sf -o /dev/null "http://10.99.0.1:8080$ready" && break
  sleep 0.1
done
inns browser curl -sf -o /dev/null "http://10.99.0.1:8080$ready" || {
  tail -20 "$server_log" >&2
  die "$server does not answer through the link"
}

export TELEPI_LINK="{\"server\":\"$server\",\"base\":\"http://10.99.0.1:8080\",\"robotNs\":\"$(ns robot)\",\"browserNs\":\"$(ns browser)\",\"control\":\"$work/link.ctl\",\"log\":\"$server_log\",\"silenceMs\":6000,\"secure\":\"https://10.99.0.1:8443\"}"
started=$(date +%s)
inns browser node --test --test-concurrency=1 --test-reporter=spec ${TELEPI_LINK_TESTS:+--test-name-pattern="$TELEPI_LINK_TESTS"} ${TELEPI_LINK_FILES:-$files} &
node_pid=$!
pids+=($node_pid)
status=0
wait $node_pid || status=$?
log "browser test: $(($(date +%s) - started)) s, exit $status"
if [ $status -ne 0 ]; then
  echo "--- $server log tail ---" >&2
  grep -v '^ALSA lib' "$server_log" | tail -25 >&2
  echo "--- link log ---" >&2
  tail -5 "$work/link.log" >&2
fi
exit $status
