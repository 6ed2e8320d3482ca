/* fileio.h - write a whole file atomically: the content goes to a temporary
 * file beside the target, renamed over it only when complete. Any thread. */
#ifndef SLORA_FILEIO_H
#define SLORA_FILEIO_H

#include <stddef.h>
#include <stdio.h>

/* Writes the content to f; returns 0, or -1 with errno set. */
typedef int (*slora_fileio_write_cb)(FILE *f, void *ctx);

/* Returns 0, or SLORA_EIO with diag naming path and the cause (nothing is
 * left behind on failure). */
int slora_fileio_write(const char *path, slora_fileio_write_cb write, void *ctx, char *diag,
                       size_t diag_len);

#endif
