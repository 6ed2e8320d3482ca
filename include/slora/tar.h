/* tar.h - a minimal, bounded reader of tar archives in memory (the PEFT
 * upload: a tar of adapter_config.json and adapter_model.safetensors).
 *
 * Layout (POSIX ustar): the archive is a sequence of 512-byte blocks. Each
 * member is one header block, then its data padded to a multiple of 512;
 * a zero block ends the archive. Header fields (bytes): name 0..99,
 * mode 100, uid 108, gid 116, size 124..135 (octal), mtime 136,
 * chksum 148..155 (octal sum of the header's 512 bytes with this field
 * taken as spaces), typeflag 156, linkname 157, magic 257..262 ("ustar\0"
 * POSIX or "ustar " GNU), version 263, uname 265, gname 297, devmajor 329,
 * devminor 337, prefix 345..499 (POSIX: the name is prefix "/" name).
 * A pax extended header (typeflag 'x', as Python's tarfile writes for a
 * file's sub-second mtime) holds records "LEN key=value\n" for the next
 * member; its "path" and "size" override that member's fields, other keys
 * are ignored.
 *
 * Accepted: regular files ('0', NUL), directories ('5', skipped) and 'x'
 * headers. Everything else (links, devices, GNU long names, global pax
 * headers, base-256 sizes) is refused, as are bad checksums, sizes past
 * the end of the buffer, names over SLORA_TAR_MAX_NAME bytes, more than
 * SLORA_TAR_MAX_MEMBERS headers, and a wanted name found twice. Nothing
 * is allocated: results point into the caller's buffer. Pure function,
 * any thread.
 */
#ifndef SLORA_TAR_H
#define SLORA_TAR_H

#include <stdbool.h>
#include <stddef.h>

#define SLORA_TAR_BLOCK 512
#define SLORA_TAR_MAX_MEMBERS 64      /* headers of any kind */
#define SLORA_TAR_MAX_NAME 255        /* bytes of a member's path */
#define SLORA_TAR_MAX_PAX (64u << 10) /* bytes of one pax header's records */

/* Does buf start with a ustar header block whose checksum is right? (A
 * safetensors or GGUF file never does.) */
bool slora_tar_is_tar(const void *buf, size_t len);

/* One wanted member: data borrowed from the archive buffer. */
struct slora_tar_file {
    const void *data; /* NULL when the archive has no such member */
    size_t size;
};

/* Validate the whole archive and find the regular files whose base name
 * (after the last '/') is names[i], i < n; out[i] receives each (others
 * are skipped). Returns 0, or SLORA_EFORMAT / SLORA_EUNSUPPORTED /
 * SLORA_ELIMIT with a diagnostic naming the member and byte offset. A
 * wanted name that is absent is not an error here (out[i].data NULL). */
int slora_tar_find(const void *buf, size_t len, const char *const *names, int n,
                   struct slora_tar_file *out, char *diag, size_t diag_len);

#endif
