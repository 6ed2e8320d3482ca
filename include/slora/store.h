/* store.h - where adapter files are kept durably, behind one interface with
 * two kinds:
 *
 *   dir    state_dir/adapters/{tenant}/{name}.safetensors, the exact
 *          uploaded bytes (temp file, fsync, rename, directory fsync). The
 *          default: one process owns it, so conditions and quotas are the
 *          registry's (its index is the only writer); pins are not kept.
 *   redis  a Redis server shared by several replicas (store_redis.c): the
 *          bytes and metadata of every adapter, a revision counter, the
 *          per-tenant usage and a change stream. A write checks its
 *          precondition (expected current version) and the tenant's quota
 *          and appends to the stream in one Lua script, so replicas never
 *          read-then-write. Commands that get no answer within timeout_ms
 *          fail with SLORA_EUNAVAIL and the store reports itself down until
 *          a reconnect succeeds.
 *
 * Revisions (redis): every write increments one counter; the stored adapter
 * carries the revision that wrote it and each stream entry the revision it
 * announces, consecutive, so a follower that sees a jump knows entries were
 * trimmed before it read them and rescans. dir: revisions are all 0.
 *
 * Threads: every function may be called from any thread and blocks for the
 * I/O (worker threads, the replica thread, startup; never an event loop).
 * The store outlives every caller's use of it.
 */
#ifndef SLORA_STORE_H
#define SLORA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLORA_STORE_NAME_MAX 64    /* tenant or adapter name */
#define SLORA_STORE_VERSION_LEN 16 /* hex digits of a version */

struct slora_store;

enum slora_store_kind {
    SLORA_STORE_DIR,
    SLORA_STORE_REDIS,
};

struct slora_store_options {
    enum slora_store_kind kind;
    const char *dir;           /* dir: the state directory (adapters/ is made under it) */
    const char *url;           /* redis: redis://host:port[/db] */
    const char *prefix;        /* redis: prefix of every key */
    const char *password_file; /* redis: AUTH password (first line), NULL for none */
    int timeout_ms;            /* redis: connect or command deadline */
    int64_t stream_max_len;    /* redis: stream entries kept (older ones trimmed) */
};

/* One stored adapter. */
struct slora_store_item {
    char tenant[SLORA_STORE_NAME_MAX + 1];
    char name[SLORA_STORE_NAME_MAX + 1];
    char version[SLORA_STORE_VERSION_LEN + 1]; /* "" from a dir scan: hash the bytes */
    int64_t rev;                               /* revision that wrote it (dir: 0) */
    int64_t created;                           /* Unix seconds (dir: the file's mtime) */
    int64_t bytes;                             /* file size */
    bool pinned;                               /* redis: the pin flag stored with it */
};

/* A PUT (buf set) or a DELETE (buf NULL). Strings borrowed for the call. */
struct slora_store_write {
    const char *tenant;
    const char *name;
    const void *buf; /* PUT: the file */
    size_t len;
    const char *version; /* PUT: the file's version */
    int64_t created;     /* PUT: Unix seconds */
    int pin;             /* PUT: 1 pinned, 0 not, -1 keep the stored flag (new: 0) */
    /* NULL: unconditional; "": the name must be absent; else its current
     * version must be this one. Otherwise SLORA_EPRECOND with the version
     * found in the result (redis; the dir store ignores it). */
    const char *expect;
    int64_t max_adapters; /* tenant quota (redis; negative: unlimited) */
    int64_t max_bytes;
};

struct slora_store_result {
    int64_t rev;                               /* the write's revision (dir: 0) */
    bool pinned;                               /* PUT: the flag now stored */
    bool created;                              /* PUT (redis): the name was new */
    char current[SLORA_STORE_VERSION_LEN + 1]; /* SLORA_EPRECOND: version found, "" absent */
    int64_t usage;                             /* SLORA_EQUOTA: adapters; ENOSPC: bytes after */
};

/* Position in the change stream. */
struct slora_store_cursor {
    char id[48];  /* last stream entry read ("0-0" before any) */
    int64_t rev;  /* revision that entry announced (or the scan's) */
};

struct slora_store_event {
    bool deleted;
    char tenant[SLORA_STORE_NAME_MAX + 1];
    char name[SLORA_STORE_NAME_MAX + 1];
    char version[SLORA_STORE_VERSION_LEN + 1]; /* "" for a delete */
    int64_t rev;
    bool pinned; /* the pin flag stored with a put */
};

struct slora_store_stats {
    bool up;             /* last command answered (dir: always) */
    uint64_t commands;   /* sent to Redis */
    uint64_t failures;   /* failed: refused, timed out or lost connection */
    uint64_t timeouts;   /* of those, timed out */
    uint64_t reconnects; /* connections established */
};

/* Open (dir: create the directories; redis: connect, waiting up to
 * timeout_ms; a server that is down is not an error, the store starts
 * down and keeps reconnecting). */
int slora_store_open(const struct slora_store_options *opt, struct slora_store **out, char *diag,
                     size_t diag_len);
/* NULL is a no-op. */
void slora_store_free(struct slora_store *s);
/* "dir" or "redis". */
const char *slora_store_kind_name(const struct slora_store *s);
/* Other processes write it too (it has a change stream). */
bool slora_store_is_shared(const struct slora_store *s);
void slora_store_stats(struct slora_store *s, struct slora_store_stats *out);

/* Store a new version durably (redis: acknowledged under its configured
 * fsync policy). SLORA_EPRECOND (res->current), SLORA_EQUOTA /
 * SLORA_ENOSPC (res->usage), SLORA_EUNAVAIL, SLORA_EIO/ENOSPC (dir). */
int slora_store_put(struct slora_store *s, const struct slora_store_write *w,
                    struct slora_store_result *res, char *diag, size_t diag_len);
/* Remove a name; SLORA_ENOTFOUND when absent (redis), else as put. */
int slora_store_remove(struct slora_store *s, const struct slora_store_write *w,
                       struct slora_store_result *res, char *diag, size_t diag_len);
/* The stored bytes of tenant/name into a new malloc'd buffer (whatever
 * version is stored now: the caller checks it). At most max bytes. */
int slora_store_read(struct slora_store *s, const char *tenant, const char *name, size_t max,
                     void **out, size_t *len, char *diag, size_t diag_len);

/* want: should scan load this item's bytes? (NULL: all). */
typedef bool (*slora_store_want_cb)(void *arg, const struct slora_store_item *it);
/* One stored adapter: buf/len its bytes (borrowed for the call), NULL
 * when `want` declined. */
typedef void (*slora_store_scan_cb)(void *arg, const struct slora_store_item *it, const void *buf,
                                    size_t len);
struct slora_store_scan_report {
    int listed;       /* adapters found */
    int skipped;      /* unreadable or badly named (logged) */
    int removed_temp; /* dir: stray temporary files deleted */
};
/* Every stored adapter, each file at most max bytes (larger: skipped).
 * redis: one atomic snapshot of the metadata; *cur (may be NULL) receives
 * the stream position it corresponds to, to follow changes from. */
int slora_store_scan(struct slora_store *s, size_t max, slora_store_want_cb want,
                     slora_store_scan_cb cb, void *arg, struct slora_store_cursor *cur,
                     struct slora_store_scan_report *rep, char *diag, size_t diag_len);
/* Shared stores: wait up to wait_ms for stream entries after *cur; up to
 * max into ev, *n set, *cur advanced. *gap: entries after *cur were
 * trimmed (or the store lost its data): rescan. dir: SLORA_EUNSUPPORTED. */
int slora_store_changes(struct slora_store *s, struct slora_store_cursor *cur,
                        struct slora_store_event *ev, size_t max, size_t *n, bool *gap,
                        int wait_ms, char *diag, size_t diag_len);
/* Shared stores: the current item of tenant/name with its bytes (buf
 * malloc'd, at most max), or SLORA_ENOTFOUND with it->rev = the store's
 * revision when it looked. */
int slora_store_get(struct slora_store *s, const char *tenant, const char *name, size_t max,
                    struct slora_store_item *it, void **buf, size_t *len, char *diag,
                    size_t diag_len);

#endif
