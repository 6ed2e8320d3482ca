/* jsonscan.c - depth and element limits before jansson (see jsonscan.h).
 *
 * The scan tracks only what it must: whether it is inside a string (so
 * brackets and commas there do not count), the bracket depth, and where a
 * scalar (number, true, false, null) starts: right after `[`, `{`, `,`,
 * `:` or at the start. Every string (value or key), container and scalar
 * counts as one element.
 */
#include "internal.h"

#include <slora/error.h>
#include <slora/jsonscan.h>

#include <jansson.h>

#include <inttypes.h>
#include <stdbool.h>

int slora_jsonscan_check(const char *text, size_t len, const struct slora_jsonscan_limits *lim,
                         char *diag, size_t diag_len)
{
    int64_t depth = 0, elements = 0;
    bool value_may_start = true;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
            continue;
        bool starts = value_may_start;
        value_may_start = ch == '[' || ch == '{' || ch == ',' || ch == ':';
        if (ch == '"') {
            elements++;
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\')
                    i++;
        } else if (ch == '[' || ch == '{') {
            elements++;
            if (++depth > lim->max_depth)
                return slora__diag(diag, diag_len, SLORA_EINVAL,
                                   "JSON body nested deeper than %" PRId64 " levels (max_json_depth)",
                                   lim->max_depth);
        } else if (ch == ']' || ch == '}') {
            depth -= depth > 0;
        } else if (starts && ch != ',' && ch != ':') {
            elements++; /* a scalar's first byte */
        }
        if (elements > lim->max_elements)
            return slora__diag(diag, diag_len, SLORA_ETOOLARGE,
                               "JSON body has more than %" PRId64
                               " values and keys (max_json_elements)",
                               lim->max_elements);
    }
    return 0;
}

int slora_jsonscan_load(const char *text, size_t len, const struct slora_jsonscan_limits *lim,
                        struct json_t **out, char *diag, size_t diag_len)
{
    *out = NULL;
    int err = slora_jsonscan_check(text, len, lim, diag, diag_len);
    if (err)
        return err;
    json_error_t e;
    *out = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &e);
    if (!*out)
        return slora__diag(diag, diag_len, SLORA_EINVAL,
                           "invalid JSON body: %s (line %d, column %d)", e.text, e.line, e.column);
    return 0;
}
