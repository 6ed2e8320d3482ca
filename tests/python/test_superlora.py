#!/usr/bin/python3
"""Tests of the user-side trainer package client/python/superlora.

The golden side is always independent of the package: tests/ref/
superlora_ref.py (numpy, written from the spec) for adapter deltas and
tests/ref/model_ref.py (numpy float64) for logits; the tokenizer against
the upstream llama2.c encoding quoted in the project's issues.

Run from the installed package (tests/e2e/trainer.sh) or with
PYTHONPATH=client/python: SLORA_MODEL=models/stories260K.bin
SLORA_TOKENIZER=models/tok512.bin /usr/bin/python3 tests/python/test_superlora.py
(tests/ref is found relative to this file).
"""

import http.server
import io
import json
import math
import os
import struct
import sys
import tempfile
import threading
import unittest
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import model_ref  # noqa: E402
import superlora_ref as ref  # noqa: E402
import superlora as sl  # noqa: E402
from superlora import __main__ as cli  # noqa: E402
from superlora import data, train  # noqa: E402

torch.set_num_threads(1)
MODEL = os.environ.get("SLORA_MODEL", "models/stories260K.bin")
TOKENIZER = os.environ.get("SLORA_TOKENIZER", "models/tok512.bin")
PROMPT = [1, 403, 407, 261, 378, 432, 383, 286]


def logit_close(a, b, tol):
    """The project's logit rule: max|a - b| <= tol * max|b|."""
    return float(np.max(np.abs(a - b))) <= tol * float(np.max(np.abs(b)))


def write_random_model(path, dim=16, hidden=24, n_layers=2, n_heads=4, n_kv_heads=2,
                       vocab=40, seq=32, shared=False, seed=0):
    """A random llama2.c .bin (unshared classifier: negative vocab_size)."""
    rs = np.random.RandomState(seed)
    hs, kv = dim // n_heads, dim // n_heads * n_kv_heads
    shapes = [(vocab, dim), (n_layers, dim), (n_layers, dim, dim), (n_layers, kv, dim),
              (n_layers, kv, dim), (n_layers, dim, dim), (n_layers, dim), (n_layers, hidden, dim),
              (n_layers, dim, hidden), (n_layers, hidden, dim), (dim,), (seq * hs // 2,),
              (seq * hs // 2,)] + ([] if shared else [(vocab, dim)])
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", dim, hidden, n_layers, n_heads, n_kv_heads,
                            vocab if shared else -vocab, seq))
        for s in shapes:
            f.write((rs.randn(*s) * 0.3).astype("<f4").tobytes())


def ref_deltas(adapter_bytes, shape):
    """{(layer, module): dW} from the numpy reference."""
    _, dws = ref.load_and_generate(adapter_bytes, shape)
    return {(l, m): torch.from_numpy(d) for l, m, d in dws}


def randomize(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype))


# every variant of the spec's section 8 table (CLI names), plus combinations
VARIANT_CASES = [
    ("lora", {}),
    ("groupwise2d", {"groups": 3}),
    ("lokr", {}),
    ("lonkr", {"groups": 2}),
    ("lotr", {}),
    ("lorta3d", {}),
    ("lorta4d", {"groups": "layer"}),
    ("lorta5d", {}),
    ("lora", {"shuffle": 3}),
    ("lorta3d", {"ratio": 0.1, "shuffle": 7, "projection": 11}),
    ("lokr", {"ratio": 0.5, "projection": 2}),
    ("lotr", {"ratio": 0.3, "shuffle": 1, "projection": 5}),
    ("groupwise2d", {"groups": 37, "ratio": 0.05, "projection": 9, "alpha": 0.5}),
]


class ModelTest(unittest.TestCase):
    def test_stories260k_logits_equal_model_ref(self):
        got = sl.Transformer(MODEL)(torch.tensor([PROMPT]))[0].double().numpy()
        want = model_ref.Model(MODEL).forward(PROMPT)
        self.assertTrue(logit_close(got, want, 1e-5), float(np.abs(got - want).max()))

    def test_upstream_logits_after_bos(self):
        # issue 3: logits at position 0 begin [-6.22291, 8.40434, -6.22374, -6.22254], top 403
        got = sl.Transformer(MODEL)(torch.tensor([[1]]))[0, 0]
        np.testing.assert_allclose(got[:4].numpy(), [-6.22291, 8.40434, -6.22374, -6.22254],
                                   atol=1e-4)
        self.assertEqual(int(got.argmax()), 403)

    def test_unshared_classifier_gqa_random_model(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.bin")
            write_random_model(path)
            m = sl.Transformer(path)
            self.assertEqual(m.config.vocab_size, -40)
            toks = [1, 5, 9, 30, 2, 7, 7, 39, 0, 11]
            got = m(torch.tensor([toks]))[0].double().numpy()
            self.assertTrue(logit_close(got, model_ref.Model(path).forward(toks), 1e-5))

    def test_kv_cache_generation_equals_full_recompute(self):
        m = sl.Transformer(MODEL)
        out = m.generate([PROMPT], 12)[0]
        self.assertEqual(out, model_ref.Model(MODEL).greedy(PROMPT, len(out)))
        self.assertGreater(len(out), 4)

    def test_truncated_model_rejected(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.bin")
            write_random_model(path)
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) - 4)
            with self.assertRaisesRegex(ValueError, "truncated"):
                sl.Transformer(path)


class TokenizerTest(unittest.TestCase):
    def test_encode_upstream(self):
        tok = sl.Tokenizer(TOKENIZER)
        self.assertEqual(tok.encode("Once upon a time"), [1, 403, 407, 261, 378])

    def test_round_trip_and_byte_fallback(self):
        tok = sl.Tokenizer(TOKENIZER)
        for text in ["Lily met Zorbo. \"Hi!\"", "café ☃ 日本", "a\nb"]:
            toks = tok.encode(text)
            self.assertEqual(tok.decode(toks), text)
        self.assertTrue(any(3 <= t < 259 for t in tok.encode("☃")))


class AdapterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.shape = sl.Transformer(MODEL).config
        cls.ref_shape = ref.read_model_shape(MODEL)

    def build(self, variant, kw, rank=3, modules=("wq", "wv"), shape=None, dtype=torch.float32):
        kw = dict(kw)
        cfg = sl.plan(shape or self.shape, variant, rank, modules=modules, **kw)
        return sl.SuperLoRA(cfg, seed=1, dtype=dtype)

    def test_export_matches_numpy_reference(self):
        for variant, kw in VARIANT_CASES:
            with self.subTest(variant=variant, **kw):
                mod = self.build(variant, kw, modules=("wq", "wk", "wv", "w2"))
                randomize(mod)
                want = ref_deltas(mod.export_bytes(), self.ref_shape)
                with torch.no_grad():
                    got = mod.deltas()
                self.assertEqual(list(got), list(want))
                self.assertEqual(sl.agreement(got, want), [])
                self.assertGreater(max(float(v.abs().max()) for v in want.values()), 0.0)

    def test_reference_detects_a_wrong_delta(self):
        mod = self.build("lorta3d", {"ratio": 0.1, "shuffle": 7, "projection": 11})
        randomize(mod)
        want = ref_deltas(mod.export_bytes(), self.ref_shape)
        with torch.no_grad():
            got = mod.deltas()
            got[(2, "wv")] = got[(2, "wv")].clone()
            got[(2, "wv")][3, 5] += 1e-3 * float(got[(2, "wv")].abs().max())
        self.assertTrue(any("layers.2.wv" in p for p in sl.agreement(got, want)))

    def test_exported_header(self):
        mod = self.build("lorta3d", {"ratio": 0.1, "shuffle": 7, "projection": 11})
        meta, tensors = sl.safetensors.loads(mod.export_bytes())
        cfg = json.loads(meta["superlora"])
        self.assertEqual(cfg["projection"], {"kind": "fastfood", "seed": 11})
        self.assertEqual(cfg["shuffle"], {"seed": 7})
        self.assertEqual(cfg["base"], {"dim": 64, "n_layers": 5, "n_heads": 8, "n_kv_heads": 4,
                                       "hidden_dim": 172, "vocab_size": 512})
        self.assertEqual([n for n, _ in tensors], ["g0.k0.f0", "g0.k0.f1", "g0.k0.f2", "g0.k0.core"])
        self.assertEqual(sum(a.size for _, a in tensors), mod.cfg.n_params())

    def test_logits_with_adapter_equal_model_ref(self):
        model = sl.Transformer(MODEL)
        mr = model_ref.Model(MODEL)
        for variant, kw in [("lokr", {}), ("lorta4d", {"ratio": 0.2, "shuffle": 4, "projection": 3})]:
            with self.subTest(variant=variant):
                mod = self.build(variant, kw, modules=("wq", "wv", "w1"))
                randomize(mod)
                with torch.no_grad():
                    for p in mod.parameters():
                        p.mul_(0.3)
                    got = model(torch.tensor([PROMPT]), mod.deltas())[0].double().numpy()
                want = mr.forward(PROMPT, mr.with_adapter(mod.export_bytes()))
                base = mr.forward(PROMPT)
                self.assertTrue(logit_close(got, want, 1e-5), float(np.abs(got - want).max()))
                self.assertFalse(logit_close(base, want, 1e-3))

    def test_gradcheck_every_variant(self):
        tiny = sl.Config(8, 12, 2, 2, 1, 16, 8)
        for variant, kw in VARIANT_CASES:
            kw = dict(kw)
            if isinstance(kw.get("groups"), int):
                kw["groups"] = min(kw["groups"], 5)
            with self.subTest(variant=variant, **kw):
                mod = self.build(variant, kw, rank=2, modules=("wq", "wv", "w2"), shape=tiny,
                                 dtype=torch.float64)
                names = list(mod.params)
                gen = torch.Generator().manual_seed(3)
                inputs = [torch.randn(mod.params[n].shape, generator=gen, dtype=torch.float64,
                                      requires_grad=True) for n in names]

                def f(*xs):
                    return mod.delta_all(dict(zip(names, xs)))

                self.assertTrue(torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5,
                                                         fast_mode=True))

    def test_zero_init_with_live_gradients(self):
        for variant, kw in VARIANT_CASES:
            with self.subTest(variant=variant, **kw):
                mod = self.build(variant, kw, dtype=torch.float64)
                allw = mod.delta_all()
                self.assertEqual(float(allw.abs().max()), 0.0)
                target = torch.randn(allw.shape, generator=torch.Generator().manual_seed(0),
                                     dtype=torch.float64)
                (allw * target).sum().backward()
                self.assertGreater(max(float(p.grad.abs().max()) for p in mod.parameters()), 0.0)
                with torch.no_grad():
                    for p in mod.parameters():
                        p -= 0.1 * p.grad
                    self.assertGreater(float(mod.delta_all().abs().max()), 0.0)
                # after one step no parameter is all zero: the zeroed one had a gradient
                zero = [n for n, p in mod.params.items() if float(p.abs().max()) == 0.0]
                self.assertEqual(zero, [])

    def test_auto_fold_is_the_smallest_near_equal_fold(self):
        for target in [1, 2, 7, 100, 1000, 3072, 4096, 30720, 30721, 123457]:
            for modes in range(1, 7):
                sizes = sl.auto_fold(target, modes)
                self.assertEqual(len(sizes), modes)
                self.assertLessEqual(max(sizes) - min(sizes), 1)
                # brute force over every near-equal tuple (c entries b + 1, the rest b)
                best = min(b ** (modes - c) * (b + 1) ** c
                           for b in range(1, int(target ** (1 / modes)) + 2)
                           for c in range(modes) if b ** (modes - c) * (b + 1) ** c >= target)
                self.assertEqual(math.prod(sizes), best, (target, modes, sizes))

    def test_plan_fold_sizes(self):
        N = 5 * (64 * 64 + 32 * 64)
        cases = [
            ("lora", {}, [[64, 64]]),
            ("lokr", {}, [[8, 8], [8, 8]]),
            ("lotr", {}, [[5, 64, 64]]),
            ("lorta3d", {}, [[32, 31, 31]]),
            ("groupwise2d", {}, [[176, 175]]),
        ]
        for variant, kw, want in cases:
            cfg = sl.plan(self.shape, variant, 2, **kw)
            self.assertEqual([f.n for f in cfg.factors[0]], want, variant)
            self.assertEqual(cfg.N, N)
        for variant in sl.VARIANTS:
            for ratio in [None, 0.01, 0.1, 0.5]:
                cfg = sl.plan(self.shape, variant, 4, ratio=ratio)
                for g, Ng in enumerate(cfg.group_len):
                    P = cfg.code_length(g)
                    if ratio is None:
                        self.assertGreaterEqual(P, Ng)
                        self.assertLessEqual(P, max(2 * Ng, Ng + 65536))
                    else:
                        self.assertLessEqual(abs(P - ratio * Ng), 0.5 * ratio * Ng + 8,
                                             (variant, ratio, P, Ng))

    def test_lokr_first_factor_full_rank(self):
        cfg = sl.plan(self.shape, "lokr", 2, modules=["wq", "w2"])
        for fl in cfg.factors:
            self.assertEqual(fl[0].r, [min(fl[0].n)] * 2)
            self.assertEqual(fl[1].r, [2, 2])

    def test_verify_round_trip_and_tamper(self):
        mod = self.build("lorta3d", {"ratio": 0.1, "shuffle": 7, "projection": 11})
        randomize(mod)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "a.safetensors")
            mod.export(path)
            self.assertLess(sl.verify(path, mod), 1e-5)
            loaded = sl.load(path, self.shape)
            self.assertEqual(loaded.cfg.metadata(), mod.cfg.metadata())
            with open(path, "r+b") as f:
                f.seek(-4, os.SEEK_END)
                f.write(struct.pack("<f", 123.0))
            with self.assertRaisesRegex(ValueError, "disagrees"):
                sl.verify(path, mod)


class TrainTest(unittest.TestCase):
    def test_training_lowers_the_loss_and_exports(self):
        model = sl.Transformer(MODEL)
        tok = sl.Tokenizer(TOKENIZER)
        texts = ["Once upon a time, there was a girl named Zorbo. Zorbo liked to play."] * 8
        stream = train.encode_corpus(tok, texts)
        mod = sl.SuperLoRA(sl.plan(model.config, "lorta3d", 3, ratio=0.2, shuffle=1), seed=0)
        before = train.heldout_loss(model, mod, stream, seq=32)
        train.train(model, mod, stream, 30, lr=3e-2, batch=4, seq=32)
        after = train.heldout_loss(model, mod, stream, seq=32)
        self.assertLess(after, before - 0.5)
        self.assertEqual(train.heldout_loss(model, None, stream, seq=32), before)
        self.assertEqual(data.opening("Once there was Zorbo.", "Zorbo"), "Once there was")


class DataTest(unittest.TestCase):
    def test_rename_heroine(self):
        self.assertEqual(data.rename_heroine("Tim saw Lucy. Lily and Lucy ran.", "Zorbo"),
                         "Tim saw Zorbo. Lily and Zorbo ran.")
        self.assertIsNone(data.rename_heroine("Tim and Ben ran. Lilypad.", "Zorbo"))
        self.assertIsNone(data.opening("Zorbo ran.", "Zorbo"))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.path, self.headers.get("Authorization"), body))
        if body == b"bad":
            status, reply = 422, {"error": {"message": "g0.k0.f0: NaN at element 3", "type": "invalid"}}
        else:
            status, reply = 201, {"id": self.path.split("/v1/adapters/")[1], "params": 7}
        out = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


class CliTest(unittest.TestCase):
    def run_cli(self, argv):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = cli.main(argv)
        return rc, out.getvalue(), err.getvalue()

    def test_params_equals_exported_tensor_elements(self):
        for argv in [["--variant", "lora", "--rank", "4"],
                     ["--variant", "lorta3d", "--rank", "2", "--project", "0.1", "--shuffle"],
                     ["--variant", "lotr", "--rank", "3", "--modules", "wq,wk,w3"]]:
            rc, out, _ = self.run_cli(["params", "--model", MODEL] + argv)
            self.assertEqual(rc, 0)
            args = cli.argparse.Namespace(variant=argv[1], rank=int(argv[3]), groups=None,
                                          project=float(argv[5]) if "--project" in argv else None,
                                          shuffle="--shuffle" in argv, seed=0, layers=None,
                                          modules=argv[5] if "--modules" in argv else "wq,wv",
                                          alpha=1.0)
            mod = sl.SuperLoRA(cli.config_from_args(args, sl.Transformer(MODEL).config))
            _, tensors = sl.safetensors.loads(mod.export_bytes())
            self.assertEqual(int(out), sum(a.size for _, a in tensors))

    def test_params_rejects_bad_groups(self):
        rc, _, err = self.run_cli(["params", "--model", MODEL, "--variant", "lorta3d", "--rank",
                                   "2", "--groups", "999999"])
        self.assertEqual(rc, 1)
        self.assertIn("groups 999999 not in [1, N = 30720]", err)

    def test_upload(self):
        srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        srv.seen = []
        th = threading.Thread(target=srv.serve_forever, daemon=True)
        th.start()
        url = "http://127.0.0.1:%d" % srv.server_address[1]
        try:
            with tempfile.TemporaryDirectory() as d:
                good, bad = os.path.join(d, "a.safetensors"), os.path.join(d, "b.safetensors")
                for path, body in [(good, b"\x00adapter\xff"), (bad, b"bad")]:
                    with open(path, "wb") as f:
                        f.write(body)
                rc, out, _ = self.run_cli(["upload", good, "--url", url, "--name", "acme/style",
                                           "--key", "k1"])
                self.assertEqual(rc, 0)
                self.assertEqual(json.loads(out)["id"], "acme/style")
                self.assertEqual(srv.seen[0], ("/v1/adapters/acme/style", "Bearer k1",
                                               b"\x00adapter\xff"))
                rc, out, err = self.run_cli(["upload", bad, "--url", url, "--name", "acme/x"])
                self.assertEqual(rc, 1)
                self.assertIn("HTTP 422: g0.k0.f0: NaN at element 3", err)
                self.assertIsNone(srv.seen[1][1])
        finally:
            srv.shutdown()
            srv.server_close()
        rc, _, err = self.run_cli(["upload", "/nonexistent.safetensors", "--name", "a/b"])
        self.assertEqual(rc, 1)
        self.assertIn("No such file", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
