/* store.c - the store interface (see store.h): opens the configured kind
 * and dispatches to its operations (store_internal.h). */
#include "internal.h"
#include "store_internal.h"

#include <slora/error.h>

#include <stdio.h>

int slora_store_open(const struct slora_store_options *opt, struct slora_store **out, char *diag,
                     size_t diag_len)
{
    switch (opt->kind) {
    case SLORA_STORE_DIR:
        return slora__store_dir_open(opt, out, diag, diag_len);
    case SLORA_STORE_REDIS:
        return slora__store_redis_open(opt, out, diag, diag_len);
    }
    return slora__diag(diag, diag_len, SLORA_EINVAL, "unknown store kind %d", (int)opt->kind);
}

void slora_store_free(struct slora_store *s)
{
    if (s)
        s->ops->free(s);
}

const char *slora_store_kind_name(const struct slora_store *s)
{
    return s->ops->kind;
}

bool slora_store_is_shared(const struct slora_store *s)
{
    return s->ops->shared;
}

void slora_store_stats(struct slora_store *s, struct slora_store_stats *out)
{
    s->ops->stats(s, out);
}

int slora_store_put(struct slora_store *s, const struct slora_store_write *w,
                    struct slora_store_result *res, char *diag, size_t diag_len)
{
    *res = (struct slora_store_result){0};
    return s->ops->put(s, w, res, diag, diag_len);
}

int slora_store_remove(struct slora_store *s, const struct slora_store_write *w,
                       struct slora_store_result *res, char *diag, size_t diag_len)
{
    *res = (struct slora_store_result){0};
    return s->ops->remove(s, w, res, diag, diag_len);
}

int slora_store_read(struct slora_store *s, const char *tenant, const char *name, size_t max,
                     void **out, size_t *len, char *diag, size_t diag_len)
{
    return s->ops->read(s, tenant, name, max, out, len, diag, diag_len);
}

int slora_store_scan(struct slora_store *s, size_t max, slora_store_want_cb want,
                     slora_store_scan_cb cb, void *arg, struct slora_store_cursor *cur,
                     struct slora_store_scan_report *rep, char *diag, size_t diag_len)
{
    *rep = (struct slora_store_scan_report){0};
    return s->ops->scan(s, max, want, cb, arg, cur, rep, diag, diag_len);
}

int slora_store_changes(struct slora_store *s, struct slora_store_cursor *cur,
                        struct slora_store_event *ev, size_t max, size_t *n, bool *gap,
                        int wait_ms, char *diag, size_t diag_len)
{
    *n = 0;
    *gap = false;
    if (!s->ops->changes)
        return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED, "%s store has no change stream",
                           s->ops->kind);
    return s->ops->changes(s, cur, ev, max, n, gap, wait_ms, diag, diag_len);
}

int slora_store_get(struct slora_store *s, const char *tenant, const char *name, size_t max,
                    struct slora_store_item *it, void **buf, size_t *len, char *diag,
                    size_t diag_len)
{
    *buf = NULL;
    *len = 0;
    if (!s->ops->get)
        return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED, "%s store has no lookup",
                           s->ops->kind);
    return s->ops->get(s, tenant, name, max, it, buf, len, diag, diag_len);
}
