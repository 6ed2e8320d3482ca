/* template_json.c - JSON in and out of the chat-template engine: the
 * request's json_t context as values (objects keep their key order, as
 * Python's json.loads does), and Hugging Face's tojson filter, which is
 * json.dumps(x, ensure_ascii=False, indent=None, separators=None,
 * sort_keys=False): the same separators, indentation, float text
 * (repr; NaN, Infinity), string escapes and key conversions.
 */
#include "template_internal.h"

#include <slora/error.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JSON_DEPTH 256

static int from_json(struct slora__tstate *st, const json_t *j, unsigned depth,
                     struct slora__tv *out)
{
    int err;
    if (depth > MAX_JSON_DEPTH)
        return slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "context JSON nested deeper than %d",
                               MAX_JSON_DEPTH);
    switch (json_typeof(j)) {
    case JSON_NULL: *out = slora__tv_none(); return 0;
    case JSON_TRUE: *out = slora__tv_bool(true); return 0;
    case JSON_FALSE: *out = slora__tv_bool(false); return 0;
    case JSON_INTEGER: *out = slora__tv_int(json_integer_value(j)); return 0;
    case JSON_REAL: *out = slora__tv_float(json_real_value(j)); return 0;
    case JSON_STRING:
        return slora__tv_str(st, json_string_value(j), json_string_length(j), out);
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        if ((err = slora__tv_list(st, n, false, out)))
            return err;
        for (size_t i = 0; i < n; i++) {
            if ((err = from_json(st, json_array_get(j, i), depth + 1, &out->u.l->v[i]))) {
                slora__tv_unref(st, *out);
                return err;
            }
        }
        return slora__tv_list_done(st, out);
    }
    case JSON_OBJECT: {
        if ((err = slora__tv_dict(st, false, out)))
            return err;
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            struct slora__tv key, val;
            if ((err = slora__tv_str(st, k, strlen(k), &key)))
                goto err_obj;
            if ((err = from_json(st, v, depth + 1, &val))) {
                slora__tv_unref(st, key);
                goto err_obj;
            }
            if ((err = slora__tv_dict_set(st, *out, key, val)))
                goto err_obj;
        }
        return 0;
    err_obj:
        slora__tv_unref(st, *out);
        return err;
    }
    }
    return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "unknown JSON type in the context");
}

int slora__tv_from_json(struct slora__tstate *st, const json_t *j, struct slora__tv *out)
{
    return from_json(st, j, 0, out);
}

static int json_str(struct slora__buf *b, const char *p, size_t len, bool ascii)
{
    int err = slora__buf_add(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed in one append */
    for (size_t i = 0; !err && i < len;) {
        uint32_t c;
        size_t n = slora__tpl_utf8_dec(p + i, &c);
        const char *esc = NULL;
        char u[16];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20 || (ascii && c >= 0x7f)) {
                if (c >= 0x10000) {
                    uint32_t v = c - 0x10000;
                    snprintf(u, sizeof(u), "\\u%04x\\u%04x", 0xd800 + (v >> 10),
                             0xdc00 + (v & 0x3ff));
                } else {
                    snprintf(u, sizeof(u), "\\u%04x", c);
                }
                esc = u;
            }
        }
        if (esc) {
            if (run)
                err = slora__buf_add(b, p + i - run, run);
            run = 0;
            if (!err)
                err = slora__buf_add(b, esc, strlen(esc));
        } else {
            run += n;
        }
        i += n;
    }
    if (!err && run)
        err = slora__buf_add(b, p + len - run, run);
    return err ? err : slora__buf_add(b, "\"", 1);
}

static int json_float(struct slora__buf *b, double f)
{
    if (isnan(f))
        return slora__buf_add(b, "NaN", 3);
    if (isinf(f))
        return f < 0 ? slora__buf_add(b, "-Infinity", 9) : slora__buf_add(b, "Infinity", 8);
    char tmp[32];
    slora__tv_float_repr(f, tmp);
    return slora__buf_add(b, tmp, strlen(tmp));
}

static int newline_indent(struct slora__tstate *st, struct slora__buf *b,
                          const struct slora__tjson_opts *o, unsigned level)
{
    /* Wide indents at depth could outgrow any limit: bound the text. */
    if (o->indent_len * level > st->o.max_memory - b->len ||
        b->len > st->o.max_memory - o->indent_len * level)
        return slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "tojson output exceeds the memory limit");
    int err = slora__tpl_step(st, 1 + o->indent_len * level / 64);
    if (!err)
        err = slora__buf_add(b, "\n", 1);
    for (unsigned k = 0; !err && k < level; k++)
        err = slora__buf_add(b, o->indent, o->indent_len);
    return err;
}

/* A dict key as json.dumps converts it (str, int, float, bool, None). */
static int json_key(struct slora__tstate *st, struct slora__buf *b, struct slora__tv k,
                    const struct slora__tjson_opts *o)
{
    switch (k.t) {
    case TV_STR: return json_str(b, k.u.s->p, k.u.s->len, o->ensure_ascii);
    case TV_INT: return slora__buf_printf(b, "\"%" PRId64 "\"", k.u.i);
    case TV_BOOL: return slora__buf_add(b, k.u.b ? "\"true\"" : "\"false\"", k.u.b ? 6 : 7);
    case TV_NONE: return slora__buf_add(b, "\"null\"", 6);
    case TV_FLOAT: {
        int err = slora__buf_add(b, "\"", 1);
        return err ? err : (err = json_float(b, k.u.f)) ? err : slora__buf_add(b, "\"", 1);
    }
    default:
        return slora__tpl_fail(st, 0, 0, SLORA_EINVAL,
                               "keys must be str, int, float, bool or None, not %s",
                               slora__tv_typename(k));
    }
}

/* Key order for sort_keys: Python sorts the keys themselves (all strings
 * here: other key types beside strings are refused). */
static int sorted_order(struct slora__tstate *st, const struct slora__tdict *d, size_t **out)
{
    size_t *ix = malloc((d->n ? d->n : 1) * sizeof(*ix));
    if (!ix)
        return SLORA_ENOMEM;
    for (size_t i = 0; i < d->n; i++) {
        if (d->k[i].t != TV_STR) {
            free(ix);
            return slora__tpl_fail(st, 0, 0, SLORA_EUNSUPPORTED,
                                   "unsupported: tojson(sort_keys=true) of non-string keys");
        }
        ix[i] = i;
    }
    /* Insertion sort: stable, and dicts of chat requests are small; the
     * comparisons are counted as work. */
    for (size_t i = 1; i < d->n; i++) {
        size_t v = ix[i], j = i;
        int err = slora__tpl_step(st, i);
        if (err) {
            free(ix);
            return err;
        }
        for (; j > 0; j--) {
            const struct slora__tstr *a = d->k[ix[j - 1]].u.s, *c = d->k[v].u.s;
            size_t n = a->len < c->len ? a->len : c->len;
            int r = memcmp(a->p, c->p, n);
            if (r < 0 || (r == 0 && a->len <= c->len))
                break;
            ix[j] = ix[j - 1];
        }
        ix[j] = v;
    }
    *out = ix;
    return 0;
}

int slora__tv_tojson(struct slora__tstate *st, struct slora__buf *b, struct slora__tv v,
                     const struct slora__tjson_opts *o, unsigned level)
{
    const char *isep = o->item_sep ? o->item_sep : o->indent ? "," : ", ";
    size_t isep_len = o->item_sep ? o->item_sep_len : o->indent ? 1 : 2;
    const char *ksep = o->key_sep ? o->key_sep : ": ";
    size_t ksep_len = o->key_sep ? o->key_sep_len : 2;
    int err = 0;
    switch (v.t) {
    case TV_NONE: return slora__buf_add(b, "null", 4);
    case TV_BOOL: return v.u.b ? slora__buf_add(b, "true", 4) : slora__buf_add(b, "false", 5);
    case TV_INT: return slora__buf_printf(b, "%" PRId64, v.u.i);
    case TV_FLOAT: return json_float(b, v.u.f);
    case TV_STR: return json_str(b, v.u.s->p, v.u.s->len, o->ensure_ascii);
    case TV_LIST: {
        const struct slora__tlist *l = v.u.l;
        if (l->gen)
            return slora__tpl_fail(st, 0, 0, SLORA_EINVAL,
                                   "Object of type generator is not JSON serializable");
        if (!l->n)
            return slora__buf_add(b, "[]", 2);
        err = slora__buf_add(b, "[", 1);
        if (!err && o->indent)
            err = newline_indent(st, b, o, level + 1);
        for (size_t i = 0; !err && i < l->n; i++) {
            if (i) {
                err = slora__buf_add(b, isep, isep_len);
                if (!err && o->indent)
                    err = newline_indent(st, b, o, level + 1);
            }
            if (!err)
                err = slora__tv_tojson(st, b, l->v[i], o, level + 1);
        }
        if (!err && o->indent)
            err = newline_indent(st, b, o, level);
        return err ? err : slora__buf_add(b, "]", 1);
    }
    case TV_DICT: {
        const struct slora__tdict *d = v.u.d;
        size_t *ix = NULL;
        if (!d->n)
            return slora__buf_add(b, "{}", 2);
        if (o->sort_keys && (err = sorted_order(st, d, &ix)))
            return err;
        err = slora__buf_add(b, "{", 1);
        if (!err && o->indent)
            err = newline_indent(st, b, o, level + 1);
        for (size_t i = 0; !err && i < d->n; i++) {
            size_t k = ix ? ix[i] : i;
            if (i) {
                err = slora__buf_add(b, isep, isep_len);
                if (!err && o->indent)
                    err = newline_indent(st, b, o, level + 1);
            }
            if (!err)
                err = json_key(st, b, d->k[k], o);
            if (!err)
                err = slora__buf_add(b, ksep, ksep_len);
            if (!err)
                err = slora__tv_tojson(st, b, d->v[k], o, level + 1);
        }
        free(ix);
        if (!err && o->indent)
            err = newline_indent(st, b, o, level);
        return err ? err : slora__buf_add(b, "}", 1);
    }
    default:
        return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "Object of type %s is not JSON serializable",
                               slora__tv_typename(v));
    }
}
