/* check_forward.c - the forward pass: stories260K's published logits, one
 * batch == token by token, any thread count == one thread, .bin == GGUF
 * (ours and llama.cpp's), mixed weight sets in one batch == each alone
 * == the merged W + dW, per-request mixes (several scaled terms, dense and
 * factored) == the merged W + sum_k s_k dW_k, and product counts proving
 * that a mixed batch runs one base product per matrix plus one per
 * distinct delta.
 *
 * Tolerance rule (project-wide): max|a - b| <= tol * max|b|. */
#include <slora/cli.h>
#include <slora/error.h>
#include <slora/forward.h>
#include <slora/gguf.h>
#include <slora/model.h>
#include <slora/model_write.h>
#include <slora/weights.h>

#include "testutil.h"

#include <check.h>
#include <math.h>

#define STORIES_BIN "models/stories260K.bin"
#define LLAMACPP_GGUF "../shared/models/stories260K.gguf"
/* "Once upon a time, there was a little girl named Lily." */
static const int story[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421};
#define N_STORY ((int)(sizeof(story) / sizeof(story[0])))

/* Logits (n, vocab) of tokens prefilled in one batch. */
static float *prefill_threads(const struct slora_model *m, const struct slora_weights *ws,
                              const int *tokens, int n, int threads)
{
    int vocab = m->cfg.shape.vocab_size;
    float *logits = malloc((size_t)n * vocab * sizeof(float));
    struct slora_fwd_row *rows = calloc((size_t)n, sizeof(*rows));
    struct slora_kv *kv = slora_kv_new(m);
    struct slora_fwd *f = slora_fwd_new(m, n, threads);
    ck_assert(logits && rows && kv && f);
    slora_fwd_set_min_share(f, 0); /* split even these tiny steps */
    for (int i = 0; i < n; i++)
        rows[i] = (struct slora_fwd_row){tokens[i], i, kv, ws, logits + (size_t)i * vocab};
    ck_assert_int_eq(slora_fwd_run(f, rows, n), 0);
    slora_fwd_free(f);
    slora_kv_free(kv);
    free(rows);
    return logits;
}

static float *prefill(const struct slora_model *m, const struct slora_weights *ws,
                      const int *tokens, int n)
{
    return prefill_threads(m, ws, tokens, n, 1);
}

static float *prefill_base(const struct slora_model *m, const int *tokens, int n)
{
    struct slora_weights ws;
    ck_assert_int_eq(slora_weights_init(&ws, m, 0), 0);
    float *logits = prefill(m, &ws, tokens, n);
    slora_weights_deinit(&ws);
    return logits;
}

/* Upstream llama2.c: stories260K after BOS (run.c, published in its README/tests). */
START_TEST(stories_published)
{
    const char *paths[] = {STORIES_BIN, LLAMACPP_GGUF};
    static const float want[4] = {-6.22291f, 8.40434f, -6.22374f, -6.22254f};
    struct slora_model *m = test_load_model(paths[_i]);
    float *l = prefill_base(m, story, 1);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(fabsf(l[i] - want[i]) <= 1e-4f, "%s logit %d: %.6f", paths[_i], i, l[i]);
    int best = 0;
    for (int i = 1; i < m->cfg.shape.vocab_size; i++)
        if (l[i] > l[best])
            best = i;
    ck_assert_int_eq(best, 403);
    ck_assert_msg(fabsf(l[best] - 17.0235f) <= 1e-4f, "top logit %.6f", l[best]);
    free(l);
    slora_model_free(m);
}
END_TEST

/* 100 positions: more than one classifier chunk of 64 rows. */
#define N_LONG 100

START_TEST(prefill_equals_stepwise)
{
    struct slora_model *m = test_load_model(STORIES_BIN);
    int vocab = m->cfg.shape.vocab_size;
    int tokens[N_LONG];
    for (int i = 0; i < N_LONG; i++)
        tokens[i] = i < N_STORY ? story[i] : (i * 37) % vocab;
    float *batch = prefill_base(m, tokens, N_LONG);
    struct slora_weights ws;
    ck_assert_int_eq(slora_weights_init(&ws, m, 0), 0);
    struct slora_kv *kv = slora_kv_new(m);
    /* cache rows are read by 64-byte loads: they start on cache lines */
    ck_assert_uint_eq((uintptr_t)kv->k % 64, 0);
    ck_assert_uint_eq((uintptr_t)kv->v % 64, 0);
    struct slora_fwd *f = slora_fwd_new(m, 1, 1);
    float *step = malloc((size_t)vocab * sizeof(float));
    for (int i = 0; i < N_LONG; i++) {
        struct slora_fwd_row row = {tokens[i], i, kv, &ws, step};
        ck_assert_int_eq(slora_fwd_run(f, &row, 1), 0);
        double d = test_rel_diff(batch + (size_t)i * vocab, step, (size_t)vocab);
        ck_assert_msg(d <= 1e-5, "position %d: %g", i, d);
        /* greedy continuation of the prompt follows the published story */
        if (i == N_STORY - 1) {
            int best = 0;
            for (int j = 1; j < vocab; j++)
                if (step[j] > step[best])
                    best = j;
            ck_assert_int_eq(best, 395);
        }
    }
    free(step);
    free(batch);
    slora_fwd_free(f);
    slora_kv_free(kv);
    slora_weights_deinit(&ws);
    slora_model_free(m);
}
END_TEST

/* .bin, our GGUF (F32) and llama.cpp's GGUF: tol 1e-6; F16 reported. */
START_TEST(formats_agree)
{
    struct slora_model *mb = test_load_model(STORIES_BIN);
    int vocab = mb->cfg.shape.vocab_size;
    size_t n = (size_t)N_STORY * vocab;
    char *g32 = test_tmp_path("g32"), *g16 = test_tmp_path("g16");
    char diag[256];
    struct slora_model_write_opts o32 = {.version = 3, .dtype = SLORA_DTYPE_F32};
    struct slora_model_write_opts o16 = {.version = 2, .dtype = SLORA_DTYPE_F16};
    ck_assert_int_eq(slora_model_write_gguf(mb, &o32, g32, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_model_write_gguf(mb, &o16, g16, diag, sizeof(diag)), 0);
    float *ref = prefill_base(mb, story, N_STORY);
    const char *paths[] = {g32, LLAMACPP_GGUF, g16};
    for (int p = 0; p < 3; p++) {
        struct slora_model *m = test_load_model(paths[p]);
        float *l = prefill_base(m, story, N_STORY);
        double d = test_rel_diff(l, ref, n);
        if (p < 2)
            ck_assert_msg(d <= 1e-6, "%s: %g", paths[p], d);
        else
            fprintf(stderr, "forward: F16 GGUF vs .bin logits: max|a-b|/max|b| = %.3g\n", d);
        ck_assert_msg(d <= 1e-2, "%s: %g", paths[p], d);
        free(l);
        slora_model_free(m);
    }
    free(ref);
    unlink(g32);
    unlink(g16);
    free(g32);
    free(g16);
    slora_model_free(mb);
}
END_TEST

/* A small GQA model with an unshared classifier (generated here), its base
 * weight set ws0, and ws1: dense deltas on layer 0 wq and layer 1 w2; wsm,
 * a weight set of the same model with W + dW written into its matrices
 * (the merged model the deltas must reproduce). */
struct two_sets {
    char *path;
    struct slora_model *m;
    struct slora_weights ws0;
    struct slora_weights ws1;
    struct slora_delta d[2];
    float *dq; /* (dim, dim) */
    float *d2; /* (dim, hidden_dim) */
};

static void two_sets_init(struct two_sets *t)
{
    t->path = test_tmp_path("fwd");
    char *argv[] = {"gen-model", "--dim",     "32",  "--hidden",   "48", "--layers",
                    "2",         "--heads",   "4",   "--kv-heads", "2",  "--vocab",
                    "40",        "--seq-len", "16",  "--seed",     "3",  "-o",
                    t->path,     "--format",  "bin", NULL};
    ck_assert_int_eq(slora_cmd_gen_model(21, argv), 0);
    t->m = test_load_model(t->path);
    const struct slora_model *m = t->m;
    int64_t r, c;
    ck_assert_int_eq(slora_weights_init(&t->ws0, m, 0), 0);
    ck_assert_int_eq(slora_weights_init(&t->ws1, m, 1), 0);
    t->ws1.id = 1;
    slora_arch_module_dims(&m->cfg.shape, SLORA_MOD_WQ, &r, &c);
    t->dq = malloc((size_t)(r * c) * sizeof(float));
    for (int64_t i = 0; i < r * c; i++)
        t->dq[i] = 0.05f * (float)((i % 7) - 3);
    t->d[0].kind = SLORA_DELTA_DENSE;
    ck_assert(slora_tensor_init(&t->d[0].dw, SLORA_DTYPE_F32, t->dq, r, c));
    slora_arch_module_dims(&m->cfg.shape, SLORA_MOD_W2, &r, &c);
    t->d2 = malloc((size_t)(r * c) * sizeof(float));
    const float *w2 = slora_model_matrix(m, 1, SLORA_MOD_W2)->data;
    for (int64_t i = 0; i < r * c; i++)
        t->d2[i] = w2[i] * 0.5f;
    t->d[1].kind = SLORA_DELTA_DENSE;
    ck_assert(slora_tensor_init(&t->d[1].dw, SLORA_DTYPE_F32, t->d2, r, c));
    slora_weights_set(&t->ws1, 0, 0, SLORA_MOD_WQ, &t->d[0]);
    slora_weights_set(&t->ws1, 0, 1, SLORA_MOD_W2, &t->d[1]);
}

static void two_sets_deinit(struct two_sets *t)
{
    slora_weights_deinit(&t->ws0);
    slora_weights_deinit(&t->ws1);
    free(t->dq);
    free(t->d2);
    slora_model_free(t->m);
    unlink(t->path);
    free(t->path);
}

/* The deltas of ws1 give the logits of the merged model W + dW. */
START_TEST(deltas_equal_merged)
{
    struct two_sets t;
    two_sets_init(&t);
    struct slora_model *m = t.m;
    const int toks[5] = {1, 5, 9, 30, 2};
    float *adapted = prefill(m, &t.ws1, toks, 5);
    /* merge in place into the (private, writable) mapping's copies */
    int64_t r, c;
    slora_arch_module_dims(&m->cfg.shape, SLORA_MOD_WQ, &r, &c);
    float *wq = malloc((size_t)(r * c) * sizeof(float));
    memcpy(wq, slora_model_matrix(m, 0, SLORA_MOD_WQ)->data, (size_t)(r * c) * sizeof(float));
    for (int64_t i = 0; i < r * c; i++)
        wq[i] += t.dq[i];
    slora_arch_module_dims(&m->cfg.shape, SLORA_MOD_W2, &r, &c);
    float *w2 = malloc((size_t)(r * c) * sizeof(float));
    memcpy(w2, slora_model_matrix(m, 1, SLORA_MOD_W2)->data, (size_t)(r * c) * sizeof(float));
    for (int64_t i = 0; i < r * c; i++)
        w2[i] += t.d2[i];
    struct slora_tensor saved_q = m->layers[0].w[SLORA_MOD_WQ], saved_2 = m->layers[1].w[SLORA_MOD_W2];
    m->layers[0].w[SLORA_MOD_WQ].data = wq;
    m->layers[1].w[SLORA_MOD_W2].data = w2;
    float *merged = prefill(m, &t.ws0, toks, 5);
    m->layers[0].w[SLORA_MOD_WQ] = saved_q;
    m->layers[1].w[SLORA_MOD_W2] = saved_2;
    double d = test_rel_diff(adapted, merged, (size_t)5 * m->cfg.shape.vocab_size);
    ck_assert_msg(d <= 1e-5, "W x + dW x vs (W + dW) x: %g", d);
    free(wq);
    free(w2);
    free(adapted);
    free(merged);
    two_sets_deinit(&t);
}
END_TEST

/* Splitting every step across threads changes no logit beyond rounding. */
START_TEST(threads_agree)
{
    struct two_sets t;
    two_sets_init(&t);
    const int toks[7] = {1, 5, 9, 30, 2, 17, 33};
    float *one = prefill_threads(t.m, &t.ws1, toks, 7, 1);
    for (int threads = 2; threads <= 3; threads++) {
        float *many = prefill_threads(t.m, &t.ws1, toks, 7, threads);
        double d = test_rel_diff(many, one, (size_t)7 * t.m->cfg.shape.vocab_size);
        ck_assert_msg(d <= 1e-6, "%d threads: %g", threads, d);
        free(many);
    }
    free(one);
    two_sets_deinit(&t);
}
END_TEST

/* Products large enough to be claimed in many chunks (a (1024, 512) F32
 * matrix is 8 claims on 2 threads), with biases (qwen2) and deltas after
 * the claimed base product: a LoRA on wq, dense deltas on wk (biased) and
 * w1. On 1, 2 and 3 threads the adapted forward equals the merged model's
 * (W + dW) on one thread, and the threads agree with each other. */
START_TEST(claimed_chunks_agree)
{
    char *path = test_tmp_path("claim");
    char *gen[] = {"gen-model", "--dim",    "512", "--hidden",  "1024", "--layers", "1",
                   "--heads",   "8",        "--kv-heads", "4", "--vocab", "1024", "--seq-len",
                   "16",        "--seed",   "9",   "--arch",    "qwen2", "-o",     path,
                   "--format",  "gguf3",    NULL};
    ck_assert_int_eq(slora_cmd_gen_model(23, gen), 0);
    struct slora_model *m = test_load_model(path);
    ck_assert_ptr_nonnull(m->layers[0].bias[1]);
    int vocab = m->cfg.shape.vocab_size;
    enum { R = 4 };
    struct slora_weights ws;
    ck_assert_int_eq(slora_weights_init(&ws, m, 1), 0);
    struct slora_delta d[3] = {{.kind = SLORA_DELTA_LORA},
                               {.kind = SLORA_DELTA_DENSE},
                               {.kind = SLORA_DELTA_DENSE}};
    static const enum slora_module mods[3] = {SLORA_MOD_WQ, SLORA_MOD_WK, SLORA_MOD_W1};
    float *dw[3], *merged[3];
    struct slora_tensor saved[3];
    for (int k = 0; k < 3; k++) {
        const struct slora_tensor *w = slora_model_matrix(m, 0, mods[k]);
        size_t n = (size_t)(w->rows * w->cols);
        dw[k] = malloc(n * sizeof(float));
        merged[k] = malloc(n * sizeof(float));
        ck_assert(dw[k] && merged[k]);
        for (size_t i = 0; i < n; i++)
            dw[k][i] = 0.01f * (float)((int)((i * 2654435761u) % 11) - 5);
        if (k == 0) {
            /* dW = B A from A (R, cols) and B^T (R, rows) */
            float *a = malloc((size_t)(R * w->cols) * sizeof(float));
            float *bt = malloc((size_t)(R * w->rows) * sizeof(float));
            ck_assert(a && bt);
            for (int64_t i = 0; i < R * w->cols; i++)
                a[i] = 0.1f * (float)((i % 9) - 4);
            for (int64_t i = 0; i < R * w->rows; i++)
                bt[i] = 0.05f * (float)((i % 7) - 3);
            for (int64_t i = 0; i < w->rows; i++)
                for (int64_t j = 0; j < w->cols; j++) {
                    float v = 0;
                    for (int r = 0; r < R; r++)
                        v += bt[r * w->rows + i] * a[r * w->cols + j];
                    dw[k][i * w->cols + j] = v;
                }
            ck_assert(slora_tensor_init(&d[k].a, SLORA_DTYPE_F32, a, R, w->cols));
            ck_assert(slora_tensor_init(&d[k].bt, SLORA_DTYPE_F32, bt, R, w->rows));
        } else {
            ck_assert(slora_tensor_init(&d[k].dw, SLORA_DTYPE_F32, dw[k], w->rows, w->cols));
        }
        for (size_t i = 0; i < n; i++)
            merged[k][i] = ((const float *)w->data)[i] + dw[k][i];
        slora_weights_set(&ws, 0, 0, mods[k], &d[k]);
    }
    const int toks[5] = {1, 500, 9, 1000, 2};
    float *adapted[4];
    for (int threads = 1; threads <= 3; threads++)
        adapted[threads] = prefill_threads(m, &ws, toks, 5, threads);
    for (int k = 0; k < 3; k++) {
        saved[k] = m->layers[0].w[mods[k]];
        m->layers[0].w[mods[k]].data = merged[k];
    }
    struct slora_weights base;
    ck_assert_int_eq(slora_weights_init(&base, m, 0), 0);
    float *want = prefill_threads(m, &base, toks, 5, 1);
    for (int k = 0; k < 3; k++)
        m->layers[0].w[mods[k]] = saved[k];
    for (int threads = 1; threads <= 3; threads++) {
        double d1 = test_rel_diff(adapted[threads], want, (size_t)5 * vocab);
        ck_assert_msg(d1 <= 1e-5, "%d threads vs merged: %g", threads, d1);
        double dt = test_rel_diff(adapted[threads], adapted[1], (size_t)5 * vocab);
        ck_assert_msg(dt <= 1e-6, "%d threads vs 1: %g", threads, dt);
    }
    for (int threads = 1; threads <= 3; threads++)
        free(adapted[threads]);
    free(want);
    for (int k = 0; k < 3; k++) {
        free(dw[k]);
        free(merged[k]);
    }
    free((void *)d[0].a.data);
    free((void *)d[0].bt.data);
    slora_weights_deinit(&base);
    slora_weights_deinit(&ws);
    slora_model_free(m);
    unlink(path);
    free(path);
}
END_TEST

/* A K-quant mix (Q4_K_M of a GQA model): 1, 2 and 3 threads (3 is more
 * threads than key/value heads: the other attention split), the batch and
 * token by token on 2 threads, all agree. */
START_TEST(quantized_threads_agree)
{
    char *f32 = test_tmp_path("qf32"), *q4 = test_tmp_path("qq4");
    char *gen[] = {"gen-model", "--dim",    "256", "--hidden", "512", "--layers", "2",
                   "--heads",   "4",        "--kv-heads", "2", "--vocab",  "64",  "--seq-len",
                   "16",        "--seed",   "5",   "-o",       f32, "--format", "gguf3", NULL};
    ck_assert_int_eq(slora_cmd_gen_model(21, gen), 0);
    char *quant[] = {"quantize", f32, q4, "--type", "q4_k_m", NULL};
    ck_assert_int_eq(slora_cmd_quantize(5, quant), 0);
    struct slora_model *m = test_load_model(q4);
    ck_assert(slora_model_is_quantized(m));
    int vocab = m->cfg.shape.vocab_size;
    const int toks[7] = {1, 5, 9, 30, 2, 17, 33};
    struct slora_weights ws;
    ck_assert_int_eq(slora_weights_init(&ws, m, 0), 0);
    float *one = prefill_threads(m, &ws, toks, 7, 1);
    for (int threads = 2; threads <= 3; threads++) {
        float *many = prefill_threads(m, &ws, toks, 7, threads);
        double d = test_rel_diff(many, one, (size_t)7 * vocab);
        ck_assert_msg(d <= 1e-6, "%d threads: %g", threads, d);
        free(many);
    }
    struct slora_kv *kv = slora_kv_new(m);
    struct slora_fwd *f = slora_fwd_new(m, 1, 2);
    float *step = malloc((size_t)vocab * sizeof(float));
    for (int i = 0; i < 7; i++) {
        struct slora_fwd_row row = {toks[i], i, kv, &ws, step};
        ck_assert_int_eq(slora_fwd_run(f, &row, 1), 0);
        double d = test_rel_diff(step, one + (size_t)i * vocab, (size_t)vocab);
        ck_assert_msg(d <= 1e-5, "position %d: %g", i, d);
    }
    free(step);
    slora_fwd_free(f);
    slora_kv_free(kv);
    free(one);
    slora_weights_deinit(&ws);
    slora_model_free(m);
    unlink(f32);
    unlink(q4);
    free(f32);
    free(q4);
}
END_TEST

START_TEST(mixed_batch_equals_alone)
{
    struct two_sets t;
    two_sets_init(&t);
    const struct slora_model *m = t.m;
    const struct slora_weights *ws0 = &t.ws0, *ws1 = &t.ws1;
    int vocab = m->cfg.shape.vocab_size;
    const int a[4] = {1, 5, 9, 30}, b[4] = {1, 22, 7, 39};
    float *alone_a = prefill(m, ws0, a, 4), *alone_b = prefill(m, ws1, b, 4);
    ck_assert(test_rel_diff(alone_a, alone_b, (size_t)vocab) > 1e-3);

    struct slora_kv *ka = slora_kv_new(m), *kb = slora_kv_new(m);
    struct slora_fwd *f = slora_fwd_new(m, 8, 2);
    slora_fwd_set_min_share(f, 0); /* both threads on every step */
    float *out = malloc((size_t)8 * vocab * sizeof(float));
    /* step 1: A prefills 0..1 and B 0..2, interleaved */
    struct slora_fwd_row r1[] = {
        {b[0], 0, kb, ws1, out},
        {a[0], 0, ka, ws0, out + vocab},
        {b[1], 1, kb, ws1, out + 2 * vocab},
        {a[1], 1, ka, ws0, out + 3 * vocab},
        {b[2], 2, kb, ws1, out + 4 * vocab},
    };
    ck_assert_int_eq(slora_fwd_run(f, r1, 5), 0);
    const float *want1[] = {alone_b, alone_a, alone_b + vocab, alone_a + vocab,
                            alone_b + 2 * vocab};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(test_rel_diff(out + (size_t)i * vocab, want1[i], (size_t)vocab) <= 1e-5,
                      "step 1 row %d", i);
    /* step 2: one decode row each */
    struct slora_fwd_row r2[] = {{a[2], 2, ka, ws0, out}, {b[3], 3, kb, ws1, out + vocab}};
    ck_assert_int_eq(slora_fwd_run(f, r2, 2), 0);
    ck_assert(test_rel_diff(out, alone_a + 2 * vocab, (size_t)vocab) <= 1e-5);
    ck_assert(test_rel_diff(out + vocab, alone_b + 3 * vocab, (size_t)vocab) <= 1e-5);
    struct slora_fwd_row r3 = {a[3], 3, ka, ws0, out};
    ck_assert_int_eq(slora_fwd_run(f, &r3, 1), 0);
    ck_assert(test_rel_diff(out, alone_a + 3 * vocab, (size_t)vocab) <= 1e-5);

    free(out);
    free(alone_a);
    free(alone_b);
    slora_fwd_free(f);
    slora_kv_free(ka);
    slora_kv_free(kb);
    two_sets_deinit(&t);
}
END_TEST

/* Rows per weight set, logits wanted, and the products that must follow
 * for the 2-layer model (7 matrices per layer, then the classifier per
 * chunk of 64 logit rows; ws1 adds a delta product on two matrices). */
static const struct count_case {
    int n_base;
    int n_adapted;
    int logits; /* 0: last row only, 1: every row */
    uint64_t base;
    uint64_t delta;
} count_cases[] = {
    {1, 0, 1, 15, 0}, /* decode */
    {5, 0, 0, 15, 0}, /* shared prefill */
    {3, 3, 1, 15, 2}, /* two sets: one base product each, plus two delta groups */
    {1, 3, 1, 15, 2},
    {0, 4, 0, 15, 2}, /* all rows adapted */
};

START_TEST(product_counts)
{
    const struct count_case *c = &count_cases[_i];
    struct two_sets t;
    two_sets_init(&t);
    const struct slora_model *m = t.m;
    int vocab = m->cfg.shape.vocab_size, n = c->n_base + c->n_adapted;
    struct slora_kv *k0 = slora_kv_new(m), *k1 = slora_kv_new(m);
    struct slora_fwd *f = slora_fwd_new(m, n, 2);
    slora_fwd_set_min_share(f, 0); /* both threads on every step */
    float *out = malloc((size_t)n * vocab * sizeof(float));
    struct slora_fwd_row rows[8];
    for (int i = 0; i < n; i++) {
        int base = i < c->n_base;
        int pos = base ? i : i - c->n_base;
        rows[i] = (struct slora_fwd_row){3 + i, pos, base ? k0 : k1, base ? &t.ws0 : &t.ws1,
                                         c->logits || i == n - 1 ? out + (size_t)i * vocab : NULL};
    }
    ck_assert_int_eq(slora_fwd_run(f, rows, n), 0);
    struct slora_fwd_stats st;
    slora_fwd_stats(f, &st);
    ck_assert_uint_eq(st.base_products, c->base);
    ck_assert_uint_eq(st.delta_products, c->delta);
    ck_assert_uint_eq(st.rows, (uint64_t)n);
    free(out);
    slora_fwd_free(f);
    slora_kv_free(k0);
    slora_kv_free(k1);
    two_sets_deinit(&t);
}
END_TEST

/* LoRA factors B^T of shape (r, rows) and A (r, cols), entries from a
 * fixed pattern, and the delta that applies them. */
static void lora_init(struct slora_delta *d, float *bt, float *a, int64_t rows, int64_t cols,
                      int64_t r, float amp)
{
    for (int64_t i = 0; i < rows * r; i++)
        bt[i] = amp * (float)((i * 5 % 11) - 5);
    for (int64_t i = 0; i < r * cols; i++)
        a[i] = amp * (float)((i * 3 % 7) - 3);
    d->kind = SLORA_DELTA_LORA;
    ck_assert(slora_tensor_init(&d->bt, SLORA_DTYPE_F32, bt, r, rows));
    ck_assert(slora_tensor_init(&d->a, SLORA_DTYPE_F32, a, r, cols));
}

/* w (rows, cols) += s * B A, bt = B^T (r, rows), a (r, cols). */
static void add_lora(float *w, const float *bt, const float *a, int64_t rows, int64_t cols,
                     int64_t r, float s)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            float v = 0;
            for (int64_t k = 0; k < r; k++)
                v += bt[k * rows + i] * a[k * cols + j];
            w[i * cols + j] += s * v;
        }
}

#define MIX_RANK 2

/* The two_sets model with its layer 0 wq and layer 1 w2 replaced by
 * W + cA dA + cB (B A) and W + cB (B2 A2) + cC dC, prefilled on the base
 * weight set: the merged model a mix must reproduce. */
static float *merged_mix(struct two_sets *t, const float *lora[4], float ca, float cb, float cc,
                         const int *toks, int n)
{
    struct slora_model *m = t->m;
    int64_t qr, qc, dr, dc;
    slora_arch_module_dims(&m->cfg.shape, SLORA_MOD_WQ, &qr, &qc);
    slora_arch_module_dims(&m->cfg.shape, SLORA_MOD_W2, &dr, &dc);
    float *wq = malloc((size_t)(qr * qc) * sizeof(float));
    float *w2 = malloc((size_t)(dr * dc) * sizeof(float));
    memcpy(wq, slora_model_matrix(m, 0, SLORA_MOD_WQ)->data, (size_t)(qr * qc) * sizeof(float));
    memcpy(w2, slora_model_matrix(m, 1, SLORA_MOD_W2)->data, (size_t)(dr * dc) * sizeof(float));
    for (int64_t i = 0; i < qr * qc; i++)
        wq[i] += ca * t->dq[i];
    for (int64_t i = 0; i < dr * dc; i++)
        w2[i] += cc * t->d2[i];
    add_lora(wq, lora[0], lora[1], qr, qc, MIX_RANK, cb);
    add_lora(w2, lora[2], lora[3], dr, dc, MIX_RANK, cb);
    struct slora_tensor saved_q = m->layers[0].w[SLORA_MOD_WQ];
    struct slora_tensor saved_2 = m->layers[1].w[SLORA_MOD_W2];
    m->layers[0].w[SLORA_MOD_WQ].data = wq;
    m->layers[1].w[SLORA_MOD_W2].data = w2;
    float *out = prefill(m, &t->ws0, toks, n);
    m->layers[0].w[SLORA_MOD_WQ] = saved_q;
    m->layers[1].w[SLORA_MOD_W2] = saved_2;
    free(wq);
    free(w2);
    return out;
}

/* Per-request mixes: weight sets whose terms point at other sets' deltas
 * (a dense A on layer 0 wq, a LoRA B on layer 0 wq and layer 1 w2, a
 * dense C on layer 1 w2) with per-term scales. Each mix alone equals the
 * merged model W + sum_k s_k dW_k; one batch holding rows of both mixes
 * (sharing A with different weights, one negative), of A, B and C alone
 * and of the base equals each alone and runs one product per distinct
 * delta of each matrix. */
START_TEST(mixes_in_one_batch)
{
    struct two_sets t;
    two_sets_init(&t);
    const struct slora_model *m = t.m;
    int vocab = m->cfg.shape.vocab_size;
    int64_t qr, qc, dr, dc;
    slora_arch_module_dims(&m->cfg.shape, SLORA_MOD_WQ, &qr, &qc);
    slora_arch_module_dims(&m->cfg.shape, SLORA_MOD_W2, &dr, &dc);
    float *bq = malloc((size_t)(qr * MIX_RANK) * sizeof(float));
    float *aq = malloc((size_t)(MIX_RANK * qc) * sizeof(float));
    float *b2 = malloc((size_t)(dr * MIX_RANK) * sizeof(float));
    float *a2 = malloc((size_t)(MIX_RANK * dc) * sizeof(float));
    struct slora_delta lq, l2;
    lora_init(&lq, bq, aq, qr, qc, MIX_RANK, 0.08f);
    lora_init(&l2, b2, a2, dr, dc, MIX_RANK, 0.05f);
    const float *lora[4] = {bq, aq, b2, a2};

    struct slora_weights a, b, c, mix1, mix2;
    ck_assert_int_eq(slora_weights_init(&a, m, 1), 0);
    ck_assert_int_eq(slora_weights_init(&b, m, 1), 0);
    ck_assert_int_eq(slora_weights_init(&c, m, 1), 0);
    ck_assert_int_eq(slora_weights_init(&mix1, m, 2), 0);
    ck_assert_int_eq(slora_weights_init(&mix2, m, 2), 0);
    slora_weights_set(&a, 0, 0, SLORA_MOD_WQ, &t.d[0]);
    slora_weights_set(&b, 0, 0, SLORA_MOD_WQ, &lq);
    slora_weights_set(&b, 0, 1, SLORA_MOD_W2, &l2);
    slora_weights_set(&c, 0, 1, SLORA_MOD_W2, &t.d[1]);
    slora_weights_copy_term(&mix1, 0, &a, 0, 0.7f);
    slora_weights_copy_term(&mix1, 1, &b, 0, 0.3f);
    slora_weights_copy_term(&mix2, 0, &a, 0, -0.4f);
    slora_weights_copy_term(&mix2, 1, &c, 0, 0.8f);
    struct slora_weights *sets[6] = {&mix1, &a, &mix2, &t.ws0, &b, &c};
    for (int i = 0; i < 6; i++)
        if (sets[i] != &t.ws0)
            sets[i]->id = slora_weights_new_id();
    ck_assert_uint_ne(mix1.id, mix2.id);

    enum { N = 3 };
    int toks[6][N];
    for (int i = 0; i < 6; i++)
        for (int p = 0; p < N; p++)
            toks[i][p] = p ? 2 + (7 * i + 11 * p) % 37 : 1;
    float *alone[6];
    for (int i = 0; i < 6; i++)
        alone[i] = prefill(m, sets[i], toks[i], N);

    /* the mixes against the merged models */
    float *want1 = merged_mix(&t, lora, 0.7f, 0.3f, 0, toks[0], N);
    float *want2 = merged_mix(&t, lora, -0.4f, 0, 0.8f, toks[2], N);
    double d1 = test_rel_diff(alone[0], want1, (size_t)N * vocab);
    double d2 = test_rel_diff(alone[2], want2, (size_t)N * vocab);
    ck_assert_msg(d1 <= 1e-5, "W + 0.7 dA + 0.3 dB: %g", d1);
    ck_assert_msg(d2 <= 1e-5, "W - 0.4 dA + 0.8 dC: %g", d2);
    float *base1 = prefill(m, &t.ws0, toks[0], N);
    ck_assert(test_rel_diff(alone[0], base1, (size_t)N * vocab) > 1e-3);

    /* all six in one batch, rows interleaved */
    struct slora_kv *kv[6];
    struct slora_fwd_row rows[6 * N];
    float *out = malloc((size_t)6 * N * vocab * sizeof(float));
    for (int i = 0; i < 6; i++)
        kv[i] = slora_kv_new(m);
    for (int p = 0; p < N; p++)
        for (int i = 0; i < 6; i++)
            rows[p * 6 + i] = (struct slora_fwd_row){toks[i][p], p, kv[i], sets[i],
                                                     out + (size_t)(p * 6 + i) * vocab};
    struct slora_fwd *f = slora_fwd_new(m, 6 * N, 2);
    ck_assert_int_eq(slora_fwd_run(f, rows, 6 * N), 0);
    for (int p = 0; p < N; p++)
        for (int i = 0; i < 6; i++) {
            double d = test_rel_diff(out + (size_t)(p * 6 + i) * vocab,
                                alone[i] + (size_t)p * vocab, (size_t)vocab);
            ck_assert_msg(d <= 1e-5, "set %d position %d: %g", i, p, d);
        }
    /* layer 0 wq: A and B's; layer 1 w2: B's and C */
    struct slora_fwd_stats st;
    slora_fwd_stats(f, &st);
    ck_assert_uint_eq(st.base_products, 15);
    ck_assert_uint_eq(st.delta_products, 4);

    slora_fwd_free(f);
    for (int i = 0; i < 6; i++) {
        slora_kv_free(kv[i]);
        free(alone[i]);
    }
    free(out);
    free(want1);
    free(want2);
    free(base1);
    struct slora_weights *own[5] = {&a, &b, &c, &mix1, &mix2};
    for (int i = 0; i < 5; i++)
        slora_weights_deinit(own[i]);
    free(bq);
    free(aq);
    free(b2);
    free(a2);
    two_sets_deinit(&t);
}
END_TEST

START_TEST(bad_rows)
{
    struct two_sets t;
    two_sets_init(&t);
    const struct slora_model *m = t.m;
    const struct slora_weights *ws = &t.ws0;
    struct slora_kv *kv = slora_kv_new(m);
    struct slora_fwd *f = slora_fwd_new(m, 2, 1);
    ck_assert_int_eq(slora_fwd_max_rows(f), 2);
    const struct slora_fwd_row bad[] = {
        {-1, 0, kv, ws, NULL}, {40, 0, kv, ws, NULL},  {1, -1, kv, ws, NULL},
        {1, 16, kv, ws, NULL}, {1, 0, NULL, ws, NULL}, {1, 0, kv, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(slora_fwd_run(f, &bad[i], 1), SLORA_EINVAL);
    struct slora_fwd_row ok[3] = {{1, 0, kv, ws, NULL}, {1, 1, kv, ws, NULL}, {1, 2, kv, ws, NULL}};
    ck_assert_int_eq(slora_fwd_run(f, ok, 0), SLORA_EINVAL);
    ck_assert_int_eq(slora_fwd_run(f, ok, 3), SLORA_EINVAL);
    ck_assert_int_eq(slora_fwd_run(f, ok, 2), 0);
    slora_fwd_free(f);
    slora_kv_free(kv);
    two_sets_deinit(&t);
}
END_TEST

Suite *slora_forward_suite(void)
{
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, stories_published, 0, 2);
    tcase_add_test(tc, prefill_equals_stepwise);
    tcase_add_test(tc, formats_agree);
    tcase_add_test(tc, deltas_equal_merged);
    tcase_add_test(tc, threads_agree);
    tcase_add_test(tc, quantized_threads_agree);
    tcase_add_test(tc, claimed_chunks_agree);
    tcase_add_test(tc, mixed_batch_equals_alone);
    tcase_add_loop_test(tc, product_counts, 0, sizeof(count_cases) / sizeof(count_cases[0]));
    tcase_add_test(tc, mixes_in_one_batch);
    tcase_add_test(tc, bad_rows);
    suite_add_tcase(s, tc);
    return s;
}
