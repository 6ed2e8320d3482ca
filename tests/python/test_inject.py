#!/usr/bin/python3
"""Tests of the trainer package's module-level API: superlora.inject/export
on the package's Llama (GGUF and HF row layouts) and Qwen2-style modules
and on a foreign module tree with an HF-style config, pathlib paths, and
import-peft. Golden values from tests/ref (numpy): model_ref's forward
with W + dW from superlora_ref (the exported file's meaning), peft_ref's
direct W + s B A.

Runs from the installed package (tests/e2e/trainer_package.sh: a venv,
PYTHONPATH unset, cwd outside the repo; SLORA_INSTALLED=1 makes the test
check that superlora was imported from site-packages) or with
PYTHONPATH=client/python. tests/ref is found relative to this file.
"""

import io
import json
import math
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ref"))
import model_ref  # noqa: E402
import peft_ref  # noqa: E402
import superlora_ref as ref  # noqa: E402

import superlora as sl  # noqa: E402
from superlora import __main__ as cli  # noqa: E402
from superlora import data  # noqa: E402

torch.set_num_threads(1)
MODEL = Path(os.environ.get("SLORA_MODEL", "models/stories260K.bin")).resolve()
TOKENIZER = Path(os.environ.get("SLORA_TOKENIZER", "models/tok512.bin")).resolve()
PROMPT = [1, 403, 407, 261, 378, 432, 383, 286]
LORA = {"variant": "lora", "rank": 4, "modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
# one group over wq, wk and w2 of every layer, shuffled and projected: not
# expressible per matrix, so the HF layout must train it in GGUF order
FOLDED = {"variant": "lorta3d", "rank": 3, "modules": ["wq", "wk", "w2"], "ratio": 0.2,
          "shuffle": 5, "projection": 7}
QWEN2 = sl.Config(32, 48, 2, 4, 2, -40, 32, arch="qwen2", rope="rotate_half", rope_theta=1e6,
                  norm_eps=1e-6, qkv_bias=True)


def logit_close(a, b, tol):
    """The project's logit rule: max|a - b| <= tol * max|b|."""
    return float(np.max(np.abs(a - b))) <= tol * float(np.max(np.abs(b)))


def randomize(adapter, seed=0, scale=0.3):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype))


def numpy_qwen2(model):
    """model_ref's model of a Qwen2-style Transformer's weights (its GGUF
    keeps HF's row order: taken as they are)."""
    c = model.config
    L = range(c.n_layers)
    w = {m: np.stack([model.linear(l, m).weight.detach().numpy() for l in L]) for m in sl.model.MODULES}
    bias = {m: np.stack([model.linear(l, m).bias.detach().numpy() for l in L])
            for m in ("wq", "wk", "wv")}
    shape = ref.ModelShape(c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                           c.vocab_size, c.seq_len)
    lay = model.layers
    return model_ref.Model.from_weights(
        shape, w, model.embed_tokens.weight.detach().numpy(),
        np.stack([lay[l].input_layernorm.weight.detach().numpy() for l in L]),
        np.stack([lay[l].post_attention_layernorm.weight.detach().numpy() for l in L]),
        model.norm.weight.detach().numpy(), wcls=model.lm_head.weight.detach().numpy(),
        bias=bias, neox=True, theta=c.rope_theta, eps=c.norm_eps)


class HFLlama(nn.Module):
    """A foreign module tree: HF's LlamaForCausalLM nesting (model.layers...)
    and an HF config dict, around the package's HF-layout Transformer."""

    def __init__(self, inner, model_type):
        super().__init__()
        c = inner.config
        self.model = inner
        self.config = {"model_type": model_type, "hidden_size": c.dim,
                       "intermediate_size": c.hidden_dim, "num_hidden_layers": c.n_layers,
                       "num_attention_heads": c.n_heads, "num_key_value_heads": c.n_kv_heads,
                       "vocab_size": c.vocab, "max_position_embeddings": c.seq_len}

    def forward(self, tokens):
        return self.model(tokens)


class LayoutTest(unittest.TestCase):
    def test_hf_layout_rows_and_logits(self):
        gguf = sl.Transformer(MODEL)
        hf = sl.Transformer(MODEL, rope="rotate_half")
        c = gguf.config
        for m, heads in (("wq", c.n_heads), ("wk", c.n_kv_heads)):
            w = gguf.linear(1, m).weight.numpy()
            # HF's convert_llama_weights_to_hf permute (GGUF/Meta -> HF)
            want = w.reshape(heads, w.shape[0] // heads // 2, 2, w.shape[1]).transpose(0, 2, 1, 3)
            np.testing.assert_array_equal(hf.linear(1, m).weight.numpy(), want.reshape(w.shape))
            np.testing.assert_array_equal(hf.gguf_weight(1, m).numpy(), w)
        a = gguf(torch.tensor([PROMPT]))[0].double().numpy()
        b = hf(torch.tensor([PROMPT]))[0].double().numpy()
        self.assertTrue(logit_close(b, a, 1e-5))
        self.assertTrue(logit_close(a, model_ref.Model(str(MODEL)).forward(PROMPT), 1e-5))

    def test_qwen2_module_equals_numpy(self):
        m = sl.Transformer(QWEN2, seed=3)
        toks = [1, 5, 9, 30, 2, 7, 7, 39, 0, 11]
        got = m(torch.tensor([toks]))[0].double().numpy()
        self.assertTrue(logit_close(got, numpy_qwen2(m).forward(toks), 1e-5))
        self.assertFalse(m.config.qk_permuted)
        self.assertEqual(tuple(m.linear(0, "wk").bias.shape), (16,))


class InjectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mr = model_ref.Model(str(MODEL))

    def check(self, model, np_model, config, tokens, seed=1):
        adapter = sl.inject(model, config, seed=seed)
        self.assertIs(model.superlora, adapter)
        randomize(adapter, seed)
        with torch.no_grad():
            got = model(torch.tensor([tokens]))[0].double().numpy()
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "a.safetensors"
            sl.export(model, path)
            blob = path.read_bytes()
        want = np_model.forward(tokens, np_model.with_adapter(blob))
        base = np_model.forward(tokens)
        self.assertTrue(logit_close(got, want, 1e-5), float(np.abs(got - want).max()))
        self.assertFalse(logit_close(base, want, 1e-3))
        return adapter

    def test_llama_both_layouts_every_structure(self):
        for rope in ("interleaved", "rotate_half"):
            for config in (LORA, FOLDED):
                with self.subTest(rope=rope, variant=config["variant"]):
                    self.check(sl.Transformer(MODEL, rope=rope), self.mr, config, PROMPT)

    def test_qwen2(self):
        toks = [1, 5, 9, 30, 2, 7, 7, 39, 0, 11]
        for config in (LORA, dict(FOLDED, modules=["q_proj", "k_proj", "v_proj", "down_proj"])):
            with self.subTest(variant=config["variant"]):
                m = sl.Transformer(QWEN2, seed=3)
                self.check(m, numpy_qwen2(m), config, toks)

    def test_foreign_module_tree_with_hf_config(self):
        # HF llama: q/k rows rotate-half (permuted); HF qwen2: GGUF order
        self.check(HFLlama(sl.Transformer(MODEL, rope="rotate_half"), "llama"), self.mr, FOLDED,
                   PROMPT)
        m = sl.Transformer(QWEN2, seed=4)
        wrapped = HFLlama(m, "qwen2")
        wrapped.config["vocab_size"] = 40
        self.check(wrapped, numpy_qwen2(m), LORA, [3, 4, 5, 6])
        names = [n for n, _ in wrapped.named_modules() if n.endswith("q_proj")]
        self.assertEqual(names, ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"])

    def test_training_moves_only_the_adapter(self):
        model = sl.Transformer(MODEL, rope="rotate_half")
        base = {n: p.clone() for n, p in model.named_parameters()}
        adapter = sl.inject(model, dict(LORA, rank=2))
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        self.assertTrue(trainable and all(n.startswith("superlora.") for n in trainable), trainable)
        tok = sl.Tokenizer(TOKENIZER)
        stream = torch.tensor(tok.encode("Once upon a time, there was a girl named Zorbo. "
                                         "Zorbo liked to play with Zorbo's ball.") * 3)
        x, y = stream[None, :-1], stream[None, 1:]
        opt = torch.optim.Adam(adapter.parameters(), lr=3e-2)
        losses = []
        for _ in range(15):
            loss = nn.functional.cross_entropy(model(x)[0], y[0])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        self.assertLess(losses[-1], losses[0] - 0.3)
        for n, p in model.named_parameters():
            if n in base:
                self.assertTrue(torch.equal(p, base[n]), n)
        # the injected forward and the explicit deltas path agree
        plain = sl.Transformer(MODEL, rope="rotate_half")
        with torch.no_grad():
            a = model(x)[0].double()
            b = plain(x, adapter.deltas())[0].double()
        self.assertLess(float((a - b).abs().max()), 1e-5 * float(b.abs().max()))

    def test_refusals(self):
        m = sl.Transformer(MODEL)
        sl.inject(m, LORA)
        with self.assertRaisesRegex(ValueError, "already has a SuperLoRA adapter"):
            sl.inject(m, LORA)
        other = sl.plan(QWEN2, "lora", 2, modules=["wq"])
        with self.assertRaisesRegex(ValueError, "does not match the model"):
            sl.inject(sl.Transformer(MODEL), other)
        m = sl.Transformer(MODEL)
        m.layers[2].self_attn.v_proj = nn.Identity()
        with self.assertRaisesRegex(ValueError, "layer 2 wv is a Identity, not an nn.Linear"):
            sl.inject(m, LORA)
        m = sl.Transformer(MODEL)
        del m.layers[4].mlp.down_proj
        with self.assertRaisesRegex(ValueError, "no module for layer 4 w2"):
            sl.inject(m, FOLDED)
        m = sl.Transformer(MODEL)
        m.layers[0].self_attn.k_proj = nn.Linear(64, 64, bias=False)
        with self.assertRaisesRegex(ValueError, r"layer 0 wk: weight \(64, 64\), the shape says \(32, 64\)"):
            sl.inject(m, LORA)
        with self.assertRaisesRegex(ValueError, "model has no shape"):
            sl.inject(nn.Linear(3, 3), LORA)
        with self.assertRaisesRegex(ValueError, "no SuperLoRA adapter"):
            sl.export(sl.Transformer(MODEL), "/nonexistent/a.safetensors")


class PathTest(unittest.TestCase):
    def test_paths_everywhere(self):
        model = sl.Transformer(MODEL)
        self.assertEqual(sl.read_header(MODEL), sl.read_header(str(MODEL)))
        tok = sl.Tokenizer(TOKENIZER)
        self.assertEqual(tok.encode("Once upon a time"), [1, 403, 407, 261, 378])
        ad = sl.SuperLoRA(sl.plan(model.config, "lora", 2))
        randomize(ad)
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            ad.export(d / "a.safetensors")
            self.assertLess(sl.verify(d / "a.safetensors", ad), 1e-5)
            self.assertEqual(sl.load(d / "a.safetensors").cfg.metadata(), ad.cfg.metadata())
            data.write_texts(d / "t.jsonl", ["one", "two"])
            self.assertEqual(data.read_texts(d / "t.jsonl"), ["one", "two"])
            (d / "t.txt").write_text("a\n\nb\n")
            self.assertEqual(data.read_texts(d / "t.txt"), ["a", "b"])


class ImportPeftTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.shape = sl.read_header(MODEL)
        cls.ref_shape = ref.read_model_shape(str(MODEL))

    def imported(self, d, **kw):
        want = peft_ref.write_peft(str(d), self.ref_shape, seed=kw.pop("seed", 1), **kw)
        config, tensors = sl.read_peft(d)
        blob = sl.import_peft(config, tensors, self.shape, permute_qk=True)
        _, dws = ref.load_and_generate(blob, self.ref_shape)
        got = {(l, m): dw for l, m, dw in dws}
        return got, want, json.loads(ref.read_safetensors(blob)[0]["superlora"])

    def assert_agree(self, got, want):
        amax = max(float(np.abs(v).max()) for v in want.values())
        for key, w in want.items():
            err = float(np.abs(got[key] - w).max())
            self.assertLessEqual(err, 1e-5 * amax, key)
        for key in set(got) - set(want):
            self.assertEqual(float(np.abs(got[key]).max()), 0.0, key)

    def test_exact_conversions(self):
        cases = [
            ("r8 alpha16", {}, 2.0),
            ("rslora", {"rslora": True}, 16 / math.sqrt(8)),
            ("rank_pattern", {"rank_pattern": {"k_proj": 4, "layers.3.self_attn.o_proj": 2},
                              "alpha_pattern": {"v_proj": 4}}, 1.0),
            ("layers subset, mlp, bf16", {"layers": [1, 3], "dtype": "BF16",
                                          "modules": ("q_proj", "gate_proj", "down_proj"),
                                          "config_extra": {"layers_to_transform": [1, 3]}}, 2.0),
        ]
        for what, kw, alpha in cases:
            with self.subTest(what), tempfile.TemporaryDirectory() as d:
                got, want, cfg = self.imported(Path(d), **kw)
                self.assert_agree(got, want)
                self.assertAlmostEqual(cfg["alpha"], alpha, places=6)
                self.assertEqual(cfg["groups"], "matrix")

    def test_refusals(self):
        cases = [
            ({"use_dora": True}, "use_dora = true cannot be imported"),
            ({"bias": "lora_only"}, "bias = \"lora_only\" cannot be imported"),
            ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
            ({"target_modules": ["q_proj", "embed_tokens"]}, "embed_tokens"),
            ({"r": 4}, "rank 8 in the file, 4 in the config"),
            ({"layers_to_transform": [0]}, "layer 1 not in layers_to_transform"),
        ]
        for extra, msg in cases:
            with self.subTest(msg), tempfile.TemporaryDirectory() as d:
                with self.assertRaisesRegex(ValueError, msg.replace("(", r"\(")):
                    self.imported(Path(d), config_extra=extra)
        with tempfile.TemporaryDirectory() as d:
            small = ref.ModelShape(32, 172, 5, 8, 4, 512)
            peft_ref.write_peft(d, small, seed=1)
            config, tensors = sl.read_peft(Path(d))
            with self.assertRaisesRegex(ValueError, r"layer 0 wq: lora_A \[8, 32\] and lora_B "
                                        r"\[32, 8\] do not fit \(64, 64\)"):
                sl.import_peft(config, tensors, self.shape, permute_qk=True)

    def test_cli(self):
        with tempfile.TemporaryDirectory() as d:
            want = peft_ref.write_peft(d, self.ref_shape, seed=5)
            out, err = io.StringIO(), io.StringIO()
            with redirect_stdout(out), redirect_stderr(err):
                rc = cli.main(["import-peft", d, "--model", str(MODEL), "-o", d + "/a.safetensors"])
            self.assertEqual(rc, 0, err.getvalue())
            _, dws = ref.load_and_generate(Path(d, "a.safetensors").read_bytes(), self.ref_shape)
            self.assert_agree({(l, m): dw for l, m, dw in dws}, want)


if __name__ == "__main__":
    if os.environ.get("SLORA_INSTALLED") == "1" and ("site-packages" not in sl.__file__
                                                     or "PYTHONPATH" in os.environ):
        sys.exit("test_inject: superlora imported from %s (PYTHONPATH=%s), not the installed "
                 "package" % (sl.__file__, os.environ.get("PYTHONPATH")))
    print("test_inject: superlora from %s" % sl.__file__)
    unittest.main(verbosity=2)
