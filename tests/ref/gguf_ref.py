#!/usr/bin/python3
"""gguf_ref.py - a minimal, independent GGUF (v2/v3) reader for the numpy
references: key/values and F32/F16/BF16 tensors, written from the GGUF
format description (ggml's docs/gguf.md), not from slorad's code.

read(path) -> (kv: dict key -> value, tensors: dict name -> np.ndarray)
types(path) -> dict name -> ggml type id
Tensors come back as float64 arrays of shape (ne[n-1], ..., ne[0]), i.e.
row-major (rows, cols) for matrices.
"""
import struct

import numpy as np

# value types
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class _Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)[0]
        self.o += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.o:self.o + n].decode("utf-8", errors="surrogateescape")
        self.o += n
        return s

    def value(self, t):
        if t == _STRING:
            return self.string()
        if t == _ARRAY:
            et, n = self.take("<I"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        return self.take(_SCALARS[t])


def types(path):
    return {name: ttype for name, _, ttype, _ in _header(path)[2]}


def _header(path):
    with open(path, "rb") as f:
        data = f.read()
    r = _Reader(data)
    if data[:4] != b"GGUF":
        raise ValueError("%s: not a GGUF file" % path)
    r.o = 4
    version = r.take("<I")
    if version not in (2, 3):
        raise ValueError("%s: GGUF version %d" % (path, version))
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    kv = {}
    for _ in range(n_kv):
        k = r.string()
        kv[k] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        ttype, off = r.take("<I"), r.take("<Q")
        infos.append((name, ne, ttype, off))
    return data, kv, infos, r.o


def read(path):
    data, kv, infos, end = _header(path)
    align = kv.get("general.alignment", 32)
    start = (end + align - 1) // align * align
    tensors = {}
    for name, ne, ttype, off in infos:
        n = int(np.prod(ne))
        at = start + off
        if ttype == 0:
            a = np.frombuffer(data, "<f4", n, at).astype(np.float64)
        elif ttype == 1:
            a = np.frombuffer(data, "<f2", n, at).astype(np.float64)
        elif ttype == 30:
            u = np.frombuffer(data, "<u2", n, at).astype(np.uint32) << 16
            a = u.view(np.float32).astype(np.float64)
        else:
            raise ValueError("%s: tensor %s has type %d (F32/F16/BF16 only)" % (path, name, ttype))
        tensors[name] = a.reshape(list(reversed(ne)))
    return kv, tensors
