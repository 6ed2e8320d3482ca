/* cmd_hash_key.c - `slorad hash-key`: read an API key on stdin, print the
 * sha256 hex that goes into the config (tenants[].key_sha256,
 * admin_key_sha256). The key itself is never echoed or stored. */
#include <slora/cli.h>
#include <slora/sha256.h>

#include <stdio.h>
#include <string.h>

#define MAX_KEY 4096

int slora_cmd_hash_key(int argc, char **argv)
{
    if (argc > 1) {
        FILE *f = strcmp(argv[1], "--help") && strcmp(argv[1], "-h") ? stderr : stdout;
        fprintf(f, "usage: printf '%%s' \"$KEY\" | slorad hash-key\n"
                   "Reads one API key on stdin (a trailing newline is ignored) and prints its\n"
                   "sha256 in hex for tenants[].key_sha256 / admin_key_sha256.\n");
        return f == stdout ? 0 : 2;
    }
    static char key[MAX_KEY + 2];
    size_t len = fread(key, 1, sizeof(key), stdin);
    if (ferror(stdin)) {
        fprintf(stderr, "slorad hash-key: cannot read stdin\n");
        return 1;
    }
    if (len > MAX_KEY) {
        fprintf(stderr, "slorad hash-key: key longer than %d bytes\n", MAX_KEY);
        return 1;
    }
    if (len > 0 && key[len - 1] == '\n')
        len--;
    if (len > 0 && key[len - 1] == '\r')
        len--;
    if (len == 0) {
        fprintf(stderr, "slorad hash-key: empty key on stdin\n");
        return 1;
    }
    uint8_t digest[SLORA_SHA256_LEN];
    char hex[SLORA_SHA256_HEX_LEN + 1];
    slora_sha256(key, len, digest);
    explicit_bzero(key, sizeof(key));
    slora_sha256_hex(digest, hex);
    printf("%s\n", hex);
    return 0;
}
