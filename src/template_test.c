/* template_test.c - Jinja's tests (`x is defined`, `is string`, `is
 * equalto`, ...) as jinja2 3.1 defines them, including the answers for
 * undefined values (iterable, sequence and callable are true for them).
 */
#include "template_internal.h"

#include <slora/error.h>

#include <string.h>

enum test {
    T_DEFINED, T_UNDEFINED, T_NONE, T_BOOLEAN, T_FALSE, T_TRUE, T_INTEGER, T_FLOAT, T_NUMBER,
    T_STRING, T_MAPPING, T_SEQUENCE, T_ITERABLE, T_CALLABLE, T_ODD, T_EVEN, T_DIVISIBLEBY,
    T_LOWER, T_UPPER, T_IN, T_EQ, T_NE, T_GT, T_GE, T_LT, T_LE, T_SAMEAS, T_FILTER, T_TEST,
    T_UNSUPPORTED,
};

static const struct {
    const char *name;
    int id;
} tests[] = {
    {"defined", T_DEFINED}, {"undefined", T_UNDEFINED}, {"none", T_NONE},
    {"boolean", T_BOOLEAN}, {"false", T_FALSE}, {"true", T_TRUE}, {"integer", T_INTEGER},
    {"float", T_FLOAT}, {"number", T_NUMBER}, {"string", T_STRING}, {"mapping", T_MAPPING},
    {"sequence", T_SEQUENCE}, {"iterable", T_ITERABLE}, {"callable", T_CALLABLE},
    {"odd", T_ODD}, {"even", T_EVEN}, {"divisibleby", T_DIVISIBLEBY}, {"lower", T_LOWER},
    {"upper", T_UPPER}, {"in", T_IN}, {"eq", T_EQ}, {"equalto", T_EQ}, {"==", T_EQ},
    {"ne", T_NE}, {"!=", T_NE}, {"gt", T_GT}, {"greaterthan", T_GT}, {">", T_GT},
    {"ge", T_GE}, {">=", T_GE}, {"lt", T_LT}, {"lessthan", T_LT}, {"<", T_LT},
    {"le", T_LE}, {"<=", T_LE}, {"sameas", T_SAMEAS}, {"filter", T_FILTER}, {"test", T_TEST},
    {"escaped", T_UNSUPPORTED},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int slora__tpl_test_id(const char *name)
{
    for (size_t k = 0; k < COUNT(tests); k++)
        if (!strcmp(tests[k].name, name))
            return tests[k].id;
    return -1;
}

static int apply_test(struct slora__tstate *st, const struct slora__tnode *at, int id,
                      const char *name, struct slora__tv v, const struct slora__targs *a, bool *out)
{
    const struct slora__tv *x = slora__tpl_arg(a, 0, NULL);
    struct slora__tv r;
    int err;
    switch (id) {
    case T_DEFINED: *out = v.t != TV_UNDEF; return 0;
    case T_UNDEFINED: *out = v.t == TV_UNDEF; return 0;
    case T_NONE: *out = v.t == TV_NONE; return 0;
    case T_BOOLEAN: *out = v.t == TV_BOOL; return 0;
    case T_FALSE: *out = v.t == TV_BOOL && !v.u.b; return 0;
    case T_TRUE: *out = v.t == TV_BOOL && v.u.b; return 0;
    case T_INTEGER: *out = v.t == TV_INT; return 0;
    case T_FLOAT: *out = v.t == TV_FLOAT; return 0;
    case T_NUMBER: *out = slora__tv_is_num(v); return 0;
    case T_STRING: *out = v.t == TV_STR; return 0;
    case T_MAPPING: *out = v.t == TV_DICT; return 0;
    case T_SEQUENCE:
        *out = v.t == TV_STR || (v.t == TV_LIST && !v.u.l->gen) || v.t == TV_DICT ||
               v.t == TV_UNDEF;
        return 0;
    case T_ITERABLE:
        *out = v.t == TV_STR || v.t == TV_LIST || v.t == TV_DICT || v.t == TV_UNDEF || v.t == TV_LOOP;
        return 0;
    case T_CALLABLE:
        *out = v.t == TV_FUNC || v.t == TV_MACRO || v.t == TV_METHOD || v.t == TV_LOOP || v.t == TV_UNDEF;
        return 0;
    case T_ODD:
    case T_EVEN:
    case T_DIVISIBLEBY:
        if (id == T_DIVISIBLEBY && !x)
            return slora__tpl_argfail(st, at, "divisibleby");
        err = slora__tpl_binary(st, OP_MOD, v, id == T_DIVISIBLEBY ? *x : slora__tv_int(2), &r);
        if (err)
            return err;
        *out = slora__tv_eq(r, slora__tv_int(id == T_ODD ? 1 : 0));
        return 0;
    case T_LOWER:
    case T_UPPER: {
        struct slora__tv s, m;
        if ((err = slora__tv_tostr(st, v, &s)))
            return err;
        err = slora__tpl_str_case(st, s.u.s, id == T_LOWER ? CASE_LOWER : CASE_UPPER, &m);
        bool cased = false;
        for (size_t i = 0; !err && i < s.u.s->len; i++)
            cased |= (s.u.s->p[i] | 0x20) >= 'a' && (s.u.s->p[i] | 0x20) <= 'z';
        *out = !err && cased && slora__tv_eq(s, m);
        if (!err)
            slora__tv_unref(st, m);
        slora__tv_unref(st, s);
        return err;
    }
    case T_IN:
        if (!x)
            return slora__tpl_argfail(st, at, "in");
        return slora__tpl_contains(st, *x, v, out);
    case T_EQ:
    case T_NE:
        if (!x)
            return slora__tpl_argfail(st, at, name);
        *out = slora__tv_eq(v, *x) == (id == T_EQ);
        return 0;
    case T_GT:
    case T_GE:
    case T_LT:
    case T_LE:
        if (!x)
            return slora__tpl_argfail(st, at, name);
        return slora__tv_order(st, id == T_GT ? OP_GT : id == T_GE ? OP_GE : id == T_LT ? OP_LT : OP_LE,
                               v, *x, out);
    case T_SAMEAS:
        if (!x)
            return slora__tpl_argfail(st, at, "sameas");
        /* Python identity: singletons, small cached ints, or the same object. */
        *out = v.t == x->t && ((v.t == TV_NONE || v.t == TV_UNDEF) ? v.t == TV_NONE
                               : v.t == TV_BOOL ? v.u.b == x->u.b
                               : v.t == TV_INT ? v.u.i == x->u.i && v.u.i >= -5 && v.u.i <= 256
                               : v.t == TV_FLOAT ? false
                               : slora__tv_heap(v) ? v.u.o == x->u.o : slora__tv_eq(v, *x));
        return 0;
    case T_FILTER:
    case T_TEST:
        *out = v.t == TV_STR && (id == T_FILTER ? slora__tpl_filter_id(v.u.s->p)
                                                : slora__tpl_test_id(v.u.s->p)) >= 0;
        return 0;
    case T_UNSUPPORTED:
        return slora__tpl_fail(st, at->line, at->col, SLORA_EUNSUPPORTED,
                               "unsupported: the '%s' test", name);
    default:
        return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL, "no test named '%s'", name);
    }
}

int slora__tpl_test(struct slora__tstate *st, const struct slora__tnode *n, struct slora__tv v,
                    const struct slora__targs *args, bool *out)
{
    return apply_test(st, n, n->op == 0xff ? -1 : n->op, n->name, v, args, out);
}

int slora__tpl_test_by_name(struct slora__tstate *st, const struct slora__tnode *at,
                            const char *name, struct slora__tv v, const struct slora__targs *args,
                            bool *out)
{
    return apply_test(st, at, slora__tpl_test_id(name), name, v, args, out);
}
