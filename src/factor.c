/* factor.c - one Kronecker factor as U_L @ U_R^T (see factor.h). */
#include "internal.h"

#include <slora/blas.h>
#include <slora/factor.h>

#include <limits.h>
#include <string.h>

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

static size_t ceil_div(size_t a, size_t b)
{
    return a / b + (a % b != 0);
}

/* Rows (and columns) of U_L @ U_R^T needed for the first count entries,
 * and the multiply-adds of that product. */
static void product_extent(struct slora_factor_plan *p, size_t all_rows, size_t count)
{
    size_t row_len = (size_t)p->row_len;
    size_t rows = min_sz(all_rows, ceil_div(count, row_len));
    p->cols = (int64_t)(rows == 1 ? min_sz(count, row_len) : row_len);
    p->rows = (int64_t)rows;
    p->work = slora__add_sat(p->work,
                             slora__mul_sat(slora__mul_sat(rows, (size_t)p->cols), (size_t)p->r));
}

static void cp_plan_split(const struct slora_factor *f, int M, size_t count, int s,
                          struct slora_factor_plan *p)
{
    size_t r = (size_t)f->r[0];
    *p = (struct slora_factor_plan){
        .split = s, .r = f->r[0], .row_len = (int64_t)slora__prod_sat(f->n, s, M)};
    product_extent(p, slora__prod_sat(f->n, 0, s), count);
    size_t rows = (size_t)p->rows, cols = (size_t)p->cols;
    if (s != 1) /* a Khatri-Rao product of s matrices (none: ones) */
        p->left = slora__align16(slora__mul_sat(rows, r));
    if (M - s > 1)
        p->right = slora__align16(slora__mul_sat(cols, r));
    p->work = slora__add_sat(p->work,
                             slora__mul_sat(slora__mul_sat(rows, r), (size_t)(s > 1 ? s - 1 : 0)));
    p->work = slora__add_sat(p->work, slora__mul_sat(slora__mul_sat(cols, r), (size_t)(M - s - 1)));
}

static void cp_plan(const struct slora_factor *f, int M, size_t count,
                    struct slora_factor_plan *best)
{
    cp_plan_split(f, M, count, M == 1 ? 0 : 1, best);
    for (int s = 2; s < M; s++) {
        struct slora_factor_plan p;
        cp_plan_split(f, M, count, s, &p);
        size_t a = slora__add_sat(p.left, p.right), b = slora__add_sat(best->left, best->right);
        if (a < b || (a == b && p.work < best->work))
            *best = p;
    }
}

static void tucker_plan(const struct slora_factor *f, int M, size_t count,
                        struct slora_factor_plan *p)
{
    *p = (struct slora_factor_plan){.split = M - 1, .r = f->r[M - 1], .row_len = f->n[M - 1]};
    int n_modes = 0;
    /* insertion sort by n_m / r_m (n, r <= INT_MAX: the products fit) */
    for (int m = 0; m < M - 1; m++) {
        int i = n_modes++;
        while (i > 0 && f->n[m] * f->r[p->order[i - 1]] < f->n[p->order[i - 1]] * f->r[m]) {
            p->order[i] = p->order[i - 1];
            i--;
        }
        p->order[i] = m;
    }
    int64_t dims[SLORA_MAX_ORDER];
    memcpy(dims, f->r, sizeof(*dims) * (size_t)M);
    size_t peak = 0;
    for (int i = 0; i < n_modes; i++) {
        int m = p->order[i];
        dims[m] = f->n[m];
        size_t size = slora__prod_sat(dims, 0, M);
        peak = size > peak ? size : peak;
        p->work = slora__add_sat(p->work, slora__mul_sat(size, (size_t)f->r[m]));
    }
    /* BLAS dimensions are ints: a larger intermediate cannot be generated */
    p->left = peak > INT_MAX ? SIZE_MAX : n_modes ? slora__mul_sat(2, slora__align16(peak)) : 0;
    product_extent(p, slora__prod_sat(f->n, 0, M - 1), count);
    p->rows =
        (int64_t)slora__prod_sat(f->n, 0, M - 1); /* computed whole; the writer reads a prefix */
}

void slora_factor_plan(const struct slora_factor *f, int M, size_t count,
                       struct slora_factor_plan *p)
{
    if (f->core)
        tucker_plan(f, M, count, p);
    else
        cp_plan(f, M, count, p);
}

/* rows [0, rows) of the Khatri-Rao product of A_from .. A_{to-1}, each
 * (n_m, r): row q (modes mixed radix, the last fastest) is the elementwise
 * product of the rows it indexes, taken in mode order. No modes: ones. */
static void khatri_rao(const struct slora_factor *f, int from, int to, int64_t rows, float *dst)
{
    int64_t r = f->r[0], idx[SLORA_MAX_ORDER] = {0};
    for (int64_t q = 0; q < rows; q++) {
        float *d = dst + q * r;
        for (int64_t j = 0; j < r; j++)
            d[j] = from < to ? f->a[from][idx[from] * r + j] : 1.0f;
        for (int m = from + 1; m < to; m++) {
            const float *a = f->a[m] + idx[m] * r;
            for (int64_t j = 0; j < r; j++)
                d[j] *= a[j];
        }
        for (int m = to - 1; m >= from && ++idx[m] == f->n[m]; m--)
            idx[m] = 0;
    }
}

static void tucker_u(const struct slora_factor *f, int M, const struct slora_factor_plan *p,
                     float *buf, struct slora_factor_uv *out)
{
    float *bufs[2] = {buf, buf + p->left / 2};
    const float *x = f->core;
    int64_t dims[SLORA_MAX_ORDER];
    memcpy(dims, f->r, sizeof(*dims) * (size_t)M);
    for (int i = 0; i < M - 1; i++) {
        int m = p->order[i];
        int64_t slices = (int64_t)slora__prod_sat(dims, 0, m),
                b = (int64_t)slora__prod_sat(dims, m + 1, M);
        float *y = bufs[i & 1];
        for (int64_t s = 0; s < slices; s++)
            slora_blas_gemm((int)f->n[m], (int)b, (int)f->r[m], 1.0f, f->a[m], x + s * f->r[m] * b,
                            0, 0.0f, y + s * f->n[m] * b);
        dims[m] = f->n[m];
        x = y;
    }
    out->u = x;
}

/* U_L and U_R of factor f per plan p, their scratch from buf (p->left +
 * p->right floats). */
void slora_factor_build(const struct slora_factor *f, int M, const struct slora_factor_plan *p,
                        float *buf, struct slora_factor_uv *out)
{
    *out = (struct slora_factor_uv){
        .rows = p->rows, .r = p->r, .cols = p->cols, .row_len = p->row_len};
    if (f->core) {
        out->v = f->a[M - 1];
        if (M == 1)
            out->u = f->core;
        else
            tucker_u(f, M, p, buf, out);
        return;
    }
    int s = p->split;
    if (s == 1) {
        out->u = f->a[0];
    } else {
        khatri_rao(f, 0, s, p->rows, buf);
        out->u = buf;
    }
    if (M - s == 1) {
        out->v = f->a[M - 1];
    } else {
        khatri_rao(f, s, M, p->cols, buf + p->left);
        out->v = buf + p->left;
    }
}
