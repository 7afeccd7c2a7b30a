#!/usr/bin/env bash
# Writes telepi (and optionally Wi-Fi, hostname, SSH, a login user) into a
# Raspberry Pi OS Lite image file, without root, without mounting and without
# the Pi. Flash the result with Raspberry Pi Imager ("Use custom") or dd.
#
#   board/make-image.sh IMAGE [--deb FILE | --bin FILE] [--config FILE]
#                       [--board NAME] [--wifi SSID PSK] [--country CC]
#                       [--hostname NAME] [--ssh-key FILE] [--user NAME PASSWORD]
#
#   IMAGE             an uncompressed Raspberry Pi OS (Bookworm or later) image,
#                     e.g. 2024-11-19-raspios-bookworm-arm64-lite.img; modified in place
#   --deb FILE        telepi_*_arm64.deb / _armhf.deb from board/build-cross.sh:
#                     unpacked into the root file system (dpkg-deb -x)
#   --bin FILE        a bare telepi binary instead: installed as /usr/bin/telepi
#                     with board/telepi.service and board/setup-user.sh
#   --config FILE     /etc/telepi/telepi.toml (default: the package's, or board/telepi.toml)
#   --board NAME      a board profile (board/profiles/NAME.toml, e.g. pi4-tb6612):
#                     TELEPI_ARGS="--board NAME" in /etc/default/telepi
#   --wifi SSID PSK   a NetworkManager keyfile (Bookworm's network stack), and
#                     Wi-Fi unblocked (rfkill) for the first boot
#   --country CC      Wi-Fi regulatory country (cfg80211.ieee80211_regdom=CC in
#                     cmdline.txt), default GB; Wi-Fi stays blocked without one
#   --hostname NAME   /etc/hostname and the 127.0.1.1 line of /etc/hosts
#   --ssh-key FILE    a public key: authorized_keys of the login user (uid 1000)
#                     and the `ssh` file on the boot partition (enables sshd)
#   --user NAME PASSWORD   userconf.txt on the boot partition: first boot names
#                     the login user NAME with that password (Raspberry Pi OS
#                     has no usable default login since 2022). The password is
#                     stored hashed (SHA-512 crypt).
#
# The partitions are found with `sfdisk --json`; the FAT boot partition is
# written with mtools, the ext4 root partition with `debugfs -w` (through
# e2fsprogs' IMAGE?offset=BYTES), then checked with `e2fsck -fn`.
#
# A .deb is unpacked, not installed: dpkg can't run for an ARM root file
# system here. So nothing of the package's postinst runs at image time; its
# one job, creating the `telepi` user, happens on the Pi at the first start of
# telepi.service (ExecStartPre=+/usr/lib/telepi/setup-user, as root). dpkg's
# database doesn't list telepi until `sudo apt install ./telepi_*.deb` on the
# Pi (same paths, so that is also how to upgrade).
set -euo pipefail
board=$(cd "$(dirname "$0")" && pwd)

usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "make-image: $*" >&2; exit 1; }

image="" deb="" bin="" config="" board_name="" wifi_ssid="" wifi_psk="" country="" hostname="" ssh_key="" user="" password=""
[ $# -gt 0 ] || { usage >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) deb=${2:?--deb FILE}; shift 2 ;;
    --bin) bin=${2:?--bin FILE}; shift 2 ;;
    --config) config=${2:?--config FILE}; shift 2 ;;
    --board) board_name=${2:?--board NAME}; shift 2 ;;
    --wifi) [ $# -ge 3 ] || die "--wifi SSID PSK"; wifi_ssid=$2; wifi_psk=$3; shift 3 ;;
    --country) country=${2:?--country CC}; shift 2 ;;
    --hostname) hostname=${2:?--hostname NAME}; shift 2 ;;
    --ssh-key) ssh_key=${2:?--ssh-key FILE}; shift 2 ;;
    --user) [ $# -ge 3 ] || die "--user NAME PASSWORD"; user=$2; password=$3; shift 3 ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$1' (try --help)" ;;
    *) [ -z "$image" ] || die "one IMAGE only ('$image', '$1')"; image=$1; shift ;;
  esac
done

# ---- checks, before anything is written ------------------------------------
[ -n "$image" ] || die "no IMAGE given"
[ -f "$image" ] || die "$image: no such file"
case "$image" in *.xz | *.gz | *.zip) die "$image is compressed: unpack it first (xz -dk / gunzip -k / unzip)" ;; esac
[ -w "$image" ] || die "$image is not writable"
[ -z "$deb" ] || [ -z "$bin" ] || die "--deb or --bin, not both"
[ -z "$deb" ] || [ -f "$deb" ] || die "$deb: no such file"
[ -z "$bin" ] || [ -f "$bin" ] || die "$bin: no such file"
[ -z "$config" ] || [ -f "$config" ] || die "$config: no such file"
[ -z "$ssh_key" ] || [ -f "$ssh_key" ] || die "$ssh_key: no such file"
if [ -n "$board_name" ]; then
  [ -n "$deb$bin" ] || die "--board needs --deb or --bin"
  [ -f "$board/profiles/$board_name.toml" ] ||
    die "no board profile '$board_name'; there are: $(cd "$board/profiles" && ls *.toml | sed 's/\.toml$//' | tr '\n' ' ')"
fi
if [ -n "$wifi_ssid" ]; then
  [ ${#wifi_ssid} -le 32 ] || die "SSID longer than 32 bytes"
  [[ "$wifi_ssid" != *$'\n'* ]] || die "SSID with a newline"
  [[ ${#wifi_psk} -ge 8 && ${#wifi_psk} -le 63 ]] || [[ "$wifi_psk" =~ ^[0-9a-fA-F]{64}$ ]] ||
    die "PSK must be 8..63 characters (or 64 hex digits)"
  [[ "$wifi_psk" != *$'\n'* ]] || die "PSK with a newline"
  country=${country:-GB}
fi
[ -z "$country" ] || [[ "$country" =~ ^[A-Z]{2}$ ]] || die "--country wants two capital letters, e.g. GB, DE, US"
[ -z "$hostname" ] || [[ "$hostname" =~ ^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$ ]] ||
  die "hostname: letters, digits and '-' only, at most 63"
if [ -n "$user" ]; then
  [[ "$user" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "user name: lower case letters, digits, '_' and '-'"
  [ -n "$password" ] || die "empty password"
fi
if [ -n "$ssh_key" ]; then
  grep -qE '^(ssh-|ecdsa-|sk-)[a-z0-9@.-]+ [A-Za-z0-9+/=]+' "$ssh_key" ||
    die "$ssh_key doesn't look like a public key (ssh-ed25519 AAAA... / ssh-rsa AAAA...)"
fi
for tool in sfdisk:fdisk jq:jq mcopy:mtools mtype:mtools debugfs:e2fsprogs e2fsck:e2fsprogs dpkg-deb:dpkg od:coreutils; do
  command -v "${tool%%:*}" >/dev/null || die "needs ${tool%%:*}: apt-get install ${tool#*:}"
done
[ -z "$user" ] || command -v openssl >/dev/null || die "needs openssl for --user: apt-get install openssl"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export MTOOLS_SKIP_CHECK=1

# ---- partitions ------------------------------------------------------------
# Raspberry Pi OS: MBR, partition 1 FAT32 (bootfs, /boot/firmware), 2 ext4 (rootfs).
sfdisk --json "$image" >"$work/table.json" 2>/dev/null || die "$image: no partition table (sfdisk --json)"
parts=$(jq -r '.partitiontable | (.sectorsize // 512) as $ss | .partitions[] | "\(.start * $ss) \(.size * $ss) \(.type | ascii_downcase)"' "$work/table.json")
boot_off="" root_off=""
while read -r off size type; do
  case "$type" in
    b | c | e | 0b | 0c | 0e | ebd0a0a2-b9e5-4433-87c0-68b6b72699c7 | c12a7328-f81f-11d2-ba4b-00a0c93ec93b)
      [ -n "$boot_off" ] || boot_off=$off ;;
    83 | 0fc63daf-8483-4772-8e79-3d69d8477de4 | b921b045-1df0-41c3-af44-4c6f280d3fae)
      [ -n "$root_off" ] || root_off=$off ;;
  esac
done <<<"$parts"
[ -n "$boot_off" ] || die "$image: no FAT partition"
[ -n "$root_off" ] || die "$image: no Linux partition"
boot="$image@@$boot_off"
rootfs="$image?offset=$root_off"
mdir -i "$boot" :: >/dev/null 2>&1 || die "$image: partition at byte $boot_off is not FAT"
debugfs -R "stats" "$rootfs" 2>/dev/null | grep -q '^Filesystem magic number:  *0xEF53' ||
  die "$image: partition at byte $root_off is not ext2/3/4"
echo "make-image: $image: boot (FAT) at byte $boot_off, root (ext4) at byte $root_off"

# ---- reading the root file system -------------------------------------------
rd() { debugfs -R "$1" "$rootfs" 2>/dev/null; }
exists() { rd "stat \"$1\"" | grep -q '^Inode:'; }
is_dir() { rd "stat \"$1\"" | grep -q 'Type: directory'; }
link_target() { rd "stat \"$1\"" | sed -n 's/^Fast link dest: "\(.*\)"$/\1/p'; }
cat_file() { rd "cat \"$1\""; }

# ELF e_machine of a file: 183 aarch64, 40 arm.
elf_machine() { [ "$(head -c4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ] && od -An -tu2 -j18 -N2 "$1" | tr -d ' '; }
machine_name() { case "$1" in 183) echo arm64 ;; 40) echo armhf ;; 62) echo amd64 ;; *) echo "machine $1" ;; esac; }

# The image's own architecture, from its /bin/sh (dash).
image_arch=""
for sh in /usr/bin/dash /bin/dash; do
  if exists "$sh" && ! link_target "$sh" | grep -q .; then
    rd "dump \"$sh\" \"$work/sh\"" >/dev/null
    image_arch=$(machine_name "$(elf_machine "$work/sh")")
    break
  fi
done

# ---- what goes into the root file system ------------------------------------
stage="$work/stage"
mkdir -p "$stage"
if [ -n "$deb" ]; then
  arch=$(dpkg-deb -f "$deb" Architecture) || die "$deb: not a .deb"
  [ "$(dpkg-deb -f "$deb" Package)" = telepi ] || die "$deb: not the telepi package"
  dpkg-deb -x "$deb" "$stage"
  echo "make-image: unpacking $(basename "$deb") ($arch)"
elif [ -n "$bin" ]; then
  m=$(elf_machine "$bin") || die "$bin: not an ELF binary"
  arch=$(machine_name "$m")
  install -D -m 0755 "$bin" "$stage/usr/bin/telepi"
  install -D -m 0644 "$board/telepi.service" "$stage/usr/lib/systemd/system/telepi.service"
  install -D -m 0755 "$board/setup-user.sh" "$stage/usr/lib/telepi/setup-user"
  install -D -m 0644 "$board/telepi.toml" "$stage/etc/telepi/telepi.toml"
  echo "make-image: installing $bin ($arch)"
fi
if [ -n "$deb$bin" ]; then
  if [ -n "$image_arch" ] && [ "$arch" != "$image_arch" ]; then
    die "telepi is $arch but the image is $image_arch: use the matching build (aarch64 = arm64, armv7 = armhf)"
  fi
  [ -n "$image_arch" ] || echo "make-image: warning: no /usr/bin/dash in the image, can't check its architecture" >&2
fi
[ -z "$config" ] || install -D -m 0644 "$config" "$stage/etc/telepi/telepi.toml"
if [ -n "$deb$bin" ] && [ ! -f "$stage/etc/default/telepi" ]; then
  install -D -m 0644 "$board/telepi.default" "$stage/etc/default/telepi"
fi
if [ -n "$board_name" ]; then
  sed -i "s/^#\{0,1\}TELEPI_ARGS=.*/TELEPI_ARGS=\"--board $board_name\"/" "$stage/etc/default/telepi"
  grep -qx "TELEPI_ARGS=\"--board $board_name\"" "$stage/etc/default/telepi" ||
    echo "TELEPI_ARGS=\"--board $board_name\"" >>"$stage/etc/default/telepi"
fi

unit=""
for u in usr/lib/systemd/system/telepi.service lib/systemd/system/telepi.service; do
  [ -f "$stage/$u" ] && { unit=/$u; break; }
done
[ -z "$deb$bin" ] || [ -n "$unit" ] || die "no telepi.service in the package"

# Merged /usr (Bookworm): /lib, /bin, /sbin are symlinks into /usr, and
# debugfs doesn't follow symlinks inside paths, so move such staged trees.
for top in bin sbin lib lib64; do
  [ -d "$stage/$top" ] || continue
  target=$(link_target "/$top")
  [ -n "$target" ] || continue
  target=${target#/}
  mkdir -p "$stage/$target"
  cp -a "$stage/$top/." "$stage/$target/"
  rm -rf "${stage:?}/$top"
  [ "$unit" != "/$top/systemd/system/telepi.service" ] || unit="/$target/systemd/system/telepi.service"
done

if [ -n "$unit" ]; then
  mkdir -p "$stage/etc/systemd/system/multi-user.target.wants"
  ln -sfn "$unit" "$stage/etc/systemd/system/multi-user.target.wants/telepi.service"
fi

if [ -n "$wifi_ssid" ]; then
  nm="$stage/etc/NetworkManager/system-connections/telepi-wifi.nmconnection"
  mkdir -p "$(dirname "$nm")"
  # NetworkManager ignores keyfiles not owned by root or readable by others.
  ( umask 077; cat >"$nm" <<EOF
[connection]
id=$wifi_ssid
uuid=$(cat /proc/sys/kernel/random/uuid)
type=wifi
autoconnect=true

[wifi]
mode=infrastructure
ssid=$wifi_ssid

[wifi-security]
key-mgmt=wpa-psk
psk=$wifi_psk

[ipv4]
method=auto

[ipv6]
addr-gen-mode=default
method=auto
EOF
  )
  # systemd-rfkill restores the saved state at boot; Raspberry Pi OS ships
  # Wi-Fi soft-blocked until a country is set. Unblock what the image saved.
  while IFS=/ read -r _ _ _ _ _ name _; do
    case "$name" in
      *:wlan)
        mkdir -p "$stage/var/lib/systemd/rfkill"
        echo 0 >"$stage/var/lib/systemd/rfkill/$name" ;;
    esac
  done < <(rd "ls -p /var/lib/systemd/rfkill")
fi

if [ -n "$hostname" ]; then
  mkdir -p "$stage/etc"
  echo "$hostname" >"$stage/etc/hostname"
  cat_file /etc/hosts >"$work/hosts" || true
  if grep -q '^127\.0\.1\.1[[:space:]]' "$work/hosts"; then
    sed -i "s/^127\.0\.1\.1[[:space:]].*/127.0.1.1\t$hostname/" "$work/hosts"
  else
    [ -s "$work/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$work/hosts"
    printf '127.0.1.1\t%s\n' "$hostname" >>"$work/hosts"
  fi
  install -m 0644 "$work/hosts" "$stage/etc/hosts"
fi

# Files owned by someone other than root: "path uid gid" lines.
owners="$work/owners"
: >"$owners"
if [ -n "$ssh_key" ]; then
  # The login user is uid 1000 (`pi` in the image until userconf.txt renames
  # it; the rename moves its home, .ssh included).
  login=$(cat_file /etc/passwd | awk -F: '$3 == 1000 { print $1 ":" $4 ":" $6; exit }')
  [ -n "$login" ] || die "the image has no uid 1000 user for --ssh-key (is it Raspberry Pi OS?)"
  IFS=: read -r login_name login_gid login_home <<<"$login"
  mkdir -p "$stage$login_home/.ssh"
  chmod 0700 "$stage$login_home/.ssh"
  install -m 0600 "$ssh_key" "$stage$login_home/.ssh/authorized_keys"
  exists "$login_home" || echo "$login_home 1000 $login_gid" >>"$owners"
  echo "$login_home/.ssh 1000 $login_gid" >>"$owners"
  echo "$login_home/.ssh/authorized_keys 1000 $login_gid" >>"$owners"
  echo "make-image: ssh key for $login_name (uid 1000, $login_home)"
fi

# ---- writing the root file system -------------------------------------------
# One debugfs command file: mkdir for missing directories, rm + write for
# files, symlink for links; then mode, uid, gid of everything set explicitly.
cmds="$work/debugfs.cmds"
: >"$cmds"
owner_of() { awk -v p="$1" '$1 == p { print $2, $3; exit }' "$owners"; }
(cd "$stage" && find . -mindepth 1 | sort) | while read -r rel; do
  path=${rel#.}
  src="$stage$path"
  uid=0 gid=0
  o=$(owner_of "$path")
  [ -z "$o" ] || read -r uid gid <<<"$o"
  if [ -L "$src" ]; then
    exists "$path" && echo "rm \"$path\""
    echo "symlink \"$path\" \"$(readlink "$src")\""
    continue
  elif [ -d "$src" ]; then
    if exists "$path"; then
      is_dir "$path" || die "$path exists in the image and is not a directory"
      # Existing directories keep their owner and mode, except ones we own.
      [ -n "$o" ] || continue
    else
      echo "mkdir \"$path\""
    fi
    mode=$((8#40000 | 8#$(stat -c %a "$src")))
  else
    exists "$path" && echo "rm \"$path\""
    echo "write \"$src\" \"$path\""
    mode=$((8#100000 | 8#$(stat -c %a "$src")))
  fi
  printf 'sif "%s" mode 0%o\nsif "%s" uid %s\nsif "%s" gid %s\n' "$path" "$mode" "$path" "$uid" "$path" "$gid"
done >"$cmds"

if [ -s "$cmds" ]; then
  debugfs -w -f "$cmds" "$rootfs" >"$work/debugfs.out" 2>"$work/debugfs.err"
  if grep -v '^debugfs [0-9.]* (' "$work/debugfs.err" | grep -q .; then
    cat "$work/debugfs.err" >&2
    die "debugfs failed writing the root file system"
  fi
  echo "make-image: wrote"
  (cd "$stage" && find . -mindepth 1 ! -type d | sed 's/^\./  /' | sort)
fi
e2fsck -fn "$rootfs" >"$work/fsck.out" 2>&1 || { cat "$work/fsck.out" >&2; die "root file system not clean after writing (e2fsck -fn)"; }

# ---- boot partition -----------------------------------------------------------
put_boot() { mcopy -o -i "$boot" "$1" "::$2" && echo "  /boot/firmware/$2"; }
if [ -n "$ssh_key" ]; then
  : >"$work/ssh"
  put_boot "$work/ssh" ssh
fi
if [ -n "$user" ]; then
  printf '%s:%s\n' "$user" "$(printf '%s' "$password" | openssl passwd -6 -stdin)" >"$work/userconf.txt"
  put_boot "$work/userconf.txt" userconf.txt
fi
if [ -n "$country" ]; then
  mtype -i "$boot" ::cmdline.txt >"$work/cmdline.txt" 2>/dev/null || die "no cmdline.txt on the boot partition"
  # One line; replace an earlier regdom, keep everything else.
  line=$(tr -d '\r\n' <"$work/cmdline.txt" | sed 's/ *cfg80211\.ieee80211_regdom=[^ ]*//')
  printf '%s cfg80211.ieee80211_regdom=%s\n' "$line" "$country" >"$work/cmdline.txt"
  put_boot "$work/cmdline.txt" cmdline.txt
fi
echo "make-image: done. Flash $image, boot the Pi, open http://${hostname:-raspberrypi}.local:8080/"
