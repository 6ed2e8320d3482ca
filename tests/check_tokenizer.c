/* check_tokenizer.c - the llama2.c tokenizer (tok*.bin) against run.c's
 * algorithm, and the interface every tokenizer shares.
 *
 * Expected ids come from tests/ref/tok_ref.py (an independent Python
 * implementation of run.c's encode) run on models/tok512.bin:
 *   /usr/bin/python3 tests/ref/tok_ref.py models/tok512.bin "TEXT"
 * Corrupted tokenizer files are derived from tok512.bin at test time.
 */
#include "tok_internal.h"
#include "tokutil.h"

#include <slora/error.h>
#include <slora/tokenizer.h>

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOK512 "models/tok512.bin"

static struct slora_tokenizer *load512(void)
{
    struct slora_tokenizer *t;
    char diag[256] = "";
    int err = slora_tokenizer_load(TOK512, 512, &t, diag, sizeof(diag));
    ck_assert_msg(err == 0, "load %s: %s", TOK512, diag);
    return t;
}

static const struct {
    const char *text;
    int n;
    int ids[40];
} goldens[] = {
    {"Once upon a time", 5, {1, 403, 407, 261, 378}},
    {"", 1, {1}},
    {"a", 2, {1, 261}},
    {" ", 3, {1, 410, 410}},
    {"  two  spaces\tand\ttabs", 20, {1,   410, 410, 259, 424, 414, 410, 262, 427, 412,
                                      331, 419, 12,  412, 264, 12,  413, 412, 430, 419}},
    {"Hello, World!", 10, {1, 346, 306, 414, 432, 410, 448, 304, 341, 443}},
    {"h\xc3\xa9llo w\xc3\xb6rld", 10, {1, 270, 485, 306, 414, 263, 198, 185, 420, 341}},
    /* 日本語 😀: codepoints outside the vocabulary fall back to bytes + 3 */
    {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80",
     16,
     {1, 410, 233, 154, 168, 233, 159, 175, 235, 173, 161, 410, 243, 162, 155, 131}},
    {"Lily and Ben went to the park. They saw a big, red ball!\n\"Can I play?\" asked Tim.",
     36,
     {1,   317, 269, 368, 302, 263, 377, 267, 265, 282, 295, 433, 426, 342, 394, 261, 370, 432,
      352, 266, 268, 388, 443, 13,  436, 457, 303, 359, 337, 450, 436, 261, 419, 355, 326, 426}},
    {"\x7f\x01 ctrl", 8, {1, 410, 130, 4, 280, 413, 420, 421}},
    /* ill-formed UTF-8: a lone lead byte, a lone continuation byte, and a
     * run of continuations grouped at most 4 bytes at a time */
    {"ab\xc3", 4, {1, 261, 430, 198}},
    {"\200abc", 6, {1, 410, 131, 412, 430, 429}},
    {"\xe6\x97\xa5\x80\x80\x80\x80x", 10, {1, 410, 233, 154, 168, 131, 131, 131, 131, 444}},
};

/* Encode a C string; returns the count. */
static int enc(const struct slora_tokenizer *t, const char *text, unsigned flags, int *ids,
               size_t cap)
{
    size_t n = 0;
    ck_assert_int_eq(slora_tokenizer_encode(t, text, strlen(text), flags, ids, cap, &n), 0);
    return (int)n;
}

START_TEST(encode_goldens)
{
    struct slora_tokenizer *t = load512();
    const char *text = goldens[_i].text;
    size_t cap = 2 * strlen(text) + 3;
    int *ids = malloc(cap * sizeof(*ids));
    ck_assert(slora_tokenizer_add_bos(t));
    int n = enc(t, text, SLORA_TOK_ADD_BOS, ids, cap);
    ck_assert_int_eq(n, goldens[_i].n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(ids[i] == goldens[_i].ids[i], "case %d token %d: got %d want %d", _i, i,
                      ids[i], goldens[_i].ids[i]);
    /* without BOS the same ids follow */
    int m = enc(t, text, 0, ids, cap);
    ck_assert_int_eq(m, n - 1);
    for (int i = 0; i < m; i++)
        ck_assert_int_eq(ids[i], goldens[_i].ids[i + 1]);
    free(ids);
    slora_tokenizer_free(t);
}
END_TEST

static size_t decode_all(const struct slora_tokenizer *t, const int *ids, int n, char *out)
{
    size_t len = 0;
    for (int i = 1; i < n; i++) {
        size_t k;
        const char *p = slora_tokenizer_decode(t, ids[i - 1], ids[i], &k);
        memcpy(out + len, p, k);
        len += k;
    }
    return len;
}

/* run.c's decode after BOS drops the dummy-prefix space, so well-formed
 * text round-trips byte for byte, even through byte-fallback tokens. */
START_TEST(decode_roundtrip)
{
    struct slora_tokenizer *t = load512();
    const char *text = goldens[_i].text;
    char out[512];
    size_t len = decode_all(t, goldens[_i].ids, goldens[_i].n, out);
    ck_assert_uint_eq(len, strlen(text));
    ck_assert(!memcmp(out, text, len));
    slora_tokenizer_free(t);
}
END_TEST

START_TEST(decode_rules)
{
    struct slora_tokenizer *t = load512();
    size_t n;
    const char *p = slora_tokenizer_decode(t, 1, 403, &n);
    ck_assert_uint_eq(n, 4);
    ck_assert(!memcmp(p, "Once", 4));
    p = slora_tokenizer_decode(t, 261, 403, &n);
    ck_assert_uint_eq(n, 5);
    ck_assert(!memcmp(p, " Once", 5));
    /* <0x0A> at id 13 is the raw newline; <0x00> at id 3 a NUL byte of length 1 */
    p = slora_tokenizer_decode(t, 5, 13, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(p[0], '\n');
    p = slora_tokenizer_decode(t, 1, 3, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(p[0], 0);
    p = slora_tokenizer_decode(t, 1, 258, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq((unsigned char)p[0], 0xFF);
    p = slora_tokenizer_decode(t, 1, 512, &n);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(p, "");
    p = slora_tokenizer_decode(t, 1, -1, &n);
    ck_assert_uint_eq(n, 0);
    /* BOS is a control token: rendered only when asked for */
    p = slora_tokenizer_piece(t, 1, true, &n);
    ck_assert_uint_eq(n, 5);
    ck_assert(!memcmp(p, "\n<s>\n", 5));
    slora_tokenizer_piece(t, 1, false, &n);
    ck_assert_uint_eq(n, 0);
    slora_tokenizer_decode(t, 5, 2, &n);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(slora_tokenizer_vocab_size(t), 512);
    ck_assert_int_eq(slora_tokenizer_max_piece_len(t), 7);
    ck_assert(t->score[261] == -2.0f);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_BOS), 1);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_EOS), 2);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_UNK), 0);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_EOT), -1);
    ck_assert(slora_tokenizer_is_eog(t, 2));
    ck_assert(!slora_tokenizer_is_eog(t, 1) && !slora_tokenizer_is_eog(t, 3));
    slora_tokenizer_free(t);
}
END_TEST

#define FFFD "\xef\xbf\xbd"
static const struct {
    const char *in;
    bool final;
    const char *out;
    size_t used;
} utf8_cases[] = {
    {"abc", false, "abc", 3},
    {"\xc3\xa9", false, "\xc3\xa9", 2},
    {"a\xc3", false, "a", 1},
    {"a\xc3", true, "a" FFFD, 2},
    {"\xe6\x97", false, "", 0},
    {"\xe6\x97", true, FFFD, 2},
    {"\xe6\x97x", false, FFFD "x", 3},
    {"\xff", false, FFFD, 1},
    {"\xc0\xaf", false, FFFD FFFD, 2},                   /* overlong */
    {"\xed\xa0\x80", false, FFFD FFFD FFFD, 3},          /* surrogate */
    {"\xe0\x80\x80", false, FFFD FFFD FFFD, 3},          /* overlong 3-byte */
    {"\xf4\x90\x80\x80", false, FFFD FFFD FFFD FFFD, 4}, /* above U+10FFFF */
    {"\xf0\x9f\x98", false, "", 0},
    {"\xf0\x9f\x98", true, FFFD, 3},
    {"\xf0\x9f\x98\x80!", false, "\xf0\x9f\x98\x80!", 5},
    {"\x80\x80", true, FFFD FFFD, 2},
};

START_TEST(utf8_clean)
{
    const char *in = utf8_cases[_i].in;
    char out[64];
    size_t used = 99;
    size_t n = slora_tokenizer_utf8_clean(in, strlen(in), utf8_cases[_i].final, out, &used);
    ck_assert_uint_eq(used, utf8_cases[_i].used);
    ck_assert_uint_eq(n, strlen(utf8_cases[_i].out));
    ck_assert(!memcmp(out, utf8_cases[_i].out, n));
}
END_TEST

START_TEST(render)
{
    struct slora_tokenizer *t = load512();
    static const struct {
        int prev;
        int ids[8];
        int n;
        const char *text;
    } cases[] = {
        {-1, {1, 403, 407, 261, 378}, 5, "Once upon a time"},
        {1, {403, 2, 407}, 3, "Once upon"},
        {261, {403}, 1, " Once"},
        {-1, {233, 154}, 2, FFFD},
        {-1, {233, 154, 168, 13}, 4, "\xe6\x97\xa5\n"},
        {-1, {130, 512, -4}, 3, "\x7f"},
        {-1, {0}, 0, ""},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t len;
        char *s = slora_tokenizer_render(t, cases[c].prev, cases[c].ids, cases[c].n, &len);
        ck_assert_ptr_nonnull(s);
        ck_assert_msg(len == strlen(cases[c].text) && !memcmp(s, cases[c].text, len),
                      "case %zu: '%s'", c, s);
        ck_assert_int_eq(s[len], 0);
        free(s);
    }
    slora_tokenizer_free(t);
}
END_TEST

/* The bound is tight for text made of the longest piece and never below
 * the true token count. */
START_TEST(max_text_bytes)
{
    struct slora_tokenizer *t = load512();
    ck_assert_uint_eq(slora_tokenizer_max_text_bytes(t, 1), 0);
    ck_assert_uint_eq(slora_tokenizer_max_text_bytes(t, 512), 511 * 7 - 1);
    for (size_t c = 0; c < sizeof(goldens) / sizeof(goldens[0]); c++)
        ck_assert_uint_le(strlen(goldens[c].text), slora_tokenizer_max_text_bytes(t, goldens[c].n));
    slora_tokenizer_free(t);
}
END_TEST

/* tok512.bin exported as the GGUF "llama" vocabulary llama.cpp's converter
 * writes (U+2581 spaces, bare <s>/</s>) is the same vocabulary; loaded back
 * it is an SPM tokenizer (llama.cpp's algorithm), which encodes every
 * golden text as run.c does. */
START_TEST(gguf_export)
{
    struct slora_tokenizer *t = load512(), *g = tok_reload(t);
    ck_assert(slora_tokenizer_same_vocab(t, g) && slora_tokenizer_same_vocab(g, t));
    ck_assert_int_eq(g->algo, SLORA__TOK_SPM);
    size_t n;
    ck_assert(!memcmp(slora_tokenizer_piece(g, 1, true, &n), "<s>", 3) && n == 3);
    for (size_t c = 0; c < sizeof(goldens) / sizeof(goldens[0]); c++) {
        int ids[64];
        int m = enc(g, goldens[c].text, SLORA_TOK_ADD_BOS, ids, 64);
        ck_assert_int_eq(m, goldens[c].n);
        ck_assert(!memcmp(ids, goldens[c].ids, (size_t)m * sizeof(int)));
        /* and decodes the same */
        size_t la, lb;
        char *a = slora_tokenizer_render(t, -1, ids, m, &la);
        char *b = slora_tokenizer_render(g, -1, ids, m, &lb);
        ck_assert_uint_eq(la, lb);
        ck_assert(!memcmp(a, b, la));
        free(a);
        free(b);
    }
    slora_tokenizer_free(g);
    slora_tokenizer_free(t);
}
END_TEST

/* A tok*.bin of the given pieces (max_token_length 16) in a temp file. */
static char *write_tokbin(const char *const *pieces, const float *scores, int n)
{
    char *path = strdup("/tmp/slora-tokbin-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "wb");
    int32_t max_len = 16;
    fwrite(&max_len, 4, 1, f);
    for (int i = 0; i < n; i++) {
        int32_t len = (int32_t)strlen(pieces[i]);
        fwrite(&scores[i], 4, 1, f);
        fwrite(&len, 4, 1, f);
        fwrite(pieces[i], 1, (size_t)len, f);
    }
    fclose(f);
    return path;
}

static struct slora_tokenizer *tokbin(const char *const *pieces, const float *scores, int n)
{
    char *path = write_tokbin(pieces, scores, n), diag[256] = "";
    struct slora_tokenizer *t;
    int err = slora_tokenizer_load(path, n, &t, diag, sizeof(diag));
    ck_assert_msg(err == 0, "%s", diag);
    unlink(path);
    free(path);
    return t;
}

START_TEST(vocab_errors)
{
    const char *pieces[3] = {"<unk>", "<s>", "</s>"};
    float scores[3] = {0, 0, 0};
    /* a tiny vocabulary without byte pieces cannot encode unknown text */
    struct slora_tokenizer *t = tokbin(pieces, scores, 3);
    int ids[8];
    size_t n;
    ck_assert_int_eq(slora_tokenizer_encode(t, "x", 1, SLORA_TOK_ADD_BOS, ids, 8, &n),
                     SLORA_ERANGE);
    ck_assert_int_eq(enc(t, "", SLORA_TOK_ADD_BOS, ids, 8), 1);
    /* the output buffer bounds the tokens */
    ck_assert_int_eq(slora_tokenizer_encode(t, "", 0, SLORA_TOK_ADD_BOS | SLORA_TOK_ADD_EOS, ids,
                                            1, &n),
                     SLORA_ELIMIT);
    ck_assert_int_eq(enc(t, "", SLORA_TOK_ADD_BOS | SLORA_TOK_ADD_EOS, ids, 8), 2);
    ck_assert_int_eq(ids[1], 2);
    slora_tokenizer_free(t);
    slora_tokenizer_free(NULL);
}
END_TEST

/* Merges pick the best score and, on equal scores, the leftmost pair:
 * "aaa" with piece "aa" must become [aa, a], never [a, aa]. */
START_TEST(merge_order)
{
    const char *pieces[] = {"<unk>", "<s>", "</s>", " ", "a", "b", "aa", "ab", " a", "aab"};
    float scores[] = {0, 0, 0, 0, 0, 0, -1, -2, -5, -3};
    struct slora_tokenizer *t = tokbin(pieces, scores, 10);
    static const struct {
        const char *text;
        int n;
        int ids[8];
    } cases[] = {
        /* " a a a" -> ' ' aa a: "aa" (-1) beats " a" (-5) and goes leftmost */
        {"aaa", 3, {3, 6, 4}},
        /* ' ' a a b: aa (-1) first, then aa+b = aab (-3) */
        {"aab", 2, {3, 9}},
        /* ' ' a b a b: ab (-2) twice, leftmost first; " a" never forms */
        {"abab", 3, {3, 7, 7}},
        {"ba", 3, {3, 5, 4}},
        /* " " separates words: merged word by word */
        {"aa ab", 4, {3, 6, 3, 7}},
    };
    ck_assert(t->word_merges);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int ids[16];
        int n = enc(t, cases[c].text, 0, ids, 16);
        ck_assert_int_eq(n, cases[c].n);
        for (int i = 0; i < n; i++)
            ck_assert_msg(ids[i] == cases[c].ids[i], "%s: token %d is %d", cases[c].text, i,
                          ids[i]);
    }
    slora_tokenizer_free(t);
    /* "a b" has a space inside: merges may cross spaces, run.c's result */
    const char *spaced[] = {"<unk>", "<s>", "</s>", " ", "a", "b", "a ", "a b", " a"};
    float spaced_scores[] = {0, 0, 0, 0, 0, 0, -1, -2, -3};
    t = tokbin(spaced, spaced_scores, 9);
    ck_assert(!t->word_merges);
    int ids[8];
    ck_assert_int_eq(enc(t, "a b", 0, ids, 8), 2);
    ck_assert_int_eq(ids[0], 3);
    ck_assert_int_eq(ids[1], 7);
    slora_tokenizer_free(t);
}
END_TEST

/* run.c's encode transcribed literally (linear lookups, O(n^2) merge scan):
 * the heap-driven encode must agree on random text. */
static int naive_lookup(const struct slora_tokenizer *t, const char *s, size_t n)
{
    for (int i = 0; i < t->n_vocab; i++)
        if (t->len[i] == n && !memcmp(t->text[i], s, n))
            return i;
    return -1;
}

static int naive_encode(const struct slora_tokenizer *t, const char *text, int *tokens)
{
    int n = 0;
    tokens[n++] = 1;
    if (text[0])
        tokens[n++] = naive_lookup(t, " ", 1);
    char buf[64];
    size_t len = 0;
    for (const char *c = text; *c; c++) {
        if ((*c & 0xC0) != 0x80)
            len = 0;
        buf[len++] = *c;
        if ((c[1] & 0xC0) == 0x80 && len < 4)
            continue;
        int id = naive_lookup(t, buf, len);
        if (id != -1) {
            tokens[n++] = id;
        } else {
            for (size_t i = 0; i < len; i++)
                tokens[n++] = (unsigned char)buf[i] + 3;
        }
        len = 0;
    }
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_i = -1;
        for (int i = 0; i < n - 1; i++) {
            size_t la = t->len[tokens[i]], lb = t->len[tokens[i + 1]];
            memcpy(buf, t->text[tokens[i]], la);
            memcpy(buf + la, t->text[tokens[i + 1]], lb);
            int id = naive_lookup(t, buf, la + lb);
            if (id != -1 && t->score[id] > best) {
                best = t->score[id];
                best_id = id;
                best_i = i;
            }
        }
        if (best_i < 0)
            break;
        tokens[best_i] = best_id;
        memmove(tokens + best_i + 1, tokens + best_i + 2, (size_t)(n - best_i - 2) * sizeof(int));
        n--;
    }
    return n;
}

START_TEST(random_text_matches_naive)
{
    static const char *const alphabet[] = {"t",
                                           "h",
                                           "e",
                                           " ",
                                           "a",
                                           "n",
                                           "d",
                                           ".",
                                           ",",
                                           "\n",
                                           "o",
                                           "s",
                                           "L",
                                           "\xc3\xa9",
                                           "\xe6\x97\xa5",
                                           "\x80",
                                           "\xf0\x9f\x98\x80",
                                           "!",
                                           "i",
                                           "y"};
    struct slora_tokenizer *t = load512();
    unsigned rng = 12345;
    for (int round = 0; round < 150; round++) {
        char text[256] = "";
        size_t len = 0;
        int chars = (int)(rng % 48);
        for (int c = 0; c < chars; c++) {
            rng = rng * 1103515245u + 12345u;
            const char *a = alphabet[(rng >> 16) % (sizeof(alphabet) / sizeof(alphabet[0]))];
            memcpy(text + len, a, strlen(a) + 1);
            len += strlen(a);
        }
        rng = rng * 1103515245u + 12345u;
        int got[260], want[260];
        int n_got = enc(t, text, SLORA_TOK_ADD_BOS, got, 260);
        int n_want = naive_encode(t, text, want);
        ck_assert_int_eq(n_got, n_want);
        ck_assert_msg(!memcmp(got, want, (size_t)n_got * sizeof(int)), "round %d differs", round);
    }
    slora_tokenizer_free(t);
}
END_TEST

/* Corrupted tok*.bin files: each is tok512.bin with one change. */
enum corrupt { AS_IS, TRUNCATE, SET_I32, APPEND };
static const struct {
    const char *name;
    enum corrupt kind;
    long offset; /* SET_I32: byte offset; TRUNCATE: new length (negative: from the end) */
    int value;
    int vocab;
    int err;
    const char *diag;
} bad_files[] = {
    {"empty", TRUNCATE, 0, 0, 512, SLORA_EFORMAT, "no max_token_length header"},
    {"header cut", TRUNCATE, 3, 0, 512, SLORA_EFORMAT, "no max_token_length header"},
    {"max_len 0", SET_I32, 0, 0, 512, SLORA_EFORMAT, "max_token_length 0 out of range"},
    {"max_len huge", SET_I32, 0, 1 << 30, 512, SLORA_EFORMAT, "max_token_length 1073741824"},
    {"piece too long", SET_I32, 0, 4, 512, SLORA_EFORMAT, "length 5, outside [0, 4]"},
    {"negative length", SET_I32, 8, -1, 512, SLORA_EFORMAT, "piece 0 at byte 8 has length -1"},
    {"length lie", SET_I32, 8, 7, 512, SLORA_EFORMAT, "piece 1 at byte"},
    {"cut in a score", TRUNCATE, 10, 0, 512, SLORA_EFORMAT, "truncated at byte 4: piece 0 of 512"},
    {"cut in a piece", TRUNCATE, 14, 0, 512, SLORA_EFORMAT, "at byte 12: piece 0 needs 5 bytes"},
    {"cut at the end", TRUNCATE, -1, 0, 512, SLORA_EFORMAT, "piece 511 needs"},
    {"trailing bytes", APPEND, 0, 0, 512, SLORA_EFORMAT, "4 trailing bytes after 512 pieces"},
    {"vocab too big", AS_IS, 0, 0, 513, SLORA_EFORMAT, "piece 512 of 513 missing"},
    {"vocab too small", AS_IS, 0, 0, 511, SLORA_EFORMAT, "trailing bytes after 511 pieces"},
    {"vocab < 3", AS_IS, 0, 0, 2, SLORA_EFORMAT, "vocabulary size 2"},
    {"NaN score", SET_I32, 4, 0x7fc00000, 512, SLORA_ENONFINITE, "piece[0] is not finite"},
};

static unsigned char *slurp(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)*size + 8);
    ck_assert_int_eq(fread(buf, 1, (size_t)*size, f), *size);
    fclose(f);
    return buf;
}

START_TEST(bad_tok_files)
{
    long size;
    unsigned char *buf = slurp(TOK512, &size);
    long len = size;
    long off = bad_files[_i].offset;
    switch (bad_files[_i].kind) {
    case AS_IS:
        break;
    case TRUNCATE:
        len = off >= 0 ? off : size + off;
        break;
    case SET_I32:
        memcpy(buf + off, &bad_files[_i].value, 4);
        break;
    case APPEND:
        memset(buf + size, 0, 4);
        len = size + 4;
        break;
    }
    char path[] = "/tmp/slora-tok-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf, (size_t)len), len);
    close(fd);
    struct slora_tokenizer *t = (void *)1;
    char diag[256] = "";
    int err = slora_tokenizer_load(path, bad_files[_i].vocab, &t, diag, sizeof(diag));
    unlink(path);
    free(buf);
    ck_assert_msg(err == bad_files[_i].err, "%s: err %d (%s)", bad_files[_i].name, err, diag);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(diag, bad_files[_i].diag), "%s: diag '%s'", bad_files[_i].name, diag);
    ck_assert_msg(strstr(diag, "/tmp/slora-tok-"), "diag names the file: '%s'", diag);
}
END_TEST

START_TEST(missing_file)
{
    struct slora_tokenizer *t;
    char diag[256] = "";
    ck_assert_int_eq(slora_tokenizer_load("/nonexistent/tok.bin", 512, &t, diag, sizeof(diag)),
                     SLORA_ENOTFOUND);
    ck_assert_msg(strstr(diag, "/nonexistent/tok.bin: No such file"), "%s", diag);
}
END_TEST

Suite *slora_tokenizer_suite(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("core");
    int n_goldens = (int)(sizeof(goldens) / sizeof(goldens[0]));
    tcase_add_loop_test(tc, encode_goldens, 0, n_goldens);
    tcase_add_loop_test(tc, decode_roundtrip, 0, n_goldens);
    tcase_add_test(tc, decode_rules);
    tcase_add_loop_test(tc, utf8_clean, 0, (int)(sizeof(utf8_cases) / sizeof(utf8_cases[0])));
    tcase_add_test(tc, render);
    tcase_add_test(tc, max_text_bytes);
    tcase_add_test(tc, gguf_export);
    tcase_add_test(tc, vocab_errors);
    tcase_add_test(tc, merge_order);
    tcase_add_test(tc, random_text_matches_naive);
    tcase_add_loop_test(tc, bad_tok_files, 0, (int)(sizeof(bad_files) / sizeof(bad_files[0])));
    tcase_add_test(tc, missing_file);
    suite_add_tcase(s, tc);
    return s;
}
