/* gather.c - blocked, prefetched permuted gather (see gather.h).
 * Scratch: per worker, 2^chunk_log uint32 indices and 2^chunk_log floats
 * (the chunk before it is streamed to dst). */
#include <slora/gather.h>
#include <slora/kernels.h>
#include <slora/parallel.h>

#define AHEAD 64 /* elements prefetched ahead: enough misses in flight */

struct run {
    const struct slora_gather *g;
    size_t chunk;
    char *scratch;
};

size_t slora_gather_scratch_bytes(int chunk_log, int n_threads)
{
    size_t w = n_threads < 1 ? 1 : (size_t)n_threads;
    return w * ((size_t)8 << chunk_log);
}

static void chunk_task(void *ctx, size_t c, int worker)
{
    struct run *r = ctx;
    const struct slora_gather *g = r->g;
    uint64_t j0 = (uint64_t)c * r->chunk;
    size_t n = g->perm->n - j0 < r->chunk ? (size_t)(g->perm->n - j0) : r->chunk;
    uint32_t *idx = (uint32_t *)(r->scratch + (size_t)worker * 8 * r->chunk);
    float *out = g->fn ? g->dst + j0 : (float *)(idx + r->chunk);
    slora_perm_block(g->perm, j0, n, idx);
    const float *src = g->src;
    uint32_t mask = g->mask;
    size_t t = 0;
    for (; t + AHEAD < n; t++) {
        __builtin_prefetch(src + (idx[t + AHEAD] & mask));
        out[t] = src[idx[t] & mask];
    }
    for (; t < n; t++)
        out[t] = src[idx[t] & mask];
    if (g->fn)
        g->fn(g->ctx, c, out, n, worker);
    else {
        slora_kernels_stream(g->dst + j0, out, n, 1.0f);
        slora_kernels_stream_done();
    }
}

void slora_gather_run(const struct slora_gather *g, void *scratch, int n_threads)
{
    struct run r = {.g = g, .chunk = (size_t)1 << g->chunk_log, .scratch = scratch};
    slora_parallel_run(n_threads, (size_t)((g->perm->n + r.chunk - 1) / r.chunk), chunk_task, &r);
}
