# Sourced by the tests that build their own network namespaces (tests/nat,
# tests/link): names, a work folder, and a cleanup that ends every process
# started in them (by pid) and deletes them, on exit, error and SIGTERM.
#
#   netns_begin NAME NAMESPACE...
# sets id (tpNAME<pid>), namespaces, work (/tmp/telepi-NAME.*, kept with
# TELEPI_<NAME>_KEEP=1), pids (add the processes you start); the caller
# defines log().

ns() { echo "$id-$1"; }
inns() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

netns_begin() {
  local name=$1
  shift
  id=tp$name$$
  namespaces=("$@")
  work=$(mktemp -d "/tmp/telepi-$name.XXXXXX")
  keep_var="TELEPI_${name^^}_KEEP"
  pids=()
  cleaning=0
  trap netns_cleanup EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
}

netns_cleanup() {
  local status=$?
  [ $cleaning = 0 ] || return
  cleaning=1
  trap '' INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Anything else still running inside our namespaces was started by us (a
  # Chromium left by a killed node, say): end it by pid too.
  local n p
  for n in "${namespaces[@]}"; do
    for p in $(ip netns pids "$(ns "$n")" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  done
  sleep 0.3
  for n in "${namespaces[@]}"; do
    for p in $(ip netns pids "$(ns "$n")" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$(ns "$n")" 2>/dev/null || true
  done
  if [ "${!keep_var:-0}" = 1 ]; then log "logs kept in $work"; else rm -rf "$work"; fi
  exit $status
}

# What every namespaced browser test needs, added to the array `need`.
need_browser_tools() {
  command -v ip >/dev/null || need+=(iproute2)
  command -v curl >/dev/null || need+=(curl)
  command -v chromium >/dev/null || need+=(chromium)
  command -v node >/dev/null || need+=(nodejs)
  command -v npm >/dev/null || need+=(npm)
}

# Installs the packages in `need`, if any.
install_needed() {
  [ ${#need[@]} -gt 0 ] || return 0
  log "installing: ${need[*]}"
  apt-get update -qq || log "apt-get update failed; going on with the indexes there are"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

# Makes sure playwright-core is there.
find_playwright() {
  [ -d tests/browser/node_modules/playwright-core ] ||
    (cd tests/browser && npm ci --no-audit --no-fund --silent)
}

# Sets `bin` to the telepi under test and makes sure playwright-core is there.
find_telepi_and_playwright() {
  bin=$(realpath -m "${TELEPI_BIN:-target/debug/telepi}")
  [ -x "$bin" ] || die "telepi binary not found at $bin (cargo build, or set TELEPI_BIN)"
  find_playwright
}
