/* sha256.h - SHA-256 (FIPS 180-4), hex encoding and constant-time digest
 * comparison. Used for adapter versions (ETags) and API key hashes.
 *
 * A context is caller storage; contexts are independent, so any thread may
 * hash with its own context. All other functions are pure.
 */
#ifndef SLORA_SHA256_H
#define SLORA_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLORA_SHA256_LEN 32     /* digest bytes */
#define SLORA_SHA256_HEX_LEN 64 /* hex digits, without the terminating NUL */

struct slora_sha256 {
    uint32_t h[8];     /* chaining state */
    uint64_t n_bytes;  /* message bytes consumed so far */
    uint8_t block[64]; /* pending partial block */
    size_t n_block;    /* bytes used in block */
};

void slora_sha256_init(struct slora_sha256 *c);
void slora_sha256_update(struct slora_sha256 *c, const void *data, size_t len);
/* Writes the digest; the context must be re-initialised before reuse. */
void slora_sha256_final(struct slora_sha256 *c, uint8_t digest[SLORA_SHA256_LEN]);
/* One-shot digest of a buffer. */
void slora_sha256(const void *data, size_t len, uint8_t digest[SLORA_SHA256_LEN]);

/* Lowercase hex: writes SLORA_SHA256_HEX_LEN digits and a NUL. */
void slora_sha256_hex(const uint8_t digest[SLORA_SHA256_LEN], char hex[SLORA_SHA256_HEX_LEN + 1]);
/* Parse exactly 64 hex digits (either case, nothing else). 0 or SLORA_EINVAL. */
int slora_sha256_parse_hex(const char *hex, uint8_t digest[SLORA_SHA256_LEN]);
/* Equality in time independent of where the digests differ. */
bool slora_sha256_equal(const uint8_t a[SLORA_SHA256_LEN], const uint8_t b[SLORA_SHA256_LEN]);

#endif
