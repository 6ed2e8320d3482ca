/* sampler.h - next-token choice from logits: greedy (temperature 0: argmax,
 * lowest id wins ties), temperature, top-k, top-p, seeded xorshift RNG.
 * A sampler belongs to one sequence; scratch is allocated at creation.
 */
#ifndef SLORA_SAMPLER_H
#define SLORA_SAMPLER_H

#include <stdint.h>

struct slora_sampler_params {
    float temperature; /* 0 = greedy */
    float top_p;       /* 1 = off */
    int top_k;         /* 0 = off */
    uint64_t seed;
};

struct slora_sampler;
struct slora_sampler *slora_sampler_new(int vocab_size, const struct slora_sampler_params *p);
void slora_sampler_free(struct slora_sampler *s);
/* Choose a token; logits (vocab) may be modified in place. */
int slora_sampler_sample(struct slora_sampler *s, float *logits);

#endif
