#!/usr/bin/python3
"""chat_vocab.py - a vocabulary-only GGUF for chat tests, written from a
real one (../shared/models/vocab/*.gguf) independently of slorad: its
tokenizer.* keys copied with their GGUF types, then

  --special TEXT    a control token (token_type 3) appended (repeatable),
                    as a converter adds a chat model's added special tokens
  --bos/--eos/--eot TEXT   the special ids set to these tokens' ids
  --pre NAME        tokenizer.ggml.pre
  --add-bos 0|1     tokenizer.ggml.add_bos_token
  --template FILE   tokenizer.chat_template from a file (as is, bytes)

so that `slorad gen-model --vocab-from OUT` builds a model llama.cpp loads
with that vocabulary and template.

  chat_vocab.py SRC.gguf OUT.gguf [options]
"""
import argparse
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ref"))
import gguf_ref  # noqa: E402

STRING, ARRAY = 8, 9
U32, BOOL = 4, 7


class Reader(gguf_ref._Reader):
    """gguf_ref's reader, arrays kept with their element type."""

    def value(self, t):
        if t == ARRAY:
            et, n = self.take("<I"), self.take("<Q")
            return (et, [self.value(et) for _ in range(n)])
        return super().value(t)


def read_kv(path):
    """[(key, type, value)] in file order; arrays as (elem_type, [values])."""
    r = Reader(open(path, "rb").read())
    if r.d[:4] != b"GGUF":
        sys.exit("%s: not a GGUF" % path)
    r.o = 4
    r.take("<I")
    r.take("<Q")
    n_kv = r.take("<Q")
    out = []
    for _ in range(n_kv):
        k = r.string()
        t = r.take("<I")
        out.append((k, t, r.value(t)))
    return out


def pack(t, v):
    if t == STRING:
        b = v if isinstance(v, bytes) else v.encode("utf-8", "surrogateescape")
        return struct.pack("<Q", len(b)) + b
    if t == ARRAY:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(pack(et, x) for x in items)
    return struct.pack(gguf_ref._SCALARS[t], v)


def main(argv):
    ap = argparse.ArgumentParser(prog="chat_vocab.py")
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--special", action="append", default=[])
    ap.add_argument("--bos")
    ap.add_argument("--eos")
    ap.add_argument("--eot")
    ap.add_argument("--pre")
    ap.add_argument("--add-bos", type=int, choices=[0, 1])
    ap.add_argument("--template")
    a = ap.parse_args(argv)
    kv = {k: [t, v] for k, t, v in read_kv(a.src) if k.startswith("tokenizer.")}
    tokens = kv["tokenizer.ggml.tokens"][1][1]
    types = kv["tokenizer.ggml.token_type"][1][1]
    for s in a.special:
        tokens.append(s)
        types.append(3)
        if "tokenizer.ggml.scores" in kv:
            kv["tokenizer.ggml.scores"][1][1].append(0.0)
    ids = {t: i for i, t in enumerate(tokens)}
    for role, text in (("bos", a.bos), ("eos", a.eos), ("eot", a.eot)):
        if text is not None:
            kv["tokenizer.ggml.%s_token_id" % role] = [U32, ids[text]]
    if a.pre:
        kv["tokenizer.ggml.pre"] = [STRING, a.pre]
    if a.add_bos is not None:
        kv["tokenizer.ggml.add_bos_token"] = [BOOL, bool(a.add_bos)]
    if a.template:
        kv["tokenizer.chat_template"] = [STRING, open(a.template, "rb").read()]
    kv["general.architecture"] = [STRING, "llama"]
    body = b"".join(struct.pack("<Q", len(k)) + k.encode() + struct.pack("<I", t) + pack(t, v)
                    for k, (t, v) in kv.items())
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + body
    data += bytes(-len(data) % 32)
    with open(a.out, "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
