#!/usr/bin/env bash
# The two-site topology of the gateway demo and tests, in network namespaces:
#
#   host A ---- gateway A ======== gateway B ---- host B
#   198.18.1.2   p0 | u0   ESP     u0 | p0        198.18.2.2
#   2001:2:0:1::2  198.18.0.1   198.18.0.2      2001:2:0:2::2
#
# The gateways' veth ends (p0, u0) carry no kernel address: DPDK's net_af_packet drives them, and
# each gateway's addresses live on its exception interfaces (net_tap, created by the gateway).
# Their rings hold 4096 frames (framecnt): with net_af_packet's default of 512, the ring of the
# receiving gateway overflowed whenever its lcore was descheduled, and the demo's TCP transfer
# lost 1,100-3,900 ESP packets a run on the link (counted nowhere; TCP resent them).
# Addresses: 198.18.0.0/15 and 2001:2::/48 (the IPv4 and IPv6 benchmarking ranges) only.
#
# Usage: topology.sh up PREFIX            create namespaces PREFIX-ha, -ga, -gb, -hb
#        topology.sh down PREFIX          delete them
#        topology.sh config PREFIX a|b SUITE  print gateway a's or b's configuration
#              SUITE: aes-gcm-256 | aes-cbc-256-hmac-sha256
set -euo pipefail

# MAC addresses: fixed, so the configurations can name the neighbours.
MAC_HA=02:00:00:01:00:02 MAC_GA_P=02:00:00:01:00:01 MAC_GA_U=02:00:00:00:00:01
MAC_GB_U=02:00:00:00:00:02 MAC_GB_P=02:00:00:02:00:01 MAC_HB=02:00:00:02:00:02

# Software checksums and no segmentation offload: frames leave a veth complete, as a NIC would
# receive them (af_packet would otherwise see partial checksums and 64 KB super-frames).
plain_link() { # ns dev
  ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
}

up() {
  local p=$1
  down "$p" 2>/dev/null || true
  for n in ha ga gb hb; do ip netns add "$p-$n"; ip netns exec "$p-$n" ip link set lo up; done
  ip link add eth0 netns "$p-ha" address $MAC_HA type veth peer name p0 netns "$p-ga" address $MAC_GA_P
  ip link add u0 netns "$p-ga" address $MAC_GA_U type veth peer name u0 netns "$p-gb" address $MAC_GB_U
  ip link add p0 netns "$p-gb" address $MAC_GB_P type veth peer name eth0 netns "$p-hb" address $MAC_HB
  for g in ga gb; do
    for d in p0 u0; do
      ip netns exec "$p-$g" sysctl -qw "net.ipv6.conf.$d.disable_ipv6=1"
      ip netns exec "$p-$g" ip link set "$d" up
      plain_link "$p-$g" "$d"
      # The kernel must not answer for the exception interfaces' addresses on this link
      # itself (weak host model): strict reverse-path filtering drops the IP packets that
      # arrive here (their sources are routed via the exception interfaces), arp_ignore=8
      # silences ARP. DPDK's af_packet socket still receives every frame.
      ip netns exec "$p-$g" sysctl -qw "net.ipv4.conf.$d.rp_filter=1" "net.ipv4.conf.$d.arp_ignore=8"
    done
  done
  local side
  for side in a b; do
    local ns="$p-h$side" n=1; [ $side = b ] && n=2
    ip netns exec "$ns" ip link set eth0 mtu 1400 up
    plain_link "$ns" eth0
    ip netns exec "$ns" ip addr add "198.18.$n.2/24" dev eth0
    ip netns exec "$ns" ip -6 addr add "2001:2:0:$n::2/64" dev eth0 nodad
    ip netns exec "$ns" ip route add default via "198.18.$n.1"
    ip netns exec "$ns" ip -6 route add default via "2001:2:0:$n::1"
  done
}

down() {
  local p=$1
  for n in ha ga gb hb; do ip netns del "$p-$n" 2>/dev/null || true; done
}

# 36-byte AES-256-GCM key+salt, or 32-byte AES-256 key and 32-byte HMAC key, per direction.
key() { # direction-seed length
  python3 -c "import sys; print(bytes((int(sys.argv[1]) * 17 + i) % 256 for i in range(int(sys.argv[2]))).hex())" "$1" "$2"
}

sa() { # direction spi mode src dst reqid local remote seed suite
  local enc auth=""
  if [ "${10}" = aes-gcm-256 ]; then enc=$(key "$9" 36); else enc=$(key "$9" 32); auth="auth_key = \"$(key $(( $9 + 100 )) 32)\""; fi
  cat <<SA
[[sas]]
direction = "$1"
spi = $2
mode = "$3"
src = "$4"
dst = "$5"
reqid = $6
local = "$7"
remote = "$8"
suite = "${10}"
enc_key = "$(echo $enc)"
$auth

SA
}

policy() { # direction src dst reqid mode tunnel-src tunnel-dst [proto]
  cat <<POL
[[policies]]
direction = "$1"
src = "$2"
dst = "$3"
action = "protect"
reqid = $4
mode = "$5"
$( [ "$5" = tunnel ] && echo "tunnel = [\"$6\", \"$7\"]" )
$( [ -n "${8:-}" ] && echo "proto = \"$8\"" )

POL
}

config() { # prefix a|b suite
  local p=$1 me=$2 suite=$3
  local n=1 peer=2 mac_p=$MAC_HA mac_u=$MAC_GB_U out=1 in=2
  if [ "$me" = b ]; then n=2 peer=1 mac_p=$MAC_HB mac_u=$MAC_GA_U out=2 in=1; fi
  local u4="198.18.0.$n" pu4="198.18.0.$peer" u6="2001:2::$n" pu6="2001:2::$peer"
  local l4="198.18.$n.0/24" r4="198.18.$peer.0/24" l6="2001:2:0:$n::/64" r6="2001:2:0:$peer::/64"
  cat <<CFG
# Gateway $me of the two-site topology (scripts/topology.sh), $suite.
[gateway]
region = "/dev/shm/$p-g$me.region"
stats_file = "/tmp/$p-g$me.stats"
log_interval_secs = 2

[ports.protected]
device = "net_af_packet0,iface=p0,framecnt=4096"
exception = "net_tap0,iface=gw-p"
addresses = ["198.18.$n.1/24", "2001:2:0:$n::1/64"]

[ports.unprotected]
device = "net_af_packet1,iface=u0,framecnt=4096"
exception = "net_tap1,iface=gw-u"
addresses = ["$u4/30", "$u6/64"]

[[routes]]
prefix = "$r4"
via = "$pu4"

[[routes]]
prefix = "$r6"
via = "$pu6"

[[neighbours]]
address = "$pu4"
mac = "$mac_u"

[[neighbours]]
address = "$pu6"
mac = "$mac_u"

[[neighbours]]
address = "198.18.$n.2"
mac = "$mac_p"

[[neighbours]]
address = "2001:2:0:$n::2"
mac = "$mac_p"

# Tunnel mode between the sites, IPv4 in IPv4 and IPv6 in IPv6.
$(policy out "$l4" "$r4" 1 tunnel "$u4" "$pu4")
$(policy in "$r4" "$l4" 2 tunnel "$pu4" "$u4")
$(policy out "$l6" "$r6" 3 tunnel "$u6" "$pu6")
$(policy in "$r6" "$l6" 4 tunnel "$pu6" "$u6")
# Transport mode for the gateways' own ICMP to each other.
$(policy out "$u4/32" "$pu4/32" 5 transport "" "" icmp)
$(policy in "$pu4/32" "$u4/32" 6 transport "" "" icmp)

$(sa out $((0x1000 + out)) tunnel "$u4" "$pu4" 1 "$l4" "$r4" $out "$suite")
$(sa in $((0x1000 + in)) tunnel "$pu4" "$u4" 2 "$l4" "$r4" $in "$suite")
$(sa out $((0x1600 + out)) tunnel "$u6" "$pu6" 3 "$l6" "$r6" $((out + 10)) "$suite")
$(sa in $((0x1600 + in)) tunnel "$pu6" "$u6" 4 "$l6" "$r6" $((in + 10)) "$suite")
$(sa out $((0x1500 + out)) transport "$u4" "$pu4" 5 "$u4/32" "$pu4/32" $((out + 20)) "$suite")
$(sa in $((0x1500 + in)) transport "$pu4" "$u4" 6 "$u4/32" "$pu4/32" $((in + 20)) "$suite")
CFG
}

case "${1:-}" in
  up) up "$2" ;;
  down) down "$2" ;;
  config) config "$2" "$3" "$4" ;;
  *) echo "usage: $0 up|down PREFIX | config PREFIX a|b SUITE" >&2; exit 2 ;;
esac
