#!/usr/bin/env python3
"""A process squatting on a bus address: it binds the abstract name first and accepts
connections, recording whatever clients send. For the broker-verification tests.

usage: squatter.py ADDRESS
Prints "listening" once bound; on standard input's end, prints "received <n> bytes" (what
all clients sent) and exits.
"""
import os
import select
import socket
import sys

address = sys.argv[1]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind("\0" + address[1:] if address.startswith("@") else address)
server.listen(16)
print("listening", flush=True)
clients, received = [], 0
while True:
    readable, _, _ = select.select([server, 0] + clients, [], [])
    if 0 in readable and not os.read(0, 1):
        break
    for sock in readable:
        if sock is server:
            clients.append(server.accept()[0])
        elif sock in clients:
            data = sock.recv(65536)
            if not data:
                clients.remove(sock)
            received += len(data)
print(f"received {received} bytes", flush=True)
