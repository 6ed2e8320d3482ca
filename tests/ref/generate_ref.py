#!/usr/bin/python3
"""generate_ref.py - independent reference of a whole `slorad generate` run.

Composes the other references: model_ref.py (numpy forward, float64, cast
to float32 logits), sampler_ref.py (run.c sampling in float32 with the same
xorshift coins) and tok_ref.py (run.c encode/decode). The rules of
issue 2/5: BOS + prompt; generation ends when the model emits BOS or EOS
(not rendered), after max_tokens, at seq_len, or at the first stop string
(text cut before it); ill-formed UTF-8 is replaced by U+FFFD per maximal
subpart (Python's errors="replace" does exactly that).

usage: generate_ref.py MODEL.bin TOK.bin PROMPT N TEMPERATURE TOP_P TOP_K SEED [STOP...]
prints the continuation text (UTF-8) without a trailing newline.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_ref  # noqa: E402
import sampler_ref  # noqa: E402
import tok_ref  # noqa: E402


def generate(model, pieces, scores, prompt, n, temp, top_p, top_k, seed, stops):
    tokens = tok_ref.encode(pieces, scores, prompt)
    rng = sampler_ref.Rng(seed)
    n_prompt = len(tokens)
    while len(tokens) - n_prompt < n and len(tokens) < model.seq_len:
        logits = model.forward(tokens)[-1].astype(np.float32)
        nxt = sampler_ref.sample(list(logits), temp, top_p, top_k, rng)
        tokens.append(nxt)
        if nxt in (1, 2):
            break
        text = tok_ref.decode(pieces, tokens[n_prompt - 1:]).decode("utf-8", "replace")
        if any(s in text for s in stops):
            break
    gen = [t for t in tokens[n_prompt:] if t not in (1, 2)]
    text = tok_ref.decode(pieces, [tokens[n_prompt - 1]] + gen).decode("utf-8", "replace")
    cut = min([text.find(s) for s in stops if s in text], default=len(text))
    return text[:cut]


def main(argv):
    model_path, tok_path, prompt, n, temp, top_p, top_k, seed = argv[:8]
    model = model_ref.Model(model_path)
    pieces, scores = tok_ref.load(tok_path)
    out = generate(model, pieces, scores, prompt, int(n), float(temp), float(top_p), int(top_k),
                   int(seed), argv[8:])
    sys.stdout.buffer.write(out.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
