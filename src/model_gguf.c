/* model_gguf.c - a GGUF file (see gguf.h) as a slora_model.
 *
 * Architectures: "llama" (Llama 2/3/3.x, TinyLlama, Mistral, SmolLM2, Phi-3
 * style vocabularies; Meta's interleaved-pair RoPE, as llama.cpp's
 * converter permutes HF's q/k rows; optional q/k/v biases; Llama 3's RoPE
 * scaling as rope_freqs.weight) and "qwen2" (NeoX-style RoPE, q/k/v
 * biases). Hyper-parameters come from the keys "<arch>.*" llama.cpp writes;
 * anything the forward pass cannot honour (other architectures, partial
 * RoPE, other head sizes, RoPE scaling other than linear, mixtures of
 * experts, a sliding window shorter than the served context, tensors it
 * does not know) is refused naming the key or tensor.
 *
 * Matrices and embeddings are views of any weight type into the file;
 * F16/BF16 vectors are converted once into m->owned.
 */
#include "internal.h"
#include "model_internal.h"

#include <slora/error.h>
#include <slora/gguf.h>
#include <slora/log.h>
#include <slora/quant.h>
#include <slora/tokenizer.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct loader {
    const struct slora_gguf *g;
    const char *path;
    const char *arch; /* key prefix */
    char *diag;
    size_t diag_len;
};

static const char *key(const struct loader *ld, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s.%s", ld->arch, name);
    return buf;
}

/* An integer key "<arch>.name" in [lo, hi]; absent: *out = dflt, or an
 * error when dflt < lo (required). */
static int get_int(const struct loader *ld, const char *name, int lo, int hi, int dflt, int *out)
{
    char k[128];
    key(ld, name, k, sizeof(k));
    int64_t v;
    int rc = slora_gguf_get_int(ld->g, k, &v);
    if (rc == SLORA_ENOTFOUND) {
        if (dflt < lo)
            return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT, "%s: missing key %s",
                               ld->path, k);
        *out = dflt;
        return 0;
    }
    if (rc || v < lo || v > hi)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                           "%s: key %s must be an integer in %d..%d", ld->path, k, lo, hi);
    *out = (int)v;
    return 0;
}

/* A finite number key "<arch>.name" (absent: dflt, or required when
 * dflt is NaN). */
static int get_float(const struct loader *ld, const char *name, double dflt, float *out)
{
    char k[128];
    key(ld, name, k, sizeof(k));
    double v;
    int rc = slora_gguf_get_float(ld->g, k, &v);
    if (rc == SLORA_ENOTFOUND) {
        if (isnan(dflt))
            return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT, "%s: missing key %s",
                               ld->path, k);
        *out = (float)dflt;
        return 0;
    }
    if (rc || !isfinite((float)v))
        return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                           "%s: key %s must be a finite number", ld->path, k);
    *out = (float)v;
    return 0;
}

static bool str_is(const char *s, size_t len, const char *want)
{
    return len == strlen(want) && !memcmp(s, want, len);
}

static int rope_scaling(const struct loader *ld, struct slora_model_config *c)
{
    char k[128];
    const char *type;
    size_t type_len;
    c->rope_freq_scale = 1.0f;
    key(ld, "rope.scaling.type", k, sizeof(k));
    int rc = slora_gguf_get_str(ld->g, k, &type, &type_len);
    if (rc == SLORA_ENOTFOUND) {
        float lin;
        /* the older key: a linear scale factor */
        if ((rc = get_float(ld, "rope.scale_linear", 1.0, &lin)))
            return rc;
        if (!(lin > 0.0f))
            return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                               "%s: key %s.rope.scale_linear must be positive", ld->path, ld->arch);
        c->rope_freq_scale = 1.0f / lin;
        return 0;
    }
    if (rc)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT, "%s: key %s must be a string",
                           ld->path, k);
    if (str_is(type, type_len, "none"))
        return 0;
    if (!str_is(type, type_len, "linear"))
        return slora__diag(ld->diag, ld->diag_len, SLORA_EUNSUPPORTED,
                           "%s: key %s is '%.*s': only linear RoPE scaling is supported", ld->path,
                           k, type_len > 32 ? 32 : (int)type_len, type);
    float factor;
    if ((rc = get_float(ld, "rope.scaling.factor", NAN, &factor)))
        return rc;
    if (!(factor > 0.0f))
        return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                           "%s: key %s.rope.scaling.factor must be positive", ld->path, ld->arch);
    c->rope_freq_scale = 1.0f / factor;
    return 0;
}

static int special_ids(const struct loader *ld, struct slora_model_config *c, bool spm)
{
    static const char *const names[2] = {"tokenizer.ggml.bos_token_id",
                                         "tokenizer.ggml.eos_token_id"};
    int *ids[2] = {&c->bos_id, &c->eos_id};
    for (int i = 0; i < 2; i++) {
        int64_t v;
        int rc = slora_gguf_get_int(ld->g, names[i], &v);
        /* llama.cpp's defaults: SentencePiece vocabularies use 1 and 2 */
        if (rc == SLORA_ENOTFOUND) {
            *ids[i] = spm ? i + 1 : -1;
            continue;
        }
        if (rc || v < 0 || v >= c->shape.vocab_size)
            return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                               "%s: key %s must be a token id below %d", ld->path, names[i],
                               c->shape.vocab_size);
        *ids[i] = (int)v;
    }
    c->add_bos = spm;
    int rc = slora_gguf_get_bool(ld->g, "tokenizer.ggml.add_bos_token", &c->add_bos);
    if (rc && rc != SLORA_ENOTFOUND)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                           "%s: key tokenizer.ggml.add_bos_token must be a bool", ld->path);
    if (c->add_bos && c->bos_id < 0)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                           "%s: tokenizer.ggml.add_bos_token is set but there is no bos_token_id",
                           ld->path);
    return 0;
}

static int read_config(struct loader *ld, int max_context, struct slora_model_config *c)
{
    const char *arch;
    size_t arch_len;
    if (slora_gguf_get_str(ld->g, "general.architecture", &arch, &arch_len))
        return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                           "%s: missing key general.architecture", ld->path);
    memset(c, 0, sizeof(*c));
    if (str_is(arch, arch_len, "llama")) {
        c->arch = SLORA_ARCH_LLAMA;
        c->rope_style = SLORA_ROPE_NORM;
        ld->arch = "llama";
    } else if (str_is(arch, arch_len, "qwen2")) {
        c->arch = SLORA_ARCH_QWEN2;
        c->rope_style = SLORA_ROPE_NEOX;
        ld->arch = "qwen2";
    } else {
        return slora__diag(ld->diag, ld->diag_len, SLORA_EUNSUPPORTED,
                           "%s: general.architecture '%.*s' is not supported (llama, qwen2)",
                           ld->path, arch_len > 64 ? 64 : (int)arch_len, arch);
    }
    struct slora_shape *s = &c->shape;
    int rc, experts, window, rope_dims, key_len, value_len, vocab_key;
    if ((rc = get_int(ld, "embedding_length", 1, INT32_MAX, -1, &s->dim)) ||
        (rc = get_int(ld, "feed_forward_length", 1, INT32_MAX, -1, &s->hidden_dim)) ||
        (rc = get_int(ld, "block_count", 1, INT32_MAX, -1, &s->n_layers)) ||
        (rc = get_int(ld, "attention.head_count", 1, INT32_MAX, -1, &s->n_heads)) ||
        (rc = get_int(ld, "attention.head_count_kv", 1, INT32_MAX, s->n_heads, &s->n_kv_heads)) ||
        (rc = get_int(ld, "context_length", 1, INT32_MAX, -1, &c->n_ctx_train)) ||
        (rc = get_int(ld, "expert_count", 0, INT32_MAX, 0, &experts)) ||
        (rc = get_int(ld, "attention.sliding_window", 0, INT32_MAX, 0, &window)) ||
        (rc = get_float(ld, "attention.layer_norm_rms_epsilon", NAN, &c->rms_eps)) ||
        (rc = get_float(ld, "rope.freq_base", 10000.0, &c->rope_theta)) ||
        (rc = rope_scaling(ld, c)))
        return rc;
    char k[128];
    if (experts > 0)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EUNSUPPORTED,
                           "%s: key %s is %d: mixtures of experts are not supported", ld->path,
                           key(ld, "expert_count", k, sizeof(k)), experts);
    c->head_dim = s->dim / s->n_heads;
    if (s->dim % s->n_heads)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                           "%s: dim %d is not a multiple of n_heads %d", ld->path, s->dim,
                           s->n_heads);
    if ((rc = get_int(ld, "rope.dimension_count", 0, INT32_MAX, c->head_dim, &rope_dims)) ||
        (rc = get_int(ld, "attention.key_length", 0, INT32_MAX, c->head_dim, &key_len)) ||
        (rc = get_int(ld, "attention.value_length", 0, INT32_MAX, c->head_dim, &value_len)))
        return rc;
    if (rope_dims != c->head_dim)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EUNSUPPORTED,
                           "%s: key %s is %d: partial RoPE (of %d head dimensions) is not "
                           "supported",
                           ld->path, key(ld, "rope.dimension_count", k, sizeof(k)), rope_dims,
                           c->head_dim);
    if (key_len != c->head_dim || value_len != c->head_dim)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EUNSUPPORTED,
                           "%s: key %s / value_length (%d, %d) differ from dim / n_heads = %d",
                           ld->path, key(ld, "attention.key_length", k, sizeof(k)), key_len,
                           value_len, c->head_dim);
    const struct slora_gguf_tensor *emb = slora_gguf_find_tensor(ld->g, "token_embd.weight");
    if (!emb)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                           "%s: missing tensor 'token_embd.weight'", ld->path);
    s->vocab_size = emb->ne[1] > INT32_MAX ? 0 : (int)emb->ne[1];
    if ((rc = get_int(ld, "vocab_size", 0, INT32_MAX, s->vocab_size, &vocab_key)))
        return rc;
    if (vocab_key != s->vocab_size)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                           "%s: key %s is %d but token_embd.weight has %d rows", ld->path,
                           key(ld, "vocab_size", k, sizeof(k)), vocab_key, s->vocab_size);
    c->shared_classifier = !slora_gguf_find_tensor(ld->g, "output.weight");
    c->qkv_bias = slora_gguf_find_tensor(ld->g, "blk.0.attn_q.bias") != NULL ||
                  c->arch == SLORA_ARCH_QWEN2;
    c->seq_len = c->n_ctx_train < max_context ? c->n_ctx_train : max_context;
    if (window > 0 && window < c->seq_len)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EUNSUPPORTED,
                           "%s: key %s is %d, shorter than the served context %d (sliding-window "
                           "attention is not supported; serve at most %d tokens with max_context)",
                           ld->path, key(ld, "attention.sliding_window", k, sizeof(k)), window,
                           c->seq_len, window);
    const char *tm;
    size_t tm_len;
    bool spm = !slora_gguf_get_str(ld->g, "tokenizer.ggml.model", &tm, &tm_len) &&
               str_is(tm, tm_len, "llama");
    if ((rc = special_ids(ld, c, spm)))
        return rc;
    return slora_model_check_config(ld->path, c, ld->diag, ld->diag_len);
}

/* Check tensor gt against the slot's shape and kind. */
static int check_tensor(const struct loader *ld, const struct slora__model_slot *sl,
                        const struct slora_gguf_tensor *gt)
{
    if (gt->ne[0] != (uint64_t)sl->cols || gt->ne[1] != (uint64_t)sl->rows || gt->ne[2] != 1 ||
        gt->ne[3] != 1 || gt->n_dims > (sl->vec ? 1u : 2u))
        return slora__diag(
            ld->diag, ld->diag_len, SLORA_EFORMAT,
            "%s: tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%lld, %lld]", ld->path,
            sl->name, (unsigned long long)gt->ne[0], (unsigned long long)gt->ne[1],
            (unsigned long long)gt->ne[2], (unsigned long long)gt->ne[3], (long long)sl->cols,
            (long long)sl->rows);
    bool ok = sl->vec ? gt->dtype == SLORA_DTYPE_F32 || gt->dtype == SLORA_DTYPE_F16 ||
                            gt->dtype == SLORA_DTYPE_BF16
                      : slora_dtype_is_weight(gt->dtype);
    if (!ok)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EUNSUPPORTED,
                           "%s: tensor '%s' has type %s, not supported for a %s", ld->path,
                           sl->name, slora_dtype_name(gt->dtype), sl->vec ? "vector" : "matrix");
    return 0;
}

static float half_to_f32(uint32_t type, const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    if (type == SLORA_DTYPE_F16)
        return slora_quant_f16_to_f32(h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Matrices are used in place when aligned for their kernels (GGUF's
 * default alignment of 32 guarantees it); vectors when they are aligned F32.
 * Anything else is copied (or converted) into m->owned. */
#define OWN_ALIGN 64

static bool in_place(const struct slora__model_slot *sl, const struct slora_gguf_tensor *gt)
{
    if (sl->vec)
        return gt->dtype == SLORA_DTYPE_F32 && !((uintptr_t)gt->data % sizeof(float));
    return !((uintptr_t)gt->data % 32);
}

static size_t owned_bytes(const struct slora__model_slot *sl, const struct slora_gguf_tensor *gt)
{
    size_t n = sl->vec ? (size_t)sl->cols * sizeof(float) : gt->nbytes;
    return (n + OWN_ALIGN - 1) / OWN_ALIGN * OWN_ALIGN;
}

/* Bind every tensor; refuse tensors the model does not use. */
static int bind(struct loader *ld, struct slora_model *m)
{
    int n = slora_model_n_tensors(m);
    const struct slora_gguf_tensor **src = calloc((size_t)n, sizeof(*src));
    if (!src)
        return SLORA_ENOMEM;
    size_t owned = 0;
    int rc = 0;
    m->weight_bytes = 0;
    for (int i = 0; i < n; i++) {
        struct slora__model_slot sl = slora__model_slot(m, i);
        const struct slora_gguf_tensor *gt = slora_gguf_find_tensor(ld->g, sl.name);
        if (!gt) {
            rc = slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT, "%s: missing tensor '%s'",
                             ld->path, sl.name);
            goto out_free_src;
        }
        if ((rc = check_tensor(ld, &sl, gt)))
            goto out_free_src;
        src[i] = gt;
        if (!in_place(&sl, gt))
            owned += owned_bytes(&sl, gt);
        m->weight_bytes += gt->nbytes;
    }
    if ((size_t)n != ld->g->n_tensors) {
        for (size_t j = 0; j < ld->g->n_tensors; j++) {
            const struct slora_gguf_tensor *gt = &ld->g->tensors[j];
            bool used = false;
            for (int i = 0; i < n && !used; i++)
                used = src[i] == gt;
            if (!used) {
                rc = slora__diag(ld->diag, ld->diag_len, SLORA_EUNSUPPORTED,
                                 "%s: tensor '%.*s' is not part of a supported %s model", ld->path,
                                 gt->name_len > 64 ? 64 : (int)gt->name_len, gt->name, ld->arch);
                goto out_free_src;
            }
        }
    }
    if (owned && !(m->owned = aligned_alloc(OWN_ALIGN, owned))) {
        rc = SLORA_ENOMEM;
        goto out_free_src;
    }
    uint8_t *dst = m->owned;
    for (int i = 0; i < n; i++) {
        struct slora__model_slot sl = slora__model_slot(m, i);
        const struct slora_gguf_tensor *gt = src[i];
        const void *data = gt->data;
        if (!in_place(&sl, gt)) {
            if (sl.vec && gt->dtype != SLORA_DTYPE_F32) {
                float *f = (float *)(void *)dst;
                for (int64_t j = 0; j < sl.cols; j++)
                    f[j] = half_to_f32(gt->dtype, gt->data + 2 * j);
            } else {
                memcpy(dst, gt->data, sl.vec ? (size_t)sl.cols * sizeof(float) : gt->nbytes);
            }
            data = dst;
            dst += owned_bytes(&sl, gt);
        }
        if (sl.mat)
            slora_tensor_init(sl.mat, gt->dtype, data, sl.rows, sl.cols);
        else
            *sl.vec = data;
    }
    if (m->cfg.shared_classifier)
        m->wcls = m->tok_emb;
out_free_src:
    free(src);
    return rc;
}

/* The file's own vocabulary (tokenizer.* keys), when it has one; it must
 * cover exactly the model's vocab_size tokens. */
static int vocab(struct loader *ld, struct slora_model *m)
{
    if (!slora_gguf_find_kv(ld->g, "tokenizer.ggml.tokens") &&
        !slora_gguf_find_kv(ld->g, "tokenizer.ggml.model"))
        return 0;
    char tdiag[256];
    int rc = slora_tokenizer_new_from_gguf(ld->g, &m->gguf_vocab, tdiag, sizeof(tdiag));
    if (rc)
        return slora__diag(ld->diag, ld->diag_len, rc, "%s: vocabulary: %s", m->path, tdiag);
    if (slora_tokenizer_vocab_size(m->gguf_vocab) != m->cfg.shape.vocab_size)
        return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                           "%s: tokenizer.ggml.tokens has %d tokens, the model %d", m->path,
                           slora_tokenizer_vocab_size(m->gguf_vocab), m->cfg.shape.vocab_size);
    return 0;
}

static int chat_template(struct loader *ld, struct slora_model *m)
{
    const char *s;
    size_t len;
    int rc = slora_gguf_get_str(ld->g, "tokenizer.chat_template", &s, &len);
    if (rc == SLORA_ENOTFOUND)
        return 0;
    if (rc || memchr(s, '\0', len))
        return slora__diag(ld->diag, ld->diag_len, SLORA_EFORMAT,
                           "%s: key tokenizer.chat_template must be a string without NUL",
                           ld->path);
    char *t = malloc(len + 1);
    if (!t)
        return SLORA_ENOMEM;
    memcpy(t, s, len);
    t[len] = '\0';
    m->chat_template = t;
    return 0;
}

int slora__model_load_gguf(struct slora_model **out, const char *path, const uint8_t *buf,
                           size_t len, int max_context, char *diag, size_t diag_len)
{
    struct slora_gguf *g;
    char gdiag[256];
    int rc = slora_gguf_parse(buf, len, &g, gdiag, sizeof(gdiag));
    if (rc) {
        snprintf(diag, diag_len, "%s: %s", path, gdiag);
        return rc;
    }
    struct loader ld = {g, path, NULL, diag, diag_len};
    struct slora_model_config cfg;
    struct slora_model *m = NULL;
    if ((rc = read_config(&ld, max_context, &cfg)))
        goto err_free_gguf;
    if (!(m = slora__model_alloc(path, &cfg))) {
        rc = SLORA_ENOMEM;
        goto err_free_gguf;
    }
    /* rope_freqs is enumerated (and so bound) once the pointer is set */
    if (slora_gguf_find_tensor(g, "rope_freqs.weight")) {
        if (cfg.arch != SLORA_ARCH_LLAMA) {
            rc = slora__diag(diag, diag_len, SLORA_EUNSUPPORTED,
                             "%s: tensor 'rope_freqs.weight' is only supported on llama", path);
            goto err_free_model;
        }
        m->rope_freqs = (const float *)buf;
    }
    if ((rc = bind(&ld, m)) || (rc = vocab(&ld, m)) || (rc = chat_template(&ld, m)))
        goto err_free_model;
    if (m->rope_freqs)
        for (int i = 0; i < cfg.head_dim / 2; i++)
            if (!(m->rope_freqs[i] > 0.0f)) {
                rc = slora__diag(diag, diag_len, SLORA_EFORMAT,
                                 "%s: tensor 'rope_freqs.weight' element %d is not positive",
                                 path, i);
                goto err_free_model;
            }
    slora_gguf_free(g);
    *out = m;
    return 0;

err_free_model:
    slora_model_free(m);
err_free_gguf:
    slora_gguf_free(g);
    return rc;
}
