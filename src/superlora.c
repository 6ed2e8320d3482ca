/* superlora.c - dense deltas from a SuperLoRA adapter (spec sections 3-6).
 *
 * Per group, in a prepare step on the calling thread, every Kronecker
 * factor T_k becomes two matrices with T_k = U_L @ U_R^T, contracted in
 * the order that needs the least scratch (factor.c; LoRA is B @ A with
 * nothing built). One factor: the group's code vector is U_L @ U_R^T,
 * computed a tile at a time into a cache-sized buffer. Several:
 * T_1 (x) ... (x) T_{K-1} is built densely, then T_0 (x) Rest is written
 * as scaled copies of Rest's last-mode rows ("runs"). Both writers produce
 * only the first count entries (the fold), apply alpha, and write the
 * destination with streaming stores that test each value for NaN/Inf on
 * the way out, so the output costs one write pass, like memset.
 *
 * Output work is cut into tasks of about CHUNK floats by size alone, so the
 * floats are the same at any thread count. Projection (fastfood.c) and
 * shuffle (gather.c) follow on the group's output.
 *
 * Scratch is one allocation, planned from the shapes before anything is
 * allocated (slora_superlora_cost): prepare area | fastfood area | delta
 * (N, only when shuffled) | gather scratch (when shuffled) | CHUNK floats
 * per worker.
 */
#include "internal.h"

#include <slora/blas.h>
#include <slora/error.h>
#include <slora/factor.h>
#include <slora/fastfood.h>
#include <slora/gather.h>
#include <slora/kernels.h>
#include <slora/model.h>
#include <slora/parallel.h>
#include <slora/superlora.h>
#include <slora/weights.h>

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK ((size_t)1 << 15)
#define GATHER_LOG 15
#define TILE_ROWS 64
#define DIRECT_MIN_ROW                                                                             \
    256                   /* shorter rows: streamed from tmp in one run (alignment, per-row cost) */
#define OUTER_MAX_RANK 64 /* final products of rank up to this skip the GEMM */
#define HUGE_PAGE ((size_t)2 << 20)

/* ---- Kronecker runs ---- */

/* out = A (x) B for order-M tensors A (na) and B (nb). Run q is the
 * out[q * nb[M-1] ...] row of nb[M-1] floats: scale * A[x] * B[y, :]. */
struct kron {
    const float *a;
    const float *b;
    int M;
    int64_t na[SLORA_MAX_ORDER];
    int64_t nb[SLORA_MAX_ORDER];
};

/* Write runs [q0, q1) of A (x) B into dst (the output's element 0),
 * elements at or beyond limit excluded. Returns the first index of a
 * non-finite value written, or INT64_MAX. */
static int64_t kron_runs(const struct kron *k, int64_t q0, int64_t q1, float scale, float *dst,
                         int64_t limit)
{
    int64_t bad = INT64_MAX;
    int M = k->M;
    int64_t x[SLORA_MAX_ORDER], y[SLORA_MAX_ORDER] = {0};
    int64_t q = q0, len = k->nb[M - 1];
    x[M - 1] = q % k->na[M - 1];
    q /= k->na[M - 1];
    for (int m = M - 2; m >= 0; m--) {
        int64_t i = q % (k->na[m] * k->nb[m]);
        q /= k->na[m] * k->nb[m];
        x[m] = i / k->nb[m];
        y[m] = i % k->nb[m];
    }
    for (int64_t run = q0; run < q1; run++) {
        int64_t e0 = run * len;
        if (e0 >= limit)
            return bad;
        int64_t ao = 0, bo = 0;
        for (int m = 0; m < M; m++)
            ao = ao * k->na[m] + x[m];
        for (int m = 0; m < M - 1; m++)
            bo = bo * k->nb[m] + y[m];
        int64_t n = limit - e0 < len ? limit - e0 : len;
        size_t at = slora_kernels_stream(dst + e0, k->b + bo * len, (size_t)n, scale * k->a[ao]);
        if (bad == INT64_MAX && at < (size_t)n)
            bad = e0 + (int64_t)at;
        if (++x[M - 1] < k->na[M - 1])
            continue;
        x[M - 1] = 0;
        for (int m = M - 2; m >= 0; m--) {
            if (++y[m] < k->nb[m])
                break;
            y[m] = 0;
            if (++x[m] < k->na[m])
                break;
            x[m] = 0;
        }
    }
    return bad;
}

/* ---- group preparation ---- */

static size_t factor_len(const struct slora_factor *f, int M)
{
    return slora__prod_sat(f->n, 0, M);
}

static size_t rest_len(const struct slora_group *g)
{
    size_t p = 1;
    for (int k = 1; k < g->n_kron; k++)
        p = slora__mul_sat(p, factor_len(&g->k[k], g->order));
    return p;
}

/* Factor k's plan: several factors are built whole (the Kronecker runs
 * read all of them), one only for the first count entries. */
static void group_factor_plan(const struct slora_group *g, int k, size_t count,
                              struct slora_factor_plan *p)
{
    const struct slora_factor *f = &g->k[k];
    slora_factor_plan(f, g->order, g->n_kron > 1 ? factor_len(f, g->order) : count, p);
}

/* One factor of small rank: U_R transposed, (r, cols), for
 * slora_kernels_outer. */
static size_t transposed_floats(const struct slora_group *g, const struct slora_factor_plan *p)
{
    if (g->n_kron > 1 || p->r > OUTER_MAX_RANK)
        return 0;
    return slora__align16(slora__mul_sat((size_t)p->r, (size_t)p->cols));
}

/* The largest U_L + U_R scratch among the group's factors. */
static size_t max_u_floats(const struct slora_group *g, size_t count)
{
    size_t u = 0;
    for (int k = 0; k < g->n_kron; k++) {
        struct slora_factor_plan p;
        group_factor_plan(g, k, count, &p);
        u = slora__add_sat(p.left, p.right) > u ? slora__add_sat(p.left, p.right) : u;
    }
    return u;
}

/* Scratch floats prepare() uses for group g writing count entries:
 * U_L | U_R | U_R transposed (one factor), or the largest U_L | U_R, then
 * every dense T_k and two buffers for Rest (several). */
static size_t prepare_floats(const struct slora_group *g, size_t count)
{
    size_t u = max_u_floats(g, count), dense = 0, rest = 0, at = 0;
    if (g->n_kron == 1) {
        struct slora_factor_plan p;
        group_factor_plan(g, 0, count, &p);
        at = transposed_floats(g, &p);
    }
    for (int k = 0; g->n_kron > 1 && k < g->n_kron; k++)
        dense = slora__add_sat(dense, slora__align16(factor_len(&g->k[k], g->order)));
    if (g->n_kron > 2)
        rest = slora__mul_sat(2, slora__align16(rest_len(g)));
    return slora__add_sat(slora__add_sat(slora__add_sat(u, dense), rest), at);
}

/* Multiply-adds (and element writes) of group g's expansion into count
 * entries: the factors' products, Rest and the Kronecker runs, the output
 * written once. */
static size_t group_work(const struct slora_group *g, size_t count)
{
    size_t work = count;
    for (int k = 0; k < g->n_kron; k++) {
        struct slora_factor_plan p;
        group_factor_plan(g, k, count, &p);
        work = slora__add_sat(work, p.work);
    }
    size_t rest = g->n_kron > 1 ? factor_len(&g->k[g->n_kron - 1], g->order) : 0;
    for (int k = g->n_kron - 2; k >= 1; k--) {
        rest = slora__mul_sat(rest, factor_len(&g->k[k], g->order));
        work = slora__add_sat(work, rest);
    }
    return work;
}

/* The group's writer: U_L @ U_R^T (one factor) or T_0 (x) Rest. */
struct writer {
    bool kron_mode;
    struct slora_factor_uv fu;
    const float *at; /* (r, cols): U_R transposed for slora_kernels_outer, or NULL: GEMM */
    struct kron kron;
    int64_t count; /* entries to write: N_g, or P_g when projected */
    float scale;
    float *dst; /* (count) */
    bool check;
    float *tmp;              /* CHUNK floats per worker */
    int64_t per_task;        /* Kronecker runs per task */
    int64_t tile_rows;       /* one factor: tasks are tiles of U_L @ U_R^T, */
    int64_t tile_cols;       /* at most CHUNK floats */
    int64_t col_tiles;       /* tiles per row block */
    atomic_int_fast64_t bad; /* first non-finite index, INT64_MAX when none */
};

static void note_bad(struct writer *w, int64_t at)
{
    int_fast64_t cur = atomic_load(&w->bad);
    while (at < cur && !atomic_compare_exchange_weak(&w->bad, &cur, at))
        ;
}

/* Stream a tile computed in tmp ((n_rows, nc) at row0, column c0) to
 * dst up to count. Returns the first non-finite index, or INT64_MAX. */
static int64_t stream_tile(const struct writer *w, const float *tmp, int64_t row0, int64_t n_rows,
                           int64_t c0, int64_t nc)
{
    int64_t bad = INT64_MAX, row_len = w->fu.row_len;
    /* whole-row tiles are one contiguous run of dst */
    int64_t seg = nc == row_len ? n_rows * nc : nc;
    for (int64_t i = 0; i < n_rows; i += seg / nc) {
        int64_t e0 = (row0 + i) * row_len + c0;
        int64_t len = seg < w->count - e0 ? seg : w->count - e0;
        if (len <= 0)
            break;
        size_t at = slora_kernels_stream(w->dst + e0, tmp + i * nc, (size_t)len, 1.0f);
        if (bad == INT64_MAX && at < (size_t)len)
            bad = e0 + (int64_t)at;
    }
    return bad;
}

/* One tile of U_L @ U_R^T. Small rank: the outer-product kernel, from
 * registers straight to memory when the tile is whole long rows below
 * count, else through tmp. Larger rank: GEMM into tmp (in cache). tmp is
 * then streamed to dst, checked on the way. */
static int64_t gemm_tile(const struct writer *w, size_t task, float *tmp)
{
    const struct slora_factor_uv *f = &w->fu;
    int64_t row0 = (int64_t)task / w->col_tiles * w->tile_rows;
    int64_t c0 = (int64_t)task % w->col_tiles * w->tile_cols;
    int64_t n_rows = f->rows - row0 < w->tile_rows ? f->rows - row0 : w->tile_rows;
    int64_t nc = f->cols - c0 < w->tile_cols ? f->cols - c0 : w->tile_cols;
    int64_t e0 = row0 * f->row_len + c0;
    const float *u = f->u + row0 * f->r;
    if (w->at && nc == f->row_len && nc >= DIRECT_MIN_ROW && e0 + n_rows * nc <= w->count) {
        if (!slora_kernels_outer_stream(w->dst + e0, u, w->at, (size_t)nc, (size_t)n_rows,
                                        (size_t)nc, (size_t)f->r, w->scale))
            return INT64_MAX;
        slora_kernels_stream_done();
        return e0 + (int64_t)slora_kernels_find_nonfinite(w->dst + e0, (size_t)(n_rows * nc));
    }
    if (w->at)
        slora_kernels_outer(tmp, u, w->at + c0, (size_t)f->cols, (size_t)n_rows, (size_t)nc,
                            (size_t)f->r, w->scale);
    else
        slora_blas_gemm((int)n_rows, (int)nc, (int)f->r, w->scale, u, f->v + c0 * f->r, 1, 0.0f,
                        tmp);
    return stream_tile(w, tmp, row0, n_rows, c0, nc);
}

/* One task: a tile of U_L @ U_R^T or a range of Kronecker runs. */
static void writer_task(void *ctx, size_t task, int worker)
{
    struct writer *w = ctx;
    int64_t bad;
    if (w->kron_mode) {
        int64_t q0 = (int64_t)task * w->per_task;
        bad = kron_runs(&w->kron, q0, q0 + w->per_task, w->scale, w->dst, w->count);
    } else {
        bad = gemm_tile(w, task, w->tmp + (size_t)worker * CHUNK);
    }
    slora_kernels_stream_done();
    if (w->check && bad != INT64_MAX)
        note_bad(w, bad);
}

/* Prepare group g's writer in buf (prepare_floats(g, w->count) floats). */
static void prepare(const struct slora_group *g, float *buf, struct writer *w)
{
    int M = g->order;
    size_t count = (size_t)w->count;
    struct slora_factor_plan p;
    if (g->n_kron == 1) {
        w->kron_mode = false;
        group_factor_plan(g, 0, count, &p);
        slora_factor_build(&g->k[0], M, &p, buf, &w->fu);
        w->at = NULL;
        size_t t_len = transposed_floats(g, &p);
        if (t_len) {
            /* after everything factor_u may use */
            float *at = buf + (prepare_floats(g, count) - t_len);
            for (int64_t i = 0; i < w->fu.cols; i++)
                for (int64_t j = 0; j < w->fu.r; j++)
                    at[j * w->fu.cols + i] = w->fu.v[i * w->fu.r + j];
            w->at = at;
        }
        return;
    }
    float *ubuf = buf, *dense[SLORA_MAX_KRON], *d = buf + max_u_floats(g, count);
    for (int k = 0; k < g->n_kron; k++) {
        struct slora_factor_uv fu;
        group_factor_plan(g, k, count, &p);
        slora_factor_build(&g->k[k], M, &p, ubuf, &fu);
        dense[k] = d;
        slora_blas_gemm((int)fu.rows, (int)fu.cols, (int)fu.r, 1.0f, fu.u, fu.v, 1, 0.0f, dense[k]);
        d += slora__align16(factor_len(&g->k[k], M));
    }
    /* Rest = T_1 (x) (T_2 (x) ... T_{K-1}), built right to left */
    struct kron rest = {.M = M};
    const float *cur = dense[g->n_kron - 1];
    int64_t cur_n[SLORA_MAX_ORDER];
    memcpy(cur_n, g->k[g->n_kron - 1].n, sizeof(*cur_n) * (size_t)M);
    float *bufs[2] = {d, d + slora__align16(rest_len(g))};
    for (int k = g->n_kron - 2, which = 0; k >= 1; k--, which ^= 1) {
        rest.a = dense[k];
        rest.b = cur;
        size_t total = 1;
        for (int m = 0; m < M; m++) {
            rest.na[m] = g->k[k].n[m];
            rest.nb[m] = cur_n[m];
            cur_n[m] *= g->k[k].n[m];
            total *= (size_t)cur_n[m];
        }
        kron_runs(&rest, 0, (int64_t)(total / (size_t)rest.nb[M - 1]), 1.0f, bufs[which],
                  (int64_t)total);
        cur = bufs[which];
    }
    slora_kernels_stream_done();
    w->kron_mode = true;
    w->kron.M = M;
    w->kron.a = dense[0];
    w->kron.b = cur;
    for (int m = 0; m < M; m++) {
        w->kron.na[m] = g->k[0].n[m];
        w->kron.nb[m] = cur_n[m];
    }
}

static void run_writer(struct writer *w, int n_threads)
{
    size_t n_tasks;
    atomic_init(&w->bad, INT64_MAX);
    if (w->kron_mode) {
        int64_t len = w->kron.nb[w->kron.M - 1];
        w->per_task = len >= (int64_t)CHUNK ? 1 : (int64_t)CHUNK / len;
        int64_t runs = (w->count + len - 1) / len;
        n_tasks = (size_t)((runs + w->per_task - 1) / w->per_task);
    } else {
        int64_t row_len = w->fu.row_len, cols = w->fu.cols;
        int64_t rows = (w->count + row_len - 1) / row_len;
        /* Whole rows when short (or with the rank-r kernel, which packs
         * nothing): one contiguous streamed run per tile. Else tiles of up
         * to TILE_ROWS rows, so the gemm's packing of U_R is shared by
         * many output rows. Columns beyond cols (a one-row fold) are never
         * needed. */
        if (cols <= (int64_t)CHUNK / 32 || (w->at && cols <= (int64_t)CHUNK)) {
            w->tile_rows = (int64_t)CHUNK / cols;
            w->tile_cols = cols;
        } else {
            w->tile_rows = rows < TILE_ROWS ? rows : TILE_ROWS;
            w->tile_cols =
                (int64_t)CHUNK / w->tile_rows < cols ? (int64_t)CHUNK / w->tile_rows : cols;
        }
        w->col_tiles = (cols + w->tile_cols - 1) / w->tile_cols;
        n_tasks = (size_t)((rows + w->tile_rows - 1) / w->tile_rows * w->col_tiles);
    }
    slora_parallel_run(n_threads, n_tasks, writer_task, w);
}

/* ---- generate ---- */

static int check_group(const struct slora_adapter *a, int gi, char *diag, size_t diag_len)
{
    const struct slora_group *g = &a->groups[gi];
    bool ok = g->order >= 1 && g->order <= SLORA_MAX_ORDER && g->n_kron >= 1 &&
              g->n_kron <= SLORA_MAX_KRON && g->len >= 1 && g->code_len >= 1 && g->n && g->k &&
              (a->cfg.projection || g->code_len >= g->len);
    for (int m = 0; ok && m < g->order; m++) {
        int64_t n = 1;
        for (int k = 0; k < g->n_kron; k++) {
            const struct slora_factor *f = &g->k[k];
            ok = ok && f->n && f->r && f->a && f->n[m] >= 1 && f->r[m] >= 1 && f->n[m] <= INT_MAX &&
                 f->r[m] <= INT_MAX && f->a[m] && (f->core || f->r[m] == f->r[0]);
            n = ok ? n * f->n[m] : 1;
        }
        ok = ok && n == g->n[m];
    }
    ok = ok && (int64_t)slora__prod_sat(g->n, 0, g->order) == g->code_len;
    if (!ok) {
        snprintf(diag, diag_len, "group %d: inconsistent group table", gi);
        return SLORA_EINVAL;
    }
    /* gemm dimensions grow with P_g: keep them in BLAS's int */
    if (g->code_len > INT_MAX) {
        snprintf(diag, diag_len, "group %d: code length %lld over the limit %d", gi,
                 (long long)g->code_len, INT_MAX);
        return SLORA_ELIMIT;
    }
    return 0;
}

static int nonfinite_diag(const struct slora_adapter *a, int64_t at, char *diag, size_t diag_len)
{
    for (int j = 0; j < a->n_targets; j++) {
        const struct slora_target *t = &a->targets[j];
        if (at >= t->offset && at < t->offset + t->rows * t->cols) {
            int64_t e = at - t->offset;
            snprintf(diag, diag_len,
                     "non-finite dW in layers.%d.%s at [%lld, %lld] (dW_all index %lld)", t->layer,
                     slora_arch_module_name(t->module), (long long)(e / t->cols),
                     (long long)(e % t->cols), (long long)at);
            return SLORA_ENONFINITE;
        }
    }
    snprintf(diag, diag_len, "non-finite dW at dW_all index %lld", (long long)at);
    return SLORA_ENONFINITE;
}

struct layout {
    size_t prep, ff, delta, gather, workers, total; /* offsets and size, in floats */
    size_t work;                                    /* estimated multiply-adds */
};

/* Entries of group g's code vector the writer produces. */
static size_t group_count(const struct slora_adapter *a, const struct slora_group *g)
{
    return (size_t)(a->cfg.projection ? g->code_len : g->len);
}

/* The scratch layout and work of generating a's deltas; the adapter's
 * tables must have passed check_tables. */
static int plan(const struct slora_adapter *a, int n_threads, struct layout *lay)
{
    size_t prep = 0, ff = 0, work = 0;
    for (int gi = 0; gi < a->n_groups; gi++) {
        const struct slora_group *g = &a->groups[gi];
        size_t count = group_count(a, g), p = prepare_floats(g, count);
        prep = p > prep ? p : prep;
        work = slora__add_sat(work, group_work(g, count));
        if (a->cfg.projection) {
            int logn = slora_fastfood_log_len(g->code_len, g->len);
            if (logn > 32)
                return SLORA_ELIMIT;
            size_t f = slora_fastfood_scratch_floats(logn, n_threads);
            ff = f > ff ? f : ff;
            /* two transforms, the gather and the diagonals */
            work = slora__add_sat(work, slora__mul_sat((size_t)1 << logn, (size_t)(2 * logn + 4)));
        }
    }
    if (a->cfg.shuffle && (uint64_t)a->total > ((uint64_t)1 << 32))
        return SLORA_ELIMIT;
    lay->prep = 0;
    lay->ff = slora__align16(prep);
    lay->delta = slora__add_sat(lay->ff, slora__align16(ff));
    size_t n = (size_t)a->total;
    lay->gather = slora__add_sat(lay->delta, a->cfg.shuffle ? slora__align16(n) : 0);
    size_t gather = a->cfg.shuffle ? slora_gather_scratch_bytes(GATHER_LOG, n_threads) / 4 : 0;
    lay->workers = slora__add_sat(lay->gather, slora__align16(gather));
    lay->total = slora__add_sat(lay->workers, slora__mul_sat((size_t)n_threads, CHUNK));
    lay->work = a->cfg.shuffle ? slora__add_sat(work, slora__mul_sat(2, n)) : work;
    return lay->total > SIZE_MAX / sizeof(float) ? SLORA_ELIMIT : 0;
}

static int clamp_threads(int n)
{
    return n < 1 ? 1 : n > SLORA_PARALLEL_MAX_THREADS ? SLORA_PARALLEL_MAX_THREADS : n;
}

/* Group tables generate can index safely: shapes consistent, groups
 * covering [0, N) in order. */
static int check_tables(const struct slora_adapter *a, char *diag, size_t diag_len)
{
    int64_t covered = 0;
    for (int gi = 0; gi < a->n_groups; gi++) {
        int rc = check_group(a, gi, diag, diag_len);
        if (rc)
            return rc;
        if (a->groups[gi].offset != covered) {
            snprintf(diag, diag_len, "group %d: offset %lld, expected %lld", gi,
                     (long long)a->groups[gi].offset, (long long)covered);
            return SLORA_EINVAL;
        }
        covered += a->groups[gi].len;
    }
    if (covered != a->total || a->n_groups < 1) {
        snprintf(diag, diag_len, "groups cover %lld of N = %lld entries", (long long)covered,
                 (long long)a->total);
        return SLORA_EINVAL;
    }
    return 0;
}

/* check_tables, then plan. */
static int checked_plan(const struct slora_adapter *a, int n_threads, struct layout *lay,
                        char *diag, size_t diag_len)
{
    int rc = check_tables(a, diag, diag_len);
    if (!rc && plan(a, n_threads, lay)) {
        snprintf(diag, diag_len, "adapter too large for delta generation (N = %lld)",
                 (long long)a->total);
        rc = SLORA_ELIMIT;
    }
    return rc;
}

int slora_superlora_cost(const struct slora_adapter *a, int n_threads,
                         struct slora_superlora_cost *out, char *diag, size_t diag_len)
{
    struct layout lay;
    int rc = checked_plan(a, clamp_threads(n_threads), &lay, diag, diag_len);
    if (rc)
        return rc;
    out->scratch_bytes = lay.total * sizeof(float);
    out->work = lay.work;
    return 0;
}

/* Scratch on cache lines (the streaming paths load 64 bytes at a time),
 * large scratch on 2 MiB pages: the gathers touch it at random. */
static float *scratch_alloc(size_t floats)
{
    size_t bytes = slora__mul_sat(floats, sizeof(float));
    if (bytes < HUGE_PAGE)
        return slora__alloc64(bytes ? bytes : 1);
    bytes = slora__add_sat(bytes, HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    float *p = aligned_alloc(HUGE_PAGE, bytes);
    if (p)
        madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

struct slora_superlora_scratch {
    float *buf;
    size_t floats;
};

struct slora_superlora_scratch *slora_superlora_scratch_new(void)
{
    return calloc(1, sizeof(struct slora_superlora_scratch));
}

void slora_superlora_scratch_free(struct slora_superlora_scratch *s)
{
    if (!s)
        return;
    free(s->buf);
    free(s);
}

static float *scratch_reserve(struct slora_superlora_scratch *s, size_t floats)
{
    if (s->floats >= floats)
        return s->buf;
    free(s->buf);
    s->buf = scratch_alloc(floats);
    s->floats = s->buf ? floats : 0;
    return s->buf;
}

int slora_superlora_generate(const struct slora_adapter *a, float *out, int n_threads, char *diag,
                             size_t diag_len)
{
    struct slora_superlora_scratch s = {0};
    int rc = slora_superlora_generate_with(a, out, n_threads, &s, diag, diag_len);
    free(s.buf);
    return rc;
}

int slora_superlora_generate_with(const struct slora_adapter *a, float *out, int n_threads,
                                  struct slora_superlora_scratch *ws, char *diag, size_t diag_len)
{
    n_threads = clamp_threads(n_threads);
    struct layout lay;
    int rc = checked_plan(a, n_threads, &lay, diag, diag_len);
    if (rc)
        return rc;
    float *scratch = scratch_reserve(ws, lay.total);
    if (!scratch) {
        snprintf(diag, diag_len, "cannot allocate %zu bytes of delta scratch",
                 lay.total * sizeof(float));
        return SLORA_ENOMEM;
    }
    float *delta = a->cfg.shuffle ? scratch + lay.delta : out;
    int64_t bad = -1;
    for (int gi = 0; gi < a->n_groups; gi++) {
        const struct slora_group *g = &a->groups[gi];
        struct writer w = {.tmp = scratch + lay.workers,
                           .scale = a->cfg.alpha,
                           .check = true,
                           .count = g->len,
                           .dst = delta + g->offset};
        if (a->cfg.projection) {
            w.scale = 1.0f;
            w.check = false;
            w.count = g->code_len;
            w.dst = scratch + lay.ff;
        }
        prepare(g, scratch + lay.prep, &w);
        run_writer(&w, n_threads);
        int64_t g_bad = atomic_load(&w.bad) == INT64_MAX ? -1 : (int64_t)atomic_load(&w.bad);
        if (a->cfg.projection) {
            rc = slora_fastfood_project(a->cfg.projection_seed, gi, g->code_len, g->len,
                                        a->cfg.alpha, scratch + lay.ff, delta + g->offset,
                                        n_threads, &g_bad, diag, diag_len);
            if (rc)
                return rc;
        }
        if (bad < 0 && g_bad >= 0)
            bad = g->offset + g_bad;
    }
    if (a->cfg.shuffle) {
        struct slora_perm perm;
        slora_perm_init(&perm, slora_rnd(a->cfg.shuffle_seed, 4, 0), (uint64_t)a->total);
        struct slora_gather g = {
            .perm = &perm, .src = delta, .mask = 0xFFFFFFFFu, .dst = out, .chunk_log = GATHER_LOG};
        slora_gather_run(&g, scratch + lay.gather, n_threads);
        /* a permutation moves the bad entry: find its place in dW_all */
        if (bad >= 0)
            bad = (int64_t)slora_kernels_find_nonfinite(out, (size_t)a->total);
    }
    return bad >= 0 ? nonfinite_diag(a, bad, diag, diag_len) : 0;
}

int slora_superlora_to_native(const struct slora_adapter *a, const struct slora_model *m,
                              float *dw_all)
{
    if (!m->cfg.qk_rotate_half)
        return 0;
    float *scratch = NULL;
    for (int j = 0; j < a->n_targets; j++) {
        const struct slora_target *t = &a->targets[j];
        if (t->module != SLORA_MOD_WQ && t->module != SLORA_MOD_WK)
            continue;
        /* wq (dim, dim) is the largest q/k matrix */
        if (!scratch &&
            !(scratch = malloc((size_t)m->cfg.shape.dim * m->cfg.shape.dim * sizeof(float))))
            return SLORA_ENOMEM;
        if (!slora_model_native_rows(m, t->module, dw_all + t->offset, t->rows, t->cols,
                                     scratch)) {
            free(scratch);
            return SLORA_EMISMATCH;
        }
    }
    free(scratch);
    return 0;
}
