#!/usr/bin/env bash
# telepi through NATs (issue 10): a small internet built only inside network
# namespaces this script creates, nothing attached to the machine's own
# network, torn down on exit, error and SIGTERM.
#
#   inet     bridge "internet" 100.64.0.0/10
#   srv      100.64.0.2   coturn, TURN REST secret, :3478;
#                         Mosquitto :1883 (robots) and :9001 (websockets, pages)
#            100.64.0.3   coturn, static user, :3479
#   rrouter  100.64.0.10  robot's NAT: MASQUERADE --random-fully (symmetric);
#                         TCP 8443-8446 forwarded to the robot (signaling, page);
#                         UDP 50001 forwarded 1:1 (both ways) for the direct path
#   robot    192.168.10.2 four telepi instances (one per path, own ports/config)
#   rrouter2 100.64.0.11  a second robot's NAT: symmetric, nothing forwarded at all
#   robot2   192.168.11.2 telepi reached only through the broker (tests/nat/broker.test.mjs)
#   brouter  100.64.0.20  browser's NAT: plain MASQUERADE
#   browser  192.168.20.2 headless Chromium driven by tests/nat/nat.test.mjs
#
# Paths tested: turn-relay (robot behind the symmetric NAT, TURN with REST
# credentials), turn-static (the same with a static TURN user), direct
# (forwarded UDP port + [rtc] public_addr, no TURN), and a control: symmetric
# NAT with STUN only must fail. Then through the broker: the exported page
# opened as a file finds robot2 in the fleet view, connects, drives, survives
# a 10 s cut of robot2's uplink, and sees it go offline when it is killed.
#
#   tests/nat/run.sh [FILE...]         (as root; uses sudo otherwise)
# FILE: only these of tests/nat/*.test.mjs (default: all).
# Env: TELEPI_BIN (default target/debug/telepi), TELEPI_NAT_KEEP=1 (leave the
#      logs folder), TELEPI_NAT_LOG=debug (telepi's log level, default info),
#      TELEPI_NAT_SCHEME=http (serve the page over plain HTTP: only to debug a
#      telepi without --https; the secure-context checks then fail).
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/../.."
repo=$PWD

if [ "$(id -u)" -ne 0 ]; then
  exec sudo --preserve-env=TELEPI_BIN,TELEPI_NAT_KEEP,TELEPI_NAT_LOG,TELEPI_NAT_SCHEME,PATH "$self" "$@"
fi

log() { echo "nat: $*" >&2; }
die() { echo "nat: FAIL: $*" >&2; exit 1; }

# ---- packages ------------------------------------------------------------------
# shellcheck source=tests/netns.sh
source tests/netns.sh
need=()
need_browser_tools
command -v turnserver >/dev/null || need+=(coturn)
[ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_passwd >/dev/null || need+=(mosquitto)
command -v iptables >/dev/null || need+=(iptables)
command -v openssl >/dev/null || need+=(openssl)
install_needed
# Debian's coturn service must not run: the test starts its own instances.
# Nor Debian's mosquitto service.
for service in coturn mosquitto; do
  if command -v systemctl >/dev/null && systemctl is-enabled "$service" >/dev/null 2>&1; then
    systemctl disable --now "$service" >/dev/null 2>&1 || true
  fi
done

find_telepi_and_playwright

# ---- cleanup -------------------------------------------------------------------
netns_begin nat inet srv rrouter robot rrouter2 robot2 brouter browser

# ---- topology ------------------------------------------------------------------
for n in "${namespaces[@]}"; do
  ip netns add "$(ns "$n")"
  inns "$n" ip link set lo up
done
inns inet ip link add br0 type bridge
inns inet ip link set br0 up

# link NS_A IF_A NS_B IF_B: a veth pair created inside NS_A with its peer moved to NS_B.
link() {
  ip -n "$(ns "$1")" link add "$2" type veth peer name "$4" netns "$(ns "$3")"
  ip -n "$(ns "$1")" link set "$2" up
  ip -n "$(ns "$3")" link set "$4" up
}
wan() { # wan NS PORT-ON-BRIDGE ADDR
  link inet "$2" "$1" wan
  inns inet ip link set "$2" master br0
  inns "$1" ip addr add "$3/10" dev wan
  inns "$1" ip neigh add 100.64.0.1 lladdr 02:00:00:00:00:01 dev wan nud permanent
  inns "$1" ip route add default via 100.64.0.1 dev wan
}
# Like the real internet, the hosts on it send what is addressed to private
# networks into the void: a default route through a "backbone" 100.64.0.1
# whose MAC nobody has. Without it, sending to such an address fails at once
# (ENETUNREACH), and coturn closes an allocation when a relayed send fails
# that way: Chromium sends through TURN to every remote candidate, including
# the robot's private 192.168.10.2, and lost its relay within a second.
wan srv p-srv 100.64.0.2
wan rrouter p-rrouter 100.64.0.10
wan rrouter2 p-rrouter2 100.64.0.11
wan brouter p-brouter 100.64.0.20
inns srv ip addr add 100.64.0.3/10 dev wan # the static-credentials coturn

lan() { # lan ROUTER HOST SUBNET-PREFIX
  link "$1" lan "$2" eth0
  inns "$1" ip addr add "$3.1/24" dev lan
  inns "$2" ip addr add "$3.2/24" dev eth0
  inns "$2" ip route add default via "$3.1"
  inns "$1" sysctl -qw net.ipv4.ip_forward=1
}
lan rrouter robot 192.168.10
lan rrouter2 robot2 192.168.11
lan brouter browser 192.168.20

robot_pub=100.64.0.10
# The robot's router: symmetric NAT (a new public port per destination) for
# everything, except the forwards: TCP 8443-8446 (HTTPS page + signaling of the
# four telepi instances) and UDP 50001 both ways, port kept (the direct path).
inns rrouter iptables -t nat -A PREROUTING -i wan -p tcp --dport 8443:8446 -j DNAT --to-destination 192.168.10.2
inns rrouter iptables -t nat -A PREROUTING -i wan -p udp --dport 50001 -j DNAT --to-destination 192.168.10.2:50001
inns rrouter iptables -t nat -A POSTROUTING -o wan -p udp -s 192.168.10.2 --sport 50001 -j SNAT --to-source $robot_pub:50001
inns rrouter iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully
# robot2's router: symmetric NAT and no forward of any kind (a phone hotspot, CGNAT).
inns rrouter2 iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully
# The browser's router: an ordinary home NAT (ports kept where free).
inns brouter iptables -t nat -A POSTROUTING -o wan -j MASQUERADE


# ---- coturn ----------------------------------------------------------------------
turn_secret="nat-test-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
turn_common=(-n --no-tls --no-dtls --no-cli --realm telepi.test --fingerprint
  --min-port 49152 --max-port 65535 --log-file stdout --simple-log --no-software-attribute)
inns srv turnserver "${turn_common[@]}" --listening-ip 100.64.0.2 --relay-ip 100.64.0.2 --listening-port 3478 \
  --use-auth-secret --static-auth-secret "$turn_secret" \
  --userdb "$work/turndb-rest" --pidfile "$work/turn-rest.pid" >"$work/coturn-rest.log" 2>&1 &
pids+=($!)
inns srv turnserver "${turn_common[@]}" --listening-ip 100.64.0.3 --relay-ip 100.64.0.3 --listening-port 3479 \
  --lt-cred-mech --user robot:static-pass \
  --userdb "$work/turndb-static" --pidfile "$work/turn-static.pid" >"$work/coturn-static.log" 2>&1 &
pids+=($!)

# Both coturns relay between two allocations made from the browser's LAN
# (through its NAT): REST credentials on one, the static user on the other.
turn_check() { # turn_check IP PORT USER PASS
  local out="$work/uclient-$2.log" _
  for _ in $(seq 1 10); do
    if inns browser timeout 10 turnutils_uclient -y -c -n 1 -p "$2" -u "$3" -w "$4" "$1" >"$out" 2>&1 &&
       grep -q 'Total lost packets 0 ' "$out"; then return 0; fi
    sleep 0.3
  done
  return 1
}
rest_user="$(($(date +%s) + 600)):nat-check"
rest_pass=$(printf %s "$rest_user" | openssl dgst -sha1 -hmac "$turn_secret" -binary | base64)
turn_check 100.64.0.2 3478 "$rest_user" "$rest_pass" & check_rest=$!
turn_check 100.64.0.3 3479 robot static-pass & check_static=$!
wait $check_rest || die "no TURN relay with REST credentials: $(tail -5 "$work/uclient-3478.log"; tail -5 "$work/coturn-rest.log")"
wait $check_static || die "no TURN relay with the static user: $(tail -5 "$work/uclient-3479.log"; tail -5 "$work/coturn-static.log")"
log "topology up: coturn answers allocations from behind the browser's NAT"

# ---- Mosquitto ---------------------------------------------------------------------
# Robots connect over TCP, pages over websockets; both need the password.
broker_user=fleet
broker_pass="fleet-$(od -An -N6 -tx8 /dev/urandom | tr -d ' ')"
mosquitto_passwd -b -c "$work/mosquitto.passwd" "$broker_user" "$broker_pass"
cat >"$work/mosquitto.conf" <<EOF
listener 1883 100.64.0.2
listener 9001 100.64.0.2
protocol websockets
allow_anonymous false
password_file $work/mosquitto.passwd
persistence false
user root
log_dest file $work/mosquitto.log
EOF
inns srv /usr/sbin/mosquitto -c "$work/mosquitto.conf" >/dev/null 2>&1 &
pids+=($!)

# ---- telepi: one instance per path, in the robot's namespace ----------------------
# path https-port rtc-port: config lines for [rtc]
scheme=${TELEPI_NAT_SCHEME:-https} # http only while developing against a telepi without --https
secret="op-$(od -An -N6 -tx8 /dev/urandom | tr -d ' ')"
declare -A rtc_conf=(
  [turn-relay]='ice_servers = [{ urls = ["turn:100.64.0.2:3478"] }, { urls = ["stun:100.64.0.2:3478"] }]
turn_secret = "'"$turn_secret"'"'
  [turn-static]='ice_servers = [{ urls = ["turn:100.64.0.3:3479"], username = "robot", credential = "static-pass" }, { urls = ["stun:100.64.0.3:3479"] }]'
  [direct]='ice_servers = [{ urls = ["stun:100.64.0.2:3478"] }]
public_addr = "'"$robot_pub"':50001"'
  [control]='ice_servers = [{ urls = ["stun:100.64.0.2:3478"] }]'
)
declare -A port=([turn-relay]=0 [direct]=1 [control]=2 [turn-static]=3)
paths_json=""
for p in turn-relay direct control turn-static; do
  i=${port[$p]}
  mkdir -p "$work/$p"
  cat >"$work/$p/telepi.toml" <<EOF
state_dir = "$work/$p/state"
[rtc]
listen = "0.0.0.0:$((50000 + i))"
${rtc_conf[$p]}
[control]
operator_secret = "$secret"
EOF
  if [ "$scheme" = https ]; then
    listen=(--https "0.0.0.0:$((8443 + i))" --http "127.0.0.1:$((8080 + i))")
  else
    listen=(--http "0.0.0.0:$((8443 + i))")
  fi
  (cd "$work/$p" && TELEPI_LOG=${TELEPI_NAT_LOG:-info} exec ip netns exec "$(ns robot)" "$bin" --config telepi.toml "${listen[@]}") \
    >"$work/$p/telepi.log" 2>&1 &
  pids+=($!)
  paths_json+="${paths_json:+,}\"$p\":{\"url\":\"$scheme://$robot_pub:$((8443 + i))\",\"log\":\"$work/$p/telepi.log\"}"
done
for p in turn-relay direct control turn-static; do
  url="$scheme://$robot_pub:$((8443 + ${port[$p]}))/api/status"
  for _ in $(seq 1 50); do
    inns browser curl -skf -m 2 "$url" >/dev/null 2>&1 && continue 2
    sleep 0.2
  done
  grep -v '^ALSA lib' "$work/$p/telepi.log" | tail -20 >&2
  die "telepi ($p) does not answer $url from the browser's namespace"
done
log "telepi answers on $scheme://$robot_pub:8443-8446 through the port forward"

# robot2: no inbound port, signalling through the broker, video through TURN.
# Its HTTP listener is on its own loopback, only for the test to read its status.
mkdir -p "$work/broker"
cat >"$work/broker/telepi.toml" <<EOF
state_dir = "$work/broker/state"
[rtc]
listen = "0.0.0.0:50010"
ice_servers = [{ urls = ["turn:100.64.0.2:3478"] }, { urls = ["stun:100.64.0.2:3478"] }]
turn_secret = "$turn_secret"
[control]
operator_secret = "$secret"
[broker]
url = "mqtt://100.64.0.2:1883"
name = "rover"
username = "$broker_user"
password = "$broker_pass"
EOF
(cd "$work/broker" && TELEPI_LOG=${TELEPI_NAT_LOG:-info} exec ip netns exec "$(ns robot2)" "$bin" --config telepi.toml --http 127.0.0.1:8090) \
  >"$work/broker/telepi.log" 2>&1 &
broker_robot=$!
pids+=($broker_robot)
"$bin" export-page "$work/page" >/dev/null
broker_json="{\"page\":\"file://$work/page/index.html\",\"ws\":\"ws://100.64.0.2:9001\",\"username\":\"$broker_user\",\"password\":\"$broker_pass\",\"robot\":\"rover\",\"robotNs\":\"$(ns robot2)\",\"routerNs\":\"$(ns rrouter2)\",\"status\":\"http://127.0.0.1:8090/api/status\",\"pid\":$broker_robot,\"log\":\"$work/broker/telepi.log\"}"

# ---- the browser side ---------------------------------------------------------------
export TELEPI_NAT="{\"secret\":\"$secret\",\"paths\":{$paths_json},\"broker\":$broker_json}"
started=$(date +%s)
# One file at a time: each drives its own Chromium and the machine has few cores.
tests=("$@"); [ ${#tests[@]} -gt 0 ] || tests=(tests/nat/)
inns browser node --test --test-concurrency=1 --test-reporter=spec "${tests[@]}" &
node_pid=$!
pids+=($node_pid)
status=0
wait $node_pid || status=$?
log "browser test: $(($(date +%s) - started))s, exit $status"
if [ $status -ne 0 ]; then
  for p in turn-relay direct control turn-static broker; do
    echo "--- telepi ($p) log tail ---" >&2
    grep -v '^ALSA lib' "$work/$p/telepi.log" | tail -15 >&2
  done
fi
exit $status
