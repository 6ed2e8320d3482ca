/* buf.h - a growable byte buffer, always NUL-terminated after its bytes
 * (so text can be used as a C string). Caller storage: zero-initialise,
 * free(b.p) when done. Not thread-safe; one owner at a time. */
#ifndef SLORA_UTIL_BUF_H
#define SLORA_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct slora__buf {
    char *p;    /* (cap) bytes, NULL until the first append */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap;
};

/* Make room for extra more bytes (uploads of a known length are read
 * without regrowing). 0 or SLORA_ENOMEM. */
int slora__buf_reserve(struct slora__buf *b, size_t extra);
/* Append n bytes; 0 or SLORA_ENOMEM (the buffer is then unchanged). */
int slora__buf_add(struct slora__buf *b, const void *data, size_t n);
/* Append formatted text; 0 or SLORA_ENOMEM. */
int slora__buf_printf(struct slora__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int slora__buf_vprintf(struct slora__buf *b, const char *fmt, va_list ap);
/* Append s (n bytes of valid UTF-8, NULs allowed) as a quoted JSON string,
 * escaped byte for byte as jansson's json_dumps writes it (", \\, \b \f \n
 * \r \t, other controls as \u00XX, everything else verbatim). 0 or
 * SLORA_ENOMEM (the buffer is then unchanged). */
int slora__buf_add_json_string(struct slora__buf *b, const char *s, size_t n);

#endif
