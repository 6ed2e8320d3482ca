/* tar.c - the bounded ustar reader of tar.h. */
#include <slora/error.h>
#include <slora/tar.h>

#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define OFF_NAME 0
#define OFF_SIZE 124
#define OFF_CHKSUM 148
#define OFF_TYPE 156
#define OFF_MAGIC 257
#define OFF_PREFIX 345

/* Octal field of width w: optional leading spaces, digits, then NUL/space
 * or the end of the field. -1 when malformed or base-256 (high bit). */
static int64_t octal(const uint8_t *f, int w)
{
    int i = 0;
    while (i < w && f[i] == ' ')
        i++;
    if (i == w || f[i] & 0x80)
        return -1;
    int64_t v = 0;
    int digits = 0;
    for (; i < w && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        if (v > (INT64_MAX >> 3))
            return -1;
        v = v * 8 + (f[i] - '0');
    }
    if (!digits)
        return -1;
    for (; i < w; i++)
        if (f[i] != ' ' && f[i] != '\0')
            return -1;
    return v;
}

/* Sum of the header with the checksum field as spaces: unsigned, or the
 * signed sum old tars wrote. */
static bool checksum_ok(const uint8_t *h)
{
    int64_t want = octal(h + OFF_CHKSUM, 8);
    int64_t u = 0, s = 0;
    for (int i = 0; i < SLORA_TAR_BLOCK; i++) {
        bool field = i >= OFF_CHKSUM && i < OFF_CHKSUM + 8;
        u += field ? ' ' : h[i];
        s += field ? ' ' : (int8_t)h[i];
    }
    return want >= 0 && (want == u || want == s);
}

static bool is_ustar(const uint8_t *h)
{
    return !memcmp(h + OFF_MAGIC, "ustar", 5) &&
           (h[OFF_MAGIC + 5] == '\0' || h[OFF_MAGIC + 5] == ' ');
}

bool slora_tar_is_tar(const void *buf, size_t len)
{
    return len >= SLORA_TAR_BLOCK && is_ustar(buf) && checksum_ok(buf);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Copy a NUL-padded field of width w; false when it has no room for it. */
static bool field_str(char *dst, size_t cap, const uint8_t *f, size_t w)
{
    size_t n = strnlen((const char *)f, w);
    if (n >= cap)
        return false;
    memcpy(dst, f, n);
    dst[n] = '\0';
    return true;
}

/* Apply a pax header's records (n bytes at p) to the next member's path
 * and size (-1: not set). Only "path" and "size" matter; other keys are
 * ignored. */
static int parse_pax(const uint8_t *p, size_t n, size_t at, char *path, int64_t *size, char *diag,
                     size_t diag_len)
{
    size_t i = 0;
    while (i < n) {
        if (p[i] == '\0' && all_zero(p + i, n - i))
            break;
        size_t rec = 0, j = i;
        while (j < n && p[j] >= '0' && p[j] <= '9' && rec <= n)
            rec = rec * 10 + (size_t)(p[j++] - '0');
        if (j == i || j >= n || p[j] != ' ' || rec > n - i || rec < j - i + 3 ||
            p[i + rec - 1] != '\n')
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "pax header at byte %zu: malformed record at offset %zu", at, i);
        const char *kv = (const char *)p + j + 1;
        size_t kvlen = i + rec - 1 - (j + 1);
        const char *eq = memchr(kv, '=', kvlen);
        if (!eq || memchr(kv, '\0', kvlen))
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "pax header at byte %zu: malformed record at offset %zu", at, i);
        size_t klen = (size_t)(eq - kv), vlen = kvlen - klen - 1;
        if (klen == 4 && !memcmp(kv, "path", 4)) {
            if (vlen == 0 || vlen > SLORA_TAR_MAX_NAME)
                return slora__diag(diag, diag_len, SLORA_ELIMIT,
                                   "pax header at byte %zu: path of %zu bytes (1..%d)", at, vlen,
                                   SLORA_TAR_MAX_NAME);
            memcpy(path, eq + 1, vlen);
            path[vlen] = '\0';
        } else if (klen == 4 && !memcmp(kv, "size", 4)) {
            int64_t v = 0;
            for (size_t k = 0; k < vlen; k++) {
                if (eq[1 + k] < '0' || eq[1 + k] > '9' || v > (INT64_MAX - 9) / 10)
                    return slora__diag(diag, diag_len, SLORA_EFORMAT,
                                       "pax header at byte %zu: bad size", at);
                v = v * 10 + (eq[1 + k] - '0');
            }
            if (!vlen)
                return slora__diag(diag, diag_len, SLORA_EFORMAT,
                                   "pax header at byte %zu: bad size", at);
            *size = v;
        }
        i += rec;
    }
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int slora_tar_find(const void *buf, size_t len, const char *const *names, int n,
                   struct slora_tar_file *out, char *diag, size_t diag_len)
{
    const uint8_t *b = buf;
    for (int i = 0; i < n; i++)
        out[i] = (struct slora_tar_file){0};
    char pax_path[SLORA_TAR_MAX_NAME + 1] = "";
    int64_t pax_size = -1;
    size_t off = 0;
    for (int members = 0;; members++) {
        if (len - off < SLORA_TAR_BLOCK) {
            if (off == len && !pax_path[0] && pax_size < 0)
                return 0; /* no end-of-archive blocks: accepted */
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "tar: truncated header at byte %zu",
                               off);
        }
        const uint8_t *h = b + off;
        if (all_zero(h, SLORA_TAR_BLOCK))
            return 0;
        if (members == SLORA_TAR_MAX_MEMBERS)
            return slora__diag(diag, diag_len, SLORA_ELIMIT, "tar: more than %d members",
                               SLORA_TAR_MAX_MEMBERS);
        if (!is_ustar(h) || !checksum_ok(h))
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "tar: header at byte %zu: %s", off,
                               is_ustar(h) ? "bad checksum" : "no ustar magic");
        char path[2 * SLORA_TAR_MAX_NAME + 2];
        char prefix[156];
        if (!field_str(path, sizeof(path), h + OFF_NAME, 100) ||
            !field_str(prefix, sizeof(prefix), h + OFF_PREFIX, 155))
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "tar: header at byte %zu: bad name",
                               off);
        /* POSIX ustar: name = prefix "/" name (GNU keeps other data there) */
        if (h[OFF_MAGIC + 5] == '\0' && prefix[0]) {
            size_t pl = strlen(prefix), nl = strlen(path);
            memmove(path + pl + 1, path, nl + 1);
            memcpy(path, prefix, pl);
            path[pl] = '/';
        }
        if (pax_path[0])
            snprintf(path, sizeof(path), "%s", pax_path);
        if (strlen(path) > SLORA_TAR_MAX_NAME)
            return slora__diag(diag, diag_len, SLORA_ELIMIT,
                               "tar: header at byte %zu: name over %d bytes", off,
                               SLORA_TAR_MAX_NAME);
        int64_t size = octal(h + OFF_SIZE, 12);
        if (size < 0)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "tar: member '%s' at byte %zu: bad size field", path, off);
        uint8_t type = h[OFF_TYPE];
        if (type != 'x' && pax_size >= 0)
            size = pax_size;
        size_t data = off + SLORA_TAR_BLOCK;
        if ((uint64_t)size > len - data)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "tar: member '%s' at byte %zu: %lld bytes past the end", path, off,
                               (long long)size);
        size_t padded = (size_t)size + (size_t)(-(uint64_t)size % SLORA_TAR_BLOCK);
        if (padded > len - data)
            padded = len - data; /* the last member's padding may be cut */
        if (type == 'x') {
            if ((uint64_t)size > SLORA_TAR_MAX_PAX)
                return slora__diag(diag, diag_len, SLORA_ELIMIT,
                                   "tar: pax header at byte %zu: %lld bytes (max %u)", off,
                                   (long long)size, SLORA_TAR_MAX_PAX);
            pax_path[0] = '\0';
            pax_size = -1;
            int err = parse_pax(b + data, (size_t)size, off, pax_path, &pax_size, diag, diag_len);
            if (err)
                return err;
            off = data + padded;
            continue;
        }
        pax_path[0] = '\0';
        pax_size = -1;
        if (type == '0' || type == '\0') {
            for (int i = 0; i < n; i++) {
                if (strcmp(base_name(path), names[i]))
                    continue;
                if (out[i].data)
                    return slora__diag(diag, diag_len, SLORA_EFORMAT,
                                       "tar: '%s' twice (second at byte %zu)", names[i], off);
                out[i] = (struct slora_tar_file){b + data, (size_t)size};
            }
        } else if (type != '5') {
            return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED,
                               "tar: member '%s' at byte %zu: type '%c' not supported (regular "
                               "files, directories and pax headers only)",
                               path, off, type >= 0x20 && type < 0x7f ? type : '?');
        }
        off = data + padded;
    }
}
