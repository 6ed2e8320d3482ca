#!/usr/bin/python3
"""inject_daemon.py - superlora.inject against a running slorad.

    inject_daemon.py --url URL --model M.bin --out DIR

For the package's Llama module in both row layouts (GGUF interleaved and
HF rotate-half), with a per-matrix LoRA and a shuffled, projected Tucker
fold over wq, wk and w2: inject, train a few steps, export with
superlora.export, upload with the installed `superlora upload` command, and
require POST /v1/logits (all positions) to equal the injected model's
logits: max|daemon - torch| <= 1e-4 max|torch| (the exported file's W + dW
as the daemon applies it). Prints what it checked; exit 1 on a mismatch.
"""

import argparse
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import torch

import superlora

PROMPT = [1, 403, 407, 261, 378, 432, 383, 286, 262, 297]
CONFIGS = {
    "lora": {"variant": "lora", "rank": 4, "modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
    "folded": {"variant": "lorta3d", "rank": 3, "modules": ["wq", "wk", "w2"], "ratio": 0.2,
               "shuffle": 5, "projection": 7},
}


def daemon_logits(url, name, tokens):
    body = json.dumps({"model": name, "tokens": tokens, "positions": "all"}).encode()
    req = urllib.request.Request(url + "/v1/logits", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return torch.tensor(json.loads(r.read())["logits"], dtype=torch.float64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ok = True
    tokens = torch.tensor([PROMPT])
    for rope in ("interleaved", "rotate_half"):
        for label, config in CONFIGS.items():
            model = superlora.Transformer(a.model, rope=rope)
            adapter = superlora.inject(model, config, seed=1)
            opt = torch.optim.Adam(adapter.parameters(), lr=5e-2)
            for _ in range(8):  # learn to repeat the prompt shifted by one
                logits = model(tokens[:, :-1])[0]
                loss = torch.nn.functional.cross_entropy(logits, tokens[0, 1:].flip(0))
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                want = model(tokens)[0].double()
                base = superlora.Transformer(a.model)(tokens)[0].double()
            path = a.out / ("%s-%s.safetensors" % (rope, label))
            superlora.export(model, path)
            name = "acme/%s-%s" % (rope.replace("_", "-"), label)
            up = subprocess.run(["superlora", "upload", str(path), "--url", a.url, "--name", name],
                                capture_output=True, text=True)
            if up.returncode != 0:
                print("inject_daemon: FAIL upload %s: %s" % (name, up.stderr), file=sys.stderr)
                ok = False
                continue
            got = daemon_logits(a.url, name, PROMPT)
            scale = float(want.abs().max())
            err = float((got - want).abs().max()) / scale
            moved = float((base - want).abs().max()) / scale
            print("inject_daemon: %-11s %-6s %d positions: max|daemon - injected| / max = %.3g "
                  "(tol 1e-4; the adapter moves logits by %.3g)"
                  % (rope, label, len(PROMPT), err, moved))
            if got.shape != want.shape or not err <= 1e-4 or moved < 1e-2:
                print("inject_daemon: FAIL %s" % name, file=sys.stderr)
                ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
