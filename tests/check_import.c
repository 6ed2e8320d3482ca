/* check_import.c - PEFT and GGUF LoRA import on a tiny base (dim 8, 2
 * heads of 4 rows, 1 kv head, hidden 12, 2 layers): the factors land
 * exactly where the spec puts them (B with its q/k rows moved from
 * rotate-half to GGUF order: per head of 4 rows, GGUF row 0, 1, 2, 3 =
 * HF row 0, 2, 1, 3, as llama.cpp's converter does it), scales become
 * alpha or fold into B, missing targets are zero, and every refusal has
 * its code and reason. */
#include "st_build.h"
#include "testutil.h"

#include <slora/adapter.h>
#include <slora/error.h>
#include <slora/gguf.h>
#include <slora/import.h>
#include <slora/safetensors.h>

#include <check.h>
#include <math.h>

static const struct slora_import_target target = {
    .shape = {.dim = 8,
              .hidden_dim = 12,
              .n_layers = 2,
              .n_heads = 2,
              .n_kv_heads = 1,
              .vocab_size = 32},
    .head_size = 4,
    .permute_qk = true,
    .arch = "llama",
};

#define P "base_model.model.model.layers."
/* q (8x8), k (4x8) and v (4x8) of layer 1, r = 2 */
#define QKV1                                                                                       \
    P "1.self_attn.q_proj.lora_A.weight=2x8 " P "1.self_attn.q_proj.lora_B.weight=8x2 " P          \
      "1.self_attn.k_proj.lora_A.weight=2x8 " P "1.self_attn.k_proj.lora_B.weight=4x2 " P          \
      "1.self_attn.v_proj.lora_A.weight=2x8 " P "1.self_attn.v_proj.lora_B.weight=4x2"
#define CFG                                                                                        \
    "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"use_dora\": false, "                 \
    "\"bias\": \"none\", \"target_modules\": [\"q_proj\", \"k_proj\", \"v_proj\"]"

/* Import config (JSON text) and weights (tb_build spec); returns the
 * error code, the parsed adapter in *out on success. */
static int import(const char *config, const char *spec, const struct slora_import_target *t,
                  struct slora_adapter **out, char *diag, size_t diag_len)
{
    size_t wlen, len;
    unsigned char *w = tb_build(NULL, spec, NULL, NULL, &wlen);
    void *file = NULL;
    int err = slora_import_peft(config, strlen(config), w, wlen, t, &file, &len, diag, diag_len);
    free(w);
    if (!err) {
        err = slora_adapter_parse(file, len, &t->shape, NULL, out, diag, diag_len);
        ck_assert_msg(err == 0, "the import does not parse: %s", diag);
    }
    free(file);
    return err;
}

/* Element (row, col) of factor matrix A_{0,m} of group g. */
static float fac(const struct slora_adapter *a, int g, int m, int64_t row, int64_t col)
{
    const struct slora_factor *f = &a->groups[g].k[0];
    return f->a[m][row * f->r[m] + col];
}

static const int gguf_of_hf4[4] = {0, 2, 1, 3}; /* GGUF row i holds HF row gguf_of_hf4[i] */

/* Group g holds B (tensor tb) rows permuted or not, scaled by s, and A^T (tensor ta). */
static void check_pair(const struct slora_adapter *a, int g, int ta, int tb, int64_t rows,
                       int64_t cols, int r, bool perm, float s)
{
    for (int64_t i = 0; i < rows; i++)
        for (int k = 0; k < r; k++) {
            int64_t src = perm ? i / 4 * 4 + gguf_of_hf4[i % 4] : i;
            ck_assert_float_eq(fac(a, g, 0, i, k), s * tb_value(src * r + k, tb));
        }
    for (int64_t i = 0; i < cols; i++)
        for (int k = 0; k < r; k++)
            ck_assert_float_eq(fac(a, g, 1, i, k), tb_value(k * cols + i, ta));
}

START_TEST(peft_exact)
{
    struct slora_adapter *a;
    char diag[512];
    ck_assert_int_eq(import(CFG "}", QKV1, &target, &a, diag, sizeof(diag)), 0);
    ck_assert_int_eq(a->cfg.n_layers, 1);
    ck_assert_int_eq(a->cfg.layers[0], 1);
    ck_assert_int_eq(a->cfg.n_modules, 3);
    ck_assert_int_eq(a->cfg.groups_kind, SLORA_GROUPS_MATRIX);
    ck_assert_float_eq(a->cfg.alpha, 2.0f); /* 4 / 2, common to every module */
    check_pair(a, 0, 0, 1, 8, 8, 2, true, 1.0f);
    check_pair(a, 1, 2, 3, 4, 8, 2, true, 1.0f);
    check_pair(a, 2, 4, 5, 4, 8, 2, false, 1.0f);
    slora_adapter_unref(a);

    struct slora_import_target hf_order = target;
    hf_order.permute_qk = false; /* a base whose GGUF keeps HF's order (qwen2) */
    ck_assert_int_eq(
        import(CFG ", \"fan_in_fan_out\": true}", QKV1, &hf_order, &a, diag, sizeof(diag)), 0);
    check_pair(a, 0, 0, 1, 8, 8, 2, false, 1.0f);
    check_pair(a, 1, 2, 3, 4, 8, 2, false, 1.0f);
    slora_adapter_unref(a);

    /* rsLoRA: alpha / sqrt(r) = 4 / sqrt(2) */
    ck_assert_int_eq(import(CFG ", \"use_rslora\": true}", QKV1, &target, &a, diag, sizeof(diag)),
                     0);
    ck_assert_float_eq(a->cfg.alpha, (float)(4.0 / sqrt(2.0)));
    slora_adapter_unref(a);
}
END_TEST

START_TEST(peft_patterns_fold_into_b)
{
    /* k_proj rank 1 by rank_pattern; v_proj alpha 8 by an ERE alpha_pattern key */
    const char *spec =
        P "1.self_attn.q_proj.lora_A.weight=2x8 " P "1.self_attn.q_proj.lora_B.weight=8x2 " P
          "1.self_attn.k_proj.lora_A.weight=1x8 " P "1.self_attn.k_proj.lora_B.weight=4x1 " P
          "1.self_attn.v_proj.lora_A.weight=2x8 " P "1.self_attn.v_proj.lora_B.weight=4x2";
    struct slora_adapter *a;
    char diag[512];
    int err = import(CFG ", \"rank_pattern\": {\"model.layers.1.self_attn.k_proj\": 1}, "
                         "\"alpha_pattern\": {\"layers\\\\.[0-9]\\\\..*v_proj\": 8}}",
                     spec, &target, &a, diag, sizeof(diag));
    ck_assert_msg(err == 0, "%s", diag);
    ck_assert_float_eq(a->cfg.alpha, 1.0f); /* scales differ: folded into each B */
    check_pair(a, 0, 0, 1, 8, 8, 2, true, 2.0f);
    check_pair(a, 1, 2, 3, 4, 8, 1, true, 4.0f);
    check_pair(a, 2, 4, 5, 4, 8, 2, false, 4.0f);
    slora_adapter_unref(a);
}
END_TEST

START_TEST(peft_missing_targets_are_zero)
{
    /* q of layer 0 and down_proj of layer 1: the product has 4 targets */
    const char *spec =
        P "0.self_attn.q_proj.lora_A.weight=2x8 " P "0.self_attn.q_proj.lora_B.weight=8x2 " P
          "1.mlp.down_proj.lora_A.weight=2x12 " P "1.mlp.down_proj.lora_B.weight=8x2";
    struct slora_adapter *a;
    char diag[512];
    ck_assert_int_eq(
        import(CFG ", \"layers_to_transform\": [0, 1]}", spec, &target, &a, diag, sizeof(diag)), 0);
    ck_assert_int_eq(a->n_targets, 4);
    ck_assert_int_eq(a->targets[1].module, SLORA_MOD_W2);
    ck_assert_int_eq(a->targets[2].module, SLORA_MOD_WQ);
    for (int g = 1; g <= 2; g++) {
        ck_assert_int_eq(a->groups[g].k[0].r[0], 1);
        for (int64_t i = 0; i < a->groups[g].k[0].n[0]; i++)
            ck_assert_float_eq(fac(a, g, 0, i, 0), 0.0f);
    }
    check_pair(a, 3, 2, 3, 8, 12, 2, false, 1.0f);
    slora_adapter_unref(a);
}
END_TEST

struct bad {
    const char *what;
    const char *config;
    const char *spec; /* NULL: QKV1 */
    int want;
    const char *frag;
};

static const struct bad peft_bads[] = {
    {"dora", "{\"r\": 2, \"use_dora\": true}", NULL, SLORA_EUNIMPORTABLE, "use_dora is set: DoRA"},
    {"bias", "{\"r\": 2, \"bias\": \"lora_only\"}", NULL, SLORA_EUNIMPORTABLE,
     "bias = lora_only: trained biases cannot be imported"},
    {"modules_to_save", CFG ", \"modules_to_save\": [\"lm_head\"]}", NULL, SLORA_EUNIMPORTABLE,
     "modules_to_save is set"},
    {"lora_bias", CFG ", \"lora_bias\": true}", NULL, SLORA_EUNIMPORTABLE, "lora_bias is set"},
    {"other peft type", "{\"peft_type\": \"LOHA\"}", NULL, SLORA_EUNIMPORTABLE,
     "peft_type LOHA: only LORA"},
    {"lm_head target", "{\"target_modules\": [\"q_proj\", \"lm_head\"]}", NULL, SLORA_EUNIMPORTABLE,
     "target_modules: 'lm_head' cannot be targeted"},
    {"lm_head tensor", "{\"r\": 2}", "base_model.model.lm_head.lora_A.weight=2x8",
     SLORA_EUNIMPORTABLE, "tensor base_model.model.lm_head.lora_A.weight: not a LoRA factor"},
    {"magnitude vector", "{\"r\": 2}", P "1.self_attn.q_proj.lora_magnitude_vector=8",
     SLORA_EUNIMPORTABLE, "not a LoRA factor"},
    {"mlp module under self_attn", "{\"r\": 2}", P "1.self_attn.up_proj.lora_A.weight=2x8",
     SLORA_EUNIMPORTABLE, "not a LoRA factor"},
    {"layer beyond the base", "{\"r\": 2}", P "2.self_attn.q_proj.lora_A.weight=2x8",
     SLORA_EMISMATCH, "layer 2, the base has 2"},
    {"shape of another base", "{\"r\": 2}", P "1.self_attn.k_proj.lora_B.weight=8x2",
     SLORA_EMISMATCH, "lora_B.weight: shape (8, 2), the base needs (4, 2)"},
    {"rank against config", "{\"r\": 3}", NULL, SLORA_EFORMAT,
     "rank 2, the config says r = 3 for model.layers.1.self_attn.q_proj"},
    {"layers_to_transform", CFG ", \"layers_to_transform\": 0}", NULL, SLORA_EFORMAT,
     "layer 1 not in layers_to_transform"},
    {"python regex", CFG ", \"rank_pattern\": {\"layers\\\\.\\\\d\\\\.q_proj\": 1}}", NULL,
     SLORA_EUNIMPORTABLE, "only simple regular expressions are read"},
    {"stacked quantifiers", CFG ", \"alpha_pattern\": {\"q_pr++++++oj\": 1}}", NULL,
     SLORA_EUNIMPORTABLE, "alpha_pattern key 'q_pr++++++oj': only simple regular expressions"},
    {"counted repetition", CFG ", \"rank_pattern\": {\"(q){1000}\": 1}}", NULL,
     SLORA_EUNIMPORTABLE, "only simple regular expressions"},
    {"nested quantifiers", CFG ", \"rank_pattern\": {\"(k*)*_proj\": 1}}", NULL,
     SLORA_EUNIMPORTABLE, "only simple regular expressions"},
    {"A without B", "{\"r\": 2}", P "1.self_attn.q_proj.lora_A.weight=2x8", SLORA_EFORMAT,
     "layer 1 q_proj: lora_A without lora_B"},
    {"3-d tensor", "{\"r\": 2}", P "1.self_attn.q_proj.lora_A.weight=2x8x1", SLORA_EFORMAT,
     "3 dimensions, want 2"},
    {"no factors", "{\"r\": 2}", "", SLORA_EFORMAT, "the adapter has no LoRA factors"},
    {"config not json", "{\"r\": 2", NULL, SLORA_EFORMAT, "adapter_config.json:"},
    {"duplicate key", "{\"r\": 2, \"r\": 2}", NULL, SLORA_EFORMAT, "duplicate"},
    {"r not integer", "{\"r\": 2.5}", NULL, SLORA_EFORMAT, "r: not a positive integer"},
    {"alpha not finite", "{\"lora_alpha\": 1e999}", NULL, SLORA_EFORMAT, "adapter_config.json"},
    {"weights malformed", "{\"r\": 2}", P "1.self_attn.q_proj.lora_A.weight=2x8@I8",
     SLORA_EFORMAT, "unsupported dtype"},
};

START_TEST(peft_rejects)
{
    const struct bad *b = &peft_bads[_i];
    struct slora_adapter *a = NULL;
    char diag[512] = "";
    int rc = import(b->config, b->spec ? b->spec : QKV1, &target, &a, diag, sizeof(diag));
    ck_assert_msg(rc == b->want, "%s: got %s (%s)", b->what, slora_err_name(rc), diag);
    ck_assert_msg(strstr(diag, b->frag), "%s: diag '%s' lacks '%s'", b->what, diag, b->frag);
    ck_assert_ptr_null(a);
}
END_TEST

START_TEST(peft_nonfinite)
{
    size_t wlen, len;
    unsigned char *w = tb_build(NULL, QKV1, NULL, NULL, &wlen);
    float nan = NAN;
    memcpy(w + wlen - 4, &nan, 4); /* last element of v_proj's lora_B */
    void *file = NULL;
    char diag[256];
    const char *cfg = CFG "}";
    ck_assert_int_eq(
        slora_import_peft(cfg, strlen(cfg), w, wlen, &target, &file, &len, diag, sizeof(diag)),
        SLORA_ENONFINITE);
    ck_assert_ptr_nonnull(strstr(diag, "v_proj.lora_B.weight: non-finite value at element 7"));
    ck_assert_ptr_null(file);
    free(w);
}
END_TEST

/* ---- GGUF LoRA ---------------------------------------------------------- */

enum gcase { G_OK, G_MODEL, G_CVEC, G_ARCH, G_ALPHA_U32, G_NORM, G_RANKS, G_ALORA, G_TOKEN_EMBD };

static int gguf_import(enum gcase c, struct slora_adapter **out, char *diag, size_t diag_len)
{
    static float a[2 * 8], b[8 * 2], an[8];
    for (int i = 0; i < 16; i++)
        a[i] = tb_value(i, 0), b[i] = tb_value(i, 1);
    struct slora_gguf_writer *w = slora_gguf_writer_new(3, SLORA_GGUF_DEFAULT_ALIGNMENT);
    slora_gguf_writer_add_str(w, "general.architecture", c == G_ARCH ? "qwen2" : "llama");
    slora_gguf_writer_add_str(w, "general.type", c == G_MODEL ? "model" : "adapter");
    slora_gguf_writer_add_str(w, "adapter.type", c == G_CVEC ? "control_vector" : "lora");
    if (c == G_ALPHA_U32)
        slora_gguf_writer_add_u32(w, "adapter.lora.alpha", 6);
    else
        slora_gguf_writer_add_f32(w, "adapter.lora.alpha", 6.0f);
    if (c == G_ALORA)
        slora_gguf_writer_add_array(w, "adapter.alora_invocation_tokens", SLORA_GGUF_U32,
                                    (uint32_t[]){1, 2}, 2);
    /* lora_a (r, in) = ne [in, r]; lora_b (out, r) = ne [r, out] */
    slora_gguf_writer_add_tensor(w, "blk.1.attn_q.weight.lora_a", a, 2, 8, 2, SLORA_DTYPE_F32);
    slora_gguf_writer_add_tensor(w, "blk.1.attn_q.weight.lora_b", b, 8, c == G_RANKS ? 1 : 2, 2,
                                 SLORA_DTYPE_F32);
    if (c == G_NORM)
        slora_gguf_writer_add_tensor(w, "blk.1.attn_norm.weight", an, 1, 8, 1,
                                     SLORA_DTYPE_F32);
    if (c == G_TOKEN_EMBD)
        slora_gguf_writer_add_tensor(w, "token_embd.weight.lora_a", an, 1, 8, 2,
                                     SLORA_DTYPE_F32);
    char *path = test_tmp_path("gguflora");
    ck_assert_int_eq(slora_gguf_writer_write(w, path, diag, diag_len), 0);
    slora_gguf_writer_free(w);
    size_t len, olen;
    uint8_t *buf = test_read_file(path, &len);
    unlink(path);
    free(path);
    void *file = NULL;
    int err = slora_import_gguf_lora(buf, len, &target, &file, &olen, diag, diag_len);
    free(buf);
    if (!err)
        ck_assert_int_eq(slora_adapter_parse(file, olen, &target.shape, NULL, out, diag, diag_len),
                         0);
    free(file);
    return err;
}

START_TEST(gguf_exact)
{
    struct slora_adapter *a;
    char diag[512];
    ck_assert_int_eq(gguf_import(G_OK, &a, diag, sizeof(diag)), 0);
    ck_assert_float_eq(a->cfg.alpha, 3.0f);       /* 6 / r */
    check_pair(a, 0, 0, 1, 8, 8, 2, false, 1.0f); /* GGUF rows already: no permutation */
    slora_adapter_unref(a);
}
END_TEST

static const struct {
    enum gcase c;
    int want;
    const char *frag;
} gguf_bads[] = {
    {G_MODEL, SLORA_EFORMAT, "general.type is \"model\", want \"adapter\""},
    {G_CVEC, SLORA_EUNIMPORTABLE, "adapter.type is \"control_vector\", want \"lora\""},
    {G_ARCH, SLORA_EMISMATCH, "general.architecture is \"qwen2\", want \"llama\""},
    {G_ALPHA_U32, SLORA_EFORMAT, "adapter.lora.alpha: not an F32"},
    {G_NORM, SLORA_EUNIMPORTABLE, "tensor blk.1.attn_norm.weight: not a LoRA factor"},
    {G_RANKS, SLORA_EMISMATCH, "blk.1.attn_q.weight.lora_b: rank 1, its pair has rank 2"},
    {G_ALORA, SLORA_EUNIMPORTABLE, "adapter.alora_invocation_tokens: activated LoRA"},
    {G_TOKEN_EMBD, SLORA_EUNIMPORTABLE, "tensor token_embd.weight.lora_a: not a LoRA factor"},
};

START_TEST(gguf_rejects)
{
    struct slora_adapter *a = NULL;
    char diag[512] = "";
    int rc = gguf_import(gguf_bads[_i].c, &a, diag, sizeof(diag));
    ck_assert_msg(rc == gguf_bads[_i].want, "case %d: got %s (%s)", gguf_bads[_i].c,
                  slora_err_name(rc), diag);
    ck_assert_msg(strstr(diag, gguf_bads[_i].frag), "diag '%s' lacks '%s'", diag,
                  gguf_bads[_i].frag);
    ck_assert_ptr_null(a);
}
END_TEST

START_TEST(tar_needs_both_files)
{
    unsigned char tar[2048] = {0};
    memcpy(tar, "adapter_config.json", 19);
    memcpy(tar + 124, "00000000002", 11);
    tar[156] = '0';
    memcpy(tar + 257,
           "ustar\0"
           "00",
           8);
    memset(tar + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += tar[i];
    snprintf((char *)tar + 148, 8, "%06o", sum);
    memcpy(tar + 512, "{}", 2);
    void *out = NULL;
    size_t len;
    char diag[256];
    ck_assert_int_eq(
        slora_import_peft_tar(tar, sizeof(tar), &target, &out, &len, diag, sizeof(diag)),
        SLORA_EFORMAT);
    ck_assert_ptr_nonnull(strstr(diag, "PEFT upload: the tar has no adapter_model.safetensors"));
    ck_assert_ptr_null(out);
}
END_TEST

Suite *slora_import_suite(void)
{
    Suite *s = suite_create("import");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, peft_exact);
    tcase_add_test(tc, peft_patterns_fold_into_b);
    tcase_add_test(tc, peft_missing_targets_are_zero);
    tcase_add_loop_test(tc, peft_rejects, 0, sizeof(peft_bads) / sizeof(peft_bads[0]));
    tcase_add_test(tc, peft_nonfinite);
    tcase_add_test(tc, gguf_exact);
    tcase_add_loop_test(tc, gguf_rejects, 0, sizeof(gguf_bads) / sizeof(gguf_bads[0]));
    tcase_add_test(tc, tar_needs_both_files);
    suite_add_tcase(s, tc);
    return s;
}
