#!/usr/bin/python3
"""Write a SuperLoRA adapter (e2e tests, benchmarks), for the stories260K
shape or any other given with --base.

usage: gen_adapter.py OUT [--rank R] [--modules wq,wv] [--seed S] [--scale F] [--dtype F32|F16]
                          [--base dim,n_layers,n_heads,n_kv_heads,hidden_dim,vocab_size]
       gen_adapter.py OUT --cp N0xN1x... --rank R [--modules w1] [--layers 0] [options above]

Default: plain LoRA, one group per (layer, module) target, layer-major,
factors g{j}.k0.f0 (out, r) and g{j}.k0.f1 (in, r), F32, as in
tests/fixtures/lora_wq_wv. Different seeds give different bytes (hence
versions).

--cp: one group (groups = 1) over the listed modules and layers, one CP
factor of order M with factor matrices g0.k0.f{m} of shape (n_m, R). The
fold P = prod n_m must cover N (and stay within the spec's sanity bound).
`--cp 276x276x1 --rank 1800 --layers 0 --dtype F16` is the 2 MB adapter
of issue 13 whose naive expansion needs a (276 * 276, 1800) intermediate;
`--cp 61x61x61 --rank 54000 --modules wq,wk,wv,wo,w1,w2,w3 --dtype F16`
(20 MB) needs 800 MB at its cheapest contraction order."""
import argparse
import json
import math
import random
import struct

KEYS = ["dim", "n_layers", "n_heads", "n_kv_heads", "hidden_dim", "vocab_size"]
TILE = 65536  # larger tensors repeat a random block of this many values (fast to write)


def dims(base):
    d, h = base["dim"], base["hidden_dim"]
    kv = d // base["n_heads"] * base["n_kv_heads"]
    return {"wq": (d, d), "wk": (kv, d), "wv": (kv, d), "wo": (d, d),
            "w1": (h, d), "w2": (d, h), "w3": (h, d)}


def tensor(header, data, name, rows, cols, rng, a):
    n = rows * cols
    start = len(data)
    fmt = "e" if a.dtype == "F16" else "f"
    block = struct.pack("<%d%s" % (min(n, TILE), fmt),
                        *[rng.uniform(-a.scale, a.scale) for _ in range(min(n, TILE))])
    data += block * (n // TILE) + block[:(n % TILE) * struct.calcsize(fmt)] if n > TILE else block
    header[name] = {"dtype": a.dtype, "shape": [rows, cols], "data_offsets": [start, len(data)]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--modules", default=None)
    ap.add_argument("--layers", default=None)
    ap.add_argument("--cp", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=0.01, help="factor entries in [-F, F]")
    ap.add_argument("--dtype", choices=("F32", "F16"), default="F32")
    ap.add_argument("--base", default="64,5,8,4,172,512")
    a = ap.parse_args()
    base = dict(zip(KEYS, (int(v) for v in a.base.split(","))))
    DIMS = dims(base)
    mods = (a.modules or ("w1" if a.cp else "wq,wv")).split(",")
    layers = [int(x) for x in a.layers.split(",")] if a.layers else list(range(base["n_layers"]))
    rng = random.Random(a.seed)
    cfg = {"version": 1, "base": base, "modules": mods}
    if a.layers:
        cfg["layers"] = layers
    if a.cp:
        cfg["groups"] = 1
    data = bytearray()
    header = {"__metadata__": {"superlora": json.dumps(cfg), "format": "pt"}}
    if a.cp:
        ns = [int(x) for x in a.cp.split("x")]
        total = sum(DIMS[m][0] * DIMS[m][1] for m in mods) * len(layers)
        if math.prod(ns) < total:
            ap.error("--cp %s: P = %d < N = %d" % (a.cp, math.prod(ns), total))
        for m, n in enumerate(ns):
            tensor(header, data, "g0.k0.f%d" % m, n, a.rank, rng, a)
    else:
        j = 0
        for _layer in layers:
            for m in mods:
                out_dim, in_dim = DIMS[m]
                tensor(header, data, "g%d.k0.f0" % j, out_dim, a.rank, rng, a)
                tensor(header, data, "g%d.k0.f1" % j, in_dim, a.rank, rng, a)
                j += 1
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(a.out, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h + bytes(data))


if __name__ == "__main__":
    main()
