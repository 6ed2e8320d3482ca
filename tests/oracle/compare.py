#!/usr/bin/python3
"""compare.py - slorad's logits against llama.cpp's log-probabilities.

llama.cpp (node-llama-cpp) exposes only post-softmax probabilities, so both
sides are compared as log-probabilities: ours = log_softmax(our logits).
Agreement rule (project-wide, on log-probs): max|a - b| <= tol * max|b| over
the entries llama.cpp reports as finite, for every position; and the same
greedy argmax at every position where llama.cpp's top-2 log-prob margin
exceeds `margin` of that position's log-prob range (finite entries), with
at least `min_argmax` such positions.

  compare.py OURS.json ORACLE.json TOL [MARGIN] [MIN_ARGMAX]
OURS.json is `slorad logits --positions all` output; ORACLE.json is
`llama.mjs logprobs`. Prints the measured difference; exits 1 on failure.
"""
import json
import sys

import numpy as np


def log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def main(argv):
    ours = np.array(json.load(open(argv[0]))["logits"], dtype=np.float64)
    ref = np.array(json.load(open(argv[1]))["logprobs"], dtype=np.float64)
    tol = float(argv[2])
    margin = float(argv[3]) if len(argv) > 3 else 1e-2
    min_argmax = int(argv[4]) if len(argv) > 4 else 1
    if ours.shape != ref.shape:
        print("shape %s vs %s" % (ours.shape, ref.shape))
        return 1
    a = log_softmax(ours)
    finite = ref > -1e29
    d = np.abs(np.where(finite, a - ref, 0.0)).max()
    scale = np.abs(np.where(finite, ref, 0.0)).max()
    checked = 0
    bad = []
    for p in range(ref.shape[0]):
        row = np.where(finite[p], ref[p], -np.inf)
        top = np.argsort(row)[::-1][:2]
        rng = row[top[0]] - row[finite[p]].min()
        if row[top[0]] - row[top[1]] > margin * rng:
            checked += 1
            if int(np.argmax(a[p])) != int(top[0]):
                bad.append(p)
    print("max|a-b|/max|b| = %.3g (tol %g); argmax equal at %d/%d decisive positions"
          % (d / scale, tol, checked - len(bad), checked))
    if d > tol * scale or bad or checked < min_argmax:
        print("FAIL: diff %.3g, argmax differs at %s, %d decisive positions (need %d)"
              % (d / scale, bad, checked, min_argmax))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
