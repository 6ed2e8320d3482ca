/* check_auth.c - building a tenants table, authenticating Bearer keys (hashes
 * from Python's hashlib), the role x namespace decision matrix, atomic
 * snapshot replacement, and `slorad hash-key`. */
#include <slora/auth.h>
#include <slora/cli.h>
#include <slora/error.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H_ACME1 "3c6e213e0a0cb7253387f529c2838229a2db3928392972d3e0efe81aab739b2e"
#define H_ACME2 "d1e43997b246d30446d328a20c8183ef87d6c229e4e7d6101e6a664c4fe5459b"
#define H_BETA "8fd493b2a681a4810d9fd40526a9de960deb255e7bfbb1c4d509d06d6da6ff5b"
#define H_ADMIN "69a5265506c94c77b787a7d7377b7685a0eff82e33920a71e7ee22cd6154953e"

static struct slora_auth *build(void)
{
    char diag[256] = "";
    struct slora_auth *a = slora_auth_new();
    ck_assert_ptr_nonnull(a);
    const char *acme[] = {H_ACME1, H_ACME2};
    const char *beta[] = {H_BETA};
    struct slora_quota q = {3, 1000};
    ck_assert_int_eq(slora_auth_add_tenant(a, "acme", acme, 2, &q, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_auth_add_tenant(a, "beta", beta, 1, NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_auth_add_admin_key(a, H_ADMIN, diag, sizeof(diag)), 0);
    return a;
}

static const struct {
    const char *header; /* NULL: absent */
    int rc;
    enum slora_role role;
    const char *tenant_or_diag;
} headers[] = {
    {NULL, 0, SLORA_ROLE_ANONYMOUS, ""},
    {"Bearer key-acme-1", 0, SLORA_ROLE_TENANT, "acme"},
    {"Bearer key-acme-2", 0, SLORA_ROLE_TENANT, "acme"},
    {"bearer   key-beta  ", 0, SLORA_ROLE_TENANT, "beta"},
    {"Bearer admin-key", 0, SLORA_ROLE_ADMIN, ""},
    {"Bearer key-acme-3", SLORA_EUNAUTH, 0, "unknown API key"},
    {"Bearer Key-acme-1", SLORA_EUNAUTH, 0, "unknown API key"},
    {"Bearer ", SLORA_EUNAUTH, 0, "expected 'Authorization: Bearer <key>'"},
    {"Bearer", SLORA_EUNAUTH, 0, "expected 'Authorization: Bearer <key>'"},
    {"Basic a2V5LWFjbWUtMQ==", SLORA_EUNAUTH, 0, "expected 'Authorization: Bearer <key>'"},
    {"key-acme-1", SLORA_EUNAUTH, 0, "expected 'Authorization: Bearer <key>'"},
    {"", SLORA_EUNAUTH, 0, "expected 'Authorization: Bearer <key>'"},
    /* The stored hash itself is not a key. */
    {"Bearer " H_ACME1, SLORA_EUNAUTH, 0, "unknown API key"},
};

START_TEST(authenticate_table)
{
    struct slora_auth *a = build();
    struct slora_principal p;
    char diag[256] = "";
    const char *h = headers[_i].header;
    int rc = slora_auth_authenticate(a, h, h ? strlen(h) : 0, &p, diag, sizeof(diag));
    ck_assert_int_eq(rc, headers[_i].rc);
    if (rc == 0) {
        ck_assert_int_eq(p.role, headers[_i].role);
        ck_assert_str_eq(p.tenant, headers[_i].tenant_or_diag);
    } else {
        ck_assert_str_eq(diag, headers[_i].tenant_or_diag);
    }
    slora_auth_unref(a);
}
END_TEST

START_TEST(header_length_is_respected)
{
    struct slora_auth *a = build();
    struct slora_principal p;
    char diag[64];
    /* Only the first len bytes count: "Bearer key-beta" out of a longer buffer. */
    const char *buf = "Bearer key-betaXYZ";
    ck_assert_int_eq(slora_auth_authenticate(a, buf, 15, &p, diag, sizeof(diag)), 0);
    ck_assert_str_eq(p.tenant, "beta");
    ck_assert_int_eq(slora_auth_authenticate(a, buf, 18, &p, diag, sizeof(diag)), SLORA_EUNAUTH);
    slora_auth_unref(a);
}
END_TEST

START_TEST(auth_off_everyone_is_admin)
{
    struct slora_auth *a = slora_auth_new();
    struct slora_principal p;
    char diag[64];
    ck_assert(!slora_auth_is_enabled(a));
    ck_assert_int_eq(slora_auth_authenticate(a, NULL, 0, &p, diag, sizeof(diag)), 0);
    ck_assert_int_eq(p.role, SLORA_ROLE_ADMIN);
    ck_assert_int_eq(slora_auth_authenticate(a, "Bearer junk", 11, &p, diag, sizeof(diag)), 0);
    ck_assert_int_eq(p.role, SLORA_ROLE_ADMIN);
    ck_assert_int_eq(slora_auth_check_tenant(&p, "anyone"), 0);
    ck_assert_int_eq(slora_auth_check_admin(&p), 0);
    slora_auth_unref(a);
    /* One admin key alone switches auth on. */
    a = slora_auth_new();
    ck_assert_int_eq(slora_auth_add_admin_key(a, H_ADMIN, diag, sizeof(diag)), 0);
    ck_assert(slora_auth_is_enabled(a));
    ck_assert_int_eq(slora_auth_authenticate(a, NULL, 0, &p, diag, sizeof(diag)), 0);
    ck_assert_int_eq(p.role, SLORA_ROLE_ANONYMOUS);
    slora_auth_unref(a);
}
END_TEST

START_TEST(decision_matrix)
{
    struct slora_principal anon = {SLORA_ROLE_ANONYMOUS, ""};
    struct slora_principal acme = {SLORA_ROLE_TENANT, "acme"};
    struct slora_principal admin = {SLORA_ROLE_ADMIN, ""};
    ck_assert_int_eq(slora_auth_check_tenant(&anon, "acme"), SLORA_EUNAUTH);
    ck_assert_int_eq(slora_auth_check_tenant(&acme, "acme"), 0);
    ck_assert_int_eq(slora_auth_check_tenant(&acme, "beta"), SLORA_ENOTFOUND);
    ck_assert_int_eq(slora_auth_check_tenant(&acme, "acm"), SLORA_ENOTFOUND);
    ck_assert_int_eq(slora_auth_check_tenant(&acme, "acmex"), SLORA_ENOTFOUND);
    ck_assert_int_eq(slora_auth_check_tenant(&admin, "beta"), 0);
    ck_assert_int_eq(slora_auth_check_any(&anon), SLORA_EUNAUTH);
    ck_assert_int_eq(slora_auth_check_any(&acme), 0);
    ck_assert_int_eq(slora_auth_check_any(&admin), 0);
    ck_assert_int_eq(slora_auth_check_admin(&anon), SLORA_EUNAUTH);
    ck_assert_int_eq(slora_auth_check_admin(&acme), SLORA_EFORBIDDEN);
    ck_assert_int_eq(slora_auth_check_admin(&admin), 0);
    ck_assert_str_eq(slora_auth_list_filter(&acme), "acme");
    ck_assert_ptr_null(slora_auth_list_filter(&admin));
}
END_TEST

static const struct {
    const char *name;
    const char *key;
    const char *fragment;
} bad_tenants[] = {
    {"acme", H_BETA, "tenant 'acme' is listed twice"},
    {"Gamma", H_BETA "", "tenant name must start with"},
    {"gamma", H_ACME2, "key_sha256[0] is already a key of acme"},
    {"gamma", H_ADMIN, "key_sha256[0] is already a key of the admin"},
    {"gamma", "abc", "key_sha256[0] is not 64 hex digits"},
    {"gamma", H_BETA "0", "key_sha256[0] is not 64 hex digits"},
    {"gamma", NULL, "tenant 'gamma' has no key_sha256"},
    {"", H_BETA, "tenant name is empty"},
};

START_TEST(bad_tenant_table)
{
    char diag[256] = "";
    struct slora_auth *a = slora_auth_new();
    const char *acme[] = {H_ACME1, H_ACME2};
    ck_assert_int_eq(slora_auth_add_tenant(a, "acme", acme, 2, NULL, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_auth_add_admin_key(a, H_ADMIN, diag, sizeof(diag)), 0);
    const char *keys[] = {bad_tenants[_i].key};
    int n = bad_tenants[_i].key ? 1 : 0;
    ck_assert_int_eq(
        slora_auth_add_tenant(a, bad_tenants[_i].name, keys, n, NULL, diag, sizeof(diag)),
        SLORA_EINVAL);
    ck_assert_msg(strstr(diag, bad_tenants[_i].fragment), "diag '%s'", diag);
    ck_assert_int_eq(a->n_tenants, 1);
    slora_auth_unref(a);
}
END_TEST

START_TEST(same_key_twice_in_one_tenant)
{
    char diag[256] = "";
    struct slora_auth *a = slora_auth_new();
    const char *keys[] = {H_ACME1, H_ACME1};
    ck_assert_int_eq(slora_auth_add_tenant(a, "acme", keys, 2, NULL, diag, sizeof(diag)),
                     SLORA_EINVAL);
    ck_assert_str_eq(diag, "tenant 'acme': key_sha256[1] is already a key of acme");
    ck_assert_int_eq(slora_auth_add_admin_key(a, "xyz", diag, sizeof(diag)), SLORA_EINVAL);
    ck_assert_str_eq(diag, "admin_key_sha256 is not 64 hex digits (use `slorad hash-key`)");
    ck_assert_int_eq(slora_auth_add_admin_key(a, H_ADMIN, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_auth_add_admin_key(a, H_ADMIN, diag, sizeof(diag)), SLORA_EINVAL);
    ck_assert_str_eq(diag, "admin_key_sha256 is already a key of the admin");
    slora_auth_unref(a);
}
END_TEST

START_TEST(quota_lookup)
{
    struct slora_auth *a = build();
    struct slora_quota q;
    slora_auth_quota(a, "acme", &q);
    ck_assert_int_eq(q.max_adapters, 3);
    ck_assert_int_eq(q.max_bytes, 1000);
    slora_auth_quota(a, "beta", &q);
    ck_assert_int_eq(q.max_adapters, -1);
    ck_assert_int_eq(q.max_bytes, -1);
    slora_auth_quota(a, "nobody", &q);
    ck_assert_int_eq(q.max_adapters, -1);
    ck_assert_ptr_null(slora_auth_find_tenant(a, "nobody"));
    ck_assert_str_eq(slora_auth_find_tenant(a, "beta")->name, "beta");
    slora_auth_unref(a);
}
END_TEST

START_TEST(store_replace_keeps_old_snapshot_alive)
{
    char diag[128];
    struct slora_auth_store *s = slora_auth_store_new(build());
    struct slora_auth *held = slora_auth_store_get(s);
    /* Reload: beta's key rotated away, a new tenant added. */
    struct slora_auth *next = slora_auth_new();
    const char *gamma[] = {H_BETA};
    ck_assert_int_eq(slora_auth_add_tenant(next, "gamma", gamma, 1, NULL, diag, sizeof(diag)), 0);
    slora_auth_store_replace(s, next);

    struct slora_principal p;
    struct slora_auth *cur = slora_auth_store_get(s);
    ck_assert_int_eq(slora_auth_authenticate(cur, "Bearer key-beta", 15, &p, diag, sizeof(diag)),
                     0);
    ck_assert_str_eq(p.tenant, "gamma");
    ck_assert_int_eq(slora_auth_authenticate(cur, "Bearer admin-key", 16, &p, diag, sizeof(diag)),
                     SLORA_EUNAUTH);
    /* A request that started before the reload still sees its snapshot. */
    ck_assert_int_eq(slora_auth_authenticate(held, "Bearer key-beta", 15, &p, diag, sizeof(diag)),
                     0);
    ck_assert_str_eq(p.tenant, "beta");
    ck_assert_int_eq(held->refcount, 1);
    ck_assert_int_eq(cur->refcount, 2);
    slora_auth_unref(held);
    slora_auth_unref(cur);
    slora_auth_store_free(s);
    slora_auth_store_free(NULL);
    slora_auth_unref(NULL);
}
END_TEST

static const struct {
    const char *in;
    int status;
    const char *out;
} hash_key_cases[] = {
    {"secret\n", 0, "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n"},
    {"secret", 0, "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n"},
    {"secret\r\n", 0, "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n"},
    {"key-acme-1\n", 0, H_ACME1 "\n"},
    {"\n", 1, ""},
    {"", 1, ""},
};

START_TEST(hash_key_command)
{
    char in_path[] = "/tmp/slora-hk-in-XXXXXX", out_path[] = "/tmp/slora-hk-out-XXXXXX";
    int in = mkstemp(in_path), out = mkstemp(out_path);
    ck_assert_int_ge(in, 0);
    ck_assert_int_ge(out, 0);
    size_t n = strlen(hash_key_cases[_i].in);
    ck_assert_int_eq(write(in, hash_key_cases[_i].in, n), (ssize_t)n);
    ck_assert_int_eq(lseek(in, 0, SEEK_SET), 0);
    /* Swap the descriptors under stdin/stdout, restored after (CK_FORK=no). */
    int saved_in = dup(0), saved_out = dup(1);
    fflush(stdout);
    ck_assert_int_eq(dup2(in, 0), 0);
    ck_assert_int_eq(dup2(out, 1), 1);
    clearerr(stdin);
    char *argv[] = {"hash-key", NULL};
    int status = slora_cmd_hash_key(1, argv);
    fflush(stdout);
    dup2(saved_in, 0);
    dup2(saved_out, 1);
    close(saved_in);
    close(saved_out);
    ck_assert_int_eq(status, hash_key_cases[_i].status);
    char got[256] = "";
    ssize_t r = pread(out, got, sizeof(got) - 1, 0);
    ck_assert_int_ge(r, 0);
    ck_assert_str_eq(got, hash_key_cases[_i].out);
    close(in);
    close(out);
    unlink(in_path);
    unlink(out_path);
}
END_TEST

Suite *slora_auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, authenticate_table, 0, sizeof(headers) / sizeof(headers[0]));
    tcase_add_test(tc, header_length_is_respected);
    tcase_add_test(tc, auth_off_everyone_is_admin);
    tcase_add_test(tc, decision_matrix);
    tcase_add_loop_test(tc, bad_tenant_table, 0, sizeof(bad_tenants) / sizeof(bad_tenants[0]));
    tcase_add_test(tc, same_key_twice_in_one_tenant);
    tcase_add_test(tc, quota_lookup);
    tcase_add_test(tc, store_replace_keeps_old_snapshot_alive);
    tcase_add_loop_test(tc, hash_key_command, 0,
                        sizeof(hash_key_cases) / sizeof(hash_key_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}
