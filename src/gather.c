/* gather.c - radix-partitioned permuted gather (see gather.h).
 *
 * Scratch layout: idx (n uint32: p(j)) | slot (n uint16: offset in the
 * source block) | pos (n_chunks * n_buckets uint32: where chunk c's
 * entries of bucket b start) | per worker: cursors (n_buckets uint32) and
 * one block (2^BUCKET_LOG floats, for the in-place case).
 */
#include <slora/gather.h>
#include <slora/parallel.h>

#include <stdbool.h>
#include <string.h>

#define BUCKET_LOG 16 /* 256 KiB source blocks: L2-resident */

struct plan {
    const struct slora_gather *g;
    uint64_t n;
    uint32_t mask; /* src_len - 1 when replicated, else all ones */
    size_t chunk;
    size_t n_chunks;
    size_t n_buckets;
    uint32_t *idx;
    uint16_t *slot;
    uint32_t *pos;
    uint32_t *cursors; /* n_buckets per worker */
    float *blocks;     /* 2^BUCKET_LOG per worker */
};

static size_t round8(size_t b)
{
    return (b + 7) & ~(size_t)7;
}

int slora_gather_chunk_log(uint64_t n)
{
    int k = 15;
    while (k < 40 && (n >> k) > 4096)
        k++;
    return k;
}

size_t slora_gather_scratch_bytes(uint64_t n, uint64_t src_len, int chunk_log, int n_threads)
{
    size_t n_chunks = (size_t)((n + ((uint64_t)1 << chunk_log) - 1) >> chunk_log);
    size_t n_buckets = (size_t)((src_len + ((uint64_t)1 << BUCKET_LOG) - 1) >> BUCKET_LOG);
    size_t w = n_threads < 1 ? 1 : (size_t)n_threads;
    return round8(n * 4) + round8(n * 2) + round8(n_chunks * n_buckets * 4) +
           w * (round8(n_buckets * 4) + ((size_t)4 << BUCKET_LOG));
}

static void index_task(void *ctx, size_t c, int worker)
{
    (void)worker;
    struct plan *p = ctx;
    uint64_t j0 = (uint64_t)c * p->chunk;
    size_t n = p->n - j0 < p->chunk ? (size_t)(p->n - j0) : p->chunk;
    uint32_t *idx = p->idx + j0, *count = p->pos + c * p->n_buckets;
    slora_perm_block(p->g->perm, j0, n, idx);
    memset(count, 0, p->n_buckets * sizeof(*count));
    for (size_t t = 0; t < n; t++)
        count[(idx[t] & p->mask) >> BUCKET_LOG]++;
}

static void scatter_task(void *ctx, size_t c, int worker)
{
    struct plan *p = ctx;
    uint64_t j0 = (uint64_t)c * p->chunk;
    size_t n = p->n - j0 < p->chunk ? (size_t)(p->n - j0) : p->chunk;
    uint32_t *cur = p->cursors + (size_t)worker * p->n_buckets;
    memcpy(cur, p->pos + c * p->n_buckets, p->n_buckets * sizeof(*cur));
    const uint32_t *idx = p->idx + j0;
    for (size_t t = 0; t < n; t++) {
        uint32_t s = idx[t] & p->mask;
        uint32_t at = cur[s >> BUCKET_LOG]++;
        /* hundreds of write streams: ask for the next lines early */
        __builtin_prefetch(p->slot + at + 64, 1);
        p->slot[at] = (uint16_t)s;
    }
}

static void bucket_task(void *ctx, size_t b, int worker)
{
    struct plan *p = ctx;
    size_t start = p->pos[b];
    size_t end = b + 1 < p->n_buckets ? p->pos[b + 1] : (size_t)p->n;
    const float *src = p->g->src + (b << BUCKET_LOG);
    const uint16_t *slot = p->slot + start;
    bool in_place = p->g->values == p->g->src;
    float *out = in_place ? p->blocks + ((size_t)worker << BUCKET_LOG) : p->g->values + start;
    for (size_t e = 0; e < end - start; e++)
        out[e] = src[slot[e]];
    if (in_place)
        memcpy(p->g->values + start, out, (end - start) * sizeof(float));
}

static void collect_task(void *ctx, size_t c, int worker)
{
    struct plan *p = ctx;
    uint64_t j0 = (uint64_t)c * p->chunk;
    size_t n = p->n - j0 < p->chunk ? (size_t)(p->n - j0) : p->chunk;
    uint32_t *cur = p->cursors + (size_t)worker * p->n_buckets;
    memcpy(cur, p->pos + c * p->n_buckets, p->n_buckets * sizeof(*cur));
    const uint32_t *idx = p->idx + j0;
    const float *values = p->g->values;
    float *dst = p->g->dst + j0;
    for (size_t t = 0; t < n; t++) {
        uint32_t at = cur[(idx[t] & p->mask) >> BUCKET_LOG]++;
        __builtin_prefetch(values + at + 32);
        dst[t] = values[at];
    }
    if (p->g->fn)
        p->g->fn(p->g->ctx, c, dst, n, worker);
}

void slora_gather_run(const struct slora_gather *g, void *scratch, int n_threads)
{
    int nw = n_threads < 1 ? 1 : n_threads;
    struct plan p = {.g = g, .n = g->perm->n, .chunk = (size_t)1 << g->chunk_log};
    p.mask = g->src_len < p.n ? (uint32_t)(g->src_len - 1) : 0xFFFFFFFFu;
    p.n_chunks = (size_t)((p.n + p.chunk - 1) / p.chunk);
    p.n_buckets = (size_t)((g->src_len + ((uint64_t)1 << BUCKET_LOG) - 1) >> BUCKET_LOG);
    char *s = scratch;
    p.idx = (uint32_t *)s;
    s += round8(p.n * 4);
    p.slot = (uint16_t *)s;
    s += round8(p.n * 2);
    p.pos = (uint32_t *)s;
    s += round8(p.n_chunks * p.n_buckets * 4);
    p.cursors = (uint32_t *)s;
    s += (size_t)nw * round8(p.n_buckets * 4);
    p.blocks = (float *)s;

    slora_parallel_run(n_threads, p.n_chunks, index_task, &p);
    /* counts -> start positions: bucket-major, chunk order inside a bucket */
    uint64_t at = 0;
    for (size_t b = 0; b < p.n_buckets; b++) {
        for (size_t c = 0; c < p.n_chunks; c++) {
            uint32_t k = p.pos[c * p.n_buckets + b];
            p.pos[c * p.n_buckets + b] = (uint32_t)at;
            at += k;
        }
    }
    slora_parallel_run(n_threads, p.n_chunks, scatter_task, &p);
    slora_parallel_run(n_threads, p.n_buckets, bucket_task, &p);
    slora_parallel_run(n_threads, p.n_chunks, collect_task, &p);
}
