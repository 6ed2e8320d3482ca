/* template.h - chat-template renderer: the Jinja subset that Hugging Face
 * chat templates use (GGUF `tokenizer.chat_template`, HF
 * `tokenizer_config.json` `chat_template`), rendered byte for byte as
 * python-jinja2 does with HF's settings: trim_blocks, lstrip_blocks, the
 * loopcontrols extension, the immutable sandbox, `raise_exception(msg)`,
 * `strftime_now(fmt)` and HF's `tojson` (ensure_ascii=False, indent,
 * separators, sort_keys). docs/chat-templates.md lists the subset.
 *
 * Pure computation, no I/O. A template is parsed once (slora_template_new,
 * at model load) into an immutable tree; any number of threads may then
 * render it at the same time: each render keeps its own state and never
 * writes to the template.
 *
 * Rendering is bounded: output bytes, live memory, evaluation steps and
 * recursion depth all have limits (struct slora_template_opts); a template or
 * input that exceeds one fails with SLORA_ELIMIT instead of hanging or
 * allocating without bound.
 */
#ifndef SLORA_TEMPLATE_H
#define SLORA_TEMPLATE_H

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct slora_template;

/* Largest template source slora_template_new accepts (bytes). */
#define SLORA_TEMPLATE_MAX_SOURCE (1u << 20)

/* Per-render limits and clock. Zero-initialise, then set what you need: a
 * zero limit means its default (below). */
struct slora_template_opts {
    size_t max_output;  /* bytes of rendered text; default 16 MiB */
    size_t max_memory;  /* bytes of live values at any time; default 64 MiB */
    uint64_t max_steps; /* evaluation steps (nodes, loop turns, bytes/64 copied); default 50M */
    unsigned max_depth; /* nested evaluation frames (expressions, blocks, macro calls); default 256 */
    bool fixed_now;     /* strftime_now() uses `now`, not the wall clock */
    int64_t now;        /* seconds since the epoch, shown in the local time zone as HF does */
};

/* Parse src (len bytes of UTF-8, no NUL needed). 0 and *out = a new
 * template, or SLORA_EINVAL (syntax error: diag says what and where, as
 * "line L, column C: ..."), SLORA_EUNSUPPORTED (a Jinja construct this
 * engine does not render: diag names it and where), SLORA_ELIMIT (source
 * larger than SLORA_TEMPLATE_MAX_SOURCE or nested too deeply), SLORA_ENOMEM.
 * Unknown filters and tests only fail when rendering reaches them, as in
 * Jinja 3. */
int slora_template_new(const char *src, size_t len, struct slora_template **out, char *diag,
                       size_t diag_len);
/* Free a template (NULL is a no-op). No render may be running on it. */
void slora_template_free(struct slora_template *t);

/* Render t with context's top-level keys as variables (borrowed; typically
 * messages, tools, add_generation_prompt, bos_token, eos_token plus any
 * extras). opts may be NULL for the defaults and the wall clock. On 0,
 * *out is a new NUL-terminated malloc'd string of *out_len bytes (the
 * caller frees it). Errors, with diag naming the construct and its line and
 * column:
 *   SLORA_EINVAL       the template failed as Jinja fails: raise_exception(msg)
 *                      (diag is "raise_exception: msg"), undefined variable
 *                      used in arithmetic, type errors, unknown filter...
 *   SLORA_EUNSUPPORTED a construct Jinja renders but this engine does not
 *   SLORA_ELIMIT       an output, memory, step or depth limit was hit
 *   SLORA_ENOMEM
 * Thread-safe for concurrent renders of one template. */
int slora_template_render(const struct slora_template *t, const json_t *context,
                          const struct slora_template_opts *opts, char **out, size_t *out_len,
                          char *diag, size_t diag_len);

#endif
