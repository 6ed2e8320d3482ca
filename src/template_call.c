/* template_call.c - attribute and item access under jinja2's immutable
 * sandbox (getattr tries the Python attribute, then the item; getitem the
 * other way round; names starting with "_" and mutating methods such as
 * list.append read as undefined), calls of global functions (range,
 * namespace, dict, raise_exception, strftime_now), macros and the str and
 * dict methods templates use. A Python method this engine does not
 * implement fails with SLORA_EUNSUPPORTED naming it, never silently.
 */
#include "template_internal.h"

#include <slora/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


struct mdef {
    const char *name;
    int id; /* enum slora__tpl_meth; -1: unsafe under the immutable sandbox */
};

static const struct mdef str_methods[] = {
    {"strip", M_STRIP}, {"lstrip", M_LSTRIP}, {"rstrip", M_RSTRIP}, {"split", M_SPLIT},
    {"startswith", M_STARTSWITH}, {"endswith", M_ENDSWITH}, {"upper", M_UPPER},
    {"lower", M_LOWER}, {"title", M_TITLE}, {"capitalize", M_CAPITALIZE},
    {"replace", M_REPLACE}, {"join", M_JOIN},
    {"casefold", 0}, {"center", 0}, {"count", 0}, {"encode", 0}, {"expandtabs", 0},
    {"find", 0}, {"format", 0}, {"format_map", 0}, {"index", 0}, {"isalnum", 0},
    {"isalpha", 0}, {"isascii", 0}, {"isdecimal", 0}, {"isdigit", 0}, {"isidentifier", 0},
    {"islower", 0}, {"isnumeric", 0}, {"isprintable", 0}, {"isspace", 0}, {"istitle", 0},
    {"isupper", 0}, {"ljust", 0}, {"maketrans", 0}, {"partition", 0}, {"removeprefix", 0},
    {"removesuffix", 0}, {"rfind", 0}, {"rindex", 0}, {"rjust", 0}, {"rpartition", 0},
    {"rsplit", 0}, {"splitlines", 0}, {"swapcase", 0}, {"translate", 0}, {"zfill", 0},
    {NULL, 0},
};

static const struct mdef dict_methods[] = {
    {"items", M_ITEMS}, {"keys", M_KEYS}, {"values", M_VALUES}, {"get", M_GET},
    {"copy", M_COPY}, {"fromkeys", 0}, {"clear", -1}, {"pop", -1}, {"popitem", -1},
    {"setdefault", -1}, {"update", -1}, {NULL, 0},
};

static const struct mdef list_methods[] = {
    {"copy", 0}, {"count", 0}, {"index", 0}, {"append", -1}, {"clear", -1}, {"extend", -1},
    {"insert", -1}, {"pop", -1}, {"remove", -1}, {"reverse", -1}, {"sort", -1}, {NULL, 0},
};

/* Attributes of numbers and macros Python has but this engine does not model. */
static const char *const other_attrs[] = {
    "real", "imag", "numerator", "denominator", "conjugate", "bit_length", "bit_count",
    "to_bytes", "as_integer_ratio", "is_integer", "hex", "arguments", "defaults",
    "catch_kwargs", "catch_varargs", "caller", NULL,
};

static const struct mdef *find_meth(const struct mdef *t, const char *name)
{
    for (; t->name; t++)
        if (!strcmp(t->name, name))
            return t;
    return NULL;
}

static int make_method(struct slora__tstate *st, struct slora__tv self, const struct mdef *m,
                       struct slora__tv *out)
{
    if (m->id < 0) { /* the sandbox's unsafe_undefined */
        *out = slora__tv_undef(m->name);
        return 0;
    }
    struct slora__tmeth *mt;
    int err = slora__tv_alloc(st, sizeof(*mt), (void **)&mt);
    if (err)
        return err;
    mt->self = slora__tv_ref(self);
    mt->id = m->id;
    mt->name = m->name;
    out->t = TV_METHOD;
    out->u.meth = mt;
    return 0;
}

static int loop_attr(struct slora__tstate *st, const struct slora__tloop *lp, struct slora__tv self,
                     const char *name, struct slora__tv *out)
{
    size_t n = lp->items.u.l->n, i = lp->index0;
    const struct slora__tv *items = lp->items.u.l->v;
    if (!strcmp(name, "index"))
        *out = slora__tv_int((int64_t)i + 1);
    else if (!strcmp(name, "index0"))
        *out = slora__tv_int((int64_t)i);
    else if (!strcmp(name, "revindex"))
        *out = slora__tv_int((int64_t)(n - i));
    else if (!strcmp(name, "revindex0"))
        *out = slora__tv_int((int64_t)(n - i - 1));
    else if (!strcmp(name, "first"))
        *out = slora__tv_bool(i == 0);
    else if (!strcmp(name, "last"))
        *out = slora__tv_bool(i + 1 == n);
    else if (!strcmp(name, "length"))
        *out = slora__tv_int((int64_t)n);
    else if (!strcmp(name, "depth"))
        *out = slora__tv_int(1);
    else if (!strcmp(name, "depth0"))
        *out = slora__tv_int(0);
    else if (!strcmp(name, "previtem"))
        *out = i ? slora__tv_ref(items[i - 1]) : slora__tv_undef("previtem");
    else if (!strcmp(name, "nextitem"))
        *out = i + 1 < n ? slora__tv_ref(items[i + 1]) : slora__tv_undef("nextitem");
    else if (!strcmp(name, "cycle"))
        return make_method(st, self, &(struct mdef){"cycle", M_CYCLE}, out);
    else if (!strcmp(name, "changed"))
        return make_method(st, self, &(struct mdef){"changed", M_UNSUPPORTED}, out);
    else
        *out = slora__tv_undef(name);
    return 0;
}

/* The Python attribute `name` of obj (methods, loop and namespace fields);
 * *found false when it has none. */
static int py_attr(struct slora__tstate *st, struct slora__tv obj, const char *name,
                   struct slora__tv *out, bool *found)
{
    const struct mdef *m = NULL;
    *found = true;
    switch (obj.t) {
    case TV_STR: m = find_meth(str_methods, name); break;
    case TV_DICT: m = find_meth(dict_methods, name); break;
    case TV_LIST: m = find_meth(list_methods, name); break;
    case TV_LOOP: return loop_attr(st, obj.u.loop, obj, name, out);
    case TV_NS: {
        const struct slora__tv *v = slora__tv_dict_gets(obj.u.d, name);
        *found = v != NULL;
        if (v)
            *out = slora__tv_ref(*v);
        return 0;
    }
    default:
        for (size_t k = 0; other_attrs[k]; k++)
            if (!strcmp(other_attrs[k], name))
                return slora__tpl_fail(st, 0, 0, SLORA_EUNSUPPORTED,
                                       "unsupported: attribute '%s' of a %s", name,
                                       slora__tv_typename(obj));
        break;
    }
    if (m)
        return make_method(st, obj, m, out);
    *found = false;
    return 0;
}

int slora__tpl_getattr(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv obj,
                       const char *name, struct slora__tv *out)
{
    (void)at;
    if (obj.t == TV_UNDEF)
        return slora__tpl_undefined(st, obj);
    if (name[0] == '_') {
        *out = slora__tv_undef(name);
        return 0;
    }
    bool found;
    int err = py_attr(st, obj, name, out, &found);
    if (err || found)
        return err;
    if (obj.t == TV_DICT) {
        const struct slora__tv *v = slora__tv_dict_gets(obj.u.d, name);
        if (v) {
            *out = slora__tv_ref(*v);
            return 0;
        }
    }
    *out = slora__tv_undef(name);
    return 0;
}

int slora__tpl_getitem(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv obj,
                       struct slora__tv key, struct slora__tv *out)
{
    (void)at;
    if (obj.t == TV_UNDEF)
        return slora__tpl_undefined(st, obj);
    bool is_index = key.t == TV_INT || key.t == TV_BOOL;
    int64_t i = key.t == TV_BOOL ? key.u.b : key.t == TV_INT ? key.u.i : 0;
    if (obj.t == TV_DICT && key.t != TV_LIST && key.t != TV_DICT) {
        const struct slora__tv *v = slora__tv_dict_get(obj.u.d, key);
        if (v) {
            *out = slora__tv_ref(*v);
            return 0;
        }
    } else if (obj.t == TV_LIST && is_index && !obj.u.l->gen) {
        int64_t n = (int64_t)obj.u.l->n;
        if (i < 0)
            i += n;
        if (i >= 0 && i < n) {
            *out = slora__tv_ref(obj.u.l->v[i]);
            return 0;
        }
    } else if (obj.t == TV_STR && is_index) {
        int64_t n = (int64_t)obj.u.s->nchars;
        if (i < 0)
            i += n;
        if (i >= 0 && i < n) {
            size_t o = slora__tpl_utf8_offset(obj.u.s, (size_t)i);
            return slora__tv_str(st, obj.u.s->p + o,
                                 slora__tpl_utf8_dec(obj.u.s->p + o, &(uint32_t){0}), out);
        }
    }
    if (key.t == TV_STR && key.u.s->p[0] != '_' && strlen(key.u.s->p) == key.u.s->len) {
        bool found;
        int err = py_attr(st, obj, key.u.s->p, out, &found);
        if (err || found)
            return err;
    }
    *out = slora__tv_undef(key.t == TV_STR ? "item" : NULL);
    return 0;
}

const struct slora__tv *slora__tpl_arg(const struct slora__targs *a, size_t i, const char *name)
{
    size_t pos = 0;
    for (size_t k = 0; k < a->n; k++) {
        if (!a->kw[k]) {
            if (pos++ == i)
                return &a->v[k];
        } else if (name && !strcmp(a->kw[k], name)) {
            return &a->v[k];
        }
    }
    return NULL;
}

int slora__tpl_args_check(struct slora__tstate *st, const struct slora__tnode *at,
                          const struct slora__targs *a, size_t npos, const char *const *kws,
                          const char *what)
{
    size_t pos = 0;
    for (size_t k = 0; k < a->n; k++) {
        if (!a->kw[k]) {
            if (++pos > npos)
                return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                                       "%s takes at most %zu positional argument(s)", what, npos);
            continue;
        }
        bool ok = false;
        for (size_t j = 0; kws && kws[j]; j++)
            ok |= !strcmp(kws[j], a->kw[k]);
        if (!ok)
            return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                                   "%s got an unexpected keyword argument '%s'", what, a->kw[k]);
    }
    return 0;
}

static const char *const func_names[] = {
    [F_RANGE] = "range", [F_NAMESPACE] = "namespace", [F_DICT] = "dict",
    [F_RAISE] = "raise_exception", [F_STRFTIME] = "strftime_now",
};

int slora__tpl_func_id(const char *name)
{
    for (int k = 0; k < F_NFUNC; k++)
        if (!strcmp(func_names[k], name))
            return k;
    if (!strcmp(name, "lipsum") || !strcmp(name, "cycler") || !strcmp(name, "joiner"))
        return F_NFUNC; /* Jinja globals this engine does not render */
    return -1;
}

static int fn_range(struct slora__tstate *st, const struct slora__tnode *at,
                    const struct slora__targs *a, struct slora__tv *out)
{
    int64_t v[3] = {0, 0, 1};
    int err = slora__tpl_args_check(st, at, a, 3, NULL, "range()");
    if (err)
        return err;
    if (a->n < 1)
        return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                               "range expected at least 1 argument, got 0");
    for (size_t k = 0; k < a->n; k++) {
        if (a->v[k].t != TV_INT && a->v[k].t != TV_BOOL)
            return a->v[k].t == TV_UNDEF ? slora__tpl_undefined(st, a->v[k])
                                         : slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                                                           "'%s' object cannot be interpreted as an integer",
                                                           slora__tv_typename(a->v[k]));
    }
    int64_t x[3];
    for (size_t k = 0; k < a->n; k++)
        x[k] = a->v[k].t == TV_BOOL ? a->v[k].u.b : a->v[k].u.i;
    if (a->n == 1) {
        v[1] = x[0];
    } else {
        v[0] = x[0];
        v[1] = x[1];
        if (a->n == 3)
            v[2] = x[2];
    }
    if (v[2] == 0)
        return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                               "range() arg 3 must not be zero");
    /* Count without overflow: the sandbox refuses more than 100000 items. */
    __int128 span = (__int128)v[1] - v[0];
    __int128 cnt = v[2] > 0 ? (span > 0 ? (span + v[2] - 1) / v[2] : 0)
                            : (span < 0 ? (-span + (-(__int128)v[2]) - 1) / -(__int128)v[2] : 0);
    if (cnt > 100000)
        return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                               "Range too big. The sandbox blocks ranges larger than MAX_RANGE "
                               "(100000).");
    if ((err = slora__tv_list(st, (size_t)cnt, false, out)))
        return err;
    for (size_t k = 0; k < (size_t)cnt; k++)
        out->u.l->v[k] = slora__tv_int(v[0] + (int64_t)k * v[2]);
    return 0;
}

/* namespace(...) and dict(...): an optional mapping, then keywords. */
static int fn_mapping(struct slora__tstate *st, const struct slora__tnode *at,
                      const struct slora__targs *a, bool ns, struct slora__tv *out)
{
    size_t npos = 0;
    for (size_t k = 0; k < a->n; k++)
        npos += !a->kw[k];
    if (npos > 1)
        return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                               "%s expected at most 1 positional argument",
                               ns ? "namespace()" : "dict()");
    const struct slora__tv *m = slora__tpl_arg(a, 0, NULL);
    if (m && m->t != TV_DICT)
        return slora__tpl_fail(st, at->line, at->col, SLORA_EUNSUPPORTED,
                               "unsupported: %s from a %s", ns ? "namespace()" : "dict()",
                               slora__tv_typename(*m));
    int err = slora__tv_dict(st, ns, out);
    if (err)
        return err;
    if (ns) {
        if (st->n_ns == st->cap_ns) {
            size_t cap = st->cap_ns ? st->cap_ns * 2 : 8;
            struct slora__tdict **p = realloc(st->ns, cap * sizeof(*p));
            if (!p) {
                slora__tv_unref(st, *out);
                return SLORA_ENOMEM;
            }
            st->ns = p;
            st->cap_ns = cap;
        }
        st->ns[st->n_ns++] = out->u.d; /* the render's own reference */
        out->u.d->h.rc++;
    }
    for (size_t k = 0; !err && m && k < m->u.d->n; k++)
        err = slora__tv_dict_set(st, *out, slora__tv_ref(m->u.d->k[k]),
                                 slora__tv_ref(m->u.d->v[k]));
    for (size_t k = 0; !err && k < a->n; k++) {
        struct slora__tv key;
        if (!a->kw[k])
            continue;
        if (!(err = slora__tv_str(st, a->kw[k], strlen(a->kw[k]), &key)))
            err = slora__tv_dict_set(st, *out, key, slora__tv_ref(a->v[k]));
    }
    if (err)
        slora__tv_unref(st, *out);
    return err;
}

static int fn_strftime(struct slora__tstate *st, const struct slora__tnode *at,
                       const struct slora__targs *a, struct slora__tv *out)
{
    const struct slora__tv *f = slora__tpl_arg(a, 0, "format");
    int err = slora__tpl_args_check(st, at, a, 1, (const char *const[]){"format", NULL},
                                    "strftime_now()");
    if (err)
        return err;
    if (!f || f->t != TV_STR)
        return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                               "strftime_now() argument must be str");
    struct timespec ts = {0};
    if (st->o.fixed_now)
        ts.tv_sec = (time_t)st->o.now;
    else
        clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    if (!localtime_r(&ts.tv_sec, &tm))
        return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL, "time out of range");
    /* Python handles %f itself (microseconds); C strftime does the rest. */
    struct slora__buf fmt = {0};
    const char *p = f->u.s->p;
    for (size_t k = 0; !err && k < f->u.s->len; k++) {
        if (p[k] == '%' && k + 1 < f->u.s->len && p[k + 1] == 'f') {
            err = slora__buf_printf(&fmt, "%06ld", st->o.fixed_now ? 0L : ts.tv_nsec / 1000);
            k++;
        } else if (p[k] == '%' && k + 1 < f->u.s->len && p[k + 1] == '%') {
            err = slora__buf_add(&fmt, "%%", 2);
            k++;
        } else {
            err = slora__buf_add(&fmt, p + k, 1);
        }
    }
    size_t cap = 256 + 8 * fmt.len;
    char *buf = err ? NULL : malloc(cap);
    size_t n = 0;
    if (!err && !buf)
        err = SLORA_ENOMEM;
    if (!err && fmt.len) {
        n = strftime(buf, cap, fmt.p, &tm);
        if (!n)
            err = slora__tpl_fail(st, at->line, at->col, SLORA_EUNSUPPORTED,
                                  "unsupported: strftime_now() format");
    }
    if (!err)
        err = slora__tv_str(st, buf, n, out);
    free(buf);
    free(fmt.p);
    return err;
}

int slora__tpl_call(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv fn,
                    const struct slora__targs *args, struct slora__tv *out)
{
    struct slora__buf b = {0};
    int err;
    switch (fn.t) {
    case TV_MACRO: return slora__tpl_call_macro(st, at, fn.u.node, args, out);
    case TV_METHOD: return slora__tpl_call_method(st, at, fn.u.meth, args, out);
    case TV_UNDEF: return slora__tpl_undefined(st, fn);
    case TV_FUNC:
        switch (fn.u.i) {
        case F_RANGE: return fn_range(st, at, args, out);
        case F_NAMESPACE: return fn_mapping(st, at, args, true, out);
        case F_DICT: return fn_mapping(st, at, args, false, out);
        case F_STRFTIME: return fn_strftime(st, at, args, out);
        case F_RAISE:
            /* HF's helper: the render fails with the template's own message. */
            err = args->n ? slora__tv_write(st, &b, args->v[0], false) : 0;
            if (!err && !st->diag_set && st->diag && st->diag_len) {
                snprintf(st->diag, st->diag_len, "raise_exception: %s", b.p ? b.p : "");
                st->diag_set = st->pos_set = true;
            }
            free(b.p);
            return err ? err : SLORA_EINVAL;
        default:
            return slora__tpl_fail(st, at->line, at->col, SLORA_EUNSUPPORTED,
                                   "unsupported: Jinja's lipsum, cycler and joiner globals");
        }
    default:
        return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL, "'%s' object is not callable",
                               slora__tv_typename(fn));
    }
}
