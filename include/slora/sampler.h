/* sampler.h - next-token choice from logits: greedy (temperature 0: argmax,
 * lowest id wins ties), temperature, top-k, top-p, seeded xorshift RNG.
 * A sampler belongs to one sequence; scratch is allocated at creation.
 */
#ifndef SLORA_SAMPLER_H
#define SLORA_SAMPLER_H

#include <stdint.h>

struct slora_sampler_params {
    float temperature; /* 0 = greedy (top_p, top_k, seed unused) */
    float top_p;       /* nucleus mass; <= 0 or >= 1 = off */
    int top_k;         /* keep the k largest logits; 0 or >= vocab = off */
    uint64_t seed;     /* xorshift state as run.c; 0 is mapped to a fixed non-zero state */
};

struct slora_sampler;
/* NULL on ENOMEM; params are copied. */
struct slora_sampler *slora_sampler_new(int vocab_size, const struct slora_sampler_params *p);
void slora_sampler_free(struct slora_sampler *s);
/* Choose a token: logits / temperature, top-k, softmax, one coin, then
 * multinomial or run.c's nucleus sampling. logits (vocab) are modified in
 * place. Same params and same logits sequence -> same tokens. */
int slora_sampler_sample(struct slora_sampler *s, float *logits);

#endif
