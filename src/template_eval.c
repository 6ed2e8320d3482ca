/* template_eval.c - executes a chat template's tree: statements (output,
 * if, for with loop variables and else, set, macros, break/continue, with,
 * filter blocks), expressions (Python arithmetic, comparisons, and/or,
 * conditional expressions, subscripts and slices) and Jinja's scoping
 * (each loop turn and macro call has its own scope; `if` has none; macros
 * see the template's top level). Every step is counted and every nesting
 * bounded (struct slora_template_opts).
 */
#include "template_internal.h"

#include <slora/error.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loop control travels up as positive codes (errors are negative). */
enum { SIG_BREAK = 1, SIG_CONTINUE = 2 };

struct slora__tscope {
    struct slora__tscope *parent; /* where lookups continue */
    struct slora__tscope *back;   /* the scope to return to when this one ends */
    size_t n, cap;
    const char **names;     /* (cap) borrowed from the tree or the context */
    struct slora__tv *vals; /* (cap) owned */
};

int slora__tpl_step(struct slora__tstate *st, uint64_t n)
{
    st->steps += n;
    if (st->steps > st->o.max_steps)
        return slora__tpl_fail(st, 0, 0, SLORA_ELIMIT,
                               "template render exceeded its step limit (%llu)",
                               (unsigned long long)st->o.max_steps);
    return 0;
}

int slora__tpl_vfail(struct slora__tstate *st, uint32_t line, uint32_t col, int err,
                     const char *fmt, va_list ap)
{
    if (st->diag_set || !st->diag || !st->diag_len)
        return err;
    st->diag_set = true;
    int k = 0;
    if (line) {
        k = snprintf(st->diag, st->diag_len, "line %u, column %u: ", line, col);
        st->pos_set = true;
        if (k < 0 || (size_t)k >= st->diag_len)
            return err;
    }
    vsnprintf(st->diag + k, st->diag_len - (size_t)k, fmt, ap);
    return err;
}

int slora__tpl_fail(struct slora__tstate *st, uint32_t line, uint32_t col, int err,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    slora__tpl_vfail(st, line, col, err, fmt, ap);
    va_end(ap);
    return err;
}

/* Give a message recorded without a position the position of the innermost
 * node it passed through. */
static int at_node(struct slora__tstate *st, const struct slora__tnode *n, int err)
{
    if (err >= 0 || st->pos_set || !st->diag_set || !st->diag)
        return err;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", st->diag);
    snprintf(st->diag, st->diag_len, "line %u, column %u: %s", n->line, n->col, msg);
    st->pos_set = true;
    return err;
}

static int scope_push(struct slora__tstate *st, struct slora__tscope *parent)
{
    struct slora__tscope *s = calloc(1, sizeof(*s));
    if (!s)
        return SLORA_ENOMEM;
    s->parent = parent;
    s->back = st->scope;
    st->scope = s;
    return 0;
}

static void scope_pop(struct slora__tstate *st)
{
    struct slora__tscope *s = st->scope;
    for (size_t i = 0; i < s->n; i++)
        slora__tv_unref(st, s->vals[i]);
    free(s->names);
    free(s->vals);
    st->scope = s->back;
    free(s);
}

/* Bind name in scope s (v taken over). */
static int scope_set(struct slora__tstate *st, struct slora__tscope *s, const char *name,
                     struct slora__tv v)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->names[i], name)) {
            slora__tv_unref(st, s->vals[i]);
            s->vals[i] = v;
            return 0;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const char **names = realloc(s->names, cap * sizeof(*names));
        if (names)
            s->names = names;
        struct slora__tv *vals = names ? realloc(s->vals, cap * sizeof(*vals)) : NULL;
        if (!vals) {
            slora__tv_unref(st, v);
            return SLORA_ENOMEM;
        }
        s->vals = vals;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->vals[s->n++] = v;
    return 0;
}

static const struct slora__tv *lookup(const struct slora__tstate *st, const char *name)
{
    for (const struct slora__tscope *s = st->scope; s; s = s->parent)
        for (size_t i = 0; i < s->n; i++)
            if (!strcmp(s->names[i], name))
                return &s->vals[i];
    return NULL;
}

/* The context scope (the request's variables), then the template's root. */
int slora__tpl_scope_root(struct slora__tstate *st, const json_t *ctx)
{
    int err = scope_push(st, NULL);
    if (err)
        return err;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)ctx, k, v) {
        struct slora__tv val;
        if ((err = slora__tv_from_json(st, v, &val)) || (err = scope_set(st, st->scope, k, val)))
            return err;
    }
    if ((err = scope_push(st, st->scope)))
        return err;
    st->root = st->scope;
    return 0;
}

void slora__tpl_scope_end(struct slora__tstate *st)
{
    while (st->scope)
        scope_pop(st);
    /* Namespaces may hold each other: empty them all, then release. */
    for (size_t i = 0; i < st->n_ns; i++) {
        struct slora__tdict *d = st->ns[i];
        for (size_t k = 0; k < d->n; k++) {
            slora__tv_unref(st, d->k[k]);
            slora__tv_unref(st, d->v[k]);
        }
        d->n = 0;
    }
    for (size_t i = 0; i < st->n_ns; i++) {
        struct slora__tv v = {.t = TV_NS};
        v.u.d = st->ns[i];
        slora__tv_unref(st, v);
    }
    free(st->ns);
    st->ns = NULL;
    st->n_ns = 0;
}

static int out_add(struct slora__tstate *st, const char *p, size_t n)
{
    if (n > st->o.max_output - st->out_total)
        return slora__tpl_fail(st, 0, 0, SLORA_ELIMIT,
                               "template output exceeded its limit (%zu bytes)", st->o.max_output);
    int err = slora__tpl_step(st, n / 64);
    if (err || (err = slora__buf_add(st->out, p, n)))
        return err;
    st->out_total += n;
    return 0;
}

static int out_value(struct slora__tstate *st, struct slora__tv v)
{
    if (v.t == TV_STR)
        return out_add(st, v.u.s->p, v.u.s->len);
    struct slora__buf b = {0};
    int err = slora__tv_write(st, &b, v, false);
    if (!err && b.len)
        err = out_add(st, b.p, b.len);
    free(b.p);
    return err;
}

/* Run body with output going to a fresh buffer; *out = its text. */
static int capture(struct slora__tstate *st, const struct slora__tnode *body, bool scoped,
                   struct slora__tv *out)
{
    struct slora__buf b = {0}, *saved = st->out;
    size_t before = st->out_total;
    int err = scoped ? scope_push(st, st->scope) : 0;
    st->out = &b;
    if (!err) {
        err = slora__tpl_exec(st, body);
        if (scoped)
            scope_pop(st);
    }
    st->out = saved;
    st->out_total = before;
    if (!err)
        err = slora__tv_str(st, b.p ? b.p : "", b.len, out);
    free(b.p);
    return err;
}

/* Bind targets to v (taken over): one name, or unpack an iterable. */
static int bind(struct slora__tstate *st, const struct slora__tnode *n, struct slora__tv v)
{
    if (n->nnames == 1)
        return scope_set(st, st->scope, n->names[0], v);
    struct slora__tv l;
    int err = slora__tv_iter(st, v, &l);
    slora__tv_unref(st, v);
    if (err)
        return err;
    if (l.u.l->n != n->nnames) {
        err = slora__tpl_fail(st, n->line, n->col, SLORA_EINVAL, "%s values to unpack (expected %u, got %zu)",
                              l.u.l->n > n->nnames ? "too many" : "not enough", n->nnames, l.u.l->n);
    }
    for (uint32_t k = 0; !err && k < n->nnames; k++)
        err = scope_set(st, st->scope, n->names[k], slora__tv_ref(l.u.l->v[k]));
    slora__tv_unref(st, l);
    return err;
}

static int exec_for(struct slora__tstate *st, const struct slora__tnode *n)
{
    struct slora__tv it, items;
    int err = slora__tpl_eval(st, n->a, &it);
    if (err)
        return err;
    err = slora__tv_iter(st, it, &items);
    slora__tv_unref(st, it);
    if (err)
        return err;
    if (n->b) { /* for x in xs if cond: filter first, so loop.length counts the kept */
        struct slora__tv kept;
        size_t nk = 0;
        if ((err = slora__tv_list(st, items.u.l->n, false, &kept)))
            goto out_items;
        for (size_t i = 0; !err && i < items.u.l->n; i++) {
            struct slora__tv c;
            if ((err = scope_push(st, st->scope)))
                break;
            err = bind(st, n, slora__tv_ref(items.u.l->v[i]));
            if (!err)
                err = slora__tpl_eval(st, n->b, &c);
            scope_pop(st);
            if (!err && slora__tv_truthy(c))
                kept.u.l->v[nk++] = slora__tv_ref(items.u.l->v[i]);
            if (!err)
                slora__tv_unref(st, c);
        }
        kept.u.l->n = nk;
        slora__tv_unref(st, items);
        items = kept;
        if (err)
            goto out_items;
    }
    for (size_t i = 0; i < items.u.l->n; i++) {
        struct slora__tloop *lp;
        if ((err = slora__tpl_step(st, 1)) || (err = scope_push(st, st->scope)))
            break;
        if (!(err = slora__tv_alloc(st, sizeof(*lp), (void **)&lp))) {
            lp->items = slora__tv_ref(items);
            lp->index0 = i;
            struct slora__tv lv = {.t = TV_LOOP};
            lv.u.loop = lp;
            if (!(err = bind(st, n, slora__tv_ref(items.u.l->v[i]))) &&
                !(err = scope_set(st, st->scope, "loop", lv)))
                err = slora__tpl_exec(st, n->c);
        }
        scope_pop(st);
        if (err == SIG_CONTINUE)
            err = 0;
        if (err)
            break;
    }
    if (err == SIG_BREAK)
        err = 0;
    if (!err && !items.u.l->n && n->d)
        err = slora__tpl_exec(st, n->d);
out_items:
    slora__tv_unref(st, items);
    return err;
}

static int exec_set(struct slora__tstate *st, const struct slora__tnode *n)
{
    struct slora__tv v;
    int err = slora__tpl_eval(st, n->a, &v);
    if (err)
        return err;
    if (!n->flag)
        return bind(st, n, v);
    const struct slora__tv *ns = lookup(st, n->names[0]);
    if (!ns || ns->t != TV_NS) {
        slora__tv_unref(st, v);
        return slora__tpl_fail(st, n->line, n->col, SLORA_EINVAL,
                               "cannot assign attribute on non-namespace object");
    }
    struct slora__tv key;
    if ((err = slora__tv_str(st, n->name, strlen(n->name), &key))) {
        slora__tv_unref(st, v);
        return err;
    }
    return slora__tv_dict_set(st, *ns, key, v);
}

static int exec_node(struct slora__tstate *st, const struct slora__tnode *n)
{
    struct slora__tv v;
    int err = 0;
    switch (n->kind) {
    case N_BODY:
        for (uint32_t i = 0; !err && i < n->nkids; i++)
            err = slora__tpl_exec(st, n->kids[i]);
        return err;
    case N_TEXT: return out_add(st, n->lit.u.s->p, n->lit.u.s->len);
    case N_PRINT:
        if ((err = slora__tpl_eval(st, n->a, &v)))
            return err;
        err = out_value(st, v);
        slora__tv_unref(st, v);
        return err;
    case N_IF:
        if ((err = slora__tpl_eval(st, n->a, &v)))
            return err;
        bool yes = slora__tv_truthy(v);
        slora__tv_unref(st, v);
        return yes ? slora__tpl_exec(st, n->c) : n->d ? slora__tpl_exec(st, n->d) : 0;
    case N_FOR: return exec_for(st, n);
    case N_SET: return exec_set(st, n);
    case N_SETBLOCK:
        if ((err = capture(st, n->c, true, &v)))
            return err;
        return scope_set(st, st->scope, n->names[0], v);
    case N_MACRO:
        v.t = TV_MACRO;
        v.u.node = n;
        return scope_set(st, st->scope, n->name, v);
    case N_BREAK: return SIG_BREAK;
    case N_CONTINUE: return SIG_CONTINUE;
    case N_WITH: {
        struct slora__tv *vals = calloc(n->nkids ? n->nkids : 1, sizeof(*vals));
        if (!vals)
            return SLORA_ENOMEM;
        uint32_t k = 0;
        for (; !err && k < n->nkids; k++)
            err = slora__tpl_eval(st, n->kids[k], &vals[k]);
        if (!err && !(err = scope_push(st, st->scope))) {
            for (uint32_t j = 0; j < n->nkids; j++) {
                if (!err)
                    err = scope_set(st, st->scope, n->names[j], vals[j]);
                else
                    slora__tv_unref(st, vals[j]);
            }
            if (!err)
                err = slora__tpl_exec(st, n->c);
            scope_pop(st);
        } else {
            for (uint32_t j = 0; j < k; j++)
                slora__tv_unref(st, vals[j]);
        }
        free(vals);
        return err;
    }
    case N_FILTERBLOCK: {
        struct slora__tv saved = st->capture;
        if ((err = capture(st, n->c, true, &st->capture)))
            return err;
        err = slora__tpl_eval(st, n->a, &v);
        slora__tv_unref(st, st->capture);
        st->capture = saved;
        if (err)
            return err;
        err = out_value(st, v);
        slora__tv_unref(st, v);
        return err;
    }
    case N_GENERATION: return slora__tpl_exec(st, n->c);
    default:
        return slora__tpl_fail(st, n->line, n->col, SLORA_EINTERNAL, "not a statement");
    }
}

/* One more evaluation frame: counted as a step, bounded in depth. */
static int frame_enter(struct slora__tstate *st, const struct slora__tnode *n)
{
    if (st->depth >= st->o.max_depth)
        return slora__tpl_fail(st, n->line, n->col, SLORA_ELIMIT,
                               "template nesting exceeded its depth limit (%u)", st->o.max_depth);
    int err = slora__tpl_step(st, 1);
    if (!err)
        st->depth++;
    return err;
}

int slora__tpl_exec(struct slora__tstate *st, const struct slora__tnode *n)
{
    int err = frame_enter(st, n);
    if (err)
        return at_node(st, n, err);
    err = exec_node(st, n);
    st->depth--;
    return at_node(st, n, err);
}

/* ---- expressions ---- */

int slora__tpl_undefined(struct slora__tstate *st, struct slora__tv v)
{
    return slora__tpl_fail(st, 0, 0, SLORA_EINVAL, "'%s' is undefined",
                           v.u.undef ? v.u.undef : "value");
}

static int eval_args(struct slora__tstate *st, const struct slora__tnode *n,
                     struct slora__targs *args)
{
    args->n = n->nkids;
    args->kw = (const char *const *)n->names;
    args->v = calloc(n->nkids ? n->nkids : 1, sizeof(*args->v));
    if (!args->v)
        return SLORA_ENOMEM;
    for (uint32_t k = 0; k < n->nkids; k++) {
        int err = slora__tpl_eval(st, n->kids[k], &args->v[k]);
        if (err) {
            for (uint32_t j = 0; j < k; j++)
                slora__tv_unref(st, args->v[j]);
            free(args->v);
            return err;
        }
    }
    return 0;
}

static void free_args(struct slora__tstate *st, struct slora__targs *args)
{
    for (size_t k = 0; k < args->n; k++)
        slora__tv_unref(st, args->v[k]);
    free(args->v);
}

/* a < b < c: pairwise, stopping at the first false. */
static int eval_compare(struct slora__tstate *st, const struct slora__tnode *n,
                        struct slora__tv *out)
{
    struct slora__tv left, right;
    int err = slora__tpl_eval(st, n->kids[0], &left);
    if (err)
        return err;
    bool res = true;
    for (uint32_t k = 1; res && k < n->nkids; k++) {
        if ((err = slora__tpl_eval(st, n->kids[k], &right)))
            break;
        int op = n->ops[k - 1];
        if (op == OP_EQ || op == OP_NE) {
            res = slora__tv_eq(left, right) == (op == OP_EQ);
        } else if (op == OP_IN || op == OP_NOTIN) {
            bool in;
            err = slora__tpl_contains(st, right, left, &in);
            res = in == (op == OP_IN);
        } else {
            err = slora__tv_order(st, op, left, right, &res);
        }
        slora__tv_unref(st, left);
        left = right;
        if (err)
            break;
    }
    slora__tv_unref(st, left);
    if (err)
        return err;
    *out = slora__tv_bool(res);
    return 0;
}

static int eval_node(struct slora__tstate *st, const struct slora__tnode *n, struct slora__tv *out)
{
    struct slora__tv a, b;
    int err;
    switch (n->kind) {
    case N_CONST: *out = slora__tv_ref(n->lit); return 0;
    case N_NAME: {
        const struct slora__tv *v = lookup(st, n->name);
        if (v) {
            *out = slora__tv_ref(*v);
            return 0;
        }
        int f = slora__tpl_func_id(n->name);
        if (f >= 0) {
            out->t = TV_FUNC;
            out->u.i = f;
            return 0;
        }
        *out = slora__tv_undef(n->name);
        return 0;
    }
    case N_CAPTURE: *out = slora__tv_ref(st->capture); return 0;
    case N_LIST:
    case N_TUPLE:
        if ((err = slora__tv_list(st, n->nkids, n->kind == N_TUPLE, out)))
            return err;
        for (uint32_t k = 0; k < n->nkids; k++) {
            if ((err = slora__tpl_eval(st, n->kids[k], &out->u.l->v[k]))) {
                slora__tv_unref(st, *out);
                return err;
            }
        }
        return slora__tv_list_done(st, out);
    case N_DICT:
        if ((err = slora__tv_dict(st, false, out)))
            return err;
        for (uint32_t k = 0; k + 1 < n->nkids; k += 2) {
            if ((err = slora__tpl_eval(st, n->kids[k], &a)))
                break;
            if ((err = slora__tpl_eval(st, n->kids[k + 1], &b))) {
                slora__tv_unref(st, a);
                break;
            }
            if ((err = slora__tv_dict_set(st, *out, a, b)))
                break;
        }
        if (err)
            slora__tv_unref(st, *out);
        return err;
    case N_GETATTR:
        if ((err = slora__tpl_eval(st, n->a, &a)))
            return err;
        err = slora__tpl_getattr(st, n, a, n->name, out);
        slora__tv_unref(st, a);
        return err;
    case N_GETITEM:
        if ((err = slora__tpl_eval(st, n->a, &a)))
            return err;
        if (!(err = slora__tpl_eval(st, n->b, &b))) {
            err = slora__tpl_getitem(st, n, a, b, out);
            slora__tv_unref(st, b);
        }
        slora__tv_unref(st, a);
        return err;
    case N_SLICE: {
        struct slora__tv sv[3] = {slora__tv_none(), slora__tv_none(), slora__tv_none()};
        const struct slora__tnode *parts[3] = {n->b, n->c, n->d};
        if ((err = slora__tpl_eval(st, n->a, &a)))
            return err;
        for (int k = 0; !err && k < 3; k++)
            if (parts[k])
                err = slora__tpl_eval(st, parts[k], &sv[k]);
        if (!err)
            err = slora__tpl_slice(st, a, sv, out);
        for (int k = 0; k < 3; k++)
            slora__tv_unref(st, sv[k]);
        slora__tv_unref(st, a);
        return err;
    }
    case N_CALL:
    case N_FILTER:
    case N_TEST: {
        struct slora__targs args;
        if ((err = slora__tpl_eval(st, n->a, &a)))
            return err;
        if ((err = eval_args(st, n, &args))) {
            slora__tv_unref(st, a);
            return err;
        }
        bool res = false;
        if (n->kind == N_CALL)
            err = slora__tpl_call(st, n, a, &args, out);
        else if (n->kind == N_FILTER)
            err = slora__tpl_filter(st, n, a, &args, out);
        else if (!(err = slora__tpl_test(st, n, a, &args, &res)))
            *out = slora__tv_bool(res != (n->flag != 0));
        free_args(st, &args);
        slora__tv_unref(st, a);
        return err;
    }
    case N_NEG:
    case N_POS:
        if ((err = slora__tpl_eval(st, n->a, &a)))
            return err;
        if (a.t != TV_BOOL && a.t != TV_INT && a.t != TV_FLOAT) {
            err = a.t == TV_UNDEF ? slora__tpl_undefined(st, a)
                                  : slora__tpl_fail(st, 0, 0, SLORA_EINVAL,
                                                    "bad operand type for unary %s: '%s'",
                                                    n->kind == N_NEG ? "-" : "+",
                                                    slora__tv_typename(a));
            slora__tv_unref(st, a);
            return err;
        }
        if (a.t == TV_FLOAT)
            *out = slora__tv_float(n->kind == N_NEG ? -a.u.f : a.u.f);
        else if (n->kind == N_NEG && a.t == TV_INT && a.u.i == INT64_MIN)
            return slora__tpl_fail(st, 0, 0, SLORA_EUNSUPPORTED,
                                   "unsupported: integer arithmetic beyond 64 bits");
        else
            *out = slora__tv_int((n->kind == N_NEG ? -1 : 1) *
                                 (a.t == TV_BOOL ? (int64_t)a.u.b : a.u.i));
        return 0;
    case N_NOT:
        if ((err = slora__tpl_eval(st, n->a, &a)))
            return err;
        *out = slora__tv_bool(!slora__tv_truthy(a));
        slora__tv_unref(st, a);
        return 0;
    case N_AND:
    case N_OR:
        if ((err = slora__tpl_eval(st, n->a, &a)))
            return err;
        if (slora__tv_truthy(a) == (n->kind == N_OR)) {
            *out = a;
            return 0;
        }
        slora__tv_unref(st, a);
        return slora__tpl_eval(st, n->b, out);
    case N_BINARY:
        if ((err = slora__tpl_eval(st, n->a, &a)))
            return err;
        if (!(err = slora__tpl_eval(st, n->b, &b))) {
            err = slora__tpl_binary(st, n->op, a, b, out);
            slora__tv_unref(st, b);
        }
        slora__tv_unref(st, a);
        return err;
    case N_CONCAT: {
        struct slora__buf buf = {0};
        err = 0;
        for (uint32_t k = 0; !err && k < n->nkids; k++) {
            if ((err = slora__tpl_eval(st, n->kids[k], &a)))
                break;
            err = slora__tv_write(st, &buf, a, false);
            slora__tv_unref(st, a);
            if (!err && buf.len > st->o.max_memory)
                err = slora__tpl_fail(st, 0, 0, SLORA_ELIMIT, "string exceeds the memory limit");
        }
        if (!err)
            err = slora__tv_str(st, buf.p ? buf.p : "", buf.len, out);
        free(buf.p);
        return err;
    }
    case N_COMPARE: return eval_compare(st, n, out);
    case N_COND:
        if ((err = slora__tpl_eval(st, n->a, &a)))
            return err;
        bool yes = slora__tv_truthy(a);
        slora__tv_unref(st, a);
        if (yes)
            return slora__tpl_eval(st, n->b, out);
        if (n->c)
            return slora__tpl_eval(st, n->c, out);
        *out = slora__tv_undef(NULL);
        return 0;
    default:
        return slora__tpl_fail(st, n->line, n->col, SLORA_EINTERNAL, "not an expression");
    }
}

int slora__tpl_eval(struct slora__tstate *st, const struct slora__tnode *n, struct slora__tv *out)
{
    int err = frame_enter(st, n);
    if (err)
        return at_node(st, n, err);
    err = eval_node(st, n, out);
    st->depth--;
    return at_node(st, n, err);
}

int slora__tpl_call_macro(struct slora__tstate *st, const struct slora__tnode *at,
                          const struct slora__tnode *m, const struct slora__targs *args,
                          struct slora__tv *out)
{
    if (m->flag)
        return slora__tpl_fail(st, at->line, at->col, SLORA_EUNSUPPORTED,
                               "unsupported: macro '%s' uses varargs, kwargs or caller", m->name);
    size_t npos = 0;
    for (size_t k = 0; k < args->n; k++) {
        if (args->kw[k]) {
            bool known = false;
            for (uint32_t p = 0; p < m->nnames; p++)
                known |= !strcmp(m->names[p], args->kw[k]);
            if (!known)
                return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                                       "macro '%s' takes no keyword argument '%s'", m->name,
                                       args->kw[k]);
        } else {
            npos++;
        }
    }
    if (npos > m->nnames)
        return slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                               "macro '%s' takes not more than %u argument(s)", m->name,
                               m->nnames);
    int err = scope_push(st, st->root);
    if (err)
        return err;
    struct slora__buf b = {0}, *saved_out = st->out;
    size_t before = st->out_total;
    for (uint32_t p = 0; !err && p < m->nnames; p++) {
        const struct slora__tv *v = slora__tpl_arg(args, p, m->names[p]);
        struct slora__tv val;
        if (v && p < npos) {
            for (size_t k = 0; k < args->n; k++)
                if (args->kw[k] && !strcmp(args->kw[k], m->names[p]))
                    err = slora__tpl_fail(st, at->line, at->col, SLORA_EINVAL,
                                          "macro '%s' got multiple values for argument '%s'",
                                          m->name, m->names[p]);
        }
        if (err)
            break;
        if (v)
            val = slora__tv_ref(*v);
        else if (m->kids[p])
            err = slora__tpl_eval(st, m->kids[p], &val);
        else
            val = slora__tv_undef(m->names[p]);
        if (!err)
            err = scope_set(st, st->scope, m->names[p], val);
    }
    st->out = &b;
    if (!err)
        err = slora__tpl_exec(st, m->c);
    st->out = saved_out;
    st->out_total = before;
    scope_pop(st);
    if (!err)
        err = slora__tv_str(st, b.p ? b.p : "", b.len, out);
    free(b.p);
    return err;
}
