/* buf.c - growable byte buffer (see buf.h). Capacity doubles. */
#include "util/buf.h"

#include <slora/error.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int slora__buf_reserve(struct slora__buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return SLORA_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return SLORA_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int slora__buf_add(struct slora__buf *b, const void *data, size_t n)
{
    if (slora__buf_reserve(b, n))
        return SLORA_ENOMEM;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int slora__buf_vprintf(struct slora__buf *b, const char *fmt, va_list ap)
{
    /* Format into the spare room first: most appends (one number of a
     * logits row) fit, and then take a single pass. */
    size_t room = b->cap - b->len;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n >= 0 && (size_t)n < room) {
        b->len += (size_t)n;
        return 0;
    }
    if (room)
        b->p[b->len] = '\0'; /* the truncated attempt overwrote the terminator */
    if (n < 0 || slora__buf_reserve(b, (size_t)n))
        return SLORA_ENOMEM;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int slora__buf_printf(struct slora__buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int err = slora__buf_vprintf(b, fmt, ap);
    va_end(ap);
    return err;
}

int slora__buf_add_json_string(struct slora__buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    static const char short_esc[0x20] = {
        ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    /* worst case six bytes per input byte, plus the quotes */
    if (n > (SIZE_MAX - 2) / 6 || slora__buf_reserve(b, 6 * n + 2))
        return SLORA_ENOMEM;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
        } else if (c >= 0x20 || short_esc[c]) {
            *o++ = '\\';
            *o++ = c >= 0x20 ? (char)c : short_esc[c];
        } else {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        }
    }
    *o++ = '"';
    *o = '\0';
    b->len = (size_t)(o - b->p);
    return 0;
}
