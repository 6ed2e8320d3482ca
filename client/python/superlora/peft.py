"""Import a Hugging Face PEFT LoRA directory as a SuperLoRA v1 adapter
(`python3 -m superlora import-peft`; the daemon's `slorad import` and PEFT
uploads do the same in C).

PEFT layout: DIR/adapter_config.json ({"peft_type": "LORA", "r",
"lora_alpha", "target_modules", "use_rslora", "rank_pattern",
"alpha_pattern", "layers_to_transform", "use_dora", "bias", ...}) and
DIR/adapter_model.safetensors with tensors
`base_model.model.model.layers.{l}.{self_attn|mlp}.{m}.lora_A.weight` (r, in)
and `...lora_B.weight` (out, r); dW = scale B A with scale = alpha / r
(alpha / sqrt(r) with use_rslora), r and alpha per module from
rank_pattern / alpha_pattern (regex keys matched against the module's
name, first match wins, as PEFT does).

Each (layer, module) becomes a per-matrix LoRA group (spec section 8:
A_{0,0} = B (out, r), A_{0,1} = A^T (in, r)). The spec's alpha is one per
adapter: it is the common scale when every module has the same one, else
1.0 with each module's scale multiplied into its B. Targets missing from
the layer x module product get zero factors of rank 1 (dW = 0). On a llama
architecture the q/k rows of dW are moved from HF's rotate-half order into
the GGUF order by permuting B's rows (spec section 1); qwen2 needs none.
fan_in_fan_out only says how a Conv1D base stores W: A is (r, in) and B
(out, r) either way.

Refused (ValueError naming the reason): DoRA, bias training, modules the
spec cannot target, tensors that are not LoRA factors, shapes that disagree
with the base or with each other.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from . import safetensors
from .adapter import ALIASES
from .model import MODULES, Config, PathLike, hf_row_order

_KEY = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")
_PARENT = {"wq": "self_attn", "wk": "self_attn", "wv": "self_attn", "wo": "self_attn",
           "w1": "mlp", "w2": "mlp", "w3": "mlp"}
# Config keys that change what the adapter computes, with the value under
# which the import is exact.
_REFUSED = {"use_dora": False, "bias": "none", "modules_to_save": None,
            "layer_replication": None, "trainable_token_indices": None,
            "alora_invocation_tokens": None, "use_qalora": False, "lora_bias": False,
            "target_parameters": None}


def _pattern_value(patterns: Mapping[str, Any], name: str, default: Any) -> Any:
    for key, value in patterns.items():
        if re.match(r"(.*\.)?(%s)$" % key, name):
            return value
    return default


def read_peft(directory: PathLike) -> Tuple[Dict[str, Any], List[Tuple[str, np.ndarray]]]:
    d = Path(directory)
    config = json.loads((d / "adapter_config.json").read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ValueError("adapter_config.json: not a JSON object")
    _, tensors = safetensors.loads((d / "adapter_model.safetensors").read_bytes())
    return config, tensors


def import_peft(config: Mapping[str, Any], tensors: List[Tuple[str, np.ndarray]], shape: Config,
                permute_qk: bool) -> bytes:
    """The SuperLoRA file (bytes) of a PEFT adapter for a base of `shape`."""
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError("peft_type %r: only LORA imports" % config.get("peft_type"))
    for key, ok in _REFUSED.items():
        value = config.get(key, ok)
        if value != ok and not (ok is None and value in ([], {}, "")):
            raise ValueError("%s = %s cannot be imported (only %s)"
                             % (key, json.dumps(value), json.dumps(ok)))
    targets = config.get("target_modules") or []
    if isinstance(targets, list):
        bad = [t for t in targets if ALIASES.get(t, t) not in MODULES]
        if bad:
            raise ValueError("target_modules %s: slorad targets only %s"
                             % (bad, ", ".join(ALIASES)))
    r0, alpha0 = config.get("r", 8), config.get("lora_alpha", 8)
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}
    layers_cfg = config.get("layers_to_transform")
    if isinstance(layers_cfg, int):
        layers_cfg = [layers_cfg]
    factors: Dict[Tuple[int, str], Dict[str, np.ndarray]] = {}
    for name, a in tensors:
        m = _KEY.match(name)
        module = ALIASES.get(m.group(3)) if m else None
        if module is None or _PARENT[module] != m.group(2):
            raise ValueError("tensor %s: not a LoRA factor of a module slorad can target" % name)
        layer = int(m.group(1))
        if not 0 <= layer < shape.n_layers:
            raise ValueError("tensor %s: layer %d, the base has %d" % (name, layer, shape.n_layers))
        if layers_cfg is not None and layer not in layers_cfg:
            raise ValueError("tensor %s: layer %d not in layers_to_transform" % (name, layer))
        factors.setdefault((layer, module), {})[m.group(4)] = a
    if not factors:
        raise ValueError("adapter_model.safetensors has no LoRA factors")
    layers = sorted({l for l, _ in factors})
    modules = [m for m in MODULES if any(k[1] == m for k in factors)]
    scales: Dict[Tuple[int, str], float] = {}
    for (layer, module), ab in sorted(factors.items(),
                                      key=lambda kv: (kv[0][0], MODULES.index(kv[0][1]))):
        out_dim, in_dim = shape.module_shape(module)
        what = "layer %d %s" % (layer, module)
        if set(ab) != {"A", "B"}:
            raise ValueError("%s: lora_A and lora_B must both be present" % what)
        A, B = ab["A"], ab["B"]
        if A.ndim != 2 or B.ndim != 2 or A.shape[1] != in_dim or B.shape[0] != out_dim \
                or A.shape[0] != B.shape[1]:
            raise ValueError("%s: lora_A %s and lora_B %s do not fit (%d, %d)"
                             % (what, list(A.shape), list(B.shape), out_dim, in_dim))
        full = "model.layers.%d.%s.%s" % (layer, _PARENT[module], _hf(module))
        r = _pattern_value(rank_pattern, full, r0)
        alpha = _pattern_value(alpha_pattern, full, alpha0)
        if r != A.shape[0]:
            raise ValueError("%s: rank %d in the file, %d in the config" % (what, A.shape[0], r))
        scales[(layer, module)] = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    common = len(set(scales.values())) == 1
    out: List[Tuple[str, np.ndarray]] = []
    for j, key in enumerate((l, m) for l in layers for m in modules):
        out_dim, in_dim = shape.module_shape(key[1])
        if key in factors:
            B = factors[key]["B"].astype(np.float32)
            At = factors[key]["A"].astype(np.float32).T
            if not common:
                B = (B.astype(np.float64) * scales[key]).astype(np.float32)
            if permute_qk and key[1] in ("wq", "wk"):
                B = B[np.argsort(hf_row_order(out_dim, shape.head_size).numpy())]
        else:
            B, At = np.zeros((out_dim, 1), np.float32), np.zeros((in_dim, 1), np.float32)
        out += [("g%d.k0.f0" % j, B), ("g%d.k0.f1" % j, At)]
    cfg = {"version": 1, "base": shape.base(), "modules": modules, "layers": layers,
           "groups": "matrix", "alpha": next(iter(scales.values())) if common else 1.0}
    return safetensors.dumps(out, {"superlora": json.dumps(cfg, separators=(",", ":"))})


def _hf(module: str) -> str:
    return next(k for k, v in ALIASES.items() if v == module)
