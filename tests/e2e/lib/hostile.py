#!/usr/bin/python3
"""hostile.py - hostile clients against a daemon on 127.0.0.1, measuring what
they cost it (tests/e2e/server_hostile.sh, bench/hostile.sh).

  hostile.py pipeline PORT PID MB   one connection sends MB MiB of pipelined
      `GET /healthz` requests without reading; once the daemon stops reading
      it (slorad_blocked_connections >= 1 on /metrics) or took everything,
      the client reads every reply. Prints `requests=N replies=N in_order=0|1
      growth_kb=N`.
  hostile.py bodies PORT PID CONNS MB   CONNS connections each send
      `GET /healthz` with a declared MB MiB body and then the body. Prints
      `statuses=S,S,... growth_kb=N`.
  hostile.py chunked PORT PID MB   the same with one chunked body.

growth_kb is the daemon's peak resident memory during the attack minus its
resident memory before (VmHWM after /proc/PID/clear_refs reset the peak,
minus VmRSS; both from /proc/PID/status)."""
import re
import socket
import sys
import threading
import time
import urllib.request

DEADLINE = 120  # s: the whole attack, however slow the build (sanitizers)


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class Peak:
    """Resident memory of pid from now on: growth_kb() = peak - start."""

    def __init__(self, pid):
        self.pid = pid
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        self.start = status_kb(pid, "VmRSS")

    def growth_kb(self):
        return status_kb(self.pid, "VmHWM") - self.start


def metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def wait_for(cond, what):
    end = time.monotonic() + DEADLINE
    while not cond():
        if time.monotonic() > end:
            sys.exit("hostile.py: timed out waiting for " + what)
        time.sleep(0.02)


def pipeline(port, pid, mib):
    reqs = []
    size = 0
    i = 0
    while size < mib << 20:
        r = b"GET /healthz HTTP/1.1\r\nX-Request-Id: r%d\r\n\r\n" % i
        reqs.append(r)
        size += len(r)
        i += 1
    reqs[-1] = reqs[-1][:-2] + b"Connection: close\r\n\r\n"
    data = b"".join(reqs)
    n = len(reqs)
    peak = Peak(pid)
    s = socket.create_connection(("127.0.0.1", port))
    sender = threading.Thread(target=s.sendall, args=(data,), daemon=True)
    sender.start()
    # Never reading, until the daemon stopped reading us (or read it all).
    wait_for(lambda: not sender.is_alive() or (metric(port, "slorad_blocked_connections") or 0) >= 1,
             "the daemon to block the connection or take every request")
    # Now read every reply: ids must come back as r0, r1, ... in order.
    s.settimeout(DEADLINE)
    pat = re.compile(rb"X-Request-Id: r(\d+)\r\n")
    buf = b""
    replies = 0
    in_order = True
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        buf += b
        last = 0
        for m in pat.finditer(buf):
            if int(m.group(1)) != replies:
                in_order = False
            replies += 1
            last = m.end()
        buf = buf[max(last, len(buf) - 64):]
    sender.join(DEADLINE)
    print("requests=%d replies=%d in_order=%d growth_kb=%d" % (n, replies, in_order, peak.growth_kb()))


def send_body(port, head, body_iter, statuses, i):
    s = socket.create_connection(("127.0.0.1", port))
    try:
        s.sendall(head)
        for part in body_iter():
            s.sendall(part)
    except OSError:
        pass  # the daemon answered and closed without reading it all
    s.settimeout(DEADLINE)
    out = b""
    try:
        while b"\r\n\r\n" not in out:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass
    m = re.match(rb"HTTP/1.1 (\d+)", out)
    statuses[i] = m.group(1).decode() if m else "none"
    s.close()


def attack_bodies(port, pid, conns, head, body_iter):
    peak = Peak(pid)
    statuses = ["none"] * conns
    ts = [threading.Thread(target=send_body, args=(port, head, body_iter, statuses, i))
          for i in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(DEADLINE)
    print("statuses=%s growth_kb=%d" % (",".join(statuses), peak.growth_kb()))


def bodies(port, pid, conns, mib):
    chunk = b"x" * (1 << 20)
    head = b"GET /healthz HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (mib << 20)
    attack_bodies(port, pid, conns, head, lambda: (chunk for _ in range(mib)))


def chunked(port, pid, mib):
    chunk = b"100000\r\n" + b"x" * (1 << 20) + b"\r\n"
    head = b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    attack_bodies(port, pid, 1, head, lambda: (chunk for _ in range(mib)))


if __name__ == "__main__":
    cmd, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    args = [int(a) for a in sys.argv[4:]]
    {"pipeline": pipeline, "bodies": bodies, "chunked": chunked}[cmd](port, pid, *args)
