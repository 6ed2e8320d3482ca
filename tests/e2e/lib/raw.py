#!/usr/bin/python3
"""raw.py PORT WAIT: send stdin over one TCP connection to 127.0.0.1:PORT and
print what comes back until the server closes or WAIT seconds of silence.
Also imported by the e2e scripts for read_all()."""
import socket
import sys


def read_all(s, wait):
    """Everything the peer sends until it closes, resets or is silent for wait s."""
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
    return out


if __name__ == "__main__":
    port, wait = int(sys.argv[1]), float(sys.argv[2])
    data = sys.stdin.buffer.read()
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(data)
    sys.stdout.buffer.write(read_all(conn, wait))
