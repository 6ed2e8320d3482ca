/* cliarg.h - strict number parsing for command-line flags (shared by the
 * src/cmd_*.c commands). Any thread. */
#ifndef SLORA_CLIARG_H
#define SLORA_CLIARG_H

#include <stdbool.h>

/* Whole string s is a decimal integer in [min, max]. */
bool slora_cliarg_int(const char *s, long long min, long long max, long long *out);
/* Comma-separated integers in [min, max]: at most cap of them into out.
 * Returns the count, or -1 on a malformed list or more than cap entries. */
int slora_cliarg_int_list(const char *s, long long min, long long max, int *out, int cap);

/* A finite number in [min, max]. */
bool slora_cliarg_float(const char *s, double min, double max, double *out);
/* A weight type name ("f32", "f16", "bf16", "q8_0", "q4_k", ...; any case)
 * as enum slora_dtype. */
bool slora_cliarg_dtype(const char *s, int *dtype);
/* Print "slorad <cmd>: <msg><arg>" and the usage text to stderr; returns 2,
 * the exit status of a usage error. arg may be NULL. */
int slora_cliarg_usage_error(const char *cmd, const char *usage, const char *msg, const char *arg);

#endif
