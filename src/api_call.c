/* api_call.c - one API call: creation from the host's request, accessors
 * for handlers, completion (whole responses, JSON errors, streams) into the
 * output queue the host takes from on the loop thread, and cancellation
 * (see api.h; invariants in api_state.h).
 */
#include "api_state.h"

#include <slora/auth.h>
#include <slora/error.h>
#include <slora/log.h>

#include <jansson.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    while (*q && c->n_query < SLORA__API_MAX_QUERY) {
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
