#!/usr/bin/env bash
# Tests board/make-image.sh on a synthetic SD image with Raspberry Pi OS's
# layout (MBR; FAT32 boot partition with cmdline.txt; ext4 root with merged
# /usr, a uid-1000 `pi`, /etc/hosts, rfkill state, an arm64 /usr/bin/dash),
# built without root: mkfs.vfat + mcopy, mkfs.ext4 -d, sfdisk, dd. Then checks
# with mtools, e2tools and debugfs that every file landed with the right
# owner, mode and content, that both file systems are still clean, that a
# second run is idempotent, and that bad input fails before writing anything.
#
#   tests/pi/image.test.sh [--deb telepi_*_arm64.deb] [--bin aarch64-telepi]
#
# Defaults: the outputs of `board/build-cross.sh aarch64`, if present.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

deb="" bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) deb=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--deb FILE] [--bin FILE]" >&2; exit 2 ;;
  esac
done
[ -n "$deb" ] || deb=$(ls -t target/aarch64-unknown-linux-gnu/debian/telepi_*_arm64.deb 2>/dev/null | head -n1 || true)
[ -n "$bin" ] || { [ -f target/aarch64-unknown-linux-gnu/release/telepi ] && bin=target/aarch64-unknown-linux-gnu/release/telepi; } || true

missing=()
for p in fdisk:sfdisk mtools:mcopy e2tools:e2ls e2fsprogs:debugfs dosfstools:mkfs.vfat jq:jq openssl:openssl; do
  command -v "${p#*:}" >/dev/null || missing+=("${p%%:*}")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin" MTOOLS_SKIP_CHECK=1

t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
failures=0
pass() { echo "  ok   $*"; }
fail() { echo "  FAIL $*"; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi; }

# An ELF header saying "aarch64" (e_machine 183): enough for make-image's
# architecture check of the image's /usr/bin/dash.
elf_header() {
  printf '\177ELF\002\001\001\000\000\000\000\000\000\000\000\000\003\000%b\000\001\000\000\000' "$1"
  head -c 40 /dev/zero
}

# ---- the synthetic Raspberry Pi OS image -------------------------------------
make_image() {
  local img=$1 s="$t/stage-$RANDOM"
  mkdir -p "$s/boot" "$s/root"
  printf 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n' >"$s/boot/cmdline.txt"
  printf '[all]\nkernel=kernel8.img\n' >"$s/boot/config.txt"
  (
    cd "$s/root"
    mkdir -p etc/systemd/system/multi-user.target.wants etc/NetworkManager/system-connections \
      usr/bin usr/sbin usr/lib/systemd/system var/lib/systemd/rfkill home/pi root
    ln -s usr/bin bin; ln -s usr/sbin sbin; ln -s usr/lib lib
    printf 'root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n' >etc/passwd
    printf 'root:x:0:\ngpio:x:997:pi\nvideo:x:44:pi\naudio:x:29:pi\npi:x:1000:\n' >etc/group
    printf 'raspberrypi\n' >etc/hostname
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n\n127.0.1.1\t\traspberrypi\n' >etc/hosts
    echo 1 >"var/lib/systemd/rfkill/platform-fe300000.mmcnr:wlan"
    echo 1 >"var/lib/systemd/rfkill/platform-soc:bluetooth"
    elf_header '\267' >usr/bin/dash
    chmod 755 usr/bin/dash
    ln -s dash usr/bin/sh
  )
  mkfs.vfat -F 32 -n bootfs -C "$s/boot.img" 65536 >/dev/null 2>&1
  mcopy -i "$s/boot.img" "$s/boot/cmdline.txt" "$s/boot/config.txt" ::
  # -E root_owner: the staging tree may belong to an unprivileged user.
  mkfs.ext4 -q -F -L rootfs -E root_owner=0:0 -d "$s/root" "$s/root.img" 64M >/dev/null 2>&1
  if [ "$(id -u)" -eq 0 ]; then
    debugfs -w -R "sif /home/pi uid 1000" "$s/root.img" 2>/dev/null
    debugfs -w -R "sif /home/pi gid 1000" "$s/root.img" 2>/dev/null
  fi
  truncate -s $(((8192 + 131072 + 131072) * 512)) "$img"
  printf 'label: dos\nunit: sectors\n\nstart=8192, size=131072, type=c\nstart=139264, size=131072, type=83\n' |
    sfdisk -q "$img"
  dd if="$s/boot.img" of="$img" bs=512 seek=8192 conv=notrunc status=none
  dd if="$s/root.img" of="$img" bs=512 seek=139264 conv=notrunc status=none
}
boot_off=$((8192 * 512))
root_off=$((139264 * 512))

# Readers: the FAT side through mtools, the ext4 side through debugfs and,
# on an extracted copy of the partition, e2tools.
mt() { mtype -i "$1@@$boot_off" "::$2"; }
dcat() { debugfs -R "cat \"$2\"" "$1?offset=$root_off" 2>/dev/null; }
dstat() { debugfs -R "stat \"$2\"" "$1?offset=$root_off" 2>/dev/null; }
root_copy() { dd if="$1" of="$t/root-part.img" bs=512 skip=139264 count=131072 status=none; echo "$t/root-part.img"; }
mode_of() { dstat "$1" "$2" | sed -n 's/.*Mode: *\([0-7]*\).*/\1/p'; }
uid_of() { dstat "$1" "$2" | sed -n 's/.*User: *\([0-9]*\).*/\1/p'; }
gid_of() { dstat "$1" "$2" | sed -n 's/.*Group: *\([0-9]*\).*/\1/p'; }
clean() { e2fsck -fn "$1?offset=$root_off" && fsck.vfat -n "$(boot_copy "$1")"; }
boot_copy() { dd if="$1" of="$t/boot-part.img" bs=512 skip=8192 count=131072 status=none; echo "$t/boot-part.img"; }

ssh-keygen -q -t ed25519 -N '' -C 'tester@telepi' -f "$t/key" 2>/dev/null ||
  printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk2QnBmWZeh1pE0Gf5yJ8rgn2tY4n1FZp0s6m3gTn0m tester@telepi\n' >"$t/key.pub"
printf '[http]\nlisten = "0.0.0.0:8081"\n' >"$t/custom.toml"

# ---- 1: a .deb, Wi-Fi, hostname, ssh key, user ---------------------------------
if [ -n "$deb" ]; then
  echo "image test: --deb $deb"
  img="$t/deb.img"
  make_image "$img"
  board/make-image.sh "$img" --deb "$deb" --board pi4-tb6612 --wifi "Robot Lab" 'correct horse battery' --country DE \
    --hostname rover --ssh-key "$t/key.pub" --user robot 's3cret pass' >"$t/out1" 2>&1 ||
    { cat "$t/out1"; fail "make-image.sh --deb exits 0"; }
  rp=$(root_copy "$img")
  dpkg-deb -x "$deb" "$t/deb"
  check "deb: /usr/bin/telepi is the package's binary" cmp <(dcat "$img" /usr/bin/telepi) "$t/deb/usr/bin/telepi"
  check "deb: e2ls lists /usr/bin/telepi" bash -c "e2ls '$rp:/usr/bin' | grep -qw telepi"
  check "deb: /usr/bin/telepi mode 755 root" test "$(mode_of "$img" /usr/bin/telepi)/$(uid_of "$img" /usr/bin/telepi)" = 0755/0
  check "deb: unit in /usr/lib/systemd/system" cmp <(dcat "$img" /usr/lib/systemd/system/telepi.service) "$t/deb/usr/lib/systemd/system/telepi.service"
  check "deb: /lib is still the merged-/usr symlink" bash -c "debugfs -R 'stat /lib' '$img?offset=$root_off' 2>/dev/null | grep -q 'Type: symlink'"
  check "deb: unit enabled (multi-user.target.wants symlink)" bash -c \
    "debugfs -R 'stat /etc/systemd/system/multi-user.target.wants/telepi.service' '$img?offset=$root_off' 2>/dev/null | grep -q 'Fast link dest: \"/usr/lib/systemd/system/telepi.service\"'"
  check "deb: setup-user installed" cmp <(dcat "$img" /usr/lib/telepi/setup-user) board/setup-user.sh
  check "deb: default config" cmp <(dcat "$img" /etc/telepi/telepi.toml) board/telepi.toml
  check "deb: --board in /etc/default/telepi" bash -c "debugfs -R 'cat /etc/default/telepi' '$img?offset=$root_off' 2>/dev/null | grep -qx 'TELEPI_ARGS=\"--board pi4-tb6612\"'"
  nm=/etc/NetworkManager/system-connections/telepi-wifi.nmconnection
  check "wifi: keyfile has the SSID and PSK" bash -c "grep -qx 'ssid=Robot Lab' <(debugfs -R 'cat $nm' '$img?offset=$root_off' 2>/dev/null) && grep -qx 'psk=correct horse battery' <(debugfs -R 'cat $nm' '$img?offset=$root_off' 2>/dev/null)"
  check "wifi: keyfile 0600 root:root" test "$(mode_of "$img" $nm)/$(uid_of "$img" $nm)/$(gid_of "$img" $nm)" = 0600/0/0
  check "wifi: rfkill wlan state unblocked" test "$(dcat "$img" '/var/lib/systemd/rfkill/platform-fe300000.mmcnr:wlan')" = 0
  check "wifi: rfkill bluetooth state untouched" test "$(dcat "$img" '/var/lib/systemd/rfkill/platform-soc:bluetooth')" = 1
  check "wifi: regdom in cmdline.txt, rest kept" bash -c "mtype -i '$img@@$boot_off' ::cmdline.txt | grep -q 'rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot cfg80211.ieee80211_regdom=DE'"
  check "hostname: /etc/hostname" test "$(dcat "$img" /etc/hostname)" = rover
  check "hostname: /etc/hosts 127.0.1.1" bash -c "debugfs -R 'cat /etc/hosts' '$img?offset=$root_off' 2>/dev/null | grep -qP '^127\.0\.1\.1\trover$'"
  check "hostname: /etc/hosts keeps localhost" bash -c "debugfs -R 'cat /etc/hosts' '$img?offset=$root_off' 2>/dev/null | grep -q '^127.0.0.1'"
  ak=/home/pi/.ssh/authorized_keys
  check "ssh: authorized_keys content" cmp <(dcat "$img" $ak) "$t/key.pub"
  check "ssh: authorized_keys 0600 uid 1000" test "$(mode_of "$img" $ak)/$(uid_of "$img" $ak)/$(gid_of "$img" $ak)" = 0600/1000/1000
  check "ssh: .ssh 0700 uid 1000" test "$(mode_of "$img" /home/pi/.ssh)/$(uid_of "$img" /home/pi/.ssh)" = 0700/1000
  check "ssh: e2ls sees .ssh/authorized_keys" bash -c "e2ls '$rp:/home/pi/.ssh' | grep -qw authorized_keys"
  check "ssh: 'ssh' file on the boot partition" bash -c "mdir -b -i '$img@@$boot_off' :: | grep -qi '::/ssh$'"
  hash=$(mt "$img" userconf.txt | cut -d: -f2-)
  salt=$(cut -d'$' -f3 <<<"$hash")
  check "user: userconf.txt robot:<sha512-crypt of the password>" test "$(mt "$img" userconf.txt | cut -d: -f1):$(printf 's3cret pass' | openssl passwd -6 -salt "$salt" -stdin)" = "robot:$hash"
  check "both file systems clean (e2fsck -fn, fsck.vfat -n)" clean "$img"

  # A second run with a custom config: replaces, doesn't duplicate.
  board/make-image.sh "$img" --deb "$deb" --config "$t/custom.toml" --wifi "Robot Lab" 'correct horse battery' --country FR >"$t/out2" 2>&1 ||
    { cat "$t/out2"; fail "second make-image.sh run exits 0"; }
  check "rerun: custom config replaces the default" cmp <(dcat "$img" /etc/telepi/telepi.toml) "$t/custom.toml"
  check "rerun: one regdom, the new one" test "$(mt "$img" cmdline.txt | grep -o 'regdom=[A-Z]*')" = regdom=FR
  check "rerun: hostname kept" test "$(dcat "$img" /etc/hostname)" = rover
  check "rerun: still clean" clean "$img"

  # Refusals, before anything is written.
  cp "$img" "$t/before.img"
  armhf_deb="$t/armhf.deb"
  mkdir -p "$t/fake/DEBIAN"
  cp -a "$t/deb/." "$t/fake/"
  dpkg-deb -I "$deb" control | sed 's/^Architecture: .*/Architecture: armhf/' >"$t/fake/DEBIAN/control"
  dpkg-deb --build --root-owner-group "$t/fake" "$armhf_deb" >/dev/null
  check "refuses an armhf package for an arm64 image" bash -c "! board/make-image.sh '$img' --deb '$armhf_deb' >/dev/null 2>&1"
  check "refuses a short PSK" bash -c "! board/make-image.sh '$img' --wifi lab short >/dev/null 2>&1"
  check "refuses a file that is not a public key as --ssh-key" bash -c "! board/make-image.sh '$img' --ssh-key '$t/custom.toml' >/dev/null 2>&1"
  check "refuses an unknown board" bash -c "! board/make-image.sh '$img' --deb '$deb' --board pi9-warp >/dev/null 2>&1"
  check "refuses a compressed image" bash -c "touch '$t/x.img.xz'; ! board/make-image.sh '$t/x.img.xz' >/dev/null 2>&1"
  check "refusals left the image untouched" cmp "$img" "$t/before.img"
else
  echo "image test: no arm64 .deb (run board/build-cross.sh aarch64): SKIPPED the --deb cases"
fi

# ---- 2: a bare binary ---------------------------------------------------------
if [ -z "$bin" ]; then
  bin="$t/telepi-aarch64"
  elf_header '\267' >"$bin"
  echo "image test: --bin with a synthetic aarch64 ELF header (no cross build found)"
else
  echo "image test: --bin $bin"
fi
img="$t/bin.img"
make_image "$img"
board/make-image.sh "$img" --bin "$bin" --config "$t/custom.toml" >"$t/out3" 2>&1 ||
  { cat "$t/out3"; fail "make-image.sh --bin exits 0"; }
check "bin: /usr/bin/telepi" cmp <(dcat "$img" /usr/bin/telepi) "$bin"
check "bin: unit" cmp <(dcat "$img" /usr/lib/systemd/system/telepi.service) board/telepi.service
check "bin: unit enabled" bash -c \
  "debugfs -R 'stat /etc/systemd/system/multi-user.target.wants/telepi.service' '$img?offset=$root_off' 2>/dev/null | grep -q 'Fast link dest: \"/usr/lib/systemd/system/telepi.service\"'"
check "bin: setup-user 0755" test "$(mode_of "$img" /usr/lib/telepi/setup-user)" = 0755
check "bin: --config" cmp <(dcat "$img" /etc/telepi/telepi.toml) "$t/custom.toml"
check "bin: /etc/default/telepi without a board" cmp <(dcat "$img" /etc/default/telepi) board/telepi.default
check "bin: no Wi-Fi/ssh/userconf asked, none written" bash -c "! mdir -b -i '$img@@$boot_off' :: | grep -qiE '::/(ssh|userconf.txt)$'"
check "bin: cmdline.txt untouched" bash -c "mtype -i '$img@@$boot_off' ::cmdline.txt | grep -qv regdom"
check "bin: clean" clean "$img"
elf_header '\050' >"$t/telepi-armv7"
check "bin: refuses an armv7 binary for an arm64 image" bash -c "! board/make-image.sh '$img' --bin '$t/telepi-armv7' >/dev/null 2>&1"

if [ $failures -gt 0 ]; then
  echo "image test: $failures check(s) FAILED"
  exit 1
fi
echo "image test: all checks passed"
