#!/usr/bin/python3
"""quant_types.py - the tensor types llama.cpp's llama-quantize gives each
tensor of a llama-architecture model, for the file types `slorad quantize`
offers, checked against a file it wrote. The rules are transcribed from
llama.cpp's llama_tensor_get_type (src/llama-quant.cpp) and
llama_model_quantize_impl, read independently of slorad's code:

  - only tensors whose name ends in "weight" with at least 2 dimensions are
    quantized; the others keep their type;
  - F16/BF16 (and --pure): every such tensor in the type, no per-tensor rule;
  - the classifier (output.weight, or token_embd.weight when the file has
    no output.weight) takes Q8_0 when its columns do not hold whole blocks
    of the type, else Q6_K unless the type is Q8_0;
  - attn_v: Q6_K for Q4_K_M/Q5_K_M on use_more_bits layers, Q5_K for
    Q4_K_S on layers 0..3; ffn_down: Q6_K for Q4_K_M/Q5_K_M on
    use_more_bits layers, Q5_K for Q4_K_S on the first n/8 layers;
    use_more_bits(i, n) = i < n/8 or i >= 7n/8 or (i - n/8) % 3 == 2;
  - a tensor whose columns do not hold whole blocks of its type falls back:
    Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and to F16 when that does not
    fit either. llama.cpp refuses a 32-element type on such columns; slorad
    documents F16 there (the rule marked "slorad" below).

  quant_types.py SRC.gguf OUT.gguf TYPE [--pure]
Prints the count of tensors per type; exits 1 listing every tensor whose
type differs, or when general.file_type differs from llama.cpp's number.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ref"))
import gguf_ref  # noqa: E402

F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, BF16 = 0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 30
NAMES = {F32: "F32", F16: "F16", Q4_0: "Q4_0", Q4_1: "Q4_1", Q5_0: "Q5_0", Q5_1: "Q5_1",
         Q8_0: "Q8_0", Q4_K: "Q4_K", Q5_K: "Q5_K", Q6_K: "Q6_K", BF16: "BF16"}
BLOCK = {F32: 1, F16: 1, BF16: 1, Q4_0: 32, Q4_1: 32, Q5_0: 32, Q5_1: 32, Q8_0: 32,
         Q4_K: 256, Q5_K: 256, Q6_K: 256}
# name -> (base type, llama_ftype); llama-quantize's Q4_K / Q5_K are the _M mixtures
FTYPES = {"f32": (F32, 0), "f16": (F16, 1), "q4_0": (Q4_0, 2), "q4_1": (Q4_1, 3),
          "q8_0": (Q8_0, 7), "q5_0": (Q5_0, 8), "q5_1": (Q5_1, 9), "q4_k_s": (Q4_K, 14),
          "q4_k_m": (Q4_K, 15), "q4_k": (Q4_K, 15), "q5_k_s": (Q5_K, 16),
          "q5_k_m": (Q5_K, 17), "q5_k": (Q5_K, 17), "q6_k": (Q6_K, 18), "bf16": (BF16, 32)}
Q4_K_S, Q4_K_M, Q5_K_M = 14, 15, 17


def more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def expected(name, ne, src_type, ftype_name, pure, n_layers, has_output):
    base, ftype = FTYPES[ftype_name]
    if not name.endswith("weight") or len(ne) < 2:
        return src_type
    if pure or BLOCK[base] == 1:
        return base
    t = base
    layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
    if name == "output.weight" or (not has_output and name == "token_embd.weight"):
        t = Q8_0 if ne[0] % BLOCK[base] else Q6_K if base != Q8_0 else Q8_0
    elif name == "token_embd.weight":
        pass
    elif "attn_v.weight" in name:
        if ftype in (Q4_K_M, Q5_K_M) and more_bits(layer, n_layers):
            t = Q6_K
        elif ftype == Q4_K_S and layer < 4:
            t = Q5_K
    elif "ffn_down" in name:
        if ftype in (Q4_K_M, Q5_K_M) and more_bits(layer, n_layers):
            t = Q6_K
        elif ftype == Q4_K_S and layer < n_layers // 8:
            t = Q5_K
    if ne[0] % BLOCK[t]:
        t = {Q4_K: Q5_0, Q5_K: Q5_1, Q6_K: Q8_0}.get(t, F16)  # F16 for 32-blocks: slorad
        if ne[0] % BLOCK[t]:
            t = F16
    return t


def main(argv):
    src, out, ftype_name = argv[0], argv[1], argv[2].lower()
    pure = "--pure" in argv[3:]
    _, _, src_infos, _ = gguf_ref._header(src)
    _, kv, infos, _ = gguf_ref._header(out)
    src_types = {name: t for name, _, t, _ in src_infos}
    names = [name for name, _, _, _ in infos]
    n_layers = len([n for n in names if n.endswith("attn_v.weight")])
    has_output = "output.weight" in names
    bad, counts = [], {}
    if sorted(names) != sorted(src_types):
        bad.append("tensor names differ from the source's")
    for name, ne, t, _ in infos:
        want = expected(name, ne, src_types.get(name), ftype_name, pure, n_layers, has_output)
        counts[NAMES.get(t, t)] = counts.get(NAMES.get(t, t), 0) + 1
        if t != want:
            bad.append("%s %s: %s, llama.cpp's rule gives %s"
                       % (name, ne, NAMES.get(t, t), NAMES.get(want, want)))
    if kv.get("general.file_type") != FTYPES[ftype_name][1]:
        bad.append("general.file_type %s, llama.cpp writes %d"
                   % (kv.get("general.file_type"), FTYPES[ftype_name][1]))
    print("types: " + ", ".join("%s x%d" % kc for kc in sorted(counts.items())))
    for b in bad:
        print("FAIL: " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
