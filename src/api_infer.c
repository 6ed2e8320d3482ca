/* api_infer.c - inference endpoints over the engine (see api_infer.h).
 *
 * Request flow: the handler (loop thread) takes the body and the config
 * limits into a job attached to the call (freed with it, on the loop
 * thread), then a worker parses and validates the JSON, resolves the model
 * through the registry (another tenant's adapter is 404, like an unknown
 * one), tokenizes and prepares the generator; back on the loop the job is
 * submitted to the engine (queue full: 503 + Retry-After; tenant limit:
 * 429) and a client disconnect cancels it. The engine thread then drives
 * the job's step callback and completes the call from its done callback;
 * completing is always the last thing that touches the job, because the
 * loop may free it right after.
 */
#include "api_mix.h"
#include "util/buf.h"

#include <slora/api_infer.h>
#include <slora/auth.h>
#include <slora/cache.h>
#include <slora/config.h>
#include <slora/engine.h>
#include <slora/error.h>
#include <slora/generate.h>
#include <slora/jsonscan.h>
#include <slora/log.h>
#include <slora/model.h>
#include <slora/registry.h>
#include <slora/tokenizer.h>

#include <jansson.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MSG_LEN 512
#define MAX_STOP 16
#define DEFAULT_MAX_TOKENS 16

/* ---- growable text buffer ------------------------------------------------ */

/* util/buf with a sticky out-of-memory flag, so a response is built without
 * checking every append and the flag is tested once at the end. */
struct buf {
    struct slora__buf b;
    bool oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (!b->oom && slora__buf_add(&b->b, s, n))
        b->oom = true;
}

/* Append a string literal. */
#define buf_lit(b, lit) buf_add((b), (lit), sizeof(lit) - 1)

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (slora__buf_vprintf(&b->b, fmt, ap))
        b->oom = true;
    va_end(ap);
}

/* Append a JSON value in compact form; steals the reference. */
static void buf_json(struct buf *b, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (!s) {
        b->oom = true;
        return;
    }
    buf_add(b, s, strlen(s));
    free(s);
}

/* ---- the job ------------------------------------------------------------- */

enum job_kind { JOB_COMPLETION, JOB_LOGITS, JOB_TOKENIZE, JOB_DETOKENIZE };

struct job {
    enum job_kind kind;
    struct slora_api_call *call;
    struct slora_engine *engine;
    const struct slora_model *model;
    const struct slora_tokenizer *tok;
    struct slora_registry *registry;
    const char *model_id;
    struct slora_principal principal;
    int64_t max_tokens_cap;
    int64_t max_logits_bytes;
    struct slora_jsonscan_limits json_lim;
    void *body;                   /* (body_len) request JSON */
    size_t body_len;

    /* prepared on the worker */
    int err;                      /* 0, or answer this on the loop */
    char msg[MSG_LEN];
    json_t *reply;                /* tokenize/detokenize answer */
    char *model_name;             /* as requested */
    char tenant[SLORA_NAME_MAX + 1]; /* fairness and token counters */
    struct slora_registry_entry *entry; /* the adapter named in `model`, or NULL */
    struct slora__api_mix mix;    /* `adapters` (then `model` is the base) */
    int *prompt;                  /* (n_prompt) */
    int n_prompt;
    struct slora_gen *gen;
    char **stop;                  /* (n_stop) */
    int n_stop;
    bool stream;
    bool stream_begun;            /* SSE headers sent (at the first piece) */
    bool echo;
    int logprobs;                 /* -1 off */
    bool all_positions;           /* logits: every prompt position */

    /* filled by the engine thread */
    uint64_t ticket;
    char id[40];
    int64_t created;
    struct buf head;              /* completion: `{"id":...,"model":...,"choices":[` (worker) */
    struct buf text;              /* completion text so far (non-stream) */
    json_t *lp_tokens;            /* logprobs: piece of each token */
    json_t *lp_values;            /* its logprob (null for the first prompt token) */
    json_t *lp_top;               /* {piece: logprob} of the top alternatives */
    json_t *lp_offsets;           /* its byte offset in the text */
    size_t text_offset;           /* bytes of text before the next token */
    float *rows;                  /* logits: (rows, vocab) */
    int n_rows;
    struct buf json;              /* logits: the response, built on a worker */
};

static void job_free(void *p)
{
    struct job *j = p;
    free(j->body);
    json_decref(j->reply);
    free(j->model_name);
    slora_registry_entry_unref(j->entry);
    slora__api_mix_clear(&j->mix);
    free(j->prompt);
    slora_gen_free(j->gen);
    for (int i = 0; i < j->n_stop; i++)
        free(j->stop[i]);
    free(j->stop);
    free(j->text.b.p);
    free(j->head.b.p);
    json_decref(j->lp_tokens);
    json_decref(j->lp_values);
    json_decref(j->lp_top);
    json_decref(j->lp_offsets);
    free(j->rows);
    free(j->json.b.p);
    free(j);
}

static int fail(struct job *j, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct job *j, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->msg, sizeof(j->msg), fmt, ap);
    va_end(ap);
    j->err = err;
    return err;
}

/* ---- request parsing (worker) ------------------------------------------- */

static int parse_body(struct job *j, json_t **out)
{
    json_t *req;
    int err = slora_jsonscan_load(j->body, j->body_len, &j->json_lim, &req, j->msg, sizeof(j->msg));
    if (err) {
        j->err = err;
        return err;
    }
    if (!json_is_object(req)) {
        json_decref(req);
        return fail(j, SLORA_EINVAL, "the request body must be a JSON object");
    }
    *out = req;
    return 0;
}

/* Optional integer in [lo, hi]; absent or null leaves *out. */
static int get_int(struct job *j, json_t *req, const char *key, int64_t lo, int64_t hi,
                   int64_t *out)
{
    json_t *v = json_object_get(req, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fail(j, SLORA_EINVAL, "'%s' must be an integer in [%" PRId64 ", %" PRId64 "]", key,
                    lo, hi);
    *out = json_integer_value(v);
    return 0;
}

static int get_number(struct job *j, json_t *req, const char *key, double lo, double hi,
                      double *out)
{
    json_t *v = json_object_get(req, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi))
        return fail(j, SLORA_EINVAL, "'%s' must be a number in [%g, %g]", key, lo, hi);
    *out = json_number_value(v);
    return 0;
}

static int get_bool(struct job *j, json_t *req, const char *key, bool *out)
{
    json_t *v = json_object_get(req, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return fail(j, SLORA_EINVAL, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* `adapters` with `model` the base id: the mix. Fairness and counters go
 * to the caller's tenant (the admin's: the first adapter's). */
static int resolve_mix(struct job *j, json_t *v)
{
    int err = slora__api_mix_resolve(&j->mix, v, j->registry, &j->principal, j->msg,
                                     sizeof(j->msg));
    if (err)
        return j->err = err;
    snprintf(j->tenant, sizeof(j->tenant), "%s",
             j->principal.role == SLORA_ROLE_TENANT ? j->principal.tenant
                                                    : j->mix.entry[0]->tenant);
    slora__api_mix_log(&j->mix, j->call, j->tenant);
    return 0;
}

/* Resolve `model`: the base id (alone or with a mix in `adapters`), or a
 * visible tenant/name adapter. */
static int resolve_model(struct job *j, json_t *req)
{
    json_t *v = json_object_get(req, "model"), *mix = json_object_get(req, "adapters");
    if (!json_is_string(v))
        return fail(j, SLORA_EINVAL, "'model' is required: the base model id ('%s') or "
                                     "'tenant/name' of an adapter", j->model_id);
    const char *name = json_string_value(v);
    if (!(j->model_name = strdup(name)))
        return fail(j, SLORA_ENOMEM, "out of memory");
    bool mixed = mix && !json_is_null(mix);
    if (!strcmp(name, j->model_id)) {
        if (mixed)
            return resolve_mix(j, mix);
        snprintf(j->tenant, sizeof(j->tenant), "%s",
                 j->principal.role == SLORA_ROLE_TENANT ? j->principal.tenant : "-");
        return 0;
    }
    if (mixed)
        return fail(j, SLORA_EINVAL,
                    "with 'adapters', 'model' must be the base model id ('%s'), not '%s': "
                    "list every adapter in 'adapters'",
                    j->model_id, name);
    struct slora_registry_entry *e = NULL;
    int err = j->registry ? slora_registry_get_id(j->registry, name, &e) : SLORA_ENOTFOUND;
    if (!err && slora_auth_check_tenant(&j->principal, e->tenant)) {
        slora_registry_entry_unref(e);
        err = SLORA_ENOTFOUND;
    }
    if (err)
        return fail(j, SLORA_ENOTFOUND, "model '%s' not found", name);
    j->entry = e;
    snprintf(j->tenant, sizeof(j->tenant), "%s",
             j->principal.role == SLORA_ROLE_TENANT ? j->principal.tenant : e->tenant);
    slora_api_call_set_log(j->call, e->tenant, e->name, e->version);
    return 0;
}

/* Encode the string `prompt` v into a new malloc'd *ids. Text that cannot
 * fit in max_tokens tokens is refused before encoding, whose scratch grows
 * with the text (a body near the size limit would need gigabytes). */
static int encode_prompt(struct job *j, json_t *v, bool bos, int max_tokens, int **ids, int *n)
{
    size_t len = json_string_length(v);
    if (strlen(json_string_value(v)) != len)
        return fail(j, SLORA_EINVAL, "'prompt' contains a NUL character");
    size_t max_len = slora_tokenizer_max_text_bytes(j->tok, max_tokens);
    if (len > max_len)
        return fail(j, SLORA_EINVAL,
                    "'prompt' has %zu bytes; at most %zu bytes can fit in the model's context "
                    "of %d tokens",
                    len, max_len, j->model->cfg.seq_len);
    if (bos && slora_tokenizer_special(j->tok, SLORA_TOK_SPECIAL_BOS) < 0)
        return fail(j, SLORA_EINVAL, "'add_bos': the model's vocabulary has no BOS token");
    /* room for any encoding: the token count check is the caller's */
    size_t cap = slora_tokenizer_max_tokens(j->tok, len), count;
    if (!(*ids = malloc(cap * sizeof(int))))
        return fail(j, SLORA_ENOMEM, "out of memory");
    int err = slora_tokenizer_encode(j->tok, json_string_value(v), len,
                                     bos ? SLORA_TOK_ADD_BOS : 0, *ids, cap, &count);
    if (err)
        return fail(j, err, "cannot tokenize 'prompt': %s", slora_strerror(err));
    *n = (int)count;
    return 0;
}

/* `prompt` (a string: BOS + its tokens) or, for logits, also `tokens`; an
 * array of ids is used verbatim. */
static int parse_prompt(struct job *j, json_t *req, bool allow_tokens_key)
{
    json_t *v = json_object_get(req, "prompt");
    if (allow_tokens_key && json_object_get(req, "tokens")) {
        if (v)
            return fail(j, SLORA_EINVAL, "give either 'prompt' or 'tokens', not both");
        v = json_object_get(req, "tokens");
        if (!json_is_array(v))
            return fail(j, SLORA_EINVAL, "'tokens' must be an array of token ids");
    }
    int vocab = j->model->cfg.shape.vocab_size, seq_len = j->model->cfg.seq_len;
    if (json_is_string(v)) {
        int err = encode_prompt(j, v, slora_tokenizer_add_bos(j->tok), seq_len - 1, &j->prompt,
                                &j->n_prompt);
        if (err)
            return err;
        if (j->n_prompt == 0)
            return fail(j, SLORA_EINVAL, "the prompt is empty and the vocabulary adds no BOS");
    } else if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if (n == 0)
            return fail(j, SLORA_EINVAL, "the prompt token array is empty");
        if (n >= (size_t)seq_len)
            return fail(j, SLORA_EINVAL, "the prompt has %zu tokens; the model's context is %d",
                        n, seq_len);
        if (!(j->prompt = malloc(n * sizeof(int))))
            return fail(j, SLORA_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *t = json_array_get(v, i);
            if (!json_is_integer(t) || json_integer_value(t) < 0 ||
                json_integer_value(t) >= vocab)
                return fail(j, SLORA_EINVAL, "prompt token %zu must be an integer in [0, %d)", i,
                            vocab);
            j->prompt[i] = (int)json_integer_value(t);
        }
        j->n_prompt = (int)n;
    } else {
        return fail(j, SLORA_EINVAL, "'prompt' must be a string or an array of token ids");
    }
    if (j->n_prompt >= seq_len)
        return fail(j, SLORA_EINVAL, "the prompt has %d tokens; the model's context is %d",
                    j->n_prompt, seq_len);
    return 0;
}

/* OpenAI fields we do not implement: 400 unless at their default. */
static int check_unsupported(struct job *j, json_t *req)
{
    static const struct {
        const char *key;
        double dflt;
    } numeric[] = {{"best_of", 1}, {"presence_penalty", 0}, {"frequency_penalty", 0},
                   {"repetition_penalty", 1}, {"n", 1}};
    for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++) {
        json_t *v = json_object_get(req, numeric[i].key);
        if (v && !json_is_null(v) && (!json_is_number(v) || json_number_value(v) != numeric[i].dflt))
            return fail(j, SLORA_EINVAL, "'%s' is not supported (only %g)", numeric[i].key,
                        numeric[i].dflt);
    }
    json_t *bias = json_object_get(req, "logit_bias");
    if (bias && !json_is_null(bias) && !(json_is_object(bias) && json_object_size(bias) == 0))
        return fail(j, SLORA_EINVAL, "'logit_bias' is not supported");
    json_t *suffix = json_object_get(req, "suffix");
    if (suffix && !json_is_null(suffix) && !(json_is_string(suffix) && !json_string_length(suffix)))
        return fail(j, SLORA_EINVAL, "'suffix' is not supported");
    return 0;
}

static int parse_stop(struct job *j, json_t *req)
{
    json_t *v = json_object_get(req, "stop");
    if (!v || json_is_null(v))
        return 0;
    json_t *one = json_is_string(v) ? v : NULL;
    size_t n = one ? 1 : json_is_array(v) ? json_array_size(v) : 0;
    if (!one && !json_is_array(v))
        return fail(j, SLORA_EINVAL, "'stop' must be a string or an array of strings");
    if (n > MAX_STOP)
        return fail(j, SLORA_EINVAL, "'stop' has %zu strings; at most %d", n, MAX_STOP);
    if (!(j->stop = calloc(n ? n : 1, sizeof(*j->stop))))
        return fail(j, SLORA_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *s = one ? one : json_array_get(v, i);
        if (!json_is_string(s) || !json_string_length(s) ||
            strlen(json_string_value(s)) != json_string_length(s))
            return fail(j, SLORA_EINVAL, "'stop' entries must be non-empty strings");
        if (!(j->stop[j->n_stop++] = strdup(json_string_value(s))))
            return fail(j, SLORA_ENOMEM, "out of memory");
    }
    return 0;
}

static uint64_t fresh_seed(void)
{
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
           (atomic_fetch_add(&counter, 1) * 0x9E3779B97F4A7C15ull);
}

static int prepare_head(struct job *j);

static int prepare_completion(struct job *j, json_t *req)
{
    int64_t max_tokens = DEFAULT_MAX_TOKENS, top_k = 0, logprobs = -1, seed = -1;
    double temperature = 1, top_p = 1;
    int err;
    if ((err = check_unsupported(j, req)) || (err = resolve_model(j, req)) ||
        (err = parse_prompt(j, req, false)) ||
        (err = get_int(j, req, "max_tokens", 0, INT32_MAX, &max_tokens)) ||
        (err = get_number(j, req, "temperature", 0, 1e6, &temperature)) ||
        (err = get_number(j, req, "top_p", 0, 1, &top_p)) ||
        (err = get_int(j, req, "top_k", 0, INT32_MAX, &top_k)) ||
        (err = get_int(j, req, "logprobs", 0, SLORA_GEN_MAX_LOGPROBS, &logprobs)) ||
        (err = get_int(j, req, "seed", INT64_MIN, INT64_MAX, &seed)) ||
        (err = get_bool(j, req, "stream", &j->stream)) ||
        (err = get_bool(j, req, "echo", &j->echo)) || (err = parse_stop(j, req)))
        return err;
    if (!json_object_get(req, "seed") || json_is_null(json_object_get(req, "seed")))
        seed = (int64_t)fresh_seed();
    j->logprobs = (int)logprobs;
    if (max_tokens > j->max_tokens_cap)
        max_tokens = j->max_tokens_cap;
    if (max_tokens > j->model->cfg.seq_len - j->n_prompt)
        max_tokens = j->model->cfg.seq_len - j->n_prompt;
    struct slora_gen_params p = {
        .max_tokens = (int)max_tokens,
        .seq_len = j->model->cfg.seq_len,
        .stop = (const char *const *)j->stop,
        .n_stop = j->n_stop,
        .sampler = {(float)temperature, (float)top_p, (int)top_k, (uint64_t)seed},
        .logprobs = j->logprobs,
    };
    err = slora_gen_new(j->tok, j->prompt, j->n_prompt, &p, &j->gen);
    if (err)
        return fail(j, err, "invalid generation parameters: %s", slora_strerror(err));
    if (j->logprobs >= 0 && (!(j->lp_tokens = json_array()) || !(j->lp_values = json_array()) ||
                             !(j->lp_top = json_array()) || !(j->lp_offsets = json_array())))
        return fail(j, SLORA_ENOMEM, "out of memory");
    return prepare_head(j);
}

static int prepare_logits(struct job *j, json_t *req)
{
    int err;
    if ((err = resolve_model(j, req)) || (err = parse_prompt(j, req, true)))
        return err;
    json_t *pos = json_object_get(req, "positions");
    if (pos && !json_is_null(pos)) {
        if (!json_is_string(pos) ||
            (strcmp(json_string_value(pos), "last") && strcmp(json_string_value(pos), "all")))
            return fail(j, SLORA_EINVAL, "'positions' must be \"last\" or \"all\"");
        j->all_positions = !strcmp(json_string_value(pos), "all");
    }
    size_t rows = j->all_positions ? (size_t)j->n_prompt : 1;
    size_t vocab = (size_t)j->model->cfg.shape.vocab_size;
    /* Every float takes at least 2 bytes ("0,"): refuse what cannot fit. */
    if (rows * vocab * 2 > (size_t)j->max_logits_bytes)
        return fail(j, SLORA_EINVAL,
                    "%zu x %zu logits exceed max_logits_bytes (%" PRId64 "); ask for "
                    "\"positions\": \"last\" or a shorter prompt",
                    rows, vocab, j->max_logits_bytes);
    if (!(j->rows = malloc(rows * vocab * sizeof(float))))
        return fail(j, SLORA_ENOMEM, "out of memory");
    return 0;
}

static int prepare_tokenize(struct job *j, json_t *req)
{
    json_t *v = json_object_get(req, "prompt");
    bool bos = slora_tokenizer_add_bos(j->tok);
    int err = get_bool(j, req, "add_bos", &bos);
    if (err)
        return err;
    if (!json_is_string(v))
        return fail(j, SLORA_EINVAL, "'prompt' must be a string");
    int *ids = NULL, n = 0;
    err = encode_prompt(j, v, bos, j->model->cfg.seq_len, &ids, &n);
    json_t *arr = err ? NULL : json_array();
    for (int i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_integer(ids[i]));
    free(ids);
    if (err)
        return err;
    j->reply = json_pack("{so}", "tokens", arr);
    return j->reply ? 0 : fail(j, SLORA_ENOMEM, "out of memory");
}

static int prepare_detokenize(struct job *j, json_t *req)
{
    json_t *v = json_object_get(req, "tokens");
    int vocab = j->model->cfg.shape.vocab_size;
    if (!json_is_array(v))
        return fail(j, SLORA_EINVAL, "'tokens' must be an array of token ids");
    size_t n = json_array_size(v);
    int *ids = malloc((n ? n : 1) * sizeof(int));
    if (!ids)
        return fail(j, SLORA_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(v, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) >= vocab) {
            free(ids);
            return fail(j, SLORA_EINVAL, "token %zu must be an integer in [0, %d)", i, vocab);
        }
        ids[i] = (int)json_integer_value(t);
    }
    size_t len;
    char *text = slora_tokenizer_render(j->tok, -1, ids, (int)n, &len);
    free(ids);
    if (!text)
        return fail(j, SLORA_ENOMEM, "out of memory");
    j->reply = json_pack("{ss%}", "text", text, len);
    free(text);
    return j->reply ? 0 : fail(j, SLORA_ENOMEM, "out of memory");
}

static void prepare_work(void *arg)
{
    struct job *j = arg;
    json_t *req = NULL;
    if (parse_body(j, &req))
        return;
    switch (j->kind) {
    case JOB_COMPLETION:
        prepare_completion(j, req);
        break;
    case JOB_LOGITS:
        prepare_logits(j, req);
        break;
    case JOB_TOKENIZE:
        prepare_tokenize(j, req);
        break;
    case JOB_DETOKENIZE:
        prepare_detokenize(j, req);
        break;
    }
    json_decref(req);
}

/* ---- completions (engine thread) ----------------------------------------- */

static json_t *piece_json(const struct job *j, int prev, int token)
{
    size_t len;
    char *s = slora_tokenizer_render(j->tok, prev, &token, 1, &len);
    json_t *v = s ? json_stringn(s, len) : NULL;
    free(s);
    return v ? v : json_string("");
}

/* Logprobs entry of one token (OpenAI completions format); st NULL for the
 * first prompt token, which has no logprob. Advances text_offset by the
 * token's piece. */
static void add_logprobs(struct job *j, int prev, int token, const struct slora_gen_step *st)
{
    json_t *piece = piece_json(j, prev, token);
    size_t piece_len = json_string_length(piece);
    json_array_append_new(j->lp_tokens, piece);
    json_array_append_new(j->lp_values, st ? json_real(st->logprob) : json_null());
    json_t *top = st ? json_object() : NULL;
    for (int k = 0; top && k < st->n_top; k++) {
        size_t len;
        char *s = slora_tokenizer_render(j->tok, prev, &st->top_id[k], 1, &len);
        if (s && !json_object_getn(top, s, len))
            json_object_setn_new(top, s, len, json_real(st->top_logprob[k]));
        free(s);
    }
    json_array_append_new(j->lp_top, top ? top : json_null());
    json_array_append_new(j->lp_offsets, json_integer((json_int_t)j->text_offset));
    j->text_offset += piece_len;
}

/* Logprobs (asked for) of the tokens since the last flush (stream) or of
 * all; null if out of memory. */
static json_t *take_logprobs(struct job *j)
{
    json_t *lp = json_pack("{sOsOsOsO}", "tokens", j->lp_tokens, "token_logprobs", j->lp_values,
                           "top_logprobs", j->lp_top, "text_offset", j->lp_offsets);
    if (j->stream) {
        json_t **arrays[] = {&j->lp_tokens, &j->lp_values, &j->lp_top, &j->lp_offsets};
        for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
            json_decref(*arrays[i]);
            *arrays[i] = json_array();
        }
    }
    return lp ? lp : json_null();
}

static json_t *head_json(const struct job *j, const char *object)
{
    json_t *o = json_pack("{sssssIss}", "id", j->id, "object", object, "created",
                          (json_int_t)j->created, "model", j->model_name);
    if (o && j->entry)
        json_object_set_new(o, "adapter_version", json_string(j->entry->version));
    return o;
}

/* The stream begins with its first bytes, so that anything refused before
 * (queue full, tenant limit, adapter generation failure) is a plain error
 * with its own status. */
static void stream_write(struct job *j, const char *data, size_t len)
{
    if (!j->stream_begun) {
        slora_api_call_stream_begin(j->call, 200, "text/event-stream");
        j->stream_begun = true;
    }
    slora_api_call_stream_write(j->call, data, len);
}

/* Worker: the start every answer of the job shares (the JSON body, each
 * SSE event), so that the engine thread only escapes text: jansson's pack
 * and dump per streamed token took about a tenth of its time. */
static int prepare_head(struct job *j)
{
    struct buf *h = &j->head;
    buf_json(h, head_json(j, "text_completion"));
    if (!h->oom && h->b.len && h->b.p[h->b.len - 1] == '}') {
        h->b.len--; /* reopen the object */
        if (j->mix.n && slora__api_mix_json(&j->mix, &h->b))
            h->oom = true;
        buf_lit(h, ",\"choices\":[");
    } else {
        h->oom = true;
    }
    return h->oom ? fail(j, SLORA_ENOMEM, "out of memory") : 0;
}

/* The choice object: text, index, finish_reason (null while streaming),
 * logprobs (null when not asked for). */
static void add_choice(struct buf *b, struct job *j, const char *text, size_t len,
                       const char *finish)
{
    buf_lit(b, "{\"text\":");
    if (!b->oom && slora__buf_add_json_string(&b->b, text, len))
        b->oom = true;
    buf_lit(b, ",\"index\":0,\"finish_reason\":");
    if (finish)
        buf_printf(b, "\"%s\"", finish);
    else
        buf_lit(b, "null");
    buf_lit(b, ",\"logprobs\":");
    if (j->logprobs < 0)
        buf_lit(b, "null");
    else
        buf_json(b, take_logprobs(j));
    buf_lit(b, "}");
}

static void stream_chunk(struct job *j, const char *text, size_t len, const char *finish)
{
    struct buf b = {0};
    buf_lit(&b, "data: ");
    buf_add(&b, j->head.b.p, j->head.b.len);
    add_choice(&b, j, text, len, finish);
    buf_lit(&b, "]}\n\n");
    if (!b.oom)
        stream_write(j, b.b.p, b.b.len);
    free(b.b.p);
}

/* echo: the prompt's text goes first, as its own chunk when streaming. */
static void emit_echo(struct job *j)
{
    size_t len;
    char *text = slora_tokenizer_render(j->tok, -1, j->prompt, j->n_prompt, &len);
    if (!text) {
        j->text.oom = true;
        return;
    }
    j->text_offset = len;
    if (j->stream)
        stream_chunk(j, text, len, NULL);
    else
        buf_add(&j->text, text, len);
    free(text);
}

static int completion_step(void *arg, float *logits, int pos, bool *stop)
{
    struct job *j = arg;
    *stop = false;
    if (j->echo && j->logprobs >= 0) {
        if (pos == 0)
            add_logprobs(j, -1, j->prompt[0], NULL);
        if (pos < j->n_prompt - 1) {
            /* Echoed prompt: the logprob of the next prompt token. */
            struct slora_gen_step st;
            slora_gen_logprobs(logits, j->model->cfg.shape.vocab_size, j->prompt[pos + 1],
                               j->logprobs, &st);
            add_logprobs(j, j->prompt[pos], j->prompt[pos + 1], &st);
            return -1;
        }
    }
    if (j->echo && pos == j->n_prompt - 1)
        emit_echo(j);
    if (slora_gen_is_done(j->gen)) {
        *stop = true;
        return -1;
    }
    struct slora_gen_step st;
    int prev = slora_gen_last_token(j->gen);
    if (slora_gen_accept(j->gen, logits, &st)) {
        *stop = true;
        return -1;
    }
    if (j->logprobs >= 0)
        add_logprobs(j, prev, st.token, &st);
    if (j->stream) {
        if (st.text_len)
            stream_chunk(j, st.text, st.text_len, NULL);
    } else {
        buf_add(&j->text, st.text, st.text_len);
    }
    *stop = slora_gen_is_done(j->gen);
    return st.token;
}

static const char *finish_reason(const struct job *j)
{
    const char *f = slora_gen_finish_name(slora_gen_finish(j->gen));
    return f ? f : "length";
}

/* Completes the call: nothing may touch j afterwards. */
static void completion_reply(struct job *j)
{
    if (j->stream) {
        stream_chunk(j, "", 0, finish_reason(j));
        stream_write(j, "data: [DONE]\n\n", 14);
        slora_api_call_stream_end(j->call);
        return;
    }
    int n = slora_gen_n_generated(j->gen);
    struct buf b = {0};
    buf_add(&b, j->head.b.p, j->head.b.len);
    add_choice(&b, j, j->text.b.p ? j->text.b.p : "", j->text.b.len, finish_reason(j));
    buf_printf(&b, "],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                   "\"total_tokens\":%d}}\n",
               j->n_prompt, n, j->n_prompt + n);
    if (j->text.oom || b.oom) {
        free(b.b.p);
        slora_api_call_error(j->call, SLORA_ENOMEM, NULL);
        return;
    }
    slora_api_call_respond(j->call, 200, "application/json", b.b.p, b.b.len);
}

/* An error after the stream began goes as one SSE error event. */
static void stream_error(struct job *j, int err, const char *msg)
{
    if (!j->stream_begun) {
        slora_api_call_error(j->call, err, "%s", msg);
        return;
    }
    json_t *e = json_pack("{s{sssss}}", "error", "message", msg, "type", slora_err_type(err),
                          "code", slora_err_name(err));
    struct buf b = {0};
    buf_add(&b, "data: ", 6);
    buf_json(&b, e);
    buf_add(&b, "\n\ndata: [DONE]\n\n", 16);
    if (!b.oom)
        stream_write(j, b.b.p, b.b.len);
    free(b.b.p);
    slora_api_call_stream_end(j->call);
}

static void completion_done(void *arg, const struct slora_engine_result *r)
{
    struct job *j = arg;
    if (!r->err) {
        completion_reply(j);
    } else if (j->stream) {
        stream_error(j, r->err, r->diag);
    } else {
        slora_api_call_error(j->call, r->err, "%s", r->diag);
    }
}

/* ---- logits (engine thread, then a worker) -------------------------------- */

static int logits_step(void *arg, float *logits, int pos, bool *stop)
{
    struct job *j = arg;
    size_t vocab = (size_t)j->model->cfg.shape.vocab_size;
    if (j->all_positions || pos == j->n_prompt - 1)
        memcpy(j->rows + (size_t)j->n_rows++ * vocab, logits, vocab * sizeof(float));
    *stop = false;
    return -1;
}

/* Worker: the JSON of the rows the engine handed back (up to
 * max_logits_bytes of text: never on the engine thread, which would stall
 * every sequence of the batch). */
static void logits_format(void *arg)
{
    struct job *j = arg;
    int vocab = j->model->cfg.shape.vocab_size;
    struct buf b = {0};
    buf_add(&b, "{\"model\":", 9);
    buf_json(&b, json_string(j->model_name));
    buf_add(&b, ",\"adapter_version\":", 19);
    buf_json(&b, j->entry ? json_string(j->entry->version) : json_null());
    if (j->mix.n && !b.oom && slora__api_mix_json(&j->mix, &b.b))
        b.oom = true;
    buf_add(&b, ",\"tokens\":[", 11);
    for (int i = 0; i < j->n_prompt; i++)
        buf_printf(&b, i ? ",%d" : "%d", j->prompt[i]);
    buf_add(&b, "],\"logits\":[", 12);
    for (int r_ = 0; r_ < j->n_rows && !b.oom; r_++) {
        buf_add(&b, r_ ? ",[" : "[", r_ ? 2 : 1);
        const float *row = j->rows + (size_t)r_ * vocab;
        for (int v = 0; v < vocab; v++)
            buf_printf(&b, v ? ",%.9g" : "%.9g", row[v]);
        buf_add(&b, "]", 1);
    }
    buf_add(&b, "]}", 2);
    j->json = b;
}

/* Loop: send what logits_format built. */
static void logits_formatted(void *arg)
{
    struct job *j = arg;
    struct buf b = j->json;
    j->json = (struct buf){0};
    if (b.oom) {
        free(b.b.p);
        slora_api_call_error(j->call, SLORA_ENOMEM, NULL);
    } else if (b.b.len > (size_t)j->max_logits_bytes) {
        free(b.b.p);
        slora_api_call_error(j->call, SLORA_EINVAL,
                             "the logits response would be %zu bytes; max_logits_bytes is %" PRId64,
                             b.b.len, j->max_logits_bytes);
    } else {
        slora_api_call_respond(j->call, 200, "application/json", b.b.p, b.b.len);
    }
}

static void logits_done(void *arg, const struct slora_engine_result *r)
{
    struct job *j = arg;
    if (r->err) {
        slora_api_call_error(j->call, r->err, "%s", r->diag);
        return;
    }
    int err = slora_api_call_queue_work(j->call, logits_format, logits_formatted, j);
    if (err)
        slora_api_call_error(j->call, err, "no worker available to format the logits");
}

/* ---- loop side --------------------------------------------------------- */

static void on_cancel(void *arg)
{
    struct job *j = arg;
    slora_engine_cancel(j->engine, j->ticket);
}

static void reply_rejected(struct slora_api_call *c, int err)
{
    if (err == SLORA_EBUSY) {
        slora_api_call_set_header(c, "Retry-After", "1");
        slora_api_call_error(c, err, "the inference queue is full; retry later");
    } else if (err == SLORA_EQUOTA) {
        slora_api_call_error(c, err, "too many concurrent sequences for this tenant");
    } else {
        slora_api_call_error(c, err, NULL);
    }
}

static void submit(struct job *j)
{
    struct slora_api_call *c = j->call;
    struct slora_engine_adapter ads[SLORA_WEIGHTS_MAX_TERMS];
    int n_ads = j->mix.n;
    slora__api_mix_engine(&j->mix, ads);
    if (j->entry) {
        ads[0] = (struct slora_engine_adapter){j->entry->id, j->entry->version, j->entry->adapter,
                                               1.0f};
        n_ads = 1;
    }
    struct slora_engine_job ej = {
        .tenant = j->tenant,
        .adapters = ads,
        .n_adapters = n_ads,
        .prompt = j->prompt,
        .n_prompt = j->n_prompt,
        .all_logits = j->kind == JOB_LOGITS ? j->all_positions : j->echo && j->logprobs >= 0,
        .step = j->kind == JOB_LOGITS ? logits_step : completion_step,
        .done = j->kind == JOB_LOGITS ? logits_done : completion_done,
        .arg = j,
    };
    /* A disconnect from now on cancels through on_cancel; one before it
     * is seen here. */
    slora_api_call_on_cancel(c, on_cancel, j);
    if (slora_api_call_is_canceled(c)) {
        slora_api_call_error(c, SLORA_ECANCELED, NULL);
        return;
    }
    int err = slora_engine_submit(j->engine, &ej, &j->ticket);
    if (err)
        reply_rejected(c, err);
}

static void prepare_done(void *arg)
{
    struct job *j = arg;
    struct slora_api_call *c = j->call;
    if (j->err) {
        slora_api_call_error(c, j->err, "%s", j->msg);
        return;
    }
    switch (j->kind) {
    case JOB_TOKENIZE:
    case JOB_DETOKENIZE:
        slora_api_call_respond_json(c, 200, json_incref(j->reply));
        return;
    case JOB_COMPLETION:
        if (slora_gen_is_done(j->gen) && !(j->echo && j->logprobs >= 0)) {
            /* max_tokens 0 and nothing to score: nothing to run */
            if (j->echo)
                emit_echo(j);
            completion_reply(j);
            return;
        }
        break;
    case JOB_LOGITS:
        break;
    }
    submit(j);
}

static void start_job(struct slora_api_call *c, enum job_kind kind)
{
    const struct slora_api_deps *deps = slora_api_deps(slora_api_call_api(c));
    if (!deps->model || !deps->tokenizer || (kind <= JOB_LOGITS && !deps->engine)) {
        slora_api_call_set_header(c, "Retry-After", "1");
        slora_api_call_error(c, SLORA_EBUSY, "the model is not loaded yet");
        return;
    }
    struct job *j = calloc(1, sizeof(*j));
    if (!j) {
        slora_api_call_error(c, SLORA_ENOMEM, NULL);
        return;
    }
    const struct slora_config *cfg = slora_api_call_config(c);
    const struct slora_principal *p = slora_api_call_principal(c);
    j->kind = kind;
    j->call = c;
    j->engine = deps->engine;
    j->model = deps->model;
    j->tok = deps->tokenizer;
    j->registry = deps->registry;
    j->model_id = deps->model_id ? deps->model_id : "";
    if (p)
        j->principal = *p;
    else
        j->principal.role = SLORA_ROLE_ADMIN;
    j->max_tokens_cap = cfg ? cfg->max_tokens : 512;
    j->max_logits_bytes = cfg ? cfg->max_logits_bytes : (int64_t)64 << 20;
    j->json_lim = (struct slora_jsonscan_limits){cfg ? cfg->max_json_depth : INT64_MAX,
                                                 cfg ? cfg->max_json_elements : INT64_MAX};
    j->logprobs = -1;
    j->created = (int64_t)time(NULL);
    static atomic_uint_fast64_t next_id;
    snprintf(j->id, sizeof(j->id), "cmpl-%016" PRIxFAST64 "%08x",
             atomic_fetch_add(&next_id, 1) + 1, (unsigned)j->created);
    j->body = slora_api_call_take_body(c, &j->body_len);
    slora_api_call_set_data(c, j, job_free);
    int err = slora_api_call_queue_work(c, prepare_work, prepare_done, j);
    if (err)
        reply_rejected(c, err);
}

static void completions_handler(struct slora_api_call *c)
{
    start_job(c, JOB_COMPLETION);
}

static void logits_handler(struct slora_api_call *c)
{
    start_job(c, JOB_LOGITS);
}

static void tokenize_handler(struct slora_api_call *c)
{
    start_job(c, JOB_TOKENIZE);
}

static void detokenize_handler(struct slora_api_call *c)
{
    start_job(c, JOB_DETOKENIZE);
}

static const struct slora_api_route routes[] = {
    {SLORA_API_POST, "/v1/completions", "completions", SLORA_API_AUTH_ANY, NULL,
     completions_handler},
    {SLORA_API_POST, "/v1/logits", "logits", SLORA_API_AUTH_ANY, NULL, logits_handler},
    {SLORA_API_POST, "/v1/tokenize", "tokenize", SLORA_API_AUTH_ANY, NULL, tokenize_handler},
    {SLORA_API_POST, "/v1/detokenize", "detokenize", SLORA_API_AUTH_ANY, NULL,
     detokenize_handler},
};

/* ---- metrics (loop thread) ----------------------------------------------- */

struct metric_family {
    const char *name, *type, *help;
};

static void family_head(struct slora_api_text *out, const struct metric_family *f)
{
    slora_api_text_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
}

/* Per-tenant families, one pass over the tenants each (a family's samples
 * must be contiguous, after its HELP and TYPE). */
static const struct metric_family tenant_families[] = {
    {"slorad_tenant_prompt_tokens_total", "counter", "Prompt tokens processed"},
    {"slorad_tenant_completion_tokens_total", "counter", "Tokens generated"},
    {"slorad_tenant_sequences", "gauge", "Sequences waiting or running"},
};

struct tenant_family {
    struct slora_api_text *out;
    size_t which; /* in tenant_families */
};

static void tenant_metrics(void *arg, const struct slora_engine_tenant_stats *t)
{
    const struct tenant_family *f = arg;
    uint64_t v = f->which == 0   ? t->prompt_tokens
                 : f->which == 1 ? t->completion_tokens
                                 : (uint64_t)t->sequences;
    slora_api_text_printf(f->out, "%s{tenant=\"%s\"} %" PRIu64 "\n",
                          tenant_families[f->which].name, t->tenant, v);
}

static void metrics(void *arg, struct slora_api_text *out)
{
    struct slora_api_infer *inf = arg;
    struct slora_cache_stats cs;
    struct slora_engine_stats es;
    slora_cache_stats(inf->cache, &cs);
    slora_engine_stats(inf->engine, &es);
    static const struct metric_family m[] = {
        {"slorad_delta_cache_hits_total", "counter", "Delta cache acquires served by a resident entry"},
        {"slorad_delta_cache_misses_total", "counter", "Delta cache acquires that generated dW"},
        {"slorad_delta_cache_evictions_total", "counter", "Delta cache entries dropped for the budget"},
        {"slorad_delta_cache_generation_failures_total", "counter", "Failed delta generations"},
        {"slorad_delta_cache_bytes", "gauge", "Bytes of merged matrices held (W' only; dW is not kept)"},
        {"slorad_delta_cache_entries", "gauge", "Delta cache entries resident"},
        {"slorad_delta_cache_pinned_bytes", "gauge", "Bytes of pinned entries"},
        {"slorad_delta_cache_budget_bytes", "gauge", "delta_cache_bytes"},
        {"slorad_engine_waiting", "gauge", "Sequences waiting for a batch slot"},
        {"slorad_engine_running", "gauge", "Sequences in the batch"},
        {"slorad_engine_acquiring", "gauge",
         "Sequences in the batch waiting for their adapter's delta to be generated"},
        {"slorad_engine_steps_total", "counter", "Batched forward passes"},
        {"slorad_engine_rows_total", "counter", "Token rows through the forward pass"},
        {"slorad_engine_canceled_total", "counter", "Sequences canceled (client gone)"},
    };
    uint64_t v[] = {cs.hits, cs.misses, cs.evictions, cs.gen_failures, cs.bytes, cs.entries,
                    cs.pinned_bytes, cs.budget_bytes, (uint64_t)es.waiting, (uint64_t)es.running,
                    (uint64_t)es.acquiring, es.steps, es.rows, es.canceled};
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        family_head(out, &m[i]);
        slora_api_text_printf(out, "%s %" PRIu64 "\n", m[i].name, v[i]);
    }
    slora_api_text_printf(out, "# HELP slorad_engine_rejected_total Requests refused by the "
                               "engine\n# TYPE slorad_engine_rejected_total counter\n");
    slora_api_text_printf(out, "slorad_engine_rejected_total{reason=\"queue_full\"} %" PRIu64 "\n",
                          es.rejected_busy);
    slora_api_text_printf(out, "slorad_engine_rejected_total{reason=\"tenant_limit\"} %" PRIu64 "\n",
                          es.rejected_quota);
    const char *h = "slorad_delta_cache_generation_seconds";
    slora_api_text_printf(out, "# HELP %s Time to generate and merge one adapter's deltas\n"
                               "# TYPE %s histogram\n", h, h);
    uint64_t cum = 0;
    for (int b = 0; b < SLORA_CACHE_GEN_BUCKETS; b++) {
        cum += cs.gen_buckets[b];
        if (b == SLORA_CACHE_GEN_BUCKETS - 1)
            slora_api_text_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", h, cum);
        else
            slora_api_text_printf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", h,
                                  slora_cache_gen_bounds[b], cum);
    }
    slora_api_text_printf(out, "%s_sum %.6f\n%s_count %" PRIu64 "\n", h, cs.gen_seconds_sum, h,
                          cs.gen_count);
    for (size_t i = 0; i < sizeof(tenant_families) / sizeof(tenant_families[0]); i++) {
        family_head(out, &tenant_families[i]);
        struct tenant_family f = {out, i};
        slora_engine_tenants(inf->engine, tenant_metrics, &f);
    }
}

int slora_api_infer_register(struct slora_api *api, struct slora_api_infer *inf)
{
    int err = slora_api_add_routes(api, routes, sizeof(routes) / sizeof(routes[0]));
    return err ? err : slora_api_add_metrics(api, metrics, inf);
}

/* ---- PUT ?warm / ?pin ---------------------------------------------------- */

struct put_job {
    struct slora_api_infer *inf;
    struct slora_api_call *call;
    struct slora_registry_entry *entry;
    int warm;                     /* 0/1 */
    int pin;                      /* -1 absent, 0 unpin, 1 pin */
    struct slora_cache_reservation *rsv; /* the pin admitted for entry, or NULL */
    slora_api_put_resume_cb resume;
    int err;
    char msg[MSG_LEN];
};

static void put_work(void *arg)
{
    struct put_job *p = arg;
    struct slora_registry_entry *e = p->entry;
    struct slora_cache *cache = p->inf->cache;
    /* A carried pin moves inside retire; the reservation keeps its bytes
     * until then. */
    slora_cache_retire(cache, e->id, e->version, e->adapter);
    if (p->pin == 0) {
        slora_cache_unpin(cache, e->id);
        slora_registry_entry_set_pinned(e, false);
    }
    if (p->pin == 1) {
        p->err = p->rsv ? slora_cache_pin_commit(cache, p->rsv, e->version, e->adapter, p->msg,
                                                 sizeof(p->msg))
                        : slora_cache_pin(cache, e->id, e->version, e->adapter, p->msg,
                                          sizeof(p->msg));
        p->rsv = NULL;
        if (!p->err)
            slora_registry_entry_set_pinned(e, true);
    } else if (p->warm) {
        p->err = slora_cache_warm(cache, e->id, e->version, e->adapter, p->msg, sizeof(p->msg));
    }
    slora_cache_pin_unreserve(cache, p->rsv);
    p->rsv = NULL;
}

static void put_done(void *arg)
{
    struct put_job *p = arg;
    p->resume(p->call, p->err, p->err ? p->msg : NULL);
    slora_registry_entry_unref(p->entry);
    free(p);
}

void slora_api_infer_put_hook(void *arg, struct slora_api_call *c,
                              struct slora_registry_entry *e, int warm, int pin,
                              struct slora_cache_reservation *rsv,
                              slora_api_put_resume_cb resume)
{
    struct slora_api_infer *inf = arg;
    struct put_job *p = calloc(1, sizeof(*p));
    if (!p) {
        slora_cache_pin_unreserve(inf->cache, rsv);
        resume(c, SLORA_ENOMEM, "out of memory");
        return;
    }
    *p = (struct put_job){inf, c, slora_registry_entry_ref(e), warm, pin, rsv, resume, 0, ""};
    int err = slora_api_call_queue_work(c, put_work, put_done, p);
    if (err) {
        slora_cache_pin_unreserve(inf->cache, rsv);
        slora_registry_entry_unref(p->entry);
        free(p);
        resume(c, err, "no worker available for warming the delta cache");
    }
}

int slora_api_infer_put_admit(void *arg, const struct slora_registry_entry *e, int pin,
                              struct slora_cache_reservation **rsv, char *diag, size_t diag_len)
{
    struct slora_api_infer *inf = arg;
    *rsv = NULL;
    bool pinned = pin == 1 || (pin < 0 && slora_cache_is_pinned(inf->cache, e->id));
    if (!pinned)
        return 0;
    int err = slora_cache_pin_reserve(inf->cache, e->id, e->adapter, rsv, diag, diag_len);
    if (err && pin < 0) {
        size_t n = strlen(diag);
        snprintf(diag + n, diag_len - n, " (the pin carries over; add ?pin=0 to replace unpinned)");
    }
    return err;
}

void slora_api_infer_put_release(void *arg, struct slora_cache_reservation *rsv)
{
    struct slora_api_infer *inf = arg;
    slora_cache_pin_unreserve(inf->cache, rsv);
}

void slora_api_infer_adapter_changed(void *arg, const char *id, struct slora_registry_entry *e)
{
    struct slora_api_infer *inf = arg;
    if (!e) {
        slora_cache_retire(inf->cache, id, "", NULL);
        return;
    }
    /* Moves a pin this replica holds to the new version. */
    slora_cache_retire(inf->cache, e->id, e->version, e->adapter);
    bool want = slora_registry_entry_is_pinned(e), has = slora_cache_is_pinned(inf->cache, e->id);
    if (want && !has) {
        char diag[256];
        if (slora_cache_pin(inf->cache, e->id, e->version, e->adapter, diag, sizeof(diag)))
            slora_warn("cache: stored pin of %s version %s not honoured on this replica: %s",
                       e->id, e->version, diag);
    } else if (!want && has) {
        slora_cache_unpin(inf->cache, e->id);
    }
}

/* ---- service ------------------------------------------------------------- */

static bool version_is_current(void *arg, const char *id, const char *version)
{
    struct slora_registry_entry *e;
    if (slora_registry_get_id(arg, id, &e))
        return false;
    bool current = !strcmp(e->version, version);
    slora_registry_entry_unref(e);
    return current;
}

void slora_api_infer_split_threads(int64_t threads, long cpus, int *engine, int *gen)
{
    int total = threads > 0 ? (int)threads : cpus > 0 ? (int)cpus : 1;
    *gen = 1;
    *engine = total > 1 ? total - 1 : 1;
}

/* The dense deltas' type: exact F32 over float bases, BF16 over quantized
 * ones unless configured (docs/configuration.md, delta_dtype). */
static enum slora_dtype delta_type(const struct slora_model *m, const char *name)
{
    if (!strcmp(name, "auto"))
        return slora_model_is_quantized(m) ? SLORA_DTYPE_BF16 : SLORA_DTYPE_F32;
    return (enum slora_dtype)slora_dtype_parse(name);
}

int slora_api_infer_start(const struct slora_model *m, struct slora_registry *reg,
                          const struct slora_config *cfg, struct slora_api_infer **out)
{
    struct slora_api_infer *inf = calloc(1, sizeof(*inf));
    if (!inf)
        return SLORA_ENOMEM;
    inf->registry = reg;
    int engine_threads, gen_threads;
    slora_api_infer_split_threads(cfg->threads, sysconf(_SC_NPROCESSORS_ONLN), &engine_threads,
                                  &gen_threads);
    struct slora_cache_config cc = {
        .budget_bytes = (size_t)cfg->delta_cache_bytes,
        .tenant_pin_bytes = (size_t)cfg->max_pinned_bytes_per_tenant,
        .gen_threads = gen_threads,
        .delta_type = delta_type(m, cfg->delta_dtype),
        .is_current = reg ? version_is_current : NULL,
        .is_current_arg = reg,
    };
    struct slora_engine_config ec = {
        .threads = engine_threads,
        .max_batch = (int)cfg->max_batch,
        .max_queue = (int)cfg->queue_depth,
        .tenant_max_seqs = (int)cfg->max_sequences_per_tenant,
        .tenant_max_acquiring = (int)cfg->max_generations_per_tenant,
    };
    inf->cache = slora_cache_new(m, &cc);
    inf->engine = inf->cache ? slora_engine_new(m, inf->cache, &ec) : NULL;
    if (!inf->engine) {
        slora_cache_free(inf->cache);
        free(inf);
        return SLORA_ENOMEM;
    }
    *out = inf;
    return 0;
}

void slora_api_infer_stop(struct slora_api_infer *inf)
{
    if (!inf)
        return;
    slora_engine_free(inf->engine);
    slora_cache_free(inf->cache);
    free(inf);
}
