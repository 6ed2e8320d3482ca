/* forward.c - the llama2.c transformer forward pass over a batch of rows
 * (see forward.h): RMSNorm (eps 1e-5), RoPE on adjacent pairs as run.c,
 * grouped-query attention against each row's own KV cache, SwiGLU FFN,
 * shared or unshared classifier.
 *
 * Matrix products group rows by the matrix their weight set maps
 * (layer, module) to: rows whose sets share a matrix (same set id, or a
 * module no adapter touches) go through one sgemm; a group of one uses
 * sgemv. All scratch is allocated in slora_fwd_new; slora_fwd_run never
 * allocates. A state is used by one thread at a time.
 */
#include <slora/blas.h>
#include <slora/error.h>
#include <slora/forward.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RMS_EPS 1e-5f
/* Rows per classifier sgemm: bounds the logits scratch at (64, vocab). */
#define LOGIT_CHUNK 64

struct slora_fwd {
    const struct slora_model *m;
    int max_rows;
    float *x;            /* (max_rows, dim) residual stream */
    float *xb;           /* (max_rows, dim) normalised input of a block */
    float *q;            /* (max_rows, dim) */
    float *k;            /* (max_rows, kv_dim) */
    float *v;            /* (max_rows, kv_dim) */
    float *att_out;      /* (max_rows, dim) */
    float *hb;           /* (max_rows, hidden_dim) */
    float *hb2;          /* (max_rows, hidden_dim) */
    float *att;          /* (seq_len) scores of one head */
    float *gin;          /* (max_rows, max(dim, hidden_dim)) gathered inputs of one weight group */
    float *gout;         /* (max_rows, max(dim, hidden_dim)) their outputs */
    float *logits;       /* (min(max_rows, LOGIT_CHUNK), vocab) */
    float *rope_cos;     /* (seq_len, head_size / 2) */
    float *rope_sin;     /* (seq_len, head_size / 2) */
    int *group;          /* (max_rows) row indices of the current weight group */
    unsigned char *done; /* (max_rows) rows already multiplied */
};

struct slora_kv *slora_kv_new(const struct slora_model *m)
{
    struct slora_kv *kv = calloc(1, sizeof(*kv));
    if (!kv)
        return NULL;
    kv->n_layers = m->cfg.shape.n_layers;
    kv->seq_len = m->cfg.seq_len;
    kv->kv_dim = slora_arch_kv_dim(&m->cfg.shape);
    size_t n = (size_t)kv->n_layers * kv->seq_len * kv->kv_dim;
    kv->k = calloc(n, sizeof(float));
    kv->v = calloc(n, sizeof(float));
    if (!kv->k || !kv->v) {
        slora_kv_free(kv);
        return NULL;
    }
    return kv;
}

void slora_kv_free(struct slora_kv *kv)
{
    if (!kv)
        return;
    free(kv->k);
    free(kv->v);
    free(kv);
}

struct slora_fwd *slora_fwd_new(const struct slora_model *m, int max_rows)
{
    if (max_rows < 1)
        return NULL;
    const struct slora_shape *s = &m->cfg.shape;
    size_t rows = (size_t)max_rows;
    size_t dim = s->dim, kv_dim = slora_arch_kv_dim(s), hid = s->hidden_dim;
    size_t wide = dim > hid ? dim : hid;
    size_t half = (size_t)(s->dim / s->n_heads / 2);
    size_t seq = (size_t)m->cfg.seq_len;
    struct slora_fwd *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->m = m;
    f->max_rows = max_rows;
    f->x = malloc(rows * dim * sizeof(float));
    f->xb = malloc(rows * dim * sizeof(float));
    f->q = malloc(rows * dim * sizeof(float));
    f->k = malloc(rows * kv_dim * sizeof(float));
    f->v = malloc(rows * kv_dim * sizeof(float));
    f->att_out = malloc(rows * dim * sizeof(float));
    f->hb = malloc(rows * hid * sizeof(float));
    f->hb2 = malloc(rows * hid * sizeof(float));
    f->att = malloc(seq * sizeof(float));
    f->gin = malloc(rows * wide * sizeof(float));
    f->gout = malloc(rows * wide * sizeof(float));
    f->logits = malloc((rows < LOGIT_CHUNK ? rows : LOGIT_CHUNK) * s->vocab_size * sizeof(float));
    f->rope_cos = malloc(seq * half * sizeof(float));
    f->rope_sin = malloc(seq * half * sizeof(float));
    f->group = malloc(rows * sizeof(int));
    f->done = malloc(rows);
    if (!f->x || !f->xb || !f->q || !f->k || !f->v || !f->att_out || !f->hb || !f->hb2 || !f->att ||
        !f->gin || !f->gout || !f->logits || !f->rope_cos || !f->rope_sin || !f->group ||
        !f->done) {
        slora_fwd_free(f);
        return NULL;
    }
    /* run.c's rotation angles, computed with the same float operations */
    int hs = s->dim / s->n_heads;
    for (size_t pos = 0; pos < seq; pos++)
        for (size_t i = 0; i < half; i++) {
            float freq = 1.0f / powf(10000.0f, (float)(2 * i) / (float)hs);
            float val = (float)pos * freq;
            f->rope_cos[pos * half + i] = cosf(val);
            f->rope_sin[pos * half + i] = sinf(val);
        }
    return f;
}

void slora_fwd_free(struct slora_fwd *f)
{
    if (!f)
        return;
    free(f->x);
    free(f->xb);
    free(f->q);
    free(f->k);
    free(f->v);
    free(f->att_out);
    free(f->hb);
    free(f->hb2);
    free(f->att);
    free(f->gin);
    free(f->gout);
    free(f->logits);
    free(f->rope_cos);
    free(f->rope_sin);
    free(f->group);
    free(f->done);
    free(f);
}

int slora_fwd_max_rows(const struct slora_fwd *f)
{
    return f->max_rows;
}

static void rmsnorm(float *restrict o, const float *restrict x, const float *restrict weight,
                    int size)
{
    float ss = 0.0f;
    for (int j = 0; j < size; j++)
        ss += x[j] * x[j];
    ss /= (float)size;
    ss += RMS_EPS;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < size; j++)
        o[j] = weight[j] * (ss * x[j]);
}

static void softmax(float *x, int size)
{
    float max = x[0];
    for (int i = 1; i < size; i++)
        if (x[i] > max)
            max = x[i];
    float sum = 0.0f;
    for (int i = 0; i < size; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < size; i++)
        x[i] /= sum;
}

/* Eight independent partial sums: vectorisable without reassociation flags. */
static float dot(const float *restrict a, const float *restrict b, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += a[i + l] * b[i + l];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* y += a * x, in blocks of eight the compiler vectorises at -O2. */
static void axpy(float *restrict y, float a, const float *restrict x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            y[i + l] += a * x[i + l];
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* out (n, rows) = in (n, cols) through each row's matrix for (layer, mod). */
static void matmul(struct slora_fwd *f, const struct slora_fwd_row *rows, int n, int layer,
                   enum slora_module mod, const float *in, float *out)
{
    int64_t r64, c64;
    slora_arch_module_dims(&f->m->cfg.shape, mod, &r64, &c64);
    int r = (int)r64, c = (int)c64;
    const float *w0 = slora_weights_get(rows[0].ws, layer, mod);
    int i = 1;
    while (i < n && slora_weights_get(rows[i].ws, layer, mod) == w0)
        i++;
    if (i == n) {
        slora_blas_matmul_rows(w0, in, out, n, r, c);
        return;
    }
    memset(f->done, 0, (size_t)f->max_rows);
    for (i = 0; i < n; i++) {
        if (f->done[i])
            continue;
        const float *w = slora_weights_get(rows[i].ws, layer, mod);
        int g = 0;
        for (int j = i; j < n; j++)
            if (!f->done[j] && slora_weights_get(rows[j].ws, layer, mod) == w) {
                f->done[j] = 1;
                f->group[g++] = j;
            }
        if (g == 1) {
            slora_blas_gemv(w, in + (size_t)i * c, out + (size_t)i * r, r, c);
            continue;
        }
        for (int j = 0; j < g; j++)
            memcpy(f->gin + (size_t)j * c, in + (size_t)f->group[j] * c, (size_t)c * sizeof(float));
        slora_blas_matmul_rows(w, f->gin, f->gout, g, r, c);
        for (int j = 0; j < g; j++)
            memcpy(out + (size_t)f->group[j] * r, f->gout + (size_t)j * r,
                   (size_t)r * sizeof(float));
    }
}

/* Rotate adjacent pairs of q (dim) and k (kv_dim) by the angles of pos. */
static void rope(const struct slora_fwd *f, float *q, float *k, int pos)
{
    const struct slora_shape *s = &f->m->cfg.shape;
    int hs = s->dim / s->n_heads, half = hs / 2, kv_dim = slora_arch_kv_dim(s);
    const float *cs = f->rope_cos + (size_t)pos * half;
    const float *sn = f->rope_sin + (size_t)pos * half;
    for (int i = 0; i < s->dim; i += 2) {
        float fcr = cs[(i % hs) / 2], fci = sn[(i % hs) / 2];
        float v0 = q[i], v1 = q[i + 1];
        q[i] = v0 * fcr - v1 * fci;
        q[i + 1] = v0 * fci + v1 * fcr;
        if (i < kv_dim) {
            v0 = k[i];
            v1 = k[i + 1];
            k[i] = v0 * fcr - v1 * fci;
            k[i + 1] = v0 * fci + v1 * fcr;
        }
    }
}

/* Multi-head attention of one row over its sequence's positions 0..pos. */
static void attend(struct slora_fwd *f, const struct slora_fwd_row *row, int layer, const float *q,
                   float *out)
{
    const struct slora_shape *s = &f->m->cfg.shape;
    int hs = s->dim / s->n_heads, kv_dim = slora_arch_kv_dim(s);
    int kv_mul = s->n_heads / s->n_kv_heads;
    size_t base = (size_t)layer * row->kv->seq_len * kv_dim;
    const float *kc = row->kv->k + base, *vc = row->kv->v + base;
    float scale = sqrtf((float)hs);
    for (int h = 0; h < s->n_heads; h++) {
        const float *qh = q + h * hs;
        int off = (h / kv_mul) * hs;
        for (int t = 0; t <= row->pos; t++)
            f->att[t] = dot(qh, kc + (size_t)t * kv_dim + off, hs) / scale;
        softmax(f->att, row->pos + 1);
        float *oh = out + h * hs;
        memset(oh, 0, (size_t)hs * sizeof(float));
        for (int t = 0; t <= row->pos; t++)
            axpy(oh, f->att[t], vc + (size_t)t * kv_dim + off, (size_t)hs);
    }
}

static void layer_forward(struct slora_fwd *f, const struct slora_fwd_row *rows, int n, int l)
{
    const struct slora_model *m = f->m;
    const struct slora_shape *s = &m->cfg.shape;
    int dim = s->dim, hid = s->hidden_dim, kv_dim = slora_arch_kv_dim(s);
    const struct slora_layer *w = &m->layers[l];

    for (int i = 0; i < n; i++)
        rmsnorm(f->xb + (size_t)i * dim, f->x + (size_t)i * dim, w->rms_att, dim);
    matmul(f, rows, n, l, SLORA_MOD_WQ, f->xb, f->q);
    matmul(f, rows, n, l, SLORA_MOD_WK, f->xb, f->k);
    matmul(f, rows, n, l, SLORA_MOD_WV, f->xb, f->v);
    /* all rows' keys and values first: a row sees earlier rows of its batch */
    for (int i = 0; i < n; i++) {
        const struct slora_fwd_row *row = &rows[i];
        float *k = f->k + (size_t)i * kv_dim, *v = f->v + (size_t)i * kv_dim;
        rope(f, f->q + (size_t)i * dim, k, row->pos);
        size_t at = ((size_t)l * row->kv->seq_len + row->pos) * kv_dim;
        memcpy(row->kv->k + at, k, (size_t)kv_dim * sizeof(float));
        memcpy(row->kv->v + at, v, (size_t)kv_dim * sizeof(float));
    }
    for (int i = 0; i < n; i++)
        attend(f, &rows[i], l, f->q + (size_t)i * dim, f->att_out + (size_t)i * dim);
    matmul(f, rows, n, l, SLORA_MOD_WO, f->att_out, f->xb);
    axpy(f->x, 1.0f, f->xb, (size_t)n * dim);

    for (int i = 0; i < n; i++)
        rmsnorm(f->xb + (size_t)i * dim, f->x + (size_t)i * dim, w->rms_ffn, dim);
    matmul(f, rows, n, l, SLORA_MOD_W1, f->xb, f->hb);
    matmul(f, rows, n, l, SLORA_MOD_W3, f->xb, f->hb2);
    /* SwiGLU: silu(w1 x) * (w3 x) */
    for (size_t j = 0; j < (size_t)n * hid; j++) {
        float val = f->hb[j];
        val *= 1.0f / (1.0f + expf(-val));
        f->hb[j] = val * f->hb2[j];
    }
    matmul(f, rows, n, l, SLORA_MOD_W2, f->hb, f->xb);
    axpy(f->x, 1.0f, f->xb, (size_t)n * dim);
}

/* Final norm and classifier for the rows that want logits, in chunks. */
static void classify(struct slora_fwd *f, const struct slora_fwd_row *rows, int n)
{
    const struct slora_shape *s = &f->m->cfg.shape;
    int dim = s->dim, vocab = s->vocab_size;
    int g = 0;
    for (int i = 0; i <= n; i++) {
        if (i < n && rows[i].logits) {
            rmsnorm(f->gin + (size_t)g * dim, f->x + (size_t)i * dim, f->m->rms_final, dim);
            f->group[g++] = i;
        }
        if (g == 0 || (g < LOGIT_CHUNK && i < n))
            continue;
        if (g == 1) {
            slora_blas_gemv(f->m->wcls, f->gin, rows[f->group[0]].logits, vocab, dim);
        } else {
            slora_blas_matmul_rows(f->m->wcls, f->gin, f->logits, g, vocab, dim);
            for (int j = 0; j < g; j++)
                memcpy(rows[f->group[j]].logits, f->logits + (size_t)j * vocab,
                       (size_t)vocab * sizeof(float));
        }
        g = 0;
    }
}

static int check_rows(const struct slora_fwd *f, const struct slora_fwd_row *rows, int n)
{
    const struct slora_model *m = f->m;
    if (n < 1 || n > f->max_rows)
        return SLORA_EINVAL;
    for (int i = 0; i < n; i++) {
        const struct slora_fwd_row *r = &rows[i];
        if (r->token < 0 || r->token >= m->cfg.shape.vocab_size || r->pos < 0 ||
            r->pos >= m->cfg.seq_len || !r->kv || !r->ws || r->ws->model != m ||
            r->kv->n_layers != m->cfg.shape.n_layers || r->kv->seq_len != m->cfg.seq_len ||
            r->kv->kv_dim != slora_arch_kv_dim(&m->cfg.shape))
            return SLORA_EINVAL;
    }
    return 0;
}

int slora_fwd_run(struct slora_fwd *f, const struct slora_fwd_row *rows, int n)
{
    int rc = check_rows(f, rows, n);
    if (rc)
        return rc;
    int dim = f->m->cfg.shape.dim;
    for (int i = 0; i < n; i++)
        memcpy(f->x + (size_t)i * dim, f->m->tok_emb + (size_t)rows[i].token * dim,
               (size_t)dim * sizeof(float));
    for (int l = 0; l < f->m->cfg.shape.n_layers; l++)
        layer_forward(f, rows, n, l);
    classify(f, rows, n);
    return 0;
}
