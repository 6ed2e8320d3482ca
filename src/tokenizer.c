/* tokenizer.c - the tokenizer interface (see tokenizer.h): special tokens,
 * encoding (special-token partitioning, then the vocabulary's algorithm on
 * each text fragment), pieces, decoding and detokenizing, UTF-8 cleaning.
 *
 * Encoding follows llama.cpp's llama_vocab::impl::tokenize: the text is cut
 * at every occurrence of each special token (longest first; user-defined
 * tokens always, control and unknown ones only when parsing specials), with
 * the whitespace after it that an rstrip attribute removes; SPM then
 * encodes each remaining fragment with a space prefix when it starts the
 * text or follows a special token, BPE and llama2.c as they are.
 */
#include "internal.h"
#include "tok_internal.h"

#include <slora/error.h>
#include <slora/gguf.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void slora_tokenizer_free(struct slora_tokenizer *t)
{
    if (!t)
        return;
    if (t->algo == SLORA__TOK_BPE)
        slora__tok_bpe_free(t);
    slora__tok_map_free(&t->by_text);
    free(t->arena);
    free(t->text);
    free(t->len);
    free(t->score);
    free(t->attr);
    free(t->type);
    free(t->piece);
    free(t->piece_at);
    free(t->special);
    free(t);
}

int slora_tokenizer_vocab_size(const struct slora_tokenizer *t)
{
    return t->n_vocab;
}

int slora_tokenizer_special(const struct slora_tokenizer *t, enum slora_tok_special role)
{
    return (unsigned)role < SLORA_TOK_SPECIAL_COUNT ? t->id[role] : -1;
}

bool slora_tokenizer_add_bos(const struct slora_tokenizer *t)
{
    return t->add_bos && t->id[SLORA_TOK_SPECIAL_BOS] >= 0;
}

bool slora_tokenizer_add_eos(const struct slora_tokenizer *t)
{
    return t->add_eos && t->id[SLORA_TOK_SPECIAL_EOS] >= 0;
}

bool slora_tokenizer_is_eog(const struct slora_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_vocab && (t->attr[id] & SLORA__TOK_ATTR_EOG);
}

bool slora_tokenizer_is_control(const struct slora_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_vocab &&
           (t->attr[id] & (SLORA__TOK_ATTR_CONTROL | SLORA__TOK_ATTR_UNKNOWN));
}

/* ---- encoding --------------------------------------------------------- */

/* A fragment of the text: raw bytes [at, at + len), or a token (len 0). */
struct frag {
    size_t at;
    size_t len;
    int id; /* -1 for raw text */
};

struct frags {
    struct frag *f;
    size_t n, cap;
};

static bool frag_push(struct frags *v, size_t at, size_t len, int id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 16;
        struct frag *f = realloc(v->f, cap * sizeof(*f));
        if (!f)
            return false;
        v->f = f;
        v->cap = cap;
    }
    v->f[v->n++] = (struct frag){at, len, id};
    return true;
}

static bool ascii_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Cut the raw fragment [at, at + len) at each occurrence of token id. */
static bool cut(const struct slora_tokenizer *t, const char *text, size_t at, size_t len, int id,
                struct frags *out)
{
    const char *s = t->text[id];
    size_t n = t->len[id];
    uint16_t attr = t->attr[id];
    while (len > 0) {
        const char *m = memmem(text + at, len, s, n);
        if (!m)
            break;
        size_t pos = (size_t)(m - text), left = pos - at;
        if ((left > 0 && !frag_push(out, at, left, -1)) || !frag_push(out, 0, 0, id))
            return false;
        len -= pos + n - at;
        at = pos + n;
        if (attr & SLORA__TOK_ATTR_RSTRIP)
            while (len > 0 && ascii_space(text[at])) {
                at++;
                len--;
            }
    }
    return len == 0 || frag_push(out, at, len, -1);
}

/* llama.cpp's tokenizer_st_partition. */
static int partition(const struct slora_tokenizer *t, const char *text, size_t len,
                     bool parse_special, struct frags *v)
{
    struct frags next = {0};
    int err = 0;
    if (!frag_push(v, 0, len, -1))
        return SLORA_ENOMEM;
    for (int k = 0; k < t->n_special && !err; k++) {
        int id = t->special[k];
        if (t->len[id] == 0 || (!parse_special && (t->attr[id] & (SLORA__TOK_ATTR_CONTROL |
                                                                   SLORA__TOK_ATTR_UNKNOWN))))
            continue;
        next.n = 0;
        for (size_t i = 0; i < v->n && !err; i++) {
            const struct frag *f = &v->f[i];
            bool ok = f->id >= 0 ? frag_push(&next, f->at, f->len, f->id)
                                 : cut(t, text, f->at, f->len, id, &next);
            err = ok ? 0 : SLORA_ENOMEM;
        }
        struct frags tmp = *v;
        *v = next;
        next = tmp;
    }
    free(next.f);
    return err;
}

int slora_tokenizer_encode(const struct slora_tokenizer *t, const char *text, size_t len,
                           unsigned flags, int *tokens, size_t cap, size_t *n)
{
    struct slora__tok_out o = {tokens, cap, 0, 0};
    *n = 0;
    int bos = t->id[SLORA_TOK_SPECIAL_BOS], eos = t->id[SLORA_TOK_SPECIAL_EOS];
    if (((flags & SLORA_TOK_ADD_BOS) && bos < 0) || ((flags & SLORA_TOK_ADD_EOS) && eos < 0))
        return SLORA_EINVAL;
    if (len > UINT32_MAX / 4)
        return SLORA_ELIMIT;
    if (flags & SLORA_TOK_ADD_BOS)
        slora__tok_emit(&o, bos);
    struct frags v = {0};
    struct slora__tok_scratch s = {0};
    bool prev_special = true;
    if (len > 0)
        o.err = partition(t, text, len, flags & SLORA_TOK_PARSE_SPECIAL, &v);
    for (size_t i = 0; i < v.n && !o.err; i++) {
        const struct frag *f = &v.f[i];
        if (f->id >= 0) {
            slora__tok_emit(&o, f->id);
            prev_special = true;
            continue;
        }
        switch (t->algo) {
        case SLORA__TOK_SPM:
            slora__tok_spm_encode(t, text + f->at, f->len, t->add_space_prefix && prev_special,
                                  &o, &s);
            break;
        case SLORA__TOK_BPE:
            slora__tok_bpe_encode(t, text + f->at, f->len, &o, &s);
            break;
        case SLORA__TOK_LLAMA2C:
            slora__tok_llama2c_encode(t, text + f->at, f->len, &o, &s);
            break;
        }
        prev_special = false;
    }
    slora__tok_scratch_free(&s);
    if (flags & SLORA_TOK_ADD_EOS)
        slora__tok_emit(&o, eos);
    free(v.f);
    *n = o.n;
    return o.err;
}

size_t slora_tokenizer_max_tokens(const struct slora_tokenizer *t, size_t len)
{
    /* per byte: llama2.c 1 (+ a " " per fragment); BPE 3 (U+FFFD); SPM 3
     * for the byte and 3 for a fragment's U+2581 prefix */
    size_t per = t->algo == SLORA__TOK_LLAMA2C ? 2 : t->algo == SLORA__TOK_BPE ? 3 : 6;
    return len > (SIZE_MAX - 3) / per ? SIZE_MAX : per * len + 3;
}

size_t slora_tokenizer_max_text_bytes(const struct slora_tokenizer *t, int n_tokens)
{
    size_t per = (size_t)(t->max_text > 0 ? t->max_text : 1);
    if (t->algo == SLORA__TOK_LLAMA2C) /* BOS, then pieces covering the text and " " */
        return n_tokens < 2 ? 0 : (size_t)(n_tokens - 1) * per - 1;
    /* BPE: 4 bytes of an overlong form may become a 1-byte character */
    if (t->algo == SLORA__TOK_BPE)
        per *= 4;
    if (n_tokens < 1)
        return 0;
    return (size_t)n_tokens > SIZE_MAX / per ? SIZE_MAX : (size_t)n_tokens * per;
}

/* ---- decoding --------------------------------------------------------- */

const char *slora_tokenizer_piece(const struct slora_tokenizer *t, int id, bool special,
                                  size_t *len)
{
    if (id < 0 || id >= t->n_vocab ||
        (!special && (t->attr[id] & (SLORA__TOK_ATTR_CONTROL | SLORA__TOK_ATTR_UNKNOWN)))) {
        *len = 0;
        return "";
    }
    *len = t->piece_at[id + 1] - t->piece_at[id];
    return t->piece + t->piece_at[id];
}

const char *slora_tokenizer_decode(const struct slora_tokenizer *t, int prev, int id,
                                   size_t *len)
{
    const char *p = slora_tokenizer_piece(t, id, false, len);
    bool after_bos = prev >= 0 && prev == t->id[SLORA_TOK_SPECIAL_BOS];
    bool strip = t->algo == SLORA__TOK_LLAMA2C ? after_bos
                                               : t->add_space_prefix && (prev < 0 || after_bos);
    if (strip && *len && p[0] == ' ') {
        p++;
        (*len)--;
    }
    return p;
}

int slora_tokenizer_max_piece_len(const struct slora_tokenizer *t)
{
    return t->max_piece;
}

char *slora_tokenizer_render(const struct slora_tokenizer *t, int prev, const int *ids, int n,
                             size_t *len)
{
    size_t raw_len = 0, k;
    for (int i = 0; i < n; i++) {
        slora_tokenizer_decode(t, i ? ids[i - 1] : prev, ids[i], &k);
        raw_len += k;
    }
    char *raw = malloc(raw_len + 1), *out = malloc(3 * raw_len + 1);
    if (!raw || !out) {
        free(raw);
        free(out);
        return NULL;
    }
    raw_len = 0;
    for (int i = 0; i < n; i++) {
        const char *p = slora_tokenizer_decode(t, i ? ids[i - 1] : prev, ids[i], &k);
        memcpy(raw + raw_len, p, k);
        raw_len += k;
    }
    size_t used;
    *len = slora_tokenizer_utf8_clean(raw, raw_len, true, out, &used);
    out[*len] = '\0';
    free(raw);
    return out;
}

/* llama.cpp's clean_up_tokenization_spaces passes, in place on s[0..n). */
static size_t clean_spaces(char *s, size_t n)
{
    size_t total = n ? 1 : 0, n1 = n;
    for (size_t i = 1; i < n1; i++) { /* " ?", " !", " .", " ," */
        char x = s[i];
        if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            total--;
        s[total++] = x;
    }
    size_t n2 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < n2; i++) { /* " ' " */
        char x = s[i];
        if (x == '\'' && i + 1 < n2 && s[i - 1] == ' ' && s[i + 1] == ' ') {
            total--;
            s[++i] = '\0';
        }
        s[total++] = x;
    }
    size_t n3 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < n3; i++) { /* " 's", " 'm", " 're", " 've" */
        char x = s[i];
        if (s[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
            char x1 = s[i + 1];
            if (x1 == 's' || x1 == 'm')
                total--;
            else if (x1 != 't' && x1 != 'd' && i + 2 < n3 &&
                     ((x1 == 'r' && s[i + 2] == 'e') || (x1 == 'v' && s[i + 2] == 'e')))
                total--;
        }
        s[total++] = x;
    }
    return total;
}

char *slora_tokenizer_detokenize(const struct slora_tokenizer *t, const int *ids, int n,
                                 unsigned flags, size_t *len)
{
    bool remove_space = t->add_space_prefix, special = flags & SLORA_TOK_UNPARSE_SPECIAL;
    if ((flags & SLORA_TOK_REMOVE_SPECIAL) && t->add_bos && n > 0 &&
        ids[0] == t->id[SLORA_TOK_SPECIAL_BOS]) {
        remove_space = false;
        ids++;
        n--;
    }
    if ((flags & SLORA_TOK_REMOVE_SPECIAL) && t->add_eos && n > 0 &&
        ids[n - 1] == t->id[SLORA_TOK_SPECIAL_EOS])
        n--;
    size_t total = 0, k;
    for (int i = 0; i < n; i++) {
        slora_tokenizer_piece(t, ids[i], special, &k);
        total += k;
    }
    char *out = malloc(total + 1);
    if (!out)
        return NULL;
    total = 0;
    for (int i = 0; i < n; i++) {
        const char *p = slora_tokenizer_piece(t, ids[i], special, &k);
        if (remove_space && k && p[0] == ' ') {
            p++;
            k--;
        }
        remove_space = false;
        memcpy(out + total, p, k);
        total += k;
    }
    if (t->clean_spaces)
        total = clean_spaces(out, total);
    out[total] = '\0';
    *len = total;
    return out;
}

size_t slora_tokenizer_utf8_clean(const char *s, size_t n, bool final, char *out, size_t *used)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t pos = 0, o = 0;
    while (pos < n) {
        int r = slora__tok_utf8_char(u + pos, n - pos);
        if (r == 0 && !final)
            break;
        if (r > 0) {
            memcpy(out + o, s + pos, (size_t)r);
            pos += (size_t)r;
        } else {
            /* an incomplete final character is one maximal subpart */
            memcpy(out + o, "\xef\xbf\xbd", 3);
            pos += r < 0 ? (size_t)-r : n - pos;
            r = 3;
        }
        o += (size_t)r;
    }
    *used = pos;
    return o;
}

/* ---- export ------------------------------------------------------------- */

/* Token id's text in GGUF form (buf: 3 * max_text + 8 bytes). */
static const char *gguf_text(const struct slora_tokenizer *t, int id, char *buf, size_t *len)
{
    if (t->algo != SLORA__TOK_LLAMA2C) {
        *len = t->len[id];
        return t->text[id];
    }
    *len = slora__tok_llama2c_text(t, id, buf);
    return buf;
}

bool slora_tokenizer_same_vocab(const struct slora_tokenizer *a, const struct slora_tokenizer *b)
{
    if (a->n_vocab != b->n_vocab)
        return false;
    char *ba = malloc(3 * (size_t)a->max_text + 8), *bb = malloc(3 * (size_t)b->max_text + 8);
    bool same = ba && bb;
    for (int i = 0; same && i < a->n_vocab; i++) {
        size_t la, lb;
        const char *ta = gguf_text(a, i, ba, &la), *tb = gguf_text(b, i, bb, &lb);
        same = la == lb && !memcmp(ta, tb, la) && a->score[i] == b->score[i];
    }
    free(ba);
    free(bb);
    return same;
}

static int cmp_rank(const void *pa, const void *pb)
{
    const struct slora__tok_merge_entry *a = pa, *b = pb;
    return (a->rank > b->rank) - (a->rank < b->rank);
}

/* tokenizer.ggml.merges in rank order. */
static int write_merges(const struct slora_tokenizer *t, struct slora_gguf_writer *w)
{
    size_t n = 0;
    for (size_t i = 0; i <= t->merges.mask; i++)
        n += t->merges.e[i].key != UINT64_MAX;
    struct slora__tok_merge_entry *e = malloc((n ? n : 1) * sizeof(*e));
    char **s = calloc(n ? n : 1, sizeof(*s));
    size_t *lens = malloc((n ? n : 1) * sizeof(*lens));
    int err = e && s && lens ? 0 : SLORA_ENOMEM;
    n = 0;
    for (size_t i = 0; !err && i <= t->merges.mask; i++)
        if (t->merges.e[i].key != UINT64_MAX)
            e[n++] = t->merges.e[i];
    if (!err)
        qsort(e, n, sizeof(*e), cmp_rank);
    for (size_t i = 0; !err && i < n; i++) {
        int l = (int)(e[i].key >> 32), r = (int)(uint32_t)e[i].key;
        lens[i] = t->len[l] + 1 + t->len[r];
        if (!(s[i] = malloc(lens[i] + 1)))
            err = SLORA_ENOMEM;
        else
            sprintf(s[i], "%s %s", t->text[l], t->text[r]);
    }
    if (!err)
        err = slora_gguf_writer_add_str_array(w, "tokenizer.ggml.merges", (const char *const *)s,
                                              lens, n);
    for (size_t i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
    free(lens);
    free(e);
    return err;
}

int slora_tokenizer_write_gguf(const struct slora_tokenizer *t, struct slora_gguf_writer *w)
{
    size_t n = (size_t)t->n_vocab, *lens = calloc(n, sizeof(*lens));
    const char **texts = calloc(n, sizeof(*texts));
    int32_t *types = malloc(n * sizeof(*types));
    char *buf = t->algo == SLORA__TOK_LLAMA2C ? malloc(n * (3 * (size_t)t->max_text + 8)) : NULL;
    int err = lens && texts && types && (buf || t->algo != SLORA__TOK_LLAMA2C) ? 0 : SLORA_ENOMEM;
    for (size_t i = 0; !err && i < n; i++) {
        texts[i] = gguf_text(t, (int)i, buf ? buf + i * (3 * (size_t)t->max_text + 8) : NULL,
                             &lens[i]);
        types[i] = t->type[i];
    }
    if (!err) {
        bool bpe = t->algo == SLORA__TOK_BPE;
        slora_gguf_writer_add_str(w, "tokenizer.ggml.model", bpe ? "gpt2" : "llama");
        if (bpe)
            slora_gguf_writer_add_str(w, "tokenizer.ggml.pre", t->pre_name);
        slora_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", texts, lens, n);
        if (!bpe)
            slora_gguf_writer_add_array(w, "tokenizer.ggml.scores", SLORA_GGUF_F32, t->score, n);
        slora_gguf_writer_add_array(w, "tokenizer.ggml.token_type", SLORA_GGUF_I32, types, n);
        static const char *const keys[SLORA_TOK_SPECIAL_COUNT] = {
            "bos_token_id",     "eos_token_id",     "eot_token_id",      "eom_token_id",
            "padding_token_id", "unknown_token_id", "seperator_token_id"};
        char key[64];
        for (int r = 0; r < SLORA_TOK_SPECIAL_COUNT; r++) {
            snprintf(key, sizeof(key), "tokenizer.ggml.%s", keys[r]);
            if (t->id[r] >= 0)
                slora_gguf_writer_add_u32(w, key, (uint32_t)t->id[r]);
        }
        slora_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos);
        slora_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos);
        err = slora_gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix",
                                         t->add_space_prefix);
        if (!err && bpe)
            err = write_merges(t, w);
    }
    free(lens);
    free(texts);
    free(types);
    free(buf);
    return err;
}
