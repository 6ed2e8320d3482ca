#!/usr/bin/python3
"""trickle.py PORT HEAD INTERVAL COUNT: a slow client. Sends HEAD (with \\r\\n
escapes), then one byte every INTERVAL seconds, COUNT times at most,
stopping as soon as the server answers or closes; prints `sent N of COUNT`
(the bytes it got to send), then the response."""
import select
import socket
import sys

from raw import read_all

port, head, interval, count = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(head.replace("\\r\\n", "\r\n").encode())
sent = 0
try:
    for _ in range(count):
        s.sendall(b"x")
        sent += 1
        if select.select([s], [], [], interval)[0]:
            break  # an answer (or a close) arrived
except (BrokenPipeError, ConnectionResetError):
    pass
sys.stdout.write("sent %d of %d\n" % (sent, count))
sys.stdout.write(read_all(s, 5).decode(errors="replace"))
