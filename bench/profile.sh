#!/usr/bin/env bash
# Profiles telepi's hot path under the benchmark's load with perf.
#
#   bench/profile.sh [viewers] [seconds]      # default: 1 viewer, 10 s of samples
#   BENCH_NO_BUILD=1 bench/profile.sh 10      # profile the binaries already built
#
# Builds telepi with symbols (release profile, not stripped, line tables) into
# bench/target/telepi-prof, starts `telepi-bench run` against it, attaches
# `perf record` to the server process only (not the viewers), and prints the
# hottest symbols, the split by thread and by shared object. Needs `perf`
# (Debian: linux-perf) with `perf stat -e instructions true` working.
set -euo pipefail
cd "$(dirname "$0")/.."
viewers="${1:-1}"
seconds="${2:-10}"
out=bench/results/profile
mkdir -p "$out"

perf stat -e instructions true >/dev/null 2>&1 || {
  echo "perf does not work here; try: valgrind --tool=callgrind" >&2
  exit 1
}
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    cargo build --release --locked --bin telepi --target-dir bench/target/telepi-prof
  cargo build --release --locked --manifest-path bench/Cargo.toml
fi
bin=bench/target/telepi-prof/release/telepi

bench/target/release/telepi-bench run --servers telepi --viewers "$viewers" \
  --seconds "$((seconds + 6))" --warmup 1 --telepi "$bin" \
  --out "$out/run-$viewers.json" --logs "$out/logs" &
bench_pid=$!
server=""
for _ in $(seq 100); do
  server="$(pgrep -P "$bench_pid" -x telepi || true)"
  [ -n "$server" ] && break
  sleep 0.1
done
[ -n "$server" ] || { echo "no telepi child of telepi-bench" >&2; exit 1; }
sleep 4 # idle phase, joins, warm-up
data="$out/perf-$viewers.data"
perf record -F 1999 -g --call-graph dwarf,16384 -p "$server" -o "$data" -- sleep "$seconds" 2>/dev/null
wait "$bench_pid"

echo "== by thread =="
perf report -i "$data" --no-children --sort comm --stdio -g none 2>/dev/null | grep '%' | head -10
echo "== by shared object =="
perf report -i "$data" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -10
echo "== hottest symbols (self) =="
perf report -i "$data" --no-children --sort comm,sym --stdio -g none 2>/dev/null | grep '%' | head -40
echo "(full data: perf report -i $data)"
