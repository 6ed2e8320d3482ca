"""SuperLoRA v1 adapters in torch: configuration, auto-fold, the trainable
module, export to the spec's safetensors format, loading and verification.

The normative semantics are docs/superlora-v1.md (shared/docs): targets
(section 1), groups (2), per-group Tucker/CP factors chained by Kronecker
products and folded (3), shuffle, split and alpha (4), fastfood projection
(5) with the integer randomness of section 6 (rng.py), wire format (7).

Everything between the factors and dW is differentiable torch code, so a
trainer back-propagates through Kronecker products, the fold, the fixed
fastfood map and the shuffle gather. Nothing here is shared with the
daemon or the numpy reference in tests/ref: tests compare the three.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import rng
from . import safetensors
from .model import MODULES, Config, PathLike

Groups = Union[int, str]
Key = Tuple[int, str]

VARIANTS = ("lora", "groupwise2d", "lokr", "lonkr", "lotr", "lorta3d", "lorta4d", "lorta5d")
ALIASES = {"q_proj": "wq", "k_proj": "wk", "v_proj": "wv", "o_proj": "wo",
           "gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}
LONKR_K = 3  # Kronecker factors of the lonkr variant, each rank-r CP of order 2


class Factor:
    """One Kronecker factor of a group: M factor matrices A_m of shape
    (n[m], r[m]) and, for Tucker, a core of shape r (CP: no core, equal r)."""

    def __init__(self, n: Sequence[int], r: Sequence[int], core: bool) -> None:
        self.n = list(n)
        self.r = list(r)
        self.core = core
        if not core and len(set(self.r)) != 1:
            raise ValueError("CP factor with unequal ranks %s" % self.r)

    def n_params(self) -> int:
        return sum(a * b for a, b in zip(self.n, self.r)) + (math.prod(self.r) if self.core else 0)


class AdapterConfig:
    """Targets and structure of an adapter (everything but the values).

    groups: an int G, "matrix", "layer" or "module"; factors: per group a
    list of Factor (K_g factors of one order M_g); shuffle / projection:
    a seed or None."""

    def __init__(self, shape: Config, modules: Sequence[str],
                 layers: Optional[Sequence[int]] = None, order: str = "layer",
                 groups: Groups = "matrix", factors: Optional[List[List[Factor]]] = None,
                 shuffle: Optional[int] = None, projection: Optional[int] = None,
                 alpha: float = 1.0) -> None:
        self.shape = shape
        self.modules = [ALIASES.get(m, m) for m in modules]
        for m in self.modules:
            if m not in MODULES:
                raise ValueError("unknown module '%s'" % m)
        if not self.modules or len(set(self.modules)) != len(self.modules):
            raise ValueError("modules must be a non-empty list without repeats")
        self.layers = list(range(shape.n_layers)) if layers is None else list(layers)
        if not self.layers or any(not 0 <= l < shape.n_layers for l in self.layers) \
                or any(a >= b for a, b in zip(self.layers, self.layers[1:])):
            raise ValueError("layers must be strictly ascending in [0, %d)" % shape.n_layers)
        if order not in ("layer", "module"):
            raise ValueError("order must be \"layer\" or \"module\"")
        self.order = order
        self.groups = groups
        self.shuffle = shuffle
        self.projection = projection
        self.alpha = float(alpha)
        if order == "layer":
            self.targets = [(l, m) for l in self.layers for m in self.modules]
        else:
            self.targets = [(l, m) for m in self.modules for l in self.layers]
        self.sizes = [math.prod(shape.module_shape(m)) for _, m in self.targets]
        self.N = sum(self.sizes)
        self.group_len = self._group_len()
        self.factors = factors
        if factors is not None:
            self._check_factors()

    def _group_len(self) -> List[int]:
        g = self.groups
        if isinstance(g, int) and not isinstance(g, bool):
            if not 1 <= g <= self.N:
                raise ValueError("groups %d not in [1, N = %d]" % (g, self.N))
            return [self.N // g + (1 if i < self.N % g else 0) for i in range(g)]
        if g == "matrix":
            return list(self.sizes)
        if g == "layer" and self.order == "layer":
            return [sum(s for (l, _), s in zip(self.targets, self.sizes) if l == L)
                    for L in self.layers]
        if g == "module" and self.order == "module":
            return [sum(s for (_, m), s in zip(self.targets, self.sizes) if m == M)
                    for M in self.modules]
        raise ValueError("groups %r invalid with order %r" % (g, self.order))

    def _check_factors(self) -> None:
        if len(self.factors) != len(self.group_len):
            raise ValueError("%d factor lists for %d groups" % (len(self.factors), len(self.group_len)))
        for g, (fl, Ng) in enumerate(zip(self.factors, self.group_len)):
            if not fl or len({len(f.n) for f in fl}) != 1:
                raise ValueError("g%d: Kronecker factors must be non-empty and of one order" % g)
            P = self.code_length(g)
            if P > max(2 * Ng, Ng + 65536):
                raise ValueError("g%d: P_g = %d over the sanity bound for N_g = %d" % (g, P, Ng))
            if self.projection is None and P < Ng:
                raise ValueError("g%d: P_g = %d < N_g = %d without projection" % (g, P, Ng))

    def code_length(self, g: int) -> int:
        fl = self.factors[g]
        return math.prod(math.prod(f.n[m] for f in fl) for m in range(len(fl[0].n)))

    def n_params(self) -> int:
        return sum(f.n_params() for fl in self.factors for f in fl)

    def metadata(self) -> Dict[str, object]:
        """The spec's superlora config object (section 7)."""
        cfg = {"version": 1, "base": self.shape.base(), "modules": self.modules,
               "layers": self.layers, "order": self.order, "groups": self.groups}
        if self.shuffle is not None:
            cfg["shuffle"] = {"seed": self.shuffle}
        if self.projection is not None:
            cfg["projection"] = {"kind": "fastfood", "seed": self.projection}
        cfg["alpha"] = self.alpha
        return cfg

    def describe(self) -> str:
        g0 = self.factors[0]
        return ("N = %d in %d groups, K = %d, M = %d, n = %s, r = %s%s, P_0 = %d, %d parameters"
                % (self.N, len(self.group_len), len(g0), len(g0[0].n),
                   [f.n for f in g0], [f.r for f in g0], " + core" if g0[-1].core else "",
                   self.code_length(0), self.n_params()))


def auto_fold(target: float, n_modes: int) -> List[int]:
    """n_modes near-equal positive sizes (descending) whose product is the
    first >= target reached by growing the smallest size one step at a time
    from floor(target^(1/n_modes))."""
    target = max(1, int(target))
    base = max(1, int(round(target ** (1.0 / n_modes))))
    while base > 1 and base ** n_modes > target:
        base -= 1
    while (base + 1) ** n_modes <= target:
        base += 1
    sizes = [base] * n_modes
    while math.prod(sizes) < target:
        i = min(range(n_modes), key=lambda k: (sizes[k], k))
        sizes[i] += 1
    return sorted(sizes, reverse=True)


def fold_sizes(N_g: int, M: int, K: int = 1, ratio: Optional[float] = None) -> List[List[int]]:
    """Per-factor mode sizes n[k][m] with P_g = prod >= N_g, or P_g about
    ratio * N_g when the group is projected."""
    target = N_g if ratio is None else max(1, round(ratio * N_g))
    sizes = auto_fold(target, M * K)
    # factor k takes sizes[k M .. k M + M - 1]: every mode gets one size of
    # each magnitude tier, so the mode sizes n_m stay near-equal
    return [[sizes[k * M + m] for m in range(M)] for k in range(K)]


def _balanced_divisor(x: int) -> int:
    d = int(math.isqrt(x))
    while x % d:
        d -= 1
    return d


def plan(shape: Config, variant: str, rank: int, modules: Sequence[str] = ("wq", "wv"),
         layers: Optional[Sequence[int]] = None, groups: Optional[Groups] = None,
         ratio: Optional[float] = None, shuffle: Optional[int] = None,
         projection: Optional[int] = None, alpha: float = 1.0) -> AdapterConfig:
    """The AdapterConfig of a named variant (spec section 8). ratio: project
    each group with fastfood to P_g about ratio * N_g (projection seed
    `projection`, default 0). shuffle: a seed or None."""
    if variant not in VARIANTS:
        raise ValueError("unknown variant %s (want one of %s)" % (variant, ", ".join(VARIANTS)))
    if rank < 1:
        raise ValueError("rank must be >= 1")
    default_groups = {"lora": "matrix", "lokr": "matrix", "lotr": "module"}.get(variant, 1)
    groups = default_groups if groups is None else groups
    order = "module" if groups == "module" else "layer"
    if ratio is not None and projection is None:
        projection = 0
    cfg = AdapterConfig(shape, modules, layers, order, groups, None, shuffle,
                        projection if ratio is not None else None, alpha)
    exact = ratio is None and groups == "matrix"
    factors = []
    for g, Ng in enumerate(cfg.group_len):
        o, i = shape.module_shape(cfg.targets[g][1]) if exact else (0, 0)
        if variant in ("lora", "groupwise2d"):
            n = [o, i] if exact else fold_sizes(Ng, 2, 1, ratio)[0]
            fl = [Factor(n, [rank, rank], False)]
        elif variant == "lokr":
            if exact:
                a, b = _balanced_divisor(o), _balanced_divisor(i)
                ns = [[a, b], [o // a, i // b]]
            else:
                ns = fold_sizes(Ng, 2, 2, ratio)
            # factor 0 full (CP with r = min(n_{0,0}, n_{0,1})), factor 1 low rank
            fl = [Factor(ns[0], [min(ns[0])] * 2, False),
                  Factor(ns[1], [min(rank, min(ns[1]))] * 2, False)]
        elif variant == "lonkr":
            fl = [Factor(n, [min(rank, min(n))] * 2, False)
                  for n in fold_sizes(Ng, 2, LONKR_K, ratio)]
        elif variant == "lotr":
            if ratio is None and groups == "module":
                o, i = shape.module_shape(cfg.modules[g])
                n = [len(cfg.layers), o, i]
            else:
                n = fold_sizes(Ng, 3, 1, ratio)[0]
            fl = [Factor(n, [min(rank, x) for x in n], True)]
        else:
            M = int(variant[5])
            n = fold_sizes(Ng, M, 1, ratio)[0]
            fl = [Factor(n, [min(rank, x) for x in n], True)]
        factors.append(fl)
    cfg.factors = factors
    cfg._check_factors()
    return cfg


# ---------------------------------------------------------------- torch maths

def fwht(v: torch.Tensor) -> torch.Tensor:
    """Unnormalised Walsh-Hadamard transform along the last axis (length a
    power of two), Sylvester order: butterflies (a, b) -> (a + b, a - b) for
    strides 1, 2, 4, ..."""
    L = v.shape[-1]
    h = 1
    while h < L:
        w = v.reshape(-1, L // (2 * h), 2, h)
        v = torch.stack((w[:, :, 0] + w[:, :, 1], w[:, :, 0] - w[:, :, 1]), dim=2).reshape(v.shape)
        h *= 2
    return v


def factor_tensor(A: Sequence[torch.Tensor], core: Optional[torch.Tensor]) -> torch.Tensor:
    """T_k: Tucker (core given) or CP, from factor matrices A[m] (n_m, r_m)."""
    if core is not None:
        T = core
        for m, a in enumerate(A):
            T = torch.movedim(torch.tensordot(a, T, dims=([1], [m])), 0, m)
        return T
    if len(A) == 2:
        return A[0] @ A[1].T
    letters = "abcdefghijklmnopq"
    spec = ",".join(letters[m] + "z" for m in range(len(A))) + "->" + letters[:len(A)]
    return torch.einsum(spec, *A)


def kron(T: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """Kronecker product of two order-M tensors, factor T most significant."""
    M = T.dim()
    a = T.reshape([x for s in T.shape for x in (s, 1)])
    b = U.reshape([x for s in U.shape for x in (1, s)])
    return (a * b).reshape([s * t for s, t in zip(T.shape, U.shape)][:M])


class SuperLoRA(torch.nn.Module):
    """Trainable SuperLoRA adapter for a frozen base model.

    Parameters are named "g{g}_k{k}_f{m}" and "g{g}_k{k}_core" (the spec's
    tensor names with '_' for '.'). deltas() returns {(layer, module): dW}
    exactly as the spec defines it; feed that to Transformer.forward."""

    def __init__(self, cfg: AdapterConfig, seed: int = 0, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(seed)
        self.params = torch.nn.ParameterDict()
        for g, fl in enumerate(cfg.factors):
            for k, f in enumerate(fl):
                last = k == len(fl) - 1
                for m, (n, r) in enumerate(zip(f.n, f.r)):
                    a = torch.randn(n, r, generator=gen, dtype=torch.float64) / math.sqrt(n)
                    if last and not f.core and m == 0:
                        a.zero_()  # dW = 0 at step 0; A_{K-1,1..} keep its gradient alive
                    self.params["g%d_k%d_f%d" % (g, k, m)] = torch.nn.Parameter(a.to(dtype))
                if f.core:
                    c = torch.randn(*f.r, generator=gen, dtype=torch.float64)
                    if last:
                        c.zero_()  # zero core: dW = 0, core gradient non-zero
                    self.params["g%d_k%d_core" % (g, k)] = torch.nn.Parameter(c.to(dtype))
        for g, Ng in enumerate(cfg.group_len):
            if cfg.projection is not None:
                b, gd, p, scale = rng.fastfood_params(cfg.projection, g, cfg.code_length(g), Ng)
                self.register_buffer("ff%d_b" % g, torch.from_numpy(b).to(dtype))
                # gd * scale in float64 first: one rounding of the combined diagonal
                self.register_buffer("ff%d_gd" % g, torch.from_numpy(gd * scale).to(dtype))
                self.register_buffer("ff%d_p" % g, torch.from_numpy(p))
        if cfg.shuffle is not None:
            self.register_buffer("shuffle_pi", torch.from_numpy(rng.perm(rng.rnd(cfg.shuffle, 4, 0), cfg.N)))

    def tensors(self) -> List[Tuple[str, torch.nn.Parameter]]:
        """[(spec tensor name, parameter)] in group, factor, mode order."""
        return [(name.replace("_", "."), p) for name, p in self.params.items()]

    def group_code(self, g: int, values: Optional[Mapping[str, torch.Tensor]] = None) -> torch.Tensor:
        """t_g = vec(T_0 kron ... kron T_{K-1}). values: optional {parameter
        name: tensor} used instead of the parameters (gradcheck)."""
        values = self.params if values is None else values
        T = None
        for k, f in enumerate(self.cfg.factors[g]):
            A = [values["g%d_k%d_f%d" % (g, k, m)] for m in range(len(f.n))]
            core = values["g%d_k%d_core" % (g, k)] if f.core else None
            Tk = factor_tensor(A, core)
            T = Tk if T is None else kron(T, Tk)
        return T.reshape(-1)

    def group_delta(self, g: int, values: Optional[Mapping[str, torch.Tensor]] = None) -> torch.Tensor:
        t = self.group_code(g, values)
        Ng = self.cfg.group_len[g]
        if self.cfg.projection is None:
            return t[:Ng]
        b = getattr(self, "ff%d_b" % g)
        v = torch.nn.functional.pad(t, (0, b.shape[0] - t.shape[0]))
        v = fwht(b * v)
        v = fwht(getattr(self, "ff%d_gd" % g) * v[getattr(self, "ff%d_p" % g)])
        # the 1/(norm2(gd) sqrt(D)) scale is folded into gd (linear map)
        return v[:Ng]

    def delta_all(self, values: Optional[Mapping[str, torch.Tensor]] = None) -> torch.Tensor:
        """dW_all: every vec(dW_j) at offset off_j, alpha applied."""
        delta = torch.cat([self.group_delta(g, values) for g in range(len(self.cfg.group_len))])
        if self.cfg.shuffle is not None:
            delta = delta[self.shuffle_pi]
        return delta * self.cfg.alpha

    def deltas(self, values: Optional[Mapping[str, torch.Tensor]] = None) -> Dict[Key, torch.Tensor]:
        """{(layer, module): dW (out, in)} in target order."""
        allw = self.delta_all(values)
        out, off = {}, 0
        for (l, m), s in zip(self.cfg.targets, self.cfg.sizes):
            out[(l, m)] = allw[off:off + s].reshape(self.cfg.shape.module_shape(m))
            off += s
        return out

    def export_bytes(self) -> bytes:
        meta = {"superlora": json.dumps(self.cfg.metadata(), separators=(",", ":"))}
        return safetensors.dumps([(n, p.detach().cpu().numpy()) for n, p in self.tensors()], meta)

    def export(self, path: PathLike) -> None:
        """Write the adapter (spec section 7, F32 tensors) to path."""
        Path(path).write_bytes(self.export_bytes())


# ---------------------------------------------------------------- load / verify

def load(path_or_bytes: Union[PathLike, bytes], shape: Optional[Config] = None,
         dtype: torch.dtype = torch.float32) -> SuperLoRA:
    """A SuperLoRA module holding an adapter file's values. shape: the model
    Config (default: rebuilt from the file's base, seq_len 0)."""
    data = path_or_bytes if isinstance(path_or_bytes, (bytes, bytearray)) \
        else Path(path_or_bytes).read_bytes()
    meta, tensors = safetensors.loads(data)
    if "superlora" not in meta:
        raise ValueError("missing __metadata__.superlora")
    c = json.loads(meta["superlora"])
    if c.get("version") != 1:
        raise ValueError("superlora.version must be 1")
    base = c["base"]
    if shape is None:
        shape = Config(base["dim"], base["hidden_dim"], base["n_layers"], base["n_heads"],
                       base["n_kv_heads"], base["vocab_size"], 0)
    elif shape.base() != base:
        raise ValueError("adapter base %s does not match the model %s" % (base, shape.base()))
    values = dict(tensors)
    cfg = AdapterConfig(shape, c["modules"], c.get("layers"), c.get("order", "layer"),
                        c.get("groups", "matrix"), None,
                        c["shuffle"]["seed"] if "shuffle" in c else None,
                        c["projection"]["seed"] if "projection" in c else None,
                        c.get("alpha", 1.0))
    factors = []
    for g in range(len(cfg.group_len)):
        fl, k = [], 0
        while "g%d.k%d.f0" % (g, k) in values:
            ms = []
            while "g%d.k%d.f%d" % (g, k, len(ms)) in values:
                ms.append(values["g%d.k%d.f%d" % (g, k, len(ms))].shape)
            core = "g%d.k%d.core" % (g, k) in values
            fl.append(Factor([s[0] for s in ms], [s[1] for s in ms], core))
            k += 1
        factors.append(fl)
    cfg.factors = factors
    cfg._check_factors()
    mod = SuperLoRA(cfg, dtype=dtype)
    names = {n for n, _ in mod.tensors()}
    if names != set(values):
        raise ValueError("unexpected tensors: %s" % sorted(set(values) - names))
    with torch.no_grad():
        for name, p in mod.tensors():
            p.copy_(torch.from_numpy(values[name]).to(dtype))
    return mod


def agreement(got: Mapping[Key, torch.Tensor], ref: Mapping[Key, torch.Tensor],
              rel: float = 1e-5) -> List[str]:
    """Spec section 9: got/ref {(layer, module): dW}; returns a list of
    violations (empty when they agree)."""
    problems = []
    if set(got) != set(ref):
        return ["targets differ: %s vs %s" % (sorted(got), sorted(ref))]
    amax = max(float(r.abs().max()) for r in ref.values())
    for key, r in ref.items():
        r = r.detach().double()
        d = got[key].detach().double() - r
        fro, rfro = float(d.norm()), float(r.norm())
        worst = float(d.abs().max())
        if not math.isfinite(fro) or fro > rel * rfro:
            problems.append("layers.%d.%s: ||dW - ref||_F = %.3g > %.0e * %.3g" % (*key, fro, rel, rfro))
        if worst > rel * amax:
            problems.append("layers.%d.%s: max entry error %.3g > %.0e * %.3g" % (*key, worst, rel, amax))
    return problems


def verify(path: PathLike, module: SuperLoRA) -> float:
    """Re-read an exported adapter file, recompute its deltas independently
    of `module`'s parameters and compare them with `module`'s own deltas
    (spec section 9). Returns the relative max error; raises ValueError on
    disagreement."""
    loaded = load(path, module.cfg.shape)
    with torch.no_grad():
        got = {k: v.double() for k, v in loaded.double().deltas().items()}
        ref = module.deltas()
    problems = agreement(ref, got)
    if problems:
        raise ValueError("exported adapter disagrees with the module: " + "; ".join(problems[:5]))
    amax = max(float(v.abs().max()) for v in got.values()) or 1.0
    return max(float((ref[k].double() - got[k]).abs().max()) for k in got) / amax
