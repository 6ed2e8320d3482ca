/* tok_vocab.c - validate a vocabulary and build the tokenizer state every
 * implementation shares: token texts and attributes, the text -> id map,
 * special ids, the end-of-generation set, the special-token partition order
 * and the token_to_piece cache, as llama.cpp's llama_vocab::load derives
 * them from the same keys.
 *
 * Where llama.cpp's result depends on std::unordered_map iteration order
 * (several tokens named like an EOT/FIM token while the file names none),
 * the first name in llama.cpp's list wins, then the lowest id.
 */
#include "internal.h"
#include "tok_internal.h"

#include <slora/error.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest token text accepted (real vocabularies: <= 1024 bytes). */
#define MAX_TOKEN_LEN 65536
/* Largest vocabulary accepted (real ones: <= 262144). */
#define MAX_TOKENS (1 << 24)

/* ---- hash map --------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15u ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDu;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53u;
    return h ^ (h >> 29);
}

int slora__tok_map_init(struct slora__tok_map *m, const char *const *key, const uint32_t *klen,
                        int n)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)n)
        cap *= 2;
    m->slot = malloc(cap * sizeof(*m->slot));
    if (!m->slot)
        return SLORA_ENOMEM;
    memset(m->slot, 0xff, cap * sizeof(*m->slot));
    m->mask = cap - 1;
    m->key = key;
    m->klen = klen;
    return 0;
}

int slora__tok_map_add(struct slora__tok_map *m, int id)
{
    const char *k = m->key[id];
    size_t n = m->klen[id];
    for (size_t i = hash_bytes(k, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t s = m->slot[i];
        if (s < 0) {
            m->slot[i] = id;
            return id;
        }
        if (m->klen[s] == n && !memcmp(m->key[s], k, n))
            return s;
    }
}

int slora__tok_map_find(const struct slora__tok_map *m, const char *s, size_t n)
{
    for (size_t i = hash_bytes(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->slot[i];
        if (id < 0)
            return -1;
        if (m->klen[id] == n && !memcmp(m->key[id], s, n))
            return id;
    }
}

void slora__tok_map_free(struct slora__tok_map *m)
{
    free(m->slot);
    m->slot = NULL;
}

/* ---- scratch and output ----------------------------------------------- */

void *slora__tok_scratch_get(struct slora__tok_scratch *s, int slot, size_t bytes)
{
    if (bytes <= s->cap[slot])
        return s->p[slot];
    size_t cap = s->cap[slot] ? s->cap[slot] : 256;
    while (cap < bytes)
        cap = cap > SIZE_MAX / 2 ? bytes : 2 * cap;
    void *p = realloc(s->p[slot], cap);
    if (!p)
        return NULL;
    s->p[slot] = p;
    s->cap[slot] = cap;
    return p;
}

void slora__tok_scratch_free(struct slora__tok_scratch *s)
{
    for (size_t i = 0; i < sizeof(s->p) / sizeof(s->p[0]); i++)
        free(s->p[i]);
}

void slora__tok_emit(struct slora__tok_out *o, int id)
{
    if (o->n == o->cap) {
        if (!o->err)
            o->err = SLORA_ELIMIT;
        return;
    }
    o->tok[o->n++] = id;
}

/* ---- UTF-8 ------------------------------------------------------------ */

size_t slora__tok_utf8_decode(const char *s, size_t n, uint32_t *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k = 0;
    while (i < n) {
        unsigned c = u[i];
        size_t need = c < 0x80 ? 1 : c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
        uint32_t v = need == 1 ? c : need == 2 ? c & 0x1F : need == 3 ? c & 0x0F : c & 0x07;
        bool ok = need > 0 && n - i >= need;
        for (size_t j = 1; ok && j < need; j++) {
            ok = (u[i + j] & 0xC0) == 0x80;
            v = v << 6 | (u[i + j] & 0x3F);
        }
        if (ok && v <= 0x10FFFF) {
            out[k++] = v;
            i += need;
        } else {
            out[k++] = 0xFFFD;
            i++;
        }
    }
    return k;
}

size_t slora__tok_utf8_put(uint32_t c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | c >> 6);
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | c >> 12);
        out[1] = (char)(0x80 | (c >> 6 & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | c >> 18);
    out[1] = (char)(0x80 | (c >> 12 & 0x3F));
    out[2] = (char)(0x80 | (c >> 6 & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

int slora__tok_utf8_char(const unsigned char *s, size_t n)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    int need;
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return -1;
    if (c < 0xE0) {
        need = 2;
    } else if (c < 0xF0) {
        need = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c < 0xF5) {
        need = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return -1;
    }
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= n)
            return 0;
        if (s[i] < lo || s[i] > hi)
            return -i;
        lo = 0x80;
        hi = 0xBF;
    }
    return need;
}

bool slora__tok_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int r = slora__tok_utf8_char(u + i, n - i);
        if (r <= 0)
            return false;
        i += (size_t)r;
    }
    return true;
}

unsigned slora__tok_ucd(uint32_t c)
{
    unsigned space = slora__tok_is_space(c) ? SLORA__UCD_SPACE : 0;
    if (c >= 0x110000)
        return SLORA__UCD_UNDEFINED;
    int lo = 0, hi = slora__tok_ucd_n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (slora__tok_ucd_start[mid] <= c)
            lo = mid;
        else
            hi = mid - 1;
    }
    return slora__tok_ucd_flags[lo] | space;
}

/* ---- building --------------------------------------------------------- */

static const char *const gguf_id_keys[SLORA_TOK_SPECIAL_COUNT] = {
    "tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.eot_token_id",     "tokenizer.ggml.eom_token_id",
    "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.seperator_token_id",
};

void slora__tok_src_init(struct slora__tok_src *s, enum slora__tok_algo algo)
{
    memset(s, 0, sizeof(*s));
    s->algo = algo;
    s->key_tokens = "tokenizer.ggml.tokens";
    s->key_scores = "tokenizer.ggml.scores";
    s->key_types = "tokenizer.ggml.token_type";
    s->key_merges = "tokenizer.ggml.merges";
    s->key_pre = "tokenizer.ggml.pre";
    for (int r = 0; r < SLORA_TOK_SPECIAL_COUNT; r++) {
        s->key_id[r] = gguf_id_keys[r];
        s->id[r] = -1;
    }
    for (int f = 0; f < 6; f++)
        s->fim[f] = -1;
    s->add_bos = s->add_eos = s->add_space_prefix = -1;
}

/* Token texts llama.cpp recognises when the file names no such token
 * (llama_vocab::load), in its order. "\xe2\x96\x81" is U+2581, "\xef\xbd\x9c"
 * U+FF5C. */
#define FW "\xef\xbd\x9c"
static const char *const eot_names[] = {
    "<|eot_id|>",      "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>",      "_<EOT>",  "[EOT]",         "<" FW "end\xe2\x96\x81of\xe2\x96\x81sentence" FW ">",
    "<end_of_utterance>", NULL};
static const char *const eom_names[] = {"<|eom_id|>", NULL};
static const char *const fim_names[6][9] = {
    {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<" FW "fim\xe2\x96\x81" "begin" FW ">", "<PRE>",
     "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL},
    {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<" FW "fim\xe2\x96\x81hole" FW ">", "<SUF>",
     "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL},
    {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<" FW "fim\xe2\x96\x81" "end" FW ">", "<MID>",
     "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL},
    {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL},
    {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL},
    {"<|file_sep|>", NULL},
};
static const char *const eog_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<" FW "end\xe2\x96\x81of\xe2\x96\x81sentence" FW ">", "[e~[", NULL};
#undef FW

static int find(const struct slora_tokenizer *t, const char *s)
{
    return slora__tok_map_find(&t->by_text, s, strlen(s));
}

/* The first named token present: made a control token, as llama.cpp's
 * "control-looking token" override does. */
static int detect(struct slora_tokenizer *t, const char *const *names)
{
    for (; *names; names++) {
        int id = find(t, *names);
        if (id >= 0) {
            t->attr[id] |= SLORA__TOK_ATTR_CONTROL;
            return id;
        }
    }
    return -1;
}

/* llama.cpp's end-of-generation set and the attribute fixes made with it. */
static void find_eog(struct slora_tokenizer *t, const int *fim)
{
    enum { PAD = 3, REP = 4, SEP = 5 };
    for (int f = PAD; f <= SEP; f++)
        if (fim[f] >= 0)
            t->attr[fim[f]] |= SLORA__TOK_ATTR_EOG;
    for (int i = 0; eog_names[i]; i++) {
        int id = find(t, eog_names[i]);
        if (id >= 0)
            t->attr[id] |= SLORA__TOK_ATTR_EOG | SLORA__TOK_ATTR_CONTROL;
    }
    static const char *const gpt_oss[] = {"<|channel|>", "<|message|>", "<|start|>",
                                          "<|constrain|>"};
    for (size_t i = 0; i < sizeof(gpt_oss) / sizeof(gpt_oss[0]); i++) {
        int id = find(t, gpt_oss[i]);
        if (id >= 0)
            t->attr[id] = (uint16_t)((t->attr[id] & SLORA__TOK_ATTR_EOG) |
                                     SLORA__TOK_ATTR_USER_DEFINED);
    }
    const int roles[] = {SLORA_TOK_SPECIAL_EOS, SLORA_TOK_SPECIAL_EOT, SLORA_TOK_SPECIAL_EOM};
    for (int r = 0; r < 3; r++)
        if (t->id[roles[r]] >= 0)
            t->attr[t->id[roles[r]]] |= SLORA__TOK_ATTR_EOG;
    /* o200k_harmony / solar-open: "<|end|>" ends a message, not generation */
    int ret = find(t, "<|return|>"), call = find(t, "<|call|>"), calls = find(t, "<|calls|>");
    int flush = find(t, "<|flush|>"), end = find(t, "<|end|>");
#define IS_EOG(id) ((id) >= 0 && (t->attr[id] & SLORA__TOK_ATTR_EOG))
    bool has_call = IS_EOG(call) || IS_EOG(calls);
    if (IS_EOG(end) && has_call && (IS_EOG(ret) || IS_EOG(flush)))
        t->attr[end] = SLORA__TOK_ATTR_USER_DEFINED;
    /* gemma4: "</s>" is not an end of generation next to "<|tool_response>" */
    int tool = find(t, "<|tool_response>"), s_end = find(t, "</s>");
    if (IS_EOG(tool) && IS_EOG(s_end))
        t->attr[s_end] = SLORA__TOK_ATTR_NORMAL;
#undef IS_EOG
}

static int cmp_special(const void *pa, const void *pb, void *ctx)
{
    const struct slora_tokenizer *t = ctx;
    int a = *(const int *)pa, b = *(const int *)pb;
    if (t->len[a] != t->len[b])
        return t->len[a] > t->len[b] ? -1 : 1;
    return (a > b) - (a < b);
}

static bool name_has(const char *name, const char *what)
{
    char low[256];
    size_t i = 0;
    for (; name && name[i] && i + 1 < sizeof(low); i++)
        low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    low[i] = '\0';
    return strstr(low, what) != NULL;
}

/* Control, user-defined and unknown tokens, longest first: the order in
 * which tokenize looks for them in the text. */
static int special_cache(struct slora_tokenizer *t, const char *name)
{
    const uint16_t mask =
        SLORA__TOK_ATTR_CONTROL | SLORA__TOK_ATTR_USER_DEFINED | SLORA__TOK_ATTR_UNKNOWN;
    int n = 0;
    for (int i = 0; i < t->n_vocab; i++)
        n += (t->attr[i] & mask) != 0;
    t->special = malloc((size_t)(n ? n : 1) * sizeof(*t->special));
    if (!t->special)
        return SLORA_ENOMEM;
    for (int i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & mask)
            t->special[t->n_special++] = i;
    qsort_r(t->special, (size_t)n, sizeof(*t->special), cmp_special, t);
    /* llama.cpp strips the spaces after Phi-3's special tokens */
    if (name_has(name, "phi-3") || name_has(name, "phi3")) {
        for (int i = 0; i < n; i++)
            t->attr[t->special[i]] |= SLORA__TOK_ATTR_RSTRIP;
        int id = find(t, "</s>");
        if (id >= 0)
            t->attr[id] |= SLORA__TOK_ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (int k = 0; k < 3; k++)
            if ((id = find(t, keep[k])) >= 0)
                t->attr[id] &= (uint16_t)~SLORA__TOK_ATTR_RSTRIP;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte of a "<0xHH>" token, or -1. */
static int byte_token(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>' || hexval(s[3]) < 0 || hexval(s[4]) < 0)
        return -1;
    return hexval(s[3]) * 16 + hexval(s[4]);
}

/* token_to_piece(id, special = true) into out (NULL: length only). */
static size_t render(const struct slora_tokenizer *t, int id, char *out)
{
    const char *s = t->text[id];
    size_t n = t->len[id], o = 0;
    uint16_t a = t->attr[id];
    if (a & (SLORA__TOK_ATTR_UNKNOWN | SLORA__TOK_ATTR_CONTROL | SLORA__TOK_ATTR_USER_DEFINED) ||
        (t->algo == SLORA__TOK_LLAMA2C && (a & SLORA__TOK_ATTR_NORMAL))) {
        if (out)
            memcpy(out, s, n);
        return n;
    }
    if (a & SLORA__TOK_ATTR_NORMAL) {
        if (t->algo == SLORA__TOK_BPE)
            return slora__tok_bpe_decode_text(s, n, out);
        for (size_t k = 0; k < n;) { /* U+2581 is a space */
            bool sp = k + 3 <= n && !memcmp(s + k, "\xe2\x96\x81", 3);
            if (out)
                out[o] = sp ? ' ' : s[k];
            o++;
            k += sp ? 3 : 1;
        }
        return o;
    }
    if (a & SLORA__TOK_ATTR_BYTE) {
        if (out)
            out[0] = (char)byte_token(s, n);
        return 1;
    }
    return 0;
}

/* A byte-level token of other characters renders as "[UNK_BYTE_0x..<the
 * token>]" per character (llama.cpp): quadratic in its length, so the
 * pieces' total is bounded (real vocabularies need a few MiB). */
#define MAX_PIECE_BYTES ((size_t)64 << 20)

static int piece_cache(struct slora_tokenizer *t, char *diag, size_t diag_len)
{
    size_t total = 0;
    t->piece_at = malloc(((size_t)t->n_vocab + 1) * sizeof(*t->piece_at));
    if (!t->piece_at)
        return SLORA_ENOMEM;
    for (int i = 0; i < t->n_vocab; i++) {
        size_t n = render(t, i, NULL);
        t->piece_at[i] = (uint32_t)total;
        total += n;
        if (n > (size_t)t->max_piece)
            t->max_piece = (int)n;
        if (total > MAX_PIECE_BYTES)
            return slora__diag(diag, diag_len, SLORA_ELIMIT,
                               "tokenizer.ggml.tokens: the pieces of tokens 0..%d need more than "
                               "%zu bytes",
                               i, MAX_PIECE_BYTES);
    }
    t->piece_at[t->n_vocab] = (uint32_t)total;
    if (!(t->piece = malloc(total ? total : 1)))
        return SLORA_ENOMEM;
    for (int i = 0; i < t->n_vocab; i++)
        render(t, i, t->piece + t->piece_at[i]);
    return 0;
}

static const uint16_t type_attr[7] = {
    0,
    SLORA__TOK_ATTR_NORMAL,
    SLORA__TOK_ATTR_UNKNOWN,
    SLORA__TOK_ATTR_CONTROL,
    SLORA__TOK_ATTR_USER_DEFINED,
    SLORA__TOK_ATTR_UNUSED,
    SLORA__TOK_ATTR_BYTE,
};

/* Validate the texts, scores and types; copy them into t. */
static int load_tokens(struct slora_tokenizer *t, const struct slora__tok_src *src, char *diag,
                       size_t diag_len)
{
    size_t n = src->n, total = 0;
    bool l2c = src->algo == SLORA__TOK_LLAMA2C;
    char empty[32];
    for (size_t i = 0; i < n; i++) {
        size_t len = src->len[i];
        if (!len && !l2c)
            len = (size_t)snprintf(empty, sizeof(empty), "[EMPTY_%zu]", i);
        if (len > MAX_TOKEN_LEN)
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s[%zu] is %zu bytes (limit %d)",
                               src->key_tokens, i, len, MAX_TOKEN_LEN);
        if (!l2c && !slora__tok_utf8_valid(src->text[i], src->len[i]))
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s[%zu] is not valid UTF-8",
                               src->key_tokens, i);
        if (src->score && !isfinite(src->score[i]))
            return slora__diag(diag, diag_len, SLORA_ENONFINITE, "%s[%zu] is not finite",
                               src->key_scores, i);
        if (src->type && (src->type[i] < 0 || src->type[i] > SLORA__TOK_TYPE_BYTE))
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s[%zu] = %d is not a token type",
                               src->key_types, i, (int)src->type[i]);
        if (src->type && src->type[i] == SLORA__TOK_TYPE_BYTE && src->algo != SLORA__TOK_LLAMA2C &&
            byte_token(src->text[i], src->len[i]) < 0)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "%s[%zu] is a byte token but not <0xHH>", src->key_types, i);
        total += len + 1;
    }
    t->arena = malloc(total);
    t->text = malloc(n * sizeof(*t->text));
    t->len = malloc(n * sizeof(*t->len));
    t->score = malloc(n * sizeof(*t->score));
    t->attr = malloc(n * sizeof(*t->attr));
    t->type = malloc(n);
    if (!t->arena || !t->text || !t->len || !t->score || !t->attr || !t->type)
        return SLORA_ENOMEM;
    char *a = t->arena;
    for (size_t i = 0; i < n; i++) {
        size_t len = src->len[i];
        if (!len && !l2c)
            len = (size_t)sprintf(a, "[EMPTY_%zu]", i);
        else
            memcpy(a, src->text[i], len);
        a[len] = '\0';
        t->text[i] = a;
        t->len[i] = (uint32_t)len;
        t->score[i] = src->score ? src->score[i] : 0.0f;
        t->type[i] = (uint8_t)(src->type ? src->type[i] : SLORA__TOK_TYPE_NORMAL);
        t->attr[i] = type_attr[t->type[i]];
        if (len > (size_t)t->max_text)
            t->max_text = (int)len;
        a += len + 1;
    }
    int err = slora__tok_map_init(&t->by_text, t->text, t->len, t->n_vocab);
    for (int i = 0; !err && i < t->n_vocab; i++) {
        int first = slora__tok_map_add(&t->by_text, i);
        /* run.c looks pieces up by bsearch; equal pieces map to the first */
        if (first != i && !l2c)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "%s[%d] and [%d] are the same token '%.*s'", src->key_tokens, first,
                               i, (int)(t->len[i] > 64 ? 64 : t->len[i]), t->text[i]);
    }
    return err;
}

/* Defaults of the tokenizer model, then the file's ids and flags. */
static int special_ids(struct slora_tokenizer *t, const struct slora__tok_src *src, char *diag,
                       size_t diag_len)
{
    for (int r = 0; r < SLORA_TOK_SPECIAL_COUNT; r++)
        t->id[r] = -1;
    if (t->algo == SLORA__TOK_BPE) {
        t->id[SLORA_TOK_SPECIAL_BOS] = t->id[SLORA_TOK_SPECIAL_EOS] = 11;
        t->clean_spaces = true;
    } else {
        t->id[SLORA_TOK_SPECIAL_BOS] = 1;
        t->id[SLORA_TOK_SPECIAL_EOS] = 2;
        t->id[SLORA_TOK_SPECIAL_UNK] = 0;
        t->add_space_prefix = true;
        t->add_bos = true;
    }
    if (t->algo == SLORA__TOK_BPE) {
        if (!src->pre)
            return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED,
                               "%s is missing: a gpt2 vocabulary must name its pre-tokenizer",
                               src->key_pre);
        const struct slora__tok_pre_info *p = slora__tok_pre_find(src->pre);
        if (!p)
            return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED,
                               "%s '%.64s' is not a supported pre-tokenizer", src->key_pre,
                               src->pre);
        t->pre = p->pre;
        snprintf(t->pre_name, sizeof(t->pre_name), "%s", p->name);
        t->clean_spaces = p->clean_spaces;
        t->ignore_merges = p->ignore_merges;
        t->add_bos = p->add_bos;
    }
    for (int r = 0; r < SLORA_TOK_SPECIAL_COUNT; r++) {
        if (t->id[r] >= t->n_vocab)
            t->id[r] = -1;
        int64_t v = src->id[r];
        if (v == -2) { /* the source says: none */
            t->id[r] = -1;
            continue;
        }
        if (v >= t->n_vocab || v < -1)
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s = %lld is not a token id (%d tokens)",
                               src->key_id[r], (long long)v, t->n_vocab);
        if (v >= 0)
            t->id[r] = (int)v;
    }
    if (src->add_bos >= 0)
        t->add_bos = src->add_bos;
    if (src->add_eos >= 0)
        t->add_eos = src->add_eos;
    if (src->add_space_prefix >= 0)
        t->add_space_prefix = src->add_space_prefix;
    int fim[6];
    for (int f = 0; f < 6; f++) {
        if (src->fim[f] >= t->n_vocab || src->fim[f] < -1)
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "FIM token id %lld is not a token id",
                               (long long)src->fim[f]);
        fim[f] = (int)src->fim[f];
    }
    if (t->algo == SLORA__TOK_LLAMA2C) { /* no names to look for: run.c's fixed ids */
        t->attr[t->id[SLORA_TOK_SPECIAL_EOS]] |= SLORA__TOK_ATTR_EOG;
        return 0;
    }
    if (t->id[SLORA_TOK_SPECIAL_EOT] < 0)
        t->id[SLORA_TOK_SPECIAL_EOT] = detect(t, eot_names);
    if (t->id[SLORA_TOK_SPECIAL_EOM] < 0)
        t->id[SLORA_TOK_SPECIAL_EOM] = detect(t, eom_names);
    for (int f = 0; f < 6; f++)
        if (fim[f] < 0)
            fim[f] = detect(t, fim_names[f]);
    for (int i = 0; i < t->n_vocab; i++)
        if ((t->attr[i] & SLORA__TOK_ATTR_CONTROL) && strstr(t->text[i], "unused"))
            t->attr[i] |= SLORA__TOK_ATTR_UNUSED;
    find_eog(t, fim);
    return 0;
}

/* Whether every token has its spaces (sp, n bytes) only in a leading run. */
static bool spaces_lead(const struct slora_tokenizer *t, const char *sp, size_t n)
{
    for (int i = 0; i < t->n_vocab; i++) {
        const char *s = t->text[i], *end = s + t->len[i];
        while ((size_t)(end - s) >= n && !memcmp(s, sp, n))
            s += n;
        if (memmem(s, (size_t)(end - s), sp, n))
            return false;
    }
    return true;
}

int slora__tok_build(const struct slora__tok_src *src, struct slora_tokenizer **out, char *diag,
                     size_t diag_len)
{
    *out = NULL;
    if (src->n == 0 || src->n > MAX_TOKENS)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: %zu tokens (1 to %d)",
                           src->key_tokens, src->n, MAX_TOKENS);
    struct slora_tokenizer *t = calloc(1, sizeof(*t));
    if (!t)
        return SLORA_ENOMEM;
    t->algo = src->algo;
    t->n_vocab = (int)src->n;
    int err = load_tokens(t, src, diag, diag_len);
    if (!err)
        err = special_ids(t, src, diag, diag_len);
    if (!err)
        err = special_cache(t, src->name);
    if (!err)
        err = piece_cache(t, diag, diag_len);
    if (!err && t->algo == SLORA__TOK_BPE)
        err = slora__tok_bpe_init(t, src, diag, diag_len);
    if (!err && t->algo != SLORA__TOK_BPE)
        t->word_merges = t->algo == SLORA__TOK_SPM ? spaces_lead(t, "\xe2\x96\x81", 3)
                                                   : spaces_lead(t, " ", 1);
    for (int b = 0; !err && t->algo != SLORA__TOK_BPE && b < 256; b++) {
        char hex[8];
        snprintf(hex, sizeof(hex), "<0x%02X>", b);
        char raw = (char)b;
        if (t->algo == SLORA__TOK_LLAMA2C) /* run.c: byte b is token b + 3 */
            t->byte_id[b] = b + 3 < t->n_vocab ? b + 3 : -1;
        else if ((t->byte_id[b] = find(t, hex)) < 0)
            t->byte_id[b] = slora__tok_map_find(&t->by_text, &raw, 1);
    }
    if (err) {
        if (err == SLORA_ENOMEM)
            slora__diag(diag, diag_len, err, "%s: %s", src->key_tokens, slora_strerror(err));
        slora_tokenizer_free(t);
        return err;
    }
    *out = t;
    return 0;
}
