/* api_job.h - the request job shared by the OpenAI-facing endpoints
 * (api_completions.c, api_chat.c, api_tokenize.c); not a public interface.
 *
 * Life of a job: the route handler (loop thread) calls
 * slora__api_job_start with its endpoint; the job takes the body and the
 * config limits, is attached to the call (freed with it, on the loop
 * thread) and a worker runs the endpoint's prepare (parse and validate the
 * JSON, resolve the model, tokenize). Back on the loop, a prepared answer
 * (slora__api_job.out) is sent as is, or the endpoint's run hook submits
 * the job to the engine (slora__api_job_submit). Completing the call is
 * always the last thing that touches a job: the loop may free it right
 * after.
 *
 * Also here: the sticky-OOM text buffer the responses are built in, the
 * JSON field readers every endpoint validates with, model resolution
 * (base id or a visible tenant/name adapter), prompt encoding, and the one
 * sampling-parameters parser of completions and chat.
 */
#ifndef SLORA_API_JOB_H
#define SLORA_API_JOB_H

#include "api_mix.h"
#include "util/buf.h"

#include <slora/api.h>
#include <slora/auth.h>
#include <slora/jsonscan.h>
#include <slora/registry.h>

#include <jansson.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct slora_engine;
struct slora_model;
struct slora_template;
struct slora_tokenizer;

#define SLORA__API_MSG_LEN 512
#define SLORA__API_MAX_STOP 16

/* ---- growable text buffer ------------------------------------------------ */

/* util/buf with a sticky out-of-memory flag, so a response is built without
 * checking every append and the flag is tested once at the end. */
struct slora__api_buf {
    struct slora__buf b;
    bool oom;
};

static inline void buf_add(struct slora__api_buf *b, const char *s, size_t n)
{
    if (!b->oom && slora__buf_add(&b->b, s, n))
        b->oom = true;
}

/* Append a string literal ("" lit: anything else, e.g. a conditional
 * whose sizeof is a pointer's, does not compile). */
#define buf_lit(b, lit) buf_add((b), "" lit, sizeof(lit) - 1)

static inline __attribute__((format(printf, 2, 3))) void buf_printf(struct slora__api_buf *b,
                                                                    const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (slora__buf_vprintf(&b->b, fmt, ap))
        b->oom = true;
    va_end(ap);
}

/* Append s (n bytes of valid UTF-8) as a quoted JSON string. */
static inline void buf_str(struct slora__api_buf *b, const char *s, size_t n)
{
    if (!b->oom && slora__buf_add_json_string(&b->b, s, n))
        b->oom = true;
}

/* Append a JSON value in compact form; steals the reference. */
void slora__api_buf_json(struct slora__api_buf *b, json_t *v);

/* ---- errors and JSON fields --------------------------------------------- */

/* The answer to give instead of a result: err (0: none) and its message. */
struct slora__api_diag {
    int err;
    char msg[SLORA__API_MSG_LEN];
};

/* Set d and return err. */
int slora__api_fail(struct slora__api_diag *d, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Optional fields of object o; absent or null leaves *out. 0 or
 * SLORA_EINVAL naming the key and what it must be. */
int slora__api_get_int(struct slora__api_diag *d, json_t *o, const char *key, int64_t lo,
                       int64_t hi, int64_t *out);
int slora__api_get_number(struct slora__api_diag *d, json_t *o, const char *key, double lo,
                          double hi, double *out);
int slora__api_get_bool(struct slora__api_diag *d, json_t *o, const char *key, bool *out);
/* Whether o has key with a non-null value. */
bool slora__api_has(json_t *o, const char *key);

/* ---- sampling parameters ------------------------------------------------- */

enum slora__api_dialect {
    SLORA__API_COMPLETIONS, /* max_tokens (default 16), logprobs N, echo, best_of, suffix */
    SLORA__API_CHAT,        /* max_completion_tokens or max_tokens (default: the cap),
                               logprobs true + top_logprobs N */
};

/* The generation fields of a completions or chat request. */
struct slora__api_sampling {
    int64_t max_tokens;  /* as asked (or the dialect's default), before any cap */
    double temperature;  /* [0, 1e6] */
    double top_p;        /* [0, 1] */
    int64_t top_k;       /* 0: off */
    uint64_t seed;       /* the request's, else a fresh one */
    int logprobs;        /* -1 off, else 0..SLORA_GEN_MAX_LOGPROBS alternatives */
    bool stream;
    bool include_usage;  /* stream_options.include_usage */
    bool echo;           /* completions only */
    char **stop;         /* (n_stop) non-empty strings, owned */
    int n_stop;
};

/* Parse req's sampling fields for dialect into *s (zeroed first; free with
 * slora__api_sampling_deinit even on error). OpenAI fields this server
 * does not implement are refused unless at their default. 0, or
 * SLORA_EINVAL / SLORA_ENOMEM with d naming the field. */
int slora__api_sampling_parse(struct slora__api_diag *d, json_t *req,
                              enum slora__api_dialect dialect, struct slora__api_sampling *s);
void slora__api_sampling_deinit(struct slora__api_sampling *s);

/* ---- the job ------------------------------------------------------------- */

struct slora__api_job;

/* What an endpoint does with its jobs. */
struct slora__api_endpoint {
    size_t size;       /* bytes of the endpoint's job, which starts with struct slora__api_job */
    bool needs_engine; /* 503 while the engine is not there */
    /* Worker: parse and validate req (borrowed) and prepare the answer:
     * either a whole response in j->out, or what run submits. 0 or a
     * slora__api_fail code. */
    int (*prepare)(struct slora__api_job *j, json_t *req);
    /* Loop, after a successful prepare that left j->out empty: submit the
     * job to the engine (or complete the call). NULL: j->out is always
     * the answer. */
    void (*run)(struct slora__api_job *j);
    /* Free the endpoint's own fields (loop); may be NULL. */
    void (*release)(struct slora__api_job *j);
};

struct slora__api_job {
    const struct slora__api_endpoint *ep;
    struct slora_api_call *call;
    struct slora_engine *engine;
    const struct slora_model *model;
    const struct slora_tokenizer *tok;
    const struct slora_api_deps *deps;
    const char *model_id;
    struct slora_principal principal;
    int64_t max_tokens_cap;
    int64_t max_logits_bytes;
    struct slora_jsonscan_limits json_lim;
    void *body;                   /* (body_len) request JSON */
    size_t body_len;

    /* prepared on the worker */
    struct slora__api_diag d;     /* d.err != 0: answer this on the loop */
    struct slora__api_buf out;    /* a whole response, when prepared on the worker */
    const char *out_type;         /* its content type; NULL: application/json */
    char *model_name;             /* as requested */
    char tenant[SLORA_NAME_MAX + 1]; /* fairness and token counters */
    struct slora_registry_entry *entry; /* the adapter named in `model`, or NULL */
    struct slora__api_mix mix;    /* `adapters` (then `model` is the base) */
    int *prompt;                  /* (n_prompt) */
    int n_prompt;
    char id[48];                  /* response id: "<prefix>-<counter><time>" */
    int64_t created;

    /* engine */
    uint64_t ticket;
};

/* Handler (loop): start a job of endpoint ep on c; the call is completed
 * later (an error, j->out, or the endpoint's own answer). id_prefix names
 * the response ids ("cmpl", "chatcmpl"). */
void slora__api_job_start(struct slora_api_call *c, const struct slora__api_endpoint *ep,
                          const char *id_prefix);

/* Worker: resolve req's `model`: the base id (alone, or with a mix of
 * adapters in `adapters`, api_mix.h), or a tenant/name adapter the caller
 * may use (another tenant's adapter is 404, like an unknown one). Sets
 * model_name, tenant, entry or mix and the access-log fields. */
int slora__api_job_resolve_model(struct slora__api_job *j, json_t *req);
/* Worker: encode text (len bytes, no NUL inside: what names the field in
 * messages) with flags into a new malloc'd *ids of *n tokens. Text that
 * cannot fit max_tokens tokens is refused before encoding, whose scratch
 * grows with the text. */
int slora__api_job_encode(struct slora__api_job *j, const char *what, const char *text,
                          size_t len, unsigned flags, int max_tokens, int **ids, int *n);
/* Worker: `prompt` of req: a string (encoded with the file's BOS) or an
 * array of token ids used verbatim; with allow_tokens_key (logits), also
 * `tokens`. Sets j->prompt, checked against the context. */
int slora__api_job_prompt(struct slora__api_job *j, json_t *req, bool allow_tokens_key);
/* Worker: check j->prompt fits the context with room for one token. */
int slora__api_job_check_context(struct slora__api_job *j);
/* Worker: the `{"id":...,"object":...,"created":...,"model":...`
 * start of every answer (with adapter_version for an adapter, the
 * `adapters` applied for a mix), object left open. */
void slora__api_job_head(const struct slora__api_job *j, const char *object,
                         struct slora__api_buf *b);

/* Loop: submit j to the engine with these callbacks (arg j); a refusal
 * (queue full: 503 + Retry-After, tenant limit: 429) completes the call.
 * A client disconnect from now on cancels the engine job. */
struct slora_engine_job;
void slora__api_job_submit(struct slora__api_job *j, struct slora_engine_job *ej);

/* ---- route handlers (loop), one per endpoint --------------------------- */

void slora__api_completions_handler(struct slora_api_call *c); /* api_completions.c */
void slora__api_chat_handler(struct slora_api_call *c);        /* api_chat.c */
void slora__api_tokenize_handler(struct slora_api_call *c);    /* api_tokenize.c */
void slora__api_detokenize_handler(struct slora_api_call *c);  /* api_tokenize.c */
void slora__api_logits_handler(struct slora_api_call *c);      /* api_tokenize.c */

#endif
