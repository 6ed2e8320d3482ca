/* generate.c - per-sequence generation state machine (see generate.h).
 *
 * Text flows raw piece bytes -> `tail` (an incomplete UTF-8 character, at
 * most 3 bytes) -> `held` (well-formed text not yet emitted: a possible stop
 * string prefix) -> `emit` (returned to the caller). Every buffer is sized at
 * creation from the longest piece and stop string, so accept() never
 * allocates and cannot fail once the generator exists.
 */
#include <slora/error.h>
#include <slora/generate.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct slora_gen {
    const struct slora_tokenizer *tok; /* borrowed */
    struct slora_sampler *sampler;
    int vocab_size;
    int n_prompt;
    int n_tokens;
    int max_tokens;
    int seq_len;
    int logprobs;
    enum slora_finish finish;
    int *tokens;      /* (n_prompt + room for every token that may be generated) */
    char **stop;      /* (n_stop) owned copies */
    size_t *stop_len; /* (n_stop) */
    int n_stop;
    unsigned char *raw; /* (max piece + 3) tail followed by the new piece */
    size_t tail_len;    /* bytes of an incomplete character at raw[0..tail_len) */
    char *held;         /* (cap) */
    size_t held_len;
    char *emit; /* (cap) */
    size_t cap;
    float *raw_logits; /* (vocab) copy for logprobs, or NULL */
};

int slora_gen_new(const struct slora_tokenizer *tok, const int *prompt, int n_prompt,
                  const struct slora_gen_params *p, struct slora_gen **out)
{
    *out = NULL;
    int vocab = slora_tokenizer_vocab_size(tok);
    if (n_prompt < 1)
        return SLORA_EINVAL;
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= vocab)
            return SLORA_EINVAL;
    if (n_prompt >= p->seq_len || p->max_tokens < 0 || !(p->sampler.temperature >= 0.0f) ||
        !isfinite(p->sampler.temperature) || !(p->sampler.top_p >= 0.0f) ||
        p->sampler.top_p > 1.0f || p->sampler.top_k < 0 || p->logprobs < -1 ||
        p->logprobs > SLORA_GEN_MAX_LOGPROBS || p->n_stop < 0)
        return SLORA_ERANGE;
    size_t max_stop = 0;
    for (int i = 0; i < p->n_stop; i++) {
        size_t len = strlen(p->stop[i]);
        if (!len)
            return SLORA_EINVAL;
        if (len > max_stop)
            max_stop = len;
    }
    struct slora_gen *g = calloc(1, sizeof(*g));
    if (!g)
        return SLORA_ENOMEM;
    int room = p->seq_len - n_prompt;
    if (p->max_tokens < room)
        room = p->max_tokens;
    size_t piece = (size_t)slora_tokenizer_max_piece_len(tok);
    g->tok = tok;
    g->vocab_size = vocab;
    g->n_prompt = n_prompt;
    g->n_tokens = n_prompt;
    g->max_tokens = p->max_tokens;
    g->seq_len = p->seq_len;
    g->logprobs = p->logprobs;
    g->n_stop = p->n_stop;
    /* held keeps < max_stop bytes between steps; a step adds at most 3 output
     * bytes per raw byte (U+FFFD for each bad byte) plus the final U+FFFD;
     * a cut moved back to a character boundary keeps up to 3 bytes more */
    g->cap = max_stop + 3 * (piece + 3) + 8;
    g->sampler = slora_sampler_new(vocab, &p->sampler);
    g->tokens = malloc(((size_t)n_prompt + (size_t)room) * sizeof(*g->tokens));
    g->stop = calloc((size_t)p->n_stop + 1, sizeof(*g->stop));
    g->stop_len = calloc((size_t)p->n_stop + 1, sizeof(*g->stop_len));
    g->raw = malloc(piece + 3);
    g->held = malloc(g->cap);
    g->emit = malloc(g->cap);
    if (p->logprobs >= 0)
        g->raw_logits = malloc((size_t)vocab * sizeof(*g->raw_logits));
    if (!g->sampler || !g->tokens || !g->stop || !g->stop_len || !g->raw || !g->held || !g->emit ||
        (p->logprobs >= 0 && !g->raw_logits))
        goto err_free_gen;
    for (int i = 0; i < p->n_stop; i++) {
        g->stop_len[i] = strlen(p->stop[i]);
        g->stop[i] = malloc(g->stop_len[i] + 1);
        if (!g->stop[i])
            goto err_free_gen;
        memcpy(g->stop[i], p->stop[i], g->stop_len[i] + 1);
    }
    memcpy(g->tokens, prompt, (size_t)n_prompt * sizeof(*prompt));
    if (room == 0)
        g->finish = SLORA_FINISH_LENGTH;
    *out = g;
    return 0;
err_free_gen:
    slora_gen_free(g);
    return SLORA_ENOMEM;
}

void slora_gen_free(struct slora_gen *g)
{
    if (!g)
        return;
    slora_sampler_free(g->sampler);
    for (int i = 0; g->stop && i < g->n_stop; i++)
        free(g->stop[i]);
    free(g->stop);
    free(g->stop_len);
    free(g->tokens);
    free(g->raw);
    free(g->held);
    free(g->emit);
    free(g->raw_logits);
    free(g);
}

/* Move the complete characters of tail + piece into held. */
static void feed_bytes(struct slora_gen *g, const char *piece, size_t n)
{
    memcpy(g->raw + g->tail_len, piece, n);
    size_t len = g->tail_len + n, used;
    g->held_len +=
        slora_tokenizer_utf8_clean((const char *)g->raw, len, false, g->held + g->held_len, &used);
    g->tail_len = len - used;
    memmove(g->raw, g->raw + used, g->tail_len);
}

/* Cut held at the earliest stop string; true when one was found. */
static bool cut_at_stop(struct slora_gen *g)
{
    const char *first = NULL;
    for (int i = 0; i < g->n_stop; i++) {
        const char *at = memmem(g->held, g->held_len, g->stop[i], g->stop_len[i]);
        if (at && (!first || at < first))
            first = at;
    }
    if (first)
        g->held_len = (size_t)(first - g->held);
    return first != NULL;
}

/* Bytes at the end of held that could begin a stop string. */
static size_t stop_prefix_len(const struct slora_gen *g)
{
    size_t hold = 0;
    for (int i = 0; i < g->n_stop; i++) {
        size_t k = g->stop_len[i] - 1;
        if (k > g->held_len)
            k = g->held_len;
        for (; k > hold; k--) {
            if (!memcmp(g->held + g->held_len - k, g->stop[i], k)) {
                hold = k;
                break;
            }
        }
    }
    return hold;
}

/* Emit held[0..n) and keep the rest. */
static void emit_held(struct slora_gen *g, size_t n, struct slora_gen_step *step)
{
    memcpy(g->emit, g->held, n);
    memmove(g->held, g->held + n, g->held_len - n);
    g->held_len -= n;
    step->text = g->emit;
    step->text_len = n;
}

static void finish(struct slora_gen *g, enum slora_finish reason, struct slora_gen_step *step)
{
    size_t used;
    g->held_len += slora_tokenizer_utf8_clean((const char *)g->raw, g->tail_len, true,
                                              g->held + g->held_len, &used);
    g->tail_len = 0;
    g->finish = cut_at_stop(g) ? SLORA_FINISH_STOP : reason;
    emit_held(g, g->held_len, step);
}

/* log p_i = x_i - (max + log sum exp(x - max)), summed in double */
void slora_gen_logprobs(const float *logits, int n, int token, int n_top,
                        struct slora_gen_step *step)
{
    float max = logits[0];
    for (int i = 1; i < n; i++)
        if (logits[i] > max)
            max = logits[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += expf(logits[i] - max);
    double lse = max + log(sum);
    step->logprob = (float)(logits[token] - lse);
    step->n_top = 0;
    for (int i = 0; i < n; i++) {
        /* k: the slot i takes before moving up; a full list drops its last */
        int k = step->n_top;
        if (k == n_top) {
            if (k == 0 || !(logits[i] > logits[step->top_id[k - 1]]))
                continue;
            k--;
        } else {
            step->n_top++;
        }
        /* strict > keeps the lower id first on ties */
        while (k > 0 && logits[i] > logits[step->top_id[k - 1]]) {
            step->top_id[k] = step->top_id[k - 1];
            k--;
        }
        step->top_id[k] = i;
    }
    for (int k = 0; k < step->n_top; k++)
        step->top_logprob[k] = (float)(logits[step->top_id[k]] - lse);
}

int slora_gen_accept(struct slora_gen *g, float *logits, struct slora_gen_step *step)
{
    if (g->finish != SLORA_FINISH_NONE)
        return SLORA_EINVAL;
    /* the sampler scales logits in place: logprobs use a copy of the raw ones */
    if (g->logprobs >= 0)
        memcpy(g->raw_logits, logits, (size_t)g->vocab_size * sizeof(*logits));
    int token = slora_sampler_sample(g->sampler, logits);
    step->n_top = 0;
    step->logprob = 0.0f;
    if (g->logprobs >= 0)
        slora_gen_logprobs(g->raw_logits, g->vocab_size, token, g->logprobs, step);
    step->token = token;
    step->text = g->emit;
    step->text_len = 0;
    int prev = g->tokens[g->n_tokens - 1];
    g->tokens[g->n_tokens++] = token;
    int generated = g->n_tokens - g->n_prompt;
    if (slora_tokenizer_is_eog(g->tok, token) ||
        token == slora_tokenizer_special(g->tok, SLORA_TOK_SPECIAL_BOS)) {
        finish(g, SLORA_FINISH_STOP, step);
        return 0;
    }
    size_t n;
    const char *piece = slora_tokenizer_decode(g->tok, prev, token, &n);
    feed_bytes(g, piece, n);
    if (cut_at_stop(g)) {
        g->tail_len = 0;
        g->finish = SLORA_FINISH_STOP;
        emit_held(g, g->held_len, step);
        return 0;
    }
    if (generated == g->max_tokens || g->n_tokens == g->seq_len) {
        finish(g, SLORA_FINISH_LENGTH, step);
        return 0;
    }
    size_t keep = stop_prefix_len(g), out = g->held_len - keep;
    while (out > 0 && out < g->held_len && ((unsigned char)g->held[out] & 0xC0) == 0x80)
        out--;
    emit_held(g, out, step);
    return 0;
}

bool slora_gen_is_done(const struct slora_gen *g)
{
    return g->finish != SLORA_FINISH_NONE;
}

enum slora_finish slora_gen_finish(const struct slora_gen *g)
{
    return g->finish;
}

const char *slora_gen_finish_name(enum slora_finish f)
{
    switch (f) {
    case SLORA_FINISH_STOP:
        return "stop";
    case SLORA_FINISH_LENGTH:
        return "length";
    case SLORA_FINISH_NONE:
        break;
    }
    return NULL;
}

const int *slora_gen_tokens(const struct slora_gen *g, int *n_tokens)
{
    *n_tokens = g->n_tokens;
    return g->tokens;
}

int slora_gen_n_tokens(const struct slora_gen *g)
{
    return g->n_tokens;
}

int slora_gen_last_token(const struct slora_gen *g)
{
    return g->tokens[g->n_tokens - 1];
}

int slora_gen_n_prompt(const struct slora_gen *g)
{
    return g->n_prompt;
}

int slora_gen_n_generated(const struct slora_gen *g)
{
    return g->n_tokens - g->n_prompt;
}
