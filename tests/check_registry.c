/* check_registry.c - the adapter registry with a stand-in validator (the
 * registry's concerns are names, quotas, preconditions, swaps, refcounts
 * and persistence; real adapter validation is the adapter suite's): names
 * and ids, the basic operations, quotas and preconditions. Hot swaps,
 * persistence, disk faults and real adapters: check_registry_persist.c.
 * The stand-in and the fixture: registry_util.h. */
#include "registry_util.h"

#include <dirent.h>
#include <sys/stat.h>

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
    suite_add_tcase(s, tc);
    return s;
}
