/* fsio.h - durable file I/O (adapter persistence, and every file the
 * tools write), with a fault shim and an operation trace compiled into
 * every build.
 *
 * Every function returns 0 or a negative SLORA_E*: ENOSPC and EDQUOT map to
 * SLORA_ENOSPC (HTTP 507), ENOENT to SLORA_ENOTFOUND, anything else to
 * SLORA_EIO (500); diag then names the operation, the path and strerror.
 *
 * Fault shim (inert unless the variable is set): SLORA_FAULT is a
 * comma-separated list of `op:ERRNO[:N]`, op one of open, write, fsync,
 * rename, dirsync, unlink, mkdir, read, link; ERRNO a name such as ENOSPC, EIO,
 * EDQUOT. Without N every call of op fails; with N only the Nth call (1 =
 * first) after the shim was (re)loaded. Example:
 * SLORA_FAULT=write:ENOSPC,dirsync:EIO:2.
 *
 * Trace: when SLORA_FSIO_TRACE names a file, one line per operation is
 * appended to it: `<op> <path>[ <path2>] <ok|ERRNO>`, e.g.
 * `rename /s/adapters/acme/.x.tmp.AbC123 /s/adapters/acme/x.safetensors ok`.
 *
 * Both variables are read on first use and again by slora_fsio_reset().
 * Any thread may call any function; the shim's counters are atomic.
 */
#ifndef SLORA_FSIO_H
#define SLORA_FSIO_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Re-read SLORA_FAULT and SLORA_FSIO_TRACE and reset the call counters
 * (tests call it after setenv). Returns SLORA_EINVAL when SLORA_FAULT is
 * malformed (the shim is then inert). */
int slora_fsio_reset(void);

/* Map an errno value to SLORA_ENOSPC / SLORA_ENOTFOUND / SLORA_EIO. */
int slora_fsio_err(int errno_value);

/* mkstemp(3) on tmpl (ends in "XXXXXX", rewritten in place); traced as open. */
int slora_fsio_mkstemp(char *tmpl, int *fd, char *diag, size_t diag_len);
/* Write all len bytes (retrying short writes and EINTR); path only for diag. */
int slora_fsio_write_all(int fd, const void *buf, size_t len, const char *path, char *diag,
                         size_t diag_len);
int slora_fsio_fsync(int fd, const char *path, char *diag, size_t diag_len);
int slora_fsio_rename(const char *from, const char *to, char *diag, size_t diag_len);
/* Open the directory, fsync it, close it: makes a rename/unlink durable. */
int slora_fsio_fsync_dir(const char *dir, char *diag, size_t diag_len);
int slora_fsio_unlink(const char *path, char *diag, size_t diag_len);
/* mkdir(2) with mode 0700; an existing directory is success. */
int slora_fsio_mkdir(const char *path, char *diag, size_t diag_len);
/* Read a whole regular file into a new malloc'd buffer (caller frees),
 * followed by a NUL byte that *len does not count.
 * Files larger than max_len give SLORA_ETOOLARGE. */
int slora_fsio_read_file(const char *path, size_t max_len, void **out, size_t *len, char *diag,
                         size_t diag_len);

/* Durably replace path with buf: write a temporary file `.<base>.tmp.XXXXXX`
 * in the same directory, fsync it, rename it over path, fsync the directory.
 * On any failure the temporary file is removed and path is untouched (it
 * keeps its previous contents, or stays absent). Callers serialize writes
 * to one path (a `.<base>.bak` hard link holds the previous version until
 * the directory fsync succeeded). */
int slora_fsio_write_file(const char *path, const void *buf, size_t len, char *diag,
                          size_t diag_len);
/* Writes the content to f; returns 0, or -1 with errno set. */
typedef int (*slora_fsio_write_cb)(FILE *f, void *ctx);
/* slora_fsio_write_file with the content produced by write on a stdio
 * stream (model and tensor files too large to assemble in memory). */
int slora_fsio_write(const char *path, slora_fsio_write_cb write, void *ctx, char *diag,
                     size_t diag_len);
/* Unlink path and fsync its directory. */
int slora_fsio_remove_file(const char *path, char *diag, size_t diag_len);

#endif
