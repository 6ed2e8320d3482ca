#!/usr/bin/python3
"""gguf_to_hf.py - write a Hugging Face checkpoint directory equivalent to a
GGUF (llama or qwen2, F32/F16/BF16 tensors), for testing slorad's HF loader
against its GGUF loader. Independent of slorad: reads the GGUF with
tests/ref/gguf_ref.py and writes what transformers' LlamaForCausalLM /
Qwen2ForCausalLM would load:

  config.json        model_type, sizes, rms_norm_eps, rope_theta, rope_scaling
                     (linear), tie_word_embeddings, attention_bias, special ids
  model.safetensors  or --shards N: model-0000i-of-0000N.safetensors plus
                     model.safetensors.index.json
  tokenizer.json     for a byte-level BPE vocabulary (tokenizer.ggml.model
                     "gpt2") with a pre-tokenizer tokenizers can express
                     (gpt-2, llama-bpe, qwen2, smollm, starcoder): the
                     ByteLevel model, vocab, merges, added_tokens (control
                     tokens special, user-defined ones not) and the
                     pre_tokenizer as transformers' own files for those
                     models write it; another vocabulary is refused
  tokenizer_config.json  bos/eos/unk/pad_token texts, add_bos_token,
                     add_eos_token, chat_template when the GGUF has them

llama's q_proj/k_proj rows are permuted from GGUF's interleaved pairs back to
HF's rotate-half order (the inverse of llama.cpp convert_hf_to_gguf.py's
permute: GGUF row h*hd + 2i + p is HF row h*hd + p*hd/2 + i); qwen2 keeps the
order. A GGUF with rope_freqs.weight (Llama 3 scaling) cannot be expressed
without its rope_scaling parameters and is refused.

  gguf_to_hf.py IN.gguf OUT_DIR [--dtype keep|f32|bf16|f16] [--shards N]

--dtype keep (default) writes each tensor in its GGUF type (F32/F16/BF16).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_ref  # noqa: E402

NAMES = {"attn_norm.weight": "input_layernorm.weight",
         "ffn_norm.weight": "post_attention_layernorm.weight",
         "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
         "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
         "ffn_gate": "mlp.gate_proj", "ffn_down": "mlp.down_proj", "ffn_up": "mlp.up_proj"}


def hf_name(name):
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    if name == "output.weight":
        return "lm_head.weight"
    _, layer, rest = name.split(".", 2)
    for g, h in NAMES.items():
        if rest.startswith(g):
            return "model.layers.%s.%s%s" % (layer, h, rest[len(g):])
    raise ValueError("unexpected tensor " + name)


def to_rotate_half(w, head_dim):
    """GGUF (interleaved pairs) rows -> HF rotate-half rows."""
    out = np.empty_like(w)
    for r in range(w.shape[0]):
        h, j = divmod(r, head_dim)
        i, p = divmod(j, 2)
        out[h * head_dim + p * (head_dim // 2) + i] = w[r]
    return out


def encode(a, dtype):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    if dtype == "F16":
        return a.astype("<f2").tobytes()
    u = a.view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()  # round to nearest even


def write_safetensors(path, tensors, dtype):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a, keep in tensors:
        dt = keep if dtype == "keep" else dtype
        b = encode(a, dt)
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# the pre-tokenizers of tokenizer.json, as the models' published files hold them
LLAMA3_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
             "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
QWEN2_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
            "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")


def byte_level(regex):
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
            "use_regex": regex}


def pre_tokenizer(pre):
    if pre == "gpt-2":
        return byte_level(True)
    if pre in ("smollm", "starcoder"):
        return {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, byte_level(True)]}
    if pre in ("llama-bpe", "qwen2"):
        return {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_RE if pre == "llama-bpe" else QWEN2_RE},
             "behavior": "Isolated", "invert": False}, byte_level(False)]}
    return None


def write_tokenizer(kv, out):
    """tokenizer.json and tokenizer_config.json of the GGUF's vocabulary;
    False when it cannot be expressed."""
    tc = {}
    toks = kv.get("tokenizer.ggml.tokens")
    if toks is not None:
        pre = kv.get("tokenizer.ggml.pre")
        pt = pre_tokenizer(pre) if kv.get("tokenizer.ggml.model") == "gpt2" else None
        if pt is None:
            print("gguf_to_hf.py: vocabulary %s/%s has no tokenizer.json form here" %
                  (kv.get("tokenizer.ggml.model"), pre), file=sys.stderr)
            return False
        ttype = kv["tokenizer.ggml.token_type"]
        vocab, added = {}, []
        for i, (text, ty) in enumerate(zip(toks, ttype)):
            if ty in (3, 4):  # control, user-defined
                added.append({"id": i, "content": text, "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": ty == 4, "special": ty == 3})
            elif ty != 5:  # unused padding ids stay unnamed
                vocab[text] = i
        tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
              "normalizer": None, "pre_tokenizer": pt,
              "post_processor": byte_level(False), "decoder": byte_level(True),
              "model": {"type": "BPE", "dropout": None, "unk_token": None,
                        "continuing_subword_prefix": None, "end_of_word_suffix": None,
                        "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                        "vocab": vocab, "merges": list(kv["tokenizer.ggml.merges"])}}
        with open(os.path.join(out, "tokenizer.json"), "w") as f:
            json.dump(tj, f, ensure_ascii=False)
        for role, key in (("bos", "bos_token"), ("eos", "eos_token"), ("unknown", "unk_token"),
                          ("padding", "pad_token")):
            i = kv.get("tokenizer.ggml.%s_token_id" % role)
            if i is not None:
                tc[key] = toks[i]
        if pre == "starcoder":
            tc["clean_up_tokenization_spaces"] = True
    if "tokenizer.chat_template" in kv:
        tc["chat_template"] = kv["tokenizer.chat_template"]
    for k in ("add_bos_token", "add_eos_token"):
        if "tokenizer.ggml." + k in kv:
            tc[k] = bool(kv["tokenizer.ggml." + k])
    if tc:
        with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
            json.dump(tc, f, indent=2, ensure_ascii=False)
    return True


def main(argv):
    ap = argparse.ArgumentParser(prog="gguf_to_hf.py")
    ap.add_argument("gguf")
    ap.add_argument("out")
    ap.add_argument("--dtype", default="keep", choices=["keep", "f32", "bf16", "f16"])
    ap.add_argument("--shards", type=int, default=1)
    a = ap.parse_args(argv)
    kv, t = gguf_ref.read(a.gguf)
    types = gguf_ref.types(a.gguf)
    arch = kv["general.architecture"]
    g = lambda k, d=None: kv.get(arch + "." + k, d)  # noqa: E731
    if "rope_freqs.weight" in t:
        print("gguf_to_hf.py: rope_freqs.weight has no HF equivalent here", file=sys.stderr)
        return 2
    dim, heads = g("embedding_length"), g("attention.head_count")
    hd = dim // heads
    cfg = {"model_type": arch, "architectures": ["LlamaForCausalLM" if arch == "llama"
                                                 else "Qwen2ForCausalLM"],
           "hidden_size": dim, "intermediate_size": g("feed_forward_length"),
           "num_hidden_layers": g("block_count"), "num_attention_heads": heads,
           "num_key_value_heads": g("attention.head_count_kv", heads),
           "vocab_size": t["token_embd.weight"].shape[0],
           "max_position_embeddings": g("context_length"),
           "rms_norm_eps": g("attention.layer_norm_rms_epsilon"),
           "rope_theta": g("rope.freq_base", 10000.0), "hidden_act": "silu",
           "tie_word_embeddings": "output.weight" not in t,
           "torch_dtype": {"keep": "float32", "f32": "float32", "bf16": "bfloat16",
                           "f16": "float16"}[a.dtype]}
    if g("rope.scaling.type") == "linear":
        cfg["rope_scaling"] = {"rope_type": "linear", "factor": g("rope.scaling.factor")}
    if arch == "llama":
        cfg["attention_bias"] = "blk.0.attn_q.bias" in t
    if arch == "qwen2":
        cfg["use_sliding_window"] = False
        cfg["sliding_window"] = 32768
    for k, hk in (("tokenizer.ggml.bos_token_id", "bos_token_id"),
                  ("tokenizer.ggml.eos_token_id", "eos_token_id")):
        if k in kv:
            cfg[hk] = kv[k]
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if not write_tokenizer(kv, a.out):
        return 2
    tensors = []
    for name, w in t.items():
        if arch == "llama" and (".attn_q." in name or ".attn_k." in name):
            w = to_rotate_half(w, hd)
        tensors.append((hf_name(name), w, {0: "F32", 1: "F16", 30: "BF16"}[types[name]]))
    dt = {"keep": "keep", "f32": "F32", "bf16": "BF16", "f16": "F16"}[a.dtype]
    if a.shards == 1:
        write_safetensors(os.path.join(a.out, "model.safetensors"), tensors, dt)
        return 0
    per = (len(tensors) + a.shards - 1) // a.shards
    weight_map = {}
    for s in range(a.shards):
        fname = "model-%05d-of-%05d.safetensors" % (s + 1, a.shards)
        part = tensors[s * per:(s + 1) * per]
        write_safetensors(os.path.join(a.out, fname), part, dt)
        weight_map.update({n: fname for n, _, _ in part})
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
