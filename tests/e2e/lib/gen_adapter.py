#!/usr/bin/python3
"""Write a plain LoRA SuperLoRA adapter for the stories260K shape (e2e tests).

usage: gen_adapter.py OUT [--rank R] [--modules wq,wv] [--seed S]

One group per (layer, module) target, layer-major, factors g{j}.k0.f0
(out, r) and g{j}.k0.f1 (in, r), F32, as in tests/fixtures/lora_wq_wv.
Different seeds give different bytes (hence versions)."""
import argparse
import json
import random
import struct

BASE = {"dim": 64, "n_layers": 5, "n_heads": 8, "n_kv_heads": 4, "hidden_dim": 172,
        "vocab_size": 512}
DIMS = {"wq": (64, 64), "wk": (32, 64), "wv": (32, 64), "wo": (64, 64),
        "w1": (172, 64), "w2": (64, 172), "w3": (172, 64)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--modules", default="wq,wv")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    mods = a.modules.split(",")
    rng = random.Random(a.seed)
    header = {"__metadata__": {"superlora": json.dumps(
        {"version": 1, "base": BASE, "modules": mods}), "format": "pt"}}
    data = bytearray()
    j = 0
    for _layer in range(BASE["n_layers"]):
        for m in mods:
            out_dim, in_dim = DIMS[m]
            for f, rows in (("f0", out_dim), ("f1", in_dim)):
                n = rows * a.rank
                vals = [rng.uniform(-0.01, 0.01) for _ in range(n)]
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
