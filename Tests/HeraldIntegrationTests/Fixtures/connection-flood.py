#!/usr/bin/env python3
"""A hostile local client for the fd-exhaustion tests, written from Protocol/PROTOCOL.md.

usage: connection-flood.py ADDRESS HOLD CHURN_SECONDS

Opens HOLD connections to ADDRESS ('@name' or a path) and holds them without reading or
writing, then keeps opening and closing further connections for CHURN_SECONDS (refused
attempts the broker must absorb). Prints one line per phase on stdout:
  held <opened> <failed> <seconds>
  churned <attempts> <failed> <seconds>
then waits until its standard input closes, and exits (closing everything it holds).
"""
import socket
import sys
import time

address, hold, churn_seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
target = "\0" + address[1:] if address.startswith("@") else address


def connect():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2)
    try:
        sock.connect(target)
        return sock
    except OSError:
        sock.close()
        return None


held, failed = [], 0
start = time.monotonic()
for _ in range(hold):
    sock = connect()
    if sock is None:
        failed += 1
    else:
        held.append(sock)
print(f"held {len(held)} {failed} {time.monotonic() - start:.3f}", flush=True)

attempts, failed = 0, 0
start = time.monotonic()
while time.monotonic() - start < churn_seconds:
    attempts += 1
    sock = connect()
    if sock is None:
        failed += 1
    else:
        sock.close()
print(f"churned {attempts} {failed} {time.monotonic() - start:.3f}", flush=True)

sys.stdin.read()
