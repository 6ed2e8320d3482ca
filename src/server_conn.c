/* server_conn.c - one HTTP connection on the loop: accepting it, reading
 * into `pending`, parsing requests (http.c) and handing them to the API as
 * calls, timeouts, and closing (server_internal.h; output is
 * server_output.c).
 *
 * A connection handles one request at a time: bytes that arrive while a
 * request is being answered wait in `pending` (reading stops when that
 * grows past a bound), so pipelined requests are answered in order. States:
 *   IDLE     no request bytes yet         timer: idle_timeout (then close); a new
 *                                         connection's first request: header_timeout
 *   HEADERS  request started              timer: header_timeout from its first byte (408)
 *   BODY     headers accepted, body due   timer: body_timeout of silence, and at
 *                                         most body_deadline from the headers (408)
 *   WAIT     handler running / writing    no timer (unless blocked, server_output.c)
 *   CLOSING  last response queued         FIN once written, input discarded briefly
 *                                         (LINGER_MS, LINGER_BYTES), then close
 *
 * While output is queued, a timer that fires (idle_timeout in IDLE or
 * blocked, the linger wait in CLOSING) closes the connection only when
 * nothing was written since it was armed: a slow reader gets every
 * response, in order, and a client that reads nothing is closed after
 * idle_timeout_ms.
 *
 * Threads: loop thread only. A connection is freed only in its close
 * callback; a call outlives its connection until its handler completes it.
 */
#include "server_internal.h"

#include <slora/error.h>
#include <slora/http.h>
#include <slora/log.h>

#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PENDING_SLACK (64 * 1024) /* read-ahead beyond max_header_bytes while busy */
#define LINGER_MS 2000            /* discard input after the final response this long */
#define LINGER_BYTES (64 * 1024)  /* and at most this much of it (a refused 64 MiB body) */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* ---- timers ------------------------------------------------------------- */

static void on_timeout(uv_timer_t *t);

size_t slora__server_conn_unsent(struct slora__server_conn *c)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
}

void slora__server_conn_arm(struct slora__server_conn *c, int64_t ms)
{
    c->progress = false;
    c->queue_at_arm = slora__server_conn_unsent(c);
    uv_timer_start(&c->timer, on_timeout, (uint64_t)ms, 0);
}

/* Queued output was written since the timer was armed. */
static bool made_progress(struct slora__server_conn *c)
{
    return c->progress || slora__server_conn_unsent(c) < c->queue_at_arm;
}

/* BODY: the next silence timeout, cut short by the total body deadline so
 * a client trickling a byte now and then cannot hold the slot. */
static void arm_body(struct slora__server_conn *c)
{
    uint64_t now = uv_now(&c->srv->loop);
    uint64_t left = c->body_due_ms > now ? c->body_due_ms - now : 0;
    uint64_t silence = (uint64_t)c->srv->cfg->body_timeout_ms;
    slora__server_conn_arm(c, (int64_t)(left < silence ? left : silence));
}

static void on_timeout(uv_timer_t *t)
{
    struct slora__server_conn *c = t->data;
    if (c->state == C_HEADERS || c->state == C_BODY) {
        char rid[17];
        slora_http_request_id(rid);
        const struct slora_api_request *r = slora_http_conn_request(c->http);
        const char *id = c->state == C_BODY && r->request_id ? r->request_id : rid;
        const char *why = c->state == C_HEADERS ? "timed out reading the request headers"
                          : uv_now(&c->srv->loop) >= c->body_due_ms
                              ? "the request body did not complete within body_deadline_ms"
                              : "timed out reading the request body";
        slora__server_conn_send_error(c, SLORA_ETIMEOUT, why, id);
        return;
    }
    /* Output still queued and the client read some of it: it gets
     * another period (idle_timeout, or the linger wait once the FIN is
     * out). */
    if (c->n_writes > 0 && made_progress(c)) {
        slora__server_conn_arm(c, c->srv->cfg->idle_timeout_ms);
        return;
    }
    slora__server_conn_close(c);
}

/* ---- closing ------------------------------------------------------------ */

static void conn_free_handle(uv_handle_t *h)
{
    struct slora__server_conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    struct slora__server *s = c->srv;
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

/* Detach the current call: the handler may still complete it later (its
 * wake then finds no connection, see on_wake). */
static void conn_drop_call(struct slora__server_conn *c, int status)
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
    slora__server_drain_orphan(c->srv, call);
}

void slora__server_conn_close(struct slora__server_conn *c)
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
    struct slora__server_conn *c = req->handle->data;
    free(req);
    if (status == 0 && !c->closed) {
        c->shut = true;
        if (c->reading)
            slora__server_conn_arm(c, LINGER_MS);
        else
            slora__server_conn_close(c); /* stopped discarding: LINGER_BYTES */
    }
}

/* After the final response: FIN once it is written, then read and discard
 * for a while so the peer reads the response instead of a reset caused by
 * unread input (a refused upload body). */
void slora__server_conn_linger(struct slora__server_conn *c)
{
    if (c->closed)
        return;
    conn_drop_call(c, c->status);
    c->state = C_CLOSING;
    c->pending_len = 0;
    uv_shutdown_t *sh = malloc(sizeof(*sh));
    if (!sh || uv_shutdown(sh, (uv_stream_t *)&c->tcp, on_shutdown)) {
        free(sh);
        slora__server_conn_close(c);
        return;
    }
    if (!c->reading) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    /* The linger wait starts once the output is out (on_shutdown). */
    slora__server_conn_arm(c, c->n_writes ? c->srv->cfg->idle_timeout_ms : LINGER_MS);
}

/* ---- request processing ------------------------------------------------- */

static void start_call(struct slora__server_conn *c)
{
    const struct slora_api_request *req = slora_http_conn_request(c->http);
    c->call = slora_api_call_new(c->srv->api, &c->srv->host, c->srv, req);
    c->dispatched = false;
    c->rejected = false;
    c->status = 0;
    c->bytes = 0;
    c->streaming = false;
    if (!c->call) {
        slora__server_conn_send_error(c, SLORA_ENOMEM, NULL, req->request_id);
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
            slora__server_conn_flush(c);
        }
        return;
    }
    slora_http_conn_set_body_limit(c->http, (uint64_t)slora_api_call_body_limit(c->call));
    if (req->expect_continue && (req->chunked || req->content_length > 0))
        slora__server_conn_continue(c);
    c->body_due_ms = uv_now(&c->srv->loop) + (uint64_t)c->srv->cfg->body_deadline_ms;
    arm_body(c);
}

static void conn_parse(struct slora__server_conn *c)
{
    while (!c->closed && c->state != C_CLOSING && c->state != C_WAIT) {
        if (c->state == C_IDLE) {
            if (!c->pending_len || slora__server_conn_throttle(c))
                return;
            c->state = C_HEADERS;
            c->t_start = uv_hrtime();
            slora__server_conn_arm(c, c->srv->cfg->header_timeout_ms);
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
                slora__server_conn_flush(c);
                break;
            }
            c->dispatched = true;
            slora_api_call_dispatch(c->call, body, len);
            slora__server_conn_flush(c);
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
            slora__server_conn_send_error(c, err, msg, id);
            return;
        }
        }
    }
}

void slora__server_conn_process(struct slora__server_conn *c)
{
    c->processing = true;
    conn_parse(c);
    c->processing = false;
}

/* ---- reading ---------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct slora__server_conn *c = h->data;
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
    struct slora__server_conn *c = stream->data;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* EOF or reset: a request in flight is canceled. */
        c->reading = false;
        uv_read_stop(stream);
        slora__server_conn_close(c);
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
                slora__server_conn_close(c);
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
    slora__server_conn_process(c);
}

void slora__server_conn_resume_reading(struct slora__server_conn *c)
{
    if (!c->closed && !c->reading && c->state != C_CLOSING) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

/* ---- accepting ------------------------------------------------------------ */

void slora__server_on_connection(uv_stream_t *listener, int status)
{
    struct slora__server *s = listener->data;
    if (status < 0) {
        slora_warn("accept: %s", uv_strerror(status));
        return;
    }
    struct slora__server_conn *c = calloc(1, sizeof(*c));
    struct slora_http_limits lim = slora__server_http_limits(s->cfg);
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
        slora__server_conn_send_error(c, SLORA_EBUSY, "too many connections (max_connections)",
                                      rid);
        return;
    }
    c->state = C_IDLE;
    /* A new connection gets the (shorter) header timeout to send its
     * first request: idle sockets cannot pile up. */
    slora__server_conn_arm(c, s->cfg->header_timeout_ms);
}
