#!/usr/bin/python3
"""Independent reference for llama2.c run.c's BPE encode/decode.

Written from the algorithm's description (karpathy/llama2.c run.c, encode()
and decode()), not from slorad's C code: optional BOS, a dummy-prefix " "
token when the text is non-empty, UTF-8 codepoints grouped (at most 4
bytes), unknown codepoints fall back to one <0xXX> token per byte at id
byte + 3, then repeatedly merge the leftmost adjacent pair whose
concatenation is a vocabulary piece with the best score (strictly greater
than -1e10). Decode strips a leading space after BOS and turns <0xXX> into
the raw byte.

usage: tok_ref.py TOK.bin TEXT...        prints one line of ids per TEXT
       tok_ref.py TOK.bin --decode IDS   prints repr() of the bytes decoded from
                                         IDS[1:], IDS[0] being the previous token
"""
import re
import struct
import sys


def load(path):
    data = open(path, "rb").read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off = 4
    pieces, scores = [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append(data[off:off + n])
        scores.append(score)
        off += n
    return pieces, scores


def encode(pieces, scores, text, bos=True):
    lookup = {}
    for i, p in enumerate(pieces):
        lookup.setdefault(p, i)
    raw = text.encode("utf-8") if isinstance(text, str) else text
    toks = [1] if bos else []
    if raw:
        toks.append(lookup.get(b" ", ord(" ") + 3))
    i = 0
    while i < len(raw):
        j = i + 1
        while j < len(raw) and (raw[j] & 0xC0) == 0x80 and j - i < 4:
            j += 1
        cp = raw[i:j]
        if cp in lookup:
            toks.append(lookup[cp])
        else:
            toks.extend(b + 3 for b in cp)
        i = j
    while True:
        best, best_i = -1e10, -1
        for k in range(len(toks) - 1):
            cat = pieces[toks[k]] + pieces[toks[k + 1]]
            if cat in lookup and scores[lookup[cat]] > best:
                best, best_i = scores[lookup[cat]], k
        if best_i < 0:
            break
        toks[best_i:best_i + 2] = [lookup[pieces[toks[best_i]] + pieces[toks[best_i + 1]]]]
    return toks


def decode(pieces, ids):
    """Bytes of ids[1:]; ids[0] is context only (run.c's prev_token)."""
    out = b""
    prev = ids[0]
    for t in ids[1:]:
        p = pieces[t]
        if prev == 1 and p.startswith(b" "):
            p = p[1:]
        m = re.match(rb"<0x([0-9A-Fa-f]{1,2})", p)
        out += bytes([int(m.group(1), 16)]) if m else p
        prev = t
    return out


if __name__ == "__main__":
    pieces, scores = load(sys.argv[1])
    if sys.argv[2] == "--decode":
        print(repr(decode(pieces, [int(x) for x in sys.argv[3].split()])))
    else:
        for text in sys.argv[2:]:
            print(" ".join(str(t) for t in encode(pieces, scores, text)))
