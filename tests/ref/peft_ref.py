#!/usr/bin/python3
"""peft_ref.py - LoRA adapters in their owners' formats, and the direct
numpy reference of what they mean (the golden side of the import tests).

Independent of slorad and of client/python: written from PEFT's and
llama.cpp's documented layouts.

PEFT (Hugging Face): a directory with adapter_config.json and
adapter_model.safetensors holding, per adapted projection,
`base_model.model.model.layers.{l}.{self_attn|mlp}.{q_proj..}.lora_A.weight`
(r, in) and `.lora_B.weight` (out, r); W' = W + s B A with s = alpha / r
(alpha / sqrt(r) with use_rslora), r and alpha per module from
rank_pattern / alpha_pattern. HF checkpoints of llama models keep wq/wk
rows in rotate-half order; llama.cpp's converter moves them into GGUF's
interleaved order with
    w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2)
which is what this reference applies to the q/k rows of s B A.

llama.cpp GGUF LoRA (convert_lora_to_gguf.py, llama-adapter.cpp):
general.type = "adapter", general.architecture = the base's,
adapter.type = "lora", adapter.lora.alpha (f32); tensors
`blk.{l}.{attn_q..}.weight.lora_a` with ggml ne = [in, r] (row-major
(r, in)) and `.lora_b` ne = [r, out]; scale = alpha / r per tensor pair
(r = lora_b's ne[0]), or 1 when alpha is 0. Rows already in GGUF order.

CLI (for the e2e scripts):
  peft_ref.py peft DIR --model M --seed S [--r 8] [--alpha 16] [--rslora] [--no-permute]
      [--modules q_proj,k_proj,v_proj,o_proj] [--layers 0,2] [--rank-pattern JSON]
      [--alpha-pattern JSON] [--dtype F32|F16|BF16] [--config-extra JSON]
      writes a PEFT directory and DIR/ref.json: {"deltas": {"l.m": [[...]]}}
  peft_ref.py gguf-lora FILE --model M.bin --seed S [--r 8] [--alpha 16]
      [--modules attn_q,...] [--rank-pattern JSON]   (per-module rank)
      writes a llama.cpp LoRA GGUF and FILE.ref.json
  peft_ref.py logits --model M.bin --deltas REF.json --tokens 1,2,3
      {"logits": ...}: model_ref's forward with W + dW
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_ref  # noqa: E402
import superlora_ref as sl  # noqa: E402

HF = {"q_proj": ("self_attn", "wq"), "k_proj": ("self_attn", "wk"), "v_proj": ("self_attn", "wv"),
      "o_proj": ("self_attn", "wo"), "gate_proj": ("mlp", "w1"), "down_proj": ("mlp", "w2"),
      "up_proj": ("mlp", "w3")}
GGUF = {"attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_output": "wo", "ffn_gate": "w1",
        "ffn_down": "w2", "ffn_up": "w3"}


def dims(shape, m):
    d, h = shape.dim, shape.hidden_dim
    kv = d // shape.n_heads * shape.n_kv_heads
    return {"wq": (d, d), "wk": (kv, d), "wv": (kv, d), "wo": (d, d), "w1": (h, d),
            "w2": (d, h), "w3": (h, d)}[m]


def hf_to_gguf_rows(w, n_head):
    """llama.cpp convert_hf_to_gguf's LlamaModel.permute (HF -> GGUF rows)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def random_factors(rs, out_dim, in_dim, r):
    """(A (r, in), B (out, r)) float32, both non-zero (a trained adapter)."""
    A = (rs.randn(r, in_dim) / math.sqrt(in_dim)).astype(np.float32)
    B = (rs.randn(out_dim, r) * 0.1).astype(np.float32)
    return A, B


def pattern(patterns, name, default):
    """PEFT's get_pattern_key: the first key k with re.match((.*\\.)?(k)$)."""
    import re
    for k, v in patterns.items():
        if re.match(r"(.*\.)?(%s)$" % k, name):
            return v
    return default


def write_peft(path, shape, seed, r=8, alpha=16, rslora=False,
               modules=("q_proj", "k_proj", "v_proj", "o_proj"), layers=None, rank_pattern=None,
               alpha_pattern=None, dtype="F32", config_extra=None, permute=True,
               extra_tensors=()):
    """A PEFT LoRA directory; returns {(layer, module): dW float64 (out, in)}
    in GGUF row order (the reference). extra_tensors: [(name, shape)] of
    zeros added to the weights (what other PEFT options save)."""
    rs = np.random.RandomState(seed)
    layers = list(range(shape.n_layers)) if layers is None else layers
    rank_pattern, alpha_pattern = rank_pattern or {}, alpha_pattern or {}
    tensors, ref = {}, {}
    for l in layers:
        for name in modules:
            parent, m = HF[name]
            full = "model.layers.%d.%s.%s" % (l, parent, name)
            rr = pattern(rank_pattern, full, r)
            aa = pattern(alpha_pattern, full, alpha)
            A, B = random_factors(rs, *dims(shape, m), rr)
            A, B = sl.to_dtype(A, dtype), sl.to_dtype(B, dtype)
            key = "base_model.model.%s.lora_%s.weight"
            tensors[key % (full, "A")] = A
            tensors[key % (full, "B")] = B
            s = aa / math.sqrt(rr) if rslora else aa / rr
            dw = s * (B.astype(np.float64) @ A.astype(np.float64))
            if permute and m in ("wq", "wk"):
                dw = hf_to_gguf_rows(dw, shape.n_heads if m == "wq" else shape.n_kv_heads)
            ref[(l, m)] = dw
    config = {"alpha_pattern": alpha_pattern, "auto_mapping": None,
              "base_model_name_or_path": "stories260K", "bias": "none",
              "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True,
              "layers_pattern": None, "layers_to_transform": None, "lora_alpha": alpha,
              "lora_dropout": 0.05, "modules_to_save": None, "peft_type": "LORA", "r": r,
              "rank_pattern": rank_pattern, "revision": None, "target_modules": list(modules),
              "task_type": "CAUSAL_LM", "use_dora": False, "use_rslora": rslora}
    config.update(config_extra or {})
    for name, shp in extra_tensors:
        tensors[name] = np.zeros(shp, np.float32)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    order = sorted(tensors)  # safetensors (the Rust crate) writes names sorted
    data = bytearray()
    header = {"__metadata__": {"format": "pt"}}
    for n in order:
        blob = sl.encode_tensor(tensors[n], dtype)
        header[n] = {"dtype": dtype, "shape": list(tensors[n].shape),
                     "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(path, "adapter_model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + bytes(data))
    return ref


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, kvs, tensors, alignment=32):
    """GGUF v3: kvs [(key, type, value)] with type "str", "f32" or "u32";
    tensors [(name, array (rows, cols) float32, ggml type 0 F32 | 1 F16)]."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for key, typ, val in kvs:
        out += gguf_string(key)
        if typ == "str":
            out += struct.pack("<I", 8) + gguf_string(val)
        elif typ == "f32":
            out += struct.pack("<If", 6, val)
        else:
            out += struct.pack("<II", 4, val)
    blobs, off = [], 0
    for name, a, typ in tensors:
        blob = a.astype("<f4" if typ == 0 else "<f2").tobytes()
        out += gguf_string(name) + struct.pack("<I", a.ndim)
        out += b"".join(struct.pack("<Q", n) for n in reversed(a.shape))
        out += struct.pack("<IQ", typ, off)
        blobs.append(blob)
        off += len(blob) + (-len(blob) % alignment)
    out += b"\0" * (-len(out) % alignment)
    for blob in blobs:
        out += blob + b"\0" * (-len(blob) % alignment)
    with open(path, "wb") as f:
        f.write(out)


def write_gguf_lora(path, shape, seed, r=8, alpha=16.0, modules=("attn_q", "attn_k", "attn_v",
                    "attn_output"), layers=None, rank_pattern=None, f16=False, arch="llama"):
    """A llama.cpp LoRA GGUF; returns the reference deltas (GGUF rows)."""
    rs = np.random.RandomState(seed)
    layers = list(range(shape.n_layers)) if layers is None else layers
    tensors, ref = [], {}
    for l in layers:
        for name in modules:
            m = GGUF[name]
            rr = (rank_pattern or {}).get(name, r)
            A, B = random_factors(rs, *dims(shape, m), rr)
            if f16:
                A, B = A.astype(np.float16).astype(np.float32), B.astype(np.float16).astype(np.float32)
            base = "blk.%d.%s.weight" % (l, name)
            tensors += [(base + ".lora_a", A, 1 if f16 else 0), (base + ".lora_b", B, 1 if f16 else 0)]
            s = alpha / rr if alpha else 1.0
            ref[(l, m)] = s * (B.astype(np.float64) @ A.astype(np.float64))
    kvs = [("general.architecture", "str", arch), ("general.type", "str", "adapter"),
           ("adapter.type", "str", "lora"), ("adapter.lora.alpha", "f32", alpha)]
    write_gguf(path, kvs, tensors)
    return ref


def save_ref(path, ref):
    with open(path, "w") as f:
        json.dump({"deltas": {"%d.%s" % k: v.tolist() for k, v in ref.items()}}, f)


def load_ref(path):
    with open(path) as f:
        d = json.load(f)["deltas"]
    return {(int(k.split(".")[0]), k.split(".")[1]): np.array(v) for k, v in d.items()}


def logits(model_path, ref, tokens):
    """model_ref's forward with W' = W + dW (float64)."""
    m = model_ref.Model(model_path)
    w = {k: v.copy() for k, v in m.w.items()}
    for (l, mod), dw in ref.items():
        w[mod][l] = w[mod][l] + dw
    return m.forward(tokens, w)


def main(argv):
    ap = argparse.ArgumentParser(prog="peft_ref.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("peft", "gguf-lora"):
        p = sub.add_parser(name)
        p.add_argument("out")
        p.add_argument("--model", required=True)
        p.add_argument("--seed", type=int, required=True)
        p.add_argument("--r", type=int, default=8)
        p.add_argument("--alpha", type=float, default=16)
        p.add_argument("--modules")
        p.add_argument("--layers")
        p.add_argument("--rank-pattern", type=json.loads)
        if name == "peft":
            p.add_argument("--rslora", action="store_true")
            p.add_argument("--no-permute", action="store_true",
                           help="a base whose GGUF keeps HF's q/k row order (qwen2)")
            p.add_argument("--alpha-pattern", type=json.loads)
            p.add_argument("--dtype", default="F32")
            p.add_argument("--config-extra", type=json.loads)
            p.add_argument("--extra-tensor", action="append", default=[],
                           help="NAME:ROWS,COLS zeros added to the weights")
        else:
            p.add_argument("--f16", action="store_true")
            p.add_argument("--arch", default="llama")
    p = sub.add_parser("logits")
    p.add_argument("--model", required=True)
    p.add_argument("--deltas", required=True)
    p.add_argument("--tokens", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "logits":
        toks = [int(t) for t in a.tokens.split(",")]
        out = logits(a.model, load_ref(a.deltas), toks)
        print(json.dumps({"logits": [[float("%.9g" % v) for v in row] for row in out]}))
        return 0
    shape = model_ref.Model(a.model).shape
    kw = {"r": a.r, "alpha": a.alpha, "rank_pattern": a.rank_pattern}
    if a.modules:
        kw["modules"] = a.modules.split(",")
    if a.layers:
        kw["layers"] = [int(x) for x in a.layers.split(",")]
    alpha = int(a.alpha) if a.alpha == int(a.alpha) else a.alpha
    if a.cmd == "peft":
        extra = [(t.split(":")[0], [int(x) for x in t.split(":")[1].split(",")])
                 for t in a.extra_tensor]
        ref = write_peft(a.out, shape, a.seed, rslora=a.rslora, alpha_pattern=a.alpha_pattern,
                         dtype=a.dtype, config_extra=a.config_extra, extra_tensors=extra,
                         permute=not a.no_permute, **dict(kw, alpha=alpha))
        save_ref(os.path.join(a.out, "ref.json"), ref)
    else:
        ref = write_gguf_lora(a.out, shape, a.seed, f16=a.f16, arch=a.arch, **kw)
        save_ref(a.out + ".ref.json", ref)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
