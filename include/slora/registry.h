/* registry.h - the adapter registry: `tenant/name` -> the current version of
 * an adapter, its persistence through a store (store.h: the state directory
 * or Redis) and per-tenant quotas.
 *
 * Entries are immutable and refcounted. A reader (inference, GET) takes a
 * reference with slora_registry_get and keeps using that version however
 * many times it is replaced or deleted meanwhile; the last unref frees it
 * (and its adapter). slora_registry_live counts live entry objects so tests
 * and metrics can see them return to baseline after a swap storm.
 *
 * Threading: the index is guarded by one mutex held only for lookups and
 * pointer swaps (never during validation, hashing or I/O), so every function
 * is safe from any thread and a reader pays one lock + one atomic increment.
 * A mutex rather than loop-thread ownership because the worker doing an
 * upload must reserve quota bytes and the persisted file must never get
 * ahead of the index: both need the index from the worker at one instant.
 *
 * Mutations are two-phase operations so the HTTP loop never blocks:
 *   begin  (loop)   name, preconditions, count quota; marks the name busy
 *   run    (worker) PUT: validate, sha256, bytes quota, store durably;
 *                   DELETE: remove from the store
 *   commit (loop)   publish the new entry / drop the old one; frees the op
 * While a name is busy, a second begin on it fails with SLORA_EBUSY (503,
 * "retry"): uploads/deletes of one name are serialized, so the file on disk
 * and the index never disagree. Other names proceed in parallel.
 *
 * A shared store (Redis) has other writers: its precondition and quota
 * checks are the atomic ones (the index's are an early answer), and
 * versions written elsewhere arrive through slora_registry_load/unload
 * (replica.h). Each entry carries the store revision that wrote it; the
 * index never replaces an entry by an older revision, so a local commit and
 * the change stream may deliver in either order. While a shared store is
 * down, PUT/DELETE fail with SLORA_EUNAVAIL and reads serve what is loaded.
 * The dir store keeps the exact stored bytes: the upload, or the SuperLoRA
 * file a PEFT upload became.
 */
#ifndef SLORA_REGISTRY_H
#define SLORA_REGISTRY_H

#include <slora/adapter.h>
#include <slora/error.h>
#include <slora/sha256.h>
#include <slora/store.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLORA_NAME_MAX SLORA_STORE_NAME_MAX   /* tenant or adapter name */
#define SLORA_ID_MAX (2 * SLORA_NAME_MAX + 1) /* "tenant/name" */
#define SLORA_VERSION_LEN SLORA_STORE_VERSION_LEN /* hex digits of the version */
#define SLORA_ERR_COUNT (SLORA__ERR_END - SLORA__ERR_FIRST - 1)
/* Index of an error code in per-code counter arrays. */
#define SLORA_ERR_INDEX(err) ((err)-SLORA__ERR_FIRST - 1)

struct slora_registry;

/* Per-tenant limits; a negative field is unlimited. */
struct slora_quota {
    int64_t max_adapters; /* adapters stored */
    int64_t max_bytes;    /* sum of their file bytes */
};

/* Validates an uploaded file against the base model (the server passes a
 * wrapper of slora_adapter_validate). Called on worker threads, possibly
 * several at once. On success *out is a new reference. */
typedef int (*slora_registry_validate_cb)(void *ctx, const void *buf, size_t len,
                                          struct slora_adapter **out, char *diag, size_t diag_len);
/* Drops one adapter reference (slora_adapter_unref). */
typedef void (*slora_registry_release_cb)(struct slora_adapter *a);

/* What real uploads are validated against: the ctx of
 * slora_registry_validate_adapter. */
struct slora_registry_model {
    struct slora_shape shape;           /* the loaded base model's */
    struct slora_adapter_limits limits; /* slora_adapter_limits_default or configured */
    int n_threads;                      /* for the trial delta generation */
};
/* slora_registry_validate_cb over slora_adapter_validate (parse + trial
 * delta generation); ctx is a const struct slora_registry_model. Pair it
 * with slora_adapter_unref as the release callback. */
int slora_registry_validate_adapter(void *ctx, const void *buf, size_t len,
                                    struct slora_adapter **out, char *diag, size_t diag_len);

struct slora_registry_options {
    struct slora_store *store;           /* borrowed, outlives the registry; NULL: state_dir */
    const char *state_dir;               /* without store: a dir store here; NULL: memory only */
    slora_registry_validate_cb validate; /* required */
    slora_registry_release_cb release;   /* required */
    void *ctx;                           /* passed to validate */
    size_t max_file_bytes;               /* restore skips larger files; 0: no limit */
};

/* One stored version. Immutable after publication except `pinned` and `rev`. The
 * strings live in the entry's own allocation, sized to them (tens of
 * thousands of entries stay resident). */
struct slora_registry_entry {
    int refcount;                        /* atomic */
    const char *tenant;                  /* into strings */
    const char *name;                    /* into strings */
    const char *id;                      /* "tenant/name", into strings */
    char version[SLORA_VERSION_LEN + 1]; /* first 16 hex digits of sha256(file) */
    uint8_t sha256[SLORA_SHA256_LEN];    /* of the file */
    struct slora_adapter *adapter;       /* owned reference */
    int64_t created;                     /* Unix seconds: upload (restore: file mtime) */
    int64_t file_bytes;                  /* exact uploaded size */
    int64_t dense_bytes;                 /* slora_adapter_dense_bytes */
    int64_t params;                      /* adapter->n_params */
    int pinned;                          /* atomic 0/1; the delta cache never evicts pinned */
    int64_t rev;                         /* atomic; store revision that wrote it (0: unordered) */
    struct slora_store *store;           /* where the file is, borrowed; NULL when memory only */
    void *file;                          /* (file_bytes) owned copy when memory only, else NULL */
    slora_registry_release_cb release;   /* private */
    char strings[];                      /* tenant, name, id: NUL-terminated */
};

struct slora_registry_entry *slora_registry_entry_ref(struct slora_registry_entry *e);
/* NULL is a no-op. The last unref frees the entry and releases its adapter. */
void slora_registry_entry_unref(struct slora_registry_entry *e);
bool slora_registry_entry_is_pinned(const struct slora_registry_entry *e);
/* Kept across replacements of the same name (persisted by a shared store
 * only: see slora_registry_op_set_pin). */
void slora_registry_entry_set_pinned(struct slora_registry_entry *e, bool pinned);
/* The exact stored bytes of this version into a new malloc'd buffer (caller
 * frees). Worker thread (reads the store). SLORA_EBUSY when the stored
 * file was replaced by a newer version meanwhile: get the entry again. */
int slora_registry_entry_read_file(const struct slora_registry_entry *e, void **out, size_t *len,
                                   char *diag, size_t diag_len);

/* Names: [a-z0-9][a-z0-9._-]{0,63}, checked over exactly len bytes (so an
 * embedded NUL is rejected). SLORA_EINVAL with the reason; what ("tenant",
 * "adapter") prefixes the message. */
int slora_registry_name_check(const char *s, size_t len, const char *what, char *diag,
                              size_t diag_len);
/* Split and check "tenant/name"; tenant and name receive NUL-terminated copies. */
int slora_registry_id_parse(const char *id, size_t len, char tenant[SLORA_NAME_MAX + 1],
                            char name[SLORA_NAME_MAX + 1], char *diag, size_t diag_len);
/* Does an If-Match / If-None-Match header value match version? Handles "*",
 * comma-separated lists, quoted tags and the W/ prefix. NULL header: false. */
bool slora_registry_etag_match(const char *header, const char *version);

/* Takes copies of the options; with state_dir and no store, a dir store
 * is opened (state_dir/adapters created if missing) and owned. */
int slora_registry_new(const struct slora_registry_options *opt, struct slora_registry **out,
                       char *diag, size_t diag_len);
/* NULL is a no-op. Operations must be finished; entries still referenced
 * by readers stay valid and are freed by their last unref. */
void slora_registry_free(struct slora_registry *r);

struct slora_registry_restore_report {
    int restored;     /* adapters registered */
    int skipped;      /* invalid or unreadable files, bad names (logged) */
    int removed_temp; /* stray temporary files deleted */
};
/* Scan the store, validate and register each adapter (quotas not
 * applied). Bad files are logged and skipped, stray temp files removed;
 * only an unusable store is an error. Call before serving. Memory-only
 * registry: nothing to do. A shared store's scan is done by the replica
 * (replica.h), which calls slora_registry_load instead. */
int slora_registry_restore(struct slora_registry *r, struct slora_registry_restore_report *rep,
                           char *diag, size_t diag_len);
/* The store (NULL when memory only). */
struct slora_store *slora_registry_store(struct slora_registry *r);

/* ---- versions written elsewhere (shared store; replica.h) ---------------- */

/* Does the index hold it->version of it's name (or a PUT of it about to be
 * committed)? Then records it->rev and pin flag on it, sets *pin_changed
 * (may be NULL) when the flag differed, and returns true. */
bool slora_registry_holds(struct slora_registry *r, const struct slora_store_item *it,
                          bool *pin_changed);
/* Validate buf (it's file) and publish it unless the index already has a
 * revision >= it->rev (force: whatever it has). *out (may be NULL) is a
 * new reference to the entry published, NULL when it was not. Worker or
 * replica thread. */
int slora_registry_load(struct slora_registry *r, const struct slora_store_item *it,
                        const void *buf, size_t len, bool force,
                        struct slora_registry_entry **out, char *diag, size_t diag_len);
/* Drop tenant/name unless its entry has a revision >= rev (force: unless
 * an upload or delete of it is in flight). True when dropped. */
bool slora_registry_unload(struct slora_registry *r, const char *tenant, const char *name,
                           int64_t rev, bool force);

/* Current version of tenant/name: a new reference, or SLORA_ENOTFOUND. */
int slora_registry_get(struct slora_registry *r, const char *tenant, const char *name,
                       struct slora_registry_entry **out);
/* Same by "tenant/name" (the inference `model` field): SLORA_EINVAL for a
 * malformed id, SLORA_ENOTFOUND when absent. */
int slora_registry_get_id(struct slora_registry *r, const char *id,
                          struct slora_registry_entry **out);
/* All entries sorted by id, only tenant's when tenant is non-NULL: a new
 * malloc'd array of new references; free with slora_registry_list_free. */
int slora_registry_list(struct slora_registry *r, const char *tenant,
                        struct slora_registry_entry ***out, size_t *n);
void slora_registry_list_free(struct slora_registry_entry **list, size_t n);
/* Adapters and file bytes stored for tenant (0, 0 when none). */
void slora_registry_usage(struct slora_registry *r, const char *tenant, int64_t *count,
                          int64_t *bytes);

/* Preconditions of a PUT/DELETE: raw header values, NULL when absent. */
struct slora_registry_cond {
    const char *if_match;      /* must match the current version ("*": must exist) */
    const char *if_none_match; /* must not match ("*": must not exist) */
};

struct slora_registry_op;

/* Loop side, step 1 of a PUT. Checks the names, the preconditions, that the
 * name is not busy, and the quota: count (new name beyond max_adapters:
 * SLORA_EQUOTA) and, when declared_bytes >= 0 (Content-Length), bytes
 * (SLORA_ENOSPC); messages state the quota. quota NULL: unlimited. dry_run:
 * validate only, store nothing, the name is not marked busy. */
int slora_registry_begin_put(struct slora_registry *r, const char *tenant, const char *name,
                             const struct slora_registry_cond *cond,
                             const struct slora_quota *quota, int64_t declared_bytes, bool dry_run,
                             struct slora_registry_op **out, char *diag, size_t diag_len);
/* Loop side, step 1 of a DELETE: names, existence (SLORA_ENOTFOUND),
 * preconditions, busy. */
int slora_registry_begin_delete(struct slora_registry *r, const char *tenant, const char *name,
                                const struct slora_registry_cond *cond,
                                struct slora_registry_op **out, char *diag, size_t diag_len);
/* Last check of a PUT on the worker, after validation, before anything is
 * persisted or reserved: e is the prepared (unpublished) version. A
 * negative return refuses the upload with that code and diag, and nothing
 * changes: the previous version stays stored and serving. */
typedef int (*slora_registry_admit_cb)(void *arg, const struct slora_registry_entry *e,
                                       char *diag, size_t diag_len);
/* Loop side, between begin_put and op_run: install an admit check (the
 * server's: a requested or inherited delta-cache pin must fit). */
void slora_registry_op_set_admit(struct slora_registry_op *op, slora_registry_admit_cb admit,
                                 void *arg);
/* Loop side, between begin_put and op_run: the pin flag a shared store
 * keeps with the new version (1, 0, or -1 to keep the stored one), so the
 * replica its traffic goes to pins it too. Default -1. */
void slora_registry_op_set_pin(struct slora_registry_op *op, int pin);
/* Worker side, step 2. PUT: buf/len is the uploaded file (borrowed for the
 * call); validate, hash, check the bytes quota, persist. DELETE: buf is
 * ignored; unlink the file. The result is kept in the op for commit. */
/* Worker side, instead of op_run: the PUT failed before validation (a
 * PEFT upload that could not be converted). Records err and diag for
 * commit (counted as a rejection) and returns err. */
int slora_registry_op_reject(struct slora_registry_op *op, int err, const char *diag);
int slora_registry_op_run(struct slora_registry_op *op, const void *buf, size_t len, char *diag,
                          size_t diag_len);
/* Loop side, step 3; frees op. Returns the run's result (its diag again) or
 * 0 after publishing. PUT: *out = new reference to the new entry (dry run:
 * the unpublished entry), *created = the name was new. DELETE: *out = NULL.
 * out and created may be NULL. Updates the counters. */
int slora_registry_op_commit(struct slora_registry_op *op, struct slora_registry_entry **out,
                             bool *created, char *diag, size_t diag_len);
/* Give up an op whose commit will never run (client gone, shutdown). Before
 * or after a failed run it only releases the name; after a successful run
 * of a PUT/DELETE it commits, since the file on disk has already changed
 * and the index must agree with it. NULL is a no-op. */
void slora_registry_op_abort(struct slora_registry_op *op);

/* begin_put + op_run + op_commit in the calling thread (tools, tests). */
int slora_registry_put(struct slora_registry *r, const char *tenant, const char *name,
                       const struct slora_registry_cond *cond, const struct slora_quota *quota,
                       const void *buf, size_t len, bool dry_run, struct slora_registry_entry **out,
                       bool *created, char *diag, size_t diag_len);
/* begin_delete + op_run + op_commit in the calling thread. */
int slora_registry_delete(struct slora_registry *r, const char *tenant, const char *name,
                          const struct slora_registry_cond *cond, char *diag, size_t diag_len);

struct slora_registry_stats {
    int64_t adapters; /* entries in the index */
    int64_t bytes;    /* their file bytes */
    uint64_t uploads; /* stored PUTs (new + replacements) */
    uint64_t swaps;   /* PUTs that replaced a version */
    uint64_t deletes;
    uint64_t dry_runs;                  /* successful dry runs */
    uint64_t rejected[SLORA_ERR_COUNT]; /* failed PUTs by SLORA_ERR_INDEX(code) */
};
void slora_registry_stats(struct slora_registry *r, struct slora_registry_stats *out);
/* Process-wide: entry objects alive (indexed, held by readers or retired but
 * still referenced) and the bytes they hold (adapter params as float32 plus
 * in-memory file copies). */
void slora_registry_live(int64_t *entries, int64_t *bytes);

#endif
