#!/usr/bin/env python3
"""A link emulator for tests: copies Ethernet frames between two interfaces
with AF_PACKET raw sockets (run it in a namespace that joins them and routes
nothing itself), applying per direction random loss, Gilbert-Elliott burst
loss, a rate cap with a drop-tail queue, delay with jitter that never
reorders, and total outages, scheduled or commanded. Every draw comes from a
seeded generator, so runs see the same losses. Python stdlib only.

  emulator.py run IF_A IF_B [--loss P] [--burst-loss P --burst-len N]
      [--delay MS] [--jitter MS] [--rate KBIT] [--queue-ms MS]
      [--outage AT:LEN ...] [--control FIFO] [--seed N]
  emulator.py offload-off IFACE   (in an endpoint's namespace: frames stay
                                   MTU-sized with finished checksums)

Settings apply to both directions (A->B and B->A), each with its own
generator. A line "outage SECONDS" written to the control FIFO cuts both
directions from that moment. Times: seconds for outages, ms otherwise.
"""
import argparse
import ctypes
import fcntl
import heapq
import os
import random
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SIOCETHTOOL = 0x8946
# ethtool "set" commands: tx checksum, scatter-gather, TSO, GSO.
ETHTOOL_OFFLOADS = (0x17, 0x19, 0x1F, 0x24)


def offload_off(iface):
    for cmd in ETHTOOL_OFFLOADS:
        value = ctypes.create_string_buffer(struct.pack("II", cmd, 0))
        ifreq = struct.pack("16sP", iface.encode(), ctypes.addressof(value))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s, SIOCETHTOOL, ifreq)


class Direction:
    """One way through the link: what is dropped, and when each frame leaves."""

    def __init__(self, args, seed):
        self.rng = random.Random(seed)
        self.loss = args.loss
        # Gilbert-Elliott: every frame in the bad state is lost; bursts last
        # burst_len frames on average, and the long-run loss is burst_loss.
        self.leave_bad = 1.0 / args.burst_len if args.burst_loss else 0.0
        self.enter_bad = (args.burst_loss * self.leave_bad / (1 - args.burst_loss)
                          if args.burst_loss else 0.0)
        self.bad = False
        self.delay = args.delay / 1e3
        self.jitter = args.jitter / 1e3
        self.rate = args.rate * 1e3 if args.rate else None  # bit/s
        self.queue_s = args.queue_ms / 1e3
        self.link_free = 0.0  # when the rate-capped link is next idle
        self.last_out = 0.0  # no frame leaves before the one ahead of it
        self.counts = {"in": 0, "lost": 0, "queue_drop": 0, "outage": 0}

    def admit(self, now, size, cut):
        """When the frame leaves, or None if it is dropped."""
        self.counts["in"] += 1
        # Draw every number for every frame, so one setting does not shift
        # the draws of another.
        random_draw, state_draw, jitter_draw = (self.rng.random() for _ in range(3))
        self.bad = state_draw >= self.leave_bad if self.bad else state_draw < self.enter_bad
        if cut:
            self.counts["outage"] += 1
            return None
        if self.bad or random_draw < self.loss:
            self.counts["lost"] += 1
            return None
        sent = now
        if self.rate:
            start = max(now, self.link_free)
            if start - now > self.queue_s:
                self.counts["queue_drop"] += 1
                return None
            self.link_free = start + size * 8 / self.rate
            sent = self.link_free
        out = sent + self.delay + (2 * jitter_draw - 1) * self.jitter
        self.last_out = max(out, self.last_out, sent)
        return self.last_out


def open_packet_socket(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.setblocking(False)
    return s


def run(args):
    socks = [open_packet_socket(args.if_a), open_packet_socket(args.if_b)]
    dirs = [Direction(args, args.seed * 2 + i) for i in range(2)]
    start = time.monotonic()
    outages = []
    for spec in args.outage:
        at, length = (float(x) for x in spec.split(":"))
        outages.append((start + at, start + at + length))
    poller = select.epoll()
    for i, s in enumerate(socks):
        poller.register(s.fileno(), select.EPOLLIN)
    control = None
    if args.control:
        control = os.open(args.control, os.O_RDONLY | os.O_NONBLOCK)
        # Hold a writer open too, so a test's writer closing is no EOF.
        os.open(args.control, os.O_WRONLY | os.O_NONBLOCK)
        poller.register(control, select.EPOLLIN)
    pending = []  # (leave_at, seq, out_socket_index, frame)
    seq = 0
    pending_control = b""
    print(f"link: {args.if_a} <-> {args.if_b} up", flush=True)
    while True:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, out, frame = heapq.heappop(pending)
            try:
                socks[out].send(frame)
            except OSError:
                pass  # a full interface queue: lost, as on a real link
        timeout = max(0.0, pending[0][0] - now) if pending else 1.0
        for fd, _ in poller.poll(timeout):
            if fd == control:
                pending_control += os.read(control, 4096)
                *lines, pending_control = pending_control.split(b"\n")
                for line in lines:
                    words = line.split()
                    if len(words) == 2 and words[0] == b"outage":
                        t = time.monotonic()
                        outages.append((t, t + float(words[1])))
                        print(f"link: outage {float(words[1])} s", flush=True)
                continue
            i = 0 if fd == socks[0].fileno() else 1
            while True:
                try:
                    frame, addr = socks[i].recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own copy of what we sent
                t = time.monotonic()
                cut = any(a <= t < b for a, b in outages)
                leave = dirs[i].admit(t, len(frame), cut)
                if leave is not None:
                    seq += 1
                    heapq.heappush(pending, (leave, seq, 1 - i, frame))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("if_a")
    r.add_argument("if_b")
    r.add_argument("--loss", type=float, default=0.0, help="random loss, 0..1")
    r.add_argument("--burst-loss", type=float, default=0.0, help="Gilbert-Elliott long-run loss, 0..1")
    r.add_argument("--burst-len", type=float, default=4.0, help="mean burst length, frames")
    r.add_argument("--delay", type=float, default=0.0, help="one-way delay, ms")
    r.add_argument("--jitter", type=float, default=0.0, help="uniform +- jitter, ms")
    r.add_argument("--rate", type=float, default=0.0, help="rate cap, kbit/s (0: none)")
    r.add_argument("--queue-ms", type=float, default=200.0, help="drop-tail queue, ms at the rate")
    r.add_argument("--outage", action="append", default=[], metavar="AT:LEN", help="seconds from start")
    r.add_argument("--control", help="FIFO taking 'outage SECONDS' lines")
    r.add_argument("--seed", type=int, default=1)
    o = sub.add_parser("offload-off")
    o.add_argument("iface")
    args = p.parse_args()
    if args.cmd == "offload-off":
        offload_off(args.iface)
        return
    if not 0 <= args.burst_loss < 1 or not 0 <= args.loss <= 1 or args.burst_len < 1:
        sys.exit("link: loss must be in [0, 1), --burst-len >= 1")
    run(args)


if __name__ == "__main__":
    main()
