"""Training and evaluation of a SuperLoRA adapter on a frozen base model.

The corpus is one token stream: every document encoded with BOS first (as
the daemon encodes a prompt string), concatenated, so the model also learns
where stories end. Batches are random windows of the stream; the base
model's weights are buffers and only the adapter's parameters train.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Iterable, List, Optional, Sequence

import torch

from .adapter import SuperLoRA
from .model import Tokenizer, Transformer


def encode_corpus(tok: Tokenizer, texts: Iterable[str]) -> torch.Tensor:
    stream = []
    for t in texts:
        stream.extend(tok.encode(t, bos=True))
    return torch.tensor(stream, dtype=torch.long)


def progress_bar(step: int, steps: int, loss: float, t0: float, width: int = 30) -> None:
    done = int(width * step / steps)
    rate = step / max(time.time() - t0, 1e-9)
    sys.stderr.write("\rstep %*d/%d [%s%s] loss %.4f  %.1f steps/s" % (
        len(str(steps)), step, steps, "#" * done, "." * (width - done), loss, rate))
    if step == steps:
        sys.stderr.write("\n")
    sys.stderr.flush()


def train(model: Transformer, adapter: SuperLoRA, stream: torch.Tensor, steps: int,
          lr: float = 1e-2, batch: int = 16, seq: int = 64, seed: int = 0,
          progress: bool = False) -> List[float]:
    """Adam with cosine decay on next-token cross-entropy over random
    windows; returns the per-step losses."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(adapter.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    losses = []
    t0 = time.time()
    for step in range(steps):
        start = torch.randint(0, stream.numel() - seq - 1, (batch,), generator=gen)
        win = stream[start[:, None] + torch.arange(seq + 1)]
        logits = model(win[:, :-1], adapter.deltas())
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 win[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss))
        if progress:
            progress_bar(step + 1, steps, losses[-1], t0)
    return losses


@torch.no_grad()
def heldout_loss(model: Transformer, adapter: Optional[SuperLoRA], stream: torch.Tensor,
                 seq: int = 128, max_windows: Optional[int] = None) -> float:
    """Mean next-token cross-entropy over consecutive windows of the stream
    (the first max_windows windows when given)."""
    deltas = adapter.deltas() if adapter is not None else None
    n = (stream.numel() - 1) // seq
    n = n if max_windows is None else min(n, max_windows)
    x = stream[:n * seq].view(n, seq)
    y = stream[1:n * seq + 1].view(n, seq)
    logits = model(x, deltas)
    return float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                   y.reshape(-1)))


@torch.no_grad()
def name_rate(model: Transformer, adapter: Optional[SuperLoRA], tok: Tokenizer,
              openings: Sequence[str], name: str, n_tokens: int = 16) -> float:
    """Fraction of openings whose greedy continuation (n_tokens) contains
    name. Openings of equal token length are batched."""
    deltas = adapter.deltas() if adapter is not None else None
    by_len = {}
    for text in openings:
        toks = tok.encode(text, bos=True)
        by_len.setdefault(len(toks), []).append(toks)
    hits = 0
    for group in by_len.values():
        uniq = sorted({tuple(t) for t in group})
        outs = model.generate([list(u) for u in uniq], n_tokens, deltas)
        used = {u: name in tok.decode(o, prev=u[-1]) for u, o in zip(uniq, outs)}
        hits += sum(used[tuple(t)] for t in group)
    return hits / max(1, len(openings))
