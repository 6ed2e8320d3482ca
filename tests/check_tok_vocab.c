/* check_tok_vocab.c - the GGUF tokenizers against llama.cpp.
 *
 * pairs: every ../shared/models/vocab/ *.gguf.inp / .out pair (llama.cpp's
 * test-tokenizer-0 data: cases separated by "\n__ggml_vocab_test__\n", one
 * line of ids per case; tokenized without BOS and without special-token
 * parsing), one test per case.
 *
 * oracle: tests/fixtures/tok_oracle.txt, llama.cpp's own output written by
 * tests/tok_oracle.py (see there for the format): the special ids, EOG set,
 * token attributes, every token's piece (hashed), a fuzzed corpus encoded
 * with and without BOS and special-token parsing, and detokenization.
 *
 * hf: the gpt-2 vocabulary written as a Hugging Face tokenizer.json with
 * each pre-tokenizer tokenizer.json can name (ByteLevel; Split with the
 * Llama-3 or Qwen2 regex; Digits) loads as the same tokenizer as the GGUF
 * with that tokenizer.ggml.pre: identical ids on the whole corpus.
 */
#include "tok_internal.h"
#include "tokutil.h"

#include <slora/error.h>
#include <slora/sha256.h>

#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/tok_oracle.txt"
#define SEP "\n__ggml_vocab_test__\n"
#define MAX_VOCABS 16

static const char *const pair_files[] = {"llama-spm", "phi-3",     "gpt-2", "falcon",
                                         "deepseek-llm", "starcoder", "mpt"};
#define N_PAIR_FILES (int)(sizeof(pair_files) / sizeof(pair_files[0]))

/* One vocabulary section of the fixture. */
struct vocab {
    char name[64];
    char file[96];
    char pre[32];
    char *first; /* its first line after "vocab" (inside fixture) */
};

static char *fixture;
static struct vocab vocabs[MAX_VOCABS];
static int n_vocabs;
static char **inputs; /* (n_inputs) hex strings inside fixture */
static int n_inputs;
static struct slora_tokenizer *toks[MAX_VOCABS];

/* (file, case) of every pair */
static int pair_file[N_PAIR_FILES * 64], pair_case[N_PAIR_FILES * 64], n_pairs;

/* Suite construction runs outside any test: no ck_assert here (a missing
 * file leaves the tables empty and the `files` test fails). */
static char *read_all(const char *path, size_t *len)
{
    void *buf;
    char diag[256];
    return slora_fsio_read_file(path, (size_t)1 << 30, &buf, len, diag, sizeof(diag)) ? NULL : buf;
}

/* The committed fixture, or $SLORA_TOK_FIXTURE (tests/e2e/tok_oracle.sh
 * replays a freshly drawn corpus this way). */
static const char *fixture_path(void)
{
    const char *p = getenv("SLORA_TOK_FIXTURE");
    return p && *p ? p : FIXTURE;
}

static void read_fixture(void)
{
    size_t len;
    if (!(fixture = read_all(fixture_path(), &len)))
        return;
    inputs = calloc(len / 8 + 1, sizeof(*inputs));
    for (char *line = fixture; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strncmp(line, "input ", 6))
            inputs[n_inputs++] = line + 6;
        if (!strncmp(line, "vocab ", 6)) {
            if (n_vocabs == MAX_VOCABS)
                break;
            struct vocab *v = &vocabs[n_vocabs];
            if (sscanf(line + 6, "%63s %95s %31s", v->name, v->file, v->pre) >= 2)
                n_vocabs++;
            v->first = next;
        }
        line = next;
    }
}

static void count_pairs(void)
{
    for (int f = 0; f < N_PAIR_FILES; f++) {
        char path[256];
        size_t len;
        snprintf(path, sizeof(path), TEST_VOCAB_DIR "ggml-vocab-%s.gguf.inp", pair_files[f]);
        char *inp = read_all(path, &len);
        if (!inp)
            continue;
        int cases = 0;
        for (char *p = inp; p < inp + len; cases++) {
            char *e = strstr(p, SEP);
            p = e ? e + strlen(SEP) : inp + len;
        }
        for (int c = 0; c < cases; c++) {
            pair_file[n_pairs] = f;
            pair_case[n_pairs++] = c;
        }
        free(inp);
    }
}

static void load_all(void)
{
    for (int i = 0; i < n_vocabs; i++)
        toks[i] = tok_load_vocab(vocabs[i].file, vocabs[i].pre[0] ? vocabs[i].pre : NULL);
}

static void free_all(void)
{
    for (int i = 0; i < n_vocabs; i++)
        slora_tokenizer_free(toks[i]);
}

static const struct slora_tokenizer *by_file(const char *name)
{
    for (int i = 0; i < n_vocabs; i++)
        if (!strcmp(vocabs[i].name, name))
            return toks[i];
    ck_abort_msg("vocabulary %s is not in %s", name, fixture_path());
    return NULL;
}

static size_t unhex(const char *h, char *out)
{
    if (!strcmp(h, "-"))
        return 0;
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    return n;
}

/* Ids after " : " on a fixture line. */
static int parse_ids(const char *s, int *ids)
{
    int n = 0, off;
    const char *p = strstr(s, " : ");
    ck_assert_ptr_nonnull(p);
    for (p += 3; sscanf(p, "%d%n", &ids[n], &off) == 1; p += off)
        n++;
    return n;
}

static void expect_ids(const int *got, size_t n_got, const int *want, int n_want, const char *what)
{
    char g[4096] = "", w[4096] = "";
    size_t gl = 0, wl = 0;
    for (size_t i = 0; i < n_got && gl < sizeof(g) - 16; i++)
        gl += (size_t)sprintf(g + gl, " %d", got[i]);
    for (int i = 0; i < n_want && wl < sizeof(w) - 16; i++)
        wl += (size_t)sprintf(w + wl, " %d", want[i]);
    ck_assert_msg(n_got == (size_t)n_want && !memcmp(got, want, n_got * sizeof(int)),
                  "%s:\n  got: %s\n want: %s", what, g, w);
}

/* The fixture and every pair file were found (suite construction skips
 * what it cannot read). */
START_TEST(files)
{
    ck_assert_msg(fixture != NULL, "cannot read %s", fixture_path());
    ck_assert_int_eq(n_vocabs, N_PAIR_FILES + 6);
    ck_assert_int_eq(n_inputs, 100);
    ck_assert_int_eq(n_pairs, N_PAIR_FILES * 46);
}
END_TEST

START_TEST(pairs)
{
    const char *name = pair_files[pair_file[_i]];
    int c = pair_case[_i];
    const struct slora_tokenizer *t = by_file(name);
    char path[256];
    size_t len_in, len_out;
    snprintf(path, sizeof(path), TEST_VOCAB_DIR "ggml-vocab-%s.gguf.inp", name);
    char *inp = tok_slurp(path, &len_in);
    snprintf(path, sizeof(path), TEST_VOCAB_DIR "ggml-vocab-%s.gguf.out", name);
    char *out = tok_slurp(path, &len_out);
    char *text = inp, *line = out;
    for (int k = 0; k < c; k++) {
        text = strstr(text, SEP) + strlen(SEP);
        line = strchr(line, '\n') + 1;
    }
    char *end = strstr(text, SEP);
    size_t len = end ? (size_t)(end - text) : strlen(text);
    *strchr(line, '\n') = '\0';
    int want[1024], n_want = 0, off;
    for (char *p = line; sscanf(p, "%d%n", &want[n_want], &off) == 1; p += off)
        n_want++;
    int got[1024];
    size_t n;
    ck_assert_int_eq(slora_tokenizer_encode(t, text, len, 0, got, 1024, &n), 0);
    char what[128];
    snprintf(what, sizeof(what), "%s case %d '%.40s'", name, c, text);
    expect_ids(got, n, want, n_want, what);
    free(inp);
    free(out);
}
END_TEST

static void check_meta(const struct slora_tokenizer *t, const char *line)
{
    int m[14];
    ck_assert_int_eq(sscanf(line, "meta %d %d %d %d %d %d %d %d %d %d %d %d %d %d", &m[0], &m[1],
                            &m[2], &m[3], &m[4], &m[5], &m[6], &m[7], &m[8], &m[9], &m[10],
                            &m[11], &m[12], &m[13]),
                     14);
    ck_assert_int_eq(slora_tokenizer_add_bos(t), m[0]);
    ck_assert_int_eq(slora_tokenizer_add_eos(t), m[1]);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_BOS), m[2]);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_EOS), m[3]);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_EOT), m[4]);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_SEP), m[5]);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_PAD), m[6]);
}

static void check_eog(const struct slora_tokenizer *t, const char *line)
{
    int want[64], n = 0, off;
    for (const char *p = line + 3; sscanf(p, "%d%n", &want[n], &off) == 1; p += off)
        n++;
    int got[64];
    size_t n_got = 0;
    for (int id = 0; id < slora_tokenizer_vocab_size(t) && n_got < 64; id++)
        if (slora_tokenizer_is_eog(t, id))
            got[n_got++] = id;
    expect_ids(got, n_got, want, n, "end-of-generation tokens");
}

/* llama.cpp's attributes of every token that is not just "normal". */
static void check_attr(const struct slora_tokenizer *t, const char *line)
{
    int id = 0, a, off, next = 0;
    const char *p = line + 4;
    for (;; id++) {
        if (sscanf(p, "%d %d%n", &next, &a, &off) != 2)
            next = t->n_vocab, a = SLORA__TOK_ATTR_NORMAL;
        for (; id < next; id++)
            ck_assert_msg((t->attr[id] & ~SLORA__TOK_ATTR_EOG) == SLORA__TOK_ATTR_NORMAL,
                          "token %d attributes %d, llama.cpp 4", id, t->attr[id]);
        if (id == t->n_vocab)
            break;
        ck_assert_msg((t->attr[id] & ~SLORA__TOK_ATTR_EOG) == a,
                      "token %d '%s' attributes %d, llama.cpp %d", id, t->text[id], t->attr[id], a);
        p += off;
    }
}

static void check_pieces(const struct slora_tokenizer *t, const char *line)
{
    char want[2][SLORA_SHA256_HEX_LEN + 1];
    ck_assert_int_eq(sscanf(line, "pieces %64s %64s", want[0], want[1]), 2);
    for (int special = 0; special < 2; special++) {
        struct slora_sha256 c;
        slora_sha256_init(&c);
        for (int id = 0; id < slora_tokenizer_vocab_size(t); id++) {
            size_t len;
            const char *p = slora_tokenizer_piece(t, id, special, &len);
            uint32_t n = (uint32_t)len;
            slora_sha256_update(&c, &n, 4);
            slora_sha256_update(&c, p, len);
        }
        uint8_t d[SLORA_SHA256_LEN];
        char hex[SLORA_SHA256_HEX_LEN + 1];
        slora_sha256_final(&c, d);
        slora_sha256_hex(d, hex);
        ck_assert_msg(!strcmp(hex, want[special]), "pieces (special %d) differ from llama.cpp",
                      special);
    }
}

static void check_enc(const struct slora_tokenizer *t, const char *line)
{
    int k, off;
    ck_assert_int_eq(sscanf(line, "enc %d %n", &k, &off), 1);
    ck_assert_int_lt(k, n_inputs);
    static char text[65536];
    size_t len = unhex(inputs[k], text);
    static int want[65536], got[65536];
    int n_want = parse_ids(line, want);
    for (const char *f = line + off; *f != ' '; f++) {
        if (*f == ',')
            continue;
        int flags = *f - '0';
        unsigned fl = (flags & 2 ? SLORA_TOK_PARSE_SPECIAL : 0);
        if (flags & 1)
            fl |= (slora_tokenizer_add_bos(t) ? SLORA_TOK_ADD_BOS : 0) |
                  (slora_tokenizer_add_eos(t) ? SLORA_TOK_ADD_EOS : 0);
        size_t n;
        ck_assert_int_eq(slora_tokenizer_encode(t, text, len, fl, got, 65536, &n), 0);
        char what[128];
        snprintf(what, sizeof(what), "input %d flags %d", k, flags);
        expect_ids(got, n, want, n_want, what);
    }
}

static void check_detok(const struct slora_tokenizer *t, const char *line)
{
    int flags;
    static char hex[65536], want[32768];
    static int ids[65536];
    ck_assert_int_eq(sscanf(line, "detok %d %65535s", &flags, hex), 2);
    size_t n_want = unhex(hex, want), len;
    int n = parse_ids(line, ids);
    unsigned fl = (flags & 1 ? SLORA_TOK_REMOVE_SPECIAL : 0) |
                  (flags & 2 ? SLORA_TOK_UNPARSE_SPECIAL : 0);
    char *got = slora_tokenizer_detokenize(t, ids, n, fl, &len);
    ck_assert_ptr_nonnull(got);
    ck_assert_msg(len == n_want && !memcmp(got, want, len), "detok flags %d: got '%s' want '%.*s'",
                  flags, got, (int)n_want, want);
    free(got);
}

START_TEST(oracle)
{
    const struct slora_tokenizer *t = toks[_i];
    for (const char *line = vocabs[_i].first; line && strncmp(line, "vocab ", 6);
         line = line + strlen(line) + 1) {
        if (!strncmp(line, "meta ", 5))
            check_meta(t, line);
        else if (!strncmp(line, "eog", 3))
            check_eog(t, line);
        else if (!strncmp(line, "attr", 4))
            check_attr(t, line);
        else if (!strncmp(line, "pieces ", 7))
            check_pieces(t, line);
        else if (!strncmp(line, "enc ", 4))
            check_enc(t, line);
        else if (!strncmp(line, "detok ", 6))
            check_detok(t, line);
        else if (!*line)
            break;
    }
}
END_TEST

/* tokenizer.json of a GGUF vocabulary, with the pre_tokenizer of `pre`. */
static char *hf_json(const struct slora_tokenizer *t, const char *pre)
{
    static const char *const llama3 =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static const char *const qwen2 =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    json_t *vocab = json_object(), *added = json_array(), *merges = json_array();
    for (int i = 0; i < t->n_vocab; i++) {
        if (t->attr[i] & SLORA__TOK_ATTR_CONTROL)
            json_array_append_new(added, json_pack("{sisssb}", "id", i, "content", t->text[i],
                                                   "special", 1));
        else
            json_object_set_new(vocab, t->text[i], json_integer(i));
    }
    /* the merges in rank order */
    int n = 0;
    for (size_t i = 0; i <= t->merges.mask; i++)
        n += t->merges.e[i].key != UINT64_MAX;
    json_t **byrank = calloc((size_t)n, sizeof(*byrank));
    for (size_t i = 0; i <= t->merges.mask; i++) {
        const struct slora__tok_merge_entry *e = &t->merges.e[i];
        if (e->key != UINT64_MAX)
            byrank[e->rank] = json_pack("[ss]", t->text[e->key >> 32],
                                        t->text[(uint32_t)e->key]);
    }
    for (int i = 0; i < n; i++)
        json_array_append_new(merges, byrank[i]);
    free(byrank);
    json_t *bl = json_pack("{sssbsb}", "type", "ByteLevel", "add_prefix_space", 0, "use_regex", 1);
    json_t *pt;
    if (!strcmp(pre, "gpt-2")) {
        pt = bl;
    } else if (!strcmp(pre, "smollm")) {
        pt = json_pack("{sss[{sssb}o]}", "type", "Sequence", "pretokenizers", "type", "Digits",
                       "individual_digits", 1, bl);
    } else {
        json_object_set_new(bl, "use_regex", json_false());
        pt = json_pack("{sss[{sss{ss}sssb}o]}", "type", "Sequence", "pretokenizers", "type",
                       "Split", "pattern", "Regex", !strcmp(pre, "qwen2") ? qwen2 : llama3,
                       "behavior", "Isolated", "invert", 0, bl);
    }
    json_t *root = json_pack("{sososns{ss}s{sssoso}}", "added_tokens", added, "pre_tokenizer", pt,
                             "normalizer", "decoder", "type", "ByteLevel", "model", "type", "BPE",
                             "vocab", vocab, "merges", merges);
    ck_assert_ptr_nonnull(root);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

static const char *const hf_pres[] = {"gpt-2", "llama-bpe", "qwen2", "smollm"};

START_TEST(hf)
{
    char name[64];
    snprintf(name, sizeof(name), _i ? "gpt-2+%s" : "%s", hf_pres[_i]);
    const struct slora_tokenizer *g = by_file(name);
    char *json = hf_json(g, hf_pres[_i]), diag[256] = "";
    struct slora_tokenizer *t;
    int err = slora_tokenizer_new_from_hf(json, strlen(json), NULL, 0, 0, &t, diag, sizeof(diag));
    ck_assert_msg(err == 0, "%s", diag);
    free(json);
    ck_assert_int_eq(slora_tokenizer_vocab_size(t), slora_tokenizer_vocab_size(g));
    ck_assert_int_eq(t->pre, g->pre);
    static char text[65536];
    static int a[65536], b[65536];
    for (int k = 0; k < n_inputs; k++) {
        size_t len = unhex(inputs[k], text), na, nb;
        for (unsigned flags = 0; flags <= SLORA_TOK_PARSE_SPECIAL; flags += SLORA_TOK_PARSE_SPECIAL) {
            ck_assert_int_eq(slora_tokenizer_encode(t, text, len, flags, a, 65536, &na), 0);
            ck_assert_int_eq(slora_tokenizer_encode(g, text, len, flags, b, 65536, &nb), 0);
            char what[64];
            snprintf(what, sizeof(what), "%s input %d", hf_pres[_i], k);
            expect_ids(a, na, b, (int)nb, what);
        }
    }
    slora_tokenizer_free(t);
}
END_TEST

/* deepseek-llm's generic \s+$ split over a long run of spaces before a
 * digit (the earlier splits leave them in one piece): the search stays
 * linear (a naive backtracking search is quadratic: minutes here), and the
 * text comes back whole. */
START_TEST(long_space_run)
{
    const struct slora_tokenizer *t = by_file("deepseek-llm");
    size_t len = 400000, n;
    char *text = malloc(len + 2);
    memset(text, ' ', len);
    memcpy(text + len, "1", 2);
    size_t cap = slora_tokenizer_max_tokens(t, len + 1);
    int *ids = malloc(cap * sizeof(*ids));
    ck_assert_int_eq(slora_tokenizer_encode(t, text, len + 1, 0, ids, cap, &n), 0);
    size_t out_len;
    char *back = slora_tokenizer_detokenize(t, ids, (int)n, 0, &out_len);
    ck_assert_uint_eq(out_len, len + 1);
    ck_assert(!memcmp(back, text, len + 1));
    free(back);
    free(ids);
    free(text);
}
END_TEST

Suite *slora_tok_vocab_suite(void)
{
    Suite *s = suite_create("tok_vocab");
    TCase *tc = tcase_create("llama.cpp");
    read_fixture();
    count_pairs();
    tcase_add_unchecked_fixture(tc, load_all, free_all);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, files);
    tcase_add_loop_test(tc, pairs, 0, n_pairs);
    tcase_add_loop_test(tc, oracle, 0, n_vocabs);
    tcase_add_loop_test(tc, hf, 0, (int)(sizeof(hf_pres) / sizeof(hf_pres[0])));
    tcase_add_test(tc, long_space_run);
    suite_add_tcase(s, tc);
    return s;
}
