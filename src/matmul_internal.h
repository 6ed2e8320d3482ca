/* matmul_internal.h - what matmul.c and its kernel files share (not
 * public): the quantized activation row layout and the kernels' entry
 * points.
 *
 * An activation row (xq) holds the values of ggml's vector format for the
 * weight type, laid out as arrays so a kernel loads 32 quants at once and
 * never converts a scale in its inner loop. For cols elements, nb blocks,
 * each array starting at a multiple of 64 bytes from the row start:
 *   F32  (F32, F16, BF16 weights): float x[cols]
 *   Q8   (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 weights, nb = cols / 32):
 *        i8 qs[cols] | float d[nb] | i32 s[nb] | float ds[nb]
 *        qs and d as ggml's Q8_0/Q8_1 (d = f16 rounding of amax / 127,
 *        widened), s = sum of the block's qs, ds = Q8_1's s (the f16
 *        rounding of d sum(qs) with the unrounded d), widened
 *   Q8K  (K-quant weights, nb = cols / 256):
 *        i8 qs[cols] | float d[nb] | i16 bsums[16 nb] | i16 bsums32[8 nb]
 *        as ggml's Q8_K, plus the sums of 32 consecutive qs
 * Any thread may call these functions; they touch only their arguments.
 */
#ifndef SLORA_MATMUL_INTERNAL_H
#define SLORA_MATMUL_INTERNAL_H

#include <slora/matmul.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline size_t slora__mm_round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* A quantized activation row's arrays (NULL where the format has none). */
struct slora__mm_xrow {
    const void *x;         /* F32 floats or the Q8/Q8K qs */
    const float *d;        /* (nb) block scales */
    const int32_t *s;      /* (nb) Q8 block sums */
    const float *ds;       /* (nb) Q8 d * s */
    const int16_t *bsums;  /* (16 nb) Q8K sums of 16 */
    const int16_t *bsum32; /* (8 nb) Q8K sums of 32 */
};

/* The arrays of the activation row at xq for weights of type wt (inline:
 * every tile call of a decode, one per weight row, asks for it). */
static inline struct slora__mm_xrow slora__mm_xrow(enum slora_dtype wt, const void *xq,
                                                   int64_t cols)
{
    struct slora__mm_xrow xr = {.x = xq};
    size_t c = (size_t)cols;
    size_t (*r)(size_t) = slora__mm_round64;
    const uint8_t *p = (const uint8_t *)xq + r(c);
    switch (slora_matmul_vec_type(wt)) {
    case SLORA_DTYPE_Q8_K: {
        size_t nb = c / 256;
        xr.d = (const float *)p;
        xr.bsums = (const int16_t *)(p + r(4 * nb));
        xr.bsum32 = (const int16_t *)(p + r(4 * nb) + r(32 * nb));
        break;
    }
    case SLORA_DTYPE_Q8_0:
    case SLORA_DTYPE_Q8_1: {
        size_t nb = c / 32;
        xr.d = (const float *)p;
        xr.s = (const int32_t *)(p + r(4 * nb));
        xr.ds = (const float *)(p + 2 * r(4 * nb));
        break;
    }
    default:
        break;
    }
    return xr;
}


/* The slice product of matmul.h for one weight type, portable C: the
 * reference every other path is tested against. */
void slora__matmul_ref(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n,
                       float *y, size_t ldy, int64_t r0, int64_t r1, bool add);

/* The compiled SIMD kernels for w->type (matmul_float.c: F32, F16, BF16; matmul_q.c: the legacy types, Q8_0 through
 * matmul_q8.c on VNNI; matmul_k.c: the
 * K-quants). Same contract as slora_matmul. Each returns false, doing
 * nothing, when this build has no SIMD kernel for the type. */
bool slora__mm_float(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n,
                     float *y, size_t ldy, int64_t r0, int64_t r1, bool add);
bool slora__mm_q(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                 size_t ldy, int64_t r0, int64_t r1, bool add);
/* Q8_0 on AVX512-VNNI (matmul_q8.c), called by slora__mm_q. */
bool slora__mm_q8_0(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                    size_t ldy, int64_t r0, int64_t r1, bool add);
bool slora__mm_k(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                 size_t ldy, int64_t r0, int64_t r1, bool add);

/* The K-quant product by panels of weight rows (matmul_kpanel.c; SIMD
 * builds only), which slora__mm_k uses from 12 activation rows on (Q6_K:
 * 16), in matmul_k.c's canonical order. Same contract as slora_matmul. */
void slora__mm_kpanel(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n,
                      float *y, size_t ldy, int64_t r0, int64_t r1, bool add);

/* One activation row x (cols, a multiple of 32) as Q8 arrays (qs, d, s,
 * ds of the layout above), bit for bit ggml's Q8_1 blocks as
 * slora_quant_quantize makes them (NaN elements give 0). Returns false,
 * doing nothing, when this build has no SIMD version (matmul_q.c). */
bool slora__mm_quant_q8(const float *x, int64_t cols, int8_t *qs, float *d, int32_t *s, float *ds);

/* One activation row x (cols, a multiple of 256) as Q8K arrays (qs, d,
 * bsums, bsum32 of the layout above), bit for bit ggml's Q8_K as
 * slora_quant_quantize makes it (NaN elements give 0). Returns false,
 * doing nothing, when this build has no SIMD version (matmul_k.c). */
bool slora__mm_quant_q8k(const float *x, int64_t cols, int8_t *qs, float *d, int16_t *bsums,
                         int16_t *bsum32);

/* A kernel's tile: y[j ldy + i] for weight rows w + i ws (i < mr) against
 * activation rows xq + j xs (j < nr), each row cols elements. */
typedef void (*slora__mm_tile_fn)(int mr, int nr, const uint8_t *w, size_t ws, const uint8_t *xq,
                                  size_t xs, int64_t cols, float *y, size_t ldy, bool add);

/* The slice product by tiles of fn: mr_max x nr_max tiles, single weight
 * rows for the slice's tail, fewer activation rows at the end of each
 * block. Activation rows go in blocks of x_block (a multiple of nr_max):
 * each weight row is streamed once per block, the block's rows are read
 * from cache by every tile. */
void slora__mm_drive(const struct slora_tensor *w, slora__mm_tile_fn fn, int mr_max, int nr_max,
                     int x_block, const void *xq, size_t xq_stride, int n, float *y, size_t ldy,
                     int64_t r0, int64_t r1, bool add);

/* One arm of SLORA__MM_TILES: TILE_CALL(M, N) when the tile has N
 * activation rows (N <= NR; the constant keeps the call well formed when
 * it is not). */
#define SLORA__MM_NR_CASE(M, N, NR, TILE_CALL)                                                     \
    case N:                                                                                        \
        TILE_CALL(M, (NR >= N ? N : 1));                                                           \
        break;

#define SLORA__MM_NR_SWITCH(M, NR, nr, TILE_CALL)                                                  \
    switch (nr < NR ? nr : NR) {                                                                   \
        SLORA__MM_NR_CASE(M, 6, NR, TILE_CALL)                                                     \
        SLORA__MM_NR_CASE(M, 5, NR, TILE_CALL)                                                     \
        SLORA__MM_NR_CASE(M, 4, NR, TILE_CALL)                                                     \
        SLORA__MM_NR_CASE(M, 3, NR, TILE_CALL)                                                     \
        SLORA__MM_NR_CASE(M, 2, NR, TILE_CALL)                                                     \
    default:                                                                                       \
        TILE_CALL(M, 1);                                                                           \
    }

/* Defines `name`, a slora__mm_tile_fn calling TILE_CALL(mr, nr) with
 * compile-time constants for mr in {MR, 1} and nr in 1..NR (NR <= 6), so
 * each inlined tile keeps its accumulators in registers. */
#define SLORA__MM_TILES(name, MR, NR, TILE_CALL)                                                   \
    static void name(int mr, int nr, const uint8_t *w, size_t ws, const uint8_t *xq, size_t xs,    \
                     int64_t cols, float *y, size_t ldy, bool add)                                 \
    {                                                                                              \
        if (mr == MR)                                                                              \
            SLORA__MM_NR_SWITCH(MR, NR, nr, TILE_CALL)                                             \
        else                                                                                       \
            SLORA__MM_NR_SWITCH(1, NR, nr, TILE_CALL)                                              \
    }

/* y = (add ? y : 0) + v: the one store of every kernel. */
static inline void slora__mm_store(float *y, float v, bool add)
{
    *y = add ? *y + v : v;
}

#endif
