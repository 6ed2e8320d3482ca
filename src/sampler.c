/* sampler.c - next-token choice, mirroring karpathy/llama2.c run.c's sample():
 * logits / temperature, softmax, one xorshift coin per step, then multinomial
 * (top-p off) or nucleus sampling with run.c's cutoff (top-p on). Top-k (not
 * in run.c) keeps the k largest logits before the softmax.
 *
 * Orders are total so results never depend on qsort: candidates sort by
 * (probability desc, id asc), and argmax keeps the lowest id on ties.
 * A sampler is owned by one sequence and used by one thread at a time.
 */
#include <slora/sampler.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

struct prob_index {
    float prob;
    int id;
};

struct slora_sampler {
    int vocab_size;
    struct slora_sampler_params p;
    uint64_t rng;
    struct prob_index *cand; /* (vocab) scratch */
};

/* xorshift64* as run.c's random_u32 / random_f32. */
static uint32_t random_u32(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

static float random_f32(uint64_t *state)
{
    return (float)(random_u32(state) >> 8) / 16777216.0f;
}

struct slora_sampler *slora_sampler_new(int vocab_size, const struct slora_sampler_params *p)
{
    struct slora_sampler *s = malloc(sizeof(*s));
    if (!s)
        return NULL;
    s->vocab_size = vocab_size;
    s->p = *p;
    /* xorshift never leaves state 0; any other seed is used as run.c does */
    s->rng = p->seed ? p->seed : 0x9E3779B97F4A7C15ull;
    s->cand = malloc((size_t)vocab_size * sizeof(*s->cand));
    if (!s->cand) {
        free(s);
        return NULL;
    }
    return s;
}

void slora_sampler_free(struct slora_sampler *s)
{
    if (!s)
        return;
    free(s->cand);
    free(s);
}

static int argmax(const float *x, int n)
{
    int best = 0;
    float max = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] > max) {
            max = x[i];
            best = i;
        }
    }
    return best;
}

static int cmp_prob(const void *pa, const void *pb)
{
    const struct prob_index *a = pa, *b = pb;
    if (a->prob != b->prob)
        return a->prob > b->prob ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Heaps over candidates: with first_at_root the root is the candidate that
 * sorts first in cmp_prob order, otherwise the one that sorts last. */
static bool above(const struct prob_index *a, const struct prob_index *b, bool first_at_root)
{
    int c = cmp_prob(a, b);
    return first_at_root ? c < 0 : c > 0;
}

static void sift_down(struct prob_index *c, int n, int i, bool first_at_root)
{
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < n && above(&c[l], &c[m], first_at_root))
            m = l;
        if (l + 1 < n && above(&c[l + 1], &c[m], first_at_root))
            m = l + 1;
        if (m == i)
            return;
        struct prob_index t = c[i];
        c[i] = c[m];
        c[m] = t;
        i = m;
    }
}

static void heapify(struct prob_index *c, int n, bool first_at_root)
{
    for (int i = n / 2 - 1; i >= 0; i--)
        sift_down(c, n, i, first_at_root);
}

/* Move the k first candidates in cmp_prob order to c[0..k), sorted; returns
 * k. A heap of the best k seen so far: O(n log k). */
static int select_top(struct prob_index *c, int n, int k)
{
    heapify(c, k, false);
    for (int i = k; i < n; i++) {
        if (cmp_prob(&c[i], &c[0]) < 0) {
            c[0] = c[i];
            sift_down(c, k, 0, false);
        }
    }
    qsort(c, (size_t)k, sizeof(*c), cmp_prob);
    return k;
}

/* run.c softmax: subtract the max, expf, divide by the sum. */
static void softmax(struct prob_index *c, int n)
{
    float max = c[0].prob;
    for (int i = 1; i < n; i++)
        if (c[i].prob > max)
            max = c[i].prob;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        c[i].prob = expf(c[i].prob - max);
        sum += c[i].prob;
    }
    for (int i = 0; i < n; i++)
        c[i].prob /= sum;
}

/* run.c sample_mult: first candidate whose running cdf exceeds the coin. */
static int sample_mult(const struct prob_index *c, int n, float coin)
{
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += c[i].prob;
        if (coin < cdf)
            return c[i].id;
    }
    return c[n - 1].id;
}

/* run.c sample_topp: drop candidates below (1 - topp) / (n - 1) (they cannot
 * be in the nucleus), take them in descending order until the cumulative mass
 * exceeds topp, and sample within the kept mass. The order comes from
 * popping a heap, so only the nucleus is ever sorted; popped candidates
 * collect at the end of c, the k-th largest at c[n0 - 1 - k]. */
static int sample_topp(struct prob_index *c, int n, float topp, float coin)
{
    if (n == 1)
        return c[0].id;
    const float cutoff = (1.0f - topp) / (float)(n - 1);
    int n0 = 0;
    for (int i = 0; i < n; i++)
        if (c[i].prob >= cutoff)
            c[n0++] = c[i];
    heapify(c, n0, true);
    float cumulative = 0.0f;
    int taken = 0;
    for (int m = n0; m > 0;) {
        struct prob_index top = c[0];
        c[0] = c[--m];
        c[m] = top;
        sift_down(c, m, 0, true);
        cumulative += top.prob;
        taken++;
        if (cumulative > topp)
            break;
    }
    float r = coin * cumulative;
    float cdf = 0.0f;
    for (int k = 0; k < taken; k++) {
        cdf += c[n0 - 1 - k].prob;
        if (r < cdf)
            return c[n0 - 1 - k].id;
    }
    return c[n0 - taken].id;
}

int slora_sampler_sample(struct slora_sampler *s, float *logits)
{
    int n = s->vocab_size;
    if (s->p.temperature == 0.0f)
        return argmax(logits, n);
    int best = 0;
    float best_raw = logits[0];
    for (int i = 0; i < n; i++) {
        if (logits[i] > best_raw) {
            best = i;
            best_raw = logits[i];
        }
        logits[i] /= s->p.temperature;
        s->cand[i] = (struct prob_index){logits[i], i};
    }
    /* a temperature so small that logits overflow leaves no distribution
     * (inf - inf in the softmax): its limit is the argmax */
    if (isinf(logits[best]))
        return best;
    if (s->p.top_k > 0 && s->p.top_k < n)
        n = select_top(s->cand, n, s->p.top_k);
    softmax(s->cand, n);
    float coin = random_f32(&s->rng);
    if (s->p.top_p <= 0.0f || s->p.top_p >= 1.0f)
        return sample_mult(s->cand, n, coin);
    return sample_topp(s->cand, n, s->p.top_p, coin);
}
