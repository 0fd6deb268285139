#!/usr/bin/env bash
# I/O and ipsec-secgw baselines for the gateway benchmark (BENCHMARKS.md, "I/O and ipsec-secgw
# baselines"). One process, one forwarding core (or two, below), no NIC and no hugepages:
#   net_pcap (rx_pcap=FILE,infinite_rx=1: a Scapy-made pcap replayed from memory)
#     -> forwarder (dpdk-testpmd io forwarding, or DPDK's ipsec-secgw encrypting or decrypting
#        AES-256-GCM with the crypto_aesni_gcm PMD, or AES-256-CBC + HMAC-SHA-256-128 with the
#        crypto_aesni_mb PMD: both intel-ipsec-mb) -> net_null (no-rx=1)
# The rate is read from the output port's opackets through the EAL telemetry socket, once a
# second in steady state; the median of SAMPLES one-second rates is printed, in Mpps. Decryption
# replays Scapy-made ESP frames (anti-replay off as in ipsec-secgw's default, since the pcap
# repeats itself) whose cleartext frames have the size of the row, as the gateway benchmark
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
# SECGW_SAS="one many" also measures ipsec-secgw with 64 SAs, a flow each (the SAs and flows of
# the gateway benchmark's "many" cells), beside one SA for all 64 flows ("one").
#
# SECGW_SUITES="aes-gcm-256 aes-cbc-256-hmac-sha256" measures ipsec-secgw with each suite (the
# gateway benchmark's names).
#
# Usage: scripts/bench-io-baseline.sh    (env: SIZES="64 512 1420" WARMUP=3 SAMPLES=5 CPU=1
#        SECGW_2CORES=0 SECGW_SAS=one SECGW_SUITES=aes-gcm-256)
# Packet addresses are in 198.18.0.0/15 and exist only in memory: no packet leaves the process.
set -euo pipefail
SCRIPTS="$(cd "$(dirname "$0")" && pwd)"

SIZES=(${SIZES:-64 512 1420})
WARMUP=${WARMUP:-3}
SAMPLES=${SAMPLES:-5}
CPU=${CPU:-1}
SECGW_2CORES=${SECGW_2CORES:-0}
SECGW_SAS=(${SECGW_SAS:-one})
SECGW_SUITES=(${SECGW_SUITES:-aes-gcm-256})
EAL_COMMON=(--no-huge --no-pci --no-shconf -m 1024)
SECGW_SRC=/usr/share/dpdk/examples/ipsec-secgw
PY=/usr/bin/python3

WORK=$(mktemp -d /tmp/bench-io.XXXXXX)
APP_PID=
cleanup() {
  if [ -n "$APP_PID" ]; then kill -INT "$APP_PID" 2>/dev/null || true; wait "$APP_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd missing: run scripts/setup.sh" >&2; exit 1; }
[ -d "$SECGW_SRC" ] || { echo "$SECGW_SRC missing: run scripts/setup.sh (dpdk-doc)" >&2; exit 1; }

# The test SAs of both layouts and both suites, their pcaps and ipsec-secgw configurations, from
# one Python module so that the checks below decrypt with the keys the configurations hold.
# "one": SA 5 out and 105 in, 64 flows to 198.19.0.1 from 64 sources. "many" (the gateway
# benchmark's 64 SAs): SA 0x1000+i out and 0x2000+i in (keys of their own), flow i to
# 198.19.0.(1+i) and, decrypted, to 198.18.2.(1+i).
write_sas_module() {
  cat >"$WORK/secgw_sas.py" <<'PYEOF'
from scapy.all import Ether, IP, UDP, Raw
from scapy.layers.ipsec import ESP, SecurityAssociation
FLOWS = 64
# Suite: Scapy's cipher, cipher key length (AES-256, with GCM's 4-byte salt), Scapy's integrity.
SUITES = {"aes-gcm-256": ("AES-GCM", 36, None), "aes-cbc-256-hmac-sha256": ("AES-CBC", 32, "SHA2-256-128")}
def material(seed, n):
    return bytes((seed * 17 + 3 * j + 1) % 256 for j in range(n))
def sas(layout, suite):
    """[(out SPI, in SPI, cipher key, integrity key or None, plain destination, inbound inner
    destination)], one per flow."""
    _, cipher_len, integrity = SUITES[suite]
    def keys(seed):
        return material(seed, cipher_len), material(seed + 100, 32) if integrity else None
    if layout == "one":
        return [(5, 105, *keys(0), "198.19.0.1", "198.18.2.%d" % (1 + i)) for i in range(FLOWS)]
    return [(0x1000 + i, 0x2000 + i, *keys(i), "198.19.0.%d" % (1 + i), "198.18.2.%d" % (1 + i))
            for i in range(FLOWS)]
def esp_sa(suite, spi, cipher_key, auth_key, src, dst):
    cipher, _, integrity = SUITES[suite]
    auth = {"auth_algo": integrity, "auth_key": auth_key} if integrity else {}
    return SecurityAssociation(ESP, spi=spi, crypt_algo=cipher, crypt_key=cipher_key,
                               tunnel_header=IP(src=src, dst=dst), **auth)
def colons(key):
    return ":".join("%02x" % b for b in key)
def plain_frames(layout, size):
    frames = []
    for i, (_, _, _, _, dst, _) in enumerate(sas(layout, "aes-gcm-256")):
        p = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
             / IP(src="198.18.0.%d" % (1 + i), dst=dst) / UDP(sport=1024 + i, dport=4096))
        p = p / Raw(b"\x00" * (size - len(p)))
        assert len(p) == size
        frames.append(p)
    return frames
def esp_frames(layout, suite, size):
    frames = []
    for i, (_, spi, cipher_key, auth_key, _, inner_dst) in enumerate(sas(layout, suite)):
        inner = IP(src="198.19.0.1", dst=inner_dst) / UDP(sport=4096, dport=1024 + i)
        inner = inner / Raw(b"\x00" * (size - 14 - len(inner)))
        sa = esp_sa(suite, spi, cipher_key, auth_key, "198.18.1.2", "198.18.1.1")
        frames.append(Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / sa.encrypt(inner, seq_num=1 + i))
    return frames
def secgw_cfg(layout, suite):
    """Port 0 (plain traffic) is protected, port 1 unprotected: ipsec-secgw encrypts what enters a
    protected port and decrypts what enters an unprotected one."""
    lines, seen = [], set()
    for spi_out, spi_in, cipher_key, auth_key, dst, inner_dst in sas(layout, suite):
        if spi_out in seen:
            continue
        seen.add(spi_out)
        if auth_key is None:
            algos = "aead_algo aes-256-gcm aead_key %s" % colons(cipher_key)
        else:
            algos = "cipher_algo aes-256-cbc cipher_key %s auth_algo sha256-hmac auth_key %s" % (colons(cipher_key), colons(auth_key))
        out_dst, in_dst = ("198.19.0.0/16", "198.18.2.0/24") if layout == "one" else (dst + "/32", inner_dst + "/32")
        lines += ["sp ipv4 out esp protect %d pri 1 dst %s sport 0:65535 dport 0:65535" % (spi_out, out_dst),
                  "sa out %d %s mode ipv4-tunnel src 198.18.1.1 dst 198.18.1.2" % (spi_out, algos),
                  "sp ipv4 in esp protect %d pri 1 dst %s sport 0:65535 dport 0:65535" % (spi_in, in_dst),
                  "sa in %d %s mode ipv4-tunnel src 198.18.1.2 dst 198.18.1.1" % (spi_in, algos)]
    return "\n".join(lines + ["rt ipv4 dst 198.18.1.2/32 port 1", "rt ipv4 dst 198.18.2.0/24 port 0", ""])
PYEOF
}

# Per layout and suite: secgw-LAYOUT-SUITE.cfg; per layout and size 64 UDP/IPv4 frames
# (udp-LAYOUT-SIZE.pcap, length without FCS), and per suite too the 64 ESP frames that decrypt to
# such frames (esp-in-SUITE-LAYOUT-SIZE.pcap).
make_pcaps() {
  write_sas_module
  "$PY" - "$WORK" "${SIZES[*]}" "${SECGW_SAS[*]}" "${SECGW_SUITES[*]}" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
from scapy.all import wrpcap
from secgw_sas import plain_frames, esp_frames, secgw_cfg
work, sizes, layouts, suites = sys.argv[1], [int(s) for s in sys.argv[2].split()], sys.argv[3].split(), sys.argv[4].split()
for layout in layouts:
    for size in sizes:
        wrpcap("%s/udp-%s-%d.pcap" % (work, layout, size), plain_frames(layout, size))
    for suite in suites:
        open("%s/secgw-%s-%s.cfg" % (work, layout, suite), "w").write(secgw_cfg(layout, suite))
        for size in sizes:
            wrpcap("%s/esp-in-%s-%s-%d.pcap" % (work, suite, layout, size), esp_frames(layout, suite, size))
PYEOF
}

# ipsec-secgw is patched to request RX checksum offload only where the port supports it.
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
}

testpmd_cmd() { # pcap-vdev-args prefix
  echo dpdk-testpmd -l "0,$CPU" "${EAL_COMMON[@]}" --file-prefix="$2" \
    --vdev="net_pcap0,$1" --vdev=net_null0,no-rx=1 \
    -- --forward-mode=io --nb-cores=1 --auto-start --stats-period=1
}

# The crypto PMD of each suite: intel-ipsec-mb's GCM, and its multi-buffer job API for CBC + HMAC.
crypto_vdev() { # suite
  if [ "$1" = aes-gcm-256 ]; then echo crypto_aesni_gcm0; else echo crypto_aesni_mb0; fi
}

secgw_cmd() { # layout suite port-0-vdev port-1-vdev prefix [cores: 1 on CPU, or 2 on CPUs 0 and 1]
  local lcores=$CPU config="(0,0,$CPU),(1,0,$CPU)"
  if [ "${6:-1}" = 2 ]; then lcores=0,1 config="(0,0,0),(0,1,1),(1,0,0),(1,1,1)"; fi
  echo "$WORK/secgw/build/ipsec-secgw" -l "$lcores" "${EAL_COMMON[@]}" --file-prefix="$5" \
    --vdev="$3" --vdev="$4" --vdev="$(crypto_vdev "$2")" \
    -- -p 0x3 -P -u 0x2 "--config=$config" -f "$WORK/secgw-$1-$2.cfg"
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

# Runs ipsec-secgw until it has forwarded its input pcap once into an output pcap.
run_once() { # layout suite port-0-vdev port-1-vdev prefix
  $(secgw_cmd "$@") >"$WORK/$5.log" 2>&1 &
  APP_PID=$!
  sleep 4; kill -INT "$APP_PID"; wait "$APP_PID" || true; APP_PID=
}

# ipsec-secgw must really emit ESP under the SA of each flow, and really decrypt: each pcap is
# replayed once through it, and Scapy checks what came out.
verify_secgw() { # layout suite size
  local layout=$1 suite=$2 size=$3
  run_once "$layout" "$suite" "net_pcap0,rx_pcap=$WORK/udp-$layout-$size.pcap" "net_pcap1,tx_pcap=$WORK/out-esp.pcap" "verify-$layout-$size"
  run_once "$layout" "$suite" "net_pcap0,tx_pcap=$WORK/out-dec.pcap" "net_pcap1,rx_pcap=$WORK/esp-in-$suite-$layout-$size.pcap" "verifydec-$layout-$size"
  "$PY" - "$WORK" "$layout" "$suite" "$size" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
from scapy.all import rdpcap, ESP, IP, UDP
from secgw_sas import sas, esp_sa
work, layout, suite, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
by_spi = {spi_out: (cipher_key, auth_key, dst) for spi_out, _, cipher_key, auth_key, dst, _ in sas(layout, suite)}
frames = rdpcap(work + "/out-esp.pcap")
assert len(frames) == 64, "expected 64 ESP frames, got %d" % len(frames)
spis, wire_len = len({f[ESP].spi for f in frames}), len(frames[0])
for f in frames:
    cipher_key, auth_key, dst = by_spi[f[ESP].spi]
    assert f[IP].dst == "198.18.1.2", f.summary()
    inner = esp_sa(suite, f[ESP].spi, cipher_key, auth_key, "198.18.1.1", "198.18.1.2").decrypt(f[IP])  # checks the ICV
    assert inner[IP].dst == dst and inner[UDP].dport == 4096, inner.summary()
# Ethernet 14 + outer IPv4 20 + ESP 8 + IV (GCM 8, CBC 16) + inner IP packet + trailer padded
# (GCM to 4, CBC to 16) + ICV 16
print("  ESP check, %s, %s, %d B: 64 frames under %d SPIs, outer dst 198.18.1.2, %d B each, decrypted by Scapy"
      % (suite, layout, size, spis, wire_len))
inner_dsts = {inner_dst for _, _, _, _, _, inner_dst in sas(layout, suite)}
frames = rdpcap(work + "/out-dec.pcap")
assert len(frames) == 64, "expected 64 cleartext frames, got %d" % len(frames)
for f in frames:
    assert f[IP].src == "198.19.0.1" and f[IP].dst in inner_dsts and f[UDP].sport == 4096, f.summary()
    assert len(f) == size, len(f)
print("  decryption check, %s, %s, %d B: 64 cleartext frames of %d B to 198.18.2.0/24" % (suite, layout, size, size))
PYEOF
}

make_pcaps
build_secgw
echo "one forwarding core (CPU $CPU), median of $SAMPLES one-second samples after ${WARMUP}s:"
echo "Mpps @ CPUs the process used meanwhile = Mpps per CPU used; testpmd io is measured once per size"
# "Mpps @ CPUs used = Mpps per CPU": telemetry-rate.py prints the rate and the CPU used.
cell() { # "mpps cpu"
  local mpps=${1% *} cpu=${1#* }
  printf '%s @ %s = %s' "$mpps" "$cpu" "$("$PY" -c "print('%.3f' % ($mpps / max($cpu, 0.01)))")"
}
if [ "$SECGW_2CORES" = 1 ]; then
  printf '| frame (B) | SAs | suite | testpmd io | ipsec-secgw encrypt | ipsec-secgw decrypt | ipsec-secgw encrypt, 2 cores | ipsec-secgw decrypt, 2 cores |\n|---|---|---|---|---|---|---|---|\n'
else
  printf '| frame (B) | SAs | suite | testpmd io | ipsec-secgw encrypt | ipsec-secgw decrypt |\n|---|---|---|---|---|---|\n'
fi
for size in "${SIZES[@]}"; do
  io=$(measure "io$size" 1 $(testpmd_cmd "rx_pcap=$WORK/udp-${SECGW_SAS[0]}-$size.pcap,infinite_rx=1" "io$size"))
  io_cell=$(cell "$io")
  for layout in "${SECGW_SAS[@]}"; do
    for suite in "${SECGW_SUITES[@]}"; do
      plain="rx_pcap=$WORK/udp-$layout-$size.pcap" esp_in="rx_pcap=$WORK/esp-in-$suite-$layout-$size.pcap"
      esp=$(measure "esp$size" 1 $(secgw_cmd "$layout" "$suite" "net_pcap0,$plain,infinite_rx=1" net_null0,no-rx=1 "esp$size"))
      # Decryption: ESP into port 1 (unprotected), cleartext out of port 0.
      dec=$(measure "dec$size" 0 $(secgw_cmd "$layout" "$suite" net_null0,no-rx=1 "net_pcap0,$esp_in,infinite_rx=1" "dec$size"))
      row="| $size | $layout | $suite | $io_cell | $(cell "$esp") | $(cell "$dec") |"
      if [ "$SECGW_2CORES" = 1 ]; then
        esp2=$(measure "esp2c$size" 1 $(secgw_cmd "$layout" "$suite" "net_pcap0,$plain,$plain,infinite_rx=1" net_null0,no-rx=1 "esp2c$size" 2))
        dec2=$(measure "dec2c$size" 0 $(secgw_cmd "$layout" "$suite" net_null0,no-rx=1 "net_pcap0,$esp_in,$esp_in,infinite_rx=1" "dec2c$size" 2))
        row+=" $(cell "$esp2") | $(cell "$dec2") |"
      fi
      echo "$row"
      io_cell=""
    done
  done
done
for size in "${SIZES[@]}"; do
  for layout in "${SECGW_SAS[@]}"; do
    for suite in "${SECGW_SUITES[@]}"; do verify_secgw "$layout" "$suite" "$size"; done
  done
done
