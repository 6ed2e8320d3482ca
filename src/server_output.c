/* server_output.c - a connection's output: a call's response head, body
 * and streamed chunks written through libuv, the access log line, error
 * answers, and back-pressure (server_internal.h).
 *
 * Back-pressure: output the client has not read yet stays queued in libuv.
 * Above max_queued_reply_bytes unsent bytes or max_queued_replies write
 * requests the connection is *blocked*: in IDLE it stops reading and parsing
 * (pipelined requests wait in the kernel), a stream's further output stays
 * in its call; both go on once the queue drained to half the limits.
 *
 * Threads: loop thread only. Handlers may complete calls from other
 * threads; they only queue output in the call and wake the loop
 * (server.c), which then flushes it here.
 */
#include "server_internal.h"

#include <slora/error.h>
#include <slora/http.h>
#include <slora/log.h>

#include <uv.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void conn_unblock(struct slora__server_conn *c);

/* ---- writing -------------------------------------------------------------- */

struct write_req {
    uv_write_t req;
    struct slora__server_conn *conn;
    char *bufs[5]; /* head, chunk size, data, CRLF, last chunk */
    int n;
};

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    for (int i = 0; i < w->n; i++)
        free(w->bufs[i]);
    struct slora__server_conn *c = w->conn;
    free(w);
    c->n_writes--;
    c->progress = true;
    if (status < 0 && !c->closed) {
        slora_debug("write failed: %s", uv_strerror(status));
        slora__server_conn_close(c);
        return;
    }
    if (c->blocked && !c->closed)
        conn_unblock(c);
}

/* Queue bufs (taking ownership of each malloc'd pointer). */
static void conn_write(struct slora__server_conn *c, char **bufs, const size_t *lens, int n)
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
            slora__server_conn_close(c);
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
        slora__server_conn_close(c);
    }
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    if (p)
        memcpy(p, s, n);
    return p;
}

void slora__server_conn_continue(struct slora__server_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    char *b = dup_bytes(cont, sizeof(cont) - 1);
    size_t l = sizeof(cont) - 1;
    conn_write(c, &b, &l, 1);
}

static void access_log(struct slora__server_conn *c, const struct slora_api_request *req,
                       const char *route, const char *tenant, const char *adapter,
                       const char *version)
{
    double ms = (double)(uv_hrtime() - c->t_start) / 1e6;
    slora_info("access id=%s method=%s path=%s status=%d bytes=%" PRIu64
               " ms=%.3f route=%s tenant=%s adapter=%s version=%s",
               req->request_id, req->method_name, req->path, c->status, c->bytes, ms, route, tenant,
               adapter, version);
}

void slora__server_conn_send_error(struct slora__server_conn *c, int err, const char *msg,
                                   const char *request_id)
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
    slora__server_conn_linger(c);
}
/* Drop the host reference of a call whose output was all taken. */
void slora__server_release_call(struct slora__server *s, struct slora_api_call *call)
{
    s->live_calls--;
    slora_api_call_unref(call);
}

/* Take and discard a detached call's output; release it once completed. */
void slora__server_drain_orphan(struct slora__server *s, struct slora_api_call *call)
{
    struct slora_api_output out;
    bool done = false;
    while (slora_api_call_take(call, &out)) {
        free(out.data);
        done = done || out.done;
    }
    if (done)
        slora__server_release_call(s, call);
}

/* ---- back-pressure ------------------------------------------------------ */

static bool over_limits(struct slora__server_conn *c, size_t div)
{
    const struct slora_config *cfg = c->srv->cfg;
    return slora__server_conn_unsent(c) > (size_t)cfg->max_queued_reply_bytes / div ||
           c->n_writes > cfg->max_queued_replies / (int64_t)div;
}

/* Whether c must not produce more output now (see the top of the file);
 * blocks it when it goes over the limits. */
bool slora__server_conn_throttle(struct slora__server_conn *c)
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
    slora__server_conn_arm(c, c->srv->cfg->idle_timeout_ms);
    return true;
}

/* After a write completed: go on once the queue drained to half. */
static void conn_unblock(struct slora__server_conn *c)
{
    if (over_limits(c, 2))
        return;
    c->blocked = false;
    slora_api_blocked_delta(c->srv->api, -1);
    if (c->state == C_IDLE) {
        slora__server_conn_arm(c, c->srv->cfg->idle_timeout_ms);
        slora__server_conn_resume_reading(c);
        slora__server_conn_process(c);
    } else if (c->state == C_WAIT) {
        uv_timer_stop(&c->timer);
        slora__server_conn_flush(c);
    }
}

/* ---- request processing ------------------------------------------------- */

static void conn_finish_response(struct slora__server_conn *c)
{
    struct slora_api_call *call = c->call;
    const char *route, *tenant, *adapter, *version;
    slora_api_call_log_fields(call, &route, &tenant, &adapter, &version);
    access_log(c, slora_api_call_request(call), route, tenant, adapter, version);
    slora_api_call_finish(call, c->status, c->bytes, (double)(uv_hrtime() - c->t_start) / 1e9);
    slora_api_call_set_host_data(call, NULL);
    c->call = NULL;
    slora__server_release_call(c->srv, call);
    if (c->close_after || c->srv->draining) {
        slora__server_conn_linger(c);
        return;
    }
    c->state = C_IDLE;
    c->rejected = false;
    slora__server_conn_arm(c, c->srv->cfg->idle_timeout_ms);
    if (slora__server_conn_throttle(c))
        return;
    slora__server_conn_resume_reading(c);
    /* Inside slora__server_conn_process (a synchronous answer) its loop goes on with
     * the next pipelined request; recursing would grow the stack per
     * request. */
    if (!c->processing)
        slora__server_conn_process(c);
}

/* Write whatever output the call has; finish the response when done. */
void slora__server_conn_flush(struct slora__server_conn *c)
{
    struct slora_api_output out;
    struct slora_api_call *call = c->call;
    /* A blocked stream's output waits in its call (bounded by the
     * request, as a whole response is). */
    while (call && c->call == call && !(c->streaming && slora__server_conn_throttle(c)) &&
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
