/* generate.h - the per-sequence generation state machine shared by the CLI
 * and the batching engine. It never runs the model: the caller feeds tokens
 * to the forward pass and hands the resulting logits to slora_gen_accept().
 *
 * Driving loop (positions are 0-based):
 *
 *   slora_gen_new(tok, prompt, n_prompt, &params, &g);
 *   if (!slora_gen_is_done(g)) {
 *       forward prompt[0..n_prompt) at positions 0..n_prompt-1 -> logits of the last
 *       for (;;) {
 *           slora_gen_accept(g, logits, &step);   emit step.text[0..step.text_len)
 *           if (slora_gen_is_done(g)) break;
 *           forward slora_gen_last_token(g) at slora_gen_n_tokens(g) - 1 -> logits
 *       }
 *   }
 *   slora_gen_finish_name(slora_gen_finish(g)) -> "stop" | "length"
 *
 * Rules applied by accept(), in this order:
 * - the sampled token is appended (and counted in n_generated, including a
 *   final end-of-generation token);
 * - an end-of-generation token (slora_tokenizer_is_eog: EOS, EOT, ...) or
 *   BOS finishes with "stop"; it is never rendered;
 * - otherwise its piece (slora_tokenizer_decode(prev, token)) is appended to
 *   the text; if a stop string now occurs, the earliest occurrence ends the
 *   text (exclusive) and finishes with "stop";
 * - n_generated == max_tokens or n_prompt + n_generated == seq_len finishes
 *   with "length".
 * Text: the concatenation of every step.text is valid UTF-8 and equals the
 * decoded continuation with each ill-formed byte sequence (maximal subpart)
 * replaced by U+FFFD, cut at the first stop string. Text is emitted only at
 * character boundaries; an incomplete character is held until it completes
 * (at the end it becomes U+FFFD), and text that could still be the start of
 * a stop string is held until it cannot (at the end it is emitted).
 *
 * Logprobs (params.logprobs >= 0): log-softmax of the raw logits (before
 * temperature, top-k, top-p) for the chosen token and the top `logprobs`
 * alternatives, by logprob descending, lowest id first on ties.
 *
 * Ownership: the generator copies the prompt, stop strings and parameters;
 * the tokenizer is borrowed and must outlive it. One sequence, one thread at
 * a time; different generators are independent.
 */
#ifndef SLORA_GENERATE_H
#define SLORA_GENERATE_H

#include <slora/sampler.h>
#include <slora/tokenizer.h>

#include <stdbool.h>
#include <stddef.h>

#define SLORA_GEN_MAX_LOGPROBS 5

enum slora_finish {
    SLORA_FINISH_NONE,   /* still generating */
    SLORA_FINISH_STOP,   /* end of generation, BOS or a stop string */
    SLORA_FINISH_LENGTH, /* max_tokens or seq_len */
};

struct slora_gen_params {
    int max_tokens;          /* >= 0; 0 finishes at creation */
    int seq_len;             /* model context; prompt + generated <= seq_len */
    const char *const *stop; /* n_stop non-empty NUL-terminated strings */
    int n_stop;
    struct slora_sampler_params sampler;
    int logprobs; /* -1 off, else 0..SLORA_GEN_MAX_LOGPROBS alternatives */
};

struct slora_gen_step {
    int token;        /* sampled id */
    const char *text; /* newly emittable text; borrowed until the next call */
    size_t text_len;
    float logprob; /* of token; when logprobs >= 0 */
    int n_top;     /* == params.logprobs when on, else 0 */
    int top_id[SLORA_GEN_MAX_LOGPROBS];
    float top_logprob[SLORA_GEN_MAX_LOGPROBS];
};

struct slora_gen;

/* Returns 0, SLORA_ENOMEM, SLORA_EINVAL (empty prompt, empty stop string,
 * prompt id outside the vocabulary) or SLORA_ERANGE (n_prompt >= seq_len,
 * max_tokens < 0, temperature < 0 or not finite, top_p outside [0, 1],
 * top_k < 0, logprobs outside [-1, 5]). */
int slora_gen_new(const struct slora_tokenizer *tok, const int *prompt, int n_prompt,
                  const struct slora_gen_params *p, struct slora_gen **out);
void slora_gen_free(struct slora_gen *g);

/* Sample from logits (vocab floats; modified in place) after the last token
 * and apply the rules above. Returns 0, or SLORA_EINVAL when already done. */
int slora_gen_accept(struct slora_gen *g, float *logits, struct slora_gen_step *step);

/* What accept() reports with logprobs on, for any logits (vocab n), e.g.
 * prompt positions for echo: sets step->logprob of token, step->n_top =
 * n_top (0..SLORA_GEN_MAX_LOGPROBS) and the top ids/logprobs. */
void slora_gen_logprobs(const float *logits, int n, int token, int n_top,
                        struct slora_gen_step *step);

bool slora_gen_is_done(const struct slora_gen *g);
enum slora_finish slora_gen_finish(const struct slora_gen *g);
/* "stop", "length", or NULL for SLORA_FINISH_NONE. */
const char *slora_gen_finish_name(enum slora_finish f);

/* Prompt followed by the generated tokens; borrowed until the next accept. */
const int *slora_gen_tokens(const struct slora_gen *g, int *n_tokens);
int slora_gen_n_tokens(const struct slora_gen *g);
int slora_gen_last_token(const struct slora_gen *g);
int slora_gen_n_prompt(const struct slora_gen *g);
int slora_gen_n_generated(const struct slora_gen *g);

#endif
