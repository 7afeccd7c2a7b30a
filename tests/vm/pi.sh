#!/usr/bin/env bash
# The whole aarch64 telepi on an emulated Raspberry Pi (QEMU's raspi3b, or
# raspi4b, machine under TCG), driven over the network by a WebRTC client on
# the host, its GPIO read back through the QEMU monitor: tests/emulated_pi.rs.
#
#   tests/vm/pi.sh [--model 3b|4b|all] [extra cargo test arguments, e.g. a test name]
#
# --model: which emulated Pi (default 3b; `all` runs the tests on each).
#
# Installs what is missing (QEMU >= 9 from Debian, busybox, kmod, cpio,
# iproute2, device-tree-compiler for the Pi 4, the host test's build
# dependencies, and through board/build-cross.sh the cross toolchain),
# cross-builds telepi for aarch64 (a no-op when it is up to date), unpacks
# Debian's arm64 kernel into target/vm/arm64/, and packs an initramfs
# holding busybox, telepi, the shared libraries it links (from the host's
# multiarch /usr/lib/aarch64-linux-gnu) and the modules for USB networking
# and power-off. The tests run inside a private network namespace (unshare -n)
# with a tap device for the guest's USB Ethernet: guest 10.0.3.2, host
# 10.0.3.1; nothing reaches the machine's real network.
#
# TELEPI_PI_SAMPLE_GAP_US: pause between two GPIO reads (default 1000; see
# tests/emulated_pi.rs for why not 0).
set -euo pipefail
started=$(date +%s.%N)
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh

models=(3b)
if [ "${1:-}" = --model ]; then
  case "${2:-}" in
    3b | 4b) models=("$2") ;;
    all) models=(3b 4b) ;;
    *) vm_die "--model wants 3b, 4b or all, got '${2:-}'" ;;
  esac
  shift 2
fi

host_addr=10.0.3.1
guest_addr=10.0.3.2
prefix=24

vm_need_qemu
# The host side of the test (a WebRTC client that decodes H.264) builds
# against the same system libraries as telepi itself (tests/run-all.sh's list).
host_dev=()
for p in libasound2-dev libclang-dev cmake nasm pkg-config; do
  dpkg -s "$p" >/dev/null 2>&1 || host_dev+=("$p")
done
if [ ${#host_dev[@]} -gt 0 ]; then
  vm_log "installing: ${host_dev[*]}"
  $vm_sudo apt-get update -qq || vm_log "apt-get update failed; going on with the indexes there are"
  vm_apt_install "${host_dev[@]}" || vm_die "could not install ${host_dev[*]}"
fi
command -v readelf >/dev/null || vm_apt_install binutils || vm_die "could not install binutils (readelf)"
command -v fdtput >/dev/null || vm_apt_install device-tree-compiler || vm_die "could not install device-tree-compiler (fdtput)"

# Always through build-cross.sh, so the binary matches the source (cargo
# makes this a no-op when nothing changed).
board/build-cross.sh aarch64 --no-deb >&2 || vm_die "the aarch64 cross build failed"
telepi_bin=target/aarch64-unknown-linux-gnu/release/telepi
[ -x "$telepi_bin" ] || vm_die "no $telepi_bin after the cross build"

kernel_dir=$(vm_kernel arm64)
abi=$(basename "$kernel_dir")
busybox=$(vm_busybox arm64)
dtbs="$kernel_dir/usr/lib/linux-image-$abi/broadcom"

# The Pi 4's device tree with the display pipeline switched off: QEMU's
# raspi4b models none of it, and the kernel's HDMI, DVP clock, HDMI I2C and
# L2 interrupt drivers crash on the missing registers; v3d and the rest
# would only fail. Its USB OTG port is peripheral-only in the tree: made a
# host, it carries QEMU's usb-net as on the Pi 3.
pi4_dtb() {
  local out="$vm_cache/arm64/bcm2711-rpi-4-b-qemu.dtb" node
  cp "$dtbs/bcm2711-rpi-4-b.dtb" "$out"
  for node in /soc/hdmi@7ef00700 /soc/hdmi@7ef05700 /soc/clock@7ef00000 \
    /soc/i2c@7ef04500 /soc/i2c@7ef09500 /soc/interrupt-controller@7ef00100 \
    /soc/hvs@7e400000 /soc/txp@7e004000 /soc/vec@7ec13000 \
    /soc/pixelvalve@7e206000 /soc/pixelvalve@7e207000 /soc/pixelvalve@7e20a000 \
    /soc/pixelvalve@7e216000 /soc/pixelvalve@7ec12000 \
    /soc/dsi@7e209000 /soc/dsi@7e700000 /gpu /scb/gpu@7ec00000; do
    fdtput -t s "$out" "$node" status disabled ||
      vm_die "bcm2711-rpi-4-b.dtb of $abi has no $node: update the list in tests/vm/pi.sh"
  done
  fdtput -t s "$out" /soc/usb@7e980000 dr_mode host || vm_die "bcm2711-rpi-4-b.dtb of $abi has no /soc/usb@7e980000"
  echo "$out"
}

stage="$vm_cache/arm64/pi-stage"
initrd="$vm_cache/arm64/pi-initrd.gz"
rm -rf "$stage" && mkdir -p "$stage/etc" "$stage/usr/bin" "$stage/lib/aarch64-linux-gnu"
cp tests/vm/pi/init "$stage/init"
printf 'GUEST_ADDR=%s/%s\n' "$guest_addr" "$prefix" >"$stage/etc/vm.env"
cp "$telepi_bin" "$stage/usr/bin/telepi"

# The program interpreter and every DT_NEEDED library, transitively.
multiarch=/usr/lib/aarch64-linux-gnu
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
queue=("$telepi_bin")
declare -A copied=()
while [ ${#queue[@]} -gt 0 ]; do
  file=${queue[0]}
  queue=("${queue[@]:1}")
  for lib in $(needed "$file"); do
    [ -z "${copied[$lib]:-}" ] && [ "$lib" != ld-linux-aarch64.so.1 ] || continue
    [ -f "$multiarch/$lib" ] || vm_die "telepi needs $lib: no $multiarch/$lib (board/build-cross.sh installs the arm64 runtime libraries)"
    cp -L "$multiarch/$lib" "$stage/lib/aarch64-linux-gnu/$lib"
    copied[$lib]=1
    queue+=("$multiarch/$lib")
  done
done
interp=$(readelf -l "$telepi_bin" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
[ "$interp" = /lib/ld-linux-aarch64.so.1 ] || vm_die "unexpected program interpreter '$interp'"
cp -L "$multiarch/ld-linux-aarch64.so.1" "$stage/lib/ld-linux-aarch64.so.1"
vm_log "initramfs: telepi + ${!copied[*]} + ld-linux-aarch64.so.1"

# dwc2 (the SoC's USB host) + cdc_ether (QEMU's usb-net enumerates as CDC
# Ethernet); bcm2835_wdt gives the kernel a way to power the machine off;
# bcm2835_rng seeds the entropy pool (telepi's getrandom blocked ~3 s without).
vm_module_paths "$kernel_dir" dwc2 phy_generic usbnet cdc_ether bcm2835_wdt bcm2835_rng |
  vm_initramfs "$initrd" "$stage" "$busybox"

# Build outside the namespace (it has no route to crates.io), run inside it.
cargo test --locked --test emulated_pi --no-run >&2

unshare_args=(-n)
[ "$(id -u)" -eq 0 ] || unshare_args=(-r -n) # a user namespace lets a non-root user own the tap
export TELEPI_PI_ADDR="$guest_addr"
failed=()
for model in "${models[@]}"; do
  case $model in
    3b) machine="raspi3b -m 1G" dtb="$dtbs/bcm2837-rpi-3-b.dtb" gpio=0x3f200000 board=pi3-l298n ;;
    4b) machine="raspi4b -m 2G" dtb=$(pi4_dtb) gpio=0xfe200000 board=pi4-l298n ;;
  esac
  [ -f "$dtb" ] || vm_die "no $dtb in linux-image-$abi"
  monitor="$vm_cache/arm64/pi$model-monitor.sock"
  log="$vm_cache/arm64/pi$model-test.log"
  export TELEPI_VM_MONITOR="$monitor" TELEPI_PI_GPIO_BASE="$gpio" TELEPI_PI_BOARD="$board"
  # The console is the mini UART (ttyS1, QEMU's second -serial; the harness
  # adds `-serial stdio`): the device tree hangs Bluetooth off the PL011
  # (ttyAMA0), so the kernel gives that port to serdev and a shell there
  # never sees its input. iomem=relaxed lets rppal map GPIO through /dev/mem.
  export TELEPI_VM_QEMU="qemu-system-aarch64 -M $machine -accel tcg,thread=single \
-kernel $kernel_dir/boot/vmlinuz-$abi -dtb $dtb -initrd $initrd \
-append 'console=ttyS1 rdinit=/init iomem=relaxed quiet loglevel=1' \
-serial null -device usb-net,netdev=n0 -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
-monitor unix:$monitor,server,nowait"
  vm_log "Raspberry Pi $model (QEMU ${machine%% *}, --board $board)"
  status=0
  unshare "${unshare_args[@]}" bash -euc '
    ip link set lo up
    ip tuntap add tap0 mode tap
    ip addr add "$1/$2" dev tap0
    ip link set tap0 up
    shift 2
    cargo test --offline --locked --test emulated_pi -- --ignored --test-threads=1 --nocapture "$@"
  ' pi "$host_addr" "$prefix" "$@" 2>&1 | tee "$log" || status=$?
  boot=$(sed -n 's/^guest: booted to its shell in \([0-9.]*\) s$/\1/p' "$log" | sort -n | tr '\n' ' ')
  echo "emulated Pi $model: boot to shell (per guest): ${boot:-none}s"
  [ $status -eq 0 ] || failed+=("$model (log: $log)")
done
echo "emulated Pi: total $(awk "BEGIN { printf \"%.0f\", $(date +%s.%N) - $started }") s"
[ ${#failed[@]} -eq 0 ] || vm_die "emulated Pi tests failed on: ${failed[*]}"
