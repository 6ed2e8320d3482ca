/* cliarg.c - strict integer parsing for command-line flags. */
#include <slora/cliarg.h>
#include <slora/tensor.h>

#include <slora/gguf.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool slora_cliarg_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int slora_cliarg_int_list(const char *s, long long min, long long max, int *out, int cap)
{
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || v < min || v > max || n == cap || (*end && *end != ','))
            return -1;
        out[n++] = (int)v;
        s = *end ? end + 1 : end;
        if (*end && !*s)
            return -1;
    }
    return n;
}

bool slora_cliarg_float(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max))
        return false;
    *out = v;
    return true;
}

bool slora_cliarg_dtype(const char *s, int *dtype)
{
    int t = slora_dtype_parse(s);
    if (t < 0 || !slora_dtype_is_weight((uint32_t)t))
        return false;
    *dtype = t;
    return true;
}

int slora_cliarg_usage_error(const char *cmd, const char *usage, const char *msg, const char *arg)
{
    fprintf(stderr, "slorad %s: %s%s\n", cmd, msg, arg ? arg : "");
    fputs(usage, stderr);
    return 2;
}
