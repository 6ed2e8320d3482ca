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
Slow clients (PID unused, pass 0):
  hostile.py stream PORT 0 MAX_TOKENS   a streamed greedy completion read
      through a 4 KiB receive buffer, not read at all until the daemon
      blocked the connection. Prints `blocked=1 done=0|1 text=JSON`.
  hostile.py download PORT 0 PATH STEP_KB   GET PATH, reading STEP_KB every
      0.1 s (a slow, steady reader). Prints `bytes=N sha256=HEX`.
  hostile.py stall PORT 0   pipelines requests without ever reading; once the
      daemon blocked it, waits for the daemon to close it. Prints `closed=1`.

growth_kb is the daemon's peak resident memory during the attack minus its
resident memory before (VmHWM after /proc/PID/clear_refs reset the peak,
minus VmRSS; both from /proc/PID/status)."""
import hashlib
import json
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


def small_rcvbuf_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    return s


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


def blocked(port):
    return (metric(port, "slorad_blocked_connections") or 0) >= 1


def stream(port, _pid, max_tokens):
    body = json.dumps({"model": "stories260K", "prompt": "Once upon a time", "max_tokens": max_tokens, "temperature": 0,
                       "stream": True, "logprobs": 5}).encode()
    s = small_rcvbuf_socket(port)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
              % len(body) + body)
    wait_for(lambda: blocked(port), "the daemon to block the stream")
    s.settimeout(DEADLINE)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    head, _, rest = out.partition(b"\r\n\r\n")
    # chunked framing, then SSE events
    data = b""
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        data += rest[:n]
        rest = rest[n + 2:]
        if n == 0:
            break
    text = ""
    done = False
    for line in data.decode().split("\n"):
        if line == "data: [DONE]":
            done = True
        elif line.startswith("data: "):
            text += json.loads(line[6:])["choices"][0]["text"]
    print("blocked=1 done=%d text=%s" % (done, json.dumps(text)))


def download(port, _pid, path, step_kb):
    s = small_rcvbuf_socket(port)
    s.sendall(b"GET %s HTTP/1.1\r\n\r\n" % path.encode())
    s.settimeout(DEADLINE)
    out = b""
    want = None
    while want is None or len(out) < want:
        time.sleep(0.1)  # the client's pace, not a synchronisation
        step = len(out) + (int(step_kb) << 10)
        while len(out) < step and (want is None or len(out) < want):
            b = s.recv(step - len(out))
            if not b:
                break
            out += b
        if not b:
            break
        if want is None and b"\r\n\r\n" in out:
            head, _, _ = out.partition(b"\r\n\r\n")
            m = re.search(rb"Content-Length: (\d+)", head)
            want = len(head) + 4 + int(m.group(1))
    body = out.partition(b"\r\n\r\n")[2]
    print("bytes=%d sha256=%s" % (len(body), hashlib.sha256(body).hexdigest()))


def stall(port, _pid):
    s = small_rcvbuf_socket(port)
    s.setblocking(False)
    req = b"GET /healthz HTTP/1.1\r\n\r\n" * 1000
    def send_some():
        try:
            s.send(req)
        except BlockingIOError:
            pass
        return blocked(port)
    wait_for(send_some, "the daemon to block the connection")
    # The daemon closes it (idle_timeout_ms without progress): only the
    # metrics request's own connection is left.
    wait_for(lambda: metric(port, "slorad_open_connections") <= 1, "the daemon to close it")
    print("closed=1")


if __name__ == "__main__":
    cmd, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    args = [int(a) if a.isdigit() else a for a in sys.argv[4:]]
    {"pipeline": pipeline, "bodies": bodies, "chunked": chunked, "stream": stream,
     "download": download, "stall": stall}[cmd](port, pid, *args)
