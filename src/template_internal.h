/* template_internal.h - shared by the chat-template engine's files (not a
 * public interface):
 *   template_lex.c     source -> tokens (Jinja's lexer with trim_blocks and
 *                      lstrip_blocks, whitespace control, newline rules)
 *   template_parse.c   tokens -> immutable syntax tree
 *   template_value.c   values: strings, lists, dicts, namespaces; Python's
 *                      str()/repr(), equality, ordering, truth
 *   template_json.c    json_t -> values; HF's tojson (json.dumps)
 *   template_eval.c    statements and expressions, scopes, limits
 *   template_filter.c  filters and tests
 *   template_call.c    methods of str/dict/list, global functions, macros
 *   template.c         the public API
 * Prefixes: slora__tv_ (values), slora__tpl_ (everything else).
 *
 * Values (struct slora__tv) are passed by value: scalars inline, containers
 * and strings behind a reference count. A render owns every value it makes;
 * the tree's literals are immortal (rc < 0) and never written, which is
 * what lets many threads render one template. Lists, tuples and dicts are
 * immutable once built (Jinja's immutable sandbox); only namespaces change,
 * and the render keeps each one so it can break reference cycles at the end.
 */
#ifndef SLORA_TEMPLATE_INTERNAL_H
#define SLORA_TEMPLATE_INTERNAL_H

#include "util/buf.h"

#include <slora/template.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- values ---- */

enum slora__tvt {
    TV_UNDEF,  /* Jinja's default Undefined: prints "", falsy, errors on use */
    TV_NONE,
    TV_BOOL,
    TV_INT,    /* Python int within int64; overflow is refused */
    TV_FLOAT,
    TV_STR,    /* UTF-8 */
    TV_LIST,   /* list or tuple (flag in the object) */
    TV_DICT,
    TV_NS,     /* namespace(): a mutable dict with attribute assignment */
    TV_LOOP,   /* the `loop` variable of a for */
    TV_MACRO,  /* a {% macro %}: u.node */
    TV_FUNC,   /* a global function: u.i = enum slora__tpl_func */
    TV_METHOD, /* a bound method of a str/dict/list: u.meth */
};

struct slora__tobj {
    int32_t rc;    /* references; < 0 for immortal literals of the tree */
    uint32_t size; /* bytes charged against the render's memory limit */
};

struct slora__tstr {
    struct slora__tobj h;
    size_t len;    /* bytes */
    size_t nchars; /* code points */
    char p[];      /* len bytes + NUL */
};

struct slora__tv;

struct slora__tlist {
    struct slora__tobj h;
    uint32_t depth; /* nesting of lists/dicts inside (1 for flat) */
    bool tuple;
    bool gen; /* stands for a Jinja generator (map, select, unique, items...): no len,
               * no indexing, always true, cannot be printed. Iterating it does not
               * exhaust it here (a generator iterated twice is refused nowhere). */
    size_t n;
    struct slora__tv *v; /* (n) */
};

struct slora__tdict { /* dict or namespace; insertion-ordered */
    struct slora__tobj h;
    uint32_t depth;
    size_t n, cap;
    struct slora__tv *k; /* (cap) keys */
    struct slora__tv *v; /* (cap) values */
};

struct slora__tloop;
struct slora__tmeth;
struct slora__tnode;

struct slora__tv {
    uint8_t t; /* enum slora__tvt */
    union {
        bool b;
        int64_t i;
        double f;
        struct slora__tobj *o; /* any refcounted kind */
        struct slora__tstr *s;
        struct slora__tlist *l;
        struct slora__tdict *d;
        struct slora__tloop *loop;
        struct slora__tmeth *meth;
        const struct slora__tnode *node;
        const char *undef; /* TV_UNDEF: the missing name, for messages (or NULL) */
    } u;
};

struct slora__tloop {
    struct slora__tobj h;
    struct slora__tv items; /* the list iterated (after the `if` filter) */
    size_t index0;
};

struct slora__tmeth {
    struct slora__tobj h;
    struct slora__tv self;
    int id;           /* enum slora__tpl_meth */
    const char *name; /* static */
};

/* ---- render state ---- */

struct slora__tscope;

struct slora__tstate {
    const struct slora_template *t;
    struct slora_template_opts o;
    struct slora__buf *out; /* where output goes (a capture buffer inside {% set %} blocks) */
    size_t out_total;       /* bytes held by out and every enclosing capture */
    struct slora__tv capture; /* a {% filter %} block's text while its filters run */
    size_t mem;             /* live bytes */
    uint64_t steps;
    unsigned depth;
    unsigned macro_depth;
    struct slora__tscope *scope;  /* innermost */
    struct slora__tscope *root;   /* the template's top level */
    struct slora__tdict **ns;     /* (n_ns) every namespace made, one reference each */
    size_t n_ns, cap_ns;
    char *diag;
    size_t diag_len;
    bool diag_set; /* an error message was recorded */
    bool pos_set;  /* ... and it has its line and column */
};

/* Allocate n bytes charged to the render (ELIMIT past max_memory). */
int slora__tv_alloc(struct slora__tstate *st, size_t n, void **out);
/* Count work; ELIMIT past max_steps. */
int slora__tpl_step(struct slora__tstate *st, uint64_t n);
/* Record an error message once (the innermost, most precise one wins) and
 * return err. line 0: no position. */
int slora__tpl_fail(struct slora__tstate *st, uint32_t line, uint32_t col, int err, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));
int slora__tpl_vfail(struct slora__tstate *st, uint32_t line, uint32_t col, int err,
                     const char *fmt, va_list ap);

static inline struct slora__tv slora__tv_undef(const char *name)
{
    struct slora__tv v = {.t = TV_UNDEF};
    v.u.undef = name;
    return v;
}
static inline struct slora__tv slora__tv_none(void)
{
    return (struct slora__tv){.t = TV_NONE};
}
static inline struct slora__tv slora__tv_bool(bool b)
{
    struct slora__tv v = {.t = TV_BOOL};
    v.u.b = b;
    return v;
}
static inline struct slora__tv slora__tv_int(int64_t i)
{
    struct slora__tv v = {.t = TV_INT};
    v.u.i = i;
    return v;
}
static inline struct slora__tv slora__tv_float(double f)
{
    struct slora__tv v = {.t = TV_FLOAT};
    v.u.f = f;
    return v;
}
static inline bool slora__tv_is_num(struct slora__tv v)
{
    return v.t == TV_BOOL || v.t == TV_INT || v.t == TV_FLOAT;
}
/* The integer value of a TV_INT or TV_BOOL. */
static inline int64_t slora__tv_as_int(struct slora__tv v)
{
    return v.t == TV_BOOL ? (int64_t)v.u.b : v.u.i;
}
static inline bool slora__tv_heap(struct slora__tv v)
{
    return v.t == TV_STR || v.t == TV_LIST || v.t == TV_DICT || v.t == TV_NS || v.t == TV_LOOP ||
           v.t == TV_METHOD;
}
static inline struct slora__tv slora__tv_ref(struct slora__tv v)
{
    if (slora__tv_heap(v) && v.u.o->rc >= 0)
        v.u.o->rc++;
    return v;
}
void slora__tv_unref(struct slora__tstate *st, struct slora__tv v);

/* New values (0 or ELIMIT/ENOMEM; *out owned by the caller). */
int slora__tv_str(struct slora__tstate *st, const char *p, size_t len, struct slora__tv *out);
int slora__tv_list(struct slora__tstate *st, size_t n, bool tuple, struct slora__tv *out);
/* Finish a list whose n items were stored: computes its nesting depth
 * (ELIMIT when too deep; the list is then freed). */
int slora__tv_list_done(struct slora__tstate *st, struct slora__tv *l);
int slora__tv_dict(struct slora__tstate *st, bool ns, struct slora__tv *out);
/* Set key (a new reference taken over) to val (taken over) in a dict or
 * namespace; an equal key keeps its place. */
int slora__tv_dict_set(struct slora__tstate *st, struct slora__tv d, struct slora__tv key,
                       struct slora__tv val);
/* Borrowed value for key, or NULL. */
const struct slora__tv *slora__tv_dict_get(const struct slora__tdict *d, struct slora__tv key);
const struct slora__tv *slora__tv_dict_gets(const struct slora__tdict *d, const char *key);

bool slora__tv_truthy(struct slora__tv v);
/* Python ==. *eq, or ELIMIT past the depth bound. */
bool slora__tv_eq(struct slora__tv a, struct slora__tv b);
/* Python <, >, <=, >= between numbers, strings or lists: *out = a OP b;
 * EINVAL (with a message) for unorderable types. op: enum slora__tpl_op. */
int slora__tv_order(struct slora__tstate *st, int op, struct slora__tv a, struct slora__tv b,
                    bool *out);
/* Append Python str(v) (repr=false) or repr(v) to b. EUNSUPPORTED for
 * values whose Python text is an address (functions, macros...). */
int slora__tv_write(struct slora__tstate *st, struct slora__buf *b, struct slora__tv v, bool repr);
/* str(v) as a value (a new reference; strings are returned as they are). */
int slora__tv_tostr(struct slora__tstate *st, struct slora__tv v, struct slora__tv *out);
/* Python float repr ("1.0", "1e-05", "inf", "nan"). */
void slora__tv_float_repr(double f, char out[32]);
const char *slora__tv_typename(struct slora__tv v);
/* The length Python's len() gives, or -1 when it has none. */
int64_t slora__tv_len(struct slora__tv v);
/* An iterable as a list (new reference): lists/tuples as they are, strings
 * as their characters, dicts and namespaces as their keys, undefined as
 * empty. EINVAL for the rest. */
int slora__tv_iter(struct slora__tstate *st, struct slora__tv v, struct slora__tv *out);

/* UTF-8 helpers. */
size_t slora__tpl_utf8_count(const char *p, size_t len);
/* Decode one code point at p (valid UTF-8 assumed); returns its byte length. */
size_t slora__tpl_utf8_dec(const char *p, uint32_t *cp);
size_t slora__tpl_utf8_enc(uint32_t cp, char out[4]);
/* Python str.isspace() for one code point. */
bool slora__tpl_isspace(uint32_t cp);
/* Byte offset of code point index i (i <= nchars) in s. */
size_t slora__tpl_utf8_offset(const struct slora__tstr *s, size_t i);

/* ---- JSON ---- */

/* A json_t as a value (a new reference): objects keep their order. */
int slora__tv_from_json(struct slora__tstate *st, const json_t *j, struct slora__tv *out);
/* HF's tojson: json.dumps(v, ensure_ascii, indent, separators, sort_keys).
 * indent: NULL for none, else the indent text per level (int n -> n spaces);
 * item_sep/key_sep NULL for the defaults. */
struct slora__tjson_opts {
    bool ensure_ascii;
    bool sort_keys;
    const char *indent; /* NULL: compact one-line form */
    size_t indent_len;
    const char *item_sep; /* NULL: ", " (or "," with indent) */
    size_t item_sep_len;
    const char *key_sep; /* NULL: ": " */
    size_t key_sep_len;
};
int slora__tv_tojson(struct slora__tstate *st, struct slora__buf *b, struct slora__tv v,
                     const struct slora__tjson_opts *o, unsigned level);

/* ---- tokens and syntax tree ---- */

enum slora__tpl_op {
    OP_NONE,
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_TILDE,
    OP_LBRACKET, OP_RBRACKET, OP_LPAREN, OP_RPAREN, OP_LBRACE, OP_RBRACE,
    OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE, OP_IN, OP_NOTIN,
    OP_ASSIGN, OP_DOT, OP_COLON, OP_PIPE, OP_COMMA, OP_SEMICOLON,
};

enum slora__tpl_tk {
    TK_EOF, TK_DATA, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
    TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP,
};

struct slora__ttok {
    uint8_t type; /* enum slora__tpl_tk */
    uint8_t op;   /* TK_OP: enum slora__tpl_op */
    uint32_t line, col;
    const char *s; /* TK_DATA/TK_NAME/TK_STRING: text (arena; strings decoded) */
    size_t len;
    int64_t i;
    double f;
};

/* An arena of the template: everything the tree points to. */
struct slora__tarena {
    struct slora__tarena_blk *head;
};
void *slora__tpl_arena_alloc(struct slora__tarena *a, size_t n);
void slora__tpl_arena_free(struct slora__tarena *a);

/* Tokenize src into *toks (arena memory). EINVAL/ENOMEM with diag. */
int slora__tpl_lex(struct slora__tarena *a, const char *src, size_t len, struct slora__ttok **toks,
                   size_t *ntoks, char *diag, size_t diag_len);

enum slora__tpl_nk {
    /* statements */
    N_BODY,    /* kids: statements */
    N_TEXT,    /* lit: the text */
    N_PRINT,   /* a: expression */
    N_IF,      /* a: test, c: body, d: else (N_BODY, N_IF for elif, or NULL) */
    N_FOR,     /* names: targets, a: iterable, b: filter or NULL, c: body, d: else */
    N_SET,     /* names: targets, a: value; flag 1: namespace attribute names[0].name */
    N_SETBLOCK, /* names[0]: target, c: body */
    N_MACRO,   /* name, names: params, kids: defaults (NULL when none), c: body */
    N_BREAK,
    N_CONTINUE,
    N_WITH,    /* names: targets, kids: values, c: body */
    N_FILTERBLOCK, /* a: N_FILTER chain with N_CAPTURE at its base, c: body */
    N_CAPTURE, /* the body of a filter block as the filter's input */
    N_GENERATION, /* HF's {% generation %}: c: body, rendered as is */
    /* expressions */
    N_CONST,   /* lit */
    N_NAME,    /* name */
    N_LIST,    /* kids */
    N_TUPLE,   /* kids */
    N_DICT,    /* kids: key, value, key, value... */
    N_GETATTR, /* a, name */
    N_GETITEM, /* a, b */
    N_SLICE,   /* a; b, c, d: start, stop, step or NULL */
    N_CALL,    /* a: callee; kids: arguments, names[i]: keyword or NULL */
    N_FILTER,  /* a: input; name; op: filter id; kids/names: arguments */
    N_TEST,    /* a: input; name; op: test id; flag 1: negated; kids/names: arguments */
    N_NEG,     /* a */
    N_POS,     /* a */
    N_NOT,     /* a */
    N_AND,     /* a, b */
    N_OR,      /* a, b */
    N_BINARY,  /* op, a, b */
    N_CONCAT,  /* kids */
    N_COMPARE, /* kids: operands (n); ops: (n - 1) operators */
    N_COND,    /* a: test, b: value if true, c: value if false or NULL */
};

struct slora__tnode {
    uint8_t kind; /* enum slora__tpl_nk */
    uint8_t op;
    uint8_t flag;
    uint32_t line, col;
    const struct slora__tnode *a, *b, *c, *d;
    const struct slora__tnode **kids;
    uint32_t nkids;
    const char **names; /* NUL-terminated names (N_CALL: keywords or NULL) */
    uint32_t nnames;
    const uint8_t *ops; /* N_COMPARE */
    const char *name;   /* NUL-terminated */
    struct slora__tv lit;
};

struct slora_template {
    struct slora__tarena arena;
    const struct slora__tnode *root; /* N_BODY */
};

/* Parse tokens into *root. EINVAL/EUNSUPPORTED/ELIMIT/ENOMEM with diag. */
int slora__tpl_parse(struct slora__tarena *a, const struct slora__ttok *toks, size_t ntoks,
                     const struct slora__tnode **root, char *diag, size_t diag_len);

/* ---- evaluation ---- */

/* Filters and tests Jinja knows; those this engine renders have handlers.
 * Lookups by name at parse time: -1 when Jinja has no such name. */
int slora__tpl_filter_id(const char *name);
int slora__tpl_test_id(const char *name);
/* Global functions. */
enum slora__tpl_func { F_RANGE, F_NAMESPACE, F_DICT, F_RAISE, F_STRFTIME, F_NFUNC };
int slora__tpl_func_id(const char *name);

/* Evaluated call arguments. */
struct slora__targs {
    size_t n;
    struct slora__tv *v;      /* (n) values */
    const char *const *kw;    /* (n) keyword names, NULL for positional */
};

/* Set up the render's scopes: the context's keys, then the template's top
 * level; and tear everything down (scopes, namespaces) at the end. */
int slora__tpl_scope_root(struct slora__tstate *st, const json_t *ctx);
void slora__tpl_scope_end(struct slora__tstate *st);
/* EINVAL "'name' is undefined" for an undefined value used as a value. */
int slora__tpl_undefined(struct slora__tstate *st, struct slora__tv v);
/* a OP b for OP_ADD..OP_POW (Python semantics). */
int slora__tpl_binary(struct slora__tstate *st, int op, struct slora__tv a, struct slora__tv b,
                      struct slora__tv *out);
/* obj[start:stop:step] (sv: none for absent parts). */
int slora__tpl_slice(struct slora__tstate *st, struct slora__tv obj, const struct slora__tv sv[3],
                     struct slora__tv *out);
/* x in seq (Python's `in`). */
int slora__tpl_contains(struct slora__tstate *st, struct slora__tv seq, struct slora__tv x,
                        bool *in);
int slora__tpl_eval(struct slora__tstate *st, const struct slora__tnode *n, struct slora__tv *out);
int slora__tpl_exec(struct slora__tstate *st, const struct slora__tnode *n);
/* Apply filter/test n->op to v (borrowed) with arguments. */
int slora__tpl_filter(struct slora__tstate *st, const struct slora__tnode *n, struct slora__tv v,
                      const struct slora__targs *args, struct slora__tv *out);
int slora__tpl_test(struct slora__tstate *st, const struct slora__tnode *n, struct slora__tv v,
                    const struct slora__targs *args, bool *out);
/* Apply a filter or test by name (map/select/selectattr with a name argument). */
int slora__tpl_filter_by_name(struct slora__tstate *st, const struct slora__tnode *at,
                              const char *name, struct slora__tv v, const struct slora__targs *args,
                              struct slora__tv *out);
int slora__tpl_test_by_name(struct slora__tstate *st, const struct slora__tnode *at,
                            const char *name, struct slora__tv v, const struct slora__targs *args,
                            bool *out);
/* Jinja's getattr(obj, name) / getitem(obj, key) under the immutable
 * sandbox: missing -> undefined; attribute of undefined -> EINVAL. */
int slora__tpl_getattr(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv obj,
                       const char *name, struct slora__tv *out);
int slora__tpl_getitem(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv obj,
                       struct slora__tv key, struct slora__tv *out);
/* Call a value (function, macro, bound method) with arguments. */
int slora__tpl_call(struct slora__tstate *st, const struct slora__tnode *at, struct slora__tv fn,
                    const struct slora__targs *args, struct slora__tv *out);
/* Methods a TV_METHOD can hold (M_UNSUPPORTED: one Python has, refused). */
enum slora__tpl_meth {
    M_UNSUPPORTED,
    M_STRIP, M_LSTRIP, M_RSTRIP, M_SPLIT, M_STARTSWITH, M_ENDSWITH, M_UPPER, M_LOWER,
    M_TITLE, M_CAPITALIZE, M_REPLACE, M_JOIN,
    M_ITEMS, M_KEYS, M_VALUES, M_GET, M_COPY,
    M_CYCLE,
};
/* Call a bound method of a str, dict or loop. */
int slora__tpl_call_method(struct slora__tstate *st, const struct slora__tnode *at,
                           const struct slora__tmeth *m, const struct slora__targs *args,
                           struct slora__tv *out);
/* String operations shared by methods and filters (Python's semantics). */
enum { STRIP_LEFT = 1, STRIP_RIGHT = 2, STRIP_BOTH = 3 };
/* chars: NULL/none for whitespace, else a string of characters to strip. */
int slora__tpl_str_strip(struct slora__tstate *st, const struct slora__tstr *s,
                         const struct slora__tv *chars, int which, struct slora__tv *out);
enum { CASE_UPPER, CASE_LOWER, CASE_TITLE, CASE_CAPITALIZE, CASE_JINJA_TITLE };
/* ASCII case mapping; EUNSUPPORTED for text with non-ASCII letters. */
int slora__tpl_str_case(struct slora__tstate *st, const struct slora__tstr *s, int mode,
                        struct slora__tv *out);
/* count < 0: all. */
int slora__tpl_str_replace(struct slora__tstate *st, const struct slora__tstr *s,
                           const struct slora__tstr *old, const struct slora__tstr *rep,
                           int64_t count, struct slora__tv *out);
/* sep NULL: runs of whitespace. maxsplit < 0: all. */
int slora__tpl_str_split(struct slora__tstate *st, const struct slora__tstr *s,
                         const struct slora__tstr *sep, int64_t maxsplit, struct slora__tv *out);
/* Concatenate str() of every item of list l with sep. */
int slora__tpl_str_join(struct slora__tstate *st, struct slora__tv l, const char *sep,
                        size_t sep_len, bool strict, struct slora__tv *out);

/* Run a macro body with its parameters bound; returns its output string. */
int slora__tpl_call_macro(struct slora__tstate *st, const struct slora__tnode *at,
                          const struct slora__tnode *macro, const struct slora__targs *args,
                          struct slora__tv *out);

/* EINVAL "bad arguments to what" at node at. */
int slora__tpl_argfail(struct slora__tstate *st, const struct slora__tnode *at, const char *what);
/* Positional-or-keyword argument lookup: the i-th positional or keyword
 * `name`; NULL when absent. */
const struct slora__tv *slora__tpl_arg(const struct slora__targs *a, size_t i, const char *name);
/* EINVAL when an argument beyond npos positional ones or a keyword not in
 * kws (NULL-terminated) was given. */
int slora__tpl_args_check(struct slora__tstate *st, const struct slora__tnode *at,
                          const struct slora__targs *a, size_t npos, const char *const *kws,
                          const char *what);

#endif
