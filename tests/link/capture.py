#!/usr/bin/env python3
"""Records the RTP/RTCP/DTLS datagrams on one UDP port of eth0 in the
namespace it runs in (the robot's), one line each: wall time, direction
(I in, O out), kind and, for RTP, payload type, SSRC and sequence number;
RTCP's payload type and count/format field. SRTP leaves these headers in the
clear. For tests/link/gaps.bench.mjs: which way the link went silent.

  capture.py SECONDS OUT_FILE [PORT]
"""
import socket
import struct
import sys
import time

seconds, path = float(sys.argv[1]), sys.argv[2]
port = int(sys.argv[3]) if len(sys.argv) > 3 else 50000
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
sock.bind(("eth0", 0))
sock.settimeout(0.2)
end = time.time() + seconds
with open(path, "w") as out:
    while time.time() < end:
        try:
            frame, addr = sock.recvfrom(65535)
        except socket.timeout:
            continue
        at = time.time()
        # IPv4 carrying UDP only.
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        udp = 14 + (frame[14] & 15) * 4
        src, dst = struct.unpack("!HH", frame[udp:udp + 4])
        data = frame[udp + 8:]
        if port not in (src, dst) or len(data) < 12:
            continue
        way = "O" if addr[2] == socket.PACKET_OUTGOING else "I"
        first, second = data[0], data[1]
        if 128 <= first < 192 and not 192 <= second <= 223:
            seq, _, ssrc = struct.unpack("!HII", data[2:12])
            out.write(f"{at:.4f} {way} RTP pt={second & 127} ssrc={ssrc:08x} seq={seq}\n")
        elif 128 <= first < 192:
            out.write(f"{at:.4f} {way} RTCP pt={second} fmt={first & 31}\n")
        else:
            out.write(f"{at:.4f} {way} {'DTLS' if 20 <= first <= 63 else 'STUN'}\n")
