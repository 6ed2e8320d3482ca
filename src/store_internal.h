/* store_internal.h - the table of operations each store kind implements
 * (store_dir.c, store_redis.c); store.c dispatches to it. Not public. */
#ifndef SLORA_STORE_INTERNAL_H
#define SLORA_STORE_INTERNAL_H

#include <slora/store.h>

struct slora_store_ops {
    const char *kind;
    bool shared;
    int (*put)(struct slora_store *s, const struct slora_store_write *w,
               struct slora_store_result *res, char *diag, size_t diag_len);
    int (*remove)(struct slora_store *s, const struct slora_store_write *w,
                  struct slora_store_result *res, char *diag, size_t diag_len);
    int (*read)(struct slora_store *s, const char *tenant, const char *name, size_t max,
                void **out, size_t *len, char *diag, size_t diag_len);
    int (*scan)(struct slora_store *s, size_t max, slora_store_want_cb want,
                slora_store_scan_cb cb, void *arg, struct slora_store_cursor *cur,
                struct slora_store_scan_report *rep, char *diag, size_t diag_len);
    /* NULL when not shared */
    int (*changes)(struct slora_store *s, struct slora_store_cursor *cur,
                   struct slora_store_event *ev, size_t max, size_t *n, bool *gap, int wait_ms,
                   char *diag, size_t diag_len);
    int (*get)(struct slora_store *s, const char *tenant, const char *name, size_t max,
               struct slora_store_item *it, void **buf, size_t *len, char *diag,
               size_t diag_len);
    void (*stats)(struct slora_store *s, struct slora_store_stats *out);
    void (*free)(struct slora_store *s);
};

/* Every implementation's struct starts with this. */
struct slora_store {
    const struct slora_store_ops *ops;
};

int slora__store_dir_open(const struct slora_store_options *opt, struct slora_store **out,
                          char *diag, size_t diag_len);
int slora__store_redis_open(const struct slora_store_options *opt, struct slora_store **out,
                            char *diag, size_t diag_len);

#endif
