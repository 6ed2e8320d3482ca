/* factor.h - one Kronecker factor's tensor T_k (spec section 3) as the
 * product of two matrices, contracted in the order that needs the least
 * scratch. No I/O; any thread may call these functions.
 *
 * T_k (order M) is computed as U_L (rows, r) @ U_R (cols, r)^T: with a
 * split s, rows index modes [0, s) and columns modes [s, M), so the
 * row-major (rows, cols) product is vec(T_k).
 *   CP:     U_L and U_R are the Khatri-Rao products of A_0 .. A_{s-1} and
 *           A_s .. A_{M-1} (one matrix is used in place, none is a row of
 *           ones). The split minimises their scratch: the rank-expanded
 *           (prod_{m<M-1} n_m, r) product is built only when nothing
 *           smaller gives the same tensor.
 *   Tucker: s = M-1, U_R = A_{M-1} and U_L = core x_m A_m for m < M-1,
 *           modes in ascending n_m / r_m: the intermediate shrinks before
 *           it grows, so it never exceeds max(core, U_L).
 * Only the first `count` entries of T_k are needed (the fold): U_L gets
 * ceil(count / P_R) rows (CP), and U_R only `count` rows when one row of
 * the product covers them.
 */
#ifndef SLORA_FACTOR_H
#define SLORA_FACTOR_H

#include <slora/adapter.h>

#include <stddef.h>
#include <stdint.h>

struct slora_factor_plan {
    int split;                  /* s */
    int64_t rows, cols, r;      /* U_L (rows, r) and U_R (cols, r) as built */
    int64_t row_len;            /* P_R = prod_{m >= s} n_m: the row stride of T_k (>= cols) */
    size_t left, right;         /* scratch floats for U_L (Tucker: two buffers) and U_R */
    size_t work;                /* multiply-adds: U_L, U_R and the needed part of the product */
    int order[SLORA_MAX_ORDER]; /* Tucker: the contraction order of modes 0 .. M-2 */
};

/* Plan factor f (order M, a consistent table) for its first count
 * entries (1 <= count <= P_k). Saturating: a plan whose scratch cannot be
 * generated (an intermediate past BLAS's int dimensions) has left ==
 * SIZE_MAX. */
void slora_factor_plan(const struct slora_factor *f, int M, size_t count,
                       struct slora_factor_plan *p);

/* The two matrices of a built factor: T_k's first entries are the
 * row-major rows of u @ v^T, row_len apart. */
struct slora_factor_uv {
    const float *u;  /* U_L (rows, r) */
    int64_t rows;    /* rows of U_L built */
    int64_t r;       /* inner dimension */
    const float *v;  /* U_R (cols, r) */
    int64_t cols;    /* rows of U_R built: columns of T_k available */
    int64_t row_len; /* P_R */
};

/* Build U_L and U_R per plan p, their scratch in buf (p->left + p->right
 * floats); they may point into f's matrices or core. */
void slora_factor_build(const struct slora_factor *f, int M, const struct slora_factor_plan *p,
                        float *buf, struct slora_factor_uv *out);

#endif
