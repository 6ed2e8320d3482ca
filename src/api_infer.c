/* api_infer.c - the inference service (see api_infer.h): the delta cache
 * and the engine, the inference routes (each endpoint family in its own
 * file over the shared job of api_job.c: api_completions.c, api_chat.c,
 * api_tokenize.c), the chat template parsed once, their /metrics and the
 * adapter PUT hooks (warm, pin) and replica changes.
 */
#include "api_job.h"

#include <slora/api_infer.h>
#include <slora/cache.h>
#include <slora/config.h>
#include <slora/engine.h>
#include <slora/error.h>
#include <slora/log.h>
#include <slora/model.h>
#include <slora/registry.h>
#include <slora/template.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct slora_api_route routes[] = {
    {SLORA_API_POST, "/v1/completions", "completions", SLORA_API_AUTH_ANY, NULL,
     slora__api_completions_handler},
    {SLORA_API_POST, "/v1/chat/completions", "chat_completions", SLORA_API_AUTH_ANY, NULL,
     slora__api_chat_handler},
    {SLORA_API_POST, "/v1/logits", "logits", SLORA_API_AUTH_ANY, NULL, slora__api_logits_handler},
    {SLORA_API_POST, "/v1/tokenize", "tokenize", SLORA_API_AUTH_ANY, NULL,
     slora__api_tokenize_handler},
    {SLORA_API_POST, "/v1/detokenize", "detokenize", SLORA_API_AUTH_ANY, NULL,
     slora__api_detokenize_handler},
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
    char msg[SLORA__API_MSG_LEN];
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
    *engine = total;
}

/* The dense deltas' type: exact F32 over float bases, BF16 over quantized
 * ones unless configured (docs/configuration.md, delta_dtype). */
static enum slora_dtype delta_type(const struct slora_model *m, const char *name)
{
    if (!strcmp(name, "auto"))
        return slora_model_is_quantized(m) ? SLORA_DTYPE_BF16 : SLORA_DTYPE_F32;
    return (enum slora_dtype)slora_dtype_parse(name);
}

/* Parse the model's chat template once. One that does not parse is a
 * warning, not a failure: completions still work, chat answers 400. */
static int chat_template(const struct slora_model *m, struct slora_api_infer *inf)
{
    if (!m->chat_template) {
        snprintf(inf->chat_template_error, sizeof(inf->chat_template_error),
                 "the model has no chat template (GGUF tokenizer.chat_template or "
                 "tokenizer_config.json chat_template)");
        return 0;
    }
    char diag[256];
    int err = slora_template_new(m->chat_template, strlen(m->chat_template), &inf->chat_template,
                                 diag, sizeof(diag));
    if (err == SLORA_ENOMEM)
        return err;
    if (err) {
        snprintf(inf->chat_template_error, sizeof(inf->chat_template_error),
                 "the model's chat template cannot be used: %s", diag);
        slora_warn("%s; /v1/chat/completions will answer 400", inf->chat_template_error);
    }
    return 0;
}

int slora_api_infer_start(const struct slora_model *m, struct slora_registry *reg,
                          const struct slora_config *cfg, struct slora_api_infer **out)
{
    int err;
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
    if ((err = chat_template(m, inf))) {
        free(inf);
        return err;
    }
    inf->cache = slora_cache_new(m, &cc);
    inf->engine = inf->cache ? slora_engine_new(m, inf->cache, &ec) : NULL;
    if (!inf->engine) {
        slora_cache_free(inf->cache);
        slora_template_free(inf->chat_template);
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
    slora_template_free(inf->chat_template);
    free(inf);
}
