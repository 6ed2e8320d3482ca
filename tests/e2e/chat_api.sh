#!/usr/bin/env bash
# chat_api.sh - POST /v1/chat/completions and /v1/tokenize with messages on
# gen-model models carrying real vocabularies (../shared/models/vocab) and
# real chat templates (tests/template/templates), against python3-jinja2
# and llama.cpp (tests/e2e/lib/chat.py): Llama 3 (BPE + added special
# tokens, llama-bpe), ChatML/Qwen2.5 (qwen2 architecture, tools), Mistral
# [INST], Llama 2, Phi-3 and Zephyr (SPM); the Llama 3 model as an HF
# directory (tokenizer.json) and converted back. Then, on the Llama 3 model: the
# stream's chunk shape, stop at the end-of-turn token (a model built to
# reach it), request errors, a template that does not parse at load, a
# model without a template, tenant isolation, adapter mixes and the openai
# npm client.
. "$(dirname "$0")/lib/daemon.sh"

[ -n "${SLORA_ORACLE:-}" ] || fail "SLORA_ORACLE is not set (make oracle)"
VOCAB=${SLORA_SHARED:-../shared}/models/vocab
TPL=tests/template/templates
CHAT="$PYTHON $E2E_LIB/chat.py"
post() { curl -s "$URL$1" -d "$2"; }

# vocab NAME SRC TEMPLATE [chat_vocab.py options]: a vocabulary with a template
vocab() {
    local name=$1 src=$2 tpl=$3
    shift 3
    "$PYTHON" "$E2E_LIB/chat_vocab.py" "$VOCAB/ggml-vocab-$src.gguf" "$TMP/$name.vocab.gguf" \
        --template "$TPL/$tpl.jinja" "$@" || fail "chat_vocab.py $name"
}
# model NAME [gen-model options]: a small random model over NAME's vocabulary
model() {
    local name=$1
    shift
    "$SLORAD" gen-model --dim 64 --hidden 128 --layers 2 --heads 4 --kv-heads 2 --seq-len 256 \
        --vocab-from "$TMP/$name.vocab.gguf" -o "$TMP/$name.gguf" "$@" >/dev/null ||
        fail "gen-model $name"
}

vocab l3 gpt-2 llama-3-8b-instruct --special '<|begin_of_text|>' --special '<|end_of_text|>' \
    --special '<|start_header_id|>' --special '<|end_header_id|>' --special '<|eot_id|>' \
    --bos '<|begin_of_text|>' --eos '<|end_of_text|>' --eot '<|eot_id|>' --pre llama-bpe --add-bos 1
model l3 --rope-theta 500000 --seed 3
vocab qwen gpt-2 qwen2.5-7b-instruct --special '<|im_start|>' --special '<|im_end|>' \
    --bos '<|endoftext|>' --eos '<|im_end|>' --pre qwen2 --add-bos 0
model qwen --arch qwen2 --rope-theta 1000000 --seed 4
vocab mistral llama-spm mistral-7b-instruct-v0.2
model mistral --seed 5
vocab llama2 llama-spm llama-2-7b-chat
model llama2 --seed 6
vocab phi3 phi-3 phi-3-mini-4k-instruct
model phi3 --seed 7
vocab zephyr llama-spm zephyr-7b-beta
model zephyr --seed 8

# ---- every family against jinja2 + llama.cpp ---------------------------------
for m in l3 qwen mistral llama2 phi3 zephyr; do
    DAEMON_MODEL="--model $TMP/$m.gguf" start_daemon "$TMP/state-$m"
    $CHAT conversations "$URL" "$m" "$TMP/$m.gguf" || fail "$m conversations"
    stop_daemon
done

# ---- the same models as HF directories ----------------------------------------
# tests/ref/gguf_to_hf.py writes tokenizer.json/tokenizer_config.json from the
# GGUF; `slorad convert` must write the vocabulary back key for key (the
# chat_vocab.py GGUF is the reference), and slorad serving the directory must
# answer as llama.cpp does on the converted GGUF.
for m in l3 qwen; do
    "$PYTHON" tests/ref/gguf_to_hf.py "$TMP/$m.gguf" "$TMP/${m}hf" || fail "gguf_to_hf $m"
    "$SLORAD" convert --model "$TMP/${m}hf" -o "$TMP/${m}back.gguf" || fail "convert ${m}hf"
    "$PYTHON" - "$TMP/$m.gguf" "$TMP/${m}back.gguf" <<'PY' || fail "$m: convert lost vocabulary keys"
import sys
sys.path.insert(0, "tests/ref")
import gguf_ref
a, _ = gguf_ref.read(sys.argv[1])
b, _ = gguf_ref.read(sys.argv[2])
keys = sorted(k for k in a if k.startswith("tokenizer."))
assert {"tokenizer.ggml.pre", "tokenizer.ggml.merges", "tokenizer.ggml.token_type",
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.add_bos_token",
        "tokenizer.chat_template"} <= set(keys), keys
bad = [k for k in keys if a[k] != b.get(k)]
assert not bad, bad
# what convert adds: llama.cpp's defaults for these models, and the EOT it
# finds by its text (llama-vocab.cpp: <|im_end|> for ChatML)
extra = {k: b[k] for k in b if k.startswith("tokenizer.") and k not in a}
eot = extra.pop("tokenizer.ggml.eot_token_id", None)
assert eot is None or a["tokenizer.ggml.tokens"][eot] == "<|im_end|>", eot
assert extra == {"tokenizer.ggml.add_eos_token": False,
                 "tokenizer.ggml.add_space_prefix": False}, extra
print("ok - %s: HF directory -> convert -> the %d tokenizer keys of the original GGUF"
      % (sys.argv[1].rsplit("/", 1)[1], len(keys)))
PY
done
DAEMON_MODEL="--model $TMP/l3hf" start_daemon "$TMP/state-l3hf"
$CHAT conversations "$URL" l3hf "$TMP/l3back.gguf" || fail "l3hf conversations"
stop_daemon

# ---- Llama 3: stream shape, errors, tenants, the openai client ----------------
auth_conf "$TMP/auth.json"
DAEMON_MODEL="--model $TMP/l3.gguf" start_daemon "$TMP/state" --config "$TMP/auth.json"
as() { local key=$1; shift; curl -s -w ' %{http_code}' -H "Authorization: Bearer $key" "$@"; }
MSGS='[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello."}]'
REQ="{\"model\":\"l3\",\"messages\":$MSGS,\"temperature\":0,\"max_tokens\":8"
whole=$(as acme-key "$URL/v1/chat/completions" -d "$REQ}")
check "chat on the base model" 200 "${whole##* }"
whole=${whole% *}
check_contains "id chatcmpl-" '"id":"chatcmpl-' "$whole"
as acme-key -N "$URL/v1/chat/completions" -d "$REQ,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" >"$TMP/sse"
"$PYTHON" - "$TMP/sse" "$whole" <<'PY' || fail "stream shape"
import json, sys
raw, status = open(sys.argv[1]).read().rsplit(" ", 1)
assert status == "200", status
whole = json.loads(sys.argv[2])
events = [e for e in raw.split("\n\n") if e]
assert all(e.startswith("data: ") for e in events), events
assert events[-1] == "data: [DONE]", events[-1]
chunks = [json.loads(e[6:]) for e in events[:-1]]
ids = {c["id"] for c in chunks}
assert len(ids) == 1 and all(c["object"] == "chat.completion.chunk" for c in chunks), chunks
first, usage, last = chunks[0], chunks[-1], chunks[-2]
assert first["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""},
                             "logprobs": None, "finish_reason": None}], first
assert usage["choices"] == [] and usage["usage"] == whole["usage"], usage
assert last["choices"][0]["delta"] == {} and last["choices"][0]["finish_reason"] == \
    whole["choices"][0]["finish_reason"], last
mid = chunks[1:-2]
assert mid and all(c["choices"][0]["finish_reason"] is None and c["usage"] is None and
                   set(c["choices"][0]["delta"]) == {"content"} for c in mid), mid
text = "".join(c["choices"][0]["delta"]["content"] for c in mid)
assert text == whole["choices"][0]["message"]["content"], (text, whole)
print("ok - stream: role chunk, %d content chunks = the whole content, finish chunk, usage chunk, [DONE]" % len(mid))
PY
out=$(as acme-key "$URL/v1/chat/completions" -d "$REQ,\"logprobs\":true,\"top_logprobs\":2}")
"$PYTHON" - "${out% *}" "$whole" <<'PY' || fail "chat logprobs"
import json, math, sys
out, whole = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ch = out["choices"][0]
content = ch["logprobs"]["content"]
assert ch["message"] == whole["choices"][0]["message"], (ch, whole)
assert len(content) == out["usage"]["completion_tokens"] - (ch["finish_reason"] == "stop"), content
assert bytes(b for e in content for b in e["bytes"]).decode() == ch["message"]["content"], content
for e in content:
    top = e["top_logprobs"]
    assert len(top) == 2 and top[0]["logprob"] >= top[1]["logprob"], e
    # greedy: the chosen token is the most likely one
    assert top[0]["token"] == e["token"] and top[0]["logprob"] == e["logprob"] <= 0, e
    assert bytes(top[0]["bytes"]).decode("utf-8", "replace") == e["token"], e
print("ok - logprobs: content[{token, logprob, bytes, top_logprobs}] over the %d tokens" % len(content))
PY

# stop strings and max_completion_tokens cut the greedy answer checked above
# (the conversations compared it with llama.cpp); a seed repeats a sample
content=$(echo "$whole" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])')
word=$(echo "$content" | cut -d' ' -f4)
[ -n "$word" ] || fail "the greedy answer '$content' has no fourth word"
out=$(as acme-key "$URL/v1/chat/completions" -d "$REQ,\"stop\":[\"zzz\",\" $word\"]}")
"$PYTHON" - "${out% *}" "$content" " $word" <<'PY' || fail "chat stop"
import json, sys
out, content, stop = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
ch = out["choices"][0]
assert (ch["message"]["content"], ch["finish_reason"]) == (content[:content.index(stop)], "stop"), out
print("ok - stop %r: the content ends before it, finish_reason stop" % stop)
PY
out=$(as acme-key "$URL/v1/chat/completions" -d "{\"model\":\"l3\",\"messages\":$MSGS,\"temperature\":0,\"max_completion_tokens\":3}")
check_contains "max_completion_tokens 3" '"finish_reason":"length"}],"usage":{"prompt_tokens":25,"completion_tokens":3,' "$out"
SEEDED="{\"model\":\"l3\",\"messages\":$MSGS,\"temperature\":1,\"top_p\":0.9,\"max_tokens\":12"
a=$(as acme-key "$URL/v1/chat/completions" -d "$SEEDED,\"seed\":7}" | sed 's/"id":"[^"]*","object":"chat.completion","created":[0-9]*,//')
b=$(as acme-key "$URL/v1/chat/completions" -d "$SEEDED,\"seed\":7}" | sed 's/"id":"[^"]*","object":"chat.completion","created":[0-9]*,//')
c=$(as acme-key "$URL/v1/chat/completions" -d "$SEEDED,\"seed\":8}" | sed 's/"id":"[^"]*","object":"chat.completion","created":[0-9]*,//')
check "the same seed gives the same answer" "$a" "$b"
[ "$a" != "$c" ] || fail "seeds 7 and 8 gave the same 12 sampled tokens: $a"
check "another seed another answer" ok ok

# request errors: status and a message naming the problem
while IFS='|' read -r body code fragment; do
    [ -n "$body" ] || continue
    out=$(as acme-key "$URL/v1/chat/completions" -d "$body")
    check "chat $body -> $code" "$code" "${out##* }"
    check_contains "chat $body message" "$fragment" "$out"
done <<'EOF'
{"model":"l3"}|400|'messages' must be a non-empty array
{"model":"l3","messages":[]}|400|'messages' must be a non-empty array
{"model":"l3","messages":"hi"}|400|'messages' must be a non-empty array
{"model":"l3","messages":[5]}|400|'messages[0]' must be an object
{"model":"l3","messages":[{"content":"hi"}]}|400|'messages[0].role' is required
{"model":"l3","messages":[{"role":7,"content":"hi"}]}|400|'messages[0].role' is required
{"model":"l3","messages":[{"role":"wizard","content":"hi"}]}|400|'messages[0].role' must be system, user, assistant or tool
{"model":"l3","messages":[{"role":"user"}]}|400|'messages[0].content' is required
{"model":"l3","messages":[{"role":"user","content":"a"},{"role":"user","content":3}]}|400|'messages[1].content' must be a string or an array
{"model":"l3","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}|400|'messages[0].content[0]' must be {\"type\": \"text\"
{"model":"l3","messages":[{"role":"user","content":"a","name":5}]}|400|'messages[0].name' must be a string
{"model":"l3","messages":[{"role":"user","content":"a\u0000b"}]}|400|\\u0000 is not allowed
{"model":"l3","messages":[{"role":"user","content":"a"}],"tools":{}}|400|'tools' must be an array
{"model":"l3","messages":[{"role":"user","content":"a"}],"n":2}|400|'n' is not supported
{"model":"l3","messages":[{"role":"user","content":"a"}],"top_logprobs":2}|400|'top_logprobs' needs 'logprobs': true
{"model":"l3","messages":[{"role":"user","content":"a"}],"logprobs":true,"top_logprobs":9}|400|'top_logprobs' must be an integer in [0, 5]
{"model":"l3","messages":[{"role":"user","content":"a"}],"stream_options":{"include_usage":true}}|400|'stream_options' is only allowed with 'stream': true
{"model":"l3","messages":[{"role":"user","content":"a"}],"response_format":{"type":"json_object"}}|400|'response_format' is not supported
{"model":"l3","messages":[{"role":"user","content":"a"}],"tool_choice":"required"}|400|'tool_choice' is not supported
{"model":"l3","messages":[{"role":"user","content":"a"}],"max_completion_tokens":-1}|400|'max_completion_tokens' must be an integer
{"messages":[{"role":"user","content":"a"}]}|400|'model' is required
{"model":"nope/x","messages":[{"role":"user","content":"a"}]}|404|model 'nope/x' not found
EOF
# too long for the context (256 tokens): in tokens, and in bytes (the
# renderer stops at what could fit)
long=$("$PYTHON" -c 'import random; random.seed(1); print(" ".join(random.choice(["apple","river","stone","cloud","seven"]) for _ in range(400)))')
out=$(as acme-key "$URL/v1/chat/completions" -d "{\"model\":\"l3\",\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}]}")
check "a prompt over the context in tokens -> 400" 400 "${out##* }"
check_contains "says so" "the model's context is 256" "$out"
"$PYTHON" -c 'import json; print(json.dumps({"model": "l3", "messages": [{"role": "user", "content": "x" * 1000000}]}))' >"$TMP/huge.json"
out=$(as acme-key "$URL/v1/chat/completions" -d "@$TMP/huge.json")
check "a prompt over the context in bytes -> 400" 400 "${out##* }"
check_contains "says so" "template output exceeded its limit" "$out"
check_contains "and why" "must fit the model's context of 256 tokens" "$out"
out=$(as acme-key "$URL/v1/chat/completions" -d "{\"model\":\"l3\",\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}],\"stream\":true}")
check "a refused stream is a plain error" 400 "${out##* }"
# tokenize: messages and prompt are exclusive; add_special and add_bos
out=$(as acme-key "$URL/v1/tokenize" -d '{"prompt":"a","messages":[{"role":"user","content":"a"}]}')
check_contains "tokenize: prompt and messages -> 400" "give either 'prompt' or 'messages'" "$out"
with=$(as acme-key "$URL/v1/tokenize" -d '{"messages":[{"role":"user","content":"Hi"}]}')
without=$(as acme-key "$URL/v1/tokenize" -d '{"messages":[{"role":"user","content":"Hi"}],"add_generation_prompt":false}')
"$PYTHON" - "${with% *}" "${without% *}" <<'PY' || fail "add_generation_prompt"
import json, sys
a, b = (json.loads(x)["tokens"] for x in sys.argv[1:3])
# Llama 3 over GPT-2's vocabulary: <|start_header_id|> "ass" "istant"
# <|end_header_id|> "\n\n" added
assert a[:len(b)] == b and a[len(b):] == [50259, 562, 10167, 50260, 628], (a, b)
print("ok - tokenize add_generation_prompt false drops the assistant header")
PY
# the template renders <|begin_of_text|> itself: no second BOS, unless asked
out=$(as acme-key "$URL/v1/tokenize" -d '{"messages":[{"role":"user","content":"Hi"}],"add_bos":true}')
check_contains "add_bos true forces a second BOS" '{"tokens":[50257,50257,' "$out"
out=$(as acme-key "$URL/v1/tokenize" -d '{"messages":[{"role":"user","content":"Hi"}],"add_special":false}')
check_contains "add_special false: the template's BOS only" '{"tokens":[50257,50259,' "$out"

# tenants: another tenant's adapter is 404 on chat, like completions
"$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/l3.st" --rank 2 --scale 0.5 --modules wq,wv \
    --base 64,2,4,2,128,50262
out=$(as acme-key -T "$TMP/l3.st" "$URL/v1/adapters/acme/style")
check "acme uploads acme/style" 201 "${out##* }"
ACME="{\"model\":\"acme/style\",\"messages\":$MSGS,\"temperature\":0,\"max_tokens\":8}"
out=$(as acme-key "$URL/v1/chat/completions" -d "$ACME")
check "acme chats on its adapter" 200 "${out##* }"
check_contains "the answer names the adapter version" "\"adapter_version\":\"$(sha256sum <"$TMP/l3.st" | cut -c1-16)\"" "$out"
out=$(as beta-key "$URL/v1/chat/completions" -d "$ACME")
check "beta on acme's adapter -> 404" 404 "${out##* }"
check_contains "same answer as a missing model" "model 'acme/style' not found" "$out"
out=$(as beta-key "$URL/v1/chat/completions" -d "$REQ}")
check "beta chats on the base model" 200 "${out##* }"
# adapter mixes ("adapters", as completions): weight 1 is the adapter alone,
# weight 0 the base model; the answer and its stream chunks list the mix
MIX="{\"model\":\"l3\",\"messages\":$MSGS,\"temperature\":0,\"max_tokens\":8,\"adapters\":"
adapted=$(as acme-key "$URL/v1/chat/completions" -d "$ACME")
one=$(as acme-key "$URL/v1/chat/completions" -d "$MIX[{\"id\":\"acme/style\",\"weight\":1}]}")
zero=$(as acme-key "$URL/v1/chat/completions" -d "$MIX[{\"id\":\"acme/style\",\"weight\":0}]}")
half=$(as acme-key "$URL/v1/chat/completions" -d "$MIX[{\"id\":\"acme/style\",\"weight\":0.5}],\"stream\":true}")
"$PYTHON" - "${adapted% *}" "${one% *}" "${zero% *}" "$whole" "${half% *}" <<'PY' || fail "chat mixes"
import json, sys
adapted, one, zero, base = (json.loads(a) for a in sys.argv[1:5])
answer = lambda r: (r["choices"][0]["message"], r["choices"][0]["finish_reason"], r["usage"])
assert answer(one) == answer(adapted) and answer(zero) == answer(base), (one, adapted, zero, base)
assert answer(adapted) != answer(base), "the adapter does not change the answer"
version = adapted["adapter_version"]
assert one["adapters"] == [{"id": "acme/style", "version": version, "weight": 1}], one
chunks = [json.loads(e[6:]) for e in sys.argv[5].split("\n\n") if e.startswith("data: {")]
assert chunks and all(c["adapters"] == [{"id": "acme/style", "version": version, "weight": 0.5}]
                      for c in chunks), chunks
print("ok - chat mixes: weight 1 = the adapter, weight 0 = the base, listed in every chunk")
PY
out=$(as acme-key "$URL/v1/chat/completions" -d "{\"model\":\"acme/style\",\"messages\":$MSGS,\"adapters\":[{\"id\":\"acme/style\",\"weight\":1}]}")
check "chat: adapters with an adapter model -> 400" 400 "${out##* }"
check_contains "says so" "with 'adapters', 'model' must be the base model id ('l3')" "$out"
out=$(as beta-key "$URL/v1/chat/completions" -d "$MIX[{\"id\":\"acme/style\",\"weight\":1}]}")
check "beta mixing acme's adapter -> 404" 404 "${out##* }"

# the official openai npm client (v4): chat.completions.create, whole and streamed
EX=client/examples
if [ ! -d "$EX/node_modules/openai" ]; then
    (cd "$EX" && npm ci --no-audit --no-fund >/dev/null 2>&1) || fail "npm ci in $EX failed"
fi
want=$(as acme-key "$URL/v1/chat/completions" -d "$ACME")
sdk=$(cd "$EX" && SLORAD_URL=$URL SLORAD_KEY=acme-key SLORAD_MODEL=acme/style timeout 60 node openai_chat.mjs) ||
    fail "openai_chat.mjs failed: $sdk"
"$PYTHON" - "${want% *}" "$sdk" <<'PY' || fail "openai client"
import json, sys
want = json.loads(sys.argv[1])
whole, streamed = (json.loads(l) for l in sys.argv[2].splitlines())
msg = want["choices"][0]["message"]
assert whole == {"content": msg["content"], "role": "assistant",
                 "finish_reason": want["choices"][0]["finish_reason"], "usage": want["usage"]}, whole
assert streamed == {"streamed": msg["content"], "role": "assistant",
                    "finish_reason": want["choices"][0]["finish_reason"], "usage": want["usage"]}, streamed
print("ok - openai npm client: chat.completions.create, whole and streamed, = curl (%r)" % msg["content"])
PY
stop_daemon

# ---- stop at the end-of-turn token --------------------------------------------
eot=$($CHAT eot-model "$TMP/l3.gguf" "$TMP/l3eot.gguf" "$MSGS") || fail "eot-model"
DAEMON_MODEL="--model $TMP/l3eot.gguf" start_daemon "$TMP/state-eot"
out=$(post /v1/chat/completions "{\"model\":\"l3eot\",\"messages\":$MSGS,\"temperature\":0,\"max_tokens\":8}")
prompt=$(echo "$eot" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["prompt"])' | tr -d ' ')
cmpl=$(post /v1/completions "{\"model\":\"l3eot\",\"prompt\":$prompt,\"temperature\":0,\"max_tokens\":8}")
"$PYTHON" - "$eot" "$out" "$cmpl" <<'PY' || fail "stop at EOT"
import json, sys
ref, chat, cmpl = (json.loads(a) for a in sys.argv[1:4])
n = len(ref["tokens"]) + 1  # the EOT counts as generated
ch = chat["choices"][0]
assert (ch["message"]["content"], ch["finish_reason"], chat["usage"]["completion_tokens"]) == \
    (ref["text"], "stop", n), (chat, ref)
c = cmpl["choices"][0]
assert (c["text"], c["finish_reason"], cmpl["usage"]["completion_tokens"]) == (ref["text"], "stop", n), cmpl
print("ok - chat and completions stop at <|eot_id|> where llama.cpp does, after %r" % ref["text"])
PY
stop_daemon

# ---- a template that does not parse: a warning at load, 400 at request time ----
printf '{%% for m in messages %%}{{ m.content }' >"$TMP/broken.jinja"
"$PYTHON" "$E2E_LIB/chat_vocab.py" "$VOCAB/ggml-vocab-llama-spm.gguf" "$TMP/broken.vocab.gguf" \
    --template "$TMP/broken.jinja"
model broken --seed 9
DAEMON_MODEL="--model $TMP/broken.gguf" start_daemon "$TMP/state-broken"
log_has "chat template cannot be used: line 1, column .*will answer 400" || fail "no warning at load"
check "load warns about the template" ok ok
out=$(curl -s -w ' %{http_code}' "$URL/v1/chat/completions" -d '{"model":"broken","messages":[{"role":"user","content":"a"}]}')
check "chat with an unparsable template -> 400" 400 "${out##* }"
check_contains "names the parse error" "the model's chat template cannot be used: line 1, column" "$out"
check "completions still work" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/completions" -d '{"model":"broken","prompt":"a","max_tokens":2}')"
stop_daemon

# ---- a model without a template -------------------------------------------------
start_daemon "$TMP/state-none"
out=$(curl -s -w ' %{http_code}' "$URL/v1/chat/completions" -d '{"model":"stories260K","messages":[{"role":"user","content":"a"}]}')
check "chat without a template -> 400" 400 "${out##* }"
check_contains "says so" "the model has no chat template" "$out"
out=$(curl -s -w ' %{http_code}' "$URL/v1/tokenize" -d '{"messages":[{"role":"user","content":"a"}]}')
check "tokenize messages without a template -> 400" 400 "${out##* }"
stop_daemon
echo "chat_api: $N_CHECKS checks passed"
