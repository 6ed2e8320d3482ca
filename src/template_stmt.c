/* template_stmt.c - the statement half of the chat-template parser:
 * {% if/elif/else %}, {% for %} (targets, `if` filter, else), {% set %}
 * (plain, tuple, namespace attribute, block), {% macro %}, {% break %},
 * {% continue %}, {% with %}, {% filter %} and HF's {% generation %}; the
 * tags Jinja knows but this engine does not render are refused by name.
 */
#include "template_parse.h"

static int parse_body(struct parser *P, const char *const *ends, const struct slora__tnode **out);

static int parse_statement(struct parser *P, const struct slora__tnode **out);

/* The body up to one of ends ("{% end %}" stays unconsumed, at its name). */
static int parse_body(struct parser *P, const char *const *ends, const struct slora__tnode **out)
{
    struct slora__tnode *body = node(P, N_BODY, cur(P));
    struct vec kids = {0};
    int err = enter(P);
    if (!body || err)
        return err ? err : SLORA_ENOMEM;
    for (;;) {
        const struct slora__ttok *t = cur(P);
        const struct slora__tnode *s = NULL;
        if (t->type == TK_EOF) {
            size_t k = 0;
            while (ends && ends[k] && strncmp(ends[k], "end", 3))
                k++;
            if (ends && ends[k])
                return pfail(P, t, SLORA_EINVAL, "unexpected end of template, expected '%s'",
                             ends[k]);
            break;
        }
        if (t->type == TK_DATA) {
            struct slora__tnode *x = node(P, N_TEXT, t);
            if (!x || (err = lit_str(P, t->s, t->len, &x->lit)))
                return err ? err : SLORA_ENOMEM;
            P->i++;
            s = x;
        } else if (t->type == TK_VAR_BEGIN) {
            struct slora__tnode *x = node(P, N_PRINT, t);
            if (!x)
                return SLORA_ENOMEM;
            P->i++;
            if ((err = slora__tpl_parse_tuple(P, TUPLE_FULL, false, NULL, &x->a)))
                return err;
            if (cur(P)->type != TK_VAR_END)
                return pfail(P, cur(P), SLORA_EINVAL, "expected end of print statement, got '%s'",
                             describe(cur(P)));
            P->i++;
            s = x;
        } else if (t->type == TK_BLOCK_BEGIN) {
            const struct slora__ttok *nt = peek(P, 1);
            bool is_end = false;
            for (size_t k = 0; ends && ends[k]; k++)
                is_end |= is_name(nt, ends[k]);
            if (is_end) {
                P->i++;
                break;
            }
            if ((err = parse_statement(P, &s)))
                return err;
        } else {
            return pfail(P, t, SLORA_EINVAL, "unexpected '%s'", describe(t));
        }
        if (s && (err = vpush(P, &kids, (void *)s)))
            return err;
    }
    body->kids = (const struct slora__tnode **)kids.p;
    body->nkids = kids.n;
    P->depth--;
    *out = body;
    return 0;
}

/* "%}" body "{% end... %}" of a block statement (its own scope: no macros
 * inside). */
static int block_body(struct parser *P, const char *const *ends, const struct slora__tnode **body)
{
    P->scopes++;
    int err = expect_end(P);
    if (!err)
        err = parse_body(P, ends, body);
    P->scopes--;
    if (err)
        return err;
    P->i++; /* the end tag's name */
    return expect_end(P);
}

static int parse_if(struct parser *P, const struct slora__ttok *at, const struct slora__tnode **out)
{
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    static const char *const end_only[] = {"endif", NULL};
    struct slora__tnode *n = node(P, N_IF, at);
    if (!n)
        return SLORA_ENOMEM;
    int err = slora__tpl_parse_tuple(P, TUPLE_NOCOND, false, NULL, &n->a);
    if (err || (err = expect_end(P)) || (err = parse_body(P, ends, &n->c)))
        return err;
    const struct slora__ttok *e = cur(P);
    P->i++;
    if (is_name(e, "elif")) {
        if ((err = parse_if(P, e, &n->d)))
            return err;
        *out = n;
        return 0; /* the nested if consumed the endif */
    }
    if (is_name(e, "else") &&
        ((err = expect_end(P)) || (err = parse_body(P, end_only, &n->d)) || (P->i++, 0)))
        return err;
    if ((err = expect_end(P)))
        return err;
    *out = n;
    return 0;
}

static int parse_for(struct parser *P, const struct slora__ttok *at, const struct slora__tnode **out)
{
    static const char *const ends[] = {"endfor", "else", NULL};
    static const char *const end_only[] = {"endfor", NULL};
    struct slora__tnode *n = node(P, N_FOR, at);
    if (!n)
        return SLORA_ENOMEM;
    int err = slora__tpl_parse_targets(P, n, false, "in");
    if (err)
        return err;
    if (!is_name(cur(P), "in"))
        return pfail(P, cur(P), SLORA_EINVAL, "expected 'in', got '%s'", describe(cur(P)));
    P->i++;
    if ((err = slora__tpl_parse_tuple(P, TUPLE_NOCOND, false, "recursive", &n->a)))
        return err;
    if (is_name(cur(P), "if")) {
        P->i++;
        if ((err = slora__tpl_parse_expression(P, true, &n->b)))
            return err;
    }
    if (is_name(cur(P), "recursive"))
        return pfail(P, cur(P), SLORA_EUNSUPPORTED, "unsupported: recursive for loops");
    if ((err = expect_end(P)))
        return err;
    P->loops++;
    P->scopes++;
    err = parse_body(P, ends, &n->c);
    P->loops--;
    if (err)
        return err;
    const struct slora__ttok *e = cur(P);
    P->i++;
    if (is_name(e, "else") &&
        ((err = expect_end(P)) || (err = parse_body(P, end_only, &n->d)) || (P->i++, 0)))
        return err;
    P->scopes--;
    if ((err = expect_end(P)))
        return err;
    *out = n;
    return 0;
}

static int parse_macro(struct parser *P, const struct slora__ttok *at,
                       const struct slora__tnode **out)
{
    static const char *const ends[] = {"endmacro", NULL};
    if (P->scopes)
        return pfail(P, at, SLORA_EUNSUPPORTED,
                     "unsupported: a macro defined inside a loop, macro or block");
    struct slora__tnode *n = node(P, N_MACRO, at);
    if (!n)
        return SLORA_ENOMEM;
    if (cur(P)->type != TK_NAME)
        return pfail(P, cur(P), SLORA_EINVAL, "expected a macro name");
    n->name = cur(P)->s;
    P->i++;
    int err = expect_op(P, OP_LPAREN, "(");
    struct vec names = {0}, defs = {0};
    while (!err && !is_op(P, OP_RPAREN)) {
        if (names.n && (err = expect_op(P, OP_COMMA, ",")))
            return err;
        if (cur(P)->type != TK_NAME)
            return pfail(P, cur(P), SLORA_EINVAL, "expected a parameter name");
        const char *pn = cur(P)->s;
        const struct slora__tnode *def = NULL;
        P->i++;
        if (is_op(P, OP_ASSIGN)) {
            P->i++;
            if ((err = slora__tpl_parse_expression(P, true, &def)))
                return err;
        } else if (defs.n && defs.p[defs.n - 1]) {
            return pfail(P, cur(P), SLORA_EINVAL, "non-default argument follows default argument");
        }
        if ((err = vpush(P, &names, (void *)pn)) || (err = vpush(P, &defs, (void *)def)))
            return err;
    }
    if (err || (err = expect_op(P, OP_RPAREN, ")")) || (err = expect_end(P)))
        return err;
    n->names = (const char **)names.p;
    n->nnames = names.n;
    n->kids = (const struct slora__tnode **)defs.p;
    n->nkids = defs.n;
    struct slora__tnode *outer = P->macro;
    unsigned loops = P->loops;
    P->macro = n;
    P->loops = 0;
    P->scopes++;
    err = parse_body(P, ends, &n->c);
    P->scopes--;
    P->macro = outer;
    P->loops = loops;
    if (err)
        return err;
    P->i++;
    if ((err = expect_end(P)))
        return err;
    *out = n;
    return 0;
}

static int parse_statement(struct parser *P, const struct slora__tnode **out)
{
    P->i++; /* {% */
    const struct slora__ttok *t = cur(P);
    int err;
    if (t->type != TK_NAME)
        return pfail(P, t, SLORA_EINVAL, "tag name expected");
    P->i++;
    const char *k = t->s;
    if (!strcmp(k, "if"))
        return parse_if(P, t, out);
    if (!strcmp(k, "for"))
        return parse_for(P, t, out);
    if (!strcmp(k, "macro"))
        return parse_macro(P, t, out);
    if (!strcmp(k, "set")) {
        struct slora__tnode *n = node(P, N_SET, t);
        if (!n || (err = slora__tpl_parse_targets(P, n, true, NULL)))
            return n ? err : SLORA_ENOMEM;
        if (is_op(P, OP_ASSIGN)) {
            P->i++;
            if ((err = slora__tpl_parse_tuple(P, TUPLE_FULL, false, NULL, &n->a)) || (err = expect_end(P)))
                return err;
            *out = n;
            return 0;
        }
        static const char *const ends[] = {"endset", NULL};
        if (n->nnames != 1 || n->flag)
            return pfail(P, t, SLORA_EUNSUPPORTED, "unsupported: block set of this target");
        if (is_op(P, OP_PIPE))
            return pfail(P, t, SLORA_EUNSUPPORTED, "unsupported: filtered block set");
        n->kind = N_SETBLOCK;
        *out = n;
        return block_body(P, ends, &n->c);
    }
    if (!strcmp(k, "break") || !strcmp(k, "continue")) {
        if (!P->loops)
            return pfail(P, t, SLORA_EINVAL, "'%s' outside of a loop", k);
        struct slora__tnode *n = node(P, k[0] == 'b' ? N_BREAK : N_CONTINUE, t);
        if (!n)
            return SLORA_ENOMEM;
        *out = n;
        return expect_end(P);
    }
    if (!strcmp(k, "with")) {
        static const char *const ends[] = {"endwith", NULL};
        struct slora__tnode *n = node(P, N_WITH, t);
        struct vec names = {0}, vals = {0};
        if (!n)
            return SLORA_ENOMEM;
        while (cur(P)->type != TK_BLOCK_END) {
            if (names.n && (err = expect_op(P, OP_COMMA, ",")))
                return err;
            if (cur(P)->type != TK_NAME)
                return pfail(P, cur(P), SLORA_EUNSUPPORTED, "unsupported: this with target");
            const char *name = cur(P)->s;
            const struct slora__tnode *v;
            P->i++;
            if ((err = expect_op(P, OP_ASSIGN, "=")) || (err = slora__tpl_parse_expression(P, true, &v)) ||
                (err = vpush(P, &names, (void *)name)) || (err = vpush(P, &vals, (void *)v)))
                return err;
        }
        n->names = (const char **)names.p;
        n->nnames = names.n;
        n->kids = (const struct slora__tnode **)vals.p;
        n->nkids = vals.n;
        *out = n;
        return block_body(P, ends, &n->c);
    }
    if (!strcmp(k, "filter")) {
        static const char *const ends[] = {"endfilter", NULL};
        struct slora__tnode *n = node(P, N_FILTERBLOCK, t);
        struct slora__tnode *cap = node(P, N_CAPTURE, t);
        if (!n || !cap)
            return SLORA_ENOMEM;
        P->i--; /* parse "filter" as if it followed a '|' */
        const struct slora__tnode *f = cap;
        if ((err = slora__tpl_parse_filter_or_test(P, f, false, &f)))
            return err;
        if (is_op(P, OP_PIPE) && (err = slora__tpl_parse_filter_expr(P, f, &f)))
            return err;
        n->a = f;
        *out = n;
        return block_body(P, ends, &n->c);
    }
    if (!strcmp(k, "generation")) {
        static const char *const ends[] = {"endgeneration", NULL};
        struct slora__tnode *n = node(P, N_GENERATION, t);
        if (!n)
            return SLORA_ENOMEM;
        *out = n;
        return block_body(P, ends, &n->c);
    }
    static const char *const unsupported[] = {"block", "extends", "include", "import", "from",
                                              "call", "autoescape", NULL};
    for (size_t j = 0; unsupported[j]; j++)
        if (!strcmp(k, unsupported[j]))
            return pfail(P, t, SLORA_EUNSUPPORTED, "unsupported: {%% %s %%}", k);
    return pfail(P, t, SLORA_EINVAL, "encountered unknown tag '%s'", k);
}

/* Jinja 3 rejects an unknown filter or test when compiling, except inside
 * an if (test and branches) or a conditional expression, where the error
 * waits for run time: mirror that over the finished tree. */
static int check_names(const struct parser *P, const struct slora__tnode *n, bool soft)
{
    if (!n)
        return 0;
    int err;
    switch (n->kind) {
    case N_IF:
    case N_COND:
        soft = true;
        break;
    case N_FOR:
        if ((err = check_names(P, n->a, soft)) || (err = check_names(P, n->d, soft)))
            return err;
        return check_names(P, n->b, false) ? check_names(P, n->b, false)
                                           : check_names(P, n->c, false);
    case N_MACRO:
    case N_SETBLOCK:
    case N_WITH:
    case N_FILTERBLOCK:
        for (uint32_t k = 0; k < n->nkids; k++)
            if ((err = check_names(P, n->kids[k], soft)))
                return err;
        if ((err = check_names(P, n->a, soft)))
            return err;
        return check_names(P, n->c, false);
    case N_FILTER:
    case N_TEST:
        if (n->op == 0xff && !soft)
            return slora__diag(P->diag, P->diag_len, SLORA_EINVAL,
                               "line %u, column %u: no %s named '%s'", n->line, n->col,
                               n->kind == N_TEST ? "test" : "filter", n->name);
        break;
    default:
        break;
    }
    const struct slora__tnode *sub[4] = {n->a, n->b, n->c, n->d};
    for (int k = 0; k < 4; k++)
        if ((err = check_names(P, sub[k], soft)))
            return err;
    for (uint32_t k = 0; k < n->nkids; k++)
        if ((err = check_names(P, n->kids[k], soft)))
            return err;
    return 0;
}

int slora__tpl_parse(struct slora__tarena *a, const struct slora__ttok *toks, size_t ntoks,
                     const struct slora__tnode **root, char *diag, size_t diag_len)
{
    struct parser P = {.a = a, .t = toks, .n = ntoks, .diag = diag, .diag_len = diag_len};
    int err = parse_body(&P, NULL, root);
    return err ? err : check_names(&P, *root, false);
}
