"""Command line: python3 -m superlora
{train,params,upload,make-data,import-peft,experiment}.

Run from the installed package (pip install ./client/python) or with
PYTHONPATH=client/python, with /usr/bin/python3 (Debian torch/numpy).
Errors print one line to stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Sequence

import torch

from . import adapter as ad
from . import data, peft, train
from .adapter import Groups
from .model import Config, Tokenizer, Transformer, read_header


def parse_groups(text: Optional[str]) -> Optional[Groups]:
    if text is None or text in ("matrix", "layer", "module"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("groups: an integer or matrix, layer, module")


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", required=True, choices=ad.VARIANTS)
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--groups", type=parse_groups, help="integer G or matrix|layer|module "
                   "(default: per variant)")
    p.add_argument("--project", type=float, metavar="RATIO",
                   help="fastfood projection with P_g about RATIO * N_g")
    p.add_argument("--shuffle", action="store_true", help="shuffle dW_all (seed --seed)")
    p.add_argument("--modules", default="wq,wv", help="comma-separated, e.g. wq,wv")
    p.add_argument("--layers", help="comma-separated layer indices (default: all)")
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)


def config_from_args(args: argparse.Namespace, shape: Config) -> ad.AdapterConfig:
    layers = [int(x) for x in args.layers.split(",")] if args.layers else None
    return ad.plan(shape, args.variant, args.rank, modules=args.modules.split(","),
                   layers=layers, groups=args.groups, ratio=args.project,
                   shuffle=args.seed if args.shuffle else None,
                   projection=args.seed if args.project is not None else None,
                   alpha=args.alpha)


def cmd_params(args: argparse.Namespace) -> int:
    cfg = config_from_args(args, read_header(args.model))
    print(cfg.n_params())
    print(cfg.describe(), file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = Transformer(args.model)
    tok = Tokenizer(args.tokenizer, model.config.vocab)
    cfg = config_from_args(args, model.config)
    print("train: %s %s" % (args.variant, cfg.describe()), file=sys.stderr)
    stream = train.encode_corpus(tok, data.read_texts(args.data))
    if stream.numel() < args.seq + 2:
        raise ValueError("data %s: %d tokens, need more than --seq %d" % (args.data, stream.numel(), args.seq))
    module = ad.SuperLoRA(cfg, seed=args.seed)
    train.train(model, module, stream, args.steps, lr=args.lr, batch=args.batch, seq=args.seq,
                seed=args.seed, progress=not args.quiet)
    module.export(args.out)
    err = ad.verify(args.out, module)
    print("train: wrote %s (%d parameters, %d bytes; verified, max rel err %.2g)"
          % (args.out, cfg.n_params(), Path(args.out).stat().st_size, err), file=sys.stderr)
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    body = Path(args.file).read_bytes()
    url = "%s/v1/adapters/%s" % (args.url.rstrip("/"), args.name)
    req = urllib.request.Request(url, data=body, method="PUT")
    req.add_header("Content-Type", "application/octet-stream")
    if args.key:
        req.add_header("Authorization", "Bearer " + args.key)
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as r:
            print(r.read().decode("utf-8", errors="replace"))
        return 0
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", errors="replace")
        try:
            msg = json.loads(text)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            msg = text.strip()
        print("upload: HTTP %d: %s" % (e.code, msg), file=sys.stderr)
    except urllib.error.URLError as e:
        print("upload: %s: %s" % (url, e.reason), file=sys.stderr)
    return 1


def cmd_make_data(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    model = Transformer(args.model)
    tok = Tokenizer(args.tokenizer, model.config.vocab)
    n = data.make_data(model, tok, args.out, name=args.name, n_samples=args.samples,
                       seed=args.seed)
    print("make-data: %s: %d train, %d held-out stories, %d openings" % ((args.out,) + n))
    return 0


def cmd_import_peft(args: argparse.Namespace) -> int:
    shape = read_header(args.model)
    config, tensors = peft.read_peft(args.dir)
    body = peft.import_peft(config, tensors, shape, permute_qk=args.arch == "llama")
    Path(args.out).write_bytes(body)
    print("import-peft: wrote %s (%d bytes)" % (args.out, len(body)), file=sys.stderr)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m superlora",
                                 description="Train, export and upload SuperLoRA adapters.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train an adapter and export it")
    t.add_argument("--model", required=True)
    t.add_argument("--tokenizer", required=True)
    t.add_argument("--data", required=True, help=".jsonl ({\"text\"} per line) or blank-line separated text")
    add_config_args(t)
    t.add_argument("--steps", type=int, required=True)
    t.add_argument("--lr", type=float, default=1e-2)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--seq", type=int, default=64)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--out", required=True)
    t.set_defaults(func=cmd_train)

    p = sub.add_parser("params", help="parameter count of a configuration (stdout)")
    p.add_argument("--model", required=True)
    add_config_args(p)
    p.set_defaults(func=cmd_params)

    u = sub.add_parser("upload", help="PUT an adapter to slorad")
    u.add_argument("file")
    u.add_argument("--url", default="http://127.0.0.1:8080")
    u.add_argument("--name", required=True, help="tenant/name")
    u.add_argument("--key", help="API key (Authorization: Bearer)")
    u.add_argument("--timeout", type=float, default=60.0)
    u.set_defaults(func=cmd_upload)

    d = sub.add_parser("make-data", help="generate the rename-the-heroine data set")
    d.add_argument("--model", required=True)
    d.add_argument("--tokenizer", required=True)
    d.add_argument("--out", required=True, help="output directory")
    d.add_argument("--name", default="Zorbo")
    d.add_argument("--samples", type=int, default=1200)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--threads", type=int, default=1)
    d.set_defaults(func=cmd_make_data)

    i = sub.add_parser("import-peft", help="convert a PEFT LoRA directory to SuperLoRA")
    i.add_argument("dir", help="directory with adapter_config.json and adapter_model.safetensors")
    i.add_argument("--model", required=True, help="the base (llama2.c .bin): its shape")
    i.add_argument("--arch", choices=("llama", "qwen2"), default="llama",
                   help="llama: move q/k rows from HF's rotate-half order to GGUF's (default)")
    i.add_argument("-o", "--out", required=True)
    i.set_defaults(func=cmd_import_peft)

    sub.add_parser("experiment", help="the docs/results.md experiment (see its --help)")

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["experiment"]:
        from . import experiments
        return experiments.main(argv[1:])
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError) as err:
        print("superlora %s: %s" % (args.cmd, err), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
