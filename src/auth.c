/* auth.c - tenants, key hashes and authorization decisions (see auth.h).
 *
 * A snapshot is built single-threaded, then published and never written
 * again, so lookups need no lock. The store's mutex guards only the pointer
 * swap and the reference taken under it.
 */
#include <slora/auth.h>
#include <slora/error.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slora_auth_store {
    pthread_mutex_t lock;
    struct slora_auth *current; /* owned reference */
};

struct slora_auth *slora_auth_new(void)
{
    struct slora_auth *a = calloc(1, sizeof(*a));
    if (a)
        a->refcount = 1;
    return a;
}

struct slora_auth *slora_auth_ref(struct slora_auth *a)
{
    __atomic_add_fetch(&a->refcount, 1, __ATOMIC_RELAXED);
    return a;
}

void slora_auth_unref(struct slora_auth *a)
{
    if (!a || __atomic_sub_fetch(&a->refcount, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (int i = 0; i < a->n_tenants; i++)
        free(a->tenants[i].keys);
    free(a->tenants);
    free(a->admin_keys);
    free(a);
}

/* Is this key hash configured anywhere already? (Building only.) */
static const char *key_owner(const struct slora_auth *a, const uint8_t key[SLORA_SHA256_LEN])
{
    for (int i = 0; i < a->n_admin_keys; i++)
        if (!memcmp(a->admin_keys[i], key, SLORA_SHA256_LEN))
            return "the admin";
    for (int i = 0; i < a->n_tenants; i++)
        for (int k = 0; k < a->tenants[i].n_keys; k++)
            if (!memcmp(a->tenants[i].keys[k], key, SLORA_SHA256_LEN))
                return a->tenants[i].name;
    return NULL;
}

int slora_auth_add_tenant(struct slora_auth *a, const char *name, const char *const *key_sha256_hex,
                          int n_keys, const struct slora_quota *quota, char *diag, size_t diag_len)
{
    int rc = slora_registry_name_check(name, strlen(name), "tenant", diag, diag_len);
    if (rc < 0)
        return rc;
    if (slora_auth_find_tenant(a, name)) {
        snprintf(diag, diag_len, "tenant '%s' is listed twice", name);
        return SLORA_EINVAL;
    }
    if (n_keys <= 0) {
        snprintf(diag, diag_len, "tenant '%s' has no key_sha256", name);
        return SLORA_EINVAL;
    }
    uint8_t(*keys)[SLORA_SHA256_LEN] = calloc((size_t)n_keys, sizeof(*keys));
    if (!keys)
        return SLORA_ENOMEM;
    for (int k = 0; k < n_keys; k++) {
        if (slora_sha256_parse_hex(key_sha256_hex[k], keys[k]) < 0) {
            snprintf(diag, diag_len,
                     "tenant '%s': key_sha256[%d] is not 64 hex digits (use `slorad hash-key`)",
                     name, k);
            rc = SLORA_EINVAL;
            goto err_free_keys;
        }
        const char *owner = key_owner(a, keys[k]);
        for (int j = 0; j < k && !owner; j++)
            if (!memcmp(keys[j], keys[k], SLORA_SHA256_LEN))
                owner = name;
        if (owner) {
            snprintf(diag, diag_len, "tenant '%s': key_sha256[%d] is already a key of %s", name, k,
                     owner);
            rc = SLORA_EINVAL;
            goto err_free_keys;
        }
    }
    struct slora_tenant *grown = realloc(a->tenants, (size_t)(a->n_tenants + 1) * sizeof(*grown));
    if (!grown) {
        rc = SLORA_ENOMEM;
        goto err_free_keys;
    }
    a->tenants = grown;
    struct slora_tenant *t = &a->tenants[a->n_tenants++];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->n_keys = n_keys;
    t->keys = keys;
    t->quota = quota ? *quota : (struct slora_quota){-1, -1};
    return 0;

err_free_keys:
    free(keys);
    return rc;
}

int slora_auth_add_admin_key(struct slora_auth *a, const char *key_sha256_hex, char *diag,
                             size_t diag_len)
{
    uint8_t key[SLORA_SHA256_LEN];
    if (slora_sha256_parse_hex(key_sha256_hex, key) < 0) {
        snprintf(diag, diag_len, "admin_key_sha256 is not 64 hex digits (use `slorad hash-key`)");
        return SLORA_EINVAL;
    }
    const char *owner = key_owner(a, key);
    if (owner) {
        snprintf(diag, diag_len, "admin_key_sha256 is already a key of %s", owner);
        return SLORA_EINVAL;
    }
    uint8_t(*grown)[SLORA_SHA256_LEN] =
        realloc(a->admin_keys, (size_t)(a->n_admin_keys + 1) * sizeof(*grown));
    if (!grown)
        return SLORA_ENOMEM;
    a->admin_keys = grown;
    memcpy(a->admin_keys[a->n_admin_keys++], key, SLORA_SHA256_LEN);
    return 0;
}

bool slora_auth_is_enabled(const struct slora_auth *a)
{
    return a->n_tenants > 0 || a->n_admin_keys > 0;
}

const struct slora_tenant *slora_auth_find_tenant(const struct slora_auth *a, const char *name)
{
    for (int i = 0; i < a->n_tenants; i++)
        if (!strcmp(a->tenants[i].name, name))
            return &a->tenants[i];
    return NULL;
}

void slora_auth_quota(const struct slora_auth *a, const char *tenant, struct slora_quota *out)
{
    const struct slora_tenant *t = slora_auth_find_tenant(a, tenant);
    *out = t ? t->quota : (struct slora_quota){-1, -1};
}

int slora_auth_authenticate(const struct slora_auth *a, const char *header, size_t len,
                            struct slora_principal *out, char *diag, size_t diag_len)
{
    memset(out, 0, sizeof(*out));
    if (!slora_auth_is_enabled(a)) {
        out->role = SLORA_ROLE_ADMIN;
        return 0;
    }
    if (!header) {
        out->role = SLORA_ROLE_ANONYMOUS;
        return 0;
    }
    /* RFC 9110: the scheme is case-insensitive; one or more spaces follow it. */
    static const char scheme[] = "bearer ";
    if (len < sizeof(scheme) || strncasecmp(header, scheme, sizeof(scheme) - 1)) {
        snprintf(diag, diag_len, "expected 'Authorization: Bearer <key>'");
        return SLORA_EUNAUTH;
    }
    const char *key = header + sizeof(scheme) - 1;
    size_t key_len = len - (sizeof(scheme) - 1);
    while (key_len > 0 && *key == ' ') {
        key++;
        key_len--;
    }
    while (key_len > 0 && (key[key_len - 1] == ' ' || key[key_len - 1] == '\t'))
        key_len--;
    if (key_len == 0) {
        snprintf(diag, diag_len, "expected 'Authorization: Bearer <key>'");
        return SLORA_EUNAUTH;
    }
    uint8_t digest[SLORA_SHA256_LEN];
    slora_sha256(key, key_len, digest);
    /* Compare against every key without stopping at a match. */
    int admin = 0, tenant = -1;
    for (int i = 0; i < a->n_admin_keys; i++)
        admin |= slora_sha256_equal(digest, a->admin_keys[i]);
    for (int i = 0; i < a->n_tenants; i++)
        for (int k = 0; k < a->tenants[i].n_keys; k++)
            if (slora_sha256_equal(digest, a->tenants[i].keys[k]))
                tenant = i;
    if (admin) {
        out->role = SLORA_ROLE_ADMIN;
        return 0;
    }
    if (tenant >= 0) {
        out->role = SLORA_ROLE_TENANT;
        snprintf(out->tenant, sizeof(out->tenant), "%s", a->tenants[tenant].name);
        return 0;
    }
    snprintf(diag, diag_len, "unknown API key");
    return SLORA_EUNAUTH;
}

int slora_auth_check_tenant(const struct slora_principal *p, const char *tenant)
{
    switch (p->role) {
    case SLORA_ROLE_ADMIN:
        return 0;
    case SLORA_ROLE_TENANT:
        return strcmp(p->tenant, tenant) ? SLORA_ENOTFOUND : 0;
    case SLORA_ROLE_ANONYMOUS:
        break;
    }
    return SLORA_EUNAUTH;
}

int slora_auth_check_any(const struct slora_principal *p)
{
    return p->role == SLORA_ROLE_ANONYMOUS ? SLORA_EUNAUTH : 0;
}

int slora_auth_check_admin(const struct slora_principal *p)
{
    switch (p->role) {
    case SLORA_ROLE_ADMIN:
        return 0;
    case SLORA_ROLE_TENANT:
        return SLORA_EFORBIDDEN;
    case SLORA_ROLE_ANONYMOUS:
        break;
    }
    return SLORA_EUNAUTH;
}

const char *slora_auth_list_filter(const struct slora_principal *p)
{
    return p->role == SLORA_ROLE_ADMIN ? NULL : p->tenant;
}

struct slora_auth_store *slora_auth_store_new(struct slora_auth *initial)
{
    struct slora_auth_store *s = calloc(1, sizeof(*s));
    if (!s) {
        slora_auth_unref(initial);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->current = initial;
    return s;
}

void slora_auth_store_free(struct slora_auth_store *s)
{
    if (!s)
        return;
    slora_auth_unref(s->current);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

struct slora_auth *slora_auth_store_get(struct slora_auth_store *s)
{
    pthread_mutex_lock(&s->lock);
    struct slora_auth *a = slora_auth_ref(s->current);
    pthread_mutex_unlock(&s->lock);
    return a;
}

void slora_auth_store_replace(struct slora_auth_store *s, struct slora_auth *next)
{
    pthread_mutex_lock(&s->lock);
    struct slora_auth *old = s->current;
    s->current = next;
    pthread_mutex_unlock(&s->lock);
    slora_auth_unref(old);
}
