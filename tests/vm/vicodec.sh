#!/usr/bin/env bash
# Builds the kernel's `vicodec` test codec (a stateful V4L2 memory-to-memory
# encoder, the same API as the Pi's bcm2835-codec, emitting FWHT instead of
# H.264) and the `v4l2-mem2mem` framework it needs, out of tree, for the
# kernel in KERNEL_DIR (from vm_kernel amd64): Debian builds neither. Prints
# the two module paths, dependency first. Sources come from Debian's
# linux-source package of the same version, headers from linux-headers-ABI.
#
#   tests/vm/vicodec.sh KERNEL_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/vm/lib.sh

kernel=${1:?usage: tests/vm/vicodec.sh KERNEL_DIR}
abi=$(basename "$kernel")
out="$vm_cache/amd64/vicodec-$abi"
if [ ! -f "$out/vicodec.ko" ] || [ ! -f "$out/v4l2-mem2mem.ko" ]; then
  # The source package carries the same upstream version as the image.
  version=$(apt-cache show "linux-image-$abi" | sed -n 's/^Version: //p' | head -1)
  series=${abi%%.0-*} # 6.1
  need=()
  dpkg -s "linux-headers-$abi" >/dev/null 2>&1 || need+=("linux-headers-$abi")
  dpkg -s "linux-source-$series" >/dev/null 2>&1 || need+=("linux-source-$series=$version")
  command -v make >/dev/null || need+=(make)
  if [ ${#need[@]} -gt 0 ]; then
    vm_log "installing ${need[*]} (to build vicodec)"
    vm_apt_install "${need[@]}" || vm_die "could not install ${need[*]}"
  fi
  src="$out/src"
  rm -rf "$out" && mkdir -p "$src"
  tar -xf "/usr/src/linux-source-$series.tar.xz" -C "$src" --strip-components=1 \
    "linux-source-$series/drivers/media/test-drivers/vicodec" \
    "linux-source-$series/drivers/media/v4l2-core/v4l2-mem2mem.c"
  build="$out/build"
  mkdir -p "$build"
  cp "$src"/drivers/media/test-drivers/vicodec/*.[ch] "$src/drivers/media/v4l2-core/v4l2-mem2mem.c" "$build/"
  cat >"$build/Kbuild" <<'EOF'
obj-m += v4l2-mem2mem.o vicodec.o
vicodec-objs := vicodec-core.o codec-fwht.o codec-v4l2-fwht.o
EOF
  make -s -C "/usr/src/linux-headers-$abi" M="$build" modules >&2 ||
    vm_die "building vicodec against linux-headers-$abi failed"
  cp "$build/v4l2-mem2mem.ko" "$build/vicodec.ko" "$out/"
  rm -rf "$src" "$build"
fi
echo "$out/v4l2-mem2mem.ko"
echo "$out/vicodec.ko"
