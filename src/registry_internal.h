/* registry_internal.h - what the registry's files share (registry.c: index,
 * entries, names, reads; registry_op.c: two-phase PUT/DELETE with quotas
 * and store writes; registry_sync.c: startup restore and versions written
 * by other replicas). Not a public interface.
 *
 * Every field of struct slora_registry after opt/store/own_store, and every
 * slot and usage, is guarded by r->lock; functions below that say "caller
 * holds the lock" do pointer and counter work only.
 */
#ifndef SLORA_REGISTRY_INTERNAL_H
#define SLORA_REGISTRY_INTERNAL_H

#include <slora/registry.h>
#include <slora/store.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One name of the index. A slot exists while its name has a current entry
 * or an operation in flight (busy); slots are allocated one by one so an op
 * can keep a pointer to its slot: a busy slot is never removed by anyone
 * but that op. */
struct slora__registry_slot {
    struct slora_registry_entry
        *entry; /* current version (owned ref), NULL while a new name uploads */
    bool busy;  /* a PUT/DELETE op owns this name */
    /* The version the busy op is writing to the store and has not yet
     * committed ("" none), so the replica does not load it a second time. */
    char pending[SLORA_VERSION_LEN + 1];
    /* The replica skipped a stream entry for `pending` written by another
     * replica (same bytes): its revision and pin flag, in case this op's
     * own write fails and the prepared entry must stand in for it. */
    int64_t claimed_rev;
    bool claimed_pinned;
    const char *tenant; /* into id's allocation, after it */
    char id[];          /* "tenant/name", then tenant: NUL-terminated */
};

struct slora__registry_usage {
    char tenant[SLORA_NAME_MAX + 1];
    int64_t count;          /* committed adapters */
    int64_t bytes;          /* their file bytes */
    int64_t reserved_count; /* new names in flight */
    int64_t reserved_bytes; /* byte growth of PUTs between run and commit */
};

struct slora_registry {
    pthread_mutex_t lock;
    struct slora_registry_options opt;   /* opt.store is store below */
    struct slora_store *store;           /* NULL when memory only */
    bool own_store;                      /* opened from opt.state_dir */
    struct slora__registry_slot **slots; /* (n_slots) sorted by id */
    size_t n_slots, cap_slots;
    struct slora__registry_usage *usage; /* (n_usage), one per tenant ever seen */
    size_t n_usage;
    struct slora_registry_stats stats; /* adapters/bytes filled on read */
};

/* A new entry (refcount 1) owning adapter a (released on failure), its
 * version the sha256 of buf. keep_file: copy buf into it (memory-only
 * registry). Any thread, no lock. */
int slora__registry_entry_new(const struct slora_registry *r, const char *tenant, const char *name,
                              const void *buf, size_t len, struct slora_adapter *a, int64_t created,
                              bool keep_file, struct slora_registry_entry **out);

/* The slot of id, or NULL. Caller holds the lock. */
struct slora__registry_slot *slora__registry_slot_find(const struct slora_registry *r,
                                                       const char *id);
/* The slot of id, inserted empty when absent. Caller holds the lock. NULL
 * on allocation failure. */
struct slora__registry_slot *slora__registry_slot_insert(struct slora_registry *r,
                                                         const char *tenant, const char *id);
/* Remove and free s. Caller holds the lock; s has no entry and is not busy. */
void slora__registry_slot_remove(struct slora_registry *r, struct slora__registry_slot *s);
/* The usage of tenant; create: add it when absent (NULL on allocation
 * failure), else NULL when absent. Caller holds the lock. */
struct slora__registry_usage *slora__registry_usage_of(struct slora_registry *r, const char *tenant,
                                                       bool create);
/* Publish e as the current version of its slot; returns the replaced entry
 * (to unref outside the lock). Caller holds the lock; u is e's tenant.
 * carry_pin: e inherits the replaced entry's pin flag (a shared store's
 * entries come with their own). */
struct slora_registry_entry *slora__registry_publish(struct slora__registry_slot *s,
                                                     struct slora__registry_usage *u,
                                                     struct slora_registry_entry *e,
                                                     bool carry_pin);

static inline bool slora__registry_is_shared(const struct slora_registry *r)
{
    return r->store && slora_store_is_shared(r->store);
}

static inline int64_t slora__registry_entry_rev(const struct slora_registry_entry *e)
{
    return __atomic_load_n(&e->rev, __ATOMIC_RELAXED);
}

/* May revision rev replace s's entry? (0 is unordered.) Caller holds the lock. */
static inline bool slora__registry_is_newer(const struct slora__registry_slot *s, int64_t rev)
{
    return !s->entry || !rev || rev > slora__registry_entry_rev(s->entry);
}

#endif
