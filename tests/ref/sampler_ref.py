#!/usr/bin/python3
"""Independent reference for slorad's sampler (llama2.c run.c sample()).

float32 arithmetic through numpy, xorshift64* with Python integers:
logits / temperature, softmax (max-subtracted expf, divided by the sum),
one coin per draw = (random_u32 >> 8) / 2**24; top-p off: first index whose
running cdf exceeds the coin; top-p on: keep probs >= (1 - p) / (n - 1),
sort by (prob desc, id asc), cut after the cumulative mass exceeds p, sample
coin * cumulative within the kept mass. Top-k (slorad's extension) keeps the
k largest logits (ties: lower id) in that order before the softmax.
Seed 0 is replaced by 0x9E3779B97F4A7C15 (xorshift never leaves state 0).

Prints one C initializer row per case for tests/check_sampler.c (8-token
logits, then a 2000-token vocabulary with tied logits).
"""
import numpy as np

M64 = (1 << 64) - 1
f32 = np.float32


class Rng:
    def __init__(self, seed):
        self.s = seed if seed else 0x9E3779B97F4A7C15

    def u32(self):
        s = self.s
        s ^= s >> 12
        s ^= (s << 25) & M64
        s ^= s >> 27
        self.s = s
        return ((s * 0x2545F4914F6CDD1D) & M64) >> 32

    def f32(self):
        return f32(self.u32() >> 8) / f32(16777216.0)


def softmax(x):
    x = x - x.max()
    e = np.exp(x).astype(f32)
    s = f32(0)
    for v in e:
        s = f32(s + v)
    return (e / s).astype(f32)


def sample(logits, temp, top_p, top_k, rng):
    logits = np.array(logits, dtype=f32)
    if temp == 0:
        return int(np.argmax(logits))
    logits = (logits / f32(temp)).astype(f32)
    ids = list(range(len(logits)))
    if 0 < top_k < len(logits):
        ids = sorted(ids, key=lambda i: (-logits[i], i))[:top_k]
    probs = softmax(logits[ids])
    coin = rng.f32()
    if top_p <= 0 or top_p >= 1:
        cdf = f32(0)
        for p, i in zip(probs, ids):
            cdf = f32(cdf + p)
            if coin < cdf:
                return i
        return ids[-1]
    n = len(ids)
    if n == 1:
        return ids[0]
    cutoff = f32((f32(1) - f32(top_p)) / f32(n - 1))
    cand = [(p, i) for p, i in zip(probs, ids) if p >= cutoff]
    cand.sort(key=lambda c: (-c[0], c[1]))
    cum = f32(0)
    last = len(cand) - 1
    for k, (p, _) in enumerate(cand):
        cum = f32(cum + p)
        if cum > f32(top_p):
            last = k
            break
    r = f32(coin * cum)
    cdf = f32(0)
    for p, i in cand[:last + 1]:
        cdf = f32(cdf + p)
        if r < cdf:
            return i
    return cand[last][1]


LOGITS = [1.0, 2.0, 0.5, 2.0, -1.0, 0.0, 1.5, -3.0]
CASES = [  # temperature, top_p, top_k, seed
    (0.0, 1.0, 0, 1),
    (1.0, 1.0, 0, 42),
    (1.0, 1.0, 0, 0),
    (0.7, 0.9, 0, 7),
    (1.5, 0.5, 0, 99),
    (1.0, 1.0, 2, 3),
    (2.0, 0.6, 4, 5),
    (1.0, 1.0, 1, 11),
]
# vocab 2000 with every logit twice (ties broken by id):
# logit_i = ((i * 7919) % 1000) / 100 - 5 in float32
WIDE = [f32(f32((i * 7919) % 1000) / f32(100) - f32(5)) for i in range(2000)]
WIDE_CASES = [
    (1.0, 0.9, 0, 5),
    (0.7, 0.5, 0, 6),
    (1.0, 0.8, 100, 7),
    (1.5, 1.0, 300, 8),
    (0.2, 0.99, 0, 9),
]
if __name__ == "__main__":
    for t, p, k, seed in CASES:
        rng = Rng(seed)
        draws = [sample(LOGITS, t, p, k, rng) for _ in range(24)]
        print("    {%.1ff, %.1ff, %d, %du, {%s}}," % (t, p, k, seed, ", ".join(map(str, draws))))
    print("wide:")
    for t, p, k, seed in WIDE_CASES:
        rng = Rng(seed)
        draws = [sample(WIDE, t, p, k, rng) for _ in range(12)]
        print("    {%.2ff, %.2ff, %d, %du, {%s}}," % (t, p, k, seed, ", ".join(map(str, draws))))
