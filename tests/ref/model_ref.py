#!/usr/bin/python3
"""model_ref.py - independent numpy forward pass of a llama2.c or GGUF model.

Reads karpathy/llama2.c's legacy .bin (run.c layout): a 7 x int32 header
(dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
negative vocab_size means an unshared classifier follows the weights), then
float32 token_embedding (vocab, dim), rms_att (L, dim), wq (L, dim, dim),
wk (L, kv_dim, dim), wv (L, kv_dim, dim), wo (L, dim, dim), rms_ffn (L, dim),
w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim), rms_final
(dim), the unused freq_cis_real/imag (seq_len * head_size / 2 each), and
wcls (vocab, dim) when unshared. Matrices are (out, in): y = W x.

Or a GGUF (tests/ref/gguf_ref.py; F32/F16/BF16) of architecture "llama" or
"qwen2", hyper-parameters from its keys as llama.cpp defines them:
<arch>.attention.layer_norm_rms_epsilon, <arch>.rope.freq_base (default
10000), <arch>.rope.scaling.type "linear" with .factor, rope_freqs.weight
(per-dimension divisors, Llama 3), blk.N.attn_{q,k,v}.bias, output.weight
(absent: tied to token_embd). llama rotates pairs (2i, 2i+1) of each head;
qwen2 rotates (i, i + head_size/2) (NeoX).

Forward as run.c: RMSNorm (eps 1e-5 for .bin), RoPE with
freq_i = theta^(-2i / head_size) / rope_freqs[i], angle = pos * scale * freq,
GQA (head h reads kv head h / (n_heads / n_kv_heads)), SwiGLU, residuals,
final RMSNorm, classifier. Computed in float64 over the whole sequence with
a causal mask.

An adapter (spec superlora-v1) adds W' = W + dW (dW float32 from
superlora_ref) to its target matrices. Several adapters with weights (a
per-request mix) give W' = W + sum_i weight_i dW_i, summed in float64.

CLI:
  model_ref.py --model M.bin --tokens 1,403,407 [--adapter A.safetensors]
      prints {"logits": [[vocab floats] per position]}
  model_ref.py --model M.bin --tokens 1 --greedy N [--adapter A]
      prints {"tokens": [N greedy continuation tokens]}
  model_ref.py ... --adapter A --weight 0.7 --adapter B --weight 0.3
      a mix: one --weight per --adapter, in order
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_ref  # noqa: E402
import superlora_ref as sl  # noqa: E402

MATS = ["wq", "wk", "wv", "wo", "w1", "w2", "w3"]


GGUF_MATS = {"wq": "attn_q", "wk": "attn_k", "wv": "attn_v", "wo": "attn_output",
             "w1": "ffn_gate", "w2": "ffn_down", "w3": "ffn_up"}


class Model:
    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        self.eps, self.theta, self.scale, self.neox = 1e-5, 10000.0, 1.0, False
        self.rope_freqs, self.bias = None, None
        if data[:4] == b"GGUF":
            self._load_gguf(path)
            return
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

    def _load_gguf(self, path):
        kv, t = gguf_ref.read(path)
        arch = kv["general.architecture"]
        if arch not in ("llama", "qwen2"):
            raise ValueError("%s: architecture %s" % (path, arch))
        g = lambda k, d=None: kv.get(arch + "." + k, d)  # noqa: E731
        self.dim, self.hidden_dim = g("embedding_length"), g("feed_forward_length")
        self.n_layers, self.n_heads = g("block_count"), g("attention.head_count")
        self.n_kv_heads = g("attention.head_count_kv", self.n_heads)
        self.seq_len = g("context_length")
        self.eps = g("attention.layer_norm_rms_epsilon")
        self.theta = g("rope.freq_base", 10000.0)
        if g("rope.scaling.type", "none") == "linear":
            self.scale = 1.0 / g("rope.scaling.factor")
        self.neox = arch == "qwen2"
        self.emb = t["token_embd.weight"]
        self.vocab = self.emb.shape[0]
        self.shared = "output.weight" not in t
        self.wcls = self.emb if self.shared else t["output.weight"]
        L = self.n_layers
        self.rms_att = np.stack([t["blk.%d.attn_norm.weight" % l] for l in range(L)])
        self.rms_ffn = np.stack([t["blk.%d.ffn_norm.weight" % l] for l in range(L)])
        self.rms_final = t["output_norm.weight"]
        self.w = {m: np.stack([t["blk.%d.%s.weight" % (l, n)] for l in range(L)])
                  for m, n in GGUF_MATS.items()}
        if "blk.0.attn_q.bias" in t:
            self.bias = {m: np.stack([t["blk.%d.attn_%s.bias" % (l, m[1])] for l in range(L)])
                         for m in ("wq", "wk", "wv")}
        self.rope_freqs = t.get("rope_freqs.weight")
        self.head_size = self.dim // self.n_heads
        self.kv_dim = self.head_size * self.n_kv_heads
        self.shape = sl.ModelShape(self.dim, self.hidden_dim, self.n_layers, self.n_heads,
                                   self.n_kv_heads, self.vocab if self.shared else -self.vocab,
                                   self.seq_len)
        self.trailing = 0

    @classmethod
    def from_weights(cls, shape, w, emb, rms_att, rms_ffn, rms_final, wcls=None, bias=None,
                     neox=False, theta=10000.0, eps=1e-5):
        """A model from float arrays (the trainer's own modules): shape a
        superlora_ref.ModelShape, w {module: (L, out, in)}, bias
        {"wq"|"wk"|"wv": (L, out)}, neox: rotate halves (qwen2)."""
        m = cls.__new__(cls)
        m.shape = shape
        m.dim, m.hidden_dim, m.n_layers = shape.dim, shape.hidden_dim, shape.n_layers
        m.n_heads, m.n_kv_heads, m.seq_len = shape.n_heads, shape.n_kv_heads, shape.seq_len
        m.vocab, m.shared = abs(shape.vocab_size), wcls is None
        m.head_size = m.dim // m.n_heads
        m.kv_dim = m.head_size * m.n_kv_heads
        f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
        m.w = {k: f64(v) for k, v in w.items()}
        m.emb, m.rms_att, m.rms_ffn = f64(emb), f64(rms_att), f64(rms_ffn)
        m.rms_final = f64(rms_final)
        m.wcls = m.emb if wcls is None else f64(wcls)
        m.bias = {k: f64(v) for k, v in bias.items()} if bias else None
        m.eps, m.theta, m.scale, m.neox, m.rope_freqs = eps, theta, 1.0, neox, None
        m.trailing = 0
        return m

    def with_adapter(self, adapter_bytes, max_params=sl.DEFAULT_MAX_PARAMS):
        """A copy of the weights with W' = float32(W) + dW applied."""
        _, dws = sl.load_and_generate(adapter_bytes, self.shape, max_params)
        w = {k: v.copy() for k, v in self.w.items()}
        for l, m, dw in dws:
            w[m][l] = (w[m][l].astype(np.float32) + dw).astype(np.float64)
        return w

    def with_adapters(self, mix, max_params=sl.DEFAULT_MAX_PARAMS):
        """A copy of the weights with W' = W + sum_i weight_i dW_i for mix
        [(adapter bytes, weight)], in float64."""
        w = {k: v.copy() for k, v in self.w.items()}
        for data, weight in mix:
            _, dws = sl.load_and_generate(data, self.shape, max_params)
            for l, m, dw in dws:
                w[m][l] += weight * dw.astype(np.float64)
        return w

    def forward(self, tokens, w=None):
        """Logits (T, vocab) float64 for every position of tokens."""
        w = self.w if w is None else w
        T = len(tokens)
        d, hs, nh, nkv = self.dim, self.head_size, self.n_heads, self.n_kv_heads
        x = self.emb[np.asarray(tokens)]
        pos = np.arange(T, dtype=np.float64)
        i = np.arange(hs // 2)
        freq = 1.0 / np.power(self.theta, 2.0 * i / hs)
        if self.rope_freqs is not None:
            freq = freq / self.rope_freqs
        ang = pos[:, None] * self.scale * freq[None, :]  # (T, hs / 2)
        cos, sin = np.cos(ang), np.sin(ang)
        mask = np.triu(np.full((T, T), -np.inf), 1)

        def rope(v, n):
            v = v.copy()
            for h0 in range(0, n, hs):
                if self.neox:
                    ia = np.arange(h0, h0 + hs // 2)
                    ib = ia + hs // 2
                else:
                    ia = np.arange(h0, h0 + hs, 2)
                    ib = ia + 1
                a, b = v[:, ia].copy(), v[:, ib].copy()
                v[:, ia] = a * cos - b * sin
                v[:, ib] = a * sin + b * cos
            return v

        def proj(x_, m, l):
            y = x_ @ w[m][l].T
            if self.bias is not None and m in self.bias:
                y = y + self.bias[m][l]
            return y

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


def rmsnorm(x, weight, eps):
    ss = np.mean(x * x, axis=-1, keepdims=True) + eps
    return weight * (x / np.sqrt(ss))


def main(argv):
    ap = argparse.ArgumentParser(prog="model_ref.py")
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--adapter", action="append", default=[])
    ap.add_argument("--weight", action="append", type=float, default=[],
                    help="weight of the adapter at the same place (a mix)")
    ap.add_argument("--greedy", type=int, help="print N greedy continuation tokens")
    args = ap.parse_args(argv)
    model = Model(args.model)
    tokens = [int(t) for t in args.tokens.split(",") if t != ""]
    w = None
    if args.weight and len(args.weight) != len(args.adapter):
        ap.error("give one --weight per --adapter (or none for a single adapter)")
    if len(args.adapter) > 1 and not args.weight:
        ap.error("several adapters are a mix: give their --weight")
    datas = []
    for path in args.adapter:
        with open(path, "rb") as f:
            datas.append(f.read())
    if args.weight:
        w = model.with_adapters(list(zip(datas, args.weight)))
    elif datas:
        w = model.with_adapter(datas[0])
    if args.greedy is not None:
        print(json.dumps({"tokens": model.greedy(tokens, args.greedy, w)}))
    else:
        logits = model.forward(tokens, w)
        print(json.dumps({"logits": [[float("%.9g" % v) for v in row] for row in logits]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
