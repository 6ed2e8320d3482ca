/* api_infer.h - the inference endpoints and the service behind them:
 *   POST /v1/completions   OpenAI-compatible completions (stream: SSE)
 *   POST /v1/logits        exact logits of a prompt (last or all positions)
 *   POST /v1/tokenize      text -> token ids
 *   POST /v1/detokenize    token ids -> text
 * plus delta-cache and engine metrics in /metrics and the `PUT
 * /v1/adapters/...?warm=1|pin=1|pin=0` hook.
 *
 * The service owns the delta cache and the engine, built from the config
 * (threads, max_batch, delta_cache_bytes, queue_depth,
 * max_sequences_per_tenant); the
 * cache asks the registry which adapter versions are current, so replaced
 * or deleted versions are freed once no request uses them.
 *
 * Threads: _start/_stop/_register on the main (loop) thread before/after
 * serving. Request parsing, tokenization and the /v1/logits JSON run on
 * API worker threads, compute on the engine thread (which hands logits
 * back as floats); handlers never block the loop.
 */
#ifndef SLORA_API_INFER_H
#define SLORA_API_INFER_H

#include <slora/api.h>

#include <stdint.h>

struct slora_cache;
struct slora_config;
struct slora_engine;
struct slora_model;
struct slora_registry;

struct slora_api_infer {
    struct slora_cache *cache;   /* owned */
    struct slora_engine *engine; /* owned; put it in slora_api_deps.engine */
    struct slora_registry *registry; /* borrowed */
};

/* Create the cache and the engine. 0 or SLORA_ENOMEM. */
/* The compute budget `threads` (config; <= 0: cpus, itself <= 0 when
 * unknown: 1): the engine's forward team gets all of it (*engine = threads;
 * the team sleeps between steps and a step uses only the threads its work
 * is worth, pool.h), one delta-cache generation thread (*gen = 1) shares
 * the cores while a cache miss is generated. */
void slora_api_infer_split_threads(int64_t threads, long cpus, int *engine, int *gen);

int slora_api_infer_start(const struct slora_model *m, struct slora_registry *reg,
                          const struct slora_config *cfg, struct slora_api_infer **out);
/* Cancel running requests (their calls complete), stop the engine, free
 * the cache. NULL is a no-op. */
void slora_api_infer_stop(struct slora_api_infer *inf);

/* Add the routes and the metrics to api. deps of api must carry the
 * model, tokenizer, model_id, engine (inf->engine) and registry. */
int slora_api_infer_register(struct slora_api *api, struct slora_api_infer *inf);

/* slora_api_put_hook_cb for slora_api_deps.put_hook, arg = the service:
 * on a worker, retires the replaced version, then warms (warm=1), pins
 * (pin=1: SLORA_ENOSPC when it cannot fit) or unpins (pin=0). */
void slora_api_infer_put_hook(void *arg, struct slora_api_call *c,
                              struct slora_registry_entry *e, int warm, int pin,
                              struct slora_cache_reservation *rsv,
                              slora_api_put_resume_cb resume);
/* slora_api_put_admit_cb for slora_api_deps.put_admit, arg = the service:
 * SLORA_ENOSPC before anything is stored when the pin the new version would
 * hold (pin=1, or the id's pin carried over) cannot fit the budget;
 * otherwise the bytes of that pin stay reserved in the cache (*rsv) until
 * the hook pins or the PUT is given up. */
int slora_api_infer_put_admit(void *arg, const struct slora_registry_entry *e, int pin,
                              struct slora_cache_reservation **rsv, char *diag, size_t diag_len);
/* slora_api_put_release_cb for slora_api_deps.put_release, arg = the
 * service. */
void slora_api_infer_put_release(void *arg, struct slora_cache_reservation *rsv);
/* slora_replica_change_cb (arg: the slora_api_infer): another replica
 * changed id. The delta cache frees the replaced version's deltas and pins
 * or unpins id as the stored flag says (a pin that does not fit here is
 * logged and dropped: pins are a local promise). */
void slora_api_infer_adapter_changed(void *arg, const char *id, struct slora_registry_entry *e);

#endif
