#!/usr/bin/python3
"""test_ref.py - self-tests of the numpy SuperLoRA reference and model_ref.

Run: /usr/bin/python3 tests/ref/test_ref.py [--model models/stories260K.bin]
Each algebraic identity is checked against a second, independent path
(scalar Python-int randomness, explicit matrices, np.kron, einsum), every
spec rejection against its crafted adapter, and model_ref against the
upstream llama2.c stories260K outputs.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_fixtures as mf  # noqa: E402
import model_ref as mr  # noqa: E402
import superlora_ref as sl  # noqa: E402

MODEL = os.environ.get("SLORA_MODEL", os.path.join(HERE, "..", "..", "models",
                                                   "stories260K.bin"))

UPSTREAM_LOGITS0 = [-6.22291, 8.40434, -6.22374, -6.22254]
UPSTREAM_GREEDY = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426,
                   338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433,
                   426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266]


def shape260k():
    return sl.ModelShape(64, 172, 5, 8, 4, 512, 512)


def adapter(cfg, tensors, shape=None):
    shape = shape or shape260k()
    full = {"version": 1, "base": sl.base_of(shape)}
    full.update(cfg)
    return sl.build_adapter(full, tensors)


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


class Randomness(unittest.TestCase):
    def test_rnd_vector_matches_scalar(self):
        j = np.array([0, 1, 2, 1000, 2 ** 40, 2 ** 64 - 2], dtype=np.uint64)
        for seed, tag in ((0, 0), (7, 4), (2 ** 53 - 1, 6), (2 ** 64 - 1, 3)):
            got = sl.rnd_array(seed, tag, j)
            for jj, g in zip(j, got):
                self.assertEqual(int(g), sl.rnd(seed, tag, int(jj)))

    def test_mix64_known_splitmix_value(self):
        # SplitMix64 with state 0: first output is mix64(GAMMA) = 0xE220A8397B1DCDAF
        self.assertEqual(sl.mix64(sl.GAMMA), 0xE220A8397B1DCDAF)

    def test_fmix32_known_value(self):
        # MurmurHash3 fmix32(1) = 0x514E28B7
        self.assertEqual(sl.fmix32(1), 0x514E28B7)
        self.assertEqual(sl.fmix32(0), 0)

    def test_perm_is_bijection(self):
        for n in (1, 2, 3, 4, 5, 7, 8, 1000, 4096, 65537):
            for key in (0, 1, 0xDEADBEEFCAFEF00D):
                p = sl.perm_array(key, n)
                self.assertTrue(np.array_equal(np.sort(p), np.arange(n, dtype=np.uint64)),
                                "n=%d key=%d" % (n, key))

    def test_perm_vector_matches_scalar(self):
        for n in (2, 3, 5, 1000, 65537, 1 << 20):
            p = sl.perm_array(99, n, np.arange(0, n, max(1, n // 97), dtype=np.uint64))
            idx = range(0, n, max(1, n // 97))
            self.assertEqual([int(x) for x in p], [sl.perm(99, n, i) for i in idx])

    def test_perm_large_runs_fast_and_is_not_identity(self):
        n = 1 << 20
        p = sl.perm_array(5, n)
        self.assertEqual(len(np.unique(p)), n)
        self.assertLess(int(np.sum(p == np.arange(n, dtype=np.uint64))), 100)


class Factors(unittest.TestCase):
    def test_cp_m2_is_matmul(self):
        rng = np.random.default_rng(1)
        a0, a1 = rand(rng, 7, 3), rand(rng, 5, 3)
        t = sl.factor_tensor({"A": [a0, a1], "core": None})
        np.testing.assert_allclose(t, a0.astype(np.float64) @ a1.T.astype(np.float64),
                                   rtol=1e-12)

    def test_cp_m3_is_einsum(self):
        rng = np.random.default_rng(2)
        a = [rand(rng, n, 4) for n in (3, 5, 2)]
        t = sl.factor_tensor({"A": a, "core": None})
        np.testing.assert_allclose(t, np.einsum("ir,jr,kr->ijk", *a), rtol=1e-5)

    def test_tucker_is_einsum(self):
        rng = np.random.default_rng(3)
        a = [rand(rng, 4, 2), rand(rng, 3, 3), rand(rng, 5, 4)]
        core = rand(rng, 2, 3, 4)
        t = sl.factor_tensor({"A": a, "core": core})
        np.testing.assert_allclose(t, np.einsum("abc,ia,jb,kc->ijk", core, *a), rtol=1e-5,
                                   atol=1e-6)

    def test_kronecker_is_np_kron(self):
        rng = np.random.default_rng(4)
        fs = [{"A": [rand(rng, 2, 2), rand(rng, 3, 2)], "core": None},
              {"A": [rand(rng, 4, 1), rand(rng, 2, 1)], "core": None},
              {"A": [rand(rng, 3, 2), rand(rng, 2, 3)], "core": rand(rng, 2, 3)}]
        t = [sl.factor_tensor(f) for f in fs]
        np.testing.assert_allclose(sl.group_code(fs), np.kron(np.kron(t[0], t[1]), t[2]).ravel())

    def test_kronecker_3d_mixed_radix(self):
        rng = np.random.default_rng(5)
        fs = [{"A": [rand(rng, n, 1) for n in (2, 3, 2)], "core": None},
              {"A": [rand(rng, n, 1) for n in (3, 1, 2)], "core": None}]
        t0, t1 = (sl.factor_tensor(f) for f in fs)
        code = sl.group_code(fs).reshape(6, 3, 4)
        for i in np.ndindex(6, 3, 4):
            k0 = tuple(i[m] // t1.shape[m] for m in range(3))
            k1 = tuple(i[m] % t1.shape[m] for m in range(3))
            self.assertAlmostEqual(code[i], t0[k0] * t1[k1], places=12)


class Fastfood(unittest.TestCase):
    def test_fwht_is_sylvester_hadamard(self):
        h = np.array([[1.0]])
        for _ in range(6):
            h = np.kron(np.array([[1.0, 1.0], [1.0, -1.0]]), h)
            x = np.random.default_rng(h.shape[0]).standard_normal(h.shape[0])
            np.testing.assert_allclose(sl.fwht(x), h @ x, atol=1e-12)

    def test_fastfood_matches_explicit_matrix(self):
        """Second path: dense matrices built with scalar Python-int rnd/perm."""
        P, D, seed, g = 5, 12, 31, 2
        L = 16
        sg = sl.rnd(seed, 1, g)
        b = [-1.0 if sl.rnd(sg, 2, j) >> 63 else 1.0 for j in range(L)]
        gd = []
        for j in range(L):
            u = sl.rnd(sg, 3, j)
            gd.append(float((u & 0xFFFF) + ((u >> 16) & 0xFFFF) + ((u >> 32) & 0xFFFF)
                            + (u >> 48) - 131070))
        key = sl.rnd(sg, 5, 0)
        Pi = np.zeros((L, L))
        for j in range(L):
            Pi[j, sl.perm(key, L, j)] = 1.0
        H = np.array([[(-1.0) ** bin(i & j).count("1") for j in range(L)] for i in range(L)])
        F = H @ np.diag(gd) @ Pi @ H @ np.diag(b)
        F = F[:D, :P] / (math.sqrt(sum(x * x for x in gd)) * math.sqrt(D))
        x = np.random.default_rng(0).standard_normal(P)
        np.testing.assert_allclose(sl.fastfood(x, D, seed, g), F @ x, rtol=1e-12, atol=1e-12)

    def test_columns_have_norm_near_one(self):
        for P, D in ((100, 1000), (3000, 20000), (512, 30720)):
            norms = []
            for i in range(0, P, max(1, P // 8)):
                x = np.zeros(P)
                x[i] = 1.0
                norms.append(np.linalg.norm(sl.fastfood(x, D, 17, 3)))
            self.assertLess(abs(np.mean(norms) - 1.0), 0.05, (P, D, norms))
            self.assertLess(max(abs(n - 1.0) for n in norms), 0.15, (P, D, norms))

    def test_columns_exact_norm_when_d_is_l(self):
        x = np.zeros(300)
        x[7] = 1.0
        self.assertAlmostEqual(np.linalg.norm(sl.fastfood(x, 1024, 4, 0)), 1.0, places=12)

    def test_gd_is_centred_irwin_hall(self):
        gd = sl.fastfood_gd(sl.rnd(1, 1, 0), 1 << 16)
        self.assertLessEqual(int(gd.max()), 131070)
        self.assertGreaterEqual(int(gd.min()), -131070)
        self.assertLess(abs(float(gd.mean())), 1000.0)
        self.assertLess(abs(float(gd.std()) / (65536 * math.sqrt(4 / 12.0)) - 1.0), 0.02)


class Generation(unittest.TestCase):
    def test_lora_is_alpha_b_at_a(self):
        rng = np.random.default_rng(6)
        B, A = rand(rng, 64, 4), rand(rng, 172, 4)
        data = adapter({"modules": ["down_proj"], "layers": [3], "alpha": 0.25},
                       [("g0.k0.f0", B, "F32"), ("g0.k0.f1", A, "F32")])
        _, dws = sl.load_and_generate(data, shape260k())
        self.assertEqual([(l, m, dw.shape) for l, m, dw in dws], [(3, "w2", (64, 172))])
        np.testing.assert_allclose(dws[0][2], 0.25 * (B.astype(np.float64) @ A.T),
                                   rtol=1e-6, atol=1e-6)

    def test_target_order_and_group_split(self):
        cfg = {"version": 1, "base": sl.base_of(shape260k()), "modules": ["wv", "q_proj"],
               "layers": [1, 3], "order": "module", "groups": 5}
        c = sl.parse_config(json.dumps(cfg), shape260k())
        self.assertEqual(c["targets"], [(1, "wv"), (3, "wv"), (1, "wq"), (3, "wq")])
        self.assertEqual(c["N"], 2 * 2048 + 2 * 4096)
        self.assertEqual(c["group_len"], [2458, 2458, 2458, 2457, 2457])
        cfg.update(order="layer", groups="layer")
        c = sl.parse_config(json.dumps(cfg), shape260k())
        self.assertEqual(c["targets"], [(1, "wv"), (1, "wq"), (3, "wv"), (3, "wq")])
        self.assertEqual(c["group_len"], [6144, 6144])

    def test_fold_truncates_and_shuffle_gathers(self):
        rng = np.random.default_rng(7)
        f0, f1 = rand(rng, 70, 2), rand(rng, 60, 2)  # P = 4200 > N = 4096
        t = [("g0.k0.f0", f0, "F32"), ("g0.k0.f1", f1, "F32")]
        plain = sl.load_and_generate(adapter({"modules": ["wo"], "layers": [0]}, t),
                                     shape260k())[1][0][2].ravel()
        np.testing.assert_allclose(plain, (f0.astype(np.float64) @ f1.T).ravel()[:4096],
                                   rtol=1e-6, atol=1e-6)
        shuf = sl.load_and_generate(adapter({"modules": ["wo"], "layers": [0],
                                             "shuffle": {"seed": 9}}, t),
                                    shape260k())[1][0][2].ravel()
        key = sl.rnd(9, 4, 0)
        for i in (0, 1, 17, 4095):
            self.assertEqual(shuf[i], plain[sl.perm(key, 4096, i)])

    def test_dtype_round_trip(self):
        x = np.array([[1.0, -2.5, 1e-3, 65504.0, 3.14159]], np.float32)
        self.assertTrue(np.array_equal(sl.to_dtype(x, "F32"), x))
        np.testing.assert_allclose(sl.to_dtype(x, "F16"), x, rtol=1e-3)
        np.testing.assert_allclose(sl.to_dtype(x, "BF16"), x, rtol=4e-3)
        # BF16 is the top half of the float32 bits
        self.assertEqual(sl.to_dtype(np.array([[1.0 + 2 ** -9]], np.float32), "BF16")[0, 0], 1.0)

    def test_fixtures_load_and_have_magnitude(self):
        with open(os.path.join(mf.DEFAULT_DIR, "manifest.json")) as f:
            manifest = json.load(f)
        self.assertEqual(len(manifest), len(mf.FIXTURES))
        model = mr.Model(MODEL)
        for name, ent in manifest.items():
            with open(os.path.join(mf.DEFAULT_DIR, ent["file"]), "rb") as f:
                _, dws = sl.load_and_generate(f.read(), model.shape)
            r = np.linalg.norm(np.concatenate([dw.ravel() for _, _, dw in dws])) / np.linalg.norm(
                np.concatenate([model.w[m][l].ravel() for l, m, _ in dws]))
            self.assertTrue(0.01 < r < 0.2, (name, r))

    def test_fixtures_are_reproducible(self):
        model = mr.Model(MODEL)
        for name, desc, cfg, fn, dtype, opts in mf.FIXTURES:
            with open(os.path.join(mf.DEFAULT_DIR, name + ".safetensors"), "rb") as f:
                self.assertEqual(f.read(), mf.build_fixture(model, name, cfg, fn, dtype, opts))


class Rejections(unittest.TestCase):
    def test_every_rule(self):
        shape = shape260k()
        cases = mf.bad_cases(shape)
        self.assertGreater(len(cases), 90)
        for name, data, frag in cases:
            with self.subTest(name=name):
                with self.assertRaises(sl.AdapterError) as cm:
                    sl.load_and_generate(data, shape)
                self.assertIn(frag, str(cm.exception))

    def test_good_base_case_is_accepted(self):
        rng = np.random.default_rng(8)
        data = adapter({"modules": ["wq"], "layers": [0]},
                       [("g0.k0.f0", rand(rng, 64, 2), "F32"), ("g0.k0.f1", rand(rng, 64, 2),
                                                                 "F32")])
        sl.load_and_generate(data, shape260k())

    def test_param_limit_is_configurable(self):
        rng = np.random.default_rng(9)
        data = adapter({"modules": ["wq"], "layers": [0]},
                       [("g0.k0.f0", rand(rng, 64, 2), "F32"), ("g0.k0.f1", rand(rng, 64, 2),
                                                                 "F32")])
        sl.load_and_generate(data, shape260k(), max_params=256)
        with self.assertRaisesRegex(sl.AdapterError, "parameter count 256 over the maximum 255"):
            sl.load_and_generate(data, shape260k(), max_params=255)


class Model(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = mr.Model(MODEL)

    def test_upstream_logits_after_bos(self):
        lg = self.model.forward([1])[0]
        np.testing.assert_allclose(lg[:4], UPSTREAM_LOGITS0, atol=1e-5)
        self.assertEqual(int(np.argmax(lg)), 403)
        self.assertAlmostEqual(float(lg[403]), 17.0235, places=4)

    def test_upstream_greedy(self):
        self.assertEqual(self.model.greedy([1], len(UPSTREAM_GREEDY)), UPSTREAM_GREEDY)

    def test_unshared_classifier(self):
        """A copy with negative vocab_size and wcls appended: same logits
        when wcls equals the embedding, different when scaled."""
        with open(MODEL, "rb") as f:
            data = bytearray(f.read())
        data[20:24] = (-512).to_bytes(4, "little", signed=True)
        emb = np.frombuffer(bytes(data[28:28 + 512 * 64 * 4]), "<f4")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "unshared.bin")
            with open(path, "wb") as f:
                f.write(bytes(data) + (2 * emb).astype("<f4").tobytes())
            m = mr.Model(path)
        self.assertFalse(m.shared)
        self.assertEqual(m.trailing, 0)
        np.testing.assert_allclose(m.forward([1, 403]), 2 * self.model.forward([1, 403]),
                                   rtol=1e-12, atol=1e-9)

    def test_cli_with_adapter_changes_logits(self):
        fx = os.path.join(mf.DEFAULT_DIR, "lora_wq_wv.safetensors")
        out = subprocess.run([sys.executable, os.path.join(HERE, "model_ref.py"), "--model",
                              MODEL, "--tokens", "1,403", "--adapter", fx],
                             check=True, capture_output=True, text=True).stdout
        lg = np.array(json.loads(out)["logits"])
        base = self.model.forward([1, 403])
        self.assertEqual(lg.shape, (2, 512))
        self.assertGreater(np.abs(lg - base).max(), 1e-3)

    def test_mix_is_the_weighted_sum_of_deltas(self):
        """W' of a mix: each target is W + sum_i w_i dW_i (float64), the
        weight-1 mix of one adapter is the single adapter, weights add."""
        fa = sl._read(os.path.join(mf.DEFAULT_DIR, "lora_wq_wv.safetensors"))
        fb = sl._read(os.path.join(mf.DEFAULT_DIR, "lokr.safetensors"))
        w = self.model.with_adapters([(fa, 0.7), (fb, -0.3)])
        _, da = sl.load_and_generate(fa, self.model.shape)
        _, db = sl.load_and_generate(fb, self.model.shape)
        want = {k: v.copy() for k, v in self.model.w.items()}
        for l, m, dw in da:
            want[m][l] += 0.7 * dw.astype(np.float64)
        for l, m, dw in db:
            want[m][l] -= 0.3 * dw.astype(np.float64)
        for m in want:
            np.testing.assert_allclose(w[m], want[m], rtol=0, atol=1e-12)
        one = self.model.with_adapters([(fa, 1.0)])
        single = self.model.with_adapter(fa)
        for m in one:
            np.testing.assert_allclose(one[m], single[m], rtol=0, atol=1e-6)
        halves = self.model.with_adapters([(fa, 0.5), (fa, 0.5)])
        for m in one:
            np.testing.assert_allclose(halves[m], one[m], rtol=0, atol=1e-12)
        out = subprocess.run([sys.executable, os.path.join(HERE, "model_ref.py"), "--model",
                              MODEL, "--tokens", "1,403", "--adapter",
                              os.path.join(mf.DEFAULT_DIR, "lora_wq_wv.safetensors"),
                              "--weight", "0.7", "--adapter",
                              os.path.join(mf.DEFAULT_DIR, "lokr.safetensors"), "--weight",
                              "-0.3"], check=True, capture_output=True, text=True).stdout
        np.testing.assert_allclose(np.array(json.loads(out)["logits"]),
                                   self.model.forward([1, 403], w), rtol=0, atol=1e-6)


class Cli(unittest.TestCase):
    def test_deltas_and_check(self):
        fx = os.path.join(mf.DEFAULT_DIR, "proj_shuffle_tucker4d.safetensors")
        ref = os.path.join(HERE, "superlora_ref.py")
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "d.safetensors")
            subprocess.run([sys.executable, ref, "deltas", "--model", MODEL, fx, "-o", out],
                           check=True)
            with open(out, "rb") as f:
                _, entries, buf = sl.read_safetensors(f.read())
            names = [e[0] for e in entries]
            self.assertEqual(names[:3], ["layers.1.wq", "layers.1.wk", "layers.1.wv"])
            self.assertEqual(len(names), 14)
            self.assertEqual(dict((e[0], e[2]) for e in entries)["layers.2.w2"], [64, 172])
            r = subprocess.run([sys.executable, ref, "compare", out, out], capture_output=True,
                               text=True)
            self.assertEqual((r.returncode, r.stdout), (0, "agree\n"))
            _, dws = sl.load_and_generate(sl._read(fx), shape260k())
            ref_list = [("layers.%d.%s" % (l, m), dw) for l, m, dw in dws]
            self.assertEqual(sl.agree(ref_list, ref_list), [])
            near = [(n, a * np.float32(1 + 5e-6)) for n, a in ref_list]
            self.assertEqual(sl.agree(near, ref_list), [])
            off = [(n, a.copy()) for n, a in ref_list]
            off[3][1][2, 5] += 2e-5 * max(float(np.abs(a).max()) for _, a in ref_list)
            self.assertIn("layers.1.wo: max entry error", sl.agree(off, ref_list)[0])
            r = subprocess.run([sys.executable, ref, "check", fx, "--model", MODEL],
                               capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stdout), (0, "ok\n"))
            bad = os.path.join(d, "bad.safetensors")
            with open(bad, "wb") as f:
                f.write(b"\0\0")
            r = subprocess.run([sys.executable, ref, "check", bad, "--model", MODEL],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("8 bytes", r.stdout)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--model":
        MODEL = sys.argv[2]
        del sys.argv[1:3]
    unittest.main(verbosity=1)
