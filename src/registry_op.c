/* registry_op.c - the registry's two-phase mutations (registry.h):
 * begin (loop thread: names, If-Match/If-None-Match, count quota; marks the
 * name busy), run (worker: validate, hash, bytes quota, durable store
 * write), commit/abort (loop thread: publish or drop, release the
 * reservations), and the one-call put/delete built on them.
 *
 * Quota: committed count/bytes plus reservations of in-flight operations
 * (a new name reserves one adapter at begin; a PUT reserves its byte growth
 * in run, just before it persists), so parallel uploads of different names
 * cannot overshoot a quota together. A shared store counts atomically
 * itself; the index's checks are the early answer.
 *
 * Revisions: a shared store orders every write; a slot's entry is only
 * replaced by a higher revision (0 is unordered: the dir store, memory
 * only), whether it comes from a local commit or from the replica.
 *
 * Threads: an op is used by one thread at a time (begin, then run on a
 * worker, then commit); r->lock is taken for pointer and counter work
 * only, never across validation or the store write.
 */
#include "registry_internal.h"

#include <slora/error.h>
#include <slora/registry.h>
#include <slora/store.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAS_TRIES 8 /* store writes retried when another replica moved the name */

struct slora_registry_op {
    struct slora_registry *r;
    bool is_delete;
    bool dry_run;
    char tenant[SLORA_NAME_MAX + 1];
    char name[SLORA_NAME_MAX + 1];
    char id[SLORA_ID_MAX + 1];
    struct slora__registry_slot *slot; /* NULL for a dry run */
    bool new_name;                     /* reserved one adapter of the quota */
    struct slora_quota quota;
    int64_t reserved_bytes;             /* reserved by run */
    struct slora_registry_entry *entry; /* PUT: the prepared version */
    slora_registry_admit_cb admit;      /* PUT: optional last check before persisting */
    void *admit_arg;
    int pin;                          /* PUT: the flag a shared store keeps (-1 keep) */
    struct slora_registry_cond cond;  /* shared store: re-checked against its version */
    char *cond_strings;               /* owned copies of cond's headers */
    char seen[SLORA_VERSION_LEN + 1]; /* version the index had at begin ("" absent) */
    int64_t rev;                      /* the store write's revision */
    bool created;                     /* shared store: the name was new there */
    int rc;                           /* result of run; SLORA_ECANCELED before it */
    char diag[512];
};

static void count_reject(struct slora_registry *r, int rc)
{
    if (rc <= SLORA__ERR_FIRST || rc >= SLORA__ERR_END)
        rc = SLORA_EINTERNAL;
    pthread_mutex_lock(&r->lock);
    r->stats.rejected[SLORA_ERR_INDEX(rc)]++;
    pthread_mutex_unlock(&r->lock);
}

/* Preconditions against the current version (NULL when absent). */
static int check_cond(const struct slora_registry_cond *cond, const char *id, const char *cur,
                      char *diag, size_t diag_len)
{
    if (!cond)
        return 0;
    if (cond->if_match && (!cur || !slora_registry_etag_match(cond->if_match, cur))) {
        if (cur)
            snprintf(diag, diag_len, "If-Match: %s is at version \"%s\"", id, cur);
        else
            snprintf(diag, diag_len, "If-Match: %s does not exist", id);
        return SLORA_EPRECOND;
    }
    if (cond->if_none_match && cur && slora_registry_etag_match(cond->if_none_match, cur)) {
        snprintf(diag, diag_len, "If-None-Match: %s exists at version \"%s\"", id, cur);
        return SLORA_EPRECOND;
    }
    return 0;
}

/* A shared store that is down takes no writes: say so before the body. */
static int check_store_up(const struct slora_registry *r, char *diag, size_t diag_len)
{
    if (!slora__registry_is_shared(r))
        return 0;
    struct slora_store_stats st;
    slora_store_stats(r->store, &st);
    if (st.up)
        return 0;
    snprintf(diag, diag_len,
             "adapter store (%s) is unreachable: uploads and deletes are refused until it "
             "returns; inference on loaded adapters continues",
             slora_store_kind_name(r->store));
    return SLORA_EUNAVAIL;
}

/* Keep the preconditions for the store write (a shared store re-checks
 * them against its own current version). */
static int op_keep_cond(struct slora_registry_op *op, const struct slora_registry_cond *cond)
{
    if (!cond || (!cond->if_match && !cond->if_none_match))
        return 0;
    size_t nm = cond->if_match ? strlen(cond->if_match) + 1 : 0;
    size_t nn = cond->if_none_match ? strlen(cond->if_none_match) + 1 : 0;
    if (!(op->cond_strings = malloc(nm + nn)))
        return SLORA_ENOMEM;
    if (nm)
        op->cond.if_match = memcpy(op->cond_strings, cond->if_match, nm);
    if (nn)
        op->cond.if_none_match = memcpy(op->cond_strings + nm, cond->if_none_match, nn);
    return 0;
}

static void op_free(struct slora_registry_op *op)
{
    free(op->cond_strings);
    free(op);
}

static bool over(int64_t limit, int64_t value)
{
    return limit >= 0 && value > limit;
}

/* Common begin: names, lock, busy and preconditions. On success returns
 * with the lock held and *slot = the name's slot (may be NULL). */
static int begin_locked(struct slora_registry *r, struct slora_registry_op *op,
                        const struct slora_registry_cond *cond, struct slora__registry_slot **slot,
                        char *diag, size_t diag_len)
{
    const char *id = op->id;
    int rc = op->dry_run ? 0 : check_store_up(r, diag, diag_len);
    if (rc == 0)
        rc = op_keep_cond(op, cond);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&r->lock);
    struct slora__registry_slot *s = slora__registry_slot_find(r, id);
    if (s && s->busy && !op->dry_run) {
        pthread_mutex_unlock(&r->lock);
        snprintf(diag, diag_len, "another upload or delete of %s is in progress; retry", id);
        return SLORA_EBUSY;
    }
    const char *cur = s && s->entry ? s->entry->version : NULL;
    rc = check_cond(cond, id, cur, diag, diag_len);
    if (rc < 0) {
        pthread_mutex_unlock(&r->lock);
        return rc;
    }
    snprintf(op->seen, sizeof(op->seen), "%s", cur ? cur : "");
    *slot = s;
    return 0;
}

static int op_new(struct slora_registry *r, const char *tenant, const char *name, bool is_delete,
                  bool dry_run, struct slora_registry_op **out, char *diag, size_t diag_len)
{
    int rc = slora_registry_name_check(tenant, strlen(tenant), "tenant", diag, diag_len);
    if (rc == 0)
        rc = slora_registry_name_check(name, strlen(name), "adapter", diag, diag_len);
    if (rc < 0)
        return rc;
    struct slora_registry_op *op = calloc(1, sizeof(*op));
    if (!op)
        return SLORA_ENOMEM;
    op->r = r;
    op->is_delete = is_delete;
    op->dry_run = dry_run;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    snprintf(op->name, sizeof(op->name), "%s", name);
    snprintf(op->id, sizeof(op->id), "%s/%s", tenant, name);
    op->quota = (struct slora_quota){-1, -1};
    op->pin = -1;
    op->rc = SLORA_ECANCELED;
    *out = op;
    return 0;
}

int slora_registry_begin_put(struct slora_registry *r, const char *tenant, const char *name,
                             const struct slora_registry_cond *cond,
                             const struct slora_quota *quota, int64_t declared_bytes, bool dry_run,
                             struct slora_registry_op **out, char *diag, size_t diag_len)
{
    struct slora_registry_op *op;
    int rc = op_new(r, tenant, name, false, dry_run, &op, diag, diag_len);
    if (rc < 0)
        goto err_count;
    if (quota)
        op->quota = *quota;
    struct slora__registry_slot *s;
    rc = begin_locked(r, op, cond, &s, diag, diag_len);
    if (rc < 0)
        goto err_free_op;
    struct slora_registry_entry *cur = s ? s->entry : NULL;
    /* A dry run records nothing, not even the tenant. */
    struct slora__registry_usage none = {.count = 0},
                                 *u = slora__registry_usage_of(r, op->tenant, !dry_run);
    if (!u && !dry_run) {
        rc = SLORA_ENOMEM;
        goto err_unlock;
    }
    if (!u)
        u = &none;
    if (!cur && over(op->quota.max_adapters, u->count + u->reserved_count + 1)) {
        snprintf(diag, diag_len, "tenant '%s' has %lld adapters; quota max_adapters is %lld",
                 op->tenant, (long long)(u->count + u->reserved_count),
                 (long long)op->quota.max_adapters);
        rc = SLORA_EQUOTA;
        goto err_unlock;
    }
    int64_t after = u->bytes + u->reserved_bytes - (cur ? cur->file_bytes : 0) + declared_bytes;
    if (declared_bytes >= 0 && over(op->quota.max_bytes, after)) {
        snprintf(diag, diag_len, "tenant '%s' would store %lld bytes; quota max_bytes is %lld",
                 op->tenant, (long long)after, (long long)op->quota.max_bytes);
        rc = SLORA_ENOSPC;
        goto err_unlock;
    }
    if (!dry_run) {
        if (!s && !(s = slora__registry_slot_insert(r, op->tenant, op->id))) {
            rc = SLORA_ENOMEM;
            goto err_unlock;
        }
        s->busy = true;
        op->slot = s;
        op->new_name = !cur;
        u->reserved_count += op->new_name;
    }
    pthread_mutex_unlock(&r->lock);
    *out = op;
    return 0;

err_unlock:
    pthread_mutex_unlock(&r->lock);
err_free_op:
    op_free(op);
err_count:
    count_reject(r, rc);
    return rc;
}

int slora_registry_begin_delete(struct slora_registry *r, const char *tenant, const char *name,
                                const struct slora_registry_cond *cond,
                                struct slora_registry_op **out, char *diag, size_t diag_len)
{
    struct slora_registry_op *op;
    int rc = op_new(r, tenant, name, true, false, &op, diag, diag_len);
    if (rc < 0)
        return rc;
    struct slora__registry_slot *s;
    rc = begin_locked(r, op, cond, &s, diag, diag_len);
    if (rc < 0)
        goto err_free_op;
    if (!s || !s->entry) {
        pthread_mutex_unlock(&r->lock);
        snprintf(diag, diag_len, "adapter %s not found", op->id);
        rc = SLORA_ENOTFOUND;
        goto err_free_op;
    }
    s->busy = true;
    op->slot = s;
    pthread_mutex_unlock(&r->lock);
    *out = op;
    return 0;

err_free_op:
    op_free(op);
    return rc;
}

/* Write op to the store. A shared store checks op->seen (the version the
 * preconditions held against at begin) in the same atomic step; when
 * another replica moved the name meanwhile, the preconditions are checked
 * again against the version it found and the write retried. */
static int store_write(struct slora_registry_op *op, const void *buf, size_t len)
{
    struct slora_registry *r = op->r;
    bool has_cond = op->cond.if_match || op->cond.if_none_match;
    char expect[SLORA_VERSION_LEN + 1];
    snprintf(expect, sizeof(expect), "%s", op->seen);
    struct slora_store_write w = {
        .tenant = op->tenant,
        .name = op->name,
        .buf = op->is_delete ? NULL : buf,
        .len = op->is_delete ? 0 : len,
        .version = op->entry ? op->entry->version : NULL,
        .created = op->entry ? op->entry->created : 0,
        .pin = op->pin,
        .max_adapters = op->quota.max_adapters,
        .max_bytes = op->quota.max_bytes,
    };
    /* From before the write: the change stream may announce it before
     * this call returns, and the replica must not load it a second time. */
    pthread_mutex_lock(&r->lock);
    snprintf(op->slot->pending, sizeof(op->slot->pending), "%s",
             op->entry ? op->entry->version : "");
    pthread_mutex_unlock(&r->lock);
    int rc = SLORA_EBUSY;
    for (int i = 0; i < CAS_TRIES; i++) {
        w.expect = has_cond ? expect : NULL;
        struct slora_store_result res;
        rc = op->is_delete ? slora_store_remove(r->store, &w, &res, op->diag, sizeof(op->diag))
                           : slora_store_put(r->store, &w, &res, op->diag, sizeof(op->diag));
        if (rc == 0) {
            op->rev = res.rev;
            op->created = res.created;
            if (op->entry && slora__registry_is_shared(r)) {
                __atomic_store_n(&op->entry->rev, res.rev, __ATOMIC_RELAXED);
                slora_registry_entry_set_pinned(op->entry, res.pinned);
            }
            return 0;
        }
        if (rc != SLORA_EPRECOND)
            break;
        rc = check_cond(&op->cond, op->id, res.current[0] ? res.current : NULL, op->diag,
                        sizeof(op->diag));
        if (rc < 0)
            break;
        memcpy(expect, res.current, sizeof(expect));
        rc = SLORA_EBUSY;
        snprintf(op->diag, sizeof(op->diag), "%s kept changing in the %s store; retry", op->id,
                 slora_store_kind_name(r->store));
    }
    /* Not written; but if the replica skipped the same version written
     * elsewhere while this write was pending, publish it now as if loaded. */
    struct slora_registry_entry *old = NULL;
    pthread_mutex_lock(&r->lock);
    struct slora__registry_slot *s = op->slot;
    if (s->claimed_rev && op->entry && slora__registry_is_newer(s, s->claimed_rev)) {
        __atomic_store_n(&op->entry->rev, s->claimed_rev, __ATOMIC_RELAXED);
        slora_registry_entry_set_pinned(op->entry, s->claimed_pinned);
        old = slora__registry_publish(s, slora__registry_usage_of(r, op->tenant, false),
                                      slora_registry_entry_ref(op->entry), false);
    }
    s->pending[0] = '\0';
    s->claimed_rev = 0;
    pthread_mutex_unlock(&r->lock);
    slora_registry_entry_unref(old);
    return rc;
}

static int run_put(struct slora_registry_op *op, const void *buf, size_t len)
{
    struct slora_registry *r = op->r;
    struct slora_adapter *a = NULL;
    int rc = r->opt.validate(r->opt.ctx, buf, len, &a, op->diag, sizeof(op->diag));
    if (rc < 0)
        return rc;
    rc = slora__registry_entry_new(r, op->tenant, op->name, buf, len, a, (int64_t)time(NULL),
                                   !r->store && !op->dry_run, &op->entry);
    if (rc == 0 && op->admit)
        rc = op->admit(op->admit_arg, op->entry, op->diag, sizeof(op->diag));
    if (rc < 0 || op->dry_run)
        return rc;

    /* A shared store counts the tenant's bytes itself, atomically. */
    if (!slora__registry_is_shared(r)) {
        pthread_mutex_lock(&r->lock);
        struct slora__registry_usage *u = slora__registry_usage_of(r, op->tenant, false);
        int64_t old = op->slot->entry ? op->slot->entry->file_bytes : 0;
        int64_t after = u->bytes + u->reserved_bytes - old + (int64_t)len;
        if (over(op->quota.max_bytes, after)) {
            pthread_mutex_unlock(&r->lock);
            snprintf(op->diag, sizeof(op->diag),
                     "tenant '%s' would store %lld bytes; quota max_bytes is %lld", op->tenant,
                     (long long)after, (long long)op->quota.max_bytes);
            return SLORA_ENOSPC;
        }
        op->reserved_bytes = (int64_t)len > old ? (int64_t)len - old : 0;
        u->reserved_bytes += op->reserved_bytes;
        pthread_mutex_unlock(&r->lock);
    }
    return r->store ? store_write(op, buf, len) : 0;
}

static int run_delete(struct slora_registry_op *op)
{
    return op->r->store ? store_write(op, NULL, 0) : 0;
}

void slora_registry_op_set_pin(struct slora_registry_op *op, int pin)
{
    op->pin = pin;
}

void slora_registry_op_set_admit(struct slora_registry_op *op, slora_registry_admit_cb admit,
                                 void *arg)
{
    op->admit = admit;
    op->admit_arg = arg;
}

int slora_registry_op_reject(struct slora_registry_op *op, int err, const char *diag)
{
    op->rc = err;
    snprintf(op->diag, sizeof(op->diag), "%s", diag);
    return err;
}

int slora_registry_op_run(struct slora_registry_op *op, const void *buf, size_t len, char *diag,
                          size_t diag_len)
{
    op->diag[0] = '\0';
    op->rc = op->is_delete ? run_delete(op) : run_put(op, buf, len);
    if (op->rc < 0 && !op->diag[0])
        snprintf(op->diag, sizeof(op->diag), "%s", slora_strerror(op->rc));
    if (op->rc < 0)
        snprintf(diag, diag_len, "%s", op->diag);
    return op->rc;
}

/* Undo the reservations of op (not freed). Caller holds the lock. */
static void op_release_locked(struct slora_registry_op *op)
{
    struct slora_registry *r = op->r;
    if (op->slot) {
        struct slora__registry_usage *u = slora__registry_usage_of(r, op->tenant, false);
        u->reserved_count -= op->new_name;
        u->reserved_bytes -= op->reserved_bytes;
        op->slot->busy = false;
        op->slot->pending[0] = '\0';
        op->slot->claimed_rev = 0;
        if (!op->slot->entry)
            slora__registry_slot_remove(r, op->slot);
    }
}

void slora_registry_op_abort(struct slora_registry_op *op)
{
    if (!op)
        return;
    if (op->rc == 0 && !op->dry_run) {
        /* The run already changed the file on disk: the index must follow. */
        char diag[8];
        slora_registry_op_commit(op, NULL, NULL, diag, sizeof(diag));
        return;
    }
    pthread_mutex_lock(&op->r->lock);
    op_release_locked(op);
    pthread_mutex_unlock(&op->r->lock);
    slora_registry_entry_unref(op->entry);
    op_free(op);
}

int slora_registry_op_commit(struct slora_registry_op *op, struct slora_registry_entry **out,
                             bool *created, char *diag, size_t diag_len)
{
    struct slora_registry *r = op->r;
    struct slora_registry_entry *dropped = NULL, *result = NULL;
    bool was_new = false;
    int rc = op->rc;
    if (rc < 0)
        snprintf(diag, diag_len, "%s", op->diag);

    pthread_mutex_lock(&r->lock);
    if (rc < 0) {
        if (!op->is_delete)
            r->stats.rejected[SLORA_ERR_INDEX(rc)]++;
        dropped = op->entry;
    } else if (op->dry_run) {
        struct slora__registry_slot *s = slora__registry_slot_find(r, op->id);
        was_new = !s || !s->entry;
        result = op->entry;
        r->stats.dry_runs++;
    } else if (op->is_delete) {
        /* The replica may have dropped it already, or loaded a newer one. */
        struct slora__registry_usage *u = slora__registry_usage_of(r, op->tenant, false);
        if (op->slot->entry && slora__registry_is_newer(op->slot, op->rev)) {
            dropped = op->slot->entry;
            op->slot->entry = NULL;
            u->count--;
            u->bytes -= dropped->file_bytes;
        }
        r->stats.deletes++;
    } else {
        struct slora__registry_usage *u = slora__registry_usage_of(r, op->tenant, false);
        bool shared = slora__registry_is_shared(r);
        /* The replica may have loaded it already: ask the store. */
        was_new = shared ? op->created : op->slot->entry == NULL;
        result = slora_registry_entry_ref(op->entry);
        /* Not over a newer version the replica loaded meanwhile. */
        dropped = slora__registry_is_newer(op->slot, op->rev)
                      ? slora__registry_publish(op->slot, u, op->entry, !shared)
                      : op->entry;
        r->stats.uploads++;
        r->stats.swaps += !was_new;
    }
    op_release_locked(op);
    pthread_mutex_unlock(&r->lock);

    slora_registry_entry_unref(dropped);
    op_free(op);
    if (created)
        *created = was_new;
    if (out)
        *out = result;
    else
        slora_registry_entry_unref(result);
    return rc;
}

int slora_registry_put(struct slora_registry *r, const char *tenant, const char *name,
                       const struct slora_registry_cond *cond, const struct slora_quota *quota,
                       const void *buf, size_t len, bool dry_run, struct slora_registry_entry **out,
                       bool *created, char *diag, size_t diag_len)
{
    struct slora_registry_op *op;
    int rc = slora_registry_begin_put(r, tenant, name, cond, quota, (int64_t)len, dry_run, &op,
                                      diag, diag_len);
    if (rc < 0)
        return rc;
    slora_registry_op_run(op, buf, len, diag, diag_len);
    return slora_registry_op_commit(op, out, created, diag, diag_len);
}

int slora_registry_delete(struct slora_registry *r, const char *tenant, const char *name,
                          const struct slora_registry_cond *cond, char *diag, size_t diag_len)
{
    struct slora_registry_op *op;
    int rc = slora_registry_begin_delete(r, tenant, name, cond, &op, diag, diag_len);
    if (rc < 0)
        return rc;
    slora_registry_op_run(op, NULL, 0, diag, diag_len);
    return slora_registry_op_commit(op, NULL, NULL, diag, diag_len);
}
