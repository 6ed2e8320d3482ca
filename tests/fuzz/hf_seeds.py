#!/usr/bin/python3
"""hf_seeds.py - write the seed corpus of tests/fuzz/fuzz_hf.c: tiny Hugging
Face checkpoint directories whose config.json files follow real published
ones (Llama 2, Llama 3.1 and 3.2, Mistral 7B v0.1/v0.3, Qwen2 / Qwen2.5),
scaled down to a width of 8 so each input stays a few KB, with their
rope_scaling variants (none, linear, llama3, and refused ones), sliding
windows (mistral's, qwen2's unused one, a too short one), tied embeddings,
q/k/v biases, F32/F16/BF16 weights in one file or in shards listed by an
index, and a tokenizer_config.json / tokenizer.json beside them; then
checkpoints refused by their index, safetensors headers, tensor set or
tokenizer files (each refusal checked by hand to name its key or tensor).

Each seed is one fuzz input: config.json, then for every further file
"@@@" + its tag byte + its bytes (see fuzz_hf.c). Independent of slorad:
the safetensors are written with numpy.

  hf_seeds.py OUT_DIR [--dirs DIR]   (--dirs: also write each as a directory)
"""
import argparse
import copy
import json
import os
import struct
import sys

import numpy as np

TAGS = {"model.safetensors.index.json": b"i", "model.safetensors": b"s",
        "tokenizer_config.json": b"t", "tokenizer.json": b"j"}
SHARD = "model-%05d-of-00004.safetensors"
for _i in range(1, 5):
    TAGS[SHARD % _i] = str(_i).encode()

# Published config.json files (key sets and values as released), sizes and
# token ids scaled down below.
LLAMA2 = {"architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
          "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
          "intermediate_size": 11008, "max_position_embeddings": 4096, "model_type": "llama",
          "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
          "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
          "tie_word_embeddings": False, "torch_dtype": "float16",
          "transformers_version": "4.31.0.dev0", "use_cache": True, "vocab_size": 32000}
LLAMA31 = {"architectures": ["LlamaForCausalLM"], "attention_bias": False,
           "attention_dropout": 0.0, "bos_token_id": 128000,
           "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 4096,
           "initializer_range": 0.02, "intermediate_size": 14336,
           "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
           "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
           "pretraining_tp": 1, "rms_norm_eps": 1e-05,
           "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 8192, "rope_type": "llama3"},
           "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
           "transformers_version": "4.43.0.dev0", "use_cache": True, "vocab_size": 128256}
LLAMA32 = dict(LLAMA31, head_dim=64, hidden_size=2048, intermediate_size=8192,
               num_hidden_layers=16, tie_word_embeddings=True,
               rope_scaling={"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"})
MISTRAL01 = {"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
             "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
             "intermediate_size": 14336, "max_position_embeddings": 32768,
             "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 32,
             "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
             "sliding_window": 4096, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
             "transformers_version": "4.34.0.dev0", "use_cache": True, "vocab_size": 32000}
MISTRAL03 = dict(MISTRAL01, rope_theta=1000000.0, sliding_window=None, vocab_size=32768,
                 head_dim=128)
QWEN2 = {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
         "bos_token_id": 151643, "eos_token_id": 151645, "hidden_act": "silu",
         "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864,
         "max_position_embeddings": 32768, "max_window_layers": 21, "model_type": "qwen2",
         "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
         "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
         "tie_word_embeddings": True, "torch_dtype": "bfloat16",
         "transformers_version": "4.43.1", "use_cache": True, "use_sliding_window": False,
         "vocab_size": 151936}


def tiny(cfg, heads=2, kv=1, layers=1, dim=8, hidden=12, vocab=32, ctx=None):
    """cfg scaled down: width dim, token ids below vocab."""
    c = copy.deepcopy(cfg)
    c.update(hidden_size=dim, intermediate_size=hidden, num_attention_heads=heads,
             num_key_value_heads=kv, num_hidden_layers=layers, vocab_size=vocab)
    if "head_dim" in c:
        c["head_dim"] = dim // heads
    if "max_window_layers" in c:
        c["max_window_layers"] = layers
    if ctx:
        c["max_position_embeddings"] = ctx
    for k, ids in (("bos_token_id", [1]), ("eos_token_id", [2, 3, 4])):
        if isinstance(c.get(k), list):
            c[k] = ids[:len(c[k])]
        elif c.get(k) is not None:
            c[k] = ids[0]
    return c


def tensors(cfg, rng):
    """The HF tensors of cfg (name, array), float32, in the model's order."""
    d, h, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    kvd = d // nh * nkv
    bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias")
    r = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    out = [("model.embed_tokens.weight", r(v, d))]
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        out += [(p + "input_layernorm.weight", 1 + r(d)),
                (p + "self_attn.q_proj.weight", r(d, d)),
                (p + "self_attn.k_proj.weight", r(kvd, d)),
                (p + "self_attn.v_proj.weight", r(kvd, d))]
        if bias:
            out += [(p + "self_attn.q_proj.bias", r(d)), (p + "self_attn.k_proj.bias", r(kvd)),
                    (p + "self_attn.v_proj.bias", r(kvd))]
        out += [(p + "self_attn.o_proj.weight", r(d, d)),
                (p + "post_attention_layernorm.weight", 1 + r(d)),
                (p + "mlp.gate_proj.weight", r(h, d)), (p + "mlp.up_proj.weight", r(h, d)),
                (p + "mlp.down_proj.weight", r(d, h))]
    out.append(("model.norm.weight", 1 + r(d)))
    if not cfg.get("tie_word_embeddings"):
        out.append(("lm_head.weight", r(v, d)))
    return out


def encode(a, dt):
    if dt == "F32":
        return a.astype("<f4").tobytes()
    if dt == "F16":
        return a.astype("<f2").tobytes()
    u = a.view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()


def safetensors(ts, dt):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a in ts:
        b = encode(a, dt)
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def tokenizer_json(vocab):
    """A byte-level BPE tokenizer.json with a few merges and special tokens."""
    toks = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    pieces = [chr(c) for c in range(ord("a"), ord("a") + 12)] + ["\u0120", "ab", "\u0120a"]
    model_vocab = {p: i + len(toks) for i, p in enumerate(pieces) if i + len(toks) < vocab}
    return {"version": "1.0",
            "added_tokens": [{"id": i, "content": t, "special": True, "normalized": False,
                              "lstrip": False, "rstrip": False, "single_word": False}
                             for i, t in enumerate(toks)],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                              "trim_offsets": True, "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                        "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": model_vocab, "merges": ["a b", "\u0120 a"]}}


TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|start|>{{ m['role'] }}\n"
            "{{ m['content'] }}<|eot_id|>{% endfor %}")


def checkpoint(cfg, dt="F32", shards=1, rng=None, tok=False, extra=()):
    """The files of a checkpoint directory: {name: bytes}."""
    ts = tensors(cfg, rng) + list(extra)
    files = {"config.json": json.dumps(cfg, indent=2).encode()}
    if shards == 1:
        files["model.safetensors"] = safetensors(ts, dt)
    else:
        per = (len(ts) + shards - 1) // shards
        wmap = {}
        for s in range(shards):
            part = ts[s * per:(s + 1) * per]
            files[SHARD % (s + 1)] = safetensors(part, dt)
            wmap.update({n: SHARD % (s + 1) for n, _ in part})
        total = sum(len(b) for n, b in files.items() if n.endswith(".safetensors"))
        files["model.safetensors.index.json"] = json.dumps(
            {"metadata": {"total_size": total}, "weight_map": wmap}, indent=2).encode()
    if tok:
        files["tokenizer_config.json"] = json.dumps(
            {"add_bos_token": True, "bos_token": "<|begin_of_text|>",
             "eos_token": "<|eot_id|>", "chat_template": TEMPLATE}).encode()
        files["tokenizer.json"] = json.dumps(tokenizer_json(cfg["vocab_size"])).encode()
    return files


def pack(files):
    out = files["config.json"]
    for name, b in files.items():
        if name != "config.json":
            out += b"@@@" + TAGS[name] + b
    return out


def seeds():
    rng = np.random.default_rng(7)
    l31 = tiny(LLAMA31, heads=2, kv=1)
    q2 = tiny(QWEN2, heads=2, kv=1, ctx=64)
    inv_freq = [("model.layers.0.self_attn.rotary_emb.inv_freq",
                 np.array([1.0, 0.1], np.float32))]
    yield "llama2_f16_rope_none", checkpoint(tiny(LLAMA2, heads=2, kv=2), "F16", rng=rng,
                                             extra=inv_freq)
    yield "llama2_linear_type_key_f32_2shards", checkpoint(
        dict(tiny(LLAMA2, layers=2), rope_scaling={"type": "linear", "factor": 2.0}),
        "F32", shards=2, rng=rng)
    yield "llama31_llama3_bf16_tok", checkpoint(l31, "BF16", rng=rng, tok=True)
    yield "llama31_llama3_bf16_3shards", checkpoint(l31, "BF16", shards=3, rng=rng)
    yield "llama32_tied_llama3_bf16", checkpoint(tiny(LLAMA32, heads=2, kv=1), "BF16", rng=rng,
                                                 tok=True)
    yield "llama_attention_bias_f32", checkpoint(dict(l31, attention_bias=True), "F32", rng=rng)
    yield "llama_rope_default_f16", checkpoint(
        dict(l31, rope_scaling={"rope_type": "default"}), "F16", rng=rng)
    yield "mistral01_window_4096_bf16", checkpoint(tiny(MISTRAL01, ctx=64), "BF16", rng=rng)
    yield "mistral03_window_null_head_dim_4shards", checkpoint(
        tiny(MISTRAL03, heads=2, kv=1, ctx=64), "BF16", shards=4, rng=rng)
    yield "qwen2_tied_bias_bf16", checkpoint(q2, "BF16", rng=rng, tok=True)
    yield "qwen2_tied_bias_f32_2shards", checkpoint(q2, "F32", shards=2, rng=rng)
    yield "qwen25_untied_f16", checkpoint(dict(q2, tie_word_embeddings=False), "F16", rng=rng)
    # refused: each names the key
    yield "refuse_mistral_window_short", checkpoint(
        dict(tiny(MISTRAL01, ctx=64), sliding_window=16), "BF16", rng=rng)
    yield "refuse_qwen2_use_sliding_window", checkpoint(
        dict(q2, use_sliding_window=True, sliding_window=8), "BF16", rng=rng)
    yield "refuse_qwen2_yarn", checkpoint(
        dict(q2, rope_scaling={"type": "yarn", "factor": 4.0,
                               "original_max_position_embeddings": 32768}), "BF16", rng=rng)
    yield "refuse_llama_dynamic", checkpoint(
        dict(l31, rope_scaling={"type": "dynamic", "factor": 2.0}), "F16", rng=rng)
    yield "refuse_llama3_low_above_high", checkpoint(
        dict(l31, rope_scaling=dict(LLAMA31["rope_scaling"], low_freq_factor=4.0)), "BF16",
        rng=rng)
    yield "refuse_mlp_bias", checkpoint(dict(l31, mlp_bias=True), "F32", rng=rng)
    yield "refuse_head_dim", checkpoint(dict(l31, head_dim=8), "F32", rng=rng)
    yield "refuse_gelu", checkpoint(dict(l31, hidden_act="gelu"), "F32", rng=rng)
    yield "refuse_gemma", checkpoint(dict(l31, model_type="gemma"), "F32", rng=rng)
    # refused by the index, the safetensors headers or tokenizer.json
    sharded = checkpoint(l31, "BF16", shards=2, rng=rng)
    index = json.loads(sharded["model.safetensors.index.json"])
    index["weight_map"]["model.norm.weight"] = "../model-00001-of-00004.safetensors"
    yield "refuse_index_file_name", dict(sharded, **{
        "model.safetensors.index.json": json.dumps(index).encode()})
    yield "refuse_index_no_weight_map", dict(sharded, **{
        "model.safetensors.index.json": b'{"metadata": {"total_size": 0}, "weight_map": []}'})
    base = tensors(l31, rng)
    dup = base + [base[0]]
    two = {k: v for k, v in checkpoint(l31, "BF16", rng=rng).items() if k != "model.safetensors"}
    yield "refuse_tensor_in_two_shards", dict(two, **{
        SHARD % 1: safetensors(dup[:6], "BF16"), SHARD % 2: safetensors(dup[5:], "BF16"),
        "model.safetensors.index.json": json.dumps({"weight_map": dict(
            [(n, SHARD % 1) for n, _ in dup[:6]] + [(n, SHARD % 2) for n, _ in dup[6:]])}
        ).encode()})
    yield "refuse_missing_tensor", with_model(checkpoint(l31, "F32", rng=rng), base[1:], "F32")
    yield "refuse_tensor_shape", with_model(
        checkpoint(l31, "F32", rng=rng), [(base[0][0], base[0][1].T)] + base[1:], "F32")
    yield "refuse_unknown_tensor", with_model(
        checkpoint(l31, "F32", rng=rng),
        base + [("model.layers.0.mlp.gate_proj.bias", np.zeros(12, np.float32))], "F32")
    st = bytearray(safetensors(base, "F16"))
    hlen = struct.unpack("<Q", st[:8])[0]
    header = json.loads(st[8:8 + hlen])
    # the second tensor moved 2 bytes back: it overlaps the first
    header[base[1][0]]["data_offsets"] = [o - 2 for o in header[base[1][0]]["data_offsets"]]
    yield "refuse_st_overlap", with_header(checkpoint(l31, "F16", rng=rng), st, header)
    header = json.loads(st[8:8 + hlen])
    header[base[-1][0]]["data_offsets"][1] += 64  # past the end of the file
    yield "refuse_st_past_end", with_header(checkpoint(l31, "F16", rng=rng), st, header)
    header = json.loads(st[8:8 + hlen])
    header[base[0][0]]["dtype"] = "F64"
    yield "refuse_st_dtype", with_header(checkpoint(l31, "F16", rng=rng), st, header)
    tok = checkpoint(l31, "BF16", rng=rng, tok=True)
    tj = json.loads(tok["tokenizer.json"])
    tj["model"]["vocab"]["zz"] = 4096  # a gap of 4064 unused ids
    yield "refuse_tokenizer_id_gap", dict(tok, **{"tokenizer.json": json.dumps(tj).encode()})
    tj = json.loads(tok["tokenizer.json"])
    tj["model"]["merges"].append("q r")
    yield "refuse_tokenizer_merge_unknown", dict(tok, **{"tokenizer.json": json.dumps(tj).encode()})
    yield "refuse_tokenizer_config_not_json", dict(tok, **{"tokenizer_config.json": b"{\"chat"})


def with_model(files, ts, dt):
    """files with model.safetensors holding ts instead."""
    return dict(files, **{"model.safetensors": safetensors(ts, dt)})


def with_header(files, st, header):
    """files with model.safetensors = st under a replaced JSON header."""
    hlen = struct.unpack("<Q", st[:8])[0]
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return dict(files, **{"model.safetensors": struct.pack("<Q", len(h)) + h +
                          bytes(st[8 + hlen:])})


def main(argv):
    ap = argparse.ArgumentParser(prog="hf_seeds.py")
    ap.add_argument("out")
    ap.add_argument("--dirs")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    for name, files in seeds():
        data = pack(files)
        # the marker may appear only where pack put it
        assert data.count(b"@@@") == len(files) - 1, name
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(data)
        if a.dirs:
            d = os.path.join(a.dirs, name)
            os.makedirs(d, exist_ok=True)
            for fn, b in files.items():
                with open(os.path.join(d, fn), "wb") as f:
                    f.write(b)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
