#!/usr/bin/python3
"""compare_logits.py - the project's logit agreement rule for e2e tests.

  compare_logits.py GOT.json REF.json [--tol 1e-4] [--what NAME]

Both files hold {"logits": [[vocab floats] per position]} (slorad logits
--positions all, model_ref.py, make_fixtures.py expected). They agree when
they have the same shape and, for every position, max|a - b| <= tol *
max|b|. Prints "agree NAME (worst ratio r)" and exits 0, or each failing
position and exits 1.
"""

import argparse
import json
import sys

import numpy as np


def load(path):
    with open(path) as f:
        return np.array(json.load(f)["logits"], dtype=np.float64)


def main(argv):
    ap = argparse.ArgumentParser(prog="compare_logits.py")
    ap.add_argument("got")
    ap.add_argument("ref")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--what", default="")
    args = ap.parse_args(argv)
    a, b = load(args.got), load(args.ref)
    if a.shape != b.shape:
        print("%s: shape %s != reference %s" % (args.what, a.shape, b.shape))
        return 1
    bad = 0
    worst = 0.0
    for i in range(b.shape[0]):
        err = np.max(np.abs(a[i] - b[i]))
        scale = np.max(np.abs(b[i]))
        worst = max(worst, err / (args.tol * scale))
        if not err <= args.tol * scale:
            print("%s: position %d: max|a-b| = %.3g > %g * max|b| = %.3g"
                  % (args.what, i, err, args.tol, args.tol * scale))
            bad += 1
    if bad:
        return 1
    print("agree %s (worst %.3f of the tolerance)" % (args.what, worst))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
