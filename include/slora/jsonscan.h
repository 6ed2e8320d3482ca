/* jsonscan.h - untrusted JSON documents (request bodies) under limits.
 *
 * jansson builds a node per value: a 1 MiB body of `[0,0,...]` becomes
 * half a million allocations, and nesting costs parser stack. A cheap scan
 * over the bytes bounds both before any tree is built: the nesting depth
 * of arrays and objects, and the elements (values plus object keys, an
 * upper bound on what the parser allocates). Malformed text passes the
 * scan; the parser then reports it.
 */
#ifndef SLORA_JSONSCAN_H
#define SLORA_JSONSCAN_H

#include <stddef.h>
#include <stdint.h>

struct json_t;

struct slora_jsonscan_limits {
    int64_t max_depth;    /* config max_json_depth */
    int64_t max_elements; /* config max_json_elements */
};

/* 0; SLORA_EINVAL when nested deeper than max_depth; SLORA_ETOOLARGE with
 * more than max_elements values and keys. diag names the limit. */
int slora_jsonscan_check(const char *text, size_t len, const struct slora_jsonscan_limits *lim,
                         char *diag, size_t diag_len);
/* The scan, then the parse (duplicate keys rejected): 0 and *out (a new
 * reference), or the scan's error, or SLORA_EINVAL with the parser's
 * message and position. */
int slora_jsonscan_load(const char *text, size_t len, const struct slora_jsonscan_limits *lim,
                        struct json_t **out, char *diag, size_t diag_len);

#endif
