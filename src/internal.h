/* internal.h - small helpers shared by several src/ files, not part of the
 * public API (names slora__<x>). Any thread may call them; they touch only
 * their arguments. */
#ifndef SLORA_INTERNAL_H
#define SLORA_INTERNAL_H

#include <stddef.h>

/* Format a diagnostic into diag (when diag and diag_len are non-zero;
 * truncated to fit) and return err, so a parser can write
 * `return slora__diag(diag, diag_len, SLORA_EFORMAT, "tensor %s: ...", n);`. */
int slora__diag(char *diag, size_t diag_len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

struct slora_model;
struct slora_tokenizer;
/* The tokenizer of model m for a command, given
 * the tok*.bin `path` (NULL or "": none): the model's own vocabulary (a path
 * must then hold the same one: else SLORA_EINVAL), else `path`, else
 * tok<vocab>.bin or tokenizer.bin next to the model. *owned is what to
 * free (NULL when *tok is the model's). cmd_vocab.c. */
int slora__cmd_tokenizer(const struct slora_model *m, const char *path,
                         const struct slora_tokenizer **tok, struct slora_tokenizer **owned,
                         char *diag, size_t diag_len);

#endif
