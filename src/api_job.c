/* api_job.c - the request job of the OpenAI-facing endpoints (see
 * api_job.h): lifecycle, JSON field readers, model resolution, prompt
 * encoding and the sampling-parameters parser. */
#include "api_job.h"

#include <slora/config.h>
#include <slora/engine.h>
#include <slora/error.h>
#include <slora/generate.h>
#include <slora/model.h>
#include <slora/tokenizer.h>

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define DEFAULT_MAX_TOKENS 16 /* completions, as OpenAI's */

void slora__api_buf_json(struct slora__api_buf *b, json_t *v)
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

/* ---- errors and JSON fields --------------------------------------------- */

int slora__api_fail(struct slora__api_diag *d, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
    va_end(ap);
    d->err = err;
    return err;
}

bool slora__api_has(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v && !json_is_null(v);
}

int slora__api_get_int(struct slora__api_diag *d, json_t *o, const char *key, int64_t lo,
                       int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return slora__api_fail(d, SLORA_EINVAL,
                               "'%s' must be an integer in [%" PRId64 ", %" PRId64 "]", key, lo,
                               hi);
    *out = json_integer_value(v);
    return 0;
}

int slora__api_get_number(struct slora__api_diag *d, json_t *o, const char *key, double lo,
                          double hi, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi))
        return slora__api_fail(d, SLORA_EINVAL, "'%s' must be a number in [%g, %g]", key, lo, hi);
    *out = json_number_value(v);
    return 0;
}

int slora__api_get_bool(struct slora__api_diag *d, json_t *o, const char *key, bool *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return slora__api_fail(d, SLORA_EINVAL, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* ---- sampling parameters ------------------------------------------------- */

/* OpenAI fields we do not implement: 400 unless at their default. */
static int check_unsupported(struct slora__api_diag *d, json_t *req,
                             enum slora__api_dialect dialect)
{
    static const struct {
        const char *key;
        double dflt;
        bool completions_only;
    } numeric[] = {{"best_of", 1, true},           {"presence_penalty", 0, false},
                   {"frequency_penalty", 0, false}, {"repetition_penalty", 1, false},
                   {"n", 1, false}};
    for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++) {
        json_t *v = json_object_get(req, numeric[i].key);
        if (numeric[i].completions_only && dialect != SLORA__API_COMPLETIONS)
            continue;
        if (v && !json_is_null(v) &&
            (!json_is_number(v) || json_number_value(v) != numeric[i].dflt))
            return slora__api_fail(d, SLORA_EINVAL, "'%s' is not supported (only %g)",
                                   numeric[i].key, numeric[i].dflt);
    }
    json_t *bias = json_object_get(req, "logit_bias");
    if (bias && !json_is_null(bias) && !(json_is_object(bias) && json_object_size(bias) == 0))
        return slora__api_fail(d, SLORA_EINVAL, "'logit_bias' is not supported");
    if (dialect == SLORA__API_COMPLETIONS) {
        json_t *suffix = json_object_get(req, "suffix");
        if (suffix && !json_is_null(suffix) &&
            !(json_is_string(suffix) && !json_string_length(suffix)))
            return slora__api_fail(d, SLORA_EINVAL, "'suffix' is not supported");
        return 0;
    }
    json_t *fmt = json_object_get(req, "response_format");
    const char *type = json_string_value(json_object_get(fmt, "type"));
    if (fmt && !json_is_null(fmt) && !(type && !strcmp(type, "text")))
        return slora__api_fail(d, SLORA_EINVAL,
                               "'response_format' is not supported (only {\"type\": \"text\"})");
    json_t *choice = json_object_get(req, "tool_choice");
    const char *c = json_string_value(choice);
    if (choice && !json_is_null(choice) && !(c && (!strcmp(c, "none") || !strcmp(c, "auto"))))
        return slora__api_fail(d, SLORA_EINVAL,
                               "'tool_choice' is not supported (only \"none\" or \"auto\": "
                               "tools are shown to the model, calls are not parsed)");
    return 0;
}

static int parse_stop(struct slora__api_diag *d, json_t *req, struct slora__api_sampling *s)
{
    json_t *v = json_object_get(req, "stop");
    if (!v || json_is_null(v))
        return 0;
    json_t *one = json_is_string(v) ? v : NULL;
    size_t n = one ? 1 : json_is_array(v) ? json_array_size(v) : 0;
    if (!one && !json_is_array(v))
        return slora__api_fail(d, SLORA_EINVAL, "'stop' must be a string or an array of strings");
    if (n > SLORA__API_MAX_STOP)
        return slora__api_fail(d, SLORA_EINVAL, "'stop' has %zu strings; at most %d", n,
                               SLORA__API_MAX_STOP);
    if (!(s->stop = calloc(n ? n : 1, sizeof(*s->stop))))
        return slora__api_fail(d, SLORA_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *e = one ? one : json_array_get(v, i);
        if (!json_is_string(e) || !json_string_length(e)) /* NUL: refused by the parser */
            return slora__api_fail(d, SLORA_EINVAL, "'stop' entries must be non-empty strings");
        if (!(s->stop[s->n_stop++] = strdup(json_string_value(e))))
            return slora__api_fail(d, SLORA_ENOMEM, "out of memory");
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

/* logprobs: completions take the number of alternatives; chat takes a
 * boolean and the number in top_logprobs (which needs logprobs true). */
static int parse_logprobs(struct slora__api_diag *d, json_t *req,
                          enum slora__api_dialect dialect, struct slora__api_sampling *s)
{
    int64_t n = -1;
    if (dialect == SLORA__API_COMPLETIONS) {
        int err = slora__api_get_int(d, req, "logprobs", 0, SLORA_GEN_MAX_LOGPROBS, &n);
        s->logprobs = (int)n;
        return err;
    }
    bool on = false;
    int err = slora__api_get_bool(d, req, "logprobs", &on);
    if (!err)
        err = slora__api_get_int(d, req, "top_logprobs", 0, SLORA_GEN_MAX_LOGPROBS, &n);
    if (err)
        return err;
    if (n >= 0 && !on)
        return slora__api_fail(d, SLORA_EINVAL, "'top_logprobs' needs 'logprobs': true");
    s->logprobs = on ? (n >= 0 ? (int)n : 0) : -1;
    return 0;
}

int slora__api_sampling_parse(struct slora__api_diag *d, json_t *req,
                              enum slora__api_dialect dialect, struct slora__api_sampling *s)
{
    *s = (struct slora__api_sampling){.max_tokens = DEFAULT_MAX_TOKENS, .temperature = 1,
                                      .top_p = 1, .logprobs = -1};
    const char *max_key = "max_tokens";
    if (dialect == SLORA__API_CHAT) {
        s->max_tokens = INT32_MAX; /* the context or the configured cap */
        if (slora__api_has(req, "max_completion_tokens"))
            max_key = "max_completion_tokens";
    }
    int64_t seed = 0;
    int err;
    if ((err = check_unsupported(d, req, dialect)) ||
        (err = slora__api_get_int(d, req, max_key, 0, INT32_MAX, &s->max_tokens)) ||
        (err = slora__api_get_number(d, req, "temperature", 0, 1e6, &s->temperature)) ||
        (err = slora__api_get_number(d, req, "top_p", 0, 1, &s->top_p)) ||
        (err = slora__api_get_int(d, req, "top_k", 0, INT32_MAX, &s->top_k)) ||
        (err = parse_logprobs(d, req, dialect, s)) ||
        (err = slora__api_get_int(d, req, "seed", INT64_MIN, INT64_MAX, &seed)) ||
        (err = slora__api_get_bool(d, req, "stream", &s->stream)) ||
        (err = parse_stop(d, req, s)))
        return err;
    if (dialect == SLORA__API_COMPLETIONS &&
        (err = slora__api_get_bool(d, req, "echo", &s->echo)))
        return err;
    s->seed = slora__api_has(req, "seed") ? (uint64_t)seed : fresh_seed();
    json_t *so = json_object_get(req, "stream_options");
    if (so && !json_is_null(so)) {
        if (!s->stream)
            return slora__api_fail(d, SLORA_EINVAL,
                                   "'stream_options' is only allowed with 'stream': true");
        if (!json_is_object(so))
            return slora__api_fail(d, SLORA_EINVAL, "'stream_options' must be an object");
        json_t *iu = json_object_get(so, "include_usage");
        if (iu && !json_is_null(iu) && !json_is_boolean(iu))
            return slora__api_fail(d, SLORA_EINVAL,
                                   "'stream_options.include_usage' must be true or false");
        s->include_usage = json_is_true(iu);
    }
    return 0;
}

void slora__api_sampling_deinit(struct slora__api_sampling *s)
{
    for (int i = 0; i < s->n_stop; i++)
        free(s->stop[i]);
    free(s->stop);
    s->stop = NULL;
    s->n_stop = 0;
}

/* ---- model and prompt (worker) ------------------------------------------- */

/* `adapters` with `model` the base id: the mix. Fairness and counters go
 * to the caller's tenant (the admin's: the first adapter's). */
static int resolve_mix(struct slora__api_job *j, json_t *v)
{
    int err = slora__api_mix_resolve(&j->mix, v, j->deps->registry, &j->principal, j->d.msg,
                                     sizeof(j->d.msg));
    if (err)
        return j->d.err = err;
    snprintf(j->tenant, sizeof(j->tenant), "%s",
             j->principal.role == SLORA_ROLE_TENANT ? j->principal.tenant
                                                    : j->mix.entry[0]->tenant);
    slora__api_mix_log(&j->mix, j->call, j->tenant);
    return 0;
}

int slora__api_job_resolve_model(struct slora__api_job *j, json_t *req)
{
    json_t *v = json_object_get(req, "model"), *mix = json_object_get(req, "adapters");
    if (!json_is_string(v))
        return slora__api_fail(&j->d, SLORA_EINVAL,
                               "'model' is required: the base model id ('%s') or "
                               "'tenant/name' of an adapter",
                               j->model_id);
    const char *name = json_string_value(v);
    if (!(j->model_name = strdup(name)))
        return slora__api_fail(&j->d, SLORA_ENOMEM, "out of memory");
    bool mixed = mix && !json_is_null(mix);
    if (!strcmp(name, j->model_id)) {
        if (mixed)
            return resolve_mix(j, mix);
        snprintf(j->tenant, sizeof(j->tenant), "%s",
                 j->principal.role == SLORA_ROLE_TENANT ? j->principal.tenant : "-");
        return 0;
    }
    if (mixed)
        return slora__api_fail(&j->d, SLORA_EINVAL,
                               "with 'adapters', 'model' must be the base model id ('%s'), not "
                               "'%s': list every adapter in 'adapters'",
                               j->model_id, name);
    struct slora_registry_entry *e = NULL;
    int err = j->deps->registry ? slora_registry_get_id(j->deps->registry, name, &e)
                                : SLORA_ENOTFOUND;
    if (!err && slora_auth_check_tenant(&j->principal, e->tenant)) {
        slora_registry_entry_unref(e);
        err = SLORA_ENOTFOUND;
    }
    if (err)
        return slora__api_fail(&j->d, SLORA_ENOTFOUND, "model '%s' not found", name);
    j->entry = e;
    snprintf(j->tenant, sizeof(j->tenant), "%s",
             j->principal.role == SLORA_ROLE_TENANT ? j->principal.tenant : e->tenant);
    slora_api_call_set_log(j->call, e->tenant, e->name, e->version);
    return 0;
}

int slora__api_job_encode(struct slora__api_job *j, const char *what, const char *text,
                          size_t len, unsigned flags, int max_tokens, int **ids, int *n)
{
    size_t max_len = slora_tokenizer_max_text_bytes(j->tok, max_tokens);
    if (len > max_len)
        return slora__api_fail(&j->d, SLORA_EINVAL,
                               "%s has %zu bytes; at most %zu bytes can fit in the model's "
                               "context of %d tokens",
                               what, len, max_len, j->model->cfg.seq_len);
    if ((flags & SLORA_TOK_ADD_BOS) && slora_tokenizer_special(j->tok, SLORA_TOK_SPECIAL_BOS) < 0)
        return slora__api_fail(&j->d, SLORA_EINVAL,
                               "'add_bos': the model's vocabulary has no BOS token");
    /* room for any encoding: the token count check is the caller's */
    size_t cap = slora_tokenizer_max_tokens(j->tok, len), count;
    if (!(*ids = malloc((cap ? cap : 1) * sizeof(int))))
        return slora__api_fail(&j->d, SLORA_ENOMEM, "out of memory");
    int err = slora_tokenizer_encode(j->tok, text, len, flags, *ids, cap, &count);
    if (err)
        return slora__api_fail(&j->d, err, "cannot tokenize %s: %s", what, slora_strerror(err));
    *n = (int)count;
    return 0;
}

int slora__api_job_check_context(struct slora__api_job *j)
{
    if (j->n_prompt >= j->model->cfg.seq_len)
        return slora__api_fail(&j->d, SLORA_EINVAL,
                               "the prompt has %d tokens; the model's context is %d", j->n_prompt,
                               j->model->cfg.seq_len);
    return 0;
}

int slora__api_job_prompt(struct slora__api_job *j, json_t *req, bool allow_tokens_key)
{
    json_t *v = json_object_get(req, "prompt");
    if (allow_tokens_key && json_object_get(req, "tokens")) {
        if (v)
            return slora__api_fail(&j->d, SLORA_EINVAL,
                                   "give either 'prompt' or 'tokens', not both");
        v = json_object_get(req, "tokens");
        if (!json_is_array(v))
            return slora__api_fail(&j->d, SLORA_EINVAL, "'tokens' must be an array of token ids");
    }
    int vocab = j->model->cfg.shape.vocab_size, seq_len = j->model->cfg.seq_len;
    if (json_is_string(v)) { /* (the body parser already refused strings holding NUL) */
        int err = slora__api_job_encode(
            j, "'prompt'", json_string_value(v), json_string_length(v),
            slora_tokenizer_add_bos(j->tok) ? SLORA_TOK_ADD_BOS : 0, seq_len - 1, &j->prompt,
            &j->n_prompt);
        if (err)
            return err;
        if (j->n_prompt == 0)
            return slora__api_fail(&j->d, SLORA_EINVAL,
                                   "the prompt is empty and the vocabulary adds no BOS");
    } else if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if (n == 0)
            return slora__api_fail(&j->d, SLORA_EINVAL, "the prompt token array is empty");
        if (n >= (size_t)seq_len)
            return slora__api_fail(&j->d, SLORA_EINVAL,
                                   "the prompt has %zu tokens; the model's context is %d", n,
                                   seq_len);
        if (!(j->prompt = malloc(n * sizeof(int))))
            return slora__api_fail(&j->d, SLORA_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *t = json_array_get(v, i);
            if (!json_is_integer(t) || json_integer_value(t) < 0 ||
                json_integer_value(t) >= vocab)
                return slora__api_fail(&j->d, SLORA_EINVAL,
                                       "prompt token %zu must be an integer in [0, %d)", i, vocab);
            j->prompt[i] = (int)json_integer_value(t);
        }
        j->n_prompt = (int)n;
    } else {
        return slora__api_fail(&j->d, SLORA_EINVAL,
                               "'prompt' must be a string or an array of token ids");
    }
    return slora__api_job_check_context(j);
}

void slora__api_job_head(const struct slora__api_job *j, const char *object,
                         struct slora__api_buf *b)
{
    json_t *o = json_pack("{sssssIss}", "id", j->id, "object", object, "created",
                          (json_int_t)j->created, "model", j->model_name);
    if (o && j->entry)
        json_object_set_new(o, "adapter_version", json_string(j->entry->version));
    size_t start = b->b.len;
    slora__api_buf_json(b, o);
    if (!b->oom && b->b.len > start && b->b.p[b->b.len - 1] == '}')
        b->b.len--; /* reopen the object */
    else
        b->oom = true;
    if (!b->oom && j->mix.n && slora__api_mix_json(&j->mix, &b->b))
        b->oom = true;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void job_free(void *p)
{
    struct slora__api_job *j = p;
    if (j->ep->release)
        j->ep->release(j);
    free(j->body);
    free(j->out.b.p);
    free(j->model_name);
    slora_registry_entry_unref(j->entry);
    slora__api_mix_clear(&j->mix);
    free(j->prompt);
    free(j);
}

static void prepare_work(void *arg)
{
    struct slora__api_job *j = arg;
    json_t *req;
    int err = slora_jsonscan_load(j->body, j->body_len, &j->json_lim, &req, j->d.msg,
                                  sizeof(j->d.msg));
    if (err) {
        j->d.err = err;
        return;
    }
    if (!json_is_object(req))
        slora__api_fail(&j->d, SLORA_EINVAL, "the request body must be a JSON object");
    else if (!j->ep->prepare(j, req) && j->out.oom)
        slora__api_fail(&j->d, SLORA_ENOMEM, "out of memory");
    json_decref(req);
}

static void prepare_done(void *arg)
{
    struct slora__api_job *j = arg;
    struct slora_api_call *c = j->call;
    if (j->d.err) {
        slora_api_call_error(c, j->d.err, "%s", j->d.msg);
    } else if (j->out.b.len || !j->ep->run) {
        struct slora__api_buf b = j->out;
        j->out = (struct slora__api_buf){0};
        slora_api_call_respond(c, 200, j->out_type ? j->out_type : "application/json", b.b.p,
                               b.b.len);
    } else {
        j->ep->run(j);
    }
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

void slora__api_job_start(struct slora_api_call *c, const struct slora__api_endpoint *ep,
                          const char *id_prefix)
{
    const struct slora_api_deps *deps = slora_api_deps(slora_api_call_api(c));
    if (!deps->model || !deps->tokenizer || (ep->needs_engine && !deps->engine)) {
        slora_api_call_set_header(c, "Retry-After", "1");
        slora_api_call_error(c, SLORA_EBUSY, "the model is not loaded yet");
        return;
    }
    struct slora__api_job *j = calloc(1, ep->size);
    if (!j) {
        slora_api_call_error(c, SLORA_ENOMEM, NULL);
        return;
    }
    const struct slora_config *cfg = slora_api_call_config(c);
    const struct slora_principal *p = slora_api_call_principal(c);
    j->ep = ep;
    j->call = c;
    j->deps = deps;
    j->engine = deps->engine;
    j->model = deps->model;
    j->tok = deps->tokenizer;
    j->model_id = deps->model_id ? deps->model_id : "";
    if (p)
        j->principal = *p;
    else
        j->principal.role = SLORA_ROLE_ADMIN;
    j->max_tokens_cap = cfg ? cfg->max_tokens : 512;
    j->max_logits_bytes = cfg ? cfg->max_logits_bytes : (int64_t)64 << 20;
    j->json_lim = (struct slora_jsonscan_limits){cfg ? cfg->max_json_depth : INT64_MAX,
                                                 cfg ? cfg->max_json_elements : INT64_MAX};
    j->created = (int64_t)time(NULL);
    static atomic_uint_fast64_t next_id;
    snprintf(j->id, sizeof(j->id), "%s-%016" PRIxFAST64 "%08x", id_prefix,
             atomic_fetch_add(&next_id, 1) + 1, (unsigned)j->created);
    j->body = slora_api_call_take_body(c, &j->body_len);
    slora_api_call_set_data(c, j, job_free);
    int err = slora_api_call_queue_work(c, prepare_work, prepare_done, j);
    if (err)
        reply_rejected(c, err);
}

/* ---- engine (loop) ------------------------------------------------------- */

static void on_cancel(void *arg)
{
    struct slora__api_job *j = arg;
    slora_engine_cancel(j->engine, j->ticket);
}

void slora__api_job_submit(struct slora__api_job *j, struct slora_engine_job *ej)
{
    struct slora_api_call *c = j->call;
    /* the base, the adapter of `model` (weight 1), or the mix; copied by
     * the engine */
    struct slora_engine_adapter ads[SLORA_WEIGHTS_MAX_TERMS];
    ej->n_adapters = j->mix.n;
    slora__api_mix_engine(&j->mix, ads);
    if (j->entry) {
        ads[0] = (struct slora_engine_adapter){j->entry->id, j->entry->version, j->entry->adapter,
                                               1.0f};
        ej->n_adapters = 1;
    }
    ej->adapters = ads;
    ej->tenant = j->tenant;
    ej->prompt = j->prompt;
    ej->n_prompt = j->n_prompt;
    ej->arg = j;
    /* A disconnect from now on cancels through on_cancel; one before it
     * is seen here. */
    slora_api_call_on_cancel(c, on_cancel, j);
    if (slora_api_call_is_canceled(c)) {
        slora_api_call_error(c, SLORA_ECANCELED, NULL);
        return;
    }
    int err = slora_engine_submit(j->engine, ej, &j->ticket);
    if (err)
        reply_rejected(c, err);
}
