"""Minimal safetensors reader and writer (no third-party package).

Layout: 8-byte little-endian header length n, n bytes of JSON header
(padded with spaces to a multiple of 8), then the raw little-endian data
buffer. The header maps tensor name -> {"dtype", "shape", "data_offsets":
[begin, end)} relative to the buffer, plus an optional "__metadata__" object
of string values. The writer emits F32 tensors contiguously in the order
given; the reader accepts F32, F16 and BF16 and returns float32 arrays.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

Tensors = Sequence[Tuple[str, np.ndarray]]

DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2}


def dumps(tensors: Tensors, metadata: Optional[Mapping[str, str]] = None) -> bytes:
    """tensors: list of (name, array); returns the file bytes (all F32)."""
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs, pos = [], 0
    for name, a in tensors:
        blob = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(a)),
                        "data_offsets": [pos, pos + len(blob)]}
        blobs.append(blob)
        pos += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def loads(data: Union[bytes, bytearray, memoryview]) -> Tuple[Dict[str, str], List[Tuple[str, np.ndarray]]]:
    """Returns (metadata dict, list of (name, float32 array)) in data order."""
    if len(data) < 8:
        raise ValueError("safetensors: file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError("safetensors: header length %d beyond the end of the file" % n)
    header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    buf = memoryview(data)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    out = []
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dtype, shape = info["dtype"], info["shape"]
        begin, end = info["data_offsets"]
        if dtype not in DTYPE_SIZE:
            raise ValueError("tensor %s: unsupported dtype %s" % (name, dtype))
        if end > len(buf) or end - begin != math.prod(shape) * DTYPE_SIZE[dtype]:
            raise ValueError("tensor %s: bad data_offsets [%d, %d]" % (name, begin, end))
        raw = buf[begin:end]
        if dtype == "F32":
            a = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif dtype == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        else:
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << np.uint32(16)).view(np.float32)
        out.append((name, a.reshape(shape)))
    return meta, out
