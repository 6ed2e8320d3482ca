"""The docs/results.md experiment: which SuperLoRA variant learns the
rename-the-heroine task best at a given parameter budget?

    PYTHONPATH=client/python /usr/bin/python3 -m superlora experiment \
        --model models/stories260K.bin --tokenizer models/tok512.bin \
        --data build/data/zorbo --work build/exp --out docs

For each variant and budget (about 100, 1,000, 10,000 parameters) the
configuration whose parameter count is nearest the budget (log scale) is
chosen from a rank grid. Every variant gets the same learning-rate search
(each rate of --lrs at the 1,000 budget, seed 0, scored on a validation
split carved from the training stories), then every (variant, budget)
trains with its best rate for --steps steps, one run per seed, and is
scored on the held-out stories (loss) and the held-out openings (share of
greedy continuations that use the new name). Runs are cached in
WORK/runs.json so an interrupted experiment resumes; OUT/results.json
holds the summary and every run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from . import adapter as ad
from . import data, train
from .model import Config, Tokenizer, Transformer

Row = Dict[str, Any]

# label -> (variant, fixed plan() arguments)
VARIANTS = [
    ("LoRA", "lora", {}),
    ("2D group-wise", "groupwise2d", {}),
    ("LoKr", "lokr", {}),
    ("Tucker 3D", "lorta3d", {}),
    ("Tucker 4D", "lorta4d", {}),
    ("projected Tucker 3D", "lorta3d", {"ratio": 0.1}),
    ("shuffled Tucker 3D", "lorta3d", {"shuffle": 1}),
]
MODULES = ["wq", "wv"]


def choose(shape: Config, variant: str, fixed: Dict[str, Any],
           budget: int) -> Tuple[int, ad.AdapterConfig]:
    """(rank, AdapterConfig) with the parameter count nearest budget in log
    scale (ties: the smaller count)."""
    best = None
    for rank in range(1, 65):
        cfg = ad.plan(shape, variant, rank, modules=MODULES, **fixed)
        key = (abs(math.log(cfg.n_params() / budget)), cfg.n_params())
        if best is None or key < best[0]:
            best = (key, rank, cfg)
    return best[1], best[2]


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        torch.set_num_threads(1)
        self.args = args
        self.model = Transformer(args.model)
        self.tok = Tokenizer(args.tokenizer, self.model.config.vocab)
        texts = data.read_texts(os.path.join(args.data, "train.jsonl"))
        n_val = max(1, len(texts) // 10)
        self.train_stream = train.encode_corpus(self.tok, texts[:-n_val])
        self.val_stream = train.encode_corpus(self.tok, texts[-n_val:])
        self.held_stream = train.encode_corpus(
            self.tok, data.read_texts(os.path.join(args.data, "heldout.jsonl")))
        self.openings = data.read_texts(os.path.join(args.data, "openings.jsonl"))[:args.openings]
        os.makedirs(args.work, exist_ok=True)
        self.cache_path = os.path.join(args.work, "runs.json")
        self.cache = {}
        if os.path.exists(self.cache_path):
            with open(self.cache_path) as f:
                self.cache = json.load(f)

    def save(self) -> None:
        tmp = self.cache_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.cache, f, indent=1, sort_keys=True)
        os.replace(tmp, self.cache_path)

    def run(self, label: str, variant: str, fixed: Dict[str, Any], rank: int, lr: float,
            seed: int, score: str) -> Row:
        a = self.args
        key = "%s|r%d|lr%g|s%d|%s|%d|%d|%d" % (label, rank, lr, seed, score, a.steps, a.batch, a.seq)
        if key in self.cache:
            return self.cache[key]
        cfg = ad.plan(self.model.config, variant, rank, modules=MODULES, **fixed)
        module = ad.SuperLoRA(cfg, seed=seed)
        t0 = time.time()
        losses = train.train(self.model, module, self.train_stream, a.steps, lr=lr, batch=a.batch,
                             seq=a.seq, seed=seed)
        res = {"label": label, "rank": rank, "lr": lr, "seed": seed, "params": cfg.n_params(),
               "train_loss": statistics.mean(losses[-10:]), "train_seconds": time.time() - t0}
        if score == "val":
            res["val_loss"] = train.heldout_loss(self.model, module, self.val_stream,
                                                 max_windows=a.eval_windows)
        else:
            res["heldout_loss"] = train.heldout_loss(self.model, module, self.held_stream,
                                                     max_windows=a.eval_windows)
            res["name_rate"] = train.name_rate(self.model, module, self.tok, self.openings,
                                               a.name, a.name_tokens)
        print("experiment: %-20s r=%-2d %6d params lr=%-6g seed=%d %s (%.0f s)"
              % (label, rank, res["params"], lr, seed,
                 " ".join("%s=%.4f" % (k, v) for k, v in res.items() if k.endswith(("loss", "rate"))),
                 time.time() - t0), file=sys.stderr)
        self.cache[key] = res
        self.save()
        return res

    def base(self) -> Row:
        if "base" not in self.cache:
            self.cache["base"] = {
                "heldout_loss": train.heldout_loss(self.model, None, self.held_stream,
                                                   max_windows=self.args.eval_windows),
                "name_rate": train.name_rate(self.model, None, self.tok, self.openings,
                                             self.args.name, self.args.name_tokens)}
            self.save()
        return self.cache["base"]


def summarize(values: Sequence[float]) -> Tuple[float, float]:
    m = statistics.mean(values)
    return m, (max(values) - min(values)) / 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m superlora experiment")
    ap.add_argument("--model", default="models/stories260K.bin")
    ap.add_argument("--tokenizer", default="models/tok512.bin")
    ap.add_argument("--data", default="build/data/zorbo", help="make-data output directory")
    ap.add_argument("--work", default="build/exp")
    ap.add_argument("--out", default="docs", help="writes OUT/results.md and OUT/results.png")
    ap.add_argument("--name", default="Zorbo")
    ap.add_argument("--budgets", default="100,1000,10000")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--lrs", default="0.01,0.03,0.1,0.3")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--openings", type=int, default=200)
    ap.add_argument("--eval-windows", type=int, default=96, help="held-out windows of 128 tokens")
    ap.add_argument("--name-tokens", type=int, default=8)
    a = ap.parse_args(argv)
    r = Runner(a)
    shape = r.model.config
    budgets = [int(b) for b in a.budgets.split(",")]
    lrs = [float(x) for x in a.lrs.split(",")]
    best_lr, rows = {}, []
    for label, variant, fixed in VARIANTS:
        rank, _ = choose(shape, variant, fixed, 1000)
        val = {lr: r.run(label, variant, fixed, rank, lr, 0, "val")["val_loss"] for lr in lrs}
        best_lr[label] = min(val, key=val.get)
    for label, variant, fixed in VARIANTS:
        for budget in budgets:
            rank, cfg = choose(shape, variant, fixed, budget)
            runs = [r.run(label, variant, fixed, rank, best_lr[label], s, "test")
                    for s in range(a.seeds)]
            rows.append({"label": label, "budget": budget, "rank": rank, "params": cfg.n_params(),
                         "fold": cfg.describe(), "lr": best_lr[label],
                         "loss": summarize([x["heldout_loss"] for x in runs]),
                         "rate": summarize([x["name_rate"] for x in runs]),
                         "seconds": sum(x["train_seconds"] for x in runs)})
    base = r.base()
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"rows": rows, "base": base, "best_lr": best_lr, "runs": r.cache}, f,
                  indent=1, sort_keys=True)
    report(a, r, rows, base, best_lr, lrs)
    return 0


def report(a: argparse.Namespace, r: Runner, rows: List[Row], base: Row,
           best_lr: Dict[str, float], lrs: Sequence[float]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(a.out, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, _, _ in VARIANTS:
        pts = [x for x in rows if x["label"] == label]
        p = [x["params"] for x in pts]
        axes[0].errorbar(p, [x["loss"][0] for x in pts], yerr=[x["loss"][1] for x in pts],
                         marker="o", capsize=3, label=label)
        axes[1].errorbar(p, [x["rate"][0] for x in pts], yerr=[x["rate"][1] for x in pts],
                         marker="o", capsize=3, label=label)
    axes[0].axhline(base["heldout_loss"], color="grey", ls="--", label="base model")
    axes[1].axhline(base["name_rate"], color="grey", ls="--", label="base model")
    for ax, yl in zip(axes, ["held-out loss (nats/token)", "greedy openings using \"%s\"" % a.name]):
        ax.set_xscale("log")
        ax.set_xlabel("trainable parameters")
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.suptitle("stories260K, wq+wv of 5 layers (N = 30,720): %d steps x %d x %d tokens, %d seeds"
                 % (a.steps, a.batch, a.seq, a.seeds), fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "results.png"), dpi=110)

    ntrain, nval, nheld = r.train_stream.numel(), r.val_stream.numel(), r.held_stream.numel()
    L = []
    L.append("# SuperLoRA variants at tiny parameter budgets\n")
    L.append("Generated by `PYTHONPATH=client/python /usr/bin/python3 -m superlora experiment` "
             "(client/python/superlora/experiments.py); every run in `results.json`. The "
             "Discussion at the end is written by hand.\n")
    L.append("## Task\n")
    L.append("Stories sampled from stories260K itself (`python3 -m superlora make-data`, "
             "temperature 0.8, seed 0) whose first-named girl (Lily, Lucy, Mia, ...) is renamed "
             "\"%s\" everywhere: %d train tokens (plus %d validation tokens carved from the "
             "training stories for the learning-rate search), %d held-out tokens (loss measured "
             "on the first %d), %d distinct held-out "
             "openings (each held-out story cut just before the first \"%s\"). Adapters on wq and "
             "wv of all 5 layers (N = 30,720 weights); the base model stays frozen.\n"
             % (a.name, ntrain, nval, nheld, min(nheld - 1, a.eval_windows * 128) // 128 * 128,
                len(r.openings), a.name))
    L.append("Metrics: held-out loss = mean next-token cross-entropy over the held-out stories; "
             "name rate = share of held-out openings whose greedy continuation (%d tokens) "
             "contains \"%s\". Mean over %d seeds ± half the range (max - min) / 2. "
             "Base model: held-out loss %.4f, name rate %.3f.\n"
             % (a.name_tokens, a.name, a.seeds, base["heldout_loss"], base["name_rate"]))
    L.append("## Protocol\n")
    L.append("Every run: Adam, cosine decay, %d steps of %d random windows x %d tokens, "
             "one thread. Learning-rate search, identical for every variant: rates %s at the "
             "1,000 budget, seed 0, scored by validation loss; the best rate is then used at every "
             "budget and seed. Budget: the rank whose parameter count is nearest the target "
             "(log scale) from ranks 1..64; where a variant cannot get near a budget (LoRA's "
             "minimum is rank 1 on 10 matrices = 1,120 parameters; 2D group-wise G = 1 is 351 "
             "per rank) the table shows the count it really has. Projected Tucker 3D folds "
             "P_g = 0.1 N_g and expands it with the fastfood projection; shuffled Tucker 3D is "
             "Tucker 3D with the spec's shuffle (seed 1).\n"
             % (a.steps, a.batch, a.seq, ", ".join("%g" % x for x in lrs)))
    train_s = sum(v["train_seconds"] for v in r.cache.values() if "train_seconds" in v)
    n_runs = sum(1 for v in r.cache.values() if "train_seconds" in v)
    L.append("Machine time: %d training runs took %.0f s of wall time in total (one thread on a "
             "2-core machine shared with other jobs; evaluation comes on top). The budget asked "
             "for (about 30 minutes) forced a short schedule: %d steps per run instead of the "
             "thousands a real comparison would use; read the numbers as \"what each variant "
             "learns in %d steps\".\n" % (n_runs, train_s, a.steps, a.steps))
    L.append("## Results\n")
    L.append("![results](results.png)\n")
    L.append("| variant | target | rank | params | lr | held-out loss | name rate | structure |")
    L.append("|---|---|---|---|---|---|---|---|")
    for x in rows:
        L.append("| %s | %d | %d | %d | %g | %.4f ± %.4f | %.3f ± %.3f | %s |"
                 % (x["label"], x["budget"], x["rank"], x["params"], x["lr"], x["loss"][0],
                    x["loss"][1], x["rate"][0], x["rate"][1], x["fold"].split(", K")[0]
                    + "; K" + x["fold"].split(", K")[1].split(", P_0")[0]))
    L.append("")
    L.append("Learning-rate search (validation loss, seed 0, 1,000 budget):\n")
    L.append("| variant | " + " | ".join("lr %g" % x for x in lrs) + " | chosen |")
    L.append("|---|" + "---|" * (len(lrs) + 1))
    for label, _, _ in VARIANTS:
        vals = []
        for lr in lrs:
            hit = [v for k, v in r.cache.items() if k.startswith(label + "|") and v.get("lr") == lr
                   and "val_loss" in v and "|%d|%d|%d" % (a.steps, a.batch, a.seq) in k]
            vals.append("%.4f" % hit[0]["val_loss"] if hit else "-")
        L.append("| %s | %s | %g |" % (label, " | ".join(vals), best_lr[label]))
    L.append("")
    L.append("## Findings\n")
    L.extend(findings(rows, base))
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("experiment: wrote %s/results.md and %s/results.png" % (a.out, a.out), file=sys.stderr)


def findings(rows: List[Row], base: Row) -> List[str]:
    """Per target: the ranking of the variants whose count is within a
    factor 2 of it (the others cannot get there)."""
    out = []
    for budget in sorted({x["budget"] for x in rows}):
        near = [x for x in rows if x["budget"] == budget and 0.5 <= x["params"] / budget <= 2]
        far = [x for x in rows if x["budget"] == budget and x not in near]
        pts = sorted(near, key=lambda x: x["loss"][0])
        line = "- Target %d (variants within 2x of it): " % budget
        line += ", ".join("%s %.4f ± %.4f / rate %.2f (%d params)"
                          % (x["label"], x["loss"][0], x["loss"][1], x["rate"][0], x["params"])
                          for x in pts) or "none"
        if far:
            line += ". Out of reach: " + ", ".join("%s (nearest %d)" % (x["label"], x["params"])
                                                   for x in far)
        out.append(line + ".")
    out.append("- Base model without adapter: held-out loss %.4f, name rate %.2f."
               % (base["heldout_loss"], base["name_rate"]))
    return out


if __name__ == "__main__":
    sys.exit(main())
