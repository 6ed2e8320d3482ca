/* tok_regex.c - the small backtracking regex the generic pre-tokenizer
 * splits run, with the semantics of ECMAScript std::regex as llama.cpp's
 * unicode_regex_split_stl uses it (leftmost match, greedy quantifiers that
 * give characters back, `$` at the end of the searched range, `\s` the C
 * locale's six ASCII spaces).
 *
 * Supported: a sequence of atoms - a character, `.`, a class `[...]` or
 * `[^...]` with ranges and escapes, `\s \S \d \D \w \W` and escaped
 * characters - each with `?`, `*`, `+` or `{m}`, `{m,}`, `{m,n}`; anchors
 * `^` and `$`. That is every pattern of the supported pre-tokenizers that
 * has no hand-written matcher (tok_pretok.c); anything else (groups,
 * alternation, lookaround) fails to compile.
 */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

enum { CLS_SPACE = 1, CLS_DIGIT = 2, CLS_WORD = 4 };

struct range {
    uint32_t lo, hi;
};

struct atom {
    enum { A_CLASS, A_BEGIN, A_END } kind;
    bool negate;
    unsigned cls;     /* CLS_* included */
    unsigned not_cls; /* negated escapes inside a class ([\S]) */
    struct range *r;  /* sorted, merged */
    int n_r;
    unsigned min, max; /* repetitions; max UINT32_MAX: unbounded */
};

struct slora__tok_regex {
    struct atom *a;
    int n;
};

struct parser {
    const char *p, *end;
    bool bytes;
    bool ok;
};

static uint32_t next_char(struct parser *ps)
{
    if (ps->p >= ps->end) {
        ps->ok = false;
        return 0;
    }
    if (ps->bytes)
        return (unsigned char)*ps->p++;
    uint32_t c;
    size_t len = slora__tok_utf8_len((unsigned char)*ps->p);
    if (len > (size_t)(ps->end - ps->p) || slora__tok_utf8_decode(ps->p, len, &c) != 1) {
        ps->ok = false;
        return 0;
    }
    ps->p += len;
    return c;
}

static bool is_space(uint32_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool in_cls(unsigned cls, uint32_t c)
{
    return ((cls & CLS_SPACE) && is_space(c)) || ((cls & CLS_DIGIT) && c >= '0' && c <= '9') ||
           ((cls & CLS_WORD) && (c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                                 (c >= 'A' && c <= 'Z')));
}

static bool add_range(struct atom *a, uint32_t lo, uint32_t hi)
{
    struct range *r = realloc(a->r, ((size_t)a->n_r + 1) * sizeof(*r));
    if (!r)
        return false;
    a->r = r;
    a->r[a->n_r++] = (struct range){lo, hi};
    return true;
}

/* After a backslash: a class escape (returns 0 and sets *cls / *not_cls) or
 * the escaped character (returns 1 and sets *c). */
static int escape(struct parser *ps, uint32_t *c, unsigned *cls, unsigned *not_cls)
{
    uint32_t e = next_char(ps);
    *cls = *not_cls = 0;
    switch (e) {
    case 's': *cls = CLS_SPACE; return 0;
    case 'S': *not_cls = CLS_SPACE; return 0;
    case 'd': *cls = CLS_DIGIT; return 0;
    case 'D': *not_cls = CLS_DIGIT; return 0;
    case 'w': *cls = CLS_WORD; return 0;
    case 'W': *not_cls = CLS_WORD; return 0;
    case 'r': *c = '\r'; return 1;
    case 'n': *c = '\n'; return 1;
    case 't': *c = '\t'; return 1;
    case 'f': *c = '\f'; return 1;
    case 'v': *c = '\v'; return 1;
    default:
        /* identity escapes of punctuation; letters and digits would be
         * escapes this parser does not know */
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'))
            ps->ok = false;
        *c = e;
        return 1;
    }
}

static int cmp_range(const void *pa, const void *pb)
{
    const struct range *a = pa, *b = pb;
    return (a->lo > b->lo) - (a->lo < b->lo);
}

static void parse_class(struct parser *ps, struct atom *a)
{
    if (ps->p < ps->end && *ps->p == '^') {
        a->negate = true;
        ps->p++;
    }
    bool first = true;
    while (ps->ok) {
        if (ps->p >= ps->end) {
            ps->ok = false;
            return;
        }
        if (*ps->p == ']' && !first) {
            ps->p++;
            break;
        }
        first = false;
        uint32_t lo, hi;
        unsigned cls, not_cls;
        if (*ps->p == '\\') {
            ps->p++;
            if (!escape(ps, &lo, &cls, &not_cls)) {
                a->cls |= cls;
                a->not_cls |= not_cls;
                continue;
            }
        } else {
            lo = next_char(ps);
        }
        hi = lo;
        if (ps->p + 1 < ps->end && ps->p[0] == '-' && ps->p[1] != ']') {
            ps->p++;
            if (*ps->p == '\\') {
                ps->p++;
                if (!escape(ps, &hi, &cls, &not_cls))
                    ps->ok = false;
            } else {
                hi = next_char(ps);
            }
            if (hi < lo)
                ps->ok = false;
        }
        if (ps->ok && !add_range(a, lo, hi))
            ps->ok = false;
    }
    if (!ps->ok || !a->n_r)
        return;
    qsort(a->r, (size_t)a->n_r, sizeof(*a->r), cmp_range);
    int m = 0;
    for (int i = 1; i < a->n_r; i++) {
        if (a->r[i].lo <= a->r[m].hi + 1) {
            if (a->r[i].hi > a->r[m].hi)
                a->r[m].hi = a->r[i].hi;
        } else {
            a->r[++m] = a->r[i];
        }
    }
    a->n_r = m + 1;
}

static unsigned parse_uint(struct parser *ps)
{
    unsigned v = 0;
    bool any = false;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9' && v < 100000) {
        v = v * 10 + (unsigned)(*ps->p++ - '0');
        any = true;
    }
    if (!any)
        ps->ok = false;
    return v;
}

static void parse_quantifier(struct parser *ps, struct atom *a)
{
    a->min = a->max = 1;
    if (ps->p >= ps->end)
        return;
    switch (*ps->p) {
    case '?': a->min = 0; break;
    case '*': a->min = 0; a->max = UINT32_MAX; break;
    case '+': a->max = UINT32_MAX; break;
    case '{':
        ps->p++;
        a->min = a->max = parse_uint(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            a->max = ps->p < ps->end && *ps->p == '}' ? UINT32_MAX : parse_uint(ps);
        }
        if (ps->p >= ps->end || *ps->p != '}' || a->max < a->min)
            ps->ok = false;
        break;
    default:
        return;
    }
    ps->p++;
    /* lazy and possessive forms are not supported */
    if (ps->p < ps->end && (*ps->p == '?' || *ps->p == '+'))
        ps->ok = false;
}

struct slora__tok_regex *slora__tok_regex_new(const char *pattern, bool bytes)
{
    struct slora__tok_regex *re = calloc(1, sizeof(*re));
    struct parser ps = {pattern, pattern + strlen(pattern), bytes, re != NULL};
    while (ps.ok && ps.p < ps.end) {
        struct atom *a = realloc(re->a, ((size_t)re->n + 1) * sizeof(*a));
        if (!a) {
            ps.ok = false;
            break;
        }
        re->a = a;
        a = &re->a[re->n++];
        memset(a, 0, sizeof(*a));
        char c = *ps.p;
        if (c == '(' || c == ')' || c == '|' || c == '?' || c == '*' || c == '+' || c == '{') {
            ps.ok = false;
            break;
        }
        if (c == '^' || c == '$') {
            ps.p++;
            a->kind = c == '^' ? A_BEGIN : A_END;
            continue;
        }
        a->kind = A_CLASS;
        uint32_t ch;
        unsigned cls, not_cls;
        if (c == '[') {
            ps.p++;
            parse_class(&ps, a);
        } else if (c == '.') {
            ps.p++;
            a->negate = true; /* anything but a line terminator */
            ps.ok = add_range(a, '\n', '\n') && add_range(a, '\r', '\r') &&
                    add_range(a, 0x2028, 0x2029);
        } else if (c == '\\') {
            ps.p++;
            if (escape(&ps, &ch, &cls, &not_cls))
                ps.ok = ps.ok && add_range(a, ch, ch);
            a->cls = cls;
            a->not_cls = not_cls;
        } else {
            ch = next_char(&ps);
            ps.ok = ps.ok && add_range(a, ch, ch);
        }
        if (ps.ok)
            parse_quantifier(&ps, a);
    }
    if (!ps.ok) {
        slora__tok_regex_free(re);
        return NULL;
    }
    return re;
}

void slora__tok_regex_free(struct slora__tok_regex *re)
{
    if (!re)
        return;
    for (int i = 0; i < re->n; i++)
        free(re->a[i].r);
    free(re->a);
    free(re);
}

static bool atom_has(const struct atom *a, uint32_t c)
{
    bool in = in_cls(a->cls, c) || (a->not_cls && !in_cls(a->not_cls, c));
    int lo = 0, hi = a->n_r - 1;
    while (!in && lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < a->r[mid].lo)
            hi = mid - 1;
        else if (c > a->r[mid].hi)
            lo = mid + 1;
        else
            in = true;
    }
    return in != a->negate;
}

/* Match atoms i.. at s[pos..n); sets *end. Greedy, giving back one
 * character at a time, as a backtracking ECMAScript engine does. */
static bool match(const struct slora__tok_regex *re, int i, const uint32_t *s, size_t pos,
                  size_t n, size_t *end)
{
    if (i == re->n) {
        *end = pos;
        return true;
    }
    const struct atom *a = &re->a[i];
    if (a->kind != A_CLASS)
        return (a->kind == A_END ? pos == n : pos == 0) && match(re, i + 1, s, pos, n, end);
    size_t k = 0;
    while (k < a->max && pos + k < n && atom_has(a, s[pos + k]))
        k++;
    for (;; k--) {
        if (k < a->min)
            return false;
        if (match(re, i + 1, s, pos + k, n, end))
            return true;
        if (k == 0)
            return false;
    }
}

/* Leftmost start first. When the first atom is an unbounded class (C+,
 * C*) and a start fails, every start inside the run of C it covered fails
 * too: the rest of the pattern would begin at positions that start already
 * tried (and the rest's result depends only on its position). Skipping the
 * run keeps a search like \s+$ over a long run of spaces linear. */
int slora__tok_regex_search(const struct slora__tok_regex *re, const uint32_t *s, size_t from,
                            size_t n, size_t *mb, size_t *me)
{
    const struct atom *a = re->n ? &re->a[0] : NULL;
    bool skip = a && a->kind == A_CLASS && a->max == UINT32_MAX;
    for (size_t at = from; at <= n; at++) {
        if (match(re, 0, s, at, n, me)) {
            *mb = at;
            return 0;
        }
        while (skip && at < n && atom_has(a, s[at]))
            at++;
    }
    return -1;
}
