#!/usr/bin/env bash
# Checks the Raspberry Pi packages from board/build-cross.sh, the systemd unit
# and the default config, as far as that is possible on an x86-64 host:
#
#   - dpkg-deb --info: name, architecture, Depends (libc6 >= 2.34 at most
#     Bookworm's 2.36, passwd), maintainer scripts;
#   - dpkg-deb --contents: binary (root, 755, the target's ELF, identical to
#     the cross build), unit, setup-user, conffile /etc/telepi/telepi.toml;
#   - the packaged unit passes `systemd-analyze verify` (unknown keys and
#     missing binaries fail) and scores "OK" in `systemd-analyze security`;
#   - board/setup-user.sh, in a private mount namespace over a copy of /etc
#     with a `gpio` group like Raspberry Pi OS's: creates the system user
#     telepi (nologin, no home) in gpio, video, audio; a second run changes
#     nothing;
#   - the packaged binary (under qemu-user) starts with the packaged config,
#     and with every key of it uncommented (so the file can't drift from the
#     keys telepi accepts).
#
#   tests/pi/deb.test.sh [DEB...]     (default: target/*/debian/telepi_*.deb)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

debs=("$@")
if [ ${#debs[@]} -eq 0 ]; then
  for t in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
    d=$(ls -t target/$t/debian/telepi_*.deb 2>/dev/null | head -n1 || true)
    [ -z "$d" ] || debs+=("$d")
  done
fi
[ ${#debs[@]} -gt 0 ] || { echo "deb test: no packages: run board/build-cross.sh first" >&2; exit 1; }

t=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$t"; }
trap cleanup EXIT
failures=0
pass() { echo "  ok   $*"; }
fail() { echo "  FAIL $*"; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts BIN (through RUNNER) with CONFIG on loopback ports; true if it answers /api/status.
starts_with_config() {
  local runner=$1 bin=$2 config=$3 http rtc pid ok=1
  shift 3
  http=$(free_port) rtc=$(free_port)
  $runner "$bin" "$@" --config "$config" --http "127.0.0.1:$http" --rtc "127.0.0.1:$rtc" 2>"$t/run.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$http/api/status" >/dev/null 2>&1 && { ok=0; break; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ $ok -eq 0 ] || cat "$t/run.log" >&2
  return $ok
}

for deb in "${debs[@]}"; do
  echo "deb test: $deb"
  info=$(dpkg-deb --info "$deb")
  contents=$(dpkg-deb --contents "$deb")
  arch=$(dpkg-deb -f "$deb" Architecture)
  case "$arch" in
    arm64) machine="ARM aarch64" triple=aarch64-unknown-linux-gnu runner=qemu-aarch64 ;;
    armhf) machine="ARM, EABI5" triple=armv7-unknown-linux-gnueabihf runner=qemu-arm ;;
    *) fail "architecture $arch is neither arm64 nor armhf"; continue ;;
  esac
  x="$t/$arch"
  mkdir -p "$x"
  dpkg-deb -x "$deb" "$x"
  dpkg-deb -e "$deb" "$x/DEBIAN"

  check "info: Package: telepi" grep -q '^ Package: telepi$' <<<"$info"
  check "info: file name matches Architecture ($arch)" grep -q "_$arch\.deb\$" <<<"$deb"
  depends=$(dpkg-deb -f "$deb" Depends)
  echo "       Depends: $depends"
  glibc=$(sed -n 's/.*libc6 (>= \([0-9.]*\)).*/\1/p' <<<"$depends")
  check "info: Depends libc6 (>= 2.34..2.36): runs on Bookworm" bash -c "[ -n '$glibc' ] && dpkg --compare-versions '$glibc' ge 2.34 && dpkg --compare-versions '$glibc' le 2.36"
  check "info: Depends passwd (useradd)" grep -qw passwd <<<"$depends"
  check "info: postinst, prerm, postrm" test -x "$x/DEBIAN/postinst" -a -x "$x/DEBIAN/prerm" -a -x "$x/DEBIAN/postrm"

  check "contents: /usr/bin/telepi root 755" grep -qE '^-rwxr-xr-x 0/0 .* \./usr/bin/telepi$' <<<"$contents"
  check "contents: /usr/lib/systemd/system/telepi.service" grep -q ' \./usr/lib/systemd/system/telepi.service$' <<<"$contents"
  check "contents: /usr/lib/telepi/setup-user 755" grep -qE '^-rwxr-xr-x 0/0 .* \./usr/lib/telepi/setup-user$' <<<"$contents"
  check "contents: /etc/telepi/telepi.toml" grep -q ' \./etc/telepi/telepi.toml$' <<<"$contents"
  check "contents: /etc/default/telepi" grep -q ' \./etc/default/telepi$' <<<"$contents"
  check "conffiles: /etc/telepi/telepi.toml, /etc/default/telepi" bash -c \
    "grep -qx /etc/telepi/telepi.toml '$x/DEBIAN/conffiles' && grep -qx /etc/default/telepi '$x/DEBIAN/conffiles'"
  check "binary: $machine ELF, stripped" bash -c "file '$x/usr/bin/telepi' | grep -q '$machine' && file '$x/usr/bin/telepi' | grep -q ', stripped'"
  [ ! -f "target/$triple/release/telepi" ] ||
    check "binary: identical to target/$triple/release/telepi" cmp "$x/usr/bin/telepi" "target/$triple/release/telepi"
  check "unit, setup-user, config: the files from board/" bash -c \
    "cmp '$x/usr/lib/systemd/system/telepi.service' board/telepi.service && cmp '$x/usr/lib/telepi/setup-user' board/setup-user.sh && cmp '$x/etc/telepi/telepi.toml' board/telepi.toml && cmp '$x/etc/default/telepi' board/telepi.default"
  check "postinst: creates the user, then enables and starts the unit" bash -c \
    "grep -q '^  /usr/lib/telepi/setup-user' '$x/DEBIAN/postinst' && grep -q 'deb-systemd-helper enable telepi.service' '$x/DEBIAN/postinst' && grep -q 'deb-systemd-invoke \$_dh_action telepi.service' '$x/DEBIAN/postinst'"
  check "prerm: stops the unit (SIGTERM)" grep -q 'deb-systemd-invoke stop telepi.service' "$x/DEBIAN/prerm"
  check "postrm: purge removes the user" grep -q 'userdel telepi' "$x/DEBIAN/postrm"
  for s in postinst prerm postrm; do sh -n "$x/DEBIAN/$s" || fail "$s: sh -n"; done

  # The unit as installed: every key known to systemd, every command present.
  check "unit: systemd-analyze verify (in the package's root)" \
    systemd-analyze verify --man=no --recursive-errors=no --root="$x" /usr/lib/systemd/system/telepi.service
  exposure=$(systemd-analyze security --offline=true --root="$x" /usr/lib/systemd/system/telepi.service 2>/dev/null |
    sed -n 's/.*Overall exposure level for telepi.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
  echo "       systemd-analyze security: exposure $exposure"
  check "unit: exposure rated OK" grep -q ' OK$' <<<"$exposure"

  if command -v "$runner" >/dev/null; then
    check "binary + packaged config: starts under $runner" starts_with_config "$runner" "$x/usr/bin/telepi" "$x/etc/telepi/telepi.toml"
    # What the unit runs: ExecStart with /etc/default/telepi's TELEPI_ARGS. A
    # board profile whose encoder is in every binary (openh264: the Pi 5 ones).
    check "binary + --board pi5-l298n + packaged config: starts" starts_with_config "$runner" "$x/usr/bin/telepi" "$x/etc/telepi/telepi.toml" --board pi5-l298n
    # "#key = default" and "#[table]" lines uncommented; "# key = example" ones stay.
    sed -E 's/^#(\[|[a-z_][a-z0-9_]* =)/\1/' "$x/etc/telepi/telepi.toml" >"$t/all-keys.toml"
    [ "$(grep -cE '^[a-z_][a-z0-9_]* =' "$t/all-keys.toml")" -ge 25 ] || fail "config: fewer than 25 keys to uncomment"
    check "binary + config with every key uncommented: starts" starts_with_config "$runner" "$x/usr/bin/telepi" "$t/all-keys.toml"
    printf '[video]\nwidht = 640\n' >"$t/typo.toml"
    check "binary + config with a typo: refuses to start" bash -c "! $runner '$x/usr/bin/telepi' --config '$t/typo.toml' --http 127.0.0.1:0 --rtc 127.0.0.1:0 2>/dev/null"
  else
    echo "  skip binary runs: no $runner (apt-get install qemu-user)"
  fi
done

# board/setup-user.sh against a copy of /etc in a private mount namespace.
echo "deb test: board/setup-user.sh (private mount namespace)"
if unshare -m true 2>/dev/null; then ns=(unshare -m); elif unshare -m -r true 2>/dev/null; then ns=(unshare -m -r); else ns=(); fi
if [ ${#ns[@]} -gt 0 ]; then
  "${ns[@]}" bash -euc '
    etc=$1/etc board=$2
    mkdir -p "$etc" && cp -a /etc/. "$etc/"
    mount --bind "$etc" /etc
    getent passwd telepi >/dev/null && { echo "a telepi user exists already"; exit 1; }
    getent group gpio >/dev/null || groupadd --system gpio
    getent group i2c >/dev/null && groupdel i2c
    "$board/setup-user.sh"
    cp /etc/passwd /etc/group /etc/shadow "$1/"
    "$board/setup-user.sh"
    getent passwd telepi >"$1/pw"
    id -nG telepi >"$1/groups"
    cmp /etc/passwd "$1/passwd" && cmp /etc/group "$1/group" && cmp /etc/shadow "$1/shadow" && echo same >"$1/idempotent"
  ' _ "$t/ns" "$repo/board" >"$t/ns.log" 2>&1 || { cat "$t/ns.log"; fail "setup-user.sh ran"; }
  IFS=: read -r _ _ uid _ _ home shell <"$t/ns/pw" || true
  check "setup-user: system uid ($uid < 1000)" test "${uid:-1000}" -lt 1000
  check "setup-user: no login shell, no home" test "$shell:$home" = /usr/sbin/nologin:/nonexistent
  check "setup-user: groups telepi gpio video audio ($(cat "$t/ns/groups" 2>/dev/null))" bash -c \
    "for g in telepi gpio video audio; do grep -qw \$g '$t/ns/groups' || exit 1; done"
  check "setup-user: second run changes nothing" test -f "$t/ns/idempotent"
  check "setup-user: host /etc untouched" bash -c "! getent passwd telepi"
else
  echo "  skip: no mount namespaces here (unshare -m)"
fi

if [ $failures -gt 0 ]; then
  echo "deb test: $failures check(s) FAILED"
  exit 1
fi
echo "deb test: all checks passed"
