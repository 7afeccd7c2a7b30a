#!/usr/bin/env bash
# Cross-builds telepi for Raspberry Pi OS without Docker, then packages it.
#
#   board/build-cross.sh [aarch64|armv7|all] [--no-deb] [--no-install]
#
#   aarch64  64-bit Raspberry Pi OS (arm64): Pi Zero 2 W, 3, 4, 5
#   armv7    32-bit Raspberry Pi OS (armhf): Pi Zero 2 W, 2, 3, 4, 5
#   all      both (the default)
#
# On a Debian/Ubuntu x86-64 host (as root or with sudo) it installs what is
# missing: the rustup targets, Debian's cross gcc/g++, the target's runtime
# libraries as multiarch packages (libc6, libstdc++6, libgcc-s1, libasound2
# for arm64/armhf), libclang for bindgen, and cargo-deb; the target's
# libasound2-dev is unpacked into target/pi-sysroot/<arch> for pkg-config.
# Then it points cargo, cc, bindgen and pkg-config at the cross toolchain
# (target-scoped variables), runs one `cargo build --release --locked
# --target ...` for all targets, prints each stripped size (and fails above
# the size budget, TELEPI_SIZE_BUDGET bytes, default 8000000) and the newest
# glibc symbol version the binary needs, and builds the .debs with
# `cargo deb --target ... --no-build`.
#
# Outputs: target/<triple>/release/telepi and target/<triple>/debian/telepi_<version>-1_<arch>.deb
set -euo pipefail
cd "$(dirname "$0")/.."

which_targets=all
build_deb=1
install=1
for arg in "$@"; do
  case "$arg" in
    aarch64 | armv7 | all) which_targets=$arg ;;
    --no-deb) build_deb=0 ;;
    --no-install) install=0 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-cross.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
case "$which_targets" in
  all) targets=(aarch64 armv7) ;;
  *) targets=("$which_targets") ;;
esac
budget=${TELEPI_SIZE_BUDGET:-8000000}

# name -> rust triple, GNU triple, Debian architecture, extra C flags
triple() { case $1 in aarch64) echo aarch64-unknown-linux-gnu ;; armv7) echo armv7-unknown-linux-gnueabihf ;; esac; }
gnu() { case $1 in aarch64) echo aarch64-linux-gnu ;; armv7) echo arm-linux-gnueabihf ;; esac; }
debarch() { case $1 in aarch64) echo arm64 ;; armv7) echo armhf ;; esac; }
# Pi 2 and later all have NEON; openh264's armv7 assembly needs it enabled.
cflags() { case $1 in aarch64) echo "" ;; armv7) echo "-mfpu=neon" ;; esac; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# A mirror mid-sync makes `apt-get update` fail now and then: retry.
apt_update() {
  local i
  for i in 1 2 3; do
    $sudo apt-get update -qq && return 0
    [ $i -eq 3 ] || { echo "build-cross: apt-get update failed, retrying in $((i * 10))s" >&2; sleep $((i * 10)); }
  done
  # Indexes that did download are used; apt-get install decides whether that's enough.
  echo "build-cross: apt-get update still failing, going on with the indexes it has" >&2
}

# apt-get install that never removes anything (a multiarch version skew would
# otherwise let apt "solve" it by removing the host's -dev packages).
apt_install() {
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends --no-remove "$@" >/dev/null
}

# The target's C libraries telepi links (alsa-sys finds ALSA through
# pkg-config): their runtime packages are installed multiarch (qemu-user runs
# the binary with them; dpkg-shlibdeps computes the .deb's Depends from
# them), their -dev packages are only unpacked into target/pi-sysroot/<arch>.
# An installed libasound2-dev:arm64 next to the host's would make
# `dpkg -s libasound2-dev` ambiguous and tie the host's -dev upgrades to the
# foreign archive.
target_runtime=(libc6 libstdc++6 libgcc-s1 libasound2)
target_dev=(libasound2-dev libasound2)

install_missing() {
  local arches=() required=() missing=() t a p
  for t in "${targets[@]}"; do
    a=$(debarch "$t")
    arches+=("$a")
    # The cross toolchain: its sysroot /usr/<gnu> has the target's libc and
    # kernel headers (what the linker and bindgen use).
    required+=("gcc-$(gnu "$t")" "g++-$(gnu "$t")" "binutils-$(gnu "$t")")
    for p in "${target_runtime[@]}"; do required+=("$p:$a"); done
  done
  required+=(libclang-dev clang pkg-config dpkg-dev file)
  local added=0
  for a in "${arches[@]}"; do
    if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
      echo "build-cross: dpkg --add-architecture $a"
      $sudo dpkg --add-architecture "$a"
      added=1
    fi
  done
  for p in "${required[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ] || [ $added -eq 1 ]; then
    apt_update
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "build-cross: installing ${missing[*]}"
    apt_install "${missing[@]}"
  fi
  local installed
  installed=$(rustup target list --installed)
  for t in "${targets[@]}"; do
    grep -qx "$(triple "$t")" <<<"$installed" || rustup target add "$(triple "$t")"
  done
  if [ $build_deb -eq 1 ] && ! cargo deb --version >/dev/null 2>&1; then
    echo "build-cross: cargo install cargo-deb --locked"
    nice -n 10 cargo install cargo-deb --locked --quiet
  fi
}

# target/pi-sysroot/<arch>: the target's -dev packages, unpacked (apt-get
# download + dpkg-deb -x), refreshed when the archive has other versions.
sysroot_dir() { echo "$PWD/target/pi-sysroot/$(debarch "$1")"; }
make_sysroot() {
  local a dir want p
  a=$(debarch "$1")
  dir=$(sysroot_dir "$1")
  want=$(for p in "${target_dev[@]}"; do
    printf '%s %s\n' "$p" "$(apt-cache policy "$p:$a" | awk '/Candidate:/ { print $2 }')"
  done)
  if [ -f "$dir/.versions" ] && [ "$(cat "$dir/.versions")" = "$want" ]; then
    return
  fi
  echo "build-cross: unpacking ${target_dev[*]} ($a) into $dir"
  rm -rf "$dir" "$dir.debs"
  mkdir -p "$dir" "$dir.debs"
  (cd "$dir.debs" && apt-get download -q=2 "${target_dev[@]/%/:$a}" 2>&1 | grep -v 'unsandboxed as root' || true)
  for p in "$dir.debs"/*.deb; do dpkg-deb -x "$p" "$dir"; done
  [ -n "$(ls "$dir.debs")" ] || { echo "build-cross: apt-get download ${target_dev[*]} ($a) failed" >&2; exit 1; }
  rm -rf "$dir.debs"
  echo "$want" >"$dir/.versions"
}

# Exports everything cargo, cc-rs, bindgen and pkg-config read for one target.
# Target-scoped variables only, so host build scripts still use the host tools.
cross_env() {
  local t=$1 r g u U f
  r=$(triple "$t")
  g=$(gnu "$t")
  u=${r//-/_}
  U=$(tr '[:lower:]' '[:upper:]' <<<"$u")
  f=$(cflags "$t")
  export "CARGO_TARGET_${U}_LINKER=$g-gcc"
  export "CC_$u=$g-gcc" "CXX_$u=$g-g++" "AR_$u=$g-ar"
  export "CFLAGS_$u=$f" "CXXFLAGS_$u=$f"
  # pkg-config sees only the target's multiarch pkgconfig dir inside the
  # sysroot, and prefixes the paths it prints with the sysroot.
  local sysroot
  sysroot=$(sysroot_dir "$t")
  export PKG_CONFIG_ALLOW_CROSS=1
  export "PKG_CONFIG_LIBDIR_$u=$sysroot/usr/lib/$g/pkgconfig:$sysroot/usr/share/pkgconfig"
  export "PKG_CONFIG_SYSROOT_DIR_$u=$sysroot"
  # v4l2-sys-mit runs bindgen on <linux/videodev2.h>: parse it as the target
  # would, with the cross toolchain's libc and kernel headers (asm/ included).
  export "BINDGEN_EXTRA_CLANG_ARGS_$u=--target=$g --sysroot=/usr/$g"
}

# Newest GLIBC_x.y symbol version the binary references (the glibc it needs).
glibc_needed() {
  "$1-objdump" -T "$2" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1
}

[ $install -eq 1 ] && install_missing

# One cargo run for all targets: host build scripts and proc macros are
# built once, and the targets' single-threaded fat-LTO links run side by side.
target_args=()
for t in "${targets[@]}"; do
  make_sysroot "$t"
  cross_env "$t"
  target_args+=(--target "$(triple "$t")")
done
echo "build-cross: cargo build --release --locked ${target_args[*]}"
start=$(date +%s)
nice -n 10 cargo build --release --locked "${target_args[@]}"
elapsed=$(($(date +%s) - start))

status=0
report=()
for t in "${targets[@]}"; do
  r=$(triple "$t")
  g=$(gnu "$t")
  bin="target/$r/release/telepi"
  # [profile.release] strips; strip again in case someone built with strip = false.
  "$g-strip" --strip-all -o "$bin.stripped" "$bin"
  size=$(stat -c %s "$bin.stripped")
  glibc=$(glibc_needed "$g" "$bin.stripped")
  line=$(printf '%-32s %9d bytes stripped (%.1f MiB), needs glibc >= %s' \
    "$r" "$size" "$(awk "BEGIN { print $size / 1048576 }")" "$glibc")
  if [ "$size" -gt "$budget" ]; then
    line+="  OVER BUDGET ($budget bytes)"
    status=1
  fi
  mv "$bin.stripped" "$bin"
  file "$bin"
  if [ $build_deb -eq 1 ]; then
    # --no-strip: already stripped; --target makes cargo-deb pick the cross
    # binary and the Debian architecture (arm64/armhf) and run dpkg-shlibdeps
    # against the target's multiarch libraries.
    deb=$(cargo deb --target "$r" --no-build --no-strip --locked --output "target/$r/debian/" 2>&1 | tail -n1)
    [ -f "$deb" ] || { echo "$deb" >&2; exit 1; }
    line+=$'\n'"$(printf '%-32s %s (%d bytes)' '' "$deb" "$(stat -c %s "$deb")")"
  fi
  report+=("$line")
done

echo
echo "build-cross: built ${targets[*]} in ${elapsed}s; sizes (budget $budget bytes stripped):"
printf '%s\n' "${report[@]}"
exit $status
