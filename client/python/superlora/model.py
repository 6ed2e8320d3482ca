"""llama2.c-architecture transformer in torch, loading the legacy .bin files
the daemon serves, and the llama2.c BPE tokenizer (tok*.bin).

.bin layout (karpathy/llama2.c run.c): 7 x int32 header dim, hidden_dim,
n_layers, n_heads, n_kv_heads, vocab_size (negative: an unshared classifier
follows), seq_len; then float32 token_embedding (vocab, dim), rms_att (L, dim),
wq (L, dim, dim), wk (L, kv_dim, dim), wv (L, kv_dim, dim), wo (L, dim, dim),
rms_ffn (L, dim), w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim),
rms_final (dim), freq_cis_real and freq_cis_imag (seq_len * head_size / 2 each,
unused), wcls (vocab, dim) when unshared. Matrices are (out, in): y = W x.

The base weights are buffers (never trained). forward() takes an optional
mapping (layer, module) -> dW so that W' = W + dW for adapted matrices,
exactly the daemon's weight-set substitution; dW may require grad.
"""

import struct

import numpy as np
import torch

MODULES = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")


class Config:
    def __init__(self, dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len):
        self.dim = dim
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.vocab_size = vocab_size  # raw: negative = unshared classifier
        self.seq_len = seq_len

    @property
    def vocab(self):
        return abs(self.vocab_size)

    @property
    def head_size(self):
        return self.dim // self.n_heads

    @property
    def kv_dim(self):
        return self.head_size * self.n_kv_heads

    def module_shape(self, module):
        d, h, kv = self.dim, self.hidden_dim, self.kv_dim
        return {"wq": (d, d), "wk": (kv, d), "wv": (kv, d), "wo": (d, d),
                "w1": (h, d), "w2": (d, h), "w3": (h, d)}[module]

    def base(self):
        """The spec's "base" object (section 7)."""
        return {"dim": self.dim, "n_layers": self.n_layers, "n_heads": self.n_heads,
                "n_kv_heads": self.n_kv_heads, "hidden_dim": self.hidden_dim,
                "vocab_size": self.vocab}


class Transformer(torch.nn.Module):
    """Frozen llama2.c model. Weights float32 unless .double() is called."""

    def __init__(self, path):
        super().__init__()
        with open(path, "rb") as f:
            data = f.read()
        if len(data) < 28:
            raise ValueError("model %s: shorter than the 28-byte header" % path)
        self.config = c = Config(*struct.unpack("<7i", data[:28]))
        if min(c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.seq_len) <= 0 \
                or c.dim % c.n_heads or c.n_heads % c.n_kv_heads or c.vocab == 0:
            raise ValueError("model %s: invalid header" % path)
        flat = np.frombuffer(data, dtype="<f4", offset=28)
        L, d, h, V, kv, hs = c.n_layers, c.dim, c.hidden_dim, c.vocab, c.kv_dim, c.head_size
        pos = 0

        def take(*shape):
            nonlocal pos
            n = int(np.prod(shape))
            if pos + n > flat.size:
                raise ValueError("model %s: truncated" % path)
            t = torch.from_numpy(flat[pos:pos + n].reshape(shape).copy())
            pos += n
            return t

        self.register_buffer("emb", take(V, d))
        self.register_buffer("rms_att", take(L, d))
        self.register_buffer("wq", take(L, d, d))
        self.register_buffer("wk", take(L, kv, d))
        self.register_buffer("wv", take(L, kv, d))
        self.register_buffer("wo", take(L, d, d))
        self.register_buffer("rms_ffn", take(L, d))
        self.register_buffer("w1", take(L, h, d))
        self.register_buffer("w2", take(L, d, h))
        self.register_buffer("w3", take(L, h, d))
        self.register_buffer("rms_final", take(d))
        take(c.seq_len * hs // 2)
        take(c.seq_len * hs // 2)
        self.register_buffer("wcls", self.emb if c.vocab_size > 0 else take(V, d))
        if pos != flat.size:
            raise ValueError("model %s: %d trailing floats" % (path, flat.size - pos))
        # RoPE as run.c: pair (i, i+1) rotates by pos * 10000^(-(i mod hs) / hs)
        i = torch.arange(0, d, 2, dtype=torch.float64)
        self.register_buffer("inv_freq", 1.0 / torch.pow(10000.0, (i % hs) / hs))

    def weight(self, layer, module, deltas):
        w = getattr(self, module)[layer]
        if deltas is not None and (layer, module) in deltas:
            w = w + deltas[(layer, module)].to(w.dtype)
        return w

    def _rope(self, x, pos0):
        T = x.shape[1]
        pos = torch.arange(pos0, pos0 + T, dtype=torch.float64, device=x.device)
        ang = pos[:, None] * self.inv_freq[None, : x.shape[-1] // 2]
        cos, sin = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)

    def forward(self, tokens, deltas=None, cache=None):
        """tokens (B, T) int64 -> logits (B, T, vocab). deltas: {(layer,
        module): dW (out, in)}. cache: a list (one [k, v] per layer, filled on
        first use) continuing a sequence across calls (generation)."""
        c = self.config
        B, T = tokens.shape
        hs, nh, nkv = c.head_size, c.n_heads, c.n_kv_heads
        pos0 = cache[0][0].shape[2] if cache else 0
        x = self.emb[tokens]
        for l in range(c.n_layers):
            xb = rmsnorm(x, self.rms_att[l])
            q = self._rope(xb @ self.weight(l, "wq", deltas).T, pos0)
            k = self._rope(xb @ self.weight(l, "wk", deltas).T, pos0)
            v = xb @ self.weight(l, "wv", deltas).T
            q = q.view(B, T, nh, hs).transpose(1, 2)
            k = k.view(B, T, nkv, hs).transpose(1, 2)
            v = v.view(B, T, nkv, hs).transpose(1, 2)
            if cache is not None:
                if len(cache) <= l:
                    cache.append([k, v])
                else:
                    k = cache[l][0] = torch.cat((cache[l][0], k), dim=2)
                    v = cache[l][1] = torch.cat((cache[l][1], v), dim=2)
            rep = nh // nkv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            att = (q @ k.transpose(-1, -2)) / (hs ** 0.5)
            S = k.shape[2]
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).triu(S - T + 1)
            att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
            out = (att @ v).transpose(1, 2).reshape(B, T, c.dim)
            x = x + out @ self.weight(l, "wo", deltas).T
            xb = rmsnorm(x, self.rms_ffn[l])
            h1 = xb @ self.weight(l, "w1", deltas).T
            h3 = xb @ self.weight(l, "w3", deltas).T
            x = x + (torch.nn.functional.silu(h1) * h3) @ self.weight(l, "w2", deltas).T
        return rmsnorm(x, self.rms_final) @ self.wcls.T

    @torch.no_grad()
    def generate(self, prompts, n, deltas=None, temperature=0.0, generator=None, stop=(1, 2)):
        """Continue each prompt (list of token lists, equal lengths) by up to n
        tokens; greedy at temperature 0 (argmax, lowest id wins ties, as the
        daemon). A sequence ends after emitting a token in stop (not included)
        or at seq_len. Returns a list of token lists."""
        c = self.config
        toks = torch.tensor(prompts, dtype=torch.long)
        cache = []
        logits = self.forward(toks, deltas, cache)[:, -1]
        outs = [[] for _ in prompts]
        done = [False] * len(prompts)
        for step in range(n):
            if toks.shape[1] + step >= c.seq_len:
                break
            if temperature == 0.0:
                nxt = logits.argmax(dim=-1)
            else:
                probs = torch.softmax(logits.double() / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator)[:, 0]
            for i, t in enumerate(nxt.tolist()):
                if not done[i]:
                    if t in stop:
                        done[i] = True
                    else:
                        outs[i].append(t)
            if all(done):
                break
            logits = self.forward(nxt[:, None], deltas, cache)[:, -1]
        return outs


def rmsnorm(x, weight):
    return weight * (x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + 1e-5))


class Tokenizer:
    """llama2.c tok*.bin: int32 max_token_length, then per token float32
    score, int32 length, bytes. Encode/decode as run.c: dummy-prefix space,
    greedy highest-score merges, byte fallback <0xXX> = byte + 3, BOS = 1,
    EOS = 2."""

    BOS, EOS = 1, 2

    def __init__(self, path, vocab_size=512):
        with open(path, "rb") as f:
            data = f.read()
        pos = 4
        self.pieces, self.scores = [], []
        for _ in range(vocab_size):
            score, n = struct.unpack_from("<fi", data, pos)
            pos += 8
            self.pieces.append(data[pos:pos + n])
            self.scores.append(score)
            pos += n
        self.lookup = {}
        for i, p in enumerate(self.pieces):
            self.lookup.setdefault(p, i)

    def encode(self, text, bos=True, eos=False):
        raw = text.encode("utf-8")
        toks = []
        if raw:
            toks.append(self.lookup[b" "])
        i = 0
        while i < len(raw):
            j = i + 1
            while j < len(raw) and j - i < 4 and (raw[j] & 0xC0) == 0x80:
                j += 1
            cp = raw[i:j]
            if cp in self.lookup:
                toks.append(self.lookup[cp])
            else:
                toks.extend(b + 3 for b in cp)
            i = j
        while True:
            best, best_id, best_i = -1e10, -1, -1
            for i in range(len(toks) - 1):
                t = self.lookup.get(self.pieces[toks[i]] + self.pieces[toks[i + 1]])
                if t is not None and self.scores[t] > best:
                    best, best_id, best_i = self.scores[t], t, i
            if best_i < 0:
                break
            toks[best_i:best_i + 2] = [best_id]
        return ([self.BOS] if bos else []) + toks + ([self.EOS] if eos else [])

    def piece(self, prev, token):
        p = self.pieces[token]
        if prev == self.BOS and p.startswith(b" "):
            p = p[1:]
        if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
            p = bytes([int(p[3:5], 16)])
        return p

    def decode(self, tokens, prev=None):
        """Text of tokens (run.c's decode of each after its predecessor);
        BOS and EOS render as nothing."""
        out = []
        for t in tokens:
            if t not in (self.BOS, self.EOS):
                out.append(self.piece(prev, t))
            prev = t
        return b"".join(out).decode("utf-8", errors="replace")
