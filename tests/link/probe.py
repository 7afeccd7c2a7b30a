#!/usr/bin/env python3
"""Measures a link: UDP datagrams, numbered and stamped with CLOCK_MONOTONIC
(one clock for every namespace of a machine), sent at a fixed rate; the
receiver reports loss, mean burst of consecutive losses, one-way delay,
reordering, the longest gap and the rate that got through, as JSON.

  probe.py recv BIND_IP PORT SECONDS      (prints the JSON when done)
  probe.py send DEST_IP PORT SECONDS PPS SIZE
"""
import json
import socket
import struct
import sys
import time

HEADER = struct.Struct("!Id")


def recv(ip, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    s.settimeout(0.2)
    end = time.monotonic() + seconds
    got, delays, arrivals, sizes = {}, [], [], 0
    reordered, highest = 0, -1
    while time.monotonic() < end:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        now = time.monotonic()
        n, sent = HEADER.unpack_from(data)
        got[n] = now
        delays.append((now - sent) * 1e3)
        arrivals.append(now)
        sizes += len(data) + 28  # IP + UDP headers: what a rate cap counts
        reordered += n < highest
        highest = max(highest, n)
    if not got:
        print(json.dumps({"received": 0}))
        return
    expected = highest + 1
    bursts, run = [], 0
    for n in range(expected):
        if n in got:
            if run:
                bursts.append(run)
            run = 0
        else:
            run += 1
    span = arrivals[-1] - arrivals[0]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    print(json.dumps({
        "received": len(got),
        "expected": expected,
        "loss": round(1 - len(got) / expected, 4),
        "mean_burst": round(sum(bursts) / len(bursts), 2) if bursts else 0,
        "delay_ms": {"min": round(min(delays), 1), "mean": round(sum(delays) / len(delays), 1),
                     "p95": round(sorted(delays)[int(0.95 * (len(delays) - 1))], 1),
                     "max": round(max(delays), 1)},
        "reordered": reordered,
        "longest_gap_s": round(max(gaps), 3) if gaps else 0,
        "kbit_s": round(sizes * 8 / span / 1e3, 1) if span > 0 else 0,
    }))


def send(ip, port, seconds, pps, size):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pad = b"\0" * max(0, size - HEADER.size)
    start = time.monotonic()
    n = 0
    while (now := time.monotonic()) < start + seconds:
        s.sendto(HEADER.pack(n, now) + pad, (ip, port))
        n += 1
        time.sleep(max(0.0, start + n / pps - time.monotonic()))


if __name__ == "__main__":
    role, ip, port, seconds, *rest = sys.argv[1:]
    if role == "recv":
        recv(ip, int(port), float(seconds))
    else:
        send(ip, int(port), float(seconds), float(rest[0]), int(rest[1]))
