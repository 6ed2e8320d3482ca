/* check_registry.c - the adapter registry with a stand-in validator (the
 * registry's concerns are names, quotas, preconditions, swaps, refcounts
 * and persistence; real adapter validation is the adapter suite's).
 *
 * The stand-in accepts any buffer starting with "LORA" and makes an adapter
 * with n_params = file length, total = 2 * length; it counts live adapters
 * so leaks show. Versions are checked against sha256 values computed with
 * Python's hashlib. */
#include <slora/error.h>
#include <slora/fsio.h>
#include <slora/registry.h>

#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* hashlib.sha256(b"LORA one").hexdigest()[:16], b"LORA second version" */
#define V_ONE "fde8d2e23fbbaf14"
#define V_TWO "ac4432ba584e8391"
#define ONE "LORA one"
#define TWO "LORA second version"

static int fake_alive;

static int fake_validate(void *ctx, const void *buf, size_t len, struct slora_adapter **out,
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

static void fake_release(struct slora_adapter *a)
{
    if (a && __atomic_sub_fetch(&a->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
        __atomic_sub_fetch(&fake_alive, 1, __ATOMIC_RELAXED);
        free(a);
    }
}

static char state[64];

static void setup(void)
{
    snprintf(state, sizeof(state), "/tmp/slora-reg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(state));
    unsetenv("SLORA_FAULT");
    unsetenv("SLORA_FSIO_TRACE");
    slora_fsio_reset();
}

static void teardown(void)
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

static struct slora_registry *open_registry(bool persistent)
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

static int put(struct slora_registry *r, const char *tenant, const char *name, const char *body,
               const struct slora_quota *q, char *diag, size_t diag_len)
{
    return slora_registry_put(r, tenant, name, NULL, q, body, strlen(body), false, NULL, NULL, diag,
                              diag_len);
}

static void assert_version(struct slora_registry *r, const char *tenant, const char *name,
                           const char *version)
{
    struct slora_registry_entry *e;
    ck_assert_int_eq(slora_registry_get(r, tenant, name, &e), 0);
    ck_assert_str_eq(e->version, version);
    slora_registry_entry_unref(e);
}

/* Bytes of state/adapters/tenant/name.safetensors ("" when absent). */
static void assert_disk(const char *tenant, const char *name, const char *want)
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

static void assert_disk_len(const char *tenant, const char *name, size_t want)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/adapters/%s/%s.safetensors", state, tenant, name);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq((size_t)st.st_size, want);
}

/* The tenant directory holds exactly the given file names (NULL-terminated). */
static void assert_dir_exactly(const char *tenant, const char *const *names)
{
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/adapters/%s", state, tenant);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int seen = 0, want = 0;
    while (names[want])
        want++;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        bool listed = false;
        for (int i = 0; i < want; i++)
            listed |= !strcmp(de->d_name, names[i]);
        ck_assert_msg(listed, "unexpected file %s/%s", dir, de->d_name);
        seen++;
    }
    closedir(d);
    ck_assert_int_eq(seen, want);
}

/* ---- names ------------------------------------------------------------ */

static const struct {
    const char *s;
    size_t len;           /* 0: strlen */
    const char *fragment; /* NULL: valid */
} names[] = {
    {"a", 0, NULL},
    {"0", 0, NULL},
    {"a.b_c-d", 0, NULL},
    {"a..", 0, NULL},
    {"adapter-v2.1", 0, NULL},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, NULL},
    {"", 0, "adapter name is empty"},
    {".", 0, "must start with a lowercase letter or a digit"},
    {"..", 0, "must start with a lowercase letter or a digit"},
    {"...", 0, "must start with a lowercase letter or a digit"},
    {".hidden", 0, "must start with a lowercase letter or a digit"},
    {"-a", 0, "must start with a lowercase letter or a digit"},
    {"_a", 0, "must start with a lowercase letter or a digit"},
    {"%2f", 0, "must start with a lowercase letter or a digit"},
    {"a%2fb", 0, "character outside [a-z0-9._-] at offset 1"},
    {"a%2Fb", 0, "character outside [a-z0-9._-] at offset 1"},
    {"a%00", 0, "character outside [a-z0-9._-] at offset 1"},
    {"Acme", 0, "must start with a lowercase letter or a digit"},
    {"acMe", 0, "character outside [a-z0-9._-] at offset 2"},
    {"a/b", 0, "character outside [a-z0-9._-] at offset 1"},
    {"../etc", 0, "must start with a lowercase letter or a digit"},
    {"a\0b", 3, "character outside [a-z0-9._-] at offset 1"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0,
     "adapter name is longer than 64 characters"},
    {"caf\xc3\xa9", 0, "character outside [a-z0-9._-] at offset 3"},
    {"\xc3\xa9t\xc3\xa9", 0, "must start with a lowercase letter or a digit"},
    {"\xc0\xae\xc0\xae", 0, "must start with a lowercase letter or a digit"},
    {"a b", 0, "character outside [a-z0-9._-] at offset 1"},
    {"a\r\nX-Evil: 1", 0, "character outside [a-z0-9._-] at offset 1"},
    {"a\\b", 0, "character outside [a-z0-9._-] at offset 1"},
    {"a+b", 0, "character outside [a-z0-9._-] at offset 1"},
};

START_TEST(name_table)
{
    char diag[256] = "";
    size_t len = names[_i].len ? names[_i].len : strlen(names[_i].s);
    int rc = slora_registry_name_check(names[_i].s, len, "adapter", diag, sizeof(diag));
    if (!names[_i].fragment) {
        ck_assert_int_eq(rc, 0);
        return;
    }
    ck_assert_int_eq(rc, SLORA_EINVAL);
    ck_assert_msg(strstr(diag, names[_i].fragment), "diag '%s' lacks '%s'", diag,
                  names[_i].fragment);
}
END_TEST

START_TEST(bad_names_never_reach_the_filesystem)
{
    /* Every bad (NUL-free) name as tenant and as adapter: EINVAL, nothing written. */
    struct slora_registry *r = open_registry(true);
    char diag[256];
    uint64_t n_bad = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!names[i].fragment || names[i].len)
            continue;
        n_bad++;
        ck_assert_int_eq(put(r, "acme", names[i].s, ONE, NULL, diag, sizeof(diag)), SLORA_EINVAL);
        ck_assert_ptr_nonnull(strstr(diag, "adapter name"));
        ck_assert_int_eq(put(r, names[i].s, "x", ONE, NULL, diag, sizeof(diag)), SLORA_EINVAL);
        ck_assert_ptr_nonnull(strstr(diag, "tenant name"));
    }
    char adir[128];
    snprintf(adir, sizeof(adir), "%s/adapters", state);
    DIR *d = opendir(adir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    ck_assert_int_eq(n, 0);
    struct slora_registry_stats st;
    slora_registry_stats(r, &st);
    ck_assert_uint_eq(n_bad, 23);
    ck_assert_uint_eq(st.rejected[SLORA_ERR_INDEX(SLORA_EINVAL)], 2 * n_bad);
    slora_registry_free(r);
}
END_TEST

static const struct {
    const char *id;
    int rc;
    const char *fragment; /* diag, or "tenant|name" on success */
} ids[] = {
    {"acme/x", 0, "acme|x"},
    {"a/b.c", 0, "a|b.c"},
    {"acme", SLORA_EINVAL, "must be 'tenant/name'"},
    {"/x", SLORA_EINVAL, "tenant name is empty"},
    {"acme/", SLORA_EINVAL, "adapter name is empty"},
    {"acme/x/y", SLORA_EINVAL, "adapter name has a character outside"},
    {"Acme/x", SLORA_EINVAL, "tenant name must start"},
    {"acme/..", SLORA_EINVAL, "adapter name must start"},
};

START_TEST(id_table)
{
    char tenant[SLORA_NAME_MAX + 1], name[SLORA_NAME_MAX + 1], diag[256] = "", got[200];
    int rc =
        slora_registry_id_parse(ids[_i].id, strlen(ids[_i].id), tenant, name, diag, sizeof(diag));
    ck_assert_int_eq(rc, ids[_i].rc);
    if (rc == 0) {
        snprintf(got, sizeof(got), "%s|%s", tenant, name);
        ck_assert_str_eq(got, ids[_i].fragment);
    } else {
        ck_assert_msg(strstr(diag, ids[_i].fragment), "diag '%s'", diag);
    }
}
END_TEST

START_TEST(etag_table)
{
    ck_assert(slora_registry_etag_match("\"" V_ONE "\"", V_ONE));
    ck_assert(slora_registry_etag_match("*", V_ONE));
    ck_assert(slora_registry_etag_match(" W/\"" V_ONE "\"", V_ONE));
    ck_assert(slora_registry_etag_match("\"x\", \"" V_ONE "\"", V_ONE));
    ck_assert(slora_registry_etag_match(V_ONE, V_ONE));
    ck_assert(!slora_registry_etag_match("\"" V_TWO "\"", V_ONE));
    ck_assert(!slora_registry_etag_match("\"fde8d2e23fbbaf1\"", V_ONE));
    ck_assert(!slora_registry_etag_match("\"fde8d2e23fbbaf144\"", V_ONE));
    ck_assert(!slora_registry_etag_match("", V_ONE));
    ck_assert(!slora_registry_etag_match("\"", V_ONE));
    ck_assert(!slora_registry_etag_match(NULL, V_ONE));
}
END_TEST

/* ---- basic operations ------------------------------------------------- */

static void basic_lifecycle(bool persistent)
{
    struct slora_registry *r = open_registry(persistent);
    char diag[256] = "";
    struct slora_registry_entry *e = NULL;
    bool created = false;
    ck_assert_int_eq(slora_registry_put(r, "acme", "x", NULL, NULL, ONE, strlen(ONE), false, &e,
                                        &created, diag, sizeof(diag)),
                     0);
    ck_assert(created);
    ck_assert_str_eq(e->id, "acme/x");
    ck_assert_str_eq(e->tenant, "acme");
    ck_assert_str_eq(e->name, "x");
    ck_assert_str_eq(e->version, V_ONE);
    ck_assert_int_eq(e->file_bytes, 8);
    ck_assert_int_eq(e->params, 8);
    ck_assert_int_eq(e->dense_bytes, 64);
    ck_assert_int_eq(e->refcount, 2);
    slora_registry_entry_unref(e);

    ck_assert_int_eq(slora_registry_put(r, "acme", "x", NULL, NULL, TWO, strlen(TWO), false, &e,
                                        &created, diag, sizeof(diag)),
                     0);
    ck_assert(!created);
    ck_assert_str_eq(e->version, V_TWO);
    slora_registry_entry_unref(e);
    ck_assert_int_eq(put(r, "beta", "y", ONE, NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(put(r, "acme", "a-first", ONE, NULL, diag, sizeof(diag)), 0);

    struct slora_registry_entry **list;
    size_t n;
    ck_assert_int_eq(slora_registry_list(r, NULL, &list, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(list[0]->id, "acme/a-first");
    ck_assert_str_eq(list[1]->id, "acme/x");
    ck_assert_str_eq(list[2]->id, "beta/y");
    slora_registry_list_free(list, n);
    ck_assert_int_eq(slora_registry_list(r, "beta", &list, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(list[0]->id, "beta/y");
    slora_registry_list_free(list, n);
    ck_assert_int_eq(slora_registry_list(r, "gamma", &list, &n), 0);
    ck_assert_uint_eq(n, 0);
    slora_registry_list_free(list, n);

    ck_assert_int_eq(slora_registry_get_id(r, "acme/x", &e), 0);
    void *buf;
    size_t len;
    ck_assert_int_eq(slora_registry_entry_read_file(e, &buf, &len, diag, sizeof(diag)), 0);
    ck_assert_uint_eq(len, strlen(TWO));
    ck_assert_mem_eq(buf, TWO, len);
    free(buf);
    slora_registry_entry_unref(e);
    ck_assert_int_eq(slora_registry_get_id(r, "acme/nope", &e), SLORA_ENOTFOUND);
    ck_assert_ptr_null(e);
    ck_assert_int_eq(slora_registry_get_id(r, "acme", &e), SLORA_EINVAL);
    ck_assert_int_eq(slora_registry_get(r, "beta", "x", &e), SLORA_ENOTFOUND);

    int64_t count, bytes;
    slora_registry_usage(r, "acme", &count, &bytes);
    ck_assert_int_eq(count, 2);
    ck_assert_int_eq(bytes, 8 + 19);

    ck_assert_int_eq(slora_registry_delete(r, "acme", "x", NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_registry_get(r, "acme", "x", &e), SLORA_ENOTFOUND);
    ck_assert_int_eq(slora_registry_delete(r, "acme", "x", NULL, diag, sizeof(diag)),
                     SLORA_ENOTFOUND);
    ck_assert_str_eq(diag, "adapter acme/x not found");
    slora_registry_usage(r, "acme", &count, &bytes);
    ck_assert_int_eq(count, 1);
    ck_assert_int_eq(bytes, 8);

    struct slora_registry_stats st;
    slora_registry_stats(r, &st);
    ck_assert_int_eq(st.adapters, 2);
    ck_assert_int_eq(st.bytes, 16);
    ck_assert_uint_eq(st.uploads, 4);
    ck_assert_uint_eq(st.swaps, 1);
    ck_assert_uint_eq(st.deletes, 1);
    if (persistent) {
        assert_disk("acme", "x", NULL);
        assert_disk("acme", "a-first", ONE);
        assert_disk("beta", "y", ONE);
    }
    slora_registry_free(r);
}

START_TEST(lifecycle_memory)
{
    basic_lifecycle(false);
}
END_TEST

START_TEST(lifecycle_persistent)
{
    basic_lifecycle(true);
}
END_TEST

/* The entry's strings are sized to them: the longest names come back
 * whole, and the state file has them (_i: 0 memory only, 1 persistent). */
START_TEST(longest_names_kept_whole)
{
    bool persistent = _i == 1;
    struct slora_registry *r = open_registry(persistent);
    char longest[SLORA_NAME_MAX + 1], id[SLORA_ID_MAX + 1], path[256], diag[256] = "";
    memset(longest, 'n', SLORA_NAME_MAX);
    longest[SLORA_NAME_MAX] = '\0';
    struct slora_registry_entry *e = NULL;
    ck_assert_int_eq(slora_registry_put(r, longest, longest, NULL, NULL, ONE, strlen(ONE), false,
                                        &e, NULL, diag, sizeof(diag)),
                     0);
    snprintf(id, sizeof(id), "%s/%s", longest, longest);
    snprintf(path, sizeof(path), "%s/adapters/%s/%s.safetensors", state, longest, longest);
    ck_assert_str_eq(e->id, id);
    ck_assert_str_eq(e->tenant, longest);
    ck_assert_str_eq(e->name, longest);
    struct stat st;
    ck_assert_int_eq(stat(path, &st) == 0, persistent);
    if (persistent)
        ck_assert_ptr_nonnull(e->store);
    else
        ck_assert_ptr_null(e->store);
    slora_registry_entry_unref(e);
    assert_version(r, longest, longest, V_ONE);
    struct slora_registry_entry **list;
    size_t n;
    ck_assert_int_eq(slora_registry_list(r, longest, &list, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(list[0]->id, id);
    slora_registry_list_free(list, n);
    slora_registry_free(r);
}
END_TEST

START_TEST(validation_error_and_dry_run)
{
    struct slora_registry *r = open_registry(true);
    char diag[256] = "";
    ck_assert_int_eq(put(r, "acme", "x", "JUNK", NULL, diag, sizeof(diag)), SLORA_EFORMAT);
    ck_assert_str_eq(diag, "bad magic at byte 0");
    struct slora_registry_entry *e = NULL;
    bool created = false;
    ck_assert_int_eq(slora_registry_put(r, "acme", "x", NULL, NULL, ONE, strlen(ONE), true, &e,
                                        &created, diag, sizeof(diag)),
                     0);
    ck_assert(created);
    ck_assert_str_eq(e->version, V_ONE);
    slora_registry_entry_unref(e);
    ck_assert_int_eq(slora_registry_get(r, "acme", "x", &e), SLORA_ENOTFOUND);
    assert_disk("acme", "x", NULL);
    ck_assert_int_eq(put(r, "acme", "x", ONE, NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_registry_put(r, "acme", "x", NULL, NULL, TWO, strlen(TWO), true, &e,
                                        &created, diag, sizeof(diag)),
                     0);
    ck_assert(!created);
    slora_registry_entry_unref(e);
    assert_version(r, "acme", "x", V_ONE);
    assert_disk("acme", "x", ONE);
    struct slora_registry_stats st;
    slora_registry_stats(r, &st);
    ck_assert_uint_eq(st.rejected[SLORA_ERR_INDEX(SLORA_EFORMAT)], 1);
    ck_assert_uint_eq(st.dry_runs, 2);
    ck_assert_uint_eq(st.uploads, 1);
    slora_registry_free(r);
}
END_TEST

/* ---- quotas and preconditions ----------------------------------------- */

START_TEST(quotas)
{
    struct slora_registry *r = open_registry(false);
    char diag[256] = "";
    struct slora_quota q = {2, 30};
    ck_assert_int_eq(put(r, "acme", "a", ONE, &q, diag, sizeof(diag)), 0);
    ck_assert_int_eq(put(r, "acme", "b", ONE, &q, diag, sizeof(diag)), 0);
    ck_assert_int_eq(put(r, "acme", "c", ONE, &q, diag, sizeof(diag)), SLORA_EQUOTA);
    ck_assert_str_eq(diag, "tenant 'acme' has 2 adapters; quota max_adapters is 2");
    /* Replacing is not a new adapter; 8 + 19 = 27 bytes fits in 30. */
    ck_assert_int_eq(put(r, "acme", "b", TWO, &q, diag, sizeof(diag)), 0);
    ck_assert_int_eq(put(r, "acme", "a", TWO, &q, diag, sizeof(diag)), SLORA_ENOSPC);
    ck_assert_str_eq(diag, "tenant 'acme' would store 38 bytes; quota max_bytes is 30");
    assert_version(r, "acme", "a", V_ONE);
    /* Other tenants have their own quota. */
    ck_assert_int_eq(put(r, "beta", "c", ONE, &q, diag, sizeof(diag)), 0);
    /* After a delete the slot is free again. */
    ck_assert_int_eq(slora_registry_delete(r, "acme", "a", NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(put(r, "acme", "c", ONE, &q, diag, sizeof(diag)), 0);
    /* A declared Content-Length is refused before any body is read. */
    struct slora_registry_op *op = NULL;
    ck_assert_int_eq(
        slora_registry_begin_put(r, "beta", "d", NULL, &q, 31, false, &op, diag, sizeof(diag)),
        SLORA_ENOSPC);
    ck_assert_str_eq(diag, "tenant 'beta' would store 39 bytes; quota max_bytes is 30");
    ck_assert_ptr_null(op);
    struct slora_quota zero = {0, -1};
    ck_assert_int_eq(put(r, "gamma", "a", ONE, &zero, diag, sizeof(diag)), SLORA_EQUOTA);
    ck_assert_str_eq(diag, "tenant 'gamma' has 0 adapters; quota max_adapters is 0");
    struct slora_registry_stats st;
    slora_registry_stats(r, &st);
    ck_assert_uint_eq(st.rejected[SLORA_ERR_INDEX(SLORA_EQUOTA)], 2);
    ck_assert_uint_eq(st.rejected[SLORA_ERR_INDEX(SLORA_ENOSPC)], 2);
    slora_registry_free(r);
}
END_TEST

START_TEST(parallel_new_names_cannot_overshoot_quota)
{
    /* Two uploads of new names in flight at once: the second begin sees
     * the first's reservation. */
    struct slora_registry *r = open_registry(false);
    char diag[256] = "";
    struct slora_quota q = {1, 10};
    struct slora_registry_op *a, *b;
    ck_assert_int_eq(
        slora_registry_begin_put(r, "acme", "a", NULL, &q, -1, false, &a, diag, sizeof(diag)), 0);
    ck_assert_int_eq(
        slora_registry_begin_put(r, "acme", "b", NULL, &q, -1, false, &b, diag, sizeof(diag)),
        SLORA_EQUOTA);
    ck_assert_str_eq(diag, "tenant 'acme' has 1 adapters; quota max_adapters is 1");
    /* Bytes: the run reserves; an oversized body fails in run, not after persisting. */
    ck_assert_int_eq(slora_registry_op_run(a, TWO, strlen(TWO), diag, sizeof(diag)), SLORA_ENOSPC);
    ck_assert_int_eq(slora_registry_op_commit(a, NULL, NULL, diag, sizeof(diag)), SLORA_ENOSPC);
    ck_assert_str_eq(diag, "tenant 'acme' would store 19 bytes; quota max_bytes is 10");
    ck_assert_int_eq(put(r, "acme", "b", ONE, &q, diag, sizeof(diag)), 0);
    slora_registry_free(r);
}
END_TEST

START_TEST(preconditions)
{
    struct slora_registry *r = open_registry(false);
    char diag[256] = "";
    struct slora_registry_cond none_star = {NULL, "*"};
    struct slora_registry_cond match_one = {"\"" V_ONE "\"", NULL};
    struct slora_registry_cond match_two = {"\"" V_TWO "\"", NULL};
    struct slora_registry_cond match_any = {"*", NULL};
    ck_assert_int_eq(slora_registry_put(r, "acme", "x", &match_any, NULL, ONE, 8, false, NULL, NULL,
                                        diag, sizeof(diag)),
                     SLORA_EPRECOND);
    ck_assert_str_eq(diag, "If-Match: acme/x does not exist");
    ck_assert_int_eq(slora_registry_put(r, "acme", "x", &none_star, NULL, ONE, 8, false, NULL, NULL,
                                        diag, sizeof(diag)),
                     0);
    ck_assert_int_eq(slora_registry_put(r, "acme", "x", &none_star, NULL, TWO, 19, false, NULL,
                                        NULL, diag, sizeof(diag)),
                     SLORA_EPRECOND);
    ck_assert_str_eq(diag, "If-None-Match: acme/x exists at version \"" V_ONE "\"");
    ck_assert_int_eq(slora_registry_put(r, "acme", "x", &match_two, NULL, TWO, 19, false, NULL,
                                        NULL, diag, sizeof(diag)),
                     SLORA_EPRECOND);
    ck_assert_str_eq(diag, "If-Match: acme/x is at version \"" V_ONE "\"");
    ck_assert_int_eq(slora_registry_put(r, "acme", "x", &match_one, NULL, TWO, 19, false, NULL,
                                        NULL, diag, sizeof(diag)),
                     0);
    assert_version(r, "acme", "x", V_TWO);
    ck_assert_int_eq(slora_registry_delete(r, "acme", "x", &match_one, diag, sizeof(diag)),
                     SLORA_EPRECOND);
    ck_assert_int_eq(slora_registry_delete(r, "acme", "x", &match_two, diag, sizeof(diag)), 0);
    struct slora_registry_stats st;
    slora_registry_stats(r, &st);
    ck_assert_uint_eq(st.rejected[SLORA_ERR_INDEX(SLORA_EPRECOND)], 3);
    slora_registry_free(r);
}
END_TEST

START_TEST(busy_name_is_serialized)
{
    struct slora_registry *r = open_registry(true);
    char diag[256] = "";
    struct slora_registry_op *a, *b, *c;
    ck_assert_int_eq(
        slora_registry_begin_put(r, "acme", "x", NULL, NULL, -1, false, &a, diag, sizeof(diag)), 0);
    ck_assert_int_eq(
        slora_registry_begin_put(r, "acme", "x", NULL, NULL, -1, false, &b, diag, sizeof(diag)),
        SLORA_EBUSY);
    ck_assert_str_eq(diag, "another upload or delete of acme/x is in progress; retry");
    /* Other names and dry runs go on meanwhile; a new name in flight is not visible. */
    ck_assert_int_eq(put(r, "acme", "y", ONE, NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_registry_put(r, "acme", "x", NULL, NULL, ONE, 8, true, NULL, NULL, diag,
                                        sizeof(diag)),
                     0);
    struct slora_registry_entry *e;
    ck_assert_int_eq(slora_registry_get(r, "acme", "x", &e), SLORA_ENOTFOUND);
    struct slora_registry_entry **list;
    size_t n;
    ck_assert_int_eq(slora_registry_list(r, NULL, &list, &n), 0);
    ck_assert_uint_eq(n, 1);
    slora_registry_list_free(list, n);

    ck_assert_int_eq(slora_registry_op_run(a, ONE, 8, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_registry_op_commit(a, NULL, NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_registry_begin_delete(r, "acme", "x", NULL, &c, diag, sizeof(diag)), 0);
    ck_assert_int_eq(
        slora_registry_begin_put(r, "acme", "x", NULL, NULL, -1, false, &b, diag, sizeof(diag)),
        SLORA_EBUSY);
    /* A delete given up (client gone) leaves everything as it was. */
    slora_registry_op_abort(c);
    assert_version(r, "acme", "x", V_ONE);
    ck_assert_int_eq(
        slora_registry_begin_put(r, "acme", "z", NULL, NULL, -1, false, &b, diag, sizeof(diag)), 0);
    slora_registry_op_abort(b);
    ck_assert_int_eq(slora_registry_get(r, "acme", "z", &e), SLORA_ENOTFOUND);
    slora_registry_op_abort(NULL);
    /* Aborted after its run persisted: the index follows the disk. */
    ck_assert_int_eq(
        slora_registry_begin_put(r, "acme", "x", NULL, NULL, -1, false, &b, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_registry_op_run(b, TWO, strlen(TWO), diag, sizeof(diag)), 0);
    slora_registry_op_abort(b);
    assert_version(r, "acme", "x", V_TWO);
    assert_disk("acme", "x", TWO);
    ck_assert_int_eq(slora_registry_begin_delete(r, "acme", "x", NULL, &c, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_registry_op_run(c, NULL, 0, diag, sizeof(diag)), 0);
    slora_registry_op_abort(c);
    ck_assert_int_eq(slora_registry_get(r, "acme", "x", &e), SLORA_ENOTFOUND);
    assert_disk("acme", "x", NULL);
    ck_assert_int_eq(put(r, "acme", "x", ONE, NULL, diag, sizeof(diag)), 0);
    int64_t count, bytes;
    slora_registry_usage(r, "acme", &count, &bytes);
    ck_assert_int_eq(count, 2);
    ck_assert_int_eq(bytes, 16);
    slora_registry_free(r);
}
END_TEST

/* ---- hot swap and references ------------------------------------------ */

START_TEST(readers_keep_their_version)
{
    struct slora_registry *r = open_registry(false);
    char diag[256] = "";
    int64_t n0, b0, n, b;
    slora_registry_live(&n0, &b0);
    ck_assert_int_eq(put(r, "acme", "x", ONE, NULL, diag, sizeof(diag)), 0);
    struct slora_registry_entry *held;
    ck_assert_int_eq(slora_registry_get(r, "acme", "x", &held), 0);
    slora_registry_entry_set_pinned(held, true);
    ck_assert_int_eq(put(r, "acme", "x", TWO, NULL, diag, sizeof(diag)), 0);
    /* The old version lives on for its reader; the new one inherited the pin. */
    slora_registry_live(&n, &b);
    ck_assert_int_eq(n, n0 + 2);
    ck_assert_int_eq(b, b0 + (8 * 4 + 8) + (19 * 4 + 19));
    ck_assert_str_eq(held->version, V_ONE);
    ck_assert_mem_eq(held->file, ONE, 8);
    ck_assert_int_eq(held->refcount, 1);
    struct slora_registry_entry *cur;
    ck_assert_int_eq(slora_registry_get(r, "acme", "x", &cur), 0);
    ck_assert(slora_registry_entry_is_pinned(cur));
    ck_assert_int_eq(slora_registry_delete(r, "acme", "x", NULL, diag, sizeof(diag)), 0);
    ck_assert_str_eq(cur->version, V_TWO);
    ck_assert_int_eq(fake_alive, 2);
    slora_registry_entry_unref(held);
    slora_registry_live(&n, &b);
    ck_assert_int_eq(n, n0 + 1);
    slora_registry_entry_unref(cur);
    slora_registry_live(&n, &b);
    ck_assert_int_eq(n, n0);
    ck_assert_int_eq(b, b0);
    ck_assert_int_eq(fake_alive, 0);
    slora_registry_free(r);
}
END_TEST

#define STORM_READERS 3

struct storm {
    struct slora_registry *r;
    int swaps;  /* per writer */
    int stop;   /* atomic */
    long reads; /* atomic */
    int bad;    /* atomic: readers that saw an inconsistent entry */
};

static void *storm_reader(void *arg)
{
    struct storm *s = arg;
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        struct slora_registry_entry *e;
        if (slora_registry_get(s->r, "acme", "x", &e) < 0)
            continue;
        /* Every field of the entry must describe the same version. */
        void *buf;
        size_t len;
        char diag[256];
        uint8_t d[SLORA_SHA256_LEN];
        int rc = slora_registry_entry_read_file(e, &buf, &len, diag, sizeof(diag));
        if (rc == 0) {
            slora_sha256(buf, len, d);
            if (memcmp(d, e->sha256, sizeof(d)) || e->adapter->n_params != (int64_t)len ||
                e->file_bytes != (int64_t)len)
                __atomic_add_fetch(&s->bad, 1, __ATOMIC_RELAXED);
            free(buf);
        } else if (rc != SLORA_EBUSY) {
            __atomic_add_fetch(&s->bad, 1, __ATOMIC_RELAXED);
        }
        __atomic_add_fetch(&s->reads, 1, __ATOMIC_RELAXED);
        slora_registry_entry_unref(e);
    }
    return NULL;
}

static void *storm_writer(void *arg)
{
    struct storm *s = arg;
    char body[64], diag[256];
    for (int i = 0; i < s->swaps;) {
        snprintf(body, sizeof(body), "LORA %p %d%*s", (void *)&i, i, i % 23, "");
        int rc = put(s->r, "acme", "x", body, NULL, diag, sizeof(diag));
        if (rc == 0)
            i++;
        else if (rc != SLORA_EBUSY)
            __atomic_add_fetch(&s->bad, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void swap_storm(bool persistent, int swaps)
{
    int64_t n0, b0, n, b;
    slora_registry_live(&n0, &b0);
    struct storm s = {.r = open_registry(persistent), .swaps = swaps};
    char diag[256];
    ck_assert_int_eq(put(s.r, "acme", "x", ONE, NULL, diag, sizeof(diag)), 0);
    pthread_t readers[STORM_READERS], writers[2];
    for (int i = 0; i < STORM_READERS; i++)
        ck_assert_int_eq(pthread_create(&readers[i], NULL, storm_reader, &s), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&writers[i], NULL, storm_writer, &s), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(writers[i], NULL);
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < STORM_READERS; i++)
        pthread_join(readers[i], NULL);
    ck_assert_int_eq(s.bad, 0);
    ck_assert_int_gt(s.reads, 0);
    struct slora_registry_stats st;
    slora_registry_stats(s.r, &st);
    ck_assert_uint_eq(st.swaps, (uint64_t)(2 * swaps));
    ck_assert_int_eq(st.adapters, 1);
    /* Only the current version is alive. */
    slora_registry_live(&n, &b);
    ck_assert_int_eq(n, n0 + 1);
    ck_assert_int_eq(fake_alive, 1);
    slora_registry_free(s.r);
    slora_registry_live(&n, &b);
    ck_assert_int_eq(n, n0);
    ck_assert_int_eq(b, b0);
}

START_TEST(swap_storm_memory)
{
    swap_storm(false, 300);
}
END_TEST

START_TEST(swap_storm_persistent)
{
    swap_storm(true, 25);
    const char *only[] = {"x.safetensors", NULL};
    assert_dir_exactly("acme", only);
}
END_TEST

/* ---- persistence ------------------------------------------------------ */

static char trace_path[96];

static void trace_on(void)
{
    snprintf(trace_path, sizeof(trace_path), "%s.trace", state);
    setenv("SLORA_FSIO_TRACE", trace_path, 1);
    slora_fsio_reset();
}

/* Stop tracing; the trace so far without its last newline (caller frees). */
static char *trace_off(void)
{
    unsetenv("SLORA_FSIO_TRACE");
    slora_fsio_reset();
    void *buf;
    size_t len;
    char diag[256];
    ck_assert_int_eq(slora_fsio_read_file(trace_path, 1 << 16, &buf, &len, diag, sizeof(diag)),
                     0);
    ck_assert_uint_gt(len, 0);
    char *t = buf;
    t[len - 1] = '\0';
    return t;
}

START_TEST(persist_order_traced)
{
    char diag[256] = "";
    struct slora_registry *r = open_registry(true);
    trace_on();
    ck_assert_int_eq(put(r, "acme", "x", ONE, NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_registry_delete(r, "acme", "x", NULL, diag, sizeof(diag)), 0);
    char *t = trace_off(), tmp[160];
    /* The temp name is random; everything else is fixed. */
    char *open_line = strstr(t, "open ");
    ck_assert_ptr_nonnull(open_line);
    ck_assert_int_eq(sscanf(open_line, "open %159s ok", tmp), 1);
    char want[2048];
    snprintf(want, sizeof(want),
             "mkdir %1$s/adapters/acme ok\n"
             "dirsync %1$s/adapters ok\n"
             "open %2$s ok\n"
             "write %2$s ok\n"
             "fsync %2$s ok\n"
             "rename %2$s %1$s/adapters/acme/x.safetensors ok\n"
             "dirsync %1$s/adapters/acme ok\n"
             "unlink %1$s/adapters/acme/x.safetensors ok\n"
             "dirsync %1$s/adapters/acme ok",
             state, tmp);
    ck_assert_str_eq(t, want);
    free(t);
    slora_registry_free(r);
}
END_TEST

START_TEST(existing_tenant_dir_synced_once_per_process)
{
    /* A tenant directory left by an earlier process may never have been
     * synced into adapters/ (crash between mkdir and fsync): the first
     * upload into it syncs adapters/ again, later ones do not. */
    char diag[256] = "";
    struct slora_registry *r = open_registry(true);
    ck_assert_int_eq(put(r, "acme", "x", ONE, NULL, diag, sizeof(diag)), 0);
    slora_registry_free(r);
    r = open_registry(true);
    struct slora_registry_restore_report rep;
    ck_assert_int_eq(slora_registry_restore(r, &rep, diag, sizeof(diag)), 0);
    trace_on();
    ck_assert_int_eq(put(r, "acme", "y", ONE, NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(put(r, "acme", "z", ONE, NULL, diag, sizeof(diag)), 0);
    char *t = trace_off(), want[256];
    snprintf(want, sizeof(want), "dirsync %s/adapters ok\nopen ", state);
    ck_assert_int_eq(strncmp(t, want, strlen(want)), 0);
    ck_assert_ptr_null(strstr(t, "mkdir"));
    snprintf(want, sizeof(want), "dirsync %s/adapters ok", state);
    ck_assert_ptr_null(strstr(t + 1, want));
    free(t);
    slora_registry_free(r);
}
END_TEST

static const struct {
    const char *fault;
    int err;
    const char *fragment;
} faults[] = {
    {"open:ENOSPC", SLORA_ENOSPC, "No space left on device"},
    {"write:ENOSPC", SLORA_ENOSPC, "write "},
    {"write:EDQUOT", SLORA_ENOSPC, "Disk quota exceeded"},
    {"write:EIO", SLORA_EIO, "write "},
    {"fsync:EIO", SLORA_EIO, "fsync "},
    {"link:EIO", SLORA_EIO, "link "},
    {"rename:ENOSPC", SLORA_ENOSPC, "rename "},
    {"rename:EIO", SLORA_EIO, "rename "},
    {"dirsync:EIO", SLORA_EIO, "dirsync "},
    {"dirsync:ENOSPC", SLORA_ENOSPC, "dirsync "},
};

START_TEST(fault_during_replace_keeps_previous)
{
    struct slora_registry *r = open_registry(true);
    char diag[256] = "";
    ck_assert_int_eq(put(r, "acme", "x", ONE, NULL, diag, sizeof(diag)), 0);
    setenv("SLORA_FAULT", faults[_i].fault, 1);
    ck_assert_int_eq(slora_fsio_reset(), 0);
    ck_assert_int_eq(put(r, "acme", "x", TWO, NULL, diag, sizeof(diag)), faults[_i].err);
    ck_assert_msg(strstr(diag, faults[_i].fragment), "diag '%s'", diag);
    ck_assert_ptr_nonnull(strstr(diag, "/adapters/acme"));
    unsetenv("SLORA_FAULT");
    slora_fsio_reset();
    assert_version(r, "acme", "x", V_ONE);
    assert_disk("acme", "x", ONE);
    const char *only[] = {"x.safetensors", NULL};
    assert_dir_exactly("acme", only);
    struct slora_registry_stats st;
    slora_registry_stats(r, &st);
    ck_assert_uint_eq(st.uploads, 1);
    ck_assert_uint_eq(st.rejected[SLORA_ERR_INDEX(faults[_i].err)], 1);
    /* The name is usable again, and a restart sees the previous version. */
    ck_assert_int_eq(put(r, "acme", "y", TWO, NULL, diag, sizeof(diag)), 0);
    slora_registry_free(r);
    r = open_registry(true);
    struct slora_registry_restore_report rep;
    ck_assert_int_eq(slora_registry_restore(r, &rep, diag, sizeof(diag)), 0);
    ck_assert_int_eq(rep.restored, 2);
    assert_version(r, "acme", "x", V_ONE);
    slora_registry_free(r);
}
END_TEST

/* slora_registry_admit_cb refusing what it is shown. */
static int refuse_admit(void *arg, const struct slora_registry_entry *e, char *diag,
                        size_t diag_len)
{
    int *seen = arg;
    (*seen)++;
    snprintf(diag, diag_len, "pin of %s (%lld bytes) does not fit", e->id,
             (long long)e->file_bytes);
    return SLORA_ENOSPC;
}

/* A PUT refused by its admit check changes nothing: index, disk, quota. */
START_TEST(admit_refusal_keeps_previous)
{
    struct slora_registry *r = open_registry(true);
    char diag[256] = "";
    ck_assert_int_eq(put(r, "acme", "x", ONE, NULL, diag, sizeof(diag)), 0);
    struct slora_quota q = {-1, (int64_t)strlen(ONE) + (int64_t)strlen(TWO)};
    struct slora_registry_op *op;
    ck_assert_int_eq(slora_registry_begin_put(r, "acme", "x", NULL, &q, -1, false, &op, diag,
                                              sizeof(diag)),
                     0);
    int seen = 0;
    slora_registry_op_set_admit(op, refuse_admit, &seen);
    ck_assert_int_eq(slora_registry_op_run(op, TWO, strlen(TWO), diag, sizeof(diag)),
                     SLORA_ENOSPC);
    ck_assert_int_eq(seen, 1);
    ck_assert_str_eq(diag, "pin of acme/x (19 bytes) does not fit");
    ck_assert_int_eq(slora_registry_op_commit(op, NULL, NULL, diag, sizeof(diag)), SLORA_ENOSPC);
    assert_version(r, "acme", "x", V_ONE);
    assert_disk("acme", "x", ONE);
    const char *only[] = {"x.safetensors", NULL};
    assert_dir_exactly("acme", only);
    /* No bytes stayed reserved: the next upload fits the same quota. */
    ck_assert_int_eq(put(r, "acme", "x", TWO, &q, diag, sizeof(diag)), 0);
    slora_registry_free(r);
}
END_TEST

START_TEST(fault_on_new_name_leaves_nothing)
{
    struct slora_registry *r = open_registry(true);
    char diag[256] = "";
    ck_assert_int_eq(put(r, "acme", "keep", ONE, NULL, diag, sizeof(diag)), 0);
    setenv("SLORA_FAULT", faults[_i].fault, 1);
    ck_assert_int_eq(slora_fsio_reset(), 0);
    int rc = put(r, "acme", "x", TWO, NULL, diag, sizeof(diag));
    unsetenv("SLORA_FAULT");
    slora_fsio_reset();
    struct slora_registry_entry *e;
    const char *only[] = {"keep.safetensors", NULL};
    if (!strncmp(faults[_i].fault, "link", 4)) {
        /* No previous version to link aside. */
        ck_assert_int_eq(rc, 0);
    } else {
        ck_assert_int_eq(rc, faults[_i].err);
        ck_assert_int_eq(slora_registry_get(r, "acme", "x", &e), SLORA_ENOTFOUND);
        assert_dir_exactly("acme", only);
        int64_t count, bytes;
        slora_registry_usage(r, "acme", &count, &bytes);
        ck_assert_int_eq(count, 1);
        ck_assert_int_eq(bytes, 8);
    }
    slora_registry_free(r);
}
END_TEST

START_TEST(fault_creating_tenant_dir)
{
    struct slora_registry *r = open_registry(true);
    char diag[256] = "";
    setenv("SLORA_FAULT", "mkdir:EDQUOT", 1);
    ck_assert_int_eq(slora_fsio_reset(), 0);
    ck_assert_int_eq(put(r, "acme", "x", ONE, NULL, diag, sizeof(diag)), SLORA_ENOSPC);
    ck_assert_ptr_nonnull(strstr(diag, "mkdir "));
    setenv("SLORA_FAULT", "unlink:EIO", 1);
    ck_assert_int_eq(slora_fsio_reset(), 0);
    ck_assert_int_eq(put(r, "acme", "x", ONE, NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_registry_delete(r, "acme", "x", NULL, diag, sizeof(diag)), SLORA_EIO);
    ck_assert_ptr_nonnull(strstr(diag, "unlink "));
    unsetenv("SLORA_FAULT");
    slora_fsio_reset();
    /* A failed delete keeps both the entry and its file. */
    assert_version(r, "acme", "x", V_ONE);
    assert_disk("acme", "x", ONE);
    slora_registry_free(r);
}
END_TEST

static void write_raw(const char *rel, const char *contents)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/adapters/%s", state, rel);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(contents, f);
    fclose(f);
}

START_TEST(restore_skips_bad_files)
{
    struct slora_registry *r = open_registry(true);
    char diag[256] = "", path[256];
    ck_assert_int_eq(put(r, "acme", "x", ONE, NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(put(r, "acme", "y", TWO, NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(put(r, "beta", "x", TWO, NULL, diag, sizeof(diag)), 0);
    slora_registry_free(r);

    /* What a crash or an operator may leave behind. */
    write_raw("acme/corrupt.safetensors", "JUNKJUNK");
    write_raw("acme/.x.safetensors.tmp.AbC123", "LORA half");
    write_raw("acme/.y.safetensors.bak", TWO);
    write_raw("acme/Upper.safetensors", ONE);
    write_raw("acme/notes.txt", ONE);
    write_raw("acme/empty.safetensors", "");
    snprintf(path, sizeof(path), "%s/adapters/Bad", state);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    write_raw("Bad/x.safetensors", ONE);
    snprintf(path, sizeof(path), "%s/adapters/acme/unreadable.safetensors", state);
    ck_assert_int_eq(mkdir(path, 0700), 0);

    r = open_registry(true);
    struct slora_registry_restore_report rep;
    ck_assert_int_eq(slora_registry_restore(r, &rep, diag, sizeof(diag)), 0);
    ck_assert_int_eq(rep.restored, 3);
    ck_assert_int_eq(rep.skipped, 6);
    ck_assert_int_eq(rep.removed_temp, 2);
    assert_version(r, "acme", "x", V_ONE);
    assert_version(r, "acme", "y", V_TWO);
    assert_version(r, "beta", "x", V_TWO);
    struct slora_registry_entry *e;
    ck_assert_int_eq(slora_registry_get(r, "acme", "corrupt", &e), SLORA_ENOTFOUND);
    ck_assert_int_eq(slora_registry_get(r, "acme", "empty", &e), SLORA_ENOTFOUND);
    ck_assert_int_eq(slora_registry_get(r, "acme", "x", &e), 0);
    ck_assert_int_eq(e->file_bytes, 8);
    ck_assert_int_gt(e->created, 0);
    void *buf;
    size_t len;
    ck_assert_int_eq(slora_registry_entry_read_file(e, &buf, &len, diag, sizeof(diag)), 0);
    ck_assert_mem_eq(buf, ONE, 8);
    free(buf);
    slora_registry_entry_unref(e);
    const char *left[] = {
        "x.safetensors", "y.safetensors",     "corrupt.safetensors",    "Upper.safetensors",
        "notes.txt",     "empty.safetensors", "unreadable.safetensors", NULL};
    assert_dir_exactly("acme", left);
    struct slora_registry_stats st;
    slora_registry_stats(r, &st);
    ck_assert_int_eq(st.adapters, 3);
    ck_assert_int_eq(st.bytes, 8 + 19 + 19);
    slora_registry_free(r);
}
END_TEST

START_TEST(read_file_of_a_replaced_version)
{
    struct slora_registry *r = open_registry(true);
    char diag[256] = "";
    ck_assert_int_eq(put(r, "acme", "x", ONE, NULL, diag, sizeof(diag)), 0);
    struct slora_registry_entry *old;
    ck_assert_int_eq(slora_registry_get(r, "acme", "x", &old), 0);
    ck_assert_ptr_null(old->file);
    ck_assert_int_eq(put(r, "acme", "x", TWO, NULL, diag, sizeof(diag)), 0);
    void *buf;
    size_t len;
    ck_assert_int_eq(slora_registry_entry_read_file(old, &buf, &len, diag, sizeof(diag)),
                     SLORA_EBUSY);
    ck_assert_str_eq(diag, "acme/x version " V_ONE " was replaced while being read; retry");
    ck_assert_int_eq(slora_registry_delete(r, "acme", "x", NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_registry_entry_read_file(old, &buf, &len, diag, sizeof(diag)),
                     SLORA_EBUSY);
    slora_registry_entry_unref(old);
    slora_registry_free(r);
}
END_TEST

/* ---- real adapters ---------------------------------------------------- */

/* Golden numbers from the fixture headers and hashlib (tests/fixtures). */
static const struct {
    const char *file;
    int64_t bytes, params, dense_bytes;
    const char *version;
} real[] = {
    {"tests/fixtures/lora_wq_wv.safetensors", 19536, 4480, 5 * (64 * 64 + 32 * 64) * 4,
     "5bece041557f0a7c"},
    {"tests/fixtures/lokr.safetensors", 5640, 940, 2 * (64 * 64 + 64 * 64 + 172 * 64) * 4,
     "2187e46154bd68a5"},
};

static struct slora_registry_model stories260k = {
    .shape = {.dim = 64,
              .hidden_dim = 172,
              .n_layers = 5,
              .n_heads = 8,
              .n_kv_heads = 4,
              .vocab_size = 512},
    .n_threads = 1,
};

static struct slora_registry *open_real(void)
{
    slora_adapter_limits_default(&stories260k.limits);
    struct slora_registry_options opt = {
        .state_dir = state,
        .validate = slora_registry_validate_adapter,
        .release = slora_adapter_unref,
        .ctx = &stories260k,
        .max_file_bytes = 1 << 24,
    };
    struct slora_registry *r;
    char diag[256] = "";
    ck_assert_int_eq(slora_registry_new(&opt, &r, diag, sizeof(diag)), 0);
    return r;
}

static void *load_fixture(const char *path, size_t *len)
{
    void *buf = NULL;
    char diag[256] = "";
    ck_assert_msg(slora_fsio_read_file(path, 1 << 24, &buf, len, diag, sizeof(diag)) == 0, "%s",
                  diag);
    return buf;
}

START_TEST(real_adapter_upload_and_restore)
{
    struct slora_registry *r = open_real();
    char diag[512] = "";
    size_t len;
    void *buf = load_fixture(real[_i].file, &len);
    ck_assert_uint_eq(len, (size_t)real[_i].bytes);
    struct slora_registry_entry *e;
    bool created;
    ck_assert_msg(slora_registry_put(r, "acme", "a", NULL, NULL, buf, len, false, &e, &created,
                                     diag, sizeof(diag)) == 0,
                  "%s", diag);
    ck_assert(created);
    ck_assert_str_eq(e->version, real[_i].version);
    ck_assert_int_eq(e->file_bytes, real[_i].bytes);
    ck_assert_int_eq(e->params, real[_i].params);
    ck_assert_int_eq(e->dense_bytes, real[_i].dense_bytes);
    slora_registry_entry_unref(e);
    slora_registry_free(r);

    r = open_real();
    struct slora_registry_restore_report rep;
    ck_assert_int_eq(slora_registry_restore(r, &rep, diag, sizeof(diag)), 0);
    ck_assert_int_eq(rep.restored, 1);
    ck_assert_int_eq(slora_registry_get(r, "acme", "a", &e), 0);
    ck_assert_str_eq(e->version, real[_i].version);
    ck_assert_int_eq(e->params, real[_i].params);
    void *back;
    size_t back_len;
    ck_assert_int_eq(slora_registry_entry_read_file(e, &back, &back_len, diag, sizeof(diag)), 0);
    ck_assert_uint_eq(back_len, len);
    ck_assert_mem_eq(back, buf, len);
    free(back);
    slora_registry_entry_unref(e);
    slora_registry_free(r);
    free(buf);
}
END_TEST

START_TEST(real_adapter_rejections_keep_previous)
{
    struct slora_registry *r = open_real();
    char diag[512] = "";
    size_t len;
    void *buf = load_fixture(real[0].file, &len);
    ck_assert_int_eq(slora_registry_put(r, "acme", "a", NULL, NULL, buf, len, false, NULL, NULL,
                                        diag, sizeof(diag)),
                     0);
    /* Truncated upload: a 422-class error naming the problem, nothing changes. */
    int rc = slora_registry_put(r, "acme", "a", NULL, NULL, buf, len / 2, false, NULL, NULL, diag,
                                sizeof(diag));
    ck_assert_int_eq(slora_err_http_status(rc), 422);
    ck_assert_int_gt(strlen(diag), 0);
    /* A file for another base model. */
    struct slora_registry_model other = stories260k;
    other.shape.dim = 128;
    struct slora_adapter *a = NULL;
    rc = slora_registry_validate_adapter(&other, buf, len, &a, diag, sizeof(diag));
    ck_assert_int_eq(rc, SLORA_EMISMATCH);
    ck_assert_ptr_null(a);
    assert_version(r, "acme", "a", real[0].version);
    assert_disk_len("acme", "a", len);
    free(buf);
    slora_registry_free(r);
}
END_TEST

Suite *slora_registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, name_table, 0, sizeof(names) / sizeof(names[0]));
    tcase_add_test(tc, bad_names_never_reach_the_filesystem);
    tcase_add_loop_test(tc, id_table, 0, sizeof(ids) / sizeof(ids[0]));
    tcase_add_test(tc, etag_table);
    tcase_add_test(tc, lifecycle_memory);
    tcase_add_test(tc, lifecycle_persistent);
    tcase_add_loop_test(tc, longest_names_kept_whole, 0, 2);
    tcase_add_test(tc, validation_error_and_dry_run);
    tcase_add_test(tc, quotas);
    tcase_add_test(tc, parallel_new_names_cannot_overshoot_quota);
    tcase_add_test(tc, preconditions);
    tcase_add_test(tc, busy_name_is_serialized);
    tcase_add_test(tc, readers_keep_their_version);
    tcase_add_test(tc, swap_storm_memory);
    tcase_add_test(tc, swap_storm_persistent);
    tcase_add_test(tc, persist_order_traced);
    tcase_add_test(tc, existing_tenant_dir_synced_once_per_process);
    tcase_add_loop_test(tc, fault_during_replace_keeps_previous, 0,
                        sizeof(faults) / sizeof(faults[0]));
    tcase_add_loop_test(tc, fault_on_new_name_leaves_nothing, 0,
                        sizeof(faults) / sizeof(faults[0]));
    tcase_add_test(tc, fault_creating_tenant_dir);
    tcase_add_test(tc, admit_refusal_keeps_previous);
    tcase_add_test(tc, restore_skips_bad_files);
    tcase_add_test(tc, read_file_of_a_replaced_version);
    suite_add_tcase(s, tc);

    TCase *tr = tcase_create("real");
    tcase_add_checked_fixture(tr, setup, teardown);
    tcase_set_timeout(tr, 60);
    tcase_add_loop_test(tr, real_adapter_upload_and_restore, 0, sizeof(real) / sizeof(real[0]));
    tcase_add_test(tr, real_adapter_rejections_keep_previous);
    suite_add_tcase(s, tr);
    return s;
}
