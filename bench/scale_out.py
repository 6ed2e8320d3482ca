#!/usr/bin/python3
"""scale_out.py - measurements of bench/scale_out.sh (three replicas on one
redis-server behind haproxy).

usage:
  scale_out.py propagate OUT_JSON R1 R2 R3 FILE...
      Upload each FILE (a new adapter) through R1; time from the PUT's
      response until R2 and R3 both serve it (GET shows the version).
  scale_out.py swap OUT_JSON R1 R2 R3 FILE_A FILE_B N
      N hot swaps of one adapter through R1 (A, B, A, ...): time until every
      replica serves the new version.
  scale_out.py zipf OUT_JSON LB N CLIENTS S ID... -- REPLICA...
      N completions through LB over the IDs, Zipf(S)-distributed by rank,
      CLIENTS threads with keep-alive connections; the delta-cache hits and
      misses summed over the REPLICAs' /metrics before and after; req/s.
"""
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse


def conn(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def call(c, method, path, body=None):
    c.request(method, path, body=body)
    r = c.getresponse()
    return r.status, r.read()


def version_on(c, ident):
    st, body = call(c, "GET", "/v1/adapters/" + ident)
    return json.loads(body)["version"] if st == 200 else None


def wait_all(conns, ident, version, t0):
    """ms from t0 until every connection serves version."""
    pending = list(conns)
    while pending:
        pending = [c for c in pending if version_on(c, ident) != version]
        if time.time() - t0 > 30:
            raise SystemExit("version %s of %s not propagated within 30 s" % (version, ident))
    return (time.time() - t0) * 1000


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(ms):
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 2), "p99_ms": round(pct(ms, 99), 2),
            "max_ms": round(max(ms), 2)}


def put(c, ident, path):
    st, body = call(c, "PUT", "/v1/adapters/" + ident, open(path, "rb").read())
    if st not in (200, 201):
        raise SystemExit("PUT %s: %d %s" % (ident, st, body[:200]))
    return json.loads(body)["version"]


def cmd_propagate(out, r1, r2, r3, files):
    up, others = conn(r1), [conn(r2), conn(r3)]
    ms = []
    for i, path in enumerate(files):
        ident = "bench/prop%d" % i
        version = put(up, ident, path)
        ms.append(wait_all(others, ident, version, time.time()))
    json.dump(summary(ms), open(out, "w"))


def cmd_swap(out, r1, r2, r3, file_a, file_b, n):
    up, all_ = conn(r1), [conn(r1), conn(r2), conn(r3)]
    ms = []
    for i in range(n):
        version = put(up, "bench/swap", (file_a, file_b)[i % 2])
        ms.append(wait_all(all_, "bench/swap", version, time.time()))
    json.dump(summary(ms), open(out, "w"))


def cache_counts(replicas):
    hits = misses = 0
    for url in replicas:
        c = conn(url)
        _, body = call(c, "GET", "/metrics")
        for line in body.decode().splitlines():
            if line.startswith("slorad_delta_cache_hits_total "):
                hits += int(float(line.split()[1]))
            elif line.startswith("slorad_delta_cache_misses_total "):
                misses += int(float(line.split()[1]))
        c.close()
    return hits, misses


def cmd_zipf(out, lb, n, clients, s, ids, replicas):
    weights = [1.0 / (k + 1) ** s for k in range(len(ids))]
    rng = random.Random(1)
    order = rng.sample(ids, len(ids))  # which adapter gets which rank
    seq = rng.choices(order, weights=weights, k=n)
    h0, m0 = cache_counts(replicas)
    errors = []
    lock = threading.Lock()
    nxt = [0]

    def client():
        c = conn(lb)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                break
            body = json.dumps({"model": seq[i], "prompt": "Once", "max_tokens": 2,
                               "temperature": 0}).encode()
            try:
                st, data = call(c, "POST", "/v1/completions", body)
            except (OSError, http.client.HTTPException) as e:
                st, data = 0, str(e).encode()
                c = conn(lb)
            if st != 200:
                errors.append((st, data[:200]))

    t0 = time.time()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.time() - t0
    h1, m1 = cache_counts(replicas)
    hits, misses = h1 - h0, m1 - m0
    json.dump({"requests": n, "errors": len(errors), "seconds": round(secs, 2),
               "req_per_s": round(n / secs, 1), "hits": hits, "misses": misses,
               "hit_ratio": round(hits / max(1, hits + misses), 4)}, open(out, "w"))
    if errors:
        raise SystemExit("zipf: %d failed requests, first %r" % (len(errors), errors[0]))


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "propagate":
        cmd_propagate(a[0], a[1], a[2], a[3], a[4:])
    elif cmd == "swap":
        cmd_swap(a[0], a[1], a[2], a[3], a[4], a[5], int(a[6]))
    elif cmd == "zipf":
        sep = a.index("--")
        cmd_zipf(a[0], a[1], int(a[2]), int(a[3]), float(a[4]), a[5:sep], a[sep + 1:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
