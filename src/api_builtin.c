/* api_builtin.c - request counters (kept when the host finishes a call)
 * and the built-in endpoints: /healthz, /readyz, /metrics (the counters,
 * then adapter and other sections) and /v1/models (see api.h).
 */
#include "api_state.h"

#include <slora/auth.h>
#include <slora/error.h>
#include <slora/registry.h>

#include <jansson.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* slorad_tenant_requests_total series kept; tenants seen after the first
 * MAX_TENANT_SERIES - 1 count as OTHER_TENANTS, so the series set stays
 * bounded whatever names clients send. */
#define MAX_TENANT_SERIES 256
#define OTHER_TENANTS "_other"

static const double latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10,   30};
_Static_assert(sizeof(latency_buckets) / sizeof(latency_buckets[0]) == SLORA__API_N_BUCKETS,
               "latency_counts has one counter per bucket plus +Inf");

struct slora_api_text {
    struct slora__buf b;
    bool failed;
};

/* ---- /metrics text ------------------------------------------------------ */

void slora_api_text_printf(struct slora_api_text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    t->failed = slora__buf_vprintf(&t->b, fmt, ap) != 0;
    va_end(ap);
}

/* ---- counters ----------------------------------------------------------- */

static struct slora__api_tenant_count *find_tenant(struct slora_api *api, const char *tenant)
{
    for (size_t i = 0; i < api->n_by_tenant; i++)
        if (!strcmp(api->by_tenant[i].tenant, tenant))
            return &api->by_tenant[i];
    return NULL;
}

static void count_tenant(struct slora_api *api, const char *tenant)
{
    struct slora__api_tenant_count *t = find_tenant(api, tenant);
    if (!t && api->n_by_tenant >= MAX_TENANT_SERIES - 1) {
        tenant = OTHER_TENANTS;
        t = find_tenant(api, tenant);
    }
    if (t) {
        t->count++;
        return;
    }
    t = realloc(api->by_tenant, (api->n_by_tenant + 1) * sizeof(*t));
    if (!t)
        return;
    api->by_tenant = t;
    char *name = strdup(tenant);
    if (!name)
        return;
    t[api->n_by_tenant++] = (struct slora__api_tenant_count){name, 1};
}

void slora_api_call_finish(struct slora_api_call *c, int status, uint64_t bytes, double seconds)
{
    struct slora_api *api = c->api;
    api->response_bytes += bytes;
    api->in_flight--;
    const char *name = c->route ? c->route->name : "unmatched";
    size_t i;
    for (i = 0; i < api->n_by_status; i++)
        if (api->by_status[i].route == name && api->by_status[i].status == status)
            break;
    if (i == api->n_by_status) {
        struct slora__api_route_status *r = realloc(api->by_status, (i + 1) * sizeof(*r));
        if (r) {
            api->by_status = r;
            r[api->n_by_status++] = (struct slora__api_route_status){name, status, 0};
        }
    }
    if (i < api->n_by_status)
        api->by_status[i].count++;
    size_t b = 0;
    while (b < SLORA__API_N_BUCKETS && seconds > latency_buckets[b])
        b++;
    api->latency_counts[b]++;
    api->latency_sum += seconds;
    api->latency_n++;
    /* A tenant key counts for its own tenant; otherwise the URL's tenant
     * counts only once the request succeeded (it named an existing adapter
     * or uploaded one): made-up names in failing requests add no series. */
    const char *tenant = c->principal.role == SLORA_ROLE_TENANT ? c->principal.tenant : NULL;
    if (!tenant && status < 400)
        tenant = c->log_tenant;
    if (tenant)
        count_tenant(api, tenant);
}

void slora_api_call_log_fields(const struct slora_api_call *c, const char **route,
                               const char **tenant, const char **adapter, const char **version)
{
    *route = c->route ? c->route->name : "unmatched";
    *tenant = c->log_tenant                            ? c->log_tenant
              : c->principal.role == SLORA_ROLE_TENANT ? c->principal.tenant
                                                       : "-";
    *adapter = c->log_adapter ? c->log_adapter : "-";
    *version = c->log_version ? c->log_version : "-";
}

/* ---- built-in endpoints ------------------------------------------------- */

static void healthz(struct slora_api_call *c)
{
    slora_api_call_respond_json(c, 200, json_pack("{s:s}", "status", "ok"));
}

static void readyz(struct slora_api_call *c)
{
    if (!c->api->ready) {
        slora_api_call_error(c, SLORA_EBUSY, "not ready: model or state not loaded yet");
        return;
    }
    char why[256] = "";
    const struct slora_api_deps *d = &c->api->deps;
    if (d->degraded && d->degraded(d->degraded_arg, why, sizeof(why))) {
        /* Still 200: it serves what it has loaded, the router keeps it. */
        slora_api_call_respond_json(c, 200,
                                    json_pack("{s:s, s:s}", "status", "degraded", "reason", why));
        return;
    }
    slora_api_call_respond_json(c, 200, json_pack("{s:s}", "status", "ready"));
}

static void metrics(struct slora_api_call *c)
{
    struct slora_api *api = c->api;
    struct slora_api_text t = {0};
    slora_api_text_printf(&t, "# HELP slorad_requests_total HTTP requests by route and status.\n"
                              "# TYPE slorad_requests_total counter\n");
    for (size_t i = 0; i < api->n_by_status; i++)
        slora_api_text_printf(&t, "slorad_requests_total{route=\"%s\",status=\"%d\"} %" PRIu64 "\n",
                              api->by_status[i].route, api->by_status[i].status,
                              api->by_status[i].count);
    slora_api_text_printf(&t, "# HELP slorad_request_duration_seconds Request latency.\n"
                              "# TYPE slorad_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t b = 0; b <= SLORA__API_N_BUCKETS; b++) {
        cum += api->latency_counts[b];
        if (b < SLORA__API_N_BUCKETS)
            slora_api_text_printf(&t,
                                  "slorad_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                                  latency_buckets[b], cum);
        else
            slora_api_text_printf(
                &t, "slorad_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    }
    slora_api_text_printf(&t,
                          "slorad_request_duration_seconds_sum %.6f\n"
                          "slorad_request_duration_seconds_count %" PRIu64 "\n"
                          "# HELP slorad_response_bytes_total Response body bytes written.\n"
                          "# TYPE slorad_response_bytes_total counter\n"
                          "slorad_response_bytes_total %" PRIu64 "\n",
                          api->latency_sum, api->latency_n, api->response_bytes);
    slora_api_text_printf(&t,
                          "# HELP slorad_requests_in_flight Requests being answered.\n"
                          "# TYPE slorad_requests_in_flight gauge\n"
                          "slorad_requests_in_flight %" PRId64 "\n"
                          "# HELP slorad_open_connections Open client connections.\n"
                          "# TYPE slorad_open_connections gauge\n"
                          "slorad_open_connections %" PRId64 "\n"
                          "# HELP slorad_blocked_connections Connections not read until the client "
                          "reads its queued responses (back-pressure).\n"
                          "# TYPE slorad_blocked_connections gauge\n"
                          "slorad_blocked_connections %" PRId64 "\n",
                          api->in_flight, api->connections, api->blocked);
    slora_api_text_printf(&t, "# HELP slorad_tenant_requests_total Requests per tenant.\n"
                              "# TYPE slorad_tenant_requests_total counter\n");
    for (size_t i = 0; i < api->n_by_tenant; i++)
        slora_api_text_printf(&t, "slorad_tenant_requests_total{tenant=\"%s\"} %" PRIu64 "\n",
                              api->by_tenant[i].tenant, api->by_tenant[i].count);
    slora__api_adapter_metrics(api, &t);
    for (size_t i = 0; i < api->n_sources; i++)
        api->sources[i].cb(api->sources[i].arg, &t);
    if (t.failed) {
        free(t.b.p);
        slora_api_call_error(c, SLORA_ENOMEM, NULL);
        return;
    }
    slora_api_call_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", t.b.p, t.b.len);
}

static void models(struct slora_api_call *c)
{
    struct slora_api *api = c->api;
    json_t *data = json_array();
    const char *base = api->deps.model_id ? api->deps.model_id : "base";
    json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s}", "id", base, "object", "model",
                                          "created", (json_int_t)0, "owned_by", "slorad"));
    if (api->deps.registry) {
        struct slora_registry_entry **list;
        size_t n;
        if (!slora_registry_list(api->deps.registry, slora_auth_list_filter(&c->principal), &list,
                                 &n)) {
            for (size_t i = 0; i < n; i++)
                json_array_append_new(
                    data, json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "id", list[i]->id, "object",
                                    "model", "created", (json_int_t)list[i]->created, "owned_by",
                                    list[i]->tenant, "parent", base, "version", list[i]->version));
            slora_registry_list_free(list, n);
        }
    }
    slora_api_call_respond_json(c, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

const struct slora_api_route slora__api_builtin_routes[] = {
    {SLORA_API_GET, "/healthz", "healthz", SLORA_API_AUTH_NONE, NULL, healthz},
    {SLORA_API_GET, "/readyz", "readyz", SLORA_API_AUTH_NONE, NULL, readyz},
    {SLORA_API_GET, "/metrics", "metrics", SLORA_API_AUTH_ADMIN, NULL, metrics},
    {SLORA_API_GET, "/v1/models", "models", SLORA_API_AUTH_ANY, NULL, models},
};
const size_t slora__api_n_builtin_routes =
    sizeof(slora__api_builtin_routes) / sizeof(slora__api_builtin_routes[0]);
