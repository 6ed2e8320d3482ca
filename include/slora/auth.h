/* auth.h - tenants, API keys and authorization decisions.
 *
 * A struct slora_auth is one immutable snapshot of the configuration: the
 * tenants (name, sha256 of each accepted key, quota) and the admin key
 * hashes. The config loader builds it with _new/_add_*, then publishes it;
 * from then on it is never modified and any thread may read it. Auth is on
 * when the snapshot has any tenant or admin key. Plaintext keys are never
 * stored: a presented key is hashed and compared in constant time against
 * every stored hash (no early exit, so timing says nothing about which or
 * how many keys exist).
 *
 * A struct slora_auth_store holds the current snapshot for SIGHUP reloads:
 * _replace swaps it atomically; requests keep the snapshot they got (a
 * reference) until they finish.
 *
 * Decisions: with auth off every caller is treated as admin (local
 * development). With auth on: no key -> SLORA_ROLE_ANONYMOUS, which may
 * reach only key-less endpoints (else SLORA_EUNAUTH); a malformed or
 * unknown key -> SLORA_EUNAUTH; a tenant may read, write and use only the
 * adapters `{its name}/...` and gets SLORA_ENOTFOUND for any other namespace, so
 * existence never leaks; the admin may do everything.
 */
#ifndef SLORA_AUTH_H
#define SLORA_AUTH_H

#include <slora/registry.h>
#include <slora/sha256.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct slora_tenant {
    char name[SLORA_NAME_MAX + 1];
    int n_keys;
    uint8_t (*keys)[SLORA_SHA256_LEN]; /* (n_keys, 32): sha256 of each accepted key */
    struct slora_quota quota;
};

struct slora_auth {
    int refcount; /* atomic */
    int n_tenants;
    struct slora_tenant *tenants; /* (n_tenants) in insertion order */
    int n_admin_keys;
    uint8_t (*admin_keys)[SLORA_SHA256_LEN]; /* (n_admin_keys, 32) */
};

enum slora_role {
    SLORA_ROLE_ANONYMOUS, /* auth on, no Authorization header */
    SLORA_ROLE_TENANT,
    SLORA_ROLE_ADMIN, /* the admin key, or anyone when auth is off */
};

/* Who is calling; plain value, no references. */
struct slora_principal {
    enum slora_role role;
    char tenant[SLORA_NAME_MAX + 1]; /* the tenant's name for SLORA_ROLE_TENANT, else "" */
};

/* Empty snapshot (auth off); NULL on allocation failure. Refcount 1. */
struct slora_auth *slora_auth_new(void);
struct slora_auth *slora_auth_ref(struct slora_auth *a);
/* NULL is a no-op. */
void slora_auth_unref(struct slora_auth *a);

/* Building (before publication only). keys are sha256 hex strings (64 hex
 * digits). SLORA_EINVAL naming the problem: bad tenant name, duplicate
 * tenant, no key, malformed hex, a key already used by another tenant or
 * the admin. quota NULL: unlimited. */
int slora_auth_add_tenant(struct slora_auth *a, const char *name, const char *const *key_sha256_hex,
                          int n_keys, const struct slora_quota *quota, char *diag, size_t diag_len);
/* May be called several times (key rotation). */
int slora_auth_add_admin_key(struct slora_auth *a, const char *key_sha256_hex, char *diag,
                             size_t diag_len);

bool slora_auth_is_enabled(const struct slora_auth *a);
/* Borrowed while the caller holds a; NULL when not configured. */
const struct slora_tenant *slora_auth_find_tenant(const struct slora_auth *a, const char *name);
/* The tenant's quota; unlimited for a namespace with no configured tenant. */
void slora_auth_quota(const struct slora_auth *a, const char *tenant, struct slora_quota *out);

/* Authorization header value (NULL or not NUL-terminated: use len; NULL =
 * absent) -> principal. 0, or SLORA_EUNAUTH with the reason in diag
 * ("expected 'Bearer <key>'", "unknown API key"). Never logs the key. */
int slora_auth_authenticate(const struct slora_auth *a, const char *header, size_t len,
                            struct slora_principal *out, char *diag, size_t diag_len);

/* 0 if p may read/write/use adapters of tenant's namespace; anonymous:
 * SLORA_EUNAUTH; another tenant: SLORA_ENOTFOUND. */
int slora_auth_check_tenant(const struct slora_principal *p, const char *tenant);
/* 0 for any authenticated caller (lists, inference); anonymous: SLORA_EUNAUTH. */
int slora_auth_check_any(const struct slora_principal *p);
/* 0 for the admin (/metrics); anonymous: SLORA_EUNAUTH; tenant: SLORA_EFORBIDDEN. */
int slora_auth_check_admin(const struct slora_principal *p);
/* The tenant filter for slora_registry_list: NULL (everything) for the
 * admin, the tenant's name for a tenant. Anonymous callers must have been
 * refused by slora_auth_check_any first. */
const char *slora_auth_list_filter(const struct slora_principal *p);

struct slora_auth_store;
/* Takes ownership of the reference initial (dropped on failure). NULL on
 * allocation failure. */
struct slora_auth_store *slora_auth_store_new(struct slora_auth *initial);
/* NULL is a no-op; drops the store's reference. */
void slora_auth_store_free(struct slora_auth_store *s);
/* The current snapshot: a new reference (any thread). */
struct slora_auth *slora_auth_store_get(struct slora_auth_store *s);
/* Publish next (takes ownership of the reference); the previous snapshot is
 * freed when its last holder unrefs. */
void slora_auth_store_replace(struct slora_auth_store *s, struct slora_auth *next);

#endif
