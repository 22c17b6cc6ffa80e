#!/usr/bin/env python3
"""A hostile local client for the fd-exhaustion tests, written from Protocol/PROTOCOL.md.

usage: connection-flood.py ADDRESS HOLD CHURN_SECONDS [hello]

Opens HOLD connections to ADDRESS ('@name' or a path) and holds them without reading or
writing, then keeps opening and closing further connections for CHURN_SECONDS (refused
attempts the broker must absorb). With 'hello', each connection sends HELLO and reads the
broker's first frame (WELCOME, or the ERROR refusing it) before the next one: an admitted
user pushing past its per-uid connection cap. Prints one line per phase on stdout:
  held <opened> <failed> <seconds> <welcomed> <refused>
  churned <attempts> <failed> <seconds> <welcomed> <refused>
then waits until its standard input closes, and exits (closing everything it holds).
"""
import socket
import struct
import sys
import time

address, hold, churn_seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
say_hello = len(sys.argv) > 4 and sys.argv[4] == "hello"
target = "\0" + address[1:] if address.startswith("@") else address
HELLO, WELCOME = 0x01, 0x02
NAME = b"flood"
HELLO_FRAME = struct.pack("<IBBH", 20 + len(NAME), HELLO, 0, 0) + b"HRLD" \
    + struct.pack("<HHBBHII", 1, 1, 0xFF, 0, len(NAME), 0, 0) + NAME
welcomed, refused = 0, 0


def greet(sock):
    """Sends HELLO and reads the header of the broker's answer; True if it is WELCOME."""
    global welcomed, refused
    sock.sendall(HELLO_FRAME)
    header = b""
    while len(header) < 8:
        chunk = sock.recv(8 - len(header))
        if not chunk:
            break
        header += chunk
    if len(header) == 8 and header[4] == WELCOME:
        welcomed += 1
        return True
    refused += 1
    return False


def connect():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2)
    try:
        sock.connect(target)
        if say_hello and not greet(sock):
            sock.close()
            return None
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
print(f"held {len(held)} {failed} {time.monotonic() - start:.3f} {welcomed} {refused}", flush=True)

attempts, failed, welcomed, refused = 0, 0, 0, 0
start = time.monotonic()
while time.monotonic() - start < churn_seconds:
    attempts += 1
    sock = connect()
    if sock is None:
        failed += 1
    else:
        sock.close()
print(f"churned {attempts} {failed} {time.monotonic() - start:.3f} {welcomed} {refused}", flush=True)

sys.stdin.read()
