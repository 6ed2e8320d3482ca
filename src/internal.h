/* internal.h - small helpers shared by several src/ files, not part of the
 * public API (names slora__<x>). Any thread may call them; they touch only
 * their arguments. */
#ifndef SLORA_INTERNAL_H
#define SLORA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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

/* Saturating size arithmetic for sizes computed from untrusted shapes:
 * SIZE_MAX stands for "too large". */
static inline size_t slora__mul_sat(size_t a, size_t b)
{
    size_t r;
    return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}

static inline size_t slora__add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* n rounded up to 16 floats, so every region of a scratch buffer starts
 * on a cache line. */
static inline size_t slora__align16(size_t n)
{
    return n > SIZE_MAX - 15 ? SIZE_MAX : (n + 15) & ~(size_t)15;
}

/* bytes of memory starting on a cache line (free() releases it): rows
 * read by 64-byte vector loads must not straddle two lines, as malloc's
 * 16-byte alignment makes them do (1B F32 prefill 30 -> 48 tok/s once the
 * activations were aligned). NULL when out of memory. */
static inline void *slora__alloc64(size_t bytes)
{
    return bytes > SIZE_MAX - 63 ? NULL : aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

/* n[from] * ... * n[to - 1], saturating (1 when from >= to). */
static inline size_t slora__prod_sat(const int64_t *n, int from, int to)
{
    size_t p = 1;
    for (int m = from; m < to; m++)
        p = slora__mul_sat(p, (size_t)n[m]);
    return p;
}

#endif
