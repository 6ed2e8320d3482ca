/* fileio.c - atomic whole-file writes (temporary file + rename). */
#include <slora/error.h>
#include <slora/fileio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int slora_fileio_write(const char *path, slora_fileio_write_cb write, void *ctx, char *diag,
                       size_t diag_len)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) {
        snprintf(diag, diag_len, "%s: out of memory", path);
        return SLORA_ENOMEM;
    }
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(diag, diag_len, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return SLORA_EIO;
    }
    errno = 0;
    int bad = write(f, ctx);
    int saved = errno;
    if (fclose(f) && !bad) {
        bad = -1;
        saved = errno;
    }
    if (!bad && rename(tmp, path)) {
        bad = -1;
        saved = errno;
    }
    if (bad) {
        snprintf(diag, diag_len, "%s: write failed: %s", path,
                 saved ? strerror(saved) : "short write");
        remove(tmp);
        free(tmp);
        return SLORA_EIO;
    }
    free(tmp);
    return 0;
}
