"""superlora: train, export, verify and upload SuperLoRA v1 adapters for a
frozen Llama- or Qwen2-style model (the models slorad serves), on this
package's own Transformer or on any PyTorch model by module name.

    import superlora
    model = superlora.Transformer("models/stories260K.bin")     # pathlib.Path works too
    superlora.inject(model, {"variant": "lora", "rank": 8, "modules": ["q_proj", "v_proj"]})
    logits = model(tokens)                     # differentiable in the adapter's parameters
    superlora.export(model, "a.safetensors")

    # or explicitly: an adapter module and its deltas {(layer, module): dW}
    cfg = superlora.plan(model.config, "lorta3d", rank=4, modules=["wq", "wv"])
    ad = superlora.SuperLoRA(cfg, seed=0)
    logits = model(tokens, ad.deltas())
    ad.export("a.safetensors"); superlora.verify("a.safetensors", ad)

Command line: python3 -m superlora --help
"""

from .adapter import (VARIANTS, AdapterConfig, Factor, SuperLoRA, agreement, auto_fold,
                      fold_sizes, load, plan, verify)
from .inject import SuperLoRALinear, export, find_targets, inject, model_shape
from .model import Config, Tokenizer, Transformer, hf_row_order, read_header
from .peft import import_peft, read_peft

__all__ = ["VARIANTS", "AdapterConfig", "Factor", "SuperLoRA", "agreement", "auto_fold",
           "fold_sizes", "load", "plan", "verify", "SuperLoRALinear", "export", "find_targets",
           "inject", "model_shape", "Config", "Tokenizer", "Transformer", "hf_row_order",
           "read_header", "import_peft", "read_peft"]
