/* server.c - the libuv event loop around http.c and api.c (see server.h):
 * the listener, the API's host callbacks (worker jobs, wakes from other
 * threads), SIGTERM/SIGINT drain, SIGHUP reload, the systemd watchdog and
 * sd_notify. Connections are server_conn.c, their output server_output.c;
 * what the three share is server_internal.h.
 *
 * Threads: the loop thread owns the server and every connection. Handlers
 * may complete calls, and queue work, from other threads: those only
 * append to `woken`/`posted` under wake_lock and wake the loop through
 * `wake_async`; on_wake flushes the calls and queues the work on the loop.
 * A reload loads the new config on a worker and applies it on the loop;
 * configs are kept until exit since calls borrow them.
 */
#include "server_internal.h"

#include <slora/error.h>
#include <slora/http.h>
#include <slora/log.h>
#include <slora/server.h>

#include <uv.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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

/* ---- host callbacks (api.h) ---------------------------------------------- */

struct slora__server_work {
    uv_work_t req;
    struct slora__server *srv;
    slora_api_work_cb work;
    slora_api_done_cb done;
    void *arg;
    struct slora__server_work *next; /* posted from another thread, waiting for the loop */
};

static void work_run(uv_work_t *req)
{
    struct slora__server_work *w = req->data;
    w->work(w->arg);
}

static void work_after(uv_work_t *req, int status)
{
    (void)status;
    struct slora__server_work *w = req->data;
    struct slora__server *s = w->srv;
    w->done(w->arg);
    free(w);
    __atomic_sub_fetch(&s->jobs, 1, __ATOMIC_RELAXED);
}

/* Loop thread. The pool refuses only while the loop is closing, and a
 * posted job has been promised: then it runs here. */
static void submit_posted(struct slora__server *s, struct slora__server_work *w)
{
    if (uv_queue_work(&s->loop, &w->req, work_run, work_after)) {
        w->work(w->arg);
        work_after(&w->req, 0);
    }
}

static int host_queue_work(void *host, slora_api_work_cb work, slora_api_done_cb done, void *arg)
{
    struct slora__server *s = host;
    struct slora__server_work *w = calloc(1, sizeof(*w));
    if (!w)
        return SLORA_ENOMEM;
    *w = (struct slora__server_work){.srv = s, .work = work, .done = done, .arg = arg};
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
    struct slora__server *s = host;
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
    struct slora__server *s = a->data;
    pthread_mutex_lock(&s->wake_lock);
    struct slora_api_call **list = s->woken;
    size_t n = s->n_woken;
    s->woken = NULL;
    s->n_woken = s->cap_woken = 0;
    struct slora__server_work *posted = s->posted;
    s->posted = NULL;
    pthread_mutex_unlock(&s->wake_lock);
    while (posted) {
        struct slora__server_work *w = posted;
        posted = w->next;
        submit_posted(s, w);
    }
    for (size_t i = 0; i < n; i++) {
        struct slora_api_call *call = list[i];
        struct slora__server_conn *c = slora_api_call_host_data(call);
        if (c && c->call == call) {
            slora__server_conn_flush(c);
        } else if (!c) {
            slora__server_drain_orphan(s, call);
        }
        slora_api_call_unref(call); /* the wake's reference */
    }
    free(list);
}

/* ---- signals, watchdog ---------------------------------------------------- */

/* Drain: idle connections go now, after the output they still have
 * queued (a blocked one loses only the requests it had not read). */
static void close_idle(struct slora__server *s)
{
    for (struct slora__server_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == C_IDLE && !c->closed) {
            if (c->n_writes)
                slora__server_conn_linger(c);
            else
                slora__server_conn_close(c);
        }
    }
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct slora__server *s = t->data;
    slora_warn("drain timeout: closing %d connection(s) with requests in flight", s->n_conns);
    for (struct slora__server_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        slora__server_conn_close(c);
    }
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    struct slora__server *s = h->data;
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
    struct slora__server *s = req->data;
    s->reload_err = s->hooks->reload_load(s->hooks->arg, &s->reload_cfg);
}

static void start_reload(struct slora__server *s);

static void reload_done(uv_work_t *req, int status)
{
    struct slora__server *s = req->data;
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
        struct slora_http_limits lim = slora__server_http_limits(next);
        for (struct slora__server_conn *c = s->conns; c; c = c->next)
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
static void start_reload(struct slora__server *s)
{
    if (s->n_owned == SLORA__SERVER_MAX_CONFIGS) {
        slora_warn("SIGHUP: too many reloads (%d); restart the daemon", SLORA__SERVER_MAX_CONFIGS);
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
    struct slora__server *s = h->data;
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

static void start_watchdog(struct slora__server *s)
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

static int bind_listener(struct slora__server *s, char *diag, size_t diag_len)
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
        err = uv_listen((uv_stream_t *)&s->listener, 511, slora__server_on_connection);
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
static bool settle(struct slora__server *s)
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
    struct slora__server *s = calloc(1, sizeof(*s));
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
