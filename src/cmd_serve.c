/* cmd_serve.c - `slorad serve` (the default command): load the config, the
 * base model and tokenizer, open the adapter store (state_dir, or Redis
 * shared with other replicas), restore the registry from it (Redis: start
 * the replica that follows the store's changes), then run the HTTP server
 * until SIGTERM/SIGINT. SIGHUP reloads the config with the same argv
 * (tenants, keys, limits; not the model or the store).
 *
 * Everything here runs on the main thread, which becomes the loop thread;
 * the registry's validate callback runs on worker threads and reads only
 * the immutable shape and limits in `serve.validate_ctx`.
 */
#include "internal.h"

#include <slora/adapter.h>
#include <slora/api.h>
#include <slora/api_infer.h>
#include <slora/auth.h>
#include <slora/cli.h>
#include <slora/config.h>
#include <slora/engine.h>
#include <slora/error.h>
#include <slora/log.h>
#include <slora/model.h>
#include <slora/registry.h>
#include <slora/replica.h>
#include <slora/server.h>
#include <slora/store.h>
#include <slora/tokenizer.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct serve {
    int argc;
    char **argv;
    struct slora_model *model;
    struct slora_registry_model validate_ctx; /* what uploads are validated against */
    struct slora_api *api;
    struct slora_api_infer *infer;
    struct slora_store *store;
    struct slora_replica *replica; /* NULL unless the store is shared */
};

/* Server shutdown hook: no engine job outlives the loop. */
static void stop_compute(void *arg)
{
    struct serve *sv = arg;
    slora_engine_stop(sv->infer->engine);
}

/* Worker thread: argv and the config file only. */
static int reload_load(void *arg, struct slora_config **out)
{
    struct serve *sv = arg;
    bool help;
    char diag[512];
    int err = slora_config_load(sv->argc, sv->argv, out, &help, diag, sizeof(diag));
    if (err)
        slora_error("reload: %s", diag);
    return err;
}

static void reload_apply(void *arg, const struct slora_config *cfg)
{
    struct serve *sv = arg;
    slora_log_set_level((enum slora_log_level)slora_log_level_parse(cfg->log_level));
    slora_api_set_config(sv->api, cfg);
    slora_api_set_auth(sv->api, cfg->auth);
}

/* slora_api_deps.degraded: a shared store that does not answer. */
static bool store_degraded(void *arg, char *why, size_t why_len)
{
    struct serve *sv = arg;
    struct slora_store_stats st;
    slora_store_stats(sv->store, &st);
    if (st.up)
        return false;
    snprintf(why, why_len,
             "adapter store (%s) unreachable: serving the adapters loaded, uploads and deletes "
             "refused",
             slora_store_kind_name(sv->store));
    return true;
}

static void store_metrics(void *arg, struct slora_api_text *t)
{
    struct serve *sv = arg;
    struct slora_store_stats st;
    slora_store_stats(sv->store, &st);
    slora_api_text_printf(t,
                          "# HELP slorad_store_up The adapter store answers (1) or not (0).\n"
                          "# TYPE slorad_store_up gauge\n"
                          "slorad_store_up{kind=\"%s\"} %d\n"
                          "# HELP slorad_store_commands_total Commands sent to the adapter store.\n"
                          "# TYPE slorad_store_commands_total counter\n"
                          "slorad_store_commands_total %llu\n"
                          "# HELP slorad_store_failures_total Store calls refused, timed out or "
                          "cut off.\n"
                          "# TYPE slorad_store_failures_total counter\n"
                          "slorad_store_failures_total %llu\n"
                          "# HELP slorad_store_timeouts_total Store calls that timed out.\n"
                          "# TYPE slorad_store_timeouts_total counter\n"
                          "slorad_store_timeouts_total %llu\n"
                          "# HELP slorad_store_connects_total Connections (re)established to the store.\n"
                          "# TYPE slorad_store_connects_total counter\n"
                          "slorad_store_connects_total %llu\n",
                          slora_store_kind_name(sv->store), st.up ? 1 : 0,
                          (unsigned long long)st.commands, (unsigned long long)st.failures,
                          (unsigned long long)st.timeouts, (unsigned long long)st.reconnects);
    if (!sv->replica)
        return;
    struct slora_replica_stats rs;
    slora_replica_stats(sv->replica, &rs);
    slora_api_text_printf(
        t,
        "# HELP slorad_replica_stream_events_total Change-stream entries read.\n"
        "# TYPE slorad_replica_stream_events_total counter\n"
        "slorad_replica_stream_events_total %llu\n"
        "# HELP slorad_replica_loaded_total Versions loaded from the store (other replicas' "
        "uploads).\n"
        "# TYPE slorad_replica_loaded_total counter\n"
        "slorad_replica_loaded_total %llu\n"
        "# HELP slorad_replica_unloaded_total Versions dropped after another replica deleted them.\n"
        "# TYPE slorad_replica_unloaded_total counter\n"
        "slorad_replica_unloaded_total %llu\n"
        "# HELP slorad_replica_rescans_total Whole-store scans (start, trimmed stream, lost "
        "data).\n"
        "# TYPE slorad_replica_rescans_total counter\n"
        "slorad_replica_rescans_total %llu\n"
        "# HELP slorad_replica_gaps_total Gaps found in the change stream (trimmed entries).\n"
        "# TYPE slorad_replica_gaps_total counter\n"
        "slorad_replica_gaps_total %llu\n"
        "# HELP slorad_replica_failures_total Versions that could not be loaded.\n"
        "# TYPE slorad_replica_failures_total counter\n"
        "slorad_replica_failures_total %llu\n"
        "# HELP slorad_replica_skipped_total Stream entries already applied.\n"
        "# TYPE slorad_replica_skipped_total counter\n"
        "slorad_replica_skipped_total %llu\n"
        "# HELP slorad_replica_revision Last store revision applied.\n"
        "# TYPE slorad_replica_revision gauge\n"
        "slorad_replica_revision %lld\n",
        (unsigned long long)rs.events, (unsigned long long)rs.loaded,
        (unsigned long long)rs.unloaded, (unsigned long long)rs.rescans,
        (unsigned long long)rs.gaps, (unsigned long long)rs.failures,
        (unsigned long long)rs.skipped, (long long)rs.rev);
}

static int open_store(const struct slora_config *cfg, struct slora_store **out)
{
    const struct slora_config_store *c = &cfg->store;
    bool redis = c->kind && !strcmp(c->kind, "redis");
    struct slora_store_options so = {
        .kind = redis ? SLORA_STORE_REDIS : SLORA_STORE_DIR,
        .dir = cfg->state_dir,
        .url = c->url,
        .prefix = c->prefix ? c->prefix : "slorad:",
        .password_file = c->password_file,
        .timeout_ms = (int)c->timeout_ms,
        .stream_max_len = c->stream_max_len,
    };
    char diag[512];
    int err = slora_store_open(&so, out, diag, sizeof(diag));
    if (err)
        slora_error("adapter store: %s", diag);
    else if (redis)
        slora_info("adapter store: redis %s, prefix '%s'", c->url, so.prefix);
    return err;
}

int slora_cmd_serve(int argc, char **argv)
{
    struct slora_config *cfg;
    bool help;
    char diag[1024];
    int err = slora_config_load(argc, argv, &cfg, &help, diag, sizeof(diag));
    if (help) {
        fputs(slora_config_usage(), stdout);
        return 0;
    }
    if (err) {
        fprintf(stderr, "slorad serve: %s\n", diag);
        return 2;
    }
    slora_log_set_level((enum slora_log_level)slora_log_level_parse(cfg->log_level));
    int status = 1;
    struct serve sv = {.argc = argc, .argv = argv};
    struct slora_model_opts mo = {.max_context = (int)cfg->max_context};
    if (slora_model_load(cfg->model, &mo, &sv.model, diag, sizeof(diag))) {
        slora_error("%s", diag);
        goto out_free_config;
    }
    struct slora_tokenizer *tok = NULL;
    const struct slora_tokenizer *vocab;
    if (slora__cmd_tokenizer(sv.model, cfg->tokenizer, &vocab, &tok, diag, sizeof(diag))) {
        slora_error("%s", diag);
        goto out_free_model;
    }
    sv.validate_ctx.shape = sv.model->cfg.shape;
    slora_adapter_limits_default(&sv.validate_ctx.limits);
    sv.validate_ctx.limits.max_params = cfg->max_adapter_params;
    sv.validate_ctx.limits.max_expand_bytes = cfg->max_expand_bytes;
    sv.validate_ctx.limits.max_expand_work = cfg->max_expand_work;
    sv.validate_ctx.n_threads = 1;
    if (open_store(cfg, &sv.store))
        goto out_free_tokenizer;
    struct slora_registry_options ropt = {
        .store = sv.store,
        .validate = slora_registry_validate_adapter,
        .release = slora_adapter_unref,
        .ctx = &sv.validate_ctx,
        .max_file_bytes = (size_t)cfg->max_body_bytes,
    };
    struct slora_registry *reg;
    if (slora_registry_new(&ropt, &reg, diag, sizeof(diag))) {
        slora_error("registry: %s", diag);
        goto out_free_store;
    }
    struct slora_registry_restore_report rep;
    if (slora_registry_restore(reg, &rep, diag, sizeof(diag))) {
        slora_error("restore: %s", diag);
        goto out_free_registry;
    }
    slora_info("model %s (%s): %d layers, dim %d, vocab %d; %d adapter(s) restored, %d skipped",
               cfg->model_id, cfg->model, sv.model->cfg.shape.n_layers, sv.model->cfg.shape.dim,
               sv.model->cfg.shape.vocab_size, rep.restored, rep.skipped);
    struct slora_api_infer *inf;
    if (slora_api_infer_start(sv.model, reg, cfg, &inf)) {
        slora_error("out of memory starting the engine");
        goto out_free_registry;
    }
    if (slora_store_is_shared(sv.store)) {
        struct slora_replica_options po = {
            .registry = reg,
            .max_file_bytes = (size_t)cfg->max_body_bytes,
            .on_change = slora_api_infer_adapter_changed,
            .arg = inf,
        };
        if (slora_replica_start(&po, &sv.replica, diag, sizeof(diag))) {
            slora_error("replica: %s", diag);
            goto out_stop_infer;
        }
    }
    struct slora_api_deps deps = {
        .model = sv.model,
        .tokenizer = vocab,
        .model_id = cfg->model_id,
        .registry = reg,
        .auth = cfg->auth,
        .engine = inf->engine,
        .chat_template = inf->chat_template,
        .chat_template_error = inf->chat_template_error,
        .config = cfg,
        .put_hook = slora_api_infer_put_hook,
        .put_admit = slora_api_infer_put_admit,
        .put_release = slora_api_infer_put_release,
        .put_hook_arg = inf,
        .degraded = store_degraded,
        .degraded_arg = &sv,
    };
    sv.api = slora_api_new(&deps);
    if (!sv.api || slora_api_infer_register(sv.api, inf) ||
        slora_api_add_metrics(sv.api, store_metrics, &sv)) {
        slora_error("out of memory");
        goto out_stop_infer;
    }
    sv.infer = inf;
    struct slora_server_hooks hooks = {
        .reload_load = reload_load, .reload_apply = reload_apply, .stop = stop_compute, .arg = &sv};
    err = slora_server_run(cfg, sv.api, &hooks, diag, sizeof(diag));
    if (err)
        slora_error("%s", diag);
    else
        status = 0;
out_stop_infer:
    slora_replica_stop(sv.replica);
    slora_api_infer_stop(inf);
    slora_api_free(sv.api);
out_free_registry:
    slora_registry_free(reg);
out_free_store:
    slora_store_free(sv.store);
out_free_tokenizer:
    slora_tokenizer_free(tok);
out_free_model:
    slora_model_free(sv.model);
out_free_config:
    slora_config_free(cfg);
    return status;
}
