/* registry.c - the adapter index, its persistence and quotas (see
 * registry.h for the contract and the threading model).
 *
 * Index: an array of slots sorted by id (binary search for lookups, the
 * list comes out sorted for free). A slot exists while its name has a
 * current entry or an operation in flight (busy). Slots are allocated one
 * by one so an op can keep a pointer to its slot: a busy slot is never
 * removed by anyone but that op.
 *
 * Quota accounting per tenant: committed count/bytes plus reservations of
 * in-flight operations (a new name reserves one adapter at begin; a PUT
 * reserves its byte growth in run, just before it persists), so parallel
 * uploads of different names cannot overshoot a quota together.
 *
 * Everything under r->lock is pointer and counter work; validation,
 * hashing and I/O happen outside it.
 */
#include <slora/error.h>
#include <slora/fsio.h>
#include <slora/log.h>
#include <slora/registry.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUFFIX ".safetensors"

struct slot {
    struct slora_registry_entry
        *entry;         /* current version (owned ref), NULL while a new name uploads */
    bool busy;          /* a PUT/DELETE op owns this name */
    const char *tenant; /* into id's allocation, after it */
    char id[];          /* "tenant/name", then tenant: NUL-terminated */
};

struct usage {
    char tenant[SLORA_NAME_MAX + 1];
    int64_t count;          /* committed adapters */
    int64_t bytes;          /* their file bytes */
    int64_t reserved_count; /* new names in flight */
    int64_t reserved_bytes; /* byte growth of PUTs between run and commit */
    bool dir_durable;       /* state_dir/adapters/{tenant} is known to be synced */
};

struct slora_registry {
    pthread_mutex_t lock;
    struct slora_registry_options opt; /* opt.state_dir points at state_dir below */
    char *state_dir;                   /* owned copy, NULL when memory only */
    char *adapters_dir;                /* state_dir/adapters, owned */
    struct slot **slots;               /* (n_slots) sorted by id */
    size_t n_slots, cap_slots;
    struct usage *usage; /* (n_usage), one per tenant ever seen */
    size_t n_usage;
    struct slora_registry_stats stats; /* adapters/bytes filled on read */
};

struct slora_registry_op {
    struct slora_registry *r;
    bool is_delete;
    bool dry_run;
    char tenant[SLORA_NAME_MAX + 1];
    char name[SLORA_NAME_MAX + 1];
    char id[SLORA_ID_MAX + 1];
    struct slot *slot; /* NULL for a dry run */
    bool new_name;     /* reserved one adapter of the quota */
    struct slora_quota quota;
    int64_t reserved_bytes;             /* reserved by run */
    struct slora_registry_entry *entry; /* PUT: the prepared version */
    slora_registry_admit_cb admit;      /* PUT: optional last check before persisting */
    void *admit_arg;
    int rc;                             /* result of run; SLORA_ECANCELED before it */
    char diag[512];
};

static int64_t live_entries, live_bytes; /* atomic, process-wide */

/* ---- entries ---------------------------------------------------------- */

static int64_t entry_held_bytes(const struct slora_registry_entry *e)
{
    return e->params * 4 + (e->file ? e->file_bytes : 0);
}

struct slora_registry_entry *slora_registry_entry_ref(struct slora_registry_entry *e)
{
    __atomic_add_fetch(&e->refcount, 1, __ATOMIC_RELAXED);
    return e;
}

void slora_registry_entry_unref(struct slora_registry_entry *e)
{
    if (!e || __atomic_sub_fetch(&e->refcount, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    __atomic_sub_fetch(&live_entries, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&live_bytes, entry_held_bytes(e), __ATOMIC_RELAXED);
    e->release(e->adapter);
    free(e->file);
    free(e);
}

bool slora_registry_entry_is_pinned(const struct slora_registry_entry *e)
{
    return __atomic_load_n(&e->pinned, __ATOMIC_RELAXED) != 0;
}

void slora_registry_entry_set_pinned(struct slora_registry_entry *e, bool pinned)
{
    __atomic_store_n(&e->pinned, pinned ? 1 : 0, __ATOMIC_RELAXED);
}

void slora_registry_live(int64_t *entries, int64_t *bytes)
{
    *entries = __atomic_load_n(&live_entries, __ATOMIC_RELAXED);
    *bytes = __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
}

/* Copy s (n bytes and a NUL) to *at, advance *at, return the copy. */
static const char *put_string(char **at, const char *s, size_t n)
{
    char *copy = *at;
    memcpy(copy, s, n);
    copy[n] = '\0';
    *at += n + 1;
    return copy;
}

/* A new entry (refcount 1) owning adapter a. keep_file: copy buf into it
 * (memory-only registry). */
static int entry_new(const struct slora_registry *r, const char *tenant, const char *name,
                     const void *buf, size_t len, struct slora_adapter *a, int64_t created,
                     bool keep_file, struct slora_registry_entry **out)
{
    /* names are at most SLORA_NAME_MAX and the state dir a path: no overflow */
    size_t nt = strlen(tenant), nn = strlen(name);
    size_t np = r->adapters_dir ? strlen(r->adapters_dir) + nt + nn + sizeof(SUFFIX) + 1 : 0;
    struct slora_registry_entry *e = calloc(1, sizeof(*e) + 2 * (nt + nn) + 4 + (np ? np + 1 : 0));
    if (!e)
        goto err_release;
    e->refcount = 1;
    char *at = e->strings;
    e->tenant = put_string(&at, tenant, nt);
    e->name = put_string(&at, name, nn);
    e->id = at;
    at += snprintf(at, nt + nn + 2, "%s/%s", tenant, name) + 1;
    if (np) {
        snprintf(at, np + 1, "%s/%s/%s" SUFFIX, r->adapters_dir, tenant, name);
        e->path = at;
    }
    slora_sha256(buf, len, e->sha256);
    char hex[SLORA_SHA256_HEX_LEN + 1];
    slora_sha256_hex(e->sha256, hex);
    memcpy(e->version, hex, SLORA_VERSION_LEN);
    e->version[SLORA_VERSION_LEN] = '\0';
    e->adapter = a;
    e->created = created;
    e->file_bytes = (int64_t)len;
    e->dense_bytes = slora_adapter_dense_bytes(a);
    e->params = a->n_params;
    e->release = r->opt.release;
    if (keep_file) {
        if (!(e->file = malloc(len ? len : 1)))
            goto err_free_entry;
        memcpy(e->file, buf, len);
    }
    __atomic_add_fetch(&live_entries, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&live_bytes, entry_held_bytes(e), __ATOMIC_RELAXED);
    *out = e;
    return 0;

err_free_entry:
    free(e);
err_release:
    r->opt.release(a);
    return SLORA_ENOMEM;
}

int slora_registry_entry_read_file(const struct slora_registry_entry *e, void **out, size_t *len,
                                   char *diag, size_t diag_len)
{
    if (e->file) {
        *out = malloc(e->file_bytes ? (size_t)e->file_bytes : 1);
        if (!*out)
            return SLORA_ENOMEM;
        memcpy(*out, e->file, (size_t)e->file_bytes);
        *len = (size_t)e->file_bytes;
        return 0;
    }
    void *buf;
    size_t n;
    int rc = slora_fsio_read_file(e->path, (size_t)e->file_bytes, &buf, &n, diag, diag_len);
    if (rc == SLORA_ETOOLARGE || rc == SLORA_ENOTFOUND)
        goto replaced;
    if (rc < 0)
        return rc;
    uint8_t digest[SLORA_SHA256_LEN];
    slora_sha256(buf, n, digest);
    if (n != (size_t)e->file_bytes || !slora_sha256_equal(digest, e->sha256)) {
        free(buf);
        goto replaced;
    }
    *out = buf;
    *len = n;
    return 0;

replaced:
    snprintf(diag, diag_len, "%s version %s was replaced while being read; retry", e->id,
             e->version);
    return SLORA_EBUSY;
}

int slora_registry_validate_adapter(void *ctx, const void *buf, size_t len,
                                    struct slora_adapter **out, char *diag, size_t diag_len)
{
    const struct slora_registry_model *m = ctx;
    return slora_adapter_validate(buf, len, &m->shape, &m->limits, m->n_threads, out, diag,
                                  diag_len);
}

/* ---- names ------------------------------------------------------------ */

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int slora_registry_name_check(const char *s, size_t len, const char *what, char *diag,
                              size_t diag_len)
{
    /* The offending byte is never echoed: it may be a NUL, CR or LF. */
    if (len == 0) {
        snprintf(diag, diag_len, "%s name is empty", what);
        return SLORA_EINVAL;
    }
    if (len > SLORA_NAME_MAX) {
        snprintf(diag, diag_len, "%s name is longer than %d characters", what, SLORA_NAME_MAX);
        return SLORA_EINVAL;
    }
    if (!name_char_ok(s[0]) || s[0] == '.' || s[0] == '_' || s[0] == '-') {
        snprintf(diag, diag_len,
                 "%s name must start with a lowercase letter or a digit "
                 "(names match [a-z0-9][a-z0-9._-]{0,63})",
                 what);
        return SLORA_EINVAL;
    }
    for (size_t i = 1; i < len; i++) {
        if (!name_char_ok(s[i])) {
            snprintf(diag, diag_len,
                     "%s name has a character outside [a-z0-9._-] at offset %zu "
                     "(names match [a-z0-9][a-z0-9._-]{0,63})",
                     what, i);
            return SLORA_EINVAL;
        }
    }
    return 0;
}

int slora_registry_id_parse(const char *id, size_t len, char tenant[SLORA_NAME_MAX + 1],
                            char name[SLORA_NAME_MAX + 1], char *diag, size_t diag_len)
{
    const char *slash = memchr(id, '/', len);
    if (!slash) {
        snprintf(diag, diag_len, "adapter id must be 'tenant/name'");
        return SLORA_EINVAL;
    }
    size_t tlen = (size_t)(slash - id), nlen = len - tlen - 1;
    int rc = slora_registry_name_check(id, tlen, "tenant", diag, diag_len);
    if (rc < 0)
        return rc;
    rc = slora_registry_name_check(slash + 1, nlen, "adapter", diag, diag_len);
    if (rc < 0)
        return rc;
    memcpy(tenant, id, tlen);
    tenant[tlen] = '\0';
    memcpy(name, slash + 1, nlen);
    name[nlen] = '\0';
    return 0;
}

bool slora_registry_etag_match(const char *header, const char *version)
{
    if (!header)
        return false;
    const char *p = header;
    size_t vlen = strlen(version);
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            return false;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        bool quoted = *p == '"';
        if (quoted)
            p++;
        const char *start = p;
        while (*p && (quoted ? *p != '"' : *p != ',' && *p != ' ' && *p != '\t'))
            p++;
        if ((size_t)(p - start) == vlen && !memcmp(start, version, vlen))
            return true;
        if (quoted && *p == '"')
            p++;
    }
}

/* ---- index ------------------------------------------------------------ */

/* Position of id in the sorted slots, or where it would be inserted. */
static size_t slot_pos(const struct slora_registry *r, const char *id, bool *found)
{
    size_t lo = 0, hi = r->n_slots;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->slots[mid]->id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static struct slot *slot_find(const struct slora_registry *r, const char *id)
{
    bool found;
    size_t pos = slot_pos(r, id, &found);
    return found ? r->slots[pos] : NULL;
}

/* Caller holds the lock. NULL on allocation failure. */
static struct slot *slot_insert(struct slora_registry *r, const char *tenant, const char *id)
{
    bool found;
    size_t pos = slot_pos(r, id, &found);
    if (found)
        return r->slots[pos];
    if (r->n_slots == r->cap_slots) {
        size_t cap = r->cap_slots ? 2 * r->cap_slots : 64;
        struct slot **grown = realloc(r->slots, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        r->slots = grown;
        r->cap_slots = cap;
    }
    size_t ni = strlen(id), nt = strlen(tenant);
    struct slot *s = calloc(1, sizeof(*s) + ni + nt + 2);
    if (!s)
        return NULL;
    char *at = s->id;
    put_string(&at, id, ni);
    s->tenant = put_string(&at, tenant, nt);
    memmove(&r->slots[pos + 1], &r->slots[pos], (r->n_slots - pos) * sizeof(*r->slots));
    r->slots[pos] = s;
    r->n_slots++;
    return s;
}

/* Caller holds the lock; s has no entry and is not busy. */
static void slot_remove(struct slora_registry *r, struct slot *s)
{
    bool found;
    size_t pos = slot_pos(r, s->id, &found);
    memmove(&r->slots[pos], &r->slots[pos + 1], (r->n_slots - pos - 1) * sizeof(*r->slots));
    r->n_slots--;
    free(s);
}

/* Caller holds the lock. NULL on allocation failure. */
static struct usage *usage_of(struct slora_registry *r, const char *tenant, bool create)
{
    for (size_t i = 0; i < r->n_usage; i++)
        if (!strcmp(r->usage[i].tenant, tenant))
            return &r->usage[i];
    if (!create)
        return NULL;
    struct usage *grown = realloc(r->usage, (r->n_usage + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    r->usage = grown;
    struct usage *u = &r->usage[r->n_usage++];
    memset(u, 0, sizeof(*u));
    snprintf(u->tenant, sizeof(u->tenant), "%s", tenant);
    return u;
}

/* Publish e as the current version of its slot; returns the replaced entry
 * (to unref outside the lock). Caller holds the lock; u is e's tenant. */
static struct slora_registry_entry *publish(struct slot *s, struct usage *u,
                                            struct slora_registry_entry *e)
{
    struct slora_registry_entry *old = s->entry;
    if (old) {
        slora_registry_entry_set_pinned(e, slora_registry_entry_is_pinned(old));
        u->bytes -= old->file_bytes;
    } else {
        u->count++;
    }
    u->bytes += e->file_bytes;
    s->entry = e;
    return old;
}

/* ---- lifecycle -------------------------------------------------------- */

int slora_registry_new(const struct slora_registry_options *opt, struct slora_registry **out,
                       char *diag, size_t diag_len)
{
    if (!opt->validate || !opt->release) {
        snprintf(diag, diag_len, "registry needs validate and release callbacks");
        return SLORA_EINVAL;
    }
    struct slora_registry *r = calloc(1, sizeof(*r));
    if (!r)
        return SLORA_ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    r->opt = *opt;
    int rc = SLORA_ENOMEM;
    if (opt->state_dir) {
        size_t n = strlen(opt->state_dir) + sizeof("/adapters");
        r->state_dir = strdup(opt->state_dir);
        r->adapters_dir = malloc(n);
        if (!r->state_dir || !r->adapters_dir)
            goto err_free_registry;
        snprintf(r->adapters_dir, n, "%s/adapters", opt->state_dir);
        r->opt.state_dir = r->state_dir;
        rc = slora_fsio_mkdir(r->state_dir, diag, diag_len);
        if (rc == 0)
            rc = slora_fsio_mkdir(r->adapters_dir, diag, diag_len);
        if (rc == 0)
            rc = slora_fsio_fsync_dir(r->state_dir, diag, diag_len);
        if (rc < 0)
            goto err_free_registry;
    }
    *out = r;
    return 0;

err_free_registry:
    slora_registry_free(r);
    return rc;
}

void slora_registry_free(struct slora_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_slots; i++) {
        slora_registry_entry_unref(r->slots[i]->entry);
        free(r->slots[i]);
    }
    free(r->slots);
    free(r->usage);
    free(r->adapters_dir);
    free(r->state_dir);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- reads ------------------------------------------------------------ */

int slora_registry_get(struct slora_registry *r, const char *tenant, const char *name,
                       struct slora_registry_entry **out)
{
    char id[SLORA_ID_MAX + 2];
    if (snprintf(id, sizeof(id), "%s/%s", tenant, name) > SLORA_ID_MAX)
        return SLORA_ENOTFOUND;
    pthread_mutex_lock(&r->lock);
    struct slot *s = slot_find(r, id);
    struct slora_registry_entry *e = s && s->entry ? slora_registry_entry_ref(s->entry) : NULL;
    pthread_mutex_unlock(&r->lock);
    *out = e;
    return e ? 0 : SLORA_ENOTFOUND;
}

int slora_registry_get_id(struct slora_registry *r, const char *id,
                          struct slora_registry_entry **out)
{
    char tenant[SLORA_NAME_MAX + 1], name[SLORA_NAME_MAX + 1], diag[160];
    *out = NULL;
    int rc = slora_registry_id_parse(id, strlen(id), tenant, name, diag, sizeof(diag));
    if (rc < 0)
        return rc;
    return slora_registry_get(r, tenant, name, out);
}

int slora_registry_list(struct slora_registry *r, const char *tenant,
                        struct slora_registry_entry ***out, size_t *n)
{
    pthread_mutex_lock(&r->lock);
    struct slora_registry_entry **list = malloc((r->n_slots ? r->n_slots : 1) * sizeof(*list));
    if (!list) {
        pthread_mutex_unlock(&r->lock);
        return SLORA_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < r->n_slots; i++) {
        struct slot *s = r->slots[i];
        if (s->entry && (!tenant || !strcmp(s->tenant, tenant)))
            list[k++] = slora_registry_entry_ref(s->entry);
    }
    pthread_mutex_unlock(&r->lock);
    *out = list;
    *n = k;
    return 0;
}

void slora_registry_list_free(struct slora_registry_entry **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        slora_registry_entry_unref(list[i]);
    free(list);
}

void slora_registry_usage(struct slora_registry *r, const char *tenant, int64_t *count,
                          int64_t *bytes)
{
    pthread_mutex_lock(&r->lock);
    const struct usage *u = usage_of(r, tenant, false);
    *count = u ? u->count : 0;
    *bytes = u ? u->bytes : 0;
    pthread_mutex_unlock(&r->lock);
}

void slora_registry_stats(struct slora_registry *r, struct slora_registry_stats *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->stats;
    out->adapters = 0;
    out->bytes = 0;
    for (size_t i = 0; i < r->n_usage; i++) {
        out->adapters += r->usage[i].count;
        out->bytes += r->usage[i].bytes;
    }
    pthread_mutex_unlock(&r->lock);
}

static void count_reject(struct slora_registry *r, int rc)
{
    if (rc <= SLORA__ERR_FIRST || rc >= SLORA__ERR_END)
        rc = SLORA_EINTERNAL;
    pthread_mutex_lock(&r->lock);
    r->stats.rejected[SLORA_ERR_INDEX(rc)]++;
    pthread_mutex_unlock(&r->lock);
}

/* ---- mutations -------------------------------------------------------- */

/* Preconditions against the current entry (NULL when absent). */
static int check_cond(const struct slora_registry_cond *cond, const char *id,
                      const struct slora_registry_entry *cur, char *diag, size_t diag_len)
{
    if (!cond)
        return 0;
    if (cond->if_match && (!cur || !slora_registry_etag_match(cond->if_match, cur->version))) {
        if (cur)
            snprintf(diag, diag_len, "If-Match: %s is at version \"%s\"", id, cur->version);
        else
            snprintf(diag, diag_len, "If-Match: %s does not exist", id);
        return SLORA_EPRECOND;
    }
    if (cond->if_none_match && cur &&
        slora_registry_etag_match(cond->if_none_match, cur->version)) {
        snprintf(diag, diag_len, "If-None-Match: %s exists at version \"%s\"", id, cur->version);
        return SLORA_EPRECOND;
    }
    return 0;
}

static bool over(int64_t limit, int64_t value)
{
    return limit >= 0 && value > limit;
}

/* Common begin: names, lock, busy and preconditions. On success returns
 * with the lock held and *slot = the name's slot (may be NULL). */
static int begin_locked(struct slora_registry *r, struct slora_registry_op *op,
                        const struct slora_registry_cond *cond, struct slot **slot, char *diag,
                        size_t diag_len)
{
    const char *id = op->id;
    pthread_mutex_lock(&r->lock);
    struct slot *s = slot_find(r, id);
    if (s && s->busy && !op->dry_run) {
        pthread_mutex_unlock(&r->lock);
        snprintf(diag, diag_len, "another upload or delete of %s is in progress; retry", id);
        return SLORA_EBUSY;
    }
    int rc = check_cond(cond, id, s ? s->entry : NULL, diag, diag_len);
    if (rc < 0) {
        pthread_mutex_unlock(&r->lock);
        return rc;
    }
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
    struct slot *s;
    rc = begin_locked(r, op, cond, &s, diag, diag_len);
    if (rc < 0)
        goto err_free_op;
    struct slora_registry_entry *cur = s ? s->entry : NULL;
    /* A dry run records nothing, not even the tenant. */
    struct usage none = {.count = 0}, *u = usage_of(r, op->tenant, !dry_run);
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
        if (!s && !(s = slot_insert(r, op->tenant, op->id))) {
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
    free(op);
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
    struct slot *s;
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
    free(op);
    return rc;
}

/* Create the tenant directory durably: its entry in adapters/ is synced
 * once per process (also when it already existed, as a crash may have left
 * it unsynced). */
static int ensure_tenant_dir(struct slora_registry *r, const char *tenant, char *diag,
                             size_t diag_len)
{
    pthread_mutex_lock(&r->lock);
    bool durable = usage_of(r, tenant, false)->dir_durable;
    pthread_mutex_unlock(&r->lock);
    if (durable)
        return 0;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", r->adapters_dir, tenant);
    int rc = access(dir, F_OK) == 0 ? 0 : slora_fsio_mkdir(dir, diag, diag_len);
    if (rc == 0)
        rc = slora_fsio_fsync_dir(r->adapters_dir, diag, diag_len);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&r->lock);
    usage_of(r, tenant, false)->dir_durable = true;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static int run_put(struct slora_registry_op *op, const void *buf, size_t len)
{
    struct slora_registry *r = op->r;
    struct slora_adapter *a = NULL;
    int rc = r->opt.validate(r->opt.ctx, buf, len, &a, op->diag, sizeof(op->diag));
    if (rc < 0)
        return rc;
    rc = entry_new(r, op->tenant, op->name, buf, len, a, (int64_t)time(NULL),
                   !r->adapters_dir && !op->dry_run, &op->entry);
    if (rc == 0 && op->admit)
        rc = op->admit(op->admit_arg, op->entry, op->diag, sizeof(op->diag));
    if (rc < 0 || op->dry_run)
        return rc;

    pthread_mutex_lock(&r->lock);
    struct usage *u = usage_of(r, op->tenant, false);
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

    if (!r->adapters_dir)
        return 0;
    rc = ensure_tenant_dir(r, op->tenant, op->diag, sizeof(op->diag));
    if (rc == 0)
        rc = slora_fsio_write_file(op->entry->path, buf, len, op->diag, sizeof(op->diag));
    return rc;
}

static int run_delete(struct slora_registry_op *op)
{
    const char *path = op->slot->entry->path;
    if (!path)
        return 0;
    int rc = slora_fsio_remove_file(path, op->diag, sizeof(op->diag));
    if (rc == SLORA_ENOTFOUND) {
        slora_warn("delete %s: %s was already gone", op->id, path);
        return 0;
    }
    return rc;
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
        struct usage *u = usage_of(r, op->tenant, false);
        u->reserved_count -= op->new_name;
        u->reserved_bytes -= op->reserved_bytes;
        op->slot->busy = false;
        if (!op->slot->entry)
            slot_remove(r, op->slot);
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
    free(op);
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
        struct slot *s = slot_find(r, op->id);
        was_new = !s || !s->entry;
        result = op->entry;
        r->stats.dry_runs++;
    } else if (op->is_delete) {
        struct usage *u = usage_of(r, op->tenant, false);
        dropped = op->slot->entry;
        op->slot->entry = NULL;
        u->count--;
        u->bytes -= dropped->file_bytes;
        r->stats.deletes++;
    } else {
        struct usage *u = usage_of(r, op->tenant, false);
        was_new = op->slot->entry == NULL;
        result = slora_registry_entry_ref(op->entry);
        dropped = publish(op->slot, u, op->entry);
        r->stats.uploads++;
        r->stats.swaps += !was_new;
    }
    op_release_locked(op);
    pthread_mutex_unlock(&r->lock);

    slora_registry_entry_unref(dropped);
    free(op);
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

/* ---- restore ---------------------------------------------------------- */

static bool is_leftover(const char *fname)
{
    return fname[0] == '.' && (strstr(fname, ".tmp.") || strstr(fname, ".bak"));
}

/* Validate and register one stored file; false when skipped (logged). */
static bool restore_one(struct slora_registry *r, const char *tenant, const char *fname,
                        const char *path)
{
    char diag[512] = "";
    size_t flen = strlen(fname), slen = sizeof(SUFFIX) - 1;
    if (flen <= slen || strcmp(fname + flen - slen, SUFFIX) ||
        slora_registry_name_check(fname, flen - slen, "adapter", diag, sizeof(diag)) < 0) {
        slora_warn("restore: skipping %s: not {name}" SUFFIX " %s", path, diag);
        return false;
    }
    char name[SLORA_NAME_MAX + 1], id[SLORA_ID_MAX + 1];
    memcpy(name, fname, flen - slen);
    name[flen - slen] = '\0';
    snprintf(id, sizeof(id), "%s/%s", tenant, name);
    struct stat st;
    void *buf;
    size_t len;
    size_t max = r->opt.max_file_bytes ? r->opt.max_file_bytes : SIZE_MAX;
    int rc = stat(path, &st) < 0 ? slora_fsio_err(errno)
                                 : slora_fsio_read_file(path, max, &buf, &len, diag, sizeof(diag));
    if (rc < 0) {
        slora_warn("restore: skipping %s: %s", path, diag[0] ? diag : strerror(errno));
        return false;
    }
    struct slora_adapter *a = NULL;
    rc = r->opt.validate(r->opt.ctx, buf, len, &a, diag, sizeof(diag));
    struct slora_registry_entry *e = NULL;
    if (rc == 0)
        rc = entry_new(r, tenant, name, buf, len, a, (int64_t)st.st_mtime, !r->adapters_dir, &e);
    free(buf);
    if (rc < 0) {
        slora_warn("restore: skipping %s: %s: %s", path, slora_err_name(rc), diag);
        return false;
    }
    pthread_mutex_lock(&r->lock);
    struct usage *u = usage_of(r, tenant, true);
    struct slot *s = u ? slot_insert(r, tenant, id) : NULL;
    struct slora_registry_entry *old = s ? publish(s, u, e) : e;
    pthread_mutex_unlock(&r->lock);
    slora_registry_entry_unref(old);
    if (!s)
        slora_warn("restore: skipping %s: out of memory", path);
    return s != NULL;
}

static void restore_tenant(struct slora_registry *r, const char *tenant,
                           struct slora_registry_restore_report *rep)
{
    char dir[4096], path[4096 + 256];
    snprintf(dir, sizeof(dir), "%s/%s", r->adapters_dir, tenant);
    DIR *d = opendir(dir);
    if (!d) {
        slora_warn("restore: skipping %s: %s", dir, strerror(errno));
        rep->skipped++;
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (is_leftover(de->d_name)) {
            if (unlink(path) == 0) {
                slora_info("restore: removed leftover %s", path);
                rep->removed_temp++;
            } else {
                slora_warn("restore: cannot remove leftover %s: %s", path, strerror(errno));
            }
            continue;
        }
        if (restore_one(r, tenant, de->d_name, path))
            rep->restored++;
        else
            rep->skipped++;
    }
    closedir(d);
}

int slora_registry_restore(struct slora_registry *r, struct slora_registry_restore_report *rep,
                           char *diag, size_t diag_len)
{
    memset(rep, 0, sizeof(*rep));
    if (!r->adapters_dir)
        return 0;
    DIR *d = opendir(r->adapters_dir);
    if (!d) {
        snprintf(diag, diag_len, "cannot open %s: %s", r->adapters_dir, strerror(errno));
        return slora_fsio_err(errno);
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char why[160];
        if (slora_registry_name_check(de->d_name, strlen(de->d_name), "tenant", why, sizeof(why)) <
            0) {
            slora_warn("restore: skipping %s/%s: %s", r->adapters_dir, de->d_name, why);
            rep->skipped++;
            continue;
        }
        restore_tenant(r, de->d_name, rep);
    }
    closedir(d);
    slora_info("restore: %d adapters restored, %d skipped, %d leftovers removed", rep->restored,
               rep->skipped, rep->removed_temp);
    return 0;
}
