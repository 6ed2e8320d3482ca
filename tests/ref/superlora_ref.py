#!/usr/bin/python3
"""superlora_ref.py - independent numpy reference for SuperLoRA v1 adapters.

Written from docs/superlora-v1.md only (never from the C sources): it is the
golden source the C engine is judged against (spec section 9 agreement rule).
Run with /usr/bin/python3 (Debian python3-numpy); no other dependencies.

Module API (import superlora_ref as sl):
    sl.read_model_shape(path)            llama2.c .bin header -> ModelShape
    sl.parse_adapter(data, shape, max_params=10_000_000) -> Adapter
    sl.generate(adapter)                 -> list of (layer, module, dW float32 (out, in))
    sl.rnd(seed, tag, j) / sl.rnd_array  spec section 6, uint64 wrapping
    sl.perm_array(key, n, idx=None)      spec section 6, vectorised Feistel + cycle walking
    sl.fwht(v), sl.fastfood(x, D, seed, g)   spec section 5
    sl.read_safetensors(data) / sl.write_safetensors(path_or_None, tensors, metadata)
    sl.build_adapter(config, tensors, ...) -> bytes of a safetensors adapter

CLI:
    superlora_ref.py deltas --model M.bin ADAPTER -o out.safetensors
        F32 tensors layers.{l}.{module} of shape (out, in), target order.
    superlora_ref.py check ADAPTER [--model M.bin] [--max-params N]
        prints "ok" (exit 0) or the error message (exit 1).
    superlora_ref.py compare GOT.safetensors REF.safetensors
        spec section 9 agreement of two deltas files: prints "agree" (exit 0)
        or each violation (exit 1).

Every rejection raises AdapterError (a ValueError) whose message names the
key, tensor or byte offset.

Precision: factors are converted to float32 as stored (F16/BF16 widened),
then everything (Tucker/CP, Kronecker, FWHT, 1/(norm2(gd) sqrt(D)), alpha)
is computed in float64 and the final dW is rounded once to float32. The C
engine computes in float32; agreement is by section 9 (1e-5 relative).

Ambiguities in the spec and how this reference reads them (most literal):
 A1 `norm2(gd)` is the Euclidean norm sqrt(sum_j gd_j^2) (the reading under
    which "columns have norm close to 1" holds); summed in float64.
 A2 `alpha` may be any finite JSON number (integer or real; booleans are
    rejected). Finiteness is checked on the parsed double; a value finite as
    a double but beyond float32 range yields non-finite dW and is rejected
    there ("non-finite dW").
 A3 `base.vocab_size` is compared by absolute value on both sides
    (|adapter| == |model|), as "comparing |vocab_size|" literally says.
 A4 `version` must be the JSON integer 1: `1.0` (a JSON real) and `true`
    are rejected. Likewise seeds, groups, layers and base values must be
    JSON integers (no reals, no booleans).
 A5 "Unknown keys at any level, null values and duplicate keys" is applied
    to the superlora config (all levels). Duplicate keys are also rejected
    in the safetensors header JSON. Tensor entries in the safetensors
    header must have exactly dtype, shape, data_offsets (safetensors' own
    schema); other `__metadata__` keys are ignored whatever their type,
    but `__metadata__` itself must be an object.
 A6 JSON non-standard constants (NaN, Infinity) are not JSON and are
    rejected as a parse error; a number overflowing a double (1e400) is
    "non-finite alpha".
 A7 Tensor structure: the set of k of a group must be 0..K-1 and the set
    of m of each k must be 0..M_k-1 (else "missing tensor"); then differing
    M_k is "Kronecker factors of different order". A tensor whose group is
    >= G is "unexpected tensor". A core is optional per Kronecker factor
    (one factor may be Tucker and the next CP).
 A8 Header length exactly 16 MiB is accepted; "over 16 MiB" rejects
    > 16777216. The header may be padded with trailing spaces (safetensors
    convention).
 A9 Parameter count over the maximum means count > max (max itself is ok).
 A10 `groups = G` integer requires 1 <= G <= N; `groups = "layer"` with
    order "module" (or "module" with order "layer") is rejected.
 A11 Without a model, the shape is taken from `base` (like inspect).
 A12 perm(key, n) for n >= 2: the Feistel network works on 2h bits, which
    is k+1 bits when k is odd; cycle walking covers that.
 A13 Dtype names are case-sensitive ("F32", "F16", "BF16" only).
 A14 "A non-finite entry in dW (float32 overflow)" is checked once, on the
    final float32 dW; an implementation computing in float32 may overflow
    in an intermediate (Tucker product, FWHT) where this reference does
    not. Only adapters far from that edge are used as golden cases.
 A15 Checks run in this order: framing and header, metadata, config keys,
    base, modules, layers, order, groups, shuffle, projection, alpha,
    tensor names, parameter count, per-group structure and shapes, sanity
    bound and P_g >= N_g, norm2(gd), tensor values, generated dW. The spec
    fixes no order; each crafted bad adapter breaks exactly one rule.
"""

import json
import math
import re
import struct
import sys

import numpy as np

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
MAX_HEADER = 16 * 1024 * 1024
MAX_SEED = (1 << 53) - 1
DEFAULT_MAX_PARAMS = 10_000_000

MODULES = ["wq", "wk", "wv", "wo", "w1", "w2", "w3"]
ALIASES = {"q_proj": "wq", "k_proj": "wk", "v_proj": "wv", "o_proj": "wo",
           "gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}
BASE_KEYS = ["dim", "n_layers", "n_heads", "n_kv_heads", "hidden_dim", "vocab_size"]
CONFIG_KEYS = {"version", "base", "modules", "layers", "order", "groups",
               "shuffle", "projection", "alpha"}
DTYPES = {"F32": 4, "F16": 2, "BF16": 2}
NUM = r"(0|[1-9][0-9]*)"
TENSOR_RE = re.compile(r"^g" + NUM + r"\.k" + NUM + r"\.(?:f" + NUM + r"|(core))$")


class AdapterError(ValueError):
    pass


def fail(msg):
    raise AdapterError(msg)


# ---------------------------------------------------------------- model shape

class ModelShape:
    """llama2.c Config: dim, hidden_dim, n_layers, n_heads, n_kv_heads,
    vocab_size (raw, negative = unshared classifier), seq_len."""

    def __init__(self, dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len=0):
        self.dim = dim
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.vocab_size = vocab_size
        self.seq_len = seq_len

    @property
    def kv_dim(self):
        return self.dim // self.n_heads * self.n_kv_heads

    def module_shape(self, module):
        d, h, kv = self.dim, self.hidden_dim, self.kv_dim
        return {"wq": (d, d), "wk": (kv, d), "wv": (kv, d), "wo": (d, d),
                "w1": (h, d), "w2": (d, h), "w3": (h, d)}[module]


def read_model_shape(path):
    with open(path, "rb") as f:
        head = f.read(28)
    if len(head) < 28:
        fail("model %s: shorter than the 28-byte header" % path)
    dim, hidden, nl, nh, nkv, vocab, seq = struct.unpack("<7i", head)
    return ModelShape(dim, hidden, nl, nh, nkv, vocab, seq)


# ---------------------------------------------------------------- randomness

def mix64(z):
    z &= M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def rnd(seed, tag, j):
    inner = mix64(seed ^ mix64(tag + GAMMA))
    return mix64(inner + (((j + 1) * GAMMA) & M64))


def fmix32(h):
    h &= 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


_U = np.uint64


def _mix64_array(z):
    z = z ^ (z >> _U(30))
    z = z * _U(0xBF58476D1CE4E5B9)
    z = z ^ (z >> _U(27))
    z = z * _U(0x94D049BB133111EB)
    return z ^ (z >> _U(31))


def rnd_array(seed, tag, j):
    """rnd(seed, tag, j) for a uint64 array j (wrapping arithmetic)."""
    inner = _U(mix64(seed ^ mix64(tag + GAMMA)))
    j = np.asarray(j, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return _mix64_array(inner + (j + _U(1)) * _U(GAMMA))


def _fmix32_array(h):
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def perm_params(key, n):
    k = (n - 1).bit_length()  # smallest k with 2^k >= n (n >= 2)
    h = max(1, (k + 1) // 2)
    return h, (1 << h) - 1, [rnd(key, 6, r) & 0xFFFFFFFF for r in range(4)]


def perm_array(key, n, idx=None):
    """perm(key, n)(i) for i in idx (default all of [0, n)), as uint64."""
    if idx is None:
        idx = np.arange(n, dtype=np.uint64)
    idx = np.asarray(idx, dtype=np.uint64)
    if n == 1:
        return np.zeros_like(idx)
    h, mask, rks = perm_params(key, n)
    sh, m32 = _U(h), np.uint32(mask)
    rk32 = [np.uint32(r) for r in rks]

    def feistel(x):
        left = (x >> sh).astype(np.uint32)
        right = (x & _U(mask)).astype(np.uint32)
        for rk in rk32:
            left, right = right, left ^ (_fmix32_array(right ^ rk) & m32)
        return (left.astype(np.uint64) << sh) | right.astype(np.uint64)

    with np.errstate(over="ignore"):
        y = feistel(idx)
        bad = np.nonzero(y >= _U(n))[0]
        while bad.size:
            y[bad] = feistel(y[bad])
            bad = bad[y[bad] >= _U(n)]
    return y


def perm(key, n, i):
    """Scalar perm, plain Python ints (a second, independent path)."""
    if n == 1:
        return 0
    h, mask, rks = perm_params(key, n)

    def feistel(x):
        left, right = x >> h, x & mask
        for rk in rks:
            left, right = right, left ^ (fmix32(right ^ rk) & mask)
        return (left << h) | right

    y = feistel(i)
    while y >= n:
        y = feistel(y)
    return y


# ---------------------------------------------------------------- fastfood

def fwht(v):
    """Unnormalized Walsh-Hadamard transform, natural (Sylvester) order;
    butterflies (a, b) -> (a + b, a - b) for strides 1, 2, 4, ... Returns a
    new float64 array."""
    v = np.array(v, dtype=np.float64)
    n = v.size
    assert n & (n - 1) == 0
    h = 1
    while h < n:
        w = v.reshape(-1, 2, h)
        a = w[:, 0, :].copy()
        b = w[:, 1, :]
        w[:, 0, :] = a + b
        w[:, 1, :] = a - b
        h *= 2
    return v


def fastfood_gd(sg, L):
    u = rnd_array(sg, 3, np.arange(L, dtype=np.uint64))
    m16 = _U(0xFFFF)
    s = (u & m16) + ((u >> _U(16)) & m16) + ((u >> _U(32)) & m16) + (u >> _U(48))
    return s.astype(np.int64) - 131070


def fastfood_L(P, D):
    return 1 << (max(P, D) - 1).bit_length()


def fastfood_norm(seed, g, L):
    """norm2(gd) (Euclidean, float64) of group g."""
    gd = fastfood_gd(rnd(seed, 1, g), L).astype(np.float64)
    return math.sqrt(float(np.sum(gd * gd)))


def fastfood(x, D, seed, g):
    """F_g: code vector x (length P) -> delta_g (length D), float64."""
    P = x.size
    L = fastfood_L(P, D)
    sg = rnd(seed, 1, g)
    j = np.arange(L, dtype=np.uint64)
    b = np.where((rnd_array(sg, 2, j) >> _U(63)) != 0, -1.0, 1.0)
    gd = fastfood_gd(sg, L).astype(np.float64)
    p = perm_array(rnd(sg, 5, 0), L).astype(np.int64)
    norm = math.sqrt(float(np.sum(gd * gd)))
    if norm == 0.0:
        fail("g%d: projection norm2(gd) = 0" % g)
    v = np.zeros(L, dtype=np.float64)
    v[:P] = x
    v = fwht(b * v)
    v = fwht(gd * v[p])
    return v[:D] / (norm * math.sqrt(D))


# ---------------------------------------------------------------- safetensors

def _dup_hook(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            fail("duplicate key '%s'" % k)
        out[k] = v
    return out


def _bad_constant(name):
    fail("invalid JSON constant %s" % name)


def json_loads(text, what):
    try:
        return json.loads(text, object_pairs_hook=_dup_hook, parse_constant=_bad_constant)
    except AdapterError as e:
        fail("%s: %s" % (what, e))
    except ValueError as e:
        fail("%s: not valid JSON (%s)" % (what, e))


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def read_safetensors(data):
    """Parse and validate a safetensors buffer. Returns (metadata dict or
    None, list of (name, float32 ndarray) in header order)."""
    if len(data) < 8:
        fail("file shorter than 8 bytes (%d)" % len(data))
    hlen = struct.unpack("<Q", data[:8])[0]
    if hlen > MAX_HEADER:
        fail("header length %d over the 16 MiB limit" % hlen)
    if 8 + hlen > len(data):
        fail("header length %d beyond the end of the file (%d bytes)" % (hlen, len(data)))
    try:
        text = bytes(data[8:8 + hlen]).decode("utf-8")
    except UnicodeDecodeError as e:
        fail("header: not UTF-8 (byte offset %d)" % (8 + e.start))
    header = json_loads(text, "header")
    if not isinstance(header, dict):
        fail("header: not a JSON object")
    buf = memoryview(data)[8 + hlen:]
    nbuf = len(buf)
    meta = header.get("__metadata__")
    if "__metadata__" in header and not isinstance(meta, dict):
        fail("header: __metadata__ is not an object")
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            fail("tensor %s: entry is not an object" % name)
        for key in info:
            if key not in ("dtype", "shape", "data_offsets"):
                fail("tensor %s: unknown key '%s'" % (name, key))
        for key in ("dtype", "shape", "data_offsets"):
            if key not in info:
                fail("tensor %s: missing '%s'" % (name, key))
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPES:
            fail("tensor %s: unsupported dtype %r" % (name, dtype))
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            fail("tensor %s: shape is not a list of non-negative integers" % name)
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(_is_int(o) and o >= 0 for o in offs)):
            fail("tensor %s: data_offsets is not two non-negative integers" % name)
        begin, end = offs
        if begin > end or end > nbuf:
            fail("tensor %s: data_offsets [%d, %d] out of range (data is %d bytes)"
                 % (name, begin, end, nbuf))
        numel = math.prod(shape)
        if end - begin != numel * DTYPES[dtype]:
            fail("tensor %s: data_offsets [%d, %d] do not match shape %s x %s"
                 % (name, begin, end, shape, dtype))
        entries.append((name, dtype, shape, begin, end))
    pos = 0
    for name, dtype, shape, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin < pos:
            fail("tensor %s: data_offsets [%d, %d] overlap another tensor" % (name, begin, end))
        if begin > pos:
            fail("tensor %s: gap in the data buffer at byte %d" % (name, pos))
        pos = end
    if pos != nbuf:
        fail("trailing bytes in the data buffer after byte %d (data is %d bytes)" % (pos, nbuf))
    return meta, entries, buf


def decode_tensor(buf, dtype, shape, begin, end):
    raw = bytes(buf[begin:end])
    if dtype == "F32":
        a = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    elif dtype == "F16":
        a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    else:
        u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << np.uint32(16)
        a = u.view(np.float32)
    return a.reshape(shape)


def encode_tensor(a, dtype):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    if dtype == "F16":
        with np.errstate(over="ignore"):
            return a.astype("<f2").tobytes()
    if dtype == "BF16":
        # round to nearest even on the upper 16 bits
        u = a.view(np.uint32).astype(np.uint64)
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        return u.astype("<u2").tobytes()
    raise ValueError("dtype %s" % dtype)


def to_dtype(a, dtype):
    """The float32 values a tensor holds after a round trip through dtype."""
    return decode_tensor(memoryview(encode_tensor(a, dtype)), dtype, list(np.shape(a)),
                         0, np.size(a) * DTYPES[dtype])


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, array, dtype), written in that order with
    contiguous data_offsets. Returns the bytes; writes them if path."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs, pos = [], 0
    for name, a, dtype in tensors:
        blob = encode_tensor(a, dtype)
        header[name] = {"dtype": dtype, "shape": list(np.shape(a)),
                        "data_offsets": [pos, pos + len(blob)]}
        blobs.append(blob)
        pos += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    out = struct.pack("<Q", len(text)) + text + b"".join(blobs)
    if path:
        with open(path, "wb") as f:
            f.write(out)
    return out


# ---------------------------------------------------------------- config

def _check_no_null(v, path):
    if v is None:
        fail("%s: null value" % path)
    if isinstance(v, dict):
        for k, x in v.items():
            _check_no_null(x, "%s.%s" % (path, k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _check_no_null(x, "%s[%d]" % (path, i))


def _seed(obj, path):
    if not isinstance(obj, dict):
        fail("%s: not an object" % path)
    if "seed" not in obj:
        fail("%s: missing 'seed'" % path)
    s = obj["seed"]
    if not _is_int(s) or s < 0 or s > MAX_SEED:
        fail("%s.seed: not an integer in [0, 2^53 - 1]" % path)
    return s


def parse_config(text, shape):
    """Validate the superlora JSON config against the model shape (None:
    use base). Returns a dict of normalized settings."""
    cfg = json_loads(text, "superlora")
    if not isinstance(cfg, dict):
        fail("superlora: not a JSON object")
    _check_no_null(cfg, "superlora")
    for k in cfg:
        if k not in CONFIG_KEYS:
            fail("superlora: unknown key '%s'" % k)
    for k in ("version", "base", "modules"):
        if k not in cfg:
            fail("superlora: missing '%s'" % k)
    v = cfg["version"]
    if not _is_int(v) or v != 1:
        fail("superlora.version: unsupported version %s (want the integer 1)" % json.dumps(v))
    base = cfg["base"]
    if not isinstance(base, dict):
        fail("superlora.base: not an object")
    for k in base:
        if k not in BASE_KEYS:
            fail("superlora.base: unknown key '%s'" % k)
    for k in BASE_KEYS:
        if k not in base:
            fail("superlora.base: missing '%s'" % k)
        if not _is_int(base[k]):
            fail("superlora.base.%s: not an integer" % k)
    if shape is None:
        for k in BASE_KEYS:
            if k != "vocab_size" and base[k] <= 0:
                fail("superlora.base.%s: not positive" % k)
        if base["dim"] % base["n_heads"] or base["n_heads"] % base["n_kv_heads"]:
            fail("superlora.base: dim, n_heads, n_kv_heads inconsistent")
        shape = ModelShape(base["dim"], base["hidden_dim"], base["n_layers"], base["n_heads"],
                           base["n_kv_heads"], base["vocab_size"])
    for k in BASE_KEYS:
        want = getattr(shape, k)
        got = base[k]
        if k == "vocab_size":
            want, got = abs(want), abs(got)
        if got != want:
            fail("superlora.base.%s = %d does not match the model's %d" % (k, base[k], want))

    mods = cfg["modules"]
    if not isinstance(mods, list) or not mods:
        fail("superlora.modules: not a non-empty list")
    modules = []
    for i, m in enumerate(mods):
        if not isinstance(m, str):
            fail("superlora.modules[%d]: not a string" % i)
        name = ALIASES.get(m, m)
        if name not in MODULES:
            fail("superlora.modules[%d]: unknown module '%s'" % (i, m))
        if name in modules:
            fail("superlora.modules[%d]: module '%s' repeated" % (i, m))
        modules.append(name)

    if "layers" in cfg:
        lay = cfg["layers"]
        if not isinstance(lay, list) or not lay:
            fail("superlora.layers: not a non-empty list")
        for i, l in enumerate(lay):
            if not _is_int(l):
                fail("superlora.layers[%d]: not an integer" % i)
            if l < 0 or l >= shape.n_layers:
                fail("superlora.layers[%d]: layer %d out of range [0, %d)"
                     % (i, l, shape.n_layers))
            if i and l <= lay[i - 1]:
                fail("superlora.layers[%d]: not strictly ascending (repeated or unsorted)" % i)
        layers = list(lay)
    else:
        layers = list(range(shape.n_layers))

    order = cfg.get("order", "layer")
    if order not in ("layer", "module"):
        fail("superlora.order: must be \"layer\" or \"module\"")

    if order == "layer":
        targets = [(l, m) for l in layers for m in modules]
    else:
        targets = [(l, m) for m in modules for l in layers]
    sizes = [shape.module_shape(m)[0] * shape.module_shape(m)[1] for _, m in targets]
    N = sum(sizes)

    groups = cfg.get("groups", "matrix")
    if _is_int(groups):
        if groups < 1 or groups > N:
            fail("superlora.groups: %d not in [1, N = %d]" % (groups, N))
        G = groups
        group_len = [N // G + (1 if g < N % G else 0) for g in range(G)]
    elif groups == "matrix":
        group_len = list(sizes)
    elif groups == "layer":
        if order != "layer":
            fail("superlora.groups: \"layer\" requires order \"layer\"")
        group_len = [sum(s for (l, _), s in zip(targets, sizes) if l == L) for L in layers]
    elif groups == "module":
        if order != "module":
            fail("superlora.groups: \"module\" requires order \"module\"")
        group_len = [sum(s for (_, m), s in zip(targets, sizes) if m == M) for M in modules]
    else:
        fail("superlora.groups: must be an integer or \"matrix\", \"layer\", \"module\"")

    shuffle = None
    if "shuffle" in cfg:
        sh = cfg["shuffle"]
        if isinstance(sh, dict):
            for k in sh:
                if k != "seed":
                    fail("superlora.shuffle: unknown key '%s'" % k)
        shuffle = _seed(sh, "superlora.shuffle")

    projection = None
    if "projection" in cfg:
        pr = cfg["projection"]
        if not isinstance(pr, dict):
            fail("superlora.projection: not an object")
        for k in pr:
            if k not in ("kind", "seed"):
                fail("superlora.projection: unknown key '%s'" % k)
        if "kind" not in pr:
            fail("superlora.projection: missing 'kind'")
        if pr["kind"] != "fastfood":
            fail("superlora.projection.kind: unsupported kind %s" % json.dumps(pr["kind"]))
        projection = _seed(pr, "superlora.projection")

    alpha = cfg.get("alpha", 1.0)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        fail("superlora.alpha: not a number")
    try:
        alpha = float(alpha)
    except OverflowError:
        alpha = math.inf
    if not math.isfinite(alpha):
        fail("superlora.alpha: not finite")

    return {"shape": shape, "modules": modules, "layers": layers, "order": order,
            "targets": targets, "sizes": sizes, "N": N, "group_len": group_len,
            "shuffle": shuffle, "projection": projection, "alpha": alpha}


# ---------------------------------------------------------------- adapter

class Adapter:
    """A validated adapter: cfg (parse_config dict) and groups, a list of
    lists of Kronecker factors {"A": [arrays (n, r)], "core": array or None}."""

    def __init__(self, cfg, groups, n_params):
        self.cfg = cfg
        self.groups = groups
        self.n_params = n_params


def parse_adapter(data, shape=None, max_params=DEFAULT_MAX_PARAMS):
    meta, entries, buf = read_safetensors(data)
    if meta is None or "superlora" not in meta:
        fail("missing __metadata__.superlora")
    if not isinstance(meta["superlora"], str):
        fail("__metadata__.superlora: not a string")
    cfg = parse_config(meta["superlora"], shape)
    G = len(cfg["group_len"])

    # tensor names -> structure
    facs, cores, info = {}, {}, {}
    for name, dtype, tshape, begin, end in entries:
        mt = TENSOR_RE.match(name)
        if not mt:
            fail("tensor %s: unexpected name (want g{g}.k{k}.f{m} or g{g}.k{k}.core)" % name)
        g, k = int(mt.group(1)), int(mt.group(2))
        if g >= G:
            fail("tensor %s: unexpected tensor, the adapter has %d groups" % (name, G))
        info[name] = (dtype, tshape, begin, end)
        if mt.group(4):
            cores[(g, k)] = name
        else:
            facs.setdefault(g, {}).setdefault(k, {})[int(mt.group(3))] = name
    n_params = sum(math.prod(e[2]) for e in entries)
    if n_params > max_params:
        fail("parameter count %d over the maximum %d" % (n_params, max_params))

    groups_meta = []
    for g in range(G):
        ks = facs.get(g, {})
        K = max(ks) + 1 if ks else 1
        orders = []
        for k in range(K):
            if k not in ks:
                fail("missing tensor g%d.k%d.f0" % (g, k))
            ms = ks[k]
            for m in range(max(ms) + 1):
                if m not in ms:
                    fail("missing tensor g%d.k%d.f%d" % (g, k, m))
            orders.append(len(ms))
        for (cg, ck), cname in cores.items():
            if cg == g and ck not in ks:
                fail("tensor %s: unexpected core, g%d.k%d has no factor matrices" % (cname, g, ck))
        if len(set(orders)) != 1:
            fail("g%d: Kronecker factors of different order (%s)"
                 % (g, ", ".join("k%d: M=%d" % (k, o) for k, o in enumerate(orders))))
        M = orders[0]
        flist = []
        for k in range(K):
            ranks, ns = [], []
            for m in range(M):
                name = ks[k][m]
                ts = info[name][1]
                if len(ts) != 2:
                    fail("tensor %s: factor is not 2-D (shape %s)" % (name, ts))
                if ts[0] < 1 or ts[1] < 1:
                    fail("tensor %s: factor has a zero dimension (shape %s)" % (name, ts))
                ns.append(ts[0])
                ranks.append(ts[1])
            cname = cores.get((g, k))
            if cname is not None:
                cs = info[cname][1]
                if list(cs) != ranks:
                    fail("tensor %s: core shape %s does not match the factor ranks %s"
                         % (cname, cs, ranks))
            elif len(set(ranks)) != 1:
                fail("g%d.k%d: CP factors (no core) with unequal ranks %s" % (g, k, ranks))
            flist.append({"names": [ks[k][m] for m in range(M)], "core": cname, "n": ns})
        n_modes = [math.prod(f["n"][m] for f in flist) for m in range(M)]
        P = math.prod(n_modes)
        Ng = cfg["group_len"][g]
        if P > max(2 * Ng, Ng + 65536):
            fail("g%d: code length P_g = %d over the sanity bound max(2 N_g, N_g + 65536)"
                 " with N_g = %d" % (g, P, Ng))
        if cfg["projection"] is None and P < Ng:
            fail("g%d: code length P_g = %d < N_g = %d without projection" % (g, P, Ng))
        groups_meta.append((flist, P))

    if cfg["projection"] is not None:
        for g, (_, P) in enumerate(groups_meta):
            if fastfood_norm(cfg["projection"], g, fastfood_L(P, cfg["group_len"][g])) == 0.0:
                fail("g%d: projection norm2(gd) = 0" % g)

    groups = []
    for flist, _ in groups_meta:
        fl = []
        for f in flist:
            arrs = []
            for name in f["names"] + ([f["core"]] if f["core"] else []):
                a = decode_tensor(buf, *info[name])
                if not np.all(np.isfinite(a)):
                    bad = int(np.flatnonzero(~np.isfinite(a.ravel()))[0])
                    fail("tensor %s: NaN or Inf at element %d" % (name, bad))
                arrs.append(a)
            M = len(f["names"])
            fl.append({"A": arrs[:M], "core": arrs[M] if f["core"] else None})
        groups.append(fl)
    return Adapter(cfg, groups, n_params)


# ---------------------------------------------------------------- generation

def factor_tensor(f):
    """T_k (float64) of one Kronecker factor: Tucker if a core, else CP."""
    A = [a.astype(np.float64) for a in f["A"]]
    if f["core"] is not None:
        T = f["core"].astype(np.float64)
        for m, a in enumerate(A):
            # mode-m product: contract core axis m with A[:, j]
            T = np.moveaxis(np.tensordot(a, T, axes=([1], [m])), 0, m)
        return T
    # CP: carry the shared rank index j as the last axis, sum it at the end
    T = A[0]
    for a in A[1:]:
        T = T[..., None, :] * a.reshape((1,) * (T.ndim - 1) + a.shape)
    return T.sum(axis=-1)


def group_code(fl):
    """t_g = vec(T_0 kron ... kron T_{K-1}) (float64, row-major)."""
    T = factor_tensor(fl[0])
    for f in fl[1:]:
        T = np.kron(T, factor_tensor(f))
    return T.ravel()


def generate_all(ad):
    """dW_all (float64, length N, alpha applied) before the float32 cast."""
    cfg = ad.cfg
    parts = []
    for g, fl in enumerate(ad.groups):
        t = group_code(fl)
        Ng = cfg["group_len"][g]
        if cfg["projection"] is None:
            parts.append(t[:Ng])
        else:
            parts.append(fastfood(t, Ng, cfg["projection"], g))
    delta = np.concatenate(parts)
    if cfg["shuffle"] is not None:
        N = cfg["N"]
        pi = perm_array(rnd(cfg["shuffle"], 4, 0), N).astype(np.int64)
        delta = delta[pi]
    return delta * cfg["alpha"]


def generate(ad):
    """List of (layer, module, dW float32 (out, in)) in target order."""
    cfg = ad.cfg
    with np.errstate(over="ignore", invalid="ignore"):
        allw = generate_all(ad).astype(np.float32)
    out, off = [], 0
    for (l, m), s in zip(cfg["targets"], cfg["sizes"]):
        dw = allw[off:off + s]
        if not np.all(np.isfinite(dw)):
            i = int(np.flatnonzero(~np.isfinite(dw))[0])
            fail("non-finite dW in layers.%d.%s at element %d" % (l, m, i))
        out.append((l, m, dw.reshape(cfg["shape"].module_shape(m))))
        off += s
    return out


def load_and_generate(data, shape=None, max_params=DEFAULT_MAX_PARAMS):
    ad = parse_adapter(data, shape, max_params)
    return ad, generate(ad)


# ---------------------------------------------------------------- building

def build_adapter(config, tensors, path=None, extra_meta=None):
    """config: dict (serialized with json.dumps) or str (used verbatim).
    tensors: list of (name, array, dtype). Returns the file bytes."""
    text = config if isinstance(config, str) else json.dumps(config)
    meta = {"superlora": text}
    if extra_meta:
        meta.update(extra_meta)
    return write_safetensors(path, tensors, meta)


def base_of(shape):
    return {"dim": shape.dim, "n_layers": shape.n_layers, "n_heads": shape.n_heads,
            "n_kv_heads": shape.n_kv_heads, "hidden_dim": shape.hidden_dim,
            "vocab_size": abs(shape.vocab_size)}


# ---------------------------------------------------------------- agreement

def read_deltas(data):
    """A deltas file (F32 layers.{l}.{module}) -> list of (name, float32 array)."""
    _, entries, buf = read_safetensors(data)
    return [(name, decode_tensor(buf, dtype, shape, b, e)) for name, dtype, shape, b, e in entries]


def agree(got, ref, rel=1e-5):
    """Spec section 9: lists of (name, array). Returns a list of problems
    (empty when the two agree): per matrix ||dW - dW_ref||_F <= rel ||dW_ref||_F
    and every entry within rel * max|dW_all_ref|."""
    got_d = dict(got)
    problems = []
    if sorted(got_d) != sorted(n for n, _ in ref):
        problems.append("tensor names differ: %s vs %s" % (sorted(got_d), sorted(n for n, _ in ref)))
        return problems
    amax = max(float(np.max(np.abs(r))) for _, r in ref)
    for name, r in ref:
        g = got_d[name]
        if g.shape != r.shape:
            problems.append("%s: shape %s, want %s" % (name, g.shape, r.shape))
            continue
        diff = g.astype(np.float64) - r.astype(np.float64)
        fro, ref_fro = float(np.linalg.norm(diff)), float(np.linalg.norm(r.astype(np.float64)))
        worst = float(np.max(np.abs(diff))) if diff.size else 0.0
        if not np.all(np.isfinite(g)) or fro > rel * ref_fro:
            problems.append("%s: ||dW - ref||_F = %.3g > %.0e * %.3g" % (name, fro, rel, ref_fro))
        if worst > rel * amax:
            problems.append("%s: max entry error %.3g > %.0e * %.3g" % (name, worst, rel, amax))
    return problems


# ---------------------------------------------------------------- CLI

def _read(path):
    with open(path, "rb") as f:
        return f.read()


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="superlora_ref.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("deltas", help="write dense F32 deltas layers.{l}.{module}")
    d.add_argument("adapter")
    d.add_argument("--model", required=True)
    d.add_argument("-o", "--out", required=True)
    d.add_argument("--max-params", type=int, default=DEFAULT_MAX_PARAMS)
    c = sub.add_parser("check", help="validate (and generate); print ok or the error")
    c.add_argument("adapter")
    c.add_argument("--model")
    c.add_argument("--max-params", type=int, default=DEFAULT_MAX_PARAMS)
    p = sub.add_parser("compare", help="section 9 agreement of two deltas files")
    p.add_argument("got")
    p.add_argument("ref")
    args = ap.parse_args(argv)
    if args.cmd == "compare":
        try:
            problems = agree(read_deltas(_read(args.got)), read_deltas(_read(args.ref)))
        except AdapterError as e:
            problems = [str(e)]
        for msg in problems:
            print(msg)
        if not problems:
            print("agree")
        return 1 if problems else 0
    shape = read_model_shape(args.model) if args.model else None
    try:
        _, dws = load_and_generate(_read(args.adapter), shape, args.max_params)
    except AdapterError as e:
        print(str(e), file=sys.stdout if args.cmd == "check" else sys.stderr)
        return 1
    if args.cmd == "check":
        print("ok")
        return 0
    write_safetensors(args.out, [("layers.%d.%s" % (l, m), dw, "F32") for l, m, dw in dws])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
