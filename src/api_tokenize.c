/* api_tokenize.c - the endpoints that read a prompt and sample nothing:
 *   POST /v1/tokenize    text, or chat messages rendered by the model's
 *                        chat template (vLLM's convention) -> token ids
 *   POST /v1/detokenize  token ids -> text
 *   POST /v1/logits      exact logits of a prompt (last or all positions)
 * Parsing, tokenizing and every JSON answer run on API workers; the
 * engine thread only copies logits rows out. */
#include "api_chat.h"
#include "api_job.h"

#include <slora/engine.h>
#include <slora/error.h>
#include <slora/model.h>
#include <slora/tokenizer.h>

#include <inttypes.h>
#include <stdlib.h>

/* ---- tokenize, detokenize -------------------------------------------------- */

/* {"tokens": [ids]} into j->out. */
static int reply_tokens(struct slora__api_job *j, const int *ids, int n)
{
    struct slora__api_buf *b = &j->out;
    buf_lit(b, "{\"tokens\":[");
    for (int i = 0; i < n; i++)
        buf_printf(b, i ? ",%d" : "%d", ids[i]);
    buf_lit(b, "]}");
    return 0;
}

/* `prompt` (encoded as completions do, add_bos overriding the file) or
 * `messages` (rendered as chat does; add_generation_prompt, add_special
 * and add_bos as vLLM and llama.cpp name them). */
static int prepare_tokenize(struct slora__api_job *j, json_t *req)
{
    int seq_len = j->model->cfg.seq_len, err;
    if (json_object_get(req, "messages")) {
        if (json_object_get(req, "prompt"))
            return slora__api_fail(&j->d, SLORA_EINVAL,
                                   "give either 'prompt' or 'messages', not both");
        struct slora__api_chat_opts o = {.add_generation_prompt = true, .add_special = true};
        bool add_bos = false;
        if ((err = slora__api_get_bool(&j->d, req, "add_generation_prompt",
                                       &o.add_generation_prompt)) ||
            (err = slora__api_get_bool(&j->d, req, "add_special", &o.add_special)) ||
            (err = slora__api_get_bool(&j->d, req, "add_bos", &add_bos)))
            return err;
        o.bos = slora__api_has(req, "add_bos") ? (add_bos ? 1 : 0) : -1;
        if ((err = slora__api_chat_prompt(j, req, &o)))
            return err;
        return reply_tokens(j, j->prompt, j->n_prompt);
    }
    json_t *v = json_object_get(req, "prompt");
    bool bos = slora_tokenizer_add_bos(j->tok);
    if ((err = slora__api_get_bool(&j->d, req, "add_bos", &bos)))
        return err;
    if (!json_is_string(v)) /* (the body parser already refused strings holding NUL) */
        return slora__api_fail(&j->d, SLORA_EINVAL, "'prompt' must be a string");
    if ((err = slora__api_job_encode(j, "'prompt'", json_string_value(v), json_string_length(v),
                                     bos ? SLORA_TOK_ADD_BOS : 0, seq_len, &j->prompt,
                                     &j->n_prompt)))
        return err;
    return reply_tokens(j, j->prompt, j->n_prompt);
}

static int prepare_detokenize(struct slora__api_job *j, json_t *req)
{
    json_t *v = json_object_get(req, "tokens");
    int vocab = j->model->cfg.shape.vocab_size;
    if (!json_is_array(v))
        return slora__api_fail(&j->d, SLORA_EINVAL, "'tokens' must be an array of token ids");
    size_t n = json_array_size(v);
    int *ids = malloc((n ? n : 1) * sizeof(int));
    if (!ids)
        return slora__api_fail(&j->d, SLORA_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(v, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) >= vocab) {
            free(ids);
            return slora__api_fail(&j->d, SLORA_EINVAL, "token %zu must be an integer in [0, %d)",
                                   i, vocab);
        }
        ids[i] = (int)json_integer_value(t);
    }
    size_t len;
    char *text = slora_tokenizer_render(j->tok, -1, ids, (int)n, &len);
    free(ids);
    if (!text)
        return slora__api_fail(&j->d, SLORA_ENOMEM, "out of memory");
    buf_lit(&j->out, "{\"text\":");
    buf_str(&j->out, text, len);
    buf_lit(&j->out, "}");
    free(text);
    return 0;
}

static const struct slora__api_endpoint tokenize = {
    .size = sizeof(struct slora__api_job),
    .prepare = prepare_tokenize,
};

static const struct slora__api_endpoint detokenize = {
    .size = sizeof(struct slora__api_job),
    .prepare = prepare_detokenize,
};

void slora__api_tokenize_handler(struct slora_api_call *c)
{
    slora__api_job_start(c, &tokenize, "tok");
}

void slora__api_detokenize_handler(struct slora_api_call *c)
{
    slora__api_job_start(c, &detokenize, "tok");
}

/* ---- logits ---------------------------------------------------------------- */

struct logits {
    struct slora__api_job job;
    bool all_positions; /* every prompt position, else the last */
    float *rows;        /* (rows, vocab), filled by the engine thread */
    int n_rows;
};

static int prepare_logits(struct slora__api_job *j, json_t *req)
{
    struct logits *l = (struct logits *)j;
    int err;
    if ((err = slora__api_job_resolve_model(j, req)) || (err = slora__api_job_prompt(j, req, true)))
        return err;
    json_t *pos = json_object_get(req, "positions");
    if (pos && !json_is_null(pos)) {
        if (!json_is_string(pos) ||
            (strcmp(json_string_value(pos), "last") && strcmp(json_string_value(pos), "all")))
            return slora__api_fail(&j->d, SLORA_EINVAL, "'positions' must be \"last\" or \"all\"");
        l->all_positions = !strcmp(json_string_value(pos), "all");
    }
    size_t rows = l->all_positions ? (size_t)j->n_prompt : 1;
    size_t vocab = (size_t)j->model->cfg.shape.vocab_size;
    /* Every float takes at least 2 bytes ("0,"): refuse what cannot fit. */
    if (rows * vocab * 2 > (size_t)j->max_logits_bytes)
        return slora__api_fail(&j->d, SLORA_EINVAL,
                               "%zu x %zu logits exceed max_logits_bytes (%" PRId64 "); ask for "
                               "\"positions\": \"last\" or a shorter prompt",
                               rows, vocab, j->max_logits_bytes);
    if (!(l->rows = malloc(rows * vocab * sizeof(float))))
        return slora__api_fail(&j->d, SLORA_ENOMEM, "out of memory");
    return 0;
}

static int logits_step(void *arg, float *logits, int pos, bool *stop)
{
    struct logits *l = arg;
    size_t vocab = (size_t)l->job.model->cfg.shape.vocab_size;
    if (l->all_positions || pos == l->job.n_prompt - 1)
        memcpy(l->rows + (size_t)l->n_rows++ * vocab, logits, vocab * sizeof(float));
    *stop = false;
    return -1;
}

/* Worker: the JSON of the rows the engine handed back (up to
 * max_logits_bytes of text: never on the engine thread, which would stall
 * every sequence of the batch). */
static void logits_format(void *arg)
{
    struct logits *l = arg;
    struct slora__api_job *j = &l->job;
    int vocab = j->model->cfg.shape.vocab_size;
    struct slora__api_buf *b = &j->out;
    buf_lit(b, "{\"model\":");
    slora__api_buf_json(b, json_string(j->model_name));
    buf_lit(b, ",\"adapter_version\":");
    slora__api_buf_json(b, j->entry ? json_string(j->entry->version) : json_null());
    if (!b->oom && j->mix.n && slora__api_mix_json(&j->mix, &b->b))
        b->oom = true;
    buf_lit(b, ",\"tokens\":[");
    for (int i = 0; i < j->n_prompt; i++)
        buf_printf(b, i ? ",%d" : "%d", j->prompt[i]);
    buf_lit(b, "],\"logits\":[");
    /* stop once past the limit: the reply is refused, and its size (up
     * to ~16 bytes per float) must not be built whole first */
    for (int r = 0; r < l->n_rows && !b->oom && b->b.len <= (size_t)j->max_logits_bytes; r++) {
        buf_add(b, r ? ",[" : "[", r ? 2 : 1);
        const float *row = l->rows + (size_t)r * vocab;
        for (int v = 0; v < vocab; v++)
            buf_printf(b, v ? ",%.9g" : "%.9g", row[v]);
        buf_lit(b, "]");
    }
    buf_lit(b, "]}");
}

/* Loop: send what logits_format built. */
static void logits_formatted(void *arg)
{
    struct slora__api_job *j = arg;
    struct slora__api_buf b = j->out;
    j->out = (struct slora__api_buf){0};
    if (b.oom) {
        free(b.b.p);
        slora_api_call_error(j->call, SLORA_ENOMEM, NULL);
    } else if (b.b.len > (size_t)j->max_logits_bytes) {
        free(b.b.p);
        slora_api_call_error(j->call, SLORA_EINVAL,
                             "the logits response would be over max_logits_bytes (%" PRId64
                             " bytes); ask for \"positions\": \"last\" or a shorter prompt",
                             j->max_logits_bytes);
    } else {
        slora_api_call_respond(j->call, 200, "application/json", b.b.p, b.b.len);
    }
}

static void logits_done(void *arg, const struct slora_engine_result *r)
{
    struct slora__api_job *j = arg;
    if (r->err) {
        slora_api_call_error(j->call, r->err, "%s", r->diag);
        return;
    }
    int err = slora_api_call_queue_work(j->call, logits_format, logits_formatted, j);
    if (err)
        slora_api_call_error(j->call, err, "no worker available to format the logits");
}

static void run_logits(struct slora__api_job *j)
{
    struct logits *l = (struct logits *)j;
    struct slora_engine_job ej = {
        .all_logits = l->all_positions,
        .step = logits_step,
        .done = logits_done,
    };
    slora__api_job_submit(j, &ej);
}

static void release_logits(struct slora__api_job *j)
{
    free(((struct logits *)j)->rows);
}

static const struct slora__api_endpoint logits = {
    .size = sizeof(struct logits),
    .needs_engine = true,
    .prepare = prepare_logits,
    .run = run_logits,
    .release = release_logits,
};

void slora__api_logits_handler(struct slora_api_call *c)
{
    slora__api_job_start(c, &logits, "logits");
}
