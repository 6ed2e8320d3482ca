#!/usr/bin/env python3
"""Merge every bench/results/<part>.{json,md} into latest.{json,md}.

Each benchmark driver writes its own part; this keeps one report a reader
can open, with the machine and time of the run on top.
"""
import json
import os
import platform
import subprocess
import sys
import time

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
parts = sorted(f[:-5] for f in os.listdir(root)
               if f.endswith(".json") and f != "latest.json")
report = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
          "machine": {"cpus": os.cpu_count(), "arch": platform.machine(),
                      "cpu": next((l.split(":", 1)[1].strip()
                                   for l in open("/proc/cpuinfo")
                                   if l.startswith("model name")), "?")},
          "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                   capture_output=True, text=True).stdout.strip()}
md = ["# slorad benchmark report", "",
      f"{report['time']}, commit {report['commit']}, "
      f"{report['machine']['cpus']} CPUs ({report['machine']['cpu']})", ""]
for p in parts:
    with open(os.path.join(root, p + ".json")) as f:
        report[p] = json.load(f)
    mdp = os.path.join(root, p + ".md")
    if os.path.exists(mdp):
        md += [open(mdp).read().rstrip(), ""]
with open(os.path.join(root, "latest.json"), "w") as f:
    json.dump(report, f, indent=1)
with open(os.path.join(root, "latest.md"), "w") as f:
    f.write("\n".join(md) + "\n")
print("wrote bench/results/latest.{json,md} from:", ", ".join(parts) or "nothing",
      file=sys.stderr)
