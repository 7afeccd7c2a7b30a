#!/usr/bin/env bash
# The real camera, sound and encoder drivers: boots an emulated x86-64 PC
# (QEMU under TCG, Debian's own kernel) whose root is this machine's,
# shared read-only over 9p, and runs tests/emulated_pc*.rs against it. The
# telepi binary under test is the host's target/debug/telepi, run inside the
# guest against the kernel's `vivid` camera, `snd-aloop` sound card and
# (built here out of tree) `vicodec` memory-to-memory encoder, and with
# the motor HAT profiles against `i2c-stub` (a register chip on an I2C bus,
# read back with i2c-tools) and a screen on QEMU's standard VGA (the `bochs`
# DRM driver's /dev/fb0, looked at from the host with the monitor's
# `screendump`); viewers and operators are
# real WebRTC clients on the host side of a tap link (10.0.2.1 <-> guest
# 10.0.2.2) inside a network namespace of this script's own: str0m peers,
# and headless Chromium sharing its fake camera (tests/browser/share-camera.mjs,
# with playwright-core from tests/browser).
#
#   tests/vm/pc.sh [TEST-NAME-FILTER]
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/vm/lib.sh
started=$(date +%s)

vm_need_qemu
kernel=$(vm_kernel amd64)
vmlinux=$(vm_vmlinux "$kernel")
extra_modules=()
if [ -x tests/vm/vicodec.sh ]; then
  mapfile -t extra_modules < <(tests/vm/vicodec.sh "$kernel")
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp tests/vm/pc/init "$stage/init"
# The guest shows the host's root, but its own /tmp and /run: it binds
# these back when they lie there (a clone under /tmp).
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || vm_die "cargo metadata gave no target directory"
printf '%s\n' "$PWD" "$target_dir" >"$stage/keep"
initrd="$vm_cache/pc.cpio.gz"
{
  vm_module_paths "$kernel" 9pnet_virtio 9p virtio_pci virtio_net overlay vivid snd-aloop i2c-dev i2c-stub bochs
  printf '%s\n' "${extra_modules[@]}"
} | vm_initramfs "$initrd" "$stage" "$(vm_busybox amd64)"

cargo build --locked
[ -d tests/browser/node_modules/playwright-core ] ||
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
cargo test --locked --no-run --test 'emulated_pc*'
# tests/emulated_pc_m2m.rs runs this test binary inside the guest, by its path.
m2m_build=$(cargo test --locked --no-run --test m2m_device --message-format=json 2>/dev/null) ||
  cargo test --locked --no-run --test m2m_device
TELEPI_M2M_TESTS=$(sed -n '/"kind":\["test"\]/s/.*"executable":"\([^"]*\)".*/\1/p' <<<"$m2m_build")
export TELEPI_M2M_TESTS

# -smp 1: TCG is faster single-threaded here; /dev/kvm is a nested one
# that Debian's kernel cannot run under. The VGA's preferred mode (its
# EDID) is small: the guest paints every pixel of it in software.
monitor="$stage/monitor.sock"
export TELEPI_VM_MONITOR="$monitor"
export TELEPI_VM_QEMU="qemu-system-x86_64 -accel tcg -smp 1 -m 1024 -kernel $vmlinux -initrd $initrd \
 -append 'console=ttyS0 rdinit=/init quiet loglevel=1 panic=-1' \
 -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
 -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0 \
 -vga none -device VGA,xres=640,yres=480 -monitor unix:$monitor,server,nowait"

# The namespace has only loopback and the tap link to the guest: nothing
# the tests send can leave this machine.
status=0
unshare -n bash -c '
  set -e
  source tests/vm/lib.sh
  ip link set lo up
  ip tuntap add tap0 mode tap
  ip addr add 10.0.2.1/24 dev tap0
  ip link set tap0 up
  # Once, before the boots of every test: the binary under test must be
  # visible in the guest, or each of them would fail the same way.
  seen=$(vm_guest_sees "$TELEPI_VM_QEMU" "$0")
  [ "$seen" = seen ] || vm_die "the emulated PC ($seen) does not show $0 (this checkout: $PWD); tests/vm/pc/init binds back the folders tests/vm/pc.sh lists in its keep file"
  exec cargo test --locked --offline --test "emulated_pc*" -- --ignored --test-threads=1 "$@"
' "$target_dir/debug/telepi" "$@" || status=$?
echo "emulated PC checks: $(($(date +%s) - started))s"
exit $status
