/* api_internal.h - shared between the API files (api.c, api_call.c,
 * api_builtin.c, api_adapters.c and the engine's api_infer.c); not a public
 * interface. Loop thread only. */
#ifndef SLORA_API_INTERNAL_H
#define SLORA_API_INTERNAL_H

#include <slora/api.h>

#include <stdbool.h>
#include <stddef.h>

extern const struct slora_api_route slora__api_builtin_routes[];
extern const size_t slora__api_n_builtin_routes;
extern const struct slora_api_route slora__api_adapter_routes[];
extern const size_t slora__api_n_adapter_routes;

/* The auth snapshot the call was created with (a reference the call holds;
 * NULL when the API has none). */
struct slora_auth *slora__api_call_auth(const struct slora_api_call *c);
/* Adapter counters for /metrics (registry stats and live objects). */
void slora__api_adapter_metrics(struct slora_api *api, struct slora_api_text *t);

/* The per-tenant upload slots of api_adapters.c, one set per API (NULL on
 * ENOMEM; _free(NULL) is a no-op). */
struct slora__uploads;
struct slora__uploads *slora__uploads_new(void);
void slora__uploads_free(struct slora__uploads *u);
struct slora__uploads *slora__api_uploads(struct slora_api *api);

#endif
