/* bench_matmul.c - the typed product (matmul.h) on one thread: weight
 * GB/s streamed and GFLOP/s per type for (rows, cols) = (2048, 2048),
 * (8192, 2048), (2048, 8192) at n = 1 and n = 512, next to a plain
 * memory-read loop measured in the same run (what one core can stream),
 * and the F32 crossover between the own kernel and OpenBLAS sgemm.
 *
 * n = 1 rotates over enough copies of the matrix to exceed the last-level
 * cache, so decode numbers are DRAM numbers. Each figure is the median of
 * repeated runs of at least 0.2 s.
 *
 * usage: bench_matmul [--quick] [--hot] [--json PATH] [--md PATH] [--types T,T,..]
 */
#include "internal.h"
#include "matmul_internal.h"

#include <slora/blas.h>
#include <slora/matmul.h>
#include <slora/quant.h>

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING_BYTES (256u << 20) /* decode working set: 8x the L3 */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *xalloc(size_t n)
{
    void *p = slora__alloc64(n);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static void fill(float *x, size_t n, uint32_t s)
{
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 8388608.0f - 1.0f;
    }
}

/* Median seconds per call of fn over repetitions filling ~0.2 s (at least 3). */
struct job {
    const struct slora_tensor *w; /* (copies) */
    int copies;
    const void *xq;
    size_t stride;
    int n;
    float *y;
    int mode; /* 0 slora_matmul, 1 own kernel only, 2 BLAS only */
};

static void run_once(struct job *j, int k)
{
    const struct slora_tensor *w = &j->w[k % j->copies];
    if (j->mode == 1) {
        if (!slora__mm_float(w, j->xq, j->stride, j->n, j->y, (size_t)w->rows, 0, w->rows, false))
            slora__matmul_ref(w, j->xq, j->stride, j->n, j->y, (size_t)w->rows, 0, w->rows, false);
    } else if (j->mode == 2) {
        slora_blas_gemm_ld(j->n, (int)w->rows, (int)w->cols, 1.0f, j->xq,
                           (int)(j->stride / sizeof(float)), w->data, (int)w->cols, 1, 0.0f, j->y,
                           (int)w->rows);
    } else {
        slora_matmul(w, j->xq, j->stride, j->n, j->y, (size_t)w->rows, 0, w->rows, false);
    }
}

static double time_job(struct job *j, double budget)
{
    double t[64];
    int reps = 0, k = 0;
    double start = now();
    run_once(j, k++); /* warm-up */
    while (reps < 64 && (reps < 3 || now() - start < budget)) {
        double t0 = now();
        run_once(j, k++);
        t[reps++] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    return t[reps / 2];
}

/* GB/s of a plain sequential read (sum of 64-byte lines) over a buffer 8x
 * the last-level cache, one thread. */
static double read_bandwidth(double budget)
{
    size_t n = RING_BYTES / sizeof(float);
    float *buf = xalloc(RING_BYTES);
    memset(buf, 1, RING_BYTES);
    double best[16];
    int reps = 0;
    double start = now();
    volatile float sink = 0;
    while (reps < 16 && (reps < 3 || now() - start < budget)) {
        double t0 = now();
#ifdef __AVX512F__
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < n; i += 64) {
            a0 = _mm512_add_ps(a0, _mm512_load_ps(buf + i));
            a1 = _mm512_add_ps(a1, _mm512_load_ps(buf + i + 16));
            a2 = _mm512_add_ps(a2, _mm512_load_ps(buf + i + 32));
            a3 = _mm512_add_ps(a3, _mm512_load_ps(buf + i + 48));
        }
        sink += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
#else
        float s = 0;
        for (size_t i = 0; i < n; i += 16)
            s += buf[i];
        sink += s;
#endif
        best[reps++] = now() - t0;
    }
    qsort(best, (size_t)reps, sizeof(double), cmp_double);
    free(buf);
    return (double)RING_BYTES / best[reps / 2] / 1e9;
}

struct result {
    const char *type;
    int rows, cols, n;
    double sec, gbs, gflops;
};

/* A (rows, cols) matrix of type t, copied `copies` times. */
static struct slora_tensor *make_weights(enum slora_dtype t, int rows, int cols, int copies)
{
    size_t rb = slora_dtype_row_bytes(t, cols);
    float *src = xalloc((size_t)cols * sizeof(float));
    uint8_t *data = xalloc(rb * (size_t)rows);
    for (int r = 0; r < rows; r++) {
        fill(src, (size_t)cols, (uint32_t)r + 1);
        slora_quant_quantize(t, src, data + (size_t)r * rb, cols);
    }
    free(src);
    struct slora_tensor *w = calloc((size_t)copies, sizeof(*w));
    for (int c = 0; c < copies; c++) {
        uint8_t *d = data;
        if (c) {
            d = xalloc(rb * (size_t)rows);
            memcpy(d, data, rb * (size_t)rows);
        }
        slora_tensor_init(&w[c], t, d, rows, cols);
    }
    return w;
}

static void free_weights(struct slora_tensor *w, int copies)
{
    for (int c = 0; c < copies; c++)
        free((void *)w[c].data);
    free(w);
}

static bool hot; /* --hot: n = 1 on one cache-resident copy (kernel speed, not DRAM) */

static struct result bench_one(enum slora_dtype t, int rows, int cols, int n, int mode,
                               double budget)
{
    size_t wbytes = slora_dtype_row_bytes(t, cols) * (size_t)rows;
    int copies = n == 1 && !hot ? (int)(RING_BYTES / wbytes) + 1 : 1;
    struct slora_tensor *w = make_weights(t, rows, cols, copies);
    size_t stride = slora_matmul_xq_bytes(t, cols);
    float *x = xalloc((size_t)n * (size_t)cols * sizeof(float));
    fill(x, (size_t)n * (size_t)cols, 12345);
    void *xq = xalloc(stride * (size_t)n);
    slora_matmul_quantize(t, x, n, cols, xq, stride);
    float *y = xalloc((size_t)n * (size_t)rows * sizeof(float));
    struct job j = {w, copies, xq, stride, n, y, mode};
    double sec = time_job(&j, budget);
    struct result r = {slora_dtype_name(t), rows, cols, n, sec, (double)wbytes / sec / 1e9,
                       2.0 * rows * (double)cols * n / sec / 1e9};
    free(x);
    free(xq);
    free(y);
    free_weights(w, copies);
    return r;
}

/* The matrices of a llama-shaped model (dim D, FFN H, L layers, vocab V,
 * shared classifier) in type t: per-token seconds of all its products for
 * a batch of n tokens, the classifier run on the last token only (as
 * llama.cpp does for a prompt). The weights are distinct, as in a model,
 * so decode streams them from DRAM. */
static double bench_model(enum slora_dtype t, int D, int H, int L, int V, int n, double budget)
{
    int nw = 7 * L + 1;
    struct slora_tensor *w = calloc((size_t)nw, sizeof(*w));
    for (int k = 0; k < nw; k++) {
        int rows = k == 7 * L ? V : k % 7 < 4 ? D : k % 7 < 6 ? H : D;
        int cols = k % 7 == 6 && k < 7 * L ? H : D;
        struct slora_tensor *one = make_weights(t, rows, cols, 1);
        w[k] = *one;
        free(one);
    }
    size_t sd = slora_matmul_xq_bytes(t, D), sh = slora_matmul_xq_bytes(t, H);
    float *x = xalloc((size_t)n * (size_t)H * sizeof(float));
    fill(x, (size_t)n * (size_t)H, 7);
    void *xd = xalloc(sd * (size_t)n), *xh = xalloc(sh * (size_t)n);
    slora_matmul_quantize(t, x, n, D, xd, sd);
    slora_matmul_quantize(t, x, n, H, xh, sh);
    float *y = xalloc((size_t)n * (size_t)(V > H ? V : H) * sizeof(float));
    double t_all[16];
    int reps = 0;
    double start = now();
    while (reps < 16 && (reps < 3 || now() - start < budget)) {
        double t0 = now();
        for (int k = 0; k < nw; k++) {
            bool ffn_down = k % 7 == 6 && k < 7 * L, cls = k == 7 * L;
            slora_matmul(&w[k], ffn_down ? xh : xd, ffn_down ? sh : sd, cls ? 1 : n, y,
                         (size_t)w[k].rows, 0, w[k].rows, false);
        }
        t_all[reps++] = now() - t0;
    }
    qsort(t_all, (size_t)reps, sizeof(double), cmp_double);
    for (int k = 0; k < nw; k++)
        free((void *)w[k].data);
    free(w);
    free(x);
    free(xd);
    free(xh);
    free(y);
    return t_all[reps / 2] / n;
}

int main(int argc, char **argv)
{
    const char *json = NULL, *md = NULL, *only = NULL;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json = argv[++i];
        else if (!strcmp(argv[i], "--md") && i + 1 < argc)
            md = argv[++i];
        else if (!strcmp(argv[i], "--types") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--hot"))
            hot = true;
        else if (!strcmp(argv[i], "--model") && i + 3 < argc) {
            /* --model TYPE D,H,L,V N: matmul-only tokens/s of that model */
            int D, H, L, V;
            int t = slora_dtype_parse(argv[i + 1]);
            if (t < 0 || sscanf(argv[i + 2], "%d,%d,%d,%d", &D, &H, &L, &V) != 4)
                return 2;
            int n = atoi(argv[i + 3]);
            slora_blas_set_threads(1);
            double sec = bench_model((enum slora_dtype)t, D, H, L, V, n, 1.0);
            printf("{\"type\": \"%s\", \"n\": %d, \"ms_per_token\": %.4f, \"tok_s\": %.1f}\n",
                   argv[i + 1], n, sec * 1e3, 1 / sec);
            return 0;
        }
        else {
            fprintf(stderr, "usage: %s [--quick] [--hot] [--json PATH] [--md PATH] [--types T,..]\n",
                    argv[0]);
            return 2;
        }
    }
    slora_blas_set_threads(1);
    double budget = quick ? 0.05 : 0.2;
    static const enum slora_dtype types[] = {
        SLORA_DTYPE_F32,  SLORA_DTYPE_F16,  SLORA_DTYPE_BF16, SLORA_DTYPE_Q8_0,
        SLORA_DTYPE_Q4_0, SLORA_DTYPE_Q4_1, SLORA_DTYPE_Q5_0, SLORA_DTYPE_Q5_1,
        SLORA_DTYPE_Q4_K, SLORA_DTYPE_Q5_K, SLORA_DTYPE_Q6_K,
    };
    static const int shapes[3][2] = {{2048, 2048}, {8192, 2048}, {2048, 8192}};
    static const int ns[] = {1, 512};
    double mem = read_bandwidth(budget * 2);
    printf("memory read loop, 1 thread: %.1f GB/s\n", mem);
    struct result res[128];
    int nres = 0;
    printf("%-5s %6s %6s %4s %10s %8s %9s\n", "type", "rows", "cols", "n", "ms", "GB/s",
           "GFLOP/s");
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        if (only && !strstr(only, slora_dtype_name(types[ti])))
            continue;
        for (int s = 0; s < 3; s++)
            for (int k = 0; k < 2; k++) {
                if (quick && s)
                    continue;
                struct result r = bench_one(types[ti], shapes[s][0], shapes[s][1], ns[k], 0,
                                            budget);
                printf("%-5s %6d %6d %4d %10.3f %8.1f %9.1f\n", r.type, r.rows, r.cols, r.n,
                       r.sec * 1e3, r.gbs, r.gflops);
                fflush(stdout);
                res[nres++] = r;
            }
    }
    /* F32 crossover: the own tile kernel against OpenBLAS sgemm */
    static const int cross_n[] = {2, 4, 8, 16, 32, 64, 128, 512};
    struct result cross[2][8];
    int ncross = (only && !strstr(only, "F32")) ? 0 : quick ? 3 : 8;
    for (int k = 0; k < ncross; k++) {
        cross[0][k] = bench_one(SLORA_DTYPE_F32, 2048, 2048, cross_n[k], 1, budget);
        cross[1][k] = bench_one(SLORA_DTYPE_F32, 2048, 2048, cross_n[k], 2, budget);
        printf("F32 (2048, 2048) n %3d: own %.1f GFLOP/s, OpenBLAS %.1f GFLOP/s\n", cross_n[k],
               cross[0][k].gflops, cross[1][k].gflops);
    }
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f)
            return 1;
        fprintf(f, "{\"threads\": 1, \"memory_read_gbs\": %.2f, \"results\": [", mem);
        for (int i = 0; i < nres; i++)
            fprintf(f,
                    "%s\n  {\"type\": \"%s\", \"rows\": %d, \"cols\": %d, \"n\": %d, \"ms\": %.4f, "
                    "\"gbs\": %.2f, \"gflops\": %.2f}",
                    i ? "," : "", res[i].type, res[i].rows, res[i].cols, res[i].n,
                    res[i].sec * 1e3, res[i].gbs, res[i].gflops);
        fprintf(f, "\n], \"f32_crossover\": [");
        for (int k = 0; k < ncross; k++)
            fprintf(f, "%s\n  {\"n\": %d, \"own_gflops\": %.2f, \"openblas_gflops\": %.2f}",
                    k ? "," : "", cross_n[k], cross[0][k].gflops, cross[1][k].gflops);
        fprintf(f, "\n]}\n");
        fclose(f);
    }
    if (md) {
        FILE *f = fopen(md, "w");
        if (!f)
            return 1;
        fprintf(f, "# matmul microbenchmark (1 thread)\n\n"
                   "`build/bench_matmul`; weights streamed per second and arithmetic rate of\n"
                   "`slora_matmul` (activations already quantized). n = 1 cycles through\n"
                   "copies of the matrix beyond the L3, so it reads DRAM.\n\n");
        fprintf(f, "Plain memory-read loop in the same run: **%.1f GB/s**.\n\n", mem);
        char load[64] = "?";
        FILE *la = fopen("/proc/loadavg", "r");
        if (la) {
            if (!fgets(load, sizeof(load), la))
                snprintf(load, sizeof(load), "?");
            fclose(la);
        }
        fprintf(f, "Machine load average at the end (2 cores): %s\n", load);
        fprintf(f, "| type | rows | cols | n | ms | GB/s | GFLOP/s |\n|---|---|---|---|---|---|---|\n");
        for (int i = 0; i < nres; i++)
            fprintf(f, "| %s | %d | %d | %d | %.3f | %.1f | %.1f |\n", res[i].type, res[i].rows,
                    res[i].cols, res[i].n, res[i].sec * 1e3, res[i].gbs, res[i].gflops);
        if (ncross) {
            fprintf(f, "\nF32 (2048, 2048): own tile kernel vs OpenBLAS sgemm (GFLOP/s)\n\n"
                       "| n | own | OpenBLAS |\n|---|---|---|\n");
            for (int k = 0; k < ncross; k++)
                fprintf(f, "| %d | %.1f | %.1f |\n", cross_n[k], cross[0][k].gflops,
                        cross[1][k].gflops);
        }
        fclose(f);
    }
    return 0;
}
