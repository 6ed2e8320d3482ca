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
 *
 * Revisions: a shared store orders every write; a slot's entry is only
 * replaced by a higher revision (0 is unordered: the dir store, memory
 * only), whether it comes from a local commit or from the replica.
 */
#include <slora/error.h>
#include <slora/log.h>
#include <slora/registry.h>
#include <slora/store.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAS_TRIES 8 /* store writes retried when another replica moved the name */

struct slot {
    struct slora_registry_entry
        *entry;         /* current version (owned ref), NULL while a new name uploads */
    bool busy;          /* a PUT/DELETE op owns this name */
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

struct usage {
    char tenant[SLORA_NAME_MAX + 1];
    int64_t count;          /* committed adapters */
    int64_t bytes;          /* their file bytes */
    int64_t reserved_count; /* new names in flight */
    int64_t reserved_bytes; /* byte growth of PUTs between run and commit */
};

struct slora_registry {
    pthread_mutex_t lock;
    struct slora_registry_options opt; /* opt.store is store below */
    struct slora_store *store;         /* NULL when memory only */
    bool own_store;                    /* opened from opt.state_dir */
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
    int pin;                            /* PUT: the flag a shared store keeps (-1 keep) */
    struct slora_registry_cond cond;    /* shared store: re-checked against its version */
    char *cond_strings;                 /* owned copies of cond's headers */
    char seen[SLORA_VERSION_LEN + 1];   /* version the index had at begin ("" absent) */
    int64_t rev;                        /* the store write's revision */
    bool created;                       /* shared store: the name was new there */
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
    /* names are at most SLORA_NAME_MAX: no overflow */
    size_t nt = strlen(tenant), nn = strlen(name);
    struct slora_registry_entry *e = calloc(1, sizeof(*e) + 2 * (nt + nn) + 4);
    if (!e)
        goto err_release;
    e->refcount = 1;
    char *at = e->strings;
    e->tenant = put_string(&at, tenant, nt);
    e->name = put_string(&at, name, nn);
    e->id = at;
    snprintf(at, nt + nn + 2, "%s/%s", tenant, name);
    e->store = r->store;
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
    int rc = slora_store_read(e->store, e->tenant, e->name, (size_t)e->file_bytes, &buf, &n, diag,
                              diag_len);
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

static bool is_shared(const struct slora_registry *r)
{
    return r->store && slora_store_is_shared(r->store);
}

static int64_t entry_rev(const struct slora_registry_entry *e)
{
    return __atomic_load_n(&e->rev, __ATOMIC_RELAXED);
}

/* May revision rev replace s's entry? (0 is unordered.) Caller holds the lock. */
static bool is_newer(const struct slot *s, int64_t rev)
{
    return !s->entry || !rev || rev > entry_rev(s->entry);
}

/* Publish e as the current version of its slot; returns the replaced entry
 * (to unref outside the lock). Caller holds the lock; u is e's tenant.
 * carry_pin: e inherits the replaced entry's pin flag (a shared store's
 * entries come with their own). */
static struct slora_registry_entry *publish(struct slot *s, struct usage *u,
                                            struct slora_registry_entry *e, bool carry_pin)
{
    struct slora_registry_entry *old = s->entry;
    if (old) {
        if (carry_pin)
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
    r->opt.state_dir = NULL;
    r->store = opt->store;
    if (!r->store && opt->state_dir) {
        struct slora_store_options so = {.kind = SLORA_STORE_DIR, .dir = opt->state_dir};
        int rc = slora_store_open(&so, &r->store, diag, diag_len);
        if (rc < 0) {
            slora_registry_free(r);
            return rc;
        }
        r->own_store = true;
    }
    r->opt.store = r->store;
    *out = r;
    return 0;
}

struct slora_store *slora_registry_store(struct slora_registry *r)
{
    return r->store;
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
    if (r->own_store)
        slora_store_free(r->store);
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
    if (!is_shared(r))
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
                        const struct slora_registry_cond *cond, struct slot **slot, char *diag,
                        size_t diag_len)
{
    const char *id = op->id;
    int rc = op->dry_run ? 0 : check_store_up(r, diag, diag_len);
    if (rc == 0)
        rc = op_keep_cond(op, cond);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&r->lock);
    struct slot *s = slot_find(r, id);
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
            if (op->entry && is_shared(r)) {
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
    struct slot *s = op->slot;
    if (s->claimed_rev && op->entry && is_newer(s, s->claimed_rev)) {
        __atomic_store_n(&op->entry->rev, s->claimed_rev, __ATOMIC_RELAXED);
        slora_registry_entry_set_pinned(op->entry, s->claimed_pinned);
        old = publish(s, usage_of(r, op->tenant, false), slora_registry_entry_ref(op->entry),
                      false);
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
    rc = entry_new(r, op->tenant, op->name, buf, len, a, (int64_t)time(NULL),
                   !r->store && !op->dry_run, &op->entry);
    if (rc == 0 && op->admit)
        rc = op->admit(op->admit_arg, op->entry, op->diag, sizeof(op->diag));
    if (rc < 0 || op->dry_run)
        return rc;

    /* A shared store counts the tenant's bytes itself, atomically. */
    if (!is_shared(r)) {
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
        struct usage *u = usage_of(r, op->tenant, false);
        u->reserved_count -= op->new_name;
        u->reserved_bytes -= op->reserved_bytes;
        op->slot->busy = false;
        op->slot->pending[0] = '\0';
        op->slot->claimed_rev = 0;
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
        struct slot *s = slot_find(r, op->id);
        was_new = !s || !s->entry;
        result = op->entry;
        r->stats.dry_runs++;
    } else if (op->is_delete) {
        /* The replica may have dropped it already, or loaded a newer one. */
        struct usage *u = usage_of(r, op->tenant, false);
        if (op->slot->entry && is_newer(op->slot, op->rev)) {
            dropped = op->slot->entry;
            op->slot->entry = NULL;
            u->count--;
            u->bytes -= dropped->file_bytes;
        }
        r->stats.deletes++;
    } else {
        struct usage *u = usage_of(r, op->tenant, false);
        bool shared = is_shared(r);
        /* The replica may have loaded it already: ask the store. */
        was_new = shared ? op->created : op->slot->entry == NULL;
        result = slora_registry_entry_ref(op->entry);
        /* Not over a newer version the replica loaded meanwhile. */
        dropped = is_newer(op->slot, op->rev) ? publish(op->slot, u, op->entry, !shared)
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

/* ---- restore and versions written elsewhere ---------------------------- */

/* Validate buf and publish it as it describes; see slora_registry_load. */
int slora_registry_load(struct slora_registry *r, const struct slora_store_item *it,
                        const void *buf, size_t len, bool force,
                        struct slora_registry_entry **out, char *diag, size_t diag_len)
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
        rc = entry_new(r, it->tenant, it->name, buf, len, a, it->created, !r->store, &e);
    if (rc < 0)
        return rc;
    e->rev = it->rev;
    slora_registry_entry_set_pinned(e, it->pinned);
    if (it->version[0] && strcmp(it->version, e->version))
        slora_warn("%s: the store says version %s, its bytes are version %s", id, it->version,
                   e->version);
    pthread_mutex_lock(&r->lock);
    struct usage *u = usage_of(r, it->tenant, true);
    struct slot *s = u ? slot_insert(r, it->tenant, id) : NULL;
    struct slora_registry_entry *old = e;
    bool publishable = s && (force ? !s->busy : is_newer(s, it->rev));
    if (publishable) {
        old = publish(s, u, e, !is_shared(r));
        if (out)
            *out = slora_registry_entry_ref(e);
    }
    if (s && !s->entry && !s->busy)
        slot_remove(r, s);
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
    struct slot *s = slot_find(r, id);
    if (s && s->entry && (force ? !s->busy : entry_rev(s->entry) < rev)) {
        struct usage *u = usage_of(r, s->tenant, false);
        dropped = s->entry;
        s->entry = NULL;
        u->count--;
        u->bytes -= dropped->file_bytes;
        if (!s->busy)
            slot_remove(r, s);
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
    struct slot *s = slot_find(r, id);
    if (s && s->entry && !strcmp(s->entry->version, it->version)) {
        if (it->rev >= entry_rev(s->entry)) { /* an older entry says nothing new */
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
    if (!r->store || is_shared(r))
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
