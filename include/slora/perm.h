/* perm.h - spec section 6: deterministic randomness (rnd) and the keyed
 * Feistel permutation perm(key, n) with cycle walking.
 *
 * struct slora_perm holds the derived constants of one (key, n) so blocks
 * of indices can be permuted with the vector kernel. Pure functions; any
 * thread may call them.
 */
#ifndef SLORA_PERM_H
#define SLORA_PERM_H

#include <stddef.h>
#include <stdint.h>

#define SLORA_GAMMA 0x9E3779B97F4A7C15ull

/* rnd(seed, tag, j) = mix64(mix64(seed ^ mix64(tag + GAMMA)) + (j + 1) * GAMMA) */
uint64_t slora_rnd(uint64_t seed, uint64_t tag, uint64_t j);
uint64_t slora_mix64(uint64_t z);

/* The murmur3 32-bit finalizer: the Feistel round function (scalar form,
 * shared by perm.c and the kernels). */
static inline uint32_t slora_fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

/* perm(key, n)(i): a bijection of [0, n) for n >= 1. */
uint64_t slora_perm(uint64_t key, uint64_t n, uint64_t i);

struct slora_perm {
    uint64_t n;     /* domain size, >= 1 */
    int h;          /* Feistel half width in bits (0 when n == 1) */
    uint32_t rk[4]; /* round keys: low 32 bits of rnd(key, 6, r) */
};

void slora_perm_init(struct slora_perm *p, uint64_t key, uint64_t n);
uint64_t slora_perm_apply(const struct slora_perm *p, uint64_t i);
/* out[t] = perm(i0 + t) for t < count; needs n <= 2^32 and i0 + count <= n. */
void slora_perm_block(const struct slora_perm *p, uint64_t i0, size_t count, uint32_t *out);

#endif
