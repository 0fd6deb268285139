#!/usr/bin/env bash
# I/O and ipsec-secgw baselines for the gateway benchmark (BENCHMARKS.md, "I/O and ipsec-secgw
# baselines"). One process, one forwarding core (or two, below), no NIC and no hugepages:
#   net_pcap (rx_pcap=FILE,infinite_rx=1: a Scapy-made pcap replayed from memory)
#     -> forwarder (dpdk-testpmd io forwarding, or DPDK's ipsec-secgw encrypting or decrypting
#        AES-256-GCM with the crypto_aesni_gcm PMD) -> net_null (no-rx=1)
# The rate is read from the output port's opackets through the EAL telemetry socket, once a
# second in steady state; the median of SAMPLES one-second rates is printed, in Mpps. Decryption
# replays Scapy-made ESP frames (one SA, anti-replay off as in ipsec-secgw's default, since the
# pcap repeats itself) whose cleartext frames have the size of the row, as the gateway benchmark
# counts them.
#
# ipsec-secgw is built at run time in a temporary directory from Debian's dpdk-doc copy
# (/usr/share/dpdk/examples/ipsec-secgw), patched to request RX checksum offload only where the
# port supports it (no software port does, and no datapath code reads those flags). Nothing built
# from DPDK's example sources is kept.
#
# With SECGW_2CORES=1, ipsec-secgw also runs on both CPUs (lcores 0 and 1, a queue each on both
# ports, the pcap replayed into each RX queue): the reference for the gateway's 2-core cells.
#
# Usage: scripts/bench-io-baseline.sh    (env: SIZES="64 512 1420" WARMUP=3 SAMPLES=5 CPU=1
#        SECGW_2CORES=0)
# Packet addresses are in 198.18.0.0/15 and exist only in memory: no packet leaves the process.
set -euo pipefail
SCRIPTS="$(cd "$(dirname "$0")" && pwd)"

SIZES=(${SIZES:-64 512 1420})
WARMUP=${WARMUP:-3}
SAMPLES=${SAMPLES:-5}
CPU=${CPU:-1}
SECGW_2CORES=${SECGW_2CORES:-0}
EAL_COMMON=(--no-huge --no-pci --no-shconf -m 1024)
SECGW_SRC=/usr/share/dpdk/examples/ipsec-secgw
PY=/usr/bin/python3
# AES-256 key and 4-byte salt of the test SAs.
SECGW_KEY=01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14:15:16:17:18:19:1a:1b:1c:1d:1e:1f:20:a0:a1:a2:a3

WORK=$(mktemp -d /tmp/bench-io.XXXXXX)
APP_PID=
cleanup() {
  if [ -n "$APP_PID" ]; then kill -INT "$APP_PID" 2>/dev/null || true; wait "$APP_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd missing: run scripts/setup.sh" >&2; exit 1; }
[ -d "$SECGW_SRC" ] || { echo "$SECGW_SRC missing: run scripts/setup.sh (dpdk-doc)" >&2; exit 1; }

# 64 UDP/IPv4 frames per size (length without FCS), 64 flows, dst 198.19.0.1; and 64 ESP frames
# per size for decryption.
make_pcaps() {
  "$PY" - "$WORK" "$SECGW_KEY" "${SIZES[@]}" <<'PYEOF'
import sys
from scapy.all import Ether, IP, UDP, Raw, wrpcap
from scapy.layers.ipsec import ESP, SecurityAssociation
work, key, sizes = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), [int(s) for s in sys.argv[3:]]
for size in sizes:
    frames = []
    for i in range(64):
        p = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
             / IP(src="198.18.0.%d" % (1 + i), dst="198.19.0.1")
             / UDP(sport=1024 + i, dport=4096))
        p = p / Raw(b"\x00" * (size - len(p)))
        assert len(p) == size
        frames.append(p)
    wrpcap("%s/udp%d.pcap" % (work, size), frames)
    # The inbound SA 105 of secgw.cfg: ESP from 198.18.1.2 to the tunnel, inner to 198.18.2.0/24.
    sa = SecurityAssociation(ESP, spi=105, crypt_algo="AES-GCM", crypt_key=key,
                             tunnel_header=IP(src="198.18.1.2", dst="198.18.1.1"))
    esp = []
    for i in range(64):
        inner = IP(src="198.19.0.1", dst="198.18.2.%d" % (1 + i)) / UDP(sport=4096, dport=1024 + i)
        inner = inner / Raw(b"\x00" * (size - 14 - len(inner)))
        esp.append(Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / sa.encrypt(inner, seq_num=1 + i))
    wrpcap("%s/esp-in%d.pcap" % (work, size), esp)
PYEOF
}

build_secgw() {
  cp -r "$SECGW_SRC" "$WORK/secgw"
  "$PY" - "$WORK/secgw/ipsec-secgw.c" <<'PYEOF'
import sys
path = sys.argv[1]
src = open(path).read()
anchor = "\tlocal_port_conf.rxmode.offloads |= req_rx_offloads;\n"
assert src.count(anchor) == 1, "ipsec-secgw.c changed: update the patch"
patch = "\tlocal_port_conf.rxmode.offloads &= ~(RTE_ETH_RX_OFFLOAD_CHECKSUM & ~dev_info.rx_offload_capa);\n"
open(path, "w").write(src.replace(anchor, anchor + patch))
PYEOF
  make -C "$WORK/secgw" -j2 >"$WORK/secgw-build.log" 2>&1 \
    || { tail -20 "$WORK/secgw-build.log" >&2; exit 1; }
  # Port 0 (plain traffic) is protected, port 1 unprotected: ipsec-secgw encrypts what enters a
  # protected port and decrypts what enters an unprotected one.
  cat >"$WORK/secgw.cfg" <<CFG
sp ipv4 out esp protect 5 pri 1 dst 198.19.0.0/16 sport 0:65535 dport 0:65535
sa out 5 aead_algo aes-256-gcm aead_key $SECGW_KEY mode ipv4-tunnel src 198.18.1.1 dst 198.18.1.2
sp ipv4 in esp protect 105 pri 1 dst 198.18.2.0/24 sport 0:65535 dport 0:65535
sa in 105 aead_algo aes-256-gcm aead_key $SECGW_KEY mode ipv4-tunnel src 198.18.1.2 dst 198.18.1.1
rt ipv4 dst 198.18.1.2/32 port 1
rt ipv4 dst 198.18.2.0/24 port 0
CFG
}

testpmd_cmd() { # pcap-vdev-args prefix
  echo dpdk-testpmd -l "0,$CPU" "${EAL_COMMON[@]}" --file-prefix="$2" \
    --vdev="net_pcap0,$1" --vdev=net_null0,no-rx=1 \
    -- --forward-mode=io --nb-cores=1 --auto-start --stats-period=1
}

secgw_cmd() { # port-0-vdev port-1-vdev prefix [cores: 1 on CPU, or 2 on CPUs 0 and 1]
  local lcores=$CPU config="(0,0,$CPU),(1,0,$CPU)"
  if [ "${4:-1}" = 2 ]; then lcores=0,1 config="(0,0,0),(0,1,1),(1,0,0),(1,1,1)"; fi
  echo "$WORK/secgw/build/ipsec-secgw" -l "$lcores" "${EAL_COMMON[@]}" --file-prefix="$3" \
    --vdev="$1" --vdev="$2" --vdev=crypto_aesni_gcm0 \
    -- -p 0x3 -P -u 0x2 "--config=$config" -f "$WORK/secgw.cfg"
}

# Runs a command line (word-split; no argument contains spaces) in the background and prints
# the median rate of port PORT's TX.
measure() { # prefix port command...
  local prefix=$1 port=$2; shift 2
  "$@" >"$WORK/$prefix.log" 2>&1 &
  APP_PID=$!
  "$PY" "$SCRIPTS/telemetry-rate.py" "/var/run/dpdk/$prefix/dpdk_telemetry.v2" "$WARMUP" "$SAMPLES" "$APP_PID" "$port" || { tail -20 "$WORK/$prefix.log" >&2; exit 1; }
  kill -INT "$APP_PID"; wait "$APP_PID" || true; APP_PID=
}

# ipsec-secgw must really emit ESP: replay each pcap once into a pcap-writing port 1 and check.
verify_secgw_output() { # size
  local out="$WORK/esp$1.pcap"
  $(secgw_cmd "net_pcap0,rx_pcap=$WORK/udp$1.pcap" "net_pcap1,tx_pcap=$out" "verify$1") >"$WORK/verify$1.log" 2>&1 &
  APP_PID=$!
  sleep 4; kill -INT "$APP_PID"; wait "$APP_PID" || true; APP_PID=
  "$PY" - "$out" "$1" "$SECGW_KEY" <<'PYEOF'
import sys
from scapy.all import rdpcap, ESP, IP, UDP
from scapy.layers.ipsec import SecurityAssociation
frames = rdpcap(sys.argv[1])
size = int(sys.argv[2])
sa = SecurityAssociation(ESP, spi=5, crypt_algo="AES-GCM", crypt_key=bytes.fromhex(sys.argv[3].replace(":", "")),
                         tunnel_header=IP(src="198.18.1.1", dst="198.18.1.2"))
assert len(frames) == 64, "expected 64 ESP frames, got %d" % len(frames)
wire_len = len(frames[0])
for f in frames:
    assert f[IP].dst == "198.18.1.2" and f[ESP].spi == 5, f.summary()
    inner = sa.decrypt(f[IP])  # checks the ICV
    assert inner[IP].dst == "198.19.0.1" and inner[UDP].dport == 4096, inner.summary()
# Ethernet 14 + outer IPv4 20 + ESP 8 + IV 8 + inner IP packet + trailer padded to 4 + ICV 16
print("  ESP check %d B: 64 frames, SPI 5, outer dst 198.18.1.2, %d B each, decrypted by Scapy" % (size, wire_len))
PYEOF
}

# ... and really decrypt: replay each ESP pcap once into port 1, port 0 writing a pcap, and check.
verify_secgw_decryption() { # size
  local out="$WORK/dec$1.pcap"
  $(secgw_cmd "net_pcap0,tx_pcap=$out" "net_pcap1,rx_pcap=$WORK/esp-in$1.pcap" "verifydec$1") >"$WORK/verifydec$1.log" 2>&1 &
  APP_PID=$!
  sleep 4; kill -INT "$APP_PID"; wait "$APP_PID" || true; APP_PID=
  "$PY" - "$out" "$1" <<'PYEOF'
import sys
from scapy.all import rdpcap, IP, UDP
frames = rdpcap(sys.argv[1])
size = int(sys.argv[2])
assert len(frames) == 64, "expected 64 cleartext frames, got %d" % len(frames)
for i, f in enumerate(frames):
    assert f[IP].src == "198.19.0.1" and f[IP].dst.startswith("198.18.2.") and f[UDP].sport == 4096, f.summary()
    assert len(f) == size, len(f)
print("  decryption check %d B: 64 cleartext frames of %d B to 198.18.2.0/24" % (size, size))
PYEOF
}

make_pcaps
build_secgw
echo "one forwarding core (CPU $CPU), median of $SAMPLES one-second samples after ${WARMUP}s:"
echo "Mpps @ CPUs the process used meanwhile = Mpps per CPU used"
# "Mpps @ CPUs used = Mpps per CPU": telemetry-rate.py prints the rate and the CPU used.
cell() { # "mpps cpu"
  local mpps=${1% *} cpu=${1#* }
  printf '%s @ %s = %s' "$mpps" "$cpu" "$("$PY" -c "print('%.3f' % ($mpps / max($cpu, 0.01)))")"
}
if [ "$SECGW_2CORES" = 1 ]; then
  printf '| frame (B) | testpmd io | ipsec-secgw AES-256-GCM encrypt | ipsec-secgw AES-256-GCM decrypt | ipsec-secgw encrypt, 2 cores | ipsec-secgw decrypt, 2 cores |\n|---|---|---|---|---|---|\n'
else
  printf '| frame (B) | testpmd io | ipsec-secgw AES-256-GCM encrypt | ipsec-secgw AES-256-GCM decrypt |\n|---|---|---|---|\n'
fi
for size in "${SIZES[@]}"; do
  io=$(measure "io$size" 1 $(testpmd_cmd "rx_pcap=$WORK/udp$size.pcap,infinite_rx=1" "io$size"))
  esp=$(measure "esp$size" 1 $(secgw_cmd "net_pcap0,rx_pcap=$WORK/udp$size.pcap,infinite_rx=1" net_null0,no-rx=1 "esp$size"))
  # Decryption: ESP into port 1 (unprotected), cleartext out of port 0.
  dec=$(measure "dec$size" 0 $(secgw_cmd net_null0,no-rx=1 "net_pcap0,rx_pcap=$WORK/esp-in$size.pcap,infinite_rx=1" "dec$size"))
  row="| $size | $(cell "$io") | $(cell "$esp") | $(cell "$dec") |"
  if [ "$SECGW_2CORES" = 1 ]; then
    plain="rx_pcap=$WORK/udp$size.pcap" esp_in="rx_pcap=$WORK/esp-in$size.pcap"
    esp2=$(measure "esp2c$size" 1 $(secgw_cmd "net_pcap0,$plain,$plain,infinite_rx=1" net_null0,no-rx=1 "esp2c$size" 2))
    dec2=$(measure "dec2c$size" 0 $(secgw_cmd net_null0,no-rx=1 "net_pcap0,$esp_in,$esp_in,infinite_rx=1" "dec2c$size" 2))
    row+=" $(cell "$esp2") | $(cell "$dec2") |"
  fi
  echo "$row"
done
for size in "${SIZES[@]}"; do verify_secgw_output "$size"; verify_secgw_decryption "$size"; done
