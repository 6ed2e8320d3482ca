#!/usr/bin/env bash
# hf_model.sh - Hugging Face checkpoint directories (config.json,
# model.safetensors or shards + index) against the GGUF of the same weights:
# tests/ref/gguf_to_hf.py writes the directory from a gen-model GGUF
# independently of slorad (llama q/k rows back into HF's rotate-half order).
# The same adapter gives the same logits on both forms (deltas are defined
# in GGUF row order); `slorad convert` turns the directory back into a GGUF
# with the same logits; bad directories are refused naming the key or tensor.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
S="$BUILD/slorad"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TOK=1,17,250,3,99,42,42,7,311,0,128,64,1000,2047

# same NAME A B TOL: logits files agree within max|a-b| <= TOL * max|b|
same() {
    "$PYTHON" - "$2" "$3" "$4" <<'PY' || fail "$1: logits differ"
import json, sys
import numpy as np
a, b = (np.array(json.load(open(p))["logits"]) for p in sys.argv[1:3])
assert a.shape == b.shape, (a.shape, b.shape)
d = np.abs(a - b).max() / np.abs(b).max()
assert d <= float(sys.argv[3]), d
PY
    echo "ok: $1"
}
logits() { "$S" logits --model "$1" --tokens $TOK --positions all ${2:+--adapter "$2"} 2>/dev/null; }

"$S" gen-model --dim 64 --hidden 160 --layers 2 --heads 8 --kv-heads 2 --vocab 2048 \
    --seq-len 64 --rope-theta 500000 --rms-eps 1e-6 --seed 4 -o "$tmp/l.gguf"
"$S" gen-model --dim 64 --hidden 160 --layers 2 --heads 4 --kv-heads 1 --vocab 2048 \
    --seq-len 64 --rope-scale 2 --bias --shared-classifier --seed 9 -o "$tmp/lb.gguf"
"$S" gen-model --arch qwen2 --dim 56 --hidden 96 --layers 2 --heads 7 --kv-heads 1 \
    --vocab 2048 --seq-len 64 --rope-theta 1000000 --shared-classifier --seed 6 -o "$tmp/q.gguf"
"$PYTHON" tests/e2e/lib/gen_adapter.py "$tmp/l.st" --rank 4 --scale 0.2 \
    --modules wq,wk,wv,w2 --base 64,2,8,2,160,2048
"$PYTHON" tests/e2e/lib/gen_adapter.py "$tmp/lb.st" --rank 4 --scale 0.2 \
    --modules wq,wk --base 64,2,4,1,160,2048
"$PYTHON" tests/e2e/lib/gen_adapter.py "$tmp/q.st" --rank 3 --scale 0.2 \
    --modules wq,wk,wo --base 56,2,7,1,96,2048

for m in l lb q; do
    # the same weights with BF16 matrices, through slorad's own conversion
    "$S" convert --model "$tmp/$m.gguf" --dtype bf16 -o "$tmp/${m}_bf16.gguf" \
        || fail "convert $m bf16"
    # FROM DTYPE SHARDS: BF16 matrices are read in place; "bf16" also rounds
    # the norm vectors to BF16 (converted to F32 at load), so it agrees with
    # the GGUF (F32 norms) to that rounding only: tol 1e-2
    for form in "$m keep 1" "$m keep 3" "${m}_bf16 keep 2" "${m}_bf16 bf16 1"; do
        set -- $form
        dir="$tmp/${1}_$2_$3"
        "$PYTHON" tests/ref/gguf_to_hf.py "$tmp/$1.gguf" "$dir" --dtype "$2" --shards "$3" \
            || fail "gguf_to_hf $form"
        ref="$tmp/$1.gguf"
        tol=1e-6
        [ "$2" = bf16 ] && tol=1e-2
        logits "$dir" > "$tmp/hf.json" || fail "$m HF $form"
        logits "$ref" > "$tmp/gg.json" || fail "$m GGUF"
        same "$1 as HF ($2 types, $3 shard(s)) = its GGUF" "$tmp/hf.json" "$tmp/gg.json" $tol
        logits "$dir" "$tmp/$m.st" > "$tmp/hf.json" || fail "$m HF + adapter"
        logits "$ref" "$tmp/$m.st" > "$tmp/gg.json" || fail "$m GGUF + adapter"
        same "$1 as HF ($2 types, $3 shard(s)) + adapter on q/k = its GGUF + adapter" \
            "$tmp/hf.json" "$tmp/gg.json" $tol
    done
    # convert the directory back: llama q/k rows return to GGUF order
    "$S" convert --model "$tmp/${m}_keep_3" -o "$tmp/${m}_back.gguf" || fail "convert $m HF"
    logits "$tmp/${m}_back.gguf" "$tmp/$m.st" > "$tmp/a.json"
    logits "$tmp/$m.gguf" "$tmp/$m.st" > "$tmp/b.json"
    same "$m HF -> convert -> GGUF + adapter = original GGUF + adapter" "$tmp/a.json" \
        "$tmp/b.json" 0
done

# refusals: one change to a valid directory each, with the key or tensor named
base="$tmp/l_keep_1"
refuse() {  # NAME PYTHON-EDIT FRAGMENT
    local d="$tmp/bad"
    rm -rf "$d" && cp -r "$base" "$d"
    "$PYTHON" - "$d" <<PY
import json, os, sys
d = sys.argv[1]
c = json.load(open(os.path.join(d, "config.json")))
$2
json.dump(c, open(os.path.join(d, "config.json"), "w"))
PY
    local out
    if out=$("$S" logits --model "$d" --tokens 1 2>&1); then fail "$1: accepted"; fi
    case "$out" in *"$3"*) echo "ok: refused $1: $3";; *) fail "$1: '$out' lacks '$3'";; esac
}
refuse "gemma" 'c["model_type"] = "gemma"' "model_type 'gemma' is not supported"
refuse "yarn" 'c["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0}' \
    "rope_scaling.rope_type 'yarn' is not supported"
refuse "head_dim" 'c["head_dim"] = 16' "key head_dim is 16"
refuse "window" 'c["sliding_window"] = 16' "key sliding_window is 16, shorter than the served context 64"
refuse "mlp bias" 'c["mlp_bias"] = True' "key mlp_bias"
refuse "gelu" 'c["hidden_act"] = "gelu"' "key hidden_act 'gelu' is not supported"
refuse "no eps" 'del c["rms_norm_eps"]' "missing key rms_norm_eps"
refuse "layers" 'c["num_hidden_layers"] = 3' "missing tensor 'model.layers.2.input_layernorm.weight'"
refuse "kv heads" 'c["num_key_value_heads"] = 4' "tensor 'model.layers.0.self_attn.k_proj.weight' has shape [16, 64], expected [32, 64]"
refuse "bad shard" 'open(os.path.join(d, "model.safetensors.index.json"), "w").write(json.dumps({"weight_map": {"x": "../etc.safetensors"}})); os.remove(os.path.join(d, "model.safetensors"))' \
    "maps to an invalid file name"
refuse "extra tensor" 'import struct; p = os.path.join(d, "model.safetensors"); b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8+n]); end = max(v["data_offsets"][1] for k, v in h.items() if k != "__metadata__"); h["model.layers.0.mlp.extra.weight"] = {"dtype": "F32", "shape": [1], "data_offsets": [end, end + 4]}; hb = json.dumps(h).encode(); hb += b" " * (-len(hb) % 8); open(p, "wb").write(struct.pack("<Q", len(hb)) + hb + b[8+n:] + bytes(4))' \
    "tensor 'model.layers.0.mlp.extra.weight' is not part of a supported model"

# Llama 3 RoPE scaling: config.json's rope_scaling becomes per-dimension
# divisors; convert writes them as rope_freqs.weight. Check them against
# the formula of HF transformers' _compute_llama3_parameters, in numpy.
d3="$tmp/llama3"
cp -r "$tmp/l_keep_1" "$d3"
"$PYTHON" - "$d3" <<'PY'
import json, os, sys
p = os.path.join(sys.argv[1], "config.json")
c = json.load(open(p))
c["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 0.01,
                     "high_freq_factor": 8.0, "original_max_position_embeddings": 64}
json.dump(c, open(p, "w"))
PY
"$S" convert --model "$d3" -o "$tmp/l3.gguf" || fail "convert llama3 HF"
"$PYTHON" - "$tmp/l3.gguf" <<'PY' || fail "rope_freqs differ from the llama3 formula"
import math, sys
import numpy as np
sys.path.insert(0, "tests/ref")
import gguf_ref
kv, t = gguf_ref.read(sys.argv[1])
got = t["rope_freqs.weight"]
theta, hd = kv["llama.rope.freq_base"], 64 // 8
factor, low, high, old = 8.0, 0.01, 8.0, 64
inv = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
want = []
for f in inv:
    wl = 2 * math.pi / f
    if wl < old / high:
        want.append(1.0)
    elif wl > old / low:
        want.append(factor)
    else:
        s = (old / wl - low) / (high - low)
        want.append(1.0 / ((1 - s) / factor + s))
assert np.allclose(got, want, rtol=1e-6), (got, want)
assert len(set(np.round(got, 4))) >= 3, got  # all three branches taken
PY
echo "ok: llama3 rope_scaling -> rope_freqs.weight matches the formula"
logits "$d3" "$tmp/l.st" > "$tmp/a.json"
logits "$tmp/l3.gguf" "$tmp/l.st" > "$tmp/b.json"
same "llama3-scaled HF + adapter = its converted GGUF + adapter" "$tmp/a.json" "$tmp/b.json" 1e-6
"$PYTHON" tests/ref/model_ref.py --model "$tmp/l3.gguf" --tokens $TOK --adapter "$tmp/l.st" \
    > "$tmp/c.json"
same "llama3-scaled converted GGUF + adapter = model_ref.py" "$tmp/b.json" "$tmp/c.json" 1e-5
