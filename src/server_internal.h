/* server_internal.h - what the server's files share: the server and
 * connection structs (server.c: the loop, listener, signals, reload and
 * the host callbacks; server_conn.c: a connection's state machine, reading
 * and parsing; server_output.c: writing responses and streams with
 * back-pressure). Not a public interface; loop thread only, except the
 * fields the server's wake_lock guards. libuv stays inside these files.
 */
#ifndef SLORA_SERVER_INTERNAL_H
#define SLORA_SERVER_INTERNAL_H

#include <slora/api.h>
#include <slora/config.h>
#include <slora/http.h>
#include <slora/server.h>

#include <uv.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLORA__SERVER_MAX_CONFIGS 1024 /* reloads kept alive (borrowed by calls) */

/* A connection's states: see server_conn.c. */
enum slora__server_conn_state { C_IDLE, C_HEADERS, C_BODY, C_WAIT, C_CLOSING };

struct slora__server;
struct slora__server_work;

struct slora__server_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct slora__server *srv;
    struct slora__server_conn *prev, *next; /* srv->conns */
    struct slora_http_conn *http;
    enum slora__server_conn_state state;
    char *pending; /* (pending_cap) received, not yet parsed */
    size_t pending_len, pending_cap;
    bool reading;
    bool blocked;                /* too much output queued: see server_output.c */
    bool progress;               /* a write completed since the timer was armed */
    bool shut;                   /* shutdown (FIN) done */
    size_t queue_at_arm;         /* unsent bytes when the timer was armed */
    size_t discarded;            /* input read and dropped while lingering */
    int n_writes;                /* write requests not yet completed */
    bool close_after;            /* Connection: close, error, or draining */
    bool rejected;               /* head phase answered; body must not be read */
    bool dispatched;             /* the call's handler was run */
    bool processing;             /* inside slora__server_conn_process */
    bool closed;                 /* uv_close called */
    int handles_open;            /* tcp + timer; free when 0 */
    struct slora_api_call *call; /* current request, host reference */
    int status;                  /* of the response being written */
    uint64_t bytes;              /* response body bytes written */
    bool streaming;
    uint64_t t_start;     /* uv_hrtime at the request's first byte */
    uint64_t body_due_ms; /* uv_now when the whole body must have arrived */
};

struct slora__server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer, watchdog_timer;
    uv_async_t wake_async;
    pthread_mutex_t wake_lock;
    struct slora_api_call **woken; /* (n_woken) calls with output, references */
    size_t n_woken, cap_woken;
    struct slora__server_work *posted; /* work queued from other threads (wake_lock) */
    pthread_t loop_thread;
    const struct slora_config *cfg;                        /* current */
    struct slora_config *owned[SLORA__SERVER_MAX_CONFIGS]; /* reloaded configs, freed at exit */
    int n_owned;
    struct slora_api *api;
    const struct slora_server_hooks *hooks;
    struct slora_api_host host;
    struct slora__server_conn *conns;
    int n_conns;
    int64_t live_calls;              /* calls holding a host reference */
    int64_t jobs;                    /* worker jobs queued or posted and not yet done (atomic) */
    uv_work_t reload_req;            /* the SIGHUP reload in flight, if reloading */
    struct slora_config *reload_cfg; /* its result (worker, then loop) */
    int reload_err;
    bool reloading;
    bool reload_again; /* SIGHUP during the reload: run one more after it */
    bool draining;
    bool listening;
    bool stopped;
};

/* ---- server_conn.c ---- */

/* The listener's callback: accept one connection (refused with 503 above
 * max_connections). */
void slora__server_on_connection(uv_stream_t *listener, int status);
/* Parse and answer what is pending, in order, until c waits. */
void slora__server_conn_process(struct slora__server_conn *c);
void slora__server_conn_resume_reading(struct slora__server_conn *c);
/* Close now (a call in flight is canceled, 499); freed in the close callback. */
void slora__server_conn_close(struct slora__server_conn *c);
/* After the final response: FIN once written, discard input briefly, close. */
void slora__server_conn_linger(struct slora__server_conn *c);
/* (Re)arm c's timer for ms, noting the queued output (see on_timeout). */
void slora__server_conn_arm(struct slora__server_conn *c, int64_t ms);
/* Output bytes queued in libuv, not yet written to the socket. */
size_t slora__server_conn_unsent(struct slora__server_conn *c);

/* ---- server_output.c ---- */

/* Write whatever output the call has; finish the response when done. */
void slora__server_conn_flush(struct slora__server_conn *c);
/* Whether c must not produce more output now; blocks it when it goes over
 * the limits. */
bool slora__server_conn_throttle(struct slora__server_conn *c);
/* Answer err as a JSON error (msg NULL: the code's message), then linger. */
void slora__server_conn_send_error(struct slora__server_conn *c, int err, const char *msg,
                                   const char *request_id);
/* Write "100 Continue" (Expect: 100-continue on a request with a body). */
void slora__server_conn_continue(struct slora__server_conn *c);
/* Drop the host reference of a call whose output was all taken. */
void slora__server_release_call(struct slora__server *s, struct slora_api_call *call);
/* Take and discard a detached call's output; release it once completed. */
void slora__server_drain_orphan(struct slora__server *s, struct slora_api_call *call);

static inline struct slora_http_limits slora__server_http_limits(const struct slora_config *cfg)
{
    return (struct slora_http_limits){(size_t)cfg->max_header_bytes, (uint64_t)cfg->max_body_bytes};
}

#endif
