/* forward.c - the transformer forward pass over a batch of rows (see
 * forward.h).
 *
 * One slora_fwd_run is one slora_pool_run: every thread walks the same
 * steps, taking its share of each (output rows of a product, rows of the
 * batch, (row, head) pairs of attention) and meeting the others at a
 * barrier before a step that reads what another thread wrote. A base
 * product's output rows are claimed in chunks, first come first served
 * (slora_pool_claim), so a thread that loses its core to another process
 * does not hold the others at the next barrier; its adapter deltas go to a
 * fixed slice of rows per thread after a barrier.
 *
 * All scratch is allocated in slora_fwd_new; slora_fwd_run never allocates.
 */
#include "internal.h"

#include <slora/error.h>
#include <slora/forward.h>
#include <slora/matmul.h>
#include <slora/pool.h>
#include <slora/vec.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows per classifier product: bounds the logits scratch at (64, vocab). */
#define LOGIT_CHUNK 64
/* Rows per gathered delta product (per-thread scratch (GCHUNK, wide)). */
#define GCHUNK 64
/* Output rows of a thread's slice are a multiple of this (kernel tiles). */
#define SLICE_ALIGN 16

struct thread_scratch {
    float *att; /* (n_heads / n_kv_heads, seq_len) attention scores of a key/value head's queries */
    float *gin; /* (GCHUNK, wide) gathered inputs of one delta group */
    float *gout;         /* (GCHUNK, wide) their products */
    float *t;            /* (GCHUNK, SLORA_FWD_MAX_LORA_RANK) A x of a LoRA group */
    int *grp;            /* (max_rows) rows of the current delta group */
    float *gsc;          /* (max_rows) their scales */
    unsigned char *done; /* (max_rows * SLORA_WEIGHTS_MAX_TERMS) (row, term) pairs grouped */
    int xq_type;         /* vector type the shared f->xq holds now, -1 none (every thread
                            tracks the same value: they take the same steps) */
};

struct slora_fwd {
    const struct slora_model *m;
    struct slora_pool *pool;
    int max_rows;
    int nth;
    double weights; /* base weights a row multiplies, for the team size */
    float *x;        /* (max_rows, dim) residual stream */
    float *xb;       /* (max_rows, dim) normalised input of a block / block output */
    float *q;        /* (max_rows, dim) */
    float *k;        /* (max_rows, kv_dim) */
    float *v;        /* (max_rows, kv_dim) */
    float *att_out;  /* (max_rows, dim) */
    float *hb;       /* (max_rows, hidden_dim) */
    float *hb2;      /* (max_rows, hidden_dim) */
    uint8_t *xq;     /* (max_rows, xq_stride) quantized activations of one product */
    size_t xq_stride;
    float *logits;   /* (min(max_rows, LOGIT_CHUNK), vocab) */
    float *rope_cos; /* (seq_len, head_dim / 2) */
    float *rope_sin; /* (seq_len, head_dim / 2) */
    int *lrows;      /* (max_rows) rows that want logits */
    struct thread_scratch *ts; /* (nth) */
    /* the current call */
    const struct slora_fwd_row *rows;
    int n;
    const struct slora_weights *ws_all; /* the weight set every row shares, or NULL */
    struct slora_fwd_stats st;          /* counted by thread 0 */
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
    /* written before read (a reused cache holds an earlier sequence's rows);
     * untouched pages of a long context cost no memory */
    kv->k = slora__alloc64(n * sizeof(float));
    kv->v = slora__alloc64(n * sizeof(float));
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

/* Largest quantized activation row any product of the model needs. */
static size_t max_xq_bytes(const struct slora_model *m)
{
    size_t best = 0;
    const struct slora_tensor *ts[2 + SLORA_MOD_COUNT];
    int n = 0;
    ts[n++] = &m->wcls;
    for (int l = 0; l < m->cfg.shape.n_layers; l++) {
        n = 1;
        for (int mod = 0; mod < SLORA_MOD_COUNT; mod++)
            ts[n++] = &m->layers[l].w[mod];
        for (int i = 0; i < n; i++) {
            size_t b = slora_matmul_xq_bytes(ts[i]->type, ts[i]->cols);
            if (b > best)
                best = b;
        }
    }
    return (best + 63) / 64 * 64;
}

static void rope_tables(struct slora_fwd *f)
{
    const struct slora_model_config *c = &f->m->cfg;
    int hd = c->head_dim, half = hd / 2;
    for (int i = 0; i < half; i++) {
        /* run.c's angles, computed with the same float operations */
        float freq = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)hd);
        if (f->m->rope_freqs)
            freq /= f->m->rope_freqs[i];
        for (int pos = 0; pos < c->seq_len; pos++) {
            float val = (float)pos * c->rope_freq_scale * freq;
            f->rope_cos[(size_t)pos * half + i] = cosf(val);
            f->rope_sin[(size_t)pos * half + i] = sinf(val);
        }
    }
}

struct slora_fwd *slora_fwd_new(const struct slora_model *m, int max_rows, int n_threads)
{
    if (max_rows < 1)
        return NULL;
    const struct slora_shape *s = &m->cfg.shape;
    size_t rows = (size_t)max_rows;
    size_t dim = s->dim, kv_dim = slora_arch_kv_dim(s), hid = s->hidden_dim;
    size_t wide = dim > hid ? dim : hid;
    size_t half = (size_t)m->cfg.head_dim / 2;
    size_t seq = (size_t)m->cfg.seq_len;
    size_t grows = rows < GCHUNK ? rows : GCHUNK;
    struct slora_fwd *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->m = m;
    f->max_rows = max_rows;
    f->pool = slora_pool_new(n_threads);
    if (!f->pool)
        goto err;
    f->nth = slora_pool_size(f->pool);
    f->weights = (double)m->wcls.rows * m->wcls.cols;
    for (int l = 0; l < m->cfg.shape.n_layers; l++)
        for (int mod = 0; mod < SLORA_MOD_COUNT; mod++)
            f->weights += (double)m->layers[l].w[mod].rows * m->layers[l].w[mod].cols;
    f->xq_stride = max_xq_bytes(m);
    f->x = slora__alloc64(rows * dim * sizeof(float));
    f->xb = slora__alloc64(rows * dim * sizeof(float));
    f->q = slora__alloc64(rows * dim * sizeof(float));
    f->k = slora__alloc64(rows * kv_dim * sizeof(float));
    f->v = slora__alloc64(rows * kv_dim * sizeof(float));
    f->att_out = slora__alloc64(rows * dim * sizeof(float));
    f->hb = slora__alloc64(rows * hid * sizeof(float));
    f->hb2 = slora__alloc64(rows * hid * sizeof(float));
    f->xq = slora__alloc64(rows * f->xq_stride);
    f->logits = malloc((rows < LOGIT_CHUNK ? rows : LOGIT_CHUNK) * s->vocab_size * sizeof(float));
    f->rope_cos = malloc(seq * half * sizeof(float));
    f->rope_sin = malloc(seq * half * sizeof(float));
    f->lrows = malloc(rows * sizeof(int));
    f->ts = calloc((size_t)f->nth, sizeof(*f->ts));
    if (!f->x || !f->xb || !f->q || !f->k || !f->v || !f->att_out || !f->hb || !f->hb2 ||
        !f->xq || !f->logits || !f->rope_cos || !f->rope_sin || !f->lrows || !f->ts)
        goto err;
    for (int t = 0; t < f->nth; t++) {
        struct thread_scratch *ts = &f->ts[t];
        ts->att = slora__alloc64((size_t)(s->n_heads / s->n_kv_heads) * seq * sizeof(float));
        ts->gin = slora__alloc64(grows * wide * sizeof(float));
        ts->gout = slora__alloc64(grows * wide * sizeof(float));
        ts->t = slora__alloc64(grows * SLORA_FWD_MAX_LORA_RANK * sizeof(float));
        ts->grp = malloc(rows * sizeof(int));
        ts->gsc = malloc(rows * sizeof(float));
        ts->done = malloc(rows * SLORA_WEIGHTS_MAX_TERMS);
        if (!ts->att || !ts->gin || !ts->gout || !ts->t || !ts->grp || !ts->gsc || !ts->done)
            goto err;
    }
    rope_tables(f);
    return f;
err:
    slora_fwd_free(f);
    return NULL;
}

void slora_fwd_free(struct slora_fwd *f)
{
    if (!f)
        return;
    slora_pool_free(f->pool);
    for (int t = 0; f->ts && t < f->nth; t++) {
        struct thread_scratch *ts = &f->ts[t];
        free(ts->att);
        free(ts->gin);
        free(ts->gout);
        free(ts->t);
        free(ts->grp);
        free(ts->gsc);
        free(ts->done);
    }
    free(f->ts);
    free(f->x);
    free(f->xb);
    free(f->q);
    free(f->k);
    free(f->v);
    free(f->att_out);
    free(f->hb);
    free(f->hb2);
    free(f->xq);
    free(f->logits);
    free(f->rope_cos);
    free(f->rope_sin);
    free(f->lrows);
    free(f);
}

int slora_fwd_max_rows(const struct slora_fwd *f)
{
    return f->max_rows;
}

int slora_fwd_threads(const struct slora_fwd *f)
{
    return f->nth;
}

/* [*lo, *hi): thread ith's share of n items, in multiples of align. */
static void share(int64_t n, int ith, int nth, int64_t align, int64_t *lo, int64_t *hi)
{
    int64_t per = (n + nth - 1) / nth;
    per = (per + align - 1) / align * align;
    *lo = per * ith < n ? per * ith : n;
    *hi = *lo + per < n ? *lo + per : n;
}

/* How the activations x of a product were left (see activations). */
enum x_state {
    X_SYNCED,   /* fully written before a barrier */
    X_OWN_ROWS, /* each thread wrote its rows share(n, 1) since the last barrier */
    X_REUSE,    /* as for the previous product, which read the same x */
};

/* Activations x (n, cols) in the format w's product consumes: floats as
 * they are, or quantized into f->xq by all threads, each its own rows
 * (ends with a barrier). With X_OWN_ROWS a thread quantizes the rows it
 * wrote itself, so only the barrier after the quantization is needed (a
 * float product waits for the others' rows). With X_REUSE rows already
 * quantized for the same format are reused (q, k and v read the same x;
 * so do gate and up). */
static const void *activations(struct slora_fwd *f, const struct slora_tensor *w, const float *x,
                               int n, enum x_state xs, int ith, int nth, size_t *stride)
{
    struct thread_scratch *ts = &f->ts[ith];
    int vt = slora_matmul_vec_type(w->type);
    if (vt == SLORA_DTYPE_F32) {
        if (xs == X_OWN_ROWS)
            slora_pool_barrier(f->pool);
        *stride = (size_t)w->cols * sizeof(float);
        return x;
    }
    *stride = f->xq_stride;
    if (xs == X_REUSE && ts->xq_type == vt)
        return f->xq;
    if (xs == X_REUSE) /* another thread may still read f->xq for the previous product */
        slora_pool_barrier(f->pool);
    int64_t lo, hi;
    share(n, ith, nth, 1, &lo, &hi);
    if (hi > lo)
        slora_matmul_quantize(w->type, x + lo * w->cols, (int)(hi - lo), w->cols,
                              f->xq + lo * f->xq_stride, f->xq_stride);
    slora_pool_barrier(f->pool);
    ts->xq_type = vt;
    return f->xq;
}

/* The rows of thread scratch ts->grp (with scales ts->gsc), g of them,
 * through delta d: y[row][lo..hi) += scale * (d x_row)[lo..hi). */
static void delta_group(struct thread_scratch *ts, const struct slora_delta *d, int g,
                        const float *x, int64_t cols, float *y, int64_t ldy, int64_t lo,
                        int64_t hi)
{
    for (int c0 = 0; c0 < g; c0 += GCHUNK) {
        int cn = g - c0 < GCHUNK ? g - c0 : GCHUNK;
        for (int j = 0; j < cn; j++)
            memcpy(ts->gin + (size_t)j * cols, x + (size_t)ts->grp[c0 + j] * cols,
                   (size_t)cols * sizeof(float));
        size_t stride = (size_t)cols * sizeof(float);
        if (d->kind == SLORA_DELTA_DENSE) {
            slora_matmul(&d->dw, ts->gin, stride, cn, ts->gout, (size_t)ldy, lo, hi, false);
        } else {
            /* t = A x, then the slice of B t = sum_k t_k (row k of B^T):
             * the weighted sum of rows attention's value mix computes (a
             * matmul by B would be one call per output of r elements) */
            int64_t r = d->a.rows;
            const float *bt = (const float *)d->bt.data + lo;
            slora_matmul(&d->a, ts->gin, stride, cn, ts->t, (size_t)r, 0, r, false);
            for (int j = 0; j < cn; j++)
                slora_vec_attn_mix(ts->gout + (size_t)j * ldy + lo, ts->t + (size_t)j * r, 0, 1, bt,
                                   (size_t)d->bt.cols, (int)r, (int)(hi - lo));
        }
        for (int j = 0; j < cn; j++)
            slora_vec_axpy(y + (size_t)ts->grp[c0 + j] * ldy + lo, ts->gsc[c0 + j],
                           ts->gout + (size_t)j * ldy + lo, (int)(hi - lo));
    }
}

/* Every adapter delta of (layer, mod) among the rows, applied to this
 * thread's slice [lo, hi) of y. */
static void deltas(struct slora_fwd *f, int ith, int layer, enum slora_module mod, const float *x,
                   int64_t cols, float *y, int64_t ldy, int64_t lo, int64_t hi)
{
    struct thread_scratch *ts = &f->ts[ith];
    const struct slora_weights *all = f->ws_all;
    if (all) {
        /* every row shares one weight set: one group per term, all rows */
        for (int k = 0; k < all->n_terms; k++) {
            const struct slora_delta *d = slora_weights_delta(all, k, layer, mod);
            if (!d)
                continue;
            if (ith == 0)
                f->st.delta_products++;
            if (d->kind == SLORA_DELTA_DENSE && all->scale[k] == 1.0f) {
                slora_matmul(&d->dw, x, (size_t)cols * sizeof(float), f->n, y, (size_t)ldy, lo,
                             hi, true);
                continue;
            }
            for (int i = 0; i < f->n; i++) {
                ts->grp[i] = i;
                ts->gsc[i] = all->scale[k];
            }
            delta_group(ts, d, f->n, x, cols, y, ldy, lo, hi);
        }
        return;
    }
    int n = f->n;
    memset(ts->done, 0, (size_t)n * SLORA_WEIGHTS_MAX_TERMS);
    for (int i = 0; i < n; i++) {
        const struct slora_weights *wi = f->rows[i].ws;
        for (int k = 0; k < wi->n_terms; k++) {
            const struct slora_delta *d = slora_weights_delta(wi, k, layer, mod);
            if (!d || ts->done[i * SLORA_WEIGHTS_MAX_TERMS + k])
                continue;
            int g = 0;
            for (int j = i; j < n; j++) {
                const struct slora_weights *wj = f->rows[j].ws;
                for (int kk = 0; kk < wj->n_terms; kk++)
                    if (!ts->done[j * SLORA_WEIGHTS_MAX_TERMS + kk] &&
                        slora_weights_delta(wj, kk, layer, mod) == d) {
                        ts->done[j * SLORA_WEIGHTS_MAX_TERMS + kk] = 1;
                        ts->grp[g] = j;
                        ts->gsc[g++] = wj->scale[kk];
                    }
            }
            if (ith == 0)
                f->st.delta_products++;
            delta_group(ts, d, g, x, cols, y, ldy, lo, hi);
        }
    }
}

/* Has any row's weight set a delta on (layer, mod)? (Every thread gets
 * the same answer: they take the same steps.) */
static bool has_deltas(const struct slora_fwd *f, int layer, enum slora_module mod)
{
    for (int i = 0; i < f->n; i++) {
        const struct slora_weights *ws = f->ws_all ? f->ws_all : f->rows[i].ws;
        for (int k = 0; k < ws->n_terms; k++)
            if (slora_weights_delta(ws, k, layer, mod))
                return true;
        if (f->ws_all)
            break;
    }
    return false;
}

/* This thread's next chunk [*lo, *hi) of the output rows of a product by
 * w, false when every chunk is taken. Chunks are about 8 per thread (far
 * shorter than the time slice another process may take a core for), each
 * of at least CLAIM_BYTES of weights (a claim is an atomic operation on a
 * line the other threads write too), in multiples of SLICE_ALIGN; a thread
 * alone takes the whole product in one. */
#define CLAIM_BYTES (256 * 1024)
static bool claim_chunk(struct slora_fwd *f, int ith, int nth, const struct slora_tensor *w,
                        int64_t *lo, int64_t *hi)
{
    int64_t per = w->rows;
    if (nth > 1) {
        int64_t least = (int64_t)((CLAIM_BYTES + w->row_bytes - 1) / w->row_bytes);
        per = (w->rows + 8 * nth - 1) / (8 * nth);
        per = per < least ? least : per;
        per = (per + SLICE_ALIGN - 1) / SLICE_ALIGN * SLICE_ALIGN;
    }
    int64_t c;
    if (!slora_pool_claim(f->pool, ith, (w->rows + per - 1) / per, &c))
        return false;
    *lo = c * per;
    *hi = w->rows - *lo < per ? w->rows : *lo + per;
    return true;
}

/* y[i][lo..hi) += bias[lo..hi) for every row i of the batch. */
static void add_bias(const struct slora_fwd *f, const float *bias, float *y, int64_t ldy,
                     int64_t lo, int64_t hi)
{
    for (int i = 0; i < f->n; i++)
        slora_vec_axpy(y + (size_t)i * ldy + lo, 1.0f, bias + lo, (int)(hi - lo));
}

/* y (n, rows) = x (n, cols) through the base matrix w, in claimed chunks
 * of output rows, plus bias when given (only when no delta follows: bias
 * comes after the deltas); xs as for activations. No barrier at the end. */
static void product(struct slora_fwd *f, int ith, int nth, const struct slora_tensor *w,
                    const float *x, enum x_state xs, float *y, const float *bias)
{
    size_t stride;
    const void *xq = activations(f, w, x, f->n, xs, ith, nth, &stride);
    if (ith == 0)
        f->st.base_products++;
    int64_t lo, hi;
    while (claim_chunk(f, ith, nth, w, &lo, &hi)) {
        slora_matmul(w, xq, stride, f->n, y, (size_t)w->rows, lo, hi, false);
        if (bias)
            add_bias(f, bias, y, w->rows, lo, hi);
    }
}

/* Every adapter delta of (layer, mod), then its bias when given, on this
 * thread's slice share(rows, SLICE_ALIGN) of y: after a barrier that
 * follows the base product. x is the product's float input. */
static void product_deltas(struct slora_fwd *f, int ith, int nth, int layer,
                           enum slora_module mod, const float *x, float *y, const float *bias)
{
    const struct slora_tensor *w = &f->m->layers[layer].w[mod];
    int64_t lo, hi;
    share(w->rows, ith, nth, SLICE_ALIGN, &lo, &hi);
    if (hi <= lo)
        return;
    deltas(f, ith, layer, mod, x, w->cols, y, w->rows, lo, hi);
    if (bias)
        add_bias(f, bias, y, w->rows, lo, hi);
}

/* Rotate one head's vector v (head_dim) by the angles of pos: NORM
 * pairs (2i, 2i + 1), NEOX pairs (i, i + half). */
static void rope_head(const struct slora_fwd *f, float *v, int pos)
{
    const struct slora_model_config *c = &f->m->cfg;
    int half = c->head_dim / 2;
    const float *cs = f->rope_cos + (size_t)pos * half;
    const float *sn = f->rope_sin + (size_t)pos * half;
    bool neox = c->rope_style == SLORA_ROPE_NEOX;
    int stride = neox ? half : 1;
    for (int i = 0; i < half; i++) {
        int a = neox ? i : 2 * i;
        float v0 = v[a], v1 = v[a + stride];
        v[a] = v0 * cs[i] - v1 * sn[i];
        v[a + stride] = v0 * sn[i] + v1 * cs[i];
    }
}

/* Key/value heads [g0, g1) of rows [r0, r1) (each row's one step): rotate
 * their queries and keys, store keys and values at the row's position. */
static void rope_store(struct slora_fwd *f, int layer, int64_t r0, int64_t r1, int g0, int g1)
{
    const struct slora_model_config *c = &f->m->cfg;
    int hd = c->head_dim, dim = c->shape.dim, kv_dim = slora_arch_kv_dim(&c->shape);
    int n_kv = c->shape.n_kv_heads, kv_mul = c->shape.n_heads / n_kv;
    for (int64_t i = r0; i < r1; i++) {
        const struct slora_fwd_row *row = &f->rows[i];
        float *q = f->q + i * dim, *k = f->k + i * kv_dim, *v = f->v + i * kv_dim;
        for (int g = g0; g < g1; g++) {
            for (int j = 0; j < kv_mul; j++)
                rope_head(f, q + (size_t)(g * kv_mul + j) * hd, row->pos);
            rope_head(f, k + (size_t)g * hd, row->pos);
            size_t at = (((size_t)layer * n_kv + g) * c->seq_len + row->pos) * hd;
            memcpy(row->kv->k + at, k + (size_t)g * hd, (size_t)hd * sizeof(float));
            memcpy(row->kv->v + at, v + (size_t)g * hd, (size_t)hd * sizeof(float));
        }
    }
}

/* Key/value heads [g0, g1) of one row (with the query heads that share
 * them) over its sequence's positions 0..pos. */
static void attend(struct slora_fwd *f, float *att, const struct slora_fwd_row *row, int layer,
                   const float *q, float *out, int g0, int g1)
{
    const struct slora_model_config *c = &f->m->cfg;
    int hd = c->head_dim, n_kv = c->shape.n_kv_heads;
    int kv_mul = c->shape.n_heads / n_kv, n_pos = row->pos + 1;
    size_t stride = (size_t)c->seq_len; /* of att's rows and of a head's cached positions */
    for (int g = g0; g < g1; g++) {
        size_t at = ((size_t)layer * n_kv + g) * stride * hd;
        const float *qg = q + (size_t)g * kv_mul * hd;
        slora_vec_attn_scores(att, stride, qg, kv_mul, row->kv->k + at, (size_t)hd, n_pos, hd,
                              1.0f / sqrtf((float)hd));
        for (int j = 0; j < kv_mul; j++)
            slora_vec_softmax(att + j * stride, n_pos);
        slora_vec_attn_mix(out + (size_t)g * kv_mul * hd, att, stride, kv_mul, row->kv->v + at,
                           (size_t)hd, n_pos, hd);
    }
}

static void layer_forward(struct slora_fwd *f, int ith, int nth, int l)
{
    const struct slora_model *m = f->m;
    const struct slora_model_config *c = &m->cfg;
    int dim = c->shape.dim, hid = c->shape.hidden_dim;
    const struct slora_layer *w = &m->layers[l];
    int n = f->n;
    int64_t lo, hi;

    /* x += previous block's output (none before layer 0), then normalise */
    share(n, ith, nth, 1, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        float *xi = f->x + i * dim, *xbi = f->xb + i * dim;
        if (l > 0)
            slora_vec_axpy(xi, 1.0f, xbi, dim);
        slora_vec_rmsnorm(xbi, xi, w->rms_att, dim, c->rms_eps);
    }
    static const enum slora_module qkv[3] = {SLORA_MOD_WQ, SLORA_MOD_WK, SLORA_MOD_WV};
    float *qkv_out[3] = {f->q, f->k, f->v};
    bool dqkv[3], any = false;
    for (int j = 0; j < 3; j++) {
        dqkv[j] = has_deltas(f, l, qkv[j]);
        any |= dqkv[j];
        product(f, ith, nth, &w->w[qkv[j]], f->xb, j ? X_REUSE : X_OWN_ROWS, qkv_out[j],
                dqkv[j] ? NULL : w->bias[j]);
    }
    if (any) {
        slora_pool_barrier(f->pool);
        for (int j = 0; j < 3; j++)
            if (dqkv[j])
                product_deltas(f, ith, nth, l, qkv[j], f->xb, qkv_out[j], w->bias[j]);
    }
    slora_pool_barrier(f->pool);
    /* Attention. Every row's keys and values are stored before any row
     * attends (a row sees earlier rows of its batch). With at least a
     * key/value head per thread, each thread takes a range of heads of
     * every row, stores and attends them: no barrier in between. Else
     * the rows' steps are shared first, then rows are dealt round robin
     * (a row's cost grows with its position). */
    int n_kv = c->shape.n_kv_heads;
    if (n_kv >= nth) {
        share(n_kv, ith, nth, 1, &lo, &hi);
        if (hi > lo) {
            rope_store(f, l, 0, n, (int)lo, (int)hi);
            /* head by head: a prefill's rows read the same keys and
             * values, which stay in L2 for one head (not for all) */
            for (int g = (int)lo; g < (int)hi; g++)
                for (int i = 0; i < n; i++)
                    attend(f, f->ts[ith].att, &f->rows[i], l, f->q + (size_t)i * dim,
                           f->att_out + (size_t)i * dim, g, g + 1);
        }
    } else {
        share(n, ith, nth, 1, &lo, &hi);
        rope_store(f, l, lo, hi, 0, n_kv);
        slora_pool_barrier(f->pool);
        for (int i = ith; i < n; i += nth)
            attend(f, f->ts[ith].att, &f->rows[i], l, f->q + (size_t)i * dim,
                   f->att_out + (size_t)i * dim, 0, n_kv);
    }
    slora_pool_barrier(f->pool);
    product(f, ith, nth, &w->w[SLORA_MOD_WO], f->att_out, X_SYNCED, f->xb, NULL);
    if (has_deltas(f, l, SLORA_MOD_WO)) {
        slora_pool_barrier(f->pool);
        product_deltas(f, ith, nth, l, SLORA_MOD_WO, f->att_out, f->xb, NULL);
    }
    slora_pool_barrier(f->pool);

    share(n, ith, nth, 1, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        float *xi = f->x + i * dim, *xbi = f->xb + i * dim;
        slora_vec_axpy(xi, 1.0f, xbi, dim);
        slora_vec_rmsnorm(xbi, xi, w->rms_ffn, dim, c->rms_eps);
    }
    product(f, ith, nth, &w->w[SLORA_MOD_W1], f->xb, X_OWN_ROWS, f->hb, NULL);
    product(f, ith, nth, &w->w[SLORA_MOD_W3], f->xb, X_REUSE, f->hb2, NULL);
    slora_pool_barrier(f->pool);
    if (has_deltas(f, l, SLORA_MOD_W1))
        product_deltas(f, ith, nth, l, SLORA_MOD_W1, f->xb, f->hb, NULL);
    if (has_deltas(f, l, SLORA_MOD_W3))
        product_deltas(f, ith, nth, l, SLORA_MOD_W3, f->xb, f->hb2, NULL);
    /* SwiGLU silu(w1 x) * (w3 x) on the slice the deltas went to */
    share(hid, ith, nth, SLICE_ALIGN, &lo, &hi);
    for (int i = 0; hi > lo && i < n; i++)
        slora_vec_swiglu(f->hb + (size_t)i * hid + lo, f->hb2 + (size_t)i * hid + lo,
                         (int)(hi - lo));
    slora_pool_barrier(f->pool);
    product(f, ith, nth, &w->w[SLORA_MOD_W2], f->hb, X_SYNCED, f->xb, NULL);
    if (has_deltas(f, l, SLORA_MOD_W2)) {
        slora_pool_barrier(f->pool);
        product_deltas(f, ith, nth, l, SLORA_MOD_W2, f->hb, f->xb, NULL);
    }
    slora_pool_barrier(f->pool);
}

/* Final norm and classifier for the rows that want logits, in chunks. */
static void classify(struct slora_fwd *f, int ith, int nth)
{
    const struct slora_model *m = f->m;
    int dim = m->cfg.shape.dim, vocab = m->cfg.shape.vocab_size;
    int n_out = 0;
    for (int i = 0; i < f->n; i++)
        if (f->rows[i].logits)
            f->lrows[n_out++] = i;
    int64_t lo, hi;
    /* x += last block's output, normalised into xb (rows packed by chunk) */
    share(f->n, ith, nth, 1, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        slora_vec_axpy(f->x + i * dim, 1.0f, f->xb + i * dim, dim);
    slora_pool_barrier(f->pool);
    for (int c0 = 0; c0 < n_out; c0 += LOGIT_CHUNK) {
        int cn = n_out - c0 < LOGIT_CHUNK ? n_out - c0 : LOGIT_CHUNK;
        share(cn, ith, nth, 1, &lo, &hi);
        for (int64_t j = lo; j < hi; j++)
            slora_vec_rmsnorm(f->xb + j * dim, f->x + (size_t)f->lrows[c0 + j] * dim, m->rms_final,
                              dim, m->cfg.rms_eps);
        slora_pool_barrier(f->pool);
        size_t stride;
        const void *xq = activations(f, &m->wcls, f->xb, cn, X_SYNCED, ith, nth, &stride);
        if (ith == 0)
            f->st.base_products++;
        while (claim_chunk(f, ith, nth, &m->wcls, &lo, &hi)) {
            if (cn == 1) {
                slora_matmul(&m->wcls, xq, stride, 1, f->rows[f->lrows[c0]].logits, (size_t)vocab,
                             lo, hi, false);
                continue;
            }
            slora_matmul(&m->wcls, xq, stride, cn, f->logits, (size_t)vocab, lo, hi, false);
            for (int j = 0; j < cn; j++)
                memcpy(f->rows[f->lrows[c0 + j]].logits + lo, f->logits + (size_t)j * vocab + lo,
                       (size_t)(hi - lo) * sizeof(float));
        }
        slora_pool_barrier(f->pool);
    }
}

static void run_task(void *arg, int ith, int nth)
{
    struct slora_fwd *f = arg;
    const struct slora_model *m = f->m;
    int dim = m->cfg.shape.dim;
    int64_t lo, hi;
    share(f->n, ith, nth, 1, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        slora_matmul_get_row(&m->tok_emb, f->rows[i].token, f->x + i * dim);
    slora_pool_barrier(f->pool);
    for (int l = 0; l < m->cfg.shape.n_layers; l++)
        layer_forward(f, ith, nth, l);
    classify(f, ith, nth);
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
        const struct slora_weights *ws = r->ws;
        size_t nd = (size_t)ws->n_terms * m->cfg.shape.n_layers * SLORA_MOD_COUNT;
        for (size_t j = 0; j < nd; j++) {
            const struct slora_delta *d = ws->delta[j];
            if (d && d->kind == SLORA_DELTA_LORA && d->a.rows > SLORA_FWD_MAX_LORA_RANK)
                return SLORA_EINVAL;
        }
    }
    return 0;
}

/* Threads worth waking for these rows (slora_pool_team): 2 operations per
 * base weight per row, plus attention's 4 per (earlier position, model
 * width) in every layer, in about 10 phases (barriers) per layer. */
static int team_size(const struct slora_fwd *f, const struct slora_fwd_row *rows, int n)
{
    int layers = f->m->cfg.shape.n_layers;
    double positions = 0;
    for (int i = 0; i < n; i++)
        positions += rows[i].pos + 1;
    double ops = 2.0 * f->weights * n + 4.0 * f->m->cfg.shape.dim * layers * positions;
    return slora_pool_team(f->pool, ops, 10 * layers + 2);
}

int slora_fwd_run(struct slora_fwd *f, const struct slora_fwd_row *rows, int n)
{
    int rc = check_rows(f, rows, n);
    if (rc)
        return rc;
    f->rows = rows;
    f->n = n;
    f->ws_all = rows[0].ws;
    for (int i = 1; i < n && f->ws_all; i++)
        if (rows[i].ws != f->ws_all && (rows[i].ws->id != f->ws_all->id || !f->ws_all->id))
            f->ws_all = NULL;
    slora_pool_run_team(f->pool, team_size(f, rows, n), run_task, f);
    f->st.rows += (uint64_t)n;
    f->st.runs++;
    return 0;
}

void slora_fwd_set_min_share(struct slora_fwd *f, double ops)
{
    slora_pool_set_min_share(f->pool, ops);
}

void slora_fwd_stats(const struct slora_fwd *f, struct slora_fwd_stats *out)
{
    *out = f->st;
}
