#!/usr/bin/python3
"""Write a plain LoRA SuperLoRA adapter (e2e tests), for the stories260K
shape or any other given with --base.

usage: gen_adapter.py OUT [--rank R] [--modules wq,wv] [--seed S] [--scale F]
                          [--base dim,n_layers,n_heads,n_kv_heads,hidden_dim,vocab_size]

One group per (layer, module) target, layer-major, factors g{j}.k0.f0
(out, r) and g{j}.k0.f1 (in, r), F32, as in tests/fixtures/lora_wq_wv.
Different seeds give different bytes (hence versions)."""
import argparse
import json
import random
import struct

KEYS = ["dim", "n_layers", "n_heads", "n_kv_heads", "hidden_dim", "vocab_size"]


def dims(base):
    d, h = base["dim"], base["hidden_dim"]
    kv = d // base["n_heads"] * base["n_kv_heads"]
    return {"wq": (d, d), "wk": (kv, d), "wv": (kv, d), "wo": (d, d),
            "w1": (h, d), "w2": (d, h), "w3": (h, d)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--modules", default="wq,wv")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=0.01, help="factor entries in [-F, F]")
    ap.add_argument("--base", default="64,5,8,4,172,512")
    a = ap.parse_args()
    base = dict(zip(KEYS, (int(v) for v in a.base.split(","))))
    DIMS = dims(base)
    mods = a.modules.split(",")
    rng = random.Random(a.seed)
    header = {"__metadata__": {"superlora": json.dumps(
        {"version": 1, "base": base, "modules": mods}), "format": "pt"}}
    data = bytearray()
    j = 0
    for _layer in range(base["n_layers"]):
        for m in mods:
            out_dim, in_dim = DIMS[m]
            for f, rows in (("f0", out_dim), ("f1", in_dim)):
                n = rows * a.rank
                vals = [rng.uniform(-a.scale, a.scale) for _ in range(n)]
                start = len(data)
                data += struct.pack("<%df" % n, *vals)
                header["g%d.k0.%s" % (j, f)] = {"dtype": "F32", "shape": [rows, a.rank],
                                               "data_offsets": [start, len(data)]}
            j += 1
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(a.out, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h + bytes(data))


if __name__ == "__main__":
    main()
