#!/usr/bin/env python3
"""Prints the median transmit rate (Mpps) of one DPDK port, read through the EAL telemetry socket,
and the CPU the application used meanwhile (in CPUs: CPU seconds per second).

usage: telemetry-rate.py SOCKET WARMUP_S SAMPLES PID PORT

Waits for the application (PID) to open SOCKET, lets it warm up, then reads the port's opackets
once a second SAMPLES + 1 times. Fails if the application dies first or the port sent nothing.
Used by bench-io-baseline.sh and bench-gateway.sh so that both measure the same way.

On a shared machine a poll-mode forwarder gets whatever share of its core the scheduler leaves
it; the rate divided by the CPU it used (Mpps per CPU) is the figure that compares forwarders
measured at different moments.
"""
import json, os, socket, statistics, sys, time

path, warmup, samples, pid, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
deadline = time.time() + 30
while True:
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.connect(path)
        break
    except OSError:
        os.kill(pid, 0)  # fails (and so the script) if the application died
        if time.time() > deadline:
            sys.exit("no telemetry socket at " + path)
        time.sleep(0.2)
sock.recv(4096)


def opackets():
    sock.send(("/ethdev/stats," + port).encode())
    return json.loads(sock.recv(65536))["/ethdev/stats"]["opackets"]


def cpu_seconds():
    """User plus system time of all the application's threads (proc(5): fields 14 and 15)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


time.sleep(warmup)
counts = []
cpu_start = (time.monotonic(), cpu_seconds())
for _ in range(samples + 1):
    counts.append((time.monotonic(), opackets()))
    time.sleep(1)
cpu = (cpu_seconds() - cpu_start[1]) / (time.monotonic() - cpu_start[0])
rates = [(b[1] - a[1]) / (b[0] - a[0]) / 1e6 for a, b in zip(counts, counts[1:])]
if max(rates) == 0:
    sys.exit("port %s transmitted nothing" % port)
print("%.3f %.2f" % (statistics.median(rates), cpu))
