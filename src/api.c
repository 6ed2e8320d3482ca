/* api.c - the API object (deps, route table, /metrics sources, connection
 * gauges) and a call's head phase: routing, auth and the body limit, then
 * dispatch to the route's handler (see api.h). A call's life and output are
 * in api_call.c, counters and built-in endpoints in api_builtin.c, the
 * adapter endpoints in api_adapters.c; api_state.h holds the structs.
 */
#include "api_state.h"

#include <slora/auth.h>
#include <slora/config.h>
#include <slora/error.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    struct slora__api_metrics_source *s = realloc(api->sources, (api->n_sources + 1) * sizeof(*s));
    if (!s)
        return SLORA_ENOMEM;
    api->sources = s;
    s[api->n_sources++] = (struct slora__api_metrics_source){cb, arg};
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

/* ---- head phase --------------------------------------------------------- */

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
