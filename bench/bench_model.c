/* bench_model.c - base-model throughput against the machine's memory
 * bandwidth, measured in the same run (`make bench` via bench/model.sh).
 *
 * For each thread count: read bandwidth (vectorised sum over a buffer far
 * larger than the caches, split across the threads; measured before and
 * after each quarter of the decode), decode tok/s (one
 * sequence, greedy, positions 0..n-1, one row per forward call), prefill
 * tok/s (one forward call over a whole prompt). Decode efficiency =
 * tok/s x weight bytes read per token / bandwidth (the median over the
 * quarters, each against the bandwidth measured around it): 1.0 means decode
 * streams the weights at the measured bandwidth.
 *
 * usage: bench_model --model M [--decode N] [--prompt N] [--threads 1,2]
 *                    [--json OUT] [--md OUT]
 */
#include <slora/blas.h>
#include <slora/matmul.h>
#include <slora/cliarg.h>
#include <slora/forward.h>
#include <slora/model.h>
#include <slora/sampler.h>
#include <slora/weights.h>

#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BW_BYTES ((size_t)1 << 30)
#define REPEATS 3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct bw_job {
    const float *p;
    size_t n;
    float sum;
};

static void *bw_sum(void *arg)
{
    struct bw_job *j = arg;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (size_t i = 0; i + 32 <= j->n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(j->p + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(j->p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(j->p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(j->p + i + 24));
    }
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    j->sum = out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
    return NULL;
}

/* Best of REPEATS read passes over buf with n threads, bytes per second. */
static double bandwidth(const float *buf, size_t n_floats, int threads)
{
    double best = 0;
    for (int r = 0; r < REPEATS; r++) {
        pthread_t tid[16];
        struct bw_job jobs[16];
        size_t per = n_floats / (size_t)threads / 32 * 32;
        double t0 = now();
        for (int i = 0; i < threads; i++) {
            jobs[i] = (struct bw_job){buf + (size_t)i * per, per, 0};
            pthread_create(&tid[i], NULL, bw_sum, &jobs[i]);
        }
        float total = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(tid[i], NULL);
            total += jobs[i].sum;
        }
        double dt = now() - t0;
        if (total == 12345.0f) /* keep the sums alive */
            fputc(' ', stderr);
        double bps = (double)(per * (size_t)threads * sizeof(float)) / dt;
        if (bps > best)
            best = bps;
    }
    return best;
}

struct result {
    int threads;
    double bw;
    double sweep;
    double decode;
    double prefill;
    double eff;
};

#define DECODE_CHUNKS 4

/* Greedy decode of n tokens from BOS, one forward call each, timed in
 * DECODE_CHUNKS chunks with the read bandwidth measured around each chunk
 * (a shared machine drifts). Sets the overall tok/s, the mean bandwidth and
 * the median over chunks of tok/s x bytes / bandwidth around that chunk. */
static void decode(const struct slora_model *m, const struct slora_weights *ws, int n, size_t bytes,
                   const float *buf, int threads, struct result *r)
{
    struct slora_kv *kv = slora_kv_new(m);
    struct slora_fwd *f = slora_fwd_new(m, 1, threads);
    float *logits = malloc((size_t)m->cfg.shape.vocab_size * sizeof(float));
    struct slora_sampler_params greedy = {0};
    struct slora_sampler *sampler = slora_sampler_new(m->cfg.shape.vocab_size, &greedy);
    if (!kv || !f || !logits || !sampler) {
        fprintf(stderr, "bench_model: out of memory\n");
        exit(1);
    }
    double bw[DECODE_CHUNKS + 1], eff[DECODE_CHUNKS], total = 0;
    int token = 1, pos = 0;
    bw[0] = bandwidth(buf, BW_BYTES / sizeof(float), threads);
    for (int c = 0; c < DECODE_CHUNKS; c++) {
        int end = n * (c + 1) / DECODE_CHUNKS, count = end - pos;
        double t0 = now();
        for (; pos < end; pos++) {
            struct slora_fwd_row row = {token, pos, kv, ws, logits};
            slora_fwd_run(f, &row, 1);
            token = slora_sampler_sample(sampler, logits);
        }
        double dt = now() - t0;
        total += dt;
        bw[c + 1] = bandwidth(buf, BW_BYTES / sizeof(float), threads);
        eff[c] = count / dt * (double)bytes / ((bw[c] + bw[c + 1]) / 2);
    }
    /* median of the chunk efficiencies (insertion sort of four) */
    for (int a = 1; a < DECODE_CHUNKS; a++)
        for (int b = a; b > 0 && eff[b] < eff[b - 1]; b--) {
            double t = eff[b];
            eff[b] = eff[b - 1];
            eff[b - 1] = t;
        }
    r->eff = (eff[DECODE_CHUNKS / 2 - 1] + eff[DECODE_CHUNKS / 2]) / 2;
    r->decode = n / total;
    r->bw = 0;
    for (int c = 0; c <= DECODE_CHUNKS; c++)
        r->bw += bw[c] / (DECODE_CHUNKS + 1);
    slora_sampler_free(sampler);
    free(logits);
    slora_fwd_free(f);
    slora_kv_free(kv);
}

/* Best of REPEATS single-call prefills of an n-token prompt; tok/s. */
static double prefill(const struct slora_model *m, const struct slora_weights *ws, int n,
                      int threads)
{
    struct slora_kv *kv = slora_kv_new(m);
    struct slora_fwd *f = slora_fwd_new(m, n, threads);
    struct slora_fwd_row *rows = calloc((size_t)n, sizeof(*rows));
    float *logits = malloc((size_t)m->cfg.shape.vocab_size * sizeof(float));
    if (!kv || !f || !rows || !logits) {
        fprintf(stderr, "bench_model: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < n; i++)
        rows[i] = (struct slora_fwd_row){(i * 7919 + 1) % m->cfg.shape.vocab_size, i, kv, ws,
                                         i == n - 1 ? logits : NULL};
    double best = 0;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = now();
        slora_fwd_run(f, rows, n);
        double tps = n / (now() - t0);
        if (tps > best)
            best = tps;
    }
    free(logits);
    free(rows);
    slora_fwd_free(f);
    slora_kv_free(kv);
    return best;
}

/* Best of REPEATS passes of one single-row product over every matrix and
 * the classifier (the decode's matrix work alone, one thread), bytes per
 * second: the kernels' ceiling. */
static double gemv_sweep(const struct slora_model *m, size_t bytes)
{
    const struct slora_shape *s = &m->cfg.shape;
    int wide = s->dim > s->hidden_dim ? s->dim : s->hidden_dim;
    float *x = malloc((size_t)wide * sizeof(float));
    float *y = malloc((size_t)(s->vocab_size > wide ? s->vocab_size : wide) * sizeof(float));
    if (!x || !y) {
        fprintf(stderr, "bench_model: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < wide; i++)
        x[i] = 1.0f / (float)(i + 1);
    void *xq = aligned_alloc(64, 4 * (size_t)wide + 64);
    double best = 0;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = now();
        for (int l = 0; l <= s->n_layers; l++)
            for (int mod = 0; mod < SLORA_MOD_COUNT; mod++) {
                const struct slora_tensor *w =
                    l < s->n_layers ? slora_model_matrix(m, l, mod) : &m->wcls;
                size_t st = slora_matmul_xq_bytes(w->type, w->cols);
                slora_matmul_quantize(w->type, x, 1, w->cols, xq, st);
                slora_matmul(w, xq, st, 1, y, (size_t)w->rows, 0, w->rows, false);
                if (l == s->n_layers)
                    break;
            }
        double bps = (double)bytes / (now() - t0);
        if (bps > best)
            best = bps;
    }
    free(x);
    free(y);
    free(xq);
    return best;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *json = NULL, *md = NULL, *threads_arg = "1,2";
    long long n_decode = 256, n_prompt = 128;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_model: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--json"))
            json = v;
        else if (!strcmp(a, "--md"))
            md = v;
        else if (!strcmp(a, "--threads"))
            threads_arg = v;
        else if (!(!strcmp(a, "--decode") && slora_cliarg_int(v, 1, 1 << 20, &n_decode)) &&
                 !(!strcmp(a, "--prompt") && slora_cliarg_int(v, 1, 1 << 20, &n_prompt))) {
            fprintf(stderr, "bench_model: bad option %s %s\n", a, v);
            return 2;
        }
        i++;
    }
    int threads[8];
    int n_threads = slora_cliarg_int_list(threads_arg, 1, 16, threads, 8);
    if (!model || n_threads < 1) {
        fprintf(stderr, "usage: bench_model --model M [--decode N] [--prompt N] "
                        "[--threads 1,2] [--json OUT] [--md OUT]\n");
        return 2;
    }
    char diag[512];
    struct slora_model *m;
    if (slora_model_load(model, NULL, &m, diag, sizeof(diag))) {
        fprintf(stderr, "bench_model: %s\n", diag);
        return 1;
    }
    if (n_decode > m->cfg.seq_len || n_prompt > m->cfg.seq_len) {
        fprintf(stderr, "bench_model: --decode/--prompt exceed the context %d\n", m->cfg.seq_len);
        return 2;
    }
    const struct slora_shape *s = &m->cfg.shape;
    /* decode reads every matrix, the norms and the classifier, plus one embedding row */
    size_t emb = (size_t)s->vocab_size * s->dim * sizeof(float);
    size_t bytes = m->weight_bytes - (m->cfg.shared_classifier ? 0 : emb - s->dim * sizeof(float));
    struct slora_weights ws;
    float *buf = aligned_alloc(64, BW_BYTES);
    if (slora_weights_init(&ws, m, 0) || !buf) {
        fprintf(stderr, "bench_model: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < BW_BYTES / sizeof(float); i++)
        buf[i] = (float)(i & 1023);

    /* other work on the machine skews every number: record how busy it was */
    double load = -1;
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &load) != 1)
            load = -1;
        fclose(la);
    }
    struct result res[8];
    for (int t = 0; t < n_threads; t++) {
        struct result *r = &res[t];
        r->threads = threads[t];
        slora_blas_set_threads(r->threads);
        r->sweep = gemv_sweep(m, bytes);
        decode(m, &ws, (int)n_decode, bytes, buf, r->threads, r);
        r->prefill = prefill(m, &ws, (int)n_prompt, r->threads);
        fprintf(stderr,
                "threads %d: bandwidth %.2f GB/s, sgemv sweep %.2f GB/s, decode %.2f tok/s "
                "(efficiency %.2f), prefill %.1f tok/s (%.1fx decode)\n",
                r->threads, r->bw / 1e9, r->sweep / 1e9, r->decode, r->eff, r->prefill,
                r->prefill / r->decode);
    }
    FILE *fj = json ? fopen(json, "w") : NULL, *fm = md ? fopen(md, "w") : NULL;
    if ((json && !fj) || (md && !fm)) {
        fprintf(stderr, "bench_model: cannot write results\n");
        return 1;
    }
    if (fj) {
        fprintf(
            fj,
            "{\"model\":{\"dim\":%d,\"hidden_dim\":%d,\"n_layers\":%d,\"n_heads\":%d,"
            "\"n_kv_heads\":%d,\"vocab_size\":%d,\"seq_len\":%d,\"weight_bytes_per_token\":%zu},"
            "\"decode_tokens\":%lld,\"prompt_tokens\":%lld,\"load_average_1m\":%.2f,\"runs\":[",
            s->dim, s->hidden_dim, s->n_layers, s->n_heads, s->n_kv_heads, s->vocab_size,
            m->cfg.seq_len, bytes, n_decode, n_prompt, load);
        for (int t = 0; t < n_threads; t++)
            fprintf(fj,
                    "%s{\"threads\":%d,\"read_bandwidth_gbs\":%.3f,\"sgemv_sweep_gbs\":%.3f,"
                    "\"decode_tok_s\":%.3f,\"decode_efficiency\":%.3f,\"prefill_tok_s\":%.3f,"
                    "\"prefill_over_decode\":%.2f}",
                    t ? "," : "", res[t].threads, res[t].bw / 1e9, res[t].sweep / 1e9,
                    res[t].decode, res[t].eff, res[t].prefill, res[t].prefill / res[t].decode);
        fprintf(fj, "],\"targets\":{\"decode_efficiency_1t\":0.8,\"prefill_over_decode_1t\":5}}\n");
        fclose(fj);
    }
    if (fm) {
        fprintf(fm,
                "## Base model (stories110M-shaped f32: dim %d, hidden %d, %d layers, %d heads, "
                "vocab %d)\n\n"
                "Weights read per decoded token: %.1f MB. Decode: %lld tokens greedy from BOS; "
                "prefill: one %lld-token batch. 1-minute load average at the start: %.2f "
                "(on %ld CPUs).\n\n"
                "| threads | read GB/s | sgemv sweep GB/s | decode tok/s | decode efficiency | "
                "prefill tok/s | prefill / decode |\n|---|---|---|---|---|---|---|\n",
                s->dim, s->hidden_dim, s->n_layers, s->n_heads, s->vocab_size, bytes / 1e6,
                n_decode, n_prompt, load, sysconf(_SC_NPROCESSORS_ONLN));
        for (int t = 0; t < n_threads; t++)
            fprintf(fm, "| %d | %.2f | %.2f | %.2f | %.2f | %.1f | %.1fx |\n", res[t].threads,
                    res[t].bw / 1e9, res[t].sweep / 1e9, res[t].decode, res[t].eff, res[t].prefill,
                    res[t].prefill / res[t].decode);
        fprintf(fm, "\nTargets at 1 thread: decode efficiency >= 0.8, prefill >= 5x decode. "
                    "Decode efficiency is the median over the four quarters of the decode, "
                    "each against the read bandwidth measured right around it. The sgemv sweep "
                    "is one pass of the decode's matrix-vector products alone.\n");
        fclose(fm);
    }
    free(buf);
    slora_weights_deinit(&ws);
    slora_model_free(m);
    return 0;
}
