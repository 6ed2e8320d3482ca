/* registry_sync.c - versions that come from the store rather than from a
 * local upload: the startup restore of a dir store (every readable file,
 * the rest skipped with a warning) and the replica's load/unload/holds for
 * versions another replica wrote to a shared store (replica.h).
 *
 * Invariant: a slot's entry is only replaced by a higher store revision
 * (force: restore, or a resync after a gap, replaces whatever is not busy),
 * so the change stream and local commits may arrive in either order.
 *
 * Threads: any (the replica thread, the loop at startup); validation and
 * hashing run outside r->lock.
 */
#include "registry_internal.h"

#include <slora/error.h>
#include <slora/log.h>
#include <slora/registry.h>
#include <slora/store.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Validate buf and publish it as it describes; see slora_registry_load. */
int slora_registry_load(struct slora_registry *r, const struct slora_store_item *it,
                        const void *buf, size_t len, bool force, struct slora_registry_entry **out,
                        char *diag, size_t diag_len)
{
    if (out)
        *out = NULL;
    char id[SLORA_ID_MAX + 1];
    int rc = slora_registry_name_check(it->tenant, strlen(it->tenant), "tenant", diag, diag_len);
    if (rc == 0)
        rc = slora_registry_name_check(it->name, strlen(it->name), "adapter", diag, diag_len);
    if (rc < 0)
        return rc;
    snprintf(id, sizeof(id), "%s/%s", it->tenant, it->name);
    struct slora_adapter *a = NULL;
    rc = r->opt.validate(r->opt.ctx, buf, len, &a, diag, diag_len);
    struct slora_registry_entry *e = NULL;
    if (rc == 0)
        rc = slora__registry_entry_new(r, it->tenant, it->name, buf, len, a, it->created, !r->store,
                                       &e);
    if (rc < 0)
        return rc;
    e->rev = it->rev;
    slora_registry_entry_set_pinned(e, it->pinned);
    if (it->version[0] && strcmp(it->version, e->version))
        slora_warn("%s: the store says version %s, its bytes are version %s", id, it->version,
                   e->version);
    pthread_mutex_lock(&r->lock);
    struct slora__registry_usage *u = slora__registry_usage_of(r, it->tenant, true);
    struct slora__registry_slot *s = u ? slora__registry_slot_insert(r, it->tenant, id) : NULL;
    struct slora_registry_entry *old = e;
    bool publishable = s && (force ? !s->busy : slora__registry_is_newer(s, it->rev));
    if (publishable) {
        old = slora__registry_publish(s, u, e, !slora__registry_is_shared(r));
        if (out)
            *out = slora_registry_entry_ref(e);
    }
    if (s && !s->entry && !s->busy)
        slora__registry_slot_remove(r, s);
    pthread_mutex_unlock(&r->lock);
    slora_registry_entry_unref(old);
    return s ? 0 : SLORA_ENOMEM;
}

bool slora_registry_unload(struct slora_registry *r, const char *tenant, const char *name,
                           int64_t rev, bool force)
{
    char id[SLORA_ID_MAX + 2];
    if (snprintf(id, sizeof(id), "%s/%s", tenant, name) > SLORA_ID_MAX)
        return false;
    struct slora_registry_entry *dropped = NULL;
    pthread_mutex_lock(&r->lock);
    struct slora__registry_slot *s = slora__registry_slot_find(r, id);
    if (s && s->entry && (force ? !s->busy : slora__registry_entry_rev(s->entry) < rev)) {
        struct slora__registry_usage *u = slora__registry_usage_of(r, s->tenant, false);
        dropped = s->entry;
        s->entry = NULL;
        u->count--;
        u->bytes -= dropped->file_bytes;
        if (!s->busy)
            slora__registry_slot_remove(r, s);
    }
    pthread_mutex_unlock(&r->lock);
    slora_registry_entry_unref(dropped);
    return dropped != NULL;
}

bool slora_registry_holds(struct slora_registry *r, const struct slora_store_item *it,
                          bool *pin_changed)
{
    char id[SLORA_ID_MAX + 2];
    if (pin_changed)
        *pin_changed = false;
    if (snprintf(id, sizeof(id), "%s/%s", it->tenant, it->name) > SLORA_ID_MAX)
        return false;
    bool held = false;
    pthread_mutex_lock(&r->lock);
    struct slora__registry_slot *s = slora__registry_slot_find(r, id);
    if (s && s->entry && !strcmp(s->entry->version, it->version)) {
        if (it->rev >= slora__registry_entry_rev(s->entry)) { /* an older entry says nothing new */
            __atomic_store_n(&s->entry->rev, it->rev, __ATOMIC_RELAXED);
            if (pin_changed)
                *pin_changed = slora_registry_entry_is_pinned(s->entry) != it->pinned;
            slora_registry_entry_set_pinned(s->entry, it->pinned);
        }
        held = true;
    } else if (s && s->busy && s->pending[0] && !strcmp(s->pending, it->version)) {
        if (it->rev > s->claimed_rev) {
            s->claimed_rev = it->rev;
            s->claimed_pinned = it->pinned;
        }
        held = true;
    }
    pthread_mutex_unlock(&r->lock);
    return held;
}

struct restore {
    struct slora_registry *r;
    struct slora_registry_restore_report *rep;
};

static void restore_one(void *arg, const struct slora_store_item *it, const void *buf, size_t len)
{
    struct restore *rs = arg;
    char diag[512] = "";
    int rc = slora_registry_load(rs->r, it, buf, len, true, NULL, diag, sizeof(diag));
    if (rc < 0) {
        slora_warn("restore: skipping %s/%s: %s: %s", it->tenant, it->name, slora_err_name(rc),
                   diag);
        rs->rep->skipped++;
    } else {
        rs->rep->restored++;
    }
}

int slora_registry_restore(struct slora_registry *r, struct slora_registry_restore_report *rep,
                           char *diag, size_t diag_len)
{
    memset(rep, 0, sizeof(*rep));
    if (!r->store || slora__registry_is_shared(r))
        return 0;
    struct restore rs = {r, rep};
    struct slora_store_scan_report sr;
    size_t max = r->opt.max_file_bytes ? r->opt.max_file_bytes : SIZE_MAX;
    int rc = slora_store_scan(r->store, max, NULL, restore_one, &rs, NULL, &sr, diag, diag_len);
    if (rc < 0)
        return rc;
    rep->skipped += sr.skipped;
    rep->removed_temp = sr.removed_temp;
    slora_info("restore: %d adapters restored, %d skipped, %d leftovers removed", rep->restored,
               rep->skipped, rep->removed_temp);
    return 0;
}
