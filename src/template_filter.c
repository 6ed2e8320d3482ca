/* template_filter.c - Jinja's filters and tests as jinja2 3.1 defines them
 * (signatures, defaults, undefined handling), with Hugging Face's tojson.
 * Every builtin name is known, so an unknown one is a Jinja error; the
 * builtins this engine does not render (round, batch, groupby, ...) fail
 * with SLORA_EUNSUPPORTED when reached. map/select/reject return lists
 * where Jinja returns generators: the text differs only if a generator
 * itself is printed, which prints an address in Jinja.
 */
#include "template_internal.h"

#include <slora/error.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum filt {
    FL_ABS, FL_CAPITALIZE, FL_COUNT, FL_DEFAULT, FL_ESCAPE, FL_FIRST, FL_FLOAT, FL_INDENT,
    FL_INT, FL_ITEMS, FL_JOIN, FL_LAST, FL_LENGTH, FL_LIST, FL_LOWER, FL_MAP, FL_REJECT,
    FL_REJECTATTR, FL_REPLACE, FL_REVERSE, FL_SAFE, FL_SELECT, FL_SELECTATTR, FL_SORT,
    FL_STRING, FL_SUM, FL_TITLE, FL_TOJSON, FL_TRIM, FL_UNIQUE, FL_UPPER,
    FL_UNSUPPORTED,
};

static const struct {
    const char *name;
    int id;
} filters[] = {
    {"abs", FL_ABS}, {"capitalize", FL_CAPITALIZE}, {"count", FL_COUNT}, {"d", FL_DEFAULT},
    {"default", FL_DEFAULT}, {"e", FL_ESCAPE}, {"escape", FL_ESCAPE}, {"first", FL_FIRST},
    {"float", FL_FLOAT}, {"indent", FL_INDENT}, {"int", FL_INT}, {"items", FL_ITEMS},
    {"join", FL_JOIN}, {"last", FL_LAST}, {"length", FL_LENGTH}, {"list", FL_LIST},
    {"lower", FL_LOWER}, {"map", FL_MAP}, {"reject", FL_REJECT}, {"rejectattr", FL_REJECTATTR},
    {"replace", FL_REPLACE}, {"reverse", FL_REVERSE}, {"safe", FL_SAFE}, {"select", FL_SELECT},
    {"selectattr", FL_SELECTATTR}, {"sort", FL_SORT}, {"string", FL_STRING}, {"sum", FL_SUM},
    {"title", FL_TITLE}, {"tojson", FL_TOJSON}, {"trim", FL_TRIM}, {"unique", FL_UNIQUE},
    {"upper", FL_UPPER},
    /* jinja2 builtins not rendered here */
    {"attr", FL_UNSUPPORTED}, {"batch", FL_UNSUPPORTED}, {"center", FL_UNSUPPORTED},
    {"dictsort", FL_UNSUPPORTED}, {"filesizeformat", FL_UNSUPPORTED},
    {"forceescape", FL_UNSUPPORTED}, {"format", FL_UNSUPPORTED}, {"groupby", FL_UNSUPPORTED},
    {"max", FL_UNSUPPORTED}, {"min", FL_UNSUPPORTED}, {"pprint", FL_UNSUPPORTED},
    {"random", FL_UNSUPPORTED}, {"round", FL_UNSUPPORTED}, {"slice", FL_UNSUPPORTED},
    {"striptags", FL_UNSUPPORTED}, {"truncate", FL_UNSUPPORTED}, {"urlencode", FL_UNSUPPORTED},
    {"urlize", FL_UNSUPPORTED}, {"wordcount", FL_UNSUPPORTED}, {"wordwrap", FL_UNSUPPORTED},
    {"xmlattr", FL_UNSUPPORTED},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int slora__tpl_filter_id(const char *name)
{
    for (size_t k = 0; k < COUNT(filters); k++)
        if (!strcmp(filters[k].name, name))
            return filters[k].id;
    return -1;
}

int slora__tpl_argfail(struct slora__tstate *st, const struct slora__tnode *at, const char *what)
{
    return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL, "bad arguments to %s", what);
}

/* Jinja's make_attrgetter: "a.b.0" walks getitem by parts (digits as ints). */
static int attr_get(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv item,
                    const struct slora__tv *attr, const struct slora__tv *dflt,
                    struct slora__tv *out)
{
    if (!attr || attr->t == TV_NONE) {
        *out = slora__tv_ref(item);
        return 0;
    }
    if (attr->t == TV_INT) {
        int err = slora__tpl_getitem(st, at, item, *attr, out);
        if (!err && dflt && out->t == TV_UNDEF)
            *out = slora__tv_ref(*dflt);
        return err;
    }
    if (attr->t != TV_STR)
        return slora__tpl_argfail(st, at, "an attribute argument");
    struct slora__tv cur = slora__tv_ref(item);
    const char *p = attr->u.s->p, *end = p + attr->u.s->len;
    int err = 0;
    while (!err) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
        bool digits = n > 0;
        for (size_t k = 0; k < n; k++)
            digits &= p[k] >= '0' && p[k] <= '9';
        struct slora__tv key, next;
        if (digits && n < 18)
            key = slora__tv_int(strtoll(p, NULL, 10));
        else if ((err = slora__tv_str(st, p, n, &key)))
            break;
        err = slora__tpl_getitem(st, at, cur, key, &next);
        slora__tv_unref(st, key);
        slora__tv_unref(st, cur);
        if (err)
            return err;
        cur = next;
        if (dflt && cur.t == TV_UNDEF)
            cur = slora__tv_ref(*dflt);
        if (!dot)
            break;
        p = dot + 1;
    }
    if (err) {
        slora__tv_unref(st, cur);
        return err;
    }
    *out = cur;
    return 0;
}

/* Python's int(str) for base 10: whitespace, sign, digits with single '_'. */
static bool parse_int(const struct slora__tstr *s, int64_t *out)
{
    size_t i = 0, n = s->len;
    while (i < n && (s->p[i] == ' ' || (s->p[i] >= '\t' && s->p[i] <= '\r')))
        i++;
    while (n > i && (s->p[n - 1] == ' ' || (s->p[n - 1] >= '\t' && s->p[n - 1] <= '\r')))
        n--;
    bool neg = false;
    if (i < n && (s->p[i] == '+' || s->p[i] == '-'))
        neg = s->p[i++] == '-';
    if (i >= n || s->p[i] == '_')
        return false;
    __int128 v = 0;
    for (; i < n; i++) {
        if (s->p[i] == '_' && i + 1 < n && s->p[i + 1] != '_')
            continue;
        if (s->p[i] < '0' || s->p[i] > '9')
            return false;
        v = v * 10 + (s->p[i] - '0');
        if (v > (__int128)INT64_MAX + 1)
            return false;
    }
    if (!neg && v > INT64_MAX)
        return false;
    *out = neg ? (int64_t)-v : (int64_t)v;
    return true;
}

/* Python's float(str): strtod on the trimmed text, no hex, '_' between digits. */
static bool parse_float(const struct slora__tstr *s, double *out)
{
    char buf[128];
    size_t k = 0;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->p[i];
        if (c == '_')
            continue;
        if (c == 'x' || c == 'X' || k + 1 >= sizeof(buf))
            return false;
        buf[k++] = c;
    }
    buf[k] = '\0';
    char *end;
    *out = strtod(buf, &end);
    while (*end == ' ' || (*end >= '\t' && *end <= '\r'))
        end++;
    return end != buf && !*end && !(buf[0] == ' ' && end == buf);
}

static int f_int(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv v,
                 const struct slora__targs *a, struct slora__tv *out)
{
    const struct slora__tv *dflt = slora__tpl_arg(a, 0, "default"), *base = slora__tpl_arg(a, 1, "base");
    if (base && !(base->t == TV_INT && base->u.i == 10))
        return slora__tpl_fail(st, at->line, at->col, SLORA_EUNSUPPORTED,
                               "unsupported: int filter with a base other than 10");
    int64_t i;
    double f;
    switch (v.t) {
    case TV_INT:
    case TV_BOOL: *out = slora__tv_int(slora__tv_as_int(v)); return 0;
    case TV_FLOAT:
        if (!isfinite(v.u.f) || fabs(v.u.f) >= 9.2e18)
            return slora__tpl_fail(st, at->line, at->col, SLORA_EUNSUPPORTED,
                                   "unsupported: int of a non-finite or huge float");
        *out = slora__tv_int((int64_t)v.u.f);
        return 0;
    case TV_STR:
        if (parse_int(v.u.s, &i)) {
            *out = slora__tv_int(i);
            return 0;
        }
        if (parse_float(v.u.s, &f) && isfinite(f) && fabs(f) < 9.2e18) {
            *out = slora__tv_int((int64_t)f);
            return 0;
        }
        break;
    case TV_UNDEF: return slora__tpl_undefined(st, v);
    default: break;
    }
    *out = dflt ? slora__tv_ref(*dflt) : slora__tv_int(0);
    return 0;
}

static int f_float(struct slora__tstate *st, struct slora__tv v, const struct slora__targs *a,
                   struct slora__tv *out)
{
    const struct slora__tv *dflt = slora__tpl_arg(a, 0, "default");
    double f;
    if (slora__tv_is_num(v)) {
        *out = slora__tv_float(v.t == TV_FLOAT ? v.u.f : (double)slora__tv_as_int(v));
        return 0;
    }
    if (v.t == TV_UNDEF)
        return slora__tpl_undefined(st, v);
    if (v.t == TV_STR && parse_float(v.u.s, &f)) {
        *out = slora__tv_float(f);
        return 0;
    }
    *out = dflt ? slora__tv_ref(*dflt) : slora__tv_float(0.0);
    return 0;
}

/* HF's tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False). */
static int f_tojson(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv v,
                    const struct slora__targs *a, struct slora__tv *out)
{
    static const char *const kws[] = {"ensure_ascii", "indent", "separators", "sort_keys", NULL};
    int err = slora__tpl_args_check(st, at, a, 4, kws, "tojson");
    if (err)
        return err;
    struct slora__tjson_opts o = {0};
    const struct slora__tv *ea = slora__tpl_arg(a, 0, kws[0]), *ind = slora__tpl_arg(a, 1, kws[1]),
                           *sep = slora__tpl_arg(a, 2, kws[2]), *sk = slora__tpl_arg(a, 3, kws[3]);
    char spaces[256];
    o.ensure_ascii = ea && slora__tv_truthy(*ea);
    o.sort_keys = sk && slora__tv_truthy(*sk);
    if (ind && ind->t == TV_STR) {
        o.indent = ind->u.s->p;
        o.indent_len = ind->u.s->len;
    } else if (ind && (ind->t == TV_INT || ind->t == TV_BOOL)) {
        int64_t n = slora__tv_as_int(*ind);
        if (n > (int64_t)sizeof(spaces))
            return slora__tpl_fail(st, at->line, at->col, SLORA_EUNSUPPORTED,
                                   "unsupported: tojson indent above %zu", sizeof(spaces));
        o.indent_len = n > 0 ? (size_t)n : 0;
        memset(spaces, ' ', o.indent_len);
        o.indent = spaces;
    } else if (ind && ind->t != TV_NONE) {
        return slora__tpl_argfail(st, at, "tojson (indent)");
    }
    if (sep && sep->t != TV_NONE) {
        if (sep->t != TV_LIST || sep->u.l->n != 2 || sep->u.l->v[0].t != TV_STR ||
            sep->u.l->v[1].t != TV_STR)
            return slora__tpl_argfail(st, at, "tojson (separators)");
        o.item_sep = sep->u.l->v[0].u.s->p;
        o.item_sep_len = sep->u.l->v[0].u.s->len;
        o.key_sep = sep->u.l->v[1].u.s->p;
        o.key_sep_len = sep->u.l->v[1].u.s->len;
    }
    struct slora__buf b = {0};
    err = slora__tv_tojson(st, &b, v, &o, 0);
    if (!err && b.len > st->o.max_memory)
        err = slora__tpl_fail(st, at->line, at->col, SLORA_ELIMIT, "tojson output too long");
    if (!err)
        err = slora__tv_str(st, b.p ? b.p : "", b.len, out);
    free(b.p);
    return err;
}

/* Jinja's indent(width=4, first=False, blank=False) over str.splitlines(). */
static int f_indent(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv s,
                    const struct slora__targs *a, struct slora__tv *out)
{
    static const char *const kws[] = {"width", "first", "blank", NULL};
    int err = slora__tpl_args_check(st, at, a, 3, kws, "indent");
    if (err)
        return err;
    const struct slora__tv *w = slora__tpl_arg(a, 0, kws[0]), *fi = slora__tpl_arg(a, 1, kws[1]),
                           *bl = slora__tpl_arg(a, 2, kws[2]);
    struct slora__buf ind = {0}, b = {0};
    if (w && w->t == TV_STR)
        err = slora__buf_add(&ind, w->u.s->p, w->u.s->len);
    else if (w && w->t != TV_INT)
        return slora__tpl_argfail(st, at, "indent (width)");
    for (int64_t k = 0; !err && k < (w && w->t == TV_INT ? w->u.i : w ? 0 : 4); k++)
        err = slora__buf_add(&ind, " ", 1);
    const struct slora__tstr *t = s.u.s;
    bool first = fi && slora__tv_truthy(*fi), blank = bl && slora__tv_truthy(*bl);
    if (!err && first)
        err = slora__buf_add(&b, ind.p, ind.len);
    /* Lines end at \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, \u2028, \u2029. */
    size_t i = 0, line = 0;
    while (!err && i < t->len) {
        size_t j = i, brk = 0;
        while (j < t->len) {
            uint32_t c;
            size_t n = slora__tpl_utf8_dec(t->p + j, &c);
            if (c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e) ||
                c == 0x85 || c == 0x2028 || c == 0x2029) {
                brk = n + (c == '\r' && j + 1 < t->len && t->p[j + 1] == '\n');
                break;
            }
            j += n;
        }
        if (line)
            err = slora__buf_add(&b, "\n", 1);
        if (!err && line && (blank || j > i))
            err = slora__buf_add(&b, ind.p, ind.len);
        if (!err)
            err = slora__buf_add(&b, t->p + i, j - i);
        line++;
        i = j + brk;
        if (!err && b.len > st->o.max_memory)
            err = slora__tpl_fail(st, at->line, at->col, SLORA_ELIMIT, "indent result too long");
    }
    if (!err)
        err = slora__tv_str(st, b.p ? b.p : "", b.len, out);
    free(ind.p);
    free(b.p);
    return err;
}

/* A new list from the items of src for which keep[i]. */
static int filtered(struct slora__tstate *st, struct slora__tv src, const bool *keep,
                    struct slora__tv *out)
{
    size_t n = 0;
    for (size_t i = 0; i < src.u.l->n; i++)
        n += keep[i];
    int err = slora__tv_list(st, n, false, out);
    for (size_t i = 0, k = 0; !err && i < src.u.l->n; i++)
        if (keep[i])
            out->u.l->v[k++] = slora__tv_ref(src.u.l->v[i]);
    return err ? err : slora__tv_list_done(st, out);
}

/* Positional arguments from index `from` on, as a new argument list. */
static struct slora__targs rest_args(const struct slora__targs *a, size_t from)
{
    size_t pos = 0, k = 0;
    for (; k < a->n && pos < from; k++)
        pos += !a->kw[k];
    if (k == a->n) /* nothing left (and no arrays at all when there were no arguments) */
        return (struct slora__targs){0};
    return (struct slora__targs){.n = a->n - k, .v = a->v + k, .kw = a->kw + k};
}

/* select/reject/selectattr/rejectattr. */
static int f_select(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv v,
                    const struct slora__targs *a, bool attr, bool want, struct slora__tv *out)
{
    struct slora__tv l;
    int err = slora__tv_iter(st, v, &l);
    if (err)
        return err;
    size_t off = attr ? 1 : 0;
    const struct slora__tv *attr_v = attr ? slora__tpl_arg(a, 0, NULL) : NULL;
    const struct slora__tv *name = slora__tpl_arg(a, off, NULL);
    struct slora__targs rest = rest_args(a, off + 1);
    if ((attr && !attr_v) || (name && name->t != TV_STR)) {
        slora__tv_unref(st, l);
        return slora__tpl_argfail(st, at, attr ? "selectattr/rejectattr" : "select/reject");
    }
    bool *keep = calloc(l.u.l->n ? l.u.l->n : 1, sizeof(*keep));
    if (!keep) {
        slora__tv_unref(st, l);
        return SLORA_ENOMEM;
    }
    for (size_t i = 0; !err && i < l.u.l->n; i++) {
        struct slora__tv item;
        bool r = false;
        if ((err = attr_get(st, at, l.u.l->v[i], attr_v, NULL, &item)))
            break;
        if (name)
            err = slora__tpl_test_by_name(st, at, name->u.s->p, item, &rest, &r);
        else
            r = slora__tv_truthy(item);
        slora__tv_unref(st, item);
        keep[i] = r == want;
    }
    if (!err)
        err = filtered(st, l, keep, out);
    free(keep);
    slora__tv_unref(st, l);
    return err;
}

static int f_map(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv v,
                 const struct slora__targs *a, struct slora__tv *out)
{
    const struct slora__tv *attr = slora__tpl_arg(a, SIZE_MAX, "attribute");
    const struct slora__tv *dflt = slora__tpl_arg(a, SIZE_MAX, "default");
    const struct slora__tv *name = slora__tpl_arg(a, 0, NULL);
    if ((attr && name) || (!attr && (!name || name->t != TV_STR)))
        return slora__tpl_argfail(st, at, "map");
    struct slora__targs rest = rest_args(a, 1);
    struct slora__tv l;
    int err = slora__tv_iter(st, v, &l);
    if (err || (err = slora__tv_list(st, l.u.l->n, false, out))) {
        if (!err)
            slora__tv_unref(st, l);
        return err;
    }
    for (size_t i = 0; !err && i < l.u.l->n; i++)
        err = attr ? attr_get(st, at, l.u.l->v[i], attr, dflt, &out->u.l->v[i])
                   : slora__tpl_filter_by_name(st, at, name->u.s->p, l.u.l->v[i], &rest,
                                               &out->u.l->v[i]);
    slora__tv_unref(st, l);
    if (err) {
        slora__tv_unref(st, *out);
        return err;
    }
    return slora__tv_list_done(st, out);
}

/* sort and unique compare keys lowercased unless case_sensitive. */
static int sort_key(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv item,
                    const struct slora__tv *attr, bool cs, struct slora__tv *out)
{
    struct slora__tv k;
    int err = attr_get(st, at, item, attr, NULL, &k);
    if (err || cs || k.t != TV_STR) {
        if (!err)
            *out = k;
        return err;
    }
    err = slora__tpl_str_case(st, k.u.s, CASE_LOWER, out);
    slora__tv_unref(st, k);
    return err;
}

static int f_sort_unique(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv v,
                         const struct slora__targs *a, bool sort, struct slora__tv *out)
{
    static const char *const skw[] = {"reverse", "case_sensitive", "attribute", NULL};
    static const char *const ukw[] = {"case_sensitive", "attribute", NULL};
    int err = slora__tpl_args_check(st, at, a, sort ? 3 : 2, sort ? skw : ukw, sort ? "sort" : "unique");
    if (err)
        return err;
    size_t o = sort ? 1 : 0;
    const struct slora__tv *rev = sort ? slora__tpl_arg(a, 0, "reverse") : NULL;
    const struct slora__tv *cs = slora__tpl_arg(a, o, "case_sensitive");
    const struct slora__tv *attr = slora__tpl_arg(a, o + 1, "attribute");
    struct slora__tv l, keys;
    if ((err = slora__tv_iter(st, v, &l)))
        return err;
    size_t n = l.u.l->n;
    if ((err = slora__tv_list(st, n, false, &keys))) {
        slora__tv_unref(st, l);
        return err;
    }
    for (size_t i = 0; !err && i < n; i++)
        err = sort_key(st, at, l.u.l->v[i], attr, cs && slora__tv_truthy(*cs), &keys.u.l->v[i]);
    size_t *ix = malloc((n ? n : 1) * sizeof(*ix));
    bool *keep = calloc(n ? n : 1, sizeof(*keep));
    if (!err && (!ix || !keep))
        err = SLORA_ENOMEM;
    for (size_t i = 0; !err && i < n; i++)
        ix[i] = i;
    bool descending = rev && slora__tv_truthy(*rev);
    /* Stable insertion sort (Python's sort is stable; reverse keeps ties in order). */
    for (size_t i = 1; sort && !err && i < n; i++) {
        size_t cur = ix[i], j = i;
        err = slora__tpl_step(st, i);
        while (!err && j > 0) {
            bool lt;
            struct slora__tv x = keys.u.l->v[cur], y = keys.u.l->v[ix[j - 1]];
            if ((err = slora__tv_order(st, OP_LT, descending ? y : x, descending ? x : y, &lt)) || !lt)
                break;
            ix[j] = ix[j - 1];
            j--;
        }
        ix[j] = cur;
    }
    for (size_t i = 0; !sort && !err && i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = keep[j] && slora__tv_eq(keys.u.l->v[j], keys.u.l->v[i]);
        keep[i] = !seen;
        err = slora__tpl_step(st, i / 8);
    }
    if (!err && sort && !(err = slora__tv_list(st, n, false, out))) {
        for (size_t i = 0; i < n; i++)
            out->u.l->v[i] = slora__tv_ref(l.u.l->v[ix[i]]);
        err = slora__tv_list_done(st, out);
    } else if (!err && !sort) {
        err = filtered(st, l, keep, out);
    }
    free(ix);
    free(keep);
    slora__tv_unref(st, keys);
    slora__tv_unref(st, l);
    return err;
}

static int f_escape(struct slora__tstate *st, struct slora__tv v, struct slora__tv *out)
{
    struct slora__tv s;
    int err = slora__tv_tostr(st, v, &s);
    if (err)
        return err;
    struct slora__buf b = {0};
    for (size_t i = 0; !err && i < s.u.s->len; i++) {
        char c = s.u.s->p[i];
        const char *e = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;"
                        : c == '"' ? "&#34;" : c == '\'' ? "&#39;" : NULL;
        err = e ? slora__buf_add(&b, e, strlen(e)) : slora__buf_add(&b, &c, 1);
    }
    if (!err)
        err = slora__tv_str(st, b.p ? b.p : "", b.len, out);
    free(b.p);
    slora__tv_unref(st, s);
    return err;
}

/* first/last: an empty sequence gives undefined, as Jinja's StopIteration does. */
static int f_first_last(struct slora__tstate *st, struct slora__tv v, bool last,
                        struct slora__tv *out)
{
    struct slora__tv l;
    if (last && v.t == TV_LIST && v.u.l->gen)
        return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "'generator' object is not reversible");
    int err = slora__tv_iter(st, v, &l);
    if (err)
        return err;
    size_t n = l.u.l->n;
    *out = n ? slora__tv_ref(l.u.l->v[last ? n - 1 : 0]) : slora__tv_undef(NULL);
    slora__tv_unref(st, l);
    return 0;
}

static int f_reverse(struct slora__tstate *st, struct slora__tv v, struct slora__tv *out)
{
    struct slora__tv l;
    int err = slora__tv_iter(st, v, &l);
    if (err)
        return err;
    size_t n = l.u.l->n;
    if (v.t == TV_STR) {
        char *buf = malloc(v.u.s->len + 1);
        size_t w = 0;
        if (!buf)
            err = SLORA_ENOMEM;
        for (size_t i = n; !err && i-- > 0;) {
            memcpy(buf + w, l.u.l->v[i].u.s->p, l.u.l->v[i].u.s->len);
            w += l.u.l->v[i].u.s->len;
        }
        if (!err)
            err = slora__tv_str(st, buf, w, out);
        free(buf);
    } else if (!(err = slora__tv_list(st, n, false, out))) {
        for (size_t i = 0; i < n; i++)
            out->u.l->v[i] = slora__tv_ref(l.u.l->v[n - 1 - i]);
        err = slora__tv_list_done(st, out);
    }
    slora__tv_unref(st, l);
    return err;
}

/* Case filters and trim/string/safe work on str(value). */
static int f_text(struct slora__tstate *st, const struct slora__tnode *at, int id,
                  struct slora__tv v, const struct slora__targs *a, struct slora__tv *out)
{
    struct slora__tv s;
    int err = slora__tv_tostr(st, v, &s);
    if (err)
        return err;
    switch (id) {
    case FL_UPPER: err = slora__tpl_str_case(st, s.u.s, CASE_UPPER, out); break;
    case FL_LOWER: err = slora__tpl_str_case(st, s.u.s, CASE_LOWER, out); break;
    case FL_CAPITALIZE: err = slora__tpl_str_case(st, s.u.s, CASE_CAPITALIZE, out); break;
    case FL_TITLE: err = slora__tpl_str_case(st, s.u.s, CASE_JINJA_TITLE, out); break;
    case FL_TRIM:
        if (!(err = slora__tpl_args_check(st, at, a, 1, (const char *const[]){"chars", NULL},
                                          "trim")))
            err = slora__tpl_str_strip(st, s.u.s, slora__tpl_arg(a, 0, "chars"), STRIP_BOTH, out);
        break;
    case FL_REPLACE: {
        struct slora__tv o = slora__tv_none(), n = slora__tv_none();
        const struct slora__tv *x = slora__tpl_arg(a, 0, "old"), *y = slora__tpl_arg(a, 1, "new"),
                               *c = slora__tpl_arg(a, 2, "count");
        if (!x || !y || (c && c->t != TV_NONE && c->t != TV_INT)) {
            err = slora__tpl_argfail(st, at, "replace");
        } else if (!(err = slora__tv_tostr(st, *x, &o)) && !(err = slora__tv_tostr(st, *y, &n))) {
            err = slora__tpl_str_replace(st, s.u.s, o.u.s, n.u.s,
                                         c && c->t == TV_INT ? c->u.i : -1, out);
        }
        slora__tv_unref(st, o);
        slora__tv_unref(st, n);
        break;
    }
    default: *out = slora__tv_ref(s); break; /* string, safe */
    }
    slora__tv_unref(st, s);
    return err;
}

static int filter_raw(struct slora__tstate *st, const struct slora__tnode *at, int id,
                        const char *name, struct slora__tv v, const struct slora__targs *a,
                        struct slora__tv *out)
{
    struct slora__tv l;
    const struct slora__tv *x;
    int64_t n;
    int err;
    switch (id) {
    case FL_ABS:
        if (v.t == TV_FLOAT)
            *out = slora__tv_float(fabs(v.u.f));
        else if ((v.t == TV_INT || v.t == TV_BOOL) && slora__tv_as_int(v) != INT64_MIN)
            *out = slora__tv_int(slora__tv_as_int(v) < 0 ? -slora__tv_as_int(v) : slora__tv_as_int(v));
        else
            return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                                   "bad operand type for abs(): '%s'", slora__tv_typename(v));
        return 0;
    case FL_COUNT:
    case FL_LENGTH:
        if ((n = slora__tv_len(v)) < 0)
            return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                                   "object of type '%s' has no len()", slora__tv_typename(v));
        *out = slora__tv_int(n);
        return 0;
    case FL_DEFAULT: {
        const struct slora__tv *d = slora__tpl_arg(a, 0, "default_value"),
                               *b = slora__tpl_arg(a, 1, "boolean");
        if (v.t == TV_UNDEF || (b && slora__tv_truthy(*b) && !slora__tv_truthy(v))) {
            if (d)
                *out = slora__tv_ref(*d);
            else
                err = slora__tv_str(st, "", 0, out);
            return d ? 0 : err;
        }
        *out = slora__tv_ref(v);
        return 0;
    }
    case FL_ESCAPE: return f_escape(st, v, out);
    case FL_FIRST: return f_first_last(st, v, false, out);
    case FL_LAST: return f_first_last(st, v, true, out);
    case FL_FLOAT: return f_float(st, v, a, out);
    case FL_INT: return f_int(st, at, v, a, out);
    case FL_INDENT:
        if ((err = slora__tv_tostr(st, v, &l)))
            return err;
        err = f_indent(st, at, l, a, out);
        slora__tv_unref(st, l);
        return err;
    case FL_ITEMS:
        if (v.t == TV_UNDEF)
            return slora__tv_list(st, 0, false, out);
        if (v.t != TV_DICT)
            return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                                   "Can only get item pairs from a mapping.");
        return slora__tpl_call_method(st, at, &(struct slora__tmeth){.self = v, .id = M_ITEMS,
                                                                      .name = "items"},
                                      &(struct slora__targs){0}, out);
    case FL_JOIN: {
        const struct slora__tv *d = slora__tpl_arg(a, 0, "d"), *attr = slora__tpl_arg(a, 1, "attribute");
        struct slora__tv sep = slora__tv_none(), mapped;
        if ((err = slora__tv_iter(st, v, &l)))
            return err;
        err = d ? slora__tv_tostr(st, *d, &sep) : 0;
        if (!err && attr) {
            if (!(err = slora__tv_list(st, l.u.l->n, false, &mapped))) {
                for (size_t i = 0; !err && i < l.u.l->n; i++)
                    err = attr_get(st, at, l.u.l->v[i], attr, NULL, &mapped.u.l->v[i]);
                slora__tv_unref(st, l);
                l = mapped;
            }
        }
        if (!err)
            err = slora__tpl_str_join(st, l, d ? sep.u.s->p : "", d ? sep.u.s->len : 0, false, out);
        slora__tv_unref(st, sep);
        slora__tv_unref(st, l);
        return err;
    }
    case FL_LIST: return slora__tv_iter(st, v, out);
    case FL_MAP: return f_map(st, at, v, a, out);
    case FL_SELECT: return f_select(st, at, v, a, false, true, out);
    case FL_REJECT: return f_select(st, at, v, a, false, false, out);
    case FL_SELECTATTR: return f_select(st, at, v, a, true, true, out);
    case FL_REJECTATTR: return f_select(st, at, v, a, true, false, out);
    case FL_REVERSE: return f_reverse(st, v, out);
    case FL_SORT: return f_sort_unique(st, at, v, a, true, out);
    case FL_UNIQUE: return f_sort_unique(st, at, v, a, false, out);
    case FL_SUM: {
        const struct slora__tv *attr = slora__tpl_arg(a, 0, "attribute");
        x = slora__tpl_arg(a, 1, "start");
        struct slora__tv acc = x ? slora__tv_ref(*x) : slora__tv_int(0), item, next;
        if ((err = slora__tv_iter(st, v, &l)))
            return err;
        for (size_t i = 0; !err && i < l.u.l->n; i++) {
            if ((err = attr_get(st, at, l.u.l->v[i], attr, NULL, &item)))
                break;
            err = slora__tpl_binary(st, OP_ADD, acc, item, &next);
            slora__tv_unref(st, item);
            if (!err) {
                slora__tv_unref(st, acc);
                acc = next;
            }
        }
        slora__tv_unref(st, l);
        if (err)
            slora__tv_unref(st, acc);
        else
            *out = acc;
        return err;
    }
    case FL_TOJSON: return f_tojson(st, at, v, a, out);
    case FL_UPPER:
    case FL_LOWER:
    case FL_CAPITALIZE:
    case FL_TITLE:
    case FL_TRIM:
    case FL_REPLACE:
    case FL_STRING:
    case FL_SAFE: return f_text(st, at, id, v, a, out);
    case FL_UNSUPPORTED:
        return slora__tpl_fail(st, at->line, at->col, SLORA_EUNSUPPORTED,
                               "unsupported: the '%s' filter", name);
    default:
        return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL, "no filter named '%s'", name);
    }
}

/* Jinja's map, select, reject, selectattr, rejectattr, unique, items and
 * reverse (of a non-string) return generators or iterators. */
static int apply_filter(struct slora__tstate *st, const struct slora__tnode *at, int id,
                        const char *name, struct slora__tv v, const struct slora__targs *a,
                        struct slora__tv *out)
{
    int err = filter_raw(st, at, id, name, v, a, out);
    if (!err && out->t == TV_LIST && out->u.l->h.rc >= 0 &&
        (id == FL_MAP || id == FL_SELECT || id == FL_REJECT || id == FL_SELECTATTR ||
         id == FL_REJECTATTR || id == FL_UNIQUE || id == FL_ITEMS ||
         (id == FL_REVERSE && v.t != TV_STR)))
        out->u.l->gen = true;
    return err;
}

int slora__tpl_filter(struct slora__tstate *st, const struct slora__tnode *n, struct slora__tv v,
                      const struct slora__targs *args, struct slora__tv *out)
{
    return apply_filter(st, n, n->op == 0xff ? -1 : n->op, n->name, v, args, out);
}

int slora__tpl_filter_by_name(struct slora__tstate *st, const struct slora__tnode *at,
                              const char *name, struct slora__tv v, const struct slora__targs *args,
                              struct slora__tv *out)
{
    return apply_filter(st, at, slora__tpl_filter_id(name), name, v, args, out);
}
