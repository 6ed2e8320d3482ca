/* engine.h - continuous batching of sequences over one base model and any
 * number of adapters.
 *
 * A job is a prompt plus a step callback, on the base model, one adapter
 * or a mix of adapters (W + sum_i weight_i dW_i). The engine owns one
 * compute thread: it admits queued jobs between steps (round-robin across
 * tenants), gets each of a job's adapters from the delta cache (a miss is
 * generated on a cache thread while the others keep decoding; a mix's
 * misses are queued together), points the sequence's weight set at them,
 * prefills new prompts in the same batched slora_fwd_run as every active
 * sequence's decode row, and hands each sequence its logits. The forward
 * groups rows by weight-set id, so matrices no adapter touches run as one
 * GEMM over the whole batch and adapted ones one GEMM per (adapter,
 * version) group: a mix is a weight set of its own whose terms point at the
 * cached entries' deltas with the mix's weights as scales, so it shares its
 * adapters' groups with every other sequence using them (alone or in
 * another mix), and the cache holds one entry per (adapter, version), never
 * one per mix. A single adapter of weight 1 uses its entry's own weight set.
 * Each sequence has its own KV cache.
 *
 * What a sequence does with its logits (sampling, stop rules, text) is the
 * job's business: the step callback chooses the next token. The engine
 * knows nothing of tokenizers or HTTP.
 *
 * Threads: slora_engine_submit, slora_engine_cancel, slora_engine_stats
 * and slora_engine_tenants may be called from any thread (the event loop
 * included: they never block on compute). step and done callbacks run on
 * the engine thread without engine locks held; they must be quick and must
 * not call slora_engine_free. `threads` is the engine's share of the
 * compute budget: the engine thread plus BLAS's own
 * (slora_blas_set_threads). Delta generation runs on the cache's threads
 * (the daemon splits its `threads` budget: docs/configuration.md).
 *
 * Ownership: the model and the cache outlive the engine. A
 * job's strings and prompt are copied at submit; the engine holds its own
 * adapter references until the job ends, and its cache handles (so the
 * versions it started on) until then too.
 */
#ifndef SLORA_ENGINE_H
#define SLORA_ENGINE_H

#include <slora/adapter.h>
#include <slora/cache.h>
#include <slora/model.h>

#include <stdbool.h>
#include <stdint.h>

struct slora_engine_config {
    int threads;         /* total compute threads; 0 = 1 */
    int max_batch;       /* sequences in flight (active or getting weights); 0 = 16 */
    int max_queue;       /* jobs waiting for a slot; beyond: SLORA_EBUSY; 0 = 64 */
    int tenant_max_seqs; /* per tenant, waiting + in flight; beyond: SLORA_EQUOTA; 0 = no limit */
    /* Per tenant, adapter deltas its admitted sequences wait for (cache
     * misses; a mix counts each adapter it waits for): a tenant's next job
     * is admitted only while fewer are outstanding, the others wait in its
     * queue, so one tenant's misses cannot hold every batch slot or fill
     * the generation queue. 0 = no limit. */
    int tenant_max_acquiring;
};

struct slora_engine_result {
    int err;           /* 0, SLORA_ECANCELED, or why the weights could not be built */
    char diag[256];    /* message for err (a failed generation: that adapter's) */
    int n_prompt;      /* prompt tokens processed */
    int n_completion;  /* tokens the step callback sampled */
    bool length;       /* stopped because the context (seq_len) is full */
};

/* Logits (vocab) of position pos; may be modified. Returns the token
 * sampled from them (>= 0) or -1 when none was (logits-only requests).
 * Set *stop to end the sequence after this call; otherwise the returned
 * token is fed at pos + 1. In all_logits mode it is also called for every
 * prompt position before the last, and its result is then ignored. */
typedef int (*slora_engine_step_cb)(void *arg, float *logits, int pos, bool *stop);
/* Called exactly once per accepted job, last. */
typedef void (*slora_engine_done_cb)(void *arg, const struct slora_engine_result *r);

/* One adapter of a job and its weight in W + sum_i weight_i dW_i. */
struct slora_engine_adapter {
    const char *id;                   /* "tenant/name" (cache key) */
    const char *version;              /* adapter version (cache key) */
    struct slora_adapter *adapter;    /* borrowed for the call; the engine refs it */
    float weight;                     /* finite; 1 for a plain adapter */
};

struct slora_engine_job {
    const char *tenant;               /* fairness and counters; "" for none */
    const struct slora_engine_adapter *adapters; /* (n_adapters), distinct ids; copied */
    int n_adapters;                   /* 0 = the base model .. SLORA_WEIGHTS_MAX_TERMS */
    const int *prompt;                /* (n_prompt) token ids in [0, vocab) */
    int n_prompt;                     /* 1 .. seq_len - 1 */
    bool all_logits;                  /* step sees every prompt position */
    slora_engine_step_cb step;
    slora_engine_done_cb done;
    void *arg;
};

struct slora_engine;

/* Start the engine thread. NULL on ENOMEM or thread failure. */
struct slora_engine *slora_engine_new(const struct slora_model *m, struct slora_cache *cache,
                                      const struct slora_engine_config *cfg);
/* Shutdown, step 1: cancel every job (their done callbacks run with
 * SLORA_ECANCELED), wait for them and stop the thread; later submits get
 * SLORA_EBUSY. Blocks (a job getting its weights waits for the
 * generation). Idempotent; call from one thread, never from a callback. */
void slora_engine_stop(struct slora_engine *e);
/* slora_engine_stop, then free. NULL is a no-op. */
void slora_engine_free(struct slora_engine *e);

/* Queue a job. Returns 0 (done will be called; *ticket identifies the job
 * for cancel), SLORA_EINVAL (bad prompt; adapters missing a field, too
 * many, a weight not finite, an id twice), SLORA_EQUOTA (tenant at its
 * concurrency limit), SLORA_EBUSY (queue full or shutting down) or
 * SLORA_ENOMEM; done is not called on error. */
int slora_engine_submit(struct slora_engine *e, const struct slora_engine_job *job,
                        uint64_t *ticket);
/* Stop the job at its next step (done gets SLORA_ECANCELED). Unknown or
 * finished tickets are ignored. */
void slora_engine_cancel(struct slora_engine *e, uint64_t ticket);

struct slora_engine_stats {
    int waiting;        /* queued jobs */
    int running;        /* jobs admitted (getting weights or decoding) */
    int acquiring;      /* of those, waiting for their deltas to be generated */
    uint64_t steps;     /* slora_fwd_run calls */
    uint64_t rows;      /* rows through those calls */
    uint64_t base_products;  /* base-matrix products those calls ran */
    uint64_t delta_products; /* adapter delta-group products */
    uint64_t submitted;
    uint64_t rejected_busy;
    uint64_t rejected_quota;
    uint64_t canceled;
    bool stopping; /* slora_engine_stop was called: submits are refused */
};
void slora_engine_stats(struct slora_engine *e, struct slora_engine_stats *out);

struct slora_engine_tenant_stats {
    const char *tenant;        /* valid during the callback */
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    int sequences;             /* waiting + running now */
};
/* Call cb for every tenant seen so far (engine lock held: cb must not call
 * back into the engine). */
void slora_engine_tenants(struct slora_engine *e,
                          void (*cb)(void *arg, const struct slora_engine_tenant_stats *t),
                          void *arg);

#endif
