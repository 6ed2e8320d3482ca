#!/usr/bin/python3
"""gguf_seeds.py - write GGUF seeds of tests/fuzz/fuzz_model.c: tiny llama
and qwen2 models laid out as llama.cpp writes them (keys "<arch>.*",
tensor names blk.N.*, 32-byte alignment) whose matrices are quantized the
way published files are: all Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 at width 32,
and at width 256 (one K-quant super-block per row) a Q4_K_M-style mix
(Q4_K, Q6_K attn_v and output, Q8_0 ffn_down whose rows are too short for
K blocks, as llama.cpp falls back) and a Q5_K/Q6_K one; llama ones carry
the Llama 3 rope_freqs.weight tensor. Then files refused for a type, a
shape or rope_freqs, each naming the tensor (checked by hand).

Each seed is fuzz_model's input: 0x01 (load through slora_model_load)
followed by the GGUF. Block contents are random bytes with finite, small
f16 scales: any such bytes are a valid block (ggml's block layouts, not
slorad's quantizers). Independent of slorad.

  gguf_seeds.py OUT_DIR
"""
import os
import struct
import sys

import numpy as np

ALIGN = 32
# ggml type id: (name, elements per block, bytes per block, offsets of f16 scales)
TYPES = {0: ("F32", 1, 4, ()), 1: ("F16", 1, 2, ()), 2: ("Q4_0", 32, 18, (0,)),
         3: ("Q4_1", 32, 20, (0, 2)), 6: ("Q5_0", 32, 22, (0,)), 7: ("Q5_1", 32, 24, (0, 2)),
         8: ("Q8_0", 32, 34, (0,)), 10: ("Q2_K", 256, 84, (80, 82)),
         12: ("Q4_K", 256, 144, (0, 2)), 13: ("Q5_K", 256, 176, (0, 2)),
         14: ("Q6_K", 256, 210, (208,))}
T = {v[0]: k for k, v in TYPES.items()}


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, value):
    """One GGUF key/value: str, bool, float (FLOAT32), int (UINT32)."""
    if isinstance(value, str):
        return gstr(key) + struct.pack("<I", 8) + gstr(value)
    if isinstance(value, bool):
        return gstr(key) + struct.pack("<IB", 7, value)
    if isinstance(value, float):
        return gstr(key) + struct.pack("<If", 6, value)
    return gstr(key) + struct.pack("<II", 4, value)


def blocks(rng, type_id, rows, cols):
    """(rows, cols) of type_id: F32/F16 values, or random blocks with f16 scales."""
    name, per, size, scales = TYPES[type_id]
    if type_id == 0:
        return (rng.standard_normal(rows * cols) * 0.3).astype("<f4").tobytes()
    if type_id == 1:
        return (rng.standard_normal(rows * cols) * 0.3).astype("<f2").tobytes()
    n = rows * -(-cols // per)  # a short row still gets a block (refused seeds)
    b = rng.integers(0, 256, (n, size), dtype=np.uint8)
    for off in scales:
        b[:, off:off + 2] = np.frombuffer(
            (rng.uniform(0.001, 0.02, n)).astype("<f2").tobytes(), np.uint8).reshape(n, 2)
    return b.tobytes()


def gguf(keys, tensors):
    """keys: [(key, value)], tensors: [(name, type_id, shape (rows, cols) or (n,), bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(keys))
    out += b"".join(kv(k, v) for k, v in keys)
    off, data = 0, b""
    for name, t, shape, b in tensors:
        ne = list(reversed(shape))  # ne[0] is the row length
        out += gstr(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
        out += struct.pack("<IQ", t, off)
        data += b + b"\0" * (-len(b) % ALIGN)
        off = len(data)
    out += b"\0" * (-len(out) % ALIGN)
    return out + data


def model(rng, arch, dim, hidden, heads, kv_heads, vocab, types, layers=1, rope_freqs=None,
          tied=False, extra=()):
    """A GGUF model. types: {tensor role: type name} with "*" the default
    for matrices (roles: token_embd, attn_q, attn_k, attn_v, attn_output,
    ffn_gate, ffn_up, ffn_down, output; "norm" quantizes the vectors too)."""
    hd = dim // heads
    kvd = hd * kv_heads
    keys = [("general.architecture", arch), ("general.name", "fuzz-seed"),
            (arch + ".context_length", 64), (arch + ".embedding_length", dim),
            (arch + ".feed_forward_length", hidden), (arch + ".block_count", layers),
            (arch + ".attention.head_count", heads), (arch + ".attention.head_count_kv", kv_heads),
            (arch + ".rope.freq_base", 500000.0 if arch == "llama" else 1000000.0),
            (arch + ".attention.layer_norm_rms_epsilon", 1e-5 if arch == "llama" else 1e-6),
            (arch + ".rope.dimension_count", hd), ("general.file_type", 15)]

    def mat(name, role, rows, cols):
        t = T[types.get(role, types["*"])]
        return (name, t, (rows, cols), blocks(rng, t, rows, cols))

    def vec(name, n):
        if types.get("norm"):
            return (name, T[types["norm"]], (n,), blocks(rng, T[types["norm"]], 1, n))
        return (name, 0, (n,), (1 + rng.standard_normal(n) * 0.1).astype("<f4").tobytes())

    ts = [mat("token_embd.weight", "token_embd", vocab, dim)]
    if rope_freqs is not None:
        ts.append(("rope_freqs.weight", 0, (len(rope_freqs),),
                   np.asarray(rope_freqs, "<f4").tobytes()))
    for i in range(layers):
        p = "blk.%d." % i
        ts += [vec(p + "attn_norm.weight", dim), mat(p + "attn_q.weight", "attn_q", dim, dim),
               mat(p + "attn_k.weight", "attn_k", kvd, dim),
               mat(p + "attn_v.weight", "attn_v", kvd, dim)]
        if arch == "qwen2":
            ts += [vec(p + "attn_q.bias", dim), vec(p + "attn_k.bias", kvd),
                   vec(p + "attn_v.bias", kvd)]
        ts += [mat(p + "attn_output.weight", "attn_output", dim, dim),
               vec(p + "ffn_norm.weight", dim),
               mat(p + "ffn_gate.weight", "ffn_gate", hidden, dim),
               mat(p + "ffn_up.weight", "ffn_up", hidden, dim),
               mat(p + "ffn_down.weight", "ffn_down", dim, hidden)]
    ts.append(vec("output_norm.weight", dim))
    if not tied:
        ts.append(mat("output.weight", "output", vocab, dim))
    return gguf(keys, ts + list(extra))


def seeds():
    rng = np.random.default_rng(11)
    small = dict(dim=32, hidden=64, heads=4, kv_heads=2, vocab=32)
    # Llama 3.1-style divisors for a head of 8: the highest frequencies kept,
    # the lowest divided by the factor 8, one in between
    f8 = [1.0, 1.0, 2.5, 8.0]
    for q in ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"):
        yield "llama_%s_rope_freqs" % q.lower(), model(rng, "llama", types={"*": q},
                                                       rope_freqs=f8, **small)
    yield "llama_q8_0_f16_embd_tied_2layers", model(
        rng, "llama", types={"*": "Q8_0", "token_embd": "F16"}, layers=2, tied=True, **small)
    yield "qwen2_q8_0_bias_tied", model(rng, "qwen2", types={"*": "Q8_0"}, tied=True, **small)
    yield "qwen2_q4_0_q8_0_mix", model(rng, "qwen2", types={"*": "Q4_0", "attn_v": "Q8_0",
                                                            "ffn_down": "Q8_0"}, **small)
    # width 256, 32 heads of 8, one KV head, ffn 32: one super-block per row
    wide = dict(dim=256, hidden=32, heads=32, kv_heads=1, vocab=16)
    q4km = {"*": "Q4_K", "attn_v": "Q6_K", "output": "Q6_K", "ffn_down": "Q8_0"}
    yield "llama_q4_k_m_rope_freqs", model(rng, "llama", types=q4km, rope_freqs=f8, **wide)
    yield "qwen2_q5_k_q6_k_tied", model(
        rng, "qwen2", types={"*": "Q5_K", "attn_output": "Q4_K", "attn_k": "Q6_K",
                             "attn_v": "Q6_K", "token_embd": "Q6_K", "ffn_down": "Q8_0"},
        tied=True, **wide)
    # refused: each names the tensor
    yield "refuse_q2_k", model(rng, "llama", types={"*": "Q8_0", "token_embd": "Q2_K"}, **small)
    yield "refuse_q4_k_rows_of_32", model(rng, "llama", types={"*": "Q8_0", "token_embd": "Q4_K"},
                                          **small)
    yield "refuse_q8_0_norm", model(rng, "llama", types={"*": "Q8_0", "norm": "Q8_0"}, **small)
    yield "refuse_rope_freqs_zero", model(rng, "llama", types={"*": "Q8_0"},
                                          rope_freqs=[1.0, 2.0, 0.0, 8.0], **small)
    yield "refuse_rope_freqs_short", model(rng, "llama", types={"*": "Q8_0"},
                                           rope_freqs=[1.0, 2.0], **small)
    yield "refuse_rope_freqs_qwen2", model(rng, "qwen2", types={"*": "Q8_0"}, rope_freqs=f8,
                                           **small)


def main(argv):
    if len(argv) != 1:
        sys.stderr.write("usage: gguf_seeds.py OUT_DIR\n")
        return 2
    os.makedirs(argv[0], exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(argv[0], "gguf_" + name), "wb") as f:
            f.write(b"\x01" + data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
