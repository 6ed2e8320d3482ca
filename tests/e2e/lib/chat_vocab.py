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
import struct
import sys

STRING, ARRAY = 8, 9
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
          11: "<q", 12: "<d"}
U32, I32, BOOL = 4, 5, 7


class Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)[0]
        self.o += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.o:self.o + n]
        self.o += n
        return s

    def value(self, t):
        if t == STRING:
            return self.string()
        if t == ARRAY:
            et, n = self.take("<I"), self.take("<Q")
            return (et, [self.value(et) for _ in range(n)])
        return self.take(SCALAR[t])


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
        k = r.string().decode()
        t = r.take("<I")
        out.append((k, t, r.value(t)))
    return out


def pack(t, v):
    if t == STRING:
        return struct.pack("<Q", len(v)) + v
    if t == ARRAY:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(pack(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


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
        tokens.append(s.encode())
        types.append(3)
        if "tokenizer.ggml.scores" in kv:
            kv["tokenizer.ggml.scores"][1][1].append(0.0)
    ids = {t: i for i, t in enumerate(tokens)}
    for role, text in (("bos", a.bos), ("eos", a.eos), ("eot", a.eot)):
        if text is not None:
            kv["tokenizer.ggml.%s_token_id" % role] = [U32, ids[text.encode()]]
    if a.pre:
        kv["tokenizer.ggml.pre"] = [STRING, a.pre.encode()]
    if a.add_bos is not None:
        kv["tokenizer.ggml.add_bos_token"] = [BOOL, bool(a.add_bos)]
    if a.template:
        kv["tokenizer.chat_template"] = [STRING, open(a.template, "rb").read()]
    kv["general.architecture"] = [STRING, b"llama"]
    body = b"".join(struct.pack("<Q", len(k)) + k.encode() + struct.pack("<I", t) + pack(t, v)
                    for k, (t, v) in kv.items())
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + body
    data += bytes(-len(data) % 32)
    with open(a.out, "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
