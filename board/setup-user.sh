#!/bin/sh
# Creates the unprivileged system user `telepi` and puts it in the groups that
# own the Pi's hardware: gpio (/dev/gpiomem*, /dev/gpiochip*, /sys/class/pwm),
# video (/dev/video*, /dev/media*, /dev/vchiq, /dev/dma_heap/*), audio, and
# i2c/spi when they exist. Idempotent: run by the .deb's postinst and, as
# root, by telepi.service's ExecStartPre (so an SD image that got the package
# unpacked by board/make-image.sh creates the user on first boot).
# Installed as /usr/lib/telepi/setup-user.
set -eu
user=telepi
if ! getent group "$user" >/dev/null; then
  groupadd --system "$user"
fi
if ! getent passwd "$user" >/dev/null; then
  useradd --system --gid "$user" --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin --comment "telepi robot" "$user"
  echo "telepi: created system user $user"
fi
for group in gpio video audio i2c spi; do
  getent group "$group" >/dev/null || continue
  # getent group lists members comma-separated after the third colon.
  case ",$(getent group "$group" | cut -d: -f4)," in
    *",$user,"*) ;;
    *) usermod --append --groups "$group" "$user" ;;
  esac
done
