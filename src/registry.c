/* registry.c - the adapter index: refcounted entries, names and ids, the
 * sorted slot array with per-tenant usage, the registry's lifecycle and its
 * reads (see registry.h for the contract and the threading model).
 * Mutations are in registry_op.c, restore and the replica's loads in
 * registry_sync.c; what they share is registry_internal.h.
 *
 * Index: an array of slots sorted by id (binary search for lookups, the
 * list comes out sorted for free). Quota accounting per tenant: committed
 * count/bytes here, plus the reservations of in-flight operations
 * (registry_op.c).
 *
 * Threads: any. Everything under r->lock is pointer and counter work;
 * hashing (slora__registry_entry_new) and store reads happen outside it.
 * Entry refcounts and the process-wide live counters are atomics.
 */
#include "registry_internal.h"

#include <slora/error.h>
#include <slora/registry.h>
#include <slora/store.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int slora__registry_entry_new(const struct slora_registry *r, const char *tenant, const char *name,
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

struct slora__registry_slot *slora__registry_slot_find(const struct slora_registry *r,
                                                       const char *id)
{
    bool found;
    size_t pos = slot_pos(r, id, &found);
    return found ? r->slots[pos] : NULL;
}

/* Caller holds the lock. NULL on allocation failure. */
struct slora__registry_slot *slora__registry_slot_insert(struct slora_registry *r,
                                                         const char *tenant, const char *id)
{
    bool found;
    size_t pos = slot_pos(r, id, &found);
    if (found)
        return r->slots[pos];
    if (r->n_slots == r->cap_slots) {
        size_t cap = r->cap_slots ? 2 * r->cap_slots : 64;
        struct slora__registry_slot **grown = realloc(r->slots, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        r->slots = grown;
        r->cap_slots = cap;
    }
    size_t ni = strlen(id), nt = strlen(tenant);
    struct slora__registry_slot *s = calloc(1, sizeof(*s) + ni + nt + 2);
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
void slora__registry_slot_remove(struct slora_registry *r, struct slora__registry_slot *s)
{
    bool found;
    size_t pos = slot_pos(r, s->id, &found);
    memmove(&r->slots[pos], &r->slots[pos + 1], (r->n_slots - pos - 1) * sizeof(*r->slots));
    r->n_slots--;
    free(s);
}

/* Caller holds the lock. NULL on allocation failure. */
struct slora__registry_usage *slora__registry_usage_of(struct slora_registry *r, const char *tenant,
                                                       bool create)
{
    for (size_t i = 0; i < r->n_usage; i++)
        if (!strcmp(r->usage[i].tenant, tenant))
            return &r->usage[i];
    if (!create)
        return NULL;
    struct slora__registry_usage *grown = realloc(r->usage, (r->n_usage + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    r->usage = grown;
    struct slora__registry_usage *u = &r->usage[r->n_usage++];
    memset(u, 0, sizeof(*u));
    snprintf(u->tenant, sizeof(u->tenant), "%s", tenant);
    return u;
}

struct slora_registry_entry *slora__registry_publish(struct slora__registry_slot *s,
                                                     struct slora__registry_usage *u,
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
    struct slora__registry_slot *s = slora__registry_slot_find(r, id);
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
        struct slora__registry_slot *s = r->slots[i];
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
    const struct slora__registry_usage *u = slora__registry_usage_of(r, tenant, false);
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
