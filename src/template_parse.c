/* template_parse.c - the expression half of the chat-template parser,
 * following jinja2's parser (3.x) production by production: the same
 * precedence (or, and, not, comparisons, + -, ~, * / // %, **, unary,
 * postfix, filters and tests) and the same assignment targets. Everything
 * lives in the template's arena; nesting is bounded so a hostile template
 * cannot exhaust the stack.
 */
#include "template_parse.h"

static int parse_primary(struct parser *P, const struct slora__tnode **out);
static int parse_postfix(struct parser *P, const struct slora__tnode *in,
                         const struct slora__tnode **out);


/* Call arguments "(a, b, k=v)" into n->kids/names. */
static int parse_call_args(struct parser *P, struct slora__tnode *n)
{
    int err = expect_op(P, OP_LPAREN, "(");
    struct vec kids = {0}, names = {0};
    bool saw_kw = false;
    while (!err && !is_op(P, OP_RPAREN)) {
        if (kids.n) {
            if ((err = expect_op(P, OP_COMMA, ",")))
                break;
            if (is_op(P, OP_RPAREN))
                break;
        }
        if (is_op(P, OP_MUL) || is_op(P, OP_POW))
            return pfail(P, cur(P), SLORA_EUNSUPPORTED, "unsupported: *args or **kwargs in a call");
        const char *kw = NULL;
        if (cur(P)->type == TK_NAME && peek(P, 1)->type == TK_OP && peek(P, 1)->op == OP_ASSIGN) {
            kw = cur(P)->s;
            P->i += 2;
            saw_kw = true;
        } else if (saw_kw) {
            return pfail(P, cur(P), SLORA_EINVAL, "invalid syntax for function call expression");
        }
        const struct slora__tnode *e;
        if ((err = slora__tpl_parse_expression(P, true, &e)) || (err = vpush(P, &kids, (void *)e)) ||
            (err = vpush(P, &names, (void *)kw)))
            return err;
    }
    if (err || (err = expect_op(P, OP_RPAREN, ")")))
        return err;
    n->kids = (const struct slora__tnode **)kids.p;
    n->nkids = kids.n;
    n->names = (const char **)names.p;
    n->nnames = names.n;
    return 0;
}


/* callee(args) */
static int parse_call(struct parser *P, const struct slora__tnode *callee,
                      const struct slora__tnode **out)
{
    struct slora__tnode *n = node(P, N_CALL, cur(P));
    if (!n)
        return SLORA_ENOMEM;
    n->a = callee;
    *out = n;
    return parse_call_args(P, n);
}

static bool tuple_end(const struct parser *P, const char *extra_end)
{
    const struct slora__ttok *t = cur(P);
    return t->type == TK_VAR_END || t->type == TK_BLOCK_END ||
           (t->type == TK_OP && t->op == OP_RPAREN) || (extra_end && is_name(t, extra_end));
}

static int parse_subscribed(struct parser *P, const struct slora__tnode **out)
{
    const struct slora__ttok *at = cur(P);
    const struct slora__tnode *args[3] = {NULL, NULL, NULL};
    int err;
    if (!is_op(P, OP_COLON)) {
        if ((err = slora__tpl_parse_expression(P, true, &args[0])))
            return err;
        if (!is_op(P, OP_COLON)) {
            *out = args[0];
            return 0;
        }
    }
    P->i++; /* ':' */
    if (!is_op(P, OP_RBRACKET) && !is_op(P, OP_COMMA) && !is_op(P, OP_COLON) &&
        (err = slora__tpl_parse_expression(P, true, &args[1])))
        return err;
    if (is_op(P, OP_COLON)) {
        P->i++;
        if (!is_op(P, OP_RBRACKET) && !is_op(P, OP_COMMA) &&
            (err = slora__tpl_parse_expression(P, true, &args[2])))
            return err;
    }
    struct slora__tnode *s = node(P, N_SLICE, at);
    if (!s)
        return SLORA_ENOMEM;
    s->b = args[0];
    s->c = args[1];
    s->d = args[2];
    *out = s;
    return 0;
}

static int parse_postfix(struct parser *P, const struct slora__tnode *in,
                         const struct slora__tnode **out)
{
    int err;
    for (;;) {
        const struct slora__ttok *at = cur(P);
        if (is_op(P, OP_DOT)) {
            P->i++;
            const struct slora__ttok *a = cur(P);
            struct slora__tnode *n;
            if (a->type == TK_NAME) {
                n = node(P, N_GETATTR, at);
                if (!n)
                    return SLORA_ENOMEM;
                n->name = a->s;
            } else if (a->type == TK_INT) {
                n = node(P, N_GETITEM, at);
                struct slora__tnode *k = node(P, N_CONST, a);
                if (!n || !k)
                    return SLORA_ENOMEM;
                k->lit = slora__tv_int(a->i);
                n->b = k;
            } else {
                return pfail(P, a, SLORA_EINVAL, "expected name or number");
            }
            P->i++;
            n->a = in;
            in = n;
        } else if (is_op(P, OP_LBRACKET)) {
            P->i++;
            struct vec args = {0};
            while (!is_op(P, OP_RBRACKET)) {
                if (args.n && (err = expect_op(P, OP_COMMA, ",")))
                    return err;
                const struct slora__tnode *s;
                if ((err = parse_subscribed(P, &s)) || (err = vpush(P, &args, (void *)s)))
                    return err;
            }
            P->i++;
            if (args.n != 1)
                return pfail(P, at, args.n ? SLORA_EUNSUPPORTED : SLORA_EINVAL,
                             args.n ? "unsupported: tuple subscripts" : "expected a subscript");
            const struct slora__tnode *sub = args.p[0];
            struct slora__tnode *n;
            if (sub->kind == N_SLICE) {
                n = (struct slora__tnode *)sub;
            } else {
                n = node(P, N_GETITEM, at);
                if (!n)
                    return SLORA_ENOMEM;
                n->b = sub;
            }
            n->a = in;
            in = n;
        } else if (is_op(P, OP_LPAREN)) {
            if ((err = parse_call(P, in, &in)))
                return err;
        } else {
            *out = in;
            return 0;
        }
    }
}

int slora__tpl_parse_filter_or_test(struct parser *P, const struct slora__tnode *in, bool test,
                                const struct slora__tnode **out)
{
    const struct slora__ttok *at = cur(P);
    P->i++; /* '|' or 'is' */
    bool neg = false;
    if (test && is_name(cur(P), "not")) {
        neg = true;
        P->i++;
    }
    if (cur(P)->type != TK_NAME)
        return pfail(P, cur(P), SLORA_EINVAL, "expected a %s name", test ? "test" : "filter");
    const struct slora__ttok *nt = cur(P);
    P->i++;
    if (is_op(P, OP_DOT))
        return pfail(P, cur(P), SLORA_EUNSUPPORTED, "unsupported: dotted %s names",
                     test ? "test" : "filter");
    struct slora__tnode *n = node(P, test ? N_TEST : N_FILTER, nt);
    if (!n)
        return SLORA_ENOMEM;
    n->a = in;
    n->name = nt->s;
    n->flag = neg;
    int id = test ? slora__tpl_test_id(nt->s) : slora__tpl_filter_id(nt->s);
    n->op = id < 0 ? 0xff : (uint8_t)id; /* unknown: see check_names() */
    int err;
    if (is_op(P, OP_LPAREN)) {
        if ((err = parse_call_args(P, n)))
            return err;
    } else if (test) {
        const struct slora__ttok *c = cur(P);
        bool arg = (c->type == TK_NAME || c->type == TK_STRING || c->type == TK_INT ||
                    c->type == TK_FLOAT ||
                    (c->type == TK_OP && (c->op == OP_LBRACKET || c->op == OP_LBRACE))) &&
                   !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and");
        if (arg) {
            if (is_name(c, "is"))
                return pfail(P, c, SLORA_EINVAL, "you cannot chain multiple tests with is");
            const struct slora__tnode *e;
            const struct slora__tnode **kids = slora__tpl_arena_alloc(P->a, sizeof(*kids));
            const char **names = slora__tpl_arena_alloc(P->a, sizeof(*names));
            if (!kids || !names)
                return SLORA_ENOMEM;
            if ((err = parse_primary(P, &e)) || (err = parse_postfix(P, e, &e)))
                return err;
            kids[0] = e;
            n->kids = kids;
            n->names = names;
            n->nkids = n->nnames = 1;
        }
    }
    (void)at;
    *out = n;
    return 0;
}

int slora__tpl_parse_filter_expr(struct parser *P, const struct slora__tnode *in,
                             const struct slora__tnode **out)
{
    int err;
    for (;;) {
        if (is_op(P, OP_PIPE)) {
            if ((err = slora__tpl_parse_filter_or_test(P, in, false, &in)))
                return err;
        } else if (is_name(cur(P), "is")) {
            if ((err = slora__tpl_parse_filter_or_test(P, in, true, &in)))
                return err;
        } else if (is_op(P, OP_LPAREN)) {
            if ((err = parse_call(P, in, &in)))
                return err;
        } else {
            *out = in;
            return 0;
        }
    }
}

static int parse_unary(struct parser *P, bool with_filter, const struct slora__tnode **out)
{
    const struct slora__ttok *at = cur(P);
    int err = enter(P);
    const struct slora__tnode *n;
    if (err)
        return err;
    if (is_op(P, OP_SUB) || is_op(P, OP_ADD)) {
        P->i++;
        struct slora__tnode *u = node(P, at->op == OP_SUB ? N_NEG : N_POS, at);
        if (!u)
            return SLORA_ENOMEM;
        if ((err = parse_unary(P, false, &u->a)))
            return err;
        n = u;
    } else if ((err = parse_primary(P, &n))) {
        return err;
    }
    if ((err = parse_postfix(P, n, &n)) || (with_filter && (err = slora__tpl_parse_filter_expr(P, n, &n))))
        return err;
    P->depth--;
    *out = n;
    return 0;
}

/* Left-associative binary levels, lowest to highest from math1. */
static int parse_binary(struct parser *P, int level, const struct slora__tnode **out)
{
    static const uint8_t lv_ops[4][4] = {
        {OP_ADD, OP_SUB}, {OP_TILDE}, {OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD}, {OP_POW}};
    if (level == 4)
        return parse_unary(P, true, out);
    const struct slora__tnode *left;
    int err = parse_binary(P, level + 1, &left);
    if (err)
        return err;
    if (level == 1) { /* "~" collects its operands in one node */
        if (!is_op(P, OP_TILDE)) {
            *out = left;
            return 0;
        }
        struct slora__tnode *c = node(P, N_CONCAT, cur(P));
        struct vec kids = {0};
        if (!c || (err = vpush(P, &kids, (void *)left)))
            return err ? err : SLORA_ENOMEM;
        while (is_op(P, OP_TILDE)) {
            P->i++;
            const struct slora__tnode *r;
            if ((err = parse_binary(P, 2, &r)) || (err = vpush(P, &kids, (void *)r)))
                return err;
        }
        c->kids = (const struct slora__tnode **)kids.p;
        c->nkids = kids.n;
        *out = c;
        return 0;
    }
    for (;;) {
        const struct slora__ttok *t = cur(P);
        bool match = false;
        for (int k = 0; k < 4 && lv_ops[level][k]; k++)
            match |= t->type == TK_OP && t->op == lv_ops[level][k];
        if (!match)
            break;
        P->i++;
        struct slora__tnode *b = node(P, N_BINARY, t);
        if (!b)
            return SLORA_ENOMEM;
        b->op = t->op;
        b->a = left;
        if ((err = parse_binary(P, level + 1, &b->b)))
            return err;
        left = b;
    }
    *out = left;
    return 0;
}

static int parse_compare(struct parser *P, const struct slora__tnode **out)
{
    const struct slora__tnode *e;
    const struct slora__ttok *at = cur(P);
    int err = parse_binary(P, 0, &e);
    if (err)
        return err;
    struct vec kids = {0};
    uint8_t ops[64];
    size_t nops = 0;
    for (;;) {
        const struct slora__ttok *t = cur(P);
        uint8_t op = OP_NONE;
        if (t->type == TK_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LT ||
                                 t->op == OP_LE || t->op == OP_GT || t->op == OP_GE)) {
            op = t->op;
            P->i++;
        } else if (is_name(t, "in")) {
            op = OP_IN;
            P->i++;
        } else if (is_name(t, "not") && is_name(peek(P, 1), "in")) {
            op = OP_NOTIN;
            P->i += 2;
        } else {
            break;
        }
        if (nops == sizeof(ops))
            return pfail(P, t, SLORA_ELIMIT, "too many chained comparisons");
        if (!kids.n && (err = vpush(P, &kids, (void *)e)))
            return err;
        const struct slora__tnode *r;
        if ((err = parse_binary(P, 0, &r)) || (err = vpush(P, &kids, (void *)r)))
            return err;
        ops[nops++] = op;
    }
    if (!nops) {
        *out = e;
        return 0;
    }
    struct slora__tnode *c = node(P, N_COMPARE, at);
    uint8_t *o = slora__tpl_arena_alloc(P->a, nops);
    if (!c || !o)
        return SLORA_ENOMEM;
    memcpy(o, ops, nops);
    c->kids = (const struct slora__tnode **)kids.p;
    c->nkids = kids.n;
    c->ops = o;
    *out = c;
    return 0;
}

static int parse_not(struct parser *P, const struct slora__tnode **out)
{
    if (!is_name(cur(P), "not"))
        return parse_compare(P, out);
    struct slora__tnode *n = node(P, N_NOT, cur(P));
    if (!n)
        return SLORA_ENOMEM;
    P->i++;
    int err = enter(P);
    if (err || (err = parse_not(P, &n->a)))
        return err;
    P->depth--;
    *out = n;
    return 0;
}

static int parse_andor(struct parser *P, bool is_or, const struct slora__tnode **out)
{
    const struct slora__tnode *left;
    int err = is_or ? parse_andor(P, false, &left) : parse_not(P, &left);
    if (err)
        return err;
    while (is_name(cur(P), is_or ? "or" : "and")) {
        struct slora__tnode *n = node(P, is_or ? N_OR : N_AND, cur(P));
        if (!n)
            return SLORA_ENOMEM;
        P->i++;
        n->a = left;
        if ((err = is_or ? parse_andor(P, false, &n->b) : parse_not(P, &n->b)))
            return err;
        left = n;
    }
    *out = left;
    return 0;
}

int slora__tpl_parse_expression(struct parser *P, bool condexpr, const struct slora__tnode **out)
{
    int err = enter(P);
    if (err)
        return err;
    const struct slora__tnode *e;
    if ((err = parse_andor(P, true, &e)))
        return err;
    while (condexpr && is_name(cur(P), "if")) {
        struct slora__tnode *c = node(P, N_COND, cur(P));
        if (!c)
            return SLORA_ENOMEM;
        P->i++;
        c->b = e;
        if ((err = parse_andor(P, true, &c->a)))
            return err;
        if (is_name(cur(P), "else")) {
            P->i++;
            if ((err = slora__tpl_parse_expression(P, true, &c->c)))
                return err;
        }
        e = c;
    }
    P->depth--;
    *out = e;
    return 0;
}

static int parse_seq(struct parser *P, uint8_t kind, const struct slora__ttok *at, uint8_t close,
                     const char *close_s, const struct slora__tnode **out)
{
    struct slora__tnode *n = node(P, kind, at);
    struct vec kids = {0};
    int err = 0;
    if (!n)
        return SLORA_ENOMEM;
    P->i++;
    while (!is_op(P, close)) {
        if (kids.n && (err = expect_op(P, OP_COMMA, ",")))
            return err;
        if (is_op(P, close))
            break;
        const struct slora__tnode *e;
        if ((err = slora__tpl_parse_expression(P, true, &e)) || (err = vpush(P, &kids, (void *)e)))
            return err;
        if (kind == N_DICT) {
            if ((err = expect_op(P, OP_COLON, ":")) || (err = slora__tpl_parse_expression(P, true, &e)) ||
                (err = vpush(P, &kids, (void *)e)))
                return err;
        }
    }
    P->i++;
    (void)close_s;
    n->kids = (const struct slora__tnode **)kids.p;
    n->nkids = kids.n;
    *out = n;
    return 0;
}

static int parse_primary(struct parser *P, const struct slora__tnode **out)
{
    const struct slora__ttok *t = cur(P);
    struct slora__tnode *n;
    int err;
    switch (t->type) {
    case TK_NAME:
        n = node(P, N_CONST, t);
        if (!n)
            return SLORA_ENOMEM;
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) {
            n->lit = slora__tv_bool(true);
        } else if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) {
            n->lit = slora__tv_bool(false);
        } else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
            n->lit = slora__tv_none();
        } else {
            n->kind = N_NAME;
            n->name = t->s;
            if (P->macro && (!strcmp(t->s, "varargs") || !strcmp(t->s, "kwargs") ||
                             !strcmp(t->s, "caller")))
                P->macro->flag = 1;
        }
        P->i++;
        break;
    case TK_STRING: {
        /* Adjacent literals concatenate. */
        size_t len = 0, k = P->i;
        for (; P->t[k].type == TK_STRING; k++)
            len += P->t[k].len;
        char *buf = slora__tpl_arena_alloc(P->a, len + 1);
        n = node(P, N_CONST, t);
        if (!buf || !n)
            return SLORA_ENOMEM;
        len = 0;
        for (; P->i < k; P->i++) {
            memcpy(buf + len, P->t[P->i].s, P->t[P->i].len);
            len += P->t[P->i].len;
        }
        if ((err = lit_str(P, buf, len, &n->lit)))
            return err;
        break;
    }
    case TK_INT:
    case TK_FLOAT:
        n = node(P, N_CONST, t);
        if (!n)
            return SLORA_ENOMEM;
        n->lit = t->type == TK_INT ? slora__tv_int(t->i) : slora__tv_float(t->f);
        P->i++;
        break;
    case TK_OP:
        if (t->op == OP_LPAREN) {
            P->i++;
            const struct slora__tnode *e;
            if ((err = slora__tpl_parse_tuple(P, TUPLE_FULL, true, NULL, &e)) ||
                (err = expect_op(P, OP_RPAREN, ")")))
                return err;
            *out = e;
            return 0;
        }
        if (t->op == OP_LBRACKET)
            return parse_seq(P, N_LIST, t, OP_RBRACKET, "]", out);
        if (t->op == OP_LBRACE)
            return parse_seq(P, N_DICT, t, OP_RBRACE, "}", out);
        /* fall through */
    default:
        return pfail(P, t, SLORA_EINVAL, "unexpected '%s'", describe(t));
    }
    *out = n;
    return 0;
}

/* A name, or ns.attr when with_ns, as an assignment target (N_NAME/N_GETATTR). */
static int parse_target_item(struct parser *P, bool with_ns, const struct slora__tnode **out)
{
    const struct slora__ttok *t = cur(P);
    if (t->type != TK_NAME)
        return pfail(P, t, SLORA_EINVAL, "can't assign to '%s'", describe(t));
    if (is_name(t, "true") || is_name(t, "false") || is_name(t, "none") || is_name(t, "True") ||
        is_name(t, "False") || is_name(t, "None"))
        return pfail(P, t, SLORA_EINVAL, "can't assign to a constant");
    struct slora__tnode *n = node(P, N_NAME, t);
    if (!n)
        return SLORA_ENOMEM;
    n->name = t->s;
    P->i++;
    if (with_ns && is_op(P, OP_DOT) && peek(P, 1)->type == TK_NAME) {
        n->kind = N_GETATTR;
        n->flag = 1;
        n->name = peek(P, 1)->s;
        struct slora__tnode *base = node(P, N_NAME, t);
        if (!base)
            return SLORA_ENOMEM;
        base->name = t->s;
        n->a = base;
        P->i += 2;
    }
    *out = n;
    return 0;
}

int slora__tpl_parse_tuple(struct parser *P, int mode, bool explicit_parens, const char *extra_end,
                       const struct slora__tnode **out)
{
    const struct slora__ttok *at = cur(P);
    struct vec kids = {0};
    bool is_tuple = false;
    int err;
    for (;;) {
        if (kids.n && (err = expect_op(P, OP_COMMA, ",")))
            return err;
        if (tuple_end(P, extra_end))
            break;
        const struct slora__tnode *e;
        err = mode == TUPLE_TARGET ? parse_target_item(P, extra_end == NULL, &e)
                                   : slora__tpl_parse_expression(P, mode == TUPLE_FULL, &e);
        if (err || (err = vpush(P, &kids, (void *)e)))
            return err;
        if (!is_op(P, OP_COMMA))
            break;
        is_tuple = true;
    }
    if (!is_tuple) {
        if (kids.n) {
            *out = kids.p[0];
            return 0;
        }
        if (!explicit_parens)
            return pfail(P, cur(P), SLORA_EINVAL, "expected an expression, got '%s'",
                         describe(cur(P)));
    }
    struct slora__tnode *n = node(P, N_TUPLE, at);
    if (!n)
        return SLORA_ENOMEM;
    n->kids = (const struct slora__tnode **)kids.p;
    n->nkids = kids.n;
    *out = n;
    return 0;
}

/* Assignment targets into n->names (and n->flag/a for ns.attr). */
int slora__tpl_parse_targets(struct parser *P, struct slora__tnode *n, bool with_ns,
                         const char *extra_end)
{
    const struct slora__tnode *t;
    const struct slora__ttok *at = cur(P);
    bool paren = is_op(P, OP_LPAREN);
    if (paren)
        P->i++;
    int err = slora__tpl_parse_tuple(P, TUPLE_TARGET, paren, with_ns ? NULL : extra_end, &t);
    if (err || (paren && (err = expect_op(P, OP_RPAREN, ")"))))
        return err;
    const struct slora__tnode *const *items = t->kind == N_TUPLE ? t->kids : &t;
    uint32_t count = t->kind == N_TUPLE ? t->nkids : 1;
    if (!count)
        return pfail(P, at, SLORA_EINVAL, "can't assign to an empty tuple");
    const char **names = slora__tpl_arena_alloc(P->a, count * sizeof(*names));
    if (!names)
        return SLORA_ENOMEM;
    for (uint32_t k = 0; k < count; k++) {
        if (items[k]->kind == N_GETATTR && (count > 1 || !with_ns))
            return pfail(P, at, SLORA_EUNSUPPORTED,
                         "unsupported: namespace attribute inside a tuple target");
        names[k] = items[k]->kind == N_GETATTR ? items[k]->a->name : items[k]->name;
    }
    if (items[0]->kind == N_GETATTR) {
        n->flag = 1;
        n->name = items[0]->name;
    }
    n->names = names;
    n->nnames = count;
    return 0;
}
