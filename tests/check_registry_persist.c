/* check_registry_persist.c - the adapter registry with a stand-in
 * validator (registry_util.h), continued from check_registry.c: hot swaps
 * and references (readers keep their version, swap storms), persistence
 * (the fsio call order, disk faults keeping the previous version, refused
 * admits, restore), and uploads of real adapter fixtures. */
#include "registry_util.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>

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

Suite *slora_registry_persist_suite(void)
{
    Suite *s = suite_create("registry_persist");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
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
