#!/usr/bin/python3
"""daemon_check.py - compare a running slorad with the torch trainer.

    daemon_check.py --url URL --name tenant/name --adapter A.safetensors
                    --model M.bin --tokenizer T.bin

POST /v1/logits (all positions) must match the torch model with the adapter
under the project's rule max|a - b| <= 1e-4 max|b|, and POST
/v1/completions at temperature 0 must equal the torch greedy completion
(on a prompt whose top-2 logit margin exceeds 1e-3 at every step, so that
summation order cannot flip a token). Prints what it checked; exit 1 on a
mismatch.
"""

import argparse
import json
import sys
import urllib.request

import torch

import superlora as sl

PROMPT = "Once upon a time, there was a little girl named"


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    for k in ("url", "name", "adapter", "model", "tokenizer"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--max-tokens", type=int, default=24)
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = sl.Transformer(a.model)
    tok = sl.Tokenizer(a.tokenizer, model.config.vocab)
    adapter = sl.load(a.adapter, model.config)
    ok = True

    tokens = tok.encode(PROMPT, bos=True)
    with torch.no_grad():
        deltas = adapter.deltas()
        want = model(torch.tensor([tokens]), deltas)[0].double()
        base = model(torch.tensor([tokens]))[0].double()
    got = post(a.url + "/v1/logits", {"model": a.name, "tokens": tokens, "positions": "all"})
    got = torch.tensor(got["logits"], dtype=torch.float64)
    err = float((got - want).abs().max()) / float(want.abs().max())
    moved = float((base - want).abs().max()) / float(want.abs().max())
    print("daemon_check: /v1/logits %d positions: max|daemon - torch| / max|torch| = %.3g "
          "(tol 1e-4; the adapter moves logits by %.3g)" % (len(tokens), err, moved))
    if got.shape != want.shape or not err <= 1e-4 or moved < 1e-3:
        print("daemon_check: FAIL logits", file=sys.stderr)
        ok = False

    out = model.generate([tokens], a.max_tokens, deltas)[0]
    with torch.no_grad():
        seq = tokens + out
        logits = model(torch.tensor([seq]), deltas)[0, len(tokens) - 1:]
        top2 = logits.topk(2, dim=-1).values
        margin = float((top2[:, 0] - top2[:, 1]).min())
    want_text = tok.decode(out, prev=tokens[-1])
    reply = post(a.url + "/v1/completions", {"model": a.name, "prompt": PROMPT,
                                             "max_tokens": a.max_tokens, "temperature": 0})
    got_text = reply["choices"][0]["text"]
    print("daemon_check: /v1/completions greedy %r, torch %r (min top-2 margin %.3g)"
          % (got_text, want_text, margin))
    if margin <= 1e-3:
        print("daemon_check: FAIL prompt has a near-tie; pick another prompt", file=sys.stderr)
        ok = False
    if got_text != want_text:
        print("daemon_check: FAIL completion differs", file=sys.stderr)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
