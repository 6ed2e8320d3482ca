#!/usr/bin/python3
"""hostile_bench.py PORT PID SECONDS OUT_JSON - normal traffic alone, then for
SECONDS the same traffic beside hostile clients (bench/hostile.sh):

  normal    2 client processes, closed loop: a greedy 8-token completion on
            the base model or on an adapter, GET /v1/models, GET /healthz;
            every answer must be 200 with the expected body ("nothing lost");
  pipeline  2 connections that pipeline 13 MiB of GET /healthz each and
            never read (back-pressure blocks them; idle_timeout_ms, 5 s
            here, closes them; then they start over);
  slow      1 connection that pipelines 8 MiB the same way but reads at
            most 1 MiB/s: every reply must arrive, in order;
  bodies    4 connections in a loop: GET /healthz with a 64 MiB body (413
            before the body is read).

The attackers run at nice 19: on a small machine their own CPU use would
otherwise be what slows the daemon (in production they are remote).
Reports p50/p99 of the normal requests unloaded and under attack, their
ratio (goal: p99 under 3x the unloaded p99), lost requests, the daemon's
peak RSS growth, and what the attackers got."""
import http.client
import json
import multiprocessing as mp
import os
import re
import socket
import sys
import time

port, pid, seconds, out_path = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
UNLOADED_S = 15


def status_kb(field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def normal(seconds, q, seed):
    """Closed-loop normal client; puts (latencies_ms, lost, n) on q."""
    reqs = [
        ("POST", "/v1/completions", json.dumps({"model": "stories260K", "prompt": "Once upon a time",
                                                "max_tokens": 8, "temperature": 0}), b'"text"'),
        ("POST", "/v1/completions", json.dumps({"model": "bench/style", "prompt": "Once upon a time",
                                                "max_tokens": 8, "temperature": 0}), b'"text"'),
        ("GET", "/v1/models", None, b'"data"'),
        ("GET", "/healthz", None, b'"ok"'),
    ]
    lat, lost, i = [], 0, seed
    end = time.monotonic() + seconds
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < end:
        m, path, body, want = reqs[i % len(reqs)]
        i += 1
        t = time.perf_counter()
        try:
            conn.request(m, path, body=body)
            r = conn.getresponse()
            data = r.read()
            ok = r.status == 200 and want in data
        except (OSError, http.client.HTTPException):
            ok = False
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat.append((time.perf_counter() - t) * 1000)
        lost += not ok
    q.put((lat, lost, len(lat)))


def pipelined_blob(mib, tag):
    reqs, size, i = [], 0, 0
    while size < mib << 20:
        r = b"GET /healthz HTTP/1.1\r\nX-Request-Id: %s%d\r\n\r\n" % (tag, i)
        reqs.append(r)
        size += len(r)
        i += 1
    return b"".join(reqs), i


def pipeline_never_reads(end, q):
    blob, _ = pipelined_blob(13, b"n")
    rounds = 0
    while time.monotonic() < end:
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(max(0.1, end - time.monotonic()))
        try:
            s.sendall(blob)  # blocks once the daemon stops reading us, until it closes us
            time.sleep(max(0.0, end - time.monotonic()))
        except OSError:
            pass
        s.close()
        rounds += 1
    q.put(("pipeline", {"connections": rounds}))


def pipeline_slow_reader(end, q):
    blob, n = pipelined_blob(8, b"s")
    s = socket.create_connection(("127.0.0.1", port))
    import threading
    threading.Thread(target=lambda: s.sendall(blob), daemon=True).start()
    pat = re.compile(rb"X-Request-Id: s(\d+)\r\n")
    buf, got, in_order = b"", 0, True
    while got < n and time.monotonic() < end + 120:
        time.sleep(0.01)  # the client's pace: at most 1 MiB/s
        b = s.recv(10486)
        if not b:
            break
        buf += b
        last = 0
        for m in pat.finditer(buf):
            in_order = in_order and int(m.group(1)) == got
            got += 1
            last = m.end()
        buf = buf[max(last, len(buf) - 64):]
        if time.monotonic() >= end:
            break
    q.put(("slow", {"replies_read": got, "in_order": in_order, "sent": n}))


def bodies(end, q):
    head = b"GET /healthz HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (64 << 20)
    chunk = b"x" * (1 << 20)
    statuses = {}
    while time.monotonic() < end:
        s = socket.create_connection(("127.0.0.1", port))
        try:
            s.sendall(head)
            for _ in range(64):
                s.sendall(chunk)
        except OSError:
            pass
        s.settimeout(10)
        try:
            m = re.match(rb"HTTP/1.1 (\d+)", s.recv(4096))
            st = m.group(1).decode() if m else "none"
        except OSError:
            st = "none"
        statuses[st] = statuses.get(st, 0) + 1
        s.close()
    q.put(("bodies", statuses))


def run_normal(seconds, q):
    ps = [mp.Process(target=normal, args=(seconds, q, k)) for k in range(2)]
    for p in ps:
        p.start()
    return ps


def summarize(results):
    lat = sorted(x for r in results for x in r[0])
    pct = lambda p: round(lat[min(len(lat) - 1, int(p / 100 * (len(lat) - 1)))], 3)
    return {"requests": sum(r[2] for r in results), "lost": sum(r[1] for r in results),
            "p50_ms": pct(50), "p99_ms": pct(99)}


if __name__ == "__main__":
    q = mp.Queue()
    ps = run_normal(UNLOADED_S, q)
    base = summarize([q.get() for _ in ps])
    for p in ps:
        p.join()

    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")
    rss0 = status_kb("VmRSS")
    end = time.monotonic() + seconds
    aq = mp.Queue()
    attackers = [mp.Process(target=pipeline_never_reads, args=(end, aq)) for _ in range(2)]
    attackers += [mp.Process(target=pipeline_slow_reader, args=(end, aq))]
    attackers += [mp.Process(target=bodies, args=(end, aq)) for _ in range(4)]
    for a in attackers:
        a.start()
        os.setpriority(os.PRIO_PROCESS, a.pid, 19)
    ps = run_normal(seconds, q)
    loaded = summarize([q.get() for _ in ps])
    got = [aq.get() for _ in attackers]
    for p in ps + attackers:
        p.join()
    rss_peak = status_kb("VmHWM")

    attacks = {"pipeline_connections": sum(v["connections"] for k, v in got if k == "pipeline"),
               "slow_reader": next(v for k, v in got if k == "slow"),
               "body_statuses": {}}
    for k, v in got:
        if k == "bodies":
            for st, n in v.items():
                attacks["body_statuses"][st] = attacks["body_statuses"].get(st, 0) + n
    res = {"seconds": seconds, "unloaded": base, "under_attack": loaded,
           "p99_ratio": round(loaded["p99_ms"] / base["p99_ms"], 2),
           "rss_before_kb": rss0, "rss_peak_growth_kb": rss_peak - rss0, "attacks": attacks}
    with open(out_path, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))
