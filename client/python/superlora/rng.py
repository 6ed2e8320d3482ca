"""Deterministic randomness of SuperLoRA v1 (spec section 6) and the fixed
parts of the fastfood projection (section 5): sign vector b, Gaussian-like
diagonal gd, permutation p and the normaliser.

Integer arithmetic only, on numpy uint64/uint32 arrays with wrapping
multiplication, so the daemon and this package draw bit-identical values.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

GAMMA = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1

_u64 = np.uint64
_u32 = np.uint32


def mix64(z: int) -> int:
    """splitmix64 finaliser on a Python int (wrapping to 64 bits)."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def rnd(seed: int, tag: int, j: int) -> int:
    """rnd(seed, tag, j) of the spec, Python ints."""
    return mix64(mix64(seed ^ mix64(tag + GAMMA)) + (((j + 1) * GAMMA) & MASK64))


def rnd_range(seed: int, tag: int, n: int) -> np.ndarray:
    """[rnd(seed, tag, j) for j in range(n)] as a uint64 array."""
    base = _u64(mix64(seed ^ mix64(tag + GAMMA)))
    j = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = base + j * _u64(GAMMA)
        z = (z ^ (z >> _u64(30))) * _u64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _u64(27))) * _u64(0x94D049BB133111EB)
        return z ^ (z >> _u64(31))


def _fmix32(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = h ^ (h >> _u32(16))
        h = h * _u32(0x85EBCA6B)
        h = h ^ (h >> _u32(13))
        h = h * _u32(0xC2B2AE35)
        return h ^ (h >> _u32(16))


def perm(key: int, n: int) -> np.ndarray:
    """The bijection perm(key, n) of [0, n) as an int64 array p, p[i] = perm(i):
    a 4-round Feistel network on 2h bits with cycle walking."""
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    k = (n - 1).bit_length()
    h = max(1, (k + 1) // 2)
    mask = _u32((1 << h) - 1)
    round_keys = [_u32(rnd(key, 6, r) & 0xFFFFFFFF) for r in range(4)]

    def feistel(x: np.ndarray) -> np.ndarray:
        left = (x >> h).astype(np.uint32)
        right = x.astype(np.uint32) & mask
        for rk in round_keys:
            left, right = right, left ^ (_fmix32(right ^ rk) & mask)
        return (left.astype(np.int64) << h) | right.astype(np.int64)

    y = feistel(np.arange(n, dtype=np.int64))
    out = np.nonzero(y >= n)[0]
    while out.size:
        y[out] = feistel(y[out])
        out = out[y[out] >= n]
    return y


def fastfood_length(P: int, D: int) -> int:
    """L: the smallest power of two >= max(P, D)."""
    return 1 << (max(P, D) - 1).bit_length()


def fastfood_params(seed: int, g: int, P: int, D: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(b, gd, p, scale) of group g's projection: b and gd float64 (L,),
    p int64 (L,) and scale = 1 / (norm2(gd) sqrt(D)). Raises ValueError when
    norm2(gd) = 0 (the spec rejects such an adapter)."""
    L = fastfood_length(P, D)
    sg = rnd(seed, 1, g)
    b = np.where((rnd_range(sg, 2, L) >> _u64(63)) != 0, -1.0, 1.0)
    u = rnd_range(sg, 3, L)
    m16 = _u64(0xFFFF)
    s = (u & m16) + ((u >> _u64(16)) & m16) + ((u >> _u64(32)) & m16) + (u >> _u64(48))
    gd = (s.astype(np.int64) - 131070).astype(np.float64)
    norm = math.sqrt(float(np.dot(gd, gd)))
    if norm == 0.0:
        raise ValueError("g%d: projection norm2(gd) = 0" % g)
    p = perm(rnd(sg, 5, 0), L)
    return b, gd, p, 1.0 / (norm * math.sqrt(D))
