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
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static int cmp_prob(const void *pa, const void *pb)
{
    const struct prob_index *a = pa, *b = pb;
    if (a->prob != b->prob)
        return a->prob > b->prob ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Sift c[i] down the min-heap c[0..n) ordered by cmp_prob reversed: the
 * root is the candidate that sorts last. */
static void sift_down(struct prob_index *c, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < n && cmp_prob(&c[l], &c[m]) > 0)
            m = l;
        if (l + 1 < n && cmp_prob(&c[l + 1], &c[m]) > 0)
            m = l + 1;
        if (m == i)
            return;
        struct prob_index t = c[i];
        c[i] = c[m];
        c[m] = t;
        i = m;
    }
}

/* Move the k first candidates in cmp_prob order to c[0..k), sorted; returns
 * k. A heap of the best k seen so far: O(n log k). */
static int select_top(struct prob_index *c, int n, int k)
{
    for (int i = k / 2 - 1; i >= 0; i--)
        sift_down(c, k, i);
    for (int i = k; i < n; i++) {
        if (cmp_prob(&c[i], &c[0]) < 0) {
            c[0] = c[i];
            sift_down(c, k, 0);
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
 * be in the nucleus), sort, cut after the cumulative mass exceeds topp, and
 * sample within the kept mass. */
static int sample_topp(struct prob_index *c, int n, float topp, bool sorted, float coin)
{
    if (n == 1)
        return c[0].id;
    const float cutoff = (1.0f - topp) / (float)(n - 1);
    int n0 = 0;
    for (int i = 0; i < n; i++)
        if (c[i].prob >= cutoff)
            c[n0++] = c[i];
    if (!sorted)
        qsort(c, (size_t)n0, sizeof(*c), cmp_prob);
    float cumulative = 0.0f;
    int last = n0 - 1;
    for (int i = 0; i < n0; i++) {
        cumulative += c[i].prob;
        if (cumulative > topp) {
            last = i;
            break;
        }
    }
    float r = coin * cumulative;
    float cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += c[i].prob;
        if (r < cdf)
            return c[i].id;
    }
    return c[last].id;
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
    bool sorted = false;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        n = select_top(s->cand, n, s->p.top_k);
        sorted = true;
    }
    softmax(s->cand, n);
    float coin = random_f32(&s->rng);
    if (s->p.top_p <= 0.0f || s->p.top_p >= 1.0f)
        return sample_mult(s->cand, n, coin);
    return sample_topp(s->cand, n, s->p.top_p, sorted, coin);
}
