#!/usr/bin/python3
"""raw.py PORT WAIT: send stdin over one TCP connection to 127.0.0.1:PORT and
print what comes back until the server closes or WAIT seconds of silence."""
import socket
import sys

port, wait = int(sys.argv[1]), float(sys.argv[2])
data = sys.stdin.buffer.read()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(data)
s.settimeout(wait)
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except (socket.timeout, ConnectionResetError):
    pass
sys.stdout.buffer.write(out)
