/* api_mix.h - per-request adapter mixes of the inference endpoints; not a
 * public interface.
 *
 * A request may name, instead of one adapter in `model` (then the base id),
 *   "adapters": [{"id": "tenant/name", "weight": w}, ...]
 * meaning W + sum_i w_i dW_i: 1 to SLORA_WEIGHTS_MAX_TERMS distinct ids,
 * each an adapter the caller may use (another tenant's adapter is 404 with
 * the message of an unknown one), each weight a number that is finite as
 * a float (any sign; 0 drops the adapter's term). The mix holds the
 * registry entries it resolved, so the request runs on those versions
 * whatever is uploaded meanwhile; the engine gets each adapter's cached
 * deltas (one cache entry per adapter and version, none per mix).
 *
 * Threads: resolve on a worker; the mix then belongs to its job.
 */
#ifndef SLORA_API_MIX_H
#define SLORA_API_MIX_H

#include "util/buf.h"

#include <slora/auth.h>
#include <slora/engine.h>
#include <slora/registry.h>
#include <slora/weights.h>

#include <jansson.h>

#include <stddef.h>

struct slora_api_call;

struct slora__api_mix {
    int n;                                                       /* 0: no mix */
    struct slora_registry_entry *entry[SLORA_WEIGHTS_MAX_TERMS]; /* (n) references */
    float weight[SLORA_WEIGHTS_MAX_TERMS];                       /* (n) */
};

/* Read the request's `adapters` value v (not null) into the zeroed *mix,
 * looking each id up in reg (NULL: none is found) for principal p. 0, or
 * SLORA_EINVAL / SLORA_ENOTFOUND / SLORA_ENOMEM with msg saying which
 * entry and why; *mix then holds what it resolved so far (clear it). */
int slora__api_mix_resolve(struct slora__api_mix *mix, json_t *v, struct slora_registry *reg,
                           const struct slora_principal *p, char *msg, size_t msg_len);
/* Drop the entries; the mix is empty again. */
void slora__api_mix_clear(struct slora__api_mix *mix);
/* The engine's view of the mix: ads (mix->n), borrowing from the mix. */
void slora__api_mix_engine(const struct slora__api_mix *mix, struct slora_engine_adapter *ads);
/* Append `,"adapters":[{"id":...,"version":...,"weight":...},...]` (the
 * weights as applied: the shortest decimal that reads back as the float).
 * 0 or SLORA_ENOMEM. */
int slora__api_mix_json(const struct slora__api_mix *mix, struct slora__buf *b);
/* Access-log fields: the request's tenant, the ids and the versions each
 * joined by ','. */
void slora__api_mix_log(const struct slora__api_mix *mix, struct slora_api_call *c,
                        const char *tenant);

#endif
