#!/usr/bin/env bash
# What tests/sfu.rs needs (issue 23): Debian's Janus and Meetecho's
# simple-whip-server (Debian package) in front of it.
#
# simple-whip-server depends on Debian's Node.js (libnode108), which conflicts
# with a NodeSource nodejs: where the package does not install, its sources are
# unpacked from the .deb into target/sfu-tools and its few npm dependencies
# installed next to them. tests/sfu.rs finds either.
set -euo pipefail
cd "$(dirname "$0")/../.."
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
log() { echo "sfu-install: $*" >&2; }

if ! command -v janus >/dev/null; then
  log "installing janus"
  $sudo apt-get update -qq || log "apt-get update failed; going on with the indexes there are"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends janus >/dev/null
fi
# Debian's service must not run: the test starts its own Janus in a namespace.
if command -v systemctl >/dev/null; then
  $sudo systemctl disable --now janus >/dev/null 2>&1 || true
fi

if [ -f /usr/share/simple-whip-server/src/server.js ]; then
  exit 0
fi
# Only when apt would remove nothing for it (a NodeSource nodejs must stay).
plan=$(apt-get install -s simple-whip-server 2>/dev/null || true)
if [[ "$plan" == *"Inst simple-whip-server"* ]] && [[ "$plan" != *"Remv "* ]] &&
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq simple-whip-server >/dev/null 2>&1; then
  $sudo systemctl disable --now simple-whip-server >/dev/null 2>&1 || true
  exit 0
fi
tools=target/sfu-tools
if [ -f "$tools/simple-whip-server/src/server.js" ] && [ -d "$tools/simple-whip-server/node_modules/express" ]; then
  exit 0
fi
log "simple-whip-server does not install here (Node.js from elsewhere?): unpacking it into $tools"
command -v npm >/dev/null || { log "npm is missing"; exit 1; }
rm -rf "$tools/deb" "$tools/x" && mkdir -p "$tools/deb"
(cd "$tools/deb" && apt-get download simple-whip-server >/dev/null 2>&1) ||
  { $sudo apt-get update -qq && (cd "$tools/deb" && apt-get download simple-whip-server >/dev/null); }
dpkg -x "$tools"/deb/simple-whip-server_*.deb "$tools/x"
rm -rf "$tools/simple-whip-server"
mkdir -p "$tools/simple-whip-server/src"
cp "$tools"/x/usr/share/simple-whip-server/src/server.js "$tools"/x/usr/share/simple-whip-server/src/whip-janus.js \
  "$tools/simple-whip-server/src/"
rm -rf "$tools/x" "$tools/deb"
(cd "$tools/simple-whip-server" && echo '{"private":true}' >package.json &&
  npm install --no-audit --no-fund --silent express@4 cors colors@1.4.0 debug async websocket body-parser >/dev/null)
log "simple-whip-server ready in $tools/simple-whip-server"
