/* template_lex.c - chat-template source -> tokens, mirroring jinja2's lexer
 * (3.x) with Hugging Face's settings: newlines normalised to "\n" and one
 * trailing newline dropped (keep_trailing_newline=False); "{%-"/"-%}" strip
 * all whitespace on that side; trim_blocks drops the first newline after a
 * block or comment tag; lstrip_blocks drops spaces and tabs before a block
 * or comment tag that starts its line; "+" turns either off for one tag.
 * Comments are dropped here. String literals are decoded as Python's
 * unicode-escape does them. Brackets are balanced: inside them "}}" and
 * "%}" are operators, as in jinja2.
 */
#include "template_internal.h"

#include "internal.h"

#include <slora/error.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Arena: blocks of at least 16 KiB, 16-byte aligned slices. */
struct slora__tarena_blk {
    struct slora__tarena_blk *next;
    size_t used, cap;
    _Alignas(16) unsigned char mem[];
};

void *slora__tpl_arena_alloc(struct slora__tarena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct slora__tarena_blk *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->mem + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void slora__tpl_arena_free(struct slora__tarena *a)
{
    while (a->head) {
        struct slora__tarena_blk *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

struct lexer {
    struct slora__tarena *a;
    const char *s; /* normalised source */
    size_t len, pos;
    size_t lc_pos; /* line/column cursor */
    uint32_t line, col;
    struct slora__ttok *toks;
    size_t n, cap;
    char brackets[256]; /* open brackets' closers */
    size_t nbr;
    char *diag;
    size_t diag_len;
};

static void linecol(struct lexer *L, size_t pos, uint32_t *line, uint32_t *col)
{
    while (L->lc_pos < pos) {
        if (L->s[L->lc_pos] == '\n') {
            L->line++;
            L->col = 1;
        } else if (((unsigned char)L->s[L->lc_pos] & 0xc0) != 0x80) {
            L->col++;
        }
        L->lc_pos++;
    }
    *line = L->line;
    *col = L->col;
}

static int lfail(struct lexer *L, size_t pos, int err, const char *msg)
{
    uint32_t line, col;
    linecol(L, pos, &line, &col);
    return slora__diag(L->diag, L->diag_len, err, "line %u, column %u: %s", line, col, msg);
}

static struct slora__ttok *push(struct lexer *L, uint8_t type, size_t pos)
{
    if (L->n == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        struct slora__ttok *t = slora__tpl_arena_alloc(L->a, cap * sizeof(*t));
        if (!t)
            return NULL;
        if (L->n)
            memcpy(t, L->toks, L->n * sizeof(*t));
        L->toks = t;
        L->cap = cap;
    }
    struct slora__ttok *t = &L->toks[L->n++];
    memset(t, 0, sizeof(*t));
    t->type = type;
    linecol(L, pos, &t->line, &t->col);
    return t;
}

/* Length of the Python-whitespace code point at p (0 when none). */
static size_t space_at(const char *p, const char *end)
{
    if (p >= end)
        return 0;
    uint32_t cp;
    size_t n = slora__tpl_utf8_dec(p, &cp);
    return slora__tpl_isspace(cp) ? n : 0;
}

static size_t skip_space(const char *s, size_t pos, size_t len)
{
    size_t n;
    while ((n = space_at(s + pos, s + len)))
        pos += n;
    return pos;
}

/* Length of text once trailing whitespace is stripped (str.rstrip()). */
static size_t rstrip_len(const char *s, size_t len)
{
    size_t keep = 0, i = 0;
    while (i < len) {
        size_t n = space_at(s + i, s + len);
        if (n) {
            i += n;
        } else {
            i += slora__tpl_utf8_dec(s + i, &(uint32_t){0});
            keep = i;
        }
    }
    return keep;
}

static bool all_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = space_at(s + i, s + len);
        if (!n)
            return false;
        i += n;
    }
    return len > 0;
}

static bool at(const struct lexer *L, size_t pos, const char *lit)
{
    size_t n = strlen(lit);
    return pos + n <= L->len && memcmp(L->s + pos, lit, n) == 0;
}

/* Python's unicode-escape decoding of a string literal's body (after
 * jinja2's backslashreplace of non-ASCII text). */
static int decode_string(struct lexer *L, size_t pos, const char *p, size_t n, char **out,
                         size_t *out_len)
{
    /* Worst growth: "\\" + a 4-byte character (5 bytes) -> "\\U0001f600" (10). */
    char *d = slora__tpl_arena_alloc(L->a, 2 * n + 1);
    char *w = d;
    if (!d)
        return SLORA_ENOMEM;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        if (c != '\\') {
            *w++ = p[i++];
            continue;
        }
        if (i + 1 >= n)
            return lfail(L, pos, SLORA_EINVAL, "\\ at end of string");
        unsigned char e = (unsigned char)p[i + 1];
        uint32_t cp = 0;
        size_t digits = 0, want = 0;
        i += 2;
        switch (e) {
        case '\n': continue;
        case '\\': *w++ = '\\'; continue;
        case '\'': *w++ = '\''; continue;
        case '"': *w++ = '"'; continue;
        case 'a': *w++ = '\a'; continue;
        case 'b': *w++ = '\b'; continue;
        case 'f': *w++ = '\f'; continue;
        case 'n': *w++ = '\n'; continue;
        case 'r': *w++ = '\r'; continue;
        case 't': *w++ = '\t'; continue;
        case 'v': *w++ = '\v'; continue;
        case 'x': want = 2; break;
        case 'u': want = 4; break;
        case 'U': want = 8; break;
        case 'N':
            return lfail(L, pos, SLORA_EUNSUPPORTED, "unsupported: \\N{...} escape in a string");
        default:
            if (e >= '0' && e <= '7') {
                cp = e - '0';
                for (int k = 0; k < 2 && i < n && p[i] >= '0' && p[i] <= '7'; k++)
                    cp = cp * 8 + (uint32_t)(p[i++] - '0');
                w += slora__tpl_utf8_enc(cp, w);
                continue;
            }
            /* Unknown escapes stay as they are; a non-ASCII character after
             * the backslash reads as its backslashreplace spelling. */
            *w++ = '\\';
            if (e < 0x80) {
                *w++ = (char)e;
            } else {
                i += slora__tpl_utf8_dec(p + i - 1, &cp) - 1;
                const char *fmt = cp < 0x100 ? "x%02x" : cp < 0x10000 ? "u%04x" : "U%08x";
                char tmp[12];
                int k = snprintf(tmp, sizeof(tmp), fmt, cp);
                memcpy(w, tmp, (size_t)k);
                w += k;
            }
            continue;
        }
        for (; digits < want && i < n; digits++, i++) {
            char h = p[i];
            int v = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
            if (v < 0)
                break;
            cp = cp * 16 + (uint32_t)v;
        }
        if (digits < want)
            return lfail(L, pos, SLORA_EINVAL, "truncated escape in a string");
        if (cp > 0x10ffff)
            return lfail(L, pos, SLORA_EINVAL, "illegal Unicode character in a string");
        if (cp >= 0xd800 && cp <= 0xdfff)
            return lfail(L, pos, SLORA_EUNSUPPORTED,
                         "unsupported: a lone surrogate escape in a string");
        w += slora__tpl_utf8_enc(cp, w);
    }
    *w = '\0';
    *out = d;
    *out_len = (size_t)(w - d);
    return 0;
}

static bool isdig(char c)
{
    return c >= '0' && c <= '9';
}

/* (\d+_)*\d+ at pos: end position, or pos when none. */
static size_t digits_us(const struct lexer *L, size_t pos)
{
    size_t p = pos;
    while (p < L->len && isdig(L->s[p])) {
        while (p < L->len && isdig(L->s[p]))
            p++;
        if (p + 1 < L->len && L->s[p] == '_' && isdig(L->s[p + 1]))
            p++;
    }
    return p;
}

static int lex_number(struct lexer *L, size_t *pos)
{
    const char *s = L->s;
    size_t p0 = *pos, p = digits_us(L, p0), end = p;
    bool is_float = false;
    if (!(p0 > 0 && s[p0 - 1] == '.')) {
        size_t q = p, fe;
        if (q < L->len && s[q] == '.' && (fe = digits_us(L, q + 1)) > q + 1) {
            q = fe;
            is_float = true;
        }
        if (q < L->len && (s[q] == 'e' || s[q] == 'E')) {
            size_t r = q + 1;
            if (r < L->len && (s[r] == '+' || s[r] == '-'))
                r++;
            size_t ee = digits_us(L, r);
            if (ee > r) {
                q = ee;
                is_float = true;
            }
        }
        if (is_float)
            end = q;
    }
    char buf[128];
    size_t k = 0;
    for (size_t i = p0; i < end && k < sizeof(buf) - 1; i++)
        if (s[i] != '_')
            buf[k++] = s[i];
    buf[k] = '\0';
    struct slora__ttok *t = push(L, is_float ? TK_FLOAT : TK_INT, p0);
    if (!t)
        return SLORA_ENOMEM;
    if (is_float) {
        t->f = strtod(buf, NULL);
        *pos = end;
        return 0;
    }
    /* Integers: 0b/0o/0x prefixes, decimal without a leading zero, or zeros. */
    int base = 10;
    size_t q = p0;
    if (s[p0] == '0' && p0 + 1 < L->len && strchr("bBoOxX", s[p0 + 1])) {
        char b = (char)(s[p0 + 1] | 0x20);
        base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
        q = p0 + 2;
        k = 0;
        while (q < L->len && k < sizeof(buf) - 1) {
            char c = (char)(s[q] | 0x20);
            bool ok = base == 2 ? (c == '0' || c == '1') : base == 8 ? (c >= '0' && c <= '7')
                                                          : (isdig(c) || (c >= 'a' && c <= 'f'));
            if (ok)
                buf[k++] = c;
            else if (!(s[q] == '_' && q + 1 < L->len))
                break;
            q++;
        }
        buf[k] = '\0';
        if (!k)
            return lfail(L, p0, SLORA_EINVAL, "invalid integer literal");
        end = q;
    } else if (s[p0] == '0') {
        end = p0 + 1; /* "0(_?0)*" only: 012 is 0 then 12 */
        while (end < L->len && (s[end] == '0' || (s[end] == '_' && end + 1 < L->len &&
                                                  s[end + 1] == '0')))
            end++;
        buf[0] = '0';
        buf[1] = '\0';
    }
    errno = 0;
    char *e;
    unsigned long long v = strtoull(buf, &e, base);
    if (errno || v > INT64_MAX || k >= sizeof(buf) - 1)
        return lfail(L, p0, SLORA_EUNSUPPORTED, "unsupported: integer literal beyond 64 bits");
    t->i = (int64_t)v;
    *pos = end;
    return 0;
}

static const struct {
    const char *s;
    uint8_t op;
} ops[] = {
    {"//", OP_FLOORDIV}, {"**", OP_POW}, {"==", OP_EQ}, {"!=", OP_NE}, {">=", OP_GE},
    {"<=", OP_LE},       {"+", OP_ADD},  {"-", OP_SUB}, {"/", OP_DIV}, {"*", OP_MUL},
    {"%", OP_MOD},       {"~", OP_TILDE}, {"[", OP_LBRACKET}, {"]", OP_RBRACKET},
    {"(", OP_LPAREN},    {")", OP_RPAREN}, {"{", OP_LBRACE}, {"}", OP_RBRACE},
    {">", OP_GT},        {"<", OP_LT},   {"=", OP_ASSIGN}, {".", OP_DOT}, {":", OP_COLON},
    {"|", OP_PIPE},      {",", OP_COMMA}, {";", OP_SEMICOLON},
};

/* Tokens inside {{ }} or {% %} until the end tag. block: a {% %} tag. */
static int lex_tag(struct lexer *L, bool block, size_t open_pos)
{
    const char *s = L->s;
    for (;;) {
        size_t p = L->pos;
        if (p >= L->len)
            return lfail(L, open_pos, SLORA_EINVAL,
                         block ? "unexpected end of template: block tag '{%' not closed"
                               : "unexpected end of template: '{{' not closed");
        if (!L->nbr) { /* end tags count only outside brackets */
            const char *close = block ? "%}" : "}}";
            size_t end = 0;
            if (block && at(L, p, "+%}")) {
                end = p + 3;
            } else if (at(L, p, "-") && at(L, p + 1, close)) {
                end = skip_space(s, p + 3, L->len);
            } else if (at(L, p, close)) {
                end = p + 2;
                if (block && end < L->len && s[end] == '\n')
                    end++; /* trim_blocks */
            }
            if (end) {
                if (!push(L, block ? TK_BLOCK_END : TK_VAR_END, p))
                    return SLORA_ENOMEM;
                L->pos = end;
                return 0;
            }
        }
        size_t ws = skip_space(s, p, L->len);
        if (ws > p) {
            L->pos = ws;
            continue;
        }
        char c = s[p];
        if (isdig(c)) {
            int err = lex_number(L, &L->pos);
            if (err)
                return err;
            continue;
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            size_t q = p + 1;
            while (q < L->len && ((s[q] >= 'a' && s[q] <= 'z') || (s[q] >= 'A' && s[q] <= 'Z') ||
                                  s[q] == '_' || isdig(s[q])))
                q++;
            struct slora__ttok *t = push(L, TK_NAME, p);
            char *name = slora__tpl_arena_alloc(L->a, q - p + 1);
            if (!t || !name)
                return SLORA_ENOMEM;
            memcpy(name, s + p, q - p);
            t->s = name;
            t->len = q - p;
            L->pos = q;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t q = p + 1;
            while (q < L->len && s[q] != c)
                q += s[q] == '\\' && q + 1 < L->len ? 2 : 1;
            if (q >= L->len)
                return lfail(L, p, SLORA_EINVAL, "unterminated string literal");
            struct slora__ttok *t = push(L, TK_STRING, p);
            if (!t)
                return SLORA_ENOMEM;
            char *d = NULL;
            size_t dn = 0;
            int err = decode_string(L, p, s + p + 1, q - p - 1, &d, &dn);
            if (err)
                return err;
            t->s = d;
            t->len = dn;
            L->pos = q + 1;
            continue;
        }
        size_t k = 0;
        for (; k < sizeof(ops) / sizeof(ops[0]); k++)
            if (at(L, p, ops[k].s))
                break;
        if (k == sizeof(ops) / sizeof(ops[0])) {
            if ((unsigned char)c >= 0x80)
                return lfail(L, p, SLORA_EUNSUPPORTED,
                             "unsupported: non-ASCII character in an expression");
            return lfail(L, p, SLORA_EINVAL, "unexpected character in an expression");
        }
        uint8_t op = ops[k].op;
        if (op == OP_LBRACE || op == OP_LPAREN || op == OP_LBRACKET) {
            if (L->nbr == sizeof(L->brackets))
                return lfail(L, p, SLORA_ELIMIT, "brackets nested too deeply");
            L->brackets[L->nbr++] = op == OP_LBRACE ? '}' : op == OP_LPAREN ? ')' : ']';
        } else if (op == OP_RBRACE || op == OP_RPAREN || op == OP_RBRACKET) {
            if (!L->nbr || L->brackets[L->nbr - 1] != c)
                return lfail(L, p, SLORA_EINVAL, L->nbr ? "mismatched closing bracket"
                                                        : "unexpected closing bracket");
            L->nbr--;
        }
        struct slora__ttok *t = push(L, TK_OP, p);
        if (!t)
            return SLORA_ENOMEM;
        t->op = op;
        L->pos = p + strlen(ops[k].s);
    }
}

/* Newlines -> "\n", one trailing newline dropped, UTF-8 checked. */
static int normalise(struct lexer *L, const char *src, size_t len)
{
    char *d = slora__tpl_arena_alloc(L->a, len + 1);
    if (!d)
        return SLORA_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)src[i];
        if (c == '\r') {
            d[n++] = '\n';
            i += i + 1 < len && src[i + 1] == '\n' ? 2 : 1;
            continue;
        }
        if (c == 0) {
            L->s = d;
            L->len = n;
            return lfail(L, n, SLORA_EUNSUPPORTED, "unsupported: NUL byte in the template");
        }
        size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                 : (c & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = k && i + k <= len;
        for (size_t j = 1; ok && j < k; j++)
            ok = ((unsigned char)src[i + j] & 0xc0) == 0x80;
        if (ok && k > 1) {
            uint32_t cp;
            slora__tpl_utf8_dec(src + i, &cp);
            ok = cp >= (k == 2 ? 0x80u : k == 3 ? 0x800u : 0x10000u) && cp <= 0x10ffff &&
                 !(cp >= 0xd800 && cp <= 0xdfff);
        }
        if (!ok) {
            L->s = d;
            L->len = n;
            return lfail(L, n, SLORA_EINVAL, "template is not valid UTF-8");
        }
        memcpy(d + n, src + i, k);
        n += k;
        i += k;
    }
    if (n && d[n - 1] == '\n')
        n--;
    d[n] = '\0';
    L->s = d;
    L->len = n;
    return 0;
}

int slora__tpl_lex(struct slora__tarena *a, const char *src, size_t len, struct slora__ttok **toks,
                   size_t *ntoks, char *diag, size_t diag_len)
{
    struct lexer L = {.a = a, .line = 1, .col = 1, .diag = diag, .diag_len = diag_len};
    int err = normalise(&L, src, len);
    if (err)
        return err;
    const char *s = L.s;
    bool line_starting = true;
    while (L.pos < L.len) {
        /* The earliest "{{", "{%" or "{#". */
        size_t p = L.pos;
        while (p + 1 < L.len && !(s[p] == '{' && (s[p + 1] == '{' || s[p + 1] == '%' ||
                                                   s[p + 1] == '#')))
            p++;
        if (p + 1 >= L.len) {
            struct slora__ttok *t = push(&L, TK_DATA, L.pos);
            if (!t)
                return SLORA_ENOMEM;
            t->s = s + L.pos;
            t->len = L.len - L.pos;
            break;
        }
        char kind = s[p + 1];
        char sign = p + 2 < L.len && (s[p + 2] == '-' || s[p + 2] == '+') ? s[p + 2] : 0;
        size_t text_len = p - L.pos;
        if (kind == '%') {
            size_t q = skip_space(s, p + 2 + (sign != 0), L.len);
            if (at(&L, q, "raw") && (q + 3 >= L.len || !((s[q + 3] | 0x20) >= 'a' &&
                                                          (s[q + 3] | 0x20) <= 'z')))
                return lfail(&L, p, SLORA_EUNSUPPORTED, "unsupported: {% raw %} blocks");
        }
        if (sign == '-') {
            text_len = rstrip_len(s + L.pos, text_len);
        } else if (sign != '+' && kind != '{') {
            /* lstrip_blocks: whitespace alone between a line start and the tag. */
            size_t l_pos = text_len;
            while (l_pos > 0 && s[L.pos + l_pos - 1] != '\n')
                l_pos--;
            if ((l_pos > 0 || line_starting) && all_space(s + L.pos + l_pos, text_len - l_pos))
                text_len = l_pos;
        }
        if (text_len) {
            struct slora__ttok *t = push(&L, TK_DATA, L.pos);
            if (!t)
                return SLORA_ENOMEM;
            t->s = s + L.pos;
            t->len = text_len;
        }
        size_t open = p;
        L.pos = p + 2 + (sign != 0);
        if (kind == '#') {
            size_t q = L.pos, end = 0;
            for (; q + 1 < L.len; q++) {
                if (at(&L, q, "+#}")) {
                    end = q + 3;
                } else if (at(&L, q, "-#}")) {
                    end = skip_space(s, q + 3, L.len);
                } else if (at(&L, q, "#}")) {
                    end = q + 2;
                    if (end < L.len && s[end] == '\n')
                        end++;
                }
                if (end)
                    break;
            }
            if (!end)
                return lfail(&L, open, SLORA_EINVAL, "missing end of comment tag");
            L.pos = end;
        } else {
            if (!push(&L, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, open))
                return SLORA_ENOMEM;
            err = lex_tag(&L, kind == '%', open);
            if (err)
                return err;
        }
        line_starting = L.pos > 0 && s[L.pos - 1] == '\n';
    }
    if (!push(&L, TK_EOF, L.len))
        return SLORA_ENOMEM;
    *toks = L.toks;
    *ntoks = L.n;
    return 0;
}
