/* fsio.c - persistence I/O with the SLORA_FAULT shim and SLORA_FSIO_TRACE
 * trace (see fsio.h).
 *
 * Every public operation goes through op_start (which may inject a fault)
 * and op_end (which records the trace line), so the order a test reads in
 * the trace is the order the syscalls were issued. The shim state (rules,
 * per-op call counters, trace path) sits behind one mutex; it is tiny and
 * only touched once per syscall.
 */
#include <slora/error.h>
#include <slora/fsio.h>
#include <slora/log.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum op {
    OP_OPEN,
    OP_WRITE,
    OP_FSYNC,
    OP_RENAME,
    OP_DIRSYNC,
    OP_UNLINK,
    OP_MKDIR,
    OP_READ,
    OP_LINK,
    OP_COUNT
};

static const char *const op_names[OP_COUNT] = {"open",   "write", "fsync", "rename", "dirsync",
                                               "unlink", "mkdir", "read",  "link"};

static const struct {
    const char *name;
    int value;
} errno_names[] = {
    {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT},
    {"EIO", EIO},       {"EACCES", EACCES},
    {"EPERM", EPERM},   {"EROFS", EROFS},
    {"ENOENT", ENOENT}, {"EEXIST", EEXIST},
    {"EMFILE", EMFILE}, {"ENOMEM", ENOMEM},
    {"EBUSY", EBUSY},   {"EXDEV", EXDEV},
    {"EINTR", EINTR},   {"ENAMETOOLONG", ENAMETOOLONG},
};

#define MAX_RULES 16

struct rule {
    enum op op;
    int err;      /* errno to inject */
    uint64_t nth; /* 0: every call, else only the nth */
};

static struct {
    pthread_mutex_t lock;
    bool loaded;
    int n_rules;
    struct rule rules[MAX_RULES];
    uint64_t calls[OP_COUNT];
    char trace_path[PATH_MAX];
} shim = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char *errno_name(int e)
{
    for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (errno_names[i].value == e)
            return errno_names[i].name;
    return "EOTHER";
}

static int parse_rule(const char *s, size_t len, struct rule *r)
{
    char buf[64];
    if (len >= sizeof(buf))
        return SLORA_EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *save = NULL;
    const char *op = strtok_r(buf, ":", &save);
    const char *err = strtok_r(NULL, ":", &save);
    const char *nth = strtok_r(NULL, ":", &save);
    if (!op || !err || strtok_r(NULL, ":", &save))
        return SLORA_EINVAL;
    int found = -1;
    for (int i = 0; i < OP_COUNT; i++)
        if (!strcmp(op, op_names[i]))
            found = i;
    if (found < 0)
        return SLORA_EINVAL;
    r->op = (enum op)found;
    r->err = 0;
    for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (!strcmp(err, errno_names[i].name))
            r->err = errno_names[i].value;
    if (!r->err)
        return SLORA_EINVAL;
    r->nth = 0;
    if (nth) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(nth, &end, 10);
        if (errno || *end || n == 0 || nth[0] == '-')
            return SLORA_EINVAL;
        r->nth = n;
    }
    return 0;
}

/* Caller holds shim.lock. */
static int load_locked(void)
{
    shim.loaded = true;
    shim.n_rules = 0;
    memset(shim.calls, 0, sizeof(shim.calls));
    const char *trace = getenv("SLORA_FSIO_TRACE");
    snprintf(shim.trace_path, sizeof(shim.trace_path), "%s", trace ? trace : "");
    const char *spec = getenv("SLORA_FAULT");
    if (!spec || !*spec)
        return 0;
    for (const char *p = spec;; p++) {
        size_t len = strcspn(p, ",");
        if (shim.n_rules == MAX_RULES || parse_rule(p, len, &shim.rules[shim.n_rules]) < 0) {
            shim.n_rules = 0;
            slora_error("SLORA_FAULT='%s' is malformed (want op:ERRNO[:N],...); shim inert", spec);
            return SLORA_EINVAL;
        }
        shim.n_rules++;
        p += len;
        if (!*p)
            break;
    }
    slora_warn("fault shim active: SLORA_FAULT=%s", spec);
    return 0;
}

int slora_fsio_reset(void)
{
    pthread_mutex_lock(&shim.lock);
    int rc = load_locked();
    pthread_mutex_unlock(&shim.lock);
    return rc;
}

/* Count the call; return the errno to inject, or 0. */
static int op_start(enum op op)
{
    pthread_mutex_lock(&shim.lock);
    if (!shim.loaded)
        load_locked();
    uint64_t n = ++shim.calls[op];
    int inject = 0;
    for (int i = 0; i < shim.n_rules && !inject; i++)
        if (shim.rules[i].op == op && (shim.rules[i].nth == 0 || shim.rules[i].nth == n))
            inject = shim.rules[i].err;
    pthread_mutex_unlock(&shim.lock);
    return inject;
}

static void op_end(enum op op, const char *path, const char *path2, int err)
{
    char trace_path[PATH_MAX];
    pthread_mutex_lock(&shim.lock);
    memcpy(trace_path, shim.trace_path, sizeof(trace_path));
    pthread_mutex_unlock(&shim.lock);
    if (!trace_path[0])
        return;
    char line[2 * PATH_MAX + 64];
    int n = snprintf(line, sizeof(line), "%s %s%s%s %s\n", op_names[op], path, path2 ? " " : "",
                     path2 ? path2 : "", err ? errno_name(err) : "ok");
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    int fd = open(trace_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    /* One O_APPEND write per line keeps lines whole across threads and processes. */
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
    close(fd);
}

int slora_fsio_err(int e)
{
    if (e == ENOSPC || e == EDQUOT)
        return SLORA_ENOSPC;
    if (e == ENOENT)
        return SLORA_ENOTFOUND;
    return SLORA_EIO;
}

/* Record the outcome of one operation; e is 0 or an errno. */
static int finish(enum op op, const char *path, const char *path2, int e, char *diag,
                  size_t diag_len)
{
    op_end(op, path, path2, e);
    if (!e)
        return 0;
    snprintf(diag, diag_len, "%s %s%s%s: %s", op_names[op], path, path2 ? " -> " : "",
             path2 ? path2 : "", strerror(e));
    return slora_fsio_err(e);
}

int slora_fsio_mkstemp(char *tmpl, int *fd, char *diag, size_t diag_len)
{
    int e = op_start(OP_OPEN);
    if (!e) {
        *fd = mkostemp(tmpl, O_CLOEXEC);
        e = *fd < 0 ? errno : 0;
    }
    return finish(OP_OPEN, tmpl, NULL, e, diag, diag_len);
}

int slora_fsio_write_all(int fd, const void *buf, size_t len, const char *path, char *diag,
                         size_t diag_len)
{
    int e = op_start(OP_WRITE);
    const char *p = buf;
    while (!e && len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            e = errno;
        else if (n == 0)
            e = EIO;
        else {
            p += n;
            len -= (size_t)n;
        }
    }
    return finish(OP_WRITE, path, NULL, e, diag, diag_len);
}

int slora_fsio_fsync(int fd, const char *path, char *diag, size_t diag_len)
{
    int e = op_start(OP_FSYNC);
    if (!e && fsync(fd) < 0)
        e = errno;
    return finish(OP_FSYNC, path, NULL, e, diag, diag_len);
}

int slora_fsio_rename(const char *from, const char *to, char *diag, size_t diag_len)
{
    int e = op_start(OP_RENAME);
    if (!e && rename(from, to) < 0)
        e = errno;
    return finish(OP_RENAME, from, to, e, diag, diag_len);
}

int slora_fsio_fsync_dir(const char *dir, char *diag, size_t diag_len)
{
    int e = op_start(OP_DIRSYNC);
    if (!e) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            e = errno;
        else {
            if (fsync(fd) < 0)
                e = errno;
            close(fd);
        }
    }
    return finish(OP_DIRSYNC, dir, NULL, e, diag, diag_len);
}

int slora_fsio_unlink(const char *path, char *diag, size_t diag_len)
{
    int e = op_start(OP_UNLINK);
    if (!e && unlink(path) < 0)
        e = errno;
    return finish(OP_UNLINK, path, NULL, e, diag, diag_len);
}

static int link_file(const char *from, const char *to, char *diag, size_t diag_len)
{
    int e = op_start(OP_LINK);
    if (!e && link(from, to) < 0)
        e = errno;
    return finish(OP_LINK, from, to, e, diag, diag_len);
}

int slora_fsio_mkdir(const char *path, char *diag, size_t diag_len)
{
    int e = op_start(OP_MKDIR);
    if (!e && mkdir(path, 0700) < 0) {
        struct stat st;
        e = errno;
        if (e == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            e = 0;
    }
    return finish(OP_MKDIR, path, NULL, e, diag, diag_len);
}

int slora_fsio_read_file(const char *path, size_t max_len, void **out, size_t *len, char *diag,
                         size_t diag_len)
{
    int e = op_start(OP_READ);
    if (e)
        return finish(OP_READ, path, NULL, e, diag, diag_len);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return finish(OP_READ, path, NULL, errno, diag, diag_len);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        e = errno;
        goto err_close_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        e = EINVAL;
        goto err_close_fd;
    }
    if ((uint64_t)st.st_size > max_len) {
        close(fd);
        op_end(OP_READ, path, NULL, EFBIG);
        snprintf(diag, diag_len, "read %s: %lld bytes exceed the limit of %zu", path,
                 (long long)st.st_size, max_len);
        return SLORA_ETOOLARGE;
    }
    size_t size = (size_t)st.st_size;
    /* One spare byte keeps the contents NUL-terminated for text readers. */
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        op_end(OP_READ, path, NULL, ENOMEM);
        snprintf(diag, diag_len, "read %s: out of memory for %zu bytes", path, size);
        return SLORA_ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* A file that shrank under us is as unusable as an I/O error. */
            e = n < 0 ? errno : EIO;
            free(buf);
            goto err_close_fd;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[size] = '\0';
    *out = buf;
    *len = size;
    return finish(OP_READ, path, NULL, 0, diag, diag_len);

err_close_fd:
    close(fd);
    return finish(OP_READ, path, NULL, e, diag, diag_len);
}

/* Split path into its directory ("." when none) and its last component. */
static int split_path(const char *path, char *dir, char *base)
{
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 1;
    const char *b = slash ? slash + 1 : path;
    if (dlen >= PATH_MAX || strlen(b) + 1 > NAME_MAX - 16 || !*b)
        return SLORA_EINVAL;
    if (slash) {
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
        if (dlen == 0)
            strcpy(dir, "/");
    } else {
        strcpy(dir, ".");
    }
    strcpy(base, b);
    return 0;
}

/* The directory fsync after a rename failed: put the previous version
 * back (or remove the new file when there was none). Best effort, the
 * directory is failing already. */
static void rollback(const char *path, const char *dir, const char *bak)
{
    char diag[256];
    if (bak ? rename(bak, path) < 0 : unlink(path) < 0)
        slora_error("rollback of %s failed: %s", path, strerror(errno));
    else if (slora_fsio_fsync_dir(dir, diag, sizeof(diag)) < 0)
        slora_warn("rollback of %s: %s", path, diag);
}

/* Writes the content into the open temporary file fd (named tmp for diag). */
typedef int (*fill_fn)(int fd, const char *tmp, const void *ctx, char *diag, size_t diag_len);

/* The durable replace behind slora_fsio_write_file and slora_fsio_write. */
static int write_durably(const char *path, fill_fn fill, const void *ctx, char *diag,
                         size_t diag_len)
{
    char dir[PATH_MAX], base[NAME_MAX + 1], tmp[PATH_MAX + NAME_MAX + 16],
        bak[PATH_MAX + NAME_MAX + 16];
    if (split_path(path, dir, base) < 0) {
        snprintf(diag, diag_len, "bad path '%s'", path);
        return SLORA_EINVAL;
    }
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.XXXXXX", dir, base);
    int fd, rc = slora_fsio_mkstemp(tmp, &fd, diag, diag_len);
    if (rc < 0)
        return rc;
    rc = fill(fd, tmp, ctx, diag, diag_len);
    if (rc == 0)
        rc = slora_fsio_fsync(fd, tmp, diag, diag_len);
    if (close(fd) < 0 && rc == 0)
        rc = finish(OP_WRITE, tmp, NULL, errno, diag, diag_len);
    if (rc < 0)
        goto err_unlink_tmp;
    /* Keep the previous version reachable under a hard link until the
     * directory fsync has made the new one durable, so a failed fsync can
     * put it back. Callers serialize writes to one path, so a fixed name
     * is enough; a stale one from a crash is replaced. */
    snprintf(bak, sizeof(bak), "%s/.%s.bak", dir, base);
    bool have_bak = access(path, F_OK) == 0;
    if (have_bak) {
        unlink(bak);
        rc = link_file(path, bak, diag, diag_len);
        if (rc < 0)
            goto err_unlink_tmp;
    }
    rc = slora_fsio_rename(tmp, path, diag, diag_len);
    if (rc < 0)
        goto err_unlink_bak;
    rc = slora_fsio_fsync_dir(dir, diag, diag_len);
    if (rc < 0) {
        rollback(path, dir, have_bak ? bak : NULL);
        return rc;
    }
    if (have_bak)
        unlink(bak);
    return 0;

err_unlink_bak:
    if (have_bak)
        unlink(bak);
err_unlink_tmp:
    unlink(tmp);
    return rc;
}

struct bytes {
    const void *buf;
    size_t len;
};

static int fill_bytes(int fd, const char *tmp, const void *ctx, char *diag, size_t diag_len)
{
    const struct bytes *b = ctx;
    return slora_fsio_write_all(fd, b->buf, b->len, tmp, diag, diag_len);
}

int slora_fsio_write_file(const char *path, const void *buf, size_t len, char *diag,
                          size_t diag_len)
{
    struct bytes b = {buf, len};
    return write_durably(path, fill_bytes, &b, diag, diag_len);
}

struct stream {
    slora_fsio_write_cb write;
    void *ctx;
};

/* The caller's writer on a stdio stream over a duplicate of fd (fd itself
 * stays open for the fsync); traced as one write. */
static int fill_stream(int fd, const char *tmp, const void *ctx, char *diag, size_t diag_len)
{
    const struct stream *s = ctx;
    int e = op_start(OP_WRITE);
    int dup_fd = e ? -1 : dup(fd);
    FILE *f = dup_fd < 0 ? NULL : fdopen(dup_fd, "wb");
    if (!e && !f) {
        e = errno;
        if (dup_fd >= 0)
            close(dup_fd);
    }
    if (!e) {
        errno = 0;
        if (s->write(f, s->ctx) < 0)
            e = errno ? errno : EIO;
        errno = 0;
        if (fclose(f) && !e)
            e = errno ? errno : EIO;
    }
    return finish(OP_WRITE, tmp, NULL, e, diag, diag_len);
}

int slora_fsio_write(const char *path, slora_fsio_write_cb write, void *ctx, char *diag,
                     size_t diag_len)
{
    struct stream s = {write, ctx};
    return write_durably(path, fill_stream, &s, diag, diag_len);
}

int slora_fsio_remove_file(const char *path, char *diag, size_t diag_len)
{
    char dir[PATH_MAX], base[NAME_MAX + 1];
    if (split_path(path, dir, base) < 0) {
        snprintf(diag, diag_len, "bad path '%s'", path);
        return SLORA_EINVAL;
    }
    int rc = slora_fsio_unlink(path, diag, diag_len);
    if (rc < 0)
        return rc;
    return slora_fsio_fsync_dir(dir, diag, diag_len);
}
