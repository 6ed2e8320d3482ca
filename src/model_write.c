/* model_write.c - the model writers (see model_write.h). */
#include "internal.h"

#include <slora/error.h>
#include <slora/fsio.h>
#include <slora/matmul.h>
#include <slora/model_write.h>
#include <slora/tokenizer.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama2.c export.py's precompute_freqs_cis: cos then sin, (seq_len, hs / 2). */
static int write_freq_tables(FILE *f, const struct slora_model *m)
{
    int hs = m->cfg.head_dim;
    for (int part = 0; part < 2; part++)
        for (int t = 0; t < m->cfg.seq_len; t++)
            for (int i = 0; i < hs / 2; i++) {
                double freq = 1.0 / pow(m->cfg.rope_theta, (double)(2 * i) / hs);
                float v = (float)(part ? sin(t * freq) : cos(t * freq));
                if (fwrite(&v, sizeof(v), 1, f) != 1)
                    return -1;
            }
    return 0;
}

struct bin_job {
    const struct slora_model *m;
    const float *const *replace;
};

/* Write tensor t (of module mod, or -1) as F32 floats in GGUF row order,
 * taking rows from rep (F32, the loaded order) instead when given. */
static int write_f32(FILE *f, const struct slora_model *m, int mod, const struct slora_tensor *t,
                     const float *rep)
{
    bool permuted = m->cfg.qk_rotate_half && (mod == SLORA_MOD_WQ || mod == SLORA_MOD_WK);
    if ((t->type == SLORA_DTYPE_F32 || rep) && !permuted) {
        size_t n = (size_t)(t->rows * t->cols);
        return fwrite(rep ? rep : t->data, sizeof(float), n, f) == n ? 0 : -1;
    }
    size_t n = (size_t)t->cols;
    float *row = malloc(n * sizeof(float));
    int rc = row ? 0 : -1;
    for (int64_t r = 0; !rc && r < t->rows; r++) {
        int64_t src = mod >= 0 ? slora_model_native_row(m, mod, r) : r;
        if (rep)
            memcpy(row, rep + src * t->cols, n * sizeof(float));
        else
            slora_matmul_get_row(t, src, row);
        rc = fwrite(row, sizeof(float), n, f) == n ? 0 : -1;
    }
    free(row);
    return rc;
}

static int write_bin_all(FILE *f, void *ctx)
{
    const struct bin_job *job = ctx;
    const struct slora_model *m = job->m;
    const struct slora_shape *s = &m->cfg.shape;
    int32_t h[7] = {s->dim,        s->hidden_dim,
                    s->n_layers,   s->n_heads,
                    s->n_kv_heads, m->cfg.shared_classifier ? s->vocab_size : -s->vocab_size,
                    m->cfg.seq_len};
    if (fwrite(h, sizeof(h), 1, f) != 1)
        return -1;
    /* tensors up to output.weight; biases and rope_freqs were refused */
    int n = 2 + 9 * s->n_layers + !m->cfg.shared_classifier;
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor t;
        slora_model_tensor(m, i, &t);
        if (i == n - 1 && !m->cfg.shared_classifier && write_freq_tables(f, m))
            return -1;
        const float *rep =
            job->replace && t.module >= 0 ? job->replace[t.layer * SLORA_MOD_COUNT + t.module]
                                          : NULL;
        if (write_f32(f, m, t.module, &t.t, rep))
            return -1;
    }
    if (m->cfg.shared_classifier && write_freq_tables(f, m))
        return -1;
    return 0;
}

int slora_model_write_bin(const struct slora_model *m, const float *const *replace,
                          const char *path, char *diag, size_t diag_len)
{
    const struct slora_model_config *c = &m->cfg;
    if (c->arch != SLORA_ARCH_LLAMA || c->qkv_bias || m->rope_freqs || c->rope_theta != 10000.0f ||
        c->rms_eps != 1e-5f || c->rope_freq_scale != 1.0f)
        return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED,
                           "%s: a llama2.c .bin holds only llama models with llama2.c's RoPE and "
                           "norm constants; write a GGUF",
                           path);
    int n = slora_model_n_tensors(m);
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor t;
        slora_model_tensor(m, i, &t);
        if (t.t.type != SLORA_DTYPE_F32 && t.t.type != SLORA_DTYPE_F16 &&
            t.t.type != SLORA_DTYPE_BF16)
            return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED,
                               "%s: tensor '%s' is %s; a .bin holds F32 only", path, t.name,
                               slora_dtype_name(t.t.type));
    }
    struct bin_job job = {m, replace};
    return slora_fsio_write(path, write_bin_all, &job, diag, diag_len);
}

/* The tokens of g padded to n_vocab with unused "[PAD<i>]" entries, as
 * llama.cpp's converter pads a checkpoint whose embedding is larger than
 * its tokenizer. */
static int pad_tokens(struct slora_gguf_writer *w, const struct slora_gguf_kv *kv, int n_vocab)
{
    size_t n = (size_t)n_vocab;
    const char **s = calloc(n, sizeof(*s));
    size_t *lens = calloc(n, sizeof(*lens));
    char *pads = calloc(n - kv->n, 24);
    int rc = SLORA_ENOMEM;
    if (s && lens && pads) {
        const uint8_t *p = kv->value;
        for (size_t i = 0; i < n; i++) {
            if (i < kv->n) {
                uint64_t len;
                memcpy(&len, p, 8);
                s[i] = (const char *)p + 8;
                lens[i] = (size_t)len;
                p += 8 + len;
            } else {
                char *pad = pads + 24 * (i - kv->n);
                lens[i] = (size_t)snprintf(pad, 24, "[PAD%zu]", i);
                s[i] = pad;
            }
        }
        rc = slora_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", s, lens, n);
    }
    free(s);
    free(lens);
    free(pads);
    return rc;
}

/* An I32 (token types, UNUSED = 5) or F32 (scores, 0) array padded to n. */
static int pad_array(struct slora_gguf_writer *w, const struct slora_gguf_kv *kv, const char *key,
                     int n_vocab)
{
    uint32_t *v = calloc((size_t)n_vocab, 4);
    if (!v)
        return SLORA_ENOMEM;
    memcpy(v, kv->value, 4 * (size_t)kv->n);
    for (size_t i = kv->n; i < (size_t)n_vocab; i++)
        v[i] = kv->arr_type == SLORA_GGUF_I32 ? 5 : 0;
    int rc = slora_gguf_writer_add_array(w, key, kv->arr_type, v, (size_t)n_vocab);
    free(v);
    return rc;
}

/* g's tokenizer.* keys verbatim, the vocabulary arrays padded to n_vocab. */
static int copy_vocab(struct slora_gguf_writer *w, const struct slora_gguf *g, int n_vocab)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < g->n_kv; i++) {
        const struct slora_gguf_kv *kv = &g->kv[i];
        if (kv->key_len <= 10 || memcmp(kv->key, "tokenizer.", 10))
            continue;
        char key[64];
        snprintf(key, sizeof(key), "%.*s", kv->key_len > 63 ? 63 : (int)kv->key_len, kv->key);
        bool pad = kv->type == SLORA_GGUF_ARRAY && kv->n < (uint64_t)n_vocab;
        if (pad && !strcmp(key, "tokenizer.ggml.tokens") && kv->arr_type == SLORA_GGUF_STRING)
            rc = pad_tokens(w, kv, n_vocab);
        else if (pad && (!strcmp(key, "tokenizer.ggml.token_type") ||
                         !strcmp(key, "tokenizer.ggml.scores")) &&
                 (kv->arr_type == SLORA_GGUF_I32 || kv->arr_type == SLORA_GGUF_F32))
            rc = pad_array(w, kv, key, n_vocab);
        else
            rc = slora_gguf_writer_add_kv(w, kv);
    }
    return rc;
}

static void add_hparams(struct slora_gguf_writer *w, const struct slora_model *m, const char *name)
{
    const struct slora_model_config *c = &m->cfg;
    const struct slora_shape *s = &c->shape;
    const char *arch = c->arch == SLORA_ARCH_QWEN2 ? "qwen2" : "llama";
    char k[96];
#define KEY(x) (snprintf(k, sizeof(k), "%s.%s", arch, (x)), k)
    slora_gguf_writer_add_str(w, "general.architecture", arch);
    slora_gguf_writer_add_str(w, "general.name", name ? name : arch);
    slora_gguf_writer_add_u32(w, KEY("context_length"), (uint32_t)c->n_ctx_train);
    slora_gguf_writer_add_u32(w, KEY("embedding_length"), (uint32_t)s->dim);
    slora_gguf_writer_add_u32(w, KEY("feed_forward_length"), (uint32_t)s->hidden_dim);
    slora_gguf_writer_add_u32(w, KEY("block_count"), (uint32_t)s->n_layers);
    slora_gguf_writer_add_u32(w, KEY("attention.head_count"), (uint32_t)s->n_heads);
    slora_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), (uint32_t)s->n_kv_heads);
    slora_gguf_writer_add_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim);
    slora_gguf_writer_add_f32(w, KEY("rope.freq_base"), c->rope_theta);
    slora_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->rms_eps);
    if (c->rope_freq_scale != 1.0f) {
        slora_gguf_writer_add_str(w, KEY("rope.scaling.type"), "linear");
        slora_gguf_writer_add_f32(w, KEY("rope.scaling.factor"), 1.0f / c->rope_freq_scale);
    }
#undef KEY
}

/* GGUF row order of wq and wk (a model keeping HF's rotate-half order is
 * written as llama.cpp's converter permutes it), or NULL maps for the
 * identity; caller frees. */
static int qk_maps(const struct slora_model *m, int64_t **mq, int64_t **mk)
{
    *mq = *mk = NULL;
    if (!m->cfg.qk_rotate_half)
        return 0;
    int64_t nq = m->cfg.shape.dim, nk = slora_arch_kv_dim(&m->cfg.shape);
    *mq = malloc((size_t)nq * sizeof(int64_t));
    *mk = malloc((size_t)nk * sizeof(int64_t));
    if (!*mq || !*mk)
        return SLORA_ENOMEM;
    for (int64_t r = 0; r < nq; r++)
        (*mq)[r] = slora_model_native_row(m, SLORA_MOD_WQ, r);
    for (int64_t r = 0; r < nk; r++)
        (*mk)[r] = slora_model_native_row(m, SLORA_MOD_WK, r);
    return 0;
}

int slora_model_write_gguf(const struct slora_model *m, const struct slora_model_write_opts *o,
                           const char *path, char *diag, size_t diag_len)
{
    int version = o->version ? o->version : 3;
    int64_t *mq, *mk;
    if (qk_maps(m, &mq, &mk)) {
        free(mq);
        free(mk);
        return SLORA_ENOMEM;
    }
    /* 64, not GGUF's default 32: a matrix's rows then start on cache lines,
     * and 64-byte vector loads of F32 rows stay within one (1B F32 prefill
     * 52 tok/s against 48 for the same weights 32 bytes off, same run).
     * The alignment is written as general.alignment, which every GGUF
     * reader honours. */
    struct slora_gguf_writer *w = slora_gguf_writer_new((uint32_t)version, 64);
    if (!w) {
        free(mq);
        free(mk);
        return SLORA_ENOMEM;
    }
    add_hparams(w, m, o->name);
    slora_gguf_writer_set_threads(w, o->n_threads);
    if (o->types) {
        /* ggml's quantization version of the block formats (GGML_QNT_VERSION) */
        slora_gguf_writer_add_u32(w, "general.quantization_version", 2);
        slora_gguf_writer_add_u32(w, "general.file_type", (uint32_t)o->file_type);
    }
    int rc = o->tok ? slora_tokenizer_write_gguf(o->tok, w) : o->vocab_from ? copy_vocab(w, o->vocab_from, m->cfg.shape.vocab_size) : 0;
    if (!rc && !o->tok && !o->vocab_from && m->cfg.bos_id >= 0) {
        slora_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)m->cfg.bos_id);
        slora_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)m->cfg.eos_id);
    }
    if (!rc && m->chat_template && !o->vocab_from)
        rc = slora_gguf_writer_add_str(w, "tokenizer.chat_template", m->chat_template);
    int n = slora_model_n_tensors(m);
    /* q/k biases of a rotate-half model, permuted like their matrices' rows */
    float **bias = calloc((size_t)n, sizeof(*bias));
    if (!bias)
        rc = SLORA_ENOMEM;
    for (int i = 0; !rc && i < n; i++) {
        struct slora_model_tensor t;
        slora_model_tensor(m, i, &t);
        int vec = t.t.rows == 1;
        if (m->cfg.qk_rotate_half && (t.bias_of == SLORA_MOD_WQ || t.bias_of == SLORA_MOD_WK)) {
            const float *src = t.t.data;
            if (!(bias[i] = malloc((size_t)t.t.cols * sizeof(float)))) {
                rc = SLORA_ENOMEM;
                break;
            }
            for (int64_t r = 0; r < t.t.cols; r++)
                bias[i][r] = src[slora_model_native_row(m, t.bias_of, r)];
            t.t.data = bias[i];
        }
        uint32_t dtype = vec        ? SLORA_DTYPE_F32
                         : o->types ? o->types[i]
                         : o->dtype < 0 ? t.t.type
                                        : (uint32_t)o->dtype;
        const int64_t *map = t.module == SLORA_MOD_WQ ? mq : t.module == SLORA_MOD_WK ? mk : NULL;
        rc = slora_gguf_writer_add_typed(w, t.name, &t.t, vec ? 1 : 2, dtype, map);
        if (rc)
            snprintf(diag, diag_len, "%s: tensor '%s': cannot write %s as %s", path, t.name,
                     slora_dtype_name(t.t.type), slora_dtype_name(dtype));
    }
    if (!rc)
        rc = slora_gguf_writer_write(w, path, diag, diag_len);
    slora_gguf_writer_free(w);
    for (int i = 0; bias && i < n; i++)
        free(bias[i]);
    free(bias);
    free(mq);
    free(mk);
    return rc;
}
