/* tok_bpe.c - byte-level BPE (llama.cpp's llm_tokenizer_bpe_session).
 *
 * A fragment decodes to codepoints (ill-formed bytes become U+FFFD, as in
 * llama.cpp), the pre-tokenizer splits it into words, and each word, as
 * UTF-8, starts as one symbol per byte. Adjacent symbols merge by the rank
 * of their (left, right) pair in tokenizer.ggml.merges, lowest rank first;
 * with ignore_merges (Llama-3) a word that is a token is taken whole. A
 * symbol left that is not a token contributes the one-byte tokens of its
 * byte-level text, as llama.cpp's fallback does.
 *
 * Token texts are GPT-2 "byte-level": byte b is written as the character
 * U+00b for the printable bytes '!'..'~', U+00A1..U+00AC, U+00AE..U+00FF and
 * as U+0100 + k for the k-th other byte. Lookups here use each token's
 * decoded bytes (`raw`), a bijection for texts made only of those
 * characters; other tokens (added tokens with other characters) can never
 * equal a byte-level word and are left out of that map.
 */
#include "internal.h"
#include "tok_internal.h"

#include <slora/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The byte-level character of byte b. */
static uint32_t byte_cpt(unsigned b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
        return b;
    return 256 + (b <= 0x20 ? b : b <= 0xA0 ? 33 + (b - 0x7F) : 67);
}

/* The byte of a byte-level character, or -1. */
static int cpt_byte(uint32_t c)
{
    if ((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))
        return (int)c;
    if (c < 256 || c >= 256 + 68)
        return -1;
    unsigned k = c - 256;
    return (int)(k <= 0x20 ? k : k <= 66 ? 0x7F + (k - 33) : 0xAD);
}

size_t slora__tok_bpe_byte_char(unsigned char b, char *out)
{
    return slora__tok_utf8_put(byte_cpt(b), out);
}

size_t slora__tok_bpe_decode_text(const char *text, size_t len, char *out)
{
    uint32_t c;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t cl = slora__tok_utf8_len((unsigned char)text[i]);
        if (cl > len - i)
            cl = len - i;
        slora__tok_utf8_decode(text + i, cl, &c);
        i += cl;
        int b = cpt_byte(c);
        if (b >= 0) {
            if (out)
                out[o] = (char)b;
            o++;
            continue;
        }
        /* llama_decode_text: "[UNK_BYTE_0x" + the character's hex + the token + "]" */
        char u[4], head[32];
        size_t ul = slora__tok_utf8_put(c, u), hl = (size_t)sprintf(head, "[UNK_BYTE_0x");
        for (size_t k = 0; k < ul; k++)
            hl += (size_t)sprintf(head + hl, "%02x", (unsigned char)u[k]);
        if (out) {
            memcpy(out + o, head, hl);
            memcpy(out + o + hl, text, len);
            out[o + hl + len] = ']';
        }
        o += hl + len + 1;
    }
    return o;
}

/* Bytes of a text made only of byte-level characters into out; -1 when
 * another character occurs. */
static long raw_bytes(const char *text, size_t len, char *out)
{
    uint32_t c;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t cl = slora__tok_utf8_len((unsigned char)text[i]);
        if (cl > len - i || slora__tok_utf8_decode(text + i, cl, &c) != 1)
            return -1;
        int b = cpt_byte(c);
        if (b < 0)
            return -1;
        out[o++] = (char)b;
        i += cl;
    }
    return (long)o;
}

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDu;
    return k ^ (k >> 33);
}

static const struct slora__tok_merge_entry *merge_find(const struct slora__tok_merges *m,
                                                       uint64_t key)
{
    for (size_t i = mix(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->e[i].key == key)
            return &m->e[i];
        if (m->e[i].key == UINT64_MAX)
            return NULL;
    }
}

static int load_merges(struct slora_tokenizer *t, const struct slora__tok_src *src, char *diag,
                       size_t diag_len)
{
    if (src->n_merges == 0)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s is missing or empty",
                           src->key_merges);
    size_t cap = 16;
    while (cap < 2 * src->n_merges)
        cap *= 2;
    t->merges.e = malloc(cap * sizeof(*t->merges.e));
    char *cat = malloc(2 * (size_t)t->max_text + 1);
    if (!t->merges.e || !cat) {
        free(cat);
        return SLORA_ENOMEM;
    }
    memset(t->merges.e, 0xff, cap * sizeof(*t->merges.e));
    t->merges.mask = cap - 1;
    int err = 0;
    for (size_t i = 0; i < src->n_merges && !err; i++) {
        const char *part[2] = {src->merge_l[i], src->merge_r[i]};
        size_t plen[2] = {src->merge_l_len[i], src->merge_r_len[i]};
        int id[2];
        for (int k = 0; k < 2 && !err; k++)
            if ((id[k] = slora__tok_map_find(&t->by_text, part[k], plen[k])) < 0)
                err = slora__diag(diag, diag_len, SLORA_EFORMAT,
                                  "%s[%zu]: '%.*s' is not a token", src->key_merges, i,
                                  (int)(plen[k] > 64 ? 64 : plen[k]), part[k]);
        if (err)
            break;
        memcpy(cat, part[0], plen[0]);
        memcpy(cat + plen[0], part[1], plen[1]);
        uint64_t key = (uint64_t)id[0] << 32 | (uint32_t)id[1];
        size_t at = mix(key) & t->merges.mask;
        while (t->merges.e[at].key != UINT64_MAX && t->merges.e[at].key != key)
            at = (at + 1) & t->merges.mask;
        if (t->merges.e[at].key == key)
            continue; /* llama.cpp keeps the first rank of a repeated pair */
        t->merges.e[at] = (struct slora__tok_merge_entry){
            key, (int32_t)i, slora__tok_map_find(&t->by_text, cat, plen[0] + plen[1])};
    }
    free(cat);
    return err;
}

int slora__tok_bpe_init(struct slora_tokenizer *t, const struct slora__tok_src *src, char *diag,
                        size_t diag_len)
{
    size_t total = 0;
    for (int i = 0; i < t->n_vocab; i++)
        total += t->len[i];
    t->raw_arena = malloc(total ? total : 1);
    t->raw = calloc((size_t)t->n_vocab, sizeof(*t->raw));
    t->raw_len = calloc((size_t)t->n_vocab, sizeof(*t->raw_len));
    if (!t->raw_arena || !t->raw || !t->raw_len ||
        slora__tok_map_init(&t->by_raw, t->raw, t->raw_len, t->n_vocab))
        return SLORA_ENOMEM;
    char *a = t->raw_arena;
    for (int i = 0; i < t->n_vocab; i++) {
        long n = raw_bytes(t->text[i], t->len[i], a);
        if (n < 0)
            continue;
        t->raw[i] = a;
        t->raw_len[i] = (uint32_t)n;
        a += n;
        slora__tok_map_add(&t->by_raw, i);
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = slora__tok_map_find(&t->by_raw, &c, 1);
    }
    int err = load_merges(t, src, diag, diag_len);
    return err ? err : slora__tok_pre_init(t);
}

void slora__tok_bpe_free(struct slora_tokenizer *t)
{
    slora__tok_pre_free(t);
    free(t->merges.e);
    slora__tok_map_free(&t->by_raw);
    free(t->raw_arena);
    free(t->raw);
    free(t->raw_len);
}

static bool bpe_pair(const void *ctx, const struct slora__tok_sym *l,
                     const struct slora__tok_sym *r, double *prio, int *id)
{
    const struct slora_tokenizer *t = ctx;
    if (l->id < 0 || r->id < 0)
        return false;
    const struct slora__tok_merge_entry *e =
        merge_find(&t->merges, (uint64_t)l->id << 32 | (uint32_t)r->id);
    if (!e)
        return false;
    *prio = e->rank;
    *id = e->result;
    return true;
}

/* A symbol that is not a token: the one-byte tokens of its byte-level text. */
static void fallback(const struct slora_tokenizer *t, const char *bytes, size_t n,
                     struct slora__tok_out *o)
{
    for (size_t i = 0; i < n; i++) {
        char ch[4];
        size_t cl = slora__tok_bpe_byte_char((unsigned char)bytes[i], ch);
        for (size_t k = 0; k < cl; k++) {
            int id = slora__tok_map_find(&t->by_text, ch + k, 1);
            if (id >= 0)
                slora__tok_emit(o, id);
        }
    }
}

static void encode_word(const struct slora_tokenizer *t, const char *w, size_t n,
                        struct slora__tok_sym *sym, struct slora__tok_out *o,
                        struct slora__tok_scratch *s)
{
    if (t->ignore_merges) {
        int id = slora__tok_map_find(&t->by_raw, w, n);
        if (id >= 0) {
            slora__tok_emit(o, id);
            return;
        }
    }
    for (size_t i = 0; i < n; i++)
        sym[i] = (struct slora__tok_sym){(uint32_t)i, 1, t->byte_id[(unsigned char)w[i]],
                                         (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1};
    if (slora__tok_merge(sym, (int)n, bpe_pair, t, s)) {
        o->err = SLORA_ENOMEM;
        return;
    }
    for (int i = 0; n > 0 && i >= 0; i = sym[i].next) {
        if (sym[i].id >= 0)
            slora__tok_emit(o, sym[i].id);
        else
            fallback(t, w + sym[i].at, sym[i].len, o);
    }
}

void slora__tok_bpe_encode(const struct slora_tokenizer *t, const char *text, size_t len,
                           struct slora__tok_out *o, struct slora__tok_scratch *s)
{
    uint32_t *cpt = slora__tok_scratch_get(s, SLORA__SCR_CPT, (len + 1) * sizeof(*cpt));
    char *w = slora__tok_scratch_get(s, SLORA__SCR_TEXT, 4 * (len + 1));
    struct slora__tok_sym *sym =
        slora__tok_scratch_get(s, SLORA__SCR_SYM, 4 * (len + 1) * sizeof(*sym));
    if (!cpt || !w || !sym) {
        o->err = SLORA_ENOMEM;
        return;
    }
    size_t n = slora__tok_utf8_decode(text, len, cpt), *words;
    long n_words = slora__tok_pre_split(t, cpt, n, s, &words);
    if (n_words < 0) {
        o->err = SLORA_ENOMEM;
        return;
    }
    size_t at = 0;
    for (long k = 0; k < n_words && !o->err; k++) {
        size_t m = 0;
        for (size_t i = at; i < at + words[k]; i++)
            m += slora__tok_utf8_put(cpt[i], w + m);
        at += words[k];
        encode_word(t, w, m, sym, o, s);
    }
}
