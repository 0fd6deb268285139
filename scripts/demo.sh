#!/usr/bin/env bash
# The main command (README): two sites joined by two gateways, end to end, on one machine with no
# NIC and no hugepages. Installs what is missing, builds, then:
#   1. creates host A, gateway A, gateway B, host B in network namespaces (scripts/topology.sh);
#   2. runs the gateway dataplane twice (DPDK, net_af_packet on the veths, --no-huge) and loads
#      each one's static SAs and SPD rules (AES-256-GCM by default; --suite aes-cbc-256-hmac-sha256);
#   3. pings host B from host A (IPv4 and IPv6, tunnel mode) and gateway B from gateway A
#      (transport mode), and sends a bounded TCP transfer from host A to host B;
#   4. captures the link between the gateways and prints what is on it, with tshark decrypting it;
#   5. prints packets, throughput, the gateways' statistics and SA counters, and cleans up.
# The shared-region demo that used to be the main command is scripts/demo-shm.sh.
#
# Usage: scripts/demo.sh [--suite SUITE] [--megabytes N]
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=aes-gcm-256
MEGABYTES=100
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) SUITE=$2; shift 2 ;;
    --megabytes) MEGABYTES=$2; shift 2 ;;
    *) echo "usage: $0 [--suite aes-gcm-256|aes-cbc-256-hmac-sha256] [--megabytes N]" >&2; exit 2 ;;
  esac
done

./scripts/setup.sh
cargo build --release -q -p dataplane --bin gateway
GATEWAY=${CARGO_TARGET_DIR:-target}/release/gateway

P=gwdemo$$
WORK=$(mktemp -d /tmp/gwdemo.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ./scripts/topology.sh down "$P"
  rm -f "/dev/shm/$P-ga.region" "/dev/shm/$P-gb.region" "/tmp/$P-ga.stats" "/tmp/$P-gb.stats"
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "topology: host A (198.18.1.2) - gateway A - gateway B - host B (198.18.2.2), suite $SUITE"
./scripts/topology.sh up "$P"
for g in a b; do ./scripts/topology.sh config "$P" "$g" "$SUITE" >"$WORK/g$g.toml"; done

step "starting both gateways (DPDK, net_af_packet + net_tap, no hugepages)"
# Each gateway polls on its own core where there are two: A's worker on lcore 1, B's on lcore 0.
ip netns exec "$P-ga" "$GATEWAY" run "$WORK/ga.toml" -- -l 0,1 --main-lcore 0 --no-huge --no-pci -m 512 \
  --no-shconf --no-telemetry "--file-prefix=$P-a" --log-level=pmd.net.tap:error >"$WORK/ga.log" 2>&1 &
PIDS+=($!)
ip netns exec "$P-gb" "$GATEWAY" run "$WORK/gb.toml" -- -l 0,1 --main-lcore 1 --no-huge --no-pci -m 512 \
  --no-shconf --no-telemetry "--file-prefix=$P-b" --log-level=pmd.net.tap:error >"$WORK/gb.log" 2>&1 &
PIDS+=($!)
for g in a b; do
  for _ in $(seq 100); do [ -f "/tmp/$P-g$g.stats" ] && break; sleep 0.1; done
  [ -f "/tmp/$P-g$g.stats" ] || { cat "$WORK/g$g.log" >&2; echo "gateway $g did not start" >&2; exit 1; }
  grep '^gateway: [0-9]' "$WORK/g$g.log" || true
done

step "loading static SAs and SPD rules into each gateway's shared region"
"$GATEWAY" load "$WORK/ga.toml"
"$GATEWAY" load "$WORK/gb.toml"

step "capturing the link between the gateways (at both ends: each capture sees what arrives there)"
CAPTURES=()
for g in a b; do
  ip netns exec "$P-g$g" dumpcap -q -i u0 -w "$WORK/link-$g.pcapng" >/dev/null 2>&1 &
  CAPTURES+=($!)
done
sleep 1

step "ping host A -> host B (IPv4, tunnel mode)"
ip netns exec "$P-ha" ping -c 5 -i 0.2 -W 2 198.18.2.2 | tail -3
step "ping host A -> host B (IPv6, tunnel mode)"
ip netns exec "$P-ha" ping -6 -c 5 -i 0.2 -W 2 2001:2:0:2::2 | tail -3
step "ping gateway A -> gateway B (IPv4, transport mode, the gateways' own traffic)"
ip netns exec "$P-ga" ping -c 3 -i 0.2 -W 2 198.18.0.2 | tail -3

step "TCP: $MEGABYTES MB from host A to host B through the tunnel"
ip netns exec "$P-hb" python3 - "$MEGABYTES" >"$WORK/tcp.out" <<'PY' &
import socket, sys, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("198.18.2.2", 5001)); srv.listen(1); srv.settimeout(30)
conn, _ = srv.accept(); conn.settimeout(30)
total, start = 0, time.time()
while True:
    data = conn.recv(1 << 16)
    if not data:
        break
    total += len(data)
elapsed = time.time() - start
print(f"received {total} bytes in {elapsed:.2f} s: {total * 8 / elapsed / 1e6:.1f} Mbit/s")
PY
SERVER=$!
sleep 0.5
timeout 60 ip netns exec "$P-ha" python3 - "$MEGABYTES" <<'PY'
import socket, sys
s = socket.create_connection(("198.18.2.2", 5001), timeout=30)
chunk = bytes(range(256)) * 256
for _ in range(int(sys.argv[1]) * 16):
    s.sendall(chunk)
s.close()
PY
wait "$SERVER"
cat "$WORK/tcp.out"

sleep 0.5
for pid in "${CAPTURES[@]}"; do kill -INT "$pid"; wait "$pid" 2>/dev/null || true; done
mergecap -w "$WORK/link.pcapng" "$WORK/link-a.pcapng" "$WORK/link-b.pcapng"

step "the link between the gateways: protocols seen (IP payloads)"
tshark -r "$WORK/link.pcapng" -T fields -e ip.proto -e ipv6.nxt -e _ws.col.Protocol 2>/dev/null \
  | awk '{print $NF}' | sort | uniq -c | sort -rn

step "the same capture decrypted by tshark with the configured keys (ESP packets, inner addresses)"
# One Wireshark ESP SA entry per configured SA (tshark's uat:esp_sa preference).
mapfile -t UAT < <(python3 - "$WORK/ga.toml" <<'PY'
import sys, tomllib
for sa in tomllib.load(open(sys.argv[1], "rb"))["sas"]:
    if sa["suite"] == "aes-gcm-256":
        enc, auth = "AES-GCM with 16 octet ICV [RFC4106]", "NULL"
    else:
        enc, auth = "AES-CBC [RFC3602]", "HMAC-SHA-256-128 [RFC4868]"
    fam = "IPv6" if ":" in sa["src"] else "IPv4"
    auth_key = "0x" + sa["auth_key"] if "auth_key" in sa else ""
    print(f'uat:esp_sa:"{fam}","*","*","{sa["spi"]:#010x}","{enc}","0x{sa["enc_key"]}","{auth}","{auth_key}"')
PY
)
TSHARK_OPTS=(-n -o esp.enable_encryption_decode:TRUE)
for u in "${UAT[@]}"; do TSHARK_OPTS+=(-o "$u"); done
tshark "${TSHARK_OPTS[@]}" -r "$WORK/link.pcapng" -Y esp -T fields -E separator=' ' \
  -e esp.spi -e esp.sequence -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e _ws.col.Protocol 2>/dev/null \
  | awk '{ key = $0; sub(/^[^ ]+ [^ ]+ /, "", key); if (!(key in seen)) { seen[key] = 1; print "  spi " $1 " seq " $2 ": " key } }' | head -12
echo "  ESP packets: $(tshark -r "$WORK/link.pcapng" -Y esp 2>/dev/null | wc -l), decrypted by tshark: $(tshark "${TSHARK_OPTS[@]}" -r "$WORK/link.pcapng" -Y 'esp && (ip.version == 4 || ipv6) && (icmp || icmpv6 || tcp)' 2>/dev/null | wc -l)"

step "gateway statistics (gateway stats CONFIG, also written to the stats file every 250 ms)"
for g in a b; do
  echo "-- gateway $g"
  "$GATEWAY" stats "$WORK/g$g.toml" | grep -E '^(lcore|port (un)?protected |drop|sa)' \
    | sed -E 's/ drop_[a-z_]+ 0//g'
done
step "done; cleaning up"
