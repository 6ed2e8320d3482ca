/* bench_registry.c - the registry under the daemon's upload path and read
 * path, without HTTP:
 *   upload-to-servable latency: slora_registry_put of a ~100 KB LoRA (all
 *     seven modules, 5 layers, r = 4, stories260K shape): validation with
 *     trial delta generation, sha256, durable write (temp, fsync, rename,
 *     dir fsync), index swap; p50/p99 over --uploads replacements, and the
 *     validation share alone (dry runs).
 *   resident adapters: --resident distinct names of a small LoRA (r = 4,
 *     wq and wk); RSS growth per adapter; then --per-kind names of each
 *     adapter kind (that LoRA, the 7-module LoRA, Tucker G = 1, LoKr):
 *     malloc'd bytes (glibc mallinfo2) per adapter against the file size
 *     and the float32 parameters (the registry's counters).
 *   lookups: slora_registry_get + unref from 2 threads for --seconds.
 *
 * usage: bench_registry --state DIR [--resident-state DIR] [--uploads N]
 *        [--resident M] [--per-kind K] [--seconds S] [--json PATH] [--md PATH]
 */
#include <slora/adapter.h>
#include <slora/registry.h>
#include <slora/safetensors.h>

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LAYERS 5
#define RANK 4

static const struct {
    const char *name;
    int rows, cols;
} modules[] = {{"wq", 64, 64},  {"wk", 32, 64},  {"wv", 32, 64}, {"wo", 64, 64},
               {"w1", 172, 64}, {"w2", 64, 172}, {"w3", 172, 64}};
#define N_MOD 7

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float next_value(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 - 0.5) * 0.02f;
}

#define BASE_JSON                                                                                  \
    "\"version\": 1, \"base\": {\"dim\": 64, \"n_layers\": 5, \"n_heads\": 8, "                    \
    "\"n_kv_heads\": 4, \"hidden_dim\": 172, \"vocab_size\": 512}"

/* An adapter file image from a config and a tensor list, random values;
 * variant perturbs one value so each variant has its own version. */
static void *build(const char *config, struct slora_st_out *t, int n, int variant, size_t *len)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        int64_t e = 1;
        for (int d = 0; d < t[i].n_dims; d++)
            e *= t[i].shape[d];
        total += e;
    }
    float *data = malloc(sizeof(float) * (size_t)total);
    for (int64_t i = 0; i < total; i++)
        data[i] = next_value();
    data[0] = (float)variant * 1e-3f;
    float *p = data;
    for (int i = 0; i < n; i++) {
        t[i].data = p;
        int64_t e = 1;
        for (int d = 0; d < t[i].n_dims; d++)
            e *= t[i].shape[d];
        p += e;
    }
    const char *meta[] = {"superlora", config};
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f || slora_st_write(f, t, n, meta, 1) < 0 || fclose(f) != 0) {
        fprintf(stderr, "bench_registry: cannot build the adapter\n");
        exit(1);
    }
    free(data);
    return buf;
}

/* LoRA r = RANK, one group per matrix, over the first n_mod modules of
 * `modules` in every layer. */
static void *make_lora(int n_mod, int variant, size_t *len)
{
    static char names[2 * N_MOD * LAYERS][32];
    struct slora_st_out t[2 * N_MOD * LAYERS];
    int n = 0;
    for (int l = 0; l < LAYERS; l++)
        for (int m = 0; m < n_mod; m++)
            for (int f = 0; f < 2; f++) {
                snprintf(names[n], sizeof(names[n]), "g%d.k0.f%d", l * n_mod + m, f);
                t[n] = (struct slora_st_out){
                    names[n], 2, {f == 0 ? modules[m].rows : modules[m].cols, RANK}, NULL};
                n++;
            }
    char config[512] = "{" BASE_JSON ", \"modules\": [";
    for (int m = 0; m < n_mod; m++)
        snprintf(config + strlen(config), sizeof(config) - strlen(config), "%s\"%s\"",
                 m ? ", " : "", modules[m].name);
    strcat(config, "]}");
    return build(config, t, n, variant, len);
}

/* Tucker M = 3, one group over wq and wk of every layer: N = 5 * (4096 +
 * 2048) = 30720 = 32 x 32 x 30, ranks 4. */
static void *make_tucker(int variant, size_t *len)
{
    struct slora_st_out t[] = {{"g0.k0.f0", 2, {32, RANK}, NULL},
                               {"g0.k0.f1", 2, {32, RANK}, NULL},
                               {"g0.k0.f2", 2, {30, RANK}, NULL},
                               {"g0.k0.core", 3, {RANK, RANK, RANK}, NULL}};
    return build("{" BASE_JSON ", \"modules\": [\"wq\", \"wk\"], \"groups\": 1}", t, 4, variant,
                 len);
}

/* LoKr: per matrix (wq 64 x 64, wk 32 x 64) T_0 (x) T_1, each a rank-RANK
 * CP factor of order 2: wq = (8 x 8) (x) (8 x 8), wk = (4 x 8) (x) (8 x 8). */
static void *make_lokr(int variant, size_t *len)
{
    static char names[8 * LAYERS][32];
    struct slora_st_out t[8 * LAYERS];
    int n = 0;
    for (int l = 0; l < LAYERS; l++)
        for (int m = 0; m < 2; m++)
            for (int k = 0; k < 2; k++)
                for (int f = 0; f < 2; f++) {
                    snprintf(names[n], sizeof(names[n]), "g%d.k%d.f%d", l * 2 + m, k, f);
                    int rows = m == 1 && k == 0 && f == 0 ? 4 : 8;
                    t[n] = (struct slora_st_out){names[n], 2, {rows, RANK}, NULL};
                    n++;
                }
    return build("{" BASE_JSON ", \"modules\": [\"wq\", \"wk\"]}", t, n, variant, len);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    int i = (int)(q * (n - 1) + 0.5);
    return v[i];
}

static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    if (f)
        fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static struct slora_registry_model model = {
    .shape = {.dim = 64,
              .hidden_dim = 172,
              .n_layers = 5,
              .n_heads = 8,
              .n_kv_heads = 4,
              .vocab_size = 512},
    .n_threads = 1,
};

static struct slora_registry *open_registry(const char *state)
{
    struct slora_registry_options opt = {.state_dir = state,
                                         .validate = slora_registry_validate_adapter,
                                         .release = slora_adapter_unref,
                                         .ctx = &model};
    struct slora_registry *r;
    char diag[256];
    if (slora_registry_new(&opt, &r, diag, sizeof(diag)) < 0) {
        fprintf(stderr, "bench_registry: %s\n", diag);
        exit(1);
    }
    return r;
}

static void put_or_die(struct slora_registry *r, const char *name, const void *buf, size_t len,
                       bool dry_run)
{
    char diag[512];
    if (slora_registry_put(r, "bench", name, NULL, NULL, buf, len, dry_run, NULL, NULL, diag,
                           sizeof(diag)) < 0) {
        fprintf(stderr, "bench_registry: put %s: %s\n", name, diag);
        exit(1);
    }
}

struct reader {
    struct slora_registry *r;
    int n_names;
    double seconds;
    long ops;
};

static void *read_loop(void *arg)
{
    struct reader *rd = arg;
    char name[32];
    uint32_t s = (uint32_t)(uintptr_t)arg | 1;
    double end = now() + rd->seconds;
    while (now() < end) {
        for (int k = 0; k < 1000; k++) {
            s = s * 1664525u + 1013904223u;
            snprintf(name, sizeof(name), "a%d", (int)(s >> 8) % rd->n_names);
            struct slora_registry_entry *e;
            if (slora_registry_get(rd->r, "bench", name, &e) == 0)
                slora_registry_entry_unref(e);
            rd->ops++;
        }
    }
    return NULL;
}

/* One adapter kind of the resident measurement and its results. */
struct kind {
    const char *label;
    void *(*make)(int n_mod, int variant, size_t *len); /* NULL: arg picks LoKr / Tucker */
    int arg;
    void *buf[2];
    size_t len[2];
    int count;
    double fill_s, rss_per, heap_per, params_per;
};

/* A registry on state holding count distinct names of kind kd (returned);
 * the growth of RSS and heap per adapter into kd. */
static struct slora_registry *fill(const char *state, struct kind *kd, int count)
{
    struct slora_registry *r = open_registry(state);
    long rss0 = rss_kb();
    struct mallinfo2 heap0 = mallinfo2();
    int64_t live0, bytes0;
    slora_registry_live(&live0, &bytes0);
    char name[32];
    double t0 = now();
    for (int i = 0; i < count; i++) {
        snprintf(name, sizeof(name), "a%d", i);
        put_or_die(r, name, kd->buf[i & 1], kd->len[i & 1], false);
    }
    kd->count = count;
    kd->fill_s = now() - t0;
    long rss1 = rss_kb();
    struct mallinfo2 heap1 = mallinfo2();
    kd->heap_per = ((double)heap1.uordblks + (double)heap1.hblkhd - (double)heap0.uordblks -
                    (double)heap0.hblkhd) /
                   count;
    int64_t live1, bytes1;
    slora_registry_live(&live1, &bytes1);
    kd->rss_per = (double)(rss1 - rss0) * 1024.0 / count;
    kd->params_per = (double)(bytes1 - bytes0) / (double)(live1 - live0);
    return r;
}

int main(int argc, char **argv)
{
    const char *state = NULL, *resident_state = NULL, *json = NULL, *md = NULL;
    int uploads = 200, resident = 10000, per_kind = 1000;
    double seconds = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--state"))
            state = argv[i + 1];
        else if (!strcmp(argv[i], "--resident-state"))
            resident_state = argv[i + 1];
        else if (!strcmp(argv[i], "--uploads"))
            uploads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--resident"))
            resident = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--per-kind"))
            per_kind = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--json"))
            json = argv[i + 1];
        else if (!strcmp(argv[i], "--md"))
            md = argv[i + 1];
    }
    if (!state || uploads < 2 || resident < 1 || per_kind < 1) {
        fprintf(stderr, "usage: bench_registry --state DIR [--resident-state DIR] [--uploads N] "
                        "[--resident M] [--per-kind K] [--seconds S] [--json PATH] "
                        "[--md PATH]\n");
        return 2;
    }
    if (!resident_state)
        resident_state = state;
    slora_adapter_limits_default(&model.limits);
    size_t len[2];
    void *buf[2] = {make_lora(N_MOD, 0, &len[0]), make_lora(N_MOD, 1, &len[1])};

    /* Upload-to-servable latency: alternate two versions of one name. */
    struct slora_registry *r = open_registry(state);
    double *lat = malloc(sizeof(double) * (size_t)uploads);
    double *val = malloc(sizeof(double) * (size_t)uploads);
    for (int i = 0; i < uploads; i++) {
        double t0 = now();
        put_or_die(r, "latency", buf[i & 1], len[i & 1], false);
        lat[i] = (now() - t0) * 1e3;
        t0 = now();
        put_or_die(r, "latency", buf[i & 1], len[i & 1], true);
        val[i] = (now() - t0) * 1e3;
    }
    double p50 = pct(lat, uploads, 0.5), p99 = pct(lat, uploads, 0.99);
    double v50 = pct(val, uploads, 0.5), v99 = pct(val, uploads, 0.99);
    slora_registry_free(r);

    /* Resident adapters: the small LoRA first, on a fresh heap, so RSS
     * growth is the adapters' own; then each kind's heap per adapter. */
    struct kind kinds[] = {
        {.label = "LoRA r=4, wq+wk, per matrix (G=10)", .make = make_lora, .arg = 2},
        {.label = "LoRA r=4, all 7 modules, per matrix (G=35)", .make = make_lora, .arg = N_MOD},
        {.label = "Tucker M=3 r=4, wq+wk, G=1", .arg = 0},
        {.label = "LoKr K=2 r=4, wq+wk, per matrix (G=10)", .arg = 1},
    };
    int n_kinds = (int)(sizeof(kinds) / sizeof(kinds[0]));
    for (int k = 0; k < n_kinds; k++) {
        struct kind *kd = &kinds[k];
        for (int v = 0; v < 2; v++)
            kd->buf[v] = kd->make  ? kd->make(kd->arg, v, &kd->len[v])
                         : kd->arg ? make_lokr(v, &kd->len[v])
                                   : make_tucker(v, &kd->len[v]);
    }
    r = fill(resident_state, &kinds[0], resident);

    /* Lookups from 2 threads. */
    struct reader rd[2] = {{r, resident, seconds, 0}, {r, resident, seconds, 0}};
    pthread_t th[2];
    double t0 = now();
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, read_loop, &rd[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    double gets = (double)(rd[0].ops + rd[1].ops) / (now() - t0);
    slora_registry_free(r);
    for (int k = 1; k < n_kinds; k++)
        slora_registry_free(fill(resident_state, &kinds[k], per_kind));

    char report[4096];
    int at = snprintf(
        report, sizeof(report),
        "## Registry (no HTTP)\n\n"
        "| measure | value |\n|---|---|\n"
        "| upload-to-servable p50 / p99 (validate + sha256 + durable write + swap), "
        "%d uploads of a %zu B LoRA r=%d (7 modules x %d layers), state `%s` | %.2f / %.2f ms |\n"
        "| of which validation (dry run) p50 / p99 | %.2f / %.2f ms |\n"
        "| %d resident %zu B adapters (%s): fill time | %.1f s |\n"
        "| RSS growth per resident adapter (state `%s`) | %.0f B (%.0f B beyond the file) |\n"
        "| get+unref, 2 threads | %.2f M/s |\n\n"
        "Heap per resident adapter (glibc mallinfo2 over the registry fill: entry, index slot, "
        "parsed adapter; the file stays on disk). \"Beyond params\" is the representation "
        "overhead: everything but the float32 parameters.\n\n"
        "| adapter | resident | file B | heap B | params B | beyond params B | beyond file B |\n"
        "|---|---|---|---|---|---|---|\n",
        uploads, len[0], RANK, LAYERS, state, p50, p99, v50, v99, resident, kinds[0].len[0],
        kinds[0].label, kinds[0].fill_s, resident_state, kinds[0].rss_per,
        kinds[0].rss_per - (double)kinds[0].len[0], gets / 1e6);
    for (int k = 0; k < n_kinds; k++) {
        const struct kind *kd = &kinds[k];
        at += snprintf(report + at, sizeof(report) - (size_t)at,
                       "| %s | %d | %zu | %.0f | %.0f | %.0f | %.0f |\n", kd->label, kd->count,
                       kd->len[0], kd->heap_per, kd->params_per, kd->heap_per - kd->params_per,
                       kd->heap_per - (double)kd->len[0]);
    }
    printf("%s", report);
    if (md) {
        FILE *f = fopen(md, "w");
        if (f) {
            fputs(report, f);
            fclose(f);
        }
    }
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f,
                    "{\"adapter_bytes\": %zu, \"uploads\": %d, \"upload_ms_p50\": %.3f, "
                    "\"upload_ms_p99\": %.3f, \"validate_ms_p50\": %.3f, \"validate_ms_p99\": "
                    "%.3f, \"resident\": %d, \"resident_adapter_bytes\": %zu, \"fill_s\": %.2f, "
                    "\"rss_bytes_per_adapter\": %.0f, \"beyond_file_bytes\": %.0f, "
                    "\"gets_per_s\": %.0f, \"kinds\": [",
                    len[0], uploads, p50, p99, v50, v99, resident, kinds[0].len[0], kinds[0].fill_s,
                    kinds[0].rss_per, kinds[0].rss_per - (double)kinds[0].len[0], gets);
            for (int k = 0; k < n_kinds; k++)
                fprintf(f,
                        "%s{\"adapter\": \"%s\", \"resident\": %d, \"file_bytes\": %zu, "
                        "\"heap_bytes\": %.0f, \"params_bytes\": %.0f}",
                        k ? ", " : "", kinds[k].label, kinds[k].count, kinds[k].len[0],
                        kinds[k].heap_per, kinds[k].params_per);
            fprintf(f, "]}\n");
            fclose(f);
        }
    }
    for (int k = 0; k < n_kinds; k++) {
        free(kinds[k].buf[0]);
        free(kinds[k].buf[1]);
    }
    free(lat);
    free(val);
    free(buf[0]);
    free(buf[1]);
    return 0;
}
