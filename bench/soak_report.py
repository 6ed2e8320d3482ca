#!/usr/bin/python3
"""soak_report.py SOAK_JSON NPROC LOADAVG - bench/results/soak.md from soak.json."""
import json
import sys

r = json.load(open(sys.argv[1]))
m, s = r["mixed"], r["storm"]
w = m["wrk_completions"]
print("# Soak (bench/soak.sh)\n")
print("Loopback, %s CPUs shared with other jobs (load average %s at the end). Mixed traffic for "
      "%d s (SOAK_SECONDS; the issue's run is 600 s).\n" % (sys.argv[2], sys.argv[3], m["seconds"]))
print("## Mixed traffic\n")
print("| | value |\n|---|---|")
print("| requests served | %d |" % m["requests_served"])
print("| errors (5xx, resets, timeouts) | %d |" % m["errors_non4xx"])
print("| wrk completions (2 threads, 8 connections, 32 adapters, cache holds 16) | %d (%.1f/s) |"
      % (w["requests"], w["rps"]))
print("| completions latency p50 / p90 / p99 / max | %.1f / %.1f / %.1f / %.1f ms |"
      % (w["p50_ms"], w["p90_ms"], w["p99_ms"], w["max_ms"]))
print("\n| script operation | n | p50 ms | p99 ms |\n|---|---|---|---|")
for k, v in sorted(m["script"].items()):
    print("| %s | %d | %.1f | %.1f |" % (k, v["n"], v["p50_ms"], v["p99_ms"]))
print("\nStatus counts: %s\n" % ", ".join("%s: %d" % kv for kv in sorted(m["script_status"].items())))
print("## Every 10 s\n")
cols = ["t", "rss_kib", "fds", "slorad_adapters", "slorad_adapter_objects_live",
        "slorad_adapter_objects_live_bytes", "slorad_delta_cache_entries", "slorad_delta_cache_bytes",
        "slorad_delta_cache_evictions_total", "slorad_open_connections"]
print("| " + " | ".join(c.replace("slorad_", "") for c in cols) + " |")
print("|" + "---|" * len(cols))
for x in m["samples"]:
    print("| " + " | ".join("%g" % x[c] if isinstance(x.get(c), (int, float)) else "-" for c in cols) + " |")
budget = m["samples"][0].get("slorad_delta_cache_budget_bytes")
peak = max(x.get("slorad_delta_cache_bytes", 0) for x in m["samples"])
print("\nDelta cache: peak %d bytes sampled against a budget of %d.\n" % (peak, budget or 0))
print("## Connection storms\n")
print("| | value |\n|---|---|")
for k in ("fds_baseline", "storm_connections", "storm_fds_peak", "storm_seconds", "storm_fds_back_after_s",
          "slowloris_clients", "slowloris_fds_peak", "slowloris_cut_by_server", "slowloris_seconds",
          "slowloris_fds_back_after_s", "fds_after", "probe_errors"):
    print("| %s | %s |" % (k, s[k]))
print("\n| probe during the storms | n | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|")
for k, v in sorted(s["probe"].items()):
    print("| %s | %d | %.1f | %.1f | %.1f |" % (k, v["n"], v["p50_ms"], v["p99_ms"], v["max_ms"]))
print("\nProbe status counts: %s" % ", ".join("%s: %d" % kv for kv in sorted(s["probe_status"].items())))
