/* error.h - the one table of slorad error codes.
 *
 * Every action returns 0 or a negative SLORA_E* code. The same X-macro table
 * yields the enum, the human message, the HTTP status and the OpenAI-style
 * error type, so an error keeps one meaning from the maths layers up to the
 * JSON reply. The JSON "code" field is the lowercase name ("nomem", ...).
 * Thread-safe: all functions are pure lookups.
 */
#ifndef SLORA_ERROR_H
#define SLORA_ERROR_H

/* X(NAME, name, message, http status, error type) */
#define SLORA_ERR_MAP(X)                                                                           \
    X(NOMEM, nomem, "out of memory", 503, "server_error")                                                 \
    X(INVAL, inval, "invalid request", 400, "invalid_request_error")                                      \
    X(RANGE, range, "value out of range", 400, "invalid_request_error")                                   \
    X(FORMAT, format, "malformed file", 422, "invalid_request_error")                                      \
    X(MISMATCH, mismatch, "adapter does not match the base model", 422, "invalid_request_error")             \
    X(NONFINITE, nonfinite, "non-finite value", 422, "invalid_request_error")                                 \
    X(LIMIT, limit, "resource limit exceeded", 422, "invalid_request_error")                              \
    X(UNSUPPORTED, unsupported, "unsupported", 400, "invalid_request_error")                                    \
    X(NOTFOUND, notfound, "not found", 404, "not_found_error")                                               \
    X(METHOD, method, "method not allowed", 405, "invalid_request_error")                                  \
    X(UNAUTH, unauth, "missing or invalid API key", 401, "authentication_error")                           \
    X(FORBIDDEN, forbidden, "forbidden", 403, "permission_error")                                             \
    X(TIMEOUT, timeout, "request timeout", 408, "invalid_request_error")                                    \
    X(PRECOND, precond, "precondition failed", 412, "invalid_request_error")                                \
    X(TOOLARGE, toolarge, "request body too large", 413, "invalid_request_error")                            \
    X(HDRTOOLARGE, hdrtoolarge, "request header fields too large", 431, "invalid_request_error")                \
    X(QUOTA, quota, "quota exceeded", 429, "rate_limit_error")                                            \
    X(BUSY, busy, "server busy, retry later", 503, "server_error")                                       \
    X(NOSPC, nospc, "insufficient storage", 507, "server_error")                                          \
    X(IO, io, "I/O error", 500, "server_error")                                                        \
    X(CANCELED, canceled, "request canceled", 499, "invalid_request_error")                                  \
    X(INTERNAL, internal, "internal error", 500, "server_error")                                       \
    X(EXPECT, expect, "expectation failed", 417, "invalid_request_error")                                  \
    X(UNIMPORTABLE, unimportable, "adapter cannot be imported exactly", 422, "invalid_request_error")                    \
    X(UNAVAIL, unavail, "adapter store unavailable", 503, "server_error")

enum slora_err {
    SLORA_OK = 0,
#define SLORA__ERR_ENUM(name, lname, msg, status, type) SLORA_E##name,
    SLORA__ERR_FIRST = -1000,
    SLORA_ERR_MAP(SLORA__ERR_ENUM) SLORA__ERR_END
#undef SLORA__ERR_ENUM
};
/* Codes are negative: SLORA_ENOMEM == -999, ... */

/* Static message for a code ("unknown error" for anything else). */
const char *slora_strerror(int err);
/* Lowercase code name: "nomem", "inval", ... ("internal" when unknown). */
const char *slora_err_name(int err);
/* HTTP status for a code (500 when unknown). */
int slora_err_http_status(int err);
/* OpenAI error type ("server_error" when unknown). */
const char *slora_err_type(int err);

#endif
