#!/usr/bin/python3
"""soak.py - the load and soak run behind bench/soak.sh (loopback only).

usage: soak.py PORT PID TMPDIR SECONDS OUT_JSON

Phase 1, SECONDS of mixed traffic: wrk (bench/soak.lua) posts completions
round-robin over N_ADAPTERS adapters (more than the delta cache holds, so
it evicts) while this script's threads replace those adapters (hot swap),
upload and delete churn adapters, download files and scrape /metrics. Every
10 s: RSS, open fds and the daemon's memory counters.
Phase 2, connection storms while a probe client keeps asking /healthz and
completions: 5,000 connections opened and dropped, then 500 slow-loris
clients trickling header bytes until the header timeout closes them; the
fd count must come back to its baseline.
Writes OUT_JSON; prints a summary."""
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time

N_ADAPTERS = 32
N_CHURN = 16
COUNTERS = ("slorad_adapter_objects_live", "slorad_adapter_objects_live_bytes", "slorad_adapters",
            "slorad_adapter_bytes", "slorad_delta_cache_bytes", "slorad_delta_cache_entries",
            "slorad_delta_cache_budget_bytes", "slorad_delta_cache_evictions_total",
            "slorad_open_connections", "slorad_requests_in_flight")


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


class Daemon:
    def __init__(self, port, pid):
        self.port, self.pid = port, pid

    def req(self, method, path, body=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def rss_kib(self):
        for line in open("/proc/%d/status" % self.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def counters(self):
        _, text = self.req("GET", "/metrics")
        out = {}
        for line in text.decode().splitlines():
            f = line.split()
            if len(f) == 2 and f[0] in COUNTERS:
                out[f[0]] = float(f[1])
        return out


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat = {}
        self.status = {}
        self.errors = []

    def add(self, kind, status, seconds):
        with self.lock:
            self.lat.setdefault(kind, []).append(seconds)
            key = "%s %s" % (kind, status)
            self.status[key] = self.status.get(key, 0) + 1
            if status == "exc" or (isinstance(status, int) and status >= 500):
                self.errors.append(key)


def timed(stats, kind, fn, *args):
    t0 = time.monotonic()
    try:
        st, body = fn(*args)
    except Exception as e:  # a refused or reset connection is an error
        stats.add(kind, "exc", time.monotonic() - t0)
        return None, str(e).encode()
    stats.add(kind, st, time.monotonic() - t0)
    return st, body


def phase_mixed(d, tmp, seconds, files):
    stats = Stats()
    stop = threading.Event()
    samples = []

    def swapper():
        rnd = random.Random(1)
        while not stop.is_set():
            i = rnd.randrange(N_ADAPTERS)
            timed(stats, "replace", d.req, "PUT", "/v1/adapters/soak/a%d" % i, rnd.choice(files))

    def churn():
        rnd = random.Random(2)
        while not stop.is_set():
            name = "/v1/adapters/churn/c%d" % rnd.randrange(N_CHURN)
            op = rnd.random()
            if op < 0.4:
                timed(stats, "upload", d.req, "PUT", name, rnd.choice(files))
            elif op < 0.6:
                timed(stats, "delete", d.req, "DELETE", name)
            else:
                timed(stats, "download", d.req, "GET", name + "/file")

    def scraper():
        while not stop.is_set():
            timed(stats, "metrics", d.req, "GET", "/metrics")
            time.sleep(0.5)

    def sampler():
        t0 = time.monotonic()
        while True:
            s = {"t": round(time.monotonic() - t0, 1), "rss_kib": d.rss_kib(), "fds": d.fds()}
            try:
                s.update(d.counters())
            except Exception as e:
                s["metrics_error"] = str(e)
            samples.append(s)
            if stop.wait(10):
                break

    env = dict(os.environ, SOAK_ADAPTERS=str(N_ADAPTERS))
    wrk = subprocess.Popen(["wrk", "-t2", "-c8", "-d%ds" % seconds, "--latency", "--timeout", "10s",
                            "-s", os.path.join(os.path.dirname(__file__), "soak.lua"),
                            "http://127.0.0.1:%d" % d.port], stdout=subprocess.PIPE, text=True,
                           env=env)
    threads = [threading.Thread(target=f) for f in (swapper, churn, scraper, sampler)]
    for t in threads:
        t.start()
    out, _ = wrk.communicate()
    stop.set()
    for t in threads:
        t.join()
    m = re.search(r"^SOAK_JSON (.*)$", out, re.M)
    if not m:
        raise SystemExit("wrk printed no summary:\n" + out)
    w = json.loads(m.group(1))
    return w, out, stats, samples


def probe_loop(d, stop, stats):
    body = json.dumps({"model": "soak/a0", "prompt": "Once", "max_tokens": 2, "temperature": 0})
    while not stop.is_set():
        timed(stats, "probe_healthz", d.req, "GET", "/healthz", None, 10)
        timed(stats, "probe_completion", d.req, "POST", "/v1/completions", body, 10)
        time.sleep(0.05)


def wait_fds(d, baseline, limit_s):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        if d.fds() <= baseline:
            return round(time.monotonic() - t0, 2)
        time.sleep(0.1)
    return None


def phase_storm(d, n_conn, n_slow, header_timeout_s):
    res = {}
    baseline = d.fds()
    res["fds_baseline"] = baseline
    stats = Stats()
    stop = threading.Event()
    probe = threading.Thread(target=probe_loop, args=(d, stop, stats))
    probe.start()

    # 5,000 connections opened at once (a third with a partial request), then dropped
    t0 = time.monotonic()
    socks = []
    for i in range(n_conn):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", d.port))
        socks.append(s)
    time.sleep(1)
    for i, s in enumerate(socks):
        if i % 3 == 0:
            try:
                s.send(b"GET /healthz HTTP/1.1\r\nHo")
            except OSError:
                pass
    time.sleep(0.5)
    res["storm_fds_peak"] = d.fds()
    for s in socks:
        s.close()
    opened = len(socks)
    res["storm_connections"] = opened
    res["storm_seconds"] = round(time.monotonic() - t0, 2)
    res["storm_fds_back_after_s"] = wait_fds(d, baseline, 30)

    # 500 slow-loris clients: one header byte per second each
    t0 = time.monotonic()
    slow = []
    for i in range(n_slow):
        s = socket.create_connection(("127.0.0.1", d.port))
        s.send(b"GET /healthz HTTP/1.1\r\n")
        slow.append(s)
    res["slowloris_fds_peak"] = d.fds()
    closed_by_server = 0
    deadline = time.monotonic() + header_timeout_s + 10
    alive = list(slow)
    while alive and time.monotonic() < deadline:
        nxt = []
        for s in alive:
            try:
                s.send(b"X")
                nxt.append(s)
            except OSError:
                closed_by_server += 1
        alive = nxt
        time.sleep(1)
    for s in slow:
        s.close()
    res["slowloris_clients"] = n_slow
    res["slowloris_cut_by_server"] = closed_by_server
    res["slowloris_seconds"] = round(time.monotonic() - t0, 1)
    res["slowloris_fds_back_after_s"] = wait_fds(d, baseline, 30)
    stop.set()
    probe.join()
    res["fds_after"] = d.fds()
    res["probe"] = {k: {"n": len(v), "p50_ms": round(pct(v, 50) * 1e3, 2),
                        "p99_ms": round(pct(v, 99) * 1e3, 2), "max_ms": round(max(v) * 1e3, 2)}
                    for k, v in stats.lat.items()}
    res["probe_status"] = stats.status
    res["probe_errors"] = len(stats.errors)
    return res


def main():
    port, pid, tmp, seconds, out_path = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                                         int(sys.argv[4]), sys.argv[5])
    d = Daemon(port, pid)
    files = [open(os.path.join(tmp, "a%d.safetensors" % i), "rb").read() for i in range(8)]
    for i in range(N_ADAPTERS):
        st, body = d.req("PUT", "/v1/adapters/soak/a%d" % i, files[i % len(files)])
        if st not in (200, 201):
            raise SystemExit("setup upload: %d %s" % (st, body))
    rss0, fds0 = d.rss_kib(), d.fds()
    w, wrk_out, stats, samples = phase_mixed(d, tmp, seconds, files)
    mixed = {
        "seconds": seconds,
        "wrk_completions": w,
        "script": {k: {"n": len(v), "p50_ms": round(pct(v, 50) * 1e3, 2),
                       "p99_ms": round(pct(v, 99) * 1e3, 2)} for k, v in stats.lat.items()},
        "script_status": stats.status,
        "script_errors_non4xx": len(stats.errors),
        "samples": samples,
        "rss_kib_start": rss0,
        "fds_start": fds0,
    }
    mixed["requests_served"] = w["requests"] + sum(len(v) for v in stats.lat.values())
    mixed["errors_non4xx"] = (w["status_errors_5xx"] + w["socket_errors"] +
                              len(stats.errors))
    storm = phase_storm(d, 5000, 500, float(os.environ.get("SOAK_HEADER_TIMEOUT_S", "3")))
    result = {"mixed": mixed, "storm": storm}
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
    print(wrk_out)
    print(json.dumps({"requests_served": mixed["requests_served"],
                      "errors_non4xx": mixed["errors_non4xx"],
                      "storm": {k: v for k, v in storm.items() if k not in ("probe_status",)}},
                     indent=1))


if __name__ == "__main__":
    main()
