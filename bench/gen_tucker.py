#!/usr/bin/python3
"""gen_tucker.py - a cross-layer Tucker SuperLoRA adapter for benchmarks: one
group over wq and wv of every layer (groups = 1, order layer), K = 1, M = 3,
fold n = (c, c, c) with c = ceil(N^(1/3)), Tucker ranks (4, 4, 4) with a
core. It expands to a dense dW of N elements (the dense path).

  gen_tucker.py OUT --base dim,n_layers,n_heads,n_kv_heads,hidden_dim,vocab_size
"""
import argparse
import json
import random
import struct

KEYS = ["dim", "n_layers", "n_heads", "n_kv_heads", "hidden_dim", "vocab_size"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--base", required=True)
    ap.add_argument("--rank", type=int, default=4)
    a = ap.parse_args()
    base = dict(zip(KEYS, (int(v) for v in a.base.split(","))))
    d, kv = base["dim"], base["dim"] // base["n_heads"] * base["n_kv_heads"]
    n_total = base["n_layers"] * (d * d + kv * d)
    c = 1
    while c ** 3 < n_total:
        c += 1
    r = a.rank
    rng = random.Random(5)
    cfg = {"version": 1, "base": base, "modules": ["wq", "wv"], "groups": 1}
    header = {"__metadata__": {"superlora": json.dumps(cfg)}}
    data = bytearray()

    def add(name, shape, scale):
        n = 1
        for s in shape:
            n *= s
        start = len(data)
        data.extend(struct.pack("<%df" % n, *(rng.uniform(-scale, scale) for _ in range(n))))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [start, len(data)]}

    add("g0.k0.core", [r, r, r], 1.0)
    for m in range(3):
        add("g0.k0.f%d" % m, [c, r], 0.05)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(a.out, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + bytes(data))


if __name__ == "__main__":
    main()
