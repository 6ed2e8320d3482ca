/* api.h - the HTTP-independent JSON API: routes, calls, async completion,
 * streaming. Sits between the engine/registry (below) and the HTTP server
 * (above); knows nothing of sockets, libuv or llhttp.
 *
 * A *call* is one request being answered. The server (the *host*) creates it
 * when a request's headers are parsed, runs the header phase (routing, auth,
 * the route's head hook), reads the body, then dispatches the handler. The
 * handler completes the call exactly once, now or later, in one of two ways:
 *   - a whole response: slora_api_call_respond*() / slora_api_call_error();
 *   - a stream: slora_api_call_stream_begin(), any number of
 *     slora_api_call_stream_write(), then slora_api_call_stream_end()
 *     (the host sends it with chunked transfer encoding, e.g. SSE).
 *
 * Threads:
 *   - route handlers and head hooks run on the loop thread and must not
 *     block: parsing adapters, hashing, file I/O and compute go to a worker
 *     with slora_api_call_queue_work() (any thread), whose done
 *     callback runs back on the loop thread;
 *   - completion functions (respond*, error, set_header, stream_*) and
 *     slora_api_call_is_canceled() may be called from ANY thread (engine
 *     threads included); output is queued inside the call and written by the
 *     loop thread, in request order per connection;
 *   - everything marked "host" is for the server, loop thread only.
 *
 * Ownership: the host owns the call until the handler completes it and the
 * host has written (or discarded) its output; a handler may keep the call
 * pointer until it completes it, even after the client disconnected. When
 * the client goes away first, the call is marked canceled, its on_cancel
 * callback runs once on the loop thread, and later output is discarded; the
 * handler must still complete it (respond or stream_end) so it is freed.
 * Request strings and the body are owned by the call and valid until it is
 * completed (or taken with slora_api_call_take_body()).
 */
#ifndef SLORA_API_H
#define SLORA_API_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t;          /* jansson; only API files include <jansson.h> */
struct slora_api;       /* the API instance: routes, deps, metrics */
struct slora_api_call;  /* one request in flight */
struct slora_principal; /* auth.h: who is calling (NULL when auth is off) */
struct slora_config;
struct slora_model;
struct slora_tokenizer;
struct slora_registry;
struct slora_auth;
struct slora_engine;
struct slora_template;

enum slora_api_method {
    SLORA_API_GET = 1 << 0,
    SLORA_API_HEAD = 1 << 1,
    SLORA_API_POST = 1 << 2,
    SLORA_API_PUT = 1 << 3,
    SLORA_API_DELETE = 1 << 4,
    SLORA_API_OPTIONS = 1 << 5,
    SLORA_API_OTHER = 1 << 6, /* any method this API never routes */
};

#define SLORA_API_MAX_PARAMS 4  /* {placeholders} in one route pattern */
#define SLORA_API_MAX_HEADERS 8 /* extra response headers per call */

/* What the host parsed. Strings are NUL-terminated; absent headers are NULL.
 * slora_api_call_new() deep-copies it. */
struct slora_api_request {
    enum slora_api_method method;
    const char *method_name;   /* as sent ("GET"), for the access log */
    const char *path;          /* raw target path, without the query */
    const char *query;         /* after '?', "" when none */
    const char *authorization; /* Authorization */
    const char *if_match;      /* If-Match */
    const char *if_none_match; /* If-None-Match */
    const char *request_id;    /* X-Request-Id: the client's, else generated; never NULL */
    bool expect_continue;      /* Expect: 100-continue */
    int64_t content_length;    /* -1 when absent or chunked */
    bool chunked;              /* Transfer-Encoding: chunked */
};

/* One extra response header ("ETag", "Allow", "Retry-After", ...). */
struct slora_api_header {
    char *name;
    char *value;
};

/* ---- routes ------------------------------------------------------------ */

/* Handler: loop thread, after the whole body arrived. Must complete the
 * call, now or later (see above). */
typedef void (*slora_api_handler_cb)(struct slora_api_call *c);
/* Head hook: loop thread, after the headers, before the body is read (the
 * `Expect: 100-continue` decision). Return 0 to go on reading the body, or
 * complete the call with an error (slora_api_call_error) and return that
 * negative code: the host then sends it and closes without reading on. */
typedef int (*slora_api_head_cb)(struct slora_api_call *c);

enum slora_api_auth {
    SLORA_API_AUTH_NONE,  /* no key needed (healthz, readyz) */
    SLORA_API_AUTH_ANY,   /* any valid key (tenant or admin) when auth is on */
    SLORA_API_AUTH_ADMIN, /* the admin key when auth is on (metrics) */
};

/* One (method, pattern) pair. Pattern segments "{x}" capture one path
 * segment ([^/]*, not decoded; empty captures match so handlers answer 400)
 * into params[] in order. An unmatched path is 404; a matched pattern
 * without that method is 405 with Allow listing the pattern's methods. HEAD
 * runs the GET route; the host drops the body. */
struct slora_api_route {
    enum slora_api_method method;
    const char *pattern; /* "/v1/adapters/{tenant}/{name}" */
    const char *name;    /* metrics label, e.g. "adapters_put" */
    enum slora_api_auth auth;
    slora_api_head_cb head; /* optional */
    slora_api_handler_cb handler;
};

/* Called on the loop thread after a PUT (not a dry run) validated and
 * persisted the new version e, before the reply, when ?warm or ?pin was
 * given (warm: 0/1; pin: -1 absent, 0 unpin, 1 pin). The hook must call
 * resume(c, 0, NULL) to send the normal reply, or resume(c, err, message)
 * to fail the PUT (e.g. SLORA_ENOSPC when a pin cannot be honoured), from
 * any thread, exactly once. e is borrowed until resume. rsv is the pin
 * reservation put_admit made for e, or NULL; the hook owns it. */
struct slora_registry_entry;
struct slora_cache_reservation;
typedef void (*slora_api_put_resume_cb)(struct slora_api_call *c, int err, const char *message);
typedef void (*slora_api_put_hook_cb)(void *arg, struct slora_api_call *c,
                                      struct slora_registry_entry *e, int warm, int pin,
                                      struct slora_cache_reservation *rsv,
                                      slora_api_put_resume_cb resume);
/* Called on a worker thread for every PUT after validation and before the
 * new version e (unpublished) is persisted, pin as for the hook: a negative
 * return fails the whole PUT with that code and diag, changing nothing
 * (e.g. SLORA_ENOSPC when the pin the new version would get cannot fit).
 * On 0, *rsv is the pin reservation held for e or NULL: it goes to the
 * hook once e is published, otherwise (dry run, failed or abandoned PUT)
 * back through put_release. */
typedef int (*slora_api_put_admit_cb)(void *arg, const struct slora_registry_entry *e, int pin,
                                      struct slora_cache_reservation **rsv, char *diag,
                                      size_t diag_len);
/* Gives back a reservation of put_admit's that never reached the hook. */
typedef void (*slora_api_put_release_cb)(void *arg, struct slora_cache_reservation *rsv);

/* What the API serves from. All borrowed; they outlive the API. Members
 * the server does not have yet may be NULL (handlers answer 503). */
struct slora_api_deps {
    const struct slora_model *model;
    const struct slora_tokenizer *tokenizer;
    const char *model_id;
    struct slora_registry *registry;
    struct slora_auth *auth; /* replaced on SIGHUP via slora_api_set_auth */
    struct slora_engine *engine;
    /* The model's chat template, parsed once at startup, or NULL with
     * chat_template_error saying why (the model has none, or it failed to
     * parse): /v1/chat/completions then answers 400 with that. */
    const struct slora_template *chat_template;
    const char *chat_template_error;
    const struct slora_config *config; /* replaced on SIGHUP via slora_api_set_config */
    /* Delta-cache hook for `PUT ...?warm=1` / `?pin=0|1` (engine): NULL
     * ignores the flags. See slora_api_put_hook_cb. */
    slora_api_put_hook_cb put_hook;
    slora_api_put_admit_cb put_admit;     /* optional; arg is put_hook_arg */
    slora_api_put_release_cb put_release; /* required with put_admit */
    void *put_hook_arg;
    /* Optional, any thread: true while the server runs degraded (a shared
     * adapter store unreachable), with the reason in why; /readyz then
     * answers 200 {"status": "degraded", "reason": why}. */
    bool (*degraded)(void *arg, char *why, size_t why_len);
    void *degraded_arg;
};

/* Loop thread. Returns NULL on ENOMEM. The built-in routes (health,
 * metrics, models, adapters) are registered by slora_api_new. */
struct slora_api *slora_api_new(const struct slora_api_deps *deps);
void slora_api_free(struct slora_api *api);
/* Add routes (copied by reference: the array must be static). Later
 * registrations of an identical (method, pattern) win. 0 or SLORA_ENOMEM. */
int slora_api_add_routes(struct slora_api *api, const struct slora_api_route *routes, size_t n);
const struct slora_api_deps *slora_api_deps(const struct slora_api *api);
/* SIGHUP: new limits/tenants take effect for calls created afterwards.
 * Borrowed; the host keeps the old ones alive until every call is gone. */
void slora_api_set_config(struct slora_api *api, const struct slora_config *cfg);
void slora_api_set_auth(struct slora_api *api, struct slora_auth *auth);
/* Readiness for /readyz (model loaded, state restored). */
void slora_api_set_ready(struct slora_api *api, bool ready);

/* Extra /metrics text (engine, cache): cb appends Prometheus 0.0.4 lines
 * with slora_api_text_printf. Loop thread. */
struct slora_api_text;
typedef void (*slora_api_metrics_cb)(void *arg, struct slora_api_text *out);
int slora_api_add_metrics(struct slora_api *api, slora_api_metrics_cb cb, void *arg);
void slora_api_text_printf(struct slora_api_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- handler side --------------------------------------------------------- */

struct slora_api *slora_api_call_api(const struct slora_api_call *c);
const struct slora_api_request *slora_api_call_request(const struct slora_api_call *c);
/* i-th {param} of the matched pattern, raw (not percent-decoded). */
const char *slora_api_call_param(const struct slora_api_call *c, int i);
/* Value of query parameter `key` ("dry_run", "warm", "pin"), or NULL when
 * absent; "" when present without '='. Borrowed from the call. */
const char *slora_api_call_query(const struct slora_api_call *c, const char *key);
/* Caller identity resolved in the header phase (auth.h): the admin when
 * auth is off; anonymous on SLORA_API_AUTH_NONE routes without a key.
 * Borrowed from the call. */
const struct slora_principal *slora_api_call_principal(const struct slora_api_call *c);
/* Config in force when the call was created (limits). Borrowed. */
const struct slora_config *slora_api_call_config(const struct slora_api_call *c);
/* The request body (NULL, 0 before the body phase). Owned by the call. */
const void *slora_api_call_body(const struct slora_api_call *c, size_t *len);
/* Take ownership of the body (free() it); the call's body becomes empty. */
void *slora_api_call_take_body(struct slora_api_call *c, size_t *len);
/* Bodies are bounded per route: POST and PUT routes take a JSON document
 * of at most max_json_bytes, the others at most SLORA_API_BODYLESS_MAX
 * bytes (ignored). A head hook may set another limit, naming the config
 * key behind it (the error message quotes it); key NULL means the route
 * takes no body. Header phase only. */
#define SLORA_API_BODYLESS_MAX 1024
void slora_api_call_set_body_limit(struct slora_api_call *c, int64_t bytes, const char *key);
/* Handler-private state with its destructor (run when the call is freed,
 * on the loop thread). One slot per call. */
void slora_api_call_set_data(struct slora_api_call *c, void *data, void (*free_fn)(void *));
void *slora_api_call_data(const struct slora_api_call *c);
/* Access-log fields (copied); any may be NULL. Any thread, before completion. */
void slora_api_call_set_log(struct slora_api_call *c, const char *tenant, const char *adapter,
                            const char *version);

/* Worker: `work` runs on a worker thread (it must touch only what arg
 * owns), then `done` on the loop thread. Any thread (the engine hands
 * response formatting over this way). 0 or SLORA_ENOMEM/SLORA_EBUSY (then
 * neither callback runs). */
typedef void (*slora_api_work_cb)(void *arg);
typedef void (*slora_api_done_cb)(void *arg);
int slora_api_call_queue_work(struct slora_api_call *c, slora_api_work_cb work,
                              slora_api_done_cb done, void *arg);

/* Client disconnect: cb runs once on the loop thread (not at all when the
 * call completes first). Loop thread. */
typedef void (*slora_api_cancel_cb)(void *arg);
void slora_api_call_on_cancel(struct slora_api_call *c, slora_api_cancel_cb cb, void *arg);
/* Any thread: true once the client is gone (engine: stop at the next step). */
bool slora_api_call_is_canceled(const struct slora_api_call *c);

/* ---- completion (any thread) --------------------------------------------- */

/* Add a response header (copied) before completing. 0 or SLORA_ENOMEM/ERANGE. */
int slora_api_call_set_header(struct slora_api_call *c, const char *name, const char *value);
/* Complete with a body; takes ownership of body (malloc'd, may be NULL for
 * an empty body). content_type is a static string. */
void slora_api_call_respond(struct slora_api_call *c, int status, const char *content_type,
                            void *body, size_t len);
/* Complete with compact JSON (application/json); steals the reference. */
void slora_api_call_respond_json(struct slora_api_call *c, int status, struct json_t *obj);
/* Complete with {"error": {"message", "type", "code"}} from the error table
 * (status and type from err). A NULL fmt uses slora_strerror(err). */
void slora_api_call_error(struct slora_api_call *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void slora_api_call_verror(struct slora_api_call *c, int err, const char *fmt, va_list ap);

/* Start a chunked stream; headers go out now. */
void slora_api_call_stream_begin(struct slora_api_call *c, int status, const char *content_type);
/* Queue bytes (copied). Returns 0, SLORA_ECANCELED once the client is gone,
 * or SLORA_ENOMEM. */
int slora_api_call_stream_write(struct slora_api_call *c, const void *data, size_t len);
/* Complete a stream. */
void slora_api_call_stream_end(struct slora_api_call *c);

/* ---- host side (server.c, loop thread) ------------------------------------ */

struct slora_api_host {
    /* ANY thread: run work on a worker then done on the loop; 0 or
     * negative SLORA_E*. */
    int (*queue_work)(void *host, slora_api_work_cb work, slora_api_done_cb done, void *arg);
    /* ANY thread: c has new output; call slora_api_call_take(c) on the loop
     * thread soon. Holds a reference to c the host drops with
     * slora_api_call_unref after taking. */
    void (*wake)(void *host, struct slora_api_call *c);
};

/* A new call with one reference (the host's). NULL on ENOMEM. */
struct slora_api_call *slora_api_call_new(struct slora_api *api, const struct slora_api_host *host,
                                          void *host_ctx, const struct slora_api_request *req);
void slora_api_call_ref(struct slora_api_call *c);
void slora_api_call_unref(struct slora_api_call *c);
/* Header phase: route, 404/405, auth, head hook, body limit (413 for a
 * larger Content-Length). Returns 0 to read the body, or a negative code
 * when the call is already completed with an error. */
int slora_api_call_head(struct slora_api_call *c);
/* After a successful header phase: the most body bytes to read (a chunked
 * body is refused with 413 past it). */
int64_t slora_api_call_body_limit(const struct slora_api_call *c);
/* Body phase: takes ownership of body (malloc'd, NULL when empty) and runs
 * the handler. */
void slora_api_call_dispatch(struct slora_api_call *c, void *body, size_t len);
/* The client is gone: mark canceled, run on_cancel. */
void slora_api_call_cancel(struct slora_api_call *c);

/* Output produced since the last take. */
struct slora_api_output {
    bool has_head; /* first take after completion/stream_begin: status etc. valid */
    int status;
    const char *content_type;
    const struct slora_api_header *headers; /* (n_headers), owned by the call */
    int n_headers;
    bool stream; /* chunked response */
    char *data;  /* whole body, or stream bytes since the last take; caller frees */
    size_t len;
    bool done; /* completed: nothing more will come */
};
/* Take pending output; false when there is none. */
bool slora_api_call_take(struct slora_api_call *c, struct slora_api_output *out);
/* After the response was written: record metrics (route, status, latency). */
void slora_api_call_finish(struct slora_api_call *c, int status, uint64_t bytes, double seconds);
/* Access-log fields (borrowed; "-" when unset) and the route's metrics name. */
void slora_api_call_log_fields(const struct slora_api_call *c, const char **route,
                               const char **tenant, const char **adapter, const char **version);
/* Host-private pointer (the connection), NULL when none. Loop thread. */
void slora_api_call_set_host_data(struct slora_api_call *c, void *p);
void *slora_api_call_host_data(const struct slora_api_call *c);
/* The JSON error body a call would send for err/message, for errors the host
 * answers without a call (malformed request, 431, 408, connection limit):
 * malloc'd, *len set; NULL on ENOMEM. Any thread. */
char *slora_api_error_body(int err, const char *message, size_t *len);
/* Open-connection and blocked-connection (back-pressure) gauges for /metrics. */
void slora_api_conn_delta(struct slora_api *api, int delta);
void slora_api_blocked_delta(struct slora_api *api, int delta);

#endif
