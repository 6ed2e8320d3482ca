/* cache.h - the delta cache: (adapter id, version) -> a ready weight set.
 *
 * On a miss a cache worker thread expands the adapter (slora_superlora_
 * generate) into its deltas dW, one per matrix the adapter touches; the
 * entry's weight set points at them, and the forward pass adds dW x to the
 * base product (the base weights are never copied or merged). Its id is
 * unique per entry, so the forward pass batches rows by (adapter, version)
 * and never mixes two versions' deltas.
 *
 * Budget (bytes of dW held, counted from the moment a generation starts):
 * soft. An entry in use (acquired and not yet released) is never evicted, so
 * the budget may be exceeded while it runs; otherwise unused, unpinned
 * entries go least recently used first. An entry larger than the whole
 * budget is still generated for the requests waiting on it and dropped when
 * its last user releases it. Pinned entries stay resident and their bytes
 * count against the budget, and a tenant's (ids "tenant/name") against
 * tenant_pin_bytes too; a pin that cannot fit fails with SLORA_ENOSPC and
 * changes nothing. A pin reservation counts like the pin it promises
 * (beyond the bytes its id already pins), from slora_cache_pin_reserve until
 * slora_cache_pin_commit or slora_cache_pin_unreserve: an upload checks its
 * pin before it is stored and pins after, and nothing pinned in between can
 * take the bytes it was promised. Entries of a version no longer registered (see
 * slora_cache_retire) are freed when their last user releases them.
 *
 * Single flight: concurrent misses on one key share one generation.
 *
 * Threads: every function may be called from any thread (one internal
 * mutex). slora_cache_acquire never blocks on a generation; its callback
 * runs either inside the call (hit) or later on a cache worker thread
 * (miss), without the cache lock held. slora_cache_acquire_wait,
 * slora_cache_warm, slora_cache_pin and slora_cache_retire block until the
 * generation they need is done: call them from worker threads, never from
 * an event loop. Generation runs on `gen_threads` cache threads, each
 * calling slora_superlora_generate with one thread.
 *
 * Ownership: the base model must outlive the cache. The adapter passed to
 * an acquire is borrowed: the caller keeps its reference until the
 * callback has run (the blocking calls return after it). A handle is
 * owned by whoever acquired it until slora_cache_release.
 */
#ifndef SLORA_CACHE_H
#define SLORA_CACHE_H

#include <slora/adapter.h>
#include <slora/delta.h>
#include <slora/model.h>
#include <slora/weights.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLORA_CACHE_DEFAULT_BYTES ((size_t)512 << 20)
#define SLORA_CACHE_VERSION_MAX 64 /* bytes of a version string, NUL included */
#define SLORA_CACHE_GEN_BUCKETS 10 /* generation-seconds histogram (last = +Inf) */

/* Delta generator (tests inject one to control timing); the default is
 * slora_superlora_generate. Writes adapter->total floats to out. */
typedef slora_delta_gen_fn slora_cache_gen_fn;

/* Is `version` still the registered version of id? (The registry answers;
 * called with the cache lock held, so it must not call into the cache.) */
typedef bool (*slora_cache_current_fn)(void *arg, const char *id, const char *version);

struct slora_cache_config {
    size_t budget_bytes;    /* 0: nothing stays resident once unused (config NULL: the default) */
    size_t tenant_pin_bytes; /* pinned bytes per tenant (the id up to '/'); 0: only the budget */
    int gen_threads;        /* cache worker threads; 0 = 1 */
    slora_cache_gen_fn gen; /* NULL = slora_superlora_generate */
    enum slora_dtype delta_type; /* dense deltas' type: F32 (0, the default), F16 or BF16 */
    bool dense_only;             /* never the factored form (delta.h) */
    /* Optional: each acquire then retires entries whose version is no
     * longer current, and each last release checks its entry, so versions
     * replaced or deleted behind the cache's back are freed once unused
     * even when nobody calls slora_cache_retire. */
    slora_cache_current_fn is_current;
    void *is_current_arg;
};

struct slora_cache;
struct slora_cache_handle;
struct slora_cache_reservation;

/* Called once per acquire: h is a new handle (err == 0) or NULL with err
 * and diag (the generator's message) set. */
typedef void (*slora_cache_ready_cb)(void *arg, struct slora_cache_handle *h, int err,
                                     const char *diag);

/* NULL on ENOMEM or when a worker thread cannot start. */
struct slora_cache *slora_cache_new(const struct slora_model *m,
                                    const struct slora_cache_config *cfg);
/* Waits for running generations; every handle must have been released. */
void slora_cache_free(struct slora_cache *c);

/* Get the entry for (id, version), generating it from `a` on a miss.
 * Returns 0 when cb has been or will be called, or SLORA_EINVAL (version
 * too long) / SLORA_ENOMEM without calling cb. */
int slora_cache_acquire(struct slora_cache *c, const char *id, const char *version,
                        const struct slora_adapter *a, slora_cache_ready_cb cb, void *arg);
/* Blocking form: *out is a new handle; on error diag says why. */
int slora_cache_acquire_wait(struct slora_cache *c, const char *id, const char *version,
                             const struct slora_adapter *a, struct slora_cache_handle **out,
                             char *diag, size_t diag_len);
/* The handle's weight set; valid until release. */
const struct slora_weights *slora_cache_handle_weights(const struct slora_cache_handle *h);
/* Give the handle back; NULL is a no-op. */
void slora_cache_release(struct slora_cache *c, struct slora_cache_handle *h);

/* Generate ahead (blocking) and leave the entry resident but unpinned. */
int slora_cache_warm(struct slora_cache *c, const char *id, const char *version,
                     const struct slora_adapter *a, char *diag, size_t diag_len);
/* Keep id's entry for `version` resident (blocking; generates it). Fails
 * with SLORA_ENOSPC, changing nothing, when pinned bytes would exceed the
 * budget or the tenant's share. The pin belongs to the id: it carries over
 * to a replacing version, at once with slora_cache_retire, else when that
 * version is first generated (if it fits; otherwise a warning is logged). */
int slora_cache_pin(struct slora_cache *c, const char *id, const char *version,
                    const struct slora_adapter *a, char *diag, size_t diag_len);
/* Would a pin of id on an entry for `a` fit, replacing id's currently
 * pinned bytes? 0, or SLORA_ENOSPC with the bytes and the budget in diag:
 * lets a caller refuse a replacing upload before storing it. */
int slora_cache_pin_check(struct slora_cache *c, const char *id, const struct slora_adapter *a,
                          char *diag, size_t diag_len);
/* pin_check that also holds the bytes: *out is a reservation owned by the
 * caller, who must give it to exactly one of slora_cache_pin_commit or
 * slora_cache_pin_unreserve. SLORA_ENOSPC (diag as for pin_check) or
 * SLORA_ENOMEM, and nothing held, otherwise. */
int slora_cache_pin_reserve(struct slora_cache *c, const char *id, const struct slora_adapter *a,
                            struct slora_cache_reservation **out, char *diag, size_t diag_len);
/* slora_cache_pin of the reservation's id, which it consumes whatever the
 * outcome; with `a` the adapter it was reserved for only the generation can
 * fail. */
int slora_cache_pin_commit(struct slora_cache *c, struct slora_cache_reservation *r,
                           const char *version, const struct slora_adapter *a, char *diag,
                           size_t diag_len);
/* Give the bytes back; NULL is a no-op. */
void slora_cache_pin_unreserve(struct slora_cache *c, struct slora_cache_reservation *r);
bool slora_cache_is_pinned(struct slora_cache *c, const char *id);
void slora_cache_unpin(struct slora_cache *c, const char *id);
/* id's registered version is now `version` (a, NULL for a delete): every
 * other version of id is freed once unused and never served again. When id
 * is pinned and a is given, the pin moves to the new version (blocking
 * generation); if it no longer fits the pin is dropped with a warning. */
int slora_cache_retire(struct slora_cache *c, const char *id, const char *version,
                       const struct slora_adapter *a);

/* Bytes an entry for this adapter holds (slora_delta_bytes under the
 * cache's delta options). */
size_t slora_cache_entry_bytes(const struct slora_cache *c, const struct slora_adapter *a);

struct slora_cache_stats {
    uint64_t hits;      /* acquires served by a resident or in-flight entry */
    uint64_t misses;    /* acquires that started a generation */
    uint64_t evictions; /* entries dropped for the budget (not retirements) */
    uint64_t gen_failures;
    uint64_t gen_count; /* == sum of gen_buckets */
    double gen_seconds_sum;
    uint64_t gen_buckets[SLORA_CACHE_GEN_BUCKETS]; /* non-cumulative counts */
    size_t bytes;        /* resident + being generated */
    size_t entries;
    size_t pinned_bytes;
    size_t in_use;       /* entries with at least one handle */
    size_t budget_bytes;
};
/* Upper bounds (seconds) of gen_buckets; the last is +Inf. */
extern const double slora_cache_gen_bounds[SLORA_CACHE_GEN_BUCKETS];
void slora_cache_stats(struct slora_cache *c, struct slora_cache_stats *out);

#endif
