/* model.c - the loaded base model: its tensor table, the llama2.c legacy
 * .bin loader, blank models for `gen-model`, and what both loaders share
 * (config checks, mapping the file, finiteness). GGUF files are read by
 * model_gguf.c.
 *
 * llama2.c legacy .bin layout (little-endian):
 *   int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *       (vocab_size < 0: the classifier is a separate tensor)
 *   float32 token_embedding (vocab, dim), rms_att (L, dim), wq (L, dim, dim),
 *   wk (L, kv_dim, dim), wv (L, kv_dim, dim), wo (L, dim, dim), rms_ffn (L, dim),
 *   w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim), rms_final (dim),
 *   freq_cis_real (seq_len, head_size / 2), freq_cis_imag (same) - skipped,
 *   wcls (vocab, dim) only when unshared.
 * Its hyper-parameters beyond the header are llama2.c's (model.py): RMSNorm
 * eps 1e-5, RoPE base 10000 on adjacent pairs, BOS 1, EOS 2.
 */
#include "internal.h"
#include "model_internal.h"

#include <slora/error.h>
#include <slora/log.h>
#include <slora/model.h>
#include <slora/parallel.h>
#include <slora/quant.h>
#include <slora/tokenizer.h>

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
static const char *const bias_name[3] = {"attn_q", "attn_k", "attn_v"};

int slora_model_n_tensors(const struct slora_model *m)
{
    const struct slora_model_config *c = &m->cfg;
    int n_layers = c->shape.n_layers;
    return 2 + K_COUNT * n_layers + !c->shared_classifier + (c->qkv_bias ? 3 * n_layers : 0) +
           (m->rope_freqs != NULL);
}

struct slora__model_slot slora__model_slot(struct slora_model *m, int i)
{
    const struct slora_shape *s = &m->cfg.shape;
    int n_layers = s->n_layers;
    struct slora__model_slot sl = {
        .layer = -1, .module = -1, .bias_of = -1, .rows = 1, .cols = s->dim};
    if (i == 0) {
        snprintf(sl.name, sizeof(sl.name), "token_embd.weight");
        sl.rows = s->vocab_size;
        sl.mat = &m->tok_emb;
        return sl;
    }
    i--;
    if (i < K_COUNT * n_layers) {
        int kind = i / n_layers, layer = i % n_layers;
        struct slora_layer *l = &m->layers[layer];
        snprintf(sl.name, sizeof(sl.name), "blk.%d.%s.weight", layer, kind_name[kind]);
        sl.layer = layer;
        sl.module = kind_module[kind];
        if (kind == K_RMS_ATT || kind == K_RMS_FFN) {
            sl.vec = kind == K_RMS_ATT ? &l->rms_att : &l->rms_ffn;
            return sl;
        }
        slora_arch_module_dims(s, sl.module, &sl.rows, &sl.cols);
        sl.mat = &l->w[sl.module];
        return sl;
    }
    i -= K_COUNT * n_layers;
    if (i == 0) {
        snprintf(sl.name, sizeof(sl.name), "output_norm.weight");
        sl.vec = &m->rms_final;
        return sl;
    }
    i--;
    if (!m->cfg.shared_classifier) {
        if (i == 0) {
            snprintf(sl.name, sizeof(sl.name), "output.weight");
            sl.rows = s->vocab_size;
            sl.mat = &m->wcls;
            return sl;
        }
        i--;
    }
    if (m->cfg.qkv_bias) {
        if (i < 3 * n_layers) {
            int b = i / n_layers, layer = i % n_layers;
            snprintf(sl.name, sizeof(sl.name), "blk.%d.%s.bias", layer, bias_name[b]);
            sl.layer = layer;
            sl.bias_of = SLORA_MOD_WQ + b;
            sl.cols = b == 0 ? s->dim : slora_arch_kv_dim(s);
            sl.vec = &m->layers[layer].bias[b];
            return sl;
        }
        i -= 3 * n_layers;
    }
    snprintf(sl.name, sizeof(sl.name), "rope_freqs.weight");
    sl.cols = m->cfg.head_dim / 2;
    sl.vec = &m->rope_freqs;
    return sl;
}

void slora_model_tensor(const struct slora_model *m, int i, struct slora_model_tensor *t)
{
    /* the slot is only read */
    struct slora__model_slot sl = slora__model_slot((struct slora_model *)m, i);
    memcpy(t->name, sl.name, sizeof(t->name));
    t->layer = sl.layer;
    t->module = sl.module;
    t->bias_of = sl.bias_of;
    if (sl.mat)
        t->t = *sl.mat;
    else
        slora_tensor_init(&t->t, SLORA_DTYPE_F32, *sl.vec, 1, sl.cols);
}

float *slora_model_blank_data(struct slora_model *m, int i)
{
    struct slora__model_slot sl = slora__model_slot(m, i);
    /* a blank model's tensors all live in its owned buffer */
    return (float *)(sl.mat ? sl.mat->data : *sl.vec);
}

const struct slora_tensor *slora_model_matrix(const struct slora_model *m, int layer,
                                              enum slora_module mod)
{
    return &m->layers[layer].w[mod];
}

bool slora_model_is_quantized(const struct slora_model *m)
{
    int n = slora_model_n_tensors(m);
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor t;
        slora_model_tensor(m, i, &t);
        if (slora_dtype_block_elems(t.t.type) > 1)
            return true;
    }
    return false;
}

int64_t slora_model_native_row(const struct slora_model *m, enum slora_module mod, int64_t r)
{
    if (!m->cfg.qk_rotate_half || (mod != SLORA_MOD_WQ && mod != SLORA_MOD_WK))
        return r;
    int64_t hd = m->cfg.head_dim, j = r % hd;
    return r - j + (j % 2) * (hd / 2) + j / 2;
}

bool slora_model_native_rows(const struct slora_model *m, enum slora_module mod, float *w,
                             int64_t rows, int64_t cols, float *scratch)
{
    if (!m->cfg.qk_rotate_half || (mod != SLORA_MOD_WQ && mod != SLORA_MOD_WK))
        return true;
    if (rows % m->cfg.head_dim)
        return false;
    for (int64_t r = 0; r < rows; r++)
        memcpy(scratch + slora_model_native_row(m, mod, r) * cols, w + r * cols,
               (size_t)cols * sizeof(float));
    memcpy(w, scratch, (size_t)(rows * cols) * sizeof(float));
    return true;
}

int slora_model_check_config(const char *path, const struct slora_model_config *c, char *diag,
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
    if (c->head_dim != s->dim / s->n_heads)
        return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED,
                           "%s: head_dim %d is not dim / n_heads = %d", path, c->head_dim,
                           s->dim / s->n_heads);
    if (c->head_dim % 2)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: head size %d is odd (RoPE rotates pairs)", path, c->head_dim);
    if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: rope_theta %g is not positive",
                           path, (double)c->rope_theta);
    if (!(c->rope_freq_scale > 0.0f) || !isfinite(c->rope_freq_scale))
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: rope frequency scale %g is not positive", path,
                           (double)c->rope_freq_scale);
    if (!(c->rms_eps > 0.0f) || !(c->rms_eps < 1.0f))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: rms_eps %g is not in (0, 1)",
                           path, (double)c->rms_eps);
    if (c->bos_id >= s->vocab_size || c->eos_id >= s->vocab_size)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: special token id (bos %d, eos %d) outside the vocabulary of %d",
                           path, c->bos_id, c->eos_id, s->vocab_size);
    return 0;
}

struct slora_model *slora__model_alloc(const char *path, const struct slora_model_config *cfg)
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

/* llama2.c's fixed hyper-parameters for a shape read from a .bin header. */
static void llama2c_defaults(struct slora_model_config *c)
{
    c->arch = SLORA_ARCH_LLAMA;
    c->head_dim = c->shape.n_heads > 0 ? c->shape.dim / c->shape.n_heads : 0;
    c->n_ctx_train = c->seq_len;
    c->rope_style = SLORA_ROPE_NORM;
    c->rope_theta = 10000.0f;
    c->rope_freq_scale = 1.0f;
    c->rms_eps = 1e-5f;
    c->bos_id = 1;
    c->eos_id = 2;
    c->add_bos = true;
}

/* Point tensors at consecutive floats from p (llama2.c's memory_map_weights);
 * skip_before_cls floats (the freq_cis tables) precede an unshared classifier. */
static void map_sequential(struct slora_model *m, const float *p, size_t skip_before_cls)
{
    int n = slora_model_n_tensors(m);
    m->weight_bytes = 0;
    for (int i = 0; i < n; i++) {
        struct slora__model_slot sl = slora__model_slot(m, i);
        if (sl.mat == &m->wcls)
            p += skip_before_cls;
        if (sl.mat)
            slora_tensor_init(sl.mat, SLORA_DTYPE_F32, p, sl.rows, sl.cols);
        else
            *sl.vec = p;
        p += sl.rows * sl.cols;
        m->weight_bytes += (size_t)(sl.rows * sl.cols) * sizeof(float);
    }
    if (m->cfg.shared_classifier)
        m->wcls = m->tok_emb;
}

/* Every tensor's values (F32/F16/BF16 elements, quantized blocks' scales)
 * must be finite. slora_quant_check_data reads them all at memory speed;
 * the tensors are checked on up to CHECK_THREADS threads (one task per
 * tensor, the result that of the first bad tensor in model order whatever
 * the thread count): reading every weight once is the load's main cost. */
#define CHECK_THREADS 8
#define WHY_LEN 256

struct check_job {
    const struct slora_model *m;
    int *rc;              /* (n tensors) */
    char (*why)[WHY_LEN]; /* (n tensors) */
};

static void check_task(void *ctx, size_t i, int worker)
{
    (void)worker;
    struct check_job *j = ctx;
    struct slora_model_tensor t;
    slora_model_tensor(j->m, (int)i, &t);
    j->rc[i] = slora_quant_check_data(t.name, t.t.type, t.t.data, (size_t)t.t.rows * t.t.row_bytes,
                                      j->why[i], WHY_LEN);
}

int slora__model_check_finite(const struct slora_model *m, char *diag, size_t diag_len)
{
    size_t n = (size_t)slora_model_n_tensors(m);
    struct check_job j = {m, calloc(n, sizeof(*j.rc)), calloc(n, sizeof(*j.why))};
    int rc = 0;
    if (!j.rc || !j.why) {
        rc = SLORA_ENOMEM;
        goto out;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    slora_parallel_run(cpus < 1 ? 1 : cpus > CHECK_THREADS ? CHECK_THREADS : (int)cpus, n,
                       check_task, &j);
    for (size_t i = 0; i < n && !rc; i++)
        if (j.rc[i])
            rc = slora__diag(diag, diag_len, j.rc[i], "%s: %s", m->path, j.why[i]);
out:
    free(j.rc);
    free(j.why);
    return rc;
}

static uint64_t weight_floats(const struct slora_model_config *c)
{
    const struct slora_shape *s = &c->shape;
    uint64_t dim = s->dim, hid = s->hidden_dim, kv = slora_arch_kv_dim(s);
    uint64_t per_layer = 2 * dim + 2 * dim * dim + 2 * kv * dim + 3 * hid * dim;
    if (c->qkv_bias)
        per_layer += dim + 2 * kv;
    return (uint64_t)s->vocab_size * dim * (c->shared_classifier ? 1 : 2) +
           per_layer * s->n_layers + dim;
}

static int load_bin(struct slora_model **out, const char *path, const uint8_t *buf, size_t len,
                    int max_context, char *diag, size_t diag_len)
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
    llama2c_defaults(&cfg);
    int rc = slora_model_check_config(path, &cfg, diag, diag_len);
    if (rc)
        return rc;
    uint64_t freq = (uint64_t)cfg.seq_len * (cfg.head_dim / 2) * 2;
    uint64_t want = BIN_HEADER_BYTES + 4 * (weight_floats(&cfg) + freq);
    if (len < want)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: truncated: %zu bytes, the header implies %llu", path, len,
                           (unsigned long long)want);
    if (len > want)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: %zu bytes, %llu more than the header implies", path, len,
                           (unsigned long long)(len - want));
    if (cfg.seq_len > max_context)
        cfg.seq_len = max_context;
    struct slora_model *m = slora__model_alloc(path, &cfg);
    if (!m)
        return SLORA_ENOMEM;
    map_sequential(m, (const float *)(buf + BIN_HEADER_BYTES), freq);
    *out = m;
    return 0;
}

int slora__model_map(const char *path, void **map, size_t *len, char *diag, size_t diag_len)
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
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: not a regular file", path);
    }
    *len = (size_t)st.st_size;
    *map = NULL;
    if (*len) {
        *map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (*map == MAP_FAILED) {
            *map = NULL;
            snprintf(diag, diag_len, "%s: cannot map: %s", path, strerror(errno));
            close(fd);
            return SLORA_EIO;
        }
    }
    close(fd);
    return 0;
}

int slora_model_load(const char *path, const struct slora_model_opts *opts,
                     struct slora_model **out, char *diag, size_t diag_len)
{
    int max_context = opts && opts->max_context > 0 ? opts->max_context
                                                     : SLORA_MODEL_DEFAULT_CONTEXT;
    struct slora_model *m = NULL;
    struct stat st;
    int rc;
    if (!stat(path, &st) && S_ISDIR(st.st_mode)) {
        if ((rc = slora__model_load_hf(&m, path, max_context, diag, diag_len)))
            return rc;
        goto loaded;
    }
    void *map;
    size_t len;
    if ((rc = slora__model_map(path, &map, &len, diag, diag_len)))
        return rc;
    const uint8_t *buf = map;
    rc = len >= 4 && !memcmp(buf, "GGUF", 4)
             ? slora__model_load_gguf(&m, path, buf, len, max_context, diag, diag_len)
             : load_bin(&m, path, buf, len, max_context, diag, diag_len);
    if (rc) {
        if (map)
            munmap(map, len);
        return rc;
    }
    m->map = map;
    m->map_len = len;
loaded:
    if ((rc = slora__model_check_finite(m, diag, diag_len))) {
        slora_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int slora_model_new_blank(const struct slora_model_config *cfg, struct slora_model **out,
                          char *diag, size_t diag_len)
{
    int rc = slora_model_check_config("model", cfg, diag, diag_len);
    if (rc)
        return rc;
    uint64_t n = weight_floats(cfg) + (uint64_t)cfg->head_dim / 2;
    if (n > SIZE_MAX / sizeof(float))
        return SLORA_ENOMEM;
    struct slora_model *m = slora__model_alloc("(generated)", cfg);
    if (!m || !(m->owned = calloc((size_t)n, sizeof(float)))) {
        slora_model_free(m);
        return SLORA_ENOMEM;
    }
    map_sequential(m, m->owned, 0);
    *out = m;
    return 0;
}

int slora_model_blank_add_rope_freqs(struct slora_model *m)
{
    /* blank models reserve head_dim / 2 floats after the last tensor */
    if (m->rope_freqs || !m->owned)
        return SLORA_EINVAL;
    float *p = (float *)m->owned + weight_floats(&m->cfg);
    for (int i = 0; i < m->cfg.head_dim / 2; i++)
        p[i] = 1.0f;
    m->rope_freqs = p;
    return 0;
}

void slora_model_free(struct slora_model *m)
{
    if (!m)
        return;
    if (m->map)
        munmap(m->map, m->map_len);
    for (int i = 0; i < m->n_shards; i++)
        if (m->shards[i])
            munmap(m->shards[i], m->shard_lens[i]);
    free(m->shards);
    free(m->shard_lens);
    slora_tokenizer_free(m->gguf_vocab);
    free((char *)m->chat_template);
    free(m->owned);
    free(m->rope_freqs_buf);
    free(m->layers);
    free((char *)m->path);
    free(m);
}
