/* replica.c - follows a shared store's change stream into the registry
 * (see replica.h).
 *
 * The thread's state is its cursor (last stream entry applied and its
 * revision) and whether it must rescan. A failed store call keeps the
 * cursor and retries after a backoff (100 ms doubling to 1 s), so when the
 * store returns the thread reads on from where it stopped; a gap (entries
 * trimmed away, or the revision went back because the store lost its data)
 * triggers a rescan. Everything the thread touches is its own or goes
 * through the registry's locked functions.
 */
#include "internal.h"

#include <slora/error.h>
#include <slora/log.h>
#include <slora/replica.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 64
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000

struct slora_replica {
    struct slora_replica_options opt;
    struct slora_registry *registry;
    struct slora_store *store;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stopping;                    /* under mu */
    struct slora_replica_stats stats; /* under mu */
    struct slora_store_cursor cur;    /* thread only */
    bool need_scan;                   /* thread only */
};

#define COUNT(r, field, n)                                                                         \
    do {                                                                                           \
        pthread_mutex_lock(&(r)->mu);                                                              \
        (r)->stats.field += (n);                                                                   \
        pthread_mutex_unlock(&(r)->mu);                                                            \
    } while (0)

static void changed(struct slora_replica *r, const char *tenant, const char *name,
                    struct slora_registry_entry *e)
{
    if (!r->opt.on_change)
        return;
    char id[SLORA_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s/%s", tenant, name);
    r->opt.on_change(r->opt.arg, id, e);
}

/* Validate and publish one stored version (buf: its bytes). */
static void load(struct slora_replica *r, const struct slora_store_item *it, const void *buf,
                 size_t len)
{
    char diag[512] = "";
    struct slora_registry_entry *e;
    int rc = slora_registry_load(r->registry, it, buf, len, false, &e, diag, sizeof(diag));
    if (rc < 0) {
        slora_warn("replica: skipping %s/%s version %s from the store: %s: %s", it->tenant,
                   it->name, it->version, slora_err_name(rc), diag);
        COUNT(r, skipped, 1);
        return;
    }
    if (!e)
        return; /* the registry already has a newer revision */
    COUNT(r, loaded, 1);
    changed(r, it->tenant, it->name, e);
    slora_registry_entry_unref(e);
}

static void unload(struct slora_replica *r, const char *tenant, const char *name, int64_t rev)
{
    if (!slora_registry_unload(r->registry, tenant, name, rev, false))
        return;
    COUNT(r, unloaded, 1);
    changed(r, tenant, name, NULL);
}

static size_t max_bytes(const struct slora_replica *r)
{
    return r->opt.max_file_bytes ? r->opt.max_file_bytes : SIZE_MAX;
}

/* Bring tenant/name to what the store has now. */
static int fetch(struct slora_replica *r, const char *tenant, const char *name)
{
    struct slora_store_item it;
    void *buf;
    size_t len;
    char diag[512];
    int rc = slora_store_get(r->store, tenant, name, max_bytes(r), &it, &buf, &len, diag,
                             sizeof(diag));
    if (rc == SLORA_ENOTFOUND) {
        unload(r, tenant, name, it.rev);
        return 0;
    }
    if (rc == SLORA_EUNAVAIL || rc == SLORA_ENOMEM) {
        slora_debug("replica: fetch %s/%s: %s", tenant, name, diag);
        return rc;
    }
    if (rc < 0) {
        slora_warn("replica: skipping %s/%s: %s", tenant, name, diag);
        COUNT(r, skipped, 1);
        return 0;
    }
    if (!slora_registry_holds(r->registry, &it, NULL))
        load(r, &it, buf, len);
    free(buf);
    return 0;
}

static int apply(struct slora_replica *r, const struct slora_store_event *ev)
{
    if (ev->deleted) {
        unload(r, ev->tenant, ev->name, ev->rev);
        return 0;
    }
    struct slora_store_item it = {.rev = ev->rev, .pinned = ev->pinned};
    snprintf(it.tenant, sizeof(it.tenant), "%s", ev->tenant);
    snprintf(it.name, sizeof(it.name), "%s", ev->name);
    snprintf(it.version, sizeof(it.version), "%s", ev->version);
    bool pin_changed;
    if (!slora_registry_holds(r->registry, &it, &pin_changed))
        return fetch(r, ev->tenant, ev->name);
    if (pin_changed) {
        struct slora_registry_entry *e;
        if (slora_registry_get(r->registry, ev->tenant, ev->name, &e) == 0) {
            changed(r, ev->tenant, ev->name, e);
            slora_registry_entry_unref(e);
        }
    }
    return 0;
}

/* ---- rescan ------------------------------------------------------------ */

struct scan {
    struct slora_replica *r;
    char (*ids)[SLORA_ID_MAX + 1]; /* (n) listed by the store */
    size_t n, cap;
    bool oom;
};

static bool scan_want(void *arg, const struct slora_store_item *it)
{
    struct scan *sc = arg;
    bool pin_changed;
    bool held = slora_registry_holds(sc->r->registry, it, &pin_changed);
    if (held && pin_changed) {
        struct slora_registry_entry *e;
        if (slora_registry_get(sc->r->registry, it->tenant, it->name, &e) == 0) {
            changed(sc->r, it->tenant, it->name, e);
            slora_registry_entry_unref(e);
        }
    }
    return !held;
}

static void scan_one(void *arg, const struct slora_store_item *it, const void *buf, size_t len)
{
    struct scan *sc = arg;
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? 2 * sc->cap : 256;
        void *grown = realloc(sc->ids, cap * sizeof(*sc->ids));
        if (!grown) {
            sc->oom = true;
            return;
        }
        sc->ids = grown;
        sc->cap = cap;
    }
    snprintf(sc->ids[sc->n++], SLORA_ID_MAX + 1, "%s/%s", it->tenant, it->name);
    if (buf)
        load(sc->r, it, buf, len);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Converge on a snapshot of the whole store. */
static int rescan(struct slora_replica *r)
{
    struct scan sc = {.r = r};
    struct slora_store_cursor cur;
    struct slora_store_scan_report rep;
    char diag[512];
    COUNT(r, rescans, 1);
    int rc = slora_store_scan(r->store, max_bytes(r), scan_want, scan_one, &sc, &cur, &rep, diag,
                              sizeof(diag));
    if (rc == 0 && sc.oom)
        rc = SLORA_ENOMEM;
    if (rc < 0) {
        slora_debug("replica: scan: %s", diag);
        free(sc.ids);
        return rc;
    }
    bool lost = cur.rev < r->cur.rev;
    if (lost) {
        /* Revisions started again: ours are meaningless against them. */
        slora_warn("replica: the store's revision went back from %lld to %lld (it lost its data); "
                   "reloading from what it has now",
                   (long long)r->cur.rev, (long long)cur.rev);
        sc.n = 0;
    }
    /* Drop what the store no longer has (unless written after the snapshot). */
    if (sc.n)
        qsort(sc.ids, sc.n, sizeof(*sc.ids), cmp_id);
    struct slora_registry_entry **list;
    size_t n;
    if (slora_registry_list(r->registry, NULL, &list, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (sc.n && bsearch(list[i]->id, sc.ids, sc.n, sizeof(*sc.ids), cmp_id))
                continue;
            if (slora_registry_unload(r->registry, list[i]->tenant, list[i]->name, cur.rev,
                                      lost)) {
                COUNT(r, unloaded, 1);
                changed(r, list[i]->tenant, list[i]->name, NULL);
            }
        }
        slora_registry_list_free(list, n);
    }
    free(sc.ids);
    if (lost) {
        r->cur = (struct slora_store_cursor){.id = "0-0", .rev = 0};
        return rescan(r);
    }
    r->cur = cur;
    pthread_mutex_lock(&r->mu);
    r->stats.rev = cur.rev;
    r->stats.synced = true;
    r->stats.skipped += (uint64_t)rep.skipped;
    pthread_mutex_unlock(&r->mu);
    slora_info("replica: in step with the %s store at revision %lld (%d adapters listed)",
               slora_store_kind_name(r->store), (long long)cur.rev, rep.listed);
    return 0;
}

/* ---- the thread ------------------------------------------------------------ */

/* Sleep ms unless stopping; false when stopping. */
static bool pause_ms(struct slora_replica *r, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->stopping && pthread_cond_timedwait(&r->cond, &r->mu, &ts) == 0)
        ;
    bool go_on = !r->stopping;
    pthread_mutex_unlock(&r->mu);
    return go_on;
}

static bool is_stopping(struct slora_replica *r)
{
    pthread_mutex_lock(&r->mu);
    bool s = r->stopping;
    pthread_mutex_unlock(&r->mu);
    return s;
}

/* One step: a rescan when needed, else one read of the stream. */
static int step(struct slora_replica *r)
{
    if (r->need_scan) {
        int rc = rescan(r);
        if (rc == 0)
            r->need_scan = false;
        return rc;
    }
    struct slora_store_event ev[BATCH];
    size_t n;
    bool gap;
    char diag[512];
    int rc = slora_store_changes(r->store, &r->cur, ev, BATCH, &n, &gap, r->opt.wait_ms, diag,
                                 sizeof(diag));
    if (rc < 0) {
        slora_debug("replica: stream: %s", diag);
        return rc;
    }
    COUNT(r, events, n);
    for (size_t i = 0; i < n; i++) {
        rc = apply(r, &ev[i]);
        if (rc < 0) {
            /* Not applied: read it again from the stream later. The cursor
             * already moved past it, so rescan instead. */
            r->need_scan = true;
            return rc;
        }
    }
    pthread_mutex_lock(&r->mu);
    r->stats.rev = r->cur.rev;
    pthread_mutex_unlock(&r->mu);
    if (gap) {
        slora_info("replica: stream entries after revision %lld are gone (trimmed or lost); "
                   "rescanning the store",
                   (long long)r->cur.rev);
        COUNT(r, gaps, 1);
        r->need_scan = true;
    }
    return 0;
}

static void *replica_main(void *arg)
{
    struct slora_replica *r = arg;
    int backoff = BACKOFF_MIN_MS;
    while (!is_stopping(r)) {
        if (step(r) == 0) {
            backoff = BACKOFF_MIN_MS;
            continue;
        }
        COUNT(r, failures, 1);
        if (!pause_ms(r, backoff))
            break;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}

int slora_replica_start(const struct slora_replica_options *opt, struct slora_replica **out,
                        char *diag, size_t diag_len)
{
    struct slora_store *store = slora_registry_store(opt->registry);
    if (!store || !slora_store_is_shared(store))
        return slora__diag(diag, diag_len, SLORA_EINVAL, "a replica needs a shared store");
    struct slora_replica *r = calloc(1, sizeof(*r));
    if (!r)
        return SLORA_ENOMEM;
    r->opt = *opt;
    if (r->opt.wait_ms <= 0)
        r->opt.wait_ms = 1000;
    r->registry = opt->registry;
    r->store = store;
    r->need_scan = true;
    snprintf(r->cur.id, sizeof(r->cur.id), "0-0");
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    /* Load what is there before serving; an unreachable store is retried
     * by the thread. */
    if (rescan(r) == 0)
        r->need_scan = false;
    else
        COUNT(r, failures, 1);
    if (pthread_create(&r->thread, NULL, replica_main, r)) {
        slora_replica_stop(r);
        return slora__diag(diag, diag_len, SLORA_ENOMEM, "cannot start the replica thread");
    }
    r->started = true;
    *out = r;
    return 0;
}

void slora_replica_stop(struct slora_replica *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
    if (r->started)
        pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void slora_replica_stats(struct slora_replica *r, struct slora_replica_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    pthread_mutex_unlock(&r->mu);
}
