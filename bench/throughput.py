#!/usr/bin/env python3
"""Small-request throughput against connections (issue 11, point 4).

`POST /v1/completions` with max_tokens 8 on stories260K under wrk at 1, 2,
4, 8, 16, 32 and 64 connections, each point repeated (rounds interleaved:
1..64, then 1..64 again), medians reported with their spread. Only 2xx
answers count as requests served. The daemon runs with its defaults except
max_sequences_per_tenant 64, so that 32 and 64 connections are served
rather than refused with 429 (the default allows 16 sequences per tenant,
and wrk is one tenant).

Recorded per point: requests/s, latency p50/p99 (wrk), engine steps/s and
rows per step (/metrics), the daemon's CPU (cores, from /proc), and the
load average before and after, since other work on the machine moves these
numbers.

With --baseline BIN a second daemon (another build) runs alongside and the
two are measured in turn at every point of every round, so both see the
same machine.

usage: throughput.py --slorad BIN [--baseline BIN] [--rounds R] [--seconds S]
                     [--threads N] [--conns 1,2,4,...] [--json P] [--md P]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

CONNS = [1, 2, 4, 8, 16, 32, 64]
BODY = '{"model":"stories260K","prompt":"Once upon a time","max_tokens":8}'
FLOOR = 2500.0   # requests/s required from 4 connections up
STEP_MIN = 0.8   # no point below this fraction of the previous one


def loadavg():
    return float(open("/proc/loadavg").read().split()[0])


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


class Daemon:
    def __init__(self, binary, tmp, name, threads=None):
        self.name = name
        d = os.path.join(tmp, name)
        os.makedirs(d)
        conf = os.path.join(d, "conf.json")
        with open(conf, "w") as f:
            conf_obj = {"max_sequences_per_tenant": 64}
            if threads is not None:
                conf_obj["threads"] = threads
            json.dump(conf_obj, f)
        self.log = open(os.path.join(d, "log"), "w+")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--state-dir", os.path.join(d, "state"),
             "--model", "models/stories260K.bin", "--tokenizer", "models/tok512.bin",
             "--config", conf], stderr=self.log)
        self.port = None
        for _ in range(400):
            self.log.seek(0)
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.log.read())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not self.port:
            self.log.seek(0)
            sys.exit("%s did not start:\n%s" % (binary, self.log.read()))
        self.url = "http://127.0.0.1:%d" % self.port
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url + "/readyz")
                break
            except OSError:
                time.sleep(0.05)

    def metrics(self):
        text = urllib.request.urlopen(self.url + "/metrics").read().decode()
        vals = {}
        for k in ("slorad_engine_steps_total", "slorad_engine_rows_total"):
            m = re.search(r"^%s (\d+)" % k, text, re.M)
            vals[k] = int(m.group(1)) if m else 0
        return vals

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wrk(url, conns, seconds, script):
    out = subprocess.run(
        ["wrk", "-t%d" % min(conns, 2), "-c%d" % conns, "-d%ds" % seconds, "--latency",
         "-s", script, url + "/v1/completions"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    total, elapsed = int(m.group(1)), float(m.group(2)) * unit
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = int(bad.group(1)) if bad else 0
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)

    def pct(p):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % p, out, re.M)
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)] if m else None
    return {"rps": (total - bad) / elapsed, "non_2xx": bad,
            "socket_errors": sum(int(x) for x in errs.groups()) if errs else 0,
            "p50_ms": pct(50), "p99_ms": pct(99)}


def point(d, conns, seconds, script):
    m0, c0, l0 = d.metrics(), cpu_seconds(d.proc.pid), loadavg()
    t0 = time.monotonic()
    r = wrk(d.url, conns, seconds, script)
    dt = time.monotonic() - t0
    m1, c1 = d.metrics(), cpu_seconds(d.proc.pid)
    steps = m1["slorad_engine_steps_total"] - m0["slorad_engine_steps_total"]
    rows = m1["slorad_engine_rows_total"] - m0["slorad_engine_rows_total"]
    r.update(steps_per_s=steps / dt, rows_per_step=rows / steps if steps else 0.0,
             daemon_cores=(c1 - c0) / dt, load_before=l0, load_after=loadavg())
    return r


def summary(runs):
    rps = [r["rps"] for r in runs]
    med = lambda k: statistics.median(r[k] for r in runs if r[k] is not None)
    return {"rps_median": statistics.median(rps), "rps_min": min(rps), "rps_max": max(rps),
            "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"),
            "steps_per_s": med("steps_per_s"), "rows_per_step": med("rows_per_step"),
            "daemon_cores": med("daemon_cores"),
            "non_2xx": sum(r["non_2xx"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs),
            "load_min": min(r["load_before"] for r in runs),
            "load_max": max(r["load_after"] for r in runs), "runs": runs}


def verdict(points):
    med = [points[str(c)]["rps_median"] for c in CONNS]
    drops = [CONNS[i] for i in range(1, len(med)) if med[i] < STEP_MIN * med[i - 1]]
    low = [c for c, v in zip(CONNS, med) if c >= 4 and v < FLOOR]
    return {"monotone": not drops, "drops_at": drops, "floor": not low, "below_floor_at": low}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slorad", required=True)
    ap.add_argument("--baseline")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--threads", type=int, help="`threads` for both daemons (default: the config's)")
    ap.add_argument("--conns", help="connection counts, comma-separated (default 1..64)")
    ap.add_argument("--json")
    ap.add_argument("--md")
    a = ap.parse_args()
    if a.conns:
        CONNS[:] = [int(c) for c in a.conns.split(",")]
    tmp = tempfile.mkdtemp(prefix="slorad-throughput.")
    script = os.path.join(tmp, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = \'%s\'\n' % BODY)
    daemons = [Daemon(a.slorad, tmp, "slorad", a.threads)]
    if a.baseline:
        daemons.append(Daemon(a.baseline, tmp, "baseline", a.threads))
    runs = {d.name: {c: [] for c in CONNS} for d in daemons}
    load0 = loadavg()
    try:
        for d in daemons:  # warm-up: first requests, page cache, allocator
            wrk(d.url, 4, 1, script)
        for rnd in range(a.rounds):
            for c in CONNS:
                for d in (daemons if rnd % 2 == 0 else daemons[::-1]):
                    r = point(d, c, a.seconds, script)
                    runs[d.name][c].append(r)
                    print("round %d %-8s c=%-2d %7.0f req/s  p50 %6.2f ms  %5.1f rows/step  "
                          "load %.2f" % (rnd + 1, d.name, c, r["rps"], r["p50_ms"] or 0,
                                         r["rows_per_step"], r["load_after"]), file=sys.stderr)
    finally:
        for d in daemons:
            d.stop()
    report = {"cpus": os.cpu_count(), "load_start": load0, "load_end": loadavg(),
              "rounds": a.rounds, "seconds": a.seconds, "body": json.loads(BODY),
              "criterion": {"floor_rps_from_4": FLOOR, "min_ratio_to_previous": STEP_MIN}}
    for d in daemons:
        pts = {str(c): summary(runs[d.name][c]) for c in CONNS}
        report[d.name] = {"points": pts, "verdict": verdict(pts)}
    md = ["## Small-request throughput (stories260K, max_tokens 8)", "",
          "`wrk -t2 -cN` `POST /v1/completions` (prompt \"Once upon a time\", `max_tokens` 8); "
          "2xx answers per second, median of %d interleaved rounds of %d s (min-max); "
          "%d CPUs, load average %.2f at start, %.2f at end (other work on the machine "
          "shares these cores). Steps and rows from `/metrics`; `cores` is the daemon's CPU use."
          % (a.rounds, a.seconds, report["cpus"], load0, report["load_end"]), ""]
    head = "| connections | req/s | p50 ms | p99 ms | steps/s | rows/step | cores | load |"
    if a.baseline:
        head += " baseline req/s | baseline p50 ms | ratio |"
    md += [head, "|" + "---:|" * (head.count("|") - 1)]
    for c in CONNS:
        p = report["slorad"]["points"][str(c)]
        line = ("| %d | %.0f (%.0f-%.0f) | %.2f | %.2f | %.0f | %.1f | %.2f | %.2f-%.2f |"
                % (c, p["rps_median"], p["rps_min"], p["rps_max"], p["p50_ms"], p["p99_ms"],
                   p["steps_per_s"], p["rows_per_step"], p["daemon_cores"], p["load_min"],
                   p["load_max"]))
        if a.baseline:
            b = report["baseline"]["points"][str(c)]
            line += " %.0f (%.0f-%.0f) | %.2f | %.2fx |" % (
                b["rps_median"], b["rps_min"], b["rps_max"], b["p50_ms"],
                p["rps_median"] / b["rps_median"])
        md.append(line)
    for d in daemons:
        v = report[d.name]["verdict"]
        md.append("")
        md.append("%s: %s; %s." % (
            d.name,
            "never below %.1fx the previous point" % STEP_MIN if v["monotone"]
            else "below %.1fx the previous point at %s connections" % (STEP_MIN, v["drops_at"]),
            ">= %.0f req/s from 4 connections up" % FLOOR if v["floor"]
            else "below %.0f req/s at %s connections" % (FLOOR, v["below_floor_at"])))
        bad = sum(report[d.name]["points"][str(c)]["non_2xx"] for c in CONNS)
        if bad:
            md[-1] += " %d non-2xx answers (not counted)." % bad
    text = "\n".join(md) + "\n"
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    if a.md:
        with open(a.md, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
