"""superlora: train, export, verify and upload SuperLoRA v1 adapters for a
frozen llama2.c-architecture model (the models slorad serves).

    from superlora import Transformer, Tokenizer, plan, SuperLoRA, verify
    model = Transformer("models/stories260K.bin")
    cfg = plan(model.config, "lorta3d", rank=4, modules=["wq", "wv"])
    ad = SuperLoRA(cfg, seed=0)
    logits = model(tokens, ad.deltas())       # differentiable in ad's parameters
    ad.export("a.safetensors"); verify("a.safetensors", ad)

Command line: PYTHONPATH=client/python /usr/bin/python3 -m superlora --help
"""

from .adapter import (VARIANTS, AdapterConfig, Factor, SuperLoRA, agreement, auto_fold,
                      fold_sizes, load, plan, verify)
from .model import Config, Tokenizer, Transformer

__all__ = ["VARIANTS", "AdapterConfig", "Factor", "SuperLoRA", "agreement", "auto_fold",
           "fold_sizes", "load", "plan", "verify", "Config", "Tokenizer", "Transformer"]
