/* template_parse.h - shared by the two halves of the chat-template parser
 * (template_parse.c: expressions and assignment targets; template_stmt.c:
 * statements and the tree checks). Not a public interface. */
#ifndef SLORA_TEMPLATE_PARSE_H
#define SLORA_TEMPLATE_PARSE_H

#include "template_internal.h"

#include "internal.h"

#include <slora/error.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_NEST 200

struct parser {
    struct slora__tarena *a;
    const struct slora__ttok *t;
    size_t n, i;
    unsigned depth;
    unsigned loops;     /* enclosing for loops (break/continue) */
    unsigned scopes;    /* enclosing scope-making blocks (macro placement) */
    struct slora__tnode *macro; /* the macro being parsed, if any */
    char *diag;
    size_t diag_len;
};

static inline const struct slora__ttok *cur(const struct parser *P)
{
    return &P->t[P->i];
}

static inline const struct slora__ttok *peek(const struct parser *P, size_t k)
{
    return P->i + k < P->n ? &P->t[P->i + k] : &P->t[P->n - 1];
}

static inline int pfail(const struct parser *P, const struct slora__ttok *at, int err,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static inline int pfail(const struct parser *P, const struct slora__ttok *at, int err, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return slora__diag(P->diag, P->diag_len, err, "line %u, column %u: %s", at->line, at->col, msg);
}

static inline bool is_op(const struct parser *P, uint8_t op)
{
    return cur(P)->type == TK_OP && cur(P)->op == op;
}

static inline bool is_name(const struct slora__ttok *t, const char *name)
{
    return t->type == TK_NAME && strcmp(t->s, name) == 0;
}

static inline const char *describe(const struct slora__ttok *t)
{
    switch (t->type) {
    case TK_EOF: return "end of template";
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_END: return "end of statement block";
    case TK_NAME: return t->s;
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    case TK_OP: return "operator";
    default: return "template data";
    }
}

static inline int expect_op(struct parser *P, uint8_t op, const char *what)
{
    if (!is_op(P, op))
        return pfail(P, cur(P), SLORA_EINVAL, "expected '%s', got '%s'", what, describe(cur(P)));
    P->i++;
    return 0;
}

static inline int expect_end(struct parser *P)
{
    if (cur(P)->type != TK_BLOCK_END)
        return pfail(P, cur(P), SLORA_EINVAL, "expected end of statement block, got '%s'",
                     describe(cur(P)));
    P->i++;
    return 0;
}

static inline struct slora__tnode *node(struct parser *P, uint8_t kind, const struct slora__ttok *at)
{
    struct slora__tnode *n = slora__tpl_arena_alloc(P->a, sizeof(*n));
    if (n) {
        n->kind = kind;
        n->line = at->line;
        n->col = at->col;
    }
    return n;
}

/* An immortal string literal in the arena. */
static inline int lit_str(struct parser *P, const char *s, size_t len, struct slora__tv *out)
{
    struct slora__tstr *v = slora__tpl_arena_alloc(P->a, sizeof(*v) + len + 1);
    if (!v)
        return SLORA_ENOMEM;
    v->h.rc = -1;
    v->len = len;
    v->nchars = slora__tpl_utf8_count(s, len);
    memcpy(v->p, s, len);
    out->t = TV_STR;
    out->u.s = v;
    return 0;
}

/* Growable arrays in the arena (doubling; the waste is bounded by 2x). */
struct vec {
    void **p;
    uint32_t n, cap;
};

static inline int vpush(struct parser *P, struct vec *v, void *item)
{
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 4;
        void **p = slora__tpl_arena_alloc(P->a, cap * sizeof(*p));
        if (!p)
            return SLORA_ENOMEM;
        if (v->n)
            memcpy(p, v->p, v->n * sizeof(*p));
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = item;
    return 0;
}

static inline int enter(struct parser *P)
{
    if (++P->depth > MAX_NEST)
        return pfail(P, cur(P), SLORA_ELIMIT, "template nested too deeply (limit %d)", MAX_NEST);
    return 0;
}


enum { TUPLE_FULL, TUPLE_NOCOND, TUPLE_TARGET };

/* jinja2's parse_tuple (mode: full expressions, no conditional
 * expressions, or assignment targets; extra_end: a name that also ends it). */
int slora__tpl_parse_tuple(struct parser *P, int mode, bool explicit_parens, const char *extra_end,
                           const struct slora__tnode **out);
int slora__tpl_parse_expression(struct parser *P, bool condexpr, const struct slora__tnode **out);
/* One "|name(args)" (or "is [not] name args" when test) applied to in. */
int slora__tpl_parse_filter_or_test(struct parser *P, const struct slora__tnode *in, bool test,
                                    const struct slora__tnode **out);
/* Filters, tests and calls following an expression. */
int slora__tpl_parse_filter_expr(struct parser *P, const struct slora__tnode *in,
                                 const struct slora__tnode **out);
/* Assignment targets of set/for into n->names (ns.attr: n->flag, n->name). */
int slora__tpl_parse_targets(struct parser *P, struct slora__tnode *n, bool with_ns,
                             const char *extra_end);

#endif
