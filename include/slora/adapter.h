/* adapter.h - a parsed, validated SuperLoRA adapter (spec: superlora-v1.md).
 *
 * slora_adapter_parse reads a safetensors file from memory: the
 * __metadata__.superlora JSON config and the factor tensors (F32/F16/BF16,
 * converted to float32 into one owned buffer). It validates everything the
 * spec rules out before allocating at scale, and derives the target list
 * and group table. Resident cost beyond the parameters is small and exact:
 * the targets, groups, factors and per-mode (n, r, A) records share one
 * allocation sized to the file's J, G, sum K_g and sum K_g M_g (tens of
 * thousands of adapters stay resident). The object is immutable and
 * refcounted: any thread may read it; the last slora_adapter_unref frees it.
 */
#ifndef SLORA_ADAPTER_H
#define SLORA_ADAPTER_H

#include <slora/arch.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLORA_MAX_ORDER 16 /* M: modes per factor (resource limit) */
#define SLORA_MAX_KRON 16  /* K: Kronecker factors per group (resource limit) */

enum slora_order { SLORA_ORDER_LAYER, SLORA_ORDER_MODULE };
enum slora_groups_kind {
    SLORA_GROUPS_COUNT,
    SLORA_GROUPS_MATRIX,
    SLORA_GROUPS_LAYER,
    SLORA_GROUPS_MODULE
};

struct slora_target {
    int layer;
    enum slora_module module;
    int64_t rows, cols; /* (o_j, i_j) */
    int64_t offset;     /* off_j into dW_all */
};

/* One Kronecker factor T_k of a group: views of its M_g modes into the
 * adapter's factor tables (sized to what the file has, no fixed arrays). */
struct slora_factor {
    int64_t *n;        /* (M_g) n_{k,m} */
    int64_t *r;        /* (M_g) r_{k,m} */
    const float **a;   /* (M_g) A_{k,m}: (n_{k,m}, r_{k,m}) row-major */
    const float *core; /* (r_0, ..., r_{M-1}) row-major, or NULL (CP) */
};

struct slora_group {
    int64_t offset;         /* into delta (== sum of earlier N_g) */
    int64_t len;            /* N_g */
    int64_t code_len;       /* P_g = prod_m n_m */
    int order;              /* M_g */
    int n_kron;             /* K_g */
    int64_t *n;             /* (M_g) n_m = prod_k n_{k,m}; k[0].n when K_g = 1 */
    struct slora_factor *k; /* (K_g) */
};

/* Fixed-size records for one group, for code that builds an adapter by
 * hand (tests, benchmarks); parsed adapters size theirs to the file. */
struct slora_group_tables {
    int64_t n[SLORA_MAX_ORDER];
    struct slora_factor k[SLORA_MAX_KRON];
    int64_t kn[SLORA_MAX_KRON][SLORA_MAX_ORDER];
    int64_t kr[SLORA_MAX_KRON][SLORA_MAX_ORDER];
    const float *ka[SLORA_MAX_KRON][SLORA_MAX_ORDER];
};

/* Point g's n and factors at t (zeroed: no factors recorded yet). */
static inline void slora_group_tables_init(struct slora_group *g, struct slora_group_tables *t)
{
    *t = (struct slora_group_tables){0};
    g->n = t->n;
    g->k = t->k;
    for (int k = 0; k < SLORA_MAX_KRON; k++)
        t->k[k] = (struct slora_factor){.n = t->kn[k], .r = t->kr[k], .a = t->ka[k]};
}

/* Start hand-built group g of length N_g = len and order M right after prev
 * (NULL for the first group), its records in t; factors are added next. */
static inline void slora_group_tables_start(struct slora_group *g, struct slora_group_tables *t,
                                            const struct slora_group *prev, int64_t len, int order)
{
    *g = (struct slora_group){0};
    slora_group_tables_init(g, t);
    g->offset = prev ? prev->offset + prev->len : 0;
    g->len = len;
    g->order = order;
    for (int m = 0; m < order; m++)
        g->n[m] = 1;
    g->code_len = 1;
}

/* Append a Kronecker factor to a hand-built group: A_m = a[m], each
 * (n[m], r[m]), and core (r_0, ..., r_{M-1}) or NULL (CP); updates the
 * group's mode sizes n_m and its code length P_g. */
static inline void slora_group_tables_add_factor(struct slora_group *g, const int64_t *n,
                                                 const int64_t *r, const float *const *a,
                                                 const float *core)
{
    struct slora_factor *k = &g->k[g->n_kron++];
    g->code_len = 1;
    for (int m = 0; m < g->order; m++) {
        k->n[m] = n[m];
        k->r[m] = r[m];
        k->a[m] = a[m];
        g->n[m] *= n[m];
        g->code_len *= g->n[m];
    }
    k->core = core;
}

struct slora_adapter_config {
    struct slora_shape base;
    int n_modules;
    enum slora_module modules[SLORA_MOD_COUNT]; /* listed order */
    int n_layers;
    int *layers; /* (n_layers) ascending; owned by the adapter */
    enum slora_order order;
    enum slora_groups_kind groups_kind;
    int64_t groups_count; /* G when groups_kind == COUNT */
    bool shuffle;
    uint64_t shuffle_seed;
    bool projection;
    uint64_t projection_seed;
    float alpha;
};

struct slora_adapter {
    int refcount; /* atomic */
    struct slora_adapter_config cfg;
    int n_targets;                /* J */
    struct slora_target *targets; /* (J) */
    int64_t total;                /* N */
    int n_groups;                 /* G */
    struct slora_group *groups;   /* (G) */
    void *tables;      /* owned: one allocation holding targets, groups and their factor tables */
    int64_t n_params;  /* total tensor elements */
    float *params;     /* (n_params) all factors and cores, float32; owned */
    size_t file_bytes; /* size of the serialized file */
};

struct slora_adapter_limits {
    int64_t max_params;   /* default 10,000,000 */
    int64_t max_total;    /* max N; default 1 << 31 */
    int64_t max_fastfood; /* max L; default 1 << 28 */
    int64_t max_core;     /* max core elements; default 1 << 24 */
    int64_t max_groups;   /* max G; default 4096 */
    /* Validation only (slora_adapter_validate): what generating the deltas
     * may cost beyond the output (slora_superlora_cost), checked before
     * anything is allocated. */
    int64_t max_expand_bytes; /* intermediates; default 256 MiB */
    int64_t max_expand_work;  /* multiply-adds; default 1 << 34 */
};
void slora_adapter_limits_default(struct slora_adapter_limits *lim);

/* Parse and validate (no delta generation). model may be NULL (base shape
 * is then taken from the file, as `slorad inspect` without --model does);
 * lim may be NULL (slora_adapter_limits_default). Factor data lives in
 * params in tensor-name order; the a[]/core pointers point into it.
 * On error returns SLORA_E* and writes a diagnostic naming the key, tensor
 * or byte offset. *out is a new reference. */
int slora_adapter_parse(const void *buf, size_t len, const struct slora_shape *model,
                        const struct slora_adapter_limits *lim, struct slora_adapter **out,
                        char *diag, size_t diag_len);
/* Parse, check what generating the deltas costs against max_expand_bytes
 * and max_expand_work (SLORA_ELIMIT, before allocating), then generate
 * them once (discarded) so an accepted adapter is always servable;
 * n_threads for the generation. */
int slora_adapter_validate(const void *buf, size_t len, const struct slora_shape *model,
                           const struct slora_adapter_limits *lim, int n_threads,
                           struct slora_adapter **out, char *diag, size_t diag_len);

/* Read the file at path and slora_adapter_parse it (n_threads == 0) or
 * slora_adapter_validate it with n_threads (> 0): the offline tools' entry
 * point. diag names the file on I/O errors (SLORA_EIO). */
int slora_adapter_load(const char *path, const struct slora_shape *model,
                       const struct slora_adapter_limits *lim, int n_threads,
                       struct slora_adapter **out, char *diag, size_t diag_len);

struct slora_adapter *slora_adapter_ref(struct slora_adapter *a);
void slora_adapter_unref(struct slora_adapter *a);

/* Bytes of the dense deltas (N * 4). */
static inline int64_t slora_adapter_dense_bytes(const struct slora_adapter *a)
{
    return a->total * 4;
}

#endif
