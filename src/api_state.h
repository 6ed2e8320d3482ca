/* api_state.h - the API object and the call, shared by the files that
 * implement them (api.c: the API, routing, auth and the head phase;
 * api_call.c: a call's life and its output queue to the host;
 * api_builtin.c: request counters and the built-in endpoints). Not for
 * endpoint files (api_adapters.c, the engine's): they use api.h's accessors.
 *
 * Invariants: a call is completed once (`completed`); its output (head,
 * body bytes, done) sits under `lock` until the host takes it; the host is
 * woken once per batch of output (`wake_pending`). Metrics and the route
 * table are touched only on the loop thread, so they need no lock.
 */
#ifndef SLORA_API_STATE_H
#define SLORA_API_STATE_H

#include "api_internal.h"
#include "util/buf.h"

#include <slora/auth.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLORA__API_MAX_QUERY 16
/* Finite buckets of slorad_request_duration_seconds (api_builtin.c). */
#define SLORA__API_N_BUCKETS 14

/* slorad_requests_total: one (route, status) pair. */
struct slora__api_route_status {
    const char *route;
    int status;
    uint64_t count;
};

/* slorad_tenant_requests_total: one tenant. */
struct slora__api_tenant_count {
    char *tenant;
    uint64_t count;
};

/* A /metrics section added with slora_api_add_metrics. */
struct slora__api_metrics_source {
    slora_api_metrics_cb cb;
    void *arg;
};

struct slora_api {
    struct slora_api_deps deps;
    struct slora__uploads *uploads;
    const struct slora_api_route **routes; /* (n_routes) */
    size_t n_routes;
    struct slora__api_metrics_source *sources; /* (n_sources) */
    size_t n_sources;
    bool ready;
    /* metrics, loop thread */
    struct slora__api_route_status *by_status; /* (n_by_status) */
    size_t n_by_status;
    struct slora__api_tenant_count *by_tenant; /* (n_by_tenant) */
    size_t n_by_tenant;
    uint64_t latency_counts[SLORA__API_N_BUCKETS + 1]; /* last: +Inf */
    double latency_sum;
    uint64_t latency_n;
    uint64_t response_bytes; /* bodies written */
    int64_t in_flight;
    int64_t connections;
    int64_t blocked; /* connections under back-pressure */
};

struct slora_api_call {
    int refcount; /* atomic */
    struct slora_api *api;
    const struct slora_api_host *host;
    void *host_ctx;
    void *host_data;
    struct slora_api_request req;
    char *strs;                             /* one block holding every request string */
    char *query_keys[SLORA__API_MAX_QUERY]; /* split copy of req.query */
    char *query_vals[SLORA__API_MAX_QUERY];
    int n_query;
    const struct slora_api_route *route;
    char *params[SLORA_API_MAX_PARAMS];
    struct slora_principal principal;
    struct slora_auth *auth; /* reference taken at creation */
    const struct slora_config *config;
    void *body;
    size_t body_len;
    int64_t body_limit;         /* set in the header phase */
    const char *body_limit_key; /* the config key behind it; NULL: no body taken */
    void *data;
    void (*data_free)(void *);
    char *log_tenant, *log_adapter, *log_version;
    slora_api_cancel_cb cancel_cb;
    void *cancel_arg;
    int canceled; /* atomic */
    /* output, under lock */
    pthread_mutex_t lock;
    bool completed;
    bool head_ready, head_taken;
    bool done_taken;
    bool wake_pending;
    int status;
    const char *content_type;
    bool stream;
    struct slora_api_header headers[SLORA_API_MAX_HEADERS];
    int n_headers;
    struct slora__buf out; /* whole body, or stream bytes not yet taken */
};

#endif
