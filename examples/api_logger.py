#!/usr/bin/env python3
"""Logs what the operator does, publishes a reading, and echoes the page's
custom controls back, over telepi's local API (README: "Your own programs").

    python3 examples/api_logger.py /run/telepi/api.sock [--every SECONDS]

Prints one line per event: drives, servo moves, stops (from anyone), custom
controls and who is connected. Every SECONDS (default 1) it publishes the
machine's 1-minute load average as the reading "load", which the page shows
(declare it in [[readings]] to give it a label, a unit and a gauge). Each
custom control it hears about is sent back to the pages, so a toggle on the
page shows the state the robot's program has actually taken.

Only the Python 3 standard library; stops when telepi closes the socket.
"""

import json
import os
import select
import socket
import sys
import time


def send(sock, message):
    sock.sendall((json.dumps(message) + "\n").encode())


def who(event):
    return f"peer {event['peer']} ({event['role']})"


def describe(event):
    kind = event.get("type")
    if kind == "drive":
        return f"drive from {who(event)}: linear {event['linear']:+.2f} angular {event['angular']:+.2f}"
    if kind == "servo":
        return f"servo from {who(event)}: {event['name']} = {event['value']:+.2f}"
    if kind == "stop":
        return f"stop from {who(event)}"
    if kind == "custom":
        return f"custom from {who(event)}: {event['name']} = {json.dumps(event['value'])}"
    if kind == "presence":
        peers = ", ".join(f"{p['id']} {p['role']}" for p in event["peers"]) or "nobody"
        return f"presence: {peers}"
    if kind == "error":
        return f"telepi says: {event['reason']}"
    return None  # welcome, subscribed: nothing to log


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    path = args[0]
    every = float(args[args.index("--every") + 1]) if "--every" in args else 1.0

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        print(f"cannot connect to {path}: {e}", file=sys.stderr)
        return 1
    send(sock, {"type": "hello", "name": "logger"})
    send(sock, {"type": "subscribe", "events": ["drive", "servo", "stop", "custom", "presence"]})
    print(f"connected to {path}", flush=True)

    pending = b""
    next_reading = time.monotonic()
    while True:
        ready, _, _ = select.select([sock], [], [], max(0.0, next_reading - time.monotonic()))
        if ready:
            chunk = sock.recv(65536)
            if not chunk:
                print("telepi closed the connection", flush=True)
                return 0
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                event = json.loads(line)
                text = describe(event)
                if text:
                    print(text, flush=True)
                if event.get("type") == "custom":
                    send(sock, {"type": "custom", "name": event["name"], "value": event["value"]})
        if time.monotonic() >= next_reading:
            send(sock, {"type": "reading", "name": "load", "value": round(os.getloadavg()[0], 2)})
            next_reading += every


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
