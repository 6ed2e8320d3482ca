/* cliarg.h - strict number parsing for command-line flags (shared by the
 * src/cmd_*.c commands). Pure functions, any thread. */
#ifndef SLORA_CLIARG_H
#define SLORA_CLIARG_H

#include <stdbool.h>

/* Whole string s is a decimal integer in [min, max]. */
bool slora_cliarg_int(const char *s, long long min, long long max, long long *out);
/* Comma-separated integers in [min, max]: at most cap of them into out.
 * Returns the count, or -1 on a malformed list or more than cap entries. */
int slora_cliarg_int_list(const char *s, long long min, long long max, int *out, int cap);

#endif
