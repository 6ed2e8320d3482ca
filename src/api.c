/* api.c - calls, routing, auth, JSON errors, the output queue between
 * handler threads and the host, /healthz, /readyz, /metrics, /v1/models
 * (see api.h). The adapter endpoints live in api_adapters.c.
 *
 * Invariants: a call is completed once (`completed`); its output (head,
 * body bytes, done) sits under `lock` until the host takes it; the host is
 * woken once per batch of output (`wake_pending`). Metrics and the route
 * table are touched only on the loop thread, so they need no lock.
 */
#include "api_internal.h"
#include "util/buf.h"

#include <slora/auth.h>
#include <slora/config.h>
#include <slora/error.h>
#include <slora/log.h>
#include <slora/registry.h>

#include <jansson.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_QUERY 16
/* slorad_tenant_requests_total series kept; tenants seen after the first
 * MAX_TENANT_SERIES - 1 count as OTHER_TENANTS, so the series set stays
 * bounded whatever names clients send. */
#define MAX_TENANT_SERIES 256
#define OTHER_TENANTS "_other"

static const double latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10,   30};
#define N_BUCKETS (sizeof(latency_buckets) / sizeof(latency_buckets[0]))

struct route_status {
    const char *route;
    int status;
    uint64_t count;
};

struct tenant_count {
    char *tenant;
    uint64_t count;
};

struct metrics_source {
    slora_api_metrics_cb cb;
    void *arg;
};

struct slora_api {
    struct slora_api_deps deps;
    struct slora__uploads *uploads;
    const struct slora_api_route **routes; /* (n_routes) */
    size_t n_routes;
    struct metrics_source *sources; /* (n_sources) */
    size_t n_sources;
    bool ready;
    /* metrics, loop thread */
    struct route_status *by_status; /* (n_by_status) */
    size_t n_by_status;
    struct tenant_count *by_tenant; /* (n_by_tenant) */
    size_t n_by_tenant;
    uint64_t latency_counts[N_BUCKETS + 1]; /* last: +Inf */
    double latency_sum;
    uint64_t latency_n;
    uint64_t response_bytes; /* bodies written */
    int64_t in_flight;
    int64_t connections;
    int64_t blocked; /* connections under back-pressure */
};

struct slora_api_text {
    struct slora__buf b;
    bool failed;
};

struct slora_api_call {
    int refcount; /* atomic */
    struct slora_api *api;
    const struct slora_api_host *host;
    void *host_ctx;
    void *host_data;
    struct slora_api_request req;
    char *strs;                  /* one block holding every request string */
    char *query_keys[MAX_QUERY]; /* split copy of req.query */
    char *query_vals[MAX_QUERY];
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
    double t_start;
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

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- text buffer -------------------------------------------------------- */

void slora_api_text_printf(struct slora_api_text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    t->failed = slora__buf_vprintf(&t->b, fmt, ap) != 0;
    va_end(ap);
}

/* ---- api ---------------------------------------------------------------- */

struct slora_api *slora_api_new(const struct slora_api_deps *deps)
{
    struct slora_api *api = calloc(1, sizeof(*api));
    if (!api)
        return NULL;
    api->deps = *deps;
    if (api->deps.auth)
        slora_auth_ref(api->deps.auth);
    if (!(api->uploads = slora__uploads_new()) ||
        slora_api_add_routes(api, slora__api_builtin_routes, slora__api_n_builtin_routes) ||
        slora_api_add_routes(api, slora__api_adapter_routes, slora__api_n_adapter_routes)) {
        slora_api_free(api);
        return NULL;
    }
    return api;
}

void slora_api_free(struct slora_api *api)
{
    if (!api)
        return;
    slora_auth_unref(api->deps.auth);
    slora__uploads_free(api->uploads);
    for (size_t i = 0; i < api->n_by_tenant; i++)
        free(api->by_tenant[i].tenant);
    free(api->by_tenant);
    free(api->by_status);
    free(api->sources);
    free(api->routes);
    free(api);
}

int slora_api_add_routes(struct slora_api *api, const struct slora_api_route *routes, size_t n)
{
    const struct slora_api_route **r =
        realloc(api->routes, (api->n_routes + n) * sizeof(*api->routes));
    if (!r)
        return SLORA_ENOMEM;
    api->routes = r;
    /* Newer registrations first so they win over identical older ones. */
    memmove(api->routes + n, api->routes, api->n_routes * sizeof(*api->routes));
    for (size_t i = 0; i < n; i++)
        api->routes[i] = &routes[i];
    api->n_routes += n;
    return 0;
}

struct slora__uploads *slora__api_uploads(struct slora_api *api)
{
    return api->uploads;
}

const struct slora_api_deps *slora_api_deps(const struct slora_api *api)
{
    return &api->deps;
}

void slora_api_set_config(struct slora_api *api, const struct slora_config *cfg)
{
    api->deps.config = cfg;
}

void slora_api_set_auth(struct slora_api *api, struct slora_auth *auth)
{
    slora_auth_ref(auth);
    slora_auth_unref(api->deps.auth);
    api->deps.auth = auth;
}

void slora_api_set_ready(struct slora_api *api, bool ready)
{
    api->ready = ready;
}

int slora_api_add_metrics(struct slora_api *api, slora_api_metrics_cb cb, void *arg)
{
    struct metrics_source *s = realloc(api->sources, (api->n_sources + 1) * sizeof(*s));
    if (!s)
        return SLORA_ENOMEM;
    api->sources = s;
    s[api->n_sources++] = (struct metrics_source){cb, arg};
    return 0;
}

void slora_api_conn_delta(struct slora_api *api, int delta)
{
    api->connections += delta;
}

void slora_api_blocked_delta(struct slora_api *api, int delta)
{
    api->blocked += delta;
}

/* ---- call: creation, accessors ------------------------------------------ */

static size_t opt_len(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *copy_str(char **dst, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*dst, s, n);
    const char *r = *dst;
    *dst += n;
    return r;
}

static int split_query(struct slora_api_call *c)
{
    const char *q = c->req.query;
    while (*q && c->n_query < MAX_QUERY) {
        size_t n = strcspn(q, "&");
        if (n) {
            const char *eq = memchr(q, '=', n);
            size_t klen = eq ? (size_t)(eq - q) : n;
            c->query_keys[c->n_query] = strndup(q, klen);
            c->query_vals[c->n_query] = eq ? strndup(eq + 1, n - klen - 1) : strdup("");
            if (!c->query_keys[c->n_query] || !c->query_vals[c->n_query]) {
                c->n_query++;
                return SLORA_ENOMEM;
            }
            c->n_query++;
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return 0;
}

static void call_free(struct slora_api_call *c)
{
    if (c->data_free)
        c->data_free(c->data);
    for (int i = 0; i < c->n_query; i++) {
        free(c->query_keys[i]);
        free(c->query_vals[i]);
    }
    for (int i = 0; i < SLORA_API_MAX_PARAMS; i++)
        free(c->params[i]);
    for (int i = 0; i < c->n_headers; i++) {
        free(c->headers[i].name);
        free(c->headers[i].value);
    }
    slora_auth_unref(c->auth);
    free(c->log_tenant);
    free(c->log_adapter);
    free(c->log_version);
    free(c->body);
    free(c->out.p);
    free(c->strs);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

struct slora_api_call *slora_api_call_new(struct slora_api *api, const struct slora_api_host *host,
                                          void *host_ctx, const struct slora_api_request *req)
{
    struct slora_api_call *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->refcount = 1;
    c->api = api;
    c->host = host;
    c->host_ctx = host_ctx;
    c->t_start = now_seconds();
    c->req = *req;
    size_t total = opt_len(req->method_name) + opt_len(req->path) + opt_len(req->query) +
                   opt_len(req->authorization) + opt_len(req->if_match) +
                   opt_len(req->if_none_match) + opt_len(req->request_id);
    c->strs = malloc(total ? total : 1);
    if (!c->strs) {
        call_free(c);
        return NULL;
    }
    char *p = c->strs;
    c->req.method_name = copy_str(&p, req->method_name ? req->method_name : "?");
    c->req.path = copy_str(&p, req->path ? req->path : "/");
    c->req.query = copy_str(&p, req->query ? req->query : "");
    c->req.authorization = copy_str(&p, req->authorization);
    c->req.if_match = copy_str(&p, req->if_match);
    c->req.if_none_match = copy_str(&p, req->if_none_match);
    c->req.request_id = copy_str(&p, req->request_id ? req->request_id : "-");
    if (!req->method_name || !req->path || !req->query || !req->request_id) {
        call_free(c);
        return NULL;
    }
    if (split_query(c)) {
        call_free(c);
        return NULL;
    }
    if (api->deps.auth)
        c->auth = slora_auth_ref(api->deps.auth);
    c->config = api->deps.config;
    c->principal.role = SLORA_ROLE_ANONYMOUS;
    api->in_flight++;
    return c;
}

void slora_api_call_ref(struct slora_api_call *c)
{
    __atomic_add_fetch(&c->refcount, 1, __ATOMIC_RELAXED);
}

void slora_api_call_unref(struct slora_api_call *c)
{
    if (c && __atomic_sub_fetch(&c->refcount, 1, __ATOMIC_ACQ_REL) == 0)
        call_free(c);
}

struct slora_api *slora_api_call_api(const struct slora_api_call *c)
{
    return c->api;
}

const struct slora_api_request *slora_api_call_request(const struct slora_api_call *c)
{
    return &c->req;
}

const char *slora_api_call_param(const struct slora_api_call *c, int i)
{
    return i >= 0 && i < SLORA_API_MAX_PARAMS ? c->params[i] : NULL;
}

const char *slora_api_call_query(const struct slora_api_call *c, const char *key)
{
    for (int i = 0; i < c->n_query; i++)
        if (!strcmp(c->query_keys[i], key))
            return c->query_vals[i];
    return NULL;
}

const struct slora_principal *slora_api_call_principal(const struct slora_api_call *c)
{
    return &c->principal;
}

const struct slora_config *slora_api_call_config(const struct slora_api_call *c)
{
    return c->config;
}

struct slora_auth *slora__api_call_auth(const struct slora_api_call *c)
{
    return c->auth;
}

const void *slora_api_call_body(const struct slora_api_call *c, size_t *len)
{
    *len = c->body_len;
    return c->body;
}

void *slora_api_call_take_body(struct slora_api_call *c, size_t *len)
{
    void *b = c->body;
    *len = c->body_len;
    c->body = NULL;
    c->body_len = 0;
    return b;
}

void slora_api_call_set_data(struct slora_api_call *c, void *data, void (*free_fn)(void *))
{
    if (c->data_free)
        c->data_free(c->data);
    c->data = data;
    c->data_free = free_fn;
}

void *slora_api_call_data(const struct slora_api_call *c)
{
    return c->data;
}

static void replace_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? strdup(s) : NULL;
}

void slora_api_call_set_log(struct slora_api_call *c, const char *tenant, const char *adapter,
                            const char *version)
{
    pthread_mutex_lock(&c->lock);
    replace_str(&c->log_tenant, tenant);
    replace_str(&c->log_adapter, adapter);
    replace_str(&c->log_version, version);
    pthread_mutex_unlock(&c->lock);
}

int slora_api_call_queue_work(struct slora_api_call *c, slora_api_work_cb work,
                              slora_api_done_cb done, void *arg)
{
    return c->host->queue_work(c->host_ctx, work, done, arg);
}

void slora_api_call_on_cancel(struct slora_api_call *c, slora_api_cancel_cb cb, void *arg)
{
    c->cancel_cb = cb;
    c->cancel_arg = arg;
}

bool slora_api_call_is_canceled(const struct slora_api_call *c)
{
    return __atomic_load_n(&c->canceled, __ATOMIC_ACQUIRE);
}

/* ---- completion --------------------------------------------------------- */

/* Under c->lock: schedule a take unless one is pending. Returns whether
 * the host must be woken (after unlocking). */
static bool need_wake(struct slora_api_call *c)
{
    if (c->wake_pending)
        return false;
    c->wake_pending = true;
    slora_api_call_ref(c);
    return true;
}

static void wake(struct slora_api_call *c, bool needed)
{
    if (needed)
        c->host->wake(c->host_ctx, c);
}

int slora_api_call_set_header(struct slora_api_call *c, const char *name, const char *value)
{
    int err = 0;
    pthread_mutex_lock(&c->lock);
    if (c->n_headers == SLORA_API_MAX_HEADERS) {
        err = SLORA_ERANGE;
    } else {
        char *n = strdup(name), *v = strdup(value);
        if (!n || !v) {
            free(n);
            free(v);
            err = SLORA_ENOMEM;
        } else {
            c->headers[c->n_headers++] = (struct slora_api_header){n, v};
        }
    }
    pthread_mutex_unlock(&c->lock);
    return err;
}

void slora_api_call_respond(struct slora_api_call *c, int status, const char *content_type,
                            void *body, size_t len)
{
    pthread_mutex_lock(&c->lock);
    if (c->completed || c->head_ready) {
        pthread_mutex_unlock(&c->lock);
        free(body);
        slora_error("request %s: completed twice", c->req.request_id);
        return;
    }
    c->completed = true;
    c->head_ready = true;
    c->status = status;
    c->content_type = content_type;
    free(c->out.p);
    c->out = (struct slora__buf){body, body ? len : 0, body ? len : 0};
    bool w = need_wake(c);
    pthread_mutex_unlock(&c->lock);
    wake(c, w);
}

/* Compact JSON plus a newline (readable curl output); steals obj. */
static char *dump_json(json_t *obj, size_t *len)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *body = realloc(s, n + 2);
    if (!body) {
        free(s);
        return NULL;
    }
    body[n] = '\n';
    body[n + 1] = '\0';
    *len = n + 1;
    return body;
}

void slora_api_call_respond_json(struct slora_api_call *c, int status, struct json_t *obj)
{
    size_t len;
    char *body = dump_json(obj, &len);
    if (!body) {
        /* Fixed text: building JSON just failed. */
        static const char nomem[] = "{\"error\":{\"message\":\"out of "
                                    "memory\",\"type\":\"server_error\",\"code\":\"nomem\"}}\n";
        char *copy = malloc(sizeof(nomem) - 1);
        if (copy)
            memcpy(copy, nomem, sizeof(nomem) - 1);
        slora_api_call_respond(c, 503, "application/json", copy, copy ? sizeof(nomem) - 1 : 0);
        return;
    }
    slora_api_call_respond(c, status, "application/json", body, len);
}

void slora_api_call_set_host_data(struct slora_api_call *c, void *p)
{
    c->host_data = p;
}

void *slora_api_call_host_data(const struct slora_api_call *c)
{
    return c->host_data;
}

static json_t *error_json(int err, const char *msg)
{
    return json_pack("{s:{s:s, s:s, s:s}}", "error", "message", msg, "type", slora_err_type(err),
                     "code", slora_err_name(err));
}

char *slora_api_error_body(int err, const char *message, size_t *len)
{
    return dump_json(error_json(err, message ? message : slora_strerror(err)), len);
}

void slora_api_call_verror(struct slora_api_call *c, int err, const char *fmt, va_list ap)
{
    char msg[1024];
    if (fmt)
        vsnprintf(msg, sizeof(msg), fmt, ap);
    else
        snprintf(msg, sizeof(msg), "%s", slora_strerror(err));
    slora_api_call_respond_json(c, slora_err_http_status(err), error_json(err, msg));
}

void slora_api_call_error(struct slora_api_call *c, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    slora_api_call_verror(c, err, fmt, ap);
    va_end(ap);
}

void slora_api_call_stream_begin(struct slora_api_call *c, int status, const char *content_type)
{
    pthread_mutex_lock(&c->lock);
    bool w = false;
    if (!c->completed && !c->head_ready) {
        c->head_ready = true;
        c->stream = true;
        c->status = status;
        c->content_type = content_type;
        w = need_wake(c);
    }
    pthread_mutex_unlock(&c->lock);
    wake(c, w);
}

int slora_api_call_stream_write(struct slora_api_call *c, const void *data, size_t len)
{
    if (slora_api_call_is_canceled(c))
        return SLORA_ECANCELED;
    pthread_mutex_lock(&c->lock);
    int err = c->stream && !c->completed ? slora__buf_add(&c->out, data, len) : SLORA_EINVAL;
    bool w = !err && need_wake(c);
    pthread_mutex_unlock(&c->lock);
    wake(c, w);
    return err;
}

void slora_api_call_stream_end(struct slora_api_call *c)
{
    pthread_mutex_lock(&c->lock);
    bool w = false;
    if (c->stream && !c->completed) {
        c->completed = true;
        w = need_wake(c);
    }
    pthread_mutex_unlock(&c->lock);
    wake(c, w);
}

/* ---- host side ---------------------------------------------------------- */

bool slora_api_call_take(struct slora_api_call *c, struct slora_api_output *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->lock);
    c->wake_pending = false;
    bool any = false;
    if (c->head_ready && !c->head_taken) {
        c->head_taken = true;
        out->has_head = true;
        out->status = c->status;
        out->content_type = c->content_type;
        out->headers = c->headers;
        out->n_headers = c->n_headers;
        out->stream = c->stream;
        any = true;
    }
    if (c->head_taken && (c->out.len || !c->stream)) {
        out->data = c->out.p;
        out->len = c->out.len;
        c->out = (struct slora__buf){0};
        any = any || out->len;
    }
    if (c->completed && c->head_taken && !c->done_taken) {
        c->done_taken = true;
        out->done = true;
        any = true;
    }
    pthread_mutex_unlock(&c->lock);
    return any;
}

static bool segment_match(const char *pattern, const char *path, char **params, int *n_params)
{
    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/')
            return false;
        pattern++;
        path++;
        size_t pl = strcspn(pattern, "/"), sl = strcspn(path, "/");
        if (pattern[0] == '{') {
            /* Empty captures match so that handlers answer 400 for them. */
            if (params) {
                params[*n_params] = strndup(path, sl);
                if (!params[*n_params])
                    return false;
            }
            (*n_params)++;
        } else if (pl != sl || memcmp(pattern, path, sl)) {
            return false;
        }
        pattern += pl;
        path += sl;
    }
    return !*pattern && !*path;
}

static void method_names(unsigned methods, char *buf, size_t len)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{SLORA_API_GET, "GET"},       {SLORA_API_HEAD, "HEAD"},
                 {SLORA_API_POST, "POST"},     {SLORA_API_PUT, "PUT"},
                 {SLORA_API_DELETE, "DELETE"}, {SLORA_API_OPTIONS, "OPTIONS"}};
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (methods & names[i].bit) {
            size_t n = strlen(buf);
            snprintf(buf + n, len - n, "%s%s", n ? ", " : "", names[i].name);
        }
}

static int route(struct slora_api_call *c)
{
    unsigned allowed = 0;
    for (size_t i = 0; i < c->api->n_routes; i++) {
        const struct slora_api_route *r = c->api->routes[i];
        int n = 0;
        if (!segment_match(r->pattern, c->req.path, NULL, &n))
            continue;
        allowed |= r->method;
        /* HEAD is GET without the body (the host drops it). */
        if (r->method != c->req.method &&
            !(c->req.method == SLORA_API_HEAD && r->method == SLORA_API_GET))
            continue;
        n = 0;
        if (!segment_match(r->pattern, c->req.path, c->params, &n)) {
            slora_api_call_error(c, SLORA_ENOMEM, NULL);
            return SLORA_ENOMEM;
        }
        c->route = r;
        return 0;
    }
    if (!allowed) {
        slora_api_call_error(c, SLORA_ENOTFOUND, "no such endpoint: %s", c->req.path);
        return SLORA_ENOTFOUND;
    }
    char allow[96];
    if (allowed & SLORA_API_GET)
        allowed |= SLORA_API_HEAD;
    method_names(allowed, allow, sizeof(allow));
    slora_api_call_set_header(c, "Allow", allow);
    slora_api_call_error(c, SLORA_EMETHOD, "method %s not allowed on %s (allowed: %s)",
                         c->req.method_name, c->req.path, allow);
    return SLORA_EMETHOD;
}

static int authorize(struct slora_api_call *c)
{
    enum slora_api_auth need = c->route->auth;
    if (!c->auth || !slora_auth_is_enabled(c->auth)) {
        c->principal.role = SLORA_ROLE_ADMIN;
        return 0;
    }
    if (need == SLORA_API_AUTH_NONE)
        return 0;
    char diag[256] = "";
    const char *h = c->req.authorization;
    int err =
        slora_auth_authenticate(c->auth, h, h ? strlen(h) : 0, &c->principal, diag, sizeof(diag));
    if (!err)
        err = need == SLORA_API_AUTH_ADMIN ? slora_auth_check_admin(&c->principal)
                                           : slora_auth_check_any(&c->principal);
    if (err) {
        if (err == SLORA_EUNAUTH)
            slora_api_call_set_header(c, "WWW-Authenticate", "Bearer");
        slora_api_call_error(c, err, "%s", diag[0] ? diag : slora_strerror(err));
    }
    return err;
}

void slora_api_call_set_body_limit(struct slora_api_call *c, int64_t bytes, const char *key)
{
    c->body_limit = bytes;
    c->body_limit_key = key;
}

int64_t slora_api_call_body_limit(const struct slora_api_call *c)
{
    return c->body_limit;
}

/* The body a route takes by its method, before its head hook (which may
 * set another): POST and PUT a JSON document, the others none. */
static void default_body_limit(struct slora_api_call *c)
{
    if (c->route->method & (SLORA_API_POST | SLORA_API_PUT))
        slora_api_call_set_body_limit(c, c->config ? c->config->max_json_bytes : INT64_MAX,
                                      "max_json_bytes");
    else
        slora_api_call_set_body_limit(c, SLORA_API_BODYLESS_MAX, NULL);
}

int slora_api_call_head(struct slora_api_call *c)
{
    int err = route(c);
    if (!err)
        err = authorize(c);
    if (!err)
        default_body_limit(c);
    if (!err && c->route->head)
        err = c->route->head(c);
    if (!err && c->req.content_length > c->body_limit) {
        err = SLORA_ETOOLARGE;
        if (c->body_limit_key)
            slora_api_call_error(c, err,
                                 "request body of %" PRId64 " bytes exceeds the limit of %" PRId64
                                 " bytes (%s)",
                                 c->req.content_length, c->body_limit, c->body_limit_key);
        else
            slora_api_call_error(c, err,
                                 "%s %s takes no request body (%" PRId64
                                 " bytes declared, at most %d accepted)",
                                 c->req.method_name, c->route->pattern, c->req.content_length,
                                 SLORA_API_BODYLESS_MAX);
    }
    return err;
}

void slora_api_call_dispatch(struct slora_api_call *c, void *body, size_t len)
{
    free(c->body);
    c->body = body;
    c->body_len = body ? len : 0;
    c->route->handler(c);
}

void slora_api_call_cancel(struct slora_api_call *c)
{
    if (__atomic_exchange_n(&c->canceled, 1, __ATOMIC_ACQ_REL))
        return;
    pthread_mutex_lock(&c->lock);
    bool done = c->completed;
    pthread_mutex_unlock(&c->lock);
    if (!done && c->cancel_cb)
        c->cancel_cb(c->cancel_arg);
}

static struct tenant_count *find_tenant(struct slora_api *api, const char *tenant)
{
    for (size_t i = 0; i < api->n_by_tenant; i++)
        if (!strcmp(api->by_tenant[i].tenant, tenant))
            return &api->by_tenant[i];
    return NULL;
}

static void count_tenant(struct slora_api *api, const char *tenant)
{
    struct tenant_count *t = find_tenant(api, tenant);
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
    t[api->n_by_tenant++] = (struct tenant_count){name, 1};
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
        struct route_status *r = realloc(api->by_status, (i + 1) * sizeof(*r));
        if (r) {
            api->by_status = r;
            r[api->n_by_status++] = (struct route_status){name, status, 0};
        }
    }
    if (i < api->n_by_status)
        api->by_status[i].count++;
    size_t b = 0;
    while (b < N_BUCKETS && seconds > latency_buckets[b])
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
        slora_api_call_respond_json(
            c, 200, json_pack("{s:s, s:s}", "status", "degraded", "reason", why));
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
    for (size_t b = 0; b <= N_BUCKETS; b++) {
        cum += api->latency_counts[b];
        if (b < N_BUCKETS)
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
