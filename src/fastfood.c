/* fastfood.c - spec section 5 (see fastfood.h).
 *
 * F_g(x) = H (gd * gather_p(H (b * pad(x)))) / (norm2(gd) sqrt(D)).
 * When P <= L/2 the first transform only needs Lp = 2^ceil(log2 P) points:
 * with the rest of v zero, the strides >= Lp copy each value to every
 * block, so H v = H_Lp(x) repeated L/Lp times and the gather reads
 * y[p(j) mod Lp] from a buffer L/Lp times smaller than v.
 *
 * Scratch layout (floats): y (L) | w (L) | work: per-worker buffers, then
 * one uint64 per block (sums of gd^2, first bad index per strip) | gather
 * scratch.
 */
#include <slora/error.h>
#include <slora/fastfood.h>
#include <slora/gather.h>
#include <slora/kernels.h>
#include <slora/parallel.h>
#include <slora/perm.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BLK_LOG 15 /* 128 KiB blocks: pass one of a large transform */

static size_t worker_floats(int logn)
{
    size_t strip = logn > BLK_LOG ? (size_t)8 << (logn - BLK_LOG) : 0;
    size_t base = (size_t)1 << (BLK_LOG + 1);
    return strip > base ? strip : base;
}

int slora_fastfood_log_len(int64_t P, int64_t D)
{
    int64_t m = P > D ? P : D;
    int k = 0;
    while (((int64_t)1 << k) < m)
        k++;
    return k;
}

static size_t blocks_of(int log_len)
{
    return log_len > BLK_LOG ? (size_t)1 << (log_len - BLK_LOG) : 1;
}

size_t slora_fastfood_scratch_floats(int log_len, int n_threads)
{
    size_t n = (size_t)1 << log_len;
    int w = n_threads < 1 ? 1 : n_threads;
    int blk_log = log_len < BLK_LOG ? log_len : BLK_LOG;
    return 2 * n + (size_t)w * worker_floats(log_len) + 2 * blocks_of(log_len) +
           slora_gather_scratch_bytes(blk_log, n_threads) / 4 + 8;
}

/* Pass two: the strides >= 2^BLK_LOG, one strip of columns per task. The
 * array is (rows, cols) = (2^(logn - BLK_LOG), 2^BLK_LOG). With dst set,
 * element j goes to dst[j] * scale for j < d_len instead of back to v. */
struct strips {
    float *v;
    int log_rows;
    size_t cols;
    size_t width;
    float *workers;
    size_t worker_len;
    float *dst;
    int64_t d_len;
    float scale;
    int64_t *bad; /* (n_tasks) first non-finite dst index per strip, or -1 */
};

static void strip_task(void *ctx, size_t task, int worker)
{
    struct strips *s = ctx;
    size_t rows = (size_t)1 << s->log_rows, c0 = task * s->width;
    float *buf = s->workers + (size_t)worker * s->worker_len;
    for (size_t r = 0; r < rows; r++)
        memcpy(buf + r * s->width, s->v + r * s->cols + c0, s->width * sizeof(float));
    slora_kernels_fwht_rows(buf, s->log_rows, s->width);
    if (!s->dst) {
        for (size_t r = 0; r < rows; r++)
            memcpy(s->v + r * s->cols + c0, buf + r * s->width, s->width * sizeof(float));
        return;
    }
    int64_t bad = -1;
    for (size_t r = 0; r < rows; r++) {
        int64_t j0 = (int64_t)(r * s->cols + c0);
        if (j0 >= s->d_len)
            break;
        size_t n = s->d_len - j0 < (int64_t)s->width ? (size_t)(s->d_len - j0) : s->width;
        size_t at = slora_kernels_stream(s->dst + j0, buf + r * s->width, n, s->scale);
        if (bad < 0 && at < n)
            bad = j0 + (int64_t)at;
    }
    slora_kernels_stream_done();
    s->bad[task] = bad;
}

static int64_t run_strips(float *v, int logn, float *workers, size_t worker_len, float *dst,
                          int64_t d_len, float scale, int64_t *bad_tasks, int n_threads)
{
    struct strips s = {.v = v,
                       .log_rows = logn - BLK_LOG,
                       .cols = (size_t)1 << BLK_LOG,
                       .workers = workers,
                       .worker_len = worker_len,
                       .dst = dst,
                       .d_len = d_len,
                       .scale = scale,
                       .bad = bad_tasks};
    size_t rows = (size_t)1 << s.log_rows;
    s.width = ((size_t)1 << BLK_LOG) / rows;
    if (s.width < 8)
        s.width = 8;
    size_t n_tasks = s.cols / s.width;
    slora_parallel_run(n_threads, n_tasks, strip_task, &s);
    if (!dst)
        return -1;
    /* strips interleave rows, so the first bad index is the minimum */
    int64_t bad = -1;
    for (size_t t = 0; t < n_tasks; t++)
        if (bad_tasks[t] >= 0 && (bad < 0 || bad_tasks[t] < bad))
            bad = bad_tasks[t];
    return bad;
}

struct blocks {
    float *v;
};

static void block_task(void *ctx, size_t task, int worker)
{
    (void)worker;
    struct blocks *b = ctx;
    slora_kernels_fwht(b->v + (task << BLK_LOG), BLK_LOG);
}

void slora_fastfood_fwht(float *v, int logn, float *work, int n_threads)
{
    if (logn <= BLK_LOG) {
        slora_kernels_fwht(v, logn);
        return;
    }
    size_t n = (size_t)1 << logn;
    struct blocks b = {.v = v};
    slora_parallel_run(n_threads, n >> BLK_LOG, block_task, &b);
    int64_t *bad =
        (int64_t *)(work + (size_t)(n_threads < 1 ? 1 : n_threads) * worker_floats(logn));
    run_strips(v, logn, work, worker_floats(logn), NULL, 0, 1.0f, bad, n_threads);
}

static void apply_signs(float *x, int64_t j0, int64_t n, uint64_t c2)
{
    uint64_t z = c2 + (uint64_t)(j0 + 1) * SLORA_GAMMA;
    for (int64_t j = 0; j < n; j++, z += SLORA_GAMMA) {
        uint32_t bits;
        memcpy(&bits, x + j, sizeof(bits));
        bits ^= (uint32_t)(slora_mix64(z) >> 63) << 31;
        memcpy(x + j, &bits, sizeof(bits));
    }
}

/* Pass one of the second transform, on each gathered chunk of
 * w[j] = y[p(j) mod Lp]: w *= gd, the small strides, and the chunk's sum of
 * gd^2 (exact in uint64: at most 2^28 * 131070^2 < 2^64). */
struct second {
    uint64_t c3;
    int blk_log;
    uint64_t *sums;
};

static void second_chunk(void *ctx, size_t chunk, float *w, size_t count, int worker)
{
    (void)worker;
    struct second *s = ctx;
    uint64_t j0 = (uint64_t)chunk << s->blk_log;
    s->sums[chunk] = slora_kernels_gd_scale(w, count, s->c3 + (j0 + 1) * SLORA_GAMMA);
    slora_kernels_fwht(w, s->blk_log);
}

int slora_fastfood_project(uint64_t seed, int64_t group, int64_t P, int64_t D, float alpha,
                           float *scratch, float *dst, int n_threads, int64_t *bad_index,
                           char *diag, size_t diag_len)
{
    int logn = slora_fastfood_log_len(P, D);
    int log_p = slora_fastfood_log_len(P, 1);
    size_t n = (size_t)1 << logn, lp = (size_t)1 << log_p;
    int nw = n_threads < 1 ? 1 : n_threads;
    float *y = scratch, *w = scratch + n, *workers = scratch + 2 * n;
    size_t worker_len = worker_floats(logn);
    uint64_t *sums = (uint64_t *)(workers + (size_t)nw * worker_len);
    void *gather_scratch = sums + blocks_of(logn);
    uint64_t sg = slora_rnd(seed, 1, (uint64_t)group);
    uint64_t c2 = slora_mix64(sg ^ slora_mix64(2 + SLORA_GAMMA));

    memset(y + P, 0, (lp - (size_t)P) * sizeof(float));
    apply_signs(y, 0, P, c2);
    slora_fastfood_fwht(y, log_p, workers, n_threads);

    struct second s = {.c3 = slora_mix64(sg ^ slora_mix64(3 + SLORA_GAMMA)),
                       .sums = sums,
                       .blk_log = logn < BLK_LOG ? logn : BLK_LOG};
    struct slora_perm perm;
    slora_perm_init(&perm, slora_rnd(sg, 5, 0), n);
    struct slora_gather gather = {.perm = &perm,
                                  .src = y,
                                  .mask = (uint32_t)(lp - 1),
                                  .dst = w,
                                  .chunk_log = s.blk_log,
                                  .fn = second_chunk,
                                  .ctx = &s};
    slora_gather_run(&gather, gather_scratch, n_threads);
    size_t n_blocks = n >> s.blk_log;
    uint64_t sum = 0;
    for (size_t t = 0; t < n_blocks; t++)
        sum += sums[t];
    if (sum == 0) {
        snprintf(diag, diag_len, "group %lld: fastfood norm2(gd) = 0 (seed %llu, L = %zu)",
                 (long long)group, (unsigned long long)seed, n);
        return SLORA_ELIMIT;
    }
    float scale = (float)((double)alpha / (sqrt((double)sum) * sqrt((double)D)));
    if (logn <= BLK_LOG) {
        size_t at = slora_kernels_stream(dst, w, (size_t)D, scale);
        slora_kernels_stream_done();
        *bad_index = at < (size_t)D ? (int64_t)at : -1;
        return 0;
    }
    *bad_index =
        run_strips(w, logn, workers, worker_len, dst, D, scale, (int64_t *)sums, n_threads);
    return 0;
}
