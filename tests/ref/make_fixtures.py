#!/usr/bin/python3
"""make_fixtures.py - golden SuperLoRA fixtures for stories260K.

  make_fixtures.py write [--model M.bin] [--dir tests/fixtures]
      (Re)generate the committed adapters <name>.safetensors and
      manifest.json {name: {file, prompt_tokens, description}}.
      Deterministic: the same files every run.
  make_fixtures.py expected --model M.bin --out DIR [--dir tests/fixtures]
      For every manifest entry write DIR/<name>.deltas.safetensors (F32
      layers.{l}.{module}, shape (out, in)) and DIR/<name>.logits.json
      {"tokens", "logits" (every position), "greedy" (12 tokens)} computed
      by superlora_ref + model_ref. Not committed: generated at test time.
  make_fixtures.py bad --model M.bin --out DIR
      One corrupted adapter per spec rejection rule, plus DIR/index.json
      {file: expected message fragment}; the fragment is the key, tensor or
      phrase of this reference's message (a key/tensor name where one
      exists, so other implementations can match it too).

Fixtures cover every row of the spec's section 8 table and combinations;
factor magnitudes are calibrated so that rms(dW) is about 5% of the rms of
the targeted base weights.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import superlora_ref as sl  # noqa: E402
import model_ref as mr  # noqa: E402

DEFAULT_DIR = os.path.join(HERE, "..", "fixtures")
PROMPT = [1, 403, 407, 261, 378, 432, 383, 286]
TARGET_RATIO = 0.05


# ---------------------------------------------------------------- factor specs

def cp(n, r):
    return {"n": list(n), "r": [r] * len(n), "core": False}


def tucker(n, r):
    return {"n": list(n), "r": list(r), "core": True}


def fold2d(ng):
    a = math.isqrt(ng - 1) + 1
    return [a, -(-ng // a)]


def per_matrix(fn):
    """groups = "matrix": one group per target, fn((out, in)) -> factors."""
    return lambda info: [fn(s) for s in info["mat_shapes"]]


def per_group(fn):
    return lambda info: [fn(ng) for ng in info["group_len"]]


def lokr(o, i, a, b, r):
    """LoKr factors for an (o, i) matrix: full (a, b) kron low-rank."""
    return [cp([a, b], min(a, b)), cp([o // a, i // b], r)]


def lokr_std(s):
    o, i = s
    a = 4 if o % 8 else 8
    return lokr(o, i, a, 8 if i % 8 == 0 else 4, 2)


def mixed_dtype(name):
    if name.endswith(".core"):
        return "BF16"
    return {"f0": "F16", "f1": "BF16"}.get(name.split(".")[-1], "F32")


FIXTURES = [
    ("lora_wq_wv", "plain LoRA r=4 on wq, wv, all layers (layers/groups/order defaulted),"
     " extra __metadata__ key ignored",
     {"modules": ["wq", "wv"]},
     per_matrix(lambda s: [cp(s, 4)]), "F32", {"extra_meta": {"format": "pt"}}),
    ("lora2d_groups3", "2D group-wise SuperLoRA: groups=3 over wq,wk,wv layers 0,1; near-square"
     " over-sized fold, CP r=4, alpha 0.5",
     {"modules": ["wq", "wk", "wv"], "layers": [0, 1], "groups": 3, "alpha": 0.5},
     per_group(lambda ng: [cp(fold2d(ng), 4)]), "F32", {}),
    ("lokr", "LoKr: groups matrix, K=2 (full 8x8 / 4x8 factor kron rank-2), wq wo w1 layers 1,3;"
     " tensors stored in reverse order",
     {"modules": ["wq", "wo", "w1"], "layers": [1, 3], "groups": "matrix"},
     per_matrix(lokr_std), "F32", {"reverse": True}),
    ("lonkr_k3", "LoNKr K=3 on wv, w3 layers 0,2,4: CP, Tucker (ranks 2x3), CP; alpha 1.5",
     {"modules": ["wv", "w3"], "layers": [0, 2, 4], "groups": "matrix", "alpha": 1.5},
     per_matrix(lambda s: [cp([2, 4], 2), tucker([2 if s[0] == 172 else 4, 4], [2, 3]),
                           cp([s[0] // (4 if s[0] == 172 else 8), 4], 2)]), "F32", {}),
    ("lotr_module", "LoTR-style: order module, groups module, M=3 Tucker fold (layers, out, in)"
     " over wq, wo, w2",
     {"modules": ["wq", "wo", "w2"], "order": "module", "groups": "module"},
     lambda info: [[tucker([5, o, i], [2, 4, 3])] for o, i in
                   [(64, 64), (64, 64), (64, 172)]], "F32", {}),
    ("lorta3d_layer", "LoRTA 3D Tucker (12,32,32) per layer: groups layer, wq wk wv wo,"
     " layers 0,2,3",
     {"modules": ["wq", "wk", "wv", "wo"], "layers": [0, 2, 3], "groups": "layer"},
     per_group(lambda ng: [tucker([12, 32, 32], [3, 4, 4])]), "F32", {}),
    ("lorta4d", "LoRTA 4D Tucker (8,8,26,27) over-sized fold, groups=1, w1 w3 layers 0,4,"
     " alpha 0.75",
     {"modules": ["w1", "w3"], "layers": [0, 4], "groups": 1, "alpha": 0.75},
     per_group(lambda ng: [tucker([8, 8, 26, 27], [2, 2, 3, 3])]), "F32", {}),
    ("lorta5d", "LoRTA 5D Tucker (8,8,8,6,10), groups=2 over wq wk wv wo all layers",
     {"modules": ["wq", "wk", "wv", "wo"], "groups": 2},
     per_group(lambda ng: [tucker([8, 8, 8, 6, 10], [2, 2, 2, 2, 2])]), "F32", {}),
    ("lora_shuffled", "LoRA r=3 on wk, wo layers 1,2 with shuffle seed 7",
     {"modules": ["wk", "wo"], "layers": [1, 2], "shuffle": {"seed": 7}},
     per_matrix(lambda s: [cp(s, 3)]), "F32", {}),
    ("proj_tucker3d", "fastfood-projected Tucker 3D (8,8,8) P=512 << N=30720, groups=1,"
     " wq wv all layers",
     {"modules": ["wq", "wv"], "groups": 1, "projection": {"kind": "fastfood", "seed": 11}},
     per_group(lambda ng: [tucker([8, 8, 8], [2, 2, 2])]), "F32", {}),
    ("proj_shuffle_tucker4d", "projected + shuffled Tucker 4D (6,6,6,6), groups=2, all seven"
     " modules layers 1,2, alpha -0.5",
     {"modules": ["wq", "wk", "wv", "wo", "w1", "w2", "w3"], "layers": [1, 2], "groups": 2,
      "shuffle": {"seed": 3}, "projection": {"kind": "fastfood", "seed": 5}, "alpha": -0.5},
     per_group(lambda ng: [tucker([6, 6, 6, 6], [2, 2, 2, 2])]), "F32", {}),
    ("lokr_shuffle", "LoKr + shuffle (seed 2^53-1) on wk, w2 layers 0,1",
     {"modules": ["wk", "w2"], "layers": [0, 1], "shuffle": {"seed": 2 ** 53 - 1}},
     per_matrix(lokr_std), "F32", {}),
    ("groups_layer_2d", "groups layer, 2D CP r=3 fold, wq wv w2 layers 0,2,4, F16 tensors",
     {"modules": ["wq", "wv", "w2"], "layers": [0, 2, 4], "groups": "layer"},
     per_group(lambda ng: [cp(fold2d(ng), 3)]), "F16", {}),
    ("hf_aliases_all", "all seven modules by HF alias in a permuted order, layer 3, LoRA r=2,"
     " alpha 2",
     {"modules": ["down_proj", "q_proj", "up_proj", "k_proj", "o_proj", "gate_proj", "v_proj"],
      "layers": [3], "alpha": 2.0},
     per_matrix(lambda s: [cp(s, 2)]), "F32", {}),
    ("f16_lora", "LoRA r=4 on wq, wk layers 0,1,2 with F16 tensors",
     {"modules": ["wq", "wk"], "layers": [0, 1, 2]},
     per_matrix(lambda s: [cp(s, 4)]), "F16", {}),
    ("bf16_groups2", "2D group-wise CP r=4, groups=2 over w1 w2 layer 4, BF16 tensors",
     {"modules": ["w1", "w2"], "layers": [4], "groups": 2},
     per_group(lambda ng: [cp(fold2d(ng), 4)]), "BF16", {}),
    ("mixed_dtypes_tucker3d", "Tucker 3D (16,16,16) ranks (2,3,4) per matrix on wo layers 1,2;"
     " F16, BF16, F32 factors and a BF16 core",
     {"modules": ["wo"], "layers": [1, 2]},
     per_matrix(lambda s: [tucker([16, 16, 16], [2, 3, 4])]), mixed_dtype, {}),
    ("cp3", "CP with M=3 (16,16,22) r=3, groups=4 over w1 w2 layer 2",
     {"modules": ["w1", "w2"], "layers": [2], "groups": 4},
     per_group(lambda ng: [cp([16, 16, 22], 3)]), "F32", {}),
    ("proj_oversize", "projection with P_g=2304 > N_g=2048 (48x48 CP r=2) on wk layer 0",
     {"modules": ["wk"], "layers": [0], "projection": {"kind": "fastfood", "seed": 99}},
     per_matrix(lambda s: [cp([48, 48], 2)]), "F32", {}),
    ("kron_m1", "K=2 with M=1: CP vector (32) kron Tucker vector (64, core (2)) on wk layer 4",
     {"modules": ["wk"], "layers": [4]},
     per_matrix(lambda s: [cp([32], 3), tucker([64], [2])]), "F32", {}),
    ("proj_groups37", "projected 4x4 rank-1 CP per group, groups=37 (uneven N_g 110/111 crossing"
     " matrix boundaries) over wk, wv layer 0, order module, shuffle seed 1",
     {"modules": ["wk", "wv"], "layers": [0], "order": "module", "groups": 37,
      "shuffle": {"seed": 1}, "projection": {"kind": "fastfood", "seed": 12345}},
     per_group(lambda ng: [cp([4, 4], 1)]), "F32", {}),
    ("proj_lora_tiny", "extreme few-parameter: per-matrix projected 16x16 rank-1 on wq all"
     " layers, order module",
     {"modules": ["wq"], "order": "module", "projection": {"kind": "fastfood", "seed": 0}},
     per_matrix(lambda s: [cp([16, 16], 1)]), "F32", {"prompt": [1, 259, 300, 412, 290, 511]}),
]


# ---------------------------------------------------------------- building

def group_info(cfgp):
    shape = cfgp["shape"]
    return {"group_len": cfgp["group_len"],
            "mat_shapes": [shape.module_shape(m) for _, m in cfgp["targets"]]}


def group_delta(fl, ng, projection, g):
    t = sl.group_code(fl)
    return t[:ng] if projection is None else sl.fastfood(t, ng, projection, g)


def build_fixture(model, name, config, groups_fn, dtype, opts):
    """Returns (adapter bytes, calibrated)."""
    rng = np.random.default_rng(sum(map(ord, name)))
    cfg = {"version": 1, "base": sl.base_of(model.shape)}
    cfg.update(config)
    cfgp = sl.parse_config(json.dumps(cfg), model.shape)
    specs = groups_fn(group_info(cfgp))
    assert len(specs) == len(cfgp["group_len"]), name
    # rms of the base weights each group's delta lands on (all of them when shuffled)
    w_all = np.concatenate([model.w[m][l].ravel() for l, m in cfgp["targets"]])
    offs = np.cumsum([0] + cfgp["group_len"])
    dtype_of = dtype if callable(dtype) else (lambda n: dtype)
    tensors = []
    for g, spec in enumerate(specs):
        raw = []
        for k, f in enumerate(spec):
            arrs = [rng.standard_normal((n, r)) for n, r in zip(f["n"], f["r"])]
            core = rng.standard_normal(tuple(f["r"])) if f["core"] else None
            raw.append({"A": arrs, "core": core})
        d = group_delta(raw, cfgp["group_len"][g], cfgp["projection"], g)
        rms = math.sqrt(np.mean(d * d)) * abs(cfgp["alpha"])
        w_g = w_all if cfgp["shuffle"] is not None else w_all[offs[g]:offs[g + 1]]
        w_rms = math.sqrt(np.mean(w_g * w_g))
        count = sum(len(f["A"]) + (f["core"] is not None) for f in raw)
        c = (TARGET_RATIO * w_rms / rms) ** (1.0 / count)
        for k, f in enumerate(raw):
            for m, a in enumerate(f["A"]):
                tensors.append(("g%d.k%d.f%d" % (g, k, m), (a * c).astype(np.float32)))
            if f["core"] is not None:
                tensors.append(("g%d.k%d.core" % (g, k), (f["core"] * c).astype(np.float32)))
    items = [(n, a, dtype_of(n)) for n, a in tensors]
    if opts.get("reverse"):
        items.reverse()
    return sl.build_adapter(cfg, items, extra_meta=opts.get("extra_meta"))


def cmd_write(args):
    model = mr.Model(args.model)
    os.makedirs(args.dir, exist_ok=True)
    manifest = {}
    total = 0
    for name, desc, config, groups_fn, dtype, opts in FIXTURES:
        data = build_fixture(model, name, config, groups_fn, dtype, opts)
        fname = name + ".safetensors"
        with open(os.path.join(args.dir, fname), "wb") as f:
            f.write(data)
        total += len(data)
        ad, dws = sl.load_and_generate(data, model.shape)
        ratios = [np.linalg.norm(dw) / np.linalg.norm(model.w[m][l]) for l, m, dw in dws]
        print("%-24s %7d bytes  %6d params  N=%6d  G=%3d  |dW|/|W| %.3f..%.3f"
              % (name, len(data), ad.n_params, ad.cfg["N"], len(ad.groups),
                 min(ratios), max(ratios)))
        manifest[name] = {"file": fname, "prompt_tokens": opts.get("prompt", PROMPT),
                          "description": desc}
    with open(os.path.join(args.dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print("total %d bytes in %d fixtures" % (total, len(manifest)))
    return 0


def cmd_expected(args):
    model = mr.Model(args.model)
    with open(os.path.join(args.dir, "manifest.json")) as f:
        manifest = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    for name, ent in sorted(manifest.items()):
        with open(os.path.join(args.dir, ent["file"]), "rb") as f:
            data = f.read()
        _, dws = sl.load_and_generate(data, model.shape)
        sl.write_safetensors(os.path.join(args.out, name + ".deltas.safetensors"),
                             [("layers.%d.%s" % (l, m), dw, "F32") for l, m, dw in dws])
        w = model.w.copy()
        for l, m, dw in dws:
            w[m] = w[m].copy()
            w[m][l] = (w[m][l].astype(np.float32) + dw).astype(np.float64)
        toks = ent["prompt_tokens"]
        logits = model.forward(toks, w)
        out = {"tokens": toks,
               "logits": [[float("%.9g" % v) for v in row] for row in logits],
               "greedy": model.greedy(toks, 12, w)}
        with open(os.path.join(args.out, name + ".logits.json"), "w") as f:
            json.dump(out, f)
    print("wrote expected outputs for %d fixtures to %s" % (len(manifest), args.out))
    return 0


# ---------------------------------------------------------------- bad adapters

def raw_file(header, data=b""):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def bad_cases(shape):
    """List of (name, file bytes, expected message fragment), one per rule."""
    base = sl.base_of(shape)
    rng = np.random.default_rng(1)
    B = (0.01 * rng.standard_normal((64, 2))).astype(np.float32)
    A = (0.01 * rng.standard_normal((64, 2))).astype(np.float32)
    good_cfg = {"version": 1, "base": base, "modules": ["wq"], "layers": [0]}
    good_t = [("g0.k0.f0", B, "F32"), ("g0.k0.f1", A, "F32")]
    cases = []

    def add(name, frag, cfg=None, tensors=None, **kw):
        cases.append((name, sl.build_adapter(good_cfg if cfg is None else cfg,
                                             good_t if tensors is None else tensors, **kw), frag))

    def cfg_with(**kv):
        c = json.loads(json.dumps(good_cfg))
        for k, v in kv.items():
            if v is DROP:
                del c[k]
            else:
                c[k] = v
        return c

    def base_with(**kv):
        b = dict(base)
        b.update(kv)
        return cfg_with(base=b)

    cfg_text = json.dumps(good_cfg)
    meta_hdr = {"__metadata__": {"superlora": cfg_text}}
    good_bytes = sl.build_adapter(good_cfg, good_t)
    hlen = struct.unpack("<Q", good_bytes[:8])[0]
    header = json.loads(good_bytes[8:8 + hlen])
    data = good_bytes[8 + hlen:]

    def hdr_with(fn, payload=data):
        h = json.loads(json.dumps(header))
        fn(h)
        return raw_file(h, payload)

    # file and header framing
    cases.append(("short_file", b"\x10\x00\x00", "8 bytes"))
    cases.append(("header_beyond_file", struct.pack("<Q", 4096) + b"{}", "header length"))
    cases.append(("header_over_16mib",
                  struct.pack("<Q", sl.MAX_HEADER + 8) + b" " * (sl.MAX_HEADER + 8),
                  "16 MiB"))
    cases.append(("header_not_json", raw_file(b"{\"a\": 1,,}"), "JSON"))
    cases.append(("header_not_object", raw_file(b"[1, 2, 3]"), "object"))
    cases.append(("header_duplicate_tensor", raw_file(
        b'{"__metadata__": {"superlora": ' + json.dumps(cfg_text).encode() + b'},'
        b' "g0.k0.f0": {"dtype": "F32", "shape": [64, 2], "data_offsets": [0, 512]},'
        b' "g0.k0.f0": {"dtype": "F32", "shape": [64, 2], "data_offsets": [512, 1024]}}',
        data), "duplicate"))
    cases.append(("missing_metadata", hdr_with(lambda h: h.pop("__metadata__")),
                  "__metadata__"))
    cases.append(("missing_superlora", hdr_with(
        lambda h: h.__setitem__("__metadata__", {"format": "pt"})), "superlora"))
    cases.append(("metadata_not_object", hdr_with(
        lambda h: h.__setitem__("__metadata__", "superlora")), "__metadata__"))
    cases.append(("tensor_entry_not_object", hdr_with(
        lambda h: h.__setitem__("g0.k0.f1", [0, 512])), "g0.k0.f1"))
    cases.append(("tensor_entry_no_dtype", hdr_with(
        lambda h: h["g0.k0.f1"].pop("dtype")), "g0.k0.f1"))
    cases.append(("tensor_shape_negative", hdr_with(
        lambda h: h["g0.k0.f1"].__setitem__("shape", [-64, -2])), "g0.k0.f1"))
    cases.append(("superlora_not_string", hdr_with(
        lambda h: h["__metadata__"].__setitem__("superlora", good_cfg)), "superlora"))
    cases.append(("superlora_not_json", hdr_with(
        lambda h: h["__metadata__"].__setitem__("superlora", "{version: 1}")), "superlora"))
    cases.append(("superlora_not_object", hdr_with(
        lambda h: h["__metadata__"].__setitem__("superlora", "[1]")), "superlora"))
    # config keys
    add("version_2", "version", cfg_with(version=2))
    add("version_real", "version", cfg_with(version=1.0))
    add("version_string", "version", cfg_with(version="1"))
    add("missing_version", "version", cfg_with(version=DROP))
    add("missing_base", "base", cfg_with(base=DROP))
    add("missing_modules", "modules", cfg_with(modules=DROP))
    add("unknown_key_top", "rank", cfg_with(rank=4))
    b = dict(base, seq_len=512)
    add("unknown_key_base", "seq_len", cfg_with(base=b))
    add("unknown_key_shuffle", "salt", cfg_with(shuffle={"seed": 1, "salt": 2}))
    add("unknown_key_projection", "scale",
        cfg_with(projection={"kind": "fastfood", "seed": 1, "scale": 2}))
    add("null_alpha", "alpha", cfg_with(alpha=None))
    add("null_shuffle", "shuffle", cfg_with(shuffle=None))
    add("null_seed", "seed", cfg_with(shuffle={"seed": None}))
    add("null_layer", "layers", cfg_with(layers=[0, None]))
    add("duplicate_key_config", "duplicate", cfg_text[:-1] + ', "layers": [0]}')
    add("duplicate_key_base", "duplicate",
        cfg_text.replace('"dim": 64', '"dim": 64, "dim": 64'))
    add("base_not_object", "base", cfg_with(base=[64]))
    add("base_missing_dim", "dim", cfg_with(base={k: v for k, v in base.items() if k != "dim"}))
    add("base_dim_mismatch", "dim", base_with(dim=32))
    add("base_layers_mismatch", "n_layers", base_with(n_layers=6))
    add("base_heads_mismatch", "n_heads", base_with(n_heads=4))
    add("base_kv_heads_mismatch", "n_kv_heads", base_with(n_kv_heads=8))
    add("base_hidden_mismatch", "hidden_dim", base_with(hidden_dim=176))
    add("base_vocab_mismatch", "vocab_size", base_with(vocab_size=32000))
    add("base_dim_real", "dim", base_with(dim=64.0))
    # modules and layers
    add("modules_empty", "modules", cfg_with(modules=[]))
    add("modules_not_list", "modules", cfg_with(modules="wq"))
    add("module_not_string", "modules", cfg_with(modules=[1]))
    add("module_unknown", "wx", cfg_with(modules=["wx"]))
    add("module_repeated", "modules", cfg_with(modules=["wq", "wq"]))
    add("module_repeated_alias", "modules", cfg_with(modules=["wq", "q_proj"]))
    add("layers_empty", "layers", cfg_with(layers=[]))
    add("layers_unsorted", "layers", cfg_with(layers=[1, 0]))
    add("layers_repeated", "layers", cfg_with(layers=[0, 0]))
    add("layers_out_of_range", "layers", cfg_with(layers=[5]))
    add("layers_negative", "layers", cfg_with(layers=[-1]))
    add("layers_real", "layers", cfg_with(layers=[0.0]))
    add("order_bad", "order", cfg_with(order="row"))
    # seeds
    add("seed_real", "seed", cfg_with(shuffle={"seed": 1.5}))
    add("seed_negative", "seed", cfg_with(shuffle={"seed": -1}))
    add("seed_too_big", "seed", cfg_with(shuffle={"seed": 2 ** 53}))
    add("seed_string", "seed", cfg_with(shuffle={"seed": "7"}))
    add("seed_bool", "seed", cfg_with(shuffle={"seed": True}))
    add("seed_missing", "seed", cfg_with(shuffle={}))
    add("projection_seed_too_big", "seed",
        cfg_with(projection={"kind": "fastfood", "seed": 2 ** 53}))
    add("projection_kind", "kind", cfg_with(projection={"kind": "gaussian", "seed": 1}))
    add("projection_no_kind", "kind", cfg_with(projection={"seed": 1}))
    # groups
    add("groups_zero", "groups", cfg_with(groups=0))
    add("groups_above_n", "groups", cfg_with(groups=4097))
    add("groups_string", "groups", cfg_with(groups="tensor"))
    add("groups_real", "groups", cfg_with(groups=1.0))
    add("groups_layer_order_module", "groups", cfg_with(groups="layer", order="module"))
    add("groups_module_order_layer", "groups", cfg_with(groups="module"))
    add("groups_module_default_order", "groups", cfg_with(groups="module", order="layer"))
    # alpha
    add("alpha_infinite", "alpha", cfg_text[:-1] + ', "alpha": 1e400}')
    add("alpha_nan_literal", "superlora", cfg_text[:-1] + ', "alpha": NaN}')
    add("alpha_string", "alpha", cfg_with(alpha="1"))
    # tensor names and structure
    add("tensor_missing", "g0.k0.f1", tensors=good_t[:1] + [("g0.k0.f2", A, "F32")])
    add("tensor_missing_all", "g0.k0.f0", tensors=[])
    add("tensor_extra_group", "g1.k0.f0", tensors=good_t + [("g1.k0.f0", B, "F32")])
    add("tensor_leading_zero_f", "g0.k0.f01",
        tensors=[good_t[0], ("g0.k0.f01", A, "F32")])
    add("tensor_leading_zero_g", "g00.k0.f1",
        tensors=[good_t[0], ("g00.k0.f1", A, "F32")])
    add("tensor_misnamed", "lora_A", tensors=good_t + [("lora_A", A, "F32")])
    add("tensor_missing_kron", "g0.k1.f0",
        tensors=good_t + [("g0.k2.f0", B[:1], "F32"), ("g0.k2.f1", A[:1], "F32")])
    add("core_without_factors", "g0.k1.core",
        tensors=good_t + [("g0.k1.core", np.ones((1, 1), np.float32), "F32")])
    add("factor_1d", "g0.k0.f0", tensors=[("g0.k0.f0", B[:, 0], "F32"), good_t[1]])
    add("factor_3d", "g0.k0.f1", tensors=[good_t[0], ("g0.k0.f1", A.reshape(64, 2, 1), "F32")])
    add("factor_zero_dim", "g0.k0.f1",
        tensors=[good_t[0], ("g0.k0.f1", np.zeros((64, 0), np.float32), "F32")])
    kron_t = [("g0.k0.f0", B[:8, :1], "F32"), ("g0.k0.f1", A[:8, :1], "F32"),
              ("g0.k1.f0", B[:8, :1], "F32"), ("g0.k1.f1", A[:8, :1], "F32"),
              ("g0.k1.f2", A[:1, :1], "F32")]
    add("kron_order_differs", "order", tensors=kron_t)
    core = np.ones((2, 3), np.float32)
    add("core_shape", "g0.k0.core", tensors=good_t + [("g0.k0.core", core, "F32")])
    add("core_ndim", "g0.k0.core",
        tensors=good_t + [("g0.k0.core", np.ones((2, 2, 1), np.float32), "F32")])
    add("cp_unequal_ranks", "g0.k0",
        tensors=[good_t[0], ("g0.k0.f1", np.ones((64, 3), np.float32), "F32")])
    add("code_too_short", "g0",
        tensors=[good_t[0], ("g0.k0.f1", A[:63], "F32")])
    add("code_over_sanity_bound", "sanity bound",
        tensors=[("g0.k0.f0", np.ones((64 + 1025, 1), np.float32), "F32"),
                 ("g0.k0.f1", np.ones((64, 1), np.float32), "F32")],
        cfg=cfg_with(projection={"kind": "fastfood", "seed": 1}))
    add("code_over_sanity_bound_unprojected", "sanity bound",
        tensors=[("g0.k0.f0", np.ones((64 + 1025, 1), np.float32), "F32"),
                 ("g0.k0.f1", np.ones((64, 1), np.float32), "F32")])
    cases.append(gd_zero_case(shape, base))
    # dtypes and data offsets
    cases.append(("dtype_f64", hdr_with(lambda h: h["g0.k0.f0"].__setitem__("dtype", "F64")),
                  "dtype"))
    cases.append(("dtype_i32", hdr_with(lambda h: h["g0.k0.f0"].__setitem__("dtype", "I32")),
                  "dtype"))
    cases.append(("offsets_out_of_range", hdr_with(
        lambda h: h["g0.k0.f1"].__setitem__("data_offsets", [512, 1028])), "g0.k0.f1"))
    cases.append(("offsets_shape_mismatch", hdr_with(
        lambda h: h["g0.k0.f1"].__setitem__("shape", [64, 3])), "g0.k0.f1"))
    cases.append(("offsets_overlap", hdr_with(
        lambda h: h["g0.k0.f1"].__setitem__("data_offsets", [256, 768]), data[:768]),
        "overlap"))
    cases.append(("offsets_gap", hdr_with(
        lambda h: h["g0.k0.f1"].__setitem__("data_offsets", [516, 1028]), data + b"\0" * 4),
        "gap"))
    cases.append(("offsets_trailing", raw_file(header, data + b"\0" * 4), "trailing"))
    cases.append(("offsets_reversed", hdr_with(
        lambda h: h["g0.k0.f1"].__setitem__("data_offsets", [1024, 512])), "g0.k0.f1"))
    cases.append(("offsets_not_list", hdr_with(
        lambda h: h["g0.k0.f1"].__setitem__("data_offsets", 512)), "g0.k0.f1"))
    # non-finite values
    for nm, val, dt in (("nan_f32", np.nan, "F32"), ("inf_f32", np.inf, "F32"),
                        ("inf_f16", np.inf, "F16"), ("nan_bf16", np.nan, "BF16"),
                        ("overflow_f16", 1e6, "F16")):
        bad = A.copy()
        bad[5, 1] = val
        add(nm, "g0.k0.f1", tensors=[(good_t[0][0], B, dt), ("g0.k0.f1", bad, dt)])
    big = np.full((64, 1), 1e20, np.float32)
    add("dw_overflow", "dW", tensors=[("g0.k0.f0", big, "F32"), ("g0.k0.f1", big, "F32")])
    # parameter count (10,000,128 > 10,000,000)
    r = 78126
    add("too_many_params", "parameter count",
        tensors=[("g0.k0.f0", np.zeros((64, r), np.float32), "F16"),
                 ("g0.k0.f1", np.zeros((64, r), np.float32), "F16")])
    return cases


DROP = object()


def gd_zero_case(shape, base):
    """An adapter where one group's fastfood diagonal gd is all zero: every
    group has P_g = N_g = 1 (L = 1), and the seed is searched so that some
    g < G has gd_0 = 0."""
    G = 2048  # wk of one layer, one group per element
    g = np.arange(G, dtype=np.uint64)
    for seed in range(1, 1 << 20):
        sg = sl.rnd_array(seed, 1, g)
        # gd_0 = rnd(sg, 3, 0): inner mix per sg, vectorised
        inner = sl._mix64_array(sg ^ np.uint64(sl.mix64(3 + sl.GAMMA)))
        with np.errstate(over="ignore"):
            u = sl._mix64_array(inner + np.uint64(sl.GAMMA))
        m = np.uint64(0xFFFF)
        s = ((u & m) + ((u >> np.uint64(16)) & m) + ((u >> np.uint64(32)) & m)
             + (u >> np.uint64(48))).astype(np.int64) - 131070
        hit = np.nonzero(s == 0)[0]
        if hit.size:
            break
    cfg = {"version": 1, "base": base, "modules": ["wk"], "layers": [0], "groups": G,
           "projection": {"kind": "fastfood", "seed": seed}}
    one = np.ones((1, 1), np.float32)
    tensors = [("g%d.k0.f0" % i, one, "F32") for i in range(G)]
    return ("fastfood_gd_zero", sl.build_adapter(cfg, tensors), "norm2")


def cmd_bad(args):
    shape = sl.read_model_shape(args.model)
    os.makedirs(args.out, exist_ok=True)
    index = {}
    for name, data, frag in bad_cases(shape):
        fname = name + ".safetensors"
        with open(os.path.join(args.out, fname), "wb") as f:
            f.write(data)
        index[fname] = frag
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote %d corrupted adapters to %s" % (len(index), args.out))
    return 0


def main(argv):
    ap = argparse.ArgumentParser(prog="make_fixtures.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--model", default=os.path.join(HERE, "..", "..", "models", "stories260K.bin"))
    w.add_argument("--dir", default=DEFAULT_DIR)
    e = sub.add_parser("expected")
    e.add_argument("--model", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--dir", default=DEFAULT_DIR)
    b = sub.add_parser("bad")
    b.add_argument("--model", required=True)
    b.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    return {"write": cmd_write, "expected": cmd_expected, "bad": cmd_bad}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
