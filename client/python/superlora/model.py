"""Llama- and Qwen2-style transformers in torch, built from nn.Linear layers
under Hugging Face's module names, loading the llama2.c .bin files the
daemon serves, and the llama2.c BPE tokenizer (tok*.bin).

.bin layout (karpathy/llama2.c run.c): 7 x int32 header dim, hidden_dim,
n_layers, n_heads, n_kv_heads, vocab_size (negative: an unshared classifier
follows), seq_len; then float32 token_embedding (vocab, dim), rms_att (L, dim),
wq (L, dim, dim), wk (L, kv_dim, dim), wv (L, kv_dim, dim), wo (L, dim, dim),
rms_ffn (L, dim), w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim),
rms_final (dim), freq_cis_real and freq_cis_imag (seq_len * head_size / 2 each,
unused), wcls (vocab, dim) when unshared. Matrices are (out, in): y = W x.

Module tree (HF names): embed_tokens, layers.{l}.input_layernorm,
layers.{l}.self_attn.{q,k,v,o}_proj, layers.{l}.post_attention_layernorm,
layers.{l}.mlp.{gate,up,down}_proj, norm, lm_head. The llama2.c names of
the seven projections are wq, wk, wv, wo, w1 (gate), w2 (down), w3 (up).

RoPE and the row order of wq/wk (spec section 1): `rope = "interleaved"`
rotates pairs (2i, 2i + 1) of each head, the order of llama2.c files and of
a llama GGUF; `"rotate_half"` rotates (i, i + head_size / 2), the order of
Hugging Face checkpoints. A llama model loaded with rope="rotate_half" gets
its wq/wk rows permuted as HF's converter does, so it computes the same
function in the HF layout. Qwen2 (arch "qwen2": q/k/v biases, rope_theta,
rotate-half RoPE) keeps HF's order in its GGUF too.

The base weights never train (requires_grad False). forward() takes an
optional mapping (layer, module) -> dW in the spec's GGUF row order, so that
W' = W + dW for adapted matrices, exactly the daemon's weight substitution;
dW may require grad. superlora.inject wraps the layers instead.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

PathLike = Union[str, "os.PathLike[str]"]
Deltas = Mapping[Tuple[int, str], torch.Tensor]

MODULES = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")
HF_NAMES = {"wq": "q_proj", "wk": "k_proj", "wv": "v_proj", "wo": "o_proj",
            "w1": "gate_proj", "w2": "down_proj", "w3": "up_proj"}
ARCHS = ("llama", "qwen2")
ROPES = ("interleaved", "rotate_half")


@dataclasses.dataclass
class Config:
    """Hyper-parameters. vocab_size is raw: negative = unshared classifier."""

    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    arch: str = "llama"
    rope: str = "interleaved"
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    qkv_bias: bool = False

    def check(self) -> None:
        if min(self.dim, self.hidden_dim, self.n_layers, self.n_heads, self.n_kv_heads) <= 0 \
                or self.dim % self.n_heads or self.n_heads % self.n_kv_heads or self.vocab == 0 \
                or self.head_size % 2:
            raise ValueError("invalid model shape %s" % self.base())
        if self.arch not in ARCHS or self.rope not in ROPES:
            raise ValueError("arch must be one of %s, rope one of %s" % (ARCHS, ROPES))
        if self.arch == "qwen2" and self.rope != "rotate_half":
            raise ValueError("qwen2 uses rotate_half RoPE")

    @property
    def vocab(self) -> int:
        return abs(self.vocab_size)

    @property
    def head_size(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.head_size * self.n_kv_heads

    @property
    def qk_permuted(self) -> bool:
        """Do this model's wq/wk rows differ from the GGUF order? (A llama
        in HF's rotate-half layout; qwen2's GGUF keeps the HF order.)"""
        return self.arch == "llama" and self.rope == "rotate_half"

    def module_shape(self, module: str) -> Tuple[int, int]:
        d, h, kv = self.dim, self.hidden_dim, self.kv_dim
        return {"wq": (d, d), "wk": (kv, d), "wv": (kv, d), "wo": (d, d),
                "w1": (h, d), "w2": (d, h), "w3": (h, d)}[module]

    def base(self) -> Dict[str, int]:
        """The spec's "base" object (section 7)."""
        return {"dim": self.dim, "n_layers": self.n_layers, "n_heads": self.n_heads,
                "n_kv_heads": self.n_kv_heads, "hidden_dim": self.hidden_dim,
                "vocab_size": self.vocab}


def read_header(path: PathLike) -> Config:
    """The Config of a llama2.c .bin from its 28-byte header."""
    with open(path, "rb") as f:
        head = f.read(28)
    if len(head) < 28:
        raise ValueError("model %s: shorter than the 28-byte header" % path)
    return Config(*struct.unpack("<7i", head))


def hf_row_order(rows: int, head_size: int) -> torch.Tensor:
    """p with W_hf = W_gguf[p]: HF's permutation of a llama wq/wk (rows =
    n_heads * head_size) from interleaved pairs (2i, 2i + 1) to rotate-half
    halves (i, i + head_size / 2), per head."""
    half = head_size // 2
    idx = torch.arange(rows).view(rows // head_size, half, 2)
    return idx.transpose(1, 2).reshape(rows)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + self.eps))


class Attention(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.q_proj = nn.Linear(c.dim, c.dim, bias=c.qkv_bias)
        self.k_proj = nn.Linear(c.dim, c.kv_dim, bias=c.qkv_bias)
        self.v_proj = nn.Linear(c.dim, c.kv_dim, bias=c.qkv_bias)
        self.o_proj = nn.Linear(c.dim, c.dim, bias=False)


class MLP(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(c.dim, c.hidden_dim, bias=False)
        self.up_proj = nn.Linear(c.dim, c.hidden_dim, bias=False)
        self.down_proj = nn.Linear(c.hidden_dim, c.dim, bias=False)


class Block(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(c.dim, c.norm_eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c.dim, c.norm_eps)
        self.mlp = MLP(c)

    def linear(self, module: str) -> nn.Module:
        parent = self.self_attn if module in ("wq", "wk", "wv", "wo") else self.mlp
        return getattr(parent, HF_NAMES[module])


KVCache = List[List[torch.Tensor]]


class Transformer(nn.Module):
    """Frozen Llama/Qwen2-style model. Weights float32 unless .double() is
    called. Transformer(path) loads a llama2.c .bin (rope="rotate_half":
    in HF's layout); Transformer(config) builds one with random weights
    (seed) for tests."""

    def __init__(self, source: Union[PathLike, Config], rope: Optional[str] = None,
                 seed: int = 0) -> None:
        super().__init__()
        if isinstance(source, Config):
            c = dataclasses.replace(source, rope=rope or source.rope)
            arrays = None
        else:
            c, arrays = _read_bin(source)
            if rope is not None:
                c.rope = rope
        c.check()
        self.config = c
        self.embed_tokens = nn.Embedding(c.vocab, c.dim)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.norm = RMSNorm(c.dim, c.norm_eps)
        self.lm_head = nn.Linear(c.dim, c.vocab, bias=False)
        if arrays is not None:
            self._assign(arrays)
        else:
            self._randomize(seed)
        if c.vocab_size > 0:
            self.lm_head.weight = self.embed_tokens.weight
        self.requires_grad_(False)
        hs = c.head_size
        i = torch.arange(0, hs, 2, dtype=torch.float64)
        self.register_buffer("inv_freq", 1.0 / torch.pow(c.rope_theta, i / hs), persistent=False)
        perm = hf_row_order(c.dim, hs) if c.qk_permuted else None
        self._rows = {"wq": perm, "wk": hf_row_order(c.kv_dim, hs) if perm is not None else None}

    def _assign(self, a: Dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            self.embed_tokens.weight.copy_(torch.from_numpy(a["emb"]))
            self.norm.weight.copy_(torch.from_numpy(a["rms_final"]))
            if "wcls" in a:
                self.lm_head.weight.copy_(torch.from_numpy(a["wcls"]))
            for l, blk in enumerate(self.layers):
                blk.input_layernorm.weight.copy_(torch.from_numpy(a["rms_att"][l]))
                blk.post_attention_layernorm.weight.copy_(torch.from_numpy(a["rms_ffn"][l]))
                for m in MODULES:
                    w = torch.from_numpy(a[m][l])
                    if m in ("wq", "wk") and self.config.qk_permuted:
                        w = w[hf_row_order(w.shape[0], self.config.head_size)]
                    blk.linear(m).weight.copy_(w)

    def _randomize(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                scale = 0.1 if name.endswith("bias") else 0.3
                if "layernorm" in name or name == "norm.weight":
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(scale * torch.randn(p.shape, generator=gen))

    def linear(self, layer: int, module: str) -> nn.Module:
        """The projection module (layer, module) (module: wq..w3)."""
        return self.layers[layer].linear(module)

    def to_model_rows(self, module: str, dw: torch.Tensor) -> torch.Tensor:
        """dW (GGUF row order, spec section 1) in this model's row order."""
        p = self._rows.get(module)
        return dw if p is None else dw[p]

    def gguf_weight(self, layer: int, module: str) -> torch.Tensor:
        """W of (layer, module) in the GGUF row order (what dW adds to)."""
        w = self.linear(layer, module).weight
        p = self._rows.get(module)
        return w if p is None else w[torch.argsort(p)]

    def _proj(self, x: torch.Tensor, layer: int, module: str,
              deltas: Optional[Deltas]) -> torch.Tensor:
        lin = self.linear(layer, module)
        if deltas is None or (layer, module) not in deltas:
            return lin(x)
        dw = self.to_model_rows(module, deltas[(layer, module)])
        return nn.functional.linear(x, lin.weight + dw.to(lin.weight.dtype), lin.bias)

    def _rope(self, x: torch.Tensor, pos0: int) -> torch.Tensor:
        """x (B, n, T, hs) rotated for positions pos0.. in the model's style."""
        T = x.shape[2]
        pos = torch.arange(pos0, pos0 + T, dtype=torch.float64, device=x.device)
        ang = pos[:, None] * self.inv_freq[None, :]
        cos, sin = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
        if self.config.rope == "interleaved":
            a, b = x[..., 0::2], x[..., 1::2]
            return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)
        half = x.shape[-1] // 2
        a, b = x[..., :half], x[..., half:]
        return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)

    def forward(self, tokens: torch.Tensor, deltas: Optional[Deltas] = None,
                cache: Optional[KVCache] = None) -> torch.Tensor:
        """tokens (B, T) int64 -> logits (B, T, vocab). deltas: {(layer,
        module): dW (out, in)} in the GGUF row order. cache: a list (one [k, v]
        per layer, filled on first use) continuing a sequence across calls."""
        c = self.config
        B, T = tokens.shape
        hs, nh, nkv = c.head_size, c.n_heads, c.n_kv_heads
        pos0 = cache[0][0].shape[2] if cache else 0
        x = self.embed_tokens(tokens)
        for l, blk in enumerate(self.layers):
            xb = blk.input_layernorm(x)
            q = self._proj(xb, l, "wq", deltas).view(B, T, nh, hs).transpose(1, 2)
            k = self._proj(xb, l, "wk", deltas).view(B, T, nkv, hs).transpose(1, 2)
            v = self._proj(xb, l, "wv", deltas).view(B, T, nkv, hs).transpose(1, 2)
            q, k = self._rope(q, pos0), self._rope(k, pos0)
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
            x = x + self._proj(out, l, "wo", deltas)
            xb = blk.post_attention_layernorm(x)
            h1 = self._proj(xb, l, "w1", deltas)
            h3 = self._proj(xb, l, "w3", deltas)
            x = x + self._proj(nn.functional.silu(h1) * h3, l, "w2", deltas)
        return self.lm_head(self.norm(x))

    @torch.no_grad()
    def generate(self, prompts: Sequence[Sequence[int]], n: int, deltas: Optional[Deltas] = None,
                 temperature: float = 0.0, generator: Optional[torch.Generator] = None,
                 stop: Sequence[int] = (1, 2)) -> List[List[int]]:
        """Continue each prompt (list of token lists, equal lengths) by up to n
        tokens; greedy at temperature 0 (argmax, lowest id wins ties, as the
        daemon). A sequence ends after emitting a token in stop (not included)
        or at seq_len. Returns a list of token lists."""
        c = self.config
        toks = torch.tensor([list(p) for p in prompts], dtype=torch.long)
        cache: KVCache = []
        logits = self.forward(toks, deltas, cache)[:, -1]
        outs: List[List[int]] = [[] for _ in prompts]
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


def _read_bin(path: PathLike) -> Tuple[Config, Dict[str, np.ndarray]]:
    """Config and float32 arrays of a llama2.c .bin (validated sizes)."""
    data = Path(path).read_bytes()
    if len(data) < 28:
        raise ValueError("model %s: shorter than the 28-byte header" % path)
    c = Config(*struct.unpack("<7i", data[:28]))
    try:
        c.check()
    except ValueError:
        raise ValueError("model %s: invalid header" % path) from None
    flat = np.frombuffer(data, dtype="<f4", offset=28)
    L, d, h, V, kv, hs = c.n_layers, c.dim, c.hidden_dim, c.vocab, c.kv_dim, c.head_size
    pos = 0

    def take(*shape: int) -> np.ndarray:
        nonlocal pos
        n = int(np.prod(shape))
        if pos + n > flat.size:
            raise ValueError("model %s: truncated" % path)
        a = flat[pos:pos + n].reshape(shape).copy()
        pos += n
        return a

    a = {"emb": take(V, d), "rms_att": take(L, d), "wq": take(L, d, d), "wk": take(L, kv, d),
         "wv": take(L, kv, d), "wo": take(L, d, d), "rms_ffn": take(L, d),
         "w1": take(L, h, d), "w2": take(L, d, h), "w3": take(L, h, d), "rms_final": take(d)}
    take(c.seq_len * hs // 2)
    take(c.seq_len * hs // 2)
    if c.vocab_size < 0:
        a["wcls"] = take(V, d)
    if pos != flat.size:
        raise ValueError("model %s: %d trailing floats" % (path, flat.size - pos))
    return c, a


class Tokenizer:
    """llama2.c tok*.bin: int32 max_token_length, then per token float32
    score, int32 length, bytes. Encode/decode as run.c: dummy-prefix space,
    greedy highest-score merges, byte fallback <0xXX> = byte + 3, BOS = 1,
    EOS = 2."""

    BOS, EOS = 1, 2

    def __init__(self, path: PathLike, vocab_size: int = 512) -> None:
        data = Path(path).read_bytes()
        pos = 4
        self.pieces: List[bytes] = []
        self.scores: List[float] = []
        for _ in range(vocab_size):
            score, n = struct.unpack_from("<fi", data, pos)
            pos += 8
            self.pieces.append(data[pos:pos + n])
            self.scores.append(score)
            pos += n
        self.lookup: Dict[bytes, int] = {}
        for i, p in enumerate(self.pieces):
            self.lookup.setdefault(p, i)

    def encode(self, text: str, bos: bool = True, eos: bool = False) -> List[int]:
        raw = text.encode("utf-8")
        toks: List[int] = []
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

    def piece(self, prev: Optional[int], token: int) -> bytes:
        p = self.pieces[token]
        if prev == self.BOS and p.startswith(b" "):
            p = p[1:]
        if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
            p = bytes([int(p[3:5], 16)])
        return p

    def decode(self, tokens: Sequence[int], prev: Optional[int] = None) -> str:
        """Text of tokens (run.c's decode of each after its predecessor);
        BOS and EOS render as nothing."""
        out = []
        for t in tokens:
            if t not in (self.BOS, self.EOS):
                out.append(self.piece(prev, t))
            prev = t
        return b"".join(out).decode("utf-8", errors="replace")
