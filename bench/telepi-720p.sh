#!/usr/bin/env sh
# telepi at 1280x720@30 (3 Mbit/s), for `telepi-bench run --servers telepi-720p=bench/telepi-720p.sh`:
# the bench passes --http/--rtc; exec keeps the measured pid telepi's own.
here=$(dirname "$0")
exec "$here/../target/release/telepi" --config "$here/720p.toml" "$@"
