#!/usr/bin/env python3
"""Drives the motors for telepi: the program side of [drive] backend =
"external" (README: "Your own programs").

    python3 examples/api_motors.py /run/telepi/api.sock

telepi still mixes, ramps and runs the deadman: this program gets the
resulting left/right values (-1..1, the sign is the direction) and servo
pulses, and only has to apply them. Here the motors are simulated: it prints
what it would set. Put your hardware in set_motors() and set_servo().

Keeping each other honest:
- it pings telepi every 250 ms: telepi counts a motor program silent for
  [api] motor_timeout_ms (default 1 s) as gone, stops and tells the operator;
- it stops the motors itself if telepi goes away (the socket closes) or
  stops answering those pings for 1 s.

Only the Python 3 standard library.
"""

import json
import select
import socket
import sys
import time

PING_EVERY = 0.25
TELEPI_TIMEOUT = 1.0

moving = False


def set_motors(left, right):
    """Replace with your motor driver; both zero means stop now."""
    global moving
    moving = left != 0 or right != 0
    if moving:
        print(f"motors left={left:+.2f} right={right:+.2f}", flush=True)
    else:
        print("motors stop", flush=True)


def set_servo(name, index, pulse_us):
    """Replace with your servo driver."""
    print(f"servo {name} ({index}) {pulse_us} us", flush=True)


def send(sock, message):
    sock.sendall((json.dumps(message) + "\n").encode())


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(sys.argv) == 2 else 2
    path = sys.argv[1]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        print(f"cannot connect to {path}: {e}", file=sys.stderr)
        return 1
    send(sock, {"type": "hello", "name": "motors"})
    send(sock, {"type": "take_motors"})
    print(f"driving the motors for {path}", flush=True)

    pending = b""
    heard = next_ping = time.monotonic()
    try:
        while True:
            ready, _, _ = select.select([sock], [], [], max(0.0, next_ping - time.monotonic()))
            now = time.monotonic()
            if ready:
                chunk = sock.recv(65536)
                if not chunk:
                    print("telepi went away", flush=True)
                    return 0
                heard = now
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    msg = json.loads(line)
                    if msg["type"] == "motors":
                        set_motors(msg["left"], msg["right"])
                    elif msg["type"] == "servo_pulse":
                        set_servo(msg["name"], msg["index"], msg["pulse_us"])
                    elif msg["type"] == "error":
                        print(f"telepi says: {msg['reason']}", file=sys.stderr, flush=True)
            if moving and now - heard > TELEPI_TIMEOUT:
                print("telepi stopped answering", flush=True)
                set_motors(0, 0)
            if now >= next_ping:
                send(sock, {"type": "ping"})
                next_ping = now + PING_EVERY
    finally:
        if moving:
            set_motors(0, 0)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
