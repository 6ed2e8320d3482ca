/* api_completions.c - POST /v1/completions (OpenAI completions): a prompt
 * (text or token ids) continued by the engine; stream (SSE), echo,
 * logprobs in the completions format (tokens, token_logprobs,
 * top_logprobs, text_offset). Parsing and formatting run on API workers,
 * sampling on the engine thread (api_gen.h). */
#include "api_gen.h"

#include <slora/api_infer.h>
#include <slora/error.h>
#include <slora/tokenizer.h>

#include <stdlib.h>

struct completion {
    struct slora__api_gen g;
    json_t *lp_tokens;  /* logprobs: piece of each token */
    json_t *lp_values;  /* its logprob (null for the first prompt token) */
    json_t *lp_top;     /* {piece: logprob} of the top alternatives */
    json_t *lp_offsets; /* its byte offset in the text */
};

static json_t *piece_json(const struct slora_tokenizer *tok, int prev, int token)
{
    size_t len;
    char *s = slora_tokenizer_render(tok, prev, &token, 1, &len);
    json_t *v = s ? json_stringn(s, len) : NULL;
    free(s);
    return v ? v : json_string("");
}

/* Logprobs entry of one token; the first prompt token has no logprob.
 * Advances text_offset by the token's piece. */
static void logprob(struct slora__api_gen *g, const struct slora__api_ev *ev)
{
    struct completion *c = (struct completion *)g;
    const struct slora_tokenizer *tok = g->job.tok;
    json_t *piece = piece_json(tok, ev->prev, ev->token);
    size_t piece_len = json_string_length(piece);
    json_array_append_new(c->lp_tokens, piece);
    json_array_append_new(c->lp_values, ev->has_logprob ? json_real(ev->logprob) : json_null());
    json_t *top = ev->has_logprob ? json_object() : NULL;
    for (int k = 0; top && k < ev->n_top; k++) {
        size_t len;
        char *s = slora_tokenizer_render(tok, ev->prev, &ev->top_id[k], 1, &len);
        if (s && !json_object_getn(top, s, len))
            json_object_setn_new(top, s, len, json_real(ev->top_logprob[k]));
        free(s);
    }
    json_array_append_new(c->lp_top, top ? top : json_null());
    json_array_append_new(c->lp_offsets, json_integer((json_int_t)g->text_offset));
    g->text_offset += piece_len;
}

/* Logprobs of the tokens since the last chunk (stream) or of all; null if
 * out of memory. */
static json_t *take_logprobs(struct completion *c)
{
    json_t *lp = json_pack("{sOsOsOsO}", "tokens", c->lp_tokens, "token_logprobs", c->lp_values,
                           "top_logprobs", c->lp_top, "text_offset", c->lp_offsets);
    if (c->g.s.stream) {
        json_t **arrays[] = {&c->lp_tokens, &c->lp_values, &c->lp_top, &c->lp_offsets};
        for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
            json_decref(*arrays[i]);
            *arrays[i] = json_array();
        }
    }
    return lp ? lp : json_null();
}

/* {text, index, finish_reason (null while streaming), logprobs (null when
 * not asked for)}: the same object in chunks and the whole response. */
static void choice(struct slora__api_gen *g, struct slora__api_buf *b, enum slora__api_choice kind,
                   const char *text, size_t len, const char *finish)
{
    (void)kind;
    buf_lit(b, "{\"text\":");
    buf_str(b, text, len);
    buf_lit(b, ",\"index\":0,\"finish_reason\":");
    if (finish)
        buf_printf(b, "\"%s\"", finish);
    else
        buf_lit(b, "null");
    buf_lit(b, ",\"logprobs\":");
    if (g->s.logprobs < 0)
        buf_lit(b, "null");
    else
        slora__api_buf_json(b, take_logprobs((struct completion *)g));
    buf_lit(b, "}");
}

static const struct slora__api_gen_ops ops = {
    .object = "text_completion",
    .chunk_object = "text_completion",
    .logprob = logprob,
    .choice = choice,
};

static int prepare(struct slora__api_job *j, json_t *req)
{
    struct completion *c = (struct completion *)j;
    int err;
    if ((err = slora__api_sampling_parse(&j->d, req, SLORA__API_COMPLETIONS, &c->g.s)) ||
        (err = slora__api_job_resolve_model(j, req)) ||
        (err = slora__api_job_prompt(j, req, false)))
        return err;
    if (c->g.s.logprobs >= 0 && (!(c->lp_tokens = json_array()) || !(c->lp_values = json_array()) ||
                                 !(c->lp_top = json_array()) || !(c->lp_offsets = json_array())))
        return slora__api_fail(&j->d, SLORA_ENOMEM, "out of memory");
    return slora__api_gen_prepare(&c->g, &ops);
}

static void release(struct slora__api_job *j)
{
    struct completion *c = (struct completion *)j;
    slora__api_gen_release(&c->g);
    json_decref(c->lp_tokens);
    json_decref(c->lp_values);
    json_decref(c->lp_top);
    json_decref(c->lp_offsets);
}

static const struct slora__api_endpoint endpoint = {
    .size = sizeof(struct completion),
    .needs_engine = true,
    .prepare = prepare,
    .run = slora__api_gen_run,
    .release = release,
};

void slora__api_completions_handler(struct slora_api_call *c)
{
    slora__api_job_start(c, &endpoint, "cmpl");
}
