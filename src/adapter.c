/* adapter.c - parse and validate a SuperLoRA adapter (spec sections 1-7).
 *
 * Order of work: safetensors structure (safetensors.c), then the
 * __metadata__.superlora config (adapter_config.c), then the
 * target list and group sizes computed arithmetically, then the tensor names
 * (sorted), then one allocation for the targets, groups and factor tables
 * sized exactly to what the file has, the shapes checked into it, then the
 * resource limits, and only then the one allocation proportional to the
 * data (the float32 parameter buffer, pointed into but not yet written).
 * Validation then checks the expansion cost from the shapes alone, before
 * the data is converted and before any delta memory exists. Every size
 * product is overflow-checked.
 *
 * The finished adapter is immutable; its refcount is the only mutable field
 * and is updated atomically, so any thread may ref/unref and read it.
 */
#include "internal.h"

#include <slora/adapter.h>
#include <slora/adapter_config.h>
#include <slora/error.h>
#include <slora/safetensors.h>
#include <slora/superlora.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CORE_IDX SLORA_MAX_ORDER /* sorts a core after its factors */

void slora_adapter_limits_default(struct slora_adapter_limits *lim)
{
    lim->max_params = 10000000;
    lim->max_total = 1LL << 31;
    lim->max_fastfood = 1LL << 28;
    lim->max_core = 1LL << 24;
    lim->max_groups = 4096;
    lim->max_expand_bytes = 256LL << 20;
    lim->max_expand_work = 1LL << 34;
}

/* ---- targets and groups ---------------------------------------------------- */

/* Sizes only: N, J and G, so every limit is known before allocating. */
static int count_sizes(struct slora_adapter *a, const struct slora_adapter_limits *lim, char *diag,
                       size_t diag_len)
{
    const struct slora_adapter_config *c = &a->cfg;
    int64_t per_layer = 0;
    for (int i = 0; i < c->n_modules; i++) {
        int64_t r, k, s;
        slora_arch_module_dims(&c->base, c->modules[i], &r, &k);
        if (__builtin_mul_overflow(r, k, &s) || __builtin_add_overflow(per_layer, s, &per_layer))
            return slora__diag(diag, diag_len, SLORA_ELIMIT, "total size N overflows");
    }
    if (__builtin_mul_overflow(per_layer, (int64_t)c->n_layers, &a->total) ||
        a->total > lim->max_total)
        return slora__diag(diag, diag_len, SLORA_ELIMIT,
                           "total size N of the targets is over the limit of %lld elements",
                           (long long)lim->max_total);
    int64_t j = (int64_t)c->n_layers * c->n_modules;
    if (j > INT_MAX)
        return slora__diag(diag, diag_len, SLORA_ELIMIT, "too many target matrices");
    a->n_targets = (int)j;
    int64_t g;
    switch (c->groups_kind) {
    case SLORA_GROUPS_COUNT:
        g = c->groups_count;
        if (g > a->total)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "superlora.groups = %lld is above N = %lld", (long long)g,
                               (long long)a->total);
        break;
    case SLORA_GROUPS_MATRIX:
        g = j;
        break;
    case SLORA_GROUPS_LAYER:
        g = c->n_layers;
        break;
    default:
        g = c->n_modules;
        break;
    }
    if (g > lim->max_groups)
        return slora__diag(diag, diag_len, SLORA_ELIMIT, "%lld groups is over the limit of %lld",
                           (long long)g, (long long)lim->max_groups);
    a->n_groups = (int)g;
    return 0;
}

static void build_targets(struct slora_adapter *a)
{
    const struct slora_adapter_config *c = &a->cfg;
    int64_t off = 0;
    int outer = c->order == SLORA_ORDER_LAYER ? c->n_layers : c->n_modules;
    int inner = c->order == SLORA_ORDER_LAYER ? c->n_modules : c->n_layers;
    for (int o = 0, j = 0; o < outer; o++)
        for (int i = 0; i < inner; i++, j++) {
            struct slora_target *t = &a->targets[j];
            t->layer = c->layers[c->order == SLORA_ORDER_LAYER ? o : i];
            t->module = c->modules[c->order == SLORA_ORDER_LAYER ? i : o];
            slora_arch_module_dims(&c->base, t->module, &t->rows, &t->cols);
            t->offset = off;
            off += t->rows * t->cols;
        }
}

/* N_g and offsets per spec section 2. */
static void build_group_sizes(struct slora_adapter *a)
{
    const struct slora_adapter_config *c = &a->cfg;
    int64_t G = a->n_groups, N = a->total, off = 0;
    for (int64_t g = 0; g < G; g++) {
        struct slora_group *gr = &a->groups[g];
        switch (c->groups_kind) {
        case SLORA_GROUPS_COUNT:
            gr->len = N / G + (g < N % G ? 1 : 0);
            break;
        case SLORA_GROUPS_MATRIX:
            gr->len = a->targets[g].rows * a->targets[g].cols;
            break;
        default: {
            /* layer (order layer) or module (order module): a run of targets */
            int per = a->n_targets / (int)G;
            gr->len = 0;
            for (int j = (int)g * per; j < (int)(g + 1) * per; j++)
                gr->len += a->targets[j].rows * a->targets[j].cols;
            break;
        }
        }
        gr->offset = off;
        off += gr->len;
    }
}

/* ---- tensors ------------------------------------------------------------- */

struct entry {
    int64_t g;
    int k;
    int m; /* factor index, or CORE_IDX */
    const struct slora_st_tensor *t;
};

/* Decimal without leading zeros, at most 18 digits; advances *s. */
static int parse_num(const char **s, int64_t *out)
{
    const char *p = *s;
    int64_t v = 0;
    int n = 0;
    /* a 19th digit only marks the number too long: accumulating it could
     * overflow int64 */
    for (; *p >= '0' && *p <= '9' && n < 19; p++, n++)
        if (n < 18)
            v = v * 10 + (*p - '0');
    if (n == 0 || n > 18 || (n > 1 && **s == '0'))
        return -1;
    *s = p;
    *out = v;
    return 0;
}

static int parse_name(const char *name, struct entry *e)
{
    const char *p = name;
    int64_t g, k, m;
    if (*p++ != 'g' || parse_num(&p, &g) || strncmp(p, ".k", 2))
        return -1;
    p += 2;
    if (parse_num(&p, &k) || *p++ != '.')
        return -1;
    if (!strcmp(p, "core")) {
        m = CORE_IDX;
    } else if (*p++ != 'f' || parse_num(&p, &m) || *p) {
        return -1;
    }
    e->g = g;
    e->k = k > INT_MAX ? INT_MAX : (int)k;
    e->m = m > INT_MAX ? INT_MAX : (int)m;
    return 0;
}

static int by_name(const void *x, const void *y)
{
    const struct entry *a = x, *b = y;
    if (a->g != b->g)
        return a->g < b->g ? -1 : 1;
    if (a->k != b->k)
        return a->k < b->k ? -1 : 1;
    return (a->m > b->m) - (a->m < b->m);
}

static int parse_names(const struct slora_st *st, int64_t G, struct entry *es, char *diag,
                       size_t diag_len)
{
    for (int i = 0; i < st->n_tensors; i++) {
        const char *name = st->tensors[i].name;
        es[i].t = &st->tensors[i];
        if (parse_name(name, &es[i]))
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "unexpected tensor '%s' (expected g{g}.k{k}.f{m} or g{g}.k{k}.core)",
                               name);
        if (es[i].g >= G)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "unexpected tensor '%s': the adapter has %lld groups", name,
                               (long long)G);
        if (es[i].k >= SLORA_MAX_KRON)
            return slora__diag(diag, diag_len, SLORA_ELIMIT,
                               "tensor '%s': over the limit of %d Kronecker factors", name,
                               SLORA_MAX_KRON);
        if (es[i].m >= SLORA_MAX_ORDER && es[i].m != CORE_IDX)
            return slora__diag(diag, diag_len, SLORA_ELIMIT,
                               "tensor '%s': over the limit of order %d", name, SLORA_MAX_ORDER);
    }
    qsort(es, (size_t)st->n_tensors, sizeof(*es), by_name);
    /* Every group needs g{g}.k0.f0; find the first one missing before
     * allocating G group records. */
    int64_t want = 0;
    for (int i = 0; i < st->n_tensors && want < G; i++)
        if (es[i].g == want)
            want++;
        else if (es[i].g > want)
            break;
    if (want < G)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "missing tensor 'g%lld.k0.f0'",
                           (long long)want);
    return 0;
}

static int check_factor(const struct slora_st_tensor *t, char *diag, size_t diag_len)
{
    if (t->n_dims != 2)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tensor '%s': a factor matrix must be 2-D, it has %d dimensions",
                           t->name, t->n_dims);
    if (t->shape[0] == 0 || t->shape[1] == 0)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tensor '%s': zero dimension in shape (%lld, %lld)", t->name,
                           (long long)t->shape[0], (long long)t->shape[1]);
    return 0;
}

static int check_core(const struct slora_st_tensor *t, const struct slora_factor *f, int order,
                      const struct slora_adapter_limits *lim, char *diag, size_t diag_len)
{
    if (t->n_dims != order)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tensor '%s': core has %d dimensions, the factor order is %d", t->name,
                           t->n_dims, order);
    for (int m = 0; m < order; m++)
        if (t->shape[m] != f->r[m])
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "tensor '%s': core dimension %d is %lld, factor f%d has rank %lld",
                               t->name, m, (long long)t->shape[m], m, (long long)f->r[m]);
    if (t->n_elems > lim->max_core)
        return slora__diag(diag, diag_len, SLORA_ELIMIT,
                           "tensor '%s': %lld core elements is over the limit of %lld", t->name,
                           (long long)t->n_elems, (long long)lim->max_core);
    return 0;
}

/* The unused rest of the adapter's tables: build_group and check_code_len
 * take each group's records from the front, in file order. */
struct tables {
    struct slora_factor *factors; /* (factors) */
    int64_t *n;                   /* (modes) n_{k,m} */
    int64_t *r;                   /* (modes) r_{k,m} */
    const float **a;              /* (modes) A_{k,m} */
    int64_t *group_n;             /* (group_modes) n_m */
};

/* Table sizes from the sorted entries: a factor per distinct (g, k), a
 * mode record per factor tensor, a group mode per tensor of a k0 in groups
 * with a k1 (one-factor groups share k0's n). For a valid file these are
 * exact; for any file they bound what build_group and check_code_len take
 * (they stop at the first gap). */
static void count_tables(const struct entry *es, int n, size_t *factors, size_t *modes,
                         size_t *group_modes)
{
    size_t k0_modes = 0;
    bool kron = false;
    *factors = *modes = *group_modes = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || es[i].g != es[i - 1].g) {
            *group_modes += kron ? k0_modes : 0;
            k0_modes = 0;
            kron = false;
        }
        if (i == 0 || es[i].g != es[i - 1].g || es[i].k != es[i - 1].k)
            (*factors)++;
        if (es[i].m != CORE_IDX) {
            (*modes)++;
            k0_modes += es[i].k == 0;
        }
        kron = kron || es[i].k > 0;
    }
    *group_modes += kron ? k0_modes : 0;
}

/* One allocation for targets, groups and factor tables (counts come from
 * the file header and the limits: J, G < 2^31, the rest <= n_tensors, so
 * the sum cannot overflow size_t). */
static int alloc_tables(struct slora_adapter *a, const struct entry *es, int n, struct tables *t,
                        char *diag, size_t diag_len)
{
    size_t factors, modes, group_modes;
    count_tables(es, n, &factors, &modes, &group_modes);
    size_t bytes = sizeof(struct slora_target) * (size_t)a->n_targets +
                   sizeof(struct slora_group) * (size_t)a->n_groups +
                   sizeof(struct slora_factor) * factors +
                   (sizeof(int64_t) * 2 + sizeof(float *)) * modes + sizeof(int64_t) * group_modes;
    char *p = calloc(1, bytes);
    if (!p)
        return slora__diag(diag, diag_len, SLORA_ENOMEM, "out of memory for the group table");
    a->tables = p;
    a->targets = (struct slora_target *)p;
    p += sizeof(struct slora_target) * (size_t)a->n_targets;
    a->groups = (struct slora_group *)p;
    p += sizeof(struct slora_group) * (size_t)a->n_groups;
    t->factors = (struct slora_factor *)p;
    p += sizeof(struct slora_factor) * factors;
    t->n = (int64_t *)p;
    p += sizeof(int64_t) * modes;
    t->r = (int64_t *)p;
    p += sizeof(int64_t) * modes;
    t->group_n = (int64_t *)p;
    p += sizeof(int64_t) * group_modes;
    t->a = (const float **)p;
    return 0;
}

/* Walk the sorted entries of group g from *pos: factors k = 0..K-1, each
 * with f0..f{M-1} and an optional core. Records shapes (not data), taking
 * the records from t. */
static int build_group(struct slora_group *gr, int64_t g, const struct entry *es, int n, int *pos,
                       struct tables *t, const struct slora_adapter_limits *lim, char *diag,
                       size_t diag_len)
{
    int i = *pos;
    gr->k = t->factors;
    for (int k = 0; i < n && es[i].g == g; k++) {
        if (es[i].k != k || es[i].m != 0)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "missing tensor 'g%lld.k%d.f0' (next: '%s')", (long long)g, k,
                               es[i].t->name);
        struct slora_factor *f = t->factors++;
        f->n = t->n;
        f->r = t->r;
        f->a = t->a;
        int m = 0;
        for (; i < n && es[i].g == g && es[i].k == k && es[i].m == m; i++, m++) {
            int err = check_factor(es[i].t, diag, diag_len);
            if (err)
                return err;
            f->n[m] = es[i].t->shape[0];
            f->r[m] = es[i].t->shape[1];
        }
        t->n += m;
        t->r += m;
        t->a += m;
        if (i < n && es[i].g == g && es[i].k == k && es[i].m != CORE_IDX)
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "missing tensor 'g%lld.k%d.f%d'",
                               (long long)g, k, m);
        if (k == 0)
            gr->order = m;
        else if (m != gr->order)
            return slora__diag(
                diag, diag_len, SLORA_EFORMAT,
                "group g%lld: Kronecker factor k%d has order %d, factor k0 has order %d",
                (long long)g, k, m, gr->order);
        if (i < n && es[i].g == g && es[i].k == k) {
            int err = check_core(es[i].t, f, m, lim, diag, diag_len);
            if (err)
                return err;
            i++;
        } else {
            for (int j = 1; j < m; j++)
                if (f->r[j] != f->r[0])
                    return slora__diag(diag, diag_len, SLORA_EFORMAT,
                                       "g%lld.k%d: CP factors (no core) need equal ranks, "
                                       "f0 has rank %lld, f%d has rank %lld",
                                       (long long)g, k, (long long)f->r[0], j, (long long)f->r[j]);
        }
        gr->n_kron = k + 1;
    }
    *pos = i;
    return 0;
}

/* n_m (taken from t, or k0's own when it is the only factor), P_g, and
 * the fold / sanity / fastfood-length rules (spec 3 and 5). */
static int check_code_len(struct slora_group *gr, int64_t g, bool projection, struct tables *t,
                          const struct slora_adapter_limits *lim, char *diag, size_t diag_len)
{
    int64_t p = 1;
    gr->n = gr->k[0].n;
    if (gr->n_kron > 1) {
        gr->n = t->group_n;
        t->group_n += gr->order;
    }
    for (int m = 0; m < gr->order; m++) {
        int64_t n = 1;
        for (int k = 0; k < gr->n_kron; k++)
            if (__builtin_mul_overflow(n, gr->k[k].n[m], &n))
                return slora__diag(diag, diag_len, SLORA_EFORMAT,
                                   "group g%lld: mode %d size overflows", (long long)g, m);
        gr->n[m] = n;
        if (__builtin_mul_overflow(p, gr->n[m], &p))
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "group g%lld: code length P_g overflows", (long long)g);
    }
    gr->code_len = p;
    int64_t bound = gr->len + 65536 > 2 * gr->len ? gr->len + 65536 : 2 * gr->len;
    if (p > bound)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "group g%lld: code length P_g = %lld is over the sanity bound %lld "
                           "(max(2 N_g, N_g + 65536), N_g = %lld)",
                           (long long)g, (long long)p, (long long)bound, (long long)gr->len);
    if (!projection && p < gr->len)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "group g%lld: code length P_g = %lld < N_g = %lld without projection",
                           (long long)g, (long long)p, (long long)gr->len);
    if (projection) {
        int64_t need = p > gr->len ? p : gr->len, l = 1;
        while (l < need && l <= lim->max_fastfood)
            l <<= 1;
        if (l > lim->max_fastfood)
            return slora__diag(diag, diag_len, SLORA_ELIMIT,
                               "group g%lld: fastfood length L = %lld is over the limit of %lld",
                               (long long)g, (long long)l, (long long)lim->max_fastfood);
    }
    return 0;
}

/* The float32 parameter buffer, every factor pointed into it in tensor
 * order. Its pages are not touched yet: an adapter refused for its
 * expansion cost never costs its converted size. */
static int point_params(struct slora_adapter *a, const struct entry *es, int n, char *diag,
                        size_t diag_len)
{
    a->params = malloc(sizeof(float) * (size_t)(a->n_params ? a->n_params : 1));
    if (!a->params)
        return slora__diag(diag, diag_len, SLORA_ENOMEM, "out of memory for %lld parameters",
                           (long long)a->n_params);
    float *p = a->params;
    for (int i = 0; i < n; i++) {
        struct slora_factor *f = &a->groups[es[i].g].k[es[i].k];
        if (es[i].m == CORE_IDX)
            f->core = p;
        else
            f->a[es[i].m] = p;
        p += es[i].t->n_elems;
    }
    return 0;
}

/* Convert every tensor into the buffer, rejecting NaN and Inf. */
static int convert_params(struct slora_adapter *a, const struct entry *es, int n, char *diag,
                          size_t diag_len)
{
    float *p = a->params;
    for (int i = 0; i < n; i++) {
        const struct slora_st_tensor *t = es[i].t;
        slora_st_to_f32(t, p);
        for (int64_t e = 0; e < t->n_elems; e++)
            if (!isfinite(p[e]))
                return slora__diag(diag, diag_len, SLORA_ENONFINITE,
                                   "tensor '%s': %s at element %lld (byte offset %zu)", t->name,
                                   isnan(p[e]) ? "NaN" : "Inf", (long long)e,
                                   t->file_offset + (size_t)e * (t->n_bytes / (size_t)t->n_elems));
        p += t->n_elems;
    }
    return 0;
}

/* What generating a's deltas would cost, against the limits: an adapter of
 * a few megabytes can ask for gigabytes of intermediates or minutes of
 * compute. Needs only the shapes. */
static int check_cost(const struct slora_adapter *a, const struct slora_adapter_limits *lim,
                      int n_threads, char *diag, size_t diag_len)
{
    struct slora_superlora_cost cost;
    int err = slora_superlora_cost(a, n_threads, &cost, diag, diag_len);
    if (err)
        return err;
    if (cost.scratch_bytes > (uint64_t)lim->max_expand_bytes)
        return slora__diag(diag, diag_len, SLORA_ELIMIT,
                           "expanding the adapter needs %zu bytes of intermediates, over the "
                           "limit of %lld (max_expand_bytes)",
                           cost.scratch_bytes, (long long)lim->max_expand_bytes);
    if (cost.work > (uint64_t)lim->max_expand_work)
        return slora__diag(diag, diag_len, SLORA_ELIMIT,
                           "expanding the adapter needs about %zu multiply-adds, over the limit "
                           "of %lld (max_expand_work)",
                           cost.work, (long long)lim->max_expand_work);
    return 0;
}

/* cost_threads > 0: validation, the expansion cost is checked (for that
 * many generation threads) before the parameters are converted. */
static int build(struct slora_adapter *a, const struct slora_st *st,
                 const struct slora_shape *model, const struct slora_adapter_limits *lim,
                 int cost_threads, char *diag, size_t diag_len)
{
    const char *text;
    if (slora_st_meta_get(st, "superlora", &text))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "__metadata__.superlora missing");
    if (!text)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "__metadata__.superlora is not a string");
    int err = slora_adapter_config_parse(text, model, &a->cfg, diag, diag_len);
    if (err || (err = count_sizes(a, lim, diag, diag_len)))
        return err;

    struct entry *es = calloc((size_t)st->n_tensors + 1, sizeof(*es));
    if (!es)
        return slora__diag(diag, diag_len, SLORA_ENOMEM, "out of memory for the tensor table");
    if ((err = parse_names(st, a->n_groups, es, diag, diag_len)))
        goto err_free_entries;
    if (!a->cfg.layers && (a->cfg.layers = malloc(sizeof(int) * (size_t)a->cfg.n_layers)))
        for (int l = 0; l < a->cfg.n_layers; l++)
            a->cfg.layers[l] = l;
    if (!a->cfg.layers) {
        err = slora__diag(diag, diag_len, SLORA_ENOMEM, "out of memory for the target list");
        goto err_free_entries;
    }
    struct tables t = {0};
    if ((err = alloc_tables(a, es, st->n_tensors, &t, diag, diag_len)))
        goto err_free_entries;
    build_targets(a);
    build_group_sizes(a);
    int pos = 0;
    for (int g = 0; g < a->n_groups; g++) {
        if ((err =
                 build_group(&a->groups[g], g, es, st->n_tensors, &pos, &t, lim, diag, diag_len)) ||
            (err = check_code_len(&a->groups[g], g, a->cfg.projection, &t, lim, diag, diag_len)))
            goto err_free_entries;
    }
    a->n_params = 0;
    for (int i = 0; i < st->n_tensors; i++)
        a->n_params += st->tensors[i].n_elems; /* each <= file bytes / 2: no overflow */
    if (a->n_params > lim->max_params) {
        err = slora__diag(diag, diag_len, SLORA_ELIMIT,
                          "parameter count %lld is over the limit of %lld", (long long)a->n_params,
                          (long long)lim->max_params);
        goto err_free_entries;
    }
    if ((err = point_params(a, es, st->n_tensors, diag, diag_len)) ||
        (cost_threads > 0 && (err = check_cost(a, lim, cost_threads, diag, diag_len))))
        goto err_free_entries;
    err = convert_params(a, es, st->n_tensors, diag, diag_len);
err_free_entries:
    free(es);
    return err;
}

static int parse_with(const void *buf, size_t len, const struct slora_shape *model,
                      const struct slora_adapter_limits *lim, int cost_threads,
                      struct slora_adapter **out, char *diag, size_t diag_len)
{
    struct slora_adapter_limits def;
    if (!lim) {
        slora_adapter_limits_default(&def);
        lim = &def;
    }
    *out = NULL;
    struct slora_st *st;
    int err = slora_st_parse(buf, len, &st, diag, diag_len);
    if (err)
        return err;
    struct slora_adapter *a = calloc(1, sizeof(*a));
    if (!a) {
        err = slora__diag(diag, diag_len, SLORA_ENOMEM, "out of memory for the adapter");
        goto err_free_st;
    }
    a->refcount = 1;
    a->file_bytes = len;
    err = build(a, st, model, lim, cost_threads, diag, diag_len);
    if (err) {
        slora_adapter_unref(a);
        goto err_free_st;
    }
    slora_st_free(st);
    *out = a;
    return 0;

err_free_st:
    slora_st_free(st);
    return err;
}

int slora_adapter_parse(const void *buf, size_t len, const struct slora_shape *model,
                        const struct slora_adapter_limits *lim, struct slora_adapter **out,
                        char *diag, size_t diag_len)
{
    return parse_with(buf, len, model, lim, 0, out, diag, diag_len);
}

/* The one call up the layering (adapter -> superlora): an accepted adapter
 * must be servable, so validation checks what generating its deltas costs
 * and then generates them once. */
int slora_adapter_validate(const void *buf, size_t len, const struct slora_shape *model,
                           const struct slora_adapter_limits *lim, int n_threads,
                           struct slora_adapter **out, char *diag, size_t diag_len)
{
    struct slora_adapter *a;
    *out = NULL;
    int err = parse_with(buf, len, model, lim, n_threads < 1 ? 1 : n_threads, &a, diag, diag_len);
    if (err)
        return err;
    float *scratch = malloc(sizeof(float) * (size_t)(a->total ? a->total : 1));
    if (!scratch) {
        err = slora__diag(diag, diag_len, SLORA_ENOMEM, "out of memory for %lld delta values",
                          (long long)a->total);
        goto err_unref;
    }
    err = slora_superlora_generate(a, scratch, n_threads, diag, diag_len);
    free(scratch);
    if (err)
        goto err_unref;
    *out = a;
    return 0;

err_unref:
    slora_adapter_unref(a);
    return err;
}

int slora_adapter_load(const char *path, const struct slora_shape *model,
                       const struct slora_adapter_limits *lim, int n_threads,
                       struct slora_adapter **out, char *diag, size_t diag_len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return slora__diag(diag, diag_len, SLORA_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    int err;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode)) {
        err = slora__diag(diag, diag_len, SLORA_EIO, "%s: not a regular file", path);
        goto err_close_file;
    }
    size_t len = (size_t)sb.st_size;
    void *buf = malloc(len ? len : 1);
    if (!buf) {
        err =
            slora__diag(diag, diag_len, SLORA_ENOMEM, "%s: out of memory for %zu bytes", path, len);
        goto err_close_file;
    }
    if (fread(buf, 1, len, f) != len) {
        err = slora__diag(diag, diag_len, SLORA_EIO, "%s: short read", path);
        goto err_free_buf;
    }
    err = n_threads > 0
              ? slora_adapter_validate(buf, len, model, lim, n_threads, out, diag, diag_len)
              : slora_adapter_parse(buf, len, model, lim, out, diag, diag_len);
err_free_buf:
    free(buf);
err_close_file:
    fclose(f);
    return err;
}

struct slora_adapter *slora_adapter_ref(struct slora_adapter *a)
{
    __atomic_add_fetch(&a->refcount, 1, __ATOMIC_RELAXED);
    return a;
}

void slora_adapter_unref(struct slora_adapter *a)
{
    if (!a || __atomic_sub_fetch(&a->refcount, 1, __ATOMIC_ACQ_REL))
        return;
    free(a->cfg.layers);
    free(a->tables);
    free(a->params);
    free(a);
}
