"""Put a SuperLoRA adapter on any PyTorch model by module name.

    import superlora
    model = superlora.Transformer("models/stories260K.bin")     # or any HF-style model
    adapter = superlora.inject(model, {"variant": "lora", "rank": 8,
                                       "modules": ["q_proj", "v_proj"]})
    ...train: only the adapter's parameters require grad...
    superlora.export(model, "a.safetensors")

inject() finds the targeted nn.Linear layers by name (`...layers.{l}.*.{m}`
with m a HF name such as q_proj or a llama2.c name such as wq), checks their
shapes against the model's, freezes the base, and replaces each with a
SuperLoRALinear computing x (W + dW)^T + b, where dW comes from one shared
SuperLoRA module (registered on the model as `superlora`). The deltas of
every target are computed once per forward pass of the model (they are
joint: a group, a shuffle or a projection spans matrices) and differentiated
through the spec's maths.

Row order (spec section 1): the adapter always describes dW in the GGUF
row order, which is what the exported file means and what the daemon
applies. On a model whose wq/wk rows are in HF's rotate-half order for a
llama architecture (Config.qk_permuted, or an HF config with model_type
"llama"/"mistral"), SuperLoRALinear permutes dW's rows into the model's
order before adding it, so the adapter trains in GGUF order and is exact
for every variant (shuffled, projected, cross-layer, Kronecker or Tucker
folds included). Qwen2's GGUF keeps HF's order: nothing is permuted.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from .adapter import ALIASES, AdapterConfig, SuperLoRA, plan
from .model import Config, PathLike, hf_row_order

Key = Tuple[int, str]
_NAME = re.compile(r"(?:^|\.)layers\.(\d+)\.(?:\w+\.)*?(\w+)$")
_LLAMA_TYPES = ("llama", "mistral")


class _DeltaSource:
    """The adapter's deltas, cached for the length of one forward pass of
    the model (not a module: the adapter is registered once, on the model)."""

    def __init__(self, adapter: SuperLoRA) -> None:
        self.adapter = adapter
        self.active = False
        self.cache: Optional[Dict[Key, torch.Tensor]] = None

    def begin(self, *_: Any) -> None:
        self.active, self.cache = True, None

    def end(self, *_: Any) -> None:
        self.active, self.cache = False, None

    def delta(self, key: Key) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[key]
        deltas = self.adapter.deltas()
        if self.active:
            self.cache = deltas
        return deltas[key]


class SuperLoRALinear(nn.Module):
    """nn.Linear base (frozen) + dW of (layer, module) from the shared
    adapter; rows: the permutation taking GGUF rows to the model's, or None."""

    def __init__(self, base: nn.Linear, source: _DeltaSource, key: Key,
                 rows: Optional[torch.Tensor]) -> None:
        super().__init__()
        self.base = base
        self.key = key
        self._source = source
        self.register_buffer("rows", rows, persistent=False)

    def delta(self) -> torch.Tensor:
        """dW in the model's row order (out, in)."""
        dw = self._source.delta(self.key)
        return dw if self.rows is None else dw[self.rows]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.base.weight
        return nn.functional.linear(x, w + self.delta().to(w.dtype), self.base.bias)

    def extra_repr(self) -> str:
        return "layer=%d, module=%s" % self.key


def model_shape(model: nn.Module) -> Config:
    """The spec's base shape of a model: this package's Config, or one read
    from an HF-style config (hidden_size, intermediate_size,
    num_hidden_layers, num_attention_heads, num_key_value_heads,
    vocab_size)."""
    cfg = getattr(model, "config", None)
    if isinstance(cfg, Config):
        return cfg
    get = (lambda k: cfg.get(k)) if isinstance(cfg, Mapping) else (lambda k: getattr(cfg, k, None))
    need = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "vocab_size")
    if cfg is None or any(get(k) is None for k in need):
        raise ValueError("model has no shape: pass shape=superlora.Config(...)")
    n_kv = get("num_key_value_heads") or get("num_attention_heads")
    arch = "qwen2" if get("model_type") == "qwen2" else "llama"
    return Config(get("hidden_size"), get("intermediate_size"), get("num_hidden_layers"),
                  get("num_attention_heads"), n_kv, get("vocab_size"),
                  get("max_position_embeddings") or 0, arch=arch,
                  rope="rotate_half" if get("model_type") in _LLAMA_TYPES + ("qwen2",)
                  else "interleaved")


def find_targets(model: nn.Module) -> Dict[Key, Tuple[nn.Module, str, nn.Module]]:
    """{(layer, module): (parent, attribute, child)} of every projection
    named `...layers.{l}.[...].{m}` (m a llama2.c or HF name)."""
    out: Dict[Key, Tuple[nn.Module, str, nn.Module]] = {}
    for name, mod in model.named_modules():
        match = _NAME.search(name)
        if not match:
            continue
        module = ALIASES.get(match.group(2), match.group(2))
        if module not in ALIASES.values():
            continue
        key = (int(match.group(1)), module)
        if key in out:
            raise ValueError("two modules map to layer %d %s: %s" % (key[0], module, name))
        parent_name, _, attr = name.rpartition(".")
        out[key] = (model.get_submodule(parent_name), attr, mod)
    return out


def inject(model: nn.Module, config: Union[AdapterConfig, Mapping[str, Any]], *, seed: int = 0,
           shape: Optional[Config] = None, qk_permuted: Optional[bool] = None,
           dtype: torch.dtype = torch.float32) -> SuperLoRA:
    """Wrap model's targeted nn.Linear layers with a new SuperLoRA adapter
    (dW = 0 at start) and return it. config: an AdapterConfig (plan()) or
    plan()'s keyword arguments ({"variant", "rank", "modules", ...}).
    shape: the base shape (default model_shape(model)); qk_permuted: are
    wq/wk rows in HF's rotate-half order for a llama architecture (default:
    from the model's config). The base's parameters stop requiring grad."""
    if getattr(model, "superlora", None) is not None:
        raise ValueError("model already has a SuperLoRA adapter")
    shape = shape or model_shape(model)
    cfg = config if isinstance(config, AdapterConfig) else plan(shape, **dict(config))
    if cfg.shape.base() != shape.base():
        raise ValueError("adapter base %s does not match the model %s"
                         % (cfg.shape.base(), shape.base()))
    if qk_permuted is None:
        qk_permuted = shape.qk_permuted
    found = find_targets(model)
    for key in cfg.targets:
        if key not in found:
            raise ValueError("no module for layer %d %s in the model" % key)
        lin = found[key][2]
        if not isinstance(lin, nn.Linear):
            raise ValueError("layer %d %s is a %s, not an nn.Linear"
                             % (key[0], key[1], type(lin).__name__))
        if tuple(lin.weight.shape) != shape.module_shape(key[1]):
            raise ValueError("layer %d %s: weight %s, the shape says %s"
                             % (key[0], key[1], tuple(lin.weight.shape),
                                shape.module_shape(key[1])))
    model.requires_grad_(False)
    adapter = SuperLoRA(cfg, seed=seed, dtype=dtype)
    source = _DeltaSource(adapter)
    for key in cfg.targets:
        parent, attr, lin = found[key]
        rows = None
        if qk_permuted and key[1] in ("wq", "wk"):
            rows = hf_row_order(lin.weight.shape[0], shape.head_size)
        setattr(parent, attr, SuperLoRALinear(lin, source, key, rows))
    model.superlora = adapter
    model.register_forward_pre_hook(source.begin)
    model.register_forward_hook(source.end)
    return adapter


def adapter_of(model: nn.Module) -> SuperLoRA:
    adapter = getattr(model, "superlora", None)
    if not isinstance(adapter, SuperLoRA):
        raise ValueError("model has no SuperLoRA adapter (superlora.inject it first)")
    return adapter


def export(model: nn.Module, path: PathLike) -> None:
    """Write the injected adapter of model to path (spec section 7)."""
    adapter_of(model).export(path)
