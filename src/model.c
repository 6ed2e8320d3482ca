/* model.c - load the frozen base model from a llama2.c legacy .bin or a GGUF
 * file; write either format.
 *
 * llama2.c legacy .bin layout (little-endian):
 *   int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *       (vocab_size < 0: the classifier is a separate tensor)
 *   float32 token_embedding (vocab, dim), rms_att (L, dim), wq (L, dim, dim),
 *   wk (L, kv_dim, dim), wv (L, kv_dim, dim), wo (L, dim, dim), rms_ffn (L, dim),
 *   w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim), rms_final (dim),
 *   freq_cis_real (seq_len, head_size / 2), freq_cis_imag (same) - skipped,
 *   wcls (vocab, dim) only when unshared.
 * GGUF: see gguf.h; llama.cpp's tensor names, rows not permuted (llama2.c
 * and GGUF arch llama rotate the same adjacent pairs).
 *
 * The file is mapped read-only; F32 tensors are views into the map, F16 ones
 * (or misaligned F32) are converted once into one owned buffer. A loaded
 * model is immutable and may be shared by any number of threads.
 */
#include "internal.h"

#include <slora/error.h>
#include <slora/fsio.h>
#include <slora/gguf.h>
#include <slora/log.h>
#include <slora/model.h>
#include <slora/tokenizer.h>
#include <slora/weights.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define BIN_HEADER_BYTES 28
/* Bounds keep every size product inside 64 bits. */
#define MAX_WIDTH (1 << 20)
#define MAX_LAYERS (1 << 12)
#define MAX_VOCAB (1 << 24)
#define MAX_SEQ (1 << 24)

/* Per-layer tensor kinds in .bin order, with their GGUF names. */
enum kind { K_RMS_ATT, K_WQ, K_WK, K_WV, K_WO, K_RMS_FFN, K_W1, K_W2, K_W3, K_COUNT };
static const char *const kind_name[K_COUNT] = {"attn_norm", "attn_q",      "attn_k",
                                               "attn_v",    "attn_output", "ffn_norm",
                                               "ffn_gate",  "ffn_down",    "ffn_up"};
static const int kind_module[K_COUNT] = {-1, SLORA_MOD_WQ, SLORA_MOD_WK, SLORA_MOD_WV, SLORA_MOD_WO,
                                         -1, SLORA_MOD_W1, SLORA_MOD_W2, SLORA_MOD_W3};

int slora_model_n_tensors(const struct slora_model *m)
{
    return 2 + K_COUNT * m->cfg.shape.n_layers + !m->cfg.shared_classifier;
}

/* Where tensor i lives in the struct, and its shape. */
static const float **tensor_slot(struct slora_model *m, int i, struct slora_model_tensor *t)
{
    const struct slora_shape *s = &m->cfg.shape;
    int n_layers = s->n_layers;
    t->layer = -1;
    t->module = -1;
    t->rows = 1;
    t->cols = s->dim;
    if (i == 0) {
        snprintf(t->name, sizeof(t->name), "token_embd.weight");
        t->rows = s->vocab_size;
        return &m->tok_emb;
    }
    i--;
    if (i >= K_COUNT * n_layers) {
        i -= K_COUNT * n_layers;
        if (i == 0) {
            snprintf(t->name, sizeof(t->name), "output_norm.weight");
            return &m->rms_final;
        }
        snprintf(t->name, sizeof(t->name), "output.weight");
        t->rows = s->vocab_size;
        return &m->wcls;
    }
    int kind = i / n_layers, layer = i % n_layers;
    struct slora_layer *l = &m->layers[layer];
    snprintf(t->name, sizeof(t->name), "blk.%d.%s.weight", layer, kind_name[kind]);
    t->layer = layer;
    t->module = kind_module[kind];
    if (kind == K_RMS_ATT)
        return &l->rms_att;
    if (kind == K_RMS_FFN)
        return &l->rms_ffn;
    slora_arch_module_dims(s, t->module, &t->rows, &t->cols);
    return &l->w[t->module];
}

void slora_model_tensor(const struct slora_model *m, int i, struct slora_model_tensor *t)
{
    /* the slot is only read; data is writable for blank models (documented) */
    t->data = (float *)*tensor_slot((struct slora_model *)m, i, t);
}

const float *slora_model_matrix(const struct slora_model *m, int layer, enum slora_module mod)
{
    return m->layers[layer].w[mod];
}

static int check_config(const char *path, const struct slora_model_config *c, char *diag,
                        size_t diag_len)
{
    const struct slora_shape *s = &c->shape;
    const struct {
        const char *name;
        int value;
        int max;
    } fields[] = {
        {"dim", s->dim, MAX_WIDTH},
        {"hidden_dim", s->hidden_dim, MAX_WIDTH},
        {"n_layers", s->n_layers, MAX_LAYERS},
        {"n_heads", s->n_heads, MAX_WIDTH},
        {"n_kv_heads", s->n_kv_heads, MAX_WIDTH},
        {"vocab_size", s->vocab_size, MAX_VOCAB},
        {"seq_len", c->seq_len, MAX_SEQ},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (fields[i].value <= 0 || fields[i].value > fields[i].max)
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: %s is %d (must be 1..%d)", path,
                               fields[i].name, fields[i].value, fields[i].max);
    if (s->dim % s->n_heads)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: dim %d is not a multiple of n_heads %d", path, s->dim, s->n_heads);
    if (s->n_heads % s->n_kv_heads)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: n_heads %d is not a multiple of n_kv_heads %d", path, s->n_heads,
                           s->n_kv_heads);
    if ((s->dim / s->n_heads) % 2)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: head size %d is odd (RoPE rotates pairs)", path,
                           s->dim / s->n_heads);
    return 0;
}

static struct slora_model *model_alloc(const char *path, const struct slora_model_config *cfg)
{
    struct slora_model *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->cfg = *cfg;
    m->layers = calloc((size_t)cfg->shape.n_layers, sizeof(*m->layers));
    m->path = strdup(path);
    if (!m->layers || !m->path) {
        slora_model_free(m);
        return NULL;
    }
    return m;
}

/* Point tensors at consecutive floats from p (llama2.c's memory_map_weights);
 * skip_before_cls floats (the freq_cis tables) precede an unshared classifier. */
static void map_sequential(struct slora_model *m, const float *p, size_t skip_before_cls)
{
    int n = slora_model_n_tensors(m);
    m->weight_bytes = 0;
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor t;
        const float **slot = tensor_slot(m, i, &t);
        if (slot == &m->wcls)
            p += skip_before_cls;
        *slot = p;
        p += t.rows * t.cols;
        m->weight_bytes += (size_t)(t.rows * t.cols) * sizeof(float);
    }
    if (m->cfg.shared_classifier)
        m->wcls = m->tok_emb;
}

static int check_finite(const struct slora_model *m, char *diag, size_t diag_len)
{
    int n = slora_model_n_tensors(m);
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor t;
        slora_model_tensor(m, i, &t);
        size_t count = (size_t)(t.rows * t.cols);
        for (size_t j = 0; j < count; j++)
            if (!isfinite(t.data[j])) {
                snprintf(diag, diag_len, "%s: tensor '%s' has a non-finite value at element %zu",
                         m->path, t.name, j);
                return SLORA_ENONFINITE;
            }
    }
    return 0;
}

static uint64_t weight_floats(const struct slora_model_config *c)
{
    const struct slora_shape *s = &c->shape;
    uint64_t dim = s->dim, hid = s->hidden_dim, kv = slora_arch_kv_dim(s);
    uint64_t per_layer = 2 * dim + 2 * dim * dim + 2 * kv * dim + 3 * hid * dim;
    return (uint64_t)s->vocab_size * dim * (c->shared_classifier ? 1 : 2) +
           per_layer * s->n_layers + dim;
}

static int load_bin(struct slora_model **out, const char *path, const uint8_t *buf, size_t len,
                    char *diag, size_t diag_len)
{
    if (len < BIN_HEADER_BYTES)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: truncated header (%zu of %d bytes)",
                           path, len, BIN_HEADER_BYTES);
    int32_t h[7];
    memcpy(h, buf, sizeof(h));
    struct slora_model_config cfg = {
        .shape = {h[0], h[1], h[2], h[3], h[4], h[5] == INT32_MIN ? 0 : abs(h[5])},
        .seq_len = h[6],
        .shared_classifier = h[5] > 0,
    };
    int rc = check_config(path, &cfg, diag, diag_len);
    if (rc)
        return rc;
    uint64_t freq = (uint64_t)cfg.seq_len * (cfg.shape.dim / cfg.shape.n_heads);
    uint64_t want = BIN_HEADER_BYTES + 4 * (weight_floats(&cfg) + freq);
    if (len < want)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: truncated: %zu bytes, the header implies %llu", path, len,
                           (unsigned long long)want);
    if (len > want)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: %zu bytes, %llu more than the header implies", path, len,
                           (unsigned long long)(len - want));
    struct slora_model *m = model_alloc(path, &cfg);
    if (!m)
        return SLORA_ENOMEM;
    map_sequential(m, (const float *)(buf + BIN_HEADER_BYTES), freq);
    *out = m;
    return 0;
}

static int gguf_int(const struct slora_gguf *g, const char *path, const char *key, int *out,
                    char *diag, size_t diag_len)
{
    int64_t v;
    int rc = slora_gguf_get_int(g, key, &v);
    if (rc == SLORA_ENOTFOUND)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: missing key %s", path, key);
    if (rc || v < 0 || v > INT32_MAX)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: key %s is not an integer in 0..%d",
                           path, key, INT32_MAX);
    *out = (int)v;
    return 0;
}

static int gguf_config(const struct slora_gguf *g, const char *path, struct slora_model_config *cfg,
                       char *diag, size_t diag_len)
{
    const char *arch;
    size_t arch_len;
    int rc = slora_gguf_get_str(g, "general.architecture", &arch, &arch_len);
    if (rc)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: missing key general.architecture",
                           path);
    if (arch_len != 5 || memcmp(arch, "llama", 5)) {
        snprintf(diag, diag_len, "%s: architecture '%.*s' is not supported (only llama)", path,
                 arch_len > 64 ? 64 : (int)arch_len, arch);
        return SLORA_EUNSUPPORTED;
    }
    struct slora_shape *s = &cfg->shape;
    if ((rc = gguf_int(g, path, "llama.embedding_length", &s->dim, diag, diag_len)) ||
        (rc = gguf_int(g, path, "llama.feed_forward_length", &s->hidden_dim, diag, diag_len)) ||
        (rc = gguf_int(g, path, "llama.block_count", &s->n_layers, diag, diag_len)) ||
        (rc = gguf_int(g, path, "llama.attention.head_count", &s->n_heads, diag, diag_len)) ||
        (rc = gguf_int(g, path, "llama.context_length", &cfg->seq_len, diag, diag_len)))
        return rc;
    s->n_kv_heads = s->n_heads;
    if (slora_gguf_find_kv(g, "llama.attention.head_count_kv") &&
        (rc = gguf_int(g, path, "llama.attention.head_count_kv", &s->n_kv_heads, diag, diag_len)))
        return rc;
    const struct slora_gguf_tensor *emb = slora_gguf_find_tensor(g, "token_embd.weight");
    if (!emb)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: missing tensor 'token_embd.weight'",
                           path);
    s->vocab_size = emb->ne[1] > INT32_MAX ? 0 : (int)emb->ne[1];
    cfg->shared_classifier = !slora_gguf_find_tensor(g, "output.weight");
    if ((rc = check_config(path, cfg, diag, diag_len)))
        return rc;
    int rope;
    if (slora_gguf_find_kv(g, "llama.rope.dimension_count")) {
        if ((rc = gguf_int(g, path, "llama.rope.dimension_count", &rope, diag, diag_len)))
            return rc;
        if (rope != s->dim / s->n_heads) {
            snprintf(diag, diag_len, "%s: partial RoPE (%d of %d head dimensions) is not supported",
                     path, rope, s->dim / s->n_heads);
            return SLORA_EUNSUPPORTED;
        }
    }
    return 0;
}

/* Bind tensors to the GGUF data; converts F16 and misaligned F32 into m->owned. */
static int gguf_bind(struct slora_model *m, const struct slora_gguf *g, char *diag, size_t diag_len)
{
    int n = slora_model_n_tensors(m);
    const struct slora_gguf_tensor **src = calloc((size_t)n, sizeof(*src));
    if (!src)
        return SLORA_ENOMEM;
    size_t owned = 0;
    int rc = 0;
    m->weight_bytes = 0;
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor t;
        tensor_slot(m, i, &t);
        const struct slora_gguf_tensor *gt = slora_gguf_find_tensor(g, t.name);
        if (!gt) {
            rc = slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: missing tensor '%s'", m->path,
                             t.name);
            goto out_free_src;
        }
        uint32_t want_dims = t.rows == 1 ? 1 : 2;
        if (gt->ne[0] != (uint64_t)t.cols || gt->ne[1] != (uint64_t)t.rows || gt->ne[2] != 1 ||
            gt->ne[3] != 1 || gt->n_dims > want_dims) {
            rc = slora__diag(
                diag, diag_len, SLORA_EFORMAT,
                "%s: tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%lld, %lld]",
                m->path, t.name, (unsigned long long)gt->ne[0], (unsigned long long)gt->ne[1],
                (unsigned long long)gt->ne[2], (unsigned long long)gt->ne[3], (long long)t.cols,
                (long long)t.rows);
            goto out_free_src;
        }
        src[i] = gt;
        if (gt->dtype != SLORA_GGUF_DTYPE_F32 || (uintptr_t)gt->data % sizeof(float))
            owned += (size_t)(t.rows * t.cols);
        m->weight_bytes += (size_t)(t.rows * t.cols) * sizeof(float);
    }
    if (owned && !(m->owned = malloc(owned * sizeof(float)))) {
        rc = SLORA_ENOMEM;
        goto out_free_src;
    }
    float *dst = m->owned;
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor t;
        const float **slot = tensor_slot(m, i, &t);
        const struct slora_gguf_tensor *gt = src[i];
        size_t count = (size_t)(t.rows * t.cols);
        if (gt->dtype == SLORA_GGUF_DTYPE_F32 && !((uintptr_t)gt->data % sizeof(float))) {
            *slot = (const float *)gt->data;
            continue;
        }
        if (gt->dtype == SLORA_GGUF_DTYPE_F32) {
            memcpy(dst, gt->data, count * sizeof(float));
        } else {
            for (size_t j = 0; j < count; j++) {
                uint16_t h;
                memcpy(&h, gt->data + 2 * j, 2);
                dst[j] = slora_gguf_f16_to_f32(h);
            }
        }
        *slot = dst;
        dst += count;
    }
    if (m->cfg.shared_classifier)
        m->wcls = m->tok_emb;
out_free_src:
    free(src);
    return rc;
}

/* The file's own vocabulary (tokenizer.* keys), when it has one; it must
 * cover exactly the model's vocab_size tokens. */
static int gguf_vocab(struct slora_model *m, const struct slora_gguf *g, char *diag,
                      size_t diag_len)
{
    if (!slora_gguf_find_kv(g, "tokenizer.ggml.tokens") &&
        !slora_gguf_find_kv(g, "tokenizer.ggml.model"))
        return 0;
    char tdiag[256];
    int rc = slora_tokenizer_new_from_gguf(g, &m->gguf_vocab, tdiag, sizeof(tdiag));
    if (rc)
        return slora__diag(diag, diag_len, rc, "%s: vocabulary: %s", m->path, tdiag);
    if (slora_tokenizer_vocab_size(m->gguf_vocab) != m->cfg.shape.vocab_size)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: tokenizer.ggml.tokens has %d tokens, the model %d", m->path,
                           slora_tokenizer_vocab_size(m->gguf_vocab), m->cfg.shape.vocab_size);
    return 0;
}

static int load_gguf(struct slora_model **out, const char *path, const uint8_t *buf, size_t len,
                     char *diag, size_t diag_len)
{
    struct slora_gguf *g;
    char gdiag[256];
    int rc = slora_gguf_parse(buf, len, &g, gdiag, sizeof(gdiag));
    if (rc) {
        snprintf(diag, diag_len, "%s: %s", path, gdiag);
        return rc;
    }
    struct slora_model_config cfg;
    if ((rc = gguf_config(g, path, &cfg, diag, diag_len)))
        goto err_free_gguf;
    struct slora_model *m = model_alloc(path, &cfg);
    if (!m) {
        rc = SLORA_ENOMEM;
        goto err_free_gguf;
    }
    if ((rc = gguf_bind(m, g, diag, diag_len)) || (rc = gguf_vocab(m, g, diag, diag_len))) {
        slora_model_free(m);
        goto err_free_gguf;
    }
    slora_gguf_free(g);
    *out = m;
    return 0;

err_free_gguf:
    slora_gguf_free(g);
    return rc;
}

int slora_model_load(const char *path, struct slora_model **out, char *diag, size_t diag_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(diag, diag_len, "%s: cannot open: %s", path, strerror(errno));
        return errno == ENOENT ? SLORA_ENOTFOUND : SLORA_EIO;
    }
    struct stat st;
    if (fstat(fd, &st)) {
        snprintf(diag, diag_len, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return SLORA_EIO;
    }
    size_t len = (size_t)st.st_size;
    void *map = NULL;
    if (len) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            snprintf(diag, diag_len, "%s: cannot map: %s", path, strerror(errno));
            close(fd);
            return SLORA_EIO;
        }
    }
    close(fd);
    const uint8_t *buf = map;
    struct slora_model *m = NULL;
    int rc = len >= 4 && !memcmp(buf, "GGUF", 4) ? load_gguf(&m, path, buf, len, diag, diag_len)
                                                 : load_bin(&m, path, buf, len, diag, diag_len);
    if (rc) {
        if (map)
            munmap(map, len);
        return rc;
    }
    m->map = map;
    m->map_len = len;
    if ((rc = check_finite(m, diag, diag_len))) {
        slora_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int slora_model_new_blank(const struct slora_model_config *cfg, struct slora_model **out,
                          char *diag, size_t diag_len)
{
    int rc = check_config("model", cfg, diag, diag_len);
    if (rc)
        return rc;
    uint64_t n = weight_floats(cfg);
    if (n > SIZE_MAX / sizeof(float))
        return SLORA_ENOMEM;
    struct slora_model *m = model_alloc("(generated)", cfg);
    if (!m || !(m->owned = calloc((size_t)n, sizeof(float)))) {
        slora_model_free(m);
        return SLORA_ENOMEM;
    }
    map_sequential(m, m->owned, 0);
    *out = m;
    return 0;
}

void slora_model_free(struct slora_model *m)
{
    if (!m)
        return;
    if (m->map)
        munmap(m->map, m->map_len);
    slora_tokenizer_free(m->gguf_vocab);
    free(m->owned);
    free(m->layers);
    free((char *)m->path);
    free(m);
}

/* llama2.c export.py's precompute_freqs_cis: cos then sin, (seq_len, hs / 2). */
static int write_freq_tables(FILE *f, const struct slora_model *m)
{
    int hs = m->cfg.shape.dim / m->cfg.shape.n_heads;
    for (int part = 0; part < 2; part++)
        for (int t = 0; t < m->cfg.seq_len; t++)
            for (int i = 0; i < hs / 2; i++) {
                double freq = 1.0 / pow(10000.0, (double)(2 * i) / hs);
                float v = (float)(part ? sin(t * freq) : cos(t * freq));
                if (fwrite(&v, sizeof(v), 1, f) != 1)
                    return -1;
            }
    return 0;
}

struct bin_job {
    const struct slora_model *m;
    const struct slora_weights *ws;
};

static int write_bin_all(FILE *f, void *ctx)
{
    const struct bin_job *job = ctx;
    const struct slora_model *m = job->m;
    const struct slora_weights *ws = job->ws;
    const struct slora_shape *s = &m->cfg.shape;
    int32_t h[7] = {s->dim,        s->hidden_dim,
                    s->n_layers,   s->n_heads,
                    s->n_kv_heads, m->cfg.shared_classifier ? s->vocab_size : -s->vocab_size,
                    m->cfg.seq_len};
    if (fwrite(h, sizeof(h), 1, f) != 1)
        return -1;
    int n = slora_model_n_tensors(m);
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor t;
        slora_model_tensor(m, i, &t);
        if (i == n - 1 && !m->cfg.shared_classifier && write_freq_tables(f, m))
            return -1;
        const float *data = t.data;
        if (ws && t.module >= 0)
            data = slora_weights_get(ws, t.layer, t.module);
        size_t count = (size_t)(t.rows * t.cols);
        if (fwrite(data, sizeof(float), count, f) != count)
            return -1;
    }
    if (m->cfg.shared_classifier && write_freq_tables(f, m))
        return -1;
    return 0;
}

int slora_model_write_bin(const struct slora_model *m, const struct slora_weights *ws,
                          const char *path, char *diag, size_t diag_len)
{
    struct bin_job job = {m, ws};
    return slora_fsio_write(path, write_bin_all, &job, diag, diag_len);
}

int slora_model_write_gguf(const struct slora_model *m, const struct slora_tokenizer *tok,
                           const char *path, int version, int dtype, char *diag, size_t diag_len)
{
    const struct slora_shape *s = &m->cfg.shape;
    struct slora_gguf_writer *w =
        slora_gguf_writer_new((uint32_t)version, SLORA_GGUF_DEFAULT_ALIGNMENT);
    if (!w)
        return SLORA_ENOMEM;
    slora_gguf_writer_add_str(w, "general.architecture", "llama");
    slora_gguf_writer_add_str(w, "general.name", "llama");
    slora_gguf_writer_add_u32(w, "llama.context_length", (uint32_t)m->cfg.seq_len);
    slora_gguf_writer_add_u32(w, "llama.embedding_length", (uint32_t)s->dim);
    slora_gguf_writer_add_u32(w, "llama.feed_forward_length", (uint32_t)s->hidden_dim);
    slora_gguf_writer_add_u32(w, "llama.block_count", (uint32_t)s->n_layers);
    slora_gguf_writer_add_u32(w, "llama.attention.head_count", (uint32_t)s->n_heads);
    slora_gguf_writer_add_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_kv_heads);
    slora_gguf_writer_add_u32(w, "llama.rope.dimension_count", (uint32_t)(s->dim / s->n_heads));
    slora_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    int rc = tok ? slora_tokenizer_write_gguf(tok, w) : 0;
    int n = slora_model_n_tensors(m);
    for (int i = 0; !rc && i < n; i++) {
        struct slora_model_tensor t;
        slora_model_tensor(m, i, &t);
        int vec = t.rows == 1;
        rc = slora_gguf_writer_add_tensor(w, t.name, t.data, t.rows, t.cols, vec ? 1 : 2,
                                          vec ? SLORA_GGUF_DTYPE_F32 : (uint32_t)dtype);
    }
    if (rc)
        snprintf(diag, diag_len, "%s: %s", path, slora_strerror(rc));
    else
        rc = slora_gguf_writer_write(w, path, diag, diag_len);
    slora_gguf_writer_free(w);
    return rc;
}
