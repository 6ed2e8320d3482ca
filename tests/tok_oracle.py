#!/usr/bin/env python3
"""Tokenizer goldens from llama.cpp itself (the oracle), for check_tokenizer.

    SLORA_ORACLE=/work/oracle /usr/bin/python3 tests/tok_oracle.py write tests/fixtures/tok_oracle.txt [SEED]
    SLORA_ORACLE=... /usr/bin/python3 tests/tok_oracle.py check tests/fixtures/tok_oracle.txt
    /usr/bin/python3 tests/tok_oracle.py pre SRC.gguf PRE DST.gguf   (no oracle needed)
    SLORA_ORACLE=... /usr/bin/python3 tests/tok_oracle.py bench TEXT LABEL=VOCAB.gguf...

The oracle is the libllama of node-llama-cpp 3.21.1 installed in
$SLORA_ORACLE (the same llama.cpp build the Node scripts use), called
through ctypes rather than Node because llama_tokenize must receive raw
bytes: a JavaScript string cannot carry ill-formed UTF-8.

Vocabularies: every ../shared/models/vocab GGUF with test pairs, plus
ggml-vocab-gpt-2.gguf with tokenizer.ggml.pre rewritten to the
pre-tokenizers that have no shared file (llama-bpe, qwen2, deepseek-coder,
refact, smollm, default). Inputs: a fixed pseudo-random corpus (mixed
scripts, emoji, whitespace runs, digits, contractions, special-token text,
ill-formed UTF-8) generated here from a seed, so `check` reproduces it
(`write OUT SEED` draws another corpus: tests/e2e/tok_oracle.sh replays a
fresh one on every run).

`pre` writes SRC with tokenizer.ggml.pre set to PRE (bench/tok.sh uses it);
`bench` prints llama.cpp's tokenize speed on the file TEXT as JSON: per
vocabulary the best of 3 runs of the llama_tokenize call alone, in this
thread's CPU time (bench/tok.sh compares it with bench_tok's).

Fixture lines (hex = the bytes in lowercase hex, "-" for none):
    vocab NAME FILE [PRE]
    meta add_bos add_eos bos eos eot sep pad nl fim_pre fim_suf fim_mid fim_pad fim_rep fim_sep
    eog ID...
    attr ID VALUE...          (pairs, every token whose attributes are not "normal")
    pieces SHA256_SPECIAL0 SHA256_SPECIAL1   (u32le length + bytes of every piece)
    input HEX
    enc INPUT FLAGS,... : ID...   (each FLAGS: bit 0 add_special, bit 1 parse_special)
    detok FLAGS HEX_OUT : ID...   (bit 0 remove_special, bit 1 unparse_special)
Inputs are listed once (before the first vocab) and numbered from 0.
"""
import ctypes
import glob
import hashlib
import os
import struct
import sys
import tempfile

SHARED = os.environ.get("SHARED", "../shared")
VOCAB_DIR = os.path.join(SHARED, "models", "vocab")
FILES = ["llama-spm", "phi-3", "gpt-2", "falcon", "deepseek-llm", "starcoder", "mpt"]
PRE_VARIANTS = ["llama-bpe", "qwen2", "deepseek-coder", "refact", "smollm", "default"]


# ---- corpus ---------------------------------------------------------------

PIECES = [
    # words and contractions
    "Hello", "world", "the", "The", "I'm", "don't", "we'LL", "'RE", "'s", "it's", "O'Neil",
    "you'VE", "'d", "they'Re", "isn't", "CamelCase", "snake_case", "e-mail", "a.b.c",
    # numbers
    "1", "12", "123", "1234", "1234567", "3.14", "1,000,000", "0x7F", "\u0663\u0664\u0665",
    "\u00b2", "\u00bd", "\u216b", "2024-01-01",
    # scripts
    "\u041f\u0440\u0438\u0432\u0435\u0442", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
    "\u65e5\u672c\u8a9e", "\u4e2d\u6587\u5b57\u7b26", "\ud55c\uad6d\uc5b4",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u0939\u093f\u0928\u094d\u0926\u0940",
    "\u0e44\u0e17\u0e22", "\u05e2\u05d1\u05e8\u05d9\u05ea", "Ti\u1ebfng Vi\u1ec7t",
    "\u00d1and\u00fa", "stra\u00dfe", "\u0130stanbul", "\u01c5", "e\u0301", "Z\u0324\u0354a\u0308",
    "\u1780\u17b6\u1793\u17cb", "\u3053\u3093\u306b\u3061\u306f", "\u30ab\u30bf\u30ab\u30ca",
    # emoji
    "\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\U0001f1fa\U0001f1f8", "\U0001f999", "\u2764\ufe0f", "\u2705", "\U0001f680",
    # symbols and punctuation
    "$", "\u20ac", "\u2192", "\u2211", "\u00a9", "\u2122", "`", "~", "^", "|", "<=>", "@#",
    "\\", "{}", "[]", "()", "...", "!!!", "???", "\u2014", "\u2013", "\u2026", "\u00ab\u00bb",
    "\u201c\u201d", "\u2018\u2019", "\u00b7", "''''", "```", '"""', "------", "=====",
    # whitespace
    " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2003",
    "\u200b", "\u0085", "\u2028", "\t\t", "     ",
    # control characters
    "\x01", "\x7f", "\x1c",
    # special-token text
    "<s>", "</s>", "<unk>", "<|endoftext|>", "<|end|>", "<|user|>", "<|im_start|>", "<pad>",
    "<fim_prefix>", ">>TITLE<<", "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<|eot_id|>",
    "[INST]", "<|padding|>", "<|placeholder1|>",
]
INVALID = [b"\x80", b"\xff", b"\xc3", b"\xe6\x97", b"\xf0\x9f\x98", b"\xc0\x80", b"\xed\xa0\x80",
           b"\xe0\x80\x80", b"\xfe", b"\xc3\x28", b"\xbf\xbf"]
RUNS = ["a" * 60, " " * 50, "7" * 40, "\n" * 12, "!" * 30, "\u00e9" * 25]


# codepoint ranges drawn from: Unicode categories the pre-tokenizers tell
# apart (letters, marks, numbers, punctuation, symbols, spaces, format,
# private use, unassigned, the 15.1 additions)
BLOCKS = [(0x80, 0x24F), (0x300, 0x36F), (0x370, 0x52F), (0x590, 0x6FF), (0x900, 0xDFF),
          (0x1100, 0x11FF), (0x1D00, 0x1FFF), (0x2000, 0x206F), (0x2070, 0x2BFF),
          (0x2E80, 0x2FFF), (0x3000, 0x30FF), (0x31C0, 0x31FF), (0x4E00, 0x9FFF),
          (0xAC00, 0xD7A3), (0xE000, 0xE0FF), (0xFB00, 0xFFFD), (0x10000, 0x1F9FF),
          (0x20000, 0x2A6DF), (0x2EBE0, 0x2EE6F), (0xE0000, 0xE01EF)]


def random_codepoints(rng):
    out = []
    for _ in range(1 + rng.below(4)):
        lo, hi = BLOCKS[rng.below(len(BLOCKS))]
        out.append(chr(lo + rng.below(hi - lo + 1)))
    return "".join(out).encode()


class Rng:
    """xorshift64*: the corpus must not depend on Python's random module."""

    def __init__(self, seed):
        self.s = seed

    def next(self):
        s = self.s
        s ^= (s >> 12)
        s ^= (s << 25) & 0xFFFFFFFFFFFFFFFF
        s ^= (s >> 27)
        self.s = s
        return (s * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF

    def below(self, n):
        return (self.next() >> 11) % n


def corpus(n=100, seed=0x5EED70C):
    rng = Rng(seed)
    out = []
    for i in range(n):
        parts = []
        for _ in range(1 + rng.below(10)):
            r = rng.below(100)
            if r < 8:
                parts.append(INVALID[rng.below(len(INVALID))])
            elif r < 11:
                parts.append(RUNS[rng.below(len(RUNS))].encode())
            elif r < 21:
                parts.append(random_codepoints(rng))
            else:
                parts.append(PIECES[rng.below(len(PIECES))].encode())
            sep = rng.below(4)
            parts.append(b" " if sep < 2 else b"" if sep == 2 else b"\n")
        text = b"".join(parts)
        if i % 7 == 0:
            text = text.strip()
        out.append(text)
    return out


# ---- GGUF rewrite -----------------------------------------------------------

def with_pre(src, pre, dst):
    """Copy a vocabulary-only GGUF, setting tokenizer.ggml.pre (the file must
    have no tensors)."""
    b = open(src, "rb").read()
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", b, 0)
    assert magic == b"GGUF" and n_tensors == 0
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    off = 24
    out = []

    def skip(t, off):
        if t == 8:
            (n,) = struct.unpack_from("<Q", b, off)
            return off + 8 + n
        if t == 9:
            at, n = struct.unpack_from("<IQ", b, off)
            off += 12
            for _ in range(n):
                off = skip(at, off)
            return off
        return off + sizes[t]

    found = False
    for _ in range(n_kv):
        start = off
        (kl,) = struct.unpack_from("<Q", b, off)
        key = b[off + 8:off + 8 + kl]
        off += 8 + kl
        (t,) = struct.unpack_from("<I", b, off)
        end = skip(t, off + 4)
        if key == b"tokenizer.ggml.pre":
            v = pre.encode()
            out.append(b[start:off + 4] + struct.pack("<Q", len(v)) + v)
            found = True
        else:
            out.append(b[start:end])
        off = end
    assert found
    open(dst, "wb").write(struct.pack("<4sIQQ", magic, version, 0, n_kv) + b"".join(out))


# ---- oracle -----------------------------------------------------------------

class Oracle:
    def __init__(self, root):
        libs = glob.glob(os.path.join(root, "node_modules", "@node-llama-cpp", "linux-x64",
                                      "bins", "linux-x64", "libllama*.so"))
        if not libs:
            sys.exit("tok_oracle.py: no libllama under %s (SLORA_ORACLE)" % root)
        d = os.path.dirname(libs[0])
        for dep in sorted(glob.glob(os.path.join(d, "libggml-base*.so"))) + \
                sorted(glob.glob(os.path.join(d, "libggml.*.so"))):
            ctypes.CDLL(dep, mode=ctypes.RTLD_GLOBAL)
        L = self.L = ctypes.CDLL(libs[0])
        self.quiet = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)(
            lambda *a: None)
        L.llama_log_set(self.quiet, None)
        L.llama_backend_init()

        class Params(ctypes.Structure):
            # llama_model_params (llama.h of this build): 80 bytes, passed
            # by value; vocab_only is the bool at offset 72
            _fields_ = [("raw", ctypes.c_ubyte * 80)]

        self.Params = Params
        L.llama_model_default_params.restype = Params
        L.llama_model_load_from_file.restype = ctypes.c_void_p
        L.llama_model_load_from_file.argtypes = [ctypes.c_char_p, Params]
        L.llama_model_get_vocab.restype = ctypes.c_void_p
        L.llama_model_get_vocab.argtypes = [ctypes.c_void_p]
        L.llama_model_free.argtypes = [ctypes.c_void_p]
        vp, i32, tp = ctypes.c_void_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_int32)
        L.llama_tokenize.argtypes = [vp, ctypes.c_char_p, i32, tp, i32, ctypes.c_bool,
                                     ctypes.c_bool]
        L.llama_detokenize.argtypes = [vp, tp, i32, ctypes.c_char_p, i32, ctypes.c_bool,
                                       ctypes.c_bool]
        L.llama_token_to_piece.argtypes = [vp, i32, ctypes.c_char_p, i32, i32, ctypes.c_bool]
        for f in ["n_tokens", "bos", "eos", "eot", "sep", "pad", "nl", "fim_pre", "fim_suf",
                  "fim_mid", "fim_pad", "fim_rep", "fim_sep"]:
            getattr(L, "llama_vocab_" + f).argtypes = [vp]
        for f in ["get_add_bos", "get_add_eos"]:
            getattr(L, "llama_vocab_" + f).argtypes = [vp]
            getattr(L, "llama_vocab_" + f).restype = ctypes.c_bool
        L.llama_vocab_is_eog.argtypes = [vp, i32]
        L.llama_vocab_is_eog.restype = ctypes.c_bool
        L.llama_vocab_get_attr.argtypes = [vp, i32]

    def load(self, path):
        p = self.L.llama_model_default_params()
        p.raw[72] = 1
        m = self.L.llama_model_load_from_file(path.encode(), p)
        if not m:
            sys.exit("tok_oracle.py: llama.cpp cannot load %s" % path)
        return m, self.L.llama_model_get_vocab(m)

    def tokenize(self, v, text, add_special, parse_special):
        cap = 2 * len(text) + 8
        buf = (ctypes.c_int32 * cap)()
        n = self.L.llama_tokenize(v, text, len(text), buf, cap, add_special, parse_special)
        assert n >= 0
        return list(buf[:n])

    def detokenize(self, v, ids, remove, unparse):
        arr = (ctypes.c_int32 * max(len(ids), 1))(*ids)
        cap = 64 + 64 * len(ids)
        while True:
            buf = ctypes.create_string_buffer(cap)
            n = self.L.llama_detokenize(v, arr, len(ids), buf, cap, remove, unparse)
            if n >= 0:
                return buf.raw[:n]
            cap = -n + 1

    def piece(self, v, tok, special):
        buf = ctypes.create_string_buffer(256)
        n = self.L.llama_token_to_piece(v, tok, buf, 256, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.L.llama_token_to_piece(v, tok, buf, -n, 0, special)
        return buf.raw[:n]


def hexs(b):
    return b.hex() if b else "-"


def generate(oracle, tmp, seed=None):
    inputs = corpus() if seed is None else corpus(seed=seed)
    lines = ["# llama.cpp tokenizer goldens: generated by tests/tok_oracle.py; do not edit"]
    lines += ["input " + hexs(t) for t in inputs]
    vocabs = [(f, "ggml-vocab-%s.gguf" % f, None) for f in FILES]
    vocabs += [("gpt-2+" + p, "ggml-vocab-gpt-2.gguf", p) for p in PRE_VARIANTS]
    L = oracle.L
    for name, file, pre in vocabs:
        path = os.path.join(VOCAB_DIR, file)
        if pre:
            path = os.path.join(tmp, "%s.gguf" % pre)
            with_pre(os.path.join(VOCAB_DIR, file), pre, path)
        m, v = oracle.load(path)
        lines.append("vocab %s %s%s" % (name, file, " " + pre if pre else ""))
        meta = [int(L.llama_vocab_get_add_bos(v)), int(L.llama_vocab_get_add_eos(v))]
        meta += [getattr(L, "llama_vocab_" + f)(v) for f in
                 ["bos", "eos", "eot", "sep", "pad", "nl", "fim_pre", "fim_suf", "fim_mid",
                  "fim_pad", "fim_rep", "fim_sep"]]
        lines.append("meta " + " ".join(map(str, meta)))
        n = L.llama_vocab_n_tokens(v)
        lines.append("eog " + " ".join(str(i) for i in range(n) if L.llama_vocab_is_eog(v, i)))
        attrs = [(i, L.llama_vocab_get_attr(v, i)) for i in range(n)]
        lines.append("attr " + " ".join("%d %d" % a for a in attrs if a[1] != 4))
        digests = []
        for special in (False, True):
            h = hashlib.sha256()
            for i in range(n):
                p = oracle.piece(v, i, special)
                h.update(struct.pack("<I", len(p)) + p)
            digests.append(h.hexdigest())
        lines.append("pieces " + " ".join(digests))
        for k, text in enumerate(inputs):
            results = {}
            for flags in ((0, 2, 1, 3) if k < 12 else (0, 2)):
                ids = oracle.tokenize(v, text, bool(flags & 1), bool(flags & 2))
                results.setdefault(tuple(ids), []).append(str(flags))
            for ids, flags in results.items():
                lines.append("enc %d %s : %s" % (k, ",".join(flags), " ".join(map(str, ids))))
            if k < 10:
                ids = oracle.tokenize(v, text, True, True)
                for flags in range(4):
                    out = oracle.detokenize(v, ids, bool(flags & 1), bool(flags & 2))
                    lines.append("detok %d %s : %s" % (flags, hexs(out), " ".join(map(str, ids))))
        L.llama_model_free(m)
    return "\n".join(lines) + "\n"


def bench(oracle, text_path, specs):
    import json
    import time
    text = open(text_path, "rb").read()
    rows = []
    for spec in specs:
        label, path = spec.split("=", 1)
        m, v = oracle.load(path)
        cap = 3 * len(text) + 8
        buf = (ctypes.c_int32 * cap)()
        best = None
        for _ in range(3):
            t0 = time.thread_time()
            n = oracle.L.llama_tokenize(v, text, len(text), buf, cap, False, False)
            dt = time.thread_time() - t0
            best = dt if best is None or dt < best else best
        oracle.L.llama_model_free(m)
        rows.append({"label": label, "tokens": n, "seconds": best, "tok_s": n / best})
    print(json.dumps({"bytes": len(text), "rows": rows}))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "pre":
        with_pre(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    root = os.environ.get("SLORA_ORACLE")
    if len(sys.argv) >= 4 and sys.argv[1] == "bench" and root:
        bench(Oracle(root), sys.argv[2], sys.argv[3:])
        return
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("write", "check") or \
            (len(sys.argv) == 4 and sys.argv[1] != "write"):
        sys.exit(__doc__)
    if not root:
        sys.exit("tok_oracle.py: set SLORA_ORACLE to the node-llama-cpp install (make oracle)")
    seed = int(sys.argv[3]) if len(sys.argv) == 4 else None
    with tempfile.TemporaryDirectory() as tmp:
        text = generate(Oracle(root), tmp, seed)
    if sys.argv[1] == "write":
        open(sys.argv[2], "w").write(text)
        return
    old = open(sys.argv[2]).read().split("\n")
    new = text.split("\n")
    for i, (a, b) in enumerate(zip(old, new)):
        if a != b:
            sys.exit("%s:%d differs from llama.cpp:\n  file:   %s\n  oracle: %s" %
                     (sys.argv[2], i + 1, a[:200], b[:200]))
    if len(old) != len(new):
        sys.exit("%s: %d lines, llama.cpp gives %d" % (sys.argv[2], len(old), len(new)))
    print("ok: %s equals llama.cpp's output (%d lines)" % (sys.argv[2], len(new)))


if __name__ == "__main__":
    main()
