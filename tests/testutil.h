/* testutil.h - helpers shared by the model test suites: scratch files under
 * /tmp, whole-file reads and writes, loading a model. Test code only. */
#ifndef SLORA_TESTUTIL_H
#define SLORA_TESTUTIL_H

#include <slora/model.h>

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* max|a - b| / max|b|: the project's tolerance rule for logits. */
static inline double test_rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        mb = fmax(mb, fabs((double)b[i]));
    }
    return d / mb;
}

/* A fresh scratch path /tmp/slora-<tag>-XXXXXX (the file exists, empty). */
static inline char *test_tmp_path(const char *tag)
{
    char *p = malloc(64);
    ck_assert_ptr_nonnull(p);
    snprintf(p, 64, "/tmp/slora-%s-XXXXXX", tag);
    int fd = mkstemp(p);
    ck_assert_int_ge(fd, 0);
    close(fd);
    return p;
}

static inline uint8_t *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static inline void test_write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* Byte offset of the first occurrence of needle in buf. */
static inline size_t test_find(const uint8_t *buf, size_t len, const void *needle, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(buf + i, needle, n))
            return i;
    ck_abort_msg("pattern not found");
    return 0;
}

static inline struct slora_model *test_load_model(const char *path)
{
    struct slora_model *m;
    char diag[512];
    int rc = slora_model_load(path, NULL, &m, diag, sizeof(diag));
    ck_assert_msg(rc == 0, "%s", diag);
    return m;
}

#endif
