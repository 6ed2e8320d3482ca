#!/usr/bin/python3
"""model_ref.py - independent numpy forward pass of a llama2.c model.

Reads karpathy/llama2.c's legacy .bin (run.c layout): a 7 x int32 header
(dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
negative vocab_size means an unshared classifier follows the weights), then
float32 token_embedding (vocab, dim), rms_att (L, dim), wq (L, dim, dim),
wk (L, kv_dim, dim), wv (L, kv_dim, dim), wo (L, dim, dim), rms_ffn (L, dim),
w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim), rms_final
(dim), the unused freq_cis_real/imag (seq_len * head_size / 2 each), and
wcls (vocab, dim) when unshared. Matrices are (out, in): y = W x.

Forward as run.c: RMSNorm (eps 1e-5), RoPE on pairs (i, i+1) with
freq = 10000^(-(i mod head_size) / head_size), GQA (head h reads kv head
h / (n_heads / n_kv_heads)), SwiGLU, residuals, final RMSNorm, classifier.
Computed in float64 over the whole sequence with a causal mask.

Model.from_weights builds a model from arrays instead, with the options of
a Qwen2-style model: q/k/v biases, rope theta, RMSNorm eps and NeoX-style
RoPE (each head's halves (i, i + head_size/2) rotate together, as HF's
rotate_half and llama.cpp's NEOX mode do).

An adapter (spec superlora-v1) adds W' = W + dW (dW float32 from
superlora_ref) to its target matrices.

CLI:
  model_ref.py --model M.bin --tokens 1,403,407 [--adapter A.safetensors]
      prints {"logits": [[vocab floats] per position]}
  model_ref.py --model M.bin --tokens 1 --greedy N [--adapter A]
      prints {"tokens": [N greedy continuation tokens]}
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import superlora_ref as sl  # noqa: E402

MATS = ["wq", "wk", "wv", "wo", "w1", "w2", "w3"]


class Model:
    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        (self.dim, self.hidden_dim, self.n_layers, self.n_heads, self.n_kv_heads,
         vocab, self.seq_len) = struct.unpack("<7i", data[:28])
        self.shared = vocab > 0
        self.vocab = abs(vocab)
        self.shape = sl.ModelShape(self.dim, self.hidden_dim, self.n_layers, self.n_heads,
                                   self.n_kv_heads, vocab, self.seq_len)
        hs = self.dim // self.n_heads
        kv = hs * self.n_kv_heads
        self.head_size, self.kv_dim = hs, kv
        flat = np.frombuffer(data, dtype="<f4", offset=28)
        pos = 0
        L, d, h, V = self.n_layers, self.dim, self.hidden_dim, self.vocab

        def take(*shape):
            nonlocal pos
            n = int(np.prod(shape))
            if pos + n > flat.size:
                raise ValueError("model %s: truncated" % path)
            a = flat[pos:pos + n].reshape(shape).astype(np.float64)
            pos += n
            return a

        self.emb = take(V, d)
        self.rms_att = take(L, d)
        self.w = {}
        self.w["wq"] = take(L, d, d)
        self.w["wk"] = take(L, kv, d)
        self.w["wv"] = take(L, kv, d)
        self.w["wo"] = take(L, d, d)
        self.rms_ffn = take(L, d)
        self.w["w1"] = take(L, h, d)
        self.w["w2"] = take(L, d, h)
        self.w["w3"] = take(L, h, d)
        self.rms_final = take(d)
        take(self.seq_len * hs // 2)
        take(self.seq_len * hs // 2)
        self.wcls = self.emb if self.shared else take(V, d)
        self.trailing = flat.size - pos
        self.rope, self.theta, self.eps, self.bias = "interleaved", 10000.0, 1e-5, {}

    @classmethod
    def from_weights(cls, shape, w, emb, rms_att, rms_ffn, rms_final, wcls=None, bias=None,
                     rope="interleaved", theta=10000.0, eps=1e-5):
        """A model from float arrays: shape a superlora_ref.ModelShape, w
        {module: (L, out, in)}, bias {"wq"|"wk"|"wv": (L, out)}, rope
        "interleaved" or "neox"."""
        m = cls.__new__(cls)
        m.shape = shape
        m.dim, m.hidden_dim, m.n_layers = shape.dim, shape.hidden_dim, shape.n_layers
        m.n_heads, m.n_kv_heads, m.seq_len = shape.n_heads, shape.n_kv_heads, shape.seq_len
        m.vocab, m.shared = abs(shape.vocab_size), wcls is None
        m.head_size = m.dim // m.n_heads
        m.kv_dim = m.head_size * m.n_kv_heads
        f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
        m.w = {k: f64(v) for k, v in w.items()}
        m.emb, m.rms_att, m.rms_ffn, m.rms_final = f64(emb), f64(rms_att), f64(rms_ffn), f64(rms_final)
        m.wcls = m.emb if wcls is None else f64(wcls)
        m.bias = {k: f64(v) for k, v in (bias or {}).items()}
        m.rope, m.theta, m.eps, m.trailing = rope, theta, eps, 0
        return m

    def with_adapter(self, adapter_bytes, max_params=sl.DEFAULT_MAX_PARAMS):
        """A copy of the weights with W' = float32(W) + dW applied."""
        _, dws = sl.load_and_generate(adapter_bytes, self.shape, max_params)
        w = {k: v.copy() for k, v in self.w.items()}
        for l, m, dw in dws:
            w[m][l] = (w[m][l].astype(np.float32) + dw).astype(np.float64)
        return w

    def forward(self, tokens, w=None):
        """Logits (T, vocab) float64 for every position of tokens."""
        w = self.w if w is None else w
        T = len(tokens)
        d, hs, nh, nkv = self.dim, self.head_size, self.n_heads, self.n_kv_heads
        x = self.emb[np.asarray(tokens)]
        pos = np.arange(T, dtype=np.float64)
        i = np.arange(0, d, 2)
        freq = 1.0 / np.power(self.theta, (i % hs) / hs)
        ang = pos[:, None] * freq[None, :]
        cos, sin = np.cos(ang), np.sin(ang)
        mask = np.triu(np.full((T, T), -np.inf), 1)

        def rope(v, n):
            v = v.copy()
            if self.rope == "neox":
                half = hs // 2
                for h0 in range(0, n, hs):
                    a = v[:, h0:h0 + half].copy()
                    b = v[:, h0 + half:h0 + hs].copy()
                    c, s = cos[:, :half], sin[:, :half]
                    v[:, h0:h0 + half] = a * c - b * s
                    v[:, h0 + half:h0 + hs] = a * s + b * c
                return v
            a, b = v[:, 0:n:2].copy(), v[:, 1:n:2].copy()
            c, s = cos[:, : n // 2], sin[:, : n // 2]
            v[:, 0:n:2] = a * c - b * s
            v[:, 1:n:2] = a * s + b * c
            return v

        def proj(xb, m, l):
            y = xb @ w[m][l].T
            return y + self.bias[m][l] if m in self.bias else y

        for l in range(self.n_layers):
            xb = rmsnorm(x, self.rms_att[l], self.eps)
            q = rope(proj(xb, "wq", l), d)
            k = rope(proj(xb, "wk", l), self.kv_dim)
            v = proj(xb, "wv", l)
            out = np.zeros((T, d))
            for h in range(nh):
                kh = h // (nh // nkv)
                qh = q[:, h * hs:(h + 1) * hs]
                kk = k[:, kh * hs:(kh + 1) * hs]
                vv = v[:, kh * hs:(kh + 1) * hs]
                att = qh @ kk.T / np.sqrt(hs) + mask
                att = np.exp(att - att.max(axis=1, keepdims=True))
                att /= att.sum(axis=1, keepdims=True)
                out[:, h * hs:(h + 1) * hs] = att @ vv
            x = x + out @ w["wo"][l].T
            xb = rmsnorm(x, self.rms_ffn[l], self.eps)
            h1 = xb @ w["w1"][l].T
            h3 = xb @ w["w3"][l].T
            x = x + (h1 / (1.0 + np.exp(-h1)) * h3) @ w["w2"][l].T
        x = rmsnorm(x, self.rms_final, self.eps)
        return x @ self.wcls.T

    def greedy(self, tokens, n, w=None):
        toks = list(tokens)
        out = []
        for _ in range(n):
            if len(toks) >= self.seq_len:
                break
            nxt = int(np.argmax(self.forward(toks, w)[-1]))
            out.append(nxt)
            toks.append(nxt)
        return out


def rmsnorm(x, weight, eps=1e-5):
    ss = np.mean(x * x, axis=-1, keepdims=True) + eps
    return weight * (x / np.sqrt(ss))


def main(argv):
    ap = argparse.ArgumentParser(prog="model_ref.py")
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--adapter")
    ap.add_argument("--greedy", type=int, help="print N greedy continuation tokens")
    args = ap.parse_args(argv)
    model = Model(args.model)
    tokens = [int(t) for t in args.tokens.split(",") if t != ""]
    w = None
    if args.adapter:
        with open(args.adapter, "rb") as f:
            w = model.with_adapter(f.read())
    if args.greedy is not None:
        print(json.dumps({"tokens": model.greedy(tokens, args.greedy, w)}))
    else:
        logits = model.forward(tokens, w)
        print(json.dumps({"logits": [[float("%.9g" % v) for v in row] for row in logits]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
