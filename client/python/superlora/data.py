"""The project's own fine-tuning task (no downloads): stories sampled from
the base model in which the heroine's name is replaced by a new one.

make_data() samples stories from the base model (torch, temperature
sampling from BOS, seeded), keeps those whose first-named girl is one of
HEROINES, replaces every occurrence of that name by `name` ("Zorbo") and
splits them into train / held-out. The held-out openings are each held-out
story's text up to (not including) the first occurrence of the new name:
a model that learnt the task continues them with the new name.

Files (JSON Lines, one object per line):
  train.jsonl, heldout.jsonl   {"text": story}
  openings.jsonl               {"text": opening} (distinct)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import torch

from .model import PathLike, Tokenizer, Transformer

HEROINES = ("Lily", "Lucy", "Mia", "Anna", "Emma", "Sue", "Sara", "Sally", "Jane", "Amy", "Kate")


def read_texts(path: PathLike) -> List[str]:
    """Documents of a data file: JSON Lines ({"text": ...} or a string per
    line) or, for any other extension, plain text with documents separated
    by blank lines."""
    with open(path, encoding="utf-8") as f:
        if Path(path).suffix == ".jsonl":
            out = []
            for line in f:
                if line.strip():
                    obj = json.loads(line)
                    out.append(obj["text"] if isinstance(obj, dict) else obj)
            return out
        return [d.strip() for d in re.split(r"\n\s*\n", f.read()) if d.strip()]


def write_texts(path: PathLike, texts: Iterable[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")


def rename_heroine(text: str, name: str) -> Optional[str]:
    """The story with its first-named heroine replaced by name, or None."""
    found = [(m.start(), h) for h in HEROINES for m in [re.search(r"\b%s\b" % h, text)] if m]
    if not found:
        return None
    heroine = min(found)[1]
    return re.sub(r"\b%s\b" % heroine, name, text)


def opening(text: str, name: str) -> Optional[str]:
    """Text before the first occurrence of name (trailing spaces stripped:
    the tokenizer attaches a space to the following word), or None when
    the name comes first."""
    i = text.find(name)
    head = text[:i].rstrip(" ")
    return head if i > 0 and head else None


def make_data(model: Transformer, tok: Tokenizer, out_dir: PathLike, name: str = "Zorbo",
              n_samples: int = 1200, heldout_frac: float = 0.2, temperature: float = 0.8,
              max_tokens: int = 256, batch: int = 48, seed: int = 0,
              progress: bool = True) -> Tuple[int, int, int]:
    gen = torch.Generator().manual_seed(seed)
    stories = []
    done = 0
    while done < n_samples:
        n = min(batch, n_samples - done)
        for toks in model.generate([[tok.BOS]] * n, max_tokens, temperature=temperature,
                                   generator=gen):
            # drop an unfinished last sentence of a story cut at max_tokens
            text = tok.decode(toks, prev=tok.BOS).strip()
            if len(toks) >= max_tokens and "." in text:
                text = text[:text.rfind(".") + 1]
            renamed = rename_heroine(text, name)
            if renamed is not None:
                stories.append(renamed)
        done += n
        if progress:
            print("make-data: sampled %d/%d, kept %d" % (done, n_samples, len(stories)),
                  file=sys.stderr)
    n_held = max(1, int(len(stories) * heldout_frac))
    train, held = stories[:-n_held], stories[-n_held:]
    # distinct openings only: most stories start "Once upon a time, there was
    # a little girl named", which would otherwise dominate the name rate
    openings = list(dict.fromkeys(o for o in (opening(s, name) for s in held) if o is not None))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_texts(out / "train.jsonl", train)
    write_texts(out / "heldout.jsonl", held)
    write_texts(out / "openings.jsonl", openings)
    return len(train), len(held), len(openings)
