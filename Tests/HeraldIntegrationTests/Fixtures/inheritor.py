#!/usr/bin/env python3
"""A connection that outlives the process that opened it, written from Protocol/PROTOCOL.md.

usage: inheritor.py ADDRESS

Connects and completes the handshake, then forks: the parent prints "parent <pid>" and
exits; the child prints "child <pid>", waits for a line on standard input, publishes one
message on inherit/x through the inherited connection, flushes with a PING, prints
"published", and exits when its standard input closes.
"""
import os
import socket
import struct
import sys

HELLO, WELCOME, PING, PONG, PUBLISH = 0x01, 0x02, 0x04, 0x05, 0x10


def frame(type_, body, aux=0):
    return struct.pack("<IBBH", len(body), type_, 0, aux) + body


def read_frame(sock):
    header = b""
    while len(header) < 8:
        header += sock.recv(8 - len(header))
    length, type_, _, _ = struct.unpack("<IBBH", header)
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return type_, body


address = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect("\0" + address[1:] if address.startswith("@") else address)
name = b"inheritor"
sock.sendall(frame(HELLO, b"HRLD" + struct.pack("<HHBBHII", 1, 1, 0xFF, 0, len(name), 0, 0) + name))
if read_frame(sock)[0] != WELCOME:
    raise SystemExit("refused")

if os.fork() != 0:
    print(f"parent {os.getpid()}", flush=True)
    os._exit(0)

print(f"child {os.getpid()}", flush=True)
sys.stdin.readline()
topic = b"inherit/x"
sock.sendall(frame(PUBLISH, topic + b"from the child", aux=len(topic)))
sock.sendall(frame(PING, struct.pack("<Q", 1)))
while read_frame(sock)[0] != PONG:
    pass
print("published", flush=True)
sys.stdin.read()
