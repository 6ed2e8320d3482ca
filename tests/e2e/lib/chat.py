#!/usr/bin/python3
"""chat.py - /v1/chat/completions and /v1/tokenize with messages against
independent references: python3-jinja2 with Hugging Face's settings renders
each conversation (tests/template/ref_render.py), llama.cpp (the oracle,
tests/oracle/llama.mjs) tokenizes the text as its server does and continues
the prompt greedily. Nothing golden comes from slorad.

usage:
  chat.py conversations URL MODEL_ID MODEL.gguf
      For every conversation of CONVERSATIONS: jinja2 renders it with the
      GGUF's chat template and {messages (text parts joined by "\\n"),
      tools (or None), add_generation_prompt: True, bos_token, eos_token};
      llama.cpp's server convention gives the prompt tokens (the BOS text
      stripped when the file adds BOS, then BOS + llama.cpp's tokenization
      with special tokens parsed). /v1/tokenize with the messages must give
      those tokens; /v1/chat/completions at temperature 0 the text of
      llama.cpp's greedy continuation (stopped before an end-of-generation
      token: finish_reason "stop", else "length") and its usage. Where
      jinja2 raises (raise_exception), both endpoints must answer 400 with
      "raise_exception: <its message>".
  chat.py eot-model MODEL.gguf OUT.gguf MESSAGES_JSON
      Write OUT, a copy of MODEL (F32, untied output) whose greedy chat
      continuation of MESSAGES ends with the end-of-turn token: residual
      dimension 1 is made silent (its embedding column and the rows of
      attn_output/ffn_down writing it zeroed, output column 1 zeroed but for
      the EOT row), then the third token llama.cpp generates gets a large
      value there, so that llama.cpp's next token is the EOT. Prints
      {"prompt": [...], "tokens": [...], "text": ...} from llama.cpp on OUT
      (checked: 3 tokens, then the EOT).
Prints "ok - ..." per check; exits 1 on the first failure.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

from infer import fail, post

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "template"))
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
import gguf_ref  # noqa: E402
from ref_render import hf_environment, reference  # noqa: E402

N_TOKENS = 8
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
CONVERSATIONS = [
    {"name": "user", "messages": [{"role": "user", "content": "Hello! How are you today?"}]},
    {"name": "system-user", "messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "What is 2+2?"}]},
    {"name": "multi-turn, text parts, unicode", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Name a colour."},
                                     {"type": "text", "text": "Just one."}]},
        {"role": "assistant", "content": "  Blue.  "},
        {"role": "user", "content": "h\u00e9llo w\u00f6rld, \u4e16\u754c \U0001f389\tand\n\nspaces   "}]},
    {"name": "tools", "tools": TOOLS, "messages": [
        {"role": "user", "content": "What is the weather in Paris?"}]},
]


def oracle(model, jobs):
    root = os.environ.get("SLORA_ORACLE")
    if not root:
        fail("SLORA_ORACLE is not set (make oracle)")
    p = subprocess.run(["node", os.path.join(ROOT, "tests", "oracle", "llama.mjs"), "batch", model],
                       input=json.dumps(jobs), capture_output=True, text=True)
    if p.returncode:
        fail("llama.mjs batch %s: %s" % (model, p.stderr[-2000:]))
    return json.loads(p.stdout)


def flat(messages):
    """The messages as the template sees them: text parts joined."""
    out = []
    for m in messages:
        m = dict(m)
        if isinstance(m.get("content"), list):
            m["content"] = "\n".join(p["text"] for p in m["content"])
        out.append(m)
    return out


def vocab(kv):
    toks = kv["tokenizer.ggml.tokens"]
    special = {}
    for role in ("bos", "eos"):
        i = kv.get("tokenizer.ggml.%s_token_id" % role)
        if i is not None:
            special[role + "_token"] = toks[i]
    if "tokenizer.ggml.add_bos_token" not in kv:
        fail("the test vocabularies state add_bos_token")
    return special, bool(kv["tokenizer.ggml.add_bos_token"]), kv.get("tokenizer.ggml.bos_token_id")


def llama_server_prompt(text, bos_text, add_bos, bos_id):
    """llama.cpp's server: strip a leading BOS text when the file adds BOS
    (common/chat.cpp), then tokenize with add_special (BOS) and special
    tokens parsed."""
    if add_bos and bos_text and text.startswith(bos_text):
        text = text[len(bos_text):]
    return text, [bos_id] if add_bos else []


def render_all(model):
    kv, _ = gguf_ref.read(model)
    special, add_bos, bos_id = vocab(kv)
    env = hf_environment()
    out = []
    for conv in CONVERSATIONS:
        ctx = {"messages": flat(conv["messages"]), "tools": conv.get("tools"),
               "add_generation_prompt": True, **special}
        kind, text = reference(env, kv["tokenizer.chat_template"], [ctx])[0]
        out.append((conv, kind, text))
    return out, special, add_bos, bos_id


def cmd_conversations(url, model_id, model):
    rendered, special, add_bos, bos_id = render_all(model)
    jobs, heads = [], []
    for conv, kind, text in rendered:
        if kind == "ok":
            text, head = llama_server_prompt(text, special.get("bos_token"), add_bos, bos_id)
            jobs.append({"tokenize": text, "special": True})
            heads.append(head)
    toks = [h + r["tokens"] for h, r in zip(heads, oracle(model, jobs))]
    jobs = []
    for t in toks:
        jobs.append({"greedy": t, "n": N_TOKENS, "eog": True})
    greedy = oracle(model, jobs)
    texts = oracle(model, [{"detokenize": g["tokens"], "last": t} for g, t in zip(greedy, toks)])
    i = 0
    n_ok = n_raise = 0
    for conv, kind, text in rendered:
        name = "%s [%s]" % (model_id, conv["name"])
        body = {"messages": conv["messages"]}
        if "tools" in conv:
            body["tools"] = conv["tools"]
        if kind == "raise":
            for path in ("/v1/tokenize", "/v1/chat/completions"):
                status, out = post(url + path, dict(body, model=model_id))
                want = "raise_exception: " + text
                if status != 400 or want not in out["error"]["message"]:
                    fail("%s %s: %d %s, want 400 with %r" % (name, path, status, out, want))
            print("ok - %s: jinja2 raises %r, so do /v1/tokenize and /v1/chat/completions (400)"
                  % (name, text))
            n_raise += 1
            continue
        if kind != "ok":
            fail("%s: jinja2 %s: %s (a test conversation must render or raise)" %
                 (name, kind, text))
        want, g, content = toks[i], greedy[i], texts[i]["text"]
        i += 1
        status, out = post(url + "/v1/tokenize", body)
        if status != 200 or out["tokens"] != want:
            fail("%s: /v1/tokenize %d %s\n  llama.cpp: %s" % (name, status, out, want))
        print("ok - %s: /v1/tokenize with messages = jinja2 + llama.cpp tokens (%d)" %
              (name, len(want)))
        status, out = post(url + "/v1/chat/completions",
                           dict(body, model=model_id, temperature=0, max_tokens=N_TOKENS))
        if status != 200:
            fail("%s: chat %d %s" % (name, status, out))
        ch = out["choices"][0]
        n_gen = len(g["tokens"]) + (1 if g["eog"] else 0)
        got = (ch["message"]["content"], ch["finish_reason"], out["usage"])
        exp = (content, "stop" if g["eog"] else "length",
               {"prompt_tokens": len(want), "completion_tokens": n_gen,
                "total_tokens": len(want) + n_gen})
        if got != exp or out["object"] != "chat.completion" or ch["message"]["role"] != "assistant":
            fail("%s: chat %s\n  llama.cpp greedy %s -> %r" % (name, out, g, exp))
        print("ok - %s: greedy chat = llama.cpp greedy %s (%r)" % (name, g["tokens"], content))
        n_ok += 1
    if not n_ok:
        fail("%s: no conversation rendered" % model_id)
    print("ok - %s: %d conversations compared, %d raised as jinja2 does" % (model_id, n_ok,
                                                                          n_raise))


def tensor_views(path):
    """name -> writable float32 view (rows, cols) of an F32 GGUF on disk."""
    data, kv, infos, end = gguf_ref._header(path)
    align = kv.get("general.alignment", 32)
    start = (end + align - 1) // align * align
    mm = np.memmap(path, dtype=np.uint8, mode="r+")
    out = {}
    for name, ne, ttype, off in infos:
        if ttype != 0:
            fail("eot-model: %s is not F32" % name)
        n = int(np.prod(ne))
        a = mm[start + off:start + off + 4 * n].view(np.float32)
        out[name] = a.reshape(list(reversed(ne)))
    return kv, out, mm


def cmd_eot_model(model, dst, messages):
    shutil.copyfile(model, dst)
    kv, t, mm = tensor_views(dst)
    eot = kv["tokenizer.ggml.eot_token_id"]
    if "output.weight" not in t:
        fail("eot-model: the model needs an untied output.weight")
    t["token_embd.weight"][:, 1] = 0
    for name, w in t.items():
        if name.endswith("attn_output.weight") or name.endswith("ffn_down.weight"):
            w[1, :] = 0
    t["output.weight"][:, 1] = 0
    t["output.weight"][eot, 1] = 30
    mm.flush()
    env = hf_environment()
    special, add_bos, bos_id = vocab(kv)
    kind, text = reference(env, kv["tokenizer.chat_template"],
                           [{"messages": flat(messages), "tools": None,
                             "add_generation_prompt": True, **special}])[0]
    text, head = llama_server_prompt(text, special.get("bos_token"), add_bos, bos_id)
    prompt = head + oracle(dst, [{"tokenize": text, "special": True}])[0]["tokens"]
    g = oracle(dst, [{"greedy": prompt, "n": 6, "eog": True}])[0]["tokens"]
    k = next((k for k in range(2, len(g)) if g[k] not in prompt + g[:k]), None)
    if k is None:
        fail("eot-model: no fresh token in llama.cpp's greedy %s" % g)
    t["token_embd.weight"][g[k], 1] = 20
    mm.flush()
    del mm
    r = oracle(dst, [{"greedy": prompt, "n": N_TOKENS, "eog": True}])[0]
    if r["tokens"] != g[:k + 1] or not r["eog"]:
        fail("eot-model: llama.cpp continues %s, wanted %s then the EOT" % (r, g[:k + 1]))
    text = oracle(dst, [{"detokenize": r["tokens"], "last": prompt}])[0]["text"]
    print(json.dumps({"prompt": prompt, "tokens": r["tokens"], "text": text}))


def main():
    a = sys.argv[1:]
    if len(a) == 4 and a[0] == "conversations":
        cmd_conversations(*a[1:])
    elif len(a) == 4 and a[0] == "eot-model":
        cmd_eot_model(a[1], a[2], json.loads(a[3]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
