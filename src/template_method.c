/* template_method.c - the str and dict methods chat templates call
 * (strip, split, startswith, replace, upper, items, get, ...) and the
 * string operations the filters share with them, with CPython's results:
 * whitespace is str.isspace(), split(None) splits on runs, replace('')
 * inserts between characters. Case mapping covers ASCII and caseless
 * scripts; other letters are refused (SLORA_EUNSUPPORTED) rather than
 * mapped wrongly.
 */
#include "template_internal.h"

#include <slora/error.h>

#include <stdlib.h>
#include <string.h>

/* Code points without case (so ASCII-only mapping stays exact). */
static bool caseless(uint32_t c)
{
    return c < 0x80 || (c >= 0x2000 && c <= 0x206f) || (c >= 0x20a0 && c <= 0x20cf) ||
           (c >= 0x2190 && c <= 0x23ff) || (c >= 0x2500 && c <= 0x2bff) ||
           (c >= 0x3000 && c <= 0x9fff) || (c >= 0xac00 && c <= 0xd7a3) ||
           (c >= 0xf900 && c <= 0xfaff) || (c >= 0x1f000 && c <= 0x1faff) || c >= 0x20000;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char up(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

static char low(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

int slora__tpl_str_case(struct slora__tstate *st, const struct slora__tstr *s, int mode,
                        struct slora__tv *out)
{
    for (size_t i = 0; i < s->len;) {
        uint32_t c;
        i += slora__tpl_utf8_dec(s->p + i, &c);
        if (!caseless(c))
            return slora__tpl_fail(st, 0, 0, SLORA_EUNSUPPORTED,
                                   "unsupported: case mapping of non-ASCII letters (U+%04X)", c);
    }
    int err = slora__tv_str(st, s->p, s->len, out);
    if (err)
        return err;
    char *p = out->u.s->p;
    bool start = true; /* at a word start (title) or the string start (capitalize) */
    for (size_t i = 0; i < s->len; i++) {
        char c = p[i];
        switch (mode) {
        case CASE_UPPER: p[i] = up(c); break;
        case CASE_LOWER: p[i] = low(c); break;
        case CASE_CAPITALIZE: p[i] = i == 0 ? up(c) : low(c); break;
        case CASE_TITLE: /* str.title(): a cased letter after an uncased character */
            p[i] = start ? up(c) : low(c);
            start = !is_alpha(c);
            break;
        default: { /* Jinja's title filter: words start after [-\s({\[<]+ */
            uint32_t cp;
            slora__tpl_utf8_dec(p + i, &cp);
            bool delim = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' ||
                         slora__tpl_isspace(cp);
            if (!delim) {
                p[i] = start ? up(c) : low(c);
                if (((unsigned char)c & 0xc0) != 0x80)
                    start = false;
            } else {
                start = true;
            }
        }
        }
    }
    return 0;
}

static bool in_chars(const struct slora__tstr *chars, uint32_t c)
{
    if (!chars)
        return slora__tpl_isspace(c);
    for (size_t i = 0; i < chars->len;) {
        uint32_t d;
        i += slora__tpl_utf8_dec(chars->p + i, &d);
        if (d == c)
            return true;
    }
    return false;
}

int slora__tpl_str_strip(struct slora__tstate *st, const struct slora__tstr *s,
                         const struct slora__tv *chars, int which, struct slora__tv *out)
{
    const struct slora__tstr *cs = NULL;
    if (chars && chars->t == TV_STR)
        cs = chars->u.s;
    else if (chars && chars->t != TV_NONE)
        return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "strip arg must be None or str");
    size_t a = 0, b = s->len;
    if (which & STRIP_LEFT) {
        while (a < b) {
            uint32_t c;
            size_t n = slora__tpl_utf8_dec(s->p + a, &c);
            if (!in_chars(cs, c))
                break;
            a += n;
        }
    }
    if (which & STRIP_RIGHT) {
        while (b > a) {
            size_t k = b - 1;
            while (k > a && ((unsigned char)s->p[k] & 0xc0) == 0x80)
                k--;
            uint32_t c;
            slora__tpl_utf8_dec(s->p + k, &c);
            if (!in_chars(cs, c))
                break;
            b = k;
        }
    }
    return slora__tv_str(st, s->p + a, b - a, out);
}

int slora__tpl_str_replace(struct slora__tstate *st, const struct slora__tstr *s,
                           const struct slora__tstr *old, const struct slora__tstr *rep,
                           int64_t count, struct slora__tv *out)
{
    struct slora__buf b = {0};
    int err = 0;
    size_t i = 0;
    int64_t done = 0;
    if (!old->len) { /* new before every character and at the end */
        while (!err && (count < 0 || done < count)) {
            err = slora__buf_add(&b, rep->p, rep->len);
            done++;
            if (!err && i < s->len) {
                size_t n = slora__tpl_utf8_dec(s->p + i, &(uint32_t){0});
                err = slora__buf_add(&b, s->p + i, n);
                i += n;
            } else {
                break;
            }
            if (!err && b.len > st->o.max_memory)
                err = slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "replace() result too long");
        }
    } else {
        while (!err && i < s->len && (count < 0 || done < count)) {
            const char *hit = memmem(s->p + i, s->len - i, old->p, old->len);
            if (!hit)
                break;
            size_t at = (size_t)(hit - s->p);
            err = slora__buf_add(&b, s->p + i, at - i);
            if (!err)
                err = slora__buf_add(&b, rep->p, rep->len);
            i = at + old->len;
            done++;
            if (!err && b.len > st->o.max_memory)
                err = slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "replace() result too long");
        }
    }
    if (!err && i < s->len)
        err = slora__buf_add(&b, s->p + i, s->len - i);
    if (!err)
        err = slora__tv_str(st, b.p ? b.p : "", b.len, out);
    free(b.p);
    return err;
}

/* Append a new string item to a growing list (a buffer of values). */
static int push_item(struct slora__tstate *st, struct slora__buf *items, const char *p, size_t n)
{
    struct slora__tv v;
    int err = slora__tv_str(st, p, n, &v);
    if (!err && (err = slora__buf_add(items, &v, sizeof(v))))
        slora__tv_unref(st, v);
    return err;
}

int slora__tpl_str_split(struct slora__tstate *st, const struct slora__tstr *s,
                         const struct slora__tstr *sep, int64_t maxsplit, struct slora__tv *out)
{
    struct slora__buf items = {0};
    int err = 0;
    size_t i = 0;
    int64_t done = 0;
    if (sep && !sep->len)
        return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "empty separator");
    if (!sep) {
        for (;;) {
            uint32_t c;
            while (i < s->len && slora__tpl_isspace((slora__tpl_utf8_dec(s->p + i, &c), c)))
                i += slora__tpl_utf8_dec(s->p + i, &c);
            if (i >= s->len)
                break;
            if (maxsplit >= 0 && done >= maxsplit) {
                size_t e = s->len; /* the rest, trailing whitespace included */
                err = push_item(st, &items, s->p + i, e - i);
                break;
            }
            size_t j = i;
            while (j < s->len && !slora__tpl_isspace((slora__tpl_utf8_dec(s->p + j, &c), c)))
                j += slora__tpl_utf8_dec(s->p + j, &c);
            if ((err = push_item(st, &items, s->p + i, j - i)))
                break;
            done++;
            i = j;
        }
    } else {
        for (;;) {
            const char *hit = maxsplit >= 0 && done >= maxsplit
                                  ? NULL
                                  : memmem(s->p + i, s->len - i, sep->p, sep->len);
            size_t end = hit ? (size_t)(hit - s->p) : s->len;
            if ((err = push_item(st, &items, s->p + i, end - i)) || !hit)
                break;
            i = end + sep->len;
            done++;
        }
    }
    size_t n = items.len / sizeof(struct slora__tv);
    struct slora__tv *v = (struct slora__tv *)items.p;
    if (!err && !(err = slora__tv_list(st, n, false, out))) {
        memcpy(out->u.l->v, v, n * sizeof(*v));
        n = 0;
    }
    for (size_t k = 0; k < n; k++)
        slora__tv_unref(st, v[k]);
    free(items.p);
    return err;
}

int slora__tpl_str_join(struct slora__tstate *st, struct slora__tv l, const char *sep,
                        size_t sep_len, bool strict, struct slora__tv *out)
{
    struct slora__buf b = {0};
    int err = 0;
    for (size_t k = 0; !err && k < l.u.l->n; k++) {
        if (strict && l.u.l->v[k].t != TV_STR) {
            err = slora__tpl_fail(st, 0, 0, SLORA_EINVAL,
                                  "sequence item %zu: expected str instance, %s found", k,
                                  slora__tv_typename(l.u.l->v[k]));
            break;
        }
        if (k)
            err = slora__buf_add(&b, sep, sep_len);
        if (!err)
            err = slora__tv_write(st, &b, l.u.l->v[k], false);
        if (!err && b.len > st->o.max_memory)
            err = slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "join() result too long");
    }
    if (!err)
        err = slora__tv_str(st, b.p ? b.p : "", b.len, out);
    free(b.p);
    return err;
}

/* startswith/endswith: a string or a tuple of strings. */
static int affix(struct slora__tstate *st, const struct slora__tstr *s, struct slora__tv x, bool end,
                 bool *out)
{
    if (x.t == TV_LIST && x.u.l->tuple) {
        *out = false;
        for (size_t k = 0; k < x.u.l->n && !*out; k++) {
            int err = affix(st, s, x.u.l->v[k], end, out);
            if (err)
                return err;
        }
        return 0;
    }
    if (x.t != TV_STR)
        return slora__tpl_fail(st, 0, 0, SLORA_EINVAL,
                               "%s first arg must be str or a tuple of str, not %s",
                               end ? "endswith" : "startswith", slora__tv_typename(x));
    const struct slora__tstr *a = x.u.s;
    *out = a->len <= s->len && !memcmp(s->p + (end ? s->len - a->len : 0), a->p, a->len);
    return 0;
}

static int dict_list(struct slora__tstate *st, const struct slora__tdict *d, int what,
                     struct slora__tv *out)
{
    int err = slora__tv_list(st, d->n, false, out);
    for (size_t k = 0; !err && k < d->n; k++) {
        if (what == M_KEYS) {
            out->u.l->v[k] = slora__tv_ref(d->k[k]);
        } else if (what == M_VALUES) {
            out->u.l->v[k] = slora__tv_ref(d->v[k]);
        } else {
            struct slora__tv *t = &out->u.l->v[k];
            if ((err = slora__tv_list(st, 2, true, t)))
                break;
            t->u.l->v[0] = slora__tv_ref(d->k[k]);
            t->u.l->v[1] = slora__tv_ref(d->v[k]);
            err = slora__tv_list_done(st, t);
        }
    }
    if (err) {
        if (out->t == TV_LIST)
            slora__tv_unref(st, *out);
        return err;
    }
    return slora__tv_list_done(st, out);
}

int slora__tpl_call_method(struct slora__tstate *st, const struct slora__tnode *at,
                           const struct slora__tmeth *m, const struct slora__targs *a,
                           struct slora__tv *out)
{
    struct slora__tv self = m->self;
    const struct slora__tv *x = slora__tpl_arg(a, 0, NULL), *y = slora__tpl_arg(a, 1, NULL);
    static const char *const split_kw[] = {"sep", "maxsplit", NULL};
    size_t npos = 0;
    for (size_t k = 0; k < a->n; k++)
        npos += !a->kw[k];
    int err;
    switch (m->id) {
    case M_SPLIT:
        if ((err = slora__tpl_args_check(st, at, a, 2, split_kw, "split()")))
            return err;
        x = slora__tpl_arg(a, 0, "sep");
        y = slora__tpl_arg(a, 1, "maxsplit");
        if ((x && x->t != TV_STR && x->t != TV_NONE) || (y && y->t != TV_INT))
            return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL, "bad split() arguments");
        return slora__tpl_str_split(st, self.u.s, x && x->t == TV_STR ? x->u.s : NULL,
                                    y ? y->u.i : -1, out);
    case M_CYCLE:
        if (!a->n || npos != a->n)
            return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                                   "no items for cycling given");
        *out = slora__tv_ref(a->v[self.u.loop->index0 % a->n]);
        return 0;
    case M_UNSUPPORTED:
        return slora__tpl_fail(st, at->line, at->col, SLORA_EUNSUPPORTED,
                               "unsupported: the %s method '%s'", slora__tv_typename(self),
                               m->name);
    default: break;
    }
    if (npos != a->n)
        return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                               "%s() takes no keyword arguments", m->name);
    size_t max = m->id == M_REPLACE ? 3 : m->id == M_GET ? 2
                 : m->id <= M_ENDSWITH || m->id == M_JOIN ? 1 : 0;
    size_t min = m->id == M_REPLACE ? 2 : m->id == M_STARTSWITH || m->id == M_ENDSWITH ||
                                              m->id == M_GET || m->id == M_JOIN ? 1 : 0;
    if (a->n < min || a->n > max)
        return slora__tpl_fail(st, at->line, at->col,
                               a->n > max && (m->id == M_STARTSWITH || m->id == M_ENDSWITH)
                                   ? SLORA_EUNSUPPORTED : SLORA_EINVAL,
                               "%s() takes %zu to %zu arguments (%zu given)", m->name, min, max,
                               a->n);
    bool res;
    switch (m->id) {
    case M_STRIP: return slora__tpl_str_strip(st, self.u.s, x, STRIP_BOTH, out);
    case M_LSTRIP: return slora__tpl_str_strip(st, self.u.s, x, STRIP_LEFT, out);
    case M_RSTRIP: return slora__tpl_str_strip(st, self.u.s, x, STRIP_RIGHT, out);
    case M_STARTSWITH:
    case M_ENDSWITH:
        if ((err = affix(st, self.u.s, *x, m->id == M_ENDSWITH, &res)))
            return err;
        *out = slora__tv_bool(res);
        return 0;
    case M_UPPER: return slora__tpl_str_case(st, self.u.s, CASE_UPPER, out);
    case M_LOWER: return slora__tpl_str_case(st, self.u.s, CASE_LOWER, out);
    case M_TITLE: return slora__tpl_str_case(st, self.u.s, CASE_TITLE, out);
    case M_CAPITALIZE: return slora__tpl_str_case(st, self.u.s, CASE_CAPITALIZE, out);
    case M_REPLACE: {
        const struct slora__tv *c = slora__tpl_arg(a, 2, NULL);
        if (x->t != TV_STR || y->t != TV_STR || (c && c->t != TV_INT && c->t != TV_BOOL))
            return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                                   "replace() arguments must be str, str[, int]");
        int64_t cnt = c ? (c->t == TV_BOOL ? c->u.b : c->u.i) : -1;
        return slora__tpl_str_replace(st, self.u.s, x->u.s, y->u.s, cnt, out);
    }
    case M_JOIN: {
        struct slora__tv l;
        if ((err = slora__tv_iter(st, *x, &l)))
            return err;
        err = slora__tpl_str_join(st, l, self.u.s->p, self.u.s->len, true, out);
        slora__tv_unref(st, l);
        return err;
    }
    case M_ITEMS:
    case M_KEYS:
    case M_VALUES: return dict_list(st, self.u.d, m->id, out);
    case M_GET: {
        const struct slora__tv *v = slora__tv_dict_get(self.u.d, *x);
        *out = v ? slora__tv_ref(*v) : y ? slora__tv_ref(*y) : slora__tv_none();
        return 0;
    }
    case M_COPY: *out = slora__tv_ref(self); return 0;
    default:
        return slora__tpl_fail(st, at->line, at->col, SLORA_EINTERNAL, "unknown method");
    }
}
