/* store_dir.c - the durable state directory (see store.h): one file per
 * adapter, state_dir/adapters/{tenant}/{name}.safetensors, the exact
 * uploaded bytes. Temporary files start with '.', which no valid name does.
 *
 * A write goes to a temporary file that is fsynced and renamed over the
 * name, then the directory is fsynced (slora_fsio_write_file); the tenant
 * directory's own entry is synced once per process (also when it already
 * existed, as a crash may have left it unsynced). Conditions and quotas are
 * the registry's: this store has one writer. Any thread (the set of synced
 * tenant directories is behind a mutex).
 */
#include "internal.h"
#include "store_internal.h"

#include <slora/error.h>
#include <slora/fsio.h>
#include <slora/log.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUFFIX ".safetensors"
#define PATH_LEN 4096

struct store_dir {
    struct slora_store base;
    char *adapters_dir; /* state_dir/adapters */
    pthread_mutex_t lock;
    char (*durable)[SLORA_STORE_NAME_MAX + 1]; /* (n_durable) tenant directories synced */
    size_t n_durable;
};

static struct store_dir *dir_of(struct slora_store *s)
{
    return (struct store_dir *)s;
}

static int file_path(const struct store_dir *d, const char *tenant, const char *name, char *out,
                     size_t out_len, char *diag, size_t diag_len)
{
    if ((size_t)snprintf(out, out_len, "%s/%s/%s" SUFFIX, d->adapters_dir, tenant, name) >= out_len)
        return slora__diag(diag, diag_len, SLORA_EINVAL, "path of %s/%s is too long", tenant, name);
    return 0;
}

static bool tenant_durable(struct store_dir *d, const char *tenant)
{
    bool found = false;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->n_durable && !found; i++)
        found = !strcmp(d->durable[i], tenant);
    pthread_mutex_unlock(&d->lock);
    return found;
}

static int ensure_tenant_dir(struct store_dir *d, const char *tenant, char *diag, size_t diag_len)
{
    if (tenant_durable(d, tenant))
        return 0;
    char dir[PATH_LEN];
    snprintf(dir, sizeof(dir), "%s/%s", d->adapters_dir, tenant);
    int rc = access(dir, F_OK) == 0 ? 0 : slora_fsio_mkdir(dir, diag, diag_len);
    if (rc == 0)
        rc = slora_fsio_fsync_dir(d->adapters_dir, diag, diag_len);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&d->lock);
    void *grown = realloc(d->durable, (d->n_durable + 1) * sizeof(*d->durable));
    if (grown) {
        d->durable = grown;
        snprintf(d->durable[d->n_durable++], SLORA_STORE_NAME_MAX + 1, "%s", tenant);
    }
    pthread_mutex_unlock(&d->lock);
    return 0; /* not remembered on ENOMEM: synced again next time */
}

static int dir_put(struct slora_store *s, const struct slora_store_write *w,
                   struct slora_store_result *res, char *diag, size_t diag_len)
{
    struct store_dir *d = dir_of(s);
    char path[PATH_LEN];
    int rc = file_path(d, w->tenant, w->name, path, sizeof(path), diag, diag_len);
    if (rc == 0)
        rc = ensure_tenant_dir(d, w->tenant, diag, diag_len);
    if (rc == 0)
        rc = slora_fsio_write_file(path, w->buf, w->len, diag, diag_len);
    res->pinned = w->pin == 1;
    return rc;
}

static int dir_remove(struct slora_store *s, const struct slora_store_write *w,
                      struct slora_store_result *res, char *diag, size_t diag_len)
{
    (void)res;
    char path[PATH_LEN];
    int rc = file_path(dir_of(s), w->tenant, w->name, path, sizeof(path), diag, diag_len);
    if (rc == 0)
        rc = slora_fsio_remove_file(path, diag, diag_len);
    if (rc == SLORA_ENOTFOUND) {
        slora_warn("delete %s/%s: %s was already gone", w->tenant, w->name, path);
        return 0;
    }
    return rc;
}

static int dir_read(struct slora_store *s, const char *tenant, const char *name, size_t max,
                    void **out, size_t *len, char *diag, size_t diag_len)
{
    char path[PATH_LEN];
    int rc = file_path(dir_of(s), tenant, name, path, sizeof(path), diag, diag_len);
    return rc ? rc : slora_fsio_read_file(path, max, out, len, diag, diag_len);
}

/* ---- scan ----------------------------------------------------------------- */

static bool is_leftover(const char *fname)
{
    return fname[0] == '.' && (strstr(fname, ".tmp.") || strstr(fname, ".bak"));
}

/* Read one {name}.safetensors and hand it to cb; false when skipped (logged). */
static bool scan_one(const char *tenant, const char *fname, const char *path, size_t max,
                     slora_store_scan_cb cb, void *arg)
{
    size_t flen = strlen(fname), slen = sizeof(SUFFIX) - 1;
    if (flen <= slen || flen - slen > SLORA_STORE_NAME_MAX || fname[0] == '.' ||
        strcmp(fname + flen - slen, SUFFIX)) {
        slora_warn("restore: skipping %s: not {name}" SUFFIX, path);
        return false;
    }
    struct slora_store_item it = {.rev = 0};
    snprintf(it.tenant, sizeof(it.tenant), "%s", tenant);
    memcpy(it.name, fname, flen - slen);
    it.name[flen - slen] = '\0';
    struct stat st;
    void *buf;
    size_t len;
    char diag[512] = "";
    int rc = stat(path, &st) < 0 ? slora_fsio_err(errno)
                                 : slora_fsio_read_file(path, max, &buf, &len, diag, sizeof(diag));
    if (rc < 0) {
        slora_warn("restore: skipping %s: %s", path, diag[0] ? diag : strerror(errno));
        return false;
    }
    it.created = (int64_t)st.st_mtime;
    it.bytes = (int64_t)len;
    cb(arg, &it, buf, len);
    free(buf);
    return true;
}

static void scan_tenant(const char *adapters_dir, const char *tenant, size_t max,
                        slora_store_scan_cb cb, void *arg, struct slora_store_scan_report *rep)
{
    char dir[PATH_LEN], path[PATH_LEN + 256];
    snprintf(dir, sizeof(dir), "%s/%s", adapters_dir, tenant);
    DIR *dh = opendir(dir);
    if (!dh) {
        slora_warn("restore: skipping %s: %s", dir, strerror(errno));
        rep->skipped++;
        return;
    }
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (is_leftover(de->d_name)) {
            if (unlink(path) == 0) {
                slora_info("restore: removed leftover %s", path);
                rep->removed_temp++;
            } else {
                slora_warn("restore: cannot remove leftover %s: %s", path, strerror(errno));
            }
            continue;
        }
        if (scan_one(tenant, de->d_name, path, max, cb, arg))
            rep->listed++;
        else
            rep->skipped++;
    }
    closedir(dh);
}

static int dir_scan(struct slora_store *s, size_t max, slora_store_want_cb want,
                    slora_store_scan_cb cb, void *arg, struct slora_store_cursor *cur,
                    struct slora_store_scan_report *rep, char *diag, size_t diag_len)
{
    (void)want; /* the version is only known once the file is read */
    (void)cur;
    struct store_dir *d = dir_of(s);
    DIR *dh = opendir(d->adapters_dir);
    if (!dh)
        return slora__diag(diag, diag_len, slora_fsio_err(errno), "cannot open %s: %s",
                           d->adapters_dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (de->d_name[0] == '.' || strlen(de->d_name) > SLORA_STORE_NAME_MAX) {
            slora_warn("restore: skipping %s/%s: not a tenant name", d->adapters_dir, de->d_name);
            rep->skipped++;
            continue;
        }
        scan_tenant(d->adapters_dir, de->d_name, max, cb, arg, rep);
    }
    closedir(dh);
    return 0;
}

static void dir_stats(struct slora_store *s, struct slora_store_stats *out)
{
    (void)s;
    *out = (struct slora_store_stats){.up = true};
}

static void dir_free(struct slora_store *s)
{
    struct store_dir *d = dir_of(s);
    pthread_mutex_destroy(&d->lock);
    free(d->durable);
    free(d->adapters_dir);
    free(d);
}

static const struct slora_store_ops dir_ops = {
    .kind = "dir",
    .shared = false,
    .put = dir_put,
    .remove = dir_remove,
    .read = dir_read,
    .scan = dir_scan,
    .stats = dir_stats,
    .free = dir_free,
};

int slora__store_dir_open(const struct slora_store_options *opt, struct slora_store **out,
                          char *diag, size_t diag_len)
{
    if (!opt->dir || !opt->dir[0])
        return slora__diag(diag, diag_len, SLORA_EINVAL, "dir store needs a state directory");
    struct store_dir *d = calloc(1, sizeof(*d));
    size_t n = strlen(opt->dir) + sizeof("/adapters");
    if (!d || !(d->adapters_dir = malloc(n))) {
        free(d);
        return SLORA_ENOMEM;
    }
    d->base.ops = &dir_ops;
    pthread_mutex_init(&d->lock, NULL);
    snprintf(d->adapters_dir, n, "%s/adapters", opt->dir);
    int rc = slora_fsio_mkdir(opt->dir, diag, diag_len);
    if (rc == 0)
        rc = slora_fsio_mkdir(d->adapters_dir, diag, diag_len);
    if (rc == 0)
        rc = slora_fsio_fsync_dir(opt->dir, diag, diag_len);
    if (rc < 0) {
        dir_free(&d->base);
        return rc;
    }
    *out = &d->base;
    return 0;
}
