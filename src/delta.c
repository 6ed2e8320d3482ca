/* delta.c - an adapter's per-matrix deltas (see delta.h).
 *
 * Factored: for target j (group j), with A_0 (out, r0), A_1 (in, r1) and
 * an optional core C (r0, r1), dW_j = alpha A_0 C A_1^T = B A with
 * B = alpha A_0 C (out, r1), A = A_1^T (r1, in) (CP: C = I, r0 = r1).
 * Dense: dW_all generated once, reordered into the model's rows, kept in
 * the requested type; deltas are views into it.
 */
#include "internal.h"

#include <slora/delta.h>
#include <slora/error.h>
#include <slora/forward.h>
#include <slora/quant.h>
#include <slora/superlora.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slora_delta_set {
    const struct slora_model *m;
    struct slora_adapter *a;    /* own reference */
    struct slora_delta *deltas; /* (n_targets) */
    void *buf;                  /* dense: N elements of type; factored: every B and A */
    enum slora_dtype type;
    bool factored;
};

/* Rank of target j's factored form, or 0 when it has none. */
static int64_t lora_rank(const struct slora_adapter *a, int j)
{
    const struct slora_group *g = &a->groups[j];
    const struct slora_target *t = &a->targets[j];
    if (g->n_kron != 1 || g->order != 2 || g->k[0].n[0] != t->rows || g->k[0].n[1] != t->cols)
        return 0;
    int64_t r = g->k[0].r[1];
    return r <= SLORA_FWD_MAX_LORA_RANK ? r : 0;
}

bool slora_delta_is_factored(const struct slora_adapter *a, const struct slora_delta_opts *o)
{
    if (!o->factored || a->cfg.groups_kind != SLORA_GROUPS_MATRIX || a->cfg.shuffle ||
        a->cfg.projection || a->n_groups != a->n_targets)
        return false;
    for (int j = 0; j < a->n_targets; j++)
        if (!lora_rank(a, j))
            return false;
    return true;
}

static size_t factored_floats(const struct slora_adapter *a)
{
    size_t n = 0;
    for (int j = 0; j < a->n_targets; j++)
        n += (size_t)(lora_rank(a, j) * (a->targets[j].rows + a->targets[j].cols));
    return n;
}

size_t slora_delta_bytes(const struct slora_adapter *a, const struct slora_delta_opts *o)
{
    if (slora_delta_is_factored(a, o))
        return factored_floats(a) * sizeof(float);
    return (size_t)a->total * slora_dtype_block_bytes(o->dense_type);
}

/* B and A of target j into bt (r, out), B transposed, and at (r, in). */
static void factor(const struct slora_model *m, const struct slora_adapter *a, int j, float *bt,
                   float *at)
{
    const struct slora_target *t = &a->targets[j];
    const struct slora_factor *f = &a->groups[j].k[0];
    int64_t r0 = f->r[0], r = f->r[1], out = t->rows, in = t->cols;
    float alpha = a->cfg.alpha;
    for (int64_t i = 0; i < out; i++) {
        /* row i of B lands on the model's row for GGUF row i */
        int64_t ri = slora_model_native_row(m, t->module, i);
        const float *a0 = f->a[0] + i * r0;
        for (int64_t c = 0; c < r; c++) {
            float s = 0.0f;
            if (f->core)
                for (int64_t k = 0; k < r0; k++)
                    s += a0[k] * f->core[k * r + c];
            else
                s = a0[c];
            bt[c * out + ri] = alpha * s;
        }
    }
    for (int64_t c = 0; c < r; c++)
        for (int64_t i = 0; i < in; i++)
            at[c * in + i] = f->a[1][i * r + c];
}

static int build_factored(struct slora_delta_set *s, char *diag, size_t diag_len)
{
    const struct slora_adapter *a = s->a;
    float *p = s->buf = slora__alloc64(factored_floats(a) * sizeof(float) + 1);
    if (!p) {
        snprintf(diag, diag_len, "cannot allocate %zu bytes for the deltas",
                 factored_floats(a) * sizeof(float));
        return SLORA_ENOMEM;
    }
    for (int j = 0; j < a->n_targets; j++) {
        const struct slora_target *t = &a->targets[j];
        int64_t r = lora_rank(a, j);
        float *bt = p, *at = p + r * t->rows;
        factor(s->m, a, j, bt, at);
        s->deltas[j].kind = SLORA_DELTA_LORA;
        slora_tensor_init(&s->deltas[j].bt, SLORA_DTYPE_F32, bt, r, t->rows);
        slora_tensor_init(&s->deltas[j].a, SLORA_DTYPE_F32, at, r, t->cols);
        p = at + r * t->cols;
    }
    return 0;
}

static uint16_t to_half(enum slora_dtype type, float f)
{
    return type == SLORA_DTYPE_F16 ? slora_quant_f32_to_f16(f) : slora_quant_f32_to_bf16(f);
}

static int build_dense(struct slora_delta_set *s, const struct slora_delta_opts *o, char *diag,
                       size_t diag_len)
{
    const struct slora_adapter *a = s->a;
    size_t n = (size_t)(a->total ? a->total : 1);
    float *dw = slora__alloc64(n * sizeof(float));
    if (!dw) {
        snprintf(diag, diag_len, "cannot allocate %zu bytes for the deltas", n * sizeof(float));
        return SLORA_ENOMEM;
    }
    slora_delta_gen_fn gen = o->gen ? o->gen : slora_superlora_generate;
    int err = gen(a, dw, o->n_threads > 0 ? o->n_threads : 1, diag, diag_len);
    if (!err && (err = slora_superlora_to_native(a, s->m, dw)))
        snprintf(diag, diag_len, "cannot reorder the q/k deltas for this model");
    if (err) {
        free(dw);
        return err;
    }
    if (s->type == SLORA_DTYPE_F32) {
        s->buf = dw;
    } else {
        uint16_t *h = slora__alloc64(n * sizeof(uint16_t));
        if (!h) {
            free(dw);
            snprintf(diag, diag_len, "cannot allocate %zu bytes for the deltas", 2 * n);
            return SLORA_ENOMEM;
        }
        for (size_t i = 0; i < (size_t)a->total; i++)
            h[i] = to_half(s->type, dw[i]);
        free(dw);
        s->buf = h;
    }
    size_t elem = slora_dtype_block_bytes(s->type);
    for (int j = 0; j < a->n_targets; j++) {
        const struct slora_target *t = &a->targets[j];
        s->deltas[j].kind = SLORA_DELTA_DENSE;
        slora_tensor_init(&s->deltas[j].dw, s->type, (char *)s->buf + (size_t)t->offset * elem,
                          t->rows, t->cols);
    }
    return 0;
}

int slora_delta_set_new(const struct slora_model *m, const struct slora_adapter *a,
                        const struct slora_delta_opts *o, struct slora_delta_set **out,
                        char *diag, size_t diag_len)
{
    *out = NULL;
    if (o->dense_type != SLORA_DTYPE_F32 && o->dense_type != SLORA_DTYPE_F16 &&
        o->dense_type != SLORA_DTYPE_BF16)
        return SLORA_EINVAL;
    if (!slora_arch_shape_equal(&a->cfg.base, &m->cfg.shape)) {
        snprintf(diag, diag_len, "the adapter was made for another base model shape");
        return SLORA_EMISMATCH;
    }
    struct slora_delta_set *s = calloc(1, sizeof(*s));
    if (!s || !(s->deltas = calloc((size_t)(a->n_targets ? a->n_targets : 1),
                                   sizeof(*s->deltas)))) {
        free(s);
        snprintf(diag, diag_len, "out of memory for the deltas");
        return SLORA_ENOMEM;
    }
    s->m = m;
    s->a = slora_adapter_ref((struct slora_adapter *)a);
    s->type = o->dense_type;
    s->factored = slora_delta_is_factored(a, o);
    int err = s->factored ? build_factored(s, diag, diag_len) : build_dense(s, o, diag, diag_len);
    if (err) {
        slora_delta_set_free(s);
        return err;
    }
    *out = s;
    return 0;
}

void slora_delta_set_free(struct slora_delta_set *s)
{
    if (!s)
        return;
    slora_adapter_unref(s->a);
    free(s->deltas);
    free(s->buf);
    free(s);
}

void slora_delta_set_bind(const struct slora_delta_set *s, struct slora_weights *ws, int term)
{
    for (int j = 0; j < s->a->n_targets; j++)
        slora_weights_set(ws, term, s->a->targets[j].layer, s->a->targets[j].module,
                          &s->deltas[j]);
}

const float *slora_delta_set_dense_f32(const struct slora_delta_set *s)
{
    return !s->factored && s->type == SLORA_DTYPE_F32 ? s->buf : NULL;
}
