#!/usr/bin/env bash
# Runs telepi's fuzz targets (fuzz/fuzz_targets/) with libFuzzer.
#
#   fuzz/run.sh SECONDS [TARGET...]     every target (or the named ones) for SECONDS each
#
# Installs the nightly toolchain and cargo-fuzz when missing, builds every
# target once (sanitizer: address, debug assertions on), then runs each in turn
# from the seed corpus fuzz/corpus/TARGET. The seeds are only read: what a run
# discovers goes to fuzz/target/corpus/TARGET (kept between local runs, not
# checked in). Prints one line per target (executions, exec/s, new corpus
# entries, crashes) and exits non-zero if any target crashed, timed out or ran
# out of memory; the input that did it is in fuzz/artifacts/TARGET/ and its
# path is printed. Reproduce one with
#   fuzz/target/<host>/release/TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")"

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "installing the nightly toolchain (cargo fuzz needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

all=$(cargo +nightly fuzz list)
if [ $# -gt 0 ]; then
  targets=("$@")
  for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$all" || { echo "unknown target $t; targets: $(echo $all)" >&2; exit 2; }
  done
else
  mapfile -t targets <<<"$all"
fi

build_start=$(date +%s)
# `cargo fuzz build` takes one target or all of them: build what we run.
one=(); [ ${#targets[@]} -eq 1 ] && one=("${targets[0]}")
cargo +nightly fuzz build "${one[@]}" 2>&1 | sed '/^ *Compiling /d'
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin_dir=target/$host/release
echo "fuzz build: $(($(date +%s) - build_start)) s"

# openh264's C++ (built with ASan here) has two identical constant tables the
# linker merges, which ASan reports as an ODR violation at start-up: not ours.
export ASAN_OPTIONS="detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

failed=()
for t in "${targets[@]}"; do
  work=target/corpus/$t
  artifacts=artifacts/$t
  log=target/logs/$t.log
  mkdir -p "$work" "$artifacts" target/logs
  before=$(find "$work" -type f | wc -l)
  set +e
  # -timeout: one input taking this long is a hang (reported like a crash).
  "$bin_dir/$t" "$work" "corpus/$t" \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  after=$(find "$work" -type f | wc -l)
  crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  if [ $status -eq 0 ]; then
    printf '%-12s %10s execs %8s exec/s %5d new inputs  crashes: 0\n' \
      "$t" "${execs:-?}" "${rate:-?}" "$((after - before))"
  else
    failed+=("$t")
    printf '%-12s %10s execs %8s exec/s %5d new inputs  crashes: 1 (exit %d) %s\n' \
      "$t" "${execs:-?}" "${rate:-?}" "$((after - before))" "$status" "fuzz/${crash:-$log}"
    grep -m1 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)" "$log" | sed 's/^/             /' || true
    echo "             log: fuzz/$log"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
