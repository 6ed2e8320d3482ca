/* registry_util.h - the registry suites' stand-in validator, fixture and
 * helpers (check_registry.c, check_registry_persist.c). Test code only.
 *
 * The stand-in accepts any buffer starting with "LORA" and makes an adapter
 * with n_params = file length, total = 2 * length; it counts live adapters
 * so leaks show. Versions are checked against sha256 values computed with
 * Python's hashlib. */
#ifndef SLORA_REGISTRY_UTIL_H
#define SLORA_REGISTRY_UTIL_H

#include <slora/error.h>
#include <slora/fsio.h>
#include <slora/registry.h>

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* hashlib.sha256(b"LORA one").hexdigest()[:16], b"LORA second version" */
#define V_ONE "fde8d2e23fbbaf14"
#define V_TWO "ac4432ba584e8391"
#define ONE "LORA one"
#define TWO "LORA second version"

static int fake_alive;

static inline int fake_validate(void *ctx, const void *buf, size_t len, struct slora_adapter **out,
                                char *diag, size_t diag_len)
{
    (void)ctx;
    if (len < 4 || memcmp(buf, "LORA", 4)) {
        snprintf(diag, diag_len, "bad magic at byte 0");
        return SLORA_EFORMAT;
    }
    struct slora_adapter *a = calloc(1, sizeof(*a));
    if (!a)
        return SLORA_ENOMEM;
    a->refcount = 1;
    a->n_params = (int64_t)len;
    a->total = 2 * (int64_t)len;
    a->file_bytes = len;
    __atomic_add_fetch(&fake_alive, 1, __ATOMIC_RELAXED);
    *out = a;
    return 0;
}

static inline void fake_release(struct slora_adapter *a)
{
    if (a && __atomic_sub_fetch(&a->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
        __atomic_sub_fetch(&fake_alive, 1, __ATOMIC_RELAXED);
        free(a);
    }
}

/* The fixture's state directory, a fresh /tmp/slora-reg-XXXXXX per test. */
static char state[64];

static inline void setup(void)
{
    snprintf(state, sizeof(state), "/tmp/slora-reg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(state));
    unsetenv("SLORA_FAULT");
    unsetenv("SLORA_FSIO_TRACE");
    slora_fsio_reset();
}

static inline void teardown(void)
{
    char cmd[192];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.trace'", state, state);
    ck_assert_int_eq(system(cmd), 0);
    int64_t n, b;
    slora_registry_live(&n, &b);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(b, 0);
    ck_assert_int_eq(fake_alive, 0);
}

static inline struct slora_registry *open_registry(bool persistent)
{
    struct slora_registry_options opt = {
        .state_dir = persistent ? state : NULL,
        .validate = fake_validate,
        .release = fake_release,
        .max_file_bytes = 1 << 20,
    };
    struct slora_registry *r;
    char diag[256] = "";
    ck_assert_int_eq(slora_registry_new(&opt, &r, diag, sizeof(diag)), 0);
    return r;
}

static inline int put(struct slora_registry *r, const char *tenant, const char *name,
                      const char *body, const struct slora_quota *q, char *diag, size_t diag_len)
{
    return slora_registry_put(r, tenant, name, NULL, q, body, strlen(body), false, NULL, NULL, diag,
                              diag_len);
}

static inline void assert_version(struct slora_registry *r, const char *tenant, const char *name,
                                  const char *version)
{
    struct slora_registry_entry *e;
    ck_assert_int_eq(slora_registry_get(r, tenant, name, &e), 0);
    ck_assert_str_eq(e->version, version);
    slora_registry_entry_unref(e);
}

/* state/adapters/tenant/name.safetensors holds exactly want (NULL: absent). */
static inline void assert_disk(const char *tenant, const char *name, const char *want)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/adapters/%s/%s.safetensors", state, tenant, name);
    void *buf = NULL;
    size_t len = 0;
    char diag[256];
    int rc = slora_fsio_read_file(path, 1 << 20, &buf, &len, diag, sizeof(diag));
    if (!want) {
        ck_assert_int_eq(rc, SLORA_ENOTFOUND);
        return;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_mem_eq(buf, want, len);
    free(buf);
}

#endif
