/* check_fsio.c - durable file replacement: the syscall order seen through
 * SLORA_FSIO_TRACE, every injected fault at every step (right code, reason
 * in the message, previous contents intact, no temporary file left), the
 * nth-call form, and whole-file reads. */
#include <slora/error.h>
#include <slora/fsio.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char trace[96];
static char target[96];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/slora-fsio-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(trace, sizeof(trace), "%s.trace", dir);
    snprintf(target, sizeof(target), "%s/x.safetensors", dir);
    unsetenv("SLORA_FAULT");
    unsetenv("SLORA_FSIO_TRACE");
    slora_fsio_reset();
}

static void teardown(void)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, trace);
    ck_assert_int_eq(system(cmd), 0);
    unsetenv("SLORA_FAULT");
    unsetenv("SLORA_FSIO_TRACE");
    slora_fsio_reset();
}

static void set_env(const char *fault, bool with_trace)
{
    if (fault)
        setenv("SLORA_FAULT", fault, 1);
    else
        unsetenv("SLORA_FAULT");
    if (with_trace)
        setenv("SLORA_FSIO_TRACE", trace, 1);
    else
        unsetenv("SLORA_FSIO_TRACE");
    ck_assert_int_eq(slora_fsio_reset(), 0);
}

/* The file's bytes, NUL-terminated (the trace is parsed as a string). */
static char *slurp(const char *path, size_t *len)
{
    void *buf = NULL;
    char diag[256];
    ck_assert_int_eq(slora_fsio_read_file(path, 1 << 20, &buf, len, diag, sizeof(diag)), 0);
    char *s = realloc(buf, *len + 1);
    ck_assert_ptr_nonnull(s);
    s[*len] = '\0';
    return s;
}

/* Names in dir other than . and .., joined by spaces in readdir order sorted. */
static int count_entries(const char *only_name)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (only_name)
            ck_assert_str_eq(de->d_name, only_name);
        n++;
    }
    closedir(d);
    return n;
}

START_TEST(write_order_new_and_replace)
{
    char diag[256];
    set_env(NULL, true);
    ck_assert_int_eq(slora_fsio_write_file(target, "one", 3, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_fsio_write_file(target, "second", 6, diag, sizeof(diag)), 0);
    unsetenv("SLORA_FSIO_TRACE");
    slora_fsio_reset();

    size_t len;
    char *t = slurp(trace, &len);
    char *lines[16];
    int n = 0;
    for (char *save = NULL, *l = strtok_r(t, "\n", &save); l && n < 16;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    ck_assert_int_eq(n, 11);
    /* The temp file name is random: take it from the first line. */
    char tmp[256], want[1024];
    ck_assert_int_eq(sscanf(lines[0], "open %s ok", tmp), 1);
    snprintf(want, sizeof(want), "%s/.x.safetensors.tmp.", dir);
    ck_assert_int_eq(strncmp(tmp, want, strlen(want)), 0);
    const char *fmt1[5] = {"open %s ok", "write %s ok", "fsync %s ok", "rename %s %s ok",
                           "dirsync %s ok"};
    for (int i = 0; i < 5; i++) {
        if (i < 3)
            snprintf(want, sizeof(want), fmt1[i], tmp);
        else if (i == 3)
            snprintf(want, sizeof(want), fmt1[i], tmp, target);
        else
            snprintf(want, sizeof(want), fmt1[i], dir);
        ck_assert_str_eq(lines[i], want);
    }
    /* Replacement: the previous version is linked aside before the rename. */
    ck_assert_int_eq(sscanf(lines[5], "open %s ok", tmp), 1);
    snprintf(want, sizeof(want), "write %s ok", tmp);
    ck_assert_str_eq(lines[6], want);
    snprintf(want, sizeof(want), "fsync %s ok", tmp);
    ck_assert_str_eq(lines[7], want);
    snprintf(want, sizeof(want), "link %s %s/.x.safetensors.bak ok", target, dir);
    ck_assert_str_eq(lines[8], want);
    snprintf(want, sizeof(want), "rename %s %s ok", tmp, target);
    ck_assert_str_eq(lines[9], want);
    snprintf(want, sizeof(want), "dirsync %s ok", dir);
    ck_assert_str_eq(lines[10], want);
    free(t);

    char *c = slurp(target, &len);
    ck_assert_uint_eq(len, 6);
    ck_assert_mem_eq(c, "second", 6);
    free(c);
    ck_assert_int_eq(count_entries("x.safetensors"), 1);
}
END_TEST

static const struct {
    const char *fault;
    int err;
    const char *fragment;
} faults[] = {
    {"open:ENOSPC", SLORA_ENOSPC, "open "},
    {"open:EACCES", SLORA_EIO, "Permission denied"},
    {"write:ENOSPC", SLORA_ENOSPC, "write "},
    {"write:EDQUOT", SLORA_ENOSPC, "quota"},
    {"write:EIO", SLORA_EIO, "Input/output error"},
    {"fsync:EIO", SLORA_EIO, "fsync "},
    {"fsync:ENOSPC", SLORA_ENOSPC, "No space left on device"},
    {"link:EIO", SLORA_EIO, "link "},
    {"rename:ENOSPC", SLORA_ENOSPC, "rename "},
    {"rename:EIO", SLORA_EIO, "rename "},
    {"dirsync:EIO", SLORA_EIO, "dirsync "},
    {"dirsync:ENOSPC", SLORA_ENOSPC, "dirsync "},
};

START_TEST(fault_keeps_previous_version)
{
    char diag[256] = "";
    ck_assert_int_eq(slora_fsio_write_file(target, "old contents", 12, diag, sizeof(diag)), 0);
    set_env(faults[_i].fault, false);
    ck_assert_int_eq(slora_fsio_write_file(target, "new", 3, diag, sizeof(diag)), faults[_i].err);
    ck_assert_msg(strstr(diag, faults[_i].fragment), "diag '%s' lacks '%s'", diag,
                  faults[_i].fragment);
    set_env(NULL, false);
    size_t len;
    char *c = slurp(target, &len);
    ck_assert_uint_eq(len, 12);
    ck_assert_mem_eq(c, "old contents", 12);
    free(c);
    ck_assert_int_eq(count_entries("x.safetensors"), 1);
}
END_TEST

START_TEST(fault_on_new_file_leaves_nothing)
{
    char diag[256] = "";
    set_env(faults[_i].fault, false);
    int rc = slora_fsio_write_file(target, "new", 3, diag, sizeof(diag));
    set_env(NULL, false);
    /* No previous version: the link step never happens. */
    if (!strncmp(faults[_i].fault, "link", 4)) {
        ck_assert_int_eq(rc, 0);
        return;
    }
    ck_assert_int_eq(rc, faults[_i].err);
    ck_assert_int_eq(count_entries(NULL), 0);
}
END_TEST

START_TEST(nth_call_only)
{
    char diag[256] = "";
    set_env("write:EIO:2", false);
    ck_assert_int_eq(slora_fsio_write_file(target, "a", 1, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_fsio_write_file(target, "b", 1, diag, sizeof(diag)), SLORA_EIO);
    ck_assert_int_eq(slora_fsio_write_file(target, "c", 1, diag, sizeof(diag)), 0);
    size_t len;
    char *c = slurp(target, &len);
    ck_assert_mem_eq(c, "c", 1);
    free(c);
}
END_TEST

/* slora_fsio_write_cb: writes ctx (a string), or fails with ENOSPC halfway
 * when ctx is NULL. */
static int put_text(FILE *f, void *ctx)
{
    if (!ctx) {
        fputs("half", f);
        errno = ENOSPC;
        return -1;
    }
    return fputs(ctx, f) < 0 ? -1 : 0;
}

START_TEST(stream_writer)
{
    char diag[256] = "";
    set_env(NULL, true);
    ck_assert_int_eq(slora_fsio_write(target, put_text, "streamed", diag, sizeof(diag)), 0);
    set_env(NULL, false);
    size_t len;
    char *c = slurp(trace, &len), tmp[256], want[2048];
    /* The same durable sequence as slora_fsio_write_file. */
    ck_assert_int_eq(sscanf(c, "open %255s ok", tmp), 1);
    snprintf(want, sizeof(want), "open %s ok\nwrite %s ok\nfsync %s ok\nrename %s %s ok\n"
             "dirsync %s ok\n", tmp, tmp, tmp, tmp, target, dir);
    ck_assert_str_eq(c, want);
    free(c);

    ck_assert_int_eq(slora_fsio_write(target, put_text, NULL, diag, sizeof(diag)), SLORA_ENOSPC);
    ck_assert_ptr_nonnull(strstr(diag, "No space left on device"));
    set_env("write:EIO", false);
    ck_assert_int_eq(slora_fsio_write(target, put_text, "new", diag, sizeof(diag)), SLORA_EIO);
    set_env(NULL, false);
    c = slurp(target, &len);
    ck_assert_uint_eq(len, 8);
    ck_assert_mem_eq(c, "streamed", 8);
    free(c);
    ck_assert_int_eq(count_entries("x.safetensors"), 1);
}
END_TEST

static const char *const bad_specs[] = {
    "write",        "write:ENOSPC:0", "write:ENOSPC:x", "frob:EIO",
    "write:EWHAT",  "write:EIO:1:2",  "write:EIO,",     ",",
    "write:EIO:-1",
};

START_TEST(malformed_spec_is_inert)
{
    char diag[256];
    setenv("SLORA_FAULT", bad_specs[_i], 1);
    ck_assert_int_eq(slora_fsio_reset(), SLORA_EINVAL);
    ck_assert_int_eq(slora_fsio_write_file(target, "a", 1, diag, sizeof(diag)), 0);
}
END_TEST

START_TEST(remove_and_read)
{
    char diag[256] = "";
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(slora_fsio_read_file(target, 10, &buf, &len, diag, sizeof(diag)),
                     SLORA_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(diag, "No such file"));
    ck_assert_int_eq(slora_fsio_write_file(target, "0123456789A", 11, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_fsio_read_file(target, 10, &buf, &len, diag, sizeof(diag)),
                     SLORA_ETOOLARGE);
    ck_assert_ptr_nonnull(strstr(diag, "11 bytes exceed the limit of 10"));
    ck_assert_int_eq(slora_fsio_read_file(dir, 10, &buf, &len, diag, sizeof(diag)), SLORA_EIO);
    set_env("read:EIO", false);
    ck_assert_int_eq(slora_fsio_read_file(target, 100, &buf, &len, diag, sizeof(diag)), SLORA_EIO);
    set_env("unlink:EIO", true);
    ck_assert_int_eq(slora_fsio_remove_file(target, diag, sizeof(diag)), SLORA_EIO);
    ck_assert_int_eq(count_entries("x.safetensors"), 1);
    set_env(NULL, true);
    ck_assert_int_eq(slora_fsio_remove_file(target, diag, sizeof(diag)), 0);
    ck_assert_int_eq(count_entries(NULL), 0);
    ck_assert_int_eq(slora_fsio_remove_file(target, diag, sizeof(diag)), SLORA_ENOTFOUND);
    set_env(NULL, false);
    char *t = slurp(trace, &len);
    char want[1024];
    snprintf(want, sizeof(want), "unlink %s EIO\nunlink %s ok\ndirsync %s ok\nunlink %s ENOENT\n",
             target, target, dir, target);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_mem_eq(t, want, len);
    free(t);
    char sub[96];
    snprintf(sub, sizeof(sub), "%s/d", dir);
    ck_assert_int_eq(slora_fsio_mkdir(sub, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_fsio_mkdir(sub, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_fsio_write_file(target, "f", 1, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_fsio_mkdir(target, diag, sizeof(diag)), SLORA_EIO);
    ck_assert_ptr_nonnull(strstr(diag, "File exists"));
}
END_TEST

Suite *slora_fsio_suite(void)
{
    Suite *s = suite_create("fsio");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, write_order_new_and_replace);
    tcase_add_loop_test(tc, fault_keeps_previous_version, 0, sizeof(faults) / sizeof(faults[0]));
    tcase_add_loop_test(tc, fault_on_new_file_leaves_nothing, 0,
                        sizeof(faults) / sizeof(faults[0]));
    tcase_add_test(tc, nth_call_only);
    tcase_add_test(tc, stream_writer);
    tcase_add_loop_test(tc, malformed_spec_is_inert, 0, sizeof(bad_specs) / sizeof(bad_specs[0]));
    tcase_add_test(tc, remove_and_read);
    suite_add_tcase(s, tc);
    return s;
}
