/* tok_spm.c - SentencePiece-style encoding: llama.cpp's SPM session and
 * karpathy/llama2.c run.c's encode.
 *
 * SPM (llama.cpp llm_tokenizer_spm_session): spaces become U+2581 (with one
 * more in front when `prefix`), the text splits into characters by their
 * lead byte's announced length, adjacent pieces merge while their
 * concatenation is a token, best score first, and a final piece that is not
 * a token falls back to its bytes' <0xXX> tokens.
 *
 * llama2.c (run.c encode): a " " piece first, characters (a lead byte and up
 * to three continuation bytes) that are not pieces fall back to byte tokens
 * (id byte + 3) before merging, and pairs merge by the score of their
 * concatenated pieces when it is above -1e10.
 */
#include "tok_internal.h"

#include <slora/error.h>

#include <math.h>
#include <string.h>

/* Both merge over a buffer holding the symbols' pieces side by side. */
struct spm_ctx {
    const struct slora_tokenizer *t;
    const char *buf;
    float floor; /* a merged piece must score above it */
};

static bool spm_pair(const void *ctx, const struct slora__tok_sym *l,
                     const struct slora__tok_sym *r, double *prio, int *id)
{
    const struct spm_ctx *c = ctx;
    *id = slora__tok_map_find(&c->t->by_text, c->buf + l->at, l->len + r->len);
    if (*id < 0 || !(c->t->score[*id] > c->floor))
        return false;
    *prio = -(double)c->t->score[*id];
    return true;
}

/* Emit the symbols left after merging; a piece that is not a token falls
 * back to its bytes. */
static void emit_symbols(const struct slora_tokenizer *t, const struct slora__tok_sym *sym,
                         int n, const char *buf, struct slora__tok_out *o)
{
    for (int i = 0; n > 0 && i >= 0; i = sym[i].next) {
        if (sym[i].id >= 0) {
            slora__tok_emit(o, sym[i].id);
            continue;
        }
        for (uint32_t k = 0; k < sym[i].len; k++) {
            int b = t->byte_id[(unsigned char)buf[sym[i].at + k]];
            if (b < 0 && !o->err)
                o->err = SLORA_ERANGE;
            if (b >= 0)
                slora__tok_emit(o, b);
        }
    }
}

static void link_symbols(struct slora__tok_sym *sym, int n)
{
    for (int i = 0; i < n; i++) {
        sym[i].prev = i - 1;
        sym[i].next = i + 1 < n ? i + 1 : -1;
    }
}

static bool is_space(const struct slora__tok_sym *s, const char *buf, const char *sp, size_t n)
{
    return s->len == n && !memcmp(buf + s->at, sp, n);
}

/* Merge sym[0..m) and emit the result: word by word when the vocabulary
 * allows (a word starts at a space symbol after a non-space one). */
static void merge_emit(const struct spm_ctx *ctx, struct slora__tok_sym *sym, int m, const char *sp,
                       size_t sp_len, struct slora__tok_out *o, struct slora__tok_scratch *s)
{
    for (int start = 0, end; start < m; start = end) {
        end = m;
        if (ctx->t->word_merges)
            for (end = start + 1; end < m; end++)
                if (is_space(&sym[end], ctx->buf, sp, sp_len) &&
                    !is_space(&sym[end - 1], ctx->buf, sp, sp_len))
                    break;
        link_symbols(sym + start, end - start);
        if (slora__tok_merge(sym + start, end - start, spm_pair, ctx, s)) {
            o->err = SLORA_ENOMEM;
            return;
        }
        emit_symbols(ctx->t, sym + start, end - start, ctx->buf, o);
    }
}

void slora__tok_spm_encode(const struct slora_tokenizer *t, const char *text, size_t len,
                           bool prefix, struct slora__tok_out *o, struct slora__tok_scratch *s)
{
    static const char space[3] = {'\xe2', '\x96', '\x81'};
    size_t cap = 3 * (len + 1);
    char *buf = slora__tok_scratch_get(s, SLORA__SCR_TEXT, cap);
    struct slora__tok_sym *sym = slora__tok_scratch_get(s, SLORA__SCR_SYM, cap * sizeof(*sym));
    if (!buf || !sym) {
        o->err = SLORA_ENOMEM;
        return;
    }
    size_t n = 0;
    if (prefix) {
        memcpy(buf, space, 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + n, space, 3);
            n += 3;
        } else {
            buf[n++] = text[i];
        }
    }
    int m = 0;
    for (size_t at = 0; at < n; m++) {
        size_t cl = slora__tok_utf8_len((unsigned char)buf[at]);
        if (cl > n - at)
            cl = n - at;
        sym[m].at = (uint32_t)at;
        sym[m].len = (uint32_t)cl;
        sym[m].id = slora__tok_map_find(&t->by_text, buf + at, cl);
        at += cl;
    }
    struct spm_ctx ctx = {t, buf, -INFINITY};
    merge_emit(&ctx, sym, m, space, 3, o, s);
}

void slora__tok_llama2c_encode(const struct slora_tokenizer *t, const char *text, size_t len,
                               struct slora__tok_out *o, struct slora__tok_scratch *s)
{
    if (len == 0)
        return;
    /* every character's piece: itself, or up to 4 byte pieces (<= 6 bytes
     * each for a well-formed tok*.bin, max_text in general) */
    size_t piece_max = t->max_text > 1 ? (size_t)t->max_text : 1;
    size_t cap = (len + 1) * piece_max;
    char *buf = slora__tok_scratch_get(s, SLORA__SCR_TEXT, cap);
    struct slora__tok_sym *sym =
        slora__tok_scratch_get(s, SLORA__SCR_SYM, (len + 1) * sizeof(*sym));
    if (!buf || !sym) {
        o->err = SLORA_ENOMEM;
        return;
    }
    size_t n = 0;
    int m = 0;
    /* a vocabulary without " " gets the byte token of ' ' as the prefix */
    int space = slora__tok_map_find(&t->by_text, " ", 1);
    int ids[5] = {space >= 0 ? space : t->byte_id[' ']}, n_ids = 1;
    for (size_t i = 0;;) {
        for (int k = 0; k < n_ids; k++) {
            if (ids[k] < 0) {
                o->err = SLORA_ERANGE;
                return;
            }
            sym[m] = (struct slora__tok_sym){.at = (uint32_t)n, .len = t->len[ids[k]],
                                             .id = ids[k]};
            memcpy(buf + n, t->text[ids[k]], t->len[ids[k]]);
            n += t->len[ids[k]];
            m++;
        }
        if (i == len)
            break;
        size_t cl = 1;
        while (cl < 4 && i + cl < len && ((unsigned char)text[i + cl] & 0xC0) == 0x80)
            cl++;
        ids[0] = slora__tok_map_find(&t->by_text, text + i, cl);
        n_ids = 1;
        if (ids[0] < 0) {
            for (size_t k = 0; k < cl; k++)
                ids[k] = t->byte_id[(unsigned char)text[i + k]];
            n_ids = (int)cl;
        }
        i += cl;
    }
    struct spm_ctx ctx = {t, buf, -1e10f};
    merge_emit(&ctx, sym, m, " ", 1, o, s);
}
