/* error.c - lookups over the SLORA_ERR_MAP table (see error.h), and the
 * diagnostics formatter the parsers share (internal.h). */
#include "internal.h"

#include <slora/error.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

struct err_info {
    const char *name;
    const char *msg;
    int status;
    const char *type;
};

static const struct err_info table[] = {
#define ENTRY(name, lname, msg, status, type) {#lname, msg, status, type},
    SLORA_ERR_MAP(ENTRY)
#undef ENTRY
};

static const struct err_info *lookup(int err)
{
    if (err <= SLORA__ERR_FIRST || err >= SLORA__ERR_END)
        return NULL;
    return &table[err - SLORA__ERR_FIRST - 1];
}

const char *slora_strerror(int err)
{
    const struct err_info *e = lookup(err);
    return e ? e->msg : "unknown error";
}

const char *slora_err_name(int err)
{
    const struct err_info *e = lookup(err);
    return e ? e->name : "internal";
}

int slora_err_http_status(int err)
{
    const struct err_info *e = lookup(err);
    return e ? e->status : 500;
}

const char *slora_err_type(int err)
{
    const struct err_info *e = lookup(err);
    return e ? e->type : "server_error";
}

int slora__diag(char *diag, size_t diag_len, int err, const char *fmt, ...)
{
    if (diag && diag_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(diag, diag_len, fmt, ap);
        va_end(ap);
    }
    return err;
}
