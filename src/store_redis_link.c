/* store_redis_link.c - the Redis store's connection thread (see
 * store_redis.h): a private libuv loop, two hiredis async connections
 * (links) and a timer on everything that waits for the server.
 *
 * A call is a `struct req`: the caller queues it (mutex + uv_async) and
 * sleeps on the condition variable; the loop sends it, arms its timer, and
 * completes it from the reply callback, the timer, or the connection's
 * teardown, whichever comes first (`done`, under the mutex). hiredis keeps
 * a pointer to the req until its callback has run (teardown runs every
 * pending callback with a NULL reply), and the timer until its close
 * callback: the loop's reference is dropped when both are over, the
 * caller's when it has read the result.
 *
 * Link states: ac NULL (down: calls fail at once until the retry timer
 * reconnects), ac set and !up (connecting: AUTH/SELECT/PING queued first,
 * calls queue behind them), up. Any timeout or setup failure tears the
 * connection down; the retry backoff doubles from 100 ms to 1 s.
 */
#include "internal.h"
#include "store_redis.h"

#include <slora/error.h>
#include <slora/log.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 1000
#define PING_MS 1000

struct slora__redis;

struct link {
    struct slora__redis *r;
    int which;
    redisAsyncContext *ac; /* NULL while down */
    bool up;               /* connected and set up */
    bool retrying;         /* retry timer armed */
    int backoff_ms;
    uv_timer_t retry;
    char why[160]; /* last failure */
};

struct req {
    struct slora__redis *r;
    struct req *next; /* submission queue */
    int refs;         /* caller (when waiting) + loop; under r->mu */
    bool done;        /* result final; under r->mu */
    bool sent;        /* hiredis holds it until its callback; loop only */
    bool timer_open;  /* timer not yet closed; loop only */
    int link;
    int argc;
    const char **argv; /* borrowed: the caller waits until done */
    const size_t *argvlen;
    int wait_ms; /* timeout_ms + the call's extra */
    slora__redis_parse_cb parse;
    void *out;
    int rc;
    char diag[256];
    uv_timer_t timer;
};

struct slora__redis {
    struct slora__redis_target t;
    char password[512];
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t ping;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct req *queue; /* submitted, not yet seen by the loop; under mu */
    bool stopping;     /* under mu */
    struct link links[SLORA__REDIS_N_LINKS];
    struct slora_store_stats stats; /* under mu */
    int64_t skew_ms;                /* atomic: server clock - ours, at the last connect */
};

static const char *const link_names[] = {"commands", "feed"};

static void link_connect(struct link *l);
static void link_kill(struct link *l, const char *why);
static void set_up(struct link *l, bool up, const char *why);

/* ---- requests ----------------------------------------------------------- */

static void req_unref_locked(struct req *q)
{
    if (--q->refs == 0)
        free(q);
}

/* The loop's reference goes once hiredis and the timer are done with q. */
static void req_loop_release(struct req *q)
{
    if (q->sent || q->timer_open)
        return;
    struct slora__redis *r = q->r;
    pthread_mutex_lock(&r->mu);
    req_unref_locked(q);
    pthread_mutex_unlock(&r->mu);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct req *q = h->data;
    q->timer_open = false;
    req_loop_release(q);
}

/* Complete q once (reply NULL: failed with rc/why). Loop thread. */
static void req_finish(struct req *q, const redisReply *reply, int rc, const char *why)
{
    struct slora__redis *r = q->r;
    /* Only this thread sets done and the caller reads nothing before it:
     * the parse may run unlocked (and take the lock itself). */
    pthread_mutex_lock(&r->mu);
    bool done = q->done;
    pthread_mutex_unlock(&r->mu);
    if (!done) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            rc = slora__diag(q->diag, sizeof(q->diag), SLORA_EUNAVAIL, "redis: %.200s",
                             reply->str);
        } else if (reply) {
            rc = q->parse ? q->parse(q->out, reply, q->diag, sizeof(q->diag)) : 0;
        } else {
            slora__diag(q->diag, sizeof(q->diag), rc, "redis at %s:%d: %s", r->t.host, r->t.port,
                        why);
        }
        pthread_mutex_lock(&r->mu);
        q->rc = rc;
        q->done = true;
        if (rc == SLORA_EUNAVAIL)
            r->stats.failures++;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->mu);
    }
    if (q->timer_open && !uv_is_closing((uv_handle_t *)&q->timer))
        uv_close((uv_handle_t *)&q->timer, on_timer_closed);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct req *q = privdata;
    q->sent = false;
    req_finish(q, reply, SLORA_EUNAVAIL, "connection lost");
    req_loop_release(q);
}

static void on_req_timeout(uv_timer_t *t)
{
    struct req *q = t->data;
    struct slora__redis *r = q->r;
    pthread_mutex_lock(&r->mu);
    r->stats.timeouts++;
    pthread_mutex_unlock(&r->mu);
    char why[96];
    snprintf(why, sizeof(why), "no answer within %d ms", q->wait_ms);
    /* Down before the caller hears of it, so it sees the state it caused. */
    set_up(&r->links[q->link], false, why);
    req_finish(q, NULL, SLORA_EUNAVAIL, why);
    /* The connection is out of step (or the server stopped): drop it. */
    link_kill(&r->links[q->link], why);
}

/* Loop thread: send q on its link or fail it. */
static void req_dispatch(struct slora__redis *r, struct req *q)
{
    struct link *l = &r->links[q->link];
    uv_timer_init(&r->loop, &q->timer);
    q->timer.data = q;
    q->timer_open = true;
    if (!l->ac) {
        req_finish(q, NULL, SLORA_EUNAVAIL, l->why[0] ? l->why : "not connected");
        return;
    }
    if (redisAsyncCommandArgv(l->ac, on_reply, q, q->argc, q->argv, q->argvlen) != REDIS_OK) {
        req_finish(q, NULL, SLORA_EUNAVAIL, "cannot queue the command");
        return;
    }
    q->sent = true;
    pthread_mutex_lock(&r->mu);
    r->stats.commands++;
    pthread_mutex_unlock(&r->mu);
    uv_update_time(&r->loop); /* the full wait from now, never from a stale loop time */
    uv_timer_start(&q->timer, on_req_timeout, (uint64_t)q->wait_ms, 0);
}

static struct req *req_new(struct slora__redis *r, int link, int argc, const char **argv,
                           const size_t *argvlen, int extra_ms, slora__redis_parse_cb parse,
                           void *out, int refs)
{
    struct req *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    *q = (struct req){.r = r, .refs = refs, .link = link, .argc = argc, .argv = argv,
                      .argvlen = argvlen, .wait_ms = r->t.timeout_ms + extra_ms,
                      .parse = parse, .out = out};
    return q;
}

/* ---- links -------------------------------------------------------------- */

static void set_up(struct link *l, bool up, const char *why)
{
    struct slora__redis *r = l->r;
    if (!up && why)
        snprintf(l->why, sizeof(l->why), "%s", why);
    bool was = r->links[0].up && r->links[1].up;
    l->up = up;
    bool now = r->links[0].up && r->links[1].up;
    pthread_mutex_lock(&r->mu);
    r->stats.up = now;
    if (up)
        r->stats.reconnects++;
    bool stopping = r->stopping;
    pthread_mutex_unlock(&r->mu);
    if (was && !now && !stopping)
        slora_warn("adapter store: redis at %s:%d is unreachable (%s link: %s); uploads and "
                   "deletes answer 503, inference on loaded adapters continues",
                   r->t.host, r->t.port, link_names[l->which], l->why);
    if (!was && now)
        slora_info("adapter store: connected to redis at %s:%d", r->t.host, r->t.port);
}

static void on_retry(uv_timer_t *t)
{
    struct link *l = t->data;
    l->retrying = false;
    link_connect(l);
}

static void schedule_retry(struct link *l)
{
    pthread_mutex_lock(&l->r->mu);
    bool stopping = l->r->stopping;
    pthread_mutex_unlock(&l->r->mu);
    if (stopping || l->retrying)
        return;
    l->retrying = true;
    uv_timer_start(&l->retry, on_retry, (uint64_t)l->backoff_ms, 0);
    l->backoff_ms = l->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : l->backoff_ms * 2;
}

/* Tear the connection down: every pending call fails (hiredis runs their
 * callbacks with NULL), then reconnect later. */
static void link_kill(struct link *l, const char *why)
{
    redisAsyncContext *ac = l->ac;
    if (!ac)
        return;
    l->ac = NULL;
    set_up(l, false, why);
    redisAsyncFree(ac);
    schedule_retry(l);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct link *l = ac->data;
    if (status == REDIS_OK || l->ac != ac)
        return;
    /* hiredis frees ac after this callback */
    l->ac = NULL;
    set_up(l, false, ac->errstr);
    schedule_retry(l);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct link *l = ac->data;
    if (l->ac != ac)
        return; /* link_kill's own teardown */
    l->ac = NULL;
    set_up(l, false, ac->err ? ac->errstr : "connection closed");
    schedule_retry(l);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The last setup command (TIME) answered: the link is usable, and the
 * server's clock is known relative to ours. */
static int setup_done(void *out, const redisReply *reply, char *diag, size_t diag_len)
{
    (void)diag;
    (void)diag_len;
    struct link *l = out;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        int64_t server = strtoll(reply->element[0]->str, NULL, 10) * 1000 +
                         strtoll(reply->element[1]->str, NULL, 10) / 1000;
        __atomic_store_n(&l->r->skew_ms, server - now_ms(), __ATOMIC_RELAXED);
    }
    l->backoff_ms = RETRY_MIN_MS;
    set_up(l, true, NULL);
    return 0;
}

/* Setup replies that are errors (bad password, bad db) fail the link. */
static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct req *q = privdata;
    const redisReply *rr = reply;
    q->sent = false;
    struct link *l = &q->r->links[q->link];
    if (rr && rr->type == REDIS_REPLY_ERROR && l->ac == ac) {
        char why[200];
        snprintf(why, sizeof(why), "setup: %.150s", rr->str);
        req_finish(q, NULL, SLORA_EUNAVAIL, why);
        link_kill(l, why);
    } else {
        req_finish(q, rr, SLORA_EUNAVAIL, "connection lost during setup");
    }
    req_loop_release(q);
}

/* Queue one setup command with its own timer (no waiter). */
static void setup_send(struct link *l, int argc, const char **argv, slora__redis_parse_cb parse)
{
    struct slora__redis *r = l->r;
    struct req *q = req_new(r, l->which, argc, argv, NULL, 0, parse, l, 1);
    if (!q) {
        link_kill(l, "out of memory");
        return;
    }
    uv_timer_init(&r->loop, &q->timer);
    q->timer.data = q;
    q->timer_open = true;
    if (redisAsyncCommandArgv(l->ac, on_setup_reply, q, argc, argv, NULL) != REDIS_OK) {
        req_finish(q, NULL, SLORA_EUNAVAIL, "cannot queue setup");
        req_loop_release(q);
        link_kill(l, "cannot queue setup");
        return;
    }
    q->sent = true;
    uv_timer_start(&q->timer, on_req_timeout, (uint64_t)q->wait_ms, 0);
}

static void link_connect(struct link *l)
{
    struct slora__redis *r = l->r;
    redisAsyncContext *ac = redisAsyncConnect(r->t.host, r->t.port);
    if (!ac || ac->err) {
        set_up(l, false, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(l);
        return;
    }
    ac->data = l;
    if (redisLibuvAttach(ac, &r->loop) != REDIS_OK) {
        set_up(l, false, "cannot attach to the loop");
        redisAsyncFree(ac);
        schedule_retry(l);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    /* Pipelined behind the TCP connect; each has its own timer, so a
     * server that accepts but never answers fails the link. The strings
     * are copied by hiredis when queued. */
    if (r->password[0]) {
        const char *auth[] = {"AUTH", r->password};
        setup_send(l, 2, auth, NULL);
    }
    char db[16];
    snprintf(db, sizeof(db), "%d", r->t.db);
    const char *select[] = {"SELECT", db};
    if (l->ac)
        setup_send(l, 2, select, NULL);
    const char *time[] = {"TIME"};
    if (l->ac)
        setup_send(l, 1, time, setup_done);
}

/* ---- the loop thread ---------------------------------------------------- */

static void on_ping(uv_timer_t *t)
{
    struct slora__redis *r = t->data;
    if (!r->links[SLORA__REDIS_COMMANDS].up)
        return;
    static const char *ping[] = {"PING"};
    struct req *q = req_new(r, SLORA__REDIS_COMMANDS, 1, ping, NULL, 0, NULL, NULL, 1);
    if (q)
        req_dispatch(r, q);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_wake(uv_async_t *a)
{
    struct slora__redis *r = a->data;
    pthread_mutex_lock(&r->mu);
    struct req *list = r->queue;
    r->queue = NULL;
    bool stopping = r->stopping;
    pthread_mutex_unlock(&r->mu);
    /* The queue is newest first: reverse to send in submission order. */
    struct req *ordered = NULL;
    while (list) {
        struct req *next = list->next;
        list->next = ordered;
        ordered = list;
        list = next;
    }
    for (struct req *q = ordered, *next; q; q = next) {
        next = q->next;
        req_dispatch(r, q);
    }
    if (!stopping)
        return;
    for (int i = 0; i < SLORA__REDIS_N_LINKS; i++) {
        link_kill(&r->links[i], "shutting down");
        uv_close((uv_handle_t *)&r->links[i].retry, on_closed);
    }
    uv_close((uv_handle_t *)&r->ping, on_closed);
    uv_close((uv_handle_t *)&r->wake, on_closed);
}

static void *loop_main(void *arg)
{
    struct slora__redis *r = arg;
    for (int i = 0; i < SLORA__REDIS_N_LINKS; i++)
        link_connect(&r->links[i]);
    uv_timer_start(&r->ping, on_ping, PING_MS, PING_MS);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- callers ------------------------------------------------------------ */

int slora__redis_call(struct slora__redis *r, int link, int argc, const char **argv,
                      const size_t *argvlen, int extra_ms, slora__redis_parse_cb parse, void *out,
                      char *diag, size_t diag_len)
{
    struct req *q = req_new(r, link, argc, argv, argvlen, extra_ms, parse, out, 2);
    if (!q)
        return SLORA_ENOMEM;
    pthread_mutex_lock(&r->mu);
    if (r->stopping) {
        pthread_mutex_unlock(&r->mu);
        free(q);
        return slora__diag(diag, diag_len, SLORA_EUNAVAIL, "adapter store is shutting down");
    }
    q->next = r->queue;
    r->queue = q;
    pthread_mutex_unlock(&r->mu);
    uv_async_send(&r->wake);
    pthread_mutex_lock(&r->mu);
    while (!q->done)
        pthread_cond_wait(&r->cond, &r->mu);
    int rc = q->rc;
    if (rc)
        snprintf(diag, diag_len, "%s", q->diag);
    req_unref_locked(q);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int64_t slora__redis_deadline_ms(struct slora__redis *r)
{
    /* Three quarters of the wait: the caller's timer, started after this,
     * runs the whole of it, and the skew measured at connect may be off by
     * the round trip. */
    return now_ms() + __atomic_load_n(&r->skew_ms, __ATOMIC_RELAXED) + r->t.timeout_ms * 3 / 4;
}

void slora__redis_stats(struct slora__redis *r, struct slora_store_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    pthread_mutex_unlock(&r->mu);
}

/* Wait (caller thread) until COMMANDS is up or ms passed. */
static void wait_up(struct slora__redis *r, int ms)
{
    for (int waited = 0; waited < ms; waited += 10) {
        struct slora_store_stats st;
        slora__redis_stats(r, &st);
        if (st.up)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int slora__redis_start(const struct slora__redis_target *t, struct slora__redis **out,
                       char *diag, size_t diag_len)
{
    struct slora__redis *r = calloc(1, sizeof(*r));
    if (!r)
        return SLORA_ENOMEM;
    r->t = *t;
    if (t->password)
        snprintf(r->password, sizeof(r->password), "%s", t->password);
    r->t.password = NULL;
    if (uv_loop_init(&r->loop)) {
        free(r);
        return slora__diag(diag, diag_len, SLORA_ENOMEM, "cannot create the store's loop");
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    uv_async_init(&r->loop, &r->wake, on_wake);
    r->wake.data = r;
    uv_timer_init(&r->loop, &r->ping);
    r->ping.data = r;
    for (int i = 0; i < SLORA__REDIS_N_LINKS; i++) {
        struct link *l = &r->links[i];
        *l = (struct link){.r = r, .which = i, .backoff_ms = RETRY_MIN_MS};
        snprintf(l->why, sizeof(l->why), "not connected yet");
        uv_timer_init(&r->loop, &l->retry);
        l->retry.data = l;
    }
    if (pthread_create(&r->thread, NULL, loop_main, r)) {
        uv_close((uv_handle_t *)&r->wake, NULL);
        uv_close((uv_handle_t *)&r->ping, NULL);
        for (int i = 0; i < SLORA__REDIS_N_LINKS; i++)
            uv_close((uv_handle_t *)&r->links[i].retry, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
        free(r);
        return slora__diag(diag, diag_len, SLORA_ENOMEM, "cannot start the store's thread");
    }
    wait_up(r, t->timeout_ms);
    struct slora_store_stats st;
    slora__redis_stats(r, &st);
    if (!st.up)
        slora_warn("adapter store: redis at %s:%d is not reachable yet; retrying in the "
                   "background (uploads and deletes answer 503 until then)",
                   r->t.host, r->t.port);
    *out = r;
    return 0;
}

void slora__redis_stop(struct slora__redis *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_mutex_unlock(&r->mu);
    uv_async_send(&r->wake);
    pthread_join(r->thread, NULL);
    uv_loop_close(&r->loop);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->mu);
    explicit_bzero(r->password, sizeof(r->password));
    free(r);
}
