/* check_tar.c - the bounded ustar reader: finds the wanted members of
 * POSIX, GNU and pax (Python tarfile) archives, and refuses every
 * malformed or unsupported archive with its code and a message naming the
 * member and byte offset. Archives are built here, header by header. */
#include <slora/error.h>
#include <slora/tar.h>

#include <check.h>
#include <stdio.h>
#include <string.h>

#define CAP (80 * 1024)

struct tarb {
    unsigned char buf[CAP];
    size_t len;
};

static void set_checksum(unsigned char *h)
{
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* Append a member: gnu selects the "ustar  " magic; size_field overrides
 * the header's size (-1: the data's). Returns the header's offset. */
static size_t add(struct tarb *t, const char *name, char type, const void *data, size_t n, bool gnu,
                  long size_field)
{
    ck_assert_uint_le(t->len + 512 + n + 512, CAP);
    size_t at = t->len;
    unsigned char *h = t->buf + at;
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    memcpy(h + 100, "0000644", 8);
    snprintf((char *)h + 124, 12, "%011lo", (unsigned long)(size_field < 0 ? (long)n : size_field));
    h[156] = (unsigned char)type;
    memcpy(h + 257,
           gnu ? "ustar  "
               : "ustar\0"
                 "00",
           8);
    set_checksum(h);
    memcpy(h + 512, data, n);
    t->len += 512 + (n + 511) / 512 * 512;
    memset(t->buf + at + 512 + n, 0, (n + 511) / 512 * 512 - n);
    return at;
}

static void end(struct tarb *t)
{
    memset(t->buf + t->len, 0, 1024);
    t->len += 1024;
}

static const char *const names[2] = {"adapter_config.json", "adapter_model.safetensors"};

START_TEST(finds_members)
{
    static struct tarb t;
    t.len = 0;
    add(&t, "peft/", '5', "", 0, false, -1);
    add(&t, "peft/README.md", '0', "hello", 5, false, -1);
    add(&t, "peft/adapter_config.json", '0', "{\"r\": 8}", 8, false, -1);
    add(&t, "./adapter_model.safetensors", '\0', "WEIGHTS", 7, true, -1);
    end(&t);
    ck_assert(slora_tar_is_tar(t.buf, t.len));
    struct slora_tar_file f[2];
    char diag[256];
    ck_assert_int_eq(slora_tar_find(t.buf, t.len, names, 2, f, diag, sizeof(diag)), 0);
    ck_assert_uint_eq(f[0].size, 8);
    ck_assert(!memcmp(f[0].data, "{\"r\": 8}", 8));
    ck_assert_uint_eq(f[1].size, 7);
    ck_assert(!memcmp(f[1].data, "WEIGHTS", 7));
    /* no end-of-archive blocks: accepted; a wanted name absent: data NULL */
    ck_assert_int_eq(slora_tar_find(t.buf, t.len - 1024, names, 2, f, diag, sizeof(diag)), 0);
    t.len = 0;
    add(&t, "adapter_config.json", '0', "{}", 2, false, -1);
    ck_assert_int_eq(slora_tar_find(t.buf, t.len, names, 2, f, diag, sizeof(diag)), 0);
    ck_assert_ptr_nonnull(f[0].data);
    ck_assert_ptr_null(f[1].data);
}
END_TEST

START_TEST(pax_and_prefix)
{
    static struct tarb t;
    t.len = 0;
    /* pax: "path" renames and "size" resizes the next member (its header says 0) */
    const char rec[] = "30 mtime=1700000000.123456789\n"
                       "43 path=deep/dir/adapter_model.safetensors\n"
                       "11 size=12\n";
    add(&t, "PaxHeader/x", 'x', rec, sizeof(rec) - 1, false, -1);
    size_t at = add(&t, "short", '0', "0123456789ab", 12, false, 0);
    (void)at;
    /* POSIX prefix field: name = prefix "/" name */
    size_t h = add(&t, "adapter_config.json", '0', "{}", 2, false, -1);
    memcpy(t.buf + h + 345, "some/dir", 8);
    set_checksum(t.buf + h);
    end(&t);
    struct slora_tar_file f[2];
    char diag[256];
    ck_assert_int_eq(slora_tar_find(t.buf, t.len, names, 2, f, diag, sizeof(diag)), 0);
    ck_assert_uint_eq(f[1].size, 12);
    ck_assert(!memcmp(f[1].data, "0123456789ab", 12));
    ck_assert_uint_eq(f[0].size, 2);
}
END_TEST

START_TEST(detects)
{
    static struct tarb t;
    t.len = 0;
    add(&t, "a", '0', "x", 1, false, -1);
    ck_assert(slora_tar_is_tar(t.buf, t.len));
    ck_assert(!slora_tar_is_tar(t.buf, 511));
    t.buf[0] ^= 1; /* checksum no longer matches */
    ck_assert(!slora_tar_is_tar(t.buf, t.len));
    unsigned char st[600] = {16, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    memcpy(st + 257, "ustar", 5); /* magic alone is not enough */
    ck_assert(!slora_tar_is_tar(st, sizeof(st)));
}
END_TEST

enum corrupt {
    C_CHECKSUM,
    C_MAGIC,
    C_PAST_END,
    C_SYMLINK,
    C_LONGNAME,
    C_GLOBAL,
    C_BASE256,
    C_TWICE,
    C_MEMBERS,
    C_PAX_RECORD,
    C_PAX_BIG,
    C_PAX_PATH,
    C_TRUNCATED,
    C_SIZE_TEXT,
};

struct bad {
    enum corrupt c;
    int want;
    const char *frag;
};

static const struct bad bads[] = {
    {C_CHECKSUM, SLORA_EFORMAT, "tar: header at byte 1024: bad checksum"},
    {C_MAGIC, SLORA_EFORMAT, "tar: header at byte 1024: no ustar magic"},
    {C_PAST_END, SLORA_EFORMAT, "tar: member 'b' at byte 1024: 100000 bytes past the end"},
    {C_SYMLINK, SLORA_EUNSUPPORTED,
     "member 'adapter_config.json' at byte 1024: type '2' not supported"},
    {C_LONGNAME, SLORA_EUNSUPPORTED, "type 'L' not supported"},
    {C_GLOBAL, SLORA_EUNSUPPORTED, "type 'g' not supported"},
    {C_BASE256, SLORA_EFORMAT, "tar: member 'b' at byte 1024: bad size field"},
    {C_TWICE, SLORA_EFORMAT, "tar: 'adapter_config.json' twice (second at byte 1024)"},
    {C_MEMBERS, SLORA_ELIMIT, "tar: more than 64 members"},
    {C_PAX_RECORD, SLORA_EFORMAT, "pax header at byte 1024: malformed record at offset 0"},
    {C_PAX_BIG, SLORA_ELIMIT, "tar: pax header at byte 1024: 70000 bytes (max 65536)"},
    {C_PAX_PATH, SLORA_ELIMIT, "pax header at byte 1024: path of 300 bytes (1..255)"},
    {C_TRUNCATED, SLORA_EFORMAT, "tar: truncated header at byte 2048"},
    {C_SIZE_TEXT, SLORA_EFORMAT, "tar: member 'b' at byte 1024: bad size field"},
};

START_TEST(rejects)
{
    const struct bad *b = &bads[_i];
    static struct tarb t;
    static char big[70000];
    t.len = 0;
    add(&t, "adapter_config.json", '0', "{}", 2, false, -1);
    switch (b->c) {
    case C_CHECKSUM:
        t.buf[add(&t, "b", '0', "x", 1, false, -1) + 5] ^= 1;
        break;
    case C_MAGIC: {
        size_t h = add(&t, "b", '0', "x", 1, false, -1);
        memcpy(t.buf + h + 257, "posix", 5);
        set_checksum(t.buf + h);
        break;
    }
    case C_PAST_END:
        add(&t, "b", '0', "x", 1, false, 100000);
        break;
    case C_SYMLINK:
        add(&t, "adapter_config.json", '2', "", 0, false, -1);
        break;
    case C_LONGNAME:
        add(&t, "././@LongLink", 'L', "adapter_model.safetensors", 25, true, -1);
        break;
    case C_GLOBAL:
        add(&t, "pax_global_header", 'g', "20 path=evil/other\n", 19, false, -1);
        break;
    case C_BASE256: {
        size_t h = add(&t, "b", '0', "x", 1, true, -1);
        t.buf[h + 124] = 0x80;
        set_checksum(t.buf + h);
        break;
    }
    case C_TWICE:
        add(&t, "other/adapter_config.json", '0', "{}", 2, false, -1);
        break;
    case C_MEMBERS:
        for (int i = 0; i < 64; i++)
            add(&t, "d/", '5', "", 0, false, -1);
        break;
    case C_PAX_RECORD:
        add(&t, "PaxHeader/b", 'x', "99 path=b\n", 10, false, -1);
        break;
    case C_PAX_BIG:
        memset(big, '\n', sizeof(big));
        add(&t, "PaxHeader/b", 'x', big, sizeof(big), false, -1);
        break;
    case C_PAX_PATH: {
        static char rec[400];
        int n = snprintf(rec, sizeof(rec), "310 path=");
        memset(rec + n, 'a', 300);
        rec[n + 300] = '\n';
        add(&t, "PaxHeader/b", 'x', rec, (size_t)n + 301, false, -1);
        break;
    }
    case C_TRUNCATED:
        add(&t, "b", '0', "x", 1, false, -1);
        t.len += 100; /* a partial header block */
        break;
    case C_SIZE_TEXT: {
        size_t h = add(&t, "b", '0', "x", 1, false, -1);
        memcpy(t.buf + h + 124, "12x", 3);
        set_checksum(t.buf + h);
        break;
    }
    }
    if (b->c != C_TRUNCATED)
        end(&t);
    struct slora_tar_file f[2];
    char diag[256] = "";
    int rc = slora_tar_find(t.buf, t.len, names, 2, f, diag, sizeof(diag));
    ck_assert_msg(rc == b->want, "case %d: got %d (%s)", b->c, rc, diag);
    ck_assert_msg(strstr(diag, b->frag), "case %d: diag '%s' lacks '%s'", b->c, diag, b->frag);
}
END_TEST

Suite *slora_tar_suite(void)
{
    Suite *s = suite_create("tar");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, finds_members);
    tcase_add_test(tc, pax_and_prefix);
    tcase_add_test(tc, detects);
    tcase_add_loop_test(tc, rejects, 0, sizeof(bads) / sizeof(bads[0]));
    suite_add_tcase(s, tc);
    return s;
}
