/* template_ops.c - Python's operators on chat-template values: + - * /
 * // % ** with int64 (overflow refused, never wrapped) and float semantics
 * (floor division and modulo take the divisor's sign, as CPython's
 * float_divmod), sequence repetition and concatenation, slices with
 * negative indices and steps (strings by code point), and `in`.
 */
#include "template_internal.h"

#include <slora/error.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int type_error(struct slora__tstate *st, const char *op, struct slora__tv a,
                      struct slora__tv b)
{
    if (a.t == TV_UNDEF)
        return slora__tpl_undefined(st, a);
    if (b.t == TV_UNDEF)
        return slora__tpl_undefined(st, b);
    return slora__tpl_fail(st, 0, 0, SLORA_EINVAL,
                           "unsupported operand type(s) for %s: '%s' and '%s'", op,
                           slora__tv_typename(a), slora__tv_typename(b));
}

static bool is_num(struct slora__tv v)
{
    return v.t == TV_BOOL || v.t == TV_INT || v.t == TV_FLOAT;
}

static double as_f(struct slora__tv v)
{
    return v.t == TV_FLOAT ? v.u.f : v.t == TV_BOOL ? (double)v.u.b : (double)v.u.i;
}

static int64_t as_i(struct slora__tv v)
{
    return v.t == TV_BOOL ? (int64_t)v.u.b : v.u.i;
}

static int overflow(struct slora__tstate *st)
{
    return slora__tpl_fail(st, 0, 0, SLORA_EUNSUPPORTED,
                           "unsupported: integer arithmetic beyond 64 bits");
}

/* Python's float floor division and modulo (float_divmod). */
static void py_fdivmod(double vx, double wx, double *div, double *mod)
{
    double m = fmod(vx, wx), d = (vx - m) / wx;
    if (m) {
        if ((wx < 0) != (m < 0)) {
            m += wx;
            d -= 1.0;
        }
    } else {
        m = copysign(0.0, wx);
    }
    if (d) {
        double fl = floor(d);
        if (d - fl > 0.5)
            fl += 1.0;
        d = fl;
    } else {
        d = copysign(0.0, vx / wx);
    }
    *div = d;
    *mod = m;
}

/* seq * count for strings and lists. */
static int repeat(struct slora__tstate *st, struct slora__tv seq, int64_t count,
                  struct slora__tv *out)
{
    if (count < 0)
        count = 0;
    size_t unit = seq.t == TV_STR ? seq.u.s->len : seq.u.l->n * sizeof(struct slora__tv);
    if (unit && (uint64_t)count > st->o.max_memory / unit)
        return slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "repetition exceeds the memory limit");
    int err;
    if (seq.t == TV_STR) {
        size_t len = seq.u.s->len * (size_t)count;
        char *buf = malloc(len + 1);
        if (!buf)
            return SLORA_ENOMEM;
        for (int64_t k = 0; k < count; k++)
            memcpy(buf + (size_t)k * seq.u.s->len, seq.u.s->p, seq.u.s->len);
        err = slora__tv_str(st, buf, len, out);
        free(buf);
        return err;
    }
    size_t n = seq.u.l->n;
    if ((err = slora__tv_list(st, n * (size_t)count, seq.u.l->tuple, out)))
        return err;
    for (size_t k = 0; k < n * (size_t)count; k++)
        out->u.l->v[k] = slora__tv_ref(seq.u.l->v[k % n]);
    return slora__tv_list_done(st, out);
}

int slora__tpl_binary(struct slora__tstate *st, int op, struct slora__tv a, struct slora__tv b,
                  struct slora__tv *out)
{
    static const char *const names[] = {[OP_ADD] = "+", [OP_SUB] = "-", [OP_MUL] = "*",
                                        [OP_DIV] = "/", [OP_FLOORDIV] = "//", [OP_MOD] = "%",
                                        [OP_POW] = "**"};
    if (is_num(a) && is_num(b)) {
        bool ints = a.t != TV_FLOAT && b.t != TV_FLOAT;
        int64_t x = as_i(a), y = as_i(b), r;
        double fx = as_f(a), fy = as_f(b), d, m;
        switch (op) {
        case OP_ADD:
            if (!ints)
                break;
            if (__builtin_add_overflow(x, y, &r))
                return overflow(st);
            *out = slora__tv_int(r);
            return 0;
        case OP_SUB:
            if (!ints)
                break;
            if (__builtin_sub_overflow(x, y, &r))
                return overflow(st);
            *out = slora__tv_int(r);
            return 0;
        case OP_MUL:
            if (!ints)
                break;
            if (__builtin_mul_overflow(x, y, &r))
                return overflow(st);
            *out = slora__tv_int(r);
            return 0;
        case OP_DIV:
            if (fy == 0.0)
                return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "division by zero");
            *out = slora__tv_float(fx / fy);
            return 0;
        case OP_FLOORDIV:
        case OP_MOD:
            if (ints) {
                if (y == 0)
                    return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1)
                    return overflow(st);
                int64_t q = x / y, rem = x % y;
                if (rem && ((rem < 0) != (y < 0))) {
                    q--;
                    rem += y;
                }
                *out = slora__tv_int(op == OP_MOD ? rem : q);
                return 0;
            }
            if (fy == 0.0)
                return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "float modulo or division by zero");
            py_fdivmod(fx, fy, &d, &m);
            *out = slora__tv_float(op == OP_MOD ? m : d);
            return 0;
        case OP_POW:
            if (ints && y >= 0) {
                int64_t acc = 1, base = x;
                for (int64_t e = y; e > 0; e >>= 1) {
                    if ((e & 1) && __builtin_mul_overflow(acc, base, &acc))
                        return overflow(st);
                    if (e > 1 && __builtin_mul_overflow(base, base, &base))
                        return overflow(st);
                }
                *out = slora__tv_int(acc);
                return 0;
            }
            if (fx == 0.0 && fy < 0)
                return slora__tpl_fail(st, 0, 0, SLORA_EINVAL,
                                       "0.0 cannot be raised to a negative power");
            if (fx < 0 && fy != floor(fy))
                return slora__tpl_fail(st, 0, 0, SLORA_EUNSUPPORTED,
                                       "unsupported: complex result of **");
            *out = slora__tv_float(pow(fx, fy));
            return 0;
        }
        double f = op == OP_ADD ? fx + fy : op == OP_SUB ? fx - fy : fx * fy;
        *out = slora__tv_float(f);
        return 0;
    }
    if (op == OP_ADD && a.t == TV_STR && b.t == TV_STR) {
        if (a.u.s->len > st->o.max_memory - b.u.s->len)
            return slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "string exceeds the memory limit");
        char *buf = malloc(a.u.s->len + b.u.s->len + 1);
        if (!buf)
            return SLORA_ENOMEM;
        memcpy(buf, a.u.s->p, a.u.s->len);
        memcpy(buf + a.u.s->len, b.u.s->p, b.u.s->len);
        int err = slora__tv_str(st, buf, a.u.s->len + b.u.s->len, out);
        free(buf);
        return err;
    }
    if (op == OP_ADD && a.t == TV_LIST && b.t == TV_LIST && a.u.l->tuple == b.u.l->tuple) {
        size_t n = a.u.l->n + b.u.l->n;
        int err = slora__tv_list(st, n, a.u.l->tuple, out);
        if (err)
            return err;
        for (size_t k = 0; k < n; k++)
            out->u.l->v[k] = slora__tv_ref(k < a.u.l->n ? a.u.l->v[k] : b.u.l->v[k - a.u.l->n]);
        return slora__tv_list_done(st, out);
    }
    if (op == OP_MUL) {
        if ((a.t == TV_STR || a.t == TV_LIST) && (b.t == TV_INT || b.t == TV_BOOL))
            return repeat(st, a, as_i(b), out);
        if ((b.t == TV_STR || b.t == TV_LIST) && (a.t == TV_INT || a.t == TV_BOOL))
            return repeat(st, b, as_i(a), out);
    }
    if (op == OP_MOD && a.t == TV_STR)
        return slora__tpl_fail(st, 0, 0, SLORA_EUNSUPPORTED,
                               "unsupported: %% string formatting");
    return type_error(st, names[op], a, b);
}

/* Python slice indices (start, stop, step) over n items. */
static int slice_bounds(struct slora__tstate *st, const struct slora__tv *sv, size_t n,
                        int64_t *start, int64_t *stop, int64_t *step, bool *bad)
{
    int64_t v[3];
    bool have[3];
    for (int k = 0; k < 3; k++) {
        have[k] = sv[k].t != TV_NONE;
        if (have[k] && sv[k].t != TV_INT && sv[k].t != TV_BOOL) {
            *bad = true; /* TypeError: Jinja's getitem answers undefined */
            return 0;
        }
        v[k] = have[k] ? as_i(sv[k]) : 0;
    }
    *step = have[2] ? v[2] : 1;
    if (*step == 0)
        return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "slice step cannot be zero");
    int64_t len = (int64_t)n;
    for (int k = 0; k < 2; k++) {
        int64_t *dst = k ? stop : start;
        if (!have[k]) {
            *dst = *step > 0 ? (k ? len : 0) : (k ? -1 : len - 1);
            continue;
        }
        int64_t x = v[k];
        if (x < 0)
            x = x < -len ? (*step > 0 ? 0 : -1) : x + len;
        else if (x > len)
            x = *step > 0 ? len : len - 1;
        if (x >= len && *step < 0)
            x = len - 1;
        *dst = x;
    }
    return 0;
}

int slora__tpl_slice(struct slora__tstate *st, struct slora__tv obj, const struct slora__tv sv[3],
                     struct slora__tv *out)
{
    int err = 0;
    if (obj.t == TV_UNDEF)
        return slora__tpl_undefined(st, obj);
    if ((obj.t != TV_STR && obj.t != TV_LIST) || (obj.t == TV_LIST && obj.u.l->gen)) {
        *out = slora__tv_undef(NULL); /* TypeError: Jinja's getitem answers undefined */
        return 0;
    }
    size_t len = obj.t == TV_STR ? obj.u.s->nchars : obj.u.l->n;
    int64_t a = 0, b = 0, step = 1;
    bool bad = false;
    if ((err = slice_bounds(st, sv, len, &a, &b, &step, &bad)))
        return err;
    if (bad) {
        *out = slora__tv_undef(NULL);
        return 0;
    }
    size_t cnt = 0;
    for (int64_t i = a; step > 0 ? i < b : i > b; i += step)
        cnt++;
    if (obj.t == TV_LIST) {
        if ((err = slora__tv_list(st, cnt, obj.u.l->tuple, out)))
            return err;
        size_t k = 0;
        for (int64_t i = a; step > 0 ? i < b : i > b; i += step)
            out->u.l->v[k++] = slora__tv_ref(obj.u.l->v[i]);
        return slora__tv_list_done(st, out);
    }
    /* Strings: code point offsets once, then copy the chosen ones. */
    const struct slora__tstr *s = obj.u.s;
    size_t *off = malloc((len + 1) * sizeof(*off));
    char *buf = malloc(s->len + 1);
    if (!off || !buf) {
        free(off);
        free(buf);
        return SLORA_ENOMEM;
    }
    for (size_t i = 0, o = 0; i <= len; i++) {
        off[i] = o;
        if (i < len)
            o += slora__tpl_utf8_dec(s->p + o, &(uint32_t){0});
    }
    size_t w = 0;
    for (int64_t i = a; step > 0 ? i < b : i > b; i += step) {
        memcpy(buf + w, s->p + off[i], off[i + 1] - off[i]);
        w += off[i + 1] - off[i];
    }
    err = slora__tv_str(st, buf, w, out);
    free(off);
    free(buf);
    return err;
}

/* x in seq, as Python's `in` operator answers it. */
int slora__tpl_contains(struct slora__tstate *st, struct slora__tv seq, struct slora__tv x, bool *in)
{
    *in = false;
    switch (seq.t) {
    case TV_STR:
        if (x.t != TV_STR)
            return x.t == TV_UNDEF ? slora__tpl_undefined(st, x)
                                   : slora__tpl_fail(st, 0, 0, SLORA_EINVAL,
                                                     "'in <string>' requires string as left "
                                                     "operand, not %s", slora__tv_typename(x));
        *in = !x.u.s->len || memmem(seq.u.s->p, seq.u.s->len, x.u.s->p, x.u.s->len);
        return slora__tpl_step(st, seq.u.s->len / 64);
    case TV_LIST:
        for (size_t i = 0; !*in && i < seq.u.l->n; i++)
            *in = slora__tv_eq(x, seq.u.l->v[i]);
        return slora__tpl_step(st, seq.u.l->n / 8);
    case TV_DICT:
        *in = slora__tv_dict_get(seq.u.d, x) != NULL;
        return slora__tpl_step(st, seq.u.d->n / 8);
    case TV_UNDEF: return 0; /* iterates as empty */
    default:
        return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "argument of type '%s' is not iterable",
                               slora__tv_typename(seq));
    }
}

