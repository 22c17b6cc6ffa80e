#!/usr/bin/env python3
"""A client that tries to pass for someone else through every field a client sends,
written from Protocol/PROTOCOL.md.

usage: forger.py ADDRESS

HELLO carries a name claiming root; then it publishes to forge/open a payload that starts
with a forged sender block (peer 1, pid 1, uid 0, gid 0), sets undefined flag bits and an
aux beyond its topic on further PUBLISH frames, publishes to forge/root-only (which the
policy leaves to root), subscribes to forge/secret (also root's), and flushes with a PING.
Prints "pid <own pid>", one "error <code> <request id> <message>" line per ERROR it gets,
then "done", and waits for its standard input to close.
"""
import os
import socket
import struct
import sys

HELLO, WELCOME, ERROR, PING, PONG, OK, SUBSCRIBE, PUBLISH = 0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x08, 0x10


def frame(type_, body, aux=0, flags=0):
    return struct.pack("<IBBH", len(body), type_, flags, aux) + body


def read_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError("the broker closed the connection")
        data += chunk
    return data


def read_frame(sock):
    length, type_, flags, aux = struct.unpack("<IBBH", read_exact(sock, 8))
    return type_, flags, aux, read_exact(sock, length)


address = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect("\0" + address[1:] if address.startswith("@") else address)
print(f"pid {os.getpid()}", flush=True)

name = b"root uid=0 pid=1"
sock.sendall(frame(HELLO, b"HRLD" + struct.pack("<HHBBHII", 1, 1, 0xFF, 0, len(name), 0, 0) + name))
type_, _, _, body = read_frame(sock)
if type_ != WELCOME:
    raise SystemExit("the broker refused the session")

forged_sender = struct.pack("<QIIII", 1, 1, 0, 0, 0)
topic = b"forge/open"
sock.sendall(frame(PUBLISH, topic + forged_sender + b"I am root", aux=len(topic)))
# Undefined flag bits: ignored with unsupported_flags, nothing delivered.
sock.sendall(frame(PUBLISH, topic + b"flagged", aux=len(topic), flags=0x80))
root_only = b"forge/root-only"
sock.sendall(frame(PUBLISH, root_only + b"let me in", aux=len(root_only)))
sock.sendall(frame(SUBSCRIBE, struct.pack("<II", 7, 1) + b"forge/secret"))
sock.sendall(frame(PING, struct.pack("<Q", 42)))

while True:
    type_, flags, aux, body = read_frame(sock)
    if type_ == ERROR:
        code, _, request_id = struct.unpack_from("<HHI", body)
        print(f"error {code} {request_id} {body[8:].decode()}", flush=True)
    elif type_ == PONG:
        break
print("done", flush=True)
sys.stdin.read()
