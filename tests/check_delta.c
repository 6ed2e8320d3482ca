/* check_delta.c - adapters expanded into deltas: the factored form of
 * per-matrix LoRA (CP and 2D Tucker) equals the generator's dense dW; the
 * dense form in F32 equals it exactly and in F16/BF16 as rounded; q/k rows
 * land in a rotate-half model's order in both forms; logits through the
 * factored form equal the dense form's. Golden values: the generator
 * (itself checked against the numpy reference by the superlora suite). */
#include <slora/adapter.h>
#include <slora/delta.h>
#include <slora/error.h>
#include <slora/forward.h>
#include <slora/matmul.h>
#include <slora/quant.h>
#include <slora/superlora.h>

#include "testutil.h"

#include <check.h>
#include <math.h>

#define STORIES_BIN "models/stories260K.bin"
#define FIX "tests/fixtures/"

static struct slora_model *model;

static void setup(void)
{
    model = test_load_model(STORIES_BIN);
}

static void teardown(void)
{
    slora_model_free(model);
}

static struct slora_adapter *load(const char *name)
{
    char path[256], diag[512];
    snprintf(path, sizeof(path), FIX "%s.safetensors", name);
    struct slora_adapter *a;
    ck_assert_msg(!slora_adapter_load(path, &model->cfg.shape, NULL, 0, &a, diag, sizeof(diag)),
                  "%s", diag);
    return a;
}

static float *generate(const struct slora_adapter *a)
{
    float *dw = malloc((size_t)a->total * sizeof(float));
    char diag[256];
    ck_assert_msg(!slora_superlora_generate(a, dw, 1, diag, sizeof(diag)), "%s", diag);
    return dw;
}

/* Every target's delta in s equals dw (the generator's dW_all in the
 * model's row order) within rel (max abs difference / max abs dW). */
static void assert_matches(const struct slora_adapter *a, const struct slora_delta_set *s,
                           const float *dw, double rel)
{
    struct slora_weights ws;
    ck_assert_int_eq(slora_weights_init(&ws, model, 1), 0);
    slora_delta_set_bind(s, &ws, 0);
    for (int j = 0; j < a->n_targets; j++) {
        const struct slora_target *t = &a->targets[j];
        const struct slora_delta *d = slora_weights_delta(&ws, 0, t->layer, t->module);
        ck_assert_ptr_nonnull(d);
        double md = 0, mx = 0;
        float *row = malloc((size_t)t->cols * sizeof(float));
        for (int64_t r = 0; r < t->rows; r++) {
            const float *want = dw + t->offset + r * t->cols;
            if (d->kind == SLORA_DELTA_DENSE) {
                slora_matmul_get_row(&d->dw, r, row);
            } else {
                const float *bt = (const float *)d->bt.data;
                ck_assert_int_eq(d->bt.rows, d->a.rows);
                ck_assert_int_eq(d->bt.cols, t->rows);
                for (int64_t c = 0; c < t->cols; c++) {
                    double acc = 0;
                    for (int64_t k = 0; k < d->a.rows; k++)
                        acc += (double)bt[k * t->rows + r] *
                               ((const float *)d->a.data)[k * t->cols + c];
                    row[c] = (float)acc;
                }
            }
            for (int64_t c = 0; c < t->cols; c++) {
                md = fmax(md, fabs((double)row[c] - want[c]));
                mx = fmax(mx, fabs((double)want[c]));
            }
        }
        free(row);
        ck_assert_msg(md <= rel * mx, "target %d: %g of %g", j, md, mx);
    }
    slora_weights_deinit(&ws);
}

static const char *const factored_fixtures[] = {"lora_wq_wv", "hf_aliases_all", "f16_lora"};

START_TEST(lora_is_factored)
{
    struct slora_adapter *a = load(factored_fixtures[_i]);
    struct slora_delta_opts o = {.dense_type = SLORA_DTYPE_F32, .factored = true};
    ck_assert(slora_delta_is_factored(a, &o));
    size_t want = 0;
    for (int j = 0; j < a->n_targets; j++)
        want += (size_t)(a->groups[j].k[0].r[1] * (a->targets[j].rows + a->targets[j].cols)) * 4;
    ck_assert_uint_eq(slora_delta_bytes(a, &o), want);
    ck_assert_uint_lt(want, (size_t)a->total * 4);
    struct slora_delta_set *s;
    char diag[256];
    ck_assert_int_eq(slora_delta_set_new(model, a, &o, &s, diag, sizeof(diag)), 0);
    ck_assert_ptr_null(slora_delta_set_dense_f32(s));
    float *dw = generate(a);
    assert_matches(a, s, dw, 1e-6);
    free(dw);
    slora_delta_set_free(s);
    /* dense_only: the same adapter as F32 dW, exactly the generator's */
    o.factored = false;
    ck_assert(!slora_delta_is_factored(a, &o));
    ck_assert_uint_eq(slora_delta_bytes(a, &o), (size_t)a->total * 4);
    slora_adapter_unref(a);
}
END_TEST

static const char *const dense_fixtures[] = {"lora_shuffled", "lokr", "mixed_dtypes_tucker3d",
                                             "proj_lora_tiny", "lora2d_groups3"};

START_TEST(others_are_dense)
{
    struct slora_adapter *a = load(dense_fixtures[_i]);
    float *dw = generate(a);
    char diag[256];
    static const enum slora_dtype types[3] = {SLORA_DTYPE_F32, SLORA_DTYPE_F16, SLORA_DTYPE_BF16};
    for (int ti = 0; ti < 3; ti++) {
        struct slora_delta_opts o = {.dense_type = types[ti], .factored = true};
        ck_assert(!slora_delta_is_factored(a, &o));
        ck_assert_uint_eq(slora_delta_bytes(a, &o), (size_t)a->total * (ti ? 2 : 4));
        struct slora_delta_set *s;
        ck_assert_int_eq(slora_delta_set_new(model, a, &o, &s, diag, sizeof(diag)), 0);
        if (ti == 0) {
            ck_assert(!memcmp(slora_delta_set_dense_f32(s), dw, (size_t)a->total * 4));
            assert_matches(a, s, dw, 0);
        } else {
            /* the generator's values rounded to nearest even */
            float *r = malloc((size_t)a->total * sizeof(float));
            for (int64_t i = 0; i < a->total; i++) {
                uint16_t h = ti == 1 ? slora_quant_f32_to_f16(dw[i]) : slora_quant_f32_to_bf16(dw[i]);
                uint32_t u = (uint32_t)h << 16;
                float bf;
                memcpy(&bf, &u, 4);
                r[i] = ti == 1 ? slora_quant_f16_to_f32(h) : bf;
            }
            assert_matches(a, s, r, 0);
            free(r);
        }
        slora_delta_set_free(s);
    }
    free(dw);
    slora_adapter_unref(a);
}
END_TEST

/* A hand-built per-matrix 2D Tucker adapter (core present) on wq layer 1
 * and wk layer 3: factored as B = alpha A0 C, A = A1^T. */
struct tucker2d {
    struct slora_adapter a;
    struct slora_target t[2];
    struct slora_group g[2];
    struct slora_group_tables tab[2];
    float a0[2][64 * 3], a1[2][64 * 2], core[2][3 * 2];
};

static void tucker2d_init(struct tucker2d *f)
{
    memset(f, 0, sizeof(*f));
    f->a.refcount = 1;
    f->a.cfg.base = model->cfg.shape;
    f->a.cfg.alpha = 1.5f;
    f->a.cfg.groups_kind = SLORA_GROUPS_MATRIX;
    f->a.n_targets = f->a.n_groups = 2;
    f->a.targets = f->t;
    f->a.groups = f->g;
    int64_t kv = slora_arch_kv_dim(&model->cfg.shape);
    f->t[0] = (struct slora_target){1, SLORA_MOD_WQ, 64, 64, 0};
    f->t[1] = (struct slora_target){3, SLORA_MOD_WK, kv, 64, 64 * 64};
    f->a.total = 64 * 64 + kv * 64;
    for (int j = 0; j < 2; j++) {
        for (int i = 0; i < 64 * 3; i++)
            f->a0[j][i] = 0.01f * (float)((i * 7 + j) % 13 - 6);
        for (int i = 0; i < 64 * 2; i++)
            f->a1[j][i] = 0.02f * (float)((i * 5 + j) % 11 - 5);
        for (int i = 0; i < 6; i++)
            f->core[j][i] = (float)(i - 2);
        slora_group_tables_start(&f->g[j], &f->tab[j], j ? &f->g[0] : NULL,
                                 f->t[j].rows * f->t[j].cols, 2);
        const float *fa[2] = {f->a0[j], f->a1[j]};
        slora_group_tables_add_factor(&f->g[j], (int64_t[]){f->t[j].rows, 64},
                                      (int64_t[]){3, 2}, fa, f->core[j]);
    }
}

START_TEST(tucker2d_factored)
{
    struct tucker2d f;
    tucker2d_init(&f);
    struct slora_delta_opts o = {.dense_type = SLORA_DTYPE_F32, .factored = true};
    ck_assert(slora_delta_is_factored(&f.a, &o));
    struct slora_delta_set *s;
    char diag[256];
    ck_assert_int_eq(slora_delta_set_new(model, &f.a, &o, &s, diag, sizeof(diag)), 0);
    float *dw = generate(&f.a);
    assert_matches(&f.a, s, dw, 1e-6);
    free(dw);
    slora_delta_set_free(s);
}
END_TEST

/* A model whose q/k rows are in HF's rotate-half order: both forms put
 * GGUF row 2i + p of a head at row p * hd/2 + i. */
START_TEST(rotate_half_rows)
{
    struct tucker2d f;
    tucker2d_init(&f);
    struct slora_model hf = *model;
    hf.cfg.qk_rotate_half = true;
    float *dw = generate(&f.a);
    float *native = malloc((size_t)f.a.total * sizeof(float));
    memcpy(native, dw, (size_t)f.a.total * sizeof(float));
    ck_assert_int_eq(slora_superlora_to_native(&f.a, &hf, native), 0);
    int hd = hf.cfg.head_dim;
    /* GGUF row 1 (head 0, i 0, p 1) is the model's row hd / 2 */
    ck_assert(!memcmp(native + (size_t)(hd / 2) * 64, dw + 64, 64 * sizeof(float)));
    ck_assert_int_eq(slora_model_native_row(&hf, SLORA_MOD_WQ, hd + 3), hd + hd / 2 + 1);
    ck_assert_int_eq(slora_model_native_row(&hf, SLORA_MOD_WV, 3), 3);
    char diag[256];
    struct slora_model *saved = model;
    model = &hf; /* assert_matches binds on the set's model */
    for (int factored = 0; factored < 2; factored++) {
        struct slora_delta_opts o = {.dense_type = SLORA_DTYPE_F32, .factored = factored};
        struct slora_delta_set *s;
        ck_assert_int_eq(slora_delta_set_new(&hf, &f.a, &o, &s, diag, sizeof(diag)), 0);
        assert_matches(&f.a, s, native, factored ? 1e-6 : 0);
        slora_delta_set_free(s);
    }
    model = saved;
    free(native);
    free(dw);
}
END_TEST

START_TEST(bad_options)
{
    struct slora_adapter *a = load("lora_wq_wv");
    struct slora_delta_set *s;
    char diag[256];
    struct slora_delta_opts o = {.dense_type = SLORA_DTYPE_Q8_0};
    ck_assert_int_eq(slora_delta_set_new(model, a, &o, &s, diag, sizeof(diag)), SLORA_EINVAL);
    struct slora_model other = *model;
    other.cfg.shape.dim = 32;
    o.dense_type = SLORA_DTYPE_F32;
    ck_assert_int_eq(slora_delta_set_new(&other, a, &o, &s, diag, sizeof(diag)),
                     SLORA_EMISMATCH);
    ck_assert_msg(strstr(diag, "another base model shape"), "%s", diag);
    slora_adapter_unref(a);
}
END_TEST

/* Logits through B (A x) equal those through the dense dW x. */
START_TEST(factored_logits_equal_dense)
{
    struct slora_adapter *a = load("hf_aliases_all");
    static const int toks[6] = {1, 403, 407, 261, 378, 432};
    int vocab = model->cfg.shape.vocab_size;
    float *out[2];
    char diag[256];
    for (int factored = 0; factored < 2; factored++) {
        struct slora_delta_opts o = {.dense_type = SLORA_DTYPE_F32, .factored = factored};
        struct slora_delta_set *s;
        ck_assert_int_eq(slora_delta_set_new(model, a, &o, &s, diag, sizeof(diag)), 0);
        struct slora_weights ws;
        ck_assert_int_eq(slora_weights_init(&ws, model, 1), 0);
        ws.id = 7;
        slora_delta_set_bind(s, &ws, 0);
        struct slora_kv *kv = slora_kv_new(model);
        struct slora_fwd *fw = slora_fwd_new(model, 6, 2);
        slora_fwd_set_min_share(fw, 0); /* both threads on every step */
        out[factored] = malloc((size_t)6 * vocab * sizeof(float));
        struct slora_fwd_row rows[6];
        for (int i = 0; i < 6; i++)
            rows[i] = (struct slora_fwd_row){toks[i], i, kv, &ws, out[factored] + i * vocab};
        ck_assert_int_eq(slora_fwd_run(fw, rows, 6), 0);
        slora_fwd_free(fw);
        slora_kv_free(kv);
        slora_weights_deinit(&ws);
        slora_delta_set_free(s);
    }
    double d = 0, mx = 0;
    for (int i = 0; i < 6 * vocab; i++) {
        d = fmax(d, fabs((double)out[0][i] - out[1][i]));
        mx = fmax(mx, fabs((double)out[0][i]));
    }
    ck_assert_msg(d <= 1e-6 * mx, "%g of %g", d, mx);
    free(out[0]);
    free(out[1]);
    slora_adapter_unref(a);
}
END_TEST

Suite *slora_delta_suite(void)
{
    Suite *s = suite_create("delta");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, lora_is_factored, 0,
                        sizeof(factored_fixtures) / sizeof(factored_fixtures[0]));
    tcase_add_loop_test(tc, others_are_dense, 0, sizeof(dense_fixtures) / sizeof(dense_fixtures[0]));
    tcase_add_test(tc, tucker2d_factored);
    tcase_add_test(tc, rotate_half_rows);
    tcase_add_test(tc, bad_options);
    tcase_add_test(tc, factored_logits_equal_dense);
    suite_add_tcase(s, tc);
    return s;
}
