/* server.c - libuv event loop around http.c and api.c (see server.h).
 *
 * A connection handles one request at a time: bytes that arrive while a
 * request is being answered wait in `pending` (reading stops when that
 * grows past a bound), so pipelined requests are answered in order. States:
 *   IDLE     no request bytes yet         timer: idle_timeout (then close); a new
 *                                         connection's first request: header_timeout
 *   HEADERS  request started              timer: header_timeout from its first byte (408)
 *   BODY     headers accepted, body due   timer: body_timeout of silence, and at
 *                                         most body_deadline from the headers (408)
 *   WAIT     handler running / writing    no timer (unless blocked, below)
 *   CLOSING  last response queued         FIN once written, input discarded briefly
 *                                         (LINGER_MS, LINGER_BYTES), then close
 *
 * Back-pressure: output the client has not read yet stays queued in libuv.
 * Above max_queued_reply_bytes unsent bytes or max_queued_replies write
 * requests the connection is *blocked*: in IDLE it stops reading and parsing
 * (pipelined requests wait in the kernel), a stream's further output stays
 * in its call; both go on once the queue drained to half the limits. While
 * output is queued, a timer that fires (idle_timeout in IDLE or blocked,
 * the linger wait in CLOSING) closes the connection only when nothing was
 * written since it was armed: a slow reader gets every response, in order,
 * and a client that reads nothing is closed after idle_timeout_ms.
 * The loop thread owns every connection; handlers may complete calls from
 * other threads, which only queue output in the call and wake the loop
 * through `wake_async`. A connection is freed only in its close callback;
 * a call outlives its connection until its handler completes it.
 */
#include <slora/error.h>
#include <slora/http.h>
#include <slora/log.h>
#include <slora/server.h>

#include <uv.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PENDING_SLACK (64 * 1024)    /* read-ahead beyond max_header_bytes while busy */
#define LINGER_MS 2000               /* discard input after the final response this long */
#define LINGER_BYTES (64 * 1024)     /* and at most this much of it (a refused 64 MiB body) */
#define MAX_CONFIGS 1024             /* reloads kept alive (borrowed by calls) */

enum conn_state { C_IDLE, C_HEADERS, C_BODY, C_WAIT, C_CLOSING };

struct server;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct server *srv;
    struct conn *prev, *next; /* srv->conns */
    struct slora_http_conn *http;
    enum conn_state state;
    char *pending; /* (pending_cap) received, not yet parsed */
    size_t pending_len, pending_cap;
    bool reading;
    bool blocked;                /* too much output queued: see the top of the file */
    bool progress;               /* a write completed since the timer was armed */
    bool shut;                   /* shutdown (FIN) done */
    size_t queue_at_arm;         /* unsent bytes when the timer was armed */
    size_t discarded;            /* input read and dropped while lingering */
    int n_writes;                /* write requests not yet completed */
    bool close_after;            /* Connection: close, error, or draining */
    bool rejected;               /* head phase answered; body must not be read */
    bool dispatched;             /* the call's handler was run */
    bool processing;             /* inside conn_process */
    bool closed;                 /* uv_close called */
    int handles_open;            /* tcp + timer; free when 0 */
    struct slora_api_call *call; /* current request, host reference */
    int status;                  /* of the response being written */
    uint64_t bytes;              /* response body bytes written */
    bool streaming;
    uint64_t t_start;       /* uv_hrtime at the request's first byte */
    uint64_t body_due_ms;   /* uv_now when the whole body must have arrived */
};

struct work {
    uv_work_t req;
    struct server *srv;
    slora_api_work_cb work;
    slora_api_done_cb done;
    void *arg;
    struct work *next; /* posted from another thread, waiting for the loop */
};

struct server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer, watchdog_timer;
    uv_async_t wake_async;
    pthread_mutex_t wake_lock;
    struct slora_api_call **woken; /* (n_woken) calls with output, references */
    size_t n_woken, cap_woken;
    struct work *posted;           /* work queued from other threads (wake_lock) */
    pthread_t loop_thread;
    const struct slora_config *cfg;          /* current */
    struct slora_config *owned[MAX_CONFIGS]; /* reloaded configs, freed at exit */
    int n_owned;
    struct slora_api *api;
    const struct slora_server_hooks *hooks;
    struct slora_api_host host;
    struct conn *conns;
    int n_conns;
    int64_t live_calls; /* calls holding a host reference */
    int64_t jobs;       /* worker jobs queued or posted and not yet done (atomic) */
    uv_work_t reload_req;  /* the SIGHUP reload in flight, if reloading */
    struct slora_config *reload_cfg; /* its result (worker, then loop) */
    int reload_err;
    bool reloading;
    bool reload_again; /* SIGHUP during the reload: run one more after it */
    bool draining;
    bool listening;
    bool stopped;
};

static void conn_process(struct conn *c);
static void conn_close(struct conn *c);
static void conn_linger(struct conn *c);
static void conn_flush(struct conn *c);
static void conn_resume_reading(struct conn *c);
static void conn_unblock(struct conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* ---- sd_notify ------------------------------------------------------------ */

int slora_server_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0])
        return 0;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof(addr.sun_path) || (path[0] != '/' && path[0] != '@'))
        return SLORA_EINVAL;
    memcpy(addr.sun_path, path, n);
    if (path[0] == '@')
        addr.sun_path[0] = '\0'; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SLORA_EIO;
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, alen);
    close(fd);
    return w < 0 ? SLORA_EIO : 0;
}

/* ---- writing -------------------------------------------------------------- */

struct write_req {
    uv_write_t req;
    struct conn *conn;
    char *bufs[5]; /* head, chunk size, data, CRLF, last chunk */
    int n;
};

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    for (int i = 0; i < w->n; i++)
        free(w->bufs[i]);
    struct conn *c = w->conn;
    free(w);
    c->n_writes--;
    c->progress = true;
    if (status < 0 && !c->closed) {
        slora_debug("write failed: %s", uv_strerror(status));
        conn_close(c);
        return;
    }
    if (c->blocked && !c->closed)
        conn_unblock(c);
}

/* Queue bufs (taking ownership of each malloc'd pointer). */
static void conn_write(struct conn *c, char **bufs, const size_t *lens, int n)
{
    if (c->closed) {
        for (int i = 0; i < n; i++)
            free(bufs[i]);
        return;
    }
    struct write_req *w = calloc(1, sizeof(*w));
    uv_buf_t ub[5];
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!bufs[i] || !lens[i]) {
            free(bufs[i]);
            continue;
        }
        ub[k] = uv_buf_init(bufs[i], (unsigned)lens[i]);
        if (w)
            w->bufs[k] = bufs[i];
        k++;
    }
    if (!w || k == 0) {
        for (int i = 0; i < k; i++)
            free(ub[i].base);
        free(w);
        if (!w)
            conn_close(c);
        return;
    }
    w->n = k;
    w->conn = c;
    int err = uv_write(&w->req, (uv_stream_t *)&c->tcp, ub, (unsigned)k, on_write);
    if (!err)
        c->n_writes++;
    if (err) {
        for (int i = 0; i < k; i++)
            free(w->bufs[i]);
        free(w);
        conn_close(c);
    }
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void access_log(struct conn *c, const struct slora_api_request *req, const char *route,
                       const char *tenant, const char *adapter, const char *version)
{
    double ms = (double)(uv_hrtime() - c->t_start) / 1e6;
    slora_info("access id=%s method=%s path=%s status=%d bytes=%" PRIu64
               " ms=%.3f route=%s tenant=%s adapter=%s version=%s",
               req->request_id, req->method_name, req->path, c->status, c->bytes, ms, route, tenant,
               adapter, version);
}

/* ---- timers ------------------------------------------------------------- */

static void on_timeout(uv_timer_t *t);

static size_t unsent(struct conn *c)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
}

static void arm(struct conn *c, int64_t ms)
{
    c->progress = false;
    c->queue_at_arm = unsent(c);
    uv_timer_start(&c->timer, on_timeout, (uint64_t)ms, 0);
}

/* Queued output was written since the timer was armed. */
static bool made_progress(struct conn *c)
{
    return c->progress || unsent(c) < c->queue_at_arm;
}

/* BODY: the next silence timeout, cut short by the total body deadline so
 * a client trickling a byte now and then cannot hold the slot. */
static void arm_body(struct conn *c)
{
    uint64_t now = uv_now(&c->srv->loop);
    uint64_t left = c->body_due_ms > now ? c->body_due_ms - now : 0;
    uint64_t silence = (uint64_t)c->srv->cfg->body_timeout_ms;
    arm(c, (int64_t)(left < silence ? left : silence));
}

static void send_error_and_close(struct conn *c, int err, const char *msg, const char *request_id)
{
    size_t blen = 0;
    char *body = slora_api_error_body(err, msg, &blen);
    size_t hlen = 0;
    c->status = slora_err_http_status(err);
    char *head = slora_http_format_head(c->status, "application/json", NULL, 0, request_id, false,
                                        SLORA_HTTP_BODY_LENGTH, body ? blen : 0, &hlen);
    char *bufs[2] = {head, body};
    size_t lens[2] = {hlen, blen};
    c->bytes = blen;
    conn_write(c, bufs, lens, 2);
    struct slora_api_request req = {.method_name = "-", .path = "-", .request_id = request_id};
    const struct slora_api_request *r =
        slora_http_conn_in_request(c->http) ? slora_http_conn_request(c->http) : &req;
    if (!r->path)
        r = &req;
    access_log(c, r, "-", "-", "-", "-");
    conn_linger(c);
}

static void on_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->state == C_HEADERS || c->state == C_BODY) {
        char rid[17];
        slora_http_request_id(rid);
        const struct slora_api_request *r = slora_http_conn_request(c->http);
        const char *id = c->state == C_BODY && r->request_id ? r->request_id : rid;
        const char *why = c->state == C_HEADERS ? "timed out reading the request headers"
                          : uv_now(&c->srv->loop) >= c->body_due_ms
                              ? "the request body did not complete within body_deadline_ms"
                              : "timed out reading the request body";
        send_error_and_close(c, SLORA_ETIMEOUT, why, id);
        return;
    }
    /* Output still queued and the client read some of it: it gets
     * another period (idle_timeout, or the linger wait once the FIN is
     * out). */
    if (c->n_writes > 0 && made_progress(c)) {
        arm(c, c->srv->cfg->idle_timeout_ms);
        return;
    }
    conn_close(c);
}

/* ---- closing ------------------------------------------------------------ */

static void conn_free_handle(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    struct server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    slora_api_conn_delta(s->api, -1);
    slora_http_conn_free(c->http);
    free(c->pending);
    free(c);
    if (s->draining && s->n_conns == 0 && !s->stopped) {
        s->stopped = true;
        uv_stop(&s->loop);
    }
}

/* Drop the host reference of a call whose output was all taken. */
static void release_call(struct server *s, struct slora_api_call *call)
{
    s->live_calls--;
    slora_api_call_unref(call);
}

/* Take and discard a detached call's output; release it once completed. */
static void drain_orphan(struct server *s, struct slora_api_call *call)
{
    struct slora_api_output out;
    bool done = false;
    while (slora_api_call_take(call, &out)) {
        free(out.data);
        done = done || out.done;
    }
    if (done)
        release_call(s, call);
}

/* Detach the current call: the handler may still complete it later (its
 * wake then finds no connection, see on_wake). */
static void conn_drop_call(struct conn *c, int status)
{
    struct slora_api_call *call = c->call;
    if (!call)
        return;
    c->call = NULL;
    slora_api_call_set_host_data(call, NULL);
    slora_api_call_cancel(call);
    /* Never dispatched: no handler will complete it, so complete it here
     * (its head hook's state, e.g. a busy registry name, is released when
     * the call is freed). */
    if (!c->dispatched && !c->rejected)
        slora_api_call_error(call, SLORA_ECANCELED, "request body not received");
    slora_api_call_finish(call, status, c->bytes, (double)(uv_hrtime() - c->t_start) / 1e9);
    drain_orphan(c->srv, call);
}

static void conn_close(struct conn *c)
{
    if (c->closed)
        return;
    conn_drop_call(c, 499);
    c->closed = true;
    if (c->blocked) {
        c->blocked = false;
        slora_api_blocked_delta(c->srv->api, -1);
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_free_handle);
    uv_close((uv_handle_t *)&c->tcp, conn_free_handle);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->handle->data;
    free(req);
    if (status == 0 && !c->closed) {
        c->shut = true;
        if (c->reading)
            arm(c, LINGER_MS);
        else
            conn_close(c); /* stopped discarding: LINGER_BYTES */
    }
}

/* After the final response: FIN once it is written, then read and discard
 * for a while so the peer reads the response instead of a reset caused by
 * unread input (a refused upload body). */
static void conn_linger(struct conn *c)
{
    if (c->closed)
        return;
    conn_drop_call(c, c->status);
    c->state = C_CLOSING;
    c->pending_len = 0;
    uv_shutdown_t *sh = malloc(sizeof(*sh));
    if (!sh || uv_shutdown(sh, (uv_stream_t *)&c->tcp, on_shutdown)) {
        free(sh);
        conn_close(c);
        return;
    }
    if (!c->reading) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    /* The linger wait starts once the output is out (on_shutdown). */
    arm(c, c->n_writes ? c->srv->cfg->idle_timeout_ms : LINGER_MS);
}

/* ---- back-pressure ------------------------------------------------------ */

static bool over_limits(struct conn *c, size_t div)
{
    const struct slora_config *cfg = c->srv->cfg;
    return unsent(c) > (size_t)cfg->max_queued_reply_bytes / div ||
           c->n_writes > cfg->max_queued_replies / (int64_t)div;
}

/* Whether c must not produce more output now (see the top of the file);
 * blocks it when it goes over the limits. */
static bool conn_throttle(struct conn *c)
{
    if (c->blocked || !over_limits(c, 1))
        return c->blocked;
    c->blocked = true;
    slora_api_blocked_delta(c->srv->api, 1);
    /* IDLE stops reading; a stream's connection (WAIT) reads on, within
     * the pending bound, to notice a disconnect. */
    if (c->state == C_IDLE && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    arm(c, c->srv->cfg->idle_timeout_ms);
    return true;
}

/* After a write completed: go on once the queue drained to half. */
static void conn_unblock(struct conn *c)
{
    if (over_limits(c, 2))
        return;
    c->blocked = false;
    slora_api_blocked_delta(c->srv->api, -1);
    if (c->state == C_IDLE) {
        arm(c, c->srv->cfg->idle_timeout_ms);
        conn_resume_reading(c);
        conn_process(c);
    } else if (c->state == C_WAIT) {
        uv_timer_stop(&c->timer);
        conn_flush(c);
    }
}

/* ---- request processing ------------------------------------------------- */

static void conn_finish_response(struct conn *c)
{
    struct slora_api_call *call = c->call;
    const char *route, *tenant, *adapter, *version;
    slora_api_call_log_fields(call, &route, &tenant, &adapter, &version);
    access_log(c, slora_api_call_request(call), route, tenant, adapter, version);
    slora_api_call_finish(call, c->status, c->bytes, (double)(uv_hrtime() - c->t_start) / 1e9);
    slora_api_call_set_host_data(call, NULL);
    c->call = NULL;
    release_call(c->srv, call);
    if (c->close_after || c->srv->draining) {
        conn_linger(c);
        return;
    }
    c->state = C_IDLE;
    c->rejected = false;
    arm(c, c->srv->cfg->idle_timeout_ms);
    if (conn_throttle(c))
        return;
    conn_resume_reading(c);
    /* Inside conn_process (a synchronous answer) its loop goes on with
     * the next pipelined request; recursing would grow the stack per
     * request. */
    if (!c->processing)
        conn_process(c);
}

/* Write whatever output the call has; finish the response when done. */
static void conn_flush(struct conn *c)
{
    struct slora_api_output out;
    struct slora_api_call *call = c->call;
    /* A blocked stream's output waits in its call (bounded by the
     * request, as a whole response is). */
    while (call && c->call == call && !(c->streaming && conn_throttle(c)) &&
           slora_api_call_take(call, &out)) {
        char *bufs[5] = {0};
        size_t lens[5] = {0};
        int n = 0;
        if (out.has_head) {
            c->status = out.status;
            c->streaming = out.stream;
            bool keep = !c->close_after && !c->srv->draining;
            enum slora_http_body_mode mode =
                out.stream ? SLORA_HTTP_BODY_CHUNKED : slora_http_body_mode_for(out.status);
            const struct slora_api_request *req = slora_api_call_request(call);
            bufs[n] =
                slora_http_format_head(out.status, out.content_type, out.headers, out.n_headers,
                                       req->request_id, keep, mode, out.len, &lens[n]);
            n++;
            if (!keep)
                c->close_after = true;
            if (mode == SLORA_HTTP_BODY_NONE || req->method == SLORA_API_HEAD) {
                free(out.data);
                out.data = NULL;
                out.len = 0;
            }
        }
        if (out.data && out.len) {
            c->bytes += out.len;
            if (c->streaming) {
                char chunk[24];
                size_t cl = slora_http_chunk_head(chunk, out.len);
                bufs[n] = dup_bytes(chunk, cl);
                lens[n++] = cl;
                bufs[n] = out.data;
                lens[n++] = out.len;
                bufs[n] = dup_bytes("\r\n", 2);
                lens[n++] = 2;
            } else {
                bufs[n] = out.data;
                lens[n++] = out.len;
            }
        } else {
            free(out.data);
        }
        if (out.done && c->streaming) {
            bufs[n] = dup_bytes("0\r\n\r\n", 5);
            lens[n++] = 5;
        }
        conn_write(c, bufs, lens, n);
        if (out.done && c->call == call) {
            conn_finish_response(c);
            return;
        }
    }
}

static void start_call(struct conn *c)
{
    const struct slora_api_request *req = slora_http_conn_request(c->http);
    c->call = slora_api_call_new(c->srv->api, &c->srv->host, c->srv, req);
    c->dispatched = false;
    c->rejected = false;
    c->status = 0;
    c->bytes = 0;
    c->streaming = false;
    if (!c->call) {
        send_error_and_close(c, SLORA_ENOMEM, NULL, req->request_id);
        return;
    }
    c->srv->live_calls++;
    slora_api_call_set_host_data(c->call, c);
    if (!slora_http_conn_keep_alive(c->http))
        c->close_after = true;
    c->state = C_BODY;
    int err = slora_api_call_head(c->call);
    if (err) {
        c->rejected = true;
        /* A body still on the wire is never read: answer, then close.
         * Without a body the REQUEST event follows at once and sends it. */
        if (req->chunked || req->content_length > 0) {
            c->close_after = true;
            c->state = C_WAIT;
            conn_flush(c);
        }
        return;
    }
    slora_http_conn_set_body_limit(c->http, (uint64_t)slora_api_call_body_limit(c->call));
    if (req->expect_continue && (req->chunked || req->content_length > 0)) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        char *b = dup_bytes(cont, sizeof(cont) - 1);
        size_t l = sizeof(cont) - 1;
        conn_write(c, &b, &l, 1);
    }
    c->body_due_ms = uv_now(&c->srv->loop) + (uint64_t)c->srv->cfg->body_deadline_ms;
    arm_body(c);
}

static void conn_parse(struct conn *c)
{
    while (!c->closed && c->state != C_CLOSING && c->state != C_WAIT) {
        if (c->state == C_IDLE) {
            if (!c->pending_len || conn_throttle(c))
                return;
            c->state = C_HEADERS;
            c->t_start = uv_hrtime();
            arm(c, c->srv->cfg->header_timeout_ms);
        }
        size_t used;
        enum slora_http_event ev = slora_http_conn_feed(c->http, c->pending, c->pending_len, &used);
        memmove(c->pending, c->pending + used, c->pending_len - used);
        c->pending_len -= used;
        switch (ev) {
        case SLORA_HTTP_NEED_MORE:
            return;
        case SLORA_HTTP_HEAD:
            start_call(c);
            break;
        case SLORA_HTTP_REQUEST: {
            size_t len;
            void *body = slora_http_conn_take_body(c->http, &len);
            uv_timer_stop(&c->timer);
            c->state = C_WAIT;
            if (!slora_http_conn_keep_alive(c->http))
                c->close_after = true;
            if (c->rejected) {
                free(body);
                conn_flush(c);
                break;
            }
            c->dispatched = true;
            slora_api_call_dispatch(c->call, body, len);
            conn_flush(c);
            break;
        }
        case SLORA_HTTP_ERROR: {
            const char *msg, *rid;
            int err = slora_http_conn_error(c->http, &msg, &rid);
            if (c->call) {
                const struct slora_api_request *req = slora_api_call_request(c->call);
                rid = req->request_id;
                if (c->rejected) {
                    /* The head phase already answered: just close. */
                    c->close_after = true;
                    return;
                }
                conn_drop_call(c, slora_err_http_status(err));
            }
            char id[130];
            snprintf(id, sizeof(id), "%s", rid);
            send_error_and_close(c, err, msg, id);
            return;
        }
        }
    }
}

static void conn_process(struct conn *c)
{
    c->processing = true;
    conn_parse(c);
    c->processing = false;
}

/* ---- reading ---------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    size_t want = 64 * 1024;
    if (c->pending_cap - c->pending_len < want) {
        size_t cap = c->pending_cap ? c->pending_cap : want;
        while (cap - c->pending_len < want)
            cap *= 2;
        char *p = realloc(c->pending, cap);
        if (!p) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->pending = p;
        c->pending_cap = cap;
    }
    *buf = uv_buf_init(c->pending + c->pending_len, (unsigned)(c->pending_cap - c->pending_len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* EOF or reset: a request in flight is canceled. */
        c->reading = false;
        uv_read_stop(stream);
        conn_close(c);
        return;
    }
    if (c->state == C_CLOSING) {
        /* Lingering: discard, up to a bound (the client that sent a huge
         * body to be refused may get a reset rather than cost us reads). */
        c->discarded += (size_t)nread;
        if (c->discarded > LINGER_BYTES) {
            uv_read_stop(stream);
            c->reading = false;
            if (c->shut)
                conn_close(c);
        }
        return;
    }
    c->pending_len += (size_t)nread;
    if (c->state == C_BODY)
        arm_body(c);
    if (c->state == C_WAIT &&
        c->pending_len > (size_t)c->srv->cfg->max_header_bytes + PENDING_SLACK) {
        /* A busy connection buffers at most this much of what follows. */
        uv_read_stop(stream);
        c->reading = false;
        return;
    }
    conn_process(c);
}

static void conn_resume_reading(struct conn *c)
{
    if (!c->closed && !c->reading && c->state != C_CLOSING) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

/* ---- accepting ------------------------------------------------------------ */

static struct slora_http_limits limits_of(const struct slora_config *cfg)
{
    return (struct slora_http_limits){(size_t)cfg->max_header_bytes, (uint64_t)cfg->max_body_bytes};
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct server *s = listener->data;
    if (status < 0) {
        slora_warn("accept: %s", uv_strerror(status));
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    struct slora_http_limits lim = limits_of(s->cfg);
    if (!c || !(c->http = slora_http_conn_new(&lim))) {
        free(c);
        uv_tcp_t tmp;
        uv_tcp_init(&s->loop, &tmp);
        if (uv_accept(listener, (uv_stream_t *)&tmp) == 0)
            uv_close((uv_handle_t *)&tmp, NULL);
        return;
    }
    c->srv = s;
    uv_tcp_init(&s->loop, &c->tcp);
    uv_timer_init(&s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    slora_api_conn_delta(s->api, 1);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp)) {
        c->closed = true;
        uv_close((uv_handle_t *)&c->timer, conn_free_handle);
        uv_close((uv_handle_t *)&c->tcp, conn_free_handle);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->cfg->tcp_send_buffer_bytes > 0) {
        int size = (int)s->cfg->tcp_send_buffer_bytes;
        uv_send_buffer_size((uv_handle_t *)&c->tcp, &size);
    }
    c->t_start = uv_hrtime();
    c->reading = true;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (s->n_conns > s->cfg->max_connections) {
        char rid[17];
        slora_http_request_id(rid);
        send_error_and_close(c, SLORA_EBUSY, "too many connections (max_connections)", rid);
        return;
    }
    c->state = C_IDLE;
    /* A new connection gets the (shorter) header timeout to send its
     * first request: idle sockets cannot pile up. */
    arm(c, s->cfg->header_timeout_ms);
}

/* ---- host callbacks (api.h) ---------------------------------------------- */

static void work_run(uv_work_t *req)
{
    struct work *w = req->data;
    w->work(w->arg);
}

static void work_after(uv_work_t *req, int status)
{
    (void)status;
    struct work *w = req->data;
    struct server *s = w->srv;
    w->done(w->arg);
    free(w);
    __atomic_sub_fetch(&s->jobs, 1, __ATOMIC_RELAXED);
}

/* Loop thread. The pool refuses only while the loop is closing, and a
 * posted job has been promised: then it runs here. */
static void submit_posted(struct server *s, struct work *w)
{
    if (uv_queue_work(&s->loop, &w->req, work_run, work_after)) {
        w->work(w->arg);
        work_after(&w->req, 0);
    }
}

static int host_queue_work(void *host, slora_api_work_cb work, slora_api_done_cb done, void *arg)
{
    struct server *s = host;
    struct work *w = calloc(1, sizeof(*w));
    if (!w)
        return SLORA_ENOMEM;
    *w = (struct work){.srv = s, .work = work, .done = done, .arg = arg};
    w->req.data = w;
    __atomic_add_fetch(&s->jobs, 1, __ATOMIC_RELAXED);
    if (!pthread_equal(pthread_self(), s->loop_thread)) {
        /* uv_queue_work is loop-only: hand it over through the wake. */
        pthread_mutex_lock(&s->wake_lock);
        w->next = s->posted;
        s->posted = w;
        pthread_mutex_unlock(&s->wake_lock);
        uv_async_send(&s->wake_async);
        return 0;
    }
    if (uv_queue_work(&s->loop, &w->req, work_run, work_after)) {
        free(w);
        __atomic_sub_fetch(&s->jobs, 1, __ATOMIC_RELAXED);
        return SLORA_EBUSY;
    }
    return 0;
}

static void host_wake(void *host, struct slora_api_call *call)
{
    struct server *s = host;
    pthread_mutex_lock(&s->wake_lock);
    if (s->n_woken == s->cap_woken) {
        size_t cap = s->cap_woken ? s->cap_woken * 2 : 64;
        struct slora_api_call **p = realloc(s->woken, cap * sizeof(*p));
        if (!p) {
            pthread_mutex_unlock(&s->wake_lock);
            slora_error("out of memory queueing a response; request stalls");
            return;
        }
        s->woken = p;
        s->cap_woken = cap;
    }
    s->woken[s->n_woken++] = call;
    pthread_mutex_unlock(&s->wake_lock);
    uv_async_send(&s->wake_async);
}

static void on_wake(uv_async_t *a)
{
    struct server *s = a->data;
    pthread_mutex_lock(&s->wake_lock);
    struct slora_api_call **list = s->woken;
    size_t n = s->n_woken;
    s->woken = NULL;
    s->n_woken = s->cap_woken = 0;
    struct work *posted = s->posted;
    s->posted = NULL;
    pthread_mutex_unlock(&s->wake_lock);
    while (posted) {
        struct work *w = posted;
        posted = w->next;
        submit_posted(s, w);
    }
    for (size_t i = 0; i < n; i++) {
        struct slora_api_call *call = list[i];
        struct conn *c = slora_api_call_host_data(call);
        if (c && c->call == call) {
            conn_flush(c);
        } else if (!c) {
            drain_orphan(s, call);
        }
        slora_api_call_unref(call); /* the wake's reference */
    }
    free(list);
}

/* ---- signals, watchdog ---------------------------------------------------- */

/* Drain: idle connections go now, after the output they still have
 * queued (a blocked one loses only the requests it had not read). */
static void close_idle(struct server *s)
{
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == C_IDLE && !c->closed) {
            if (c->n_writes)
                conn_linger(c);
            else
                conn_close(c);
        }
    }
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct server *s = t->data;
    slora_warn("drain timeout: closing %d connection(s) with requests in flight", s->n_conns);
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;
    if (s->draining)
        return;
    slora_info("received %s: draining %d connection(s)", signum == SIGTERM ? "SIGTERM" : "SIGINT",
               s->n_conns);
    slora_server_notify("STOPPING=1");
    s->draining = true;
    if (s->listening) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        s->listening = false;
    }
    close_idle(s);
    if (s->n_conns == 0) {
        s->stopped = true;
        uv_stop(&s->loop);
        return;
    }
    uv_timer_start(&s->drain_timer, on_drain_timeout, (uint64_t)s->cfg->drain_timeout_ms, 0);
}

static void reload_work(uv_work_t *req)
{
    struct server *s = req->data;
    s->reload_err = s->hooks->reload_load(s->hooks->arg, &s->reload_cfg);
}

static void start_reload(struct server *s);

static void reload_done(uv_work_t *req, int status)
{
    struct server *s = req->data;
    struct slora_config *next = s->reload_cfg;
    s->reload_cfg = NULL;
    s->reloading = false;
    if (status || s->reload_err || !next) {
        slora_config_free(next);
        slora_warn("SIGHUP: reload failed, keeping the running configuration");
    } else if (s->draining) {
        slora_config_free(next);
    } else {
        s->hooks->reload_apply(s->hooks->arg, next);
        s->owned[s->n_owned++] = next;
        s->cfg = next;
        struct slora_http_limits lim = limits_of(next);
        for (struct conn *c = s->conns; c; c = c->next)
            slora_http_conn_set_limits(c->http, &lim);
        slora_info("SIGHUP: configuration reloaded (%d tenant(s))", next->n_tenants);
    }
    slora_server_notify("READY=1");
    if (s->reload_again && !s->draining) {
        s->reload_again = false;
        start_reload(s);
    }
}

/* Loop thread. Checked before the worker starts: a loaded config must
 * find a free owned[] slot when it is applied, and at most one reload is
 * in flight. */
static void start_reload(struct server *s)
{
    if (s->n_owned == MAX_CONFIGS) {
        slora_warn("SIGHUP: too many reloads (%d); restart the daemon", MAX_CONFIGS);
        return;
    }
    slora_server_notify("RELOADING=1");
    s->reloading = true;
    s->reload_req.data = s;
    if (uv_queue_work(&s->loop, &s->reload_req, reload_work, reload_done)) {
        s->reloading = false;
        slora_warn("SIGHUP: reload failed, keeping the running configuration");
        slora_server_notify("READY=1");
    }
}

static void on_hup(uv_signal_t *h, int signum)
{
    (void)signum;
    struct server *s = h->data;
    if (!s->hooks || !s->hooks->reload_load || !s->hooks->reload_apply)
        return;
    if (s->reloading) {
        if (!s->reload_again)
            slora_info("SIGHUP: reload in flight; reloading once more after it");
        s->reload_again = true;
        return;
    }
    start_reload(s);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    slora_server_notify("WATCHDOG=1");
}

static void start_watchdog(struct server *s)
{
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    if (!usec || (pid && strtol(pid, NULL, 10) != (long)getpid()))
        return;
    long long us = strtoll(usec, NULL, 10);
    if (us <= 0)
        return;
    uint64_t ms = (uint64_t)us / 2000;
    uv_timer_start(&s->watchdog_timer, on_watchdog, ms ? ms : 1, ms ? ms : 1);
}

/* ---- run ------------------------------------------------------------------ */

static int bind_listener(struct server *s, char *diag, size_t diag_len)
{
    char host[256];
    int port;
    if (slora_config_listen_split(s->cfg->listen, host, sizeof(host), &port)) {
        snprintf(diag, diag_len, "bad listen address '%s'", s->cfg->listen);
        return SLORA_EINVAL;
    }
    struct sockaddr_storage addr;
    const char *lookup = strcmp(host, "localhost") ? host : "127.0.0.1";
    if (uv_ip4_addr(lookup, port, (struct sockaddr_in *)&addr) &&
        uv_ip6_addr(lookup, port, (struct sockaddr_in6 *)&addr)) {
        snprintf(diag, diag_len, "listen address '%s': not a numeric IP address", host);
        return SLORA_EINVAL;
    }
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    int err = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (!err)
        err = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (err) {
        snprintf(diag, diag_len, "listen on %s: %s", s->cfg->listen, uv_strerror(err));
        uv_close((uv_handle_t *)&s->listener, NULL);
        return SLORA_EIO;
    }
    s->listening = true;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    char ip[64];
    int bport;
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof(ip));
        bport = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        slora_info("listening on [%s]:%d", ip, bport);
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof(ip));
        bport = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        slora_info("listening on %s:%d", ip, bport);
    }
    return 0;
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* After the last connection: wait for every worker job the API queued
 * (unbounded: each is bounded by its own limits, validation by the
 * expansion budget), since the caller frees the registry, cache and engine
 * they use once this returns; then (bounded) until every handler
 * completed its call, since a call's completion wakes this server.
 * Returns whether the server may be freed. */
static bool settle(struct server *s)
{
    if (s->listening)
        close_handle((uv_handle_t *)&s->listener);
    close_handle((uv_handle_t *)&s->sig_term);
    close_handle((uv_handle_t *)&s->sig_int);
    close_handle((uv_handle_t *)&s->sig_hup);
    close_handle((uv_handle_t *)&s->watchdog_timer);
    uv_timer_start(&s->drain_timer, on_tick, 50, 50);
    while (__atomic_load_n(&s->jobs, __ATOMIC_RELAXED) > 0)
        uv_run(&s->loop, UV_RUN_ONCE);
    uint64_t deadline = uv_hrtime() + (uint64_t)5e9;
    while (s->live_calls > 0 && uv_hrtime() < deadline)
        uv_run(&s->loop, UV_RUN_ONCE);
    if (s->live_calls > 0) {
        slora_error("%lld request(s) never completed by their handler", (long long)s->live_calls);
        return false;
    }
    close_handle((uv_handle_t *)&s->drain_timer);
    close_handle((uv_handle_t *)&s->wake_async);
    uv_run(&s->loop, UV_RUN_DEFAULT); /* close callbacks, queued worker jobs */
    return true;
}

int slora_server_run(const struct slora_config *cfg, struct slora_api *api,
                     const struct slora_server_hooks *hooks, char *diag, size_t diag_len)
{
    char threads[16];
    snprintf(threads, sizeof(threads), "%lld", (long long)cfg->worker_threads);
    setenv("UV_THREADPOOL_SIZE", threads, 0);
    struct server *s = calloc(1, sizeof(*s));
    if (!s)
        return SLORA_ENOMEM;
    s->cfg = cfg;
    s->api = api;
    s->hooks = hooks;
    s->host = (struct slora_api_host){host_queue_work, host_wake};
    s->loop_thread = pthread_self();
    pthread_mutex_init(&s->wake_lock, NULL);
    uv_loop_init(&s->loop);
    int err = bind_listener(s, diag, diag_len);
    if (err)
        goto out_close_loop;
    uv_async_init(&s->loop, &s->wake_async, on_wake);
    s->wake_async.data = s;
    uv_signal_init(&s->loop, &s->sig_term);
    uv_signal_init(&s->loop, &s->sig_int);
    uv_signal_init(&s->loop, &s->sig_hup);
    s->sig_term.data = s->sig_int.data = s->sig_hup.data = s;
    uv_signal_start(&s->sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&s->sig_hup, on_hup, SIGHUP);
    uv_timer_init(&s->loop, &s->drain_timer);
    uv_timer_init(&s->loop, &s->watchdog_timer);
    s->drain_timer.data = s->watchdog_timer.data = s;
    signal(SIGPIPE, SIG_IGN);
    slora_api_set_ready(api, true);
    slora_server_notify("READY=1");
    start_watchdog(s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    slora_api_set_ready(api, false);
    /* Calls canceled by the drain may still be running in the engine:
     * stop it before the loop goes, so their completions land on a live
     * loop and nothing completes a call afterwards. */
    if (hooks && hooks->stop)
        hooks->stop(hooks->arg);
    if (!settle(s))
        return 0; /* s stays allocated: a late completion may still wake it */
    slora_info("stopped");
out_close_loop:
    uv_loop_close(&s->loop);
    for (int i = 0; i < s->n_owned; i++)
        slora_config_free(s->owned[i]);
    pthread_mutex_destroy(&s->wake_lock);
    free(s->woken);
    free(s);
    return err;
}
