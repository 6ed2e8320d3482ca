/* gather.h - dst[j] = src[p(j) mod src_len] for a Feistel permutation p of
 * [0, n), made cache-friendly by radix partitioning.
 *
 * A random gather from a source larger than the caches costs a DRAM miss
 * per element. Instead: (1) compute p(j) for all j in chunks; (2) scatter
 * each j's source offset into the bucket of its 2^16-float source block
 * (bucket sizes are known exactly because p is a bijection); (3) per
 * bucket, read its source block once (it fits in L2) and write the values
 * in bucket order; (4) per chunk, read the values back in j order from the
 * buckets' cursors. Every pass is sequential or touches a few hundred
 * streams. Values are copied, never combined, so the result is the same
 * bits at any thread count. Any thread may call it on its own buffers.
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
    const float *src;              /* (src_len) */
    uint64_t src_len;              /* n, or a power of two dividing n */
    float *values;                 /* (n) bucket-ordered values; may be src when src_len == n */
    float *dst;                    /* (n) */
    int chunk_log;                 /* chunks of 2^chunk_log indices */
    slora_gather_chunk_fn fn;      /* or NULL */
    void *ctx;
};

/* Bytes of scratch for a gather of n indices from src_len with chunks of
 * 2^chunk_log on n_threads workers. */
size_t slora_gather_scratch_bytes(uint64_t n, uint64_t src_len, int chunk_log, int n_threads);

/* Run the gather; scratch as sized above (8-byte aligned). */
void slora_gather_run(const struct slora_gather *g, void *scratch, int n_threads);

/* Chunk size keeping the per-(chunk, bucket) table at most 2^12 rows. */
int slora_gather_chunk_log(uint64_t n);

#endif
