/* template.c - the chat-template engine's public API (see template.h):
 * parse once into an immutable tree, render with per-call state and limits.
 */
#include "template_internal.h"

#include "internal.h"

#include <slora/error.h>

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_OUTPUT (16u << 20)
#define DEFAULT_MAX_MEMORY (64u << 20)
#define DEFAULT_MAX_STEPS 50000000ull
#define DEFAULT_MAX_DEPTH 256u

int slora_template_new(const char *src, size_t len, struct slora_template **out, char *diag,
                       size_t diag_len)
{
    *out = NULL;
    if (diag && diag_len)
        diag[0] = '\0';
    if (len > SLORA_TEMPLATE_MAX_SOURCE)
        return slora__diag(diag, diag_len, SLORA_ELIMIT,
                           "chat template is %zu bytes, more than the %u allowed", len,
                           SLORA_TEMPLATE_MAX_SOURCE);
    struct slora_template *t = calloc(1, sizeof(*t));
    if (!t)
        return SLORA_ENOMEM;
    struct slora__ttok *toks;
    size_t ntoks;
    int err = slora__tpl_lex(&t->arena, src ? src : "", len, &toks, &ntoks, diag, diag_len);
    if (!err)
        err = slora__tpl_parse(&t->arena, toks, ntoks, &t->root, diag, diag_len);
    if (err) {
        if (err == SLORA_ENOMEM)
            slora__diag(diag, diag_len, err, "out of memory parsing the chat template");
        slora_template_free(t);
        return err;
    }
    *out = t;
    return 0;
}

void slora_template_free(struct slora_template *t)
{
    if (!t)
        return;
    slora__tpl_arena_free(&t->arena);
    free(t);
}

int slora_template_render(const struct slora_template *t, const json_t *context,
                          const struct slora_template_opts *opts, char **out, size_t *out_len,
                          char *diag, size_t diag_len)
{
    *out = NULL;
    *out_len = 0;
    if (diag && diag_len)
        diag[0] = '\0';
    if (context && !json_is_object(context))
        return slora__diag(diag, diag_len, SLORA_EINVAL, "template context must be a JSON object");
    struct slora__buf buf = {0};
    struct slora__tstate st = {.t = t, .out = &buf, .diag = diag, .diag_len = diag_len};
    if (opts)
        st.o = *opts;
    if (!st.o.max_output)
        st.o.max_output = DEFAULT_MAX_OUTPUT;
    if (!st.o.max_memory)
        st.o.max_memory = DEFAULT_MAX_MEMORY;
    if (!st.o.max_steps)
        st.o.max_steps = DEFAULT_MAX_STEPS;
    if (!st.o.max_depth)
        st.o.max_depth = DEFAULT_MAX_DEPTH;
    json_t *empty = context ? NULL : json_object();
    if (!context && !empty)
        return SLORA_ENOMEM;
    int err = slora__tpl_scope_root(&st, context ? context : empty);
    if (!err)
        err = slora__tpl_exec(&st, t->root);
    slora__tpl_scope_end(&st);
    json_decref(empty);
    if (err > 0) /* break/continue cannot escape a loop: the parser refuses them */
        err = SLORA_EINTERNAL;
    if (err) {
        if (!st.diag_set)
            slora__diag(diag, diag_len, err, "chat template render failed: %s",
                        slora_strerror(err));
        free(buf.p);
        return err;
    }
    if (!buf.p && !(buf.p = strdup("")))
        return SLORA_ENOMEM;
    *out = buf.p;
    *out_len = buf.len;
    return 0;
}
