#!/usr/bin/env bash
# Throughput of the whole gateway pipeline (BENCHMARKS.md, "Gateway"), on software ports whose own
# cost is near zero, no NIC and no hugepages:
#   net_pcap (rx_pcap=FILE,infinite_rx=1: a Scapy-made pcap replayed from memory, one file per RX
#   queue) -> gateway (parse, SPD, SA lookup, AES, route, MAC) -> net_null (no-rx=1)
# encrypt (cleartext in on the protected port) and decrypt (ESP in on the unprotected port), for
# AES-256-GCM and AES-256-CBC + HMAC-SHA-256-128, at 64, 512, 1420 B and IMIX (7 x 64, 4 x 576,
# 1 x 1420), on 1 and 2 worker cores, for 64 flows on 64 SAs ("many") and 64 flows on one SA
# ("one"). Sizes are cleartext Ethernet frames without FCS; Gbit/s counts those bytes. The rate is
# the output port's opackets read through the EAL telemetry socket, median of SAMPLES one-second
# rates after WARMUP seconds, as in scripts/bench-io-baseline.sh, which this script then runs for
# the references measured in the same run, before and after the gateway cells (testpmd io,
# ipsec-secgw encrypt and decrypt, one core, and on 2 cores when CORES has 2; with the same
# suites, SAs and flows as the gateway's cells: one SA, and 64 SAs when SAS has "many").
# Decryption runs with the anti-replay check off (replay_window = 0): the pcap repeats itself.
# Exception interfaces (net_tap) live in a namespace this script creates and deletes.
#
# With PGO=1 the gateway measured is the profile-guided build of scripts/build-pgo.sh.
#
# Usage: scripts/bench-gateway.sh   (env: SIZES="64 512 1420 imix" SUITES=... DIRS="encrypt decrypt"
#        CORES="1 2" SAS="many one" WARMUP=2 SAMPLES=3 BASELINE=1 PGO=0)
set -euo pipefail
SCRIPTS="$(cd "$(dirname "$0")" && pwd)"
cd "$(dirname "$0")/.."

SIZES=(${SIZES:-64 512 1420 imix})
SUITES=(${SUITES:-aes-gcm-256 aes-cbc-256-hmac-sha256})
DIRS=(${DIRS:-encrypt decrypt})
CORES=(${CORES:-1 2})
SAS=(${SAS:-many one})
WARMUP=${WARMUP:-2}
SAMPLES=${SAMPLES:-3}
BASELINE=${BASELINE:-1}
# The EAL's memory options: no hugepages by default; e.g. EAL_MEMORY="-m 1024" with 2 MiB pages
# reserved and mounted (hugepages.md) runs the same measurement on hugepages.
EAL_MEMORY=${EAL_MEMORY:---no-huge -m 1024}
PY=/usr/bin/python3

./scripts/setup.sh
if [ "${PGO:-0}" = 1 ]; then
  GATEWAY=$(./scripts/build-pgo.sh)
else
  cargo build --release -q -p dataplane --bin gateway
  GATEWAY=$(realpath "${CARGO_TARGET_DIR:-target}")/release/gateway
fi
echo "gateway binary: $GATEWAY"

NS=gwbench$$
WORK=$(mktemp -d /tmp/gwbench.XXXXXX)
APP_PID=
cleanup() {
  if [ -n "$APP_PID" ]; then kill -INT "$APP_PID" 2>/dev/null || true; wait "$APP_PID" 2>/dev/null || true; fi
  ip netns del "$NS" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"; rm -f /dev/shm/$NS-*.region
}
trap cleanup EXIT
ip netns add "$NS"

# Pcaps (cleartext and ESP, per suite, SA layout and size) and gateway configurations.
"$PY" - "$WORK" "$NS" "${SIZES[*]}" "${SUITES[*]}" "${SAS[*]}" <<'PYEOF'
import sys
from scapy.all import Ether, IP, UDP, Raw, wrpcap
from scapy.layers.ipsec import ESP, SecurityAssociation
work, ns, sizes, suites, layouts = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), sys.argv[5].split()
FLOWS = 64
IMIX = [64] * 7 + [576] * 4 + [1420]
def key(seed, n):
    return bytes((seed * 17 + i) % 256 for i in range(n))
def frame_sizes(size):
    return [IMIX[i % len(IMIX)] for i in range(FLOWS * len(IMIX) // 4)] if size == "imix" else [int(size)] * FLOWS
def plain(i, length, inbound=False):
    # 198.18.128.1 is the gateway's own address: hosts start at .2, so that no packet goes to the
    # exception path (the kernel) instead of being forwarded.
    local, remote = "198.18.128.%d" % (2 + i % FLOWS), "198.19.0.%d" % (1 + i % FLOWS)
    src, dst = (remote, local) if inbound else (local, remote)
    p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=src, dst=dst) / UDP(sport=1024 + i % FLOWS, dport=4096)
    return p / Raw(b"\x00" * (length - len(p)))
def sa_obj(suite, spi, seed):
    if suite == "aes-gcm-256":
        return SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=key(seed, 36), auth_algo="NULL",
                                   tunnel_header=IP(src="198.18.0.2", dst="198.18.0.1"))
    return SecurityAssociation(ESP, spi=spi, crypt_algo="AES-CBC", crypt_key=key(seed, 32), auth_algo="SHA2-256-128",
                               auth_key=key(seed + 100, 32), tunnel_header=IP(src="198.18.0.2", dst="198.18.0.1"))
def sa_toml(suite, direction, spi, seed, reqid, remote):
    src, dst = ("198.18.0.1", "198.18.0.2") if direction == "out" else ("198.18.0.2", "198.18.0.1")
    auth = "" if suite == "aes-gcm-256" else 'auth_key = "%s"\n' % key(seed + 100, 32).hex()
    n = 36 if suite == "aes-gcm-256" else 32
    return ('[[sas]]\ndirection = "%s"\nspi = %d\nmode = "tunnel"\nsrc = "%s"\ndst = "%s"\nsuite = "%s"\nenc_key = "%s"\n%sreqid = %d\n'
            'replay_window = 0\nlocal = "198.18.128.0/17"\nremote = "%s"\n\n') % (direction, spi, src, dst, suite, key(seed, n).hex(), auth, reqid, remote)
for size in sizes:
    lengths = frame_sizes(size)
    wrpcap("%s/plain-%s.pcap" % (work, size), [plain(i, l) for i, l in enumerate(lengths)])
    for suite in suites:
        for layout in layouts:
            frames = []
            for i, l in enumerate(lengths):
                flow = i % FLOWS
                spi, seed = (0x2000 + flow, 200 + flow) if layout == "many" else (0x2000, 200)
                inner = plain(i, l, inbound=True)[IP]
                frames.append(Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / sa_obj(suite, spi, seed).encrypt(inner, seq_num=1 + i))
            wrpcap("%s/esp-%s-%s-%s.pcap" % (work, suite, layout, size), frames)
for suite in suites:
    for layout in layouts:
        for direction in ("encrypt", "decrypt"):
            with open("%s/%s-%s-%s.toml" % (work, direction, suite, layout), "w") as f:
                f.write('[gateway]\nregion = "/dev/shm/%s-%s-%s-%s.region"\nlog_interval_secs = 0\nidle_sleep_us = 0\n\n' % (ns, direction, suite, layout))
                plain_dev, esp_dev = ("net_pcap0,PCAPS", "net_null0,no-rx=1") if direction == "encrypt" else ("net_null0,no-rx=1", "net_pcap0,PCAPS")
                f.write('[ports.protected]\ndevice = "%s"\nexception = "net_tap0,iface=bt-p"\naddresses = ["198.18.128.1/17"]\n\n' % plain_dev)
                f.write('[ports.unprotected]\ndevice = "%s"\nexception = "net_tap1,iface=bt-u"\naddresses = ["198.18.0.1/24"]\n\n' % esp_dev)
                f.write('[[routes]]\nprefix = "198.19.0.0/16"\nvia = "198.18.0.2"\n\n[[neighbours]]\naddress = "198.18.0.2"\nmac = "02:00:00:00:00:02"\n\n')
                for i in range(FLOWS):
                    f.write('[[neighbours]]\naddress = "198.18.128.%d"\nmac = "02:00:00:00:01:%02x"\n\n' % (2 + i, i))
                if layout == "many":
                    for i in range(FLOWS):
                        f.write('[[policies]]\ndirection = "out"\nsrc = "198.18.128.0/17"\ndst = "198.19.0.%d/32"\naction = "protect"\nreqid = %d\ntunnel = ["198.18.0.1", "198.18.0.2"]\n\n' % (1 + i, 1 + i))
                        f.write(sa_toml(suite, "out", 0x1000 + i, 100 + i, 1 + i, "198.19.0.%d/32" % (1 + i)))
                        f.write(sa_toml(suite, "in", 0x2000 + i, 200 + i, 1000 + i, "198.19.0.%d/32" % (1 + i)))
                else:
                    f.write('[[policies]]\ndirection = "out"\nsrc = "198.18.128.0/17"\ndst = "198.19.0.0/16"\naction = "protect"\nreqid = 1\ntunnel = ["198.18.0.1", "198.18.0.2"]\n\n')
                    f.write(sa_toml(suite, "out", 0x1000, 100, 1, "198.19.0.0/16"))
                    f.write(sa_toml(suite, "in", 0x2000, 200, 1000, "198.19.0.0/16"))
PYEOF

# Runs the gateway on CONFIG with RX pcap PCAP (one copy per queue) and prints the median Mpps
# of port PORT's TX.
measure() { # config pcap cores port
  local config=$1 pcap=$2 cores=$3 port=$4 prefix=gwb$$-$RANDOM
  local pcaps="" q
  for q in $(seq "$cores"); do pcaps+="rx_pcap=$pcap,"; done
  sed "s|PCAPS|${pcaps}infinite_rx=1|" "$config" >"$WORK/run.toml"
  "$GATEWAY" load "$WORK/run.toml" >/dev/null
  local lcores="0@0,1@1"; [ "$cores" = 2 ] && lcores="0@0,1@0,2@1"
  ip netns exec "$NS" "$GATEWAY" run "$WORK/run.toml" -- --lcores "$lcores" $EAL_MEMORY --no-pci --no-shconf \
    "--file-prefix=$prefix" --log-level=pmd.net.tap:error >"$WORK/run.log" 2>&1 &
  APP_PID=$!
  "$PY" "$SCRIPTS/telemetry-rate.py" "/var/run/dpdk/$prefix/dpdk_telemetry.v2" "$WARMUP" "$SAMPLES" "$APP_PID" "$port" || { tail -20 "$WORK/run.log" >&2; exit 1; }
  kill -INT "$APP_PID"; wait "$APP_PID" || true; APP_PID=
  rm -f "/dev/shm/$NS"-*.region
}

avg_bytes() { # size
  if [ "$1" = imix ]; then echo "347.33"; else echo "$1"; fi
}

# The references (testpmd io, ipsec-secgw) on the same sizes. They run before and after the
# gateway cells: on a shared machine the load drifts, and the two runs show by how much.
references() {
  local two=0
  [[ " ${CORES[*]} " == *" 2 "* ]] && two=1
  SIZES="$(printf '%s ' "${SIZES[@]}" | sed 's/imix//')" WARMUP=$WARMUP SAMPLES=$SAMPLES SECGW_2CORES=$two \
    SECGW_SAS="${SAS[*]}" SECGW_SUITES="${SUITES[*]}" ./scripts/bench-io-baseline.sh
}
if [ "$BASELINE" = 1 ]; then
  echo "references in the same run, before the gateway cells (scripts/bench-io-baseline.sh):"
  references
  echo
fi

echo "gateway pipeline, net_pcap -> gateway -> net_null, median of $SAMPLES one-second samples after ${WARMUP}s"
echo "CPU used: CPU seconds per second the gateway process used while sampled (a poll-mode worker"
echo "uses all it gets; on a shared machine that is less than a core); Mpps per CPU = Mpps / CPU used"
printf '| direction | suite | SAs | frame (B) | cores | Mpps | Gbit/s | CPU used | Mpps per CPU |\n|---|---|---|---|---|---|---|---|---|\n'
for dir in "${DIRS[@]}"; do
  for suite in "${SUITES[@]}"; do
    for layout in "${SAS[@]}"; do
      for size in "${SIZES[@]}"; do
        for cores in "${CORES[@]}"; do
          if [ "$dir" = encrypt ]; then pcap=$WORK/plain-$size.pcap port=1; else pcap=$WORK/esp-$suite-$layout-$size.pcap port=0; fi
          rate=$(measure "$WORK/$dir-$suite-$layout.toml" "$pcap" "$cores" "$port")
          mpps=${rate% *} cpu=${rate#* }
          gbps=$("$PY" -c "print('%.2f' % ($mpps * $(avg_bytes "$size") * 8 / 1000))")
          per=$("$PY" -c "print('%.3f' % ($mpps / max($cpu, 0.01)))")
          printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$dir" "$suite" "$layout" "$size" "$cores" "$mpps" "$gbps" "$cpu" "$per"
        done
      done
    done
  done
done

if [ "$BASELINE" = 1 ]; then
  echo
  echo "references in the same run, after the gateway cells (scripts/bench-io-baseline.sh):"
  references
fi
