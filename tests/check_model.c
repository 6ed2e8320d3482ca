/* check_model.c - loading llama2.c .bin and GGUF models: every corrupted
 * header field, truncation and GGUF inconsistency (files generated here)
 * gives the right code and a message naming the problem; writers round-trip;
 * the upstream stories260K files agree tensor for tensor. */
#include <slora/cli.h>
#include <slora/error.h>
#include <slora/gguf.h>
#include <slora/matmul.h>
#include <slora/model.h>
#include <slora/model_write.h>
#include <slora/weights.h>

#include "testutil.h"

#include <check.h>
#include <limits.h>
#include <math.h>

#define STORIES_BIN "models/stories260K.bin"
#define LLAMACPP_GGUF "../shared/models/stories260K.gguf"

/* Small GQA model: dim 16, hidden 24, 2 layers, 4 heads, 2 kv heads, vocab 32, seq 8. */
static char *gen_small(const char *fmt, const char *dtype, int shared)
{
    char *path = test_tmp_path("model");
    char *argv[] = {"gen-model", "--dim",      "16",          "--hidden",
                    "24",        "--layers",   "2",           "--heads",
                    "4",         "--kv-heads", "2",           "--vocab",
                    "32",        "--seq-len",  "8",           "--seed",
                    "7",         "-o",         path,          "--format",
                    (char *)fmt, "--dtype",    (char *)dtype, shared ? "--shared-classifier" : NULL,
                    NULL};
    int argc = shared ? 24 : 23;
    ck_assert_int_eq(slora_cmd_gen_model(argc, argv), 0);
    return path;
}

static void expect_fail(const char *path, int err, const char *frag, const char *what)
{
    struct slora_model *m = NULL;
    char diag[512] = "";
    int rc = slora_model_load(path, NULL, &m, diag, sizeof(diag));
    ck_assert_msg(rc == err, "%s: rc %d (%s), want %d", what, rc, diag, err);
    ck_assert_msg(strstr(diag, frag), "%s: '%s' lacks '%s'", what, diag, frag);
    ck_assert_msg(strstr(diag, path), "%s: '%s' does not name the file", what, diag);
    ck_assert_ptr_null(m);
}

#define KEEP LONG_MIN

static const struct bin_case {
    const char *what;
    int shared;
    long off; /* byte to patch (int32), or -1 */
    int32_t value;
    long keep;  /* truncate to this many bytes (negative: from the end), or KEEP */
    int append; /* extra bytes */
    int err;
    const char *frag;
} bin_cases[] = {
    {"dim 0", 0, 0, 0, KEEP, 0, SLORA_EFORMAT, "dim is 0 (must be 1..1048576)"},
    {"dim negative", 0, 0, -5, KEEP, 0, SLORA_EFORMAT, "dim is -5"},
    {"hidden 0", 0, 4, 0, KEEP, 0, SLORA_EFORMAT, "hidden_dim is 0"},
    {"hidden larger", 0, 4, 25, KEEP, 0, SLORA_EFORMAT, "truncated"},
    {"layers 0", 0, 8, 0, KEEP, 0, SLORA_EFORMAT, "n_layers is 0"},
    {"layers huge", 0, 8, 100000, KEEP, 0, SLORA_EFORMAT, "n_layers is 100000 (must be 1..4096)"},
    {"heads 0", 0, 12, 0, KEEP, 0, SLORA_EFORMAT, "n_heads is 0"},
    {"dim % heads", 0, 12, 3, KEEP, 0, SLORA_EFORMAT, "dim 16 is not a multiple of n_heads 3"},
    {"odd head size", 0, 12, 16, KEEP, 0, SLORA_EFORMAT, "head size 1 is odd"},
    {"kv heads 0", 0, 16, 0, KEEP, 0, SLORA_EFORMAT, "n_kv_heads is 0"},
    {"heads % kv heads", 0, 16, 3, KEEP, 0, SLORA_EFORMAT,
     "n_heads 4 is not a multiple of n_kv_heads 3"},
    {"kv heads 4", 0, 16, 4, KEEP, 0, SLORA_EFORMAT, "truncated"},
    {"vocab 0", 0, 20, 0, KEEP, 0, SLORA_EFORMAT, "vocab_size is 0"},
    {"vocab INT_MIN", 0, 20, INT32_MIN, KEEP, 0, SLORA_EFORMAT, "vocab_size is 0"},
    {"unshared marked shared", 0, 20, 32, KEEP, 0, SLORA_EFORMAT,
     "2048 more than the header implies"},
    {"shared marked unshared", 1, 20, -32, KEEP, 0, SLORA_EFORMAT, "truncated"},
    {"seq 0", 0, 24, 0, KEEP, 0, SLORA_EFORMAT, "seq_len is 0"},
    {"seq larger", 0, 24, 9, KEEP, 0, SLORA_EFORMAT, "truncated"},
    {"seq smaller", 0, 24, 7, KEEP, 0, SLORA_EFORMAT, "16 more than the header implies"},
    {"empty file", 0, -1, 0, 0, 0, SLORA_EFORMAT, "truncated header (0 of 28 bytes)"},
    {"cut in header", 0, -1, 0, 27, 0, SLORA_EFORMAT, "truncated header (27 of 28 bytes)"},
    {"header only", 0, -1, 0, 28, 0, SLORA_EFORMAT, "truncated: 28 bytes"},
    {"cut in weights", 0, -1, 0, 1000, 0, SLORA_EFORMAT, "truncated: 1000 bytes"},
    {"last float cut", 0, -1, 0, -2, 0, SLORA_EFORMAT, "truncated"},
    {"trailing byte", 0, -1, 0, KEEP, 1, SLORA_EFORMAT, "1 more than the header implies"},
    {"NaN in embedding", 0, 28 + 4 * 5, 0x7fc00000, KEEP, 0, SLORA_ENONFINITE,
     "'token_embd.weight' (F32) has a NaN or infinite value at byte 20 of its data"},
    /* 28 + 4 * (vocab * dim + L * dim + dim * dim): blk.1.attn_q.weight[0] */
    {"Inf in wq", 0, 28 + 4 * (32 * 16 + 2 * 16 + 16 * 16), 0x7f800000, KEEP, 0, SLORA_ENONFINITE,
     "'blk.1.attn_q.weight' (F32) has a NaN or infinite value at byte 0 of its data"},
};

START_TEST(bin_corrupted)
{
    const struct bin_case *c = &bin_cases[_i];
    char *path = gen_small("bin", "f32", c->shared);
    size_t len;
    uint8_t *buf = test_read_file(path, &len);
    buf = realloc(buf, len + 8);
    if (c->off >= 0)
        memcpy(buf + c->off, &c->value, 4);
    if (c->keep != KEEP)
        len = c->keep < 0 ? len + (size_t)c->keep : (size_t)c->keep;
    memset(buf + len, 0, (size_t)c->append);
    len += (size_t)c->append;
    test_write_file(path, buf, len);
    expect_fail(path, c->err, c->frag, c->what);
    unlink(path);
    free(path);
    free(buf);
}
END_TEST

START_TEST(missing_file)
{
    expect_fail("/nonexistent/model.bin", SLORA_ENOTFOUND, "cannot open", "missing");
}
END_TEST

/* GGUF variants of a valid model: one key or tensor changed at a time. */
static const struct gguf_case {
    const char *what;
    const char *key;    /* key to change or drop */
    const char *str;    /* new string value (NULL: drop the key, or see u32) */
    uint32_t u32;       /* new u32 value when str is NULL and u32 != 0 */
    const char *tensor; /* tensor to drop, reshape or retype */
    int reshape;        /* 0: drop it; 1: half its rows; 2: write it in type u32 */
    int err;
    const char *frag;
} gguf_cases[] = {
    {"arch gpt2", "general.architecture", "gpt2", 0, NULL, 0, SLORA_EUNSUPPORTED,
     "architecture 'gpt2' is not supported"},
    {"no arch", "general.architecture", NULL, 0, NULL, 0, SLORA_EFORMAT,
     "missing key general.architecture"},
    {"no block count", "llama.block_count", NULL, 0, NULL, 0, SLORA_EFORMAT,
     "missing key llama.block_count"},
    {"block count string", "llama.block_count", "2", 0, NULL, 0, SLORA_EFORMAT,
     "key llama.block_count must be an integer in 1..2147483647"},
    {"no rms eps", "llama.attention.layer_norm_rms_epsilon", NULL, 0, NULL, 0, SLORA_EFORMAT,
     "missing key llama.attention.layer_norm_rms_epsilon"},
    {"rms eps string", "llama.attention.layer_norm_rms_epsilon", "1e-5", 0, NULL, 0,
     SLORA_EFORMAT, "key llama.attention.layer_norm_rms_epsilon must be a finite number"},
    {"rope scaling yarn", "llama.rope.scaling.type", "yarn", 0, NULL, 0, SLORA_EUNSUPPORTED,
     "key llama.rope.scaling.type is 'yarn': only linear RoPE scaling is supported"},
    {"experts", "llama.expert_count", NULL, 8, NULL, 0, SLORA_EUNSUPPORTED,
     "key llama.expert_count is 8: mixtures of experts are not supported"},
    {"sliding window", "llama.attention.sliding_window", NULL, 4, NULL, 0, SLORA_EUNSUPPORTED,
     "key llama.attention.sliding_window is 4, shorter than the served context 8"},
    {"key length", "llama.attention.key_length", NULL, 8, NULL, 0, SLORA_EUNSUPPORTED,
     "key llama.attention.key_length / value_length (8, 4) differ from dim / n_heads = 4"},
    {"vocab size key", "llama.vocab_size", NULL, 7, NULL, 0, SLORA_EFORMAT,
     "key llama.vocab_size is 7 but token_embd.weight has"},
    {"no context", "llama.context_length", NULL, 0, NULL, 0, SLORA_EFORMAT,
     "missing key llama.context_length"},
    {"heads 3", "llama.attention.head_count", NULL, 3, NULL, 0, SLORA_EFORMAT,
     "dim 16 is not a multiple of n_heads 3"},
    {"kv heads 3", "llama.attention.head_count_kv", NULL, 3, NULL, 0, SLORA_EFORMAT,
     "n_heads 4 is not a multiple of n_kv_heads 3"},
    {"partial rope", "llama.rope.dimension_count", NULL, 2, NULL, 0, SLORA_EUNSUPPORTED,
     "partial RoPE"},
    {"layers 3", "llama.block_count", NULL, 3, NULL, 0, SLORA_EFORMAT,
     "missing tensor 'blk.2.attn_norm.weight'"},
    {"missing ffn_up", NULL, NULL, 0, "blk.1.ffn_up.weight", 0, SLORA_EFORMAT,
     "missing tensor 'blk.1.ffn_up.weight'"},
    {"missing embedding", NULL, NULL, 0, "token_embd.weight", 0, SLORA_EFORMAT,
     "missing tensor 'token_embd.weight'"},
    {"wk shape", NULL, NULL, 0, "blk.0.attn_k.weight", 1, SLORA_EFORMAT,
     "'blk.0.attn_k.weight' has shape [16, 4, 1, 1], expected [16, 8]"},
    {"extra tensor", NULL, NULL, 0, "extra", 0, SLORA_EUNSUPPORTED,
     "tensor 'extra' is not part of a supported llama model"},
};

/* m as a GGUF with c applied; matrices (2-D tensors) in mat_type, vectors F32. */
static void write_variant(const struct slora_model *m, const struct gguf_case *c, size_t alignment,
                          uint32_t mat_type, const char *path)
{
    const struct slora_shape *s = &m->cfg.shape;
    struct slora_gguf_writer *w = slora_gguf_writer_new(3, alignment);
    const struct {
        const char *key;
        uint32_t v;
    } ints[] = {
        {"llama.context_length", (uint32_t)m->cfg.seq_len},
        {"llama.embedding_length", (uint32_t)s->dim},
        {"llama.feed_forward_length", (uint32_t)s->hidden_dim},
        {"llama.block_count", (uint32_t)s->n_layers},
        {"llama.attention.head_count", (uint32_t)s->n_heads},
        {"llama.attention.head_count_kv", (uint32_t)s->n_kv_heads},
        {"llama.rope.dimension_count", (uint32_t)(s->dim / s->n_heads)},
        {"llama.expert_count", 0},
        {"llama.attention.sliding_window", 0},
        {"llama.attention.key_length", 0},
        {"llama.vocab_size", 0},
    };
    if (!c->key || strcmp(c->key, "general.architecture"))
        slora_gguf_writer_add_str(w, "general.architecture", "llama");
    else if (c->str)
        slora_gguf_writer_add_str(w, "general.architecture", c->str);
    /* keys valued 0 are optional: written only by the case that sets them */
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (!c->key || strcmp(c->key, ints[i].key)) {
            if (ints[i].v)
                slora_gguf_writer_add_u32(w, ints[i].key, ints[i].v);
        }
        else if (c->str)
            slora_gguf_writer_add_str(w, ints[i].key, c->str);
        else if (c->u32)
            slora_gguf_writer_add_u32(w, ints[i].key, c->u32);
    }
    if (!c->key || strcmp(c->key, "llama.attention.layer_norm_rms_epsilon"))
        slora_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    else if (c->str)
        slora_gguf_writer_add_str(w, c->key, c->str);
    if (c->key && !strcmp(c->key, "llama.rope.scaling.type"))
        slora_gguf_writer_add_str(w, c->key, c->str);
    int n = slora_model_n_tensors(m);
    if (c->tensor && !strcmp(c->tensor, "extra")) {
        struct slora_model_tensor t;
        slora_model_tensor(m, 1, &t);
        slora_gguf_writer_add_tensor(w, "extra", t.t.data, 1, t.t.cols, 1, SLORA_DTYPE_F32);
    }
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor t;
        slora_model_tensor(m, i, &t);
        int hit = c->tensor && !strcmp(c->tensor, t.name);
        if (hit && !c->reshape)
            continue;
        uint32_t type = hit && c->reshape == 2 ? c->u32
                        : t.t.rows == 1        ? SLORA_DTYPE_F32
                                               : mat_type;
        slora_gguf_writer_add_tensor(w, t.name, t.t.data,
                                     hit && c->reshape == 1 ? t.t.rows / 2 : t.t.rows, t.t.cols,
                                     t.t.rows == 1 ? 1 : 2, type);
    }
    char diag[256];
    ck_assert_int_eq(slora_gguf_writer_write(w, path, diag, sizeof(diag)), 0);
    slora_gguf_writer_free(w);
}

static void assert_same_tensors(const struct slora_model *a, const struct slora_model *b,
                                float rel_tol)
{
    ck_assert(slora_arch_shape_equal(&a->cfg.shape, &b->cfg.shape));
    int n = slora_model_n_tensors(a);
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor ta, tb;
        slora_model_tensor(a, i, &ta);
        if (i == n - 1 && a->cfg.shared_classifier != b->cfg.shared_classifier)
            continue;
        slora_model_tensor(b, i, &tb);
        ck_assert_str_eq(ta.name, tb.name);
        float *xa = malloc((size_t)ta.t.cols * sizeof(float));
        float *xb = malloc((size_t)ta.t.cols * sizeof(float));
        for (int64_t r = 0; r < ta.t.rows; r++) {
            slora_matmul_get_row(&ta.t, r, xa);
            slora_matmul_get_row(&tb.t, r, xb);
            for (int64_t j = 0; j < ta.t.cols; j++)
                ck_assert_msg(fabsf(xa[j] - xb[j]) <= rel_tol * fabsf(xa[j]),
                              "%s[%lld, %lld]: %g vs %g", ta.name, (long long)r, (long long)j,
                              xa[j], xb[j]);
        }
        free(xa);
        free(xb);
    }
    float *xa = malloc((size_t)a->cfg.shape.dim * sizeof(float));
    float *xb = malloc((size_t)a->cfg.shape.dim * sizeof(float));
    for (int64_t r = 0; r < a->cfg.shape.vocab_size; r++) {
        slora_matmul_get_row(&a->wcls, r, xa);
        slora_matmul_get_row(&b->wcls, r, xb);
        for (int64_t j = 0; j < a->cfg.shape.dim; j++)
            ck_assert(fabsf(xa[j] - xb[j]) <= rel_tol * fabsf(xa[j]));
    }
    free(xa);
    free(xb);
}

START_TEST(gguf_model_corrupted)
{
    const struct gguf_case *c = &gguf_cases[_i];
    char *bin = gen_small("bin", "f32", 0);
    struct slora_model *m = test_load_model(bin);
    char *path = test_tmp_path("gguf");
    write_variant(m, c, SLORA_GGUF_DEFAULT_ALIGNMENT, SLORA_DTYPE_F32, path);
    expect_fail(path, c->err, c->frag, c->what);
    slora_model_free(m);
    unlink(path);
    unlink(bin);
    free(path);
    free(bin);
}
END_TEST

/* Any power-of-two alignment loads; matrices that land misaligned for the
 * kernels (32 bytes) are copied into the owned buffer, aligned data stays
 * in the map. */
START_TEST(gguf_alignments)
{
    static const size_t alignments[] = {1, 2, 4, 8, 64, 4096};
    char *bin = gen_small("bin", "f32", 0);
    struct slora_model *mb = test_load_model(bin);
    const struct gguf_case plain = {"plain", NULL, NULL, 0, NULL, 0, 0, NULL};
    char *path = test_tmp_path("align");
    for (size_t i = 0; i < sizeof(alignments) / sizeof(alignments[0]); i++) {
        write_variant(mb, &plain, alignments[i], SLORA_DTYPE_F32, path);
        struct slora_model *m = test_load_model(path);
        assert_same_tensors(mb, m, 0.0f);
        for (int l = 0; l < 2; l++)
            ck_assert_uint_eq((uintptr_t)slora_model_matrix(m, l, SLORA_MOD_WQ)->data % 32, 0);
        if (alignments[i] >= 32)
            ck_assert_ptr_null(m->owned);
        else
            ck_assert_ptr_nonnull(m->owned);
        slora_model_free(m);
    }
    slora_model_free(mb);
    unlink(path);
    unlink(bin);
    free(path);
    free(bin);
}
END_TEST

/* GGUFs slorad writes declare general.alignment 64, so every matrix starts
 * on a cache line in the map (64-byte loads of F32 rows never straddle
 * two lines) and is used in place. */
START_TEST(written_aligned)
{
    static const char *dtypes[] = {"f32", "f16", "bf16"};
    char diag[256];
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++) {
        char *path = gen_small("gguf3", dtypes[i], 0);
        size_t len;
        uint8_t *buf = test_read_file(path, &len);
        struct slora_gguf *g;
        ck_assert_int_eq(slora_gguf_parse(buf, len, &g, diag, sizeof(diag)), 0);
        ck_assert_uint_eq(g->alignment, 64);
        ck_assert_uint_eq(g->data_offset % 64, 0);
        for (size_t t = 0; t < g->n_tensors; t++)
            ck_assert_uint_eq((size_t)((const uint8_t *)g->tensors[t].data - buf) % 64, 0);
        slora_gguf_free(g);
        free(buf);
        struct slora_model *m = test_load_model(path);
        ck_assert_ptr_null(m->owned);
        for (int l = 0; l < 2; l++)
            for (int mod = 0; mod < SLORA_MOD_COUNT; mod++)
                ck_assert_uint_eq((uintptr_t)slora_model_matrix(m, l, mod)->data % 64, 0);
        slora_model_free(m);
        unlink(path);
        free(path);
    }
}
END_TEST

/* Typed tensors: a dim 32 model with every matrix in Q8_0, then one thing
 * wrong in it. A tensor whose type, size or block count disagrees with its
 * shape, an unknown type id, a quantized vector or a non-finite block scale
 * is refused at load, naming the tensor. Byte patches go to
 * blk.0.attn_q.weight's tensor info (n_dims u32, ne0 u64, ne1 u64, type
 * u32, offset u64 after its name) or its data. */
enum { TI_NE0 = 4, TI_NE1 = 12, TI_TYPE = 20, DATA = -1, RETYPE = -2 };
static const struct typed_case {
    const char *what;
    int where;      /* TI_* field, DATA (offset in the data) or RETYPE (rewrite) */
    size_t off;     /* DATA: byte in the tensor's data */
    uint64_t value; /* the field's or the u16's new value; RETYPE: the type */
    int width;
    int err;
    const char *frag;
} typed_cases[] = {
    {"unknown type id", TI_TYPE, 0, 99, 4, SLORA_EUNSUPPORTED,
     "tensor 'blk.0.attn_q.weight' has unknown type id 99"},
    {"retired type id", TI_TYPE, 0, 5, 4, SLORA_EUNSUPPORTED,
     "tensor 'blk.0.attn_q.weight' has unknown type id 5"},
    {"type smaller than the data (Q4_0)", TI_TYPE, 0, SLORA_DTYPE_Q4_0, 4, SLORA_EFORMAT,
     "the end of tensor 'blk.0.attn_q.weight' (Q4_0, 32 x 32 elements, 576 bytes)"},
    {"type larger than the data (F16)", TI_TYPE, 0, SLORA_DTYPE_F16, 4, SLORA_EFORMAT,
     "the end of tensor 'blk.0.attn_q.weight' (F16, 32 x 32 elements, 2048 bytes)"},
    {"columns not whole blocks", TI_NE0, 0, 48, 8, SLORA_EFORMAT,
     "tensor 'blk.0.attn_q.weight' of type Q8_0 has 48 columns, not a multiple of its block of 32"},
    {"more blocks than the data", TI_NE0, 0, 64, 8, SLORA_EFORMAT,
     "the end of tensor 'blk.0.attn_q.weight' (Q8_0, 64 x 32 elements, 2176 bytes)"},
    {"fewer rows than the data", TI_NE1, 0, 16, 8, SLORA_EFORMAT,
     "the end of tensor 'blk.0.attn_q.weight' (Q8_0, 32 x 16 elements, 544 bytes)"},
    {"activation-only type", RETYPE, 0, SLORA_DTYPE_Q8_1, 0, SLORA_EUNSUPPORTED,
     "tensor 'blk.0.attn_q.weight' has type Q8_1, not supported for a matrix"},
    {"NaN block scale", DATA, 34, 0x7e00, 2, SLORA_ENONFINITE,
     "tensor 'blk.0.attn_q.weight' (Q8_0) has a NaN or infinite block scale at byte 34"},
    {"Inf block scale", DATA, 1088 - 34, 0xfc00, 2, SLORA_ENONFINITE,
     "tensor 'blk.0.attn_q.weight' (Q8_0) has a NaN or infinite block scale at byte 1054"},
};

START_TEST(gguf_typed_corrupted)
{
    const struct typed_case *c = &typed_cases[_i];
    char *src = test_tmp_path("src"), *path = test_tmp_path("typed");
    char *argv[] = {"gen-model", "--dim", "32", "--hidden", "64", "--layers", "2", "--heads", "4",
                    "--kv-heads", "2", "--vocab", "32", "--seq-len", "8", "-o", src, NULL};
    ck_assert_int_eq(slora_cmd_gen_model(17, argv), 0);
    struct slora_model *m = test_load_model(src);
    const struct gguf_case retype = {"retype", NULL, NULL, (uint32_t)c->value,
                                     "blk.0.attn_q.weight", 2, 0, NULL};
    const struct gguf_case plain = {"plain", NULL, NULL, 0, NULL, 0, 0, NULL};
    write_variant(m, c->where == RETYPE ? &retype : &plain, SLORA_GGUF_DEFAULT_ALIGNMENT,
                  SLORA_DTYPE_Q8_0, path);
    slora_model_free(m);
    /* unpatched, it loads with Q8_0 matrices */
    if (c->where != RETYPE) {
        m = test_load_model(path);
        ck_assert_int_eq(slora_model_matrix(m, 0, SLORA_MOD_WQ)->type, SLORA_DTYPE_Q8_0);
        slora_model_free(m);
    }
    size_t len;
    uint8_t *buf = test_read_file(path, &len);
    size_t at = 0;
    if (c->where == DATA) {
        struct slora_gguf *g;
        char diag[256];
        ck_assert_int_eq(slora_gguf_parse(buf, len, &g, diag, sizeof(diag)), 0);
        at = (size_t)(slora_gguf_find_tensor(g, "blk.0.attn_q.weight")->data - buf) + c->off;
        slora_gguf_free(g);
    } else if (c->where != RETYPE) {
        size_t name = test_find(buf, len, "\x13\0\0\0\0\0\0\0blk.0.attn_q.weight", 27);
        at = name + 27 + (size_t)c->where;
    }
    if (c->width)
        memcpy(buf + at, &c->value, (size_t)c->width);
    test_write_file(path, buf, len);
    expect_fail(path, c->err, c->frag, c->what);
    free(buf);
    unlink(path);
    unlink(src);
    free(path);
    free(src);
}
END_TEST

/* A GGUF's own vocabulary is loaded with the model; a tokenizer model other
 * than "llama" and "gpt2" is refused, naming the key and value. */
START_TEST(gguf_tokenizer_model)
{
    char *path = test_tmp_path("vocab"), *tok = test_tmp_path("tok");
    char *argv[] = {"gen-model", "--vocab",         "300", "-o", path, "--format",
                    "gguf3",     "--tokenizer-out", tok,   NULL};
    ck_assert_int_eq(slora_cmd_gen_model(9, argv), 0);
    struct slora_model *m = test_load_model(path);
    ck_assert_ptr_nonnull(m->gguf_vocab);
    slora_model_free(m);
    size_t len;
    uint8_t *buf = test_read_file(path, &len);
    size_t at = test_find(buf, len, "tokenizer.ggml.model", 20) + 20 + 4 + 8;
    ck_assert(!memcmp(buf + at, "llama", 5));
    memcpy(buf + at, "gpt-2", 5);
    test_write_file(path, buf, len);
    char diag[256] = "";
    ck_assert_int_eq(slora_model_load(path, NULL, &m, diag, sizeof(diag)), SLORA_EUNSUPPORTED);
    ck_assert_msg(strstr(diag, "tokenizer.ggml.model 'gpt-2' is not supported"), "%s", diag);
    free(buf);
    unlink(path);
    unlink(tok);
    free(path);
    free(tok);
}
END_TEST

START_TEST(gen_model_formats)
{
    for (int shared = 0; shared < 2; shared++) {
        char *bin = gen_small("bin", "f32", shared);
        char *g2 = gen_small("gguf2", "f32", shared);
        char *g3 = gen_small("gguf3", "f32", shared);
        char *h = gen_small("gguf3", "f16", shared);
        struct slora_model *mb = test_load_model(bin), *m2 = test_load_model(g2),
                           *m3 = test_load_model(g3), *mh = test_load_model(h);
        ck_assert_int_eq(mb->cfg.shape.dim, 16);
        ck_assert_int_eq(mb->cfg.shape.hidden_dim, 24);
        ck_assert_int_eq(mb->cfg.shape.n_kv_heads, 2);
        ck_assert_int_eq(mb->cfg.seq_len, 8);
        ck_assert_int_eq(mb->cfg.shared_classifier, shared);
        ck_assert_int_eq(m3->cfg.shared_classifier, shared);
        ck_assert_int_eq(m3->cfg.seq_len, 8);
        ck_assert_ptr_null(m3->gguf_vocab);
        ck_assert_ptr_null(m3->owned);
        ck_assert_ptr_null(mh->owned); /* F16 matrices are used in place */
        ck_assert_int_eq(mh->layers[0].w[SLORA_MOD_WQ].type, SLORA_DTYPE_F16);
        assert_same_tensors(mb, m2, 0.0f);
        assert_same_tensors(mb, m3, 0.0f);
        assert_same_tensors(mb, mh, 1.0f / 1024);
        /* dim 16: rms norms 2*2*16 + 16, matrices per layer 2*256 + 2*128 + 3*384 */
        size_t vecs = 2 * 2 * 16 + 16;
        size_t mats = 32 * 16 * (shared ? 1 : 2) + 2 * (512 + 256 + 1152);
        ck_assert_uint_eq(mb->weight_bytes, (vecs + mats) * 4);
        ck_assert_uint_eq(mh->weight_bytes, vecs * 4 + mats * 2); /* as stored */
        /* the same seed writes the same bytes */
        char *again = gen_small("bin", "f32", shared);
        size_t la, lb;
        uint8_t *a = test_read_file(bin, &la), *b = test_read_file(again, &lb);
        ck_assert_uint_eq(la, lb);
        ck_assert(!memcmp(a, b, la));
        free(a);
        free(b);
        slora_model_free(mb);
        slora_model_free(m2);
        slora_model_free(m3);
        slora_model_free(mh);
        char *paths[] = {bin, g2, g3, h, again};
        for (int i = 0; i < 5; i++) {
            unlink(paths[i]);
            free(paths[i]);
        }
    }
}
END_TEST

/* write_bin reproduces the file it loaded; replacement matrices substitute. */
START_TEST(write_bin_round_trip)
{
    for (int shared = 0; shared < 2; shared++) {
        char *bin = gen_small("bin", "f32", shared);
        char *out = test_tmp_path("out");
        struct slora_model *m = test_load_model(bin);
        char diag[256];
        ck_assert_int_eq(slora_model_write_bin(m, NULL, out, diag, sizeof(diag)), 0);
        size_t la, lb;
        uint8_t *a = test_read_file(bin, &la), *b = test_read_file(out, &lb);
        ck_assert_uint_eq(la, lb);
        ck_assert(!memcmp(a, b, la));
        free(a);
        free(b);

        const float *replace[2 * SLORA_MOD_COUNT] = {0};
        float w2[16 * 24];
        for (int i = 0; i < 16 * 24; i++)
            w2[i] = (float)i;
        replace[1 * SLORA_MOD_COUNT + SLORA_MOD_W2] = w2;
        ck_assert_int_eq(slora_model_write_bin(m, replace, out, diag, sizeof(diag)), 0);
        struct slora_model *m2 = test_load_model(out);
        ck_assert(!memcmp(slora_model_matrix(m2, 1, SLORA_MOD_W2)->data, w2, sizeof(w2)));
        ck_assert(!memcmp(slora_model_matrix(m2, 0, SLORA_MOD_W2)->data,
                          slora_model_matrix(m, 0, SLORA_MOD_W2)->data, sizeof(w2)));
        slora_model_free(m2);
        slora_model_free(m);
        unlink(bin);
        unlink(out);
        free(bin);
        free(out);
    }
}
END_TEST

/* The upstream stories260K.bin: header as published; written back, the
 * weights are byte-identical and the freq_cis tables agree to float rounding. */
START_TEST(stories_bin)
{
    struct slora_model *m = test_load_model(STORIES_BIN);
    const struct slora_shape want = {64, 172, 5, 8, 4, 512};
    ck_assert(slora_arch_shape_equal(&m->cfg.shape, &want));
    ck_assert_int_eq(m->cfg.seq_len, 512);
    ck_assert(m->cfg.shared_classifier);
    ck_assert_ptr_eq(m->wcls.data, m->tok_emb.data);
    ck_assert_ptr_null(m->owned);
    char *out = test_tmp_path("stories");
    char diag[256];
    ck_assert_int_eq(slora_model_write_bin(m, NULL, out, diag, sizeof(diag)), 0);
    size_t la, lb;
    uint8_t *a = test_read_file(STORIES_BIN, &la), *b = test_read_file(out, &lb);
    ck_assert_uint_eq(la, lb);
    size_t freq_at = la - 512 * 4 * 2 * 4;
    ck_assert(!memcmp(a, b, freq_at));
    for (size_t i = freq_at; i < la; i += 4) {
        float x, y;
        memcpy(&x, a + i, 4);
        memcpy(&y, b + i, 4);
        ck_assert_msg(fabsf(x - y) <= 2e-4f, "freq_cis at %zu: %g vs %g", i, x, y);
    }
    free(a);
    free(b);
    unlink(out);
    free(out);
    slora_model_free(m);
}
END_TEST

/* llama.cpp's own conversion: same tensors, its context length, its vocabulary. */
START_TEST(stories_llamacpp_gguf)
{
    struct slora_model *mb = test_load_model(STORIES_BIN);
    struct slora_model *mg = test_load_model(LLAMACPP_GGUF);
    ck_assert_int_eq(mg->cfg.seq_len, 2048);
    ck_assert(!mg->cfg.shared_classifier);
    ck_assert_ptr_nonnull(mg->gguf_vocab);
    assert_same_tensors(mb, mg, 0.0f);
    slora_model_free(mb);
    slora_model_free(mg);
}
END_TEST

Suite *slora_model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, bin_corrupted, 0, sizeof(bin_cases) / sizeof(bin_cases[0]));
    tcase_add_test(tc, missing_file);
    tcase_add_loop_test(tc, gguf_model_corrupted, 0, sizeof(gguf_cases) / sizeof(gguf_cases[0]));
    tcase_add_loop_test(tc, gguf_typed_corrupted, 0, sizeof(typed_cases) / sizeof(typed_cases[0]));
    tcase_add_test(tc, gguf_alignments);
    tcase_add_test(tc, written_aligned);
    tcase_add_test(tc, gguf_tokenizer_model);
    tcase_add_test(tc, gen_model_formats);
    tcase_add_test(tc, write_bin_round_trip);
    tcase_add_test(tc, stories_bin);
    tcase_add_test(tc, stories_llamacpp_gguf);
    suite_add_tcase(s, tc);
    return s;
}
