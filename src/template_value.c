/* template_value.c - the chat-template engine's values with Python's
 * semantics: reference counting charged to the render's memory limit, ==
 * and ordering as Python compares, str()/repr() text byte for byte as
 * CPython prints it (float repr: the shortest round-trip digits), len and
 * iteration, and the UTF-8 helpers (strings are indexed by code point).
 */
#include "template_internal.h"

#include <slora/error.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest nesting of lists and dicts a render may build: every recursive
 * walk over values (printing, tojson, ==, freeing) stays this shallow. */
#define MAX_VALUE_DEPTH 256

int slora__tv_alloc(struct slora__tstate *st, size_t n, void **out)
{
    if (n > UINT32_MAX || n > st->o.max_memory - st->mem)
        return slora__tpl_fail(st, 0, 0, SLORA_ELIMIT,
                               "template render exceeded its memory limit (%zu bytes)",
                               st->o.max_memory);
    int err = slora__tpl_step(st, 1 + n / 64);
    if (err)
        return err;
    struct slora__tobj *o = malloc(n);
    if (!o)
        return SLORA_ENOMEM;
    o->rc = 1;
    o->size = (uint32_t)n;
    st->mem += n;
    *out = o;
    return 0;
}

static void obj_free(struct slora__tstate *st, struct slora__tobj *o)
{
    st->mem -= o->size;
    free(o);
}

void slora__tv_unref(struct slora__tstate *st, struct slora__tv v)
{
    if (!slora__tv_heap(v) || v.u.o->rc < 0 || --v.u.o->rc > 0)
        return;
    switch (v.t) {
    case TV_LIST:
        for (size_t i = 0; i < v.u.l->n; i++)
            slora__tv_unref(st, v.u.l->v[i]);
        break;
    case TV_DICT:
    case TV_NS:
        for (size_t i = 0; i < v.u.d->n; i++) {
            slora__tv_unref(st, v.u.d->k[i]);
            slora__tv_unref(st, v.u.d->v[i]);
        }
        if (v.u.d->k) {
            st->mem -= v.u.d->cap * 2 * sizeof(struct slora__tv);
            free(v.u.d->k);
            free(v.u.d->v);
        }
        break;
    case TV_LOOP:
        slora__tv_unref(st, v.u.loop->items);
        break;
    case TV_METHOD:
        slora__tv_unref(st, v.u.meth->self);
        break;
    default:
        break;
    }
    obj_free(st, v.u.o);
}

int slora__tv_str(struct slora__tstate *st, const char *p, size_t len, struct slora__tv *out)
{
    struct slora__tstr *s;
    if (len > SIZE_MAX - sizeof(*s) - 1)
        return slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "string too long");
    int err = slora__tv_alloc(st, sizeof(*s) + len + 1, (void **)&s);
    if (err)
        return err;
    s->len = len;
    if (len)
        memcpy(s->p, p, len);
    s->p[len] = '\0';
    s->nchars = slora__tpl_utf8_count(p, len);
    out->t = TV_STR;
    out->u.s = s;
    return 0;
}

int slora__tv_list(struct slora__tstate *st, size_t n, bool tuple, struct slora__tv *out)
{
    struct slora__tlist *l;
    if (n > (SIZE_MAX - sizeof(*l)) / sizeof(struct slora__tv))
        return slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "list too long");
    int err = slora__tv_alloc(st, sizeof(*l) + n * sizeof(struct slora__tv), (void **)&l);
    if (err)
        return err;
    l->depth = 1;
    l->tuple = tuple;
    l->gen = false;
    l->n = n;
    l->v = (struct slora__tv *)(l + 1);
    memset(l->v, 0, n * sizeof(struct slora__tv)); /* TV_UNDEF: safe to unref */
    out->t = TV_LIST;
    out->u.l = l;
    return 0;
}

static uint32_t depth_of(struct slora__tv v)
{
    return v.t == TV_LIST ? v.u.l->depth : v.t == TV_DICT ? v.u.d->depth : 0;
}

int slora__tv_list_done(struct slora__tstate *st, struct slora__tv *l)
{
    uint32_t d = 0;
    for (size_t i = 0; i < l->u.l->n; i++)
        if (depth_of(l->u.l->v[i]) > d)
            d = depth_of(l->u.l->v[i]);
    if (d + 1 > MAX_VALUE_DEPTH) {
        slora__tv_unref(st, *l);
        *l = slora__tv_none();
        return slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "lists nested deeper than %d",
                               MAX_VALUE_DEPTH);
    }
    if (l->u.l->h.rc >= 0)
        l->u.l->depth = d + 1;
    return 0;
}

int slora__tv_dict(struct slora__tstate *st, bool ns, struct slora__tv *out)
{
    struct slora__tdict *d = NULL;
    int err = slora__tv_alloc(st, sizeof(*d), (void **)&d);
    if (err)
        return err;
    d->depth = 1;
    d->n = d->cap = 0;
    d->k = d->v = NULL;
    out->t = ns ? TV_NS : TV_DICT;
    out->u.d = d;
    return 0;
}

const struct slora__tv *slora__tv_dict_get(const struct slora__tdict *d, struct slora__tv key)
{
    for (size_t i = 0; i < d->n; i++)
        if (slora__tv_eq(d->k[i], key))
            return &d->v[i];
    return NULL;
}

const struct slora__tv *slora__tv_dict_gets(const struct slora__tdict *d, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == TV_STR && d->k[i].u.s->len == n && !memcmp(d->k[i].u.s->p, key, n))
            return &d->v[i];
    return NULL;
}

int slora__tv_dict_set(struct slora__tstate *st, struct slora__tv dv, struct slora__tv key,
                       struct slora__tv val)
{
    struct slora__tdict *d = dv.u.d;
    int err = 0;
    uint32_t vd = depth_of(val) > depth_of(key) ? depth_of(val) : depth_of(key);
    if (dv.t == TV_DICT && vd + 1 > MAX_VALUE_DEPTH)
        err = slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "dicts nested deeper than %d",
                              MAX_VALUE_DEPTH);
    for (size_t i = 0; !err && i < d->n; i++) {
        if (slora__tv_eq(d->k[i], key)) {
            slora__tv_unref(st, d->v[i]);
            slora__tv_unref(st, key);
            d->v[i] = val;
            goto depth;
        }
    }
    if (!err && d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4, bytes = cap * 2 * sizeof(struct slora__tv);
        size_t old = d->cap * 2 * sizeof(struct slora__tv);
        if (bytes - old > st->o.max_memory - st->mem) {
            err = slora__tpl_fail(st, 0, 0, SLORA_ELIMIT,
                                  "template render exceeded its memory limit (%zu bytes)",
                                  st->o.max_memory);
        } else {
            struct slora__tv *k = realloc(d->k, cap * sizeof(*k));
            if (k)
                d->k = k;
            struct slora__tv *v = k ? realloc(d->v, cap * sizeof(*v)) : NULL;
            if (v)
                d->v = v;
            if (!k || !v) {
                err = SLORA_ENOMEM;
            } else {
                st->mem += bytes - old;
                d->cap = cap;
            }
        }
    }
    if (err) {
        slora__tv_unref(st, key);
        slora__tv_unref(st, val);
        return err;
    }
    d->k[d->n] = key;
    d->v[d->n++] = val;
depth:
    if (vd + 1 > d->depth)
        d->depth = vd + 1;
    return 0;
}

bool slora__tv_truthy(struct slora__tv v)
{
    switch (v.t) {
    case TV_UNDEF:
    case TV_NONE: return false;
    case TV_BOOL: return v.u.b;
    case TV_INT: return v.u.i != 0;
    case TV_FLOAT: return v.u.f != 0.0;
    case TV_STR: return v.u.s->len != 0;
    case TV_LIST: return v.u.l->gen || v.u.l->n != 0;
    case TV_DICT: return v.u.d->n != 0;
    default: return true;
    }
}

static bool is_num(struct slora__tv v)
{
    return v.t == TV_BOOL || v.t == TV_INT || v.t == TV_FLOAT;
}

static int64_t as_int(struct slora__tv v)
{
    return v.t == TV_BOOL ? (int64_t)v.u.b : v.u.i;
}

/* Python's exact comparison of an int with a float: -1, 0, 1, or 2 for NaN. */
static int cmp_int_float(int64_t i, double f)
{
    if (isnan(f))
        return 2;
    if (f >= 9223372036854775808.0)
        return -1;
    if (f < -9223372036854775808.0)
        return 1;
    double t = trunc(f);
    int64_t fi = (int64_t)t;
    if (i != fi)
        return i < fi ? -1 : 1;
    return t == f ? 0 : (f > t ? -1 : 1);
}

/* Numeric comparison: -1, 0, 1, or 2 when unordered (NaN). */
static int cmp_num(struct slora__tv a, struct slora__tv b)
{
    if (a.t != TV_FLOAT && b.t != TV_FLOAT) {
        int64_t x = as_int(a), y = as_int(b);
        return x < y ? -1 : x > y;
    }
    if (a.t == TV_FLOAT && b.t == TV_FLOAT)
        return isnan(a.u.f) || isnan(b.u.f) ? 2 : a.u.f < b.u.f ? -1 : a.u.f > b.u.f;
    if (a.t == TV_FLOAT) {
        int c = cmp_int_float(as_int(b), a.u.f);
        return c == 2 ? 2 : -c;
    }
    return cmp_int_float(as_int(a), b.u.f);
}

bool slora__tv_eq(struct slora__tv a, struct slora__tv b)
{
    if (is_num(a) && is_num(b))
        return cmp_num(a, b) == 0;
    if (a.t != b.t)
        return false;
    switch (a.t) {
    case TV_UNDEF:
    case TV_NONE: return true;
    case TV_STR:
        return a.u.s->len == b.u.s->len && !memcmp(a.u.s->p, b.u.s->p, a.u.s->len);
    case TV_LIST:
        if (a.u.l == b.u.l)
            return true;
        if (a.u.l->gen || b.u.l->gen || a.u.l->tuple != b.u.l->tuple || a.u.l->n != b.u.l->n)
            return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!slora__tv_eq(a.u.l->v[i], b.u.l->v[i]))
                return false;
        return true;
    case TV_DICT:
        if (a.u.d->n != b.u.d->n)
            return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            const struct slora__tv *v = slora__tv_dict_get(b.u.d, a.u.d->k[i]);
            if (!v || !slora__tv_eq(a.u.d->v[i], *v))
                return false;
        }
        return true;
    case TV_FUNC: return a.u.i == b.u.i;
    case TV_MACRO: return a.u.node == b.u.node;
    default: return a.u.o == b.u.o;
    }
}

const char *slora__tv_typename(struct slora__tv v)
{
    switch (v.t) {
    case TV_UNDEF: return "Undefined";
    case TV_NONE: return "NoneType";
    case TV_BOOL: return "bool";
    case TV_INT: return "int";
    case TV_FLOAT: return "float";
    case TV_STR: return "str";
    case TV_LIST: return v.u.l->gen ? "generator" : v.u.l->tuple ? "tuple" : "list";
    case TV_DICT: return "dict";
    case TV_NS: return "Namespace";
    case TV_LOOP: return "LoopContext";
    case TV_MACRO: return "Macro";
    case TV_FUNC: return "function";
    default: return "builtin_function_or_method";
    }
}

static const char *op_text(int op)
{
    return op == OP_LT ? "<" : op == OP_LE ? "<=" : op == OP_GT ? ">" : ">=";
}

/* a OP b from a three-way result (2: unordered, every OP false). */
static bool apply_cmp(int op, int c)
{
    if (c == 2)
        return false;
    return op == OP_LT ? c < 0 : op == OP_LE ? c <= 0 : op == OP_GT ? c > 0 : c >= 0;
}

int slora__tv_order(struct slora__tstate *st, int op, struct slora__tv a, struct slora__tv b,
                    bool *out)
{
    if (a.t == TV_UNDEF || b.t == TV_UNDEF) {
        const char *n = a.t == TV_UNDEF ? a.u.undef : b.u.undef;
        return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "'%s' is undefined", n ? n : "value");
    }
    if (is_num(a) && is_num(b)) {
        *out = apply_cmp(op, cmp_num(a, b));
        return 0;
    }
    if (a.t == TV_STR && b.t == TV_STR) {
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int c = memcmp(a.u.s->p, b.u.s->p, n);
        c = c ? (c < 0 ? -1 : 1) : a.u.s->len < b.u.s->len ? -1 : a.u.s->len > b.u.s->len;
        *out = apply_cmp(op, c);
        return 0;
    }
    if (a.t == TV_LIST && b.t == TV_LIST && a.u.l->tuple == b.u.l->tuple) {
        /* Lexicographic: the first unequal pair decides, else the lengths. */
        size_t i = 0;
        while (i < a.u.l->n && i < b.u.l->n && slora__tv_eq(a.u.l->v[i], b.u.l->v[i]))
            i++;
        if (i < a.u.l->n && i < b.u.l->n)
            return slora__tv_order(st, op, a.u.l->v[i], b.u.l->v[i], out);
        int c = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
        *out = apply_cmp(op, c);
        return 0;
    }
    return slora__tpl_fail(st, 0, 0, SLORA_EINVAL,
                           "'%s' not supported between instances of '%s' and '%s'", op_text(op),
                           slora__tv_typename(a), slora__tv_typename(b));
}

void slora__tv_float_repr(double f, char out[32])
{
    if (isnan(f)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(f)) {
        strcpy(out, f < 0 ? "-inf" : "inf");
        return;
    }
    /* The shortest %.*e that reads back exactly, as Python's repr picks. */
    char buf[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    char digits[24];
    size_t nd = 0;
    const char *p = buf;
    bool neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char *w = out;
    if (neg)
        *w++ = '-';
    if (exp < -4 || exp >= 16) {
        *w++ = digits[0];
        if (nd > 1) {
            *w++ = '.';
            memcpy(w, digits + 1, nd - 1);
            w += nd - 1;
        }
        snprintf(w, 12, "e%c%02d", exp < 0 ? '-' : '+', (exp < 0 ? -exp : exp) % 1000);
        return;
    }
    if (exp < 0) {
        *w++ = '0';
        *w++ = '.';
        for (int k = -1; k > exp; k--)
            *w++ = '0';
        memcpy(w, digits, nd);
        w += nd;
    } else {
        for (int k = 0; k <= exp; k++)
            *w++ = (size_t)k < nd ? digits[k] : '0';
        *w++ = '.';
        if (nd > (size_t)exp + 1) {
            memcpy(w, digits + exp + 1, nd - (size_t)exp - 1);
            w += nd - (size_t)exp - 1;
        } else {
            *w++ = '0';
        }
    }
    *w = '\0';
}

/* Code points Python's str.isprintable() rejects beyond ASCII (the common
 * ones: C1 controls, format characters, separators, private use). */
static bool py_unprintable(uint32_t c)
{
    return (c >= 0x80 && c <= 0xa0) || c == 0xad || (c >= 0x600 && c <= 0x605) || c == 0x61c ||
           c == 0x6dd || c == 0x70f || c == 0x180e || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
           (c >= 0x205f && c <= 0x2064) || (c >= 0x2066 && c <= 0x206f) || c == 0x3000 ||
           (c >= 0xe000 && c <= 0xf8ff) || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) ||
           c >= 0xf0000;
}

static int write_repr_str(struct slora__buf *b, const struct slora__tstr *s)
{
    char q = memchr(s->p, '\'', s->len) && !memchr(s->p, '"', s->len) ? '"' : '\'';
    int err = slora__buf_add(b, &q, 1);
    for (size_t i = 0; !err && i < s->len;) {
        uint32_t c;
        size_t n = slora__tpl_utf8_dec(s->p + i, &c);
        char e[12];
        if (c == (uint32_t)q || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            err = slora__buf_add(b, e, 2);
        } else if (c == '\t' || c == '\n' || c == '\r') {
            err = slora__buf_add(b, c == '\t' ? "\\t" : c == '\n' ? "\\n" : "\\r", 2);
        } else if (c < 0x20 || c == 0x7f || py_unprintable(c)) {
            int k = snprintf(e, sizeof(e), c <= 0xff ? "\\x%02x" : c <= 0xffff ? "\\u%04x"
                                                                               : "\\U%08x", c);
            err = slora__buf_add(b, e, (size_t)k);
        } else {
            err = slora__buf_add(b, s->p + i, n);
        }
        i += n;
    }
    return err ? err : slora__buf_add(b, &q, 1);
}

int slora__tv_write(struct slora__tstate *st, struct slora__buf *b, struct slora__tv v, bool repr)
{
    char tmp[32];
    int err = 0;
    switch (v.t) {
    case TV_UNDEF: return repr ? slora__buf_add(b, "Undefined", 9) : 0;
    case TV_NONE: return slora__buf_add(b, "None", 4);
    case TV_BOOL: return v.u.b ? slora__buf_add(b, "True", 4) : slora__buf_add(b, "False", 5);
    case TV_INT: return slora__buf_printf(b, "%" PRId64, v.u.i);
    case TV_FLOAT:
        slora__tv_float_repr(v.u.f, tmp);
        return slora__buf_add(b, tmp, strlen(tmp));
    case TV_STR:
        return repr ? write_repr_str(b, v.u.s) : slora__buf_add(b, v.u.s->p, v.u.s->len);
    case TV_LIST: {
        const struct slora__tlist *l = v.u.l;
        if (l->gen)
            return slora__tpl_fail(st, 0, 0, SLORA_EUNSUPPORTED,
                                   "unsupported: printing a generator (Jinja prints its address)");
        err = slora__buf_add(b, l->tuple ? "(" : "[", 1);
        for (size_t i = 0; !err && i < l->n; i++) {
            if (i)
                err = slora__buf_add(b, ", ", 2);
            if (!err)
                err = slora__tv_write(st, b, l->v[i], true);
        }
        if (!err && l->tuple && l->n == 1)
            err = slora__buf_add(b, ",", 1);
        return err ? err : slora__buf_add(b, l->tuple ? ")" : "]", 1);
    }
    case TV_DICT: {
        const struct slora__tdict *d = v.u.d;
        err = slora__buf_add(b, "{", 1);
        for (size_t i = 0; !err && i < d->n; i++) {
            if (i)
                err = slora__buf_add(b, ", ", 2);
            if (!err)
                err = slora__tv_write(st, b, d->k[i], true);
            if (!err)
                err = slora__buf_add(b, ": ", 2);
            if (!err)
                err = slora__tv_write(st, b, d->v[i], true);
        }
        return err ? err : slora__buf_add(b, "}", 1);
    }
    default:
        return slora__tpl_fail(st, 0, 0, SLORA_EUNSUPPORTED,
                               "unsupported: printing a %s object", slora__tv_typename(v));
    }
}

int slora__tv_tostr(struct slora__tstate *st, struct slora__tv v, struct slora__tv *out)
{
    if (v.t == TV_STR) {
        *out = slora__tv_ref(v);
        return 0;
    }
    struct slora__buf b = {0};
    int err = slora__tv_write(st, &b, v, false);
    if (!err && b.len > st->o.max_memory)
        err = slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "string too long");
    if (!err)
        err = slora__tv_str(st, b.p ? b.p : "", b.len, out);
    free(b.p);
    return err;
}

int64_t slora__tv_len(struct slora__tv v)
{
    switch (v.t) {
    case TV_UNDEF: return 0;
    case TV_STR: return (int64_t)v.u.s->nchars;
    case TV_LIST: return v.u.l->gen ? -1 : (int64_t)v.u.l->n;
    case TV_DICT: return (int64_t)v.u.d->n;
    default: return -1;
    }
}

int slora__tv_iter(struct slora__tstate *st, struct slora__tv v, struct slora__tv *out)
{
    int err;
    switch (v.t) {
    case TV_LIST:
        if (v.u.l->gen) { /* iterating a generator gives a plain list */
            if ((err = slora__tv_list(st, v.u.l->n, false, out)))
                return err;
            for (size_t i = 0; i < v.u.l->n; i++)
                out->u.l->v[i] = slora__tv_ref(v.u.l->v[i]);
            return slora__tv_list_done(st, out);
        }
        *out = slora__tv_ref(v);
        return 0;
    case TV_UNDEF: return slora__tv_list(st, 0, false, out);
    case TV_DICT:
        if ((err = slora__tv_list(st, v.u.d->n, false, out)))
            return err;
        for (size_t i = 0; i < v.u.d->n; i++)
            out->u.l->v[i] = slora__tv_ref(v.u.d->k[i]);
        return slora__tv_list_done(st, out);
    case TV_STR: {
        const struct slora__tstr *s = v.u.s;
        if ((err = slora__tv_list(st, s->nchars, false, out)))
            return err;
        for (size_t i = 0, k = 0; i < s->len; k++) {
            size_t n = slora__tpl_utf8_dec(s->p + i, &(uint32_t){0});
            if ((err = slora__tv_str(st, s->p + i, n, &out->u.l->v[k]))) {
                slora__tv_unref(st, *out);
                return err;
            }
            i += n;
        }
        return 0;
    }
    default:
        return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "'%s' object is not iterable",
                               slora__tv_typename(v));
    }
}

size_t slora__tpl_utf8_count(const char *p, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)p[i] & 0xc0) != 0x80;
    return n;
}

size_t slora__tpl_utf8_dec(const char *p, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)p;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xe0) == 0xc0) {
        *cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
        return 2;
    }
    if ((s[0] & 0xf0) == 0xe0) {
        *cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        return 3;
    }
    *cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
          (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
    return 4;
}

size_t slora__tpl_utf8_enc(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

bool slora__tpl_isspace(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

size_t slora__tpl_utf8_offset(const struct slora__tstr *s, size_t i)
{
    if (s->len == s->nchars)
        return i;
    size_t off = 0;
    for (; i > 0 && off < s->len; i--)
        off += slora__tpl_utf8_dec(s->p + off, &(uint32_t){0});
    return off;
}
