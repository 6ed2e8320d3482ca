/* tokenizer.c - llama2.c BPE tokenizer: tok*.bin loader, GGUF vocabulary,
 * encode/decode exactly as karpathy/llama2.c run.c.
 *
 * tok*.bin layout (little-endian, written by llama2.c tokenizer.py):
 *   int32 max_token_length
 *   vocab_size times: float32 score, int32 len, len bytes of piece (no NUL)
 * and nothing after the last piece.
 *
 * Invariants after construction: every piece is stored NUL-terminated in one
 * arena; `sorted` orders the pieces by (bytes, id) so a lookup returns the
 * lowest id among equal pieces; scores are finite. The tokenizer is never
 * written after construction, so any thread may use it concurrently.
 *
 * Encode keeps run.c's result but not its O(n^2) scan: the repeated "merge
 * the best-scoring adjacent pair, leftmost on ties" is driven by a heap keyed
 * (score desc, position asc) over a linked list of symbols, with stale heap
 * entries skipped when popped.
 */
#include <slora/error.h>
#include <slora/tokenizer.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest piece we accept; real vocabularies stay far below (llama: 48). */
#define MAX_PIECE_LEN 4096
/* run.c merges only pairs scoring strictly above its initial best_score. */
#define MERGE_FLOOR -1e10f

struct tok_index {
    const char *str;
    size_t len;
    int id;
};

struct slora_tokenizer {
    int vocab_size;
    int max_piece_len;
    char *arena;              /* every piece, NUL-terminated */
    const char **piece;       /* (vocab) pointers into arena */
    size_t *len;              /* (vocab) piece lengths in bytes */
    float *score;             /* (vocab) merge scores */
    struct tok_index *sorted; /* (vocab) by (bytes, id) */
    int space_id;             /* id of the " " piece, or -1 */
    char byte_pieces[512];    /* byte b at [2b], NUL at [2b + 1] */
};

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return (alen > blen) - (alen < blen);
}

static int cmp_index(const void *pa, const void *pb)
{
    const struct tok_index *a = pa, *b = pb;
    int c = cmp_bytes(a->str, a->len, b->str, b->len);
    return c ? c : (a->id > b->id) - (a->id < b->id);
}

/* Lowest id whose piece equals s[0..n), or -1. */
static int lookup(const struct slora_tokenizer *t, const char *s, size_t n)
{
    size_t lo = 0, hi = (size_t)t->vocab_size;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_bytes(t->sorted[mid].str, t->sorted[mid].len, s, n) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < (size_t)t->vocab_size && !cmp_bytes(t->sorted[lo].str, t->sorted[lo].len, s, n))
        return t->sorted[lo].id;
    return -1;
}

/* Pieces as given (bin: raw bytes; gguf: U+2581 spaces and bare <s>, </s>)
 * are rewritten to llama2.c's form so both sources give one tokenizer. */
struct piece_src {
    const char *const *pieces;
    const size_t *lens;
    const float *scores;
    bool gguf;
};

static const char gguf_space[] = "\xe2\x96\x81";

static size_t converted_len(const struct piece_src *src, int i)
{
    const char *p = src->pieces[i];
    size_t n = src->lens[i], out = n;
    if (!src->gguf)
        return n;
    if (i == SLORA_TOK_BOS && n == 3 && !memcmp(p, "<s>", 3))
        return 5;
    if (i == SLORA_TOK_EOS && n == 4 && !memcmp(p, "</s>", 4))
        return 6;
    for (size_t k = 0; k + 3 <= n; k++)
        if (!memcmp(p + k, gguf_space, 3))
            out -= 2;
    return out;
}

static void convert_piece(const struct piece_src *src, int i, char *dst)
{
    const char *p = src->pieces[i];
    size_t n = src->lens[i], o = 0;
    if (src->gguf && i == SLORA_TOK_BOS && n == 3 && !memcmp(p, "<s>", 3)) {
        memcpy(dst, "\n<s>\n", 6);
        return;
    }
    if (src->gguf && i == SLORA_TOK_EOS && n == 4 && !memcmp(p, "</s>", 4)) {
        memcpy(dst, "\n</s>\n", 7);
        return;
    }
    for (size_t k = 0; k < n;) {
        if (src->gguf && k + 3 <= n && !memcmp(p + k, gguf_space, 3)) {
            dst[o++] = ' ';
            k += 3;
        } else {
            dst[o++] = p[k++];
        }
    }
    dst[o] = '\0';
}

static int build(const struct piece_src *src, int n, struct slora_tokenizer **out, char *diag,
                 size_t diag_len)
{
    if (n < 3 || (size_t)n > SIZE_MAX / sizeof(struct tok_index)) {
        snprintf(diag, diag_len, "vocabulary size %d: need at least 3 pieces (<unk>, BOS, EOS)", n);
        return SLORA_EFORMAT;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (src->lens[i] > MAX_PIECE_LEN) {
            snprintf(diag, diag_len, "piece %d is %zu bytes long (limit %d)", i, src->lens[i],
                     MAX_PIECE_LEN);
            return SLORA_EFORMAT;
        }
        if (!isfinite(src->scores[i])) {
            snprintf(diag, diag_len, "piece %d has a non-finite score", i);
            return SLORA_ENONFINITE;
        }
        total += converted_len(src, i) + 1;
    }
    struct slora_tokenizer *t = calloc(1, sizeof(*t));
    if (!t)
        return SLORA_ENOMEM;
    t->vocab_size = n;
    t->arena = malloc(total);
    t->piece = malloc((size_t)n * sizeof(*t->piece));
    t->len = malloc((size_t)n * sizeof(*t->len));
    t->score = malloc((size_t)n * sizeof(*t->score));
    t->sorted = malloc((size_t)n * sizeof(*t->sorted));
    if (!t->arena || !t->piece || !t->len || !t->score || !t->sorted) {
        slora_tokenizer_free(t);
        return SLORA_ENOMEM;
    }
    char *a = t->arena;
    for (int i = 0; i < n; i++) {
        convert_piece(src, i, a);
        t->piece[i] = a;
        t->len[i] = converted_len(src, i);
        t->score[i] = src->scores[i];
        t->sorted[i] = (struct tok_index){a, t->len[i], i};
        if ((int)t->len[i] > t->max_piece_len)
            t->max_piece_len = (int)t->len[i];
        a += t->len[i] + 1;
    }
    qsort(t->sorted, (size_t)n, sizeof(*t->sorted), cmp_index);
    for (int b = 0; b < 256; b++) {
        t->byte_pieces[2 * b] = (char)b;
        t->byte_pieces[2 * b + 1] = '\0';
    }
    t->space_id = lookup(t, " ", 1);
    *out = t;
    return 0;
}

static int32_t read_i32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

static float read_f32(const unsigned char *p)
{
    uint32_t u = (uint32_t)read_i32(p);
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static int read_file(const char *path, unsigned char **buf, size_t *size, char *diag,
                     size_t diag_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(diag, diag_len, "%s: %s", path, strerror(errno));
        return SLORA_EIO;
    }
    int err = SLORA_EIO;
    long end;
    if (fseek(f, 0, SEEK_END) || (end = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        snprintf(diag, diag_len, "%s: cannot determine size: %s", path, strerror(errno));
        goto err_close;
    }
    *size = (size_t)end;
    *buf = malloc(*size ? *size : 1);
    if (!*buf) {
        err = SLORA_ENOMEM;
        goto err_close;
    }
    if (fread(*buf, 1, *size, f) != *size) {
        snprintf(diag, diag_len, "%s: read error", path);
        free(*buf);
        goto err_close;
    }
    fclose(f);
    return 0;
err_close:
    fclose(f);
    return err;
}

int slora_tokenizer_load(const char *path, int vocab_size, struct slora_tokenizer **out, char *diag,
                         size_t diag_len)
{
    *out = NULL;
    if (vocab_size < 3 || (size_t)vocab_size > SIZE_MAX / sizeof(char *)) {
        snprintf(diag, diag_len, "%s: vocabulary size %d: need at least 3 pieces", path,
                 vocab_size);
        return SLORA_EFORMAT;
    }
    unsigned char *buf;
    size_t size;
    int err = read_file(path, &buf, &size, diag, diag_len);
    if (err)
        return err;
    const char **pieces = malloc((size_t)vocab_size * sizeof(*pieces));
    size_t *lens = malloc((size_t)vocab_size * sizeof(*lens));
    float *scores = malloc((size_t)vocab_size * sizeof(*scores));
    err = SLORA_ENOMEM;
    if (!pieces || !lens || !scores)
        goto err_free_arrays;
    err = SLORA_EFORMAT;
    if (size < 4) {
        snprintf(diag, diag_len, "%s: truncated: %zu bytes, no max_token_length header", path,
                 size);
        goto err_free_arrays;
    }
    int32_t max_len = read_i32(buf);
    if (max_len < 1 || max_len > MAX_PIECE_LEN) {
        snprintf(diag, diag_len, "%s: max_token_length %d out of range [1, %d]", path, (int)max_len,
                 MAX_PIECE_LEN);
        goto err_free_arrays;
    }
    size_t off = 4;
    for (int i = 0; i < vocab_size; i++) {
        if (size - off < 8) {
            snprintf(diag, diag_len,
                     "%s: truncated at byte %zu: piece %d of %d missing (vocab_size mismatch?)",
                     path, off, i, vocab_size);
            goto err_free_arrays;
        }
        scores[i] = read_f32(buf + off);
        int32_t len = read_i32(buf + off + 4);
        if (len < 0 || len > max_len) {
            snprintf(diag, diag_len, "%s: piece %d at byte %zu has length %d, outside [0, %d]",
                     path, i, off + 4, (int)len, (int)max_len);
            goto err_free_arrays;
        }
        off += 8;
        if (size - off < (size_t)len) {
            snprintf(diag, diag_len, "%s: truncated at byte %zu: piece %d needs %d bytes", path,
                     off, i, (int)len);
            goto err_free_arrays;
        }
        pieces[i] = (const char *)buf + off;
        lens[i] = (size_t)len;
        off += (size_t)len;
    }
    if (off != size) {
        snprintf(diag, diag_len,
                 "%s: %zu trailing bytes after %d pieces (tokenizer is for a larger vocabulary)",
                 path, size - off, vocab_size);
        goto err_free_arrays;
    }
    struct piece_src src = {pieces, lens, scores, false};
    char sub[200];
    err = build(&src, vocab_size, out, sub, sizeof(sub));
    if (err)
        snprintf(diag, diag_len, "%s: %s", path, sub);
err_free_arrays:
    free(pieces);
    free(lens);
    free(scores);
    free(buf);
    return err;
}

int slora_tokenizer_new_from_vocab(const char *const *pieces, const size_t *lens,
                                   const float *scores, int n, struct slora_tokenizer **out,
                                   char *diag, size_t diag_len)
{
    *out = NULL;
    struct piece_src src = {pieces, lens, scores, true};
    return build(&src, n, out, diag, diag_len);
}

void slora_tokenizer_free(struct slora_tokenizer *t)
{
    if (!t)
        return;
    free(t->arena);
    free(t->piece);
    free(t->len);
    free(t->score);
    free(t->sorted);
    free(t);
}

int slora_tokenizer_vocab_size(const struct slora_tokenizer *t)
{
    return t->vocab_size;
}

size_t slora_tokenizer_max_text_bytes(const struct slora_tokenizer *t, int n_tokens)
{
    /* the non-BOS tokens cover the text plus the dummy-prefix space */
    if (n_tokens < 2)
        return 0;
    return (size_t)(n_tokens - 1) * (size_t)t->max_piece_len - 1;
}

int slora_tokenizer_max_piece_len(const struct slora_tokenizer *t)
{
    return t->max_piece_len;
}

const char *slora_tokenizer_piece(const struct slora_tokenizer *t, int id, size_t *len)
{
    if (id < 0 || id >= t->vocab_size) {
        *len = 0;
        return "";
    }
    *len = t->len[id];
    return t->piece[id];
}

float slora_tokenizer_score(const struct slora_tokenizer *t, int id)
{
    return id >= 0 && id < t->vocab_size ? t->score[id] : 0.0f;
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

/* run.c: sscanf(piece, "<0x%02hhX>", &b) == 1, i.e. "<0x" and one or two hex
 * digits (what follows is not checked). -1 when the piece is not a byte. */
static int piece_byte(const char *p, size_t n)
{
    if (n < 4 || memcmp(p, "<0x", 3) || hexval(p[3]) < 0)
        return -1;
    int v = hexval(p[3]);
    if (n > 4 && hexval(p[4]) >= 0)
        v = v * 16 + hexval(p[4]);
    return v;
}

const char *slora_tokenizer_decode(const struct slora_tokenizer *t, int prev, int token,
                                   size_t *len)
{
    if (token < 0 || token >= t->vocab_size) {
        *len = 0;
        return "";
    }
    const char *p = t->piece[token];
    size_t n = t->len[token];
    /* sentencepiece strips the leading space after BOS (llama2.c PR #89) */
    if (prev == SLORA_TOK_BOS && n && p[0] == ' ') {
        p++;
        n--;
    }
    int b = piece_byte(p, n);
    if (b >= 0) {
        *len = 1;
        return t->byte_pieces + 2 * b;
    }
    *len = n;
    return p;
}

/* The character at s[0..n): > 0 its length when well-formed, 0 when s is a
 * well-formed but incomplete prefix, -k when ill-formed with a maximal
 * subpart of k bytes (Unicode 3.9, table 3-7). */
static int utf8_char(const unsigned char *s, size_t n)
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

size_t slora_tokenizer_utf8_clean(const char *s, size_t n, bool final, char *out, size_t *used)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t pos = 0, o = 0;
    while (pos < n) {
        int r = utf8_char(u + pos, n - pos);
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

char *slora_tokenizer_detokenize(const struct slora_tokenizer *t, int prev, const int *ids, int n,
                                 size_t *len)
{
    size_t raw_len = 0;
    for (int i = 0; i < n; i++) {
        size_t k;
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
        if (ids[i] == SLORA_TOK_BOS || ids[i] == SLORA_TOK_EOS)
            continue;
        size_t k;
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

/* A candidate merge of the symbols at positions left and right (linked list
 * neighbours when pushed); stale once either symbol changed. */
struct merge {
    float score;
    int left;
    int right;
    int left_tok;
    int right_tok;
    int id;
};

struct merge_heap {
    struct merge *m;
    size_t n;
};

/* Higher score first; on equal scores the leftmost pair, as run.c's scan. */
static bool merge_before(const struct merge *a, const struct merge *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(struct merge_heap *h, struct merge m)
{
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_before(&m, &h->m[parent]))
            break;
        h->m[i] = h->m[parent];
        i = parent;
    }
    h->m[i] = m;
}

static struct merge heap_pop(struct merge_heap *h)
{
    struct merge top = h->m[0], last = h->m[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && merge_before(&h->m[c + 1], &h->m[c]))
            c++;
        if (!merge_before(&h->m[c], &last))
            break;
        h->m[i] = h->m[c];
        i = c;
    }
    if (h->n)
        h->m[i] = last;
    return top;
}

struct symbols {
    int *tok;
    int *next; /* -1 at the end */
    int *prev; /* -1 at the start */
};

static void push_pair(const struct slora_tokenizer *t, struct merge_heap *h,
                      const struct symbols *s, int left, char *buf)
{
    int right = s->next[left];
    if (right < 0)
        return;
    int a = s->tok[left], b = s->tok[right];
    memcpy(buf, t->piece[a], t->len[a]);
    memcpy(buf + t->len[a], t->piece[b], t->len[b]);
    int id = lookup(t, buf, t->len[a] + t->len[b]);
    if (id >= 0 && t->score[id] > MERGE_FLOOR)
        heap_push(h, (struct merge){t->score[id], left, right, a, b, id});
}

/* Merge tokens[first..n) in place; returns the new count. */
static int merge_all(const struct slora_tokenizer *t, int *tokens, int first, int n)
{
    int m = n - first;
    if (m < 2)
        return n;
    struct symbols s;
    struct merge_heap h = {0};
    s.tok = tokens + first;
    s.next = malloc((size_t)m * sizeof(int));
    s.prev = malloc((size_t)m * sizeof(int));
    /* m - 1 initial pairs plus at most 2 per merge (m - 1 merges) */
    h.m = malloc(3 * (size_t)m * sizeof(*h.m));
    char *buf = malloc(2 * (size_t)t->max_piece_len + 1);
    int out = -1;
    if (!s.next || !s.prev || !h.m || !buf)
        goto err_free;
    for (int i = 0; i < m; i++) {
        s.next[i] = i + 1 < m ? i + 1 : -1;
        s.prev[i] = i - 1;
    }
    for (int i = 0; i < m - 1; i++)
        push_pair(t, &h, &s, i, buf);
    while (h.n) {
        struct merge g = heap_pop(&h);
        if (s.tok[g.left] != g.left_tok || s.next[g.left] != g.right ||
            s.tok[g.right] != g.right_tok)
            continue;
        s.tok[g.left] = g.id;
        s.tok[g.right] = -1;
        s.next[g.left] = s.next[g.right];
        if (s.next[g.right] >= 0)
            s.prev[s.next[g.right]] = g.left;
        if (s.prev[g.left] >= 0)
            push_pair(t, &h, &s, s.prev[g.left], buf);
        push_pair(t, &h, &s, g.left, buf);
    }
    out = first;
    for (int i = 0; i >= 0; i = s.next[i])
        tokens[out++] = s.tok[i];
err_free:
    free(s.next);
    free(s.prev);
    free(h.m);
    free(buf);
    return out;
}

int slora_tokenizer_encode(const struct slora_tokenizer *t, const char *text, bool bos, int *tokens,
                           int *n_tokens)
{
    int n = 0;
    *n_tokens = 0;
    if (strlen(text) > (size_t)INT32_MAX - 3)
        return SLORA_ELIMIT;
    if (bos)
        tokens[n++] = SLORA_TOK_BOS;
    int first = n;
    /* the dummy prefix; a vocabulary without " " gets its byte token */
    if (text[0] != '\0')
        tokens[n++] = t->space_id >= 0 ? t->space_id : ' ' + 3;
    for (const char *c = text; *c != '\0';) {
        /* one UTF-8 codepoint: a lead byte and up to 3 continuation bytes */
        size_t len = 1;
        while (len < 4 && ((unsigned char)c[len] & 0xC0) == 0x80)
            len++;
        int id = lookup(t, c, len);
        if (id >= 0) {
            tokens[n++] = id;
        } else {
            for (size_t i = 0; i < len; i++)
                tokens[n++] = (unsigned char)c[i] + 3;
        }
        c += len;
    }
    for (int i = first; i < n; i++) {
        if (tokens[i] >= t->vocab_size)
            return SLORA_ERANGE;
    }
    n = merge_all(t, tokens, first, n);
    if (n < 0)
        return SLORA_ENOMEM;
    *n_tokens = n;
    return 0;
}
