/* perm.c - spec section 6 (see perm.h). The block form is the vector
 * Feistel kernel on consecutive indices; it equals slora_perm_apply
 * element by element. */
#include <slora/kernels.h>
#include <slora/perm.h>

uint64_t slora_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t slora_rnd(uint64_t seed, uint64_t tag, uint64_t j)
{
    return slora_mix64(slora_mix64(seed ^ slora_mix64(tag + SLORA_GAMMA)) + (j + 1) * SLORA_GAMMA);
}

void slora_perm_init(struct slora_perm *p, uint64_t key, uint64_t n)
{
    p->n = n;
    p->h = 0;
    for (int r = 0; r < 4; r++)
        p->rk[r] = (uint32_t)slora_rnd(key, 6, (uint64_t)r);
    if (n <= 1)
        return;
    int k = 0;
    while (k < 64 && ((uint64_t)1 << k) < n)
        k++;
    p->h = (k + 1) / 2 > 1 ? (k + 1) / 2 : 1;
}

static uint64_t feistel(const struct slora_perm *p, uint64_t x)
{
    uint64_t mask = ((uint64_t)1 << p->h) - 1;
    uint64_t l = x >> p->h, r = x & mask;
    for (int i = 0; i < 4; i++) {
        uint64_t t = l ^ (slora_fmix32((uint32_t)(r ^ p->rk[i])) & mask);
        l = r;
        r = t;
    }
    return (l << p->h) | r;
}

uint64_t slora_perm_apply(const struct slora_perm *p, uint64_t i)
{
    if (p->n <= 1)
        return 0;
    uint64_t y = feistel(p, i);
    while (y >= p->n)
        y = feistel(p, y);
    return y;
}

uint64_t slora_perm(uint64_t key, uint64_t n, uint64_t i)
{
    struct slora_perm p;
    slora_perm_init(&p, key, n);
    return slora_perm_apply(&p, i);
}

void slora_perm_block(const struct slora_perm *p, uint64_t i0, size_t count, uint32_t *out)
{
    if (p->n <= 1) {
        for (size_t t = 0; t < count; t++)
            out[t] = 0;
        return;
    }
    slora_kernels_feistel(out, i0, count, p->rk, p->h, p->n);
}
