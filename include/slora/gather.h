/* gather.h - dst[j] = src[p(j) & mask] for a Feistel permutation p of
 * [0, n): the random reads of the fastfood permutation and the shuffle.
 *
 * Indices are computed a chunk at a time with the vector Feistel kernel,
 * then read with software prefetches a few dozen elements ahead, so
 * many cache misses are in flight at once instead of one. (A radix
 * partition by source block was measured slower on the 2-core build host:
 * its three extra streaming passes cost more than the misses they avoid;
 * see bench/results/delta.md.) Values are copied, never combined, so the
 * result is the same bits at any thread count. Any thread may call it.
 */
#ifndef SLORA_GATHER_H
#define SLORA_GATHER_H

#include <slora/perm.h>

#include <stddef.h>
#include <stdint.h>

/* Called once per chunk after its dst values are in place (for fusing the
 * next step while the chunk is in cache). */
typedef void (*slora_gather_chunk_fn)(void *ctx, size_t chunk, float *dst, size_t count,
                                      int worker);

struct slora_gather {
    const struct slora_perm *perm; /* n = perm->n <= 2^32 */
    const float *src;              /* (mask + 1) or (n) */
    uint32_t mask;                 /* src index = p(j) & mask (all ones: p(j)) */
    float *dst;                    /* (n) */
    int chunk_log;                 /* chunks of 2^chunk_log indices */
    slora_gather_chunk_fn fn;      /* or NULL: dst is written with streaming stores */
    void *ctx;
};

/* Bytes of scratch for chunks of 2^chunk_log on n_threads workers. */
size_t slora_gather_scratch_bytes(int chunk_log, int n_threads);

/* Run the gather; scratch as sized above (4-byte aligned). */
void slora_gather_run(const struct slora_gather *g, void *scratch, int n_threads);

#endif
