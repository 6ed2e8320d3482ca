#!/usr/bin/env bash
# import.sh - LoRA adapters from PEFT and llama.cpp, imported and served.
# tests/ref/peft_ref.py writes each adapter in its owner's layout (PEFT's
# documented key names, r = 8, lora_alpha = 16, q/k/v/o of stories260K;
# llama.cpp's GGUF LoRA layout) and the golden logits: numpy's forward with
# W + s B A computed directly, q/k rows moved from PEFT's rotate-half order
# to the GGUF order. Each is imported with `slorad import` or uploaded as a
# PEFT tar, served, and /v1/logits must agree to 1e-5 relative. The GGUF
# LoRA is also checked against llama.cpp itself (node-llama-cpp's LoRA
# option on stories260K.gguf, SLORA_ORACLE) to 1e-5 in probability. Every
# refusal is checked on the CLI and over HTTP (422 with the reason).
. "$(dirname "$0")/lib/daemon.sh"

REF=tests/ref
M=models/stories260K.bin
TOKENS=1,403,407,261,378,432,383,286,262,297
ORACLE=${SLORA_ORACLE:-}
GGUF_BASE=${SLORA_SHARED:-../shared}/models/stories260K.gguf

peft() { "$PYTHON" $REF/peft_ref.py peft "$@" --model $M; }
# import_ok WHAT SRC-KIND INPUT OUT
import_ok() {
    "$SLORAD" import --from "$2" "$3" --model $M -o "$4" 2>"$TMP/err" ||
        fail "$1: slorad import: $(cat "$TMP/err")"
    echo "ok - $1: $(cat "$TMP/err")"
}
# logits_agree WHAT ADAPTER-ID REF-JSON: daemon logits vs numpy's W + s B A
logits_agree() {
    curl -s "$URL/v1/logits" -d "{\"model\": \"$2\", \"tokens\": [$TOKENS], \"positions\": \"all\"}" \
        >"$TMP/got.json"
    "$PYTHON" $REF/peft_ref.py logits --model $M --deltas "$3" --tokens $TOKENS >"$TMP/want.json"
    N_CHECKS=$((N_CHECKS + 1))
    "$PYTHON" $REF/compare_logits.py "$TMP/got.json" "$TMP/want.json" --tol 1e-5 --what "$1" ||
        fail "$1: daemon logits differ from numpy's W + s B A"
    # the adapter must matter: the base's logits are far from the reference
    "$PYTHON" $REF/model_ref.py --model $M --tokens $TOKENS >"$TMP/base.json"
    ! "$PYTHON" $REF/compare_logits.py "$TMP/base.json" "$TMP/want.json" --tol 1e-2 >/dev/null ||
        fail "$1: the adapter does not move the logits"
}
# tar_of DIR OUT [pax|gnu]: the two PEFT files as a tar
tar_of() {
    if [ "${3:-pax}" = gnu ]; then
        tar -C "$1" --format=gnu -cf "$2" adapter_config.json adapter_model.safetensors
    else
        "$PYTHON" -c 'import sys, tarfile
with tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT) as t:
    for n in ("adapter_config.json", "adapter_model.safetensors"):
        t.add(sys.argv[1] + "/" + n, arcname="peft/" + n)' "$1" "$2"
    fi
}
# edit_config DIR PYTHON-EXPR-ON-c
edit_config() {
    "$PYTHON" -c 'import json, sys
p = sys.argv[1] + "/adapter_config.json"; c = json.load(open(p)); exec(sys.argv[2])
json.dump(c, open(p, "w"))' "$1" "$2"
}

start_daemon "$TMP/state"

# ---- exact conversions --------------------------------------------------
peft "$TMP/lora" --seed 1
import_ok "PEFT r=8 alpha=16 q/k/v/o" peft "$TMP/lora" "$TMP/lora.safetensors"
check "upload the import" 201 "$(status PUT "$URL/v1/adapters/acme/lora" -T "$TMP/lora.safetensors")"
logits_agree "PEFT r=8 alpha=16" acme/lora "$TMP/lora/ref.json"

peft "$TMP/rs" --seed 2 --rslora
import_ok "rsLoRA (alpha / sqrt(r))" peft "$TMP/rs" "$TMP/rs.safetensors"
check "upload rsLoRA" 201 "$(status PUT "$URL/v1/adapters/acme/rs" -T "$TMP/rs.safetensors")"
logits_agree "rsLoRA" acme/rs "$TMP/rs/ref.json"

peft "$TMP/pat" --seed 3 --rank-pattern '{"k_proj": 4, "layers.3.self_attn.o_proj": 2}' \
    --alpha-pattern '{"v_proj": 4}'
import_ok "rank_pattern + alpha_pattern" peft "$TMP/pat" "$TMP/pat.safetensors"
check "upload rank_pattern" 201 "$(status PUT "$URL/v1/adapters/acme/pat" -T "$TMP/pat.safetensors")"
logits_agree "rank_pattern" acme/pat "$TMP/pat/ref.json"

peft "$TMP/mlp" --seed 4 --modules q_proj,gate_proj,down_proj,up_proj --layers 1,3 \
    --dtype BF16 --config-extra '{"layers_to_transform": [1, 3]}'
import_ok "mlp, layers_to_transform, BF16" peft "$TMP/mlp" "$TMP/mlp.safetensors"
check "upload mlp" 201 "$(status PUT "$URL/v1/adapters/acme/mlp" -T "$TMP/mlp.safetensors")"
logits_agree "mlp + layers_to_transform + BF16" acme/mlp "$TMP/mlp/ref.json"

# ---- PEFT uploaded directly (tar), converted on upload ------------------
tar_of "$TMP/lora" "$TMP/lora.tar" pax
out=$(curl -s -D "$TMP/h" -T "$TMP/lora.tar" "$URL/v1/adapters/acme/direct")
check "PUT a PEFT tar (Python tarfile, pax) -> 201" 201 "$(sed -n 's/^HTTP\/1.1 \([0-9]*\).*/\1/p' "$TMP/h" | tail -1)"
check_contains "the reply says it was converted" '"converted_from":"peft"' "$out"
check_contains "stored bytes = the SuperLoRA file" "\"bytes\":$(stat -c %s "$TMP/lora.safetensors")" "$out"
curl -s -o "$TMP/dl" "$URL/v1/adapters/acme/direct/file"
check "GET .../file returns the converted file (= slorad import's)" \
    "$(sha256sum <"$TMP/lora.safetensors")" "$(sha256sum <"$TMP/dl")"
check "the state file is the converted file" "$(sha256sum <"$TMP/lora.safetensors")" \
    "$(sha256sum <"$TMP/state/adapters/acme/direct.safetensors")"
logits_agree "PEFT tar upload" acme/direct "$TMP/lora/ref.json"
tar_of "$TMP/pat" "$TMP/pat.tar" gnu
check "PUT a GNU tar -> 201" 201 "$(status PUT "$URL/v1/adapters/acme/gnu" -T "$TMP/pat.tar")"
logits_agree "PEFT GNU tar upload" acme/gnu "$TMP/pat/ref.json"
check "dry run of a PEFT tar" 200 "$(status PUT "$URL/v1/adapters/acme/dry?dry_run=1" -T "$TMP/lora.tar")"
import_ok "slorad import of a PEFT tar" peft "$TMP/lora.tar" "$TMP/lora2.safetensors"
check "tar and directory import alike" "$(sha256sum <"$TMP/lora.safetensors")" "$(sha256sum <"$TMP/lora2.safetensors")"

# ---- llama.cpp GGUF LoRA -------------------------------------------------
"$PYTHON" $REF/peft_ref.py gguf-lora "$TMP/g.gguf" --model $M --seed 5 \
    --modules attn_q,attn_k,attn_v,attn_output,ffn_down --rank-pattern '{"attn_k": 4}'
import_ok "GGUF LoRA (per-tensor ranks)" gguf-lora "$TMP/g.gguf" "$TMP/g.safetensors"
check "upload GGUF import" 201 "$(status PUT "$URL/v1/adapters/acme/gguf" -T "$TMP/g.safetensors")"
logits_agree "GGUF LoRA" acme/gguf "$TMP/g.gguf.ref.json"
"$PYTHON" $REF/peft_ref.py gguf-lora "$TMP/g16.gguf" --model $M --seed 6 --f16 --alpha 0
import_ok "GGUF LoRA F16, alpha 0 (scale 1)" gguf-lora "$TMP/g16.gguf" "$TMP/g16.safetensors"
check "upload GGUF F16" 201 "$(status PUT "$URL/v1/adapters/acme/g16" -T "$TMP/g16.safetensors")"
logits_agree "GGUF LoRA F16" acme/g16 "$TMP/g16.gguf.ref.json"

"$PYTHON" $REF/peft_ref.py gguf-lora "$TMP/g0.gguf" --model $M --seed 8 --alpha 0 --modules attn_v,ffn_up
import_ok "GGUF LoRA alpha 0" gguf-lora "$TMP/g0.gguf" "$TMP/g0.safetensors"
check "upload GGUF alpha 0" 201 "$(status PUT "$URL/v1/adapters/acme/g0" -T "$TMP/g0.safetensors")"
logits_agree "GGUF LoRA alpha 0" acme/g0 "$TMP/g0.gguf.ref.json"

# llama.cpp as the second oracle: its own LoRA code on its GGUF of the base
# (F32 adapters: with F16 ones llama.cpp rounds the activations to F16 too)
[ -n "$ORACLE" ] || fail "SLORA_ORACLE is not set (node-llama-cpp; make oracle)"
for g in g:gguf g0:g0; do
    id=acme/${g#*:}
    g=${g%%:*}
    curl -s "$URL/v1/logits" -d "{\"model\": \"$id\", \"tokens\": [$TOKENS], \"positions\": \"all\"}" \
        >"$TMP/got.json"
    SLORA_ORACLE=$ORACLE node tests/e2e/lib/oracle_probs.mjs "$GGUF_BASE" $TOKENS 512 "$TMP/$g.gguf" 1 \
        >"$TMP/oracle.json" 2>"$TMP/oracle.err" || fail "oracle: $(cat "$TMP/oracle.err")"
    SLORA_ORACLE=$ORACLE node tests/e2e/lib/oracle_probs.mjs "$GGUF_BASE" $TOKENS 512 \
        >"$TMP/oracle_base.json" 2>"$TMP/oracle.err" || fail "oracle: $(cat "$TMP/oracle.err")"
    N_CHECKS=$((N_CHECKS + 1))
    "$PYTHON" - "$TMP/got.json" "$TMP/oracle.json" "$TMP/oracle_base.json" "$g" <<'PY' || fail "GGUF LoRA $g: daemon and llama.cpp disagree"
import json, sys
import numpy as np
got = np.array(json.load(open(sys.argv[1]))["logits"])
p = np.exp(got - got.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)
o = np.array(json.load(open(sys.argv[2]))["probs"])
ob = np.array(json.load(open(sys.argv[3]))["probs"])
err, moved = np.abs(p - o).max(), np.abs(o - ob).max()
print("ok - GGUF LoRA %s: daemon vs llama.cpp's LoRA: max |p - p_llama.cpp| = %.2g (tol 1e-5; "
      "the adapter moves llama.cpp's probabilities by %.2g)" % (sys.argv[4], err, moved))
sys.exit(0 if p.shape == o.shape and err <= 1e-5 and moved > 0.1 else 1)
PY
done

# ---- refusals: the CLI (exit 1, reason) and the upload (422, reason) ----
# refuse WHAT DIR CODE FRAGMENT
refuse() {
    local rc=0
    "$SLORAD" import --from peft "$2" --model $M -o "$TMP/no.safetensors" 2>"$TMP/err" || rc=$?
    check "$1: slorad import exits 1" 1 "$rc"
    check_contains "$1: slorad import says why" "$4" "$(cat "$TMP/err")"
    tar_of "$2" "$TMP/bad.tar"
    out=$(curl -s -o "$TMP/body" -w '%{http_code}' -T "$TMP/bad.tar" "$URL/v1/adapters/acme/bad")
    check "$1: PUT -> 422" 422 "$out"
    check_contains "$1: PUT code $3" "\"code\":\"$3\"" "$(cat "$TMP/body")"
    check_contains "$1: PUT says why" "$4" "$(cat "$TMP/body")"
}
mk() { rm -rf "$TMP/r"; peft "$TMP/r" --seed 9 "$@"; }
mk; edit_config "$TMP/r" 'c["use_dora"] = True'
refuse "DoRA" "$TMP/r" unimportable "use_dora is set: DoRA"
mk; edit_config "$TMP/r" 'c["bias"] = "all"'
refuse "bias training" "$TMP/r" unimportable 'bias = all: trained biases'
mk; edit_config "$TMP/r" 'c["target_modules"] = ["q_proj", "lm_head"]'
refuse "lm_head target" "$TMP/r" unimportable "'lm_head' cannot be targeted"
mk; edit_config "$TMP/r" 'c["modules_to_save"] = ["embed_tokens"]'
refuse "modules_to_save" "$TMP/r" unimportable "modules_to_save is set"
mk --extra-tensor base_model.model.model.embed_tokens.lora_embedding_A:8,512
refuse "embedding LoRA tensor" "$TMP/r" unimportable "model.embed_tokens.lora_embedding_A: not a LoRA factor"
rm -rf "$TMP/r"
"$SLORAD" gen-model --dim 32 --hidden 172 --layers 5 --heads 8 --kv-heads 4 --vocab 512 \
    --seq-len 64 --seed 1 -o "$TMP/small.bin" >/dev/null
"$PYTHON" $REF/peft_ref.py peft "$TMP/r" --model "$TMP/small.bin" --seed 9
refuse "shapes of another base" "$TMP/r" mismatch "(8, 32), the base needs (8, 64)"
mk; edit_config "$TMP/r" 'c["r"] = 4'
refuse "rank disagrees with r" "$TMP/r" format "rank 8, the config says r = 4"
rm "$TMP/r/adapter_model.safetensors"
tar_of_one() { tar -C "$TMP/r" -cf "$TMP/one.tar" adapter_config.json; }
tar_of_one
out=$(curl -s -w ' %{http_code}' -T "$TMP/one.tar" "$URL/v1/adapters/acme/bad")
check_contains "tar without the weights -> 422" "422" "$out"
check_contains "tar without the weights: says which" "no adapter_model.safetensors" "$out"

# GGUF LoRA refusals (CLI)
grefuse() {
    local rc=0
    "$SLORAD" import --from gguf-lora "$2" --model $M -o "$TMP/no.safetensors" 2>"$TMP/err" || rc=$?
    check "$1: exits 1" 1 "$rc"
    check_contains "$1: says why" "$3" "$(cat "$TMP/err")"
}
grefuse "a model, not an adapter" "$GGUF_BASE" 'general.type missing'
"$PYTHON" $REF/peft_ref.py gguf-lora "$TMP/q.gguf" --model $M --seed 7 --arch qwen2
grefuse "another architecture" "$TMP/q.gguf" 'general.architecture is "qwen2", want "llama"'
check "no adapter stored by the refusals" 404 "$(status GET "$URL/v1/adapters/acme/bad")"
check_contains "rejections counted by reason" 'slorad_adapter_rejected_total{reason="unimportable"} 5' \
    "$(curl -s "$URL/metrics")"
stop_daemon

# ---- a qwen2 base (GQA, q/k/v biases, rope theta 1e6, NeoX RoPE): its GGUF
# keeps HF's q/k order, so nothing is permuted ------------------------------
Q=$TMP/qwen2.gguf
"$SLORAD" gen-model --arch qwen2 --rope-theta 1000000 --dim 64 --heads 8 --kv-heads 2 --layers 3 \
    --hidden 96 --vocab 512 --seq-len 128 --seed 3 -o "$Q" >/dev/null
"$PYTHON" $REF/peft_ref.py peft "$TMP/qw" --model "$Q" --seed 11 --no-permute
"$SLORAD" import --from peft "$TMP/qw" --model "$Q" -o "$TMP/qw.safetensors" 2>"$TMP/err" ||
    fail "qwen2 import: $(cat "$TMP/err")"
start_daemon "$TMP/state-qwen2" --model "$Q"
tar_of "$TMP/qw" "$TMP/qw.tar"
check "qwen2: PUT the PEFT tar" 201 "$(status PUT "$URL/v1/adapters/acme/qw" -T "$TMP/qw.tar")"
curl -s -o "$TMP/dl" "$URL/v1/adapters/acme/qw/file"
check "qwen2: upload and slorad import convert alike" "$(sha256sum <"$TMP/qw.safetensors")" \
    "$(sha256sum <"$TMP/dl")"
M=$Q logits_agree "qwen2 PEFT (no q/k permutation)" acme/qw "$TMP/qw/ref.json"
stop_daemon
echo "import: $N_CHECKS checks passed"
