/* cache.c - the delta cache (see cache.h for the contract).
 *
 * One mutex guards the entry list, the pin table, the pin reservations,
 * the generation queue and the counters. Entries are a doubly linked list
 * in no particular order; eviction scans it for the least recently used
 * candidate (entry counts are small: the budget holds a few hundred
 * adapters at most). A handle is the entry itself; `refs` counts handles
 * out plus waiters of a generation, so an entry with refs > 0 is never
 * freed or evicted.
 *
 * Fault hook (tests): SLORA_FAULT_ALLOC=N, read by slora_cache_new, makes
 * the Nth delta allocation of that cache fail as if malloc had (ENOMEM:
 * the requests waiting on that entry get 503, the next miss retries).
 */
#include <slora/cache.h>
#include <slora/error.h>
#include <slora/log.h>
#include <slora/delta.h>
#include <slora/superlora.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const double slora_cache_gen_bounds[SLORA_CACHE_GEN_BUCKETS] = {0.001, 0.005, 0.01, 0.05, 0.1,
                                                                 0.5,   1,     5,    10,   1e300};

struct waiter {
    slora_cache_ready_cb cb;
    void *arg;
    struct waiter *next;
};

struct slora_cache_handle {
    char *id;
    char version[SLORA_CACHE_VERSION_MAX];
    const struct slora_adapter *adapter; /* borrowed while generating, then NULL */
    struct slora_delta_set *set;         /* the targets' deltas, once generated */
    size_t bytes;                        /* slora_delta_bytes */
    struct slora_weights ws;             /* one term: the set's deltas */
    int refs;                            /* handles out + waiters */
    bool ready;
    bool stale;                          /* version retired: never served again */
    bool pinned;
    uint64_t last_use;                   /* cache tick of the last acquire/release */
    struct waiter *waiters;              /* while generating */
    struct slora_cache_handle *prev;       /* entry list */
    struct slora_cache_handle *next;
    struct slora_cache_handle *queue_next; /* generation queue */
};

struct pin {
    char *id;
    struct pin *next;
};

/* Pin bytes promised to an upload that is not stored yet. */
struct slora_cache_reservation {
    char *id;
    size_t bytes; /* the pin id will hold once the upload is stored */
    struct slora_cache_reservation *next;
};

struct slora_cache {
    const struct slora_model *model;
    size_t budget;
    size_t tenant_pin_budget;      /* pinned bytes per tenant; 0: only the budget */
    struct slora_delta_opts dopts; /* how entries are built */
    slora_cache_current_fn is_current;
    void *is_current_arg;
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct slora_cache_handle *entries;
    struct slora_cache_handle *queue_head; /* waiting for a generator thread */
    struct slora_cache_handle *queue_tail;
    struct pin *pins;
    struct slora_cache_reservation *reservations;
    bool stopping;
    int n_threads;
    pthread_t *threads; /* (n_threads) */
    uint64_t tick;
    struct slora_cache_stats st;
    uint64_t alloc_fault_nth; /* SLORA_FAULT_ALLOC=N: the Nth delta allocation fails (tests) */
    uint64_t allocs;          /* delta allocations so far (atomic) */
};

size_t slora_cache_entry_bytes(const struct slora_cache *c, const struct slora_adapter *a)
{
    return slora_delta_bytes(a, &c->dopts);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static struct slora_cache_handle *find(struct slora_cache *c, const char *id, const char *version)
{
    for (struct slora_cache_handle *e = c->entries; e; e = e->next)
        if (!e->stale && !strcmp(e->id, id) && !strcmp(e->version, version))
            return e;
    return NULL;
}

static struct pin **find_pin(struct slora_cache *c, const char *id)
{
    struct pin **p = &c->pins;
    while (*p && strcmp((*p)->id, id))
        p = &(*p)->next;
    return p;
}

static void unlink_entry(struct slora_cache *c, struct slora_cache_handle *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->entries = e->next;
    if (e->next)
        e->next->prev = e->prev;
    c->st.bytes -= e->bytes;
    c->st.entries--;
    if (e->pinned)
        c->st.pinned_bytes -= e->bytes;
}

static void free_entry(struct slora_cache_handle *e)
{
    if (!e)
        return;
    slora_weights_deinit(&e->ws);
    slora_delta_set_free(e->set);
    free(e->id);
    free(e);
}

/* Unlink unused unpinned ready entries, least recently used first, until
 * the budget holds; they are chained on *dropped for freeing outside the
 * lock. */
static void enforce_budget(struct slora_cache *c, struct slora_cache_handle **dropped)
{
    while (c->st.bytes > c->budget) {
        struct slora_cache_handle *victim = NULL;
        for (struct slora_cache_handle *e = c->entries; e; e = e->next)
            if (e->ready && !e->refs && !e->pinned && (!victim || e->last_use < victim->last_use))
                victim = e;
        if (!victim)
            return;
        unlink_entry(c, victim);
        c->st.evictions++;
        victim->next = *dropped;
        *dropped = victim;
    }
}

/* Mark e stale (never served again); unlink it onto *dropped when unused. */
static void retire_entry(struct slora_cache *c, struct slora_cache_handle *e,
                         struct slora_cache_handle **dropped)
{
    e->stale = true;
    if (e->pinned) {
        e->pinned = false;
        c->st.pinned_bytes -= e->bytes;
    }
    if (!e->refs) {
        unlink_entry(c, e);
        e->next = *dropped;
        *dropped = e;
    }
}

/* Retire every entry whose version the registry no longer knows. */
static void sweep_unregistered(struct slora_cache *c, struct slora_cache_handle **dropped)
{
    if (!c->is_current)
        return;
    struct slora_cache_handle *e = c->entries;
    while (e) {
        struct slora_cache_handle *next = e->next;
        if (!e->stale && !c->is_current(c->is_current_arg, e->id, e->version))
            retire_entry(c, e, dropped);
        e = next;
    }
}

static void free_dropped(struct slora_cache_handle *dropped)
{
    while (dropped) {
        struct slora_cache_handle *next = dropped->next;
        free_entry(dropped);
        dropped = next;
    }
}

/* Bytes of id's pinned entries. */
static size_t pinned_of(struct slora_cache *c, const char *id)
{
    size_t total = 0;
    for (struct slora_cache_handle *e = c->entries; e; e = e->next)
        if (e->pinned && !strcmp(e->id, id))
            total += e->bytes;
    return total;
}

/* Do ids a and b ("tenant/name") belong to one tenant? */
static bool same_tenant(const char *a, const char *b)
{
    size_t n = strcspn(a, "/");
    return n == strcspn(b, "/") && !strncmp(a, b, n);
}

/* Pinned bytes plus the reservations of other ids if id's pinned entries
 * were replaced by `bytes`; only id's tenant's when tenant_only. A
 * reservation replaces its id's pins, so it adds only what it needs beyond
 * them; id's own reservations are left out (they are for this very
 * replacement). */
static size_t pinned_after(struct slora_cache *c, const char *id, size_t bytes, bool tenant_only)
{
    size_t total = bytes;
    for (struct slora_cache_handle *e = c->entries; e; e = e->next)
        if (e->pinned && strcmp(e->id, id) && (!tenant_only || same_tenant(e->id, id)))
            total += e->bytes;
    for (struct slora_cache_reservation *r = c->reservations; r; r = r->next) {
        if (tenant_only && !same_tenant(r->id, id))
            continue;
        size_t held = strcmp(r->id, id) ? pinned_of(c, r->id) : r->bytes;
        total += r->bytes > held ? r->bytes - held : 0;
    }
    return total;
}

/* Would id pinning `bytes` (replacing its pinned entries) fit the budget
 * and its tenant's share? 0, or SLORA_ENOSPC with the sums in diag. Lock
 * held. */
static int pin_fits(struct slora_cache *c, const char *id, size_t bytes, char *diag,
                    size_t diag_len)
{
    size_t after = pinned_after(c, id, bytes, false);
    if (after > c->budget) {
        snprintf(diag, diag_len,
                 "pinning %s needs %zu bytes (%zu pinned in all); the delta cache budget is %zu "
                 "bytes",
                 id, bytes, after, c->budget);
        return SLORA_ENOSPC;
    }
    after = c->tenant_pin_budget ? pinned_after(c, id, bytes, true) : 0;
    if (after > c->tenant_pin_budget) {
        snprintf(diag, diag_len,
                 "pinning %s needs %zu bytes (%zu pinned by tenant %.*s); "
                 "max_pinned_bytes_per_tenant is %zu bytes",
                 id, bytes, after, (int)strcspn(id, "/"), id, c->tenant_pin_budget);
        return SLORA_ENOSPC;
    }
    return 0;
}

/* Clear the pinned flag of id's entries (all, or all but `keep`). */
static void unpin_entries(struct slora_cache *c, const char *id,
                          const struct slora_cache_handle *keep)
{
    for (struct slora_cache_handle *e = c->entries; e; e = e->next)
        if (e->pinned && e != keep && !strcmp(e->id, id)) {
            e->pinned = false;
            c->st.pinned_bytes -= e->bytes;
        }
}

/* A new version of a pinned id inherits the pin when it fits. Lock held. */
static void carry_pin(struct slora_cache *c, struct slora_cache_handle *e)
{
    if (e->stale || !*find_pin(c, e->id))
        return;
    char why[256];
    if (pin_fits(c, e->id, e->bytes, why, sizeof(why))) {
        slora_warn("cache: pin of %s not carried over to version %s: %s", e->id, e->version, why);
        return;
    }
    unpin_entries(c, e->id, e);
    e->pinned = true;
    c->st.pinned_bytes += e->bytes;
}

/* Expand the adapter into its deltas and point the weight set at them;
 * the forward pass adds dW x to the base product (W is never copied). */
static int build_entry(struct slora_cache *c, struct slora_cache_handle *e, char *diag,
                       size_t diag_len)
{
    uint64_t n = __atomic_add_fetch(&c->allocs, 1, __ATOMIC_RELAXED);
    if (n == c->alloc_fault_nth) {
        snprintf(diag, diag_len, "cannot allocate %zu bytes for the deltas", e->bytes);
        return SLORA_ENOMEM;
    }
    int err = slora_delta_set_new(c->model, e->adapter, &c->dopts, &e->set, diag, diag_len);
    if (!err)
        slora_delta_set_bind(e->set, &e->ws, 0);
    return err;
}

static void *gen_thread(void *arg)
{
    struct slora_cache *c = arg;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->queue_head && !c->stopping)
            pthread_cond_wait(&c->work, &c->lock);
        struct slora_cache_handle *e = c->queue_head;
        if (!e)
            break;
        c->queue_head = e->queue_next;
        if (!c->queue_head)
            c->queue_tail = NULL;
        pthread_mutex_unlock(&c->lock);

        char diag[256] = "";
        double t0 = now_seconds();
        int err = build_entry(c, e, diag, sizeof(diag));
        double dt = now_seconds() - t0;

        pthread_mutex_lock(&c->lock);
        struct waiter *w = e->waiters;
        e->waiters = NULL;
        e->adapter = NULL;
        struct slora_cache_handle *dropped = NULL;
        if (err) {
            c->st.gen_failures++;
            unlink_entry(c, e);
            slora_warn("cache: generating %s@%s failed: %s", e->id, e->version, diag);
        } else {
            int b = 0;
            while (dt > slora_cache_gen_bounds[b])
                b++;
            c->st.gen_buckets[b]++;
            c->st.gen_count++;
            c->st.gen_seconds_sum += dt;
            e->ready = true;
            e->last_use = ++c->tick;
            carry_pin(c, e);
        }
        pthread_mutex_unlock(&c->lock);

        while (w) {
            struct waiter *next = w->next;
            w->cb(w->arg, err ? NULL : e, err, diag);
            free(w);
            w = next;
        }
        if (err)
            free_entry(e);
        free_dropped(dropped);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

struct slora_cache *slora_cache_new(const struct slora_model *m,
                                    const struct slora_cache_config *cfg)
{
    struct slora_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    const char *fault = getenv("SLORA_FAULT_ALLOC");
    if (fault && *fault) {
        c->alloc_fault_nth = strtoull(fault, NULL, 10);
        slora_warn("allocation fault hook active: delta allocation %" PRIu64 " will fail",
                   c->alloc_fault_nth);
    }
    c->model = m;
    c->budget = cfg ? cfg->budget_bytes : SLORA_CACHE_DEFAULT_BYTES;
    c->tenant_pin_budget = cfg ? cfg->tenant_pin_bytes : 0;
    c->dopts = (struct slora_delta_opts){
        .dense_type = cfg ? cfg->delta_type : SLORA_DTYPE_F32,
        .factored = !(cfg && cfg->dense_only),
        .n_threads = 1,
        .gen = cfg ? cfg->gen : NULL,
    };
    c->is_current = cfg ? cfg->is_current : NULL;
    c->is_current_arg = cfg ? cfg->is_current_arg : NULL;
    c->n_threads = cfg && cfg->gen_threads > 0 ? cfg->gen_threads : 1;
    c->st.budget_bytes = c->budget;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->work, NULL);
    c->threads = calloc((size_t)c->n_threads, sizeof(*c->threads));
    if (!c->threads)
        goto err_free_cache;
    for (int i = 0; i < c->n_threads; i++) {
        if (pthread_create(&c->threads[i], NULL, gen_thread, c)) {
            c->n_threads = i;
            slora_cache_free(c);
            return NULL;
        }
    }
    return c;

err_free_cache:
    pthread_cond_destroy(&c->work);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return NULL;
}

void slora_cache_free(struct slora_cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_broadcast(&c->work);
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < c->n_threads; i++)
        pthread_join(c->threads[i], NULL);
    while (c->entries) {
        struct slora_cache_handle *e = c->entries;
        if (e->refs)
            slora_error("cache: %s@%s still has %d users at shutdown", e->id, e->version,
                        e->refs);
        unlink_entry(c, e);
        free_entry(e);
    }
    while (c->pins) {
        struct pin *p = c->pins;
        c->pins = p->next;
        free(p->id);
        free(p);
    }
    while (c->reservations) {
        struct slora_cache_reservation *r = c->reservations;
        c->reservations = r->next;
        slora_error("cache: pin reservation of %s still held at shutdown", r->id);
        free(r->id);
        free(r);
    }
    free(c->threads);
    pthread_cond_destroy(&c->work);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int slora_cache_acquire(struct slora_cache *c, const char *id, const char *version,
                        const struct slora_adapter *a, slora_cache_ready_cb cb, void *arg)
{
    if (strlen(version) >= SLORA_CACHE_VERSION_MAX)
        return SLORA_EINVAL;
    struct waiter *w = malloc(sizeof(*w));
    if (!w)
        return SLORA_ENOMEM;
    w->cb = cb;
    w->arg = arg;
    w->next = NULL;

    struct slora_cache_handle *dropped = NULL;
    pthread_mutex_lock(&c->lock);
    sweep_unregistered(c, &dropped);
    struct slora_cache_handle *e = find(c, id, version);
    if (e) {
        c->st.hits++;
        e->refs++;
        if (e->ready) {
            e->last_use = ++c->tick;
            pthread_mutex_unlock(&c->lock);
            free(w);
            free_dropped(dropped);
            cb(arg, e, 0, "");
            return 0;
        }
        w->next = e->waiters;
        e->waiters = w;
        pthread_mutex_unlock(&c->lock);
        free_dropped(dropped);
        return 0;
    }

    e = calloc(1, sizeof(*e));
    if (!e || !(e->id = strdup(id)) || slora_weights_init(&e->ws, c->model, 1))
        goto err_unlock;
    e->ws.id = slora_weights_new_id();
    snprintf(e->version, sizeof(e->version), "%s", version);
    e->adapter = a;
    e->bytes = slora_cache_entry_bytes(c, a);
    e->refs = 1;
    e->waiters = w;
    e->next = c->entries;
    if (c->entries)
        c->entries->prev = e;
    c->entries = e;
    c->st.bytes += e->bytes;
    c->st.entries++;
    c->st.misses++;
    if (c->queue_tail)
        c->queue_tail->queue_next = e;
    else
        c->queue_head = e;
    c->queue_tail = e;
    enforce_budget(c, &dropped);
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->lock);
    free_dropped(dropped);
    return 0;

err_unlock:
    pthread_mutex_unlock(&c->lock);
    free_dropped(dropped);
    if (e)
        free(e->id);
    free(e);
    free(w);
    return SLORA_ENOMEM;
}

struct wait_state {
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    bool done;
    int err;
    struct slora_cache_handle *h;
    char diag[256];
};

static void on_wait_ready(void *arg, struct slora_cache_handle *h, int err, const char *diag)
{
    struct wait_state *ws = arg;
    pthread_mutex_lock(&ws->lock);
    ws->h = h;
    ws->err = err;
    snprintf(ws->diag, sizeof(ws->diag), "%s", diag);
    ws->done = true;
    pthread_cond_signal(&ws->done_cond);
    pthread_mutex_unlock(&ws->lock);
}

int slora_cache_acquire_wait(struct slora_cache *c, const char *id, const char *version,
                             const struct slora_adapter *a, struct slora_cache_handle **out,
                             char *diag, size_t diag_len)
{
    struct wait_state ws = {.done = false};
    pthread_mutex_init(&ws.lock, NULL);
    pthread_cond_init(&ws.done_cond, NULL);
    int err = slora_cache_acquire(c, id, version, a, on_wait_ready, &ws);
    if (!err) {
        pthread_mutex_lock(&ws.lock);
        while (!ws.done)
            pthread_cond_wait(&ws.done_cond, &ws.lock);
        pthread_mutex_unlock(&ws.lock);
        err = ws.err;
        if (err && diag_len)
            snprintf(diag, diag_len, "%s", ws.diag);
    } else if (diag_len) {
        snprintf(diag, diag_len, "%s", slora_strerror(err));
    }
    pthread_cond_destroy(&ws.done_cond);
    pthread_mutex_destroy(&ws.lock);
    *out = ws.h;
    return err;
}

const struct slora_weights *slora_cache_handle_weights(const struct slora_cache_handle *h)
{
    return &h->ws;
}

void slora_cache_release(struct slora_cache *c, struct slora_cache_handle *h)
{
    if (!h)
        return;
    struct slora_cache_handle *dropped = NULL;
    pthread_mutex_lock(&c->lock);
    h->last_use = ++c->tick;
    if (--h->refs == 0) {
        if (h->stale) {
            unlink_entry(c, h);
            dropped = h;
            h->next = NULL;
        } else if (c->is_current && !c->is_current(c->is_current_arg, h->id, h->version)) {
            retire_entry(c, h, &dropped);
        } else if (h->bytes > c->budget && !h->pinned) {
            unlink_entry(c, h);
            c->st.evictions++;
            dropped = h;
            h->next = NULL;
        }
    }
    enforce_budget(c, &dropped);
    pthread_mutex_unlock(&c->lock);
    free_dropped(dropped);
}

int slora_cache_warm(struct slora_cache *c, const char *id, const char *version,
                     const struct slora_adapter *a, char *diag, size_t diag_len)
{
    struct slora_cache_handle *h;
    int err = slora_cache_acquire_wait(c, id, version, a, &h, diag, diag_len);
    if (err)
        return err;
    slora_cache_release(c, h);
    return 0;
}

int slora_cache_pin_check(struct slora_cache *c, const char *id, const struct slora_adapter *a,
                          char *diag, size_t diag_len)
{
    size_t bytes = slora_cache_entry_bytes(c, a);
    pthread_mutex_lock(&c->lock);
    int err = pin_fits(c, id, bytes, diag, diag_len);
    pthread_mutex_unlock(&c->lock);
    return err;
}

bool slora_cache_is_pinned(struct slora_cache *c, const char *id)
{
    pthread_mutex_lock(&c->lock);
    bool pinned = *find_pin(c, id) != NULL;
    pthread_mutex_unlock(&c->lock);
    return pinned;
}

/* Unlink r from c's reservations. Caller holds the lock. */
static void unlink_reservation(struct slora_cache *c, struct slora_cache_reservation *r)
{
    struct slora_cache_reservation **rp = &c->reservations;
    while (*rp != r)
        rp = &(*rp)->next;
    *rp = r->next;
}

static void free_reservation(struct slora_cache_reservation *r)
{
    free(r->id);
    free(r);
}

int slora_cache_pin_reserve(struct slora_cache *c, const char *id, const struct slora_adapter *a,
                            struct slora_cache_reservation **out, char *diag, size_t diag_len)
{
    struct slora_cache_reservation *r = calloc(1, sizeof(*r));
    if (!r || !(r->id = strdup(id))) {
        free(r);
        snprintf(diag, diag_len, "out of memory");
        return SLORA_ENOMEM;
    }
    size_t bytes = slora_cache_entry_bytes(c, a);
    r->bytes = bytes;
    pthread_mutex_lock(&c->lock);
    int err = pin_fits(c, id, bytes, diag, diag_len);
    if (err) {
        pthread_mutex_unlock(&c->lock);
        free_reservation(r);
        return err;
    }
    r->next = c->reservations;
    c->reservations = r;
    pthread_mutex_unlock(&c->lock);
    *out = r;
    return 0;
}

void slora_cache_pin_unreserve(struct slora_cache *c, struct slora_cache_reservation *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&c->lock);
    unlink_reservation(c, r);
    pthread_mutex_unlock(&c->lock);
    free_reservation(r);
}

/* slora_cache_pin, consuming r (NULL: none) whatever the outcome. With r
 * the bytes were promised already, so only the generation can fail. */
static int pin_entry(struct slora_cache *c, const char *id, const char *version,
                     const struct slora_adapter *a, struct slora_cache_reservation *r,
                     char *diag, size_t diag_len)
{
    int err = r ? 0 : slora_cache_pin_check(c, id, a, diag, diag_len);
    struct slora_cache_handle *h = NULL;
    if (!err)
        err = slora_cache_acquire_wait(c, id, version, a, &h, diag, diag_len);
    if (err) {
        slora_cache_pin_unreserve(c, r);
        return err;
    }

    pthread_mutex_lock(&c->lock);
    if (r)
        unlink_reservation(c, r);
    struct pin *p = NULL;
    if (!h->pinned)
        err = pin_fits(c, id, h->bytes, diag, diag_len);
    if (!err && !*find_pin(c, id)) {
        p = calloc(1, sizeof(*p));
        if (p && (p->id = strdup(id))) {
            p->next = c->pins;
            c->pins = p;
        } else {
            free(p);
            err = SLORA_ENOMEM;
        }
    }
    if (!err) {
        unpin_entries(c, id, h);
        if (!h->pinned) {
            h->pinned = true;
            c->st.pinned_bytes += h->bytes;
        }
    }
    pthread_mutex_unlock(&c->lock);
    slora_cache_release(c, h);
    if (r)
        free_reservation(r);
    return err;
}

int slora_cache_pin(struct slora_cache *c, const char *id, const char *version,
                    const struct slora_adapter *a, char *diag, size_t diag_len)
{
    return pin_entry(c, id, version, a, NULL, diag, diag_len);
}

int slora_cache_pin_commit(struct slora_cache *c, struct slora_cache_reservation *r,
                           const char *version, const struct slora_adapter *a, char *diag,
                           size_t diag_len)
{
    return pin_entry(c, r->id, version, a, r, diag, diag_len);
}

void slora_cache_unpin(struct slora_cache *c, const char *id)
{
    struct slora_cache_handle *dropped = NULL;
    pthread_mutex_lock(&c->lock);
    struct pin **pp = find_pin(c, id), *p = *pp;
    if (p) {
        *pp = p->next;
        free(p->id);
        free(p);
    }
    unpin_entries(c, id, NULL);
    enforce_budget(c, &dropped);
    pthread_mutex_unlock(&c->lock);
    free_dropped(dropped);
}

int slora_cache_retire(struct slora_cache *c, const char *id, const char *version,
                       const struct slora_adapter *a)
{
    struct slora_cache_handle *dropped = NULL;
    pthread_mutex_lock(&c->lock);
    struct slora_cache_handle *e = c->entries;
    while (e) {
        struct slora_cache_handle *next = e->next;
        if (!strcmp(e->id, id) && (!a || strcmp(e->version, version)))
            retire_entry(c, e, &dropped);
        e = next;
    }
    bool pinned = *find_pin(c, id) != NULL;
    pthread_mutex_unlock(&c->lock);
    free_dropped(dropped);

    if (!pinned)
        return 0;
    if (!a) {
        slora_cache_unpin(c, id);
        return 0;
    }
    char diag[256];
    int err = slora_cache_pin(c, id, version, a, diag, sizeof(diag));
    if (err) {
        slora_warn("cache: pin of %s not carried over to version %s: %s", id, version, diag);
        slora_cache_unpin(c, id);
    }
    return err;
}

void slora_cache_stats(struct slora_cache *c, struct slora_cache_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    out->in_use = 0;
    for (struct slora_cache_handle *e = c->entries; e; e = e->next)
        out->in_use += e->refs > 0;
    pthread_mutex_unlock(&c->lock);
}
