# Shared by the emulated-machine tests (tests/vm/*.sh): QEMU from Debian's
# packages, Debian's own kernels unpacked into a cache, and busybox initramfs
# images. Source it; nothing here runs on its own.
#
# Cache: $TELEPI_VM_CACHE (default target/vm), one folder per Debian
# architecture: kernel packages are unpacked there, never installed on the host.

vm_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
vm_cache=${TELEPI_VM_CACHE:-$vm_repo/target/vm}
vm_sudo=""; [ "$(id -u)" -eq 0 ] || vm_sudo="sudo"

vm_log() { echo "vm: $*" >&2; }
vm_die() { echo "vm: FAIL: $*" >&2; exit 1; }

vm_apt_install() {
  DEBIAN_FRONTEND=noninteractive $vm_sudo apt-get install -y -qq --no-install-recommends --no-remove "$@" >/dev/null
}

# QEMU >= 9 (the raspi3b machine's GPIO and USB are usable from 9 on). On
# bookworm that is the backports package; this image's qemu-utils already
# comes from there, which blocks bookworm's own 7.2 qemu-system-* anyway.
vm_need_qemu() {
  local need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
  command -v busybox >/dev/null || need+=(busybox-static)
  command -v v4l2-ctl >/dev/null || need+=(v4l-utils)
  command -v arecord >/dev/null || need+=(alsa-utils)
  dpkg -s libsox-fmt-alsa >/dev/null 2>&1 || need+=(sox libsox-fmt-alsa)
  command -v i2cdump >/dev/null || need+=(i2c-tools)
  command -v depmod >/dev/null || need+=(kmod)
  command -v cpio >/dev/null || need+=(cpio)
  command -v ip >/dev/null || need+=(iproute2)
  if [ ${#need[@]} -gt 0 ]; then
    vm_log "installing: ${need[*]}"
    local codename
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [ "$codename" = bookworm ]; then
      if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        vm_log "adding Debian's bookworm-backports (QEMU >= 9 for the raspi3b machine)"
        printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
          $vm_sudo tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
      fi
      $vm_sudo apt-get update -qq || vm_log "apt-get update failed; going on with the indexes there are"
      vm_apt_install -t bookworm-backports "${need[@]}" ||
        vm_die "could not install ${need[*]} (QEMU >= 9 from bookworm-backports): the emulated-machine checks cannot run"
    else
      $vm_sudo apt-get update -qq || vm_log "apt-get update failed; going on with the indexes there are"
      vm_apt_install "${need[@]}" || vm_die "could not install ${need[*]}: the emulated-machine checks cannot run"
    fi
  fi
  local major
  major=$(qemu-system-aarch64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
  [ "${major:-0}" -ge 9 ] || vm_die "qemu-system-aarch64 is version $major; the raspi3b test needs >= 9"
}

# The ABI name of Debian's current kernel for ARCH (amd64 | arm64), e.g. 6.1.0-57-amd64.
# A foreign architecture is added to dpkg first; apt-cache then names the
# packages with an ":ARCH" suffix.
vm_kernel_abi() {
  local arch=$1
  [ "$arch" = "$(dpkg --print-architecture)" ] || dpkg --print-foreign-architectures | grep -qx "$arch" ||
    { $vm_sudo dpkg --add-architecture "$arch"; $vm_sudo apt-get update -qq || true; }
  apt-cache depends "linux-image-$arch:$arch" 2>/dev/null |
    sed -n "s/.*Depends: linux-image-\(.*-$arch\)\(:$arch\)\{0,1\}$/\1/p" | head -1
}

# Unpacks Debian's kernel for ARCH into the cache (once per ABI) and prints
# the folder: boot/vmlinuz-ABI, lib/modules/ABI (with a module index), usr/lib/linux-image-ABI (dtbs).
vm_kernel() {
  local arch=$1 abi dir
  abi=$(vm_kernel_abi "$arch")
  [ -n "$abi" ] || vm_die "no linux-image-$arch in the apt indexes (run apt-get update)"
  dir="$vm_cache/$arch/$abi"
  if [ ! -f "$dir/.done" ]; then
    vm_log "unpacking Debian's linux-image-$abi"
    rm -rf "$dir" && mkdir -p "$dir/deb"
    (cd "$dir/deb" && apt-get download "linux-image-$abi:$arch" >/dev/null 2>&1) ||
      vm_die "apt-get download linux-image-$abi:$arch failed"
    dpkg-deb -x "$dir"/deb/*.deb "$dir"
    rm -rf "$dir/deb"
    depmod -b "$dir" "$abi"
    touch "$dir/.done"
  fi
  echo "$dir"
}

# The insmod order (dependencies first) of MODULE... in kernel folder DIR, one path per line.
vm_module_paths() {
  local dir=$1 abi m
  shift
  abi=$(basename "$dir")
  for m in "$@"; do
    modprobe -d "$dir" -S "$abi" --show-depends "$m" | sed -n 's/^insmod \([^ ]*\).*/\1/p' ||
      vm_die "module $m not found in $abi"
  done | awk '!seen[$0]++'
}

# busybox-static for ARCH: the host's, or the foreign package unpacked into the cache.
vm_busybox() {
  local arch=$1
  if [ "$arch" = "$(dpkg --print-architecture)" ]; then
    command -v busybox
    return
  fi
  local dir="$vm_cache/$arch/busybox"
  if [ ! -x "$dir/bin/busybox" ]; then
    rm -rf "$dir" && mkdir -p "$dir/deb"
    (cd "$dir/deb" && apt-get download "busybox-static:$arch" >/dev/null 2>&1) ||
      vm_die "apt-get download busybox-static:$arch failed"
    dpkg-deb -x "$dir"/deb/*.deb "$dir"
    rm -rf "$dir/deb"
  fi
  echo "$dir/bin/busybox"
}

# Builds a gzip'd newc initramfs OUT from a staging folder STAGE that
# already holds /init; adds busybox (as /bin/busybox with applet links) and
# the kernel modules listed (full paths) on stdin under /modules, in order,
# listed in /modules/order.
vm_initramfs() {
  local out=$1 stage=$2 busybox=$3 m
  mkdir -p "$stage/bin" "$stage/modules" "$stage/proc" "$stage/sys" "$stage/dev" "$stage/tmp"
  cp "$busybox" "$stage/bin/busybox"
  for m in sh mount mkdir insmod cat cp echo sleep ip ls poweroff chroot ln mknod uname; do
    ln -sf busybox "$stage/bin/$m"
  done
  : >"$stage/modules/order"
  while read -r m; do
    [ -n "$m" ] || continue
    cp "$m" "$stage/modules/"
    basename "$m" >>"$stage/modules/order"
  done
  (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
}

# The uncompressed ELF kernel inside KERNEL_DIR's vmlinuz (QEMU boots it
# directly through its PVH note, ~5 s faster under TCG than the bzImage);
# prints its path. The payload is the xz stream after the first xz magic, as
# the kernel's scripts/extract-vmlinux finds it.
vm_vmlinux() {
  local dir=$1 abi out offset
  abi=$(basename "$dir")
  out="$dir/vmlinux"
  if [ ! -s "$out" ]; then
    offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$dir/boot/vmlinuz-$abi" | head -1 | cut -d: -f1)
    [ -n "$offset" ] || vm_die "no xz payload in vmlinuz-$abi"
    tail -c +$((offset + 1)) "$dir/boot/vmlinuz-$abi" | xz -dc 2>/dev/null >"$out.tmp" || true
    [ -s "$out.tmp" ] || vm_die "could not unpack vmlinux from vmlinuz-$abi"
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

# Boots the machine QEMU_LINE describes (as tests/common/guest.rs does: its
# /init ends in a shell that runs one line at a time after `@@ready@@`) and
# checks that FILE, a host path, is an executable there; powers it off.
# Prints `seen`, `unseen`, or `no answer` (QEMU failed, or no shell in 180 s).
#   vm_guest_sees QEMU_LINE FILE
vm_guest_sees() {
  local line=$1 file=$2 answer="no answer" out pid to from i
  coproc GUEST { exec sh -c "exec $line -display none -monitor none -serial stdio -no-reboot" 2>&1; }
  pid=$GUEST_PID from=${GUEST[0]:-} to=${GUEST[1]:-}
  if [ -z "$from" ]; then
    echo "$answer"
    return
  fi
  while IFS= read -r -t 180 out <&"$from" 2>/dev/null; do
    case ${out%$'\r'} in
      @@ready@@) printf '%s\n' "if [ -x '$file' ]; then echo @@seen@@; else echo @@unseen@@; fi" >&"$to" ;;
      @@seen@@ | @@unseen@@)
        answer=${out%$'\r'}
        answer=${answer//@/}
        break
        ;;
    esac
  done
  printf '/vm/busybox poweroff -f\n' >&"$to" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "$answer"
}
