#!/usr/bin/env bash
# A benchmark, not a test (docs/benchmarks.md, "5 % bursty loss side by
# side"): per seed, the aiortc baseline then telepi through the same emulated
# link (tests/link/run.sh with TELEPI_LINK_SERVER=aiortc, then
# conditions.bench.mjs), and a table of what each froze.
#
#   tests/link/compare.sh [SEEDS] [CONTENT]     e.g. tests/link/compare.sh "1 2 3 4 5 6" camera
# Env: TELEPI_BIN (default target/release/telepi when built, else target/debug/telepi),
# TELEPI_LINK_LOSS (default "--burst-loss 0.05 --burst-len 4").
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/../.."
seeds=${1:-1 2 3}
content=${2:-camera}
loss=${TELEPI_LINK_LOSS:---burst-loss 0.05 --burst-len 4}
if [ -z "${TELEPI_BIN:-}" ]; then
  TELEPI_BIN=target/debug/telepi
  [ -x target/release/telepi ] && TELEPI_BIN=target/release/telepi
fi
export TELEPI_BIN TELEPI_LINK_CONTENT=$content
out=$(mktemp -d /tmp/telepi-compare.XXXXXX)
echo "compare: $content, $loss, seeds $seeds, telepi $TELEPI_BIN; logs in $out" >&2
frozen() { grep -o 'frozen [0-9]* ms' "$1" | head -1 | grep -o '[0-9]*' || echo "?"; }
total_a=0 total_t=0
printf '| seed | load | aiortc frozen | telepi frozen |\n| --- | --- | --- | --- |\n'
for seed in $seeds; do
  load=$(cut -d' ' -f1 /proc/loadavg)
  TELEPI_LINK_SERVER=aiortc TELEPI_LINK_EMULATE="$loss --seed $seed" tests/link/run.sh >"$out/aiortc-$seed.log" 2>&1 ||
    { echo "compare: aiortc run failed, see $out/aiortc-$seed.log" >&2; exit 1; }
  TELEPI_LINK_EMULATE="$loss --seed $seed" TELEPI_LINK_FILES=tests/link/conditions.bench.mjs tests/link/run.sh \
    >"$out/telepi-$seed.log" 2>&1 || { echo "compare: telepi run failed, see $out/telepi-$seed.log" >&2; exit 1; }
  a=$(frozen "$out/aiortc-$seed.log")
  t=$(frozen "$out/telepi-$seed.log")
  total_a=$((total_a + a)) total_t=$((total_t + t))
  printf '| %s | %s | %s ms | %s ms |\n' "$seed" "$load" "$a" "$t"
done
printf '| all | | **%s ms** | **%s ms** |\n' "$total_a" "$total_t"
grep -h 'LINK' "$out"/*.log >&2
