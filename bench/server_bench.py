#!/usr/bin/python3
"""server_bench.py PORT PID TMP - the measurements behind bench/server.sh."""
import http.client
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e", "lib"))
GEN = os.path.join(HERE, "..", "tests", "e2e", "lib", "gen_adapter.py")

port, pid, tmp = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def gen(path, **kw):
    args = [sys.executable, GEN, path] + sum([["--" + k, str(v)] for k, v in kw.items()], [])
    subprocess.run(args, check=True)
    return open(path, "rb").read()


def rss_kib():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def put(conn, path, body):
    conn.request("PUT", path, body=body)
    r = conn.getresponse()
    r.read()
    if r.status not in (200, 201):
        raise SystemExit("PUT %s -> %d" % (path, r.status))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


conn = http.client.HTTPConnection("127.0.0.1", port)

# 1. upload-to-servable latency, 100 KB adapter, alternating versions
a = gen(tmp + "/a.st", rank=23, seed=1)
b = gen(tmp + "/b.st", rank=23, seed=2)
lat = []
for i in range(1000):
    t = time.perf_counter()
    put(conn, "/v1/adapters/bench/latency", a if i % 2 else b)
    lat.append((time.perf_counter() - t) * 1000)
dry = []
for i in range(200):
    t = time.perf_counter()
    put(conn, "/v1/adapters/bench/latency?dry_run=1", a)
    dry.append((time.perf_counter() - t) * 1000)
upload = {"file_bytes": len(a), "n": len(lat), "p50_ms": round(pct(lat, 50), 3),
          "p99_ms": round(pct(lat, 99), 3), "mean_ms": round(sum(lat) / len(lat), 3),
          "dry_run_p50_ms": round(pct(dry, 50), 3), "dry_run_p99_ms": round(pct(dry, 99), 3)}

# 2. 10,000 distinct adapters resident
small = [gen(tmp + "/s%d.st" % i, rank=1, modules="wq", seed=100 + i) for i in range(10)]
rss0 = rss_kib()
t0 = time.perf_counter()
n_adapters = 10000
for i in range(n_adapters):
    put(conn, "/v1/adapters/t%d/a%d" % (i % 100, i), small[i % 10])
secs = time.perf_counter() - t0
rss1 = rss_kib()
per = (rss1 - rss0) * 1024.0 / n_adapters
resident = {"adapters": n_adapters, "file_bytes": len(small[0]), "upload_seconds": round(secs, 1),
            "rss_kib_before": rss0, "rss_kib_after": rss1,
            "rss_bytes_per_adapter": round(per), "beyond_file_bytes": round(per - len(small[0]))}

# 3. GET /v1/adapters/{t}/{n} under wrk, 4 connections
out = subprocess.run(["wrk", "-t", "2", "-c", "4", "-d", "5s",
                      "http://127.0.0.1:%d/v1/adapters/t7/a7" % port],
                     capture_output=True, text=True, check=True).stdout
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
lat_line = re.search(r"Latency\s+(\S+)", out).group(1)
get = {"connections": 4, "seconds": 5, "requests_per_second": round(rps), "latency_avg": lat_line}

res = {"upload_to_servable": upload, "resident_10k": resident, "get_adapter_wrk": get}
os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
with open(os.path.join(HERE, "results", "server.json"), "w") as f:
    json.dump(res, f, indent=1)
md = ["## Daemon (bench/server.sh)", "",
      "| measurement | result |", "|---|---|",
      "| upload-to-servable, %d B adapter, %d uploads | p50 %.2f ms, p99 %.2f ms |"
      % (upload["file_bytes"], upload["n"], upload["p50_ms"], upload["p99_ms"]),
      "| same, `?dry_run=1` (validation without the two fsyncs and rename) | p50 %.2f ms, p99 %.2f ms |"
      % (upload["dry_run_p50_ms"], upload["dry_run_p99_ms"]),
      "| %d distinct %d B adapters resident | RSS +%d KiB: %d B per adapter, %d B beyond the file |"
      % (n_adapters, len(small[0]), rss1 - rss0, per, per - len(small[0])),
      "| GET /v1/adapters/{t}/{n}, wrk 4 connections | %d requests/s (avg latency %s) |"
      % (rps, lat_line), "",
      "Upload latency is dominated by durability (fsync of the file and of its",
      "directory before the reply). A resident adapter costs its parameters as",
      "float32 plus about 1.5 KB of tables and registry records (the file stays",
      "on disk); see bench/results/adapters.md.", ""]
with open(os.path.join(HERE, "results", "server.md"), "w") as f:
    f.write("\n".join(md))
print("\n".join(md))
