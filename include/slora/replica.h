/* replica.h - keeps the registry of one replica in step with a shared
 * store (Redis): the other replicas' uploads and deletes arrive through
 * the store's change stream.
 *
 * One thread follows the stream from the last entry it applied, so a
 * dropped connection or a stopped replica loses nothing: on return it reads
 * on from its cursor. Each entry names an adapter; the thread fetches that
 * adapter's current version, validates it and publishes it in the registry
 * (or drops it), then calls on_change so the delta cache frees the stale
 * version's deltas and honours the stored pin flag. Entries for versions
 * the registry already holds (this replica's own uploads) cost nothing.
 * When entries were trimmed before they were read (the stream is capped)
 * or the store lost its data, the thread rescans the whole store and
 * converges: loads what differs, drops what is gone.
 *
 * While the store is unreachable the thread retries with a backoff; the
 * registry keeps serving what it has.
 *
 * Threads: start/stop from the main thread; stats from any thread.
 */
#ifndef SLORA_REPLICA_H
#define SLORA_REPLICA_H

#include <slora/registry.h>
#include <slora/store.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct slora_replica;

/* After the registry changed for id: e is the version now published (a
 * borrowed reference), NULL when id was dropped. On the replica thread;
 * may block (delta generation for a pin). */
typedef void (*slora_replica_change_cb)(void *arg, const char *id, struct slora_registry_entry *e);

struct slora_replica_options {
    struct slora_registry *registry; /* borrowed; its store must be shared */
    size_t max_file_bytes;           /* larger stored files are skipped; 0: no limit */
    int wait_ms;                     /* longest blocking read of the stream; 0: 1000 */
    slora_replica_change_cb on_change; /* optional */
    void *arg;
};

struct slora_replica_stats {
    uint64_t events;   /* stream entries read */
    uint64_t loaded;   /* versions validated and published from the store */
    uint64_t unloaded; /* adapters dropped because the store no longer has them */
    uint64_t rescans;  /* whole-store scans (the first included) */
    uint64_t gaps;     /* of those, forced by a trimmed stream or lost data */
    uint64_t failures; /* store calls that failed (unreachable, timed out) */
    uint64_t skipped;  /* stored files that failed validation (logged) */
    int64_t rev;       /* last store revision applied */
    bool synced;       /* a scan has completed and the stream is being followed */
};

/* Scan the store once (waiting for it as long as the store's own
 * timeouts; an unreachable store is not an error: the thread keeps
 * trying), then start following. */
int slora_replica_start(const struct slora_replica_options *opt, struct slora_replica **out,
                        char *diag, size_t diag_len);
/* NULL is a no-op. Joins the thread (at most one blocking read). */
void slora_replica_stop(struct slora_replica *r);
void slora_replica_stats(struct slora_replica *r, struct slora_replica_stats *out);

#endif
